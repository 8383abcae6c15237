//! Runtime benchmarks, printed as tables:
//!
//! 1. single-node handler throughput of the event loop (pipelined clients
//!    over TCP; a null disk, then a real one);
//! 2. group commit: handlers per fsync with 1, 16 and 64 concurrent
//!    sequential clients;
//! 3. three-node replicated commit latency (p50/p99) for a sequential
//!    writer, against the machine's floor (loopback round trip and one
//!    fsync, measured in the same run).
//!
//! `cargo bench -p smelt-runtime --bench runtime` (set `SMELT_BENCH_SECS`
//! to change the length of each measurement; default 3).

#[path = "../tests/common/mod.rs"]
mod common;

use common::counter::{self, Counter};
use common::journal::{self, Journal};
use common::rep_log::{self, RepLog};
use smelt_runtime::client::{Client, ClientOptions};
use smelt_runtime::cluster::{Cluster, NodeEntry};
use smelt_runtime::commit::Record;
use smelt_runtime::frame::{self, Kind};
use smelt_runtime::node::{self, Limits, NodeConfig, Running};
use smelt_runtime::storage::{self, Identity, Store};
use smelt_support::{Id, Protocol};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A disk that forgets: isolates the event loop from fsync.
struct NullStore;

impl Store for NullStore {
    fn append(&mut self, _: &[Record]) -> std::io::Result<()> {
        Ok(())
    }
    fn snapshot(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
}

fn secs() -> Duration {
    let s = std::env::var("SMELT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(s)
}

fn cluster(name: &str, n: u64) -> Cluster {
    Cluster {
        cluster_id: name.into(),
        spec: None,
        nodes: (0..n)
            .map(|id| NodeEntry {
                id,
                role: "Server".into(),
                address: format!("127.0.0.1:{}", common::free_port()),
                client_address: Some(format!("127.0.0.1:{}", common::free_port())),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn start<P: Protocol>(rt: &tokio::runtime::Runtime, cluster: &Cluster, id: u64, dir: Option<&Path>) -> Running {
    let cfg = NodeConfig {
        cluster: cluster.clone(),
        id,
        seed: id,
        limits: Limits::default(),
        data_dir: None,
    };
    let layout = cluster.layout::<P>().expect("layout");
    let actor = P::server(Id::from(id as usize), &layout).expect("server");
    let identity = Identity::of::<P>(cluster.hash(), id);
    match dir {
        Some(dir) => {
            let (r, s) = storage::recover::<P>(dir, &identity, &actor, Id::from(id as usize), true).expect("recover");
            rt.block_on(node::start::<P, _>(cfg, s.expect("store"), r))
                .expect("start")
        }
        None => {
            let dir = common::scratch(&format!("bench-null-{id}"));
            let (r, _) = storage::recover::<P>(&dir, &identity, &actor, Id::from(id as usize), false).expect("empty");
            rt.block_on(node::start::<P, _>(cfg, NullStore, r)).expect("start")
        }
    }
}

fn stop(rt: &tokio::runtime::Runtime, n: Running) {
    let _ = n.stop.send(true);
    let _ = rt.block_on(n.done);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `conns` connections, each keeping `window` requests in flight, for
/// `dur`. Returns the number of replies.
fn pipelined<R: serde::Serialize + Clone + Send + 'static>(
    cluster: &Cluster,
    request: R,
    conns: usize,
    window: usize,
    dur: Duration,
) -> u64 {
    let addr = cluster.nodes[0].client_address.clone().expect("client address");
    let hash = cluster.hash();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let addr = addr.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).expect("connect");
                let _ = s.set_nodelay(true);
                let one = frame::encode(Kind::Request, hash, 0, &(1u64, request), 1 << 20).expect("encode");
                s.write_all(&one.repeat(window)).expect("send");
                let end = Instant::now() + dur;
                let (mut buf, mut chunk, mut got) = (Vec::new(), vec![0u8; 64 << 10], 0u64);
                while Instant::now() < end {
                    let n = s.read(&mut chunk).expect("read");
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let mut off = 0;
                    let mut k = 0;
                    while let Ok(Some((_, used))) = frame::decode(&buf[off..], 1 << 20) {
                        off += used;
                        k += 1;
                    }
                    buf.drain(..off);
                    got += k as u64;
                    s.write_all(&one.repeat(k)).expect("send");
                }
                got
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("thread")).sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn loop_case<P: Protocol>(rt: &tokio::runtime::Runtime, name: &str, req: P::Request, disk: bool) {
    let c = cluster("bench-loop", 1);
    let dir = common::scratch("bench-loop");
    let node = start::<P>(rt, &c, 0, disk.then_some(dir.as_path()));
    let t = Instant::now();
    let n = pipelined(&c, req, 4, 64, secs());
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let fsyncs = node.stats.commit.fsyncs.load(Ordering::Relaxed);
    let records = node.stats.commit.records.load(Ordering::Relaxed);
    let (disk, fsyncs, per) = match (disk, fsyncs) {
        (false, _) => ("null", "-".to_string(), "-".to_string()),
        (true, 0) => ("file (fsync)", "0".to_string(), "-".to_string()),
        (true, f) => (
            "file (fsync)",
            f.to_string(),
            format!("{:.1}", records as f64 / f as f64),
        ),
    };
    println!("| {name} | {disk} | {rate:.0} | {fsyncs} | {per} |");
    stop(rt, node);
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench_event_loop(rt: &tokio::runtime::Runtime) {
    println!("\n## 1. Event loop: single-node handler throughput (4 connections x 64 pipelined requests)\n");
    println!("| workload | disk | handlers/s | fsyncs | handlers/fsync |");
    println!("|---|---|---:|---:|---:|");
    for disk in [false, true] {
        loop_case::<Journal>(
            rt,
            "journal Count (read, no durable change)",
            journal::Request::Count,
            disk,
        );
        loop_case::<Counter>(rt, "counter Add (one u64 delta)", counter::Request::Add { v: 1 }, disk);
        loop_case::<Journal>(
            rt,
            "journal Append (list push; state grows)",
            journal::Request::Append { v: 1 },
            disk,
        );
    }
}

fn bench_group_commit(rt: &tokio::runtime::Runtime) {
    println!("\n## 2. Group commit: sequential clients, each waiting for its reply (counter.sm Add, file disk)\n");
    println!("| clients | handlers/s | fsyncs/s | handlers/fsync | p50 us | p99 us |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for clients in [1usize, 16, 64] {
        let c = cluster("bench-commit", 1);
        let dir = common::scratch("bench-commit");
        let node = start::<Counter>(rt, &c, 0, Some(&dir));
        let dur = secs();
        let f0 = node.stats.commit.fsyncs.load(Ordering::Relaxed);
        let r0 = node.stats.commit.records.load(Ordering::Relaxed);
        let t = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut client = Client::<Counter>::new(&c, ClientOptions::default()).expect("client");
                    let mut lat = Vec::new();
                    let end = Instant::now() + dur;
                    while Instant::now() < end {
                        let s = Instant::now();
                        if client.call(counter::Request::Add { v: 1 }).is_ok() {
                            lat.push(s.elapsed());
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut lat: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        let el = t.elapsed().as_secs_f64();
        lat.sort();
        let fsyncs = node.stats.commit.fsyncs.load(Ordering::Relaxed) - f0;
        let records = node.stats.commit.records.load(Ordering::Relaxed) - r0;
        println!(
            "| {clients} | {:.0} | {:.0} | {:.1} | {} | {} |",
            lat.len() as f64 / el,
            fsyncs as f64 / el,
            records as f64 / fsyncs.max(1) as f64,
            us(percentile(&lat, 0.5)),
            us(percentile(&lat, 0.99))
        );
        stop(rt, node);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Round trips of a 64-byte message over loopback TCP.
fn loopback_rtt(n: usize) -> Vec<Duration> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let _ = s.set_nodelay(true);
        let mut b = [0u8; 64];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let _ = s.set_nodelay(true);
    let mut b = [7u8; 64];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&b).expect("send");
        s.read_exact(&mut b).expect("recv");
        out.push(t.elapsed());
    }
    drop(s);
    let _ = echo.join();
    out
}

/// Appending 64 bytes and fdatasync, as the log does.
fn fsync_latency(dir: &Path, n: usize) -> Vec<Duration> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&[1u8; 64]).expect("write");
        f.sync_data().expect("fsync");
        out.push(t.elapsed());
    }
    let _ = std::fs::remove_file(path);
    out
}

struct Stats {
    n: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let mean = v.iter().sum::<Duration>() / (v.len().max(1) as u32);
    Stats {
        n: v.len(),
        p50: percentile(&v, 0.5),
        p90: percentile(&v, 0.9),
        p99: percentile(&v, 0.99),
        mean,
    }
}

fn row(name: &str, s: &Stats) {
    let n = if s.n == 0 { "-".to_string() } else { s.n.to_string() };
    println!(
        "| {name} | {n} | {} | {} | {} | {} |",
        us(s.p50),
        us(s.p90),
        us(s.p99),
        us(s.mean)
    );
}

fn bench_replicated(rt: &tokio::runtime::Runtime) {
    println!("\n## 3. Three-node commit latency, sequential writer (rep_log.sm: primary + 2 backups, majority acks)\n");
    let c = cluster("bench-rep", 3);
    let base = common::scratch("bench-rep");
    // The floor first, on the same disk and loopback, then the cluster,
    // then the floor again: this disk's fsync latency drifts.
    let fsync_before = stats(fsync_latency(&base, 1000));
    let rtt = stats(loopback_rtt(5000));
    let nodes: Vec<Running> = (0..3)
        .map(|i| start::<RepLog>(rt, &c, i, Some(&base.join(format!("n{i}")))))
        .collect();
    let mut client = Client::<RepLog>::new(&c, ClientOptions::default()).expect("client");
    // Warm up: connections, the redirect to the primary.
    for _ in 0..50 {
        client.call(rep_log::Request::Append { v: 0 }).expect("append");
    }
    let end = Instant::now() + secs();
    let mut lat = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        client.call(rep_log::Request::Append { v: 1 }).expect("append");
        lat.push(t.elapsed());
    }
    for n in nodes {
        stop(rt, n);
    }
    let fsync_after = stats(fsync_latency(&base, 1000));
    let _ = std::fs::remove_dir_all(&base);
    let commit = stats(lat);
    println!("| measurement | samples | p50 us | p90 us | p99 us | mean us |");
    println!("|---|---:|---:|---:|---:|---:|");
    row(
        "commit: client -> primary (fsync) -> backups (fsync) -> primary -> client",
        &commit,
    );
    row("loopback TCP round trip, 64 B", &rtt);
    row("append 64 B + fdatasync, before", &fsync_before);
    row("append 64 B + fdatasync, after", &fsync_after);
    let floor = |f: &Stats, k: u32| Stats {
        n: 0,
        p50: (rtt.p50 + f.p50) * k,
        p90: (rtt.p90 + f.p90) * k,
        p99: (rtt.p99 + f.p99) * k,
        mean: (rtt.mean + f.mean) * k,
    };
    row("floor: 1 round trip + 1 fsync (before)", &floor(&fsync_before, 1));
    row("floor: 1 round trip + 1 fsync (after)", &floor(&fsync_after, 1));
    row(
        "this protocol's floor: 2 round trips + 2 fsyncs in sequence (before)",
        &floor(&fsync_before, 2),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either way, so both just run.
    let rt = runtime();
    println!(
        "# smelt-runtime benchmarks ({} s per measurement, {} cores)",
        secs().as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    bench_event_loop(&rt);
    bench_group_commit(&rt);
    bench_replicated(&rt);
}
