//! `smelt check`, as run by a spec's harness binary.

use crate::config::RunConfig;
use crate::props::PropId;
use crate::report::{render_summary, safety_verdicts, CheckReport, StatsReport};
use crate::search::Search;
use crate::system::System;
use crate::trace::{reconstruct, render, render_nodes, steps};
use clap::Parser;
use smelt_support::{CheckConfig, NetworkKind, Protocol, Strategy};
use std::fmt::Write;
use std::io::IsTerminal;
use std::time::Duration;

pub const LIVENESS_HELP: &str = "\
LIVENESS MODE (`mode liveness` in a check block, or --mode liveness)
  The environment has a fault budget: `drops N` message losses and `crash K`
  crash-restarts in total. Until the budget is spent anything may happen.
  Afterwards the environment is fair: every message that stays deliverable
  to a live node is eventually delivered, every timer that stays armed
  eventually fires, and crashed nodes eventually recover — except the ones
  that `stops N` (--stops N) lets stop for good: up to N servers crash and
  never come back, and progress must come from the others. A duplicating
  network owes a message one delivery after each time it is sent, not
  re-deliveries of an old copy: progress that needs a message again needs
  it sent again (one a node would ignore is taken as delivered at once;
  later duplicates may still arrive). A timer that fires where no handler
  takes it, and a message its node ignores, are gone, as on a real node: a
  node that misses its only timeout or message that way waits for good.
  Unless `timing any`
  is given, timing is partially synchronous after the faults: a timer does
  not fire at a node while messages to that node are in flight, and a timer
  does not fire while another armed timer is declared to expire strictly
  sooner (its upper bound is below this timer's lower bound). Before the
  run is calm, timers fire in any order; `races N` (--races N) adds N timer
  firings that break the timing model to the budget — racing timeouts,
  e.g. two servers whose election timers expire within one message delay,
  so both stand and split the vote — after which the run is calm. A check
  with only `races` explores exactly those races and otherwise the timing
  model.
  `timing synchronous` is stronger: no timer fires while any message is in
  flight anywhere (messages are faster than every timer; a message its
  destination would ignore, such as a stale reply, is dropped on arrival,
  or on a duplicating network does not count). `timing no_timeouts` is
  strongest: after the faults no timer fires at all (in a safety check,
  none ever does), so the run must finish on messages alone — a
  protocol's fast path, which a timer must not be quietly holding up (a
  retransmission standing in for a send the code forgot). Timers and random
  choices are strongly fair: a timer enabled again and again (say between
  messages in flight to its node) eventually fires, since time passes; an
  option of a `choose` offered infinitely often is eventually taken, as a
  random draw would.
  `eventually P` fails if some fair behaviour never reaches P; `leads_to P ~> Q`
  fails if some fair behaviour reaches P and never reaches Q afterwards.
  Violations are found as reachable cycles in the state graph (lassos),
  printed as a prefix and a loop that repeats forever. A step the check's
  `bound` cuts counts as enabled but is not explored: a state with such a
  step is not stuck, and a loop that never takes it is not fair, so a
  behaviour that leaves the bound is never a counterexample (the report
  says how many steps the bound cut).

MEMORY
  A search keeps to a memory budget (--memory; default half of physical
  memory, printed with each result). The breadth-first frontier moves to
  disk (--spill-dir) when it does not fit beside the visited set; a search
  that still does not fit stops with verdict unknown and says why.

EXIT STATUS
  0  no property violated (with --expect: every check as its `expect` says)
  1  a property violated (with --expect: a check not as expected)
  2  usage error: a bad option, an unknown check, a spec the check refuses
  3  no violation found, but a search stopped for lack of memory or disk
     before deciding (verdicts unknown)";

#[derive(Parser, Debug)]
#[command(
    name = "smelt check",
    about = "Model-check a spec's protocol.\n\n`smelt check a.sm b.sm dir/` checks several specs (a directory: the .sm files in it), one after another, with one exit status (the most severe); `--junit FILE` also writes a JUnit XML report (a test suite per spec, a test case per check).",
    after_help = LIVENESS_HELP
)]
pub struct Args {
    /// Run only this `check` block (default: all of them).
    #[arg(long)]
    pub config: Option<String>,
    /// Servers: a count (one-role protocols) or `Role=N,Role=M`.
    #[arg(long)]
    pub servers: Option<String>,
    #[arg(long)]
    pub clients: Option<u64>,
    /// unordered_nonduplicating (alias unordered), unordered_duplicating, ordered.
    #[arg(long)]
    pub network: Option<String>,
    /// Safety: servers that may be down at once. Liveness: crashes in total.
    #[arg(long)]
    pub crashes: Option<u64>,
    /// Do not also run each step the runtime's way (deltas, no ghosts) and
    /// compare: faster, and the deployed node is then not checked to be
    /// the checked one.
    #[arg(long)]
    pub no_delta_check: bool,
    /// Clients resend a timed-out request to the next server at most N
    /// times, then give up on it (the runtime client's policy). Liveness
    /// checks otherwise resend without end where faults can lose requests.
    #[arg(long, value_name = "N")]
    pub retries: Option<u64>,
    /// The capacity of the service's session table (its `sessions N`).
    #[arg(long, value_name = "N")]
    pub sessions: Option<u64>,
    /// Messages may be lost (safety mode).
    #[arg(long)]
    pub lossy: bool,
    /// Liveness: messages that may be lost in total.
    #[arg(long)]
    pub drops: Option<u64>,
    /// Liveness: timer firings that may break the timing model in total
    /// (racing timeouts, e.g. two candidates within one message delay).
    #[arg(long)]
    pub races: Option<u64>,
    /// Liveness: servers that may stop for good (crash and never recover).
    #[arg(long, value_name = "N")]
    pub stops: Option<u64>,
    /// Breadth-first search (shortest counterexamples; the default).
    #[arg(long, conflicts_with = "dfs")]
    pub bfs: bool,
    /// Depth-first search (less memory).
    #[arg(long)]
    pub dfs: bool,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, conflicts_with = "no_max_depth")]
    pub max_depth: Option<u64>,
    /// Search without the check's depth bound (`max_depth` in its block).
    #[arg(long)]
    pub no_max_depth: bool,
    #[arg(long)]
    pub max_states: Option<u64>,
    /// Memory budget (e.g. 4GiB, 512M; default: half of physical memory).
    /// The BFS frontier, the visited set and a liveness graph's index and
    /// edges move to disk to stay within it; a search that still does not
    /// fit stops at it with verdict unknown.
    #[arg(long, value_name = "SIZE", value_parser = crate::memory::parse_size)]
    pub memory: Option<u64>,
    /// Where the BFS frontier and the visited set spill to disk (default:
    /// the system's temporary directory). The files are unnamed: nothing is
    /// left behind.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<std::path::PathBuf>,
    /// Keep the BFS frontier as live states in RAM, without a bound (the
    /// layout before the encoded frontier; for benchmarks).
    #[arg(long, hide = true)]
    pub live_frontier: bool,
    /// Keep at most SIZE of the BFS frontier in RAM (below the budget's
    /// share; 0 sends it all to disk). For tests and benchmarks.
    #[arg(long, hide = true, value_name = "SIZE", value_parser = parse_frontier_ram)]
    pub frontier_ram: Option<u64>,
    /// Keep at most SIZE of the visited set in RAM (below the budget's
    /// share; 0: one page per shard); the rest spills to disk. For tests and
    /// benchmarks.
    #[arg(long, hide = true, value_name = "SIZE", value_parser = parse_frontier_ram)]
    pub visited_ram: Option<u64>,
    /// Reduce by permutations of interchangeable servers.
    #[arg(long, conflicts_with = "no_symmetry")]
    pub symmetry: bool,
    #[arg(long)]
    pub no_symmetry: bool,
    /// Symmetry's representative from each server's own state only (the
    /// form before ties were refined; for benchmarks).
    #[arg(long, hide = true)]
    pub symmetry_local: bool,
    /// Instead of checking: search every reachable state with symmetry off
    /// and count the classes they form under server permutations
    /// (Burnside's lemma; at most this many states). For benchmarks.
    #[arg(long, hide = true, value_name = "STATES_MAX")]
    pub count_classes: Option<u64>,
    /// safety or liveness.
    #[arg(long)]
    pub mode: Option<String>,
    /// Write the report as JSON to this file (`-` for stdout).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<String>,
    /// Exit 0 when every check's outcome is what its `expect` says.
    #[arg(long)]
    pub expect: bool,
    /// Progress lines on stderr every this many seconds (0: never).
    #[arg(long)]
    pub progress: Option<u64>,
    /// Random walks instead of exhaustive search (see --seed, --walks).
    #[arg(long)]
    pub simulate: bool,
    /// Simulation: the seed; walk k of seed S always takes the same steps.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Simulation: how many walks.
    #[arg(long, default_value_t = 1000)]
    pub walks: u64,
    /// Simulation: replay only this walk.
    #[arg(long)]
    pub walk: Option<u64>,
    /// Simulation: run only shard i of n (walk k belongs to shard k mod n).
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Serve stateright's Explorer on this address (default 127.0.0.1:3000).
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:3000")]
    pub explore: Option<String>,
}

pub fn main<P: Protocol>(args: Vec<String>) -> i32 {
    main_to::<P>(args, &mut std::io::stdout())
}

/// `main` with its standard output given (tests read it).
pub fn main_to<P: Protocol>(args: Vec<String>, stdout: &mut dyn std::io::Write) -> i32 {
    let args = match Args::try_parse_from(std::iter::once("smelt check".to_string()).chain(args)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let configs = match select_configs::<P>(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let spec = std::env::var("SMELT_SPEC_PATH").unwrap_or_else(|_| P::SPEC.to_string());
    if let Some(addr) = &args.explore {
        return crate::explore::serve::<P>(configs.into_iter().next().unwrap_or_else(default_config::<P>), addr);
    }
    if let Some(max) = args.count_classes {
        return count_classes::<P>(&spec, configs, max);
    }
    let mut reports = Vec::new();
    let mut usage_error = false;
    // With `--json -` stdout is the JSON document alone: the human summary
    // goes to stderr.
    let json_on_stdout = args.json.as_deref() == Some("-");
    let mut say = |text: &str| {
        if json_on_stdout {
            eprint!("{text}");
        } else {
            let _ = stdout.write_all(text.as_bytes());
        }
    };
    for cfg in configs {
        say(&format!("check `{}` of {} ({}):\n", cfg.name, spec, cfg.describe()));
        crate::search::reset_peak_rss();
        let progress = match args.progress {
            Some(0) => None,
            Some(n) => Some(Duration::from_secs(n)),
            None if std::io::stderr().is_terminal() => Some(Duration::from_secs(5)),
            None => None,
        };
        let result = if args.simulate {
            let shard = match parse_shard(args.shard.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let opts = crate::simulate::SimOptions {
                seed: args.seed,
                walks: args.walks,
                max_depth: args.max_depth.unwrap_or(100),
                shard,
                walk: args.walk,
            };
            crate::simulate::run::<P>(&spec, cfg.clone(), &opts)
        } else if cfg.liveness {
            crate::liveness::run::<P>(&spec, cfg.clone(), progress)
        } else {
            run_safety::<P>(&spec, cfg.clone(), progress)
        };
        match result {
            Ok(mut r) => {
                r.judge(&cfg.expect);
                r.spec_sha256 = spec_sha256(&spec);
                say(&format!("{}\n", render_summary(&r)));
                reports.push(r);
            }
            Err(e) => {
                eprintln!("error: {e}");
                usage_error = true;
            }
        }
    }
    if let Some(path) = &args.json {
        let text = match serde_json::to_string_pretty(&reports) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        if path == "-" {
            let _ = writeln!(stdout, "{text}");
        } else if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {path}: {e}");
            return 2;
        }
    }
    if usage_error {
        return 2;
    }
    if args.expect {
        let all = reports.iter().all(|r| r.as_expected.unwrap_or(!r.violated()));
        return if all { 0 } else { 1 };
    }
    if reports.iter().any(CheckReport::violated) {
        1
    } else if reports.iter().any(|r| r.stats.out_of_resources) {
        3
    } else {
        0
    }
}

/// SHA-256 of the spec file's text, in hex (None if it cannot be read):
/// reports of one search run on several machines name the same spec.
fn spec_sha256(path: &str) -> Option<String> {
    std::fs::read(path).ok().map(|t| crate::report::sha256_hex(&t))
}

/// `--count-classes`: per config, the reachable states and their classes
/// under server permutations, counted without the reduction.
fn count_classes<P: Protocol>(spec: &str, configs: Vec<RunConfig>, max: u64) -> i32 {
    for mut cfg in configs {
        // `symmetry` stays as the check says: it makes clients pick servers
        // nondeterministically, which the reachable set needs to be closed
        // under the permutations; states are not reduced here either way.
        cfg.max_depth = None;
        let sys = match System::<P>::new(cfg.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let started = std::time::Instant::now();
        match crate::symmetry::count_classes(&sys, max) {
            Ok((states, classes)) => println!(
                "check `{}` of {spec}: {states} states, {classes} symmetry classes (Burnside's lemma, {:.2} s)",
                cfg.name,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("error: check `{}`: {e}", cfg.name);
                return 3;
            }
        }
    }
    0
}

fn default_config<P: Protocol>() -> RunConfig {
    RunConfig::from_check(&CheckConfig {
        name: "default".into(),
        index: 0,
        servers: P::roles().iter().map(|_| 3).collect(),
        clients: 0,
        network: NetworkKind::UnorderedNonDuplicating,
        lossy: false,
        drops: 0,
        races: 0,
        crash: 0,
        stops: 0,
        retries: None,
        sessions: None,
        mode: smelt_support::Mode::Safety,
        symmetry: false,
        max_depth: None,
        max_states: None,
        strategy: Strategy::Bfs,
        threads: None,
        timing: smelt_support::Timing::Any,
        expect: smelt_support::Expect::Unspecified,
        bound: None,
        skip: Vec::new(),
    })
}

/// The configs to run: the spec's `check` blocks (or one), with overrides.
pub fn select_configs<P: Protocol>(args: &Args) -> Result<Vec<RunConfig>, String> {
    let checks = P::checks();
    let mut configs: Vec<RunConfig> = match &args.config {
        Some(name) => vec![RunConfig::of_check::<P>(name)?],
        None if checks.is_empty() => vec![default_config::<P>()],
        None => checks.iter().map(RunConfig::from_check).collect(),
    };
    for c in &mut configs {
        if let Some(s) = &args.servers {
            c.servers = parse_servers::<P>(s)?;
        }
        if let Some(n) = args.clients {
            c.clients = n;
        }
        if let Some(n) = &args.network {
            c.network = NetworkKind::parse(n).ok_or_else(|| format!("unknown network `{n}`"))?;
        }
        if let Some(k) = args.crashes {
            c.crash = k;
        }
        if args.lossy {
            c.lossy = true;
        }
        if let Some(d) = args.drops {
            c.drops = d;
        }
        if let Some(r) = args.races {
            c.races = r;
        }
        if let Some(n) = args.stops {
            c.stops = n;
        }
        if args.dfs {
            c.strategy = Strategy::Dfs;
        }
        if args.bfs {
            c.strategy = Strategy::Bfs;
        }
        if let Some(t) = args.threads {
            c.threads = t.max(1);
        }
        if args.max_depth.is_some() {
            c.max_depth = args.max_depth;
        }
        if args.no_max_depth {
            c.max_depth = None;
        }
        if args.max_states.is_some() {
            c.max_states = args.max_states;
        }
        if args.memory.is_some() {
            c.memory = args.memory;
        }
        if let Some(d) = &args.spill_dir {
            if !d.is_dir() {
                return Err(format!("--spill-dir {}: not a directory", d.display()));
            }
            c.spill_dir = Some(d.clone());
        }
        if args.live_frontier {
            c.live_frontier = true;
        }
        if args.frontier_ram.is_some() {
            c.frontier_ram = args.frontier_ram;
        }
        if args.visited_ram.is_some() {
            c.visited_ram = args.visited_ram;
        }
        if args.symmetry {
            if !P::SYMMETRIC {
                return Err("this protocol is not symmetric: its behaviour depends on how servers are numbered (see `smelt lint`)".into());
            }
            c.symmetry = true;
        }
        if args.no_symmetry {
            c.symmetry = false;
        }
        if args.symmetry_local {
            c.symmetry_local = true;
        }
        match args.mode.as_deref() {
            None => {}
            Some("safety") => c.liveness = false,
            Some("liveness") => {
                c.liveness = true;
                c.partial_synchrony = true;
            }
            Some(m) => return Err(format!("unknown mode `{m}`: expected `safety` or `liveness`")),
        }
        if let Some(r) = args.retries {
            c.retries = Some(r);
        }
        if args.no_delta_check {
            c.delta_check = false;
        }
        if let Some(n) = args.sessions {
            if P::SESSIONS.is_none() {
                return Err("`--sessions`: this protocol's service keeps no session table".into());
            }
            c.sessions = Some(n.max(1));
        }
        if c.servers.len() != P::roles().len() {
            return Err("servers must give a count for every role".into());
        }
        if c.stops > 0 && !c.liveness {
            return Err(format!(
                "check `{}`: `stops` is a fault of liveness checks (`--mode liveness`); in safety mode `--crashes` already covers servers that never come back",
                c.name
            ));
        }
    }
    if args.mode.is_some() && args.config.is_none() {
        let want_liveness = args.mode.as_deref() == Some("liveness");
        let matching: Vec<RunConfig> = checks
            .iter()
            .map(RunConfig::from_check)
            .filter(|c| c.liveness == want_liveness)
            .collect();
        if !matching.is_empty() && args.servers.is_none() {
            return Ok(matching);
        }
    }
    Ok(configs)
}

fn parse_frontier_ram(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    crate::memory::parse_size(s)
}

fn parse_shard(s: Option<&str>) -> Result<(u64, u64), String> {
    let Some(s) = s else { return Ok((0, 1)) };
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("expected `--shard i/n`, got `{s}`"))?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| format!("bad shard `{s}`"))?,
        n.trim().parse().map_err(|_| format!("bad shard `{s}`"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("bad shard `{s}`: need 0 <= i < n"));
    }
    Ok((i, n))
}

fn parse_servers<P: Protocol>(s: &str) -> Result<Vec<u64>, String> {
    let roles = P::roles();
    if let Ok(n) = s.parse::<u64>() {
        if roles.len() != 1 {
            return Err(format!(
                "this protocol has {} roles; write `--servers {}`",
                roles.len(),
                roles
                    .iter()
                    .map(|r| format!("{}=1", r.name))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        return Ok(vec![n]);
    }
    let mut out = vec![0; roles.len()];
    for part in s.split(',') {
        let (name, n) = part
            .split_once('=')
            .ok_or_else(|| format!("expected `Role=N`, got `{part}`"))?;
        let r = roles
            .iter()
            .position(|x| x.name == name.trim())
            .ok_or_else(|| format!("unknown role `{name}`"))?;
        out[r] = n.trim().parse().map_err(|_| format!("not a count: `{n}`"))?;
    }
    Ok(out)
}

/// Runs one check (safety or liveness, per its config), judges it against
/// its `expect`, and returns the report. The library entry point for tests
/// and benchmarks.
pub fn run_check<P: Protocol>(spec: &str, cfg: RunConfig) -> Result<CheckReport, String> {
    let expect = cfg.expect.clone();
    let mut r = if cfg.liveness {
        crate::liveness::run::<P>(spec, cfg, None)?
    } else {
        run_safety::<P>(spec, cfg, None)?
    };
    r.judge(&expect);
    Ok(r)
}

/// Runs one safety check and builds its report.
pub fn run_safety<P: Protocol>(spec: &str, cfg: RunConfig, progress: Option<Duration>) -> Result<CheckReport, String> {
    if cfg.symmetry && !P::SYMMETRIC {
        return Err("symmetry requested for a protocol that is not symmetric".into());
    }
    let sys = System::<P>::new(cfg.clone())?;
    let mut search = Search::new(&sys);
    search.progress = progress;
    let stats = search.run();
    let discoveries = search.discoveries.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let props = safety_verdicts::<P>(&cfg, &discoveries, &stats, search.props.linearizable, |id, d| {
        let Some(trace) = reconstruct(&search, d) else {
            return (None, None, Some("the counterexample could not be rebuilt".into()));
        };
        let last = trace.last();
        let mut text = String::new();
        let kind = format!("{:?}", id.kind::<P>()).to_lowercase();
        // "invariant Agreement", but just "linearizable" for the built-in.
        let what = if kind == id.name::<P>() {
            kind.clone()
        } else {
            format!("{kind} {}", id.name::<P>())
        };
        let _ = writeln!(text, "counterexample for {what} ({} steps):", trace.steps.len());
        text.push_str(&render(&sys, &trace));
        let detail = match id {
            PropId::HandlerError => crate::props::first_failure(last).map(|(i, e)| {
                let file = if e.at.2 == 1 && !P::SPEC_BASE.is_empty() {
                    P::SPEC_BASE
                } else {
                    spec
                };
                let at = format!(
                    "{}:{}:{}",
                    std::path::Path::new(file)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    e.at.0,
                    e.at.1
                );
                format!(
                    "{} stopped: {} at {at}{}",
                    crate::trace::node_name(&sys, smelt_support::Id::from(i)),
                    e.kind.describe(),
                    if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", e.detail)
                    }
                )
            }),
            PropId::Linearizable => Some("the client histories have no linearization".into()),
            PropId::Spec(_) => None,
        };
        let _ = writeln!(
            text,
            "  ✗ {what} fails here{}",
            detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
        );
        if let PropId::Spec(i) = id {
            let _ = writeln!(text, "      {}", P::properties()[i].text);
        }
        if id == PropId::Linearizable {
            text.push_str(&crate::liveness::render_history(&sys, last));
        }
        let _ = writeln!(text, "    node states:");
        text.push_str(&render_nodes(&sys, last));
        (Some(steps(&sys, &trace)), Some(text), detail)
    });
    let mut props = props;
    let searched = stats.complete
        || stats
            .stopped
            .as_deref()
            .is_some_and(|w| w.starts_with("reached max_depth"));
    props.push(crate::report::delta_report(&sys.delta, &cfg, searched));
    Ok(CheckReport {
        spec: spec.to_string(),
        protocol: P::NAME.to_string(),
        check: cfg.name.clone(),
        mode: "safety",
        config: cfg,
        stats: StatsReport {
            bound_cut: sys.cut.load(std::sync::atomic::Ordering::Relaxed),
            ..StatsReport::from(&stats)
        },
        properties: props,
        assumptions: Vec::new(),
        expected: None,
        as_expected: None,
        seed_walk: None,
        spec_sha256: None,
        simulation: None,
    })
}
