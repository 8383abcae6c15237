//! The visited set of the exhaustive search: the fingerprints seen so far
//! and, for BFS, each one's parent fingerprint.
//!
//! In a large check this set is most of the memory that does not hold
//! states (under DFS it is nearly all of it), so its layout is chosen for
//! bytes per entry:
//!
//! - The set is split into [`SHARDS`] shards by the fingerprint's low bits,
//!   each a `Mutex` around one flat array of `u64` words used as an
//!   open-addressing table with linear probing. A slot is one word (the
//!   fingerprint) or, when parents are kept, two adjacent words (fingerprint,
//!   parent), so a parent lookup reads the cache line the key was found in.
//!   There is no control byte and no per-entry allocation: 8 (or 16) bytes
//!   per slot.
//! - The word 0 marks an empty slot. `search::fingerprint` never returns 0
//!   (it maps a zero hash to 1), so no state is lost to the marker; the
//!   parent 0 means "no parent" (an initial state).
//! - A slot's home is `fp * slots >> 64` (a multiply-shift reduction of the
//!   fingerprint's high bits), so the number of slots can be any integer
//!   instead of a power of two, and the high bits used for the home are
//!   independent of the low bits used for the shard.
//! - A shard grows by a quarter when the next new entry would take it over
//!   [`MAX_LOAD_PERCENT`], so the load after a growth is never below about
//!   68% (`MAX_LOAD_PERCENT` / 1.25). Growing by doubling would leave a
//!   table anywhere between 43% and 85% full; at the paxos benchmark's
//!   1,194,428 states it would sit at 57% (16 MiB instead of about 12).
//!   The price is rehashing each entry about four times over a run instead
//!   of once: tens of milliseconds per million states, a percent or two of
//!   the time it takes to generate them.
//! - Growth reallocates one shard at a time, so while the old and the new
//!   array of a shard coexist the set is larger by at most 1/64 of itself,
//!   not by half as a single table would be. This is also why there are 64
//!   shards even when DFS runs on one thread: an empty shard allocates
//!   nothing, so the only cost of shards is a mutex each.
//! - The arrays are mapped from the operating system directly (anonymous
//!   `mmap`, unmapped on drop), not taken from the global allocator. A
//!   growing table frees about four times its final size over a run (the
//!   arrays it outgrew), and an allocator keeps freed memory resident for a
//!   while to reuse it; since the next array is always larger than the ones
//!   freed, it cannot be reused. With the arrays in `Vec`s and mimalloc,
//!   the paxos benchmark's 3-client DFS peaked at 35 MiB for a 12 MiB
//!   table; with `mmap`, at 17.6 MiB. Unmapping returns each
//!   outgrown array at once, so the resident size of the set is its arrays
//!   plus at most one outgrown shard. Arrays are whole pages (the first one
//!   is one page per shard).
//!
//! Invariants of a shard (nothing is ever removed, so linear probing needs
//! no tombstones):
//! - every nonzero key is distinct and belongs to the shard;
//! - for every key, the slots from its home up to its slot (cyclically)
//!   are all occupied, so a lookup that reaches an empty slot may stop;
//! - `len` counts the nonzero keys and at most `MAX_LOAD_PERCENT` of the
//!   slots are in use, so a probe always ends at an empty slot.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A fingerprint; never zero.
pub type Fp = u64;

/// Number of shards. A power of two; the shard is `fp % SHARDS`.
pub const SHARDS: usize = 64;

/// A shard grows before more than this share of its slots is in use.
/// Linear probing at 85% load costs about 4 probes to find a present key
/// and about 23 (three cache lines) to place a new one, fewer at the lower
/// loads in between growths; either is small next to generating a state.
pub const MAX_LOAD_PERCENT: usize = 85;

/// Words per page: arrays are a whole number of pages, the first one page.
const PAGE_WORDS: usize = 4096 / 8;

/// A zero-initialised array of words, mapped from the operating system and
/// unmapped when dropped (see the module comment for why).
struct Words {
    ptr: std::ptr::NonNull<u64>,
    len: usize,
}

// SAFETY: `Words` owns its mapping exclusively, like a `Box<[u64]>`.
unsafe impl Send for Words {}
// SAFETY: shared access only reads through `&[u64]`.
unsafe impl Sync for Words {}

impl Words {
    const EMPTY: Words = Words {
        ptr: std::ptr::NonNull::dangling(),
        len: 0,
    };

    /// `len` zero words.
    #[cfg(unix)]
    fn zeroed(len: usize) -> Words {
        if len == 0 {
            return Words::EMPTY;
        }
        let bytes = len.checked_mul(8).expect("table size overflows");
        // SAFETY: a fresh private anonymous mapping, aliased by nothing;
        // the kernel zero-fills it, which is the empty table.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match std::ptr::NonNull::new(p.cast::<u64>()) {
            Some(ptr) if p != libc::MAP_FAILED => Words { ptr, len },
            _ => std::alloc::handle_alloc_error(std::alloc::Layout::array::<u64>(len).expect("layout")),
        }
    }

    /// Elsewhere the global allocator stands in for `mmap`.
    #[cfg(not(unix))]
    fn zeroed(len: usize) -> Words {
        if len == 0 {
            return Words::EMPTY;
        }
        let mut v = std::mem::ManuallyDrop::new(vec![0u64; len].into_boxed_slice());
        Words {
            ptr: std::ptr::NonNull::new(v.as_mut_ptr()).expect("non-null"),
            len,
        }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: `ptr`/`len` describe the mapping (or boxed slice) made by
        // `zeroed`, released exactly once, here.
        #[cfg(unix)]
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len * 8);
        }
        #[cfg(not(unix))]
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            )));
        }
    }
}

impl Deref for Words {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        // SAFETY: `ptr` is valid for `len` initialised words (dangling and
        // 0 for the empty array, which is allowed).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Words {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// One shard. `S` (a const parameter of the methods, so that slot
/// arithmetic and copies are fixed-size) is the number of words per slot:
/// 1, or 2 with parents. `words.len() == slots * S`.
struct Shard {
    words: Words,
    slots: usize,
    /// Entries allowed before the next growth: `MAX_LOAD_PERCENT` of the
    /// slots.
    limit: usize,
    len: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            words: Words::EMPTY,
            slots: 0,
            limit: 0,
            len: 0,
        }
    }
}

/// The home slot of `fp` in a table of `slots` slots.
fn home(fp: Fp, slots: usize) -> usize {
    ((fp as u128 * slots as u128) >> 64) as usize
}

impl Shard {
    /// The slot that holds `fp`, or the empty slot where it would go.
    /// Requires at least one empty slot.
    fn find<const S: usize>(&self, fp: Fp) -> usize {
        let mut i = home(fp, self.slots);
        loop {
            let k = self.words[i * S];
            if k == fp || k == 0 {
                return i;
            }
            i += 1;
            if i == self.slots {
                i = 0;
            }
        }
    }

    /// The word after `fp` (its parent; 0 if `S` is 1), if `fp` is present.
    fn get<const S: usize>(&self, fp: Fp) -> Option<Fp> {
        if self.slots == 0 {
            return None;
        }
        let i = self.find::<S>(fp);
        (self.words[i * S] == fp).then(|| if S == 2 { self.words[i * S + 1] } else { 0 })
    }

    /// Adds `fp` (with `parent` if `S` is 2); `false` if present.
    fn insert<const S: usize>(&mut self, fp: Fp, parent: Fp) -> bool {
        let mut i = 0;
        if self.slots > 0 {
            i = self.find::<S>(fp);
            if self.words[i * S] == fp {
                return false;
            }
        }
        // Grow only for a key that is really new, so that a run which ends
        // right at the threshold does not pay for a growth it never uses.
        if self.len >= self.limit {
            self.grow::<S>();
            i = self.find::<S>(fp);
        }
        self.words[i * S] = fp;
        if S == 2 {
            self.words[i * S + 1] = parent;
        }
        self.len += 1;
        true
    }

    /// Rehashes into a table a quarter larger (see the module comment).
    fn grow<const S: usize>(&mut self) {
        // A quarter more, rounded up to whole pages.
        let len = ((self.slots + self.slots / 4) * S).max(1).next_multiple_of(PAGE_WORDS);
        let slots = len / S;
        let mut words = Words::zeroed(slots * S);
        for entry in self.words.chunks_exact(S) {
            if entry[0] == 0 {
                continue;
            }
            let mut i = home(entry[0], slots);
            while words[i * S] != 0 {
                i += 1;
                if i == slots {
                    i = 0;
                }
            }
            words[i * S..(i + 1) * S].copy_from_slice(entry);
        }
        // The old array is unmapped here, after the new one is filled: the
        // transient is one shard's worth.
        self.words = words;
        self.slots = slots;
        self.limit = slots * MAX_LOAD_PERCENT / 100;
    }
}

/// The visited set: fingerprint → parent fingerprint, or fingerprints only.
pub struct Table {
    shards: Vec<Mutex<Shard>>,
    parents: bool,
    /// Bytes held by the shards' arrays, kept up to date on growth so that
    /// a search can compare it with its memory budget without locking.
    allocated: AtomicUsize,
}

impl Default for Table {
    fn default() -> Self {
        Table::new(true)
    }
}

impl Table {
    /// A table that records each state's parent (`parents`, for BFS
    /// counterexamples) or only that it was seen (DFS, which takes its
    /// counterexamples from the current branch). Allocates nothing until
    /// the first insertion.
    pub fn new(parents: bool) -> Table {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            parents,
            allocated: AtomicUsize::new(0),
        }
    }

    fn shard(&self, fp: Fp) -> MutexGuard<'_, Shard> {
        // A panic elsewhere cannot leave a shard half-updated in a way that
        // matters (an insertion either stored its key or did not), so a
        // poisoned lock is still usable.
        self.shards[fp as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts `fp` with its parent (ignored without parents); `false` if
    /// it was already there.
    pub fn insert(&self, fp: Fp, parent: Fp) -> bool {
        debug_assert_ne!(fp, 0, "fingerprint 0 marks an empty slot");
        let mut shard = self.shard(fp);
        let before = shard.words.len();
        let new = if self.parents {
            shard.insert::<2>(fp, parent)
        } else {
            shard.insert::<1>(fp, 0)
        };
        let after = shard.words.len();
        if after != before {
            // Only growth changes the size (entries are never removed).
            debug_assert!(after > before);
            self.allocated.fetch_add((after - before) * 8, Ordering::Relaxed);
        }
        new
    }

    /// Whether `fp` was inserted.
    pub fn contains(&self, fp: Fp) -> bool {
        if self.parents {
            self.shard(fp).get::<2>(fp).is_some()
        } else {
            self.shard(fp).get::<1>(fp).is_some()
        }
    }

    /// The parent of `fp` (0 for an initial state); `None` if `fp` is
    /// absent or the table keeps no parents.
    pub fn parent(&self, fp: Fp) -> Option<Fp> {
        if !self.parents {
            return None;
        }
        self.shard(fp).get::<2>(fp)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the shards' arrays.
    pub fn allocated_bytes(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// The fingerprints from an initial state to `fp`.
    pub fn path_to(&self, fp: Fp) -> Vec<Fp> {
        let mut out = vec![fp];
        let mut cur = fp;
        while let Some(p) = self.parent(cur) {
            if p == 0 || out.len() > 1_000_000 {
                break;
            }
            out.push(p);
            cur = p;
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct nonzero pseudo-random fingerprints (splitmix64).
    fn fps(n: usize, seed: u64) -> Vec<Fp> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)).max(1)
            })
            .collect()
    }

    #[test]
    fn inserts_once_and_finds_everything() {
        for parents in [false, true] {
            let t = Table::new(parents);
            let keys = fps(50_000, 7);
            for (i, &k) in keys.iter().enumerate() {
                assert!(t.insert(k, i as u64));
                assert!(!t.insert(k, 12345), "a second insert must be refused");
            }
            assert_eq!(t.len(), keys.len());
            for (i, &k) in keys.iter().enumerate() {
                assert!(t.contains(k));
                // The first parent stays.
                assert_eq!(t.parent(k), parents.then_some(i as u64));
            }
            for k in fps(1_000, 8) {
                assert!(!t.contains(k) || keys.contains(&k));
            }
        }
    }

    #[test]
    fn keys_that_share_a_home_all_fit() {
        // Fingerprints in one shard whose high bits are equal share a home
        // slot; linear probing must place them all and find them again.
        let t = Table::new(true);
        let keys: Vec<Fp> = (1..=500u64).map(|i| (0xabcd << 48) | (i * SHARDS as u64)).collect();
        for &k in &keys {
            assert!(t.insert(k, k + 1));
        }
        for &k in &keys {
            assert_eq!(t.parent(k), Some(k + 1));
        }
        assert_eq!(t.len(), 500);
    }

    #[test]
    fn empty_table_allocates_nothing() {
        let t = Table::new(false);
        assert_eq!(t.allocated_bytes(), 0);
        assert!(t.is_empty() && !t.contains(1) && t.parent(1).is_none());
    }

    #[test]
    fn load_stays_between_growth_bounds() {
        // After the shards leave their first allocation, the set costs at
        // most 8 / 0.68 bytes per fingerprint (16 / 0.68 with parents).
        for (parents, word_bytes) in [(false, 8.0), (true, 16.0)] {
            let t = Table::new(parents);
            for k in fps(300_000, 9) {
                t.insert(k, 1);
            }
            // The running count is the shards' arrays' sizes.
            let summed: usize = t.shards.iter().map(|s| s.lock().unwrap().words.len() * 8).sum();
            assert_eq!(t.allocated_bytes(), summed);
            let per_entry = t.allocated_bytes() as f64 / t.len() as f64;
            let bound = word_bytes * 100.0 / (MAX_LOAD_PERCENT as f64 / 1.25) + 0.5;
            assert!(per_entry <= bound, "{per_entry:.2} bytes per entry (bound {bound:.2})");
            assert!(per_entry >= word_bytes * 100.0 / MAX_LOAD_PERCENT as f64 - 0.01);
        }
    }

    #[test]
    fn paths_follow_parents() {
        let t = Table::new(true);
        t.insert(10, 0);
        t.insert(20, 10);
        t.insert(30, 20);
        assert_eq!(t.path_to(30), vec![10, 20, 30]);
        let dfs = Table::new(false);
        dfs.insert(30, 20);
        assert_eq!(dfs.path_to(30), vec![30]);
    }
}
