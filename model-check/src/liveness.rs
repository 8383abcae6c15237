//! Liveness mode: progress under bounded faults, with real cycle detection.
//!
//! Semantics (also in `smelt check --help`): the environment has a fault
//! budget (`drops`, `crash`). A state is *calm* once the faults are over —
//! when the budget is spent, or when the environment stops early (the
//! `Calm` action). Fault counters are part of the state and only grow, so a
//! cycle never contains a fault. In calm states the timing model applies and
//! the environment is weakly fair: an action class (delivering one message
//! or, on an ordered network, the head of one link; one timer of one node;
//! one node's recovery; one pending choice) that is enabled in every state
//! of an infinite behaviour's suffix is taken infinitely often. "Enabled"
//! means the action changes something (a delivery the node ignores is not
//! an enabled action). On a duplicating network only a message sent since
//! it was last delivered is owed a delivery (`net.rs`, `Net::Owed`);
//! delivering an older copy again is an edge without a class: it may
//! happen, and fairness never requires it. Timers and random choices are strongly fair: enabled
//! infinitely often, taken infinitely often (a timer blocked now and then by
//! messages in flight to its node still fires: time passes).
//!
//! The search explores the whole graph once, storing for each state its
//! fingerprint, property bits and outgoing edges (target, fairness class) —
//! not the states themselves. The edges, half of the graph, go to a file
//! (`edges.rs`) and are read back through a memory map; the index from
//! fingerprints to states is the visited set's table and spills to disk
//! like it; so a state costs about what it costs a safety search (the
//! fingerprint table) plus 13 bytes in RAM. Then, per property:
//! - `eventually P`: the states reachable from the start through ¬P states;
//!   among their calm ones, the strongly connected components (Pearce's
//!   variant of Tarjan's algorithm: one word per node, not three). A
//!   component is a counterexample iff it is fair: every class enabled in all
//!   of its states is taken by one of its internal edges. A calm ¬P state
//!   where no class is enabled (no successor, or only duplicates owed
//!   nothing: a deadlock) is a counterexample too.
//! - `leads_to P ~> Q`, per binding of its quantifiers: the same on the
//!   product with a one-bit monitor ("P happened, Q has not since").
//!
//! A counterexample is printed as a lasso: the prefix to the component and a
//! fair loop through it (taking every required class), which repeats forever.

use crate::column::{Bits, Column, Offsets};
use crate::config::RunConfig;
use crate::edges::{Edge, EdgeWriter, Edges};
use crate::frontier::{Decoder, Encoder, Sealed, Sink, Store};
use crate::history::Cache;
use crate::props::{eval, Eval, PropId};
use crate::report::{CheckReport, PropReport, StatsReport, Verdict};
use crate::search::{fingerprint, format_bytes, peak_rss, Fp, Stats, Table};
use crate::symmetry::canonical;
use crate::system::{Action, SysState, System};
use crate::trace::{node_name, render, replay, show, steps};
use smelt_support::{BinderKind, Id, PropertyKind, Protocol};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Successors of a graph node as `(edge, target)` pairs, filtered by the caller's
/// restriction (a component, a refinement of it).
type Succ<'a> = dyn Fn(u32, &mut Vec<(u32, u32)>) + 'a;

const NONE: u32 = u32::MAX;
/// Components at least this large are named in the progress lines.
const BIG_COMPONENT: usize = 1 << 20;
/// Fairness class of actions fairness never requires: faults, and on a
/// duplicating network re-deliveries of messages owed nothing (these, and
/// a crash drop at a node that is down, also occur in calm states).
const NO_CLASS: u32 = u32::MAX;
/// States the graph may hold: product nodes (two per state) are `u32`, and
/// the component analysis numbers active nodes upwards from 1 and
/// components downwards from `u32::MAX - 1`, so four times this must fit.
const STATES_MAX: usize = (1 << 30) - 1;

/// A state's bits: one per `reachable` property and per goal instance
/// (two per binding of a `leads_to`), and one for calm.
const TOO_MANY_BITS: &str =
    "too many liveness property instances: `reachable` properties and `eventually`/`leads_to` instances (two bits per binding of a `leads_to`) take at most 63 bits per check";

/// A liveness property, instantiated for one binding of its quantifiers.
#[derive(Clone, Debug)]
struct Goal {
    prop: usize,
    binding: Vec<usize>,
    /// Bit of P (eventually: the goal; leads_to: the trigger).
    from_bit: u32,
    /// Bit of Q (leads_to only).
    to_bit: Option<u32>,
}

/// The explored graph.
struct Graph {
    fps: Column<Fp>,
    /// Per state: the property bits, and `calm_bit` set if it is calm.
    bits: Bits,
    calm_bit: u32,
    /// State i's edges are `edge_start[i]..edge_start[i + 1]` of `edges`.
    edge_start: Offsets,
    edges: Edges,
    /// Edges into the sink of cut steps (see `explore`): not steps.
    sink_edges: u64,
    max_depth: u32,
    /// Per class: strongly fair (a random choice's outcome) rather than weakly.
    strong: Vec<bool>,
}

impl Graph {
    fn len(&self) -> usize {
        self.fps.len()
    }

    /// Edges written (also those of a graph whose edges were not mapped).
    fn edge_count(&self) -> u64 {
        self.edge_start.get(self.edge_start.len() - 1)
    }

    fn succ(&self, i: u32) -> &[Edge] {
        let i = i as usize;
        self.edges.slice(self.edge_start.get(i), self.edge_start.get(i + 1))
    }

    fn bit(&self, i: u32, b: u32) -> bool {
        self.bits.get(i as usize) & (1 << b) != 0
    }

    fn calm(&self, i: u32) -> bool {
        self.bit(i, self.calm_bit)
    }
}

/// The graph while it is explored: its edges go to a file as they come.
struct Builder {
    fps: Column<Fp>,
    bits: Bits,
    calm_bit: u32,
    edge_start: Offsets,
    edges: EdgeWriter,
    sink_edges: u64,
    max_depth: u32,
    strong: Vec<bool>,
}

impl Builder {
    fn new(calm_bit: u32, dir: &std::path::Path) -> Result<Builder, String> {
        let mut edge_start = Offsets::default();
        edge_start.push(0);
        Ok(Builder {
            fps: Column::default(),
            bits: Bits::new(calm_bit + 1),
            calm_bit,
            edge_start,
            edges: EdgeWriter::new(dir).map_err(|e| format!("the graph's edge file in {}: {e}", dir.display()))?,
            sink_edges: 0,
            max_depth: 0,
            strong: vec![],
        })
    }

    fn push_state(&mut self, fp: Fp, bits: u64, calm: bool) {
        debug_assert!(bits >> self.calm_bit == 0, "property bits stay below the calm bit");
        self.fps.push(fp);
        self.bits.push(bits | u64::from(calm) << self.calm_bit);
    }

    /// The next state's edges.
    fn push_edges(&mut self, run: &[Edge]) -> Result<(), String> {
        let end = self
            .edges
            .push_run(run)
            .map_err(|e| format!("writing the graph's edges: {e}"))?;
        self.edge_start.push(end);
        Ok(())
    }

    /// Bytes held in RAM.
    fn bytes(&self) -> u64 {
        self.fps.bytes()
            + self.bits.bytes()
            + self.edge_start.bytes()
            + self.edges.ram_bytes()
            + self.strong.capacity() as u64
    }

    /// The graph without its edges (an exploration that stopped: nothing
    /// is analysed, and mapping the file could fail for the same reason).
    fn abandon(self) -> Graph {
        let (writer, graph) = self.into_graph(Edges::empty());
        writer.discard();
        graph
    }

    /// The graph with `edges`, and the writer it no longer holds.
    fn into_graph(self, edges: Edges) -> (EdgeWriter, Graph) {
        let graph = Graph {
            fps: self.fps,
            bits: self.bits,
            calm_bit: self.calm_bit,
            edge_start: self.edge_start,
            edges,
            sink_edges: self.sink_edges,
            max_depth: self.max_depth,
            strong: self.strong,
        };
        (self.edges, graph)
    }

    fn finish(self) -> Result<Graph, String> {
        let (writer, mut graph) = self.into_graph(Edges::empty());
        graph.edges = writer.finish().map_err(|e| format!("mapping the graph's edges: {e}"))?;
        Ok(graph)
    }
}

pub fn run<P: Protocol>(spec: &str, mut cfg: RunConfig, progress: Option<Duration>) -> Result<CheckReport, String> {
    if cfg.symmetry && !P::SYMMETRIC {
        return Err("symmetry requested for a protocol that is not symmetric".into());
    }
    // Fairness is judged per node in the quotient graph, by the ids of each
    // representative. A representative that renames servers along a cycle
    // (the tie-breaking of `symmetry::canonical_with_map` does, whenever
    // two servers differ only in how others refer to them) would make "the
    // same node" mean different servers around the loop, and a fair real
    // behaviour look unfair or the reverse. The sort-only form keeps ties
    // in numbering order, as liveness always had; it is not immune either
    // (ARCHITECTURE.md, Symmetry: the gap is written down there).
    cfg.symmetry_local = true;
    let sys = System::<P>::new(cfg.clone())?;
    let start = Instant::now();
    let goals = goals::<P>(&sys)?;
    let budget = crate::memory::Budget::new(sys.cfg.memory);
    let baseline = crate::memory::resident().unwrap_or(0);
    let Explored {
        graph,
        reached,
        stopped,
        index_disk_bytes,
    } = explore(&sys, &goals, progress, start, &budget, baseline)?;
    // The sink of cut steps (see `explore`) is not a state, nor its edges
    // steps.
    let sink_nodes = u64::from(sys.cfg.bound.is_some());
    // The cycle analysis needs three words per product node (two per
    // state), and about one more for its queue and stacks, beside the
    // graph: if they would not fit the budget, the liveness verdicts are
    // unknown rather than the process killed (the exploration itself is
    // complete: `reachable` verdicts stand).
    let mut undecided = stopped
        .as_ref()
        .map(|_| "not decided: the search stopped before the whole graph was built".to_string());
    if undecided.is_none() && !goals.is_empty() {
        let need = graph.len() as u64 * 2 * 4 * 4;
        let used = crate::memory::resident().unwrap_or(0).saturating_sub(baseline);
        if used + need > budget.bytes {
            undecided = Some(format!(
                "not decided: out of memory budget: the cycle analysis of {} states needs about {} beside the {} the graph holds, more than the {} budget ({}); raise --memory or tighten the check's bound",
                graph.len(),
                format_bytes(need),
                format_bytes(used),
                format_bytes(budget.bytes),
                budget.origin
            ));
        }
    }
    let mut stats = Stats {
        unique: graph.len() as u64 - sink_nodes,
        total: graph.edge_count() - graph.sink_edges,
        max_depth: graph.max_depth,
        elapsed: start.elapsed(),
        complete: stopped.is_none(),
        stopped: stopped.clone(),
        peak_rss_bytes: peak_rss(),
        out_of_resources: stopped.is_some(),
        memory: crate::memory::Budget::new(sys.cfg.memory),
        frontier_disk_bytes_max: 0,
        visited_disk_bytes: index_disk_bytes,
        graph_disk_bytes: graph.edge_count() * std::mem::size_of::<Edge>() as u64,
    };
    let mut props = Vec::new();
    for (i, p) in P::properties().iter().enumerate() {
        let mut r = PropReport {
            name: p.name.to_string(),
            kind: p.kind,
            verdict: Verdict::Skipped,
            text: p.text.to_string(),
            detail: None,
            steps: None,
            trace: None,
            trace_text: None,
        };
        if sys.cfg.skips(p.name) {
            r.detail = Some("left out by this check (`skip`)".into());
            props.push(r);
            continue;
        }
        match p.kind {
            // A partial graph decides nothing about fair behaviours: a
            // state not expanded looks stuck.
            PropertyKind::Eventually | PropertyKind::LeadsTo if undecided.is_some() => {
                r.verdict = Verdict::Unknown;
                r.detail = undecided.clone();
            }
            PropertyKind::Eventually | PropertyKind::LeadsTo => {
                r.verdict = Verdict::Holds;
                for g in goals.iter().filter(|g| g.prop == i) {
                    if let Some((prefix, cycle)) = find_lasso(&graph, g, progress.is_some()) {
                        let binding = describe_binding(&sys, g);
                        let (trace, text) = lasso_trace(&sys, &graph, &prefix, &cycle, p.name, &binding);
                        r.verdict = Verdict::Violated;
                        r.steps = Some(prefix.len() + cycle.len());
                        r.detail = Some(if cycle.is_empty() {
                            format!("a fair behaviour gets stuck after {} steps{binding}", prefix.len())
                        } else {
                            format!(
                                "a fair behaviour loops forever after {} steps (loop of {} steps){binding}",
                                prefix.len(),
                                cycle.len()
                            )
                        });
                        r.trace = trace;
                        r.trace_text = text;
                        break;
                    }
                }
            }
            PropertyKind::Reachable => match reached.get(&i) {
                Some(d) => {
                    r.verdict = Verdict::Reached;
                    r.steps = Some(*d as usize);
                    r.detail = Some(format!("first reached after {d} steps"));
                }
                None if stopped.is_some() => {
                    r.verdict = Verdict::Unknown;
                    r.detail = Some("not reached before the search stopped".into());
                }
                None => {
                    r.verdict = Verdict::Violated;
                    r.detail = Some(format!("no state of the {} explored satisfies it", stats.unique));
                }
            },
            _ => r.detail = Some("a safety property: checked by configs with `mode safety`".into()),
        }
        props.push(r);
    }
    let mut assumptions = vec![format!(
        "fault budget: {} message drop(s), {} crash(es), {} timer race(s); afterwards no more faults",
        cfg.drops, cfg.crash, cfg.races
    )];
    if cfg.stops > 0 {
        assumptions.push(format!(
            "up to {} server(s) may stop for good before the run is calm: they crash and never recover",
            cfg.stops
        ));
    }
    if (cfg.partial_synchrony || cfg.no_timeouts) && (cfg.drops > 0 || cfg.crash > 0) {
        assumptions.push("while drops or crashes remain in the budget, timers fire in any order (asynchrony)".into());
    } else if cfg.partial_synchrony && cfg.races > 0 {
        assumptions.push(format!(
            "before the run is calm, at most {} timer firing(s) break the timing model (racing timeouts: a timer fires while a message to its node is in flight, or before a timer declared to expire sooner)",
            cfg.races
        ));
    }
    assumptions.push(
        "fairness after the faults: a message that stays deliverable is delivered (on a duplicating network: once after each send), a crashed node recovers (unless stopped), a pending choice is made; a timer enabled infinitely often fires (strong fairness)"
            .into(),
    );
    if cfg.no_timeouts {
        assumptions.push(
            "no timeouts after the faults: no timer fires, so the run must finish on messages alone (a redundant timer cannot stand in for a lost step of the fast path)"
                .into(),
        );
    } else if cfg.synchronous {
        assumptions.push(
            "synchronous after the faults: no timer fires while any message is in flight (one its destination would ignore does not count), nor while an armed timer is declared to expire strictly sooner"
                .into(),
        );
    } else if cfg.partial_synchrony {
        assumptions.push(
            "partial synchrony after the faults: no timer fires at a node with messages in flight to it, nor while an armed timer is declared to expire strictly sooner"
                .into(),
        );
    } else {
        assumptions.push("timing: timers may fire in any order at any time".into());
    }
    match cfg.client_retry() {
        Some(Some(n)) => assumptions.push(format!(
            "clients resend an unanswered request on a timer, at most {n} time(s), then give up on it (`retries`): such a client is never `done`"
        )),
        Some(None) => assumptions.push("clients resend an unanswered request on a timer".into()),
        None => {}
    }
    props.push(crate::report::delta_report(&sys.delta, &cfg, stats.complete));
    // The peak of the whole check, cycle analysis included.
    stats.peak_rss_bytes = peak_rss();
    Ok(CheckReport {
        spec: spec.to_string(),
        protocol: P::NAME.to_string(),
        check: cfg.name.clone(),
        mode: "liveness",
        config: cfg,
        stats: StatsReport {
            bound_cut: sys.cut.load(std::sync::atomic::Ordering::Relaxed),
            ..StatsReport::from(&stats)
        },
        properties: props,
        assumptions,
        expected: None,
        as_expected: None,
        seed_walk: None,
        spec_sha256: None,
        simulation: None,
    })
}

fn reachables<P: Protocol>(cfg: &RunConfig) -> Vec<usize> {
    P::properties()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == PropertyKind::Reachable && !cfg.skips(p.name))
        .map(|(i, _)| i)
        .collect()
}

/// Every instance of every liveness property, with its bits.
fn goals<P: Protocol>(sys: &System<P>) -> Result<Vec<Goal>, String> {
    let mut out = Vec::new();
    let mut bit = reachables::<P>(&sys.cfg).len() as u32;
    for (i, p) in P::properties().iter().enumerate() {
        if sys.cfg.skips(p.name) {
            continue;
        }
        match p.kind {
            PropertyKind::Eventually => {
                out.push(Goal {
                    prop: i,
                    binding: vec![],
                    from_bit: bit,
                    to_bit: None,
                });
                bit += 1;
            }
            PropertyKind::LeadsTo => {
                // Every combination of the binders' instances.
                let mut bindings: Vec<Vec<usize>> = vec![vec![]];
                for b in p.binders {
                    let ids: Vec<usize> = match b {
                        BinderKind::Role(r) => sys
                            .layout
                            .roles
                            .get(*r)
                            .map(|ids| ids.iter().map(|i| usize::from(*i)).collect())
                            .unwrap_or_default(),
                        BinderKind::Client => (sys.first_client..sys.actors.len()).collect(),
                    };
                    bindings = bindings
                        .into_iter()
                        .flat_map(|prefix| ids.iter().map(move |i| [prefix.clone(), vec![*i]].concat()))
                        .collect();
                }
                for binding in bindings {
                    out.push(Goal {
                        prop: i,
                        binding,
                        from_bit: bit,
                        to_bit: Some(bit + 1),
                    });
                    bit += 2;
                }
            }
            _ => {}
        }
        if bit > 63 {
            return Err(TOO_MANY_BITS.into());
        }
    }
    Ok(out)
}

fn class_of<P: Protocol>(sys: &System<P>, s: &SysState<P>, a: &Action<P>) -> Option<u64> {
    let h = |t: &dyn Fn(&mut ahash::AHasher)| {
        use std::hash::Hasher;
        let mut s = ahash::AHasher::default();
        t(&mut s);
        s.finish()
    };
    Some(match a {
        Action::Deliver { src, dst, msg } => {
            // On a duplicating network a message delivered before and not
            // sent since is owed nothing: delivering it again may happen,
            // fairness does not require it (`net.rs`).
            // (Other networks owe every message in flight: no envelope is
            // built for them, this runs for every edge of the graph.)
            if matches!(s.net, crate::net::Net::Owed(_)) {
                let env = crate::net::Env {
                    src: *src,
                    dst: *dst,
                    msg: msg.clone(),
                };
                if !s.net.owed(&env) {
                    return None;
                }
            }
            if matches!(sys.cfg.network, smelt_support::NetworkKind::Ordered) {
                h(&|s| (1u8, src, dst).hash(s))
            } else {
                h(&|s| (2u8, src, dst, msg).hash(s))
            }
        }
        Action::Timeout { node, timer } => h(&|s| (3u8, node, timer).hash(s)),
        Action::Recover(n) => h(&|s| (4u8, n).hash(s)),
        // Each outcome of a random choice is its own, strongly fair, class.
        Action::Choose { node, key, value } => h(&|s| (5u8, node, key, value).hash(s)),
        Action::Drop { .. } | Action::Crash(_) | Action::Stop(_) | Action::Torn(_) | Action::Calm => return None,
    })
}

/// What exploring returns: the state graph, the depth at which each
/// `reachable` was first reached, why exploring stopped early (the memory
/// budget), if it did, and the bytes the fingerprint index spilled to disk.
struct Explored {
    graph: Graph,
    reached: HashMap<usize, u32>,
    stopped: Option<String>,
    index_disk_bytes: u64,
}

/// Explores the whole graph, breadth first.
fn explore<P: Protocol>(
    sys: &System<P>,
    goals: &[Goal],
    progress: Option<Duration>,
    start: Instant,
    budget: &crate::memory::Budget,
    baseline: u64,
) -> Result<Explored, String> {
    let cache = Cache::default();
    let canon = |s: SysState<P>| if sys.cfg.symmetry { canonical(sys, s) } else { s };
    let reach = reachables::<P>(&sys.cfg);
    let dir = sys.cfg.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
    // Fingerprint → state index: the visited set's table (16 bytes a slot,
    // grown by a quarter; a hash map doubled to 2.3 GiB at 63 million
    // states). Past three eighths of the budget it spills to sorted runs on
    // disk, as a safety search's does (or past the hidden `--visited-ram`);
    // the rest of the graph in RAM is about 13 bytes a state.
    let mut index = Table::new(true);
    let share = budget.bytes / 8 * 3;
    index.spill_to_disk(sys.cfg.visited_ram.map_or(share, |v| v.min(share)), dir.clone());
    let calm_bit = goals
        .iter()
        .map(|g| g.to_bit.unwrap_or(g.from_bit) + 1)
        .max()
        .unwrap_or(0)
        .max(reach.len() as u32);
    assert!(calm_bit < 64, "goals() keeps the property bits below 63");
    let mut g = Builder::new(calm_bit, &dir)?;
    let mut classes: HashMap<u64, u32> = HashMap::new();
    let mut reached: HashMap<usize, u32> = HashMap::new();
    let bits_of = |s: &SysState<P>| -> u64 {
        let mut b = 0u64;
        for (k, &p) in reach.iter().enumerate() {
            if eval(sys, s, PropId::Spec(p), &cache) == Eval::Holds {
                b |= 1 << k;
            }
        }
        for goal in goals {
            let (from, to) = match goal.to_bit {
                None => (P::eval(goal.prop, s).unwrap_or(false), false),
                Some(_) => (
                    P::eval_leads_to(goal.prop, s, &goal.binding, false).unwrap_or(false),
                    P::eval_leads_to(goal.prop, s, &goal.binding, true).unwrap_or(false),
                ),
            };
            if from {
                b |= 1 << goal.from_bit;
            }
            if let (Some(tb), true) = (goal.to_bit, to) {
                b |= 1 << tb;
            }
        }
        b
    };
    let init = canon(sys.init());
    let fp0 = fingerprint(&init);
    index.insert(fp0, 0);
    g.push_state(fp0, bits_of(&init), init.calm);
    // A step the check's bound cuts is enabled but leads out of what is
    // checked. It becomes an edge to `sink` (a node that is never calm, so
    // never part of a counterexample): a state with such a step is not
    // stuck (unless fairness never requires the step), and a loop that
    // never takes it is not fair — a behaviour that leaves the bound is
    // not explored, so it cannot be a counterexample (the report says how
    // many steps the bound cut).
    let sink = sys.cfg.bound.is_some().then(|| {
        g.push_state(0, 0, false);
        1u32
    });
    // The states still to expand, in index order, as encoded chunks (the
    // BFS frontier's layout, `frontier.rs`): live states cost kilobytes
    // each, and the queue was most of a large graph's memory. States are
    // expanded in index order, so edges can be stored as CSR.
    let store = Store::new(dir.clone());
    let mut enc = Encoder::<P>::default();
    let first = Sink::default();
    enc.push(init, fp0, &store.keys);
    first.push(&store, enc.finish(), true)?;
    let mut level = first.finish();
    let mut depth = 0u32;
    let mut actions = Vec::new();
    // The expanded state's edges, appended to the graph as one run.
    let mut out: Vec<Edge> = Vec::new();
    let mut next_progress = progress.map(|p| start + p);
    let mut expected = 0u32;
    // Chunks go to disk when the graph and the frontier in RAM would pass
    // the frontier's share of the budget.
    let place = |next: &Sink, chunk: Sealed, g: &Builder, index: &Table| -> Result<(), String> {
        let held = g.bytes() + index.allocated_bytes() as u64;
        let ram = store.ram_bytes.load(std::sync::atomic::Ordering::Relaxed) + chunk.len() as u64;
        next.push(&store, chunk, ram <= budget.frontier_ram_max(held))
    };
    let stop = |g: Builder, reached, why: String, index: &Table| -> Result<Explored, String> {
        Ok(Explored {
            graph: g.abandon(),
            reached,
            stopped: Some(why),
            index_disk_bytes: index.disk_bytes(),
        })
    };
    while !level.is_empty() {
        let next = Sink::default();
        for c in 0..level.len() {
            let (raw, count) = level.take(c, &store)?;
            let mut dec = Decoder::<P>::new(&raw, count, sys.empty_net(), &store.keys);
            while let Some((s, _)) = dec.next_state()? {
                let i = expected;
                expected += 1;
                // The graph and the queue of states to expand are this search's
                // memory: past the budget it stops (verdicts unknown) rather than
                // being killed.
                if expected.is_multiple_of(4096) {
                    if let Some(why) = crate::memory::over_budget(budget, baseline, g.fps.len() as u64) {
                        return stop(g, reached, why, &index);
                    }
                    if let Some(why) = index.error() {
                        return stop(g, reached, why, &index);
                    }
                }
                let bits = g.bits.get(i as usize);
                for (k, &p) in reach.iter().enumerate() {
                    if bits & (1 << k) != 0 {
                        reached.entry(p).or_insert(depth);
                    }
                }
                actions.clear();
                out.clear();
                sys.actions(s, &mut actions);
                for a in &actions {
                    let cut_before = sys.cut.load(std::sync::atomic::Ordering::Relaxed);
                    let step = sys.next(s, a);
                    let cut = step.is_none() && sys.cut.load(std::sync::atomic::Ordering::Relaxed) > cut_before;
                    if step.is_none() && !cut {
                        continue;
                    }
                    let class = match class_of(sys, s, a) {
                        Some(h) => {
                            let n = classes.len() as u32;
                            let c = *classes.entry(h).or_insert(n);
                            if c == n {
                                // Timers are strongly fair too: a timer enabled again
                                // and again (between messages in flight to its node)
                                // fires. Otherwise a client bouncing between servers
                                // with redirects could block every election forever
                                // by keeping one message in flight — a Zeno behaviour
                                // (infinitely many deliveries before a timeout) that
                                // real time excludes.
                                g.strong
                                    .push(matches!(a, Action::Choose { .. } | Action::Timeout { .. }));
                            }
                            c
                        }
                        None => NO_CLASS,
                    };
                    let Some(t) = step else {
                        if let Some(k) = sink {
                            out.push(Edge { to: k, class });
                            g.sink_edges += 1;
                        }
                        continue;
                    };
                    let t = canon(t);
                    let tfp = fingerprint(&t);
                    let j = match index.parent(tfp) {
                        Some(j) => j as u32,
                        None => {
                            if g.fps.len() >= STATES_MAX {
                                return Err(format!(
                                    "the state graph exceeds {STATES_MAX} states, the most liveness can analyse"
                                ));
                            }
                            let j = g.fps.len() as u32;
                            index.insert(tfp, j as u64);
                            g.push_state(tfp, bits_of(&t), t.calm);
                            g.max_depth = depth + 1;
                            enc.push(t, tfp, &store.keys);
                            if enc.full() {
                                place(&next, enc.finish(), &g, &index)?;
                            }
                            j
                        }
                    };
                    out.push(Edge { to: j, class });
                }
                // A full disk stops the search (verdicts unknown), as the
                // frontier's and the index's disk errors do.
                let mut pushed = g.push_edges(&out);
                if sink == Some(i + 1) && pushed.is_ok() {
                    // The sink is never expanded: no edges.
                    pushed = g.push_edges(&[]);
                    expected += 1;
                }
                if let Err(why) = pushed {
                    return stop(g, reached, why, &index);
                }
                if let (Some(at), Some(every)) = (next_progress, progress) {
                    if Instant::now() >= at {
                        next_progress = Some(at + every);
                        let secs = start.elapsed().as_secs_f64().max(1e-9);
                        eprintln!(
                            "  ... {} states, {} edges, {:.0} states/s, {}",
                            g.fps.len(),
                            g.edges.len(),
                            g.fps.len() as f64 / secs,
                            peak_rss().map(format_bytes).unwrap_or_default()
                        );
                    }
                }
                if let Some(max) = sys.cfg.max_states {
                    if g.fps.len() as u64 >= max {
                        return Err(format!(
                            "liveness needs the whole state graph, which exceeds max_states = {max}; raise it or shrink the config"
                        ));
                    }
                }
            }
        }
        if !enc.is_empty() {
            place(&next, enc.finish(), &g, &index)?;
        }
        level = next.finish();
        depth += 1;
    }
    if let Some(why) = index.error() {
        return stop(g, reached, why, &index);
    }
    Ok(Explored {
        graph: g.finish()?,
        reached,
        stopped: None,
        index_disk_bytes: index.disk_bytes(),
    })
}

/// Finds a fair lasso violating one goal instance: the prefix (a path of
/// state indices from the start, excluding it) and the loop (indices; empty
/// for a deadlock). Picks the violation with the shortest prefix.
fn find_lasso(g: &Graph, goal: &Goal, progress: bool) -> Option<(Vec<u32>, Vec<u32>)> {
    let n = g.len();
    let note = |what: String| {
        if progress {
            let field = |k| {
                crate::memory::proc_field("/proc/self/status", k)
                    .map(format_bytes)
                    .unwrap_or_default()
            };
            eprintln!(
                "  ... cycle analysis: {what}, {} resident ({} anonymous, {} of files)",
                field("VmRSS"),
                field("RssAnon"),
                field("RssFile")
            );
        }
    };
    assert!(n <= STATES_MAX, "explore keeps the graph within {STATES_MAX} states");
    // Product node: state * 2 + monitor bit. For `eventually`, the monitor
    // is "the goal has not happened yet" and starts at 1.
    let monitor = |i: u32, m: bool| -> Option<bool> {
        match goal.to_bit {
            None => (!g.bit(i, goal.from_bit)).then_some(true),
            Some(tb) => {
                let pending = (m || g.bit(i, goal.from_bit)) && !g.bit(i, tb);
                Some(pending)
            }
        }
    };
    let m0 = monitor(0, false)?;
    note("start".into());
    // BFS over the product from the start: each node's discovery number
    // (BFS discovers in order of depth, so the entry discovered first has
    // the shortest prefix) and parent.
    let mut order = vec![NONE; 2 * n];
    let mut parent = vec![NONE; 2 * n];
    let start = m0 as u32;
    order[start as usize] = 0;
    let mut discovered = 1u32;
    let mut q = VecDeque::from([start]);
    while let Some(x) = q.pop_front() {
        let (i, m) = (x / 2, x % 2 == 1);
        for e in g.succ(i) {
            let Some(mj) = monitor(e.to, m) else { continue };
            let y = e.to * 2 + mj as u32;
            if order[y as usize] == NONE {
                order[y as usize] = discovered;
                discovered += 1;
                parent[y as usize] = x;
                q.push_back(y);
            }
        }
    }
    note(format!("{discovered} product nodes reached"));
    // Candidates: reachable, monitor set, calm.
    let cand = |x: u32| order[x as usize] != NONE && x % 2 == 1 && g.calm(x / 2);
    let succ = |x: u32, out: &mut Vec<(u32, u32)>| {
        out.clear();
        let (i, m) = (x / 2, x % 2 == 1);
        for e in g.succ(i) {
            if let Some(mj) = monitor(e.to, m) {
                out.push((e.to * 2 + mj as u32, e.class));
            }
        }
    };
    let mut best: Option<(u32, Vec<u32>)> = None; // (entry node, component)
    let mut consider = |comp: &[u32], is_deadlock: bool| {
        let entry = *comp.iter().min_by_key(|x| order[**x as usize]).unwrap_or(&comp[0]);
        if best
            .as_ref()
            .is_none_or(|(e, _)| order[entry as usize] < order[*e as usize])
        {
            // Sorted, the loop printed does not depend on the order in
            // which the analysis met the component's nodes. Copied only
            // when it is the best so far: a component may be most of the
            // graph.
            let mut kept = if is_deadlock { vec![] } else { comp.to_vec() };
            kept.sort_unstable();
            best = Some((entry, kept));
        }
    };
    let mut marks = vec![0u32; 2 * n];
    scc(
        &mut marks,
        (0..2 * n as u32).filter(|x| cand(*x)),
        &cand,
        &succ,
        &mut |comp, member| {
            // A calm state short of the goal where fairness requires
            // nothing — no successor at all, or only deliveries of
            // duplicates owed nothing, which may happen but need not: a
            // behaviour may stop there. (Before 2026-12-07 only a state
            // with no successor counted, so a run that waited for a
            // duplicate the network need never deliver passed.)
            // Of several, the one BFS discovered first: the shortest prefix.
            if let Some(&stuck) = comp
                .iter()
                .filter(|x| g.succ(**x / 2).iter().all(|e| e.class == NO_CLASS))
                .min_by_key(|x| order[**x as usize])
            {
                consider(&[stuck], true);
                if comp.len() == 1 {
                    return;
                }
            }
            if comp.len() >= BIG_COMPONENT {
                note(format!("a component of {} nodes", comp.len()));
            }
            if let Some(part) = fair_part(g, comp, member, &succ, &note) {
                consider(&part, false);
            }
        },
    );
    drop(marks);
    note("components done".into());
    let (entry, comp) = best?;
    // Prefix: BFS parents from the entry back to the start.
    let mut prefix = vec![];
    let mut x = entry;
    while x != start {
        prefix.push(x / 2);
        x = parent[x as usize];
        if x == NONE {
            return None;
        }
    }
    prefix.reverse();
    if comp.is_empty() {
        return Some((prefix, vec![]));
    }
    drop((order, parent));
    let cycle = fair_cycle(g, entry, &comp, &succ);
    Some((prefix, cycle.into_iter().map(|x| x / 2).collect()))
}

/// The classes enabled in every state of a component, and whether each is
/// taken by an edge inside it.
fn required_classes(g: &Graph, comp: &[u32], inside: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> (Vec<u32>, Vec<u32>) {
    let mut required: Option<Vec<u32>> = None;
    let mut taken: HashSet<u32> = HashSet::new();
    let mut buf = Vec::new();
    for &x in comp {
        let mut enabled: Vec<u32> = g
            .succ(x / 2)
            .iter()
            .map(|e| e.class)
            .filter(|c| *c != NO_CLASS)
            .collect();
        enabled.sort_unstable();
        enabled.dedup();
        required = Some(match required {
            None => enabled,
            Some(r) => r.into_iter().filter(|c| enabled.binary_search(c).is_ok()).collect(),
        });
        succ(x, &mut buf);
        for &(y, c) in &buf {
            if c != NO_CLASS && inside(y) {
                taken.insert(c);
            }
        }
    }
    let mut taken: Vec<u32> = taken.into_iter().collect();
    taken.sort_unstable();
    (required.unwrap_or_default(), taken)
}

/// Whether a non-trivial component's cycle through all of it is fair: every
/// weakly fair class enabled throughout it, and every strongly fair class
/// enabled anywhere in it, is taken inside it. `inside` tells its nodes.
fn fair(g: &Graph, comp: &[u32], inside: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> bool {
    unfair_strong(g, comp, inside, succ).is_some_and(|bad| bad.is_empty())
}

/// `None` if a weakly fair class is enabled throughout `comp` but never taken
/// inside it (no cycle inside can be fair); otherwise the strongly fair
/// classes enabled somewhere in `comp` but never taken inside it.
fn unfair_strong(g: &Graph, comp: &[u32], inside: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> Option<Vec<u32>> {
    let (required, taken) = required_classes(g, comp, inside, succ);
    if !required.iter().all(|c| taken.binary_search(c).is_ok()) {
        return None;
    }
    // A set, not a list of every edge's class: a component may be most
    // of the graph.
    let bad: HashSet<u32> = comp
        .iter()
        .flat_map(|x| g.succ(x / 2).iter().map(|e| e.class))
        .filter(|c| *c != NO_CLASS && g.strong.get(*c as usize).copied().unwrap_or(false))
        .filter(|c| taken.binary_search(c).is_err())
        .collect();
    let mut bad: Vec<u32> = bad.into_iter().collect();
    bad.sort_unstable();
    Some(bad)
}

/// A fair strongly connected part of `comp` (whose nodes `member` tells),
/// if there is one (the Streett refinement for strong fairness): while a
/// strongly fair class is enabled somewhere but never taken, drop the
/// states that enable it and look again in what remains.
fn fair_part<'c>(
    g: &Graph,
    comp: &'c [u32],
    member: &dyn Fn(u32) -> bool,
    succ: &Succ<'_>,
    note: &dyn Fn(String),
) -> Option<Cow<'c, [u32]>> {
    // A component and how to tell its nodes: the first by `member`, each
    // refinement by binary search in its sorted nodes (the first may be
    // most of the graph: it is neither copied nor put in a set).
    let mut work: Vec<Cow<'c, [u32]>> = vec![Cow::Borrowed(comp)];
    let mut buf = Vec::new();
    while let Some(comp) = work.pop() {
        let first = matches!(comp, Cow::Borrowed(_));
        let inside = |y: u32| {
            if first {
                member(y)
            } else {
                comp.binary_search(&y).is_ok()
            }
        };
        if comp.len() == 1 {
            succ(comp[0], &mut buf);
            if !buf.iter().any(|(y, _)| *y == comp[0]) {
                continue;
            }
        }
        let Some(bad) = unfair_strong(g, &comp, &inside, succ) else {
            continue;
        };
        if bad.is_empty() {
            return Some(comp);
        }
        let keep: Vec<u32> = {
            let mut keep: Vec<u32> = comp
                .iter()
                .copied()
                .filter(|x| !g.succ(x / 2).iter().any(|e| bad.binary_search(&e.class).is_ok()))
                .collect();
            keep.sort_unstable();
            keep
        };
        if keep.len() >= BIG_COMPONENT {
            note(format!(
                "refining {} nodes to the {} that never enable strongly fair class(es) {bad:?}",
                comp.len(),
                keep.len()
            ));
        }
        drop(comp);
        // Membership by a bit per product node; Pearce's marks in a vector
        // over all product nodes when the part is a large share of them
        // (untouched pages of a zeroed allocation cost nothing), else in a
        // map (about sixteen bytes a node).
        let mut kept = vec![0u64; (2 * g.len()).div_ceil(64)];
        for &x in &keep {
            kept[x as usize / 64] |= 1 << (x % 64);
        }
        let is_kept = |y: u32| kept[y as usize / 64] >> (y % 64) & 1 == 1;
        let mut emit = |part: &[u32], _: &dyn Fn(u32) -> bool| {
            let mut part = part.to_vec();
            part.sort_unstable();
            work.push(Cow::Owned(part));
        };
        if keep.len() * 16 >= 2 * g.len() * 4 {
            let mut marks = vec![0u32; 2 * g.len()];
            scc(&mut marks, keep.iter().copied(), &is_kept, succ, &mut emit);
        } else {
            let mut marks: HashMap<u32, u32> = HashMap::new();
            scc(&mut marks, keep.iter().copied(), &is_kept, succ, &mut emit);
        }
    }
    None
}

/// A loop from `entry` back to itself inside the component that is fair, as
/// product nodes after `entry`. The shortest loop is used when it is fair on
/// its own; otherwise the loop walks through an edge of every class the
/// whole component requires, and then, while the loop so far is not fair
/// on its own (a class enabled at every state it passes but never taken on
/// it), also through an edge of that class or a state where it is not
/// enabled: the loop printed must be a fair behaviour by itself.
fn fair_cycle(g: &Graph, entry: u32, comp: &[u32], succ: &Succ<'_>) -> Vec<u32> {
    // `consider` sorted the component.
    debug_assert!(comp.windows(2).all(|w| w[0] < w[1]), "a component's nodes are sorted");
    let inside = |y: u32| comp.binary_search(&y).is_ok();
    if let Some(short) = bfs_path(entry, &inside, succ, |y, _| y == entry) {
        let mut nodes = vec![entry];
        nodes.extend(short.iter().take(short.len().saturating_sub(1)).copied());
        let on_loop: std::collections::HashSet<u32> = nodes.iter().copied().collect();
        if fair(g, &nodes, &|y| on_loop.contains(&y), succ) {
            return short;
        }
    }
    let (required, _) = required_classes(g, comp, &inside, succ);
    let mut goals: Vec<Waypoint> = required.into_iter().map(Waypoint::Class).collect();
    // Strongly fair classes enabled anywhere in the component must be taken
    // too (the component was refined so that each one is, inside it).
    for &x in comp {
        for &Edge { class: c, .. } in g.succ(x / 2) {
            if c != NO_CLASS
                && g.strong.get(c as usize).copied().unwrap_or(false)
                && !goals.contains(&Waypoint::Class(c))
            {
                goals.push(Waypoint::Class(c));
            }
        }
    }
    let enabled_at = |x: u32, c: u32| g.succ(x / 2).iter().any(|e| e.class == c);
    let mut path = Vec::new();
    // Each round adds a goal for a class the loop leaves unfair; a
    // component that is fair has a fair loop through all of it, so this
    // ends (the bound only guards against a bug here).
    for _ in 0..=comp.len().min(4096) {
        path = walk(entry, &goals, &inside, succ, &enabled_at);
        let mut nodes = vec![entry];
        nodes.extend(path.iter().take(path.len().saturating_sub(1)).copied());
        let on_loop: std::collections::HashSet<u32> = nodes.iter().copied().collect();
        let on = |y: u32| on_loop.contains(&y);
        let (need, taken) = required_classes(g, &nodes, &on, succ);
        let Some(&c) = need.iter().find(|c| taken.binary_search(c).is_err()) else {
            break;
        };
        goals.push(if goals.contains(&Waypoint::Class(c)) {
            Waypoint::Avoid(c)
        } else {
            Waypoint::Class(c)
        });
    }
    path
}

/// What a printed loop must pass through: an edge of a class, or a state
/// where a class is not enabled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waypoint {
    Class(u32),
    Avoid(u32),
}

/// The walk from `entry` through each goal in turn and back to `entry`
/// (at least one step), inside the component.
fn walk(
    entry: u32,
    goals: &[Waypoint],
    inside: &dyn Fn(u32) -> bool,
    succ: &Succ<'_>,
    enabled_at: &dyn Fn(u32, u32) -> bool,
) -> Vec<u32> {
    let mut path: Vec<u32> = Vec::new();
    let mut cur = entry;
    for goal in goals {
        let p = match *goal {
            Waypoint::Class(c) => bfs_path(cur, inside, succ, |_, cls| cls == c),
            Waypoint::Avoid(c) => bfs_path(cur, inside, succ, |y, _| !enabled_at(y, c)),
        };
        if let Some(p) = p {
            cur = *p.last().unwrap_or(&cur);
            path.extend(p);
        }
    }
    if let Some(p) = bfs_path(cur, inside, succ, |y, _| y == entry) {
        path.extend(p);
    }
    path
}

/// Shortest path inside the component from `from` whose last edge satisfies
/// `done(target, class)`; returns the nodes after `from`.
fn bfs_path(
    from: u32,
    inside: &dyn Fn(u32) -> bool,
    succ: &Succ<'_>,
    done: impl Fn(u32, u32) -> bool,
) -> Option<Vec<u32>> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut q = VecDeque::from([from]);
    let mut buf = Vec::new();
    let mut seen = std::collections::HashSet::from([from]);
    while let Some(x) = q.pop_front() {
        succ(x, &mut buf);
        for &(y, c) in &buf {
            if !inside(y) {
                continue;
            }
            if done(y, c) {
                let mut path = vec![y];
                let mut z = x;
                while z != from {
                    path.push(z);
                    z = parent[&z];
                }
                path.reverse();
                return Some(path);
            }
            if seen.insert(y) {
                parent.insert(y, x);
                q.push_back(y);
            }
        }
    }
    None
}

/// What receives each strongly connected component: its nodes and a test
/// of membership in it.
type Emit<'a> = dyn FnMut(&[u32], &dyn Fn(u32) -> bool) + 'a;

/// Per node, the word of Pearce's algorithm (0: not visited yet): a vector
/// over all product nodes, or a map for a component's refinement.
trait Marks {
    fn get(&self, x: u32) -> u32;
    fn set(&mut self, x: u32, v: u32);
}

impl Marks for Vec<u32> {
    fn get(&self, x: u32) -> u32 {
        self[x as usize]
    }
    fn set(&mut self, x: u32, v: u32) {
        self[x as usize] = v;
    }
}

impl Marks for HashMap<u32, u32> {
    fn get(&self, x: u32) -> u32 {
        self.get(&x).copied().unwrap_or(0)
    }
    fn set(&mut self, x: u32, v: u32) {
        self.insert(x, v);
    }
}

/// The strongly connected components among the nodes `cand` holds for,
/// searched from `roots`, each passed to `emit` with a test of membership,
/// in the order Tarjan's algorithm completes them. This is Pearce's
/// variant ("A space-efficient algorithm for finding strongly connected
/// components", 2016), iterative: one word per node (`marks`) instead of
/// Tarjan's index, low link and on-stack flag. A node's word is its visit
/// number while it is open, the least visit number it reaches once it is
/// not a root, and its component's number (counted down from
/// `u32::MAX - 1`, above every visit number) once its component is out.
fn scc<M: Marks>(
    marks: &mut M,
    roots: impl Iterator<Item = u32>,
    cand: &dyn Fn(u32) -> bool,
    succ: &Succ<'_>,
    emit: &mut Emit<'_>,
) {
    let mut visit = 1u32;
    let mut component = u32::MAX - 1;
    // Nodes done but not yet in a component.
    let mut stack: Vec<u32> = Vec::new();
    // The depth-first path: (node, next successor to look at, still a root).
    let mut frames: Vec<(u32, u32, bool)> = Vec::new();
    let mut buf = Vec::new();
    let mut comp = Vec::new();
    for root in roots {
        if !cand(root) || marks.get(root) != 0 {
            continue;
        }
        marks.set(root, visit);
        visit += 1;
        frames.push((root, 0, true));
        while let Some(&(v, pos, _)) = frames.last() {
            // Look at v's successors from `pos` until one is new.
            succ(v, &mut buf);
            let mut k = pos as usize;
            let mut child = None;
            while k < buf.len() {
                let w = buf[k].0;
                k += 1;
                if !cand(w) {
                    continue;
                }
                if marks.get(w) == 0 {
                    child = Some(w);
                    break;
                }
                if marks.get(w) < marks.get(v) {
                    marks.set(v, marks.get(w));
                    frames.last_mut().expect("v's frame").2 = false;
                }
            }
            frames.last_mut().expect("v's frame").1 = k as u32;
            if let Some(w) = child {
                assert!(visit < component, "visit numbers stay below component numbers");
                marks.set(w, visit);
                visit += 1;
                frames.push((w, 0, true));
                continue;
            }
            let (v, _, is_root) = frames.pop().expect("v's frame");
            if is_root {
                // v and what is stacked above its visit number form a component.
                visit -= 1;
                comp.clear();
                comp.push(v);
                while let Some(&w) = stack.last() {
                    if marks.get(v) > marks.get(w) {
                        break;
                    }
                    stack.pop();
                    marks.set(w, component);
                    visit -= 1;
                    comp.push(w);
                }
                marks.set(v, component);
                let done: &M = marks;
                let id = component;
                emit(&comp, &|y| cand(y) && done.get(y) == id);
                component -= 1;
            } else {
                stack.push(v);
            }
            if let Some(&(u, _, _)) = frames.last() {
                if marks.get(v) < marks.get(u) {
                    marks.set(u, marks.get(v));
                    frames.last_mut().expect("u's frame").2 = false;
                }
            }
        }
    }
    debug_assert!(stack.is_empty(), "every node ends in a component");
}

fn describe_binding<P: Protocol>(sys: &System<P>, g: &Goal) -> String {
    if g.binding.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = g.binding.iter().map(|i| node_name(sys, Id::from(*i))).collect();
        format!(" (for {})", names.join(", "))
    }
}

type LassoOut = (Option<Vec<crate::trace::JsonStep>>, Option<String>);

fn lasso_trace<P: Protocol>(
    sys: &System<P>,
    g: &Graph,
    prefix: &[u32],
    cycle: &[u32],
    name: &str,
    binding: &str,
) -> LassoOut {
    let mut fps: Vec<Fp> = vec![g.fps[0]];
    fps.extend(prefix.iter().map(|i| g.fps[*i as usize]));
    fps.extend(cycle.iter().map(|i| g.fps[*i as usize]));
    let Some(mut trace) = replay(sys, &fps) else {
        return (None, Some("  (the counterexample could not be rebuilt)\n".into()));
    };
    // A deadlock has no loop to go back to: its trace ends in the stuck
    // state (marked below), not in a "back to step" line.
    trace.loop_start = (!cycle.is_empty()).then_some(prefix.len());
    let mut text = String::new();
    let kind = if cycle.is_empty() { "deadlock" } else { "lasso" };
    let _ = writeln!(
        text,
        "counterexample ({kind}) for {name}{binding}: {} steps, then {}:",
        prefix.len(),
        if cycle.is_empty() {
            "nothing fairness requires can happen any more".to_string()
        } else {
            format!("a loop of {} steps forever", cycle.len())
        }
    );
    text.push_str(&render(sys, &trace));
    if cycle.is_empty() {
        let _ = writeln!(
            text,
            "  ---- stuck: no action is enabled, and the goal never holds ----"
        );
    }
    let at = if cycle.is_empty() {
        "where it is stuck"
    } else {
        "at the loop"
    };
    let _ = writeln!(text, "    node states {at}:");
    text.push_str(&crate::trace::render_nodes(sys, trace.last()));
    (Some(steps(sys, &trace)), Some(text))
}

/// The client histories of a state, one line per client.
pub fn render_history<P: Protocol>(sys: &System<P>, s: &SysState<P>) -> String {
    let mut out = String::from("    client histories:\n");
    for (c, ops) in s.history.clients.iter().enumerate() {
        let id = Id::from(sys.first_client + c);
        let ops: Vec<String> = ops
            .iter()
            .map(|o| match &o.ret {
                Some(r) => format!("{} → {}", show(sys, &o.req), show(sys, r)),
                None => format!("{} → (in flight)", show(sys, &o.req)),
            })
            .collect();
        let _ = writeln!(out, "      {}: {}", node_name(sys, id), ops.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built graph: `edges[i]` lists `(target, class)`; the goal
    /// (bit 0) holds at `goal_at`; every state is calm.
    fn graph(edges: Vec<Vec<(u32, u32)>>, goal_at: &[u32]) -> Graph {
        graph_with(edges, goal_at, &[])
    }

    /// The same, with the states of `not_calm` not calm.
    fn graph_with(edges: Vec<Vec<(u32, u32)>>, goal_at: &[u32], not_calm: &[u32]) -> Graph {
        let mut b = Builder::new(2, &std::env::temp_dir()).expect("edge file");
        b.strong = vec![false; 16];
        for i in 0..edges.len() as u32 {
            b.push_state(
                u64::from(i) + 1,
                u64::from(goal_at.contains(&i)),
                !not_calm.contains(&i),
            );
        }
        for es in &edges {
            let run: Vec<Edge> = es.iter().map(|&(to, class)| Edge { to, class }).collect();
            b.push_edges(&run).expect("write");
        }
        b.finish().expect("map")
    }

    /// Sets state `i`'s property bits (its calm bit stays).
    fn set_bits(g: &mut Graph, i: usize, bits: u64) {
        let calm = g.bits.get(i) & (1 << g.calm_bit);
        g.bits.set(i, bits | calm);
    }

    fn eventually() -> Goal {
        Goal {
            prop: 0,
            binding: vec![],
            from_bit: 0,
            to_bit: None,
        }
    }

    #[test]
    fn a_cycle_that_never_reaches_the_goal_is_a_lasso() {
        // 0 → 1 → 2 → 0, goal at 3 which is never reached.
        let g = graph(vec![vec![(1, 0)], vec![(2, 1)], vec![(0, 2)], vec![]], &[3]);
        let (prefix, cycle) = find_lasso(&g, &eventually(), false).expect("violation");
        assert!(prefix.is_empty(), "the loop starts at the initial state");
        assert_eq!(cycle.len(), 3);
        assert_eq!(*cycle.last().unwrap(), 0);
    }

    #[test]
    fn removing_the_cycle_makes_it_hold() {
        // 0 → 1 → 2 → 3 (goal).
        let g = graph(vec![vec![(1, 0)], vec![(2, 1)], vec![(3, 2)], vec![(3, 3)]], &[3]);
        assert!(find_lasso(&g, &eventually(), false).is_none());
    }

    #[test]
    fn an_unfair_cycle_is_not_a_violation() {
        // 0 ⇄ 1 loops on class 0, but class 7 (say, delivering a message
        // to the goal) is enabled in both states and never taken: weak
        // fairness rules the loop out.
        let g = graph(vec![vec![(1, 0), (2, 7)], vec![(0, 0), (2, 7)], vec![(2, 9)]], &[2]);
        assert!(find_lasso(&g, &eventually(), false).is_none());
    }

    #[test]
    fn a_class_disabled_somewhere_in_the_cycle_does_not_save_it() {
        // Class 7 is enabled in state 0 only: the loop through 1 is fair.
        let g = graph(vec![vec![(1, 0), (2, 7)], vec![(0, 0)], vec![(2, 9)]], &[2]);
        let (_, cycle) = find_lasso(&g, &eventually(), false).expect("violation");
        assert_eq!(cycle.len(), 2);
    }

    #[test]
    fn a_deadlock_short_of_the_goal_is_a_violation() {
        let g = graph(vec![vec![(1, 0)], vec![]], &[]);
        let (prefix, cycle) = find_lasso(&g, &eventually(), false).expect("deadlock");
        assert_eq!((prefix, cycle), (vec![1], vec![]));
    }

    #[test]
    fn a_state_where_only_unowed_duplicates_remain_is_stuck() {
        // 0 → 1, and from 1 only a classless edge (a duplicate the network
        // may deliver again but need not) leads to the goal at 2.
        let g = graph(vec![vec![(1, 0)], vec![(2, NO_CLASS)], vec![]], &[2]);
        let (prefix, cycle) = find_lasso(&g, &eventually(), false).expect("stuck at 1");
        assert_eq!((prefix, cycle), (vec![1], vec![]));
        // A classed edge there is one fairness requires: it holds.
        let g = graph(vec![vec![(1, 0)], vec![(2, 3)], vec![]], &[2]);
        assert!(find_lasso(&g, &eventually(), false).is_none());
    }

    #[test]
    fn faults_before_calm_do_not_count() {
        // The loop 0 ⇄ 1 is not calm (faults may still happen): ignored.
        let g = graph_with(vec![vec![(1, 0)], vec![(0, 1)], vec![]], &[2], &[0, 1]);
        assert!(find_lasso(&g, &eventually(), false).is_none());
    }

    #[test]
    fn leads_to_needs_the_trigger_first() {
        // 0 → 1 (trigger P) → 2 ⇄ 3, Q never holds after 1.
        let mut g = graph(vec![vec![(1, 0)], vec![(2, 1)], vec![(3, 2)], vec![(2, 3)]], &[]);
        set_bits(&mut g, 1, 1); // P at 1
        let goal = Goal {
            prop: 0,
            binding: vec![],
            from_bit: 0,
            to_bit: Some(1),
        };
        let (prefix, cycle) = find_lasso(&g, &goal, false).expect("violation");
        assert_eq!(prefix.first(), Some(&1));
        assert_eq!(cycle.len(), 2);
        // If Q holds in 3, every loop passes through Q: it holds.
        set_bits(&mut g, 3, 2);
        assert!(find_lasso(&g, &goal, false).is_none());
    }

    /// The components `scc` finds on random graphs are those of mutual
    /// reachability, completed in Tarjan's order (each after every
    /// component it reaches), through both kinds of marks.
    #[test]
    fn components_are_mutual_reachability_in_completion_order() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(m)) as u32
        };
        for round in 0..200 {
            let n = 1 + rand(40);
            let edges: Vec<Vec<u32>> = (0..n).map(|_| (0..rand(4)).map(|_| rand(n)).collect()).collect();
            let excluded: Vec<bool> = (0..n).map(|_| rand(10) == 0).collect();
            let cand = |x: u32| !excluded[x as usize];
            let succ = |x: u32, out: &mut Vec<(u32, u32)>| {
                out.clear();
                out.extend(edges[x as usize].iter().map(|&y| (y, 0)));
            };
            // Reachability among candidates, by closure.
            let mut reach = vec![vec![false; n as usize]; n as usize];
            for x in 0..n {
                if !cand(x) {
                    continue;
                }
                let mut todo = vec![x];
                reach[x as usize][x as usize] = true;
                while let Some(y) = todo.pop() {
                    for &z in &edges[y as usize] {
                        if cand(z) && !reach[x as usize][z as usize] {
                            reach[x as usize][z as usize] = true;
                            todo.push(z);
                        }
                    }
                }
            }
            let mut by_vec: Vec<Vec<u32>> = Vec::new();
            let mut marks = vec![0u32; n as usize];
            scc(&mut marks, 0..n, &cand, &succ, &mut |c, member| {
                for x in 0..n {
                    assert_eq!(member(x), c.contains(&x), "round {round}: membership of {x}");
                }
                by_vec.push(c.to_vec());
            });
            let mut by_map: Vec<Vec<u32>> = Vec::new();
            let mut map: HashMap<u32, u32> = HashMap::new();
            scc(&mut map, 0..n, &cand, &succ, &mut |c, _| by_map.push(c.to_vec()));
            assert_eq!(by_vec, by_map, "round {round}");
            let mut seen = vec![false; n as usize];
            for (k, c) in by_vec.iter().enumerate() {
                for &x in c {
                    assert!(cand(x) && !seen[x as usize], "round {round}: {x} once, a candidate");
                    seen[x as usize] = true;
                    for y in 0..n {
                        let same = reach[x as usize][y as usize] && reach[y as usize][x as usize];
                        assert_eq!(same, c.contains(&y), "round {round}: {x} and {y}");
                        // What a component reaches was completed before it.
                        if reach[x as usize][y as usize] && !same {
                            assert!(by_vec[..k].iter().any(|d| d.contains(&y)), "round {round}: order");
                        }
                    }
                }
            }
            assert!(
                (0..n).all(|x| seen[x as usize] == cand(x)),
                "round {round}: every candidate"
            );
        }
    }

    #[test]
    fn a_random_choice_is_strongly_fair() {
        // From 0 a choice offers 1 (back to 0, class 3) or 2 (the goal,
        // class 4). Always choosing 3 is weakly fair (4 is not enabled in
        // state 1) but not strongly fair: a coin flipped forever comes up
        // heads eventually.
        let mut g = graph(vec![vec![(1, 3), (2, 4)], vec![(0, 5)], vec![(2, 6)]], &[2]);
        assert!(
            find_lasso(&g, &eventually(), false).is_some(),
            "weak fairness alone allows the loop"
        );
        g.strong[3] = true;
        g.strong[4] = true;
        assert!(
            find_lasso(&g, &eventually(), false).is_none(),
            "strong fairness on the choice rules it out"
        );
    }
}
