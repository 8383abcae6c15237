//! A small seeded random number generator (SplitMix64).
//!
//! The runtime needs randomness for three things only: timer durations within
//! a spec's declared range, resolving `choose`, and reconnect jitter. None of
//! them needs cryptographic quality, and a seeded generator makes a node's
//! choices reproducible from the seed it logs at start.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A seed from the node id and the clock, for when none is given.
    pub fn seed_from(id: u64) -> u64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut r = Rng::new(nanos ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ std::process::id() as u64);
        r.next_u64()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`), by multiply-shift, whose bias
    /// is below 2^-64 per draw.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in the range; its start when the range is empty.
    pub fn duration_in(&mut self, range: &Range<Duration>) -> Duration {
        let lo = range.start.as_nanos().min(u64::MAX as u128) as u64;
        let hi = range.end.as_nanos().min(u64::MAX as u128) as u64;
        if hi <= lo {
            return range.start;
        }
        Duration::from_nanos(lo + self.below(hi - lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_stay_in_range() {
        let mut r = Rng::new(1);
        let range = Duration::from_millis(150)..Duration::from_millis(300);
        for _ in 0..10_000 {
            let d = r.duration_in(&range);
            assert!(range.contains(&d));
        }
        let empty = Duration::from_millis(5)..Duration::from_millis(5);
        assert_eq!(r.duration_in(&empty), Duration::from_millis(5));
        assert_eq!(r.below(0), 0);
    }
}
