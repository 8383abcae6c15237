//! The system model: every node, the network, timers, pending choices,
//! crashes, durable storage, the client history and the fault budget, and
//! the transitions between global states.
//!
//! The semantics follow stateright's `ActorModel` (so state counts are
//! comparable), with these differences, each deliberate:
//! - history is recorded from client transitions, not deliveries;
//! - only servers crash (clients model callers, not replicas);
//! - in liveness mode, faults come from a budget that is part of the state,
//!   and timers obey the configured timing model (see `liveness.rs`);
//! - a handler error is not a panic: the node records it in its state.

use crate::config::RunConfig;
use crate::history::History;
use crate::net::{Env, Net};
use smelt_support::{Boot, ClientMsg, Effects, Id, Layout, Protocol, Rewrite, View};
use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Messages a step sent, with their destinations.
pub type Sends<P> = Vec<(Id, <P as Protocol>::Message)>;

pub type Hist<P> = History<<P as Protocol>::Request, <P as Protocol>::Reply>;

/// A value with its hash computed once. Node states are shared between a
/// state and its successors (through `Arc`), so caching their hashes means a
/// successor's fingerprint re-hashes only the node that changed.
#[derive(Clone)]
pub struct Hashed<T> {
    hash: u64,
    value: T,
}

impl<T: Hash> Hashed<T> {
    pub fn new(value: T) -> Self {
        let hash = ahash::RandomState::with_seeds(7, 11, 13, 17).hash_one(&value);
        Hashed { hash, value }
    }
}

impl<T> Hashed<T> {
    /// The cached hash (what `Hash` feeds a hasher).
    pub fn hash_value(&self) -> u64 {
        self.hash
    }

    /// A value with a hash computed earlier by `new` (the encoded BFS
    /// frontier stores both, so that decoding need not rehash).
    pub(crate) fn with_hash(value: T, hash: u64) -> Self {
        Hashed { hash, value }
    }
}

impl<T> std::ops::Deref for Hashed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash && self.value == o.value
    }
}

impl<T: Eq> Eq for Hashed<T> {}

impl<T: Ord> PartialOrd for Hashed<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl<T: Ord> Ord for Hashed<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.value.cmp(&o.value)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Hashed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// One node's part of a global state, kept together so that a global
/// state is a few allocations rather than one per field.
pub struct Node<P: Protocol> {
    pub state: Arc<Hashed<P::NodeState>>,
    /// Armed timers, sorted.
    pub timers: Vec<P::TimerKind>,
    /// Pending nondeterministic choices, by key, sorted.
    pub choices: Vec<(&'static str, Vec<P::Choice>)>,
    /// What the node last saved (its durable state).
    pub storage: Option<Arc<P::Durable>>,
}

impl<P: Protocol> Clone for Node<P> {
    fn clone(&self) -> Self {
        Node {
            state: self.state.clone(),
            timers: self.timers.clone(),
            choices: self.choices.clone(),
            storage: self.storage.clone(),
        }
    }
}

impl<P: Protocol> PartialEq for Node<P> {
    fn eq(&self, o: &Self) -> bool {
        self.state == o.state && self.timers == o.timers && self.choices == o.choices && self.storage == o.storage
    }
}

impl<P: Protocol> Hash for Node<P> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.state.hash(h);
        self.timers.hash(h);
        self.choices.hash(h);
        self.storage.hash(h);
    }
}

impl<P: Protocol> Node<P> {
    pub fn set_timer(&mut self, t: P::TimerKind) {
        if let Err(k) = self.timers.binary_search(&t) {
            self.timers.insert(k, t);
        }
    }

    pub fn cancel_timer(&mut self, t: &P::TimerKind) -> bool {
        match self.timers.binary_search(t) {
            Ok(k) => {
                self.timers.remove(k);
                true
            }
            Err(_) => false,
        }
    }

    /// This node with every node id mapped through `f` (timers re-sorted).
    pub fn rewrite_ids(&self, f: &impl Fn(Id) -> Id) -> Self {
        let mut timers: Vec<P::TimerKind> = self.timers.iter().map(|t| t.rewrite(f)).collect();
        timers.sort();
        Node {
            state: Arc::new(Hashed::new((**self.state).rewrite(f))),
            timers,
            // The options of a choice are a set (their order only orders
            // the actions): sorted, so that renamed servers compare equal.
            choices: self
                .choices
                .iter()
                .map(|(k, v)| {
                    let mut v = v.rewrite(f);
                    v.sort();
                    (*k, v)
                })
                .collect(),
            storage: self.storage.as_ref().map(|s| Arc::new((**s).rewrite(f))),
        }
    }

    pub fn choice(&self, key: &str) -> Option<&Vec<P::Choice>> {
        self.choices.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn set_choice(&mut self, key: &'static str, options: Vec<P::Choice>) {
        self.choices.retain(|(k, _)| *k != key);
        if !options.is_empty() {
            let at = self.choices.partition_point(|(k, _)| *k < key);
            self.choices.insert(at, (key, options));
        }
    }
}

/// A global state.
pub struct SysState<P: Protocol> {
    pub nodes: Vec<Node<P>>,
    pub net: Net<P::Message>,
    /// Bit `i` set: node `i` is crashed.
    pub crashed: u64,
    /// Liveness mode, bit `i` set: node `i` stopped for good (`stops N`):
    /// crashed, and never recovers. A subset of `crashed`.
    pub stopped: u64,
    pub history: Arc<Hist<P>>,
    /// Faults used so far (liveness mode): they are part of the state so
    /// that a fault can never be part of a cycle.
    pub drops_used: u8,
    pub crashes_used: u8,
    /// Timer firings that broke the timing model before the run was calm
    /// (counted up to the `races` budget).
    pub races_used: u8,
    /// Liveness mode: the faults are over. From here on the environment
    /// makes no more faults, is fair, and obeys the timing model. A state
    /// becomes calm when the budget is spent, or by the `Calm` action (the
    /// environment may stop faulting before spending its budget).
    pub calm: bool,
}

impl<P: Protocol> Clone for SysState<P> {
    fn clone(&self) -> Self {
        SysState {
            nodes: self.nodes.clone(),
            net: self.net.clone(),
            crashed: self.crashed,
            stopped: self.stopped,
            history: self.history.clone(),
            drops_used: self.drops_used,
            crashes_used: self.crashes_used,
            races_used: self.races_used,
            calm: self.calm,
        }
    }
}

impl<P: Protocol> PartialEq for SysState<P> {
    fn eq(&self, o: &Self) -> bool {
        self.nodes == o.nodes
            && self.net == o.net
            && self.crashed == o.crashed
            && self.stopped == o.stopped
            && self.history == o.history
            && self.drops_used == o.drops_used
            && self.crashes_used == o.crashes_used
            && self.races_used == o.races_used
            && self.calm == o.calm
    }
}

impl<P: Protocol> Eq for SysState<P> {}

impl<P: Protocol> Hash for SysState<P> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.nodes.hash(h);
        self.net.hash(h);
        self.crashed.hash(h);
        self.stopped.hash(h);
        self.history.hash(h);
        self.drops_used.hash(h);
        self.crashes_used.hash(h);
        self.races_used.hash(h);
        self.calm.hash(h);
    }
}

impl<P: Protocol> std::fmt::Debug for SysState<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysState")
            .field("nodes", &self.nodes.iter().map(|n| &n.state).collect::<Vec<_>>())
            .field("net", &self.net)
            .field("crashed", &self.crashed)
            .field("stopped", &self.stopped)
            .finish()
    }
}

impl<P: Protocol> View<P> for SysState<P> {
    fn actor_count(&self) -> usize {
        self.nodes.len()
    }

    fn actor_state(&self, index: usize) -> &P::NodeState {
        &self.nodes[index].state
    }

    fn is_crashed(&self, index: usize) -> bool {
        self.crashed & (1 << index) != 0
    }
}

impl<P: Protocol> SysState<P> {
    pub fn is_crashed(&self, i: usize) -> bool {
        self.crashed & (1 << i) != 0
    }

    pub fn is_stopped(&self, i: usize) -> bool {
        self.stopped & (1 << i) != 0
    }

    /// The same state with node ids mapped through `f` and node slots
    /// permuted (`order[new] = old`), for symmetry.
    pub fn rewrite_ids(&self, order: &[usize], f: &impl Fn(Id) -> Id) -> Self {
        SysState {
            nodes: order.iter().map(|&old| self.nodes[old].rewrite_ids(f)).collect(),
            net: self.net.rewrite(f),
            crashed: order
                .iter()
                .enumerate()
                .filter(|(_, &old)| self.is_crashed(old))
                .fold(0, |m, (new, _)| m | (1 << new)),
            stopped: order
                .iter()
                .enumerate()
                .filter(|(_, &old)| self.is_stopped(old))
                .fold(0, |m, (new, _)| m | (1 << new)),
            history: Arc::new((*self.history).rewrite(f)),
            drops_used: self.drops_used,
            crashes_used: self.crashes_used,
            races_used: self.races_used,
            calm: self.calm,
        }
    }
}

/// One step of the environment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action<P: Protocol> {
    Deliver {
        src: Id,
        dst: Id,
        msg: P::Message,
    },
    Drop {
        src: Id,
        dst: Id,
        msg: P::Message,
    },
    Timeout {
        node: Id,
        timer: P::TimerKind,
    },
    Crash(Id),
    /// Liveness mode (`stops N`): a server crashes and never recovers.
    Stop(Id),
    /// A step that ran a `send early`, cut short by a crash: its early
    /// messages left, then the node crashed before the step's durable
    /// writes reached the disk. (The inner action is a delivery, timeout,
    /// choice or recovery.)
    Torn(Box<Action<P>>),
    Recover(Id),
    Choose {
        node: Id,
        key: &'static str,
        value: P::Choice,
    },
    /// Liveness mode: the environment stops making faults.
    Calm,
}

impl<P: Protocol> Action<P> {
    /// The same action with node ids mapped through `f`.
    pub fn rewrite_ids(&self, f: &impl Fn(Id) -> Id) -> Self {
        use smelt_support::Rewrite;
        match self {
            Action::Deliver { src, dst, msg } => Action::Deliver {
                src: f(*src),
                dst: f(*dst),
                msg: msg.rewrite(f),
            },
            Action::Drop { src, dst, msg } => Action::Drop {
                src: f(*src),
                dst: f(*dst),
                msg: msg.rewrite(f),
            },
            Action::Timeout { node, timer } => Action::Timeout {
                node: f(*node),
                timer: timer.rewrite(f),
            },
            Action::Crash(n) => Action::Crash(f(*n)),
            Action::Stop(n) => Action::Stop(f(*n)),
            Action::Torn(a) => Action::Torn(Box::new(a.rewrite_ids(f))),
            Action::Recover(n) => Action::Recover(f(*n)),
            Action::Choose { node, key, value } => Action::Choose {
                node: f(*node),
                key,
                value: value.rewrite(f),
            },
            Action::Calm => Action::Calm,
        }
    }
}

/// What a handler asked for, as recorded by the model's `Effects`.
#[derive(Debug)]
pub enum Cmd<P: Protocol> {
    Send(Id, P::Message),
    /// `send early`: like `Send`, and it also leaves in a torn step.
    SendEarly(Id, P::Message),
    SetTimer(P::TimerKind),
    CancelTimer(P::TimerKind),
    Choose(&'static str, Vec<P::Choice>),
    Save(P::Durable),
}

impl<P: Protocol> Cmd<P> {
    /// The same effect (for the delta check; saves are not compared).
    pub fn same(&self, o: &Cmd<P>) -> bool {
        match (self, o) {
            (Cmd::Send(d, m), Cmd::Send(e, n)) | (Cmd::SendEarly(d, m), Cmd::SendEarly(e, n)) => d == e && m == n,
            (Cmd::SetTimer(t), Cmd::SetTimer(u)) | (Cmd::CancelTimer(t), Cmd::CancelTimer(u)) => t == u,
            (Cmd::Choose(k, a), Cmd::Choose(l, b)) => k == l && a == b,
            _ => false,
        }
    }
}

/// The model's `Effects`: a list of commands, with full storage saves.
pub struct ModelFx<P: Protocol> {
    pub cmds: Vec<Cmd<P>>,
}

impl<P: Protocol> ModelFx<P> {
    pub fn new() -> Self {
        ModelFx { cmds: Vec::new() }
    }
}

impl<P: Protocol> Default for ModelFx<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Protocol> Effects<P, P::Delta> for ModelFx<P> {
    const DELTAS: bool = false;
    const FULL_SAVE: bool = true;
    const GHOST: bool = true;

    fn send(&mut self, dst: Id, msg: P::Message) {
        self.cmds.push(Cmd::Send(dst, msg));
    }
    fn send_early(&mut self, dst: Id, msg: P::Message) {
        self.cmds.push(Cmd::SendEarly(dst, msg));
    }
    fn set_timer(&mut self, timer: P::TimerKind, _range: Range<Duration>) {
        self.cmds.push(Cmd::SetTimer(timer));
    }
    fn cancel_timer(&mut self, timer: P::TimerKind) {
        self.cmds.push(Cmd::CancelTimer(timer));
    }
    fn choose(&mut self, key: &'static str, options: Vec<P::Choice>) {
        self.cmds.push(Cmd::Choose(key, options));
    }
    fn save(&mut self, storage: P::Durable) {
        self.cmds.push(Cmd::Save(storage));
    }
    fn delta(&mut self, _delta: P::Delta) {}
    fn mark(&self) -> usize {
        self.cmds.len()
    }
    fn rollback(&mut self, mark: usize) {
        self.cmds.truncate(mark);
    }
}

/// A protocol in one configuration, ready to explore.
pub struct System<P: Protocol> {
    pub cfg: RunConfig,
    pub layout: Layout,
    pub actors: Vec<P>,
    /// Index of the first client actor.
    pub first_client: usize,
    /// Each client's workload, for the operations its history records.
    pub workloads: Vec<Vec<P::Request>>,
    pub service: P::Service,
    /// Steps not taken because they would leave the check's `bound`.
    pub cut: std::sync::atomic::AtomicU64,
    /// Each step run the runtime's way too (`RunConfig::delta_check`).
    pub delta: crate::delta::DeltaCheck,
}

impl<P: Protocol> System<P> {
    pub fn new(cfg: RunConfig) -> Result<Self, String> {
        let mut layout = Layout::new(&cfg.servers, cfg.clients);
        layout.sessions_max = cfg.sessions;
        if layout.actor_count() > 64 {
            return Err(format!(
                "{} actors; the model supports at most 64",
                layout.actor_count()
            ));
        }
        let mut actors = Vec::new();
        for id in layout.servers() {
            actors.push(P::server(id, &layout).ok_or_else(|| format!("no role for server {id:?}"))?);
        }
        // Clients send to the roles that serve requests.
        let serving: Vec<Id> = layout.serving(P::roles());
        let first_client = actors.len();
        let mut workloads = Vec::new();
        for c in 0..cfg.clients {
            let workload =
                P::workload(cfg.workload_index, c).map_err(|e| format!("the workload of client {c} fails: {e}"))?;
            actors.push(P::client(
                workload.clone(),
                serving.clone(),
                cfg.client_retry(),
                cfg.symmetry,
            ));
            workloads.push(workload);
        }
        let service = P::service().map_err(|e| format!("the service's initial state fails: {e}"))?;
        Ok(System {
            cfg,
            layout,
            actors,
            first_client,
            workloads,
            service,
            cut: std::sync::atomic::AtomicU64::new(0),
            delta: crate::delta::DeltaCheck::default(),
        })
    }

    pub fn is_client(&self, i: usize) -> bool {
        i >= self.first_client
    }

    pub fn init(&self) -> SysState<P> {
        let n = self.actors.len();
        let mut s = SysState {
            nodes: Vec::with_capacity(n),
            net: self.empty_net(),
            crashed: 0,
            stopped: 0,
            history: Arc::new(History::new(self.actors.len() - self.first_client)),
            drops_used: 0,
            crashes_used: 0,
            races_used: 0,
            calm: !self.cfg.liveness
                || (self.cfg.drops == 0 && self.cfg.crash == 0 && self.cfg.races == 0 && self.cfg.stops == 0),
        };
        for (i, a) in self.actors.iter().enumerate() {
            let mut fx = ModelFx::new();
            let st = a.handle_start(Id::from(i), None, Boot::First, &mut fx);
            if let Some(c) = P::client_state(&st) {
                self.record_client(&mut s, i, &smelt_support::ClientState::default(), c, None);
            }
            s.nodes.push(Node {
                state: Arc::new(Hashed::new(st)),
                timers: Vec::new(),
                choices: Vec::new(),
                storage: None,
            });
            self.apply(&mut s, i, fx, &mut None);
        }
        self.settle_owed(&mut s);
        s
    }

    /// The enabled actions of a state, in a deterministic order.
    pub fn actions(&self, s: &SysState<P>, out: &mut Vec<Action<P>>) {
        let first = out.len();
        let faults_left_drop = self.drops_allowed(s);
        let crash_drops = s.crashed != 0 && self.crash_drops(s);
        for env in s.net.deliverable() {
            let (from, to) = (usize::from(env.src), usize::from(env.dst));
            if faults_left_drop || (crash_drops && (s.is_crashed(from) || s.is_crashed(to))) {
                out.push(Action::Drop {
                    src: env.src,
                    dst: env.dst,
                    msg: env.msg.clone(),
                });
            }
            let d = usize::from(env.dst);
            if d < self.actors.len() && !s.is_crashed(d) {
                out.push(Action::Deliver {
                    src: env.src,
                    dst: env.dst,
                    msg: env.msg.clone(),
                });
            }
        }
        for (i, node) in s.nodes.iter().enumerate() {
            if s.is_crashed(i) {
                continue;
            }
            for t in &node.timers {
                if self.timer_enabled(s, i, t) {
                    out.push(Action::Timeout {
                        node: Id::from(i),
                        timer: t.clone(),
                    });
                }
            }
        }
        if self.crash_allowed(s) {
            for i in 0..self.first_client {
                if !s.is_crashed(i) {
                    out.push(Action::Crash(Id::from(i)));
                }
            }
        }
        if self.stop_allowed(s) {
            for i in 0..self.first_client {
                if !s.is_crashed(i) {
                    out.push(Action::Stop(Id::from(i)));
                }
            }
        }
        for i in 0..self.actors.len() {
            if s.is_crashed(i) && !s.is_stopped(i) {
                out.push(Action::Recover(Id::from(i)));
            }
        }
        for (i, node) in s.nodes.iter().enumerate() {
            if s.is_crashed(i) {
                continue;
            }
            for (k, vs) in &node.choices {
                for v in vs {
                    out.push(Action::Choose {
                        node: Id::from(i),
                        key: k,
                        value: v.clone(),
                    });
                }
            }
        }
        if self.cfg.liveness && !s.calm {
            out.push(Action::Calm);
        }
        self.torn_actions(s, first, out);
    }

    /// For every step that may run a `send early` (by its event, see
    /// `Protocol::sends_early_on_msg`), the same step torn by a crash,
    /// while the crash budget allows one (in safety mode a recovery torn
    /// again needs none: the node was down already). Whether the step
    /// really sends early is found out by running it (`torn`).
    fn torn_actions(&self, s: &SysState<P>, first: usize, out: &mut Vec<Action<P>>) {
        let other = P::sends_early_on_other();
        let crash = self.crash_allowed(s);
        let n = out.len();
        for k in first..n {
            let torn = match &out[k] {
                Action::Deliver { dst, msg, .. } => {
                    crash && usize::from(*dst) < self.first_client && P::sends_early_on_msg(msg)
                }
                Action::Timeout { node, .. } | Action::Choose { node, .. } => {
                    crash && other && usize::from(*node) < self.first_client
                }
                Action::Recover(_) => other && (crash || !self.cfg.liveness),
                _ => false,
            };
            if torn {
                out.push(Action::Torn(Box::new(out[k].clone())));
            }
        }
    }

    /// Whether messages on a link of a crashed node may be lost: on an
    /// ordered network, which otherwise loses nothing. A process that dies
    /// takes its unsent queue and its unhandled inbound frames with it,
    /// and its connections reset (the runtime's contract with the model,
    /// ARCHITECTURE.md). On the unordered networks a message that is never
    /// delivered is already a lost one. Part of the crash fault, so not
    /// counted as a drop; it lasts while the node is down, also once a
    /// liveness run is calm — the run is calm from the moment its last
    /// crash is spent, and a crash that lost nothing is not the fault the
    /// runtime has (before, a liveness check never saw a crash lose a
    /// message; chain_replication.sm's `progress_restart` needs it).
    fn crash_drops(&self, s: &SysState<P>) -> bool {
        matches!(s.net, Net::Ordered(_))
    }

    /// Liveness: whether another server may stop for good (before the run
    /// is calm, within `stops N`).
    fn stop_allowed(&self, s: &SysState<P>) -> bool {
        self.cfg.liveness && !s.calm && u64::from(s.stopped.count_ones()) < self.cfg.stops
    }

    fn drops_allowed(&self, s: &SysState<P>) -> bool {
        if self.cfg.liveness {
            !s.calm && (s.drops_used as u64) < self.cfg.drops
        } else {
            self.cfg.lossy
        }
    }

    fn crash_allowed(&self, s: &SysState<P>) -> bool {
        if self.cfg.liveness {
            !s.calm && (s.crashes_used as u64) < self.cfg.crash
        } else {
            (s.crashed.count_ones() as u64) < self.cfg.crash
        }
    }

    /// Liveness on a duplicating network: a message owed a delivery that
    /// its (live) destination would ignore now is taken as delivered now,
    /// and owed nothing more. The adversary may always deliver it now; it
    /// may still deliver it later too (the network duplicates), only
    /// fairness no longer insists. So fair behaviours are only added —
    /// sound for liveness — and states that differ only in owing ignored
    /// messages are one.
    fn settle_owed(&self, n: &mut SysState<P>) {
        let Net::Owed(v) = &n.net else { return };
        let ignored: Vec<usize> = v
            .iter()
            .enumerate()
            .filter(|(_, (e, owed))| {
                *owed && {
                    let a = Action::Deliver {
                        src: e.src,
                        dst: e.dst,
                        msg: e.msg.clone(),
                    };
                    self.run_handler(n, &a)
                        .is_some_and(|(_, st, fx)| st.is_none() && fx.cmds.is_empty())
                }
            })
            .map(|(k, _)| k)
            .collect();
        if let Net::Owed(v) = &mut n.net {
            for k in ignored {
                v[k].1 = false;
            }
        }
    }

    /// An empty network of the check's kind, in its mode's form.
    pub fn empty_net(&self) -> Net<P::Message> {
        Net::for_mode(self.cfg.network, self.cfg.liveness)
    }

    /// Whether the timing model applies: once the faults are over, and
    /// before that once only stops are left in the budget. A server that
    /// stops for good falls silent; it does not make the others' messages
    /// slower than their timers (and letting timers fire in any order until
    /// the environment decides to stop a server — which it may put off
    /// forever — grew abd.sm's one-client graph past 76 million states).
    fn timing_applies(&self, s: &SysState<P>) -> bool {
        !self.cfg.liveness || s.calm || self.only_stops_left(s)
    }

    /// Whether the budget of every fault but `stops` is spent.
    fn only_stops_left(&self, s: &SysState<P>) -> bool {
        (s.drops_used as u64) >= self.cfg.drops
            && (s.crashes_used as u64) >= self.cfg.crash
            && (s.races_used as u64) >= self.cfg.races
    }

    /// After a fault, a state whose budget is spent is calm.
    fn settle_budget(&self, n: &mut SysState<P>) {
        if self.only_stops_left(n) && u64::from(n.stopped.count_ones()) >= self.cfg.stops {
            n.calm = true;
        }
    }

    /// Whether a timer still armed, or a message still in flight, rather
    /// than gone, can change what happens (see the `Timeout` and `Deliver`
    /// steps): under a timing model (either holds back timers), or in
    /// liveness mode (fairness fires every armed timer, and delivers every
    /// message in flight, that has a step).
    fn stale_matters(&self) -> bool {
        self.cfg.liveness || self.cfg.partial_synchrony || self.cfg.synchronous
    }

    /// Whether timer `t` of node `i` may fire: always while faults other
    /// than stops are left (a firing the timing model forbids is then a
    /// race, see `is_race`), afterwards only as the timing model allows —
    /// under `no_timeouts`, never (in a safety check, never at all).
    fn timer_enabled(&self, s: &SysState<P>, i: usize, t: &P::TimerKind) -> bool {
        if self.cfg.no_timeouts {
            return !self.timing_applies(s);
        }
        !self.cfg.partial_synchrony || !self.timing_applies(s) || self.timing_allows(s, i, t)
    }

    /// A firing of `t` at node `i` before the timing model applies that it
    /// would forbid: two servers timing out within one message delay
    /// of each other, say. Counted against the `races` budget.
    fn is_race(&self, s: &SysState<P>, i: usize, t: &P::TimerKind) -> bool {
        self.cfg.liveness && self.cfg.partial_synchrony && !self.timing_applies(s) && !self.timing_allows(s, i, t)
    }

    /// The timing model (liveness mode, once the faults are over): a timer
    /// does not fire at a node with messages in flight to it, and does not
    /// fire while another armed timer is declared to expire strictly
    /// earlier (its upper bound below this one's lower bound).
    fn timing_allows(&self, s: &SysState<P>, i: usize, t: &P::TimerKind) -> bool {
        if self.message_pending_to(s, i) {
            return false;
        }
        // Synchronous: no message on its way anywhere — one whose delivery
        // would change nothing (a stale reply the node ignores, which on a
        // non-duplicating network stays in flight for good) is not on its
        // way: it would block every timer forever.
        if self.cfg.synchronous
            && s.net.deliverable().any(|e| {
                !s.is_crashed(usize::from(e.dst)) && {
                    let a = Action::Deliver {
                        src: e.src,
                        dst: e.dst,
                        msg: e.msg.clone(),
                    };
                    self.step(s, &a, &mut None).is_some()
                }
            })
        {
            return false;
        }
        let Some(lo) = self.timer_bounds(t).map(|b| b.0) else {
            return true;
        };
        for (j, node) in s.nodes.iter().enumerate() {
            if s.is_crashed(j) {
                continue;
            }
            for u in &node.timers {
                if let Some((_, hi)) = self.timer_bounds(u) {
                    if hi < lo {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Whether a message to node `i` is in flight, for partial synchrony. On
    /// a duplicating network every message stays in the network forever, so
    /// only a message whose delivery would still change something counts;
    /// otherwise one old message would block the node's timers for good.
    fn message_pending_to(&self, s: &SysState<P>, i: usize) -> bool {
        let dst = Id::from(i);
        match &s.net {
            Net::Duplicating(v) => v.iter().filter(|e| e.dst == dst).any(|e| {
                let a = Action::Deliver {
                    src: e.src,
                    dst: e.dst,
                    msg: e.msg.clone(),
                };
                self.step(s, &a, &mut None).is_some()
            }),
            // Liveness mode: only a message owed a delivery is on its way.
            Net::Owed(v) => v.iter().any(|(e, owed)| *owed && e.dst == dst),
            _ => s.net.has_message_to(dst),
        }
    }

    fn timer_bounds(&self, t: &P::TimerKind) -> Option<(u64, u64)> {
        let (role, idx) = P::timer_info(t)?;
        let info = P::roles().get(role)?.timers.get(idx)?;
        Some((info.min_us, info.max_us))
    }

    /// The successor of `s` by `a`, or `None` when `a` is not enabled or is
    /// a no-op (a delivery or timeout that changes nothing).
    pub fn next(&self, s: &SysState<P>, a: &Action<P>) -> Option<SysState<P>> {
        let mut n = self.transition(s, a, &mut None)?;
        n.net.compact();
        Some(n)
    }

    /// `next`, also returning the messages the step sent (for traces).
    pub fn next_with_sends(&self, s: &SysState<P>, a: &Action<P>) -> Option<(SysState<P>, Sends<P>)> {
        let mut sends = Some(Vec::new());
        let n = self.transition(s, a, &mut sends)?;
        Some((n, sends.unwrap_or_default()))
    }

    /// A step, unless it leads out of the check's `bound` (a state
    /// constraint): such a step is treated as not enabled, by every search
    /// mode alike, and counted in `cut`. A bound that fails to evaluate
    /// keeps the state, so its error cannot hide behaviours.
    fn transition(
        &self,
        s: &SysState<P>,
        a: &Action<P>,
        sends: &mut Option<Vec<(Id, P::Message)>>,
    ) -> Option<SysState<P>> {
        let mut n = self.step(s, a, sends)?;
        self.settle_owed(&mut n);
        if self.cfg.bound.is_some() && !P::eval_bound(self.cfg.workload_index, &n).unwrap_or(true) {
            self.cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        Some(n)
    }

    fn step(&self, s: &SysState<P>, a: &Action<P>, sends: &mut Option<Vec<(Id, P::Message)>>) -> Option<SysState<P>> {
        match a {
            Action::Calm => {
                if s.calm {
                    return None;
                }
                let mut n = s.clone();
                n.calm = true;
                Some(n)
            }
            Action::Drop { src, dst, msg } => {
                let mut n = s.clone();
                if !n.net.remove(&Env {
                    src: *src,
                    dst: *dst,
                    msg: msg.clone(),
                }) {
                    return None;
                }
                // A loss at a crash is part of that fault; any other drop
                // spends the drop budget.
                let at_crash = s.is_crashed(usize::from(*src)) || s.is_crashed(usize::from(*dst));
                if self.cfg.liveness && !(at_crash && self.crash_drops(s)) {
                    n.drops_used += 1;
                    self.settle_budget(&mut n);
                }
                Some(n)
            }
            Action::Deliver { src, dst, msg } => {
                let env = Env {
                    src: *src,
                    dst: *dst,
                    msg: msg.clone(),
                };
                // Only a message in flight can be delivered. The search only
                // offers those; a replayed list of actions (simulation's
                // shortening, a trace from elsewhere) may hold others.
                if !s.net.in_flight(&env) {
                    return None;
                }
                let (i, st, fx) = self.run_handler(s, a)?;
                // A message the node ignores is consumed where the network
                // can tell: the head of a FIFO link, an owed message in
                // liveness mode (it is no longer owed), and on a network
                // that does not duplicate, wherever a message still in
                // flight matters (as an ignored timeout, see `Timeout`):
                // kept, it would block its node's timers for good under
                // partial synchrony, and fairness would deliver it once the
                // node reaches a state that handles it — a delivery the
                // real node may never see, having ignored the message
                // earlier. Elsewhere ignoring it changes nothing (a state
                // that still holds the message can do all the one without
                // it can), so it is no step.
                let consumes_ignored = match &s.net {
                    Net::Ordered(_) => true,
                    Net::Owed(_) => s.net.owed(&env),
                    Net::NonDuplicating(_) => self.stale_matters(),
                    Net::Duplicating(_) => false,
                };
                if st.is_none() && fx.cmds.is_empty() && !consumes_ignored {
                    return None;
                }
                let mut n = s.clone();
                n.net.on_deliver(&env);
                if let Some(new) = st {
                    if let (Some(before), Some(after)) = (P::client_state(&s.nodes[i].state), P::client_state(&new)) {
                        self.record_client(&mut n, i, before, after, Some(msg));
                    }
                    n.nodes[i].state = Arc::new(Hashed::new(new));
                }
                self.apply(&mut n, i, fx, sends);
                Some(n)
            }
            Action::Timeout { timer, .. } => {
                let (i, st, fx) = self.run_handler(s, a)?;
                let only_rearm = fx.cmds.len() == 1 && matches!(&fx.cmds[0], Cmd::SetTimer(t) if t == timer);
                // A timer that fires and re-arms itself, changing nothing,
                // leaves the state as it was: no step. One that fires into
                // no handler (or one that does nothing) is gone afterwards,
                // as on the runtime, and where an armed timer matters that
                // is a step: under a timing model an armed timer holds back
                // every timer declared to expire later, and in liveness mode
                // a timer still armed would fire, by fairness, once the node
                // reaches a state that handles it — a firing the real node
                // may never see, having dropped the timer earlier. Kept armed
                // there, a spec that forgets to re-arm a timer could pass,
                // and a spec that forgets to cancel one could look stuck.
                // Elsewhere it stays armed and the firing is no step (a
                // state that holds an extra armed timer can do all the one
                // without it can) and saves the states that differ only in
                // it (stateright disarms it: the oracle bridges the two,
                // `specs/tests/data/late_timer.sm`).
                if st.is_none() && (only_rearm || (fx.cmds.is_empty() && !self.stale_matters())) {
                    return None;
                }
                let mut n = s.clone();
                if (s.races_used as u64) < self.cfg.races && self.is_race(s, i, timer) {
                    n.races_used += 1;
                    self.settle_budget(&mut n);
                }
                n.nodes[i].cancel_timer(timer);
                if let Some(new) = st {
                    // A client that gives up on a request ends it and
                    // invokes its next one on a timeout.
                    if let (Some(before), Some(after)) = (P::client_state(&s.nodes[i].state), P::client_state(&new)) {
                        self.record_client(&mut n, i, before, after, None);
                    }
                    n.nodes[i].state = Arc::new(Hashed::new(new));
                }
                self.apply(&mut n, i, fx, sends);
                Some(n)
            }
            Action::Crash(node) => {
                let i = usize::from(*node);
                if s.is_crashed(i) || self.is_client(i) {
                    return None;
                }
                let mut n = s.clone();
                self.crash(&mut n, i);
                Some(n)
            }
            Action::Stop(node) => {
                let i = usize::from(*node);
                if s.is_crashed(i) || self.is_client(i) || !self.stop_allowed(s) {
                    return None;
                }
                let mut n = s.clone();
                Self::go_down(&mut n, i);
                n.stopped |= 1 << i;
                n.net.drop_all_to(*node);
                self.settle_budget(&mut n);
                Some(n)
            }
            Action::Torn(inner) => self.torn(s, inner, sends),
            Action::Recover(_) => {
                let (i, st, fx) = self.run_handler(s, a)?;
                let mut n = s.clone();
                if let Some(st) = st {
                    n.nodes[i].state = Arc::new(Hashed::new(st));
                }
                n.crashed &= !(1 << i);
                self.apply(&mut n, i, fx, sends);
                Some(n)
            }
            Action::Choose { key, .. } => {
                let (i, st, fx) = self.run_handler(s, a)?;
                let mut n = s.clone();
                n.nodes[i].set_choice(key, Vec::new());
                if let Some(new) = st {
                    n.nodes[i].state = Arc::new(Hashed::new(new));
                }
                self.apply(&mut n, i, fx, sends);
                Some(n)
            }
        }
    }

    /// Records a client's operations from its own state change: `sent`
    /// growing is an invocation of the next workload request, `completed`
    /// growing is the return of the outstanding one, with the reply the
    /// client just accepted. Nothing depends on how the network delivered.
    fn record_client(
        &self,
        n: &mut SysState<P>,
        i: usize,
        before: &smelt_support::ClientState,
        after: &smelt_support::ClientState,
        msg: Option<&P::Message>,
    ) {
        let c = i - self.first_client;
        if after.abandoned > before.abandoned {
            // Given up (a timeout past the retries, or an expired session).
            Arc::make_mut(&mut n.history).abandon(c);
        } else if after.completed() > before.completed() {
            match msg.and_then(P::client_msg) {
                Some(ClientMsg::Reply(_, rep)) => Arc::make_mut(&mut n.history).ret(c, rep.clone()),
                _ => Arc::make_mut(&mut n.history).malformed = true,
            }
        }
        if after.sent > before.sent {
            match self.workloads[c].get(after.sent as usize - 1) {
                Some(req) => Arc::make_mut(&mut n.history).invoke(c, req.clone()),
                None => Arc::make_mut(&mut n.history).malformed = true,
            }
        }
    }

    /// Runs the handler behind a delivery, timeout, choice or recovery, if
    /// the action is enabled at its node: the node, its new state (`None`
    /// when the handler left it unchanged; a recovery always builds one)
    /// and the handler's effects. Shared by ordinary and torn steps.
    fn run_handler(&self, s: &SysState<P>, a: &Action<P>) -> Option<(usize, Option<P::NodeState>, ModelFx<P>)> {
        let mut fx = ModelFx::new();
        let (i, st) = match a {
            Action::Deliver { src, dst, msg } => {
                let i = usize::from(*dst);
                if i >= self.actors.len() || s.is_crashed(i) {
                    return None;
                }
                let mut st = Cow::Borrowed(&**s.nodes[i].state);
                self.actors[i].handle_msg(*dst, &mut st, *src, msg.clone(), &mut fx);
                (i, st)
            }
            Action::Timeout { node, timer } => {
                let i = usize::from(*node);
                if s.is_crashed(i) || s.nodes[i].timers.binary_search(timer).is_err() {
                    return None;
                }
                let mut st = Cow::Borrowed(&**s.nodes[i].state);
                self.actors[i].handle_timeout(*node, &mut st, timer, &mut fx);
                (i, st)
            }
            Action::Choose { node, key, value } => {
                let i = usize::from(*node);
                if s.is_crashed(i) || !s.nodes[i].choice(key).is_some_and(|vs| vs.contains(value)) {
                    return None;
                }
                let mut st = Cow::Borrowed(&**s.nodes[i].state);
                self.actors[i].handle_random(*node, &mut st, value, &mut fx);
                (i, st)
            }
            Action::Recover(node) => {
                let i = usize::from(*node);
                if !s.is_crashed(i) || s.is_stopped(i) {
                    return None;
                }
                let st = self.actors[i].handle_start(*node, s.nodes[i].storage.as_deref(), Boot::Restart, &mut fx);
                (i, Cow::Owned(st))
            }
            _ => return None,
        };
        let st = match st {
            Cow::Owned(new) => Some(new),
            Cow::Borrowed(_) => None,
        };
        if self.cfg.delta_check {
            self.delta_check(s, a, i, &st, &fx);
        }
        Some((i, st, fx))
    }

    /// Runs the step's handler again the runtime's way and compares (see
    /// `delta.rs`). Steps of a failed handler are not compared: the
    /// runtime stops the node there (its in-place changes may differ from
    /// the checker's rolled-back state, and nothing is persisted).
    fn delta_check(&self, s: &SysState<P>, a: &Action<P>, i: usize, new: &Option<P::NodeState>, fx: &ModelFx<P>) {
        use crate::delta::{handler_name, RuntimeFx};
        let old: &P::NodeState = &s.nodes[i].state;
        let model: &P::NodeState = new.as_ref().unwrap_or(old);
        if P::failure(model).is_some() || P::failure(old).is_some() || P::client_state(old).is_some() {
            return;
        }
        let mut rfx = RuntimeFx::<P>::new();
        let runtime: P::NodeState = match a {
            Action::Deliver { src, dst, msg } => {
                let mut c = Cow::Owned(old.clone());
                self.actors[i].handle_msg(*dst, &mut c, *src, msg.clone(), &mut rfx);
                c.into_owned()
            }
            Action::Timeout { node, timer } => {
                let mut c = Cow::Owned(old.clone());
                self.actors[i].handle_timeout(*node, &mut c, timer, &mut rfx);
                c.into_owned()
            }
            Action::Choose { node, value, .. } => {
                let mut c = Cow::Owned(old.clone());
                self.actors[i].handle_random(*node, &mut c, value, &mut rfx);
                c.into_owned()
            }
            Action::Recover(node) => {
                self.actors[i].handle_start(*node, s.nodes[i].storage.as_deref(), Boot::Restart, &mut rfx)
            }
            _ => return,
        };
        self.delta.steps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let step = || {
            let node = crate::trace::node_name(self, Id::from(i));
            let what = match a {
                Action::Deliver { src, msg, .. } => format!(
                    "{node} receiving {} from {}",
                    crate::trace::show(self, msg),
                    crate::trace::node_name(self, *src)
                ),
                Action::Timeout { timer, .. } => format!("{node}'s timeout {}", crate::trace::show(self, timer)),
                Action::Choose { value, .. } => format!("{node} choosing {}", crate::trace::show(self, value)),
                Action::Recover(_) => format!("{node} restarting"),
                _ => node,
            };
            handler_name(&rfx, &what)
        };
        let model_effects: Vec<&Cmd<P>> = fx.cmds.iter().filter(|c| !matches!(c, Cmd::Save(_))).collect();
        if model_effects.len() != rfx.effects.len() || model_effects.iter().zip(&rfx.effects).any(|(m, r)| !m.same(r)) {
            return self.delta.record(format!(
                "{}: the runtime's effects differ from the checker's\n      checker: {}\n      runtime: {}",
                step(),
                crate::trace::names(self, &format!("{model_effects:?}")),
                crate::trace::names(self, &format!("{:?}", rfx.effects))
            ));
        }
        let (mut m, mut r) = (model.clone(), runtime.clone());
        P::erase_ghosts(&mut m);
        P::erase_ghosts(&mut r);
        if m != r {
            let (fm, fr) = (P::describe_fields(&m), P::describe_fields(&r));
            let diff: Vec<String> = fm
                .iter()
                .zip(&fr)
                .filter(|(a, b)| a != b)
                .map(|((n, a), (_, b))| format!("{n}: checker {a}, runtime {b}"))
                .collect();
            return self.delta.record(format!(
                "{}: the runtime's state differs from the checker's (ghosts aside): {}",
                step(),
                crate::trace::names(self, &diff.join("; "))
            ));
        }
        // Recovery replays the log over the last storage.
        let mut replayed = match s.nodes[i].storage.as_deref() {
            Some(st) => st.clone(),
            None => match self.actors[i].initial_storage(Id::from(i)) {
                Ok(st) => st,
                Err(_) => return,
            },
        };
        for d in rfx.deltas.clone() {
            if let Err(e) = P::apply_delta(&mut replayed, d) {
                return self.delta.record(format!("{}: a delta does not replay: {e}", step()));
            }
        }
        let Some(mut want) = P::storage_of(model) else { return };
        P::erase_ghost_storage(&mut replayed);
        P::erase_ghost_storage(&mut want);
        if replayed != want {
            self.delta.record(format!(
                "{}: replaying the runtime's deltas over the last storage does not give the checker's\n      replayed: {}\n      saved:    {}\n      deltas:   {}",
                step(),
                crate::trace::names(self, &format!("{replayed:?}")),
                crate::trace::names(self, &format!("{want:?}")),
                crate::trace::names(self, &format!("{:?}", rfx.deltas))
            ));
        }
    }

    /// Node `i` goes down (a crash or a stop): its armed timers and
    /// pending choices are gone; its storage stays.
    fn go_down(n: &mut SysState<P>, i: usize) {
        n.nodes[i].timers.clear();
        n.nodes[i].choices.clear();
        n.crashed |= 1 << i;
    }

    /// Node `i` crashes: timers and pending choices are gone; its storage
    /// is whatever was last saved.
    fn crash(&self, n: &mut SysState<P>, i: usize) {
        Self::go_down(n, i);
        if self.cfg.liveness {
            n.crashes_used += 1;
            self.settle_budget(n);
        }
    }

    /// A torn step (`Action::Torn`): the step runs, but only its early
    /// sends take effect; then the node crashes. The result is a crash
    /// *before* the step (volatile state, storage and timers as they were)
    /// plus the consumed event and the early messages — what a node that
    /// releases early messages before its fsync leaves behind when it dies
    /// before the fsync returns. Not enabled when the step sends nothing
    /// early (then it is an ordinary crash, already explored).
    fn torn(
        &self,
        s: &SysState<P>,
        inner: &Action<P>,
        sends: &mut Option<Vec<(Id, P::Message)>>,
    ) -> Option<SysState<P>> {
        let allowed = match inner {
            // In safety mode a node that is down may be torn again.
            Action::Recover(_) => !self.cfg.liveness || self.crash_allowed(s),
            _ => self.crash_allowed(s),
        };
        if !allowed {
            return None;
        }
        let (i, _, fx) = self.run_handler(s, inner)?;
        if i >= self.first_client {
            return None;
        }
        // An early message to the node itself is lost with it: the runtime
        // queues it in memory, which the crash wipes.
        let me = Id::from(i);
        let early: Vec<(Id, P::Message)> = fx
            .cmds
            .into_iter()
            .filter_map(|c| match c {
                Cmd::SendEarly(dst, msg) if dst != me => Some((dst, msg)),
                _ => None,
            })
            .collect();
        if early.is_empty() {
            return None;
        }
        let mut n = s.clone();
        match inner {
            Action::Deliver { src, dst, msg } => n.net.on_deliver(&Env {
                src: *src,
                dst: *dst,
                msg: msg.clone(),
            }),
            Action::Choose { key, .. } => n.nodes[i].set_choice(key, Vec::new()),
            _ => {}
        }
        for (dst, msg) in early {
            if let Some(v) = sends.as_mut() {
                v.push((dst, msg.clone()));
            }
            n.net.send(Env { src: me, dst, msg });
        }
        if s.is_crashed(i) {
            // A torn recovery: down again, with the same storage.
            n.crashed &= !(1 << i);
        }
        self.crash(&mut n, i);
        Some(n)
    }

    /// Applies a handler's commands to the global state.
    fn apply(&self, n: &mut SysState<P>, i: usize, fx: ModelFx<P>, sends: &mut Option<Vec<(Id, P::Message)>>) {
        let me = Id::from(i);
        for c in fx.cmds {
            match c {
                Cmd::Send(dst, msg) | Cmd::SendEarly(dst, msg) => {
                    if let Some(v) = sends.as_mut() {
                        v.push((dst, msg.clone()));
                    }
                    // A stopped node never receives: see `Net::drop_all_to`.
                    if !n.is_stopped(usize::from(dst)) {
                        n.net.send(Env { src: me, dst, msg })
                    }
                }
                Cmd::SetTimer(t) => n.nodes[i].set_timer(t),
                Cmd::CancelTimer(t) => {
                    n.nodes[i].cancel_timer(&t);
                }
                Cmd::Choose(k, vs) => n.nodes[i].set_choice(k, vs),
                Cmd::Save(st) => n.nodes[i].storage = Some(Arc::new(st)),
            }
        }
    }
}
