//! `smelt run`, `smelt cluster` and `smelt client`, as run by a spec's
//! harness binary.
//!
//! Exit codes:
//! - 0: the node stopped cleanly (SIGTERM or SIGINT); the client got a reply.
//! - 1: a handler failed (overflow, failed assert, ...): the node stopped
//!   (fail-stop) after releasing what was already durable.
//! - 2: usage or environment error: bad flags, bad cluster file, an address
//!   in use, a data directory of another node or in use.
//! - 3: the data directory is corrupt or truncated; the node refuses to
//!   start (the message names the file and byte offset).
//! - 4: a disk write or fsync failed while running; the node stopped
//!   without releasing anything that depended on it.
//! - 5: the client got no reply after all its attempts.

use crate::client::{Client, ClientOptions};
use crate::cluster::{Cluster, NodeEntry};
use crate::node::{self, Exit, Limits, NodeConfig};
use crate::rng::Rng;
use crate::storage::{self, Identity, RecoverError};
use clap::Parser;
use smelt_support::{Id, Protocol};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const EXIT_OK: i32 = 0;
pub const EXIT_HANDLER_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CORRUPT: i32 = 3;
pub const EXIT_DISK: i32 = 4;
pub const EXIT_NO_REPLY: i32 = 5;

/// Runs a runtime subcommand (`run`, `cluster`, `client`) for protocol `P`.
pub fn main<P: Protocol>(command: &str, args: Vec<String>) -> i32 {
    let argv = std::iter::once(format!("smelt {command}")).chain(args);
    match command {
        "run" => match RunArgs::try_parse_from(argv) {
            Ok(a) => run::<P>(a),
            Err(e) => usage(e),
        },
        "cluster" => match ClusterArgs::try_parse_from(argv) {
            Ok(a) => local_cluster::<P>(a),
            Err(e) => usage(e),
        },
        "client" => match ClientArgs::try_parse_from(argv) {
            Ok(a) => client::<P>(a),
            Err(e) => usage(e),
        },
        "admin" => match AdminArgs::try_parse_from(argv) {
            Ok(a) => admin::<P>(a),
            Err(e) => usage(e),
        },
        other => {
            eprintln!("unknown runtime command `{other}`");
            EXIT_USAGE
        }
    }
}

/// The long help of a runtime subcommand. The options do not depend on the
/// spec, so `smelt run --help` prints them without building a harness.
pub fn help(command: &str) -> Option<String> {
    use clap::CommandFactory;
    let (cmd, usage) = match command {
        "run" => (
            RunArgs::command(),
            "smelt run <SPEC> --id N --cluster FILE --data-dir DIR [OPTIONS]",
        ),
        "cluster" => (ClusterArgs::command(), "smelt cluster <SPEC> [OPTIONS]"),
        "client" => (
            ClientArgs::command(),
            "smelt client [SPEC] --cluster FILE [OPTIONS] <REQUEST> [ARGS]...",
        ),
        "admin" => (
            AdminArgs::command(),
            "smelt admin [SPEC] <status|save|inspect> --cluster FILE [OPTIONS]",
        ),
        _ => return None,
    };
    Some(cmd.override_usage(usage).render_long_help().to_string())
}

fn usage(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        EXIT_USAGE
    } else {
        EXIT_OK
    }
}

/// Logs go to stderr; `SMELT_LOG` sets the filter (`info` by default,
/// e.g. `debug` or `smelt_runtime=debug`).
pub fn init_logging() {
    init_logging_as(false);
}

/// `init_logging`, as JSON lines when `json` (or `SMELT_LOG_FORMAT=json`).
pub fn init_logging_as(json: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("SMELT_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = json || std::env::var("SMELT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        tracing_subscriber::registry().with(fmt.json()).with(filter).try_init()
    } else {
        tracing_subscriber::registry().with(fmt).with(filter).try_init()
    };
}

#[derive(Parser, Debug)]
#[command(about = "Run one node of the spec's protocol")]
struct RunArgs {
    /// This node's id in the cluster file.
    #[arg(long)]
    id: u64,
    /// The cluster file (TOML).
    #[arg(long)]
    cluster: PathBuf,
    /// Where this node keeps its durable state.
    #[arg(long)]
    data_dir: PathBuf,
    /// Seed for timer durations and `choose` (default: from the id and the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the durable state recovered from the data directory and exit.
    #[arg(long)]
    inspect: bool,
    /// Serve `/metrics` (Prometheus text format), `/health` and `/ready`
    /// over HTTP on this address (e.g. 127.0.0.1:9400).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log as JSON lines (also `SMELT_LOG_FORMAT=json`).
    #[arg(long)]
    log_json: bool,
    /// Load a data directory written under another storage schema (the
    /// spec's durable types changed, e.g. a renamed variable), and record
    /// this one in it. Records that do not decode still stop the node.
    #[arg(long)]
    accept_storage_schema: bool,
    /// Compact the log into a snapshot once it holds this many bytes (and
    /// more than the last snapshot).
    #[arg(long)]
    snapshot_log_bytes: Option<u64>,
}

fn run<P: Protocol>(a: RunArgs) -> i32 {
    init_logging_as(a.log_json);
    let cluster = match Cluster::load(&a.cluster) {
        Ok(c) => c,
        Err(e) => return fail(EXIT_USAGE, &e),
    };
    let layout = match cluster.layout::<P>() {
        Ok(l) => l,
        Err(e) => return fail(EXIT_USAGE, &format!("{}: {e}", a.cluster.display())),
    };
    let id = Id::from(a.id as usize);
    let Some(actor) = P::server(id, &layout) else {
        return fail(EXIT_USAGE, &format!("node {} is not in {}", a.id, a.cluster.display()));
    };
    let identity = Identity {
        accept_other_storage: a.accept_storage_schema,
        ..Identity::of::<P>(cluster.hash(), a.id)
    };
    // Bound before recovery: a bad address is a usage error at once.
    let exporter = match &a.metrics {
        Some(addr) if !a.inspect => match crate::metrics::bind(addr) {
            Ok(s) => Some(s),
            Err(e) => return fail(EXIT_USAGE, &e),
        },
        _ => None,
    };
    let node_id = a.id;
    if a.inspect {
        return inspect::<P>(&a.data_dir, &identity, &actor, id);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(EXIT_USAGE, &format!("cannot start the async runtime: {e}")),
    };
    // From here on SIGTERM/SIGINT are caught: one that arrives during
    // recovery stops the node cleanly right after it starts, instead of
    // killing it half-way.
    let signals = {
        let _guard = rt.enter();
        Signals::new()
    };
    let (recovered, store) = match storage::recover::<P>(&a.data_dir, &identity, &actor, id, true) {
        Ok((r, Some(s))) => (r, s),
        Ok((_, None)) => return fail(EXIT_USAGE, "internal: recovery opened no store"),
        Err(e) => return recover_failed(e),
    };
    if let Some((file, offset)) = &recovered.torn_tail {
        tracing::warn!(
            file = %file.display(),
            offset,
            "truncated a torn final record (a write cut short by a crash; it was never acknowledged)"
        );
    }
    let seed = a.seed.unwrap_or_else(|| Rng::seed_from(a.id));
    let cfg = NodeConfig {
        cluster,
        id: a.id,
        seed,
        data_dir: Some(a.data_dir.clone()),
        limits: Limits {
            snapshot_log_bytes_min: a.snapshot_log_bytes.unwrap_or(Limits::default().snapshot_log_bytes_min),
            ..Limits::default()
        },
    };
    rt.block_on(async move {
        let running = match node::start::<P, _>(cfg, store, recovered).await {
            Ok(r) => r,
            Err(e) => return fail(EXIT_USAGE, &e),
        };
        if let Some(server) = exporter {
            if let Err(e) = crate::metrics::serve(server, P::NAME, node_id, running.stats.clone()) {
                let _ = running.stop.send(true);
                return fail(EXIT_USAGE, &format!("cannot start the metrics thread: {e}"));
            }
        }
        let stop = running.stop.clone();
        tokio::spawn(async move {
            signals.wait().await;
            let _ = stop.send(true);
        });
        match running.done.await {
            Ok(Exit::Stopped) => {
                tracing::info!("node stopped cleanly");
                EXIT_OK
            }
            Ok(Exit::HandlerFailed(e)) => fail(EXIT_HANDLER_FAILED, &format!("handler failed: {e}")),
            Ok(Exit::DiskFailed(e)) => fail(EXIT_DISK, &format!("disk failure: {e}")),
            Err(e) => fail(EXIT_USAGE, &format!("the event loop ended abnormally: {e}")),
        }
    })
}

/// SIGTERM and SIGINT, registered once (inside a tokio runtime).
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves at the first SIGTERM or SIGINT.
    async fn wait(mut self) {
        async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = next(&mut self.term) => {}
            _ = next(&mut self.int) => {}
        }
    }
}

fn fail(code: i32, msg: &str) -> i32 {
    tracing::error!("{msg}");
    eprintln!("error: {msg}");
    code
}

fn recover_failed(e: RecoverError) -> i32 {
    match e {
        RecoverError::Corrupt { .. } => fail(EXIT_CORRUPT, &e.to_string()),
        RecoverError::Unusable(_) => fail(EXIT_USAGE, &e.to_string()),
    }
}

/// The certificate a client presents on TLS client links (`smelt client`,
/// `admin status`).
#[derive(clap::Args, Debug)]
struct TlsIdentityArgs {
    /// With TLS on client links: the certificate to present (PEM; default:
    /// the cluster file's `client_cert`).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
}

impl TlsIdentityArgs {
    fn identity(self) -> Option<(PathBuf, PathBuf)> {
        self.tls_cert.zip(self.tls_key)
    }
}

#[derive(Parser, Debug)]
#[command(about = "Send one request to a running cluster and print the reply")]
struct ClientArgs {
    /// The cluster file (TOML).
    #[arg(long)]
    cluster: PathBuf,
    /// How long one attempt waits for an answer.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Attempts before giving up (redirects and timeouts count).
    #[arg(long, default_value_t = 10)]
    attempts: u32,
    /// Ask only this node, once.
    #[arg(long)]
    node: Option<u64>,
    #[command(flatten)]
    tls: TlsIdentityArgs,
    /// The request and its arguments, e.g. `put 5` or `get`. A `Bytes`
    /// argument is its text (`put 1 hello`), `0x` and hex digits
    /// (`0x00ff`), or a literal in double quotes with the spec's escapes
    /// (`'"\xff\n"'`, quoted for the shell), as replies print them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    request: Vec<String>,
}

fn client<P: Protocol>(a: ClientArgs) -> i32 {
    let cluster = match Cluster::load(&a.cluster) {
        Ok(c) => c,
        Err(e) => return fail_plain(EXIT_USAGE, &e),
    };
    let words: Vec<&str> = a.request.iter().map(String::as_str).collect();
    let request = match P::parse_request(&words) {
        Ok(r) => r,
        Err(e) => {
            let forms: Vec<String> = P::requests()
                .iter()
                .map(|(n, ps)| format!("{n}{}", ps.iter().map(|p| format!(" <{p}>")).collect::<String>()))
                .collect();
            return fail_plain(
                EXIT_USAGE,
                &format!("{e}; requests of {}: {}", P::NAME, forms.join(", ")),
            );
        }
    };
    let opts = ClientOptions {
        attempt_timeout_ms: a.timeout_ms,
        attempts_max: a.attempts.max(1),
        tls_identity: a.tls.identity(),
        ..ClientOptions::default()
    };
    let mut c = match Client::<P>::new(&cluster, opts) {
        Ok(c) => c,
        Err(e) => return fail_plain(EXIT_USAGE, &e.to_string()),
    };
    let result = match a.node {
        Some(n) => c.call_at(Id::from(n as usize), request).map(|r| match r {
            Some(r) => format!("{r:?}"),
            None => "redirected".to_string(),
        }),
        None => c
            .call(request)
            .map(|(r, from)| format!("{r:?} (from node {})", usize::from(from))),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            EXIT_OK
        }
        Err(e @ crate::client::ClientError::Config(_)) => fail_plain(EXIT_USAGE, &e.to_string()),
        Err(e) => fail_plain(EXIT_NO_REPLY, &e.to_string()),
    }
}

/// Prints what data directory `dir` holds, recovered read-only.
fn inspect<P: Protocol>(dir: &Path, identity: &Identity, actor: &P, id: Id) -> i32 {
    match storage::recover::<P>(dir, identity, actor, id, false) {
        Ok((r, _)) => {
            println!("storage: {:?}", r.storage);
            println!(
                "last_lsn: {} snapshot_lsn: {} records_replayed: {} torn_tail: {:?}",
                r.last_lsn, r.snapshot_lsn, r.records_replayed, r.torn_tail
            );
            EXIT_OK
        }
        Err(e) => recover_failed(e),
    }
}

#[derive(Parser, Debug)]
#[command(about = "Ask a running cluster for its status; copy or inspect a node's data directory")]
struct AdminArgs {
    #[command(subcommand)]
    cmd: AdminCmd,
}

#[derive(clap::Subcommand, Debug)]
enum AdminCmd {
    /// Every node's role and state, its variables (with each one's lag
    /// behind the largest any node reports), log positions, disk use and
    /// uptime, asked over the client ports. Exit 5 if a node did not answer.
    Status {
        /// The cluster file (TOML).
        #[arg(long)]
        cluster: PathBuf,
        /// Print one JSON object per node instead of a table.
        #[arg(long)]
        json: bool,
        /// How long to wait for each node.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        #[command(flatten)]
        tls: TlsIdentityArgs,
    },
    /// Copy node ID's data directory (the node may be running) to OUT, a
    /// consistent state of it: the copy is checked with the node's own
    /// recovery, and made again if a compaction got in the way.
    Save {
        #[arg(long)]
        cluster: PathBuf,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        data_dir: PathBuf,
        /// Where the copy goes (must not exist).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Copies tried before giving up.
        #[arg(long, default_value_t = 5)]
        attempts: u32,
    },
    /// What a data directory (a node's, or a copy `save` made) holds: its
    /// durable state and log positions, every record checked.
    Inspect {
        #[arg(long)]
        cluster: PathBuf,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

fn admin<P: Protocol>(a: AdminArgs) -> i32 {
    let file = match &a.cmd {
        AdminCmd::Status { cluster, .. } | AdminCmd::Save { cluster, .. } | AdminCmd::Inspect { cluster, .. } => {
            cluster.clone()
        }
    };
    let file = file.as_path();
    let cluster = match Cluster::load(file) {
        Ok(c) => c,
        Err(e) => return fail_plain(EXIT_USAGE, &e),
    };
    let node = |id: u64| -> Result<(Identity, P), String> {
        let layout = cluster.layout::<P>()?;
        let actor = P::server(Id::from(id as usize), &layout)
            .ok_or_else(|| format!("node {id} is not a server in {}", file.display()))?;
        Ok((Identity::of::<P>(cluster.hash(), id), actor))
    };
    match a.cmd {
        AdminCmd::Status {
            json, timeout_ms, tls, ..
        } => {
            let identity = tls.identity();
            let timeout = Duration::from_millis(timeout_ms);
            // Nodes of a role that takes no clients have no client port to
            // ask: named, not counted as failures.
            for n in cluster.nodes.iter().filter(|n| n.client_address.is_none()) {
                eprintln!("node {} ({}) has no client_address: not asked", n.id, n.role);
            }
            let rows: Vec<(u64, Result<crate::admin::NodeStatus, String>)> = cluster
                .nodes
                .iter()
                .filter(|n| n.client_address.is_some())
                .map(|n| (n.id, crate::admin::query(&cluster, n.id, timeout, identity.clone())))
                .collect();
            if json {
                for (id, r) in &rows {
                    let line = match r {
                        Ok(s) => serde_json::to_string(s).unwrap_or_default(),
                        Err(e) => serde_json::json!({ "node": id, "error": e }).to_string(),
                    };
                    println!("{line}");
                }
            } else {
                print!("{}", crate::admin::table(&rows));
            }
            if rows.iter().all(|(_, r)| r.is_ok()) {
                EXIT_OK
            } else {
                EXIT_NO_REPLY
            }
        }
        AdminCmd::Save {
            id,
            data_dir,
            out,
            attempts,
            ..
        } => {
            let (identity, actor) = match node(id) {
                Ok(x) => x,
                Err(e) => return fail_plain(EXIT_USAGE, &e),
            };
            if out.exists() {
                return fail_plain(EXIT_USAGE, &format!("{} exists: not overwriting it", out.display()));
            }
            let mut last = String::new();
            for attempt in 1..=attempts.max(1) {
                if let Err(e) = crate::admin::copy_data_dir(&data_dir, &out) {
                    last = e;
                    let _ = std::fs::remove_dir_all(&out);
                    continue;
                }
                match storage::recover::<P>(&out, &identity, &actor, Id::from(id as usize), true) {
                    Ok((r, store)) => {
                        drop(store);
                        println!(
                            "saved node {id}'s data directory to {} (attempt {attempt}): last_lsn {} snapshot_lsn {} records {}{}",
                            out.display(),
                            r.last_lsn,
                            r.snapshot_lsn,
                            r.records_replayed,
                            if r.torn_tail.is_some() { "; a record being written was left out" } else { "" }
                        );
                        return EXIT_OK;
                    }
                    Err(e) => {
                        last = e.to_string();
                        let _ = std::fs::remove_dir_all(&out);
                    }
                }
            }
            fail_plain(
                EXIT_CORRUPT,
                &format!("no consistent copy in {attempts} attempts; the last: {last}"),
            )
        }
        AdminCmd::Inspect { id, data_dir, .. } => match node(id) {
            Ok((identity, actor)) => inspect::<P>(&data_dir, &identity, &actor, Id::from(id as usize)),
            Err(e) => fail_plain(EXIT_USAGE, &e),
        },
    }
}

fn fail_plain(code: i32, msg: &str) -> i32 {
    eprintln!("error: {msg}");
    code
}

#[derive(Parser, Debug)]
#[command(about = "Run a local cluster on 127.0.0.1, one child process per node")]
struct ClusterArgs {
    /// Servers: one number for a one-role spec, or a count per role in role
    /// order (`1,3`).
    #[arg(long, default_value = "3")]
    nodes: String,
    /// Where the cluster file, data directories and logs go.
    #[arg(long, default_value = "smelt-cluster")]
    dir: PathBuf,
    /// Node i listens for peers on base+2i and for clients on base+2i+1.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Mutual TLS on peer and client links: a new CA and certificates in
    /// DIR/certs (made again at every start).
    #[arg(long)]
    tls: bool,
}

fn local_cluster<P: Protocol>(a: ClusterArgs) -> i32 {
    let roles = P::roles();
    let counts: Result<Vec<u64>, _> = a.nodes.split(',').map(|s| s.trim().parse::<u64>()).collect();
    let counts = match counts {
        Ok(c) if c.len() == roles.len() && c.iter().sum::<u64>() > 0 => c,
        _ => {
            let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
            return fail_plain(
                EXIT_USAGE,
                &format!(
                    "--nodes takes one count per role ({}), comma-separated",
                    names.join(", ")
                ),
            );
        }
    };
    let total: u64 = counts.iter().sum();
    if total as usize > crate::cluster::NODES_MAX || a.base_port as u64 + 2 * total > 65535 {
        return fail_plain(EXIT_USAGE, "too many nodes for the port range");
    }
    let mut nodes = Vec::new();
    for (r, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            let i = nodes.len() as u64;
            let port = a.base_port as u64 + 2 * i;
            nodes.push(NodeEntry {
                id: i,
                role: roles[r].name.to_string(),
                address: format!("127.0.0.1:{port}"),
                client_address: roles[r].serves_clients.then(|| format!("127.0.0.1:{}", port + 1)),
                ..Default::default()
            });
        }
    }
    let spec = std::env::var_os("SMELT_SPEC_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(P::SPEC));
    let spec = spec.canonicalize().unwrap_or(spec);
    let cluster = Cluster {
        cluster_id: format!("{}-local", P::NAME.to_lowercase()),
        spec: Some(spec),
        nodes,
        ..Default::default()
    };
    if let Err(e) = std::fs::create_dir_all(&a.dir) {
        return fail_plain(EXIT_USAGE, &format!("cannot create {}: {e}", a.dir.display()));
    }
    let dir = a.dir.canonicalize().unwrap_or(a.dir.clone());
    let cluster = if a.tls {
        let certs = dir.join("certs");
        if let Err(e) = std::fs::remove_dir_all(&certs) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return fail_plain(EXIT_USAGE, &format!("cannot remove {}: {e}", certs.display()));
            }
        }
        match crate::tls::generate(&cluster, &certs, &dir, 365) {
            Ok(c) => c,
            Err(e) => return fail_plain(EXIT_USAGE, &e),
        }
    } else {
        cluster
    };
    let file = dir.join("cluster.toml");
    if let Err(e) = std::fs::write(&file, cluster.to_toml()) {
        return fail_plain(EXIT_USAGE, &format!("cannot write {}: {e}", file.display()));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail_plain(EXIT_USAGE, &format!("cannot find this program: {e}")),
    };
    let mut children: Vec<Option<Child>> = Vec::new();
    for n in &cluster.nodes {
        match spawn_node(&exe, &dir, &file, n.id) {
            Ok(c) => children.push(Some(c)),
            Err(e) => {
                eprintln!("error: cannot start node {}: {e}", n.id);
                stop_children(&mut children);
                return EXIT_USAGE;
            }
        }
    }
    println!(
        "{} nodes of {} running; logs in {}/node-<id>.log",
        cluster.nodes.len(),
        P::NAME,
        dir.display()
    );
    for n in &cluster.nodes {
        println!(
            "  node {} ({}): peers {}, clients {:?}",
            n.id, n.role, n.address, n.client_address
        );
    }
    println!("try: smelt client --cluster {} <request>", file.display());
    println!("Ctrl-C stops the cluster.");
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail_plain(EXIT_USAGE, &format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async {
        let signal = Signals::new().wait();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    for (i, c) in children.iter_mut().enumerate() {
                        if let Some(Ok(Some(status))) = c.as_mut().map(|c| c.try_wait()) {
                            eprintln!("node {i} exited ({status}); see {}/node-{i}.log", dir.display());
                            *c = None;
                        }
                    }
                }
            }
        }
    });
    println!("stopping the cluster...");
    stop_children(&mut children);
    EXIT_OK
}

fn spawn_node(exe: &Path, dir: &Path, file: &Path, id: u64) -> std::io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("node-{id}.log")))?;
    Command::new(exe)
        .arg("run")
        .arg("--id")
        .arg(id.to_string())
        .arg("--cluster")
        .arg(file)
        .arg("--data-dir")
        .arg(dir.join(format!("node-{id}")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
}

/// SIGTERM to every child (a clean stop), then SIGKILL to any still running
/// after five seconds.
fn stop_children(children: &mut [Option<Child>]) {
    for c in children.iter().flatten() {
        // SAFETY: `kill` with a pid of our own child and a valid signal has
        // no memory-safety preconditions.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for c in children.iter_mut().flatten() {
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = c.try_wait() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
