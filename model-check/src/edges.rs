//! The liveness graph's edges, on disk.
//!
//! Edges were most of a liveness search's memory (about six per state, 8
//! bytes each: half of the graph). They are written once, in state order,
//! while the graph is explored, and read only afterwards, by the cycle
//! analysis — so they go to an unnamed file in the spill directory through
//! a buffered writer, and the analysis reads them through a read-only
//! memory map. The kernel's page cache keeps them in RAM while RAM is free
//! and drops them, instead of the process being killed, when it is not.
//!
//! Invariants:
//! - Runs are appended in state order; state `i`'s edges are
//!   `offsets[i]..offsets[i + 1]` (`column::Offsets`), so a run is found
//!   without an index on disk.
//! - The mapping's resident pages count in the process's resident set,
//!   which the memory budget watches; reads drop them from the process
//!   (not from the page cache) every `TOUCHED_BYTES_MAX` bytes or
//!   `READS_MAX` reads, so what the map holds resident stays within about
//!   64 MiB however large the file (a fault maps the folio the page is
//!   in, or 16 neighbouring pages: the file is written in 64 KiB writes,
//!   so the page cache's folios stay that small, and 1,024 reads map at
//!   most 64 MiB — written in 1 MiB writes, the kernel kept 2 MiB folios
//!   and scattered reads mapped 2 GiB between two releases).
//! - An I/O error reading the file through the map would be a SIGBUS, not
//!   an error value: the file is local, written and flushed by this
//!   process before it is mapped.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// One edge: its target state and its fairness class.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub to: u32,
    pub class: u32,
}

const EDGE_BYTES: usize = std::mem::size_of::<Edge>();

/// Bytes read through the map between two releases of its pages.
const TOUCHED_BYTES_MAX: u64 = 64 << 20;

/// Reads (a run's slice, at any size) between two releases: each may fault
/// in up to `FOLIO_BYTES_MAX` (the kernel maps cached neighbours of a
/// faulting page).
const READS_MAX: u64 = 1024;

/// The size of a write to the file, and so the largest folio the page
/// cache keeps it in (while written; readahead after the kernel evicted
/// pages makes folios of up to its window, 128 KiB by default).
const WRITE_BYTES: usize = 64 << 10;

/// The largest block of the file one fault may map (a PMD-sized folio).
const FOLIO_BYTES_MAX: usize = 2 << 20;

/// The edges as they are explored.
pub struct EdgeWriter {
    out: BufWriter<File>,
    len: u64,
}

impl EdgeWriter {
    /// A writer to a new unnamed file in `dir` (removed when dropped).
    pub fn new(dir: &Path) -> std::io::Result<EdgeWriter> {
        let file = tempfile::tempfile_in(dir)?;
        Ok(EdgeWriter {
            // Small writes: the page cache keeps the file in folios no
            // larger than a write, and a fault through the map maps a
            // whole folio (Linux 6.18 does; with 1 MiB writes, 2 MiB
            // folios, and 1,024 scattered reads mapped up to 2 GiB).
            out: BufWriter::with_capacity(WRITE_BYTES, file),
            len: 0,
        })
    }

    /// Appends a state's run; returns the number of edges written so far
    /// (the end of the run).
    pub fn push_run(&mut self, run: &[Edge]) -> std::io::Result<u64> {
        for e in run {
            self.out.write_all(&e.to.to_ne_bytes())?;
            self.out.write_all(&e.class.to_ne_bytes())?;
        }
        self.len += run.len() as u64;
        Ok(self.len)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the buffer holds in RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.out.capacity() as u64
    }

    /// Drops the file unread (an exploration that stopped).
    pub fn discard(self) {}

    /// Flushes the file and maps it for reading.
    pub fn finish(self) -> std::io::Result<Edges> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Edges::map(file, self.len)
    }
}

/// The edges, read-only, through a memory map.
pub struct Edges {
    ptr: *const Edge,
    len: u64,
    /// Keeps the file (and so the map's pages) alive.
    _file: Option<File>,
    /// Bytes and reads since the map's pages were last released, and the
    /// range of edges read since (the part to release).
    touched: Cell<u64>,
    reads: Cell<u64>,
    lo: Cell<u64>,
    hi: Cell<u64>,
    /// Non-unix: the whole file, read into RAM.
    #[cfg(not(unix))]
    copy: Vec<Edge>,
}

impl Edges {
    #[cfg(unix)]
    fn map(file: File, len: u64) -> std::io::Result<Edges> {
        use std::os::fd::AsRawFd;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(EDGE_BYTES))
            .ok_or_else(|| std::io::Error::other("the edge file does not fit the address space"))?;
        if bytes == 0 {
            return Ok(Edges::empty());
        }
        assert_eq!(
            file.metadata()?.len(),
            bytes as u64,
            "the edge file holds every edge written"
        );
        // SAFETY: a read-only shared mapping of a file this process created
        // unnamed and never writes again; it lives until `drop` unmaps it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Edges {
            ptr: p.cast::<Edge>(),
            len,
            _file: Some(file),
            touched: Cell::new(0),
            reads: Cell::new(0),
            lo: Cell::new(u64::MAX),
            hi: Cell::new(0),
        })
    }

    #[cfg(not(unix))]
    fn map(file: File, len: u64) -> std::io::Result<Edges> {
        use std::io::Read;
        let mut raw = Vec::new();
        let mut f = file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
        f.read_to_end(&mut raw)?;
        let copy: Vec<Edge> = raw
            .chunks_exact(EDGE_BYTES)
            .map(|c| Edge {
                to: u32::from_ne_bytes(c[0..4].try_into().expect("4 bytes")),
                class: u32::from_ne_bytes(c[4..8].try_into().expect("4 bytes")),
            })
            .collect();
        assert_eq!(copy.len() as u64, len, "the edge file holds every edge written");
        Ok(Edges {
            ptr: copy.as_ptr(),
            len,
            _file: None,
            touched: Cell::new(0),
            reads: Cell::new(0),
            lo: Cell::new(u64::MAX),
            hi: Cell::new(0),
            copy,
        })
    }

    /// No edges (a graph whose exploration stopped: nothing is analysed).
    pub fn empty() -> Edges {
        Edges {
            ptr: std::ptr::NonNull::dangling().as_ptr(),
            len: 0,
            _file: None,
            touched: Cell::new(0),
            reads: Cell::new(0),
            lo: Cell::new(u64::MAX),
            hi: Cell::new(0),
            #[cfg(not(unix))]
            copy: Vec::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Edges `a..b`.
    pub fn slice(&self, a: u64, b: u64) -> &[Edge] {
        assert!(a <= b && b <= self.len, "edges {a}..{b} of {}", self.len);
        if a == b {
            return &[];
        }
        self.account(a, b);
        // SAFETY: `a..b` lies inside the mapping (checked above), which is
        // valid, aligned for `Edge` (page-aligned, `Edge` is two `u32`s)
        // and never written while mapped. Releasing pages (`account`) does
        // not invalidate it: a later read faults them back in from the file.
        unsafe { std::slice::from_raw_parts(self.ptr.add(a as usize), (b - a) as usize) }
    }

    /// Counts a read of edges `a..b`; past the bounds, drops the pages
    /// read since the last release from this process (they stay in the
    /// page cache while the kernel keeps them).
    fn account(&self, a: u64, b: u64) {
        let touched = self.touched.get() + (b - a) * EDGE_BYTES as u64;
        let reads = self.reads.get() + 1;
        self.lo.set(self.lo.get().min(a));
        self.hi.set(self.hi.get().max(b));
        if touched < TOUCHED_BYTES_MAX && reads < READS_MAX {
            self.touched.set(touched);
            self.reads.set(reads);
            return;
        }
        let (lo, hi) = (self.lo.get(), self.hi.get());
        self.touched.set(0);
        self.reads.set(0);
        self.lo.set(u64::MAX);
        self.hi.set(0);
        #[cfg(unix)]
        {
            // A fault maps more than the page read: up to 16 pages around
            // it, or the whole large folio the page cache holds it in
            // (ext4 caches files in folios of up to 2 MiB). The caller
            // reads `a..b` after this release, faulting its folio back in
            // whole — also the part behind `a`, which the next window
            // (ahead of it) would not cover. So the range released is
            // widened to whole aligned blocks of `FOLIO_BYTES_MAX` (file
            // offsets are mapping offsets: the map starts at offset 0).
            let end = self.len as usize * EDGE_BYTES;
            let start = (lo as usize * EDGE_BYTES) / FOLIO_BYTES_MAX * FOLIO_BYTES_MAX;
            let stop = (hi as usize * EDGE_BYTES)
                .div_ceil(FOLIO_BYTES_MAX)
                .saturating_mul(FOLIO_BYTES_MAX)
                .min(end);
            // SAFETY: advice on a page-aligned part of this process's own
            // read-only file mapping; MADV_DONTNEED on a shared file mapping
            // only unmaps pages, and a later access maps the file's
            // contents again.
            unsafe {
                libc::madvise(
                    (self.ptr as *mut u8).add(start).cast::<libc::c_void>(),
                    stop - start,
                    libc::MADV_DONTNEED,
                );
            }
        }
        #[cfg(not(unix))]
        let _ = (lo, hi);
    }
}

impl Drop for Edges {
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.len > 0 {
            // SAFETY: the mapping made by `map`, unmapped exactly once.
            unsafe {
                libc::munmap(self.ptr as *mut libc::c_void, self.len as usize * EDGE_BYTES);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(to: u32, class: u32) -> Edge {
        Edge { to, class }
    }

    #[test]
    fn runs_written_are_read_back_in_order() {
        let mut w = EdgeWriter::new(&std::env::temp_dir()).expect("file");
        let runs: Vec<Vec<Edge>> = (0..1000u32)
            .map(|i| (0..i % 7).map(|k| edge(i * 10 + k, k)).collect())
            .collect();
        let mut ends = vec![0u64];
        for r in &runs {
            ends.push(w.push_run(r).expect("write"));
        }
        let edges = w.finish().expect("map");
        assert_eq!(edges.len(), *ends.last().unwrap());
        // Many more reads than READS_MAX: pages are released and read again.
        for _ in 0..10 {
            for (i, r) in runs.iter().enumerate() {
                assert_eq!(edges.slice(ends[i], ends[i + 1]), &r[..]);
            }
        }
    }

    /// The tests that measure resident file pages, which count for the
    /// whole process, run one at a time.
    static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Resident pages of file mappings (Linux), in bytes.
    fn rss_file() -> Option<u64> {
        crate::memory::proc_field("/proc/self/status", "RssFile")
    }

    /// A mapped file of `runs` runs of `len` edges each (edge `k` of a run
    /// points to `k`).
    fn mapped(runs: u64, len: u32) -> Edges {
        let mut w = EdgeWriter::new(&std::env::temp_dir()).expect("file");
        let run: Vec<Edge> = (0..len).map(|k| edge(k, k)).collect();
        for _ in 0..runs {
            w.push_run(&run).expect("write");
        }
        w.finish().expect("map")
    }

    /// The most of the process's file mappings resident beyond what they
    /// held before, sampled every `every` of the `reads` calls of `read`;
    /// `None` where /proc does not say.
    fn most_resident(reads: u64, every: u64, mut read: impl FnMut(u64)) -> Option<u64> {
        let before = rss_file()?;
        let mut most = 0;
        for k in 0..reads {
            read(k);
            if k % every == 0 {
                most = most.max(rss_file().unwrap_or(0).saturating_sub(before));
            }
        }
        Some(most)
    }

    #[test]
    fn reading_every_edge_keeps_a_bounded_window_resident() {
        let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        // 256 MiB of edges, read run by run: the reader releases pages
        // behind it, so the mapping never holds much more than 64 MiB.
        let runs = (256u64 << 20) / (1024 * 8);
        let edges = mapped(runs, 1024);
        let mut sum = 0u64;
        let most = most_resident(runs, 64, |k| {
            sum += edges
                .slice(k * 1024, (k + 1) * 1024)
                .iter()
                .map(|e| u64::from(e.to))
                .sum::<u64>();
        });
        let Some(most) = most else { return };
        assert_eq!(sum, runs * (1023 * 1024 / 2));
        assert!(most < 100 << 20, "{} MiB of the map resident", most >> 20);
    }

    #[test]
    fn small_reads_keep_a_bounded_window_resident() {
        let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        // 64 MiB read five edges at a time: each release is followed by a
        // read that faults a whole large folio back in, also behind it; the
        // released range must cover that (it failed with 58 MiB resident
        // when it covered only 16 pages around what was read).
        let runs = (64u64 << 20) / (5 * 8);
        let edges = mapped(runs, 5);
        let most = most_resident(runs, 10_000, |k| {
            std::hint::black_box(edges.slice(k * 5, (k + 1) * 5).iter().map(|e| e.to).sum::<u32>());
        });
        let Some(most) = most else { return };
        assert!(most < 16 << 20, "{} MiB of the map resident", most >> 20);
    }

    #[test]
    fn random_reads_keep_a_bounded_window_resident() {
        let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        // 100,000 single edges at random places in 256 MiB, as the cycle
        // analysis reads: each fault maps only a small folio (255 MiB
        // resident when the file was written in 1 MiB writes).
        let runs = (256u64 << 20) / (1024 * 8);
        let edges = mapped(runs, 1024);
        let mut x = 12345u64;
        let most = most_resident(100_000, 500, |_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (x >> 33) % (runs * 1024 - 1);
            std::hint::black_box(edges.slice(at, at + 1)[0].to);
        });
        let Some(most) = most else { return };
        assert!(most < 100 << 20, "{} MiB of the map resident", most >> 20);
    }

    #[test]
    fn no_edges_map_to_an_empty_slice() {
        let w = EdgeWriter::new(&std::env::temp_dir()).expect("file");
        let edges = w.finish().expect("map");
        assert!(edges.is_empty());
        assert_eq!(edges.slice(0, 0), &[]);
    }
}
