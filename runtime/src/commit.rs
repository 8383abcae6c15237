//! Group commit: one thread owns the `Store` and makes records durable.
//!
//! The event loop never blocks on the disk. It hands each batch of records
//! (one record per handler that changed durable state) to this thread and
//! keeps running handlers; their messages wait in the node until the thread
//! reports that the records they follow are durable. While one fsync runs,
//! further batches queue up, and the next fsync covers all of them: with
//! many concurrent clients, many handlers share one fsync; with one, the
//! cost is one fsync per handler, which is the floor.
//!
//! A failed write or fsync is final: the thread reports it and stops. It
//! never retries, because after a failed fsync the kernel may have dropped
//! the dirty pages, and a retry that "succeeds" would claim durability for
//! data that is gone.

use crate::storage::Store;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::watch;

/// The deltas of one handler, encoded, under their log sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub lsn: u64,
    pub payload: Vec<u8>,
}

pub type SnapshotEncoder = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

pub enum Cmd {
    Append(Vec<Record>),
    /// Snapshot of the durable state after record `lsn`, encoded on this
    /// thread so the event loop only pays for a clone.
    Snapshot {
        lsn: u64,
        encode: SnapshotEncoder,
    },
}

/// What the committer reports: everything up to `lsn` is durable, or the
/// disk failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    pub lsn: u64,
    pub failed: Option<String>,
}

/// Counters and histograms for metrics, logs and benchmarks.
#[derive(Debug)]
pub struct CommitStats {
    pub fsyncs: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub snapshots: AtomicU64,
    pub last_snapshot_bytes: AtomicU64,
    /// Seconds per group commit (the write and the fsync).
    pub fsync_seconds: Histogram,
    /// Records per group commit.
    pub group_commit_records: Histogram,
    /// Seconds per snapshot (encoding, writing, fsyncs).
    pub snapshot_seconds: Histogram,
}

impl Default for CommitStats {
    fn default() -> Self {
        CommitStats {
            fsyncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            last_snapshot_bytes: AtomicU64::new(0),
            // 50 µs .. 3.3 s, doubling.
            fsync_seconds: Histogram::new(exponential_buckets(50e-6, 2.0, 17)),
            // 1 .. 32768, doubling.
            group_commit_records: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            // 1 ms .. 65 s, doubling.
            snapshot_seconds: Histogram::new(exponential_buckets(1e-3, 2.0, 17)),
        }
    }
}

pub struct Committer {
    pub tx: mpsc::Sender<Cmd>,
    pub durable: watch::Receiver<Durable>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the committer thread. `last_lsn` is the last record already on
/// disk. The thread ends when every sender of `tx` is gone (after making
/// everything it was given durable) or when the disk fails.
pub fn spawn<S: Store>(mut store: S, last_lsn: u64, stats: Arc<CommitStats>) -> std::io::Result<Committer> {
    let (tx, rx) = mpsc::channel::<Cmd>();
    let (durable_tx, durable) = watch::channel(Durable {
        lsn: last_lsn,
        failed: None,
    });
    let thread = std::thread::Builder::new().name("smelt-commit".into()).spawn(move || {
        let mut lsn = last_lsn;
        let mut pending: Vec<Record> = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut cmds = vec![first];
            cmds.extend(rx.try_iter());
            let mut result = Ok(());
            for cmd in cmds {
                match cmd {
                    Cmd::Append(records) => pending.extend(records),
                    Cmd::Snapshot { lsn: at, encode } => {
                        result = flush(&mut store, &mut pending, &mut lsn, &stats).and_then(|()| {
                            let started = std::time::Instant::now();
                            let bytes = encode().map_err(|e| format!("cannot encode a snapshot: {e}"))?;
                            store
                                .snapshot(at, &bytes)
                                .map_err(|e| format!("snapshot at record {at} failed: {e}"))?;
                            stats.snapshot_seconds.observe(started.elapsed().as_secs_f64());
                            stats.snapshots.fetch_add(1, Ordering::Relaxed);
                            stats.last_snapshot_bytes.store(bytes.len() as u64, Ordering::Relaxed);
                            Ok(())
                        });
                    }
                }
                if result.is_err() {
                    break;
                }
            }
            if result.is_ok() {
                result = flush(&mut store, &mut pending, &mut lsn, &stats);
            }
            match result {
                Ok(()) => {
                    let _ = durable_tx.send(Durable { lsn, failed: None });
                }
                Err(e) => {
                    let _ = durable_tx.send(Durable { lsn, failed: Some(e) });
                    return;
                }
            }
        }
    })?;
    Ok(Committer { tx, durable, thread })
}

fn flush<S: Store>(store: &mut S, pending: &mut Vec<Record>, lsn: &mut u64, stats: &CommitStats) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    store.append(pending).map_err(|e| {
        format!(
            "writing records {}..={} failed: {e}",
            pending[0].lsn,
            pending[pending.len() - 1].lsn
        )
    })?;
    stats.fsync_seconds.observe(started.elapsed().as_secs_f64());
    stats.group_commit_records.observe(pending.len() as f64);
    stats.fsyncs.fetch_add(1, Ordering::Relaxed);
    stats.records.fetch_add(pending.len() as u64, Ordering::Relaxed);
    let bytes: usize = pending.iter().map(|r| r.payload.len()).sum();
    stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    *lsn = pending[pending.len() - 1].lsn;
    pending.clear();
    Ok(())
}
