//! Nothing leaves a node before the fsync of the storage saved by the same
//! handler (and of every earlier handler) — except a `send early`, which
//! waits for the earlier handlers only: checked with an injected disk whose
//! fsync the test holds back or fails.

mod common;

use common::*;
use smelt_runtime::client::{Client, ClientOptions};
use smelt_runtime::cluster::{Cluster, NodeEntry};
use smelt_runtime::commit::Record;
use smelt_runtime::frame::{self, Kind};
use smelt_runtime::node::{self, Exit, Limits, NodeConfig, Running};
use smelt_runtime::storage::{self, Identity, Store};
use smelt_support::{Id, Protocol};
use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A disk whose appends block while the gate is closed, or fail. It counts
/// the appends that reached it, so a test can wait for the event "the node
/// has a record waiting for its fsync" instead of sleeping.
#[derive(Clone, Default)]
struct Gate {
    state: Arc<(Mutex<GateState>, Condvar)>,
}

/// (closed, failing, appends that reached the disk)
type GateState = (bool, bool, u64);

impl Gate {
    fn closed() -> Gate {
        let g = Gate::default();
        g.state.0.lock().expect("lock").0 = true;
        g
    }
    fn open(&self) {
        self.state.0.lock().expect("lock").0 = false;
        self.state.1.notify_all();
    }
    fn fail(&self) {
        self.state.0.lock().expect("lock").1 = true;
        self.open();
    }
    /// Waits until `n` appends have reached the disk (blocked or not).
    fn wait_appends(&self, n: u64) {
        let (lock, cv) = &*self.state;
        let g = lock.lock().expect("lock");
        let (g, t) = cv
            .wait_timeout_while(g, Duration::from_secs(20), |g| g.2 < n)
            .expect("wait");
        assert!(!t.timed_out(), "only {} of {n} appends reached the disk", g.2);
    }
}

/// Waits until the node has run `n` handlers (its start included).
fn wait_handlers(node: &Running, n: u64) {
    let done = eventually(Duration::from_secs(20), || {
        (node.stats.handlers.load(std::sync::atomic::Ordering::Relaxed) >= n).then_some(())
    });
    assert!(done.is_some(), "the node did not run {n} handlers");
}

fn released(node: &Running) -> u64 {
    node.stats.released.load(std::sync::atomic::Ordering::Relaxed)
}

struct GatedStore<S> {
    inner: S,
    gate: Gate,
}

impl<S: Store> Store for GatedStore<S> {
    fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        let (lock, cv) = &*self.gate.state;
        let mut g = lock.lock().expect("lock");
        g.2 += 1;
        cv.notify_all();
        while g.0 {
            g = cv.wait(g).expect("wait");
        }
        if g.1 {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        drop(g);
        self.inner.append(records)
    }
    fn snapshot(&mut self, lsn: u64, payload: &[u8]) -> std::io::Result<()> {
        self.inner.snapshot(lsn, payload)
    }
}

fn cluster(n: u64) -> Cluster {
    Cluster {
        cluster_id: "durability".into(),
        spec: None,
        nodes: (0..n)
            .map(|id| NodeEntry {
                id,
                role: "Server".into(),
                address: format!("127.0.0.1:{}", free_port()),
                client_address: Some(format!("127.0.0.1:{}", free_port())),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Starts node 0 of `cluster` in-process on a gated disk.
fn start<P: Protocol>(rt: &tokio::runtime::Runtime, name: &str, cluster: &Cluster, gate: Gate) -> Running {
    let dir = scratch(name).join("data");
    let layout = cluster.layout::<P>().expect("layout");
    let actor = P::server(Id::from(0), &layout).expect("server");
    let identity = Identity::of::<P>(cluster.hash(), 0);
    let (recovered, store) = storage::recover::<P>(&dir, &identity, &actor, Id::from(0), true).expect("recover");
    let store = GatedStore {
        inner: store.expect("store"),
        gate,
    };
    let cfg = NodeConfig {
        cluster: cluster.clone(),
        id: 0,
        seed: 1,
        limits: Limits::default(),
        data_dir: None,
    };
    rt.block_on(node::start::<P, _>(cfg, store, recovered)).expect("start")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends one request from a thread; the reply (or error) arrives on the
/// returned channel.
fn request<P: Protocol>(cluster: &Cluster, req: P::Request) -> mpsc::Receiver<Result<P::Reply, String>> {
    let (tx, rx) = mpsc::channel();
    let cluster = cluster.clone();
    std::thread::spawn(move || {
        let opts = ClientOptions {
            attempt_timeout_ms: 5000,
            attempts_max: 1,
            ..ClientOptions::default()
        };
        let mut c = Client::<P>::new(&cluster, opts).expect("client");
        let r = c.call_at(Id::from(0), req).map_err(|e| e.to_string());
        let _ = tx.send(r.and_then(|r| r.ok_or_else(|| "redirected".to_string())));
    });
    rx
}

#[test]
fn replies_wait_for_the_fsync_of_their_handler_and_all_before() {
    use common::journal::{Journal, Reply, Request};
    let rt = runtime();
    let cluster = cluster(1);
    let gate = Gate::closed();
    let node = start::<Journal>(&rt, "gate-reply", &cluster, gate.clone());

    let append = request::<Journal>(&cluster, Request::Append { v: 5 });
    // The append's record is at the (closed) disk: its handler ran.
    gate.wait_appends(1);
    // A read that saves nothing, handled after the append: its reply may
    // reveal the append, so it waits for the same fsync.
    let count = request::<Journal>(&cluster, Request::Count);
    wait_handlers(&node, 3);
    // Both handlers ran and nothing left the node: the only way out is a
    // release after an fsync, which the gate holds back.
    assert_eq!(released(&node), 0, "a reply left before its fsync");
    assert!(append.try_recv().is_err() && count.try_recv().is_err());

    gate.open();
    assert_eq!(
        append.recv_timeout(Duration::from_secs(5)).expect("reply"),
        Ok(Reply::Appended(1))
    );
    assert_eq!(
        count.recv_timeout(Duration::from_secs(5)).expect("reply"),
        Ok(Reply::Counted(1))
    );
    let _ = node.stop.send(true);
    assert_eq!(rt.block_on(node.done).expect("join"), Exit::Stopped);
}

/// Reads frames from one accepted connection and reports the kinds (all
/// but pings, which it acknowledges, as a receiver does: the link stays up).
fn fake_peer(listener: std::net::TcpListener) -> mpsc::Receiver<Kind> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else { return };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut last = 0u64;
        loop {
            while let Ok(Some((f, used))) = frame::decode(&buf, frame::PAYLOAD_BYTES_MAX) {
                buf.drain(..used);
                match f.kind {
                    Kind::Ping => {
                        let ack = frame::encode(Kind::Ack, f.cluster, 1, &last, frame::PAYLOAD_BYTES_MAX).expect("ack");
                        let _ = std::io::Write::write_all(&mut s, &ack);
                        continue;
                    }
                    Kind::Peer => {
                        if let Ok((seq, _)) = frame::payload::<(u64, Vec<u8>)>(&f.payload) {
                            last = seq;
                        }
                    }
                    _ => {}
                }
                if tx.send(f.kind).is_err() {
                    return;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    rx
}

/// Node 0 of a three-server cluster on a closed gate, with fake peers 1
/// and 2 that have received its hello.
fn with_fake_peers<P: Protocol>(
    rt: &tokio::runtime::Runtime,
    name: &str,
) -> (Cluster, Vec<mpsc::Receiver<Kind>>, Gate, Running) {
    let cluster = cluster(3);
    let peers: Vec<_> = (1..3)
        .map(|i| fake_peer(std::net::TcpListener::bind(&cluster.nodes[i].address).expect("bind")))
        .collect();
    let gate = Gate::closed();
    let node = start::<P>(rt, name, &cluster, gate.clone());
    for p in &peers {
        assert_eq!(p.recv_timeout(Duration::from_secs(5)), Ok(Kind::Hello));
    }
    (cluster, peers, gate, node)
}

#[test]
fn peer_messages_wait_for_the_fsync() {
    use common::paxos::{Paxos, Request};
    let rt = runtime();
    let (cluster, peers, gate, node) = with_fake_peers::<Paxos>(&rt, "gate-peer");
    // The Put raises the ballot (durable) and broadcasts Prepare.
    let _put = request::<Paxos>(&cluster, Request::Put { v: 1 });
    gate.wait_appends(1);
    assert_eq!(released(&node), 0, "Prepare released before the fsync");
    for p in &peers {
        assert!(p.try_recv().is_err(), "Prepare sent before the fsync");
    }
    gate.open();
    for p in &peers {
        assert_eq!(p.recv_timeout(Duration::from_secs(5)), Ok(Kind::Peer));
    }
    let _ = node.stop.send(true);
    assert_eq!(rt.block_on(node.done).expect("join"), Exit::Stopped);
}

/// `send early` leaves before its own handler's write is durable, but
/// never before an earlier handler's: the second Bump's early message
/// waits for the first Bump's fsync, like everything else.
#[test]
fn early_messages_wait_only_for_earlier_handlers() {
    use common::early::{Early, Reply, Request};
    let rt = runtime();
    let (cluster, peers, gate, node) = with_fake_peers::<Early>(&rt, "gate-early");
    let first = request::<Early>(&cluster, Request::Bump);
    // The first Bump's `Soon` leaves at once; its `Later` and the reply
    // wait for the fsync the gate holds back.
    gate.wait_appends(1);
    for p in &peers {
        assert_eq!(
            p.recv_timeout(Duration::from_secs(5)),
            Ok(Kind::Peer),
            "early message held"
        );
    }
    // Released: the two `Soon`s, nothing else (releases only happen after
    // an fsync, or for an early message, at once in its handler).
    assert_eq!(
        released(&node),
        2,
        "an ordinary message or the reply left before the fsync"
    );
    let second = request::<Early>(&cluster, Request::Bump);
    // The second Bump ran: its `Soon` waits for the first Bump's fsync.
    wait_handlers(&node, 3);
    assert_eq!(
        released(&node),
        2,
        "an early message left before an earlier handler's fsync"
    );
    for p in &peers {
        assert!(p.try_recv().is_err(), "sent before the fsync");
    }
    assert!(first.try_recv().is_err(), "reply before fsync");

    gate.open();
    // The first Later, the second Soon and the second Later.
    for p in &peers {
        for _ in 0..3 {
            assert_eq!(p.recv_timeout(Duration::from_secs(5)), Ok(Kind::Peer));
        }
    }
    assert_eq!(
        first.recv_timeout(Duration::from_secs(5)).expect("reply"),
        Ok(Reply::Bumped(1))
    );
    assert_eq!(
        second.recv_timeout(Duration::from_secs(5)).expect("reply"),
        Ok(Reply::Bumped(2))
    );
    let _ = node.stop.send(true);
    assert_eq!(rt.block_on(node.done).expect("join"), Exit::Stopped);
}

#[test]
fn a_failed_fsync_stops_the_node_and_releases_nothing() {
    use common::journal::{Journal, Request};
    let rt = runtime();
    let cluster = cluster(1);
    let gate = Gate::closed();
    let node = start::<Journal>(&rt, "gate-fail", &cluster, gate.clone());
    let append = request::<Journal>(&cluster, Request::Append { v: 5 });
    gate.wait_appends(1);
    gate.fail();
    let exit = rt.block_on(node.done).expect("join");
    assert!(
        matches!(&exit, Exit::DiskFailed(e) if e.contains("injected")),
        "{exit:?}"
    );
    assert!(append
        .recv_timeout(Duration::from_secs(6))
        .expect("client gave up")
        .is_err());
    assert_eq!(node.stats.released.load(std::sync::atomic::Ordering::Relaxed), 0);
}
