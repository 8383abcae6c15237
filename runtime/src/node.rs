//! A node: one event loop that owns the actor state and runs one handler at
//! a time, fed by I/O tasks through a bounded queue.
//!
//! The loop keeps the model checker's assumptions:
//! - *Handler atomicity*: only this task touches the state; each event runs
//!   one `handle_*` call to completion.
//! - *Durable before visible*: a handler's deltas become one log record; its
//!   messages and replies wait in `held` until the committer reports that
//!   record (and every earlier one) durable. Messages of a handler that
//!   saved nothing still wait for the records before them, because they may
//!   depend on that not-yet-durable state. Timers, choices and messages to
//!   itself stay inside the node and take effect at once.
//! - *Group commit*: the loop takes a batch of events, runs their handlers,
//!   and hands all resulting records to the committer at once; it keeps
//!   running handlers while the fsync is in flight.
//! - *Bounded memory*: when too many outputs or record bytes await an
//!   fsync, the loop stops taking events until the disk catches up.

use crate::cluster::{resolve, Cluster};
use crate::commit::{self, Cmd, CommitStats, Durable, Record};
use crate::connection::{self, Ctx, PeerOut};
use crate::frame::{self, Hello, Kind};
use crate::rng::Rng;
use crate::storage::{Recovered, Store};
use smelt_support::{Effects, Id, Protocol};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// Every bound the node keeps. Defaults suit a small cluster on one host.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Events queued from I/O tasks to the event loop.
    pub inbound_queue_len_max: usize,
    /// Frames queued for one peer; more are dropped.
    pub peer_queue_len_max: usize,
    /// Bytes queued for one peer; more are dropped.
    pub peer_queue_bytes_max: usize,
    /// Responses queued for one client connection; more are dropped.
    pub client_queue_len_max: usize,
    pub clients_max: usize,
    /// Inbound peer connections at once (each server needs one).
    pub peer_connections_max: usize,
    pub frame_payload_bytes_max: usize,
    /// Events taken from the inbound queue per loop turn.
    pub batch_len_max: usize,
    /// Outputs awaiting an fsync before the loop stops taking events.
    pub held_len_max: usize,
    /// Record bytes awaiting an fsync before the loop stops taking events.
    pub unsynced_bytes_max: usize,
    /// Messages a node sent itself, not yet handled; more are dropped.
    pub local_queue_len_max: usize,
    /// The log is compacted into a snapshot once it holds this many bytes
    /// and more than the last snapshot's size.
    pub snapshot_log_bytes_min: u64,
    pub reconnect_ms_min: u64,
    pub reconnect_ms_max: u64,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    /// How long a stopping node waits for its queues to drain.
    pub shutdown_flush_ms_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            inbound_queue_len_max: 4096,
            peer_queue_len_max: 4096,
            peer_queue_bytes_max: 64 << 20,
            client_queue_len_max: 1024,
            clients_max: 1024,
            peer_connections_max: 256,
            frame_payload_bytes_max: frame::PAYLOAD_BYTES_MAX,
            batch_len_max: 256,
            held_len_max: 65536,
            unsynced_bytes_max: 64 << 20,
            local_queue_len_max: 4096,
            snapshot_log_bytes_min: 16 << 20,
            reconnect_ms_min: 20,
            reconnect_ms_max: 2000,
            connect_timeout_ms: 1000,
            handshake_timeout_ms: 5000,
            shutdown_flush_ms_max: 2000,
        }
    }
}

pub struct NodeConfig {
    pub cluster: Cluster,
    pub id: u64,
    pub seed: u64,
    pub limits: Limits,
}

/// Why a node stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop; everything durable was released first.
    Stopped,
    /// A handler failed (overflow, failed assert, ...): fail-stop.
    HandlerFailed(String),
    /// A write or fsync failed; nothing that depended on it was released.
    DiskFailed(String),
}

#[derive(Debug, Default)]
pub struct NodeStats {
    pub handlers: AtomicU64,
    /// Messages and replies dropped because a queue was full or the
    /// destination unknown.
    pub dropped: AtomicU64,
    /// Outputs released after their fsync.
    pub released: AtomicU64,
    pub commit: Arc<CommitStats>,
}

/// What I/O tasks hand the event loop.
pub enum Event<P: Protocol> {
    Peer {
        src: Id,
        msg: P::Msg,
    },
    /// A client request (its tag checked) from connection `conn`.
    Request {
        conn: u64,
        msg: P::Msg,
    },
    ClientOpen {
        conn: u64,
        tx: mpsc::Sender<Vec<u8>>,
    },
    ClientClosed {
        conn: u64,
    },
}

/// A running node.
pub struct Running {
    pub stats: Arc<NodeStats>,
    pub peer_addr: SocketAddr,
    pub client_addr: Option<SocketAddr>,
    /// Send `true` to stop the node cleanly.
    pub stop: watch::Sender<bool>,
    pub done: tokio::task::JoinHandle<Exit>,
}

/// Binds the node's sockets, starts its tasks and its event loop.
pub async fn start<P: Protocol, S: Store>(
    cfg: NodeConfig,
    store: S,
    recovered: Recovered<P::Storage>,
) -> Result<Running, String> {
    let layout = cfg.cluster.layout::<P>()?;
    let id = Id::from(cfg.id as usize);
    let actor = P::server(id, &layout).ok_or_else(|| format!("node {} is not a server of {}", cfg.id, P::NAME))?;
    let me = cfg
        .cluster
        .node(cfg.id)
        .ok_or_else(|| format!("node {} is not in the cluster file", cfg.id))?;
    let servers = cfg.cluster.nodes.len() as u64;
    let ctx = Ctx {
        cluster: cfg.cluster.hash(),
        id: cfg.id,
        servers,
        limits: cfg.limits.clone(),
    };
    let peer_listener = TcpListener::bind(resolve(&me.address)?)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", me.address))?;
    let peer_addr = peer_listener.local_addr().map_err(|e| e.to_string())?;
    let serves = layout
        .role_of(id)
        .and_then(|r| P::roles().get(r))
        .is_some_and(|r| r.serves_clients);
    let client_listener = match (&me.client_address, serves) {
        (Some(a), true) => Some(
            TcpListener::bind(resolve(a)?)
                .await
                .map_err(|e| format!("cannot listen for clients on {a}: {e}"))?,
        ),
        _ => None,
    };
    let client_addr = client_listener.as_ref().and_then(|l| l.local_addr().ok());

    let stats = Arc::new(NodeStats::default());
    let committer = commit::spawn(store, recovered.last_lsn, stats.commit.clone())
        .map_err(|e| format!("cannot start the commit thread: {e}"))?;
    let (stop, stop_rx) = watch::channel(false);
    let (in_tx, in_rx) = mpsc::channel(cfg.limits.inbound_queue_len_max);
    let hello = frame::encode(
        Kind::Hello,
        ctx.cluster,
        cfg.id,
        &Hello {
            protocol: P::NAME.to_string(),
        },
        cfg.limits.frame_payload_bytes_max,
    )
    .map_err(|e| e.to_string())?;
    let mut peers = Vec::new();
    let mut writers = Vec::new();
    for n in &cfg.cluster.nodes {
        if n.id == cfg.id {
            peers.push(None);
            continue;
        }
        let addr = resolve(&n.address)?;
        let (tx, rx) = mpsc::channel(cfg.limits.peer_queue_len_max);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        writers.push(tokio::spawn(connection::peer_writer(
            ctx.clone(),
            n.id,
            addr,
            hello.clone(),
            rx,
            queued_bytes.clone(),
            stop_rx.clone(),
        )));
        peers.push(Some(PeerOut { tx, queued_bytes }));
    }
    let rng = Rng::new(cfg.seed);
    let next_conn = Arc::new(AtomicU64::new(1));
    let acceptors = vec![tokio::spawn(connection::accept_peers::<P>(
        peer_listener,
        ctx.clone(),
        in_tx.clone(),
    ))];
    let mut acceptors = acceptors;
    if let Some(l) = client_listener {
        acceptors.push(tokio::spawn(connection::accept_clients::<P>(
            l,
            ctx.clone(),
            in_tx.clone(),
            next_conn,
        )));
    }
    drop(in_tx);
    info!(
        node = cfg.id,
        protocol = P::NAME,
        peer = %peer_addr,
        clients = ?client_addr,
        seed = cfg.seed,
        records = recovered.records_replayed,
        snapshot_lsn = recovered.snapshot_lsn,
        last_lsn = recovered.last_lsn,
        "node starting"
    );
    // The start handler runs here; its effects are routed by the loop like
    // those of any other handler.
    let mut fx = Fx { effects: Vec::new() };
    let state = actor.handle_start(id, recovered.storage.as_ref(), &mut fx);
    let mut lp = Loop::<P> {
        state,
        actor,
        id,
        ctx,
        rng,
        inbound: in_rx,
        peers,
        clients: BTreeMap::new(),
        routes: HashMap::new(),
        timers: BTreeMap::new(),
        choices: BTreeMap::new(),
        local: VecDeque::new(),
        commit_tx: Some(committer.tx),
        durable: committer.durable,
        durable_lsn: recovered.last_lsn,
        last_lsn: recovered.last_lsn,
        batch: Vec::new(),
        unsynced: VecDeque::new(),
        unsynced_bytes: 0,
        held: VecDeque::new(),
        log_bytes: recovered.log_bytes,
        fx,
        stats: stats.clone(),
        failed: None,
        stopping: false,
    };
    let thread = committer.thread;
    let shutdown_flush = Duration::from_millis(cfg.limits.shutdown_flush_ms_max);
    let done = tokio::spawn(async move {
        let exit = lp.run(stop_rx).await;
        // Dropping the loop drops the peer queues' senders: writers finish
        // what is queued and end.
        drop(lp);
        let mut writers = writers;
        let _ = tokio::time::timeout(shutdown_flush, async {
            for w in &mut writers {
                let _ = w.await;
            }
        })
        .await;
        // Writers still waiting to reconnect to a peer that is down, and
        // the acceptors, have nothing left to do.
        for t in writers.iter().chain(&acceptors) {
            t.abort();
        }
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        exit
    });
    Ok(Running {
        stats,
        peer_addr,
        client_addr,
        stop,
        done,
    })
}

/// One effect of a handler, in the order the handler produced it.
pub enum Effect<P: Protocol> {
    /// `early`: the message waits for the durability of earlier handlers
    /// only, not of this one (`send early`).
    Send(Id, P::Msg, bool),
    SetTimer(P::Timer, Range<Duration>),
    CancelTimer(P::Timer),
    Choose(&'static str, Vec<P::Random>),
    Delta(P::Delta),
}

/// The runtime's `Effects`: collects a handler's effects so the loop can
/// persist the deltas before releasing the messages.
pub struct Fx<P: Protocol> {
    pub effects: Vec<Effect<P>>,
}

impl<P: Protocol> Effects<P, P::Delta> for Fx<P> {
    const DELTAS: bool = true;
    const FULL_SAVE: bool = false;
    // Nothing evaluates properties here: ghost writes are compiled away.
    const GHOST: bool = false;

    fn send(&mut self, dst: Id, msg: P::Msg) {
        self.effects.push(Effect::Send(dst, msg, false));
    }
    fn send_early(&mut self, dst: Id, msg: P::Msg) {
        self.effects.push(Effect::Send(dst, msg, true));
    }
    fn set_timer(&mut self, timer: P::Timer, range: Range<Duration>) {
        self.effects.push(Effect::SetTimer(timer, range));
    }
    fn cancel_timer(&mut self, timer: P::Timer) {
        self.effects.push(Effect::CancelTimer(timer));
    }
    fn choose(&mut self, key: &'static str, options: Vec<P::Random>) {
        self.effects.push(Effect::Choose(key, options));
    }
    /// Never called: with `FULL_SAVE = false` generated code reports deltas.
    fn save(&mut self, _storage: P::Storage) {}
    fn delta(&mut self, delta: P::Delta) {
        self.effects.push(Effect::Delta(delta));
    }
    fn mark(&self) -> usize {
        self.effects.len()
    }
    fn rollback(&mut self, mark: usize) {
        self.effects.truncate(mark);
    }
}

enum Output {
    Peer(usize, Vec<u8>),
    /// A response for session `.0`: it goes to the connection that last
    /// carried a request of the session, looked up when it is released.
    Client(u64, Vec<u8>),
}

/// Sessions one client connection may carry before the oldest loses its
/// route (a client process normally has one or a few).
const SESSIONS_PER_CONNECTION_MAX: usize = 64;

/// A client connection: where its responses go, and the sessions that
/// last sent a request on it (oldest first).
struct ClientConn {
    tx: mpsc::Sender<Vec<u8>>,
    sessions: VecDeque<u64>,
}

enum Input<P: Protocol> {
    Msg(Id, P::Msg),
    Timeout(P::Timer),
    Random(P::Random),
}

struct Loop<P: Protocol> {
    actor: P,
    id: Id,
    state: P::State,
    ctx: Ctx,
    rng: Rng,
    inbound: mpsc::Receiver<Event<P>>,
    peers: Vec<Option<PeerOut>>,
    clients: BTreeMap<u64, ClientConn>,
    /// Session id -> the connection that last carried one of its requests.
    /// A reply is routed by session, not by connection: the client may
    /// have reconnected since its request (a reply to a session with no
    /// route here is dropped; the client retries and the service answers
    /// from its session table).
    routes: HashMap<u64, u64>,
    timers: BTreeMap<P::Timer, Instant>,
    /// Pending `choose` outcomes by key; a later `choose` of the same key
    /// replaces an earlier one, an empty one cancels it (stateright's rule).
    choices: BTreeMap<&'static str, P::Random>,
    /// Messages the node sent to itself.
    local: VecDeque<P::Msg>,
    commit_tx: Option<std::sync::mpsc::Sender<Cmd>>,
    durable: watch::Receiver<Durable>,
    durable_lsn: u64,
    last_lsn: u64,
    batch: Vec<Record>,
    unsynced: VecDeque<(u64, usize)>,
    unsynced_bytes: usize,
    /// Outputs waiting for the fsync of record `.0`.
    held: VecDeque<(u64, Output)>,
    log_bytes: u64,
    fx: Fx<P>,
    stats: Arc<NodeStats>,
    failed: Option<String>,
    stopping: bool,
}

impl<P: Protocol> Loop<P> {
    async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Exit {
        self.after_handler(true);
        loop {
            self.run_due_timers();
            self.run_local();
            self.flush_batch();
            if let Some(exit) = self.finished() {
                return exit;
            }
            let accepting = self.accepting();
            let busy = accepting && (!self.local.is_empty() || !self.choices.is_empty());
            let deadline = self.timers.values().min().copied();
            tokio::select! {
                biased;
                r = stop.changed(), if !self.stopping => {
                    if r.is_err() || *stop.borrow() {
                        info!(node = self.ctx.id, "stopping: flushing durable state and queued messages");
                        self.stopping = true;
                    }
                }
                r = self.durable.changed() => {
                    if r.is_err() {
                        return Exit::DiskFailed("the commit thread stopped".into());
                    }
                    let d = self.durable.borrow_and_update().clone();
                    if let Some(e) = d.failed {
                        error!(node = self.ctx.id, error = %e, "disk failure: stopping without releasing unsynced messages");
                        return Exit::DiskFailed(e);
                    }
                    self.on_durable(d.lsn);
                }
                ev = self.inbound.recv(), if accepting => {
                    let Some(ev) = ev else { return Exit::Stopped };
                    self.on_event(ev);
                    for _ in 1..self.ctx.limits.batch_len_max {
                        match self.inbound.try_recv() {
                            Ok(ev) => self.on_event(ev),
                            Err(_) => break,
                        }
                        if self.failed.is_some() {
                            break;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && accepting => {}
                _ = std::future::ready(()), if busy => {}
            }
        }
    }

    /// Whether the loop takes new events: not when stopping or failed, and
    /// not while too much awaits an fsync (the disk sets the pace).
    fn accepting(&self) -> bool {
        !self.stopping
            && self.failed.is_none()
            && self.held.len() < self.ctx.limits.held_len_max
            && self.unsynced_bytes < self.ctx.limits.unsynced_bytes_max
    }

    /// The loop is done when it is stopping (asked to, or failed) and every
    /// record is durable and every held output released.
    fn finished(&mut self) -> Option<Exit> {
        if !(self.stopping || self.failed.is_some()) {
            return None;
        }
        if !self.batch.is_empty() || self.durable_lsn < self.last_lsn || !self.held.is_empty() {
            return None;
        }
        Some(match &self.failed {
            Some(e) => Exit::HandlerFailed(e.clone()),
            None => Exit::Stopped,
        })
    }

    fn on_event(&mut self, ev: Event<P>) {
        match ev {
            Event::Peer { src, msg } => self.handle(Input::Msg(src, msg)),
            Event::Request { conn, msg } => {
                let Some(tag) = P::client_msg(&msg).and_then(|m| match m {
                    smelt_support::ClientMsg::Request(tag, _) => Some(tag),
                    _ => None,
                }) else {
                    return;
                };
                if !self.route_session(conn, tag.session.id) {
                    return;
                }
                // The protocol sees the session as the request's sender,
                // as the model's client actor is (`Client::node`).
                self.handle(Input::Msg(tag.node(), msg));
            }
            Event::ClientOpen { conn, tx } => {
                self.clients.insert(
                    conn,
                    ClientConn {
                        tx,
                        sessions: VecDeque::new(),
                    },
                );
            }
            Event::ClientClosed { conn } => {
                if let Some(c) = self.clients.remove(&conn) {
                    for s in c.sessions {
                        if self.routes.get(&s) == Some(&conn) {
                            self.routes.remove(&s);
                        }
                    }
                }
                debug_assert!(self.routes.values().all(|c| self.clients.contains_key(c)));
            }
        }
    }

    /// Replies to `session` now go to connection `conn`. False when the
    /// connection is gone (its request arrived after it closed).
    fn route_session(&mut self, conn: u64, session: u64) -> bool {
        if !self.clients.contains_key(&conn) {
            return false;
        }
        if let Some(old) = self.routes.insert(session, conn).filter(|old| *old != conn) {
            if let Some(o) = self.clients.get_mut(&old) {
                o.sessions.retain(|s| *s != session);
            }
        }
        let Some(c) = self.clients.get_mut(&conn) else {
            return false;
        };
        if !c.sessions.contains(&session) {
            c.sessions.push_back(session);
            if c.sessions.len() > SESSIONS_PER_CONNECTION_MAX {
                if let Some(s) = c.sessions.pop_front() {
                    if self.routes.get(&s) == Some(&conn) {
                        self.routes.remove(&s);
                    }
                }
            }
        }
        debug_assert!(self.routes.len() <= self.clients.len() * SESSIONS_PER_CONNECTION_MAX);
        true
    }

    fn run_due_timers(&mut self) {
        if !self.accepting() || self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut due: Vec<(Instant, P::Timer)> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, at)| (*at, t.clone()))
            .collect();
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in due {
            // An earlier timeout handler may have cancelled or re-armed it.
            if self.timers.get(&t).is_some_and(|at| *at <= now) {
                self.timers.remove(&t);
                self.handle(Input::Timeout(t));
            }
        }
    }

    /// Runs the choices and self-messages pending at the start of the call;
    /// any they create wait for the next turn, so I/O is never starved.
    fn run_local(&mut self) {
        if !self.accepting() {
            return;
        }
        for (_, r) in std::mem::take(&mut self.choices) {
            self.handle(Input::Random(r));
        }
        for _ in 0..self.local.len() {
            let Some(m) = self.local.pop_front() else { break };
            self.handle(Input::Msg(self.id, m));
        }
    }

    fn handle(&mut self, input: Input<P>) {
        if self.failed.is_some() {
            return;
        }
        // The state is handed over owned, so the generated handler changes
        // it in place: a handler's CPU cost follows what it changes, not the
        // size of the state (a long log is not copied per append).
        let mut cow: Cow<'_, P::NodeState> = Cow::Owned(std::mem::take(&mut self.state));
        match input {
            Input::Msg(src, msg) => self.actor.handle_msg(self.id, &mut cow, src, msg, &mut self.fx),
            Input::Timeout(t) => self.actor.handle_timeout(self.id, &mut cow, &t, &mut self.fx),
            Input::Random(r) => self.actor.handle_random(self.id, &mut cow, &r, &mut self.fx),
        }
        self.state = cow.into_owned();
        self.after_handler(true);
    }

    /// Persists, schedules and routes one handler's effects.
    fn after_handler(&mut self, changed: bool) {
        self.stats.handlers.fetch_add(1, Ordering::Relaxed);
        // A handler error is recorded in the state (the generated wrapper
        // rolled its effects back); only a changed state can carry a new one.
        if changed && self.failed.is_none() {
            if let Some(e) = P::failure(&self.state) {
                error!(node = self.ctx.id, error = %e, "handler failed; the node stops (fail-stop)");
                self.failed = Some(e.to_string());
            }
        }
        let mut deltas = Vec::new();
        let mut sends = Vec::new();
        let now = Instant::now();
        // What the state was before this handler: an early send may leave
        // once that is durable. (The checker explores the crash that then
        // loses this handler's writes but not the message: a torn step.)
        let before = self.last_lsn;
        for e in self.fx.effects.drain(..) {
            match e {
                Effect::Delta(d) => deltas.push(d),
                Effect::Send(dst, msg, early) => sends.push((dst, msg, early)),
                Effect::SetTimer(t, range) => {
                    let at = now + self.rng.duration_in(&range);
                    self.timers.insert(t, at);
                }
                Effect::CancelTimer(t) => {
                    self.timers.remove(&t);
                }
                Effect::Choose(key, options) => {
                    if options.is_empty() {
                        self.choices.remove(key);
                    } else {
                        let i = self.rng.below(options.len() as u64) as usize;
                        if let Some(r) = options.into_iter().nth(i) {
                            self.choices.insert(key, r);
                        }
                    }
                }
            }
        }
        if !deltas.is_empty() {
            match postcard::to_stdvec(&deltas) {
                Ok(payload) if payload.len() as u64 <= crate::storage::RECORD_BYTES_MAX => {
                    self.last_lsn += 1;
                    let bytes = payload.len() + crate::storage::RECORD_HEADER_LEN as usize;
                    self.unsynced.push_back((self.last_lsn, bytes));
                    self.unsynced_bytes += bytes;
                    self.log_bytes += bytes as u64;
                    self.batch.push(Record {
                        lsn: self.last_lsn,
                        payload,
                    });
                }
                Ok(payload) => {
                    // Dropping the deltas would make memory and disk differ.
                    self.failed = Some(format!("one handler's durable changes take {} bytes", payload.len()));
                    error!(
                        node = self.ctx.id,
                        "a handler's durable changes exceed the record limit; stopping"
                    );
                    return;
                }
                Err(e) => {
                    self.failed = Some(format!("cannot encode durable changes: {e}"));
                    error!(node = self.ctx.id, error = %e, "cannot encode durable changes; stopping");
                    return;
                }
            }
        }
        let tag = self.last_lsn;
        for (dst, msg, early) in sends {
            self.route(if early { before } else { tag }, dst, msg);
        }
    }

    fn route(&mut self, tag: u64, dst: Id, msg: P::Msg) {
        let d = usize::from(dst) as u64;
        let out = if dst == self.id {
            if self.local.len() < self.ctx.limits.local_queue_len_max {
                self.local.push_back(msg);
            } else {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        } else if d < self.ctx.servers {
            match frame::encode(
                Kind::Peer,
                self.ctx.cluster,
                self.ctx.id,
                &msg,
                self.ctx.limits.frame_payload_bytes_max,
            ) {
                Ok(f) => Output::Peer(d as usize, f),
                Err(e) => {
                    warn!(node = self.ctx.id, to = d, error = %e, "message not sent");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        } else {
            match connection::response_frame::<P>(&self.ctx, &msg) {
                Some((session, Ok(f))) => Output::Client(session, f),
                Some((_, Err(e))) => {
                    warn!(node = self.ctx.id, error = %e, "reply not sent");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                None => {
                    debug!(
                        node = self.ctx.id,
                        to = d,
                        "a non-client message to a client id is dropped"
                    );
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        };
        if tag <= self.durable_lsn && self.held.is_empty() {
            self.deliver(out);
        } else {
            self.held.push_back((tag, out));
        }
    }

    fn deliver(&mut self, out: Output) {
        self.stats.released.fetch_add(1, Ordering::Relaxed);
        let ok = match out {
            Output::Peer(i, f) => match self.peers.get(i).and_then(|p| p.as_ref()) {
                Some(p) => p.offer(f, self.ctx.limits.peer_queue_bytes_max),
                None => false,
            },
            Output::Client(session, f) => match self.routes.get(&session).and_then(|c| self.clients.get(c)) {
                Some(c) => c.tx.try_send(f).is_ok(),
                None => false,
            },
        };
        if !ok {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_durable(&mut self, lsn: u64) {
        self.durable_lsn = self.durable_lsn.max(lsn);
        while self.unsynced.front().is_some_and(|(l, _)| *l <= self.durable_lsn) {
            if let Some((_, b)) = self.unsynced.pop_front() {
                self.unsynced_bytes -= b;
            }
        }
        while self.held.front().is_some_and(|(l, _)| *l <= self.durable_lsn) {
            if let Some((_, out)) = self.held.pop_front() {
                self.deliver(out);
            }
        }
    }

    /// Hands this turn's records to the committer and, when the log has
    /// grown past the last snapshot, asks for a new snapshot.
    fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let Some(tx) = &self.commit_tx else { return };
        if tx.send(Cmd::Append(batch)).is_err() {
            // The committer is gone; `durable.changed()` reports why.
            self.commit_tx = None;
            return;
        }
        // A failed handler's changes to the state may be partly applied in
        // place while its deltas were rolled back: after a failure the
        // state is no longer what the log says, so it is never snapshotted.
        let last_snapshot = self.stats.commit.last_snapshot_bytes.load(Ordering::Relaxed);
        if self.failed.is_none() && self.log_bytes >= self.ctx.limits.snapshot_log_bytes_min.max(last_snapshot) {
            if let Some(storage) = P::storage_of(&self.state) {
                let encode = Box::new(move || postcard::to_stdvec(&storage).map_err(|e| e.to_string()));
                let _ = tx.send(Cmd::Snapshot {
                    lsn: self.last_lsn,
                    encode,
                });
                debug!(
                    node = self.ctx.id,
                    lsn = self.last_lsn,
                    log_bytes = self.log_bytes,
                    "snapshot requested"
                );
                self.log_bytes = 0;
            }
        }
    }
}
