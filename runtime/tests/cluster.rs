//! Real node processes on 127.0.0.1: client requests, `kill -9`, restarts.

mod common;

use common::*;
use smelt_runtime::client::{Client, ClientOptions};
use smelt_support::{Bytes, Id, Protocol};
use std::time::Duration;

#[test]
fn node_entry() {
    common::node_entry();
}

/// The value a paxos server would answer a Get with, asking it once.
fn get_at(c: &mut Client<paxos::Paxos>, id: u64) -> Option<u64> {
    match c.call_at(Id::from(id as usize), paxos::Request::Get) {
        Ok(Some(paxos::Reply::GetOk(v))) => v,
        _ => None,
    }
}

fn paxos_accepted(s: &paxos::Storage) -> Option<u64> {
    let paxos::Storage::Server(s) = s;
    s.accepted.as_ref().map(|(_, p)| p.value)
}

#[test]
fn paxos_write_read_kill9_restart() {
    let dir = scratch("paxos");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| NodeProc::start("paxos", &dir, &file, i, &[])).collect();
    wait_up(&cluster, &[0, 1, 2]);
    let mut c = Client::<paxos::Paxos>::new(&cluster, quick_client(300)).expect("client");

    // The first Put decides the value; the server that took it answers.
    let (reply, leader) = c.call(paxos::Request::Put { v: 42 }).expect("put");
    assert_eq!(reply, paxos::Reply::PutOk);
    let leader = usize::from(leader) as u64;

    // Every server learns the decision and answers reads with it.
    for i in 0..3 {
        let v = eventually(Duration::from_secs(10), || get_at(&mut c, i));
        assert_eq!(v, Some(42), "node {i} never answered the read");
    }

    // Remember each node's durable state, then kill -9 the leader: a
    // minority of one.
    let before: Vec<_> = (0..3)
        .map(|i| {
            durable::<paxos::Paxos>(&cluster, i, &nodes[i as usize].data)
                .expect("readable")
                .storage
        })
        .collect();
    nodes[leader as usize].kill9();

    // The acknowledged write is on a majority of disks, and the survivors
    // keep serving it.
    let on_disk = before
        .iter()
        .filter(|s| s.as_ref().and_then(paxos_accepted) == Some(42))
        .count();
    assert!(
        on_disk >= 2,
        "the decided value must be durable on a majority: {before:?}"
    );
    for i in (0..3).filter(|i| *i != leader) {
        assert_eq!(get_at(&mut c, i), Some(42));
    }

    // The killed node's disk holds exactly the durable state it had.
    let after = durable::<paxos::Paxos>(&cluster, leader, &nodes[leader as usize].data).expect("recoverable");
    assert_eq!(after.storage, before[leader as usize]);
    assert_eq!(after.storage.as_ref().and_then(paxos_accepted), Some(42));

    // It restarts from that state and rejoins: it reconnects to its peers,
    // and they still serve the decided value.
    let earlier = nodes[leader as usize].log_text().len();
    nodes[leader as usize] = NodeProc::start("paxos", &dir, &file, leader, &[]);
    let restarted = &nodes[leader as usize];
    let log = eventually(Duration::from_secs(10), || {
        let t = restarted.log_text().get(earlier..)?.to_string();
        (t.matches("connected to peer").count() >= 2).then_some(t)
    })
    .expect("the restarted node reconnects to both peers");
    assert!(log.contains("node starting"), "{log}");
    for i in (0..3).filter(|i| *i != leader) {
        assert_eq!(get_at(&mut c, i), Some(42));
    }

    // A clean stop exits 0 and keeps the state.
    for n in nodes.iter_mut() {
        assert_eq!(n.term(), Some(0), "{}", n.log_text());
    }
    let last = durable::<paxos::Paxos>(&cluster, leader, &nodes[leader as usize].data).expect("recoverable");
    assert_eq!(last.storage.as_ref().and_then(paxos_accepted), Some(42));
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paxos_minority_down_from_the_start() {
    let dir = scratch("paxos-minority");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    // Node 2 never runs; a majority (0 and 1) decides.
    let _nodes: Vec<NodeProc> = (0..2).map(|i| NodeProc::start("paxos", &dir, &file, i, &[])).collect();
    wait_up(&cluster, &[0, 1]);
    let mut c = Client::<paxos::Paxos>::new(&cluster, quick_client(300)).expect("client");
    let (reply, _) = c.call(paxos::Request::Put { v: 7 }).expect("put with a majority up");
    assert_eq!(reply, paxos::Reply::PutOk);
    for i in 0..2 {
        assert_eq!(eventually(Duration::from_secs(10), || get_at(&mut c, i)), Some(7));
    }
    drop(_nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Many concurrent appends, kill -9 in the middle, twice: every append that
/// was acknowledged is in the recovered journal, and a restarted node
/// answers from exactly the recovered state.
#[test]
fn journal_acknowledged_appends_survive_kill9() {
    let dir = scratch("journal");
    let (file, cluster) = write_cluster(&dir, &[("Server", 1, true)]);
    // A small snapshot threshold, so recovery goes through snapshots too.
    let extra = ["--snapshot-log-bytes", "2000"];
    let mut acked_all: Vec<u64> = Vec::new();
    for round in 0..2u64 {
        let mut node = NodeProc::start("journal", &dir, &file, 0, &extra);
        wait_up(&cluster, &[0]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked_now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let workers: Vec<_> = (0..8u64)
            .map(|t| {
                let cluster = cluster.clone();
                let stop = stop.clone();
                let acked_now = acked_now.clone();
                std::thread::spawn(move || {
                    let opts = ClientOptions {
                        attempt_timeout_ms: 500,
                        attempts_max: 1,
                        ..ClientOptions::default()
                    };
                    let mut c = Client::<journal::Journal>::new(&cluster, opts).expect("client");
                    let mut acked = Vec::new();
                    let mut k = 0u64;
                    let mut failures = 0;
                    while failures < 20 {
                        let v = round * 1_000_000_000 + t * 1_000_000 + k;
                        k += 1;
                        match c.call(journal::Request::Append { v }) {
                            Ok((journal::Reply::Appended(_), _)) => {
                                acked.push(v);
                                acked_now.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            _ if stop.load(std::sync::atomic::Ordering::Relaxed) => failures += 1,
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                    acked
                })
            })
            .collect();
        // Kill once enough appends are acknowledged (an event, not a
        // sleep): the checks below need some, and a snapshot or two.
        let enough = eventually(Duration::from_secs(120), || {
            (acked_now.load(std::sync::atomic::Ordering::Relaxed) >= 300).then_some(())
        });
        assert!(
            enough.is_some(),
            "round {round}: fewer than 300 appends acknowledged in 2 minutes"
        );
        node.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            acked_all.extend(w.join().expect("worker"));
        }
        let r = durable::<journal::Journal>(&cluster, 0, &node.data).expect("recoverable after kill -9");
        let journal::Storage::Server(s) = r.storage.expect("something was saved");
        let present: std::collections::BTreeSet<u64> = s.items.iter().copied().collect();
        let lost: Vec<&u64> = acked_all.iter().filter(|v| !present.contains(v)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged appends lost",
            lost.len()
        );
        assert!(
            acked_all.len() > 100,
            "round {round}: only {} appends acknowledged",
            acked_all.len()
        );
        assert_eq!(s.sum, s.items.iter().sum::<u64>());
        let snapshots = std::fs::read_dir(&node.data)
            .expect("data dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("snap-"))
            })
            .count();
        assert!(snapshots >= 1, "round {round}: no snapshot was taken");

        // Restarted, the node answers from exactly the recovered state.
        let mut node = NodeProc::start("journal", &dir, &file, 0, &extra);
        wait_up(&cluster, &[0]);
        let mut c = Client::<journal::Journal>::new(&cluster, quick_client(300)).expect("client");
        let (n, _) = c.call(journal::Request::Count).expect("count");
        assert_eq!(n, journal::Reply::Counted(s.items.len() as u64));
        assert_eq!(node.term(), Some(0), "{}", node.log_text());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Timers, `choose` and `init` broadcasts at runtime: two-phase commit with
/// a TM and two RMs reaches one outcome everywhere, durably.
#[test]
fn two_phase_commit_reaches_one_outcome() {
    use two_phase_commit::{Storage, TwoPhaseCommit};
    let dir = scratch("2pc");
    let (file, cluster) = write_cluster(&dir, &[("TM", 1, false), ("RM", 2, false)]);
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| NodeProc::start("two_phase_commit", &dir, &file, i, &["--seed", &(i + 7).to_string()]))
        .collect();
    let decision = eventually(Duration::from_secs(10), || {
        match durable::<TwoPhaseCommit>(&cluster, 0, &nodes[0].data).ok()?.storage? {
            Storage::TM(s) => s.decision,
            _ => None,
        }
    })
    .expect("the TM decides");
    for i in 1..3u64 {
        let outcome = eventually(Duration::from_secs(10), || {
            match durable::<TwoPhaseCommit>(&cluster, i, &nodes[i as usize].data)
                .ok()?
                .storage?
            {
                Storage::RM(s) => s.outcome,
                _ => None,
            }
        });
        assert_eq!(outcome, Some(decision), "RM {i}");
    }
    for n in nodes.iter_mut() {
        assert_eq!(n.term(), Some(0), "{}", n.log_text());
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The index of the last entry in a raft node's durable log (the log is
/// compacted: the entries it keeps follow its snapshot index).
fn raft_last_index(cluster: &smelt_runtime::cluster::Cluster, id: u64, data: &std::path::Path) -> Option<u64> {
    let s = raft_server(cluster, id, data)?;
    Some(s.snap_index + s.log.len() as u64)
}

/// A raft server's durable state, read from its data directory.
fn raft_server(
    cluster: &smelt_runtime::cluster::Cluster,
    id: u64,
    data: &std::path::Path,
) -> Option<raft::ServerStorage> {
    let r = durable::<raft::Raft>(cluster, id, data).ok()?;
    let raft::Storage::Server(s) = r.storage?;
    Some(s)
}

/// raft.sm's key-value store on three real nodes: a write and a read through
/// whichever node leads (the client follows redirects), `kill -9` of the
/// leader, a new leader that still has the acknowledged write, and the old
/// leader restarting from its disk and catching up.
#[test]
fn raft_kv_survives_the_leader_kill9() {
    let dir = scratch("raft");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    let mut nodes: Vec<NodeProc> = (0..3).map(|i| NodeProc::start("raft", &dir, &file, i, &[])).collect();
    wait_up(&cluster, &[0, 1, 2]);
    let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
    // 100 bytes, not UTF-8.
    let first = Bytes::from((0..100u8).map(|b| b.wrapping_mul(37) | 0x80).collect::<Vec<u8>>());

    let (reply, leader) = c
        .call(raft::Request::Put {
            key: 1,
            value: first.clone(),
        })
        .expect("put");
    assert_eq!(reply, raft::Reply::PutOk);
    let (reply, _) = c.call(raft::Request::Get { key: 1 }).expect("get");
    assert_eq!(reply, raft::Reply::Value(Some(first.clone())));

    // Kill the leader: the other two elect a new one, which holds the
    // acknowledged write (Leader Completeness) and takes new ones.
    let leader = usize::from(leader) as u64;
    let last_before = raft_last_index(&cluster, leader, &nodes[leader as usize].data).expect("leader's log");
    nodes[leader as usize].kill9();
    let (reply, second) = c
        .call(raft::Request::Put {
            key: 2,
            value: Bytes::from("seven"),
        })
        .expect("put after the kill");
    assert_eq!(reply, raft::Reply::PutOk);
    assert_ne!(
        usize::from(second) as u64,
        leader,
        "the killed node cannot have answered"
    );
    let (reply, _) = c.call(raft::Request::Get { key: 1 }).expect("get after the kill");
    assert_eq!(reply, raft::Reply::Value(Some(first)), "an acknowledged write was lost");

    // The killed node's disk holds its log as it was; it restarts from it
    // and catches up with the entries it missed.
    assert_eq!(
        raft_last_index(&cluster, leader, &nodes[leader as usize].data),
        Some(last_before)
    );
    nodes[leader as usize] = NodeProc::start("raft", &dir, &file, leader, &[]);
    let (reply, _) = c
        .call(raft::Request::Put {
            key: 3,
            value: Bytes::from_static(b"nine"),
        })
        .expect("put after the restart");
    assert_eq!(reply, raft::Reply::PutOk);
    let caught_up = eventually(Duration::from_secs(20), || {
        let last = raft_last_index(&cluster, leader, &nodes[leader as usize].data)?;
        (last > last_before + 1).then_some(last)
    });
    assert!(
        caught_up.is_some(),
        "the restarted node never received the entries it missed:\n{}",
        nodes[leader as usize].log_text()
    );
    for n in nodes.iter_mut() {
        assert_eq!(n.term(), Some(0), "{}", n.log_text());
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The durable `current_term` of a raft node (read from its data directory).
fn raft_term(cluster: &smelt_runtime::cluster::Cluster, id: u64, data: &std::path::Path) -> Option<u64> {
    Some(raft_server(cluster, id, data)?.current_term)
}

/// The value of `name{label="value"}` in a scrape of `/metrics`.
fn sample(s: &prometheus_parse::Scrape, name: &str, label: (&str, &str)) -> Option<f64> {
    use prometheus_parse::Value;
    s.samples
        .iter()
        .find(|m| m.metric == name && m.labels.get(label.0) == Some(label.1))
        .and_then(|m| match &m.value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

/// One sample of a node's `/metrics`, scraped now (`None` while the node
/// does not answer).
fn metric(addr: &str, name: &str, label: (&str, &str)) -> Option<f64> {
    let (code, body) = http_get(addr, "/metrics");
    if code != 200 {
        return None;
    }
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).ok()?;
    sample(&scrape, name, label)
}

/// A follower that restarts does not depose the leader (issue 18: an
/// outside test saw every follower restart start an election). The leader
/// loses what it wrote to the follower's old connection, and its window
/// (`inflight`) kept those slots, so it wrote to the follower no more: the
/// follower heard nothing, timed out and started a new term. Each follower
/// is `kill -9`ed under a client's load (AppendEntries on their way) and
/// restarted, twice, in turn; then the test waits for one
/// of two events on the restarted node's own counters (no sleeps): its
/// election timer fires (`smelt_handlers_total{kind="timeout"}`: the
/// follower's only timer), or, after the load stopped, it has handled 12
/// more messages — heartbeats, 50 ms apart: past the longest election
/// timeout (300 ms) without one firing. Every election starts a new term,
/// so the disks' terms count leader changes.
#[test]
fn raft_follower_restarts_keep_the_leader() {
    let dir = scratch("raft-restarts");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    let metrics: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let start = |i: u64| NodeProc::start("raft", &dir, &file, i, &["--metrics", &metrics[i as usize]]);
    let mut nodes: Vec<NodeProc> = (0..3).map(start).collect();
    wait_up(&cluster, &[0, 1, 2]);
    let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
    let put = |c: &mut Client<raft::Raft>, key: u64| {
        let (reply, at) = c
            .call(raft::Request::Put {
                key,
                value: Bytes::from_static(b"v"),
            })
            .expect("put");
        assert_eq!(reply, raft::Reply::PutOk);
        usize::from(at) as u64
    };
    let leader = put(&mut c, 0);
    // Every node has joined the leader's term before the count starts.
    let term = eventually(Duration::from_secs(20), || {
        let terms: Option<Vec<u64>> = (0..3)
            .map(|i| raft_term(&cluster, i, &nodes[i as usize].data))
            .collect();
        let terms = terms?;
        (terms.iter().all(|t| *t == terms[0] && *t > 0)).then_some(terms[0])
    })
    .expect("one term on every disk");
    let followers: Vec<u64> = (0..3).filter(|&i| i != leader).collect();
    for (round, &f) in followers.iter().chain(followers.iter()).enumerate() {
        let key = 1 + 2 * round as u64;
        // Under load: AppendEntries are on their way when the follower dies.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let (cluster, stop) = (cluster.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let _ = c.call(raft::Request::Put {
                        key: 1000 + n % 16,
                        value: Bytes::from_static(b"load"),
                    });
                }
                n
            })
        };
        let flowing = eventually(Duration::from_secs(20), || {
            let messages = metric(&metrics[f as usize], "smelt_handlers_total", ("kind", "message"))?;
            (messages > 50.0).then_some(())
        });
        assert!(flowing.is_some(), "round {round}: the load never reached node {f}");
        nodes[f as usize].kill9();
        assert_eq!(
            put(&mut c, key),
            leader,
            "round {round}: the leader changed while node {f} was down"
        );
        nodes[f as usize] = start(f);
        wait_up(&cluster, &[f]);
        assert_eq!(
            put(&mut c, key + 1),
            leader,
            "round {round}: the leader changed after node {f} restarted"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = load.join();
        // From here on only heartbeats reach the follower.
        let m = &metrics[f as usize];
        let quiet = eventually(Duration::from_secs(20), || {
            metric(m, "smelt_handlers_total", ("kind", "message"))
        })
        .expect("the restarted node's metrics");
        let heard = eventually(Duration::from_secs(20), || {
            let timeouts = metric(m, "smelt_handlers_total", ("kind", "timeout"))?;
            let messages = metric(m, "smelt_handlers_total", ("kind", "message"))?;
            if timeouts > 0.0 {
                Some(Err(format!(
                    "its election timer fired after {messages} messages ({quiet} when the load stopped)"
                )))
            } else {
                (messages >= quiet + 12.0).then_some(Ok(()))
            }
        });
        match heard {
            Some(Ok(())) => {}
            Some(Err(e)) => panic!(
                "round {round}: restarted follower {f} stopped hearing from leader {leader}: {e}\n{}",
                nodes[f as usize].log_text()
            ),
            None => panic!("round {round}: node {f} handled fewer than 12 heartbeats in 20 s"),
        }
        let target = raft_last_index(&cluster, leader, &nodes[leader as usize].data).expect("leader's log");
        let caught_up = eventually(Duration::from_secs(20), || {
            (raft_last_index(&cluster, f, &nodes[f as usize].data)? >= target).then_some(())
        });
        assert!(caught_up.is_some(), "round {round}: node {f} never caught up");
    }
    let terms: Vec<Option<u64>> = (0..3)
        .map(|i| raft_term(&cluster, i, &nodes[i as usize].data))
        .collect();
    assert!(
        terms.iter().all(|t| *t == Some(term)),
        "the follower restarts changed the term {term} -> {terms:?}: an election"
    );
    for n in nodes.iter_mut() {
        assert_eq!(n.term(), Some(0), "{}", n.log_text());
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `smelt client ... put 1 <value>`: a `Bytes` argument is the text itself,
/// `0x` and hex digits, or a quoted literal with the spec's escapes.
#[test]
fn raft_bytes_arguments_from_the_command_line() {
    let put = |v: &str| raft::Raft::parse_request(&["put", "1", v]);
    let value = |v: &str| match put(v) {
        Ok(raft::Request::Put { key: 1, value }) => value,
        other => panic!("{v}: {other:?}"),
    };
    assert_eq!(value("hello").as_slice(), b"hello");
    assert_eq!(value("héllo wörld").as_slice(), "héllo wörld".as_bytes());
    assert_eq!(value("0x00ff").as_slice(), &[0x00, 0xff]);
    assert_eq!(value(r#""0x00ff""#).as_slice(), b"0x00ff");
    assert_eq!(value(r#""a\"b\x00""#).as_slice(), b"a\"b\0");
    assert_eq!(value("").as_slice(), b"");
    let err = put("0xabc").unwrap_err();
    assert!(err.contains("`value`") && err.contains("hex"), "{err}");
    let err = put(r#""\q""#).unwrap_err();
    assert!(err.contains("unknown escape"), "{err}");
    // What a reply prints is a literal the command line takes back.
    let shown = format!("{:?}", value(r#""\x01\"\\ok""#));
    assert_eq!(shown, r#""\x01\"\\ok""#);
    assert_eq!(value(&shown).as_slice(), b"\x01\"\\ok");
}

/// `smelt client ... txn 1=a,2="b,c" 3=0x00`: a map argument is
/// `key=value` pairs split at commas outside quotes (or `{}`), each value a
/// `Bytes` argument as above; `cas` takes three scalars.
#[test]
fn raft_map_arguments_from_the_command_line() {
    let b = |s: &str| Bytes::from(s);
    match raft::Raft::parse_request(&["txn", r#"1=a,2="b,c""#, "3=0x00ff,4="]) {
        Ok(raft::Request::Txn { guards, puts }) => {
            assert_eq!(guards, [(1, b("a")), (2, b("b,c"))].into());
            assert_eq!(puts, [(3, Bytes::from(vec![0, 0xff])), (4, b(""))].into());
        }
        other => panic!("{other:?}"),
    }
    match raft::Raft::parse_request(&["TXN", "{}", "{}"]) {
        Ok(raft::Request::Txn { guards, puts }) => assert!(guards.is_empty() && puts.is_empty()),
        other => panic!("{other:?}"),
    }
    match raft::Raft::parse_request(&["cas", "7", "", "new"]) {
        Ok(raft::Request::Cas {
            key: 7,
            expected,
            value,
        }) => assert_eq!((expected, value), (b(""), b("new"))),
        other => panic!("{other:?}"),
    }
    for (words, want) in [
        (&["txn", "1=a", "2"][..], "`puts`: `2` is not `key=value`"),
        (&["txn", "1=a,1=b", "{}"][..], "`guards`: key 1 given twice"),
        (&["txn", "x=a", "{}"][..], "`guards`: key `x`"),
        (&["txn", "1=a"][..], "`txn` takes 2 argument(s), got 1"),
        (&["cas", "1", "a"][..], "`cas` takes 3 argument(s), got 2"),
    ] {
        let err = raft::Raft::parse_request(words).unwrap_err();
        assert!(err.contains(want), "{words:?}: {err}");
    }
}

/// `smelt run --metrics ADDR`: every node serves `/metrics` in the
/// Prometheus text format (parsed here by an independent parser),
/// `/health` and `/ready` (which follows the spec's `ready when`: a lone
/// node that knows no leader is not ready). After a write: exactly one node's
/// `smelt_protocol_state` says Leader, every node shows the same
/// `current_term`, the leader ran a request handler, and the fsync
/// histogram counted group commits.
#[test]
fn raft_nodes_export_metrics_health_and_readiness() {
    use prometheus_parse::{Scrape, Value};
    let dir = scratch("metrics");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    let metrics: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let start = |i: u64| NodeProc::start("raft", &dir, &file, i, &["--metrics", &metrics[i as usize]]);
    // Alone, node 0 knows no leader: raft.sm's `ready when leader != None`
    // keeps it out of rotation, though its loop takes requests.
    let mut nodes = vec![start(0)];
    wait_up(&cluster, &[0]);
    let alone = eventually(Duration::from_secs(10), || {
        let (code, body) = http_get(&metrics[0], "/ready");
        (code == 503 && body.contains("ready when")).then_some(())
    });
    assert!(alone.is_some(), "{:?}", http_get(&metrics[0], "/ready"));
    assert!(http_get(&metrics[0], "/metrics").1.contains("smelt_spec_ready 0"));
    nodes.extend((1..3).map(start));
    wait_up(&cluster, &[1, 2]);
    let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
    let (reply, leader) = c
        .call(raft::Request::Put {
            key: 5,
            value: Bytes::from_static(b"watched"),
        })
        .expect("put");
    assert_eq!(reply, raft::Reply::PutOk);
    let leader = usize::from(leader);
    let scrape = |i: usize| {
        let (code, body) = http_get(&metrics[i], "/metrics");
        assert_eq!(code, 200, "{body}");
        Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the Prometheus text format")
    };
    // The leader's state shows once its heartbeat reached the others: poll
    // the exporters (a node publishes its state within 10 ms of a change).
    let settled = eventually(Duration::from_secs(20), || {
        let scrapes: Vec<Scrape> = (0..3).map(scrape).collect();
        let leaders: Vec<usize> = (0..3)
            .filter(|&i| sample(&scrapes[i], "smelt_protocol_state", ("state", "Leader")) == Some(1.0))
            .collect();
        let terms: Vec<Option<f64>> = scrapes
            .iter()
            .map(|s| sample(s, "smelt_protocol_var", ("var", "current_term")))
            .collect();
        (leaders == vec![leader] && terms.iter().all(|t| *t == terms[0] && t.is_some())).then_some(scrapes)
    });
    let scrapes = settled.expect("one leader, the one that answered, and one term on every node");
    let s = &scrapes[leader];
    assert!(
        sample(s, "smelt_handlers_total", ("kind", "request")).is_some_and(|n| n >= 1.0),
        "{:?}",
        s.samples
    );
    let fsyncs = s
        .samples
        .iter()
        .find_map(|m| match (&m.metric[..], &m.value) {
            ("smelt_fsync_seconds", Value::Histogram(h)) => h
                .iter()
                .map(|b| b.count)
                .fold(None, |a: Option<f64>, c| Some(a.map_or(c, |a| a.max(c)))),
            _ => None,
        })
        .expect("the fsync histogram");
    assert!(fsyncs >= 1.0, "group commits counted: {fsyncs}");
    assert!(
        sample(s, "smelt_node_info", ("protocol", "Raft")) == Some(1.0),
        "{:?}",
        s.samples
    );
    // Every node learns the leader from its heartbeats, and exports the
    // spec's `metric last_index`.
    for (i, m) in metrics.iter().enumerate() {
        assert_eq!(http_get(m, "/health"), (200, "ok\n".into()));
        let ready = eventually(Duration::from_secs(10), || {
            (http_get(m, "/ready").0 == 200).then_some(())
        });
        assert!(ready.is_some(), "node {i}: {:?}", http_get(m, "/ready"));
        assert!(sample(&scrapes[i], "smelt_protocol_var", ("var", "last_index")).is_some());
    }
    assert_eq!(http_get(&metrics[0], "/nope").0, 404);
    drop(nodes);

    // An address that cannot be served is a usage error before the node
    // starts (exit 2).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut node = NodeProc::start("raft", &dir, &file, 0, &["--metrics", &addr]);
    assert_eq!(node.wait_exit(Duration::from_secs(20)), Some(2), "{}", node.log_text());
    assert!(node.log_text().contains("cannot serve metrics"), "{}", node.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}
