//! The operator's commands against real raft.sm node processes: `admin
//! status` over the client ports, and `admin save` of a node's data
//! directory while the node is writing and compacting its log.

mod common;

use common::*;
use smelt_runtime::admin::{self, NodeStatus};
use smelt_runtime::client::Client;
use smelt_support::Bytes;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn node_entry() {
    common::node_entry();
}

fn var(s: &NodeStatus, name: &str) -> Option<i64> {
    s.vars.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn statuses(cluster: &smelt_runtime::cluster::Cluster) -> Vec<(u64, Result<NodeStatus, String>)> {
    (0..3)
        .map(|i| (i, admin::query(cluster, i, Duration::from_secs(2), None)))
        .collect()
}

/// `smelt admin save` through the harness's own command line.
fn save(file: &Path, id: u64, data: &Path, out: &Path) -> i32 {
    let _guard = no_spawn();
    let args = [
        "save",
        "--cluster",
        file.to_str().unwrap(),
        "--id",
        &id.to_string(),
        "--data-dir",
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    smelt_runtime::cli::main::<raft::Raft>("admin", args.iter().map(|s| s.to_string()).collect())
}

#[test]
fn admin_status_shows_one_leader_and_save_copies_a_node_while_it_writes() {
    let dir = scratch("admin");
    let (file, cluster) = write_cluster(&dir, &[("Server", 3, true)]);
    // Small snapshots: the log is compacted (segments deleted) while
    // `save` copies it.
    let compact = ["--snapshot-log-bytes", "4096"];
    let mut nodes: Vec<NodeProc> = (0..3)
        .map(|i| NodeProc::start("raft", &dir, &file, i, &compact))
        .collect();
    wait_up(&cluster, &[0, 1, 2]);
    let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
    let (_, leader) = c
        .call(raft::Request::Put {
            key: 1,
            value: Bytes::from("one"),
        })
        .expect("put");
    let leader = usize::from(leader) as u64;

    // Every node answers; one leader, one term, everything durable.
    let agreed = eventually(Duration::from_secs(10), || {
        let rows = statuses(&cluster);
        let all: Vec<&NodeStatus> = rows.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
        let leaders = all.iter().filter(|s| s.state.as_deref() == Some("Leader")).count();
        let terms: std::collections::BTreeSet<_> = all.iter().map(|s| var(s, "current_term")).collect();
        let durable = all.iter().all(|s| s.durable_lsn == s.last_lsn && s.last_lsn > 0);
        // Followers learn the commit from the leader's next heartbeat.
        let committed = all.iter().all(|s| var(s, "commit_index").is_some_and(|c| c >= 1));
        (all.len() == 3 && leaders == 1 && terms.len() == 1 && durable && committed).then_some(rows)
    });
    let rows = agreed.expect("no status with one leader, one term, everything durable and committed");
    let lead = rows[leader as usize].1.as_ref().expect("leader's status");
    assert_eq!(lead.state.as_deref(), Some("Leader"));
    for (i, r) in &rows {
        let s = r.as_ref().expect("status");
        assert_eq!(s.node, *i);
        assert_eq!(s.protocol, "Raft");
        assert!(s.accepting && !s.failed && !s.stopping, "{s:?}");
        assert!(s.disk_bytes.is_some_and(|b| b > 0), "{s:?}");
        assert!(s.uptime_ms > 0 && s.handlers > 0, "{s:?}");
    }
    let table = admin::table(&rows);
    assert!(
        table.contains("Server/Leader") && table.contains("current_term"),
        "{table}"
    );

    // `save` of a follower while a client writes (and the nodes compact):
    // every copy recovers, and copies taken later hold more.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let data = nodes[follower as usize].data.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let (cluster, stop, done) = (cluster.clone(), stop.clone(), done.clone());
        std::thread::spawn(move || {
            let mut c = Client::<raft::Raft>::new(&cluster, quick_client(300)).expect("client");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let value = Bytes::from(vec![b'x'; 200]);
                c.call(raft::Request::Put { key: n % 50, value }).expect("put");
                n += 1;
                done.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let mut last = 0;
    for k in 0..5 {
        // Each copy is taken after the writer committed more puts.
        let want = done.load(Ordering::Relaxed) + 20;
        let grew = eventually(Duration::from_secs(20), || {
            (done.load(Ordering::Relaxed) >= want).then_some(())
        });
        assert!(grew.is_some(), "the writer stopped making progress before copy {k}");
        let out = dir.join(format!("copy-{k}"));
        assert_eq!(save(&file, follower, &data, &out), 0, "save {k} failed");
        let _guard = no_spawn();
        let r = durable::<raft::Raft>(&cluster, follower, &out).expect("the copy recovers");
        assert!(r.last_lsn >= last, "copy {k} holds less than the one before");
        last = r.last_lsn;
    }
    stop.store(true, Ordering::Relaxed);
    let puts = writer.join().expect("writer");
    assert!(puts > 10, "the writer made only {puts} puts");
    // (Read-only recovery of a live directory can meet a segment that a
    // compaction just deleted: asked again.)
    let live = eventually(Duration::from_secs(10), || {
        durable::<raft::Raft>(&cluster, follower, &data).ok()
    });
    let live = live.expect("the live directory recovers");
    assert!(
        live.snapshot_lsn > 0,
        "the nodes never compacted while the copies were made"
    );

    // Quiet now: a copy is the node's state exactly.
    let same = eventually(Duration::from_secs(20), || {
        let out = dir.join(format!("quiet-{}", rand_suffix()));
        assert_eq!(save(&file, follower, &data, &out), 0);
        let _guard = no_spawn();
        let copy = durable::<raft::Raft>(&cluster, follower, &out).expect("copy");
        let live = durable::<raft::Raft>(&cluster, follower, &data).ok()?;
        (copy.storage == live.storage && copy.last_lsn == live.last_lsn).then_some(())
    });
    assert!(same.is_some(), "no copy equal to the quiet node's state");
    assert_ne!(
        save(&file, follower, &data, &dir.join("copy-0")),
        0,
        "save overwrote an existing directory"
    );

    // A node that is down shows as unreachable; the others still answer.
    nodes[follower as usize].kill9();
    let rows = statuses(&cluster);
    assert!(rows[follower as usize].1.is_err());
    assert_eq!(rows.iter().filter(|(_, r)| r.is_ok()).count(), 2);
    assert!(admin::table(&rows).contains("unreachable"));
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
