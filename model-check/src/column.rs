//! Growable arrays for the liveness graph that never copy what they hold.
//!
//! A `Vec` doubles: when it grows, old and new buffers coexist and the new
//! one is up to twice what is needed, so a graph of tens of millions of
//! states peaked at several times its size (ABD's `progress` with a crash:
//! 2.3 GiB of hash index and 2.1 GiB of edges at 63 million states, each
//! about to double). These grow a block at a time instead.

use std::ops::{Index, IndexMut};

/// Elements per block of a `Column`.
const BLOCK: usize = 1 << 16;

/// A vector in fixed blocks: O(1) indexing, growth without copying.
pub struct Column<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Column<T> {
    fn default() -> Self {
        Column {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Column<T> {
    pub fn push(&mut self, x: T) {
        if self.len.is_multiple_of(BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        let last = self.blocks.last_mut().expect("a block was just added");
        debug_assert!(last.len() < BLOCK);
        last.push(x);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    /// Bytes its blocks hold.
    pub fn bytes(&self) -> u64 {
        (self.blocks.len() * BLOCK * std::mem::size_of::<T>()) as u64
    }
}

impl<T: Clone> Column<T> {
    pub fn filled(n: usize, x: T) -> Self {
        let mut c = Column::default();
        for _ in 0..n {
            c.push(x.clone());
        }
        c
    }
}

impl<T> FromIterator<T> for Column<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        let mut c = Column::default();
        for x in it {
            c.push(x);
        }
        c
    }
}

impl<T> Index<usize> for Column<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} out of a column of {}", self.len);
        &self.blocks[i / BLOCK][i % BLOCK]
    }
}

impl<T> IndexMut<usize> for Column<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        assert!(i < self.len, "index {i} out of a column of {}", self.len);
        &mut self.blocks[i / BLOCK][i % BLOCK]
    }
}

/// Elements per block of `Runs` (at least; a longer run gets its own).
const RUN_BLOCK: usize = 1 << 18;

/// A sequence of runs (each state's outgoing edges), stored so that a run
/// never straddles two blocks: `slice` is one contiguous slice. Positions
/// are contiguous across blocks (a block closes early rather than
/// splitting a run), so a run is `(start, end)` in one numbering.
pub struct Runs<T> {
    blocks: Vec<Vec<T>>,
    /// Position of each block's first element.
    starts: Vec<usize>,
    len: usize,
}

impl<T> Default for Runs<T> {
    fn default() -> Self {
        Runs {
            blocks: Vec::new(),
            starts: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Runs<T> {
    /// Appends a run; returns its end position.
    pub fn extend_run(&mut self, run: &[T]) -> usize {
        if run.is_empty() {
            return self.len;
        }
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= run.len());
        if !fits {
            self.blocks.push(Vec::with_capacity(RUN_BLOCK.max(run.len())));
            self.starts.push(self.len);
        }
        self.blocks.last_mut().expect("a block is open").extend_from_slice(run);
        self.len += run.len();
        self.len
    }
}

impl<T> Runs<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements `a..b`, which must be one run (or part of one).
    pub fn slice(&self, a: usize, b: usize) -> &[T] {
        if a == b {
            return &[];
        }
        // The last block starting at or before `a`.
        let k = self.starts.partition_point(|&s| s <= a) - 1;
        let s = self.starts[k];
        &self.blocks[k][a - s..b - s]
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    pub fn bytes(&self) -> u64 {
        (self.blocks.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<T>()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_indexes_across_blocks() {
        let c: Column<u64> = (0..3 * BLOCK as u64 + 5).collect();
        assert_eq!(c.len(), 3 * BLOCK + 5);
        for i in [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 7, 3 * BLOCK + 4] {
            assert_eq!(c[i], i as u64);
        }
        assert_eq!(c.iter().count(), c.len());
        assert_eq!(c.bytes(), 4 * BLOCK as u64 * 8);
    }

    #[test]
    fn runs_never_straddle_blocks() {
        let mut r = Runs::default();
        let mut ends = vec![0];
        let mut expect = Vec::new();
        let mut n = 0u32;
        // Runs of 0..999 elements, enough to fill several blocks.
        for k in 0..2000usize {
            let run: Vec<u32> = (0..(k * 7919) % 1000)
                .map(|_| {
                    n += 1;
                    n
                })
                .collect();
            expect.push(run.clone());
            ends.push(r.extend_run(&run));
        }
        assert!(r.blocks.len() > 3);
        for (k, run) in expect.iter().enumerate() {
            assert_eq!(r.slice(ends[k], ends[k + 1]), &run[..]);
        }
        assert_eq!(r.iter().count(), r.len());
        // A run longer than a block gets a block of its own.
        let long: Vec<u32> = (0..RUN_BLOCK as u32 + 3).collect();
        let a = r.len();
        let b = r.extend_run(&long);
        assert_eq!(r.slice(a, b), &long[..]);
    }
}
