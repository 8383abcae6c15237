//! The smelt side: `specs/raft.sm`'s key-value store on three nodes, each the
//! spec's harness binary running `run` (what `smelt run specs/raft.sm` runs),
//! driven through the runtime's blocking client, which follows redirects to
//! the leader and then stays there.

use super::load::{Backend, KvClient};
use super::{free_port, retry, Procs, Scratch};
use smelt::runtime::client::{Client, ClientOptions};
use smelt::runtime::cluster::{Cluster, NodeEntry};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

smelt::protocol!("specs/raft.sm");

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/raft.sm");

// ------------------------------------------------------------------------
// THE ONE PLACE where the benchmark builds smelt's Put request: raft.sm's
// service is `Put(key: u64, value: Bytes)`, so the generator's value goes
// out whole, as etcd's does.
pub fn smelt_put(key: u64, value: &[u8]) -> raft::Request {
    raft::Request::Put {
        key,
        value: smelt::support::Bytes::from(value),
    }
}
// ------------------------------------------------------------------------

/// What a Put carries, for the table header: the Rust type of its value
/// field and the size of its request frame on the wire.
pub fn put_description(value: &[u8]) -> String {
    fn type_of<T>(_: &T) -> &'static str {
        std::any::type_name::<T>()
    }
    let request = smelt_put(key(0, 1), value);
    let frame = smelt::runtime::frame::encode(
        smelt::runtime::frame::Kind::Request,
        0,
        0,
        &(0u64, &request),
        usize::MAX,
    )
    .map(|f| f.len())
    .unwrap_or(0);
    match &request {
        raft::Request::Put { value: v, .. } => format!("{} B as `{}`, {frame}-byte request frame", v.len(), type_of(v)),
        _ => unreachable!("smelt_put builds a Put"),
    }
}

/// raft.sm's keys are u64: client in the high 32 bits, sequence number in
/// the low ones (fresh keys, like etcd's `client-i-seq`).
fn key(client: usize, seq: u64) -> u64 {
    ((client as u64) << 32) | (seq & 0xffff_ffff)
}

/// Builds raft.sm's harness binary (through `smelt run`, so exactly the
/// binary `smelt run specs/raft.sm` runs) and returns its path.
pub fn harness(smelt_bin: &str) -> PathBuf {
    // <target>/release/smelt -> <target>/smelt-harness
    let target = Path::new(smelt_bin)
        .parent()
        .and_then(Path::parent)
        .expect("target dir");
    let root = target.join("smelt-harness");
    // `--help` makes the built harness print its usage and exit; smelt's own
    // progress and cargo's errors go to stderr.
    let status = Command::new(smelt_bin)
        .args(["run", SPEC, "--help"])
        .env("SMELT_HARNESS_DIR", &root)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run smelt");
    assert!(status.success(), "building raft.sm's harness failed");
    // The harness crate whose main.rs names our spec, and not the check-only
    // one (`...-check`, built by `smelt check`); its binary is named after
    // the crate's directory (see src/cli/harness.rs).
    let spec = std::fs::canonicalize(SPEC).expect("specs/raft.sm");
    let needle = format!("{:?}", spec.display().to_string());
    let dir = std::fs::read_dir(&root)
        .expect("harness dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| !d.to_string_lossy().ends_with("-check"))
        .find(|d| std::fs::read_to_string(d.join("src/main.rs")).is_ok_and(|m| m.contains(&needle)))
        .expect("the harness crate of specs/raft.sm");
    let name = dir.file_name().expect("dir name").to_string_lossy().to_lowercase();
    let bin = root.join("target/release").join(format!("smelt-harness-{name}"));
    assert!(bin.exists(), "no harness binary at {}", bin.display());
    bin
}

/// Three raft.sm nodes on 127.0.0.1 with fresh data directories.
pub struct SmeltRaft {
    cluster: Cluster,
    harness: PathBuf,
    procs: Procs,
    dir: Scratch,
    /// Restarts so far (each restart logs to a new file).
    restarts: usize,
}

impl SmeltRaft {
    /// With `tls`, mutual TLS on peer and client links, with certificates
    /// made by `smelt_runtime::tls::generate` (what `smelt certs` does).
    pub fn start(harness: &Path, tls: bool) -> Result<SmeltRaft, String> {
        let dir = Scratch::new("smelt");
        let nodes: Vec<NodeEntry> = (0..3)
            .map(|id| NodeEntry {
                id,
                role: "Server".into(),
                address: format!("127.0.0.1:{}", free_port()),
                client_address: Some(format!("127.0.0.1:{}", free_port())),
                ..Default::default()
            })
            .collect();
        let cluster = Cluster {
            cluster_id: format!("kv-bench-{}", std::process::id()),
            spec: Some(PathBuf::from(SPEC)),
            nodes,
            base: dir.0.clone(),
            ..Default::default()
        };
        let cluster = if tls {
            smelt::runtime::tls::generate(&cluster, &dir.0.join("certs"), &dir.0, 30)?
        } else {
            cluster
        };
        let file = dir.0.join("cluster.toml");
        std::fs::write(&file, cluster.to_toml()).map_err(|e| e.to_string())?;
        let mut me = SmeltRaft {
            cluster,
            harness: harness.to_path_buf(),
            procs: Procs::default(),
            dir,
            restarts: 0,
        };
        for id in 0..3 {
            me.spawn(id, "warn", &format!("node-{id}.log"));
        }
        // Up once a put goes through (a leader is elected and has a majority).
        // (Its key, client u32::MAX, is outside the load's.)
        let mut c = me.client()?;
        retry(Duration::from_secs(30), || c.put(u32::MAX as usize, 0, &[0; 8]))?;
        Ok(me)
    }

    pub fn check_alive(&mut self) -> Result<(), String> {
        self.procs.check_alive()
    }

    fn spawn(&mut self, id: usize, log_level: &str, log: &str) {
        let mut cmd = Command::new(&self.harness);
        cmd.arg("run")
            .args(["--id", &id.to_string()])
            .arg("--cluster")
            .arg(self.dir.0.join("cluster.toml"))
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .env("SMELT_LOG", log_level);
        self.procs
            .spawn(&format!("smelt node {id}"), &mut cmd, &self.dir.0.join(log));
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.0.join(format!("node-{id}"))
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: usize) -> Option<u32> {
        self.procs.pid(&format!("smelt node {id}"))
    }

    /// Kills node `id` with SIGKILL, starts it again on the same data
    /// directory and returns how long it took from the start of the new
    /// process until the node had recovered its state and started serving
    /// (its `node starting` log line, written after recovery).
    pub fn restart(&mut self, id: usize) -> Result<Duration, String> {
        self.procs.kill(&format!("smelt node {id}"));
        self.restarts += 1;
        let log = format!("node-{id}-restart-{}.log", self.restarts);
        let begin = std::time::Instant::now();
        self.spawn(id, "info", &log);
        let path = self.dir.0.join(&log);
        loop {
            if std::fs::read_to_string(&path).is_ok_and(|t| t.contains("node starting")) {
                return Ok(begin.elapsed());
            }
            self.procs.check_alive()?;
            if begin.elapsed() > Duration::from_secs(600) {
                return Err(format!("node {id} did not start within 10 minutes"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    /// Stops every node with SIGTERM (each flushes and exits 0).
    pub fn stop(&mut self) -> Result<(), String> {
        for id in 0..3 {
            let status = self.procs.stop(&format!("smelt node {id}"))?;
            if !status.success() {
                return Err(format!("node {id} stopped with {status}"));
            }
        }
        Ok(())
    }

    /// The durable state recovered from node `id`'s data directory, as
    /// `smelt run --inspect` prints it (the node must be stopped).
    pub fn inspect(&self, id: usize) -> Result<String, String> {
        let out = Command::new(&self.harness)
            .arg("run")
            .args(["--id", &id.to_string()])
            .arg("--cluster")
            .arg(self.dir.0.join("cluster.toml"))
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--inspect")
            .env("SMELT_LOG", "warn")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "inspecting node {id}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    }

    fn client(&self) -> Result<SmeltClient, String> {
        let opts = ClientOptions {
            attempt_timeout_ms: 2000,
            attempts_max: 10,
            ..ClientOptions::default()
        };
        let client = Client::<raft::Raft>::new(&self.cluster, opts).map_err(|e| e.to_string())?;
        Ok(SmeltClient(client))
    }
}

impl Backend for SmeltRaft {
    fn clients(&self, n: usize) -> Result<Vec<Box<dyn KvClient>>, String> {
        (0..n)
            .map(|_| self.client().map(|c| Box::new(c) as Box<dyn KvClient>))
            .collect()
    }
}

/// One connection per client (the runtime's client is blocking).
struct SmeltClient(Client<raft::Raft>);

impl KvClient for SmeltClient {
    fn put(&mut self, client: usize, seq: u64, value: &[u8]) -> Result<(), String> {
        match self.0.call(smelt_put(key(client, seq), value)) {
            Ok((raft::Reply::PutOk, _)) => Ok(()),
            Ok((other, _)) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}
