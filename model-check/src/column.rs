//! Growable arrays for the liveness graph that never copy what they hold,
//! and compact per-state columns built on them.
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

/// A non-decreasing sequence of `u64` (the start of each state's edges) at
/// 4 bytes an element: the low halves in a column, and where the high half
/// steps up (a handful of positions, one per 2^32).
#[derive(Default)]
pub struct Offsets {
    low: Column<u32>,
    /// `steps[k]`: the first position whose high half exceeds `k`.
    steps: Vec<usize>,
    last: u64,
}

impl Offsets {
    pub fn push(&mut self, x: u64) {
        assert!(x >= self.last, "offsets never decrease: {x} after {}", self.last);
        let high = (x >> 32) as usize;
        while self.steps.len() < high {
            self.steps.push(self.low.len());
        }
        self.low.push(x as u32);
        self.last = x;
    }

    pub fn get(&self, i: usize) -> u64 {
        let high = self.steps.partition_point(|&s| s <= i) as u64;
        (high << 32) | u64::from(self.low[i])
    }

    pub fn len(&self) -> usize {
        self.low.len()
    }

    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.low.bytes() + (self.steps.capacity() * 8) as u64
    }
}

/// One small bit set per state, in the narrowest word that holds `width`
/// bits (a check has a handful of properties: one byte a state, not eight).
pub enum Bits {
    B8(Column<u8>),
    B16(Column<u16>),
    B32(Column<u32>),
    B64(Column<u64>),
}

impl Bits {
    pub fn new(width: u32) -> Bits {
        match width {
            0..=8 => Bits::B8(Column::default()),
            9..=16 => Bits::B16(Column::default()),
            17..=32 => Bits::B32(Column::default()),
            33..=64 => Bits::B64(Column::default()),
            _ => panic!("{width} bits do not fit a word"),
        }
    }

    /// Pushes `x`, which must fit the width.
    pub fn push(&mut self, x: u64) {
        let fits = match self {
            Bits::B8(c) => u8::try_from(x).map(|x| c.push(x)).is_ok(),
            Bits::B16(c) => u16::try_from(x).map(|x| c.push(x)).is_ok(),
            Bits::B32(c) => u32::try_from(x).map(|x| c.push(x)).is_ok(),
            Bits::B64(c) => {
                c.push(x);
                true
            }
        };
        assert!(fits, "bits {x:#x} wider than the set");
    }

    pub fn get(&self, i: usize) -> u64 {
        match self {
            Bits::B8(c) => u64::from(c[i]),
            Bits::B16(c) => u64::from(c[i]),
            Bits::B32(c) => u64::from(c[i]),
            Bits::B64(c) => c[i],
        }
    }

    pub fn set(&mut self, i: usize, x: u64) {
        match self {
            Bits::B8(c) => c[i] = u8::try_from(x).expect("bits fit the set"),
            Bits::B16(c) => c[i] = u16::try_from(x).expect("bits fit the set"),
            Bits::B32(c) => c[i] = u32::try_from(x).expect("bits fit the set"),
            Bits::B64(c) => c[i] = x,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Bits::B8(c) => c.len(),
            Bits::B16(c) => c.len(),
            Bits::B32(c) => c.len(),
            Bits::B64(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Bits::B8(c) => c.bytes(),
            Bits::B16(c) => c.bytes(),
            Bits::B32(c) => c.bytes(),
            Bits::B64(c) => c.bytes(),
        }
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
    fn offsets_keep_64_bits_at_4_bytes_each() {
        let xs = [
            0u64,
            5,
            5,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 7,
            3 << 32,
            (3 << 32) + 1,
        ];
        let mut o = Offsets::default();
        for &x in &xs {
            o.push(x);
        }
        assert_eq!(o.len(), xs.len());
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(o.get(i), x, "offset {i}");
        }
    }

    #[test]
    #[should_panic(expected = "never decrease")]
    fn offsets_refuse_to_go_back() {
        let mut o = Offsets::default();
        o.push(7);
        o.push(6);
    }

    #[test]
    fn bits_take_the_narrowest_word() {
        for (width, top) in [
            (1u32, 1u64),
            (8, 0xff),
            (9, 0x1ff),
            (32, u32::MAX as u64),
            (64, u64::MAX),
        ] {
            let mut b = Bits::new(width);
            b.push(0);
            b.push(top);
            assert_eq!((b.get(0), b.get(1)), (0, top), "width {width}");
            b.set(0, top);
            assert_eq!(b.get(0), top);
        }
        assert!(matches!(Bits::new(3), Bits::B8(_)));
        assert!(matches!(Bits::new(40), Bits::B64(_)));
    }
}
