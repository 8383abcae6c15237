//! Exhaustive search: BFS (shortest counterexamples) and DFS (less memory).
//!
//! States are identified by a 64-bit fingerprint (ahash with fixed seeds).
//! The visited table (`visited.rs`) maps each fingerprint to its parent's
//! under BFS, which is all a counterexample needs: the path is rebuilt by
//! replaying actions from the initial state (`trace.rs`). DFS keeps only the
//! fingerprints and takes a counterexample from its current branch. With
//! symmetry on, every generated state is replaced by its canonical
//! representative before it is fingerprinted, so the reduction applies to
//! every strategy.
//!
//! BFS is level-synchronous: each level is split between the calling thread
//! and helper threads that live for the whole search, which insert into a
//! sharded table. A violation found at depth d is therefore a shortest one,
//! whatever the thread count; the search finishes the level and stops. DFS
//! is single-threaded.

use crate::frontier::{Decoder, Encoder, Level, Sealed, Sink, Store};
use crate::history::Cache;
use crate::memory::Budget;
use crate::props::{eval, Eval, PropId, SafetyProps};
use crate::symmetry::canonical;
use crate::system::{Action, SysState, System};
use smelt_support::{Protocol, Strategy};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::visited::{Fp, Table};

/// How often (in states expanded) the resident size is compared with the
/// memory budget where no chunk boundary gives a natural point.
const RSS_POLL: usize = 4096;

/// A state's fingerprint. Never zero: the visited set uses 0 for an empty
/// slot and a parent of 0 for "initial state", so a zero hash becomes 1
/// (which merges it with a hash of 1, as any collision would).
pub fn fingerprint<T: Hash>(t: &T) -> Fp {
    ahash::RandomState::with_seeds(0x736d_656c, 0x7420_6670, 0x2020_7374, 0x6174_6573)
        .hash_one(t)
        .max(1)
}

/// Fingerprints are already uniformly distributed: hash them as themselves.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// States with their fingerprints: a BFS level, or a share of one.
type Live<P> = Vec<(SysState<P>, Fp)>;

/// A BFS helper thread as the calling thread sees it: where to send a share
/// of a level (with its depth) and where its successors come back.
type Helper<P> = (mpsc::Sender<(Live<P>, u32)>, mpsc::Receiver<Live<P>>);

/// A BFS helper thread over the encoded frontier: where to send a level's
/// work, and where it says it is done with it.
type Worker = (mpsc::Sender<Arc<Work>>, mpsc::Receiver<()>);

/// One level of an encoded BFS, shared by the threads that expand it: they
/// take its chunks in order and write successors to `next`.
struct Work {
    level: Level,
    next: Sink,
    depth: u32,
    cursor: AtomicUsize,
}

/// Where a property was decided: a violation of an `always` property or a
/// witness of a `sometimes` one.
#[derive(Clone, Debug)]
pub struct Discovery {
    pub fp: Fp,
    pub depth: u32,
    pub eval: Eval,
    /// DFS: the fingerprints from the initial state to `fp` (the table keeps
    /// no parents then). BFS: `None`; the table's parent links give it.
    pub path: Option<Vec<Fp>>,
}

#[derive(Clone, Debug)]
pub struct Stats {
    pub unique: u64,
    /// Successor states generated, including ones already visited.
    pub total: u64,
    pub max_depth: u32,
    pub elapsed: Duration,
    /// The whole reachable space (up to the depth bound) was explored.
    pub complete: bool,
    /// Why the search stopped early, if it did.
    pub stopped: Option<String>,
    /// It stopped for lack of memory or disk (or an unreadable frontier).
    pub out_of_resources: bool,
    pub peak_rss_bytes: Option<u64>,
    pub memory: Budget,
    /// Most bytes of the BFS frontier on disk at once (0: it fit in RAM).
    pub frontier_disk_bytes_max: u64,
    /// Bytes of the visited set spilled to disk (0: it fit in RAM).
    pub visited_disk_bytes: u64,
    /// Bytes of a liveness graph's edges on disk.
    pub graph_disk_bytes: u64,
}

pub struct Search<'a, P: Protocol> {
    pub sys: &'a System<P>,
    pub props: SafetyProps,
    pub cache: Cache,
    pub table: Table,
    pub discoveries: Mutex<BTreeMap<PropId, Discovery>>,
    total: AtomicU64,
    unique: AtomicU64,
    max_depth: AtomicU64,
    found_violation: AtomicBool,
    /// Bit k: the kth watched property is decided (see `discovered`).
    decided: AtomicU64,
    /// DFS: the fingerprints of the current branch (DFS is single-threaded;
    /// the mutex only makes `Search` shareable).
    path: Mutex<Vec<Fp>>,
    /// Progress lines on stderr every this often (`None`: quiet).
    pub progress: Option<Duration>,
    pub budget: Budget,
    /// The process's resident size when the search was set up: the budget
    /// counts what the search adds.
    baseline: u64,
    /// The encoded BFS frontier's RAM and disk.
    store: Store,
    /// Why the search must stop now (memory, the frontier's disk), once
    /// something says so; `halted` is its lock-free flag.
    halt: Mutex<Option<String>>,
    halted: AtomicBool,
}

impl<'a, P: Protocol> Search<'a, P> {
    pub fn new(sys: &'a System<P>) -> Self {
        let budget = Budget::new(sys.cfg.memory);
        let spill_dir = sys.cfg.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut table = Table::new(sys.cfg.strategy == Strategy::Bfs);
        // The visited set spills to sorted runs on disk rather than outgrow
        // its share of the budget (or the hidden `--visited-ram`).
        table.spill_to_disk(
            sys.cfg
                .visited_ram
                .map_or(budget.table_max(), |v| v.min(budget.table_max())),
            spill_dir.clone(),
        );
        Search {
            sys,
            props: SafetyProps::of::<P>(&sys.cfg),
            cache: Cache::default(),
            table,
            discoveries: Mutex::new(BTreeMap::new()),
            total: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            max_depth: AtomicU64::new(0),
            found_violation: AtomicBool::new(false),
            decided: AtomicU64::new(0),
            path: Mutex::new(Vec::new()),
            progress: None,
            budget,
            baseline: crate::memory::resident().unwrap_or(0),
            store: Store::new(spill_dir),
            halt: Mutex::new(None),
            halted: AtomicBool::new(false),
        }
    }

    /// Stops the search for `why` (the first reason given is kept).
    fn stop(&self, why: String) {
        let mut halt = self.halt.lock().unwrap_or_else(|e| e.into_inner());
        if halt.is_none() {
            *halt = Some(why);
        }
        self.halted.store(true, Ordering::Relaxed);
    }

    fn halted(&self) -> Option<String> {
        if !self.halted.load(Ordering::Relaxed) {
            return None;
        }
        self.halt.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the search if the process's resident memory is over the
    /// budget. It reads /proc: callers do it every few thousand states (per
    /// chunk placed; every `RSS_POLL` states otherwise).
    fn check_resident(&self) {
        if let Some(why) = crate::memory::over_budget(&self.budget, self.baseline, self.unique.load(Ordering::Relaxed))
        {
            self.stop(why);
        }
    }

    /// Stops the search if the visited set could not spill to disk, or has
    /// outgrown its share of the memory budget (it grows in small steps:
    /// one shard by a quarter; it spills before its share unless a spill
    /// failed).
    fn check_memory(&self) {
        if let Some(e) = self.table.error() {
            self.stop(format!(
                "{e}; the search cannot tell new states from old ones. Free space in the spill directory \
                 ({}) or choose another with --spill-dir",
                self.store.dir().display()
            ));
        }
        let table = self.table.allocated_bytes() as u64;
        if table > self.budget.table_max() {
            self.stop(format!(
                "out of memory budget: the visited set of {} states needs {}, more than its share ({}) of \
                 the {} budget ({}); raise --memory, tighten the check's bound{}",
                self.unique.load(Ordering::Relaxed),
                format_bytes(table),
                format_bytes(self.budget.table_max()),
                format_bytes(self.budget.bytes),
                self.budget.origin,
                if self.sys.cfg.strategy == Strategy::Bfs {
                    ", or search with --dfs (half the bytes per state)"
                } else {
                    ""
                }
            ));
        }
    }

    pub fn canon(&self, s: SysState<P>) -> SysState<P> {
        if self.sys.cfg.symmetry {
            canonical(self.sys, s)
        } else {
            s
        }
    }

    /// Whether property `p` (the `k`th the search watches) is decided. The
    /// first 64 have a bit in `decided`, so that threads checking every new
    /// state do not all take the discoveries' lock.
    fn discovered(&self, k: usize, p: PropId) -> bool {
        if k < 64 {
            return self.decided.load(Ordering::Relaxed) & (1 << k) != 0;
        }
        self.discoveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&p)
    }

    fn decide(&self, k: usize) {
        if k < 64 {
            self.decided.fetch_or(1 << k, Ordering::Relaxed);
        }
    }

    /// Evaluates the safety properties on a new state and records what it
    /// decides.
    fn check(&self, s: &SysState<P>, fp: Fp, depth: u32) {
        let always = self.props.always.len();
        for (k, &p) in self.props.always.iter().enumerate() {
            if self.discovered(k, p) {
                continue;
            }
            let e = eval(self.sys, s, p, &self.cache);
            if e != Eval::Holds {
                self.found_violation.store(true, Ordering::Relaxed);
                self.decide(k);
                self.discoveries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(p)
                    .or_insert_with(|| Discovery {
                        fp,
                        depth,
                        eval: e,
                        path: self.dfs_path(fp),
                    });
            }
        }
        for (k, &p) in self.props.sometimes.iter().enumerate() {
            if self.discovered(always + k, p) {
                continue;
            }
            if eval(self.sys, s, p, &self.cache) == Eval::Holds {
                self.decide(always + k);
                self.discoveries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(p)
                    .or_insert_with(|| Discovery {
                        fp,
                        depth,
                        eval: Eval::Holds,
                        path: self.dfs_path(fp),
                    });
            }
        }
    }

    /// During DFS, the path to `fp`, a state just generated from the one
    /// being expanded (or the initial state).
    fn dfs_path(&self, fp: Fp) -> Option<Vec<Fp>> {
        if self.sys.cfg.strategy != Strategy::Dfs {
            return None;
        }
        let mut path = self.path.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if path.last() != Some(&fp) {
            path.push(fp);
        }
        Some(path)
    }

    fn limit_reached(&self) -> Option<String> {
        let max = self.sys.cfg.max_states?;
        (self.unique.load(Ordering::Relaxed) >= max).then(|| format!("reached max_states = {max}"))
    }

    pub fn run(&self) -> Stats {
        let start = Instant::now();
        let stop_progress = AtomicBool::new(false);
        let (complete, stopped) = std::thread::scope(|scope| {
            if let Some(every) = self.progress {
                let stop = &stop_progress;
                scope.spawn(move || self.report_progress(start, every, stop));
            }
            let r = match self.sys.cfg.strategy {
                Strategy::Bfs => self.bfs(),
                Strategy::Dfs => self.dfs(),
            };
            stop_progress.store(true, Ordering::Relaxed);
            r
        });
        Stats {
            unique: self.unique.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            max_depth: self.max_depth.load(Ordering::Relaxed) as u32,
            elapsed: start.elapsed(),
            complete,
            stopped,
            peak_rss_bytes: peak_rss(),
            out_of_resources: self.halted.load(Ordering::Relaxed),
            memory: self.budget.clone(),
            frontier_disk_bytes_max: self.store.disk_bytes_max.load(Ordering::Relaxed),
            visited_disk_bytes: self.table.disk_bytes(),
            graph_disk_bytes: 0,
        }
    }

    fn report_progress(&self, start: Instant, every: Duration, stop: &AtomicBool) {
        let mut next = start + every;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() < next {
                continue;
            }
            next += every;
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            let unique = self.unique.load(Ordering::Relaxed);
            eprintln!(
                "  ... {} unique states, {} generated, depth {}, {:.0} states/s, {}",
                unique,
                self.total.load(Ordering::Relaxed),
                self.max_depth.load(Ordering::Relaxed),
                unique as f64 / secs,
                peak_rss().map(format_bytes).unwrap_or_default()
            );
        }
    }

    fn seed(&self) -> Option<(SysState<P>, Fp)> {
        let s = self.canon(self.sys.init());
        let fp = fingerprint(&s);
        self.table.insert(fp, 0);
        self.unique.fetch_add(1, Ordering::Relaxed);
        self.check(&s, fp, 0);
        Some((s, fp))
    }

    /// Expands one state: its new successors go to `out`.
    fn expand(
        &self,
        s: &SysState<P>,
        fp: Fp,
        depth: u32,
        actions: &mut Vec<Action<P>>,
        out: &mut impl FnMut(SysState<P>, Fp),
    ) {
        actions.clear();
        self.sys.actions(s, actions);
        // Counted here and added once: threads updating shared counters
        // for every state would contend for their cache line.
        let (mut generated, mut new) = (0, 0);
        for a in actions.iter() {
            let Some(t) = self.sys.next(s, a) else { continue };
            generated += 1;
            let t = self.canon(t);
            let tfp = fingerprint(&t);
            if self.table.insert(tfp, fp) {
                new += 1;
                self.check(&t, tfp, depth);
                out(t, tfp);
            }
        }
        self.unique.fetch_add(new, Ordering::Relaxed);
        self.total.fetch_add(generated, Ordering::Relaxed);
    }

    fn depth_allows(&self, depth: u32) -> bool {
        self.sys.cfg.max_depth.is_none_or(|m| (depth as u64) < m)
    }

    /// Expands a share of a BFS level, dropping each state once expanded.
    fn expand_all(&self, part: Live<P>, depth: u32, actions: &mut Vec<Action<P>>) -> Live<P> {
        let mut out = Vec::new();
        for (k, (s, fp)) in part.into_iter().enumerate() {
            self.expand(&s, fp, depth, actions, &mut |t, tfp| out.push((t, tfp)));
            self.check_memory();
            if k % RSS_POLL == RSS_POLL - 1 {
                self.check_resident();
            }
            if self.halted.load(Ordering::Relaxed) {
                break;
            }
        }
        out
    }

    /// Returns (complete, why stopped).
    fn bfs(&self) -> (bool, Option<String>) {
        if self.sys.cfg.live_frontier {
            return self.bfs_live();
        }
        let Some(init) = self.seed() else { return (true, None) };
        let threads = self.sys.cfg.threads.max(1);
        // Helper threads live for the whole search (see `bfs_live`); each
        // has its own encoder, whose buffer it reuses level after level.
        std::thread::scope(|scope| {
            let workers: Vec<Worker> = (1..threads)
                .map(|_| {
                    let (job_tx, job_rx) = mpsc::channel::<Arc<Work>>();
                    let (done_tx, done_rx) = mpsc::channel();
                    scope.spawn(move || {
                        let mut actions = Vec::new();
                        let mut enc = Encoder::default();
                        for work in job_rx {
                            self.work(&work, &mut actions, &mut enc);
                            // Let go of the level before saying so: the
                            // caller takes it back out of the `Arc`.
                            drop(work);
                            if done_tx.send(()).is_err() {
                                break;
                            }
                        }
                    });
                    (job_tx, done_rx)
                })
                .collect();
            self.encoded_levels(init, &workers)
        })
    }

    /// Places a closed chunk in the next level: in RAM while the frontier
    /// fits in its share of the budget, else on disk.
    fn place(&self, next: &Sink, chunk: Sealed) {
        self.check_resident();
        let table = self.table.allocated_bytes() as u64;
        let ram = self.store.ram_bytes.load(Ordering::Relaxed) + chunk.len() as u64;
        let ram_max = match self.sys.cfg.frontier_ram {
            Some(cap) => cap.min(self.budget.frontier_ram_max(table)),
            None => self.budget.frontier_ram_max(table),
        };
        if let Err(e) = next.push(&self.store, chunk, ram <= ram_max) {
            self.stop(e);
        }
    }

    /// Expands chunks of `w.level` until none is left (or the search must
    /// stop); successors go through `enc` to `w.next`.
    fn work(&self, w: &Work, actions: &mut Vec<Action<P>>, enc: &mut Encoder<P>) {
        while !self.halted.load(Ordering::Relaxed) {
            let i = w.cursor.fetch_add(1, Ordering::Relaxed);
            if i >= w.level.len() {
                break;
            }
            let (raw, states) = match w.level.take(i, &self.store) {
                Ok(c) => c,
                Err(e) => {
                    self.stop(format!("the BFS frontier is unreadable: {e}"));
                    break;
                }
            };
            let mut dec = Decoder::<P>::new(&raw, states, self.sys.empty_net(), &self.store.keys);
            loop {
                let (s, fp) = match dec.next_state() {
                    Ok(Some(x)) => x,
                    Ok(None) => break,
                    Err(e) => {
                        self.stop(format!("the BFS frontier is unreadable: {e}"));
                        break;
                    }
                };
                self.expand(s, fp, w.depth, actions, &mut |t, tfp| {
                    enc.push(t, tfp, &self.store.keys);
                    if enc.full() {
                        self.place(&w.next, enc.finish());
                    }
                });
                self.check_memory();
                if self.halted.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        if !enc.is_empty() {
            self.place(&w.next, enc.finish());
        }
    }

    /// What a level-synchronous BFS returns if it must stop before
    /// expanding the level at `depth`: something stopped it during the last
    /// level, or a bound stops it here.
    fn stop_before_level(&self, depth: u32) -> Option<(bool, Option<String>)> {
        self.stopped_in_level()
            .or_else(|| self.limit_reached().map(|why| (false, Some(why))))
            .or_else(|| {
                (!self.depth_allows(depth)).then(|| {
                    (
                        false,
                        Some(format!("reached max_depth = {}", self.sys.cfg.max_depth.unwrap_or(0))),
                    )
                })
            })
    }

    /// What a BFS returns if a level just expanded stopped it: the memory
    /// budget or the frontier's disk, or a violation (the level is finished
    /// first, so the counterexample is a shortest one).
    fn stopped_in_level(&self) -> Option<(bool, Option<String>)> {
        if let Some(why) = self.halted() {
            return Some((false, Some(why)));
        }
        self.found_violation.load(Ordering::Relaxed).then(|| {
            (
                false,
                Some("stopped at the first violation (shortest counterexample)".into()),
            )
        })
    }

    /// The levels of a BFS over the encoded frontier. Every thread (this
    /// one and `workers`) takes chunks of the level in order; with one
    /// thread the order of states is exactly that of `bfs_live`.
    fn encoded_levels(&self, init: (SysState<P>, Fp), workers: &[Worker]) -> (bool, Option<String>) {
        let mut actions = Vec::new();
        let mut enc = Encoder::default();
        let first = Sink::default();
        enc.push(init.0, init.1, &self.store.keys);
        self.place(&first, enc.finish());
        let mut level = first.finish();
        let mut depth = 0u32;
        while level.states > 0 {
            if let Some(outcome) = self.stop_before_level(depth) {
                return outcome;
            }
            depth += 1;
            let work = Arc::new(Work {
                level,
                next: Sink::default(),
                depth,
                cursor: AtomicUsize::new(0),
            });
            // A level of one chunk is not worth waking the helpers.
            let helpers = if work.level.len() > 1 { workers } else { &[] };
            for (jobs, _) in helpers {
                jobs.send(work.clone()).expect("a BFS helper thread stopped");
            }
            self.work(&work, &mut actions, &mut enc);
            for (_, done) in helpers {
                done.recv().expect("a BFS helper thread panicked");
            }
            let Ok(work) = Arc::try_unwrap(work) else {
                unreachable!("every helper has finished the level and dropped it")
            };
            // The level just expanded (and its spill file) is dropped here.
            let next = work.next.finish();
            if next.states > 0 {
                self.max_depth.fetch_max(depth as u64, Ordering::Relaxed);
            }
            level = next;
        }
        self.stopped_in_level().unwrap_or((true, None))
    }

    /// BFS with every frontier state live in RAM (`live_frontier`).
    fn bfs_live(&self) -> (bool, Option<String>) {
        let Some(init) = self.seed() else { return (true, None) };
        let threads = self.sys.cfg.threads.max(1);
        // The helper threads live for the whole search rather than one set
        // per level: each thread's allocator heap then keeps reusing the
        // memory of the states it freed, where a thread that exits leaves
        // its partly used pages behind (with mimalloc, 0.4 MiB of the peak
        // on the 2-client paxos benchmark). The calling thread expands a
        // share too. A helper that panics closes its result channel, and
        // the search panics instead of losing that share's states.
        std::thread::scope(|scope| {
            let helpers: Vec<Helper<P>> = (1..threads)
                .map(|_| {
                    let (job_tx, job_rx) = mpsc::channel::<(Live<P>, u32)>();
                    let (out_tx, out_rx) = mpsc::channel();
                    scope.spawn(move || {
                        let mut actions = Vec::new();
                        for (part, depth) in job_rx {
                            if out_tx.send(self.expand_all(part, depth, &mut actions)).is_err() {
                                break;
                            }
                        }
                    });
                    (job_tx, out_rx)
                })
                .collect();
            // Returning drops the senders, which ends the helpers.
            self.bfs_levels(init, &helpers)
        })
    }

    /// The levels of a BFS, split between the calling thread and `helpers`
    /// (each a job sender and a result receiver).
    fn bfs_levels(&self, init: (SysState<P>, Fp), helpers: &[Helper<P>]) -> (bool, Option<String>) {
        let mut frontier = vec![init];
        let mut actions = Vec::new();
        let mut depth = 0u32;
        while !frontier.is_empty() {
            if let Some(outcome) = self.stop_before_level(depth) {
                return outcome;
            }
            depth += 1;
            // Each state is dropped as soon as it is expanded, so the peak is
            // not two full levels but the unexpanded rest of this one plus
            // the part of the next found so far.
            let next: Live<P> = if helpers.is_empty() || frontier.len() < 64 {
                self.expand_all(std::mem::take(&mut frontier), depth, &mut actions)
            } else {
                // Each helper takes a share from the end; this thread keeps
                // the first share. The next level is the helpers' results in
                // that order, then this thread's.
                let chunk = frontier.len().div_ceil(helpers.len() + 1);
                for (jobs, _) in helpers {
                    let part = frontier.split_off(frontier.len().saturating_sub(chunk));
                    jobs.send((part, depth)).expect("a BFS helper thread stopped");
                }
                let mine = self.expand_all(std::mem::take(&mut frontier), depth, &mut actions);
                let mut outs: Vec<_> = helpers
                    .iter()
                    .map(|(_, results)| results.recv().expect("a BFS helper thread panicked"))
                    .collect();
                outs.push(mine);
                let mut next = Vec::with_capacity(outs.iter().map(Vec::len).sum());
                for o in outs {
                    next.extend(o);
                }
                next
            };
            if !next.is_empty() {
                self.max_depth.fetch_max(depth as u64, Ordering::Relaxed);
            }
            frontier = next;
        }
        self.stopped_in_level().unwrap_or((true, None))
    }

    fn dfs(&self) -> (bool, Option<String>) {
        let Some((init, fp)) = self.seed() else {
            return (true, None);
        };
        let mut stack = vec![(init, fp, 0u32)];
        let mut expanded = 0usize;
        let mut actions = Vec::new();
        let mut out = Vec::new();
        let mut truncated = false;
        while let Some((s, fp, depth)) = stack.pop() {
            if self.found_violation.load(Ordering::Relaxed) {
                return (false, Some("stopped at the first violation".into()));
            }
            {
                // The current branch: the states at depths 0..depth, then this one.
                let mut path = self.path.lock().unwrap_or_else(|e| e.into_inner());
                path.truncate(depth as usize);
                path.push(fp);
            }
            if let Some(why) = self.limit_reached() {
                return (false, Some(why));
            }
            if !self.depth_allows(depth) {
                truncated = true;
                continue;
            }
            out.clear();
            self.expand(&s, fp, depth + 1, &mut actions, &mut |t, tfp| out.push((t, tfp)));
            self.check_memory();
            expanded += 1;
            if expanded.is_multiple_of(RSS_POLL) {
                self.check_resident();
            }
            if let Some(why) = self.halted() {
                return (false, Some(why));
            }
            if !out.is_empty() {
                self.max_depth.fetch_max(depth as u64 + 1, Ordering::Relaxed);
            }
            // Push in reverse so the first action is explored first.
            for (t, tfp) in out.drain(..).rev() {
                stack.push((t, tfp, depth + 1));
            }
        }
        if self.found_violation.load(Ordering::Relaxed) {
            return (false, Some("stopped at the first violation".into()));
        }
        if truncated {
            return (
                false,
                Some(format!("reached max_depth = {}", self.sys.cfg.max_depth.unwrap_or(0))),
            );
        }
        (true, None)
    }
}

/// Resets the peak resident set size, so each check reports its own
/// (Linux: writing 5 to `clear_refs`). Best effort.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (Linux).
pub fn peak_rss() -> Option<u64> {
    crate::memory::proc_field("/proc/self/status", "VmHWM")
}

pub fn format_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    }
}
