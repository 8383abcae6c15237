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
//! - With a RAM limit (`Table::spill_to_disk`, set by a search from its
//!   memory budget), a shard that would grow past its share of the limit
//!   spills instead, as TLC's disk fingerprint set does: its entries, sorted
//!   by fingerprint, are merged into the shard's sorted run on disk (an
//!   unnamed file, rewritten sequentially), and its array is cleared for
//!   reuse. The run keeps the first key of every block of
//!   [`BLOCK_ENTRIES`] entries in RAM (8 bytes per 256 states), so a key
//!   missing from the array costs one block read (4 KiB with parents,
//!   usually from the page cache). A run is only ever replaced whole,
//!   under its shard's lock.
//!
//! Invariants of a shard (nothing is ever removed, so linear probing needs
//! no tombstones):
//! - every nonzero key is distinct and belongs to the shard;
//! - for every key, the slots from its home up to its slot (cyclically)
//!   are all occupied, so a lookup that reaches an empty slot may stop;
//! - `len` counts the nonzero keys and at most `MAX_LOAD_PERCENT` of the
//!   slots are in use, so a probe always ends at an empty slot;
//! - no key is both in the array and in the run, and the run's entries are
//!   strictly increasing by key.

use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// Entries per block of a disk run: what one lookup reads, and one key of
/// the run's RAM index.
pub const BLOCK_ENTRIES: usize = 256;

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
    /// Keys in `words`.
    len: usize,
    /// The entries spilled to disk, if any.
    run: Option<Run>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            words: Words::EMPTY,
            slots: 0,
            limit: 0,
            len: 0,
            run: None,
        }
    }
}

/// A shard's entries on disk: `entries` entries of `S` little-endian words,
/// strictly increasing by key, in an unnamed file; `index[b]` is the key of
/// entry `b * BLOCK_ENTRIES`.
struct Run {
    file: std::fs::File,
    entries: usize,
    index: Vec<Fp>,
}

impl Run {
    /// The word after `fp` (0 if `S` is 1), if `fp` is in the run.
    fn get<const S: usize>(&self, fp: Fp) -> std::io::Result<Option<Fp>> {
        let b = self.index.partition_point(|&k| k <= fp);
        if b == 0 {
            return Ok(None);
        }
        let first = (b - 1) * BLOCK_ENTRIES;
        let n = BLOCK_ENTRIES.min(self.entries - first);
        let mut bytes = [0u8; BLOCK_ENTRIES * 2 * 8];
        let bytes = &mut bytes[..n * S * 8];
        self.file.read_exact_at(bytes, (first * S * 8) as u64)?;
        let word = |j: usize| u64::from_le_bytes(bytes[j * 8..j * 8 + 8].try_into().expect("8 bytes"));
        debug_assert_eq!(word(0), self.index[b - 1], "a block starts with its index key");
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = word(mid * S);
            if k == fp {
                return Ok(Some(if S == 2 { word(mid * S + 1) } else { 0 }));
            }
            if k < fp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(None)
    }
}

/// Where and past what size shards spill (`Table::spill_to_disk`).
struct Spill {
    dir: PathBuf,
    /// A shard spills instead of growing its array past this many words.
    shard_words_max: usize,
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

    /// The word after `fp` (its parent; 0 if `S` is 1), if `fp` is present
    /// in the array or the run.
    fn get<const S: usize>(&self, fp: Fp) -> std::io::Result<Option<Fp>> {
        if self.slots > 0 {
            let i = self.find::<S>(fp);
            if self.words[i * S] == fp {
                return Ok(Some(if S == 2 { self.words[i * S + 1] } else { 0 }));
            }
        }
        match &self.run {
            Some(run) => run.get::<S>(fp),
            None => Ok(None),
        }
    }

    /// Adds `fp` (with `parent` if `S` is 2); `false` if present. With
    /// `spill`, an array that would grow past its share is written to disk
    /// instead (an I/O error leaves the entries in RAM and is returned with
    /// the insertion done: the caller stops spilling).
    fn insert<const S: usize>(&mut self, fp: Fp, parent: Fp, spill: Option<&Spill>) -> (bool, Option<std::io::Error>) {
        // The empty slot where `fp` would go, if the array has slots.
        let mut slot = None;
        if self.slots > 0 {
            let i = self.find::<S>(fp);
            if self.words[i * S] == fp {
                return (false, None);
            }
            slot = Some(i);
        }
        if let Some(run) = &self.run {
            match run.get::<S>(fp) {
                Ok(Some(_)) => return (false, None),
                Ok(None) => {}
                // A run that cannot be read cannot say the key is new; the
                // key is added to the array (a state explored twice at
                // worst), and the caller stops the search.
                Err(e) => return (self.put::<S>(fp, parent, None, slot).0, Some(e)),
            }
        }
        self.put::<S>(fp, parent, spill, slot)
    }

    /// Adds `fp`, known to be absent (`slot`: the empty slot `find` gave
    /// for it), growing or spilling the array first if it is full. (Grow
    /// only for a key that is really new, so that a search which ends right
    /// at the threshold does not pay for a growth it never uses.)
    fn put<const S: usize>(
        &mut self,
        fp: Fp,
        parent: Fp,
        spill: Option<&Spill>,
        mut slot: Option<usize>,
    ) -> (bool, Option<std::io::Error>) {
        let mut error = None;
        if self.len >= self.limit {
            match spill {
                Some(sp) if self.grown_words::<S>() > sp.shard_words_max && self.len > 0 => {
                    if let Err(e) = self.spill::<S>(&sp.dir) {
                        error = Some(e);
                        self.grow::<S>();
                    }
                }
                _ => self.grow::<S>(),
            }
            slot = None;
        }
        let i = slot.unwrap_or_else(|| self.find::<S>(fp));
        debug_assert_eq!(self.words[i * S], 0, "put: the key is absent");
        self.words[i * S] = fp;
        if S == 2 {
            self.words[i * S + 1] = parent;
        }
        self.len += 1;
        (true, error)
    }

    /// Merges the array's entries into the run (a new file, written
    /// sequentially, replacing the old one only once complete) and clears
    /// the array for reuse.
    fn spill<const S: usize>(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        let mut fresh: Vec<[u64; S]> = self
            .words
            .chunks_exact(S)
            .filter(|e| e[0] != 0)
            .map(|e| std::array::from_fn(|k| e[k]))
            .collect();
        debug_assert_eq!(fresh.len(), self.len);
        fresh.sort_unstable_by_key(|e| e[0]);
        let file = tempfile::tempfile_in(dir)?;
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        let mut index = Vec::new();
        let mut entries = 0usize;
        let mut emit = |e: &[u64; S], out: &mut BufWriter<&std::fs::File>| -> std::io::Result<()> {
            if entries.is_multiple_of(BLOCK_ENTRIES) {
                index.push(e[0]);
            }
            for w in e {
                out.write_all(&w.to_le_bytes())?;
            }
            entries += 1;
            Ok(())
        };
        let old_entries = self.run.as_ref().map_or(0, |r| r.entries);
        let mut old = match &self.run {
            Some(r) => {
                // Writing left the cursor at the end (lookups use
                // `read_exact_at`, which does not move it).
                let mut f = &r.file;
                f.seek(std::io::SeekFrom::Start(0))?;
                Some(BufReader::with_capacity(1 << 16, f))
            }
            None => None,
        };
        // The old run's next entry, in order; `None` once all are read.
        let mut old_left = old_entries;
        let mut next_old = || -> std::io::Result<Option<[u64; S]>> {
            let Some(r) = old.as_mut().filter(|_| old_left > 0) else {
                return Ok(None);
            };
            old_left -= 1;
            let mut e = [0u64; S];
            for w in e.iter_mut() {
                let mut b = [0u8; 8];
                r.read_exact(&mut b)?;
                *w = u64::from_le_bytes(b);
            }
            Ok(Some(e))
        };
        let mut o = next_old()?;
        for e in &fresh {
            while let Some(x) = o.filter(|x| x[0] < e[0]) {
                emit(&x, &mut out)?;
                o = next_old()?;
            }
            debug_assert!(o.is_none_or(|x| x[0] != e[0]), "a key in both the array and the run");
            emit(e, &mut out)?;
        }
        while let Some(x) = o {
            emit(&x, &mut out)?;
            o = next_old()?;
        }
        out.flush()?;
        drop(out);
        debug_assert_eq!(entries, old_entries + fresh.len());
        self.run = Some(Run { file, entries, index });
        self.words.fill(0);
        self.len = 0;
        Ok(())
    }

    /// The array's length after the next growth: a quarter more, rounded
    /// up to whole pages.
    fn grown_words<const S: usize>(&self) -> usize {
        ((self.slots + self.slots / 4) * S).max(1).next_multiple_of(PAGE_WORDS)
    }

    /// Rehashes into a table a quarter larger (see the module comment).
    fn grow<const S: usize>(&mut self) {
        let len = self.grown_words::<S>();
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
    /// Where shards spill, once `spill_to_disk` is called.
    spill: Option<Spill>,
    /// Bytes of the shards' runs on disk.
    disk: AtomicU64,
    /// The first I/O error of a run: spilling stops (the arrays grow in RAM
    /// again, and the search's budget check ends the search).
    failed: AtomicBool,
    error: Mutex<Option<String>>,
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
            spill: None,
            disk: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// Keeps the arrays within about `ram_bytes_max` (one page per shard at
    /// least): a shard that would grow past its share spills its entries to
    /// a sorted run in `dir` instead.
    pub fn spill_to_disk(&mut self, ram_bytes_max: u64, dir: PathBuf) {
        let shard_words_max = ((ram_bytes_max / 8) as usize / SHARDS).max(PAGE_WORDS);
        self.spill = Some(Spill { dir, shard_words_max });
    }

    fn shard(&self, fp: Fp) -> MutexGuard<'_, Shard> {
        // A panic elsewhere cannot leave a shard half-updated in a way that
        // matters (an insertion either stored its key or did not; a spill
        // replaces the run only once the new one is complete), so a
        // poisoned lock is still usable.
        self.shards[fp as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: std::io::Error) {
        let mut error = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if error.is_none() {
            *error = Some(format!("the visited set's disk run failed: {e}"));
        }
        self.failed.store(true, Ordering::Relaxed);
    }

    /// The first I/O error of a disk run, if any.
    pub fn error(&self) -> Option<String> {
        if !self.failed.load(Ordering::Relaxed) {
            return None;
        }
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Inserts `fp` with its parent (ignored without parents); `false` if
    /// it was already there.
    pub fn insert(&self, fp: Fp, parent: Fp) -> bool {
        debug_assert_ne!(fp, 0, "fingerprint 0 marks an empty slot");
        let spill = self.spill.as_ref().filter(|_| !self.failed.load(Ordering::Relaxed));
        let mut shard = self.shard(fp);
        let before = shard.words.len();
        let disk_before = shard.run.as_ref().map_or(0, |r| r.entries);
        let (new, error) = if self.parents {
            shard.insert::<2>(fp, parent, spill)
        } else {
            shard.insert::<1>(fp, 0, spill)
        };
        let after = shard.words.len();
        if after != before {
            // Only growth changes the size (entries are never removed; a
            // spill keeps the array).
            debug_assert!(after > before);
            self.allocated.fetch_add((after - before) * 8, Ordering::Relaxed);
        }
        let disk_after = shard.run.as_ref().map_or(0, |r| r.entries);
        if disk_after != disk_before {
            let words = if self.parents { 2 } else { 1 };
            self.disk
                .fetch_add(((disk_after - disk_before) * words * 8) as u64, Ordering::Relaxed);
        }
        drop(shard);
        if let Some(e) = error {
            self.fail(e);
        }
        new
    }

    fn get(&self, fp: Fp) -> Option<Fp> {
        let shard = self.shard(fp);
        let got = if self.parents {
            shard.get::<2>(fp)
        } else {
            shard.get::<1>(fp)
        };
        drop(shard);
        got.unwrap_or_else(|e| {
            self.fail(e);
            None
        })
    }

    /// Whether `fp` was inserted.
    pub fn contains(&self, fp: Fp) -> bool {
        self.get(fp).is_some()
    }

    /// The parent of `fp` (0 for an initial state); `None` if `fp` is
    /// absent or the table keeps no parents.
    pub fn parent(&self, fp: Fp) -> Option<Fp> {
        if !self.parents {
            return None;
        }
        self.get(fp)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.len + s.run.as_ref().map_or(0, |r| r.entries)
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the shards' arrays.
    pub fn allocated_bytes(&self) -> usize {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Bytes of the runs on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.disk.load(Ordering::Relaxed)
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
    fn spilled_entries_are_found_on_disk() {
        for parents in [false, true] {
            let mut t = Table::new(parents);
            // One page per shard: every shard spills many times, and each
            // spill merges into a run that already holds entries.
            t.spill_to_disk(0, std::env::temp_dir());
            let keys = fps(60_000, 11);
            for (i, &k) in keys.iter().enumerate() {
                assert!(t.insert(k, i as u64 + 1));
            }
            for (i, &k) in keys.iter().enumerate().step_by(7) {
                assert!(!t.insert(k, 999), "a second insert must be refused, also from disk");
                assert!(t.contains(k));
                assert_eq!(t.parent(k), parents.then_some(i as u64 + 1));
            }
            for k in fps(2_000, 12) {
                assert_eq!(t.contains(k), keys.contains(&k));
            }
            assert_eq!(t.len(), keys.len());
            assert!(t.error().is_none());
            // The arrays stay at one page per shard; the rest is on disk.
            assert_eq!(t.allocated_bytes(), SHARDS * 4096);
            let words = if parents { 2 } else { 1 };
            let on_disk = t.disk_bytes() as usize / (8 * words);
            assert!(
                on_disk > keys.len() / 2 && on_disk <= keys.len(),
                "{on_disk} entries on disk"
            );
            // Runs are sorted, strictly increasing, and indexed by block.
            for shard in &t.shards {
                let shard = shard.lock().unwrap();
                let run = shard.run.as_ref().expect("every shard spilled");
                assert_eq!(run.index.len(), run.entries.div_ceil(BLOCK_ENTRIES));
                assert!(run.index.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    #[test]
    fn a_spill_that_fails_keeps_every_entry_and_says_why() {
        let mut t = Table::new(true);
        t.spill_to_disk(0, std::path::PathBuf::from("/nonexistent/smelt-spill"));
        let keys = fps(20_000, 13);
        for (i, &k) in keys.iter().enumerate() {
            assert!(t.insert(k, i as u64 + 1));
        }
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(t.parent(k), Some(i as u64 + 1));
        }
        assert!(
            t.error().is_some_and(|e| e.contains("disk run failed")),
            "{:?}",
            t.error()
        );
        assert_eq!(t.disk_bytes(), 0);
        assert!(
            t.allocated_bytes() > SHARDS * 4096,
            "after the failure the arrays grow in RAM"
        );
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
