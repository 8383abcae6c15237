//! smelt's raft.sm key-value store against etcd, both as three members on
//! 127.0.0.1 with their data on the same disk, driven by the same
//! closed-loop load generator (`cargo bench --bench kv_vs_etcd`; issue 8).
//!
//! - etcd: Debian's `etcd-server` (installed with apt-get when `etcd` is not
//!   on PATH), puts over native gRPC (see `kv/etcd.rs`).
//! - smelt: `specs/raft.sm` on three nodes of its harness binary, the one
//!   `smelt run specs/raft.sm` runs, puts through the runtime's client (see
//!   `kv/smelt.rs`; `smelt_put` there is the one place a Put is built).
//!
//! Each run starts a fresh cluster of one system (after a `sync` and a
//! pause, so that the previous run's writeback is out of the way), sends
//! one warm-up put per client, then measures for a fixed time; runs
//! alternate etcd, smelt, etcd, smelt (A B A B) for each client count. The
//! machine is shared and noisy: the load average is printed beside each run. The `1st s → last s` column
//! gives the puts that completed in the first and in the last whole second
//! of a run: a store that slows down as it grows shows there. Before and
//! after the runs, the physical floor is measured in the same place: an
//! fsync and a loopback round trip.
//!
//! Environment:
//! - `SMELT_BENCH_ROUNDS` (default 2): A B pairs per client count.
//! - `SMELT_BENCH_SECS` (default 10): measured seconds per run.
//! - `SMELT_BENCH_CLIENTS` (default `1,16,64`): concurrent clients per row.
//! - `SMELT_BENCH_VALUE_BYTES` (default 100): the generator's value size.
//! - `SMELT_BENCH_SYSTEMS` (default `etcd,smelt`): run only one system, for
//!   a diagnosis (the ratios are then NaN).
//! - `SMELT_BENCH_TLS=1`: mutual TLS on both sides, peers and clients
//!   (etcd with `--client-cert-auth` and `--peer-client-cert-auth`, gRPC
//!   over TLS with ALPN h2; smelt with `[tls]` and `client_links = true`),
//!   certificates of one fresh CA per cluster.

mod kv;

use kv::load::{self, Backend, Sample};
use kv::{etcd, floor, settle, smelt, uptime, Scratch};
use std::path::Path;
use std::time::Duration;

const SMELT: &str = env!("CARGO_BIN_EXE_smelt");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum System {
    Etcd,
    Smelt,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Etcd => "etcd",
            System::Smelt => "smelt",
        }
    }
}

/// One run: a fresh three-member cluster, `clients` closed loops for `secs`.
fn run(system: System, harness: &Path, tls: bool, clients: usize, secs: f64, value: &[u8]) -> Sample {
    let duration = Duration::from_secs_f64(secs);
    settle();
    let go = |backend: &dyn Backend| {
        load::closed_loop(backend, clients, duration, value)
            .unwrap_or_else(|e| panic!("{} with {clients} clients: {e}", system.name()))
    };
    match system {
        System::Etcd => {
            let mut cluster = etcd::Etcd::start(tls).unwrap_or_else(|e| panic!("starting etcd: {e}"));
            let sample = go(&cluster);
            cluster.check_alive().unwrap_or_else(|e| panic!("after the run: {e}"));
            sample
        }
        System::Smelt => {
            let mut cluster = smelt::SmeltRaft::start(harness, tls).unwrap_or_else(|e| panic!("starting smelt: {e}"));
            let sample = go(&cluster);
            cluster.check_alive().unwrap_or_else(|e| panic!("after the run: {e}"));
            sample
        }
    }
}

/// One run's throughput and latency percentiles (ms).
#[derive(Clone, Copy)]
struct Stat {
    ops: f64,
    p50: f64,
    p99: f64,
}

/// One round for one client count: etcd's run and smelt's.
type Pair = [Stat; 2];

/// Measures the physical floor in the data dirs' place and prints it; returns
/// the sequential floors (ms) with one fsync and with two.
fn floor_table(when: &str) -> (f64, f64) {
    settle();
    let probe = Scratch::new("floor");
    let f = floor::measure(&probe.0);
    drop(probe);
    let (rtt, append, overwrite) = (f.loopback_rtt, f.fsync_append, f.fsync_overwrite);
    let one_fsync = 2.0 * ms(rtt.p50) + ms(overwrite.p50);
    let two_fsyncs = 2.0 * ms(rtt.p50) + 2.0 * ms(append.p50);
    println!();
    println!(
        "## physical floor {when} (same disk as the data dirs; load {})",
        uptime()
    );
    println!();
    println!("| what                                               | p50 ms | p90 ms | sequential puts/s at p50 |");
    println!("|----------------------------------------------------|-------:|-------:|-------------------------:|");
    let row = |what: &str, p50: f64, p90: Option<f64>| {
        let p90 = p90.map(|v| format!("{v:.3}")).unwrap_or_default();
        println!("| {what:<50} | {p50:>6.3} | {p90:>6} | {:>24.0} |", 1e3 / p50);
    };
    row("loopback TCP round trip (100 B)", ms(rtt.p50), Some(ms(rtt.p90)));
    row(
        "append 100 B + fdatasync (growing file)",
        ms(append.p50),
        Some(ms(append.p90)),
    );
    row(
        "overwrite 100 B + fdatasync (preallocated)",
        ms(overwrite.p50),
        Some(ms(overwrite.p90)),
    );
    row("floor: 2 RTT + 1 fsync (leader fsync overlapped)", one_fsync, None);
    row("floor: 2 RTT + 2 fsyncs (leader fsync first)", two_fsyncs, None);
    (one_fsync, two_fsyncs)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n.max(1) as f64
}

fn main() {
    let rounds: usize = env_or("SMELT_BENCH_ROUNDS", 2);
    let secs: f64 = env_or("SMELT_BENCH_SECS", 10.0);
    let value_bytes: usize = env_or("SMELT_BENCH_VALUE_BYTES", 100);
    let client_counts: Vec<usize> = std::env::var("SMELT_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let systems: Vec<System> = std::env::var("SMELT_BENCH_SYSTEMS")
        .unwrap_or_else(|_| "etcd,smelt".into())
        .split(',')
        .filter_map(|s| [System::Etcd, System::Smelt].into_iter().find(|x| x.name() == s.trim()))
        .collect();

    let tls = std::env::var("SMELT_BENCH_TLS").is_ok_and(|v| v == "1");
    let etcd_version = etcd::ensure_installed().unwrap_or_else(|e| panic!("{e}"));
    println!("{etcd_version}");
    println!("building raft.sm's harness (smelt run specs/raft.sm) ...");
    let harness = smelt::harness(SMELT);

    let floor_before = floor_table("before the runs");

    let value = load::value(value_bytes);
    println!();
    println!(
        "## closed-loop puts, fresh keys, 3 members each on 127.0.0.1: {secs} s per run, {rounds} round(s), \
         etcd and smelt alternating{}",
        if tls {
            "; mutual TLS on peer and client links of both"
        } else {
            ""
        }
    );
    println!();
    println!(
        "values: etcd {value_bytes} B ({}-byte PutRequest); smelt {} (built by smelt_put in benches/kv/smelt.rs)",
        etcd::put_request(b"client-0-1", &value).len(),
        smelt::put_description(&value)
    );
    println!();
    println!("| clients | round | system |    ops/s | 1st s → last s | p50 ms | p99 ms | errors | load 1/5/15 min |");
    println!("|--------:|------:|--------|---------:|---------------:|-------:|-------:|-------:|-----------------|");
    let mut results: Vec<(usize, Vec<Pair>)> = Vec::new();
    for &clients in &client_counts {
        let mut per_round = Vec::new();
        for round in 1..=rounds {
            let none = Stat {
                ops: f64::NAN,
                p50: f64::NAN,
                p99: f64::NAN,
            };
            let mut pair = [none; 2];
            for &system in &systems {
                let s = run(system, &harness, tls, clients, secs, &value);
                let trend = match (s.per_second.first(), s.per_second.last()) {
                    (Some(a), Some(b)) => format!("{a} → {b}"),
                    _ => String::new(),
                };
                println!(
                    "| {clients:>7} | {round:>5} | {:<6} | {:>8.0} | {trend:>14} | {:>6.2} | {:>6.2} | {:>6} | {:<15} |",
                    system.name(),
                    s.ops_per_sec(),
                    s.percentile_ms(50.0),
                    s.percentile_ms(99.0),
                    s.errors,
                    uptime()
                );
                if let Some(e) = &s.first_error {
                    println!("  first error: {e}");
                }
                pair[system as usize] = Stat {
                    ops: s.ops_per_sec(),
                    p50: s.percentile_ms(50.0),
                    p99: s.percentile_ms(99.0),
                };
            }
            per_round.push(pair);
        }
        results.push((clients, per_round));
    }

    println!();
    println!("## smelt / etcd (means over rounds; ratios taken per round, each from one A B pair)");
    println!();
    println!(
        "| clients | etcd ops/s | smelt ops/s | throughput smelt/etcd | etcd p50/p99 ms | smelt p50/p99 ms | p99 smelt/etcd |"
    );
    println!(
        "|--------:|-----------:|------------:|----------------------:|----------------:|-----------------:|---------------:|"
    );
    for (clients, per_round) in &results {
        let m = |f: &dyn Fn(&Pair) -> f64| mean(per_round.iter().map(f));
        let (etcd, smelt) = (System::Etcd as usize, System::Smelt as usize);
        println!(
            "| {clients:>7} | {:>10.0} | {:>11.0} | {:>21.2} | {:>15} | {:>16} | {:>14.2} |",
            m(&|p| p[etcd].ops),
            m(&|p| p[smelt].ops),
            m(&|p| p[smelt].ops / p[etcd].ops),
            format!("{:.2} / {:.2}", m(&|p| p[etcd].p50), m(&|p| p[etcd].p99)),
            format!("{:.2} / {:.2}", m(&|p| p[smelt].p50), m(&|p| p[smelt].p99)),
            m(&|p| p[smelt].p99 / p[etcd].p99),
        );
    }
    println!();
    let floor_after = floor_table("after the runs");
    println!();
    println!(
        "floor for one sequential put, before / after the runs: {:.2} / {:.2} ms (2 RTT + 1 fsync), \
         {:.2} / {:.2} ms (2 RTT + 2 fsyncs)",
        floor_before.0, floor_after.0, floor_before.1, floor_after.1
    );
}
