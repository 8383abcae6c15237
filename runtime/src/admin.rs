//! What an operator asks a running cluster, and copies of its data:
//!
//! - `status`: every node's role and explicit state, its integer and
//!   boolean variables (a term, a commit index, ...), log positions,
//!   queue, connections, disk use and uptime, asked over the node's client
//!   port (a `Status` frame, answered by the connection task from the
//!   counters the event loop publishes, so it never waits on a handler;
//!   under TLS like any client).
//! - `save`: a consistent copy of a running node's data directory. The
//!   files are copied while the node appends (snapshot first, then the log
//!   segments in order), and the copy is then recovered with the node's
//!   own recovery code, which checks every record: a copy that does not
//!   check out (a compaction deleted a segment half-way) is made again. A
//!   record cut off at the copy's end is a torn tail, truncated as after a
//!   crash: the copy is the node's durable state at some moment.
//! - `inspect`: what a data directory (a node's, or a copy) holds.

use crate::cluster::Cluster;
use crate::frame::{self, Kind};
use crate::node::NodeStats;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A node's answer to a `Status` frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: u64,
    pub protocol: String,
    /// smelt's version.
    pub version: String,
    pub role: String,
    pub state: Option<String>,
    /// Integer and boolean variables of the role (`Protocol::scalar_fields`).
    pub vars: Vec<(String, i64)>,
    pub accepting: bool,
    /// The spec's `ready when` (`None`: the role declares none).
    pub spec_ready: Option<bool>,
    pub failed: bool,
    pub stopping: bool,
    pub last_lsn: u64,
    pub durable_lsn: u64,
    pub inbound_queue_len: u64,
    pub client_connections: u64,
    pub peer_links_up: u64,
    pub handlers: u64,
    pub uptime_ms: u64,
    /// Bytes in the data directory's files (`None`: not known).
    pub disk_bytes: Option<u64>,
}

/// What a node's connection tasks need to answer `Status`.
#[derive(Debug)]
pub struct AdminInfo {
    pub node: u64,
    pub protocol: &'static str,
    pub started: Instant,
    pub data_dir: Option<PathBuf>,
    pub stats: std::sync::Arc<NodeStats>,
}

impl AdminInfo {
    pub fn status(&self) -> NodeStatus {
        let s = self.stats.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        NodeStatus {
            node: self.node,
            protocol: self.protocol.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: s.role.to_string(),
            state: s.state.map(String::from),
            vars: s
                .vars
                .iter()
                .map(|(k, v)| (k.to_string(), i64::try_from(*v).unwrap_or(i64::MAX)))
                .collect(),
            accepting: s.accepting,
            spec_ready: s.spec_ready,
            failed: s.failed,
            stopping: s.stopping,
            last_lsn: s.last_lsn,
            durable_lsn: s.durable_lsn,
            inbound_queue_len: s.inbound_queue_len as u64,
            client_connections: s.client_connections as u64,
            peer_links_up: self.stats.peer_links_up.load(Ordering::Relaxed),
            handlers: self.stats.handlers.load(Ordering::Relaxed),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            disk_bytes: self.data_dir.as_deref().and_then(|d| dir_bytes(d).ok()),
        }
    }
}

/// The bytes of the files directly in `dir` (a data directory is flat).
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let m = e?.metadata()?;
        if m.is_file() {
            n += m.len();
        }
    }
    Ok(n)
}

/// Asks node `id` of `cluster` for its status over its client port.
pub fn query(
    cluster: &Cluster,
    id: u64,
    timeout: Duration,
    tls_identity: Option<(PathBuf, PathBuf)>,
) -> Result<NodeStatus, String> {
    let node = cluster
        .node(id)
        .ok_or_else(|| format!("no node {id} in the cluster file"))?;
    let address = node
        .client_address
        .as_deref()
        .ok_or("no client_address: not reachable by admin")?;
    let addr = crate::cluster::resolve(address)?;
    let tls = match crate::tls::client_tls(cluster, tls_identity)? {
        Some(cfg) => Some((cfg, crate::tls::server_name(address)?)),
        None => None,
    };
    let deadline = Instant::now() + timeout;
    let mut conn = crate::client::connect(addr, tls.as_ref().map(|(c, n)| (c, n)), timeout, deadline)?;
    let max = frame::PAYLOAD_BYTES_MAX;
    let req = frame::encode(Kind::Status, cluster.hash(), 0, &(), max).map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut conn, &req).map_err(|e| format!("send: {e}"))?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    conn.set_read_timeout(left)?;
    let f = crate::client::read_frame_blocking(&mut conn, max)?;
    if f.kind != Kind::Status || f.cluster != cluster.hash() {
        return Err(format!("answered with a {:?} frame", f.kind));
    }
    frame::payload(&f.payload).map_err(|e| e.to_string())
}

/// Copies data directory `from` (of a running or stopped node) to `to`,
/// which must not exist: `node.meta`, the newest snapshot, the log
/// segments in order. Returns the files copied. The caller checks the copy
/// (`recover`) and calls again on failure.
pub fn copy_data_dir(from: &Path, to: &Path) -> Result<Vec<PathBuf>, String> {
    if to.exists() {
        return Err(format!("{} exists: not overwriting it", to.display()));
    }
    let names: Vec<String> = std::fs::read_dir(from)
        .map_err(|e| format!("cannot read {}: {e}", from.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    if !names.iter().any(|n| n == "node.meta") {
        return Err(format!("{} is no data directory (no node.meta)", from.display()));
    }
    let newest_snap = names
        .iter()
        .filter(|n| n.starts_with("snap-") && n.ends_with(".snap"))
        .max()
        .cloned();
    let mut segments: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("wal-") && n.ends_with(".log"))
        .collect();
    // Names carry 20-digit lsns: sorting them sorts the lsns.
    segments.sort();
    // A name of this copy's own (never another save's, never an existing
    // directory), removed if the copy fails.
    let file_name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = to.with_file_name(format!(".{file_name}.partial-{}", std::process::id()));
    std::fs::create_dir(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let copied = copy_into(from, &tmp, to, newest_snap, segments);
    if copied.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    copied
}

fn copy_into(
    from: &Path,
    tmp: &Path,
    to: &Path,
    newest_snap: Option<String>,
    segments: Vec<&String>,
) -> Result<Vec<PathBuf>, String> {
    let mut copied = Vec::new();
    let order = std::iter::once(&"node.meta".to_string())
        .cloned()
        .chain(newest_snap)
        .chain(segments.into_iter().cloned())
        .collect::<Vec<_>>();
    for name in order {
        let src = from.join(&name);
        let dst = tmp.join(&name);
        std::fs::copy(&src, &dst).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
        copied.push(to.join(&name));
    }
    for f in std::fs::read_dir(tmp).map_err(|e| format!("cannot read {}: {e}", tmp.display()))? {
        let f = f.map_err(|e| format!("cannot read {}: {e}", tmp.display()))?;
        std::fs::File::open(f.path())
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", f.path().display()))?;
    }
    std::fs::rename(tmp, to).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), to.display()))?;
    if let Some(parent) = to.parent() {
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(copied)
}

/// The status table `admin status` prints: one row per node, the role's
/// variables as columns, and each variable's lag behind the largest value
/// any node reported (for a log index, how far the node is behind).
pub fn table(rows: &[(u64, Result<NodeStatus, String>)]) -> String {
    let mut vars: Vec<&str> = Vec::new();
    for (_, r) in rows {
        if let Ok(s) = r {
            for (k, _) in &s.vars {
                if !vars.contains(&k.as_str()) {
                    vars.push(k);
                }
            }
        }
    }
    let max = |var: &str| {
        rows.iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .filter_map(|s| s.vars.iter().find(|(k, _)| k == var).map(|(_, v)| *v))
            .max()
    };
    let mut out = String::new();
    let mut head = vec![
        "node".to_string(),
        "role/state".into(),
        "ready".into(),
        "last_lsn".into(),
        "durable_lsn".into(),
        "disk".into(),
        "uptime".into(),
        "peers up".into(),
    ];
    head.extend(vars.iter().map(|v| v.to_string()));
    out.push_str(&head.join("\t"));
    out.push('\n');
    for (id, r) in rows {
        let s = match r {
            Ok(s) => s,
            Err(e) => {
                out.push_str(&format!("{id}\tunreachable: {e}\n"));
                continue;
            }
        };
        let state = match &s.state {
            Some(st) => format!("{}/{st}", s.role),
            None => s.role.clone(),
        };
        let ready = if s.failed {
            "failed"
        } else if s.stopping {
            "stopping"
        } else if s.accepting && s.spec_ready != Some(false) {
            "yes"
        } else {
            "no"
        };
        let mut row = vec![
            id.to_string(),
            state,
            ready.into(),
            s.last_lsn.to_string(),
            s.durable_lsn.to_string(),
            s.disk_bytes.map_or("?".into(), human_bytes),
            format!("{:.0}s", s.uptime_ms as f64 / 1e3),
            s.peer_links_up.to_string(),
        ];
        for v in &vars {
            row.push(match s.vars.iter().find(|(k, _)| k == v) {
                Some((_, x)) => match max(v) {
                    Some(m) if m > *x => format!("{x} (-{})", m - x),
                    _ => x.to_string(),
                },
                None => "-".into(),
            });
        }
        out.push_str(&row.join("\t"));
        out.push('\n');
    }
    out
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(node: u64, index: i64) -> NodeStatus {
        NodeStatus {
            node,
            protocol: "Raft".into(),
            version: "0".into(),
            role: "Server".into(),
            state: Some("Follower".into()),
            vars: vec![("commit_index".into(), index)],
            accepting: true,
            spec_ready: Some(true),
            failed: false,
            stopping: false,
            last_lsn: 3,
            durable_lsn: 3,
            inbound_queue_len: 0,
            client_connections: 0,
            peer_links_up: 2,
            handlers: 9,
            uptime_ms: 5000,
            disk_bytes: Some(2048),
        }
    }

    #[test]
    fn the_table_shows_lag_behind_the_largest_value() {
        let t = table(&[
            (0, Ok(status(0, 10))),
            (1, Ok(status(1, 7))),
            (2, Err("refused".into())),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("commit_index"), "{t}");
        assert!(lines[1].ends_with("\t10"), "{t}");
        assert!(lines[2].ends_with("\t7 (-3)"), "{t}");
        assert!(lines[2].contains("Server/Follower\tyes\t3\t3\t2.0 KiB\t5s\t2"), "{t}");
        assert_eq!(lines[3], "2\tunreachable: refused");
    }
}
