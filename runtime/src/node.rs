//! A node: the tokio shell around the event-loop core (`core.rs`). One task
//! owns the core and feeds it events from I/O tasks (through a bounded
//! queue), a clock and the committer thread; it hands the core's records to
//! the committer and its released outputs to the peer and client queues.
//!
//! What the core keeps (handler atomicity, durable before visible) is
//! described there. This shell adds:
//! - *Group commit*: the loop takes a batch of events, runs their handlers,
//!   and hands all resulting records to the committer at once; it keeps
//!   running handlers while the fsync is in flight.
//! - *Bounded memory*: when too many outputs or record bytes await an
//!   fsync, the loop stops taking events until the disk catches up.
//! - Routing: a reply goes to the connection that last carried a request
//!   of its session, looked up when the reply is released.

use crate::cluster::{resolve, Cluster};
use crate::commit::{self, Cmd, CommitStats, Durable};
use crate::connection::{self, Ctx, PeerOut};
use crate::core::{Core, Out};
use crate::frame::{self, Hello};
use crate::storage::{Recovered, Store};
use smelt_support::{Id, Protocol};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info};

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
    /// Messages a node sent itself, not yet handled; one more stops the
    /// node (exit 1) rather than drop it.
    pub local_queue_len_max: usize,
    /// The log is compacted into a snapshot once it holds this many bytes
    /// and more than the last snapshot's size.
    pub snapshot_log_bytes_min: u64,
    pub reconnect_ms_min: u64,
    pub reconnect_ms_max: u64,
    /// A peer link is pinged this often; the receiver acknowledges.
    pub link_keepalive_ms: u64,
    /// A peer link with no acknowledgement for this long is dead: the
    /// writer reconnects and resends what is unacknowledged.
    pub link_dead_ms: u64,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    /// How long a stopping node waits for its queues to drain.
    pub shutdown_flush_ms_max: u64,
    /// A bug, switched on only by the simulator's own tests to prove they
    /// catch it: outputs leave without waiting for their record's fsync.
    /// Never set in a deployment.
    pub unsafe_release_before_fsync: bool,
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
            reconnect_ms_max: 1000,
            link_keepalive_ms: 200,
            link_dead_ms: 1000,
            connect_timeout_ms: 1000,
            handshake_timeout_ms: 5000,
            shutdown_flush_ms_max: 2000,
            unsafe_release_before_fsync: false,
        }
    }
}

pub struct NodeConfig {
    pub cluster: Cluster,
    pub id: u64,
    pub seed: u64,
    pub limits: Limits,
    /// The data directory, for the disk use `admin status` reports.
    pub data_dir: Option<std::path::PathBuf>,
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

/// The kinds of events handlers run for, as metrics name them.
pub const HANDLER_KINDS: [&str; 4] = ["message", "request", "timeout", "choice"];

#[derive(Debug, Default)]
pub struct NodeStats {
    pub handlers: AtomicU64,
    /// Handlers by kind, in `HANDLER_KINDS` order; they add up to
    /// `handlers` (less the start handler).
    pub handler_kinds: [AtomicU64; 4],
    /// Outgoing peer links connected now.
    pub peer_links_up: Arc<AtomicU64>,
    /// What the event loop last published for the metrics exporter.
    pub status: std::sync::Mutex<crate::metrics::Status>,
    /// Messages and replies dropped because a queue was full or the
    /// destination unknown.
    pub dropped: AtomicU64,
    /// Outputs released after their fsync.
    pub released: AtomicU64,
    /// Messages a peer link dropped because the peer acknowledged nothing
    /// for too long (its resend buffer was full).
    pub link_dropped: Arc<AtomicU64>,
    /// Connections refused in the TLS handshake (no certificate of the
    /// cluster's CA, an expired one, plaintext, no handshake in time).
    pub tls_refused: Arc<AtomicU64>,
    pub commit: Arc<CommitStats>,
}

impl NodeStats {
    /// `(kind, handlers run)` for every kind of event.
    pub fn handlers_by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        HANDLER_KINDS
            .iter()
            .zip(&self.handler_kinds)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
    }
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
    let stats = Arc::new(NodeStats::default());
    let ctx = Ctx {
        cluster: cfg.cluster.hash(),
        id: cfg.id,
        servers,
        limits: cfg.limits.clone(),
        tls: crate::tls::NodeTls::load(&cfg.cluster, cfg.id)?,
        tls_refused: stats.tls_refused.clone(),
        admin: Some(Arc::new(crate::admin::AdminInfo {
            node: cfg.id,
            protocol: P::NAME,
            started: std::time::Instant::now(),
            data_dir: cfg.data_dir.clone(),
            stats: stats.clone(),
        })),
        peer_hellos: Ctx::hello_counts(servers),
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

    let committer = commit::spawn(store, recovered.last_lsn, stats.commit.clone())
        .map_err(|e| format!("cannot start the commit thread: {e}"))?;
    let (stop, stop_rx) = watch::channel(false);
    let (in_tx, in_rx) = mpsc::channel(cfg.limits.inbound_queue_len_max);
    let hello = Hello {
        protocol: P::NAME.to_string(),
        // A new number at every start: receivers restart the link's
        // numbering for a new process.
        incarnation: crate::rng::Rng::new(crate::rng::Rng::seed_from(cfg.id) ^ cfg.seed).next_u64(),
        written: 0,
    };
    let mut peers = Vec::new();
    let mut writers = Vec::new();
    for n in &cfg.cluster.nodes {
        if n.id == cfg.id {
            peers.push(None);
            continue;
        }
        let addr = resolve(&n.address)?;
        // Only TLS needs the name; a plaintext cluster may use addresses
        // that are no certificate name.
        let name = match &ctx.tls {
            Some(_) => crate::tls::server_name(&n.address)?,
            None => rustls::pki_types::ServerName::from(addr.ip()),
        };
        let (tx, rx) = mpsc::channel(cfg.limits.peer_queue_len_max);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        writers.push(tokio::spawn(connection::peer_writer(
            ctx.clone(),
            n.id,
            addr,
            name,
            hello.clone(),
            rx,
            queued_bytes.clone(),
            stats.link_dropped.clone(),
            stats.peer_links_up.clone(),
            stop_rx.clone(),
        )));
        peers.push(Some(PeerOut { tx, queued_bytes }));
    }
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
    let origin = Instant::now();
    let core = Core::start(
        actor,
        id,
        ctx.clone(),
        cfg.seed,
        &recovered,
        stats.clone(),
        Duration::ZERO,
    );
    let mut lp = Loop::<P> {
        core,
        origin,
        ctx,
        inbound: in_rx,
        peers,
        clients: BTreeMap::new(),
        routes: HashMap::new(),
        commit_tx: Some(committer.tx),
        durable: committer.durable,
        stats: stats.clone(),
        stopping: false,
        published: Duration::ZERO,
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

/// Sessions one client connection may carry before the oldest loses its
/// route (a client process normally has one or a few).
const SESSIONS_PER_CONNECTION_MAX: usize = 64;

/// A client connection: where its responses go, and the sessions that
/// last sent a request on it (oldest first).
struct ClientConn {
    tx: mpsc::Sender<Vec<u8>>,
    sessions: VecDeque<u64>,
}

struct Loop<P: Protocol> {
    core: Core<P>,
    /// The core's time zero.
    origin: Instant,
    ctx: Ctx,
    inbound: mpsc::Receiver<Event<P>>,
    peers: Vec<Option<PeerOut>>,
    clients: BTreeMap<u64, ClientConn>,
    /// Session id -> the connection that last carried one of its requests.
    /// A reply is routed by session, not by connection: the client may
    /// have reconnected since its request (a reply to a session with no
    /// route here is dropped; the client retries and the service answers
    /// from its session table).
    routes: HashMap<u64, u64>,
    commit_tx: Option<std::sync::mpsc::Sender<Cmd>>,
    durable: watch::Receiver<Durable>,
    stats: Arc<NodeStats>,
    stopping: bool,
    /// When `publish` last ran (core time).
    published: Duration,
}

impl<P: Protocol> Loop<P> {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Publishes what the metrics exporter shows (a few words and the
    /// protocol's scalar variables; taken at most every 10 ms).
    fn publish(&mut self, now: Duration) {
        if now < self.published + Duration::from_millis(10) && self.published != Duration::ZERO {
            return;
        }
        self.published = now;
        let state = self.core.state();
        let (role, phase) = P::describe_state(state);
        let mut vars = P::scalar_fields(state);
        vars.extend(self.core.spec_metrics());
        let status = crate::metrics::Status {
            role,
            state: phase,
            vars,
            spec_ready: self.core.spec_ready(),
            accepting: self.core.accepting(),
            failed: self.core.failed().is_some(),
            stopping: self.stopping,
            last_lsn: self.core.last_lsn(),
            durable_lsn: self.core.durable_lsn(),
            inbound_queue_len: self.inbound.len(),
            client_connections: self.clients.len(),
        };
        if let Ok(mut s) = self.stats.status.lock() {
            *s = status;
        }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) -> Exit {
        loop {
            let now = self.now();
            self.core.tick(now);
            self.flush_batch();
            self.deliver_ready();
            self.publish(now);
            if let Some(exit) = self.core.finished() {
                return exit;
            }
            let accepting = self.core.accepting();
            let busy = self.core.busy();
            let deadline = self.core.next_deadline().map(|d| self.origin + d);
            tokio::select! {
                biased;
                r = stop.changed(), if !self.stopping => {
                    if r.is_err() || *stop.borrow() {
                        info!(node = self.ctx.id, "stopping: flushing durable state and queued messages");
                        self.stopping = true;
                        self.core.stop();
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
                    self.core.durable(d.lsn);
                    self.core.snapshot_taken(self.stats.commit.last_snapshot_bytes.load(Ordering::Relaxed));
                }
                ev = self.inbound.recv(), if accepting => {
                    let Some(ev) = ev else { return Exit::Stopped };
                    self.on_event(ev);
                    for _ in 1..self.ctx.limits.batch_len_max {
                        if self.core.failed().is_some() {
                            break;
                        }
                        match self.inbound.try_recv() {
                            Ok(ev) => self.on_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && accepting => {}
                _ = std::future::ready(()), if busy => {}
            }
        }
    }

    fn on_event(&mut self, ev: Event<P>) {
        let now = self.now();
        match ev {
            Event::Peer { src, msg } => self.core.peer_message(src, msg, now),
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
                self.core.client_request(msg, now);
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

    /// Hands what the core released to the peer and client queues.
    fn deliver_ready(&mut self) {
        for out in self.core.take_outputs() {
            let ok = match out {
                Out::Peer { to, msg } => {
                    let ok = match self.peers.get(to as usize).and_then(|p| p.as_ref()) {
                        Some(p) => p.offer(msg, self.ctx.limits.peer_queue_bytes_max),
                        None => false,
                    };
                    if !ok {
                        // A loss the model does not explore (ARCHITECTURE.md,
                        // the contract): said, but not once per message.
                        let n = self.stats.dropped.load(Ordering::Relaxed);
                        if n.is_power_of_two() || n == 0 {
                            tracing::warn!(
                                peer = to,
                                dropped_so_far = n + 1,
                                "the queue to a peer is full: message dropped"
                            );
                        }
                    }
                    ok
                }
                Out::Client { session, frame } => match self.routes.get(&session).and_then(|c| self.clients.get(c)) {
                    Some(c) => c.tx.try_send(frame).is_ok(),
                    None => false,
                },
            };
            if !ok {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands this turn's records (and a snapshot, if the core asks for
    /// one) to the committer.
    fn flush_batch(&mut self) {
        let Some(commit) = self.core.take_commit() else { return };
        let Some(tx) = &self.commit_tx else { return };
        if tx.send(Cmd::Append(commit.records)).is_err() {
            // The committer is gone; `durable.changed()` reports why.
            self.commit_tx = None;
            return;
        }
        if let Some((lsn, storage)) = commit.snapshot {
            let encode = Box::new(move || postcard::to_stdvec(&storage).map_err(|e| e.to_string()));
            let _ = tx.send(Cmd::Snapshot { lsn, encode });
        }
    }
}
