//! The transport refuses what does not belong: frames of another cluster,
//! from unknown or changing senders, with bad checksums, or of the wrong
//! kind close their connection — and only that connection.

mod common;

use common::paxos::{Msg, Paxos, Prepare};
use common::*;
use smelt_runtime::cluster::{Cluster, NodeEntry};
use smelt_runtime::frame::{self, Hello, Kind, PAYLOAD_BYTES_MAX};
use smelt_runtime::node::{self, Exit, Limits, NodeConfig};
use smelt_runtime::storage::{self, Identity};
use smelt_support::{Id, Protocol};
use std::io::{Read, Write};
use std::net::TcpStream;
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
            })
            .collect(),
    };
    // Node 1 is played by the test: it watches what node 0 sends it.
    let peer1 = std::net::TcpListener::bind(&cluster.nodes[1].address).expect("bind");
    let dir = scratch("transport").join("data");
    let layout = cluster.layout::<Paxos>().expect("layout");
    let actor = Paxos::server(Id::from(0), &layout).expect("server");
    let identity = Identity {
        cluster: cluster.hash(),
        node: 0,
        protocol: "Paxos".into(),
    };
    let (recovered, store) = storage::recover::<Paxos>(&dir, &identity, &actor, Id::from(0), true).expect("recover");
    let cfg = NodeConfig {
        cluster: cluster.clone(),
        id: 0,
        seed: 1,
        limits: Limits::default(),
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
