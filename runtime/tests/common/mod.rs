//! Shared by the runtime's integration tests: the compiled test protocols,
//! cluster files on 127.0.0.1, and node processes.
//!
//! Node processes are this very test binary, started again with
//! `SMELT_TEST_NODE` set: its `node_entry` test then runs the node (through
//! the same `smelt_runtime::cli::main` a harness binary uses) and exits with
//! the node's exit code. So the tests run real processes that can be killed
//! with SIGKILL, without building a harness binary first.

#![allow(dead_code)]

use smelt_runtime::cluster::{Cluster, NodeEntry};
use smelt_runtime::storage::{self, Identity, RecoverError, Recovered};
use smelt_support::{Id, Layout, Protocol};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

smelt::protocol!("../specs/paxos.sm");
smelt::protocol!("../specs/two_phase_commit.sm");
smelt::protocol!("../specs/raft.sm");
smelt::protocol!("../specs/buggy/raft_no_dedup.sm");
smelt::protocol!("tests/specs/journal.sm");
smelt::protocol!("tests/specs/replog.sm");
smelt::protocol!("tests/specs/counter.sm");
smelt::protocol!("tests/specs/early.sm");

/// A child process holds copies of this process's descriptors from `fork`
/// until its `exec`, and with them the `flock` of any data directory a test
/// thread has open here: a test that closes a store and reopens it at once
/// could find it "in use by another process" — the child another thread is
/// spawning. Tests that lock data directories in this process hold
/// `no_spawn()` while they do; spawning takes the other side, and `spawn`
/// returns only after the child's `exec` closed its copies.
static SPAWN: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// See `SPAWN`.
pub fn no_spawn() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWN.read().unwrap_or_else(|e| e.into_inner())
}

const NODE_ENV: &str = "SMELT_TEST_NODE";
const ARGS_ENV: &str = "SMELT_TEST_NODE_ARGS";

/// Call from a `#[test] fn node_entry()`: when this process was started as
/// a node, run it and exit; otherwise do nothing.
pub fn node_entry() {
    let Ok(spec) = std::env::var(NODE_ENV) else { return };
    let args: Vec<String> = std::env::var(ARGS_ENV)
        .unwrap_or_default()
        .split('\u{1f}')
        .map(String::from)
        .collect();
    let code = match spec.as_str() {
        "paxos" => smelt_runtime::cli::main::<paxos::Paxos>("run", args),
        "raft" => smelt_runtime::cli::main::<raft::Raft>("run", args),
        "raft_no_dedup" => smelt_runtime::cli::main::<raft_no_dedup::RaftNoDedup>("run", args),
        "journal" => smelt_runtime::cli::main::<journal::Journal>("run", args),
        "replog" => smelt_runtime::cli::main::<rep_log::RepLog>("run", args),
        "counter" => smelt_runtime::cli::main::<counter::Counter>("run", args),
        "two_phase_commit" => smelt_runtime::cli::main::<two_phase_commit::TwoPhaseCommit>("run", args),
        other => {
            eprintln!("unknown test spec {other}");
            2
        }
    };
    std::process::exit(code);
}

/// A port that is free now, chosen below the kernel's ephemeral range so
/// that outgoing connections (which take ephemeral ports) cannot grab it
/// between this check and the node's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut rng = smelt_runtime::rng::Rng::new(
        smelt_runtime::rng::Rng::seed_from(std::process::id() as u64) ^ NEXT.fetch_add(1, Ordering::Relaxed),
    );
    for _ in 0..1000 {
        let port = 20000 + rng.below(12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A fresh directory under the target dir. Tests remove it when they pass
/// and leave it (with the node logs) for inspection when they fail.
pub fn scratch(name: &str) -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("smelt-rt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

/// Writes a cluster file with `roles[i].1` nodes of role `roles[i].0`.
pub fn write_cluster(dir: &Path, roles: &[(&str, u64, bool)]) -> (PathBuf, Cluster) {
    let mut nodes = Vec::new();
    for (role, n, clients) in roles {
        for _ in 0..*n {
            nodes.push(NodeEntry {
                id: nodes.len() as u64,
                role: role.to_string(),
                address: format!("127.0.0.1:{}", free_port()),
                client_address: clients.then(|| format!("127.0.0.1:{}", free_port())),
                ..Default::default()
            });
        }
    }
    let cluster = Cluster {
        cluster_id: format!("test-{}", dir.display()),
        spec: None,
        nodes,
        ..Default::default()
    };
    let file = dir.join("cluster.toml");
    std::fs::write(&file, cluster.to_toml()).expect("write cluster file");
    (file, cluster)
}

pub struct NodeProc {
    pub id: u64,
    pub child: Child,
    pub log: PathBuf,
    pub data: PathBuf,
}

impl NodeProc {
    pub fn start(spec: &str, dir: &Path, cluster: &Path, id: u64, extra: &[&str]) -> NodeProc {
        NodeProc::start_in(None, spec, dir, cluster, id, extra)
    }

    /// Starts the node inside network namespace `ns` (`ip netns exec`,
    /// which execs the node in place: the child's pid is the node's), or in
    /// this process's namespace with `None`.
    pub fn start_in(ns: Option<&str>, spec: &str, dir: &Path, cluster: &Path, id: u64, extra: &[&str]) -> NodeProc {
        let data = dir.join(format!("node-{id}"));
        let log = dir.join(format!("node-{id}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--cluster".to_string(),
            cluster.display().to_string(),
            "--data-dir".to_string(),
            data.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let exe = std::env::current_exe().expect("exe");
        let mut command = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let spawning = SPAWN.write().unwrap_or_else(|e| e.into_inner());
        let child = command
            .args(["--exact", "node_entry", "--nocapture", "--test-threads=1"])
            .env(NODE_ENV, spec)
            .env(ARGS_ENV, args.join("\u{1f}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn node");
        drop(spawning);
        NodeProc { id, child, log, data }
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and the exit code.
    pub fn term(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.wait_exit(Duration::from_secs(10))
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads a node's durable state with the runtime's own recovery code,
/// without changing anything on disk.
pub fn durable<P: Protocol>(cluster: &Cluster, id: u64, data: &Path) -> Result<Recovered<P::Storage>, RecoverError> {
    let layout: Layout = cluster.layout::<P>().expect("layout");
    let actor = P::server(Id::from(id as usize), &layout).expect("server");
    let identity = Identity::of::<P>(cluster.hash(), id);
    storage::recover::<P>(data, &identity, &actor, Id::from(id as usize), false).map(|(r, _)| r)
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(x) = f() {
            return Some(x);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Client options for tests: each attempt waits `attempt_timeout_ms`, and a
/// request is tried up to 30 times (elections under test take a few).
pub fn quick_client(attempt_timeout_ms: u64) -> smelt_runtime::client::ClientOptions {
    smelt_runtime::client::ClientOptions {
        attempt_timeout_ms,
        attempts_max: 30,
        ..Default::default()
    }
}

/// Waits until every listed node accepts connections on its peer address.
pub fn wait_up(cluster: &Cluster, ids: &[u64]) {
    for &i in ids {
        let addr: std::net::SocketAddr = cluster.nodes[i as usize].address.parse().expect("address");
        let up = eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        assert!(up.is_some(), "node {i} did not start listening");
    }
}

/// `GET path` over plain HTTP/1.0: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the metrics address");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}
