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
//! fingerprint, BFS parent, property bits and outgoing edges (target, fairness
//! class) — not the states themselves, so memory stays within a small factor
//! of a safety search. Then, per property:
//! - `eventually P`: the states reachable from the start through ¬P states;
//!   among their calm ones, the strongly connected components (Tarjan). A
//!   component is a counterexample iff it is fair: every class enabled in all
//!   of its states is taken by one of its internal edges. A calm ¬P state
//!   with no successor at all (a deadlock) is a counterexample too.
//! - `leads_to P ~> Q`, per binding of its quantifiers: the same on the
//!   product with a one-bit monitor ("P happened, Q has not since").
//!
//! A counterexample is printed as a lasso: the prefix to the component and a
//! fair loop through it (taking every required class), which repeats forever.

use crate::column::{Column, Runs};
use crate::config::RunConfig;
use crate::frontier::{Decoder, Encoder, Sealed, Sink, Store};
use crate::history::Cache;
use crate::props::{eval, Eval, PropId};
use crate::report::{CheckReport, PropReport, StatsReport, Verdict};
use crate::search::{fingerprint, format_bytes, peak_rss, Fp, Stats, Table};
use crate::symmetry::canonical;
use crate::system::{Action, SysState, System};
use crate::trace::{node_name, render, replay, show, steps};
use smelt_support::{BinderKind, Id, PropertyKind, Protocol};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Successors of a graph node as `(edge, target)` pairs, filtered by the caller's
/// restriction (a component, a refinement of it).
type Succ<'a> = dyn Fn(u32, &mut Vec<(u32, u32)>) + 'a;

const NONE: u32 = u32::MAX;
/// Fairness class of actions that never occur in calm states.
const NO_CLASS: u32 = u32::MAX;
/// States the graph may hold (indices are `u32`).
const STATES_MAX: usize = (u32::MAX - 1) as usize;

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
/// Per-state columns grow a block at a time (`column.rs`): a `Vec` that
/// doubles would hold up to twice the graph at its peak.
struct Graph {
    fps: Column<Fp>,
    depth: Column<u32>,
    bits: Column<u64>,
    calm: Column<bool>,
    /// State i's edges are `edge_start[i]..edge_start[i + 1]` of `edges`.
    edge_start: Column<u32>,
    edges: Runs<(u32, u32)>,
    /// Per class: strongly fair (a random choice's outcome) rather than weakly.
    strong: Vec<bool>,
}

impl Graph {
    /// Bytes its vectors hold.
    fn bytes(&self) -> u64 {
        self.fps.bytes()
            + self.depth.bytes()
            + self.bits.bytes()
            + self.calm.bytes()
            + self.edge_start.bytes()
            + self.edges.bytes()
            + self.strong.capacity() as u64
    }

    fn succ(&self, i: u32) -> &[(u32, u32)] {
        let (a, b) = (
            self.edge_start[i as usize] as usize,
            self.edge_start[i as usize + 1] as usize,
        );
        self.edges.slice(a, b)
    }

    fn bit(&self, i: u32, b: u32) -> bool {
        self.bits[i as usize] & (1 << b) != 0
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
    if goals.len() + reachables::<P>(&sys.cfg).len() > 64 {
        return Err("too many liveness property instances (at most 64 per check)".into());
    }
    let (graph, reached, stopped) = explore(&sys, &goals, progress, start)?;
    // The sink of cut steps (see `explore`) is not a state, nor its edges
    // steps.
    let (sink_nodes, sink_edges) = match sys.cfg.bound {
        Some(_) => (1, graph.edges.iter().filter(|(j, _)| *j == 1).count() as u64),
        None => (0, 0),
    };
    let stats = Stats {
        unique: graph.fps.len() as u64 - sink_nodes,
        total: graph.edges.len() as u64 - sink_edges,
        max_depth: graph.depth.iter().copied().max().unwrap_or(0),
        elapsed: start.elapsed(),
        complete: stopped.is_none(),
        stopped: stopped.clone(),
        peak_rss_bytes: peak_rss(),
        out_of_resources: stopped.is_some(),
        memory: crate::memory::Budget::new(sys.cfg.memory),
        frontier_disk_bytes_max: 0,
        visited_disk_bytes: 0,
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
            PropertyKind::Eventually | PropertyKind::LeadsTo if stopped.is_some() => {
                r.verdict = Verdict::Unknown;
                r.detail = Some("not decided: the search stopped before the whole graph was built".into());
            }
            PropertyKind::Eventually | PropertyKind::LeadsTo => {
                r.verdict = Verdict::Holds;
                for g in goals.iter().filter(|g| g.prop == i) {
                    if let Some((prefix, cycle)) = find_lasso(&graph, g) {
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
    if cfg.partial_synchrony && (cfg.drops > 0 || cfg.crash > 0) {
        assumptions.push("while drops or crashes remain in the budget, timers fire in any order (asynchrony)".into());
    } else if cfg.partial_synchrony && cfg.races > 0 {
        assumptions.push(format!(
            "before the run is calm, at most {} timer firing(s) break the timing model (racing timeouts: a timer fires while a message to its node is in flight, or before a timer declared to expire sooner)",
            cfg.races
        ));
    }
    assumptions.push(
        "fairness after the faults: a message that stays deliverable is delivered (on a duplicating network: once after each send), a crashed node recovers, a pending choice is made; a timer enabled infinitely often fires (strong fairness)"
            .into(),
    );
    if cfg.synchronous {
        assumptions.push(
            "synchronous after the faults: no timer fires while any message is in flight, nor while an armed timer is declared to expire strictly sooner"
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
    if cfg.client_retry().is_some() {
        assumptions.push("clients resend an unanswered request on a timer".into());
    }
    props.push(crate::report::delta_report(&sys.delta, &cfg, stats.complete));
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
        if bit > 64 {
            return Err("too many liveness property instances (at most 64 bits per check)".into());
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
        Action::Drop { .. } | Action::Crash(_) | Action::Torn(_) | Action::Calm => return None,
    })
}

/// Explores the whole graph. Returns it and, per `reachable` property, the
/// depth of its first witness.
/// The state graph, the depth at which each `reachable` was first reached,
/// and why exploring stopped early (the memory budget), if it did.
type Explored = (Graph, HashMap<usize, u32>, Option<String>);

fn explore<P: Protocol>(
    sys: &System<P>,
    goals: &[Goal],
    progress: Option<Duration>,
    start: Instant,
) -> Result<Explored, String> {
    let budget = crate::memory::Budget::new(sys.cfg.memory);
    let baseline = crate::memory::resident().unwrap_or(0);
    let cache = Cache::default();
    let canon = |s: SysState<P>| if sys.cfg.symmetry { canonical(sys, s) } else { s };
    let reach = reachables::<P>(&sys.cfg);
    // Fingerprint → state index, in the visited set's layout (16 bytes a
    // slot, grown by a quarter): a hash map doubled to 2.3 GiB at 63
    // million states.
    let index = Table::new(true);
    let mut g = Graph {
        fps: Column::default(),
        depth: Column::default(),
        bits: Column::default(),
        calm: Column::default(),
        edge_start: Column::from_iter([0]),
        edges: Runs::default(),
        strong: vec![],
    };
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
    g.fps.push(fp0);
    g.depth.push(0);
    g.bits.push(bits_of(&init));
    g.calm.push(init.calm);
    // A step the check's bound cuts is enabled but leads out of what is
    // checked. It becomes an edge to `sink` (a node that is never calm, so
    // never part of a counterexample): a state with such a step is not
    // stuck, and a loop that never takes it is not fair — a behaviour that
    // leaves the bound is not explored, so it cannot be a counterexample
    // (the report says how many steps the bound cut).
    let sink = sys.cfg.bound.is_some().then(|| {
        g.fps.push(0);
        g.depth.push(0);
        g.bits.push(0);
        g.calm.push(false);
        1u32
    });
    // The states still to expand, in index order, as encoded chunks (the
    // BFS frontier's layout, `frontier.rs`): live states cost kilobytes
    // each, and the queue was most of a large graph's memory. States are
    // expanded in index order, so edges can be stored as CSR.
    let store = Store::new(sys.cfg.spill_dir.clone().unwrap_or_else(std::env::temp_dir));
    let mut enc = Encoder::<P>::default();
    let first = Sink::default();
    enc.push(init, fp0, &store.keys);
    first.push(&store, enc.finish(), true)?;
    let mut level = first.finish();
    let mut actions = Vec::new();
    // The expanded state's edges, appended to the graph as one run.
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut next_progress = progress.map(|p| start + p);
    let mut expected = 0u32;
    // Chunks go to disk when the graph and the frontier in RAM would pass
    // the frontier's share of the budget.
    let place = |next: &Sink, chunk: Sealed, g: &Graph, index: &Table| -> Result<(), String> {
        let held = g.bytes() + index.allocated_bytes() as u64;
        let ram = store.ram_bytes.load(std::sync::atomic::Ordering::Relaxed) + chunk.len() as u64;
        next.push(&store, chunk, ram <= budget.frontier_ram_max(held))
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
                    if let Some(why) = crate::memory::over_budget(&budget, baseline, g.fps.len() as u64) {
                        return Ok((g, reached, Some(why)));
                    }
                }
                for (k, &p) in reach.iter().enumerate() {
                    if g.bits[i as usize] & (1 << k) != 0 {
                        reached.entry(p).or_insert(g.depth[i as usize]);
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
                            out.push((k, class));
                        }
                        continue;
                    };
                    let t = canon(t);
                    let tfp = fingerprint(&t);
                    let j = match index.parent(tfp) {
                        Some(j) => j as u32,
                        None => {
                            if g.fps.len() >= STATES_MAX {
                                return Err("the state graph exceeds 4 billion states".into());
                            }
                            let j = g.fps.len() as u32;
                            index.insert(tfp, j as u64);
                            g.fps.push(tfp);
                            g.depth.push(g.depth[i as usize] + 1);
                            g.bits.push(bits_of(&t));
                            g.calm.push(t.calm);
                            enc.push(t, tfp, &store.keys);
                            if enc.full() {
                                place(&next, enc.finish(), &g, &index)?;
                            }
                            j
                        }
                    };
                    out.push((j, class));
                }
                g.edge_start.push(g.edges.extend_run(&out) as u32);
                if sink == Some(i + 1) {
                    // The sink is never expanded: no edges.
                    g.edge_start.push(g.edges.len() as u32);
                    expected += 1;
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
    }
    Ok((g, reached, None))
}

/// Finds a fair lasso violating one goal instance: the prefix (a path of
/// state indices from the start, excluding it) and the loop (indices; empty
/// for a deadlock). Picks the violation with the shortest prefix.
fn find_lasso(g: &Graph, goal: &Goal) -> Option<(Vec<u32>, Vec<u32>)> {
    let n = g.fps.len();
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
    // BFS over the product from the start: reachable nodes and parents.
    let mut parent = vec![NONE; 2 * n];
    let mut seen = vec![false; 2 * n];
    let mut depth = vec![u32::MAX; 2 * n];
    let start = m0 as u32;
    seen[start as usize] = true;
    depth[start as usize] = 0;
    let mut q = VecDeque::from([start]);
    while let Some(x) = q.pop_front() {
        let (i, m) = (x / 2, x % 2 == 1);
        for &(j, _) in g.succ(i) {
            let Some(mj) = monitor(j, m) else { continue };
            let y = j * 2 + mj as u32;
            if !seen[y as usize] {
                seen[y as usize] = true;
                parent[y as usize] = x;
                depth[y as usize] = depth[x as usize] + 1;
                q.push_back(y);
            }
        }
    }
    // Candidates: reachable, monitor set, calm.
    let cand = |x: u32| seen[x as usize] && x % 2 == 1 && g.calm[(x / 2) as usize];
    let succ = |x: u32, out: &mut Vec<(u32, u32)>| {
        out.clear();
        let (i, m) = (x / 2, x % 2 == 1);
        for &(j, c) in g.succ(i) {
            if let Some(mj) = monitor(j, m) {
                out.push((j * 2 + mj as u32, c));
            }
        }
    };
    let mut best: Option<(u32, Vec<u32>)> = None; // (entry node, component)
    let mut consider = |comp: Vec<u32>, is_deadlock: bool| {
        let entry = *comp.iter().min_by_key(|x| depth[**x as usize]).unwrap_or(&comp[0]);
        if best
            .as_ref()
            .is_none_or(|(e, _)| depth[entry as usize] < depth[*e as usize])
        {
            best = Some((entry, if is_deadlock { vec![] } else { comp }));
        }
    };
    let roots: Vec<u32> = (0..2 * n as u32).filter(|x| cand(*x)).collect();
    for comp in tarjan(2 * n, &roots, &cand, &succ) {
        if comp.len() == 1 && g.succ(comp[0] / 2).is_empty() {
            // A calm state with nothing left to do, short of the goal.
            consider(comp, true);
            continue;
        }
        if let Some(part) = fair_part(g, comp, &cand, &succ) {
            consider(part, false);
        }
    }
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
    let cycle = fair_cycle(g, entry, &comp, &succ);
    Some((prefix, cycle.into_iter().map(|x| x / 2).collect()))
}

/// The classes enabled in every state of a component, and whether each is
/// taken by an edge inside it.
fn required_classes(g: &Graph, comp: &[u32], inside: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> (Vec<u32>, Vec<u32>) {
    let mut required: Option<Vec<u32>> = None;
    let mut taken: Vec<u32> = Vec::new();
    let mut buf = Vec::new();
    for &x in comp {
        let mut enabled: Vec<u32> = g
            .succ(x / 2)
            .iter()
            .map(|(_, c)| *c)
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
            if inside(y) && c != NO_CLASS {
                taken.push(c);
            }
        }
    }
    taken.sort_unstable();
    taken.dedup();
    (required.unwrap_or_default(), taken)
}

/// Whether a non-trivial component's cycle through all of it is fair: every
/// weakly fair class enabled throughout it, and every strongly fair class
/// enabled anywhere in it, is taken inside it.
fn fair(g: &Graph, comp: &[u32], cand: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> bool {
    unfair_strong(g, comp, cand, succ).is_some_and(|bad| bad.is_empty())
}

/// `None` if a weakly fair class is enabled throughout `comp` but never taken
/// inside it (no cycle inside can be fair); otherwise the strongly fair
/// classes enabled somewhere in `comp` but never taken inside it.
fn unfair_strong(g: &Graph, comp: &[u32], cand: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> Option<Vec<u32>> {
    let members: std::collections::HashSet<u32> = comp.iter().copied().collect();
    let inside = |y: u32| cand(y) && members.contains(&y);
    let (required, taken) = required_classes(g, comp, &inside, succ);
    if !required.iter().all(|c| taken.binary_search(c).is_ok()) {
        return None;
    }
    let mut bad: Vec<u32> = comp
        .iter()
        .flat_map(|x| g.succ(x / 2).iter().map(|(_, c)| *c))
        .filter(|c| *c != NO_CLASS && g.strong.get(*c as usize).copied().unwrap_or(false))
        .filter(|c| taken.binary_search(c).is_err())
        .collect();
    bad.sort_unstable();
    bad.dedup();
    Some(bad)
}

/// A fair strongly connected part of `comp`, if there is one (the Streett
/// refinement for strong fairness): while a strongly fair class is enabled
/// somewhere but never taken, drop the states that enable it and look again
/// in what remains.
fn fair_part(g: &Graph, comp: Vec<u32>, cand: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> Option<Vec<u32>> {
    let mut work = vec![comp];
    while let Some(comp) = work.pop() {
        let mut buf = Vec::new();
        if comp.len() == 1 {
            succ(comp[0], &mut buf);
            if !buf.iter().any(|(y, _)| *y == comp[0]) {
                continue;
            }
        }
        let Some(bad) = unfair_strong(g, &comp, cand, succ) else {
            continue;
        };
        if bad.is_empty() {
            return Some(comp);
        }
        let keep: Vec<u32> = comp
            .iter()
            .copied()
            .filter(|x| !g.succ(x / 2).iter().any(|(_, c)| bad.binary_search(c).is_ok()))
            .collect();
        let set: std::collections::HashSet<u32> = keep.iter().copied().collect();
        let sub_cand = |y: u32| cand(y) && set.contains(&y);
        work.extend(tarjan(g.fps.len() * 2, &keep, &sub_cand, succ));
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
    let members: std::collections::HashSet<u32> = comp.iter().copied().collect();
    let inside = |y: u32| members.contains(&y);
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
        for &(_, c) in g.succ(x / 2) {
            if c != NO_CLASS
                && g.strong.get(c as usize).copied().unwrap_or(false)
                && !goals.contains(&Waypoint::Class(c))
            {
                goals.push(Waypoint::Class(c));
            }
        }
    }
    let enabled_at = |x: u32, c: u32| g.succ(x / 2).iter().any(|(_, k)| *k == c);
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

/// Iterative Tarjan from `roots` over the nodes (below `n`) for which `cand`
/// holds.
fn tarjan(n: usize, roots: &[u32], cand: &dyn Fn(u32) -> bool, succ: &Succ<'_>) -> Vec<Vec<u32>> {
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut comps = Vec::new();
    let mut next = 0u32;
    // Call stack frames: (node, its candidate successors, position).
    let mut frames: Vec<(u32, Vec<u32>, usize)> = Vec::new();
    let mut buf = Vec::new();
    for &root in roots {
        if !cand(root) || index[root as usize] != NONE {
            continue;
        }
        let push = |v: u32,
                    index: &mut Vec<u32>,
                    low: &mut Vec<u32>,
                    stack: &mut Vec<u32>,
                    on_stack: &mut Vec<bool>,
                    next: &mut u32,
                    buf: &mut Vec<(u32, u32)>| {
            index[v as usize] = *next;
            low[v as usize] = *next;
            *next += 1;
            stack.push(v);
            on_stack[v as usize] = true;
            succ(v, buf);
            let s: Vec<u32> = buf.iter().map(|(w, _)| *w).filter(|w| cand(*w)).collect();
            (v, s, 0usize)
        };
        frames.push(push(
            root,
            &mut index,
            &mut low,
            &mut stack,
            &mut on_stack,
            &mut next,
            &mut buf,
        ));
        while let Some((v, ws, pos)) = frames.last_mut() {
            let v = *v;
            if *pos < ws.len() {
                let w = ws[*pos];
                *pos += 1;
                if index[w as usize] == NONE {
                    let f = push(w, &mut index, &mut low, &mut stack, &mut on_stack, &mut next, &mut buf);
                    frames.push(f);
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
                continue;
            }
            frames.pop();
            if let Some((u, _, _)) = frames.last() {
                let u = *u;
                low[u as usize] = low[u as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                comps.push(comp);
            }
        }
    }
    comps
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
            "nothing can happen any more".to_string()
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

    /// A hand-built graph: `edges[i]` lists `(target, class)`.
    fn graph(edges: Vec<Vec<(u32, u32)>>, goal_at: &[u32]) -> Graph {
        let n = edges.len();
        let mut g = Graph {
            fps: (1..=n as u64).collect(),
            depth: Column::filled(n, 0),
            bits: Column::filled(n, 0),
            calm: Column::filled(n, true),
            edge_start: Column::from_iter([0]),
            edges: Runs::default(),
            strong: vec![false; 16],
        };
        for (i, es) in edges.into_iter().enumerate() {
            let end = g.edges.extend_run(&es);
            g.edge_start.push(end as u32);
            if goal_at.contains(&(i as u32)) {
                g.bits[i] = 1;
            }
        }
        g
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
        let (prefix, cycle) = find_lasso(&g, &eventually()).expect("violation");
        assert!(prefix.is_empty(), "the loop starts at the initial state");
        assert_eq!(cycle.len(), 3);
        assert_eq!(*cycle.last().unwrap(), 0);
    }

    #[test]
    fn removing_the_cycle_makes_it_hold() {
        // 0 → 1 → 2 → 3 (goal).
        let g = graph(vec![vec![(1, 0)], vec![(2, 1)], vec![(3, 2)], vec![(3, 3)]], &[3]);
        assert!(find_lasso(&g, &eventually()).is_none());
    }

    #[test]
    fn an_unfair_cycle_is_not_a_violation() {
        // 0 ⇄ 1 loops on class 0, but class 7 (say, delivering a message
        // to the goal) is enabled in both states and never taken: weak
        // fairness rules the loop out.
        let g = graph(vec![vec![(1, 0), (2, 7)], vec![(0, 0), (2, 7)], vec![(2, 9)]], &[2]);
        assert!(find_lasso(&g, &eventually()).is_none());
    }

    #[test]
    fn a_class_disabled_somewhere_in_the_cycle_does_not_save_it() {
        // Class 7 is enabled in state 0 only: the loop through 1 is fair.
        let g = graph(vec![vec![(1, 0), (2, 7)], vec![(0, 0)], vec![(2, 9)]], &[2]);
        let (_, cycle) = find_lasso(&g, &eventually()).expect("violation");
        assert_eq!(cycle.len(), 2);
    }

    #[test]
    fn a_deadlock_short_of_the_goal_is_a_violation() {
        let g = graph(vec![vec![(1, 0)], vec![]], &[]);
        let (prefix, cycle) = find_lasso(&g, &eventually()).expect("deadlock");
        assert_eq!((prefix, cycle), (vec![1], vec![]));
    }

    #[test]
    fn faults_before_calm_do_not_count() {
        // The loop 0 ⇄ 1 is not calm (faults may still happen): ignored.
        let mut g = graph(vec![vec![(1, 0)], vec![(0, 1)], vec![]], &[2]);
        g.calm = [false, false, true].into_iter().collect();
        assert!(find_lasso(&g, &eventually()).is_none());
    }

    #[test]
    fn leads_to_needs_the_trigger_first() {
        // 0 → 1 (trigger P) → 2 ⇄ 3, Q never holds after 1.
        let mut g = graph(vec![vec![(1, 0)], vec![(2, 1)], vec![(3, 2)], vec![(2, 3)]], &[]);
        g.bits[1] = 1; // P at 1
        let goal = Goal {
            prop: 0,
            binding: vec![],
            from_bit: 0,
            to_bit: Some(1),
        };
        let (prefix, cycle) = find_lasso(&g, &goal).expect("violation");
        assert_eq!(prefix.first(), Some(&1));
        assert_eq!(cycle.len(), 2);
        // If Q holds in 3, every loop passes through Q: it holds.
        g.bits[3] = 2;
        assert!(find_lasso(&g, &goal).is_none());
    }

    #[test]
    fn a_random_choice_is_strongly_fair() {
        // From 0 a choice offers 1 (back to 0, class 3) or 2 (the goal,
        // class 4). Always choosing 3 is weakly fair (4 is not enabled in
        // state 1) but not strongly fair: a coin flipped forever comes up
        // heads eventually.
        let mut g = graph(vec![vec![(1, 3), (2, 4)], vec![(0, 5)], vec![(2, 6)]], &[2]);
        assert!(
            find_lasso(&g, &eventually()).is_some(),
            "weak fairness alone allows the loop"
        );
        g.strong[3] = true;
        g.strong[4] = true;
        assert!(
            find_lasso(&g, &eventually()).is_none(),
            "strong fairness on the choice rules it out"
        );
    }
}
