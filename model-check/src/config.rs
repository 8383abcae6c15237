//! A run's configuration: a spec's `check` block, with command-line
//! overrides applied.

use serde::Serialize;
use smelt_support::{CheckConfig, Expect, Mode, NetworkKind, Strategy, Timing};

#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    pub name: String,
    /// Which `check` block's workload the clients run.
    pub workload_index: usize,
    pub servers: Vec<u64>,
    pub clients: u64,
    pub network: NetworkKind,
    /// Safety mode: any message may be dropped at any time.
    pub lossy: bool,
    /// Liveness mode: how many drops the environment may make in total.
    pub drops: u64,
    /// Liveness: how many timer firings may break the timing model in
    /// total (racing timeouts, `races N`).
    pub races: u64,
    /// Safety: how many servers may be down at once. Liveness: how many
    /// crashes in total.
    pub crash: u64,
    /// Liveness: how many servers may stop for good (crash and never
    /// recover) before the run is calm (`stops N`).
    pub stops: u64,
    pub liveness: bool,
    pub symmetry: bool,
    /// Symmetry's representative from each server's own state only, without
    /// `symmetry::refine` (the form before; a baseline for benchmarks).
    pub symmetry_local: bool,
    pub max_depth: Option<u64>,
    pub max_states: Option<u64>,
    pub strategy: Strategy,
    pub threads: usize,
    /// The memory budget in bytes (`--memory`); `None`: the default (see
    /// `memory::Budget`).
    pub memory: Option<u64>,
    /// Where the BFS frontier spills (`--spill-dir`; default: the system's
    /// temporary directory).
    pub spill_dir: Option<std::path::PathBuf>,
    /// Keep the BFS frontier as live states in RAM, unbounded (the layout
    /// before the encoded frontier; a baseline for benchmarks).
    pub live_frontier: bool,
    /// At most this many bytes of the frontier in RAM (below the budget's
    /// share; 0: every chunk goes to disk). For tests and benchmarks.
    pub frontier_ram: Option<u64>,
    /// At most this many bytes of the visited set in RAM before it spills
    /// to disk (below the budget's share). For tests and benchmarks.
    pub visited_ram: Option<u64>,
    /// Liveness timing assumption after the faults (see `timer_enabled`).
    pub partial_synchrony: bool,
    /// Stronger: no timer fires while any message is in flight (that its
    /// destination would not ignore).
    pub synchronous: bool,
    /// No timer fires at all once the timing model applies (`timing
    /// no_timeouts`): what is left must finish on messages alone.
    pub no_timeouts: bool,
    /// Clients resend a timed-out request at most this many times, then
    /// give up on it (`retries N`); `None`: they never time out (in a
    /// liveness check with faults, they resend without end: `client_retry`).
    pub retries: Option<u64>,
    /// The session table's capacity, overriding the spec's `sessions N`.
    pub sessions: Option<u64>,
    /// Run every step the runtime's way too and compare (delta.rs).
    pub delta_check: bool,
    /// The check's state constraint, as written (evaluated by the
    /// protocol's `eval_bound` for check `workload_index`).
    pub bound: Option<String>,
    /// Properties this check leaves out, by name.
    pub skip: Vec<String>,
    #[serde(skip)]
    pub expect: Expect,
}

impl RunConfig {
    /// The config of `P`'s check `name`, or an error naming the checks it
    /// has.
    pub fn of_check<P: smelt_support::Protocol>(name: &str) -> Result<RunConfig, String> {
        let checks = P::checks();
        match checks.iter().find(|c| c.name == name) {
            Some(c) => Ok(RunConfig::from_check(c)),
            None => {
                let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
                Err(format!("no check named `{name}`; the spec has: {}", names.join(", ")))
            }
        }
    }

    pub fn from_check(c: &CheckConfig) -> RunConfig {
        let liveness = c.mode == Mode::Liveness;
        RunConfig {
            name: c.name.clone(),
            workload_index: c.index,
            servers: c.servers.clone(),
            clients: c.clients,
            network: c.network,
            lossy: c.lossy,
            drops: c.drops,
            races: c.races,
            crash: c.crash,
            stops: c.stops,
            liveness,
            symmetry: c.symmetry,
            symmetry_local: false,
            max_depth: c.max_depth,
            max_states: c.max_states,
            strategy: c.strategy,
            threads: c.threads.map(|t| t as usize).unwrap_or(1),
            memory: None,
            spill_dir: None,
            live_frontier: false,
            frontier_ram: None,
            visited_ram: None,
            partial_synchrony: matches!(c.timing, Timing::PartialSynchrony | Timing::Synchronous),
            synchronous: c.timing == Timing::Synchronous,
            no_timeouts: c.timing == Timing::NoTimeouts,
            retries: c.retries,
            sessions: c.sessions,
            delta_check: true,
            bound: c.bound.map(String::from),
            skip: c.skip.clone(),
            expect: c.expect.clone(),
        }
    }

    /// The model clients' retry timer: `None` when they have none; else
    /// how many resends they make before giving up (`None`: never).
    /// Liveness checks with faults need clients that retry (a lost request
    /// would otherwise end all progress), and never give up, so that
    /// "every request is answered" means answered — unless the check
    /// bounds them (`retries N`): then they give up as the runtime client
    /// does, and the check's properties are about the servers (a client
    /// that gives up is not `done`). That keeps a liveness check with a
    /// crash on an ordered network finite: before the faults are over,
    /// timers fire in any order, and each unbounded resend would be one
    /// more message in a link. Safety checks retry only when asked
    /// (`retries N`), and then give up as the runtime client does.
    pub fn client_retry(&self) -> Option<Option<u32>> {
        let bounded = self.retries.map(|n| Some(n.min(u32::MAX as u64) as u32));
        let faults = self.drops > 0 || self.crash > 0 || self.stops > 0 || self.lossy;
        if self.liveness && bounded.is_none() {
            faults.then_some(None)
        } else {
            bounded
        }
    }

    /// Whether spec property `name` is left out of this check (`skip`).
    pub fn skips(&self, name: &str) -> bool {
        self.skip.iter().any(|s| s == name)
    }

    /// One line describing the configuration, for reports.
    pub fn describe(&self) -> String {
        let mut parts = vec![
            format!("servers {:?}", self.servers),
            format!("clients {}", self.clients),
            self.network.name().to_string(),
        ];
        if self.lossy {
            parts.push("lossy".into());
        }
        if self.crash > 0 {
            parts.push(format!("crash {}", self.crash));
        }
        if let Some(r) = self.retries {
            parts.push(format!("retries {r}"));
        }
        if let Some(n) = self.sessions {
            parts.push(format!("sessions {n}"));
        }
        if self.liveness {
            parts.push(format!("liveness (drops {})", self.drops));
            if self.races > 0 {
                parts.push(format!("races {}", self.races));
            }
            if self.stops > 0 {
                parts.push(format!("stops {}", self.stops));
            }
        }
        if self.no_timeouts {
            parts.push("no timeouts".into());
        }
        if self.symmetry {
            parts.push(
                if self.symmetry_local {
                    "symmetry (local)"
                } else {
                    "symmetry"
                }
                .into(),
            );
        }
        if let Some(d) = self.max_depth {
            parts.push(format!("max_depth {d}"));
        }
        if let Some(b) = &self.bound {
            parts.push(format!("bound `{b}`"));
        }
        if !self.skip.is_empty() {
            parts.push(format!("skip {}", self.skip.join(", ")));
        }
        parts.push(format!("{:?}", self.strategy).to_lowercase());
        parts.join(", ")
    }
}
