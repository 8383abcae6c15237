//! Verdicts, the human summary and the JSON report.

use crate::config::RunConfig;
use crate::props::{Eval, PropId};
use crate::search::{format_bytes, Discovery, Stats};
use crate::trace::JsonStep;
use serde::Serialize;
use smelt_support::Strategy;
use smelt_support::{Expect, PropertyKind, Protocol};
use std::collections::BTreeMap;
use std::fmt::Write;

/// SHA-256 of `bytes`, in lowercase hex (a spec's identity in reports and
/// in `--version`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Holds in every explored state (the search was complete).
    Holds,
    /// A counterexample was found.
    Violated,
    /// A `reachable` property: some explored state satisfies it.
    Reached,
    /// Not decided: the search stopped early (bound or another violation).
    Unknown,
    /// A liveness property in a safety run (or the reverse).
    Skipped,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropReport {
    pub name: String,
    pub kind: PropertyKind,
    pub verdict: Verdict,
    /// The property's source text.
    pub text: String,
    /// What decided the verdict, in a sentence.
    pub detail: Option<String>,
    /// Length of the counterexample or witness.
    pub steps: Option<usize>,
    pub trace: Option<Vec<JsonStep>>,
    #[serde(skip)]
    pub trace_text: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    pub unique_states: u64,
    pub total_states: u64,
    pub max_depth: u32,
    pub seconds: f64,
    pub states_per_second: f64,
    pub peak_rss_bytes: Option<u64>,
    /// The memory budget the search kept to, and where it came from.
    pub memory_budget_bytes: u64,
    pub memory_budget_origin: String,
    /// Most bytes of the BFS frontier on disk at once (0: all in RAM).
    pub frontier_disk_bytes_max: u64,
    /// Bytes of the visited set spilled to disk (0: all in RAM).
    #[serde(default)]
    pub visited_disk_bytes: u64,
    /// Bytes of a liveness graph's edges on disk (`edges.rs`).
    #[serde(default)]
    pub graph_disk_bytes: u64,
    pub complete: bool,
    pub stopped: Option<String>,
    /// The search stopped for lack of memory or disk (`stopped` says which).
    pub out_of_resources: bool,
    /// Steps not taken because they would leave the check's `bound`.
    pub bound_cut: u64,
}

impl From<&Stats> for StatsReport {
    fn from(s: &Stats) -> Self {
        let secs = s.elapsed.as_secs_f64();
        StatsReport {
            unique_states: s.unique,
            total_states: s.total,
            max_depth: s.max_depth,
            seconds: secs,
            states_per_second: if secs > 0.0 { s.unique as f64 / secs } else { 0.0 },
            peak_rss_bytes: s.peak_rss_bytes,
            memory_budget_bytes: s.memory.bytes,
            memory_budget_origin: s.memory.origin.clone(),
            frontier_disk_bytes_max: s.frontier_disk_bytes_max,
            visited_disk_bytes: s.visited_disk_bytes,
            graph_disk_bytes: s.graph_disk_bytes,
            complete: s.complete,
            stopped: s.stopped.clone(),
            out_of_resources: s.out_of_resources,
            bound_cut: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub spec: String,
    pub protocol: String,
    pub check: String,
    pub mode: &'static str,
    pub config: RunConfig,
    pub stats: StatsReport,
    pub properties: Vec<PropReport>,
    /// The assumptions a liveness verdict was obtained under.
    pub assumptions: Vec<String>,
    pub expected: Option<String>,
    /// Whether the outcome is what the check's `expect` says.
    pub as_expected: Option<bool>,
    /// Simulation: the seed and walk that found the violation.
    pub seed_walk: Option<(u64, u64)>,
    /// SHA-256 of the spec's text (hex), so that reports of one search run
    /// on several machines can be told to be of the same spec.
    pub spec_sha256: Option<String>,
    /// Simulation: which walks this run took (`smelt merge` joins shards).
    pub simulation: Option<SimulationReport>,
}

/// The walks of a simulation run.
#[derive(Clone, Debug, Serialize)]
pub struct SimulationReport {
    pub seed: u64,
    /// Walks of the whole search (all shards).
    pub walks: u64,
    pub max_depth: u64,
    /// `[i, n]`: this run owns the walks `k` with `k % n == i`.
    pub shard: [u64; 2],
    /// `--walk k`: only that walk was replayed.
    pub replayed_walk: Option<u64>,
    /// Walks taken; fewer than the shard owns when one found a violation
    /// (the run stops at the first).
    pub walks_run: u64,
    pub steps_run: u64,
    /// The walk whose violation is reported.
    pub violation_walk: Option<u64>,
}

impl CheckReport {
    pub fn violated(&self) -> bool {
        self.properties.iter().any(|p| p.verdict == Verdict::Violated)
    }

    /// A breadth-first safety search that stopped only because it reached
    /// `max_depth`: exhaustive up to that depth, and nothing beyond it.
    fn depth_bounded(&self) -> bool {
        self.mode == "safety" && stopped_only_by_depth(&self.config, self.stats.stopped.as_deref())
    }

    /// Compares the outcome with the config's `expect`.
    pub fn judge(&mut self, expect: &Expect) {
        let (text, met) = match expect {
            Expect::Unspecified => return,
            // A simulation never claims completeness: finding nothing is its "ok".
            Expect::Ok if self.depth_bounded() => {
                // Bounded model checking: a breadth-first search that stopped
                // only at `max_depth` has seen every state within that many
                // steps, so "ok" means "no violation within the bound" -- and
                // says so. Every `reachable` must still be reached inside the
                // bound, so a bound too small to reach the interesting states
                // does not pass.
                let reached_all = self
                    .properties
                    .iter()
                    .filter(|p| p.kind == PropertyKind::Reachable)
                    .all(|p| matches!(p.verdict, Verdict::Reached | Verdict::Skipped));
                (
                    format!("ok up to depth {}", self.config.max_depth.unwrap_or(0)),
                    !self.violated() && reached_all,
                )
            }
            Expect::Ok => (
                "ok".to_string(),
                !self.violated() && (self.stats.complete || self.mode == "simulation"),
            ),
            Expect::Violation(name) => (
                format!("violation of {name}"),
                self.properties
                    .iter()
                    .any(|p| &p.name == name && p.verdict == Verdict::Violated),
            ),
        };
        self.expected = Some(text);
        self.as_expected = Some(met);
    }
}

/// Whether a search that stopped for `stopped` (None: it completed) was a
/// breadth-first search cut only by `max_depth`, so that it saw every state
/// within that many steps.
fn stopped_only_by_depth(cfg: &RunConfig, stopped: Option<&str>) -> bool {
    cfg.strategy == Strategy::Bfs
        && cfg.max_depth.is_some()
        && stopped.is_some_and(|w| w.starts_with("reached max_depth"))
}

/// The verdict of the delta check (`delta.rs`): every step explored was
/// also run the runtime's way. `searched`: the run explored what it set out
/// to (completely, or to its bound), so no mismatch means it holds there.
pub fn delta_report(d: &crate::delta::DeltaCheck, cfg: &RunConfig, searched: bool) -> PropReport {
    let mut r = PropReport {
        name: "runtime_equivalence".into(),
        kind: PropertyKind::Invariant,
        verdict: Verdict::Unknown,
        text: "every step runs the same on the runtime (owned state, deltas, no ghosts), and its deltas replay to the saved storage".into(),
        detail: None,
        steps: None,
        trace: None,
        trace_text: None,
    };
    if !cfg.delta_check {
        r.verdict = Verdict::Skipped;
        r.detail = Some("turned off (`--no-delta-check`)".into());
        return r;
    }
    match d.first() {
        Some(m) => {
            r.verdict = Verdict::Violated;
            r.detail = Some(format!("the deployed node would not be the checked one: {m}"));
        }
        None => {
            if searched {
                r.verdict = Verdict::Holds;
            }
            r.detail = Some(format!("{} steps compared", d.compared()));
        }
    }
    r
}

/// Verdicts of a safety run from its discoveries.
pub fn safety_verdicts<P: Protocol>(
    cfg: &RunConfig,
    discoveries: &BTreeMap<PropId, Discovery>,
    stats: &Stats,
    linearizable: bool,
    mut trace_of: impl FnMut(PropId, &Discovery) -> (Option<Vec<JsonStep>>, Option<String>, Option<String>),
) -> Vec<PropReport> {
    let mut ids = vec![PropId::HandlerError];
    for (i, p) in P::properties().iter().enumerate() {
        if p.kind == PropertyKind::Linearizable {
            if linearizable {
                ids.push(PropId::Linearizable);
            }
        } else {
            ids.push(PropId::Spec(i));
        }
    }
    ids.into_iter()
        .map(|id| {
            let kind = id.kind::<P>();
            let text = match id {
                PropId::HandlerError => {
                    "no handler fails (overflow, missing key, failed assertion, unwrap of None)".to_string()
                }
                PropId::Linearizable => "client histories are linearizable against the service".to_string(),
                PropId::Spec(i) => P::properties()[i].text.to_string(),
            };
            let mut r = PropReport {
                name: id.name::<P>().to_string(),
                kind,
                verdict: Verdict::Unknown,
                text,
                detail: None,
                steps: None,
                trace: None,
                trace_text: None,
            };
            let found = discoveries.get(&id);
            if cfg.skips(&r.name) {
                r.verdict = Verdict::Skipped;
                r.detail = Some("left out by this check (`skip`)".into());
                return r;
            }
            match kind {
                PropertyKind::Eventually | PropertyKind::LeadsTo => {
                    r.verdict = Verdict::Skipped;
                    r.detail = Some("a liveness property: checked by configs with `mode liveness`".into());
                }
                PropertyKind::Reachable => match found {
                    Some(d) => {
                        r.verdict = Verdict::Reached;
                        r.steps = Some(d.depth as usize);
                        r.detail = Some(format!("first reached after {} steps", d.depth));
                    }
                    None if stats.complete => {
                        r.verdict = Verdict::Violated;
                        r.detail = Some(format!("no state of the {} explored satisfies it", stats.unique));
                    }
                    None => r.detail = Some("not reached before the search stopped".into()),
                },
                _ => match found {
                    Some(d) => {
                        r.verdict = Verdict::Violated;
                        r.steps = Some(d.depth as usize);
                        let (trace, text, detail) = trace_of(id, d);
                        r.trace = trace;
                        r.trace_text = text;
                        r.detail = detail.or_else(|| match &d.eval {
                            Eval::Error(e) => Some(format!("evaluating the property failed: {e}")),
                            _ => None,
                        });
                    }
                    None if stats.complete => r.verdict = Verdict::Holds,
                    None => {
                        r.detail = Some(if stopped_only_by_depth(cfg, stats.stopped.as_deref()) {
                            format!("no violation within {} steps", cfg.max_depth.unwrap_or(0))
                        } else {
                            "no violation before the search stopped".into()
                        })
                    }
                },
            }
            r
        })
        .collect()
}

/// The human summary of one check.
pub fn render_summary(r: &CheckReport) -> String {
    let mut out = String::new();
    let s = &r.stats;
    let _ = writeln!(
        out,
        "  {} unique states ({} generated), depth {}, {:.2} s, {:.0} states/s{}",
        s.unique_states,
        s.total_states,
        s.max_depth,
        s.seconds,
        s.states_per_second,
        s.peak_rss_bytes
            .map(|b| format!(
                ", peak memory {} (budget {}, {})",
                format_bytes(b),
                format_bytes(s.memory_budget_bytes),
                s.memory_budget_origin
            ))
            .unwrap_or_default()
    );
    if s.frontier_disk_bytes_max > 0 {
        let _ = writeln!(
            out,
            "  the BFS frontier spilled to disk: at most {} at once",
            format_bytes(s.frontier_disk_bytes_max)
        );
    }
    if s.visited_disk_bytes > 0 {
        let _ = writeln!(
            out,
            "  the visited set spilled to disk: {} in sorted runs",
            format_bytes(s.visited_disk_bytes)
        );
    }
    if s.graph_disk_bytes > 0 {
        let _ = writeln!(
            out,
            "  the state graph's edges on disk: {}",
            format_bytes(s.graph_disk_bytes)
        );
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(out, "  search incomplete: {why}");
    }
    if let Some(b) = &r.config.bound {
        let _ = writeln!(
            out,
            "  bounded by `{b}`: {} steps out of the bound not taken",
            s.bound_cut
        );
    }
    for a in &r.assumptions {
        let _ = writeln!(out, "  assuming: {a}");
    }
    for p in &r.properties {
        let mark = match p.verdict {
            Verdict::Holds | Verdict::Reached => "✓",
            Verdict::Violated => "✗",
            Verdict::Unknown => "?",
            Verdict::Skipped => "-",
        };
        let verdict = format!("{:?}", p.verdict).to_lowercase();
        let kind = format!("{:?}", p.kind).to_lowercase();
        let what = if kind == p.name {
            kind
        } else {
            format!("{kind} {}", p.name)
        };
        let detail = p.detail.as_ref().map(|d| format!(" — {d}")).unwrap_or_default();
        let _ = writeln!(out, "  {mark} {what}: {verdict}{detail}");
    }
    for p in &r.properties {
        if let Some(t) = &p.trace_text {
            let _ = writeln!(out);
            let _ = write!(out, "{t}");
        }
    }
    if let (Some(e), Some(met)) = (&r.expected, r.as_expected) {
        let _ = writeln!(out, "  expected {e}: {}", if met { "yes" } else { "NO" });
    }
    out
}
