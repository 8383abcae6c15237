//! Pieces of the `kv_vs_etcd` benchmark.
//!
//! - [`load`]: the closed-loop load generator and its statistics, shared by
//!   both systems.
//! - [`etcd`]: installs etcd, runs three members and puts over native gRPC.
//! - [`smelt`]: runs raft.sm on three `smelt run` nodes and puts through the
//!   runtime's client.
//! - [`floor`]: the physical floor: an fsync and a loopback round trip.
//!
//! Two benchmarks share these modules (`kv_vs_etcd` and `kv_restart`), and
//! each uses only part of them.
#![allow(dead_code)]

pub mod etcd;
pub mod floor;
pub mod load;
pub mod smelt;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The load average, as `uptime` prints it (1, 5 and 15 minutes).
pub fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Flushes what earlier runs left dirty (their removed data dirs included)
/// and pauses, so that their writeback does not land in the next
/// measurement: fdatasync here takes about 0.2 ms on a quiet disk and about
/// 4 ms while other writes are being flushed.
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(1));
}

/// A directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under cargo's target tmp dir, on the same disk for
    /// both systems (and for the fsync floor).
    pub fn new(name: &str) -> Scratch {
        let base = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("kv-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Server processes, killed (SIGKILL) and reaped when dropped, panics
/// included. Each writes its output to a log file.
#[derive(Default)]
pub struct Procs(Vec<(String, Child, PathBuf)>);

impl Procs {
    pub fn spawn(&mut self, name: &str, cmd: &mut Command, log: &Path) {
        let out = std::fs::File::create(log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", cmd.get_program()));
        self.0.push((name.to_string(), child, log.to_path_buf()));
    }

    /// Kills (SIGKILL) and reaps the process called `name`.
    pub fn kill(&mut self, name: &str) {
        if let Some(i) = self.0.iter().position(|(n, _, _)| n == name) {
            let (_, mut child, _) = self.0.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process called `name` with SIGTERM (a clean stop) and
    /// waits for it; returns its exit status.
    pub fn stop(&mut self, name: &str) -> Result<std::process::ExitStatus, String> {
        let i = self
            .0
            .iter()
            .position(|(n, _, _)| n == name)
            .ok_or(format!("no {name}"))?;
        let (_, mut child, _) = self.0.remove(i);
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !sent.success() {
            let _ = child.kill();
        }
        child.wait().map_err(|e| e.to_string())
    }

    /// The process id of the process called `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.0.iter().find(|(n, _, _)| n == name).map(|(_, c, _)| c.id())
    }

    /// Fails (with the end of its log) if any process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for (name, child, log) in &mut self.0 {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "{name} exited ({status}); end of its log:\n{}",
                    tail.join("\n")
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port free now, below the ephemeral range (so that outgoing connections
/// cannot take it before the server binds it).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = ::smelt::runtime::rng::Rng::seed_from(std::process::id() as u64);
    let mut rng = ::smelt::runtime::rng::Rng::new(seed ^ NEXT.fetch_add(1, Ordering::Relaxed));
    for _ in 0..1000 {
        let port = 20000 + rng.below(12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Polls `f` until it returns `Ok`, for at most `limit`; the last error otherwise.
pub fn retry<T>(limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let end = Instant::now() + limit;
    loop {
        match f() {
            Ok(x) => return Ok(x),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
