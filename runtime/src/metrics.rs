//! What an operator can watch: `smelt run --metrics ADDR` serves
//!
//! - `/metrics`: the Prometheus text format (encoded by prometheus-client):
//!   handlers by event kind, fsync latency and records per group commit
//!   (histograms), queue depth, drops, connections, snapshots, the durable
//!   and applied log positions, and the protocol's own state, generically:
//!   the role's explicit state (`smelt_protocol_state{role, state} 1`) and
//!   every integer or boolean variable and `metric` the spec declares
//!   (`smelt_protocol_var{role, var}`), and `ready when` as
//!   `smelt_spec_ready`;
//! - `/health`: 200 while the node runs and its disk takes writes (a failed
//!   write or fsync stops the node; until then it is healthy), else 503;
//! - `/ready`: 200 once the node has recovered, its event loop is taking
//!   requests (neither failed nor stopping) and the spec's `ready when`,
//!   if its role declares one, holds; else 503.
//!
//! The server is a thread of its own (tiny_http): a slow scraper never
//! stalls the event loop, which only publishes a small `Status` each turn.

use crate::node::NodeStats;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the event loop publishes for the exporter.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// The node's role, and its explicit state if the role has states.
    pub role: &'static str,
    pub state: Option<&'static str>,
    /// Integer and boolean variables (`Protocol::scalar_fields`), then the
    /// spec's `metric` declarations.
    pub vars: Vec<(&'static str, i128)>,
    /// The spec's `ready when` (`None`: the role declares none).
    pub spec_ready: Option<bool>,
    /// The event loop runs and takes requests.
    pub accepting: bool,
    pub failed: bool,
    pub stopping: bool,
    /// Records written by handlers, and how many of them are durable.
    pub last_lsn: u64,
    pub durable_lsn: u64,
    pub inbound_queue_len: usize,
    pub client_connections: usize,
}

/// The `/metrics` text for `stats` and `status`.
pub fn render(protocol: &str, node: u64, stats: &NodeStats, status: &Status) -> String {
    let mut r = Registry::with_prefix("smelt");
    let c = |v: u64| ConstCounter::new(v);
    let g = |v: i64| ConstGauge::new(v);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let info: Family<Vec<(String, String)>, Gauge> = Family::default();
    info.get_or_create(&vec![
        ("protocol".into(), protocol.to_string()),
        ("node".into(), node.to_string()),
        ("version".into(), env!("CARGO_PKG_VERSION").to_string()),
    ])
    .set(1);
    r.register("node_info", "The node: protocol, id and smelt version", info);
    // The loop's counters are atomics; each scrape copies them into fresh
    // counters.
    let handlers: Family<Vec<(String, String)>, Counter> = Family::default();
    for (kind, n) in stats.handlers_by_kind() {
        handlers.get_or_create(&vec![("kind".into(), kind.into())]).inc_by(n);
    }
    r.register("handlers", "Handlers run, by event kind", handlers);
    r.register(
        "dropped",
        "Messages and replies dropped: a queue was full or the destination unknown",
        c(load(&stats.dropped)),
    );
    r.register(
        "released",
        "Outputs released after their records were durable",
        c(load(&stats.released)),
    );
    r.register(
        "link_dropped",
        "Messages a peer link dropped: the peer acknowledged nothing for too long",
        c(stats.link_dropped.load(Ordering::Relaxed)),
    );
    r.register(
        "tls_refused",
        "Connections refused in the TLS handshake (no certificate of the cluster's CA, expired, plaintext)",
        c(stats.tls_refused.load(Ordering::Relaxed)),
    );
    let commit = &stats.commit;
    r.register(
        "fsyncs",
        "Group commits (one write and fsync each)",
        c(load(&commit.fsyncs)),
    );
    r.register("records", "Records made durable", c(load(&commit.records)));
    r.register("record_bytes", "Bytes of records made durable", c(load(&commit.bytes)));
    r.register("snapshots", "Snapshots written", c(load(&commit.snapshots)));
    r.register(
        "snapshot_bytes",
        "Size of the last snapshot",
        g(load(&commit.last_snapshot_bytes) as i64),
    );
    r.register(
        "fsync_seconds",
        "One group commit: the write and fsync of its records",
        commit.fsync_seconds.clone(),
    );
    r.register(
        "group_commit_records",
        "Records per group commit",
        commit.group_commit_records.clone(),
    );
    r.register(
        "snapshot_seconds",
        "Encoding and writing one snapshot (with its fsyncs)",
        commit.snapshot_seconds.clone(),
    );
    r.register("last_lsn", "The last record a handler wrote", g(status.last_lsn as i64));
    r.register(
        "durable_lsn",
        "The last record known durable",
        g(status.durable_lsn as i64),
    );
    r.register(
        "inbound_queue",
        "Events queued for the event loop",
        g(status.inbound_queue_len as i64),
    );
    r.register(
        "client_connections",
        "Client connections open",
        g(status.client_connections as i64),
    );
    r.register(
        "peer_links_up",
        "Outgoing peer links connected",
        g(stats.peer_links_up.load(Ordering::Relaxed) as i64),
    );
    r.register(
        "failed",
        "1 when a handler failed (the node stops)",
        g(i64::from(status.failed)),
    );
    if let Some(ready) = status.spec_ready {
        r.register(
            "spec_ready",
            "The spec's `ready when` condition (1 true, 0 false)",
            g(i64::from(ready)),
        );
    }
    let state: Family<Vec<(String, String)>, Gauge> = Family::default();
    state
        .get_or_create(&vec![
            ("role".into(), status.role.to_string()),
            ("state".into(), status.state.unwrap_or("").to_string()),
        ])
        .set(1);
    r.register("protocol_state", "The role and explicit state the node is in", state);
    let vars: Family<Vec<(String, String)>, Gauge> = Family::default();
    for (name, v) in &status.vars {
        // Values past i64 are clamped: a gauge is an i64 here.
        let v = i64::try_from(*v).unwrap_or(if *v < 0 { i64::MIN } else { i64::MAX });
        vars.get_or_create(&vec![
            ("role".into(), status.role.to_string()),
            ("var".into(), name.to_string()),
        ])
        .set(v);
    }
    r.register("protocol_var", "The protocol's integer and boolean variables", vars);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

/// Serves `/metrics`, `/health` and `/ready` with `server` from a thread
/// of its own, until the process ends.
pub fn serve(
    server: tiny_http::Server,
    protocol: &'static str,
    node: u64,
    stats: Arc<NodeStats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("smelt-metrics".into()).spawn(move || {
        for request in server.incoming_requests() {
            let now = stats.status.lock().map(|s| s.clone()).unwrap_or_default();
            let path = request.url().split('?').next().unwrap_or("").to_string();
            let (code, body, kind) = match (request.method(), path.as_str()) {
                (tiny_http::Method::Get, "/metrics") => (
                    200,
                    render(protocol, node, &stats, &now),
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                (tiny_http::Method::Get, "/health") => {
                    if now.failed {
                        (503, "failed: a handler failed\n".to_string(), "text/plain")
                    } else {
                        (200, "ok\n".to_string(), "text/plain")
                    }
                }
                (tiny_http::Method::Get, "/ready") => {
                    if now.spec_ready == Some(false) {
                        (
                            503,
                            "not ready: the spec's `ready when` is false\n".to_string(),
                            "text/plain",
                        )
                    } else if now.accepting && !now.failed && !now.stopping {
                        (200, "ready\n".to_string(), "text/plain")
                    } else {
                        (503, "not ready\n".to_string(), "text/plain")
                    }
                }
                (tiny_http::Method::Get, _) => (404, "not found: try /metrics, /health, /ready\n".into(), "text/plain"),
                _ => (405, "GET only\n".to_string(), "text/plain"),
            };
            let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes());
            let mut response = tiny_http::Response::from_string(body).with_status_code(code);
            if let Ok(h) = header {
                response.add_header(h);
            }
            let _ = request.respond(response);
        }
    })
}

/// Binds the exporter's address (before the node starts, so a bad address
/// is a usage error, not a silent gap).
pub fn bind(addr: &str) -> Result<tiny_http::Server, String> {
    tiny_http::Server::http(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}
