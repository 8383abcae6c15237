//! The restart test at scale (issue 8): raft.sm's key-value store on three
//! `smelt run` nodes takes a million puts (fresh keys, 64 closed-loop
//! clients), and at checkpoints along the way one node is killed with
//! SIGKILL and restarted on its data directory. Printed per checkpoint:
//! puts so far, the load's throughput, each node's disk use (write-ahead
//! log and snapshot) and resident memory, and the restarted node's restart
//! time — from the start of the new process until it has recovered its
//! state (newest snapshot plus the log after it) and started serving.
//!
//! `cargo bench --bench kv_restart`. Environment:
//! - `SMELT_RESTART_PUTS` (default 1,000,000): puts in all.
//! - `SMELT_RESTART_CLIENTS` (default 64): concurrent clients.
//! - `SMELT_BENCH_VALUE_BYTES` (default 100): the generator's value size.
//! - `SMELT_RESTART_KEYS` (default 0: every put a fresh key): put `n` writes
//!   key `n mod K`, so the store stays at K keys however many puts there
//!   are — what shows that disk use follows the store, not the history.
//!
//! At the end every node is stopped cleanly and its data directory read
//! back (`smelt run --inspect`): all three must hold the same snapshot
//! store at the same index (the restarted ones caught up and compacted).
//!
//! Checkpoints are at 1/10, 1/4, 1/2 and all of the puts, so the table
//! shows how disk use and restart time grow with the number of puts.

mod kv;

use kv::load::KvClient;
use kv::load::{self, Backend};
use kv::smelt::{self, SmeltRaft};
use kv::uptime;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SMELT: &str = env!("CARGO_BIN_EXE_smelt");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Puts number `from..to` through `clients` closed loops (each a fresh key,
/// or key `n mod keys`); returns the puts that failed (after the client's
/// own retries).
fn load(clients: Vec<Box<dyn KvClient>>, from: u64, to: u64, keys: u64, value: &[u8]) -> u64 {
    let next = AtomicU64::new(from);
    let failed = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (i, mut c) in clients.into_iter().enumerate() {
            let (next, failed) = (&next, &failed);
            s.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= to {
                    break;
                }
                // The key (client `i`, sequence `n`) is fresh: `n` is unique.
                let (client, seq) = if keys == 0 { (i, n) } else { (0, n % keys) };
                if c.put(client, seq, value).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    failed.into_inner()
}

/// Bytes of the files in `dir` whose names start with `prefix`.
fn bytes_of(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Resident memory of process `pid` (MiB), from /proc.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// What a node's recovered durable state says: snapshot index, entries
/// left in the log after it, and the snapshot store's printed size and
/// digest.
struct Recovered {
    snap_index: u64,
    store_keys: usize,
    log_entries: usize,
    store_bytes: usize,
    store_digest: u64,
}

/// Reads `--inspect`'s `storage: Server(ServerStorage { .. })` line.
fn recovered(text: &str) -> Result<Recovered, String> {
    let between = |a: &str, b: &str| -> Result<&str, String> {
        let i = text.find(a).ok_or(format!("no `{a}` in the inspected state"))? + a.len();
        let j = text[i..].find(b).ok_or(format!("no `{b}` after `{a}`"))?;
        Ok(&text[i..i + j])
    };
    let number = |name: &str| -> Result<u64, String> {
        let digits = between(&format!(" {name}: "), ",")?;
        digits.trim().parse().map_err(|e| format!("{name}: {e}"))
    };
    let store = between(" snap_kv: ", ", history:")?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(store, &mut h);
    Ok(Recovered {
        snap_index: number("snap_index")?,
        // `key: "value"`: the load's values are letters, never `: "`.
        store_keys: store.matches(": \"").count(),
        log_entries: between(" log: [", "], snap_index:")?.matches("Entry {").count(),
        store_bytes: store.len(),
        store_digest: std::hash::Hasher::finish(&h),
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // only check that the benchmark builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total: u64 = env_or("SMELT_RESTART_PUTS", 1_000_000);
    let clients: usize = env_or("SMELT_RESTART_CLIENTS", 64);
    let value = load::value(env_or("SMELT_BENCH_VALUE_BYTES", 100));
    let keys: u64 = env_or("SMELT_RESTART_KEYS", 0);
    let harness = smelt::harness(SMELT);
    let key_space = if keys == 0 {
        "fresh keys".to_string()
    } else {
        format!("{keys} keys, overwritten")
    };
    println!("# raft.sm restart at scale: {total} puts ({key_space}), {clients} clients");
    println!();
    println!("Put: {}", smelt::put_description(&value));
    println!();
    println!(
        "| puts | load puts/s | failed | node | WAL MiB | snapshot MiB | RSS MiB | restarted | restart ms | load |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");

    let mut cluster = SmeltRaft::start(&harness, false).unwrap_or_else(|e| panic!("starting smelt: {e}"));
    let mut done = 0u64;
    let mut failed_total = 0u64;
    for (k, fraction) in [0.1, 0.25, 0.5, 1.0].into_iter().enumerate() {
        let to = ((total as f64) * fraction) as u64;
        let conns = cluster.clients(clients).unwrap_or_else(|e| panic!("clients: {e}"));
        let begin = Instant::now();
        let failed = load(conns, done, to, keys, &value);
        failed_total += failed;
        let rate = (to - done) as f64 / begin.elapsed().as_secs_f64();
        done = to;
        cluster
            .check_alive()
            .unwrap_or_else(|e| panic!("after {done} puts: {e}"));
        // Let the followers catch up before measuring them.
        std::thread::sleep(Duration::from_secs(2));
        let victim = k % 3;
        for id in 0..3 {
            let dir = cluster.data_dir(id);
            let (wal, snap) = (bytes_of(&dir, "wal-"), bytes_of(&dir, "snap-"));
            let rss = cluster.pid(id).map_or(f64::NAN, rss_mib);
            let restart = if id == victim {
                let took = cluster
                    .restart(id)
                    .unwrap_or_else(|e| panic!("restarting node {id} after {done} puts: {e}"));
                format!("yes | {:.0}", took.as_secs_f64() * 1e3)
            } else {
                "no | ".to_string()
            };
            let (puts, rate, failed) = if id == 0 {
                (done.to_string(), format!("{rate:.0}"), failed.to_string())
            } else {
                (String::new(), String::new(), String::new())
            };
            println!(
                "| {puts} | {rate} | {failed} | {id} | {:.1} | {:.1} | {rss:.1} | {restart} | {} |",
                mib(wal),
                mib(snap),
                if id == 0 { uptime() } else { String::new() }
            );
        }
    }
    cluster.check_alive().unwrap_or_else(|e| panic!("at the end: {e}"));

    // Every node, restarted ones included, must end with the same store.
    std::thread::sleep(Duration::from_secs(2));
    cluster.stop().unwrap_or_else(|e| panic!("stopping: {e}"));
    println!();
    println!("After a clean stop, each node's data directory read back:");
    println!();
    println!("| node | snapshot index | log entries after it | keys | store (printed) MiB | store digest |");
    println!("|---:|---:|---:|---:|---:|---|");
    let nodes: Vec<Recovered> = (0..3)
        .map(|id| {
            let text = cluster.inspect(id).unwrap_or_else(|e| panic!("{e}"));
            recovered(&text).unwrap_or_else(|e| panic!("node {id}: {e}"))
        })
        .collect();
    for (id, r) in nodes.iter().enumerate() {
        println!(
            "| {id} | {} | {} | {} | {:.1} | {:016x} |",
            r.snap_index,
            r.log_entries,
            r.store_keys,
            mib(r.store_bytes as u64),
            r.store_digest
        );
    }
    let first = (nodes[0].snap_index, nodes[0].store_digest);
    assert!(
        nodes.iter().all(|r| (r.snap_index, r.store_digest) == first),
        "the nodes did not converge on one store"
    );
    // The load went through (not a run where every put failed and three
    // empty stores agree), every acknowledged put is an entry (retries may
    // add more), all of them were compacted once the cluster was quiet,
    // and the store has the keys the load wrote (plus the start-up probe's).
    assert!(failed_total * 100 <= total, "{failed_total} of {total} puts failed");
    let expected_keys = if keys == 0 {
        total - failed_total
    } else {
        keys.min(total)
    } + 1;
    assert!(
        if keys == 0 {
            nodes[0].store_keys as u64 >= expected_keys
        } else {
            nodes[0].store_keys as u64 == expected_keys
        },
        "{} keys in the store, expected {expected_keys}",
        nodes[0].store_keys
    );
    assert!(
        first.0 >= total - failed_total,
        "snapshot index {} after {total} puts ({failed_total} failed)",
        first.0
    );
    println!();
    println!("All three nodes hold the same snapshot store at index {}.", first.0);
}
