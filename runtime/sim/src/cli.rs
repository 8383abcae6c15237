//! `smelt sim spec.sm`: seeded runs of the real node code under faults.

use crate::world::{run, Options, Outcome, Stats, Verdict};
use clap::Parser;
use smelt_support::{CheckConfig, Protocol};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "smelt sim",
    about = "Run the spec's deployed node code (event loop, storage, recovery, client policy) for every node of a cluster in one process, under a seeded scheduler with network, disk and clock faults; check the spec's invariants, linearizability, and progress once the faults stop.",
    after_help = "Exit codes: 0 every run passed; 1 a run failed (its seed and event trace are printed: `--seed S --runs 1 --trace` replays it); 2 usage."
)]
pub struct Args {
    /// The `check` block whose servers, clients and workload the runs use
    /// (default: the first with clients).
    #[arg(long)]
    pub config: Option<String>,
    /// The first seed; run k uses seed + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 100)]
    pub runs: u64,
    /// Servers: a count (one-role protocols) or per role, comma-separated.
    #[arg(long)]
    pub servers: Option<String>,
    #[arg(long)]
    pub clients: Option<u64>,
    /// How often each client runs its workload.
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Simulated milliseconds with faults.
    #[arg(long, default_value_t = 3_000)]
    pub fault_ms: u64,
    /// Simulated milliseconds after the faults for every client to finish.
    #[arg(long, default_value_t = 20_000)]
    pub quiet_ms: u64,
    #[arg(long)]
    pub no_crash: bool,
    #[arg(long)]
    pub no_partition: bool,
    #[arg(long)]
    pub no_disk: bool,
    #[arg(long)]
    pub no_clock: bool,
    /// Print every event of every run (use with one run).
    #[arg(long)]
    pub trace: bool,
}

/// Each client's requests.
pub type Workloads<P> = Vec<Vec<<P as Protocol>::Request>>;

/// The options and workloads of a run of check `c`.
pub fn setup<P: Protocol>(c: &CheckConfig, args: &Args) -> Result<(Options, Workloads<P>), String> {
    let mut servers = c.servers.clone();
    if let Some(s) = &args.servers {
        servers = s
            .split(',')
            .map(|x| x.trim().parse::<u64>().map_err(|e| format!("--servers `{s}`: {e}")))
            .collect::<Result<_, _>>()?;
    }
    if servers.len() != P::roles().len() {
        return Err("--servers needs a count for every role".into());
    }
    let clients = args.clients.unwrap_or(c.clients);
    let mut workloads = Vec::new();
    for k in 0..clients {
        workloads.push(P::workload(c.index, k).map_err(|e| format!("the workload of client {k} fails: {e}"))?);
    }
    let opts = Options {
        seed: args.seed,
        servers,
        clients,
        rounds: args.rounds,
        fault_ms: args.fault_ms,
        quiet_ms: args.quiet_ms,
        crash: !args.no_crash,
        partition: !args.no_partition,
        disk: !args.no_disk,
        clock: !args.no_clock,
        trace: args.trace,
        check: c.name.clone(),
        sessions_max: c.sessions,
        ..Options::default()
    };
    Ok((opts, workloads))
}

/// Totals over many runs.
#[derive(Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub failed: Vec<Outcome>,
    pub totals: Stats,
    pub wall_seconds: f64,
}

fn add(t: &mut Stats, s: &Stats) {
    t.events += s.events;
    t.virtual_us += s.virtual_us;
    t.handlers += s.handlers;
    t.frames += s.frames;
    t.ops += s.ops;
    t.ok += s.ok;
    t.unknown += s.unknown;
    t.crashes += s.crashes;
    t.restarts += s.restarts;
    t.partitions += s.partitions;
    t.torn_writes += s.torn_writes;
    t.flips_refused += s.flips_refused;
    t.disk_failures += s.disk_failures;
    t.snapshots += s.snapshots;
    t.invariant_checks += s.invariant_checks;
}

/// Runs seeds `opts.seed .. opts.seed + runs`, on as many threads as the
/// machine has cores (each run is a function of its seed alone, so the
/// results do not depend on how they are spread). With `stop`, no run
/// starts after a failure, and the failure reported is the lowest failing
/// seed among those run.
pub fn run_many<P: Protocol>(
    opts: &Options,
    workloads: &[Vec<P::Request>],
    runs: u64,
    stop: bool,
) -> Result<Summary, String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;
    let start = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(runs.max(1) as usize);
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Result<Outcome, String>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if stop && failed.load(Ordering::Relaxed) {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= runs {
                    return;
                }
                let o = Options {
                    seed: opts.seed + k,
                    ..opts.clone()
                };
                let out = run::<P>(&o, workloads);
                if out.as_ref().map_or(true, |o| o.verdict != Verdict::Ok) {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().unwrap_or_else(|e| e.into_inner()).push(out);
            });
        }
    });
    let mut outcomes = Vec::new();
    for r in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        outcomes.push(r?);
    }
    outcomes.sort_by_key(|o| o.seed);
    let mut sum = Summary::default();
    for out in outcomes {
        sum.runs += 1;
        add(&mut sum.totals, &out.stats);
        if out.verdict != Verdict::Ok {
            sum.failed.push(out);
        }
    }
    sum.wall_seconds = start.elapsed().as_secs_f64();
    Ok(sum)
}

pub fn render(spec: &str, check: &str, sum: &Summary) -> String {
    let t = &sum.totals;
    let secs = sum.wall_seconds.max(1e-9);
    format!(
        "sim `{check}` of {spec}: {} run(s), {} failed\n  \
         {:.1} runs/s, {:.1} simulated s per wall s ({:.1} simulated s in {:.2} s)\n  \
         {} events, {} handlers, {} frames; {} requests: {} answered, {} unknown\n  \
         faults: {} crashes ({} torn writes, {} flipped bits refused), {} disk failures, {} partitions; {} restarts, {} snapshots",
        sum.runs,
        sum.failed.len(),
        sum.runs as f64 / secs,
        t.virtual_us as f64 / 1e6 / secs,
        t.virtual_us as f64 / 1e6,
        secs,
        t.events,
        t.handlers,
        t.frames,
        t.ops,
        t.ok,
        t.unknown,
        t.crashes,
        t.torn_writes,
        t.flips_refused,
        t.disk_failures,
        t.partitions,
        t.restarts,
        t.snapshots,
    )
}

/// The long help of `smelt sim`, which does not depend on the spec.
pub fn help() -> String {
    use clap::CommandFactory;
    Args::command()
        .override_usage("smelt sim <SPEC> [OPTIONS]")
        .render_long_help()
        .to_string()
}

pub fn main<P: Protocol>(argv: Vec<String>) -> i32 {
    let args = match Args::try_parse_from(std::iter::once("smelt sim".to_string()).chain(argv)) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let checks = P::checks();
    let check = match &args.config {
        Some(name) => checks.iter().find(|c| &c.name == name),
        None => checks.iter().find(|c| c.clients > 0),
    };
    let Some(check) = check else {
        eprintln!("error: no check with clients to take the configuration from (or no `--config` of that name)");
        return 2;
    };
    let (opts, workloads) = match setup::<P>(check, &args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let sum = match run_many::<P>(&opts, &workloads, args.runs, true) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    println!("{}", render(P::SPEC, &check.name, &sum));
    if args.trace && sum.failed.is_empty() {
        if let Ok(out) = run::<P>(&opts, &workloads) {
            for line in &out.trace {
                println!("{line}");
            }
        }
    }
    let Some(bad) = sum.failed.first() else { return 0 };
    // Replay the failing seed with its trace.
    let replay = run::<P>(
        &Options {
            seed: bad.seed,
            trace: true,
            ..opts.clone()
        },
        &workloads,
    );
    if let Ok(r) = replay {
        let tail = r.trace.len().saturating_sub(400);
        if tail > 0 {
            println!(
                "  ... {tail} earlier events (all of them: --seed {} --runs 1 --trace)",
                bad.seed
            );
        }
        for line in &r.trace[tail..] {
            println!("  {line}");
        }
    }
    if let Verdict::Violation { what, at_us } = &bad.verdict {
        println!(
            "✗ seed {} fails at {:.3} simulated ms: {what}\n  replay: smelt sim {} --config {} --seed {} --runs 1 --trace",
            bad.seed,
            *at_us as f64 / 1000.0,
            P::SPEC,
            check.name,
            bad.seed
        );
    }
    1
}
