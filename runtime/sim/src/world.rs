//! One simulated run: the world (nodes, disks, network, clients), its
//! scheduler, and the checks.

use smelt_model_check::history::{linearize, History};
use smelt_runtime::client::{check_tag, Attempt, Call, ClientError, ClientOptions, Decision, Policy};
use smelt_runtime::commit::Record;
use smelt_runtime::connection::Ctx;
use smelt_runtime::core::{Commit, Core, KeepGhosts, Out};
use smelt_runtime::frame::{self, Kind, Response};
use smelt_runtime::node::{Limits, NodeStats};
use smelt_runtime::rng::Rng;
use smelt_runtime::storage::{self, FileStore, Identity, RecoverError, Store};
use smelt_runtime::vfs::{SimFs, TornWrite, Vfs, VfsFile};
use smelt_support::{Client as Tag, ClientState, Id, Layout, PropertyKind, Protocol, View};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Bugs in the runtime, switched on to prove the simulator catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Outputs leave before their record's fsync.
    pub release_before_fsync: bool,
    /// Snapshots are renamed into place without an fsync of their bytes.
    pub snapshot_without_fsync: bool,
}

/// What one run simulates.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Servers per role.
    pub servers: Vec<u64>,
    pub clients: u64,
    /// Each client's workload is run `rounds` times over.
    pub rounds: u64,
    /// Faults happen in the first `fault_ms` of simulated time; then every
    /// node is restarted, every partition healed, and the clients must
    /// finish within `quiet_ms`.
    pub fault_ms: u64,
    pub quiet_ms: u64,
    /// The time between two faults, and the time a crashed node stays
    /// down, are drawn from these ranges (milliseconds).
    pub fault_gap_ms: (u64, u64),
    pub down_ms: (u64, u64),
    pub crash: bool,
    pub partition: bool,
    /// Torn writes, flipped bits, failed fsyncs.
    pub disk: bool,
    /// Nodes' clocks run at different rates.
    pub clock: bool,
    /// Record every event, for the trace printed on a failure.
    pub trace: bool,
    /// The check whose configuration this is (for messages).
    pub check: String,
    pub sessions_max: Option<u64>,
    /// The log is snapshotted past this many bytes (small: snapshots and
    /// their recovery happen in every run).
    pub snapshot_log_bytes: u64,
    pub bugs: Bugs,
    /// A run that takes more events than this stops with a violation (a
    /// livelock in the node code, or in the simulator).
    pub events_max: u64,
    /// Invariants are evaluated after every `invariants_every`-th node
    /// step (1: every one), and at the end.
    pub invariants_every: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 1,
            servers: vec![3],
            clients: 3,
            rounds: 3,
            fault_ms: 3_000,
            quiet_ms: 20_000,
            fault_gap_ms: (20, 400),
            down_ms: (10, 700),
            crash: true,
            partition: true,
            disk: true,
            clock: true,
            trace: false,
            check: String::new(),
            sessions_max: None,
            snapshot_log_bytes: 2048,
            bugs: Bugs::default(),
            events_max: 2_000_000,
            invariants_every: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// What went wrong, and when (simulated microseconds).
    Violation {
        what: String,
        at_us: u64,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub virtual_us: u64,
    pub handlers: u64,
    pub frames: u64,
    pub ops: u64,
    pub ok: u64,
    pub unknown: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub partitions: u64,
    pub torn_writes: u64,
    pub flips_refused: u64,
    pub disk_failures: u64,
    pub snapshots: u64,
    pub invariant_checks: u64,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub verdict: Verdict,
    pub stats: Stats,
    /// The events of the run (with `trace`), oldest first.
    pub trace: Vec<String>,
}

/// Simulated microseconds.
type Us = u64;

const MS: Us = 1_000;

enum Ev {
    /// A frame arrives at a node.
    ToNode {
        node: usize,
        from: Endpoint,
        epoch: u64,
        frame: Vec<u8>,
    },
    /// A frame arrives at a client.
    ToClient {
        client: usize,
        server: usize,
        epoch: u64,
        frame: Vec<u8>,
    },
    /// A node's timers may be due, or it has local work.
    Wake {
        node: usize,
        incarnation: u64,
    },
    /// A node's fsync completes.
    FsyncDone {
        node: usize,
        incarnation: u64,
    },
    /// A client starts its next request.
    ClientNext {
        client: usize,
    },
    /// A client sends (after a pause) the attempt numbered `attempt`.
    ClientSend {
        client: usize,
        attempt: u64,
    },
    /// The attempt numbered `attempt` timed out (`refused`: its server
    /// was down, so the connection failed at once).
    ClientTimeout {
        client: usize,
        attempt: u64,
        refused: bool,
    },
    Fault,
    Restart {
        node: usize,
    },
    Heal {
        partition: u64,
    },
    /// The faults are over: every node up, every link healed.
    Quiet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Node(usize),
    Client(usize),
}

/// A directed link's state: its connection epoch (bumped when either end
/// crashes: the connection resets), when its last frame arrives (TCP keeps
/// order), and frames waiting while the link is cut or the receiver down.
#[derive(Default)]
struct Link {
    epoch: u64,
    last_arrival: Us,
    waiting: VecDeque<Vec<u8>>,
}

struct InFlight<P: Protocol> {
    records: Vec<Record>,
    snapshot: Option<(u64, P::Storage)>,
}

struct Node<P: Protocol> {
    actor: P,
    fs: SimFs,
    dir: PathBuf,
    core: Option<Core<P, KeepGhosts>>,
    store: Option<FileStore<SimFs>>,
    /// The state when it went down (properties still see it, as in the
    /// model).
    last_state: Option<P::State>,
    incarnation: u64,
    /// Global time of this incarnation's start (its clock's zero).
    boot: Us,
    /// Clock rate in parts per million of the simulation's (1e6 = exact).
    rate_ppm: u64,
    wake_at: Option<Us>,
    in_flight: Option<InFlight<P>>,
    queued: VecDeque<Commit<P>>,
    /// Sessions whose requests came over a connection to this incarnation.
    routes: BTreeSet<u64>,
    stats: Arc<NodeStats>,
    /// A flipped bit the node must refuse at its next start.
    flipped: Option<(PathBuf, u64, u8)>,
}

struct SimClient<P: Protocol> {
    policy: Policy<P>,
    /// The workload, run over and over while the faults last and at
    /// least `rounds` times.
    workload: Vec<P::Request>,
    /// Requests invoked so far.
    next_op: usize,
    call: Option<(Call, P::Request)>,
    /// The attempt in progress: number, server, tag.
    attempt: Option<(u64, usize, Tag)>,
    attempts: u64,
    sent: u32,
    abandoned: u32,
    /// Replies that arrived on a connection not in use (read when the
    /// client next uses it, as the runtime client would).
    parked: BTreeMap<usize, Vec<Response<P::Reply>>>,
    /// When each op was invoked.
    invoked: Vec<Us>,
}

pub(crate) struct World<P: Protocol> {
    opts: Options,
    now: Us,
    seq: u64,
    queue: BTreeMap<(Us, u64), Ev>,
    rng: Rng,
    nodes: Vec<Node<P>>,
    clients: Vec<SimClient<P>>,
    links: BTreeMap<(Endpoint, Endpoint), Link>,
    /// Cut links (both directions listed), with the partition's number.
    cut: BTreeMap<(usize, usize), u64>,
    partitions: u64,
    quiet: bool,
    history: History<P::Request, P::Reply>,
    invariants: Vec<usize>,
    stats: Stats,
    /// Node steps so far.
    steps: u64,
    trace: Vec<String>,
    verdict: Verdict,
    limits: Limits,
    cluster: u64,
    servers: u64,
}

/// Runs one simulation; client `i` runs `workloads[i]` (`rounds` times).
pub fn run<P: Protocol>(opts: &Options, workloads: &[Vec<P::Request>]) -> Result<Outcome, String> {
    let mut w = World::<P>::new(opts.clone(), workloads)?;
    w.run();
    Ok(Outcome {
        seed: opts.seed,
        verdict: w.verdict.clone(),
        stats: w.stats.clone(),
        trace: std::mem::take(&mut w.trace),
    })
}

/// The global state as the spec's properties see it.
struct Snapshot<'a, P: Protocol> {
    states: Vec<std::borrow::Cow<'a, P::State>>,
    down: Vec<bool>,
}

impl<P: Protocol> View<P> for Snapshot<'_, P> {
    fn actor_count(&self) -> usize {
        self.states.len()
    }
    fn actor_state(&self, index: usize) -> &P::State {
        &self.states[index]
    }
    fn is_crashed(&self, index: usize) -> bool {
        self.down.get(index).copied().unwrap_or(false)
    }
}

impl<P: Protocol> World<P> {
    fn new(opts: Options, workloads: &[Vec<P::Request>]) -> Result<World<P>, String> {
        let mut layout = Layout::new(&opts.servers, opts.clients);
        layout.sessions_max = opts.sessions_max;
        let servers = layout.servers().len() as u64;
        let mut rng = Rng::new(opts.seed ^ 0x5157_0000_0000_0001);
        let mut limits = Limits {
            snapshot_log_bytes_min: opts.snapshot_log_bytes,
            ..Limits::default()
        };
        limits.unsafe_release_before_fsync = opts.bugs.release_before_fsync;
        let serving: Vec<Id> = layout.serving(P::roles());
        let mut nodes = Vec::new();
        for id in layout.servers() {
            let actor = P::server(id, &layout).ok_or_else(|| format!("no role for server {id:?}"))?;
            let rate_ppm = if opts.clock {
                950_000 + rng.below(100_001)
            } else {
                1_000_000
            };
            nodes.push(Node {
                actor,
                fs: SimFs::new(),
                dir: PathBuf::from(format!("/sim/node-{}", usize::from(id))),
                core: None,
                store: None,
                last_state: None,
                incarnation: 0,
                boot: 0,
                rate_ppm,
                wake_at: None,
                in_flight: None,
                queued: VecDeque::new(),
                routes: BTreeSet::new(),
                stats: Arc::new(NodeStats::default()),
                flipped: None,
            });
        }
        let mut clients = Vec::new();
        for c in 0..opts.clients as usize {
            let workload: Vec<P::Request> = workloads.get(c).cloned().unwrap_or_default();
            let client_opts = ClientOptions {
                attempt_timeout_ms: 250,
                attempts_max: 6,
                call_timeout_ms: 4_000,
                redirect_pause_ms: 20,
                ..ClientOptions::default()
            };
            let policy = Policy::new(serving.clone(), client_opts, rng.next_u64(), 1 + rng.below(1 << 40))
                .map_err(|e| e.to_string())?;
            clients.push(SimClient {
                policy,
                workload,
                next_op: 0,
                call: None,
                attempt: None,
                attempts: 0,
                sent: 0,
                abandoned: 0,
                parked: BTreeMap::new(),
                invoked: Vec::new(),
            });
        }
        let invariants = P::properties()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.kind == PropertyKind::Invariant)
            .map(|(i, _)| i)
            .collect();
        let clients_n = clients.len();
        Ok(World {
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            rng,
            nodes,
            clients,
            links: BTreeMap::new(),
            cut: BTreeMap::new(),
            partitions: 0,
            quiet: false,
            history: History::new(clients_n),
            invariants,
            stats: Stats::default(),
            steps: 0,
            trace: Vec::new(),
            verdict: Verdict::Ok,
            limits,
            cluster: 0x5eed_c105 ^ opts.seed,
            servers,
            opts,
        })
    }

    fn at(&mut self, t: Us, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t.max(self.now), self.seq), ev);
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if self.opts.trace {
            let line = format!("{:>10.3} ms  {}", self.now as f64 / 1000.0, f());
            self.trace.push(line);
        }
    }

    fn fail(&mut self, what: String) {
        if self.verdict == Verdict::Ok {
            self.log(|| format!("VIOLATION: {what}"));
            self.verdict = Verdict::Violation { what, at_us: self.now };
        }
    }

    fn run(&mut self) {
        for i in 0..self.nodes.len() {
            self.start_node(i);
        }
        for c in 0..self.clients.len() {
            let t = self.rng.below(20 * MS);
            self.at(t, Ev::ClientNext { client: c });
        }
        if self.opts.crash || self.opts.partition || self.opts.disk {
            let t = self.next_fault_gap();
            self.at(t, Ev::Fault);
        }
        self.at(self.opts.fault_ms * MS, Ev::Quiet);
        let end = (self.opts.fault_ms + self.opts.quiet_ms) * MS;
        while self.verdict == Verdict::Ok {
            if self.quiet && self.all_clients_done() {
                break;
            }
            let Some((&(t, s), _)) = self.queue.iter().next() else {
                break;
            };
            if t > end {
                break;
            }
            let Some(ev) = self.queue.remove(&(t, s)) else { break };
            self.now = t;
            self.stats.events += 1;
            if self.stats.events > self.opts.events_max {
                let what = format!(
                    "more than {} events by {:.3} simulated ms (a livelock?)",
                    self.opts.events_max,
                    t as f64 / 1000.0
                );
                self.fail(what);
                break;
            }
            self.event(ev);
        }
        self.stats.virtual_us = self.now;
        if self.verdict != Verdict::Ok {
            return;
        }
        // The end state, whatever the sampling.
        self.steps = self.opts.invariants_every.max(1) - 1;
        self.check_invariants();
        if self.verdict != Verdict::Ok {
            return;
        }
        if !self.all_clients_done() {
            let waiting: Vec<String> = (0..self.clients.len())
                .filter(|&i| !self.client_done(i))
                .map(|i| format!("client {i} at request {}", self.clients[i].next_op))
                .collect();
            self.fail(format!(
                "no progress: {} ms after the faults stopped, {} are not done",
                self.opts.quiet_ms,
                waiting.join(", ")
            ));
            return;
        }
        self.check_linearizable();
    }

    /// Whether client `c` has nothing more to do: no call in flight, and
    /// its rounds done, and the faults over.
    fn client_done(&self, c: usize) -> bool {
        let cl = &self.clients[c];
        cl.call.is_none() && (cl.workload.is_empty() || (self.quiet && self.rounds_done(c)))
    }

    fn rounds_done(&self, c: usize) -> bool {
        let cl = &self.clients[c];
        let n = cl.workload.len().max(1);
        cl.next_op >= n * self.opts.rounds as usize && cl.next_op.is_multiple_of(n)
    }

    fn all_clients_done(&self) -> bool {
        (0..self.clients.len()).all(|c| self.client_done(c))
    }

    fn next_fault_gap(&mut self) -> Us {
        let (lo, hi) = self.opts.fault_gap_ms;
        self.now + lo * MS + self.rng.below((hi.saturating_sub(lo) + 1) * MS)
    }

    fn event(&mut self, ev: Ev) {
        match ev {
            Ev::ToNode {
                node,
                from,
                epoch,
                frame,
            } => self.at_node(node, from, epoch, frame),
            Ev::ToClient {
                client,
                server,
                epoch,
                frame,
            } => self.at_client(client, server, epoch, frame),
            Ev::Wake { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].core.is_some() {
                    self.nodes[node].wake_at = None;
                    self.step_node(node, |_, _| {});
                }
            }
            Ev::FsyncDone { node, incarnation } => {
                if self.nodes[node].incarnation == incarnation && self.nodes[node].core.is_some() {
                    self.fsync_done(node);
                }
            }
            Ev::ClientNext { client } => self.client_next(client),
            Ev::ClientSend { client, attempt } => self.client_send(client, attempt),
            Ev::ClientTimeout {
                client,
                attempt,
                refused,
            } => {
                if self.clients[client].attempt.is_some_and(|(a, _, _)| a == attempt) {
                    self.log(|| format!("client {client}: attempt {attempt} failed (refused: {refused})"));
                    let why = if refused { "connection refused" } else { "timed out" };
                    self.client_attempted(
                        client,
                        Attempt::Failed {
                            why: why.into(),
                            quick: refused,
                        },
                    );
                }
            }
            Ev::Fault => self.fault(),
            Ev::Restart { node } => {
                if self.nodes[node].core.is_none() {
                    self.start_node(node);
                }
            }
            Ev::Heal { partition } => self.heal(partition),
            Ev::Quiet => {
                self.quiet = true;
                self.log(|| "the faults stop: every link heals, every node restarts".into());
                let all: Vec<u64> = self
                    .cut
                    .values()
                    .copied()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for p in all {
                    self.heal(p);
                }
                for i in 0..self.nodes.len() {
                    if self.nodes[i].core.is_none() {
                        self.start_node(i);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- nodes

    fn identity(&self, node: usize) -> Identity {
        Identity::of::<P>(self.cluster, node as u64)
    }

    fn ctx(&self, node: usize) -> Ctx {
        Ctx {
            cluster: self.cluster,
            id: node as u64,
            servers: self.servers,
            limits: self.limits.clone(),
            // The simulator has no sockets: no TLS.
            tls: None,
            tls_refused: Default::default(),
            admin: None,
            peer_hellos: Default::default(),
        }
    }

    /// The node's clock now.
    fn local(&self, node: usize) -> Duration {
        let n = &self.nodes[node];
        let us = (self.now - n.boot) as u128 * n.rate_ppm as u128 / 1_000_000;
        Duration::from_micros(us as u64)
    }

    /// The first global time at which the node's clock reads `local` or
    /// later (rounded up: the node's clock reads whole microseconds).
    fn global(&self, node: usize, local: Duration) -> Us {
        let n = &self.nodes[node];
        let local_us = local.as_nanos().div_ceil(1000);
        let us = (local_us * 1_000_000).div_ceil(n.rate_ppm as u128);
        n.boot + us as u64
    }

    fn start_node(&mut self, i: usize) {
        let id = Id::from(i);
        let identity = self.identity(i);
        let n = &mut self.nodes[i];
        n.fs.create_dir_all(&n.dir).expect("a simulated directory");
        let recovered = storage::recover_in::<P, SimFs>(&n.fs, &n.dir, &identity, &n.actor, id, true);
        if let Some((path, off, bit)) = n.flipped.take() {
            // A flipped bit must be refused; then the "operator" restores
            // the file and the node starts on the repaired data.
            match recovered {
                Err(RecoverError::Corrupt { .. }) => {
                    self.stats.flips_refused += 1;
                    self.log(|| format!("node {i} refuses its data (a flipped bit in {})", path.display()));
                    let n = &mut self.nodes[i];
                    n.fs.flip(&path, off, bit);
                    return self.start_node(i);
                }
                Ok(_) => {
                    return self.fail(format!(
                        "node {i} started on data with a flipped bit ({} byte {off}) instead of refusing it",
                        path.display()
                    ))
                }
                Err(e) => return self.fail(format!("node {i}: a flipped bit gave an unexpected error: {e}")),
            }
        }
        let (recovered, store) = match recovered {
            Ok((r, Some(s))) => (r, s),
            Ok((_, None)) => return self.fail(format!("node {i}: recovery gave no store")),
            Err(e) => {
                return self.fail(format!(
                    "node {i} cannot start on the data it wrote itself (nothing damaged it): {e}"
                ))
            }
        };
        let mut store = store;
        if self.opts.bugs.snapshot_without_fsync {
            store.unsafe_skip_snapshot_fsync();
        }
        let seed = self.opts.seed ^ ((i as u64) << 32) ^ self.nodes[i].incarnation.wrapping_mul(0x9e37);
        let ctx = self.ctx(i);
        let n = &mut self.nodes[i];
        n.incarnation += 1;
        n.boot = self.now;
        n.routes.clear();
        n.in_flight = None;
        n.queued.clear();
        n.wake_at = None;
        let torn = recovered.torn_tail.is_some();
        let core = Core::<P, KeepGhosts>::start(
            n.actor.clone(),
            id,
            ctx,
            seed,
            &recovered,
            n.stats.clone(),
            Duration::ZERO,
        );
        n.core = Some(core);
        n.store = Some(store);
        n.last_state = None;
        if n.incarnation > 1 {
            self.stats.restarts += 1;
        }
        let (lsn, snap) = (recovered.last_lsn, recovered.snapshot_lsn);
        self.log(|| format!("node {i} starts (records up to {lsn}, snapshot at {snap}, torn tail cut: {torn})"));
        // Frames that waited for it go out now: the senders reconnect, as
        // a real writer does when the restarted node's hello reaches it
        // (`connection::peer_writer`).
        let waiting: Vec<(Endpoint, Endpoint)> = self
            .links
            .iter()
            .filter(|((_, to), l)| *to == Endpoint::Node(i) && !l.waiting.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for (from, to) in waiting {
            self.flush_link(from, to);
        }
        self.after_node(i);
    }

    /// Runs `f` on the node's core, then its due timers and local work,
    /// then routes everything it produced and checks the invariants.
    fn step_node(&mut self, i: usize, f: impl FnOnce(&mut Core<P, KeepGhosts>, Duration)) {
        let now = self.local(i);
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        f(core, now);
        core.tick(now);
        self.after_node(i);
    }

    fn after_node(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let commits: Vec<Commit<P>> = std::iter::from_fn(|| core.take_commit()).collect();
        let outs = core.take_outputs();
        let failed = core.failed().map(String::from);
        let busy = core.busy();
        let deadline = core.next_deadline();
        self.nodes[i].queued.extend(commits);
        self.start_fsync(i);
        for out in outs {
            self.send_out(i, out);
        }
        if let Some(e) = failed {
            // A handler error is fail-stop on the runtime, and a violation
            // of `handler_error` in the checker.
            return self.fail(format!("node {i}: a handler failed: {e}"));
        }
        let wake = if busy {
            Some(self.now)
        } else {
            deadline.map(|d| self.global(i, d))
        };
        if let Some(t) = wake {
            if self.nodes[i].wake_at.is_none_or(|w| t < w) {
                self.nodes[i].wake_at = Some(t);
                let incarnation = self.nodes[i].incarnation;
                self.at(t, Ev::Wake { node: i, incarnation });
            }
        }
        self.check_invariants();
    }

    fn start_fsync(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.in_flight.is_some() || n.queued.is_empty() {
            return;
        }
        // Group commit: everything queued shares one fsync.
        let mut records = Vec::new();
        let mut snapshot = None;
        while let Some(c) = n.queued.pop_front() {
            records.extend(c.records);
            if c.snapshot.is_some() {
                snapshot = c.snapshot;
                // The snapshot covers the records before it; later ones
                // wait for the next fsync.
                break;
            }
        }
        n.in_flight = Some(InFlight { records, snapshot });
        let incarnation = n.incarnation;
        let t = self.now + 100 + self.rng.below(2 * MS);
        self.at(t, Ev::FsyncDone { node: i, incarnation });
    }

    fn fsync_done(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let Some(f) = n.in_flight.take() else { return };
        let Some(store) = n.store.as_mut() else { return };
        let last = f.records.last().map(|r| r.lsn);
        let mut result = store.append(&f.records);
        let mut snapshot_bytes = None;
        if result.is_ok() {
            if let Some((lsn, storage)) = &f.snapshot {
                match postcard::to_stdvec(storage) {
                    Ok(payload) => {
                        result = store.snapshot(*lsn, &payload);
                        snapshot_bytes = Some(payload.len() as u64);
                    }
                    Err(e) => result = Err(std::io::Error::other(e.to_string())),
                }
            }
        }
        match result {
            Ok(()) => {
                if let Some(b) = snapshot_bytes {
                    self.stats.snapshots += 1;
                    let lsn = f.snapshot.as_ref().map_or(0, |s| s.0);
                    self.log(|| format!("node {i} snapshot at record {lsn} ({b} bytes)"));
                }
                let core = self.nodes[i].core.as_mut().expect("up");
                if let Some(l) = last {
                    core.durable(l);
                }
                if let Some(b) = snapshot_bytes {
                    core.snapshot_taken(b);
                }
                self.start_fsync(i);
                self.step_node(i, |_, _| {});
            }
            Err(e) => {
                // The runtime's committer reports the failure and the node
                // stops without releasing anything that depended on it.
                self.stats.disk_failures += 1;
                self.log(|| format!("node {i}: disk failure ({e}); the node stops"));
                self.crash_node(i, false);
                self.schedule_restart(i);
            }
        }
    }

    /// The node's process dies. `torn`: an fsync in flight may leave a
    /// torn prefix of its records.
    fn crash_node(&mut self, i: usize, torn: bool) {
        let n = &mut self.nodes[i];
        let Some(core) = n.core.take() else { return };
        n.last_state = Some(core.state().clone());
        n.store = None;
        let in_flight = n.in_flight.take();
        n.queued.clear();
        n.wake_at = None;
        n.routes.clear();
        // A torn write: some of the in-flight records' bytes reached the
        // segment without an fsync.
        let mut tore = false;
        if torn {
            if let Some(f) = in_flight.filter(|f| !f.records.is_empty()) {
                let mut buf = Vec::new();
                for r in &f.records {
                    storage::encode_record(&mut buf, r);
                }
                if let Some(seg) = last_segment(&n.fs, &n.dir) {
                    if let Ok(mut file) = n.fs.open(&seg) {
                        let _ = file.append(&buf);
                        tore = true;
                    }
                }
            }
        }
        let (a, b) = (self.rng.next_u64(), self.rng.below(3));
        self.nodes[i].fs.crash(|_, written| match (tore, b) {
            (false, _) | (true, 0) => TornWrite::Lost,
            (true, 1) => TornWrite::Prefix(a % (written + 1)),
            _ => TornWrite::ZeroedPage(a % (written + 1)),
        });
        if tore {
            self.stats.torn_writes += 1;
        }
        // Its connections reset. Peer messages on the way to it: the ones
        // it had read (acknowledged) are lost with it, the rest its peers
        // resend once it is back (the links are reliable between live
        // processes). Client frames on the way to it are lost. Frames on
        // the way from it arrive up to a random point (what the kernel had
        // already sent); its unacknowledged messages die with it.
        let mut inbound: Vec<((Us, u64), usize)> = self
            .queue
            .iter()
            .filter_map(|(k, ev)| match ev {
                Ev::ToNode {
                    node,
                    from: Endpoint::Node(src),
                    ..
                } if *node == i => Some((*k, *src)),
                _ => None,
            })
            .collect();
        inbound.sort();
        let read = self.rng.below(inbound.len() as u64 + 1) as usize;
        let mut resend: BTreeMap<usize, VecDeque<Vec<u8>>> = BTreeMap::new();
        for (n, (k, src)) in inbound.into_iter().enumerate() {
            if let Some(Ev::ToNode { frame, .. }) = self.queue.remove(&k) {
                if n >= read {
                    resend.entry(src).or_default().push_back(frame);
                }
            }
        }
        // Older than anything waiting on the link (a partition may have
        // held later ones back): they go first.
        for (src, mut frames) in resend {
            let l = self.link(Endpoint::Node(src), Endpoint::Node(i));
            frames.extend(l.waiting.drain(..));
            l.waiting = frames;
        }
        for l in self.links.iter_mut().filter(|((_, to), _)| *to == Endpoint::Node(i)) {
            l.1.epoch += 1;
        }
        self.bump_outgoing(i);
        for c in 0..self.clients.len() {
            self.clients[c].parked.remove(&i);
        }
        self.log(|| format!("node {i} crashes{}", if tore { " (a torn write)" } else { "" }));
    }

    /// Drops, per outgoing link of a crashed node, the frames after a
    /// random point.
    fn bump_outgoing(&mut self, i: usize) {
        let me = Endpoint::Node(i);
        let mut cuts = Vec::new();
        for (k, ev) in self.queue.iter() {
            let from = match ev {
                Ev::ToNode { from, .. } => Some(*from),
                Ev::ToClient { server, .. } => Some(Endpoint::Node(*server)),
                _ => None,
            };
            if from == Some(me) {
                cuts.push(*k);
            }
        }
        let keep = self.rng.below(cuts.len() as u64 + 1) as usize;
        for k in cuts.into_iter().skip(keep) {
            self.queue.remove(&k);
        }
        for l in self.links.iter_mut().filter(|((from, _), _)| *from == me) {
            l.1.waiting.clear();
        }
    }

    fn schedule_restart(&mut self, i: usize) {
        let (lo, hi) = self.opts.down_ms;
        let t = self.now + lo * MS + self.rng.below((hi.saturating_sub(lo) + 1) * MS);
        self.at(t, Ev::Restart { node: i });
    }

    // ---------------------------------------------------------------- network

    fn link(&mut self, from: Endpoint, to: Endpoint) -> &mut Link {
        self.links.entry((from, to)).or_default()
    }

    fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cut.contains_key(&(a, b))
    }

    /// Sends a frame on a link: it arrives after a latency, in order, unless
    /// the link is cut or the receiver is down (then it waits).
    fn transmit(&mut self, from: Endpoint, to: Endpoint, frame: Vec<u8>) {
        self.stats.frames += 1;
        let blocked = match (from, to) {
            (Endpoint::Node(a), Endpoint::Node(b)) => self.is_cut(a, b) || self.nodes[b].core.is_none(),
            _ => false,
        };
        if blocked {
            let max = self.limits.peer_queue_len_max;
            let l = self.link(from, to);
            if l.waiting.len() < max {
                l.waiting.push_back(frame);
            }
            return;
        }
        let latency = 50 + self.rng.below(1_500);
        let now = self.now;
        let l = self.link(from, to);
        let t = (now + latency).max(l.last_arrival + 1);
        l.last_arrival = t;
        let epoch = l.epoch;
        match to {
            Endpoint::Node(node) => self.at(
                t,
                Ev::ToNode {
                    node,
                    from,
                    epoch,
                    frame,
                },
            ),
            Endpoint::Client(client) => {
                let Endpoint::Node(server) = from else { return };
                self.at(
                    t,
                    Ev::ToClient {
                        client,
                        server,
                        epoch,
                        frame,
                    },
                )
            }
        }
    }

    /// Sends what waited on a link, once it may.
    fn flush_link(&mut self, from: Endpoint, to: Endpoint) {
        let frames: Vec<Vec<u8>> = self.link(from, to).waiting.drain(..).collect();
        // TCP resumes at its next retransmission.
        let resume = self.rng.below(300 * MS);
        let l = self.link(from, to);
        l.last_arrival = l.last_arrival.max(resume);
        for f in frames {
            self.transmit(from, to, f);
        }
    }

    fn send_out(&mut self, i: usize, out: Out) {
        match out {
            // The link layer (numbering, acks, resends) is the transport's;
            // the simulated network delivers what it guarantees: in order,
            // once, between live processes.
            Out::Peer { to, msg } => self.transmit(Endpoint::Node(i), Endpoint::Node(to as usize), msg),
            Out::Client { session, frame } => {
                // Routed to the connection that last carried a request of
                // the session to this node, if there is one.
                if !self.nodes[i].routes.contains(&session) {
                    return;
                }
                if let Some(c) = self.clients.iter().position(|x| x.policy.session().id == session) {
                    self.transmit(Endpoint::Node(i), Endpoint::Client(c), frame);
                }
            }
        }
    }

    fn at_node(&mut self, node: usize, from: Endpoint, epoch: u64, bytes: Vec<u8>) {
        if self.link(from, Endpoint::Node(node)).epoch != epoch || self.nodes[node].core.is_none() {
            return;
        }
        if let Endpoint::Node(src) = from {
            let msg: P::Msg = match frame::payload(&bytes) {
                Ok(m) => m,
                Err(e) => return self.fail(format!("node {node}: a peer message does not decode: {e}")),
            };
            self.log(|| format!("node {node} <- node {src}: {}", brief(&msg)));
            self.stats.handlers += 1;
            return self.step_node(node, |core, now| core.peer_message(Id::from(src), msg, now));
        }
        let max = self.limits.frame_payload_bytes_max;
        let f = match frame::decode(&bytes, max) {
            Ok(Some((f, _))) => f,
            other => {
                return self.fail(format!(
                    "node {node}: a frame the runtime encoded does not decode: {other:?}"
                ))
            }
        };
        match (from, f.kind) {
            (Endpoint::Client(c), Kind::Request) => {
                let (tag, request): (Tag, P::Request) = match frame::payload(&f.payload) {
                    Ok(x) => x,
                    Err(e) => return self.fail(format!("node {node}: a request does not decode: {e}")),
                };
                if let Err(why) = check_tag(&tag) {
                    return self.fail(format!("client {c} sent a tag the node refuses: {why}"));
                }
                self.nodes[node].routes.insert(tag.session.id);
                self.log(|| format!("node {node} <- client {c}: {tag:?} {}", brief(&request)));
                self.stats.handlers += 1;
                let msg = P::request_msg(tag, request);
                self.step_node(node, |core, now| core.client_request(msg, now));
            }
            (_, k) => self.fail(format!("node {node}: an unexpected {k:?} frame")),
        }
    }

    // ---------------------------------------------------------------- faults

    fn fault(&mut self) {
        if self.quiet {
            return;
        }
        let mut kinds = Vec::new();
        if self.opts.crash {
            kinds.extend(["crash", "crash_leader"]);
        }
        if self.opts.partition && self.nodes.len() > 1 {
            kinds.extend(["isolate", "bridge"]);
        }
        if self.opts.disk {
            kinds.extend(["torn", "flip", "disk_fail"]);
        }
        if !kinds.is_empty() {
            let k = kinds[self.rng.below(kinds.len() as u64) as usize];
            let up: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].core.is_some())
                .collect();
            let down = self.nodes.len() - up.len();
            // At most a minority down at once (the faults a cluster is
            // built to survive), and always one node of a small cluster.
            let may_down = down < ((self.nodes.len() - 1) / 2).max(1);
            let pick = |w: &mut Self, from: &[usize]| from[w.rng.below(from.len() as u64) as usize];
            match k {
                "crash" | "crash_leader" | "torn" | "flip" if may_down && !up.is_empty() => {
                    let i = if k == "crash_leader" {
                        self.busiest(&up)
                    } else {
                        pick(self, &up)
                    };
                    self.stats.crashes += 1;
                    self.crash_node(i, k == "torn");
                    if k == "flip" {
                        self.flip(i);
                    }
                    self.schedule_restart(i);
                }
                "disk_fail" if may_down && !up.is_empty() => {
                    let i = pick(self, &up);
                    self.log(|| format!("node {i}: its disk starts failing"));
                    self.nodes[i].fs.fail();
                }
                "isolate" => {
                    let i = pick(self, &(0..self.nodes.len()).collect::<Vec<_>>());
                    let others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
                    self.partition(others.iter().map(|&j| (i, j)).collect());
                }
                "bridge" if self.nodes.len() >= 3 => {
                    let a = pick(self, &(0..self.nodes.len()).collect::<Vec<_>>());
                    let others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != a).collect();
                    let b = pick(self, &others);
                    self.partition(vec![(a, b)]);
                }
                _ => {}
            }
        }
        let t = self.next_fault_gap();
        self.at(t, Ev::Fault);
    }

    /// The node that handled the most events in its incarnation: in a
    /// leader-based protocol, most often the leader.
    fn busiest(&self, up: &[usize]) -> usize {
        up.iter()
            .copied()
            .max_by_key(|&i| self.nodes[i].stats.released.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(up[0])
    }

    fn partition(&mut self, pairs: Vec<(usize, usize)>) {
        self.partitions += 1;
        self.stats.partitions += 1;
        let p = self.partitions;
        for &(a, b) in &pairs {
            self.cut.insert((a, b), p);
            self.cut.insert((b, a), p);
        }
        self.log(|| format!("partition {p}: cut {pairs:?}"));
        let t = self.now + 100 * MS + self.rng.below(1_500 * MS);
        self.at(t, Ev::Heal { partition: p });
    }

    fn heal(&mut self, p: u64) {
        let pairs: Vec<(usize, usize)> = self.cut.iter().filter(|(_, q)| **q == p).map(|(k, _)| *k).collect();
        if pairs.is_empty() {
            return;
        }
        for k in &pairs {
            self.cut.remove(k);
        }
        self.log(|| format!("partition {p} heals"));
        for (a, b) in pairs {
            if self.nodes[b].core.is_some() {
                self.flush_link(Endpoint::Node(a), Endpoint::Node(b));
            }
        }
    }

    /// Flips a bit of a down node's data: in a snapshot, or in a record
    /// that is not its segment's last (recovery cuts a damaged last record
    /// as a torn write, by design). The next start must refuse the data.
    fn flip(&mut self, i: usize) {
        let n = &self.nodes[i];
        let mut targets: Vec<(PathBuf, u64)> = Vec::new();
        let files = n.fs.durable_files(&n.dir);
        // Recovery reads the newest snapshot only.
        let newest = files
            .iter()
            .filter(|(name, _)| name.starts_with("snap-") && name.ends_with(".snap"))
            .map(|(name, _)| name.clone())
            .max();
        for (name, len) in files {
            let path = n.dir.join(&name);
            if Some(&name) == newest.as_ref() && len > 0 {
                targets.push((path, len));
            } else if name.starts_with("wal-") && name.ends_with(".log") {
                if let Some(end) = records_but_last(&n.fs, &path) {
                    if end > storage::SEGMENT_HEADER_LEN {
                        targets.push((path, end));
                    }
                }
            }
        }
        if targets.is_empty() {
            return;
        }
        let (path, end) = targets[self.rng.below(targets.len() as u64) as usize].clone();
        let start = if path.to_string_lossy().ends_with(".log") {
            storage::SEGMENT_HEADER_LEN
        } else {
            0
        };
        let off = start + self.rng.below(end - start);
        let bit = self.rng.below(8) as u8;
        if self.nodes[i].fs.flip(&path, off, bit) {
            self.log(|| format!("node {i}: bit {bit} of byte {off} of {} flips", path.display()));
            self.nodes[i].flipped = Some((path, off, bit));
        }
    }

    // ---------------------------------------------------------------- clients

    fn client_next(&mut self, c: usize) {
        if self.clients[c].call.is_some() || self.clients[c].workload.is_empty() {
            return;
        }
        if self.quiet && self.rounds_done(c) {
            return;
        }
        let cl = &mut self.clients[c];
        let request = cl.workload[cl.next_op % cl.workload.len()].clone();
        cl.next_op += 1;
        cl.sent += 1;
        cl.invoked.push(self.now);
        self.stats.ops += 1;
        self.history.invoke(c, request.clone());
        let (call, d) = cl.policy.begin(self.now / MS);
        cl.call = Some((call, request.clone()));
        self.log(|| format!("client {c} invokes {}", brief(&request)));
        self.client_decision(c, d);
    }

    fn client_decision(&mut self, c: usize, d: Decision<P::Reply>) {
        match d {
            Decision::Send { server, tag, pause_ms } => {
                self.clients[c].attempts += 1;
                let attempt = self.clients[c].attempts;
                self.clients[c].attempt = Some((attempt, server, tag));
                self.at(self.now + pause_ms * MS, Ev::ClientSend { client: c, attempt });
            }
            Decision::Done(result) => {
                let cl = &mut self.clients[c];
                cl.call = None;
                cl.attempt = None;
                match result {
                    Ok((reply, from)) => {
                        self.stats.ok += 1;
                        self.log(|| format!("client {c} <- {}: {}", usize::from(from), brief(&reply)));
                        self.history.ret(c, reply);
                    }
                    Err(ClientError::Unknown { .. }) => {
                        self.stats.unknown += 1;
                        self.clients[c].abandoned += 1;
                        self.log(|| format!("client {c}: outcome unknown"));
                        self.history.abandon(c);
                        // After the faults (and a settling time) every
                        // request must be answered.
                        let invoked = self.clients[c].invoked.last().copied().unwrap_or(0);
                        if invoked > (self.opts.fault_ms + self.opts.quiet_ms / 2) * MS {
                            return self.fail(format!(
                                "no progress: client {c}'s request, invoked {} ms after the faults stopped, went unanswered",
                                (invoked - self.opts.fault_ms * MS) / MS
                            ));
                        }
                    }
                    Err(e) => return self.fail(format!("client {c}: {e} (a correct client never gets this)")),
                }
                let t = self.now + 5 * MS + self.rng.below(35 * MS);
                self.at(t, Ev::ClientNext { client: c });
            }
        }
    }

    fn client_send(&mut self, c: usize, attempt: u64) {
        let Some((a, server, tag)) = self.clients[c].attempt else {
            return;
        };
        if a != attempt {
            return;
        }
        // A reply already waiting on that connection is read first.
        if let Some(parked) = self.clients[c].parked.get_mut(&server) {
            if let Some(k) = parked.iter().position(|r| response_tag(r) == Some(tag)) {
                let r = parked.remove(k);
                return self.client_response(c, r);
            }
        }
        let Some((_, request)) = &self.clients[c].call else {
            return;
        };
        if self.nodes[server].core.is_none() {
            // Connection refused, at once.
            self.at(
                self.now + 200,
                Ev::ClientTimeout {
                    client: c,
                    attempt,
                    refused: true,
                },
            );
            return;
        }
        let bytes = match frame::encode(
            Kind::Request,
            self.cluster,
            0,
            &(tag, request),
            self.limits.frame_payload_bytes_max,
        ) {
            Ok(b) => b,
            Err(e) => return self.fail(format!("client {c}: cannot encode a request: {e}")),
        };
        self.transmit(Endpoint::Client(c), Endpoint::Node(server), bytes);
        let timeout = self.clients[c].policy.options().attempt_timeout_ms;
        self.at(
            self.now + timeout * MS,
            Ev::ClientTimeout {
                client: c,
                attempt,
                refused: false,
            },
        );
    }

    fn at_client(&mut self, c: usize, server: usize, epoch: u64, bytes: Vec<u8>) {
        if self.link(Endpoint::Node(server), Endpoint::Client(c)).epoch != epoch {
            return;
        }
        let max = self.limits.frame_payload_bytes_max;
        let Ok(Some((f, _))) = frame::decode(&bytes, max) else {
            return self.fail(format!("client {c}: a response does not decode"));
        };
        let Ok(r) = frame::payload::<Response<P::Reply>>(&f.payload) else {
            return self.fail(format!("client {c}: a response payload does not decode"));
        };
        match self.clients[c].attempt {
            Some((_, s, tag)) if s == server && response_tag(&r) == Some(tag) => self.client_response(c, r),
            // Another connection's, or a late one: it waits on its
            // connection (a blocking client reads one at a time).
            _ => self.clients[c].parked.entry(server).or_default().push(r),
        }
    }

    fn client_response(&mut self, c: usize, r: Response<P::Reply>) {
        let outcome = match r {
            Response::Reply(_, reply) => Attempt::Reply(reply),
            Response::Redirect(_, hint) => Attempt::Redirect(hint.map(|h| Id::from(h as usize))),
            Response::Invalid(_, why) => Attempt::Invalid(why),
        };
        self.client_attempted(c, outcome);
    }

    fn client_attempted(&mut self, c: usize, outcome: Attempt<P::Reply>) {
        let Some((_, server, tag)) = self.clients[c].attempt.take() else {
            return;
        };
        let now_ms = self.now / MS;
        let cl = &mut self.clients[c];
        let Some((call, _)) = cl.call.as_mut() else { return };
        let d = cl.policy.attempted(call, server, tag, outcome, now_ms);
        self.client_decision(c, d);
    }

    // ---------------------------------------------------------------- checks

    fn snapshot(&self) -> Snapshot<'_, P> {
        let mut states = Vec::new();
        let mut down = Vec::new();
        for n in &self.nodes {
            match (&n.core, &n.last_state) {
                (Some(core), _) => {
                    states.push(std::borrow::Cow::Borrowed(core.state()));
                    down.push(false);
                }
                (None, Some(s)) => {
                    states.push(std::borrow::Cow::Borrowed(s));
                    down.push(true);
                }
                (None, None) => {
                    states.push(std::borrow::Cow::Owned(P::State::default()));
                    down.push(true);
                }
            }
        }
        for c in &self.clients {
            states.push(std::borrow::Cow::Owned(P::client_node_state(ClientState {
                sent: c.sent,
                abandoned: c.abandoned,
                caller: c.policy.caller().clone(),
            })));
            down.push(false);
        }
        Snapshot { states, down }
    }

    fn check_invariants(&mut self) {
        if self.verdict != Verdict::Ok || self.invariants.is_empty() {
            return;
        }
        self.steps += 1;
        if !self.steps.is_multiple_of(self.opts.invariants_every.max(1)) {
            return;
        }
        self.stats.invariant_checks += 1;
        let view = self.snapshot();
        let mut broken = None;
        for &p in &self.invariants {
            match P::eval(p, &view) {
                Ok(true) => {}
                Ok(false) => {
                    broken = Some(format!("invariant {} is violated", P::properties()[p].name));
                    break;
                }
                Err(e) => {
                    broken = Some(format!("invariant {} fails to evaluate: {e}", P::properties()[p].name));
                    break;
                }
            }
        }
        drop(view);
        if let Some(b) = broken {
            self.fail(b);
        }
    }

    fn check_linearizable(&mut self) {
        if !P::properties().iter().any(|p| p.kind == PropertyKind::Linearizable) {
            return;
        }
        let Ok(service) = P::service() else {
            return self.fail("the service's initial state fails".into());
        };
        if linearize(&service, &self.history).is_none() {
            let mut text = String::new();
            for (c, ops) in self.history.clients.iter().enumerate() {
                let _ = write!(text, "\n      client {c}:");
                for o in ops {
                    let ret = match (&o.ret, o.abandoned) {
                        (Some(r), _) => brief(r),
                        (None, true) => "(unknown)".into(),
                        (None, false) => "(in flight)".into(),
                    };
                    let _ = write!(text, " {} → {ret};", brief(&o.req));
                }
            }
            self.fail(format!("the client histories are not linearizable:{text}"));
        }
    }
}

fn response_tag<R>(r: &Response<R>) -> Option<Tag> {
    match r {
        Response::Reply(t, _) | Response::Redirect(t, _) | Response::Invalid(t, _) => Some(*t),
    }
}

/// A value's `Debug`, cut to a readable length.
fn brief<T: std::fmt::Debug>(x: &T) -> String {
    let s = format!("{x:?}");
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(157).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The newest log segment of a data directory.
fn last_segment(fs: &SimFs, dir: &Path) -> Option<PathBuf> {
    let names = fs.read_dir(dir).ok()?;
    names
        .into_iter()
        .filter(|n| n.starts_with("wal-") && n.ends_with(".log"))
        .max()
        .map(|n| dir.join(n))
}

/// Where a segment's last record starts (so the bytes before it are
/// whole records and the header), if it has at least two.
fn records_but_last(fs: &SimFs, path: &Path) -> Option<u64> {
    let bytes = fs.read(path).ok()?;
    let mut off = storage::SEGMENT_HEADER_LEN as usize;
    let mut starts = Vec::new();
    while off + storage::RECORD_HEADER_LEN as usize <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().ok()?) as usize;
        let end = off + storage::RECORD_HEADER_LEN as usize + len;
        if end > bytes.len() {
            break;
        }
        starts.push(off);
        off = end;
    }
    (starts.len() >= 2).then(|| *starts.last().expect("two") as u64)
}
