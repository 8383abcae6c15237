//! The closed-loop load generator, the same for both systems: `clients`
//! threads, each with its own client, each sending one put, waiting for the
//! answer and sending the next, with fresh keys (`client-i-seq`) until the
//! run's time is up.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// A system under test: hands out one client per load thread.
pub trait Backend: Sync {
    /// `n` clients, one per load thread (they may share connections).
    fn clients(&self, n: usize) -> Result<Vec<Box<dyn KvClient>>, String>;
}

/// One closed-loop client: a blocking put of key `client-<client>-<seq>`.
pub trait KvClient: Send {
    fn put(&mut self, client: usize, seq: u64, value: &[u8]) -> Result<(), String>;
}

/// What one run measured.
pub struct Sample {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latencies of the successful puts, sorted.
    pub latencies: Vec<Duration>,
    /// Successful puts completed in each whole second of the run.
    pub per_second: Vec<u64>,
}

impl Sample {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.seconds.max(1e-9)
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1].as_secs_f64() * 1e3
    }
}

/// A value of `size` bytes (printable, not all the same byte).
pub fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Runs `clients` closed loops against `backend` for `duration`. Each client
/// first sends one untimed put (seq 0: connects, finds the leader); the
/// clock starts when all of them have.
pub fn closed_loop(backend: &dyn Backend, clients: usize, duration: Duration, value: &[u8]) -> Result<Sample, String> {
    let conns = backend.clients(clients)?;
    let barrier = Barrier::new(clients + 1);
    let (start, results) = std::thread::scope(|s| {
        let threads: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let barrier = &barrier;
                s.spawn(move || {
                    let warm = c.put(i, 0, value);
                    barrier.wait();
                    warm.map_err(|e| format!("client {i}'s first put: {e}"))?;
                    let begin = Instant::now();
                    let end = begin + duration;
                    let mut lat = Vec::new();
                    let mut per_second = vec![0u64; duration.as_secs() as usize + 1];
                    let (mut errors, mut first_error) = (0u64, None);
                    let mut seq = 1;
                    let mut last = Instant::now();
                    while last < end {
                        let t = last;
                        match c.put(i, seq, value) {
                            Ok(()) => {
                                lat.push(t.elapsed());
                                if let Some(n) = per_second.get_mut((t - begin).as_secs() as usize) {
                                    *n += 1;
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                        seq += 1;
                        last = Instant::now();
                    }
                    Ok::<_, String>((lat, per_second, errors, first_error, last))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().expect("load thread")).collect();
        (start, results)
    });
    let mut sample = Sample {
        ops: 0,
        errors: 0,
        first_error: None,
        seconds: 0.0,
        latencies: Vec::new(),
        per_second: vec![0; duration.as_secs() as usize],
    };
    let mut finished = start;
    for r in results {
        let (lat, per_second, errors, first_error, last) = r?;
        for (sum, n) in sample.per_second.iter_mut().zip(per_second) {
            *sum += n;
        }
        sample.ops += lat.len() as u64;
        sample.latencies.extend(lat);
        sample.errors += errors;
        if sample.first_error.is_none() {
            sample.first_error = first_error;
        }
        finished = finished.max(last);
    }
    sample.seconds = (finished - start).as_secs_f64();
    sample.latencies.sort_unstable();
    Ok(sample)
}
