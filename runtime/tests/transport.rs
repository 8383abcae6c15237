//! The transport refuses what does not belong: frames of another cluster,
//! from unknown or changing senders, with bad checksums, or of the wrong
//! kind close their connection — and only that connection.
//!
//! And the receiving end of a peer link (`connection::read_peer`) keeps the
//! link's promises, observed from outside a node: a resend is delivered
//! once, an older connection of a sender is fenced, a new sender
//! incarnation restarts the numbering at `Hello.written`, and pings and
//! every `ACK_EVERY` messages are acknowledged with the last number
//! delivered. The test plays server 1: it dials node 0 with raw frames, and
//! node 0's own link to server 1 ends at a listener of the test, where the
//! protocol's replies show what node 0 handled, and in which order.

mod common;

use common::paxos::{Accept, Accepted, Msg, Paxos, Prepare, Prepared, Proposal};
use common::*;
use smelt_runtime::cluster::{Cluster, NodeEntry};
use smelt_runtime::frame::{self, Hello, Kind, PAYLOAD_BYTES_MAX};
use smelt_runtime::node::{self, Exit, Limits, NodeConfig};
use smelt_runtime::storage::{self, Identity};
use smelt_support::{Id, Protocol};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn hello(cluster: u64, sender: u64, protocol: &str) -> Vec<u8> {
    let h = Hello {
        protocol: protocol.into(),
        incarnation: 7,
        written: 0,
    };
    frame::encode(Kind::Hello, cluster, sender, &h, PAYLOAD_BYTES_MAX).expect("encode")
}

/// Message number 1 of a link: a Prepare.
fn prepare(cluster: u64, sender: u64, round: u64) -> Vec<u8> {
    let m = Msg::Prepare(Prepare {
        ballot: (round, Id::from(sender as usize)),
    });
    let bytes = postcard::to_stdvec(&m).expect("encode");
    frame::encode(Kind::Peer, cluster, sender, &(1u64, &bytes[..]), PAYLOAD_BYTES_MAX).expect("encode")
}

/// Whether the node closed the connection within a second.
fn closed(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let end = Instant::now() + Duration::from_secs(1);
    let mut b = [0u8; 64];
    while Instant::now() < end {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn send(addr: &str, frames: &[Vec<u8>]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    for f in frames {
        s.write_all(f).expect("send");
    }
    s
}

#[test]
fn bad_frames_close_only_their_connection() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = Cluster {
        cluster_id: "transport".into(),
        spec: None,
        nodes: (0..3)
            .map(|id| NodeEntry {
                id,
                role: "Server".into(),
                address: format!("127.0.0.1:{}", free_port()),
                client_address: Some(format!("127.0.0.1:{}", free_port())),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // Node 1 is played by the test: it watches what node 0 sends it.
    let peer1 = std::net::TcpListener::bind(&cluster.nodes[1].address).expect("bind");
    let dir = scratch("transport").join("data");
    let layout = cluster.layout::<Paxos>().expect("layout");
    let actor = Paxos::server(Id::from(0), &layout).expect("server");
    let identity = Identity::of::<Paxos>(cluster.hash(), 0);
    let (recovered, store) = storage::recover::<Paxos>(&dir, &identity, &actor, Id::from(0), true).expect("recover");
    let cfg = NodeConfig {
        cluster: cluster.clone(),
        id: 0,
        seed: 1,
        limits: Limits::default(),
        data_dir: None,
    };
    let node = rt
        .block_on(node::start::<Paxos, _>(cfg, store.expect("store"), recovered))
        .expect("start");
    let addr = cluster.nodes[0].address.clone();
    let ours = cluster.hash();

    let mut cases = vec![
        ("another cluster", send(&addr, &[hello(ours ^ 1, 1, "Paxos")])),
        ("unknown sender", send(&addr, &[hello(ours, 7, "Paxos")])),
        ("itself as sender", send(&addr, &[hello(ours, 0, "Paxos")])),
        ("another protocol", send(&addr, &[hello(ours, 1, "Raft")])),
        ("no hello first", send(&addr, &[prepare(ours, 1, 5)])),
        (
            "sender changes",
            send(&addr, &[hello(ours, 1, "Paxos"), prepare(ours, 2, 5)]),
        ),
        (
            "garbage",
            send(&addr, &[b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec()]),
        ),
    ];
    let mut bad_crc = prepare(ours, 1, 5);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    cases.push(("bad checksum", send(&addr, &[hello(ours, 1, "Paxos"), bad_crc])));
    let client_addr = cluster.nodes[0].client_address.clone().expect("client address");
    let wrong_cluster_request = frame::encode(
        Kind::Request,
        ours ^ 1,
        0,
        &(
            smelt_support::Client {
                session: smelt_support::Session { epoch: 1, id: 1 << 33 },
                seq: 1,
            },
            common::paxos::Request::Get,
        ),
        PAYLOAD_BYTES_MAX,
    )
    .expect("encode");
    cases.push((
        "client of another cluster",
        send(&client_addr, &[wrong_cluster_request]),
    ));
    cases.push((
        "peer frame on the client port",
        send(&client_addr, &[prepare(ours, 1, 5)]),
    ));
    for (what, mut s) in cases {
        assert!(closed(&mut s), "{what}: connection left open");
    }

    // The node is unharmed: a good Prepare from "node 1" gets its Prepared
    // back on node 0's own link to node 1.
    let (mut link, _) = peer1.accept().expect("node 0 dials node 1");
    let _good = send(&addr, &[hello(ours, 1, "Paxos"), prepare(ours, 1, 5)]);
    let mut buf = Vec::new();
    let mut kinds = Vec::new();
    let _ = link.set_read_timeout(Some(Duration::from_secs(5)));
    let mut chunk = [0u8; 1024];
    while kinds.len() < 2 {
        let n = link.read(&mut chunk).expect("node 0 answers");
        assert!(n > 0, "link closed");
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some((f, used))) = frame::decode(&buf, PAYLOAD_BYTES_MAX) {
            buf.drain(..used);
            // Pings on a quiet link are not what this test is about.
            if f.kind != Kind::Ping {
                kinds.push((f.kind, f.sender, f.payload));
            }
        }
    }
    assert_eq!((kinds[0].0, kinds[0].1), (Kind::Hello, 0));
    assert_eq!(kinds[1].0, Kind::Peer);
    let (seq, bytes): (u64, Vec<u8>) = frame::payload(&kinds[1].2).expect("a numbered message");
    assert_eq!(seq, 1, "the link's first message");
    let reply: Msg = frame::payload(&bytes).expect("decodes");
    assert!(
        matches!(&reply, Msg::Prepared(p) if p.ballot == (5, Id::from(1))),
        "{reply:?}"
    );

    let _ = node.stop.send(true);
    assert_eq!(rt.block_on(node.done).expect("join"), Exit::Stopped);
}

// ---------------------------------------------------------------------------
// The peer link's receiving end: dedup, fencing, incarnations, acks.
//
// No verdict below waits for "nothing happened": every read has a deadline
// (`DEADLINE`) that only turns a hang into a failure, and a message that
// must NOT be delivered is shown so by a later, distinguishable message
// whose reply comes next on node 0's (FIFO) link to server 1.

/// How long any one expected event may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// The fake sender: server 1.
const SENDER: u64 = 1;

/// Node 0, started in this process, with server 1's address a listener of
/// the test: `replies` yields what node 0 sends server 1, in link order.
struct Node0 {
    rt: tokio::runtime::Runtime,
    node: node::Running,
    dir: std::path::PathBuf,
    addr: String,
    cluster: u64,
    replies: mpsc::Receiver<Result<(u64, Msg), String>>,
}

impl Node0 {
    fn start(name: &str) -> Node0 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cluster = Cluster {
            cluster_id: format!("transport-{name}"),
            spec: None,
            nodes: (0..3)
                .map(|id| NodeEntry {
                    id,
                    role: "Server".into(),
                    address: format!("127.0.0.1:{}", free_port()),
                    client_address: None,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let listener = std::net::TcpListener::bind(&cluster.nodes[SENDER as usize].address).expect("bind");
        let replies = fake_receiver(listener, cluster.hash());
        let dir = scratch(name);
        let layout = cluster.layout::<Paxos>().expect("layout");
        let actor = Paxos::server(Id::from(0), &layout).expect("server");
        let identity = Identity::of::<Paxos>(cluster.hash(), 0);
        let (recovered, store) =
            storage::recover::<Paxos>(&dir.join("data"), &identity, &actor, Id::from(0), true).expect("recover");
        let cfg = NodeConfig {
            cluster: cluster.clone(),
            id: 0,
            seed: 1,
            limits: Limits::default(),
            data_dir: None,
        };
        let node = rt
            .block_on(node::start::<Paxos, _>(cfg, store.expect("store"), recovered))
            .expect("start");
        Node0 {
            rt,
            node,
            dir,
            addr: cluster.nodes[0].address.clone(),
            cluster: cluster.hash(),
            replies,
        }
    }

    /// The next message node 0 sends server 1, with its number on that link.
    fn reply(&self) -> (u64, Msg) {
        match self.replies.recv_timeout(DEADLINE) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("node 0's link to server 1: {e}"),
            Err(_) => panic!("node 0 sent server 1 nothing within {DEADLINE:?}"),
        }
    }

    /// A new connection from server 1 (incarnation `incarnation`, having
    /// written `written` messages before), its hello sent.
    fn connect(&self, incarnation: u64, written: u64) -> Conn {
        let s = TcpStream::connect(&self.addr).expect("connect");
        let mut c = Conn {
            s,
            buf: Vec::new(),
            cluster: self.cluster,
        };
        let h = Hello {
            protocol: "Paxos".into(),
            incarnation,
            written,
        };
        c.write(&frame::encode(Kind::Hello, self.cluster, SENDER, &h, PAYLOAD_BYTES_MAX).expect("encode"));
        c
    }

    fn stop(self) {
        let _ = self.node.stop.send(true);
        assert_eq!(self.rt.block_on(self.node.done).expect("join"), Exit::Stopped);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Plays server 1's receiving end of node 0's link: accepts node 0's
/// connections, answers pings with acks (so node 0 keeps the link up) and
/// passes on each numbered message once (a resend after a reconnect of
/// node 0's writer is skipped; a gap, or anything unexpected, is an error).
fn fake_receiver(listener: std::net::TcpListener, cluster: u64) -> mpsc::Receiver<Result<(u64, Msg), String>> {
    let (tx, rx) = mpsc::channel();
    let last = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (tx, last) = (tx.clone(), last.clone());
            std::thread::spawn(move || {
                let mut w = stream.try_clone().expect("clone");
                let mut r = std::io::BufReader::new(stream);
                let mut first = true;
                let fail = |e: String| {
                    let _ = tx.send(Err(e));
                };
                loop {
                    let mut header = [0u8; frame::HEADER_LEN];
                    if r.read_exact(&mut header).is_err() {
                        return;
                    }
                    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
                    let mut raw = header.to_vec();
                    raw.resize(frame::HEADER_LEN + len, 0);
                    if r.read_exact(&mut raw[frame::HEADER_LEN..]).is_err() {
                        return;
                    }
                    let f = match frame::decode(&raw, PAYLOAD_BYTES_MAX) {
                        Ok(Some((f, _))) => f,
                        other => return fail(format!("undecodable frame: {other:?}")),
                    };
                    if f.cluster != cluster || f.sender != 0 {
                        return fail(format!("frame of cluster {:x} from {}", f.cluster, f.sender));
                    }
                    if first != (f.kind == Kind::Hello) {
                        return fail(format!("{:?} frame, first: {first}", f.kind));
                    }
                    first = false;
                    match f.kind {
                        Kind::Hello => {}
                        Kind::Ping => {
                            let n = *last.lock().unwrap();
                            let ack = frame::encode(Kind::Ack, cluster, SENDER, &n, PAYLOAD_BYTES_MAX).expect("encode");
                            if w.write_all(&ack).is_err() {
                                return;
                            }
                        }
                        Kind::Peer => {
                            let (seq, bytes): (u64, Vec<u8>) = match frame::payload(&f.payload) {
                                Ok(x) => x,
                                Err(e) => return fail(e.to_string()),
                            };
                            let msg: Msg = match frame::payload(&bytes) {
                                Ok(m) => m,
                                Err(e) => return fail(e.to_string()),
                            };
                            let mut l = last.lock().unwrap();
                            if seq <= *l {
                                continue;
                            }
                            if seq != *l + 1 {
                                return fail(format!("message {seq} after {}", *l));
                            }
                            *l = seq;
                            if tx.send(Ok((seq, msg))).is_err() {
                                return;
                            }
                        }
                        k => return fail(format!("{k:?} frame on a peer link")),
                    }
                }
            });
        }
    });
    rx
}

/// One connection from the fake server 1 to node 0.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    cluster: u64,
}

impl Conn {
    fn write(&mut self, f: &[u8]) {
        self.s.write_all(f).expect("send");
    }

    /// Sends `msg` as message number `seq` of the link.
    fn msg(&mut self, seq: u64, msg: &Msg) {
        let f = numbered(self.cluster, seq, msg);
        self.write(&f);
    }

    fn ping(&mut self) {
        let f = frame::encode(Kind::Ping, self.cluster, SENDER, &(), PAYLOAD_BYTES_MAX).expect("encode");
        self.write(&f);
    }

    /// The next frame from node 0; `None` once it closed the connection.
    /// Fails after `DEADLINE` without either.
    fn next_frame(&mut self) -> Option<frame::Frame> {
        let end = Instant::now() + DEADLINE;
        let mut chunk = [0u8; 4096];
        loop {
            match frame::decode(&self.buf, PAYLOAD_BYTES_MAX) {
                Ok(Some((f, used))) => {
                    self.buf.drain(..used);
                    return Some(f);
                }
                Ok(None) => {}
                Err(e) => panic!("node 0 sent a bad frame: {e}"),
            }
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "nothing from node 0 within {DEADLINE:?}");
            self.s.set_read_timeout(Some(left)).expect("timeout");
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// The next frame, which must be an ack: the number it acknowledges.
    fn ack(&mut self) -> u64 {
        let f = self
            .next_frame()
            .expect("node 0 closed the connection instead of acknowledging");
        assert_eq!(f.kind, Kind::Ack, "only acks come back on a peer connection");
        assert_eq!((f.cluster, f.sender), (self.cluster, 0));
        frame::payload(&f.payload).expect("an ack carries a u64")
    }

    /// Whether node 0 closes the connection (acks before that are skipped)
    /// within `DEADLINE`.
    fn closed_by_node(&mut self) -> bool {
        let end = Instant::now() + DEADLINE;
        let mut chunk = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.s.set_read_timeout(Some(left)).expect("timeout");
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

/// A `Kind::Peer` frame from server 1: `(seq, postcard(msg))`.
fn numbered(cluster: u64, seq: u64, msg: &Msg) -> Vec<u8> {
    let bytes = postcard::to_stdvec(msg).expect("encode");
    frame::encode(Kind::Peer, cluster, SENDER, &(seq, &bytes[..]), PAYLOAD_BYTES_MAX).expect("encode")
}

fn ballot(round: u64) -> (u64, Id) {
    (round, Id::from(SENDER as usize))
}

fn proposal(round: u64) -> Proposal {
    Proposal {
        client: smelt_support::Client {
            session: smelt_support::Session { epoch: 1, id: 1 << 33 },
            seq: 1,
        },
        value: round,
    }
}

/// Server 1, leader of ballot `round`, asks node 0 to accept. Unlike a
/// Prepare (answered only while `ballot < m.ballot`), an Accept is
/// answered whenever `ballot <= m.ballot`: handled twice, the same Accept
/// gets two `Accepted` replies, so a duplicate delivery is visible.
fn accept(round: u64) -> Msg {
    Msg::Accept(Accept {
        ballot: ballot(round),
        proposal: proposal(round),
    })
}

fn accepted(round: u64) -> Msg {
    Msg::Accepted(Accepted { ballot: ballot(round) })
}

/// A resend of an already delivered number, on a new connection of the same
/// sender incarnation, is skipped: each message is handled once.
///
/// Fails if `read_peer` stopped skipping `seq <= l.last` (the resent Accept
/// would be handled again and its second `Accepted` would come before the
/// `Prepared`), if a hello of a known incarnation reset `last` (to
/// `written`, here 0: the same), or if the ack after a hello were not the
/// link's last delivered number.
#[test]
fn a_resend_on_a_new_connection_is_delivered_once() {
    let n = Node0::start("transport-dedup");
    let mut a = n.connect(7, 0);
    assert_eq!(a.ack(), 0, "right after the hello: nothing delivered yet");
    a.msg(1, &accept(5));
    assert_eq!(n.reply(), (1, accepted(5)), "the Accept is handled");

    // Server 1 reconnects (same incarnation) and resends what it has no ack
    // for, then a new message. `written: 0` on purpose: for a known
    // incarnation the receiver must keep its own `last`, not take this.
    let mut b = n.connect(7, 0);
    assert_eq!(
        b.ack(),
        1,
        "the new connection's first ack is the link's last delivered number"
    );
    b.msg(1, &accept(5));
    let prepare6 = Msg::Prepare(Prepare { ballot: ballot(6) });
    b.msg(2, &prepare6);
    // Node 0's replies to server 1 are in the order it handled the
    // messages: a second handling of the resent Accept would answer
    // `Accepted` here, before the Prepare's reply.
    let prepared6 = Msg::Prepared(Prepared {
        ballot: ballot(6),
        last_accepted: Some((ballot(5), proposal(5))),
    });
    assert_eq!(n.reply(), (2, prepared6), "the resend was handled again");
    b.ping();
    assert_eq!(b.ack(), 2);
    n.stop();
}

/// Once a sender's newer connection said hello, a frame on its older one
/// is not delivered, and the node closes that older connection.
///
/// Fails if `read_peer` dropped the `l.generation != generation` check:
/// the old connection would stay open (`closed_by_node` times out), and its
/// message 2 would be delivered, answered `Accepted(6)`, and make the new
/// connection's message 2 a "resend".
#[test]
fn an_older_connection_of_a_sender_is_fenced() {
    let n = Node0::start("transport-fence");
    let mut old = n.connect(7, 0);
    assert_eq!(old.ack(), 0);
    old.msg(1, &accept(5));
    assert_eq!(n.reply(), (1, accepted(5)));

    let mut new = n.connect(7, 1);
    // The ack is sent after the new connection became the current one.
    assert_eq!(new.ack(), 1);
    // A late frame on the old connection (the sender does not know yet that
    // it is stale). The node may already have closed it: a failed write is
    // as good as a fenced one.
    let late = numbered(n.cluster, 2, &accept(6));
    let _ = old.s.write_all(&late);
    assert!(old.closed_by_node(), "the older connection was left open");
    // The node closes the old connection after it read the late frame (or
    // before), so had it been delivered, it would be on the inbound queue
    // before this one.
    new.msg(2, &accept(7));
    assert_eq!(
        n.reply(),
        (2, accepted(7)),
        "a frame of the fenced connection was delivered"
    );
    new.ping();
    assert_eq!(new.ack(), 2);
    n.stop();
}

/// A hello with an incarnation the node has not seen restarts the link's
/// numbering at `written`: message 1 is delivered again for a new
/// incarnation, and with `written: 5` numbers 1..=5 are skipped.
///
/// Fails if `read_peer` kept `last` across incarnations (the second
/// hello's ack would be 1, and its message 1 skipped), or started a new
/// incarnation at 0 instead of `written` (the third connection's messages
/// 1..=5 would be handled: `Accepted(10)` would come first).
#[test]
fn a_new_sender_incarnation_restarts_the_numbering_at_written() {
    let n = Node0::start("transport-incarnation");
    let mut a = n.connect(7, 0);
    assert_eq!(a.ack(), 0);
    a.msg(1, &accept(5));
    assert_eq!(n.reply(), (1, accepted(5)));

    // Server 1 restarted (incarnation 8) and wrote nothing before.
    let mut b = n.connect(8, 0);
    assert_eq!(b.ack(), 0, "a new incarnation starts at its `written`");
    b.msg(1, &accept(6));
    b.msg(2, &accept(7));
    assert_eq!(n.reply(), (2, accepted(6)), "message 1 of the new incarnation");
    assert_eq!(n.reply(), (3, accepted(7)));

    // Restarted again (incarnation 9), having numbered 5 messages before
    // this connection: the node skips them, whoever they were meant for.
    let mut c = n.connect(9, 5);
    assert_eq!(c.ack(), 5, "the link starts at `written`");
    for seq in 1..=5 {
        c.msg(seq, &accept(9 + seq));
    }
    c.msg(6, &accept(20));
    assert_eq!(
        n.reply(),
        (4, accepted(20)),
        "a message numbered at or below `written` was delivered"
    );
    c.ping();
    assert_eq!(c.ack(), 6);
    n.stop();
}

/// A ping is answered with an ack of the last delivered number, and every
/// `ACK_EVERY` (32) messages are acknowledged unasked.
///
/// Fails if the `Kind::Ping` arm of `read_peer` stopped answering (the
/// reads hit the deadline) or acked anything but `last`, or if the
/// `unacked >= ACK_EVERY` ack went (no ack for message 33) or came at
/// another count (a different number acknowledged first). The replies
/// check that all 33 messages were handled in order.
#[test]
fn pings_and_every_32_messages_are_acknowledged() {
    let n = Node0::start("transport-ping");
    let mut a = n.connect(7, 0);
    assert_eq!(a.ack(), 0, "the ack after the hello");
    a.ping();
    assert_eq!(a.ack(), 0, "a ping before any message");
    a.msg(1, &accept(1));
    a.ping();
    assert_eq!(a.ack(), 1, "a ping acknowledges the last delivered number");
    assert_eq!(n.reply(), (1, accepted(1)));
    // A ping restarts the count: 32 more messages, and no ping, get an ack.
    for seq in 2..=33 {
        a.msg(seq, &accept(seq));
    }
    assert_eq!(
        a.ack(),
        33,
        "the 32nd message since the last ack is acknowledged unasked"
    );
    for seq in 2..=33 {
        assert_eq!(n.reply(), (seq, accepted(seq)));
    }
    a.ping();
    assert_eq!(a.ack(), 33);
    n.stop();
}

// ---------------------------------------------------------------------------
// The sending end's resend buffer: what a peer that acknowledges nothing
// costs (ARCHITECTURE.md, "Resend-buffer overflow").

/// Node 0 as `Node0::start` starts it, with `limits`, and with server 1's
/// listener handed to the caller instead of to `fake_receiver`: the test
/// plays the receiving end of node 0's link itself. (`replies` is left
/// empty; read node 0's link through the listener.)
fn start_node0_with(name: &str, limits: Limits) -> (Node0, std::net::TcpListener) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = Cluster {
        cluster_id: format!("transport-{name}"),
        spec: None,
        nodes: (0..3)
            .map(|id| NodeEntry {
                id,
                role: "Server".into(),
                address: format!("127.0.0.1:{}", free_port()),
                client_address: None,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let listener = std::net::TcpListener::bind(&cluster.nodes[SENDER as usize].address).expect("bind");
    let dir = scratch(name);
    let layout = cluster.layout::<Paxos>().expect("layout");
    let actor = Paxos::server(Id::from(0), &layout).expect("server");
    let identity = Identity::of::<Paxos>(cluster.hash(), 0);
    let (recovered, store) =
        storage::recover::<Paxos>(&dir.join("data"), &identity, &actor, Id::from(0), true).expect("recover");
    let cfg = NodeConfig {
        cluster: cluster.clone(),
        id: 0,
        seed: 1,
        limits,
        data_dir: None,
    };
    let node = rt
        .block_on(node::start::<Paxos, _>(cfg, store.expect("store"), recovered))
        .expect("start");
    let (_, replies) = mpsc::channel();
    let n = Node0 {
        rt,
        node,
        dir,
        addr: cluster.nodes[0].address.clone(),
        cluster: cluster.hash(),
        replies,
    };
    (n, listener)
}

/// Node 0's connections to server 1's address, as they are accepted.
fn accepted_links(listener: std::net::TcpListener) -> mpsc::Receiver<TcpStream> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            if tx.send(s).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next connection node 0 opens to server 1, read as a `Conn` (its
/// frames come from node 0), with its hello.
fn next_link(links: &mpsc::Receiver<TcpStream>, cluster: u64) -> (Conn, Hello) {
    let s = links
        .recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("node 0 did not connect to server 1 within {DEADLINE:?}"));
    let mut c = Conn {
        s,
        buf: Vec::new(),
        cluster,
    };
    let f = c.next_frame().expect("node 0 closed its link before the hello");
    assert_eq!((f.kind, f.cluster, f.sender), (Kind::Hello, cluster, 0));
    let h: Hello = frame::payload(&f.payload).expect("a hello");
    (c, h)
}

impl Conn {
    /// The next numbered message on node 0's link to server 1 (its pings
    /// skipped): `(seq, msg)`. Fails after `DEADLINE` without one (pings
    /// alone do not extend it).
    fn next_numbered(&mut self) -> (u64, Msg) {
        let end = Instant::now() + DEADLINE;
        loop {
            let f = self.next_frame().expect("node 0 closed its link to server 1");
            assert_eq!((f.cluster, f.sender), (self.cluster, 0));
            match f.kind {
                Kind::Ping => assert!(
                    Instant::now() < end,
                    "only pings from node 0 for {DEADLINE:?}, no message"
                ),
                Kind::Peer => {
                    let (seq, bytes): (u64, Vec<u8>) = frame::payload(&f.payload).expect("(seq, message)");
                    return (seq, frame::payload(&bytes).expect("a paxos message"));
                }
                k => panic!("{k:?} frame on node 0's link after its hello"),
            }
        }
    }
}

/// A peer that takes node 0's link but acknowledges nothing makes node 0
/// keep only the newest `peer_queue_len_max` unacknowledged messages: with
/// a bound of 8 and 20 replies to server 1, the resend on node 0's next
/// connection is exactly messages 13..=20 (the 12 oldest are gone, and
/// counted in `stats.link_dropped`), the new connection's numbering goes
/// on at 21, and the node keeps serving (`overflow` says how).
///
/// Fails if `trim` keeps the wrong messages or the wrong number of them:
/// dropping the newest instead of the oldest (`pop_back`: 1..=8 resent),
/// trimming at `>=` instead of `>` the bound (14..=20 resent, 13 dropped),
/// not trimming (1..=20 resent, 0 dropped), or not adding to the node's
/// `link_dropped` (0 counted) — each was checked to fail. Also if a
/// reconnect renumbered the link (the reply after the resend is 21) or
/// lost `written` (the second hello's is 20).
#[test]
fn a_peer_that_acknowledges_nothing_costs_only_its_oldest_messages() {
    let limits = Limits {
        peer_queue_len_max: 8,
        link_dead_ms: 60_000,
        ..Limits::default()
    };
    overflow("transport-overflow", limits, 8);
}

/// The same with the bound in bytes: `peer_queue_bytes_max` fits 8 of the
/// (equally long) frames and half of a 9th, the count bound is the
/// default 4096. Fails if `trim` ignored `out.bytes` (1..=20 resent, 0
/// dropped; checked).
#[test]
fn the_resend_buffer_is_bounded_in_bytes_too() {
    // Every reply of the test is an `Accepted` with a one-byte round and a
    // one-byte number: one frame length.
    let reply = postcard::to_stdvec(&accepted(1)).expect("encode");
    let frame_len = frame::encode(Kind::Peer, 0, 0, &(1u64, &reply[..]), PAYLOAD_BYTES_MAX)
        .expect("encode")
        .len();
    let limits = Limits {
        peer_queue_bytes_max: 8 * frame_len + frame_len / 2,
        link_dead_ms: 60_000,
        ..Limits::default()
    };
    overflow("transport-overflow-bytes", limits, 8);
}

/// Node 0 with `limits` (which keep `bound` replies to server 1 and a
/// `link_dead_ms` far beyond the test) answers 20 of server 1's Accepts
/// on a link server 1 never acknowledges; server 1 then drops the link,
/// and node 0 resends exactly the newest `bound` replies on its next
/// connection.
///
/// Server 1's address is a listener of the test. Node 0's first link to it
/// is read (so the test knows each reply was taken from the loop's queue
/// before it causes the next one: nothing is lost at `PeerOut::offer`,
/// `stats.dropped` stays 0) but never acknowledged; with `link_dead_ms` a
/// minute node 0 never gives up on the silent link by itself: the test
/// closes it, and node 0 reconnects and resends what it kept. (Those
/// dropped were written to the first connection, and the test read them: a
/// receiver that had lost them would see the gap, 13 after 0, and
/// `read_peer` logs it.)
fn overflow(name: &str, limits: Limits, bound: u64) {
    const SENT: u64 = 20;
    let (n, listener) = start_node0_with(name, limits);
    let links = accepted_links(listener);
    let (mut first, hello1) = next_link(&links, n.cluster);
    assert_eq!(hello1.written, 0, "node 0's first connection to server 1");

    // Server 1 (as the sender on its own link to node 0) asks node 0 to
    // accept SENT ballots; each is answered `Accepted` to server 1. The
    // next one is sent only once the answer is on the wire: node 0's writer
    // has taken it from the loop's queue.
    let mut inbound = n.connect(7, 0);
    assert_eq!(inbound.ack(), 0);
    for seq in 1..=SENT {
        inbound.msg(seq, &accept(seq));
        assert_eq!(
            first.next_numbered(),
            (seq, accepted(seq)),
            "node 0's replies to server 1 are numbered in order"
        );
    }

    // Server 1 acknowledged nothing. It drops the connection; node 0
    // reconnects and resends what it still has.
    drop(first);
    let (mut second, hello2) = next_link(&links, n.cluster);
    assert_eq!(hello2.incarnation, hello1.incarnation, "node 0 did not restart");
    assert_eq!(
        hello2.written, SENT,
        "every message was written to the first connection"
    );
    // The writer trims right after it takes a message, and it took the last
    // one before it noticed the closed connection and came back: the counts
    // are final now. (Read now: if the ack below were not processed before
    // the next message, taking it would drop the oldest resent one too.)
    let link_dropped = n.node.stats.link_dropped.load(std::sync::atomic::Ordering::Relaxed);
    let dropped = n.node.stats.dropped.load(std::sync::atomic::Ordering::Relaxed);

    // Server 1 acknowledges now, and asks node 0 once more. The hello and
    // the resend are one write, so the new reply comes right behind the
    // resend on the link: everything before it is what node 0 kept.
    let ack = frame::encode(Kind::Ack, n.cluster, SENDER, &SENT, PAYLOAD_BYTES_MAX).expect("encode");
    second.write(&ack);
    inbound.msg(SENT + 1, &accept(SENT + 1));
    let mut resent = Vec::new();
    loop {
        let (seq, msg) = second.next_numbered();
        if msg == accepted(SENT + 1) {
            assert_eq!(seq, SENT + 1, "the link's numbering goes on after the resend");
            break;
        }
        resent.push((seq, msg));
        assert!(
            resent.len() as u64 <= SENT,
            "more resent than was ever sent: {resent:?}"
        );
    }
    let newest: Vec<(u64, Msg)> = (SENT - bound + 1..=SENT).map(|s| (s, accepted(s))).collect();
    assert_eq!(
        resent, newest,
        "node 0 keeps exactly the newest {bound} unacknowledged messages, in order"
    );
    assert_eq!(link_dropped, SENT - bound, "the dropped messages are counted");
    assert_eq!(dropped, 0, "nothing was lost at the loop's queue to the writer");
    // And it still takes server 1's messages.
    inbound.ping();
    assert_eq!(inbound.ack(), SENT + 1, "node 0 still takes server 1's messages");
    n.stop();
}

/// A writer waiting out a reconnect backoff tries again as soon as the
/// peer connects to its node: a peer that connects is up (typically, it
/// just restarted), and a backoff grown while it was down (up to
/// `reconnect_ms_max`, 1 s by default, plus jitter) would otherwise hold
/// back every message to it that long — in raft.sm, long enough for a
/// restarted follower to hear nothing from the leader, time out and depose
/// it.
///
/// Node 0's backoff is an hour (`reconnect_ms_min`): once server 1 drops
/// node 0's link, node 0 reaches server 1 again within `DEADLINE` only if
/// server 1's hello ends the wait. Fails without the wake (checked:
/// `next_link` times out).
#[test]
fn a_peer_that_connects_ends_the_backoff_to_it() {
    let limits = Limits {
        reconnect_ms_min: 3_600_000,
        reconnect_ms_max: 3_600_000,
        ..Limits::default()
    };
    let (n, listener) = start_node0_with("transport-wake", limits);
    let links = accepted_links(listener);
    let (first, hello1) = next_link(&links, n.cluster);
    // Server 1 "crashes": node 0's link is cut, and node 0 waits an hour
    // before it dials again (the listener keeps accepting throughout).
    drop(first);
    // Server 1 "restarts": its own link to node 0 comes up, with a hello.
    let mut inbound = n.connect(8, 0);
    assert_eq!(inbound.ack(), 0, "node 0 takes server 1's new link");
    let (mut second, hello2) = next_link(&links, n.cluster);
    assert_eq!(hello2.incarnation, hello1.incarnation, "node 0 did not restart");
    // And the link works: node 0's reply to server 1 comes on it.
    inbound.msg(1, &accept(1));
    assert_eq!(second.next_numbered(), (1, accepted(1)));
    n.stop();
}
