//! Client sessions on a real node process (a one-server raft.sm cluster,
//! which elects itself and commits at once): requests whose tag makes no
//! sense get a clear error response and change nothing, a retry gets the
//! recorded reply (also on another connection), and the node goes on
//! serving. Raw frames, so the tests can send what the client library
//! never would.

mod common;

use common::raft::{self, Raft};
use common::*;
use smelt_runtime::frame::{self, Kind, Response, HEADER_LEN, PAYLOAD_BYTES_MAX};
use smelt_support::{Bytes, Client, Session, SessionError, SEQ_AHEAD_MAX};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn node_entry() {
    common::node_entry();
}

/// A raw client connection speaking frames.
struct Raw {
    s: TcpStream,
    cluster: u64,
}

impl Raw {
    fn connect(addr: &str, cluster: u64) -> Raw {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        Raw { s, cluster }
    }

    fn send(&mut self, tag: Client, r: &raft::Request) {
        let f = frame::encode(Kind::Request, self.cluster, 0, &(tag, r), PAYLOAD_BYTES_MAX).expect("encode");
        self.s.write_all(&f).expect("send");
    }

    fn recv(&mut self) -> Response<raft::Reply> {
        let mut h = [0u8; HEADER_LEN];
        self.s.read_exact(&mut h).expect("a response");
        let header = frame::Header::parse(&h, PAYLOAD_BYTES_MAX).expect("header");
        let mut p = vec![0u8; header.len as usize];
        self.s.read_exact(&mut p).expect("payload");
        header.verify(&h, &p).expect("checksum");
        assert_eq!(header.kind, Kind::Response);
        frame::payload(&p).expect("a response payload")
    }

    /// Sends and waits for the answer with this tag, following nothing:
    /// a one-server cluster is its own leader (redirects only while it
    /// elects itself, right after the start). Each retry waits for the
    /// node's answer to the last one, no pause: the election's end is the
    /// event, whenever it comes.
    fn call(&mut self, tag: Client, r: &raft::Request) -> Response<raft::Reply> {
        loop {
            self.send(tag, r);
            match self.recv() {
                Response::Redirect(t, _) if t == tag => continue,
                resp => return resp,
            }
        }
    }
}

fn tag(id: u64, seq: u64) -> Client {
    Client {
        session: Session { epoch: 7, id },
        seq,
    }
}

fn put(key: u64, v: &'static [u8]) -> raft::Request {
    raft::Request::Put {
        key,
        value: Bytes::from_static(v),
    }
}

fn get(key: u64) -> raft::Request {
    raft::Request::Get { key }
}

fn one_node(name: &str) -> (std::path::PathBuf, NodeProc, String, u64) {
    let dir = scratch(name);
    let (file, cluster) = write_cluster(&dir, &[("Server", 1, true)]);
    let node = NodeProc::start("raft", &dir, &file, 0, &[]);
    wait_up(&cluster, &[0]);
    let addr = cluster.nodes[0].client_address.clone().expect("client address");
    (dir, node, addr, cluster.hash())
}

const S: u64 = (1 << 32) + 5;

#[test]
fn nonsense_tags_get_an_error_reply_and_change_nothing() {
    let (dir, mut node, addr, cluster) = one_node("sessions-nonsense");
    let mut c = Raw::connect(&addr, cluster);

    // A session id in the servers' range, and sequence number 0: refused
    // by the node before the protocol sees them, on an open connection.
    let bad = tag(3, 1);
    c.send(bad, &put(1, b"no"));
    match c.recv() {
        Response::Invalid(t, why) => assert!(t == bad && why.contains("session id 3"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let zero = tag(S, 0);
    c.send(zero, &put(1, b"no"));
    match c.recv() {
        Response::Invalid(t, why) => assert!(t == zero && why.contains("start at 1"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }

    // A good request on the same connection: applied once.
    assert!(matches!(
        c.call(tag(S, 1), &put(1, b"x")),
        Response::Reply(_, raft::Reply::PutOk)
    ));
    // Sequence number 1 again with another request: refused, not applied.
    match c.call(tag(S, 1), &put(1, b"y")) {
        Response::Reply(_, raft::Reply::Rejected(SessionError::Reused { seq: 1 })) => {}
        other => panic!("expected Rejected(Reused), got {other:?}"),
    }
    // The same request again (a retry): the recorded reply, applied once.
    assert!(matches!(
        c.call(tag(S, 1), &put(1, b"x")),
        Response::Reply(_, raft::Reply::PutOk)
    ));
    // From the future: refused.
    match c.call(tag(S, 2 + SEQ_AHEAD_MAX), &put(1, b"z")) {
        Response::Reply(_, raft::Reply::Rejected(SessionError::Ahead { last: 1 })) => {}
        other => panic!("expected Rejected(Ahead), got {other:?}"),
    }
    // The next request, then a late copy of the first: stale, not applied.
    assert!(matches!(
        c.call(tag(S, 2), &put(2, b"two")),
        Response::Reply(_, raft::Reply::PutOk)
    ));
    match c.call(tag(S, 1), &put(1, b"x")) {
        Response::Reply(_, raft::Reply::Rejected(SessionError::Stale { last: 2 })) => {}
        other => panic!("expected Rejected(Stale), got {other:?}"),
    }
    // Nothing refused changed the store.
    match c.call(tag(S, 3), &get(1)) {
        Response::Reply(_, raft::Reply::Value(v)) => assert_eq!(v.as_ref().map(Bytes::as_slice), Some(&b"x"[..])),
        other => panic!("expected a value, got {other:?}"),
    }

    // The node is still up and serving.
    assert_eq!(node.child.try_wait().expect("wait"), None, "the node exited");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_retry_on_another_connection_gets_the_recorded_reply() {
    let (dir, node, addr, cluster) = one_node("sessions-retry");
    let id = S + 1;
    let append = raft::Request::Append {
        key: 9,
        value: Bytes::from_static(b"a;"),
    };
    {
        let mut first = Raw::connect(&addr, cluster);
        assert!(matches!(
            first.call(tag(id, 1), &append),
            Response::Reply(_, raft::Reply::Appended)
        ));
        // The connection goes away as if the reply had been lost.
    }
    // The client reconnects and resends the same request: the answer comes
    // from the session table, on the new connection, and the append is not
    // applied a second time.
    let mut second = Raw::connect(&addr, cluster);
    assert!(matches!(
        second.call(tag(id, 1), &append),
        Response::Reply(t, raft::Reply::Appended) if t == tag(id, 1)
    ));
    match second.call(tag(id, 2), &get(9)) {
        Response::Reply(_, raft::Reply::Value(v)) => {
            assert_eq!(
                v.as_ref().map(Bytes::as_slice),
                Some(&b"a;"[..]),
                "the append applied twice"
            )
        }
        other => panic!("expected a value, got {other:?}"),
    }
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_client_library_reports_an_unknown_outcome_and_goes_on() {
    let (dir, mut node, _addr, _cluster) = one_node("sessions-library");
    let file = dir.join("cluster.toml");
    let cluster = smelt_runtime::cluster::Cluster::load(&file).expect("cluster file");
    let opts = smelt_runtime::client::ClientOptions {
        attempt_timeout_ms: 300,
        attempts_max: 3,
        call_timeout_ms: 2_000,
        ..Default::default()
    };
    let mut c = smelt_runtime::client::Client::<Raft>::new(&cluster, opts).expect("client");
    let first = c.session();
    assert!(first.id >= smelt_runtime::client::SESSION_ID_MIN && first.epoch > 0);
    let (r, _) = c.call(put(4, b"v1")).expect("put");
    assert_eq!(r, raft::Reply::PutOk);

    // No server: the call gives up, and says the outcome is unknown.
    node.kill9();
    match c.call(put(4, b"v2")) {
        Err(smelt_runtime::client::ClientError::Unknown { expired: false, .. }) => {}
        other => panic!("expected an unknown outcome, got {other:?}"),
    }
    // Back on the same data directory: the same session goes on (a later
    // request, so a late copy of the abandoned one could no longer apply).
    let node = NodeProc::start("raft", &dir, &file, 0, &[]);
    wait_up(&cluster, &[0]);
    let (r, _) = eventually(Duration::from_secs(20), || c.call(get(4)).ok()).expect("a read after the restart");
    assert_eq!(r, raft::Reply::Value(Some(Bytes::from_static(b"v1"))));
    assert_eq!(c.session(), first, "an unknown outcome does not change the session");
    drop(node);
    let _ = std::fs::remove_dir_all(dir);
}
