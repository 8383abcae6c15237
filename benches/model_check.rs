//! Model-checking benchmarks, printed as tables (`cargo bench --bench model_check`).
//!
//! 1. `smelt check` on `specs/paxos.sm` against stateright's own
//!    `examples/paxos.rs`, built from the stateright package cargo already
//!    downloaded (nothing copied): same configuration (3 servers, 2 or 3
//!    clients, unordered non-duplicating network), same strategy, same
//!    thread count (stateright's example uses one thread per CPU). Runs
//!    alternate A B A B; each row reports unique states, wall time, states
//!    per second and peak RSS, and the smelt/stateright ratios.
//! 2. Liveness against safety mode on the same configurations: states, time
//!    and memory side by side, and the ratio of peak memory per state.
//! 3. The BFS frontier encoded in chunks (the default) against live states
//!    in RAM (`--live-frontier`, the layout before), one thread, same run:
//!    speed and peak memory per state, as ratios. raft.sm's `all_faults`
//!    (to depth 13) needed about 14 GiB with live states. A third run puts
//!    everything it can on disk (`--frontier-ram 0 --visited-ram 0`).
//! 4. BFS with 1 and 2 threads: the speed-up.
//! 5. Symmetry reduction: the states kept with ties refined (the default)
//!    and with each server's own state only (`--symmetry-local`, the form
//!    before), against the number of symmetry classes, counted without the
//!    reduction by Burnside's lemma (`--count-classes`): TwoPhase from the
//!    TLA+ examples (`specs/bench/two_phase_tla.sm`, TLC's state counts)
//!    with 5 to 8 resource managers, and raft.sm's `crash`.
//!
//! The machine is shared and noisy: `uptime` is printed beside each round.
//! Set `SMELT_BENCH_ROUNDS` (default 2) and `SMELT_BENCH_QUICK=1` (2 clients
//! only) to change the amount of work, `SMELT_BENCH_SECTIONS=3,5` to run
//! some sections only.

use std::path::{Path, PathBuf};
use std::process::Command;

const SMELT: &str = env!("CARGO_BIN_EXE_smelt");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Run {
    unique: u64,
    seconds: f64,
    rss_kib: u64,
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs a command under GNU time; returns its stdout+stderr, wall seconds
/// and peak RSS.
fn timed(cmd: &mut Command) -> (String, f64, u64) {
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-f")
        .arg("SMELT_TIME %e %M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let out = wrapped
        .output()
        .expect("run /usr/bin/time (install the `time` package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("SMELT_TIME"))
        .unwrap_or("SMELT_TIME 0 0");
    let mut it = line.split_whitespace().skip(1);
    let secs = it.next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let rss = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    (text, secs, rss)
}

fn number_after(text: &str, key: &str) -> u64 {
    text.find(key)
        .map(|i| {
            text[i + key.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// The unique-state count from a `smelt check` summary line.
fn smelt_unique(text: &str) -> u64 {
    text.lines()
        .find(|l| l.contains("unique states"))
        .and_then(|l| l.trim().split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

fn stateright_dir() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(Path::new(ROOT).join("Cargo.toml"))
        .output()
        .expect("cargo metadata");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let pkg = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "stateright"))
        .expect("stateright in the dependency graph");
    PathBuf::from(pkg["manifest_path"].as_str().expect("manifest path"))
        .parent()
        .expect("package dir")
        .to_path_buf()
}

/// Builds stateright's paxos example in its own target directory.
fn stateright_paxos() -> PathBuf {
    let dir = stateright_dir();
    let target = Path::new(ROOT).join("target").join("stateright-example");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--example", "paxos", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("build stateright's example");
    assert!(status.success(), "building stateright's paxos example failed");
    target.join("release").join("examples").join("paxos")
}

/// Builds (if needed) the harness `smelt check` uses for a spec (the
/// check-only one, `...-check`) and returns its binary.
fn harness(spec: &str) -> PathBuf {
    let out = Command::new(SMELT)
        .args(["check", spec, "--max-states", "1", "--progress", "0"])
        .current_dir(ROOT)
        .output()
        .expect("smelt");
    let _ = out;
    let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().to_string();
    let dir = Path::new(ROOT)
        .join("target")
        .join("smelt-harness")
        .join("target")
        .join("release");
    std::fs::read_dir(&dir)
        .expect("harness dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with(&format!("smelt-harness-{stem}-")) && n.ends_with("-check")
        })
        .expect("harness binary")
}

fn row(tool: &str, cfg: &str, strategy: &str, r: &Run) {
    let per_sec = r.unique as f64 / r.seconds.max(1e-9);
    let bytes_per_state = r.rss_kib as f64 * 1024.0 / r.unique.max(1) as f64;
    println!(
        "| {cfg:<10} | {strategy:<4} | {tool:<10} | {:>10} | {:>8.2} | {:>10.0} | {:>9.1} | {:>8.0} |",
        r.unique,
        r.seconds,
        per_sec,
        r.rss_kib as f64 / 1024.0,
        bytes_per_state
    );
}

fn main() {
    let rounds: usize = std::env::var("SMELT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let quick = std::env::var_os("SMELT_BENCH_QUICK").is_some();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    let sections: Vec<u32> = std::env::var("SMELT_BENCH_SECTIONS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| (1..=5).collect());
    let want = |k: u32| sections.contains(&k);
    if want(1) {
        println!("building stateright's examples/paxos.rs and the smelt harness for specs/paxos.sm ...");
        let sr = stateright_paxos();
        let paxos = harness("specs/paxos.sm");

        println!();
        println!(
            "## smelt check vs stateright examples/paxos.rs ({threads} threads each, {rounds} alternating rounds)"
        );
        println!();
        println!("| config     | alg  | tool       |     unique |     secs |   states/s |  RSS MiB |  B/state |");
        println!("|------------|------|------------|-----------:|---------:|-----------:|---------:|---------:|");
        let configs: Vec<(&str, &str, &str)> = if quick {
            vec![("2 clients", "2", "small")]
        } else {
            vec![("2 clients", "2", "small"), ("3 clients", "3", "three_clients")]
        };
        let mut ratios = Vec::new();
        for (label, clients, smelt_cfg) in &configs {
            for strategy in ["bfs", "dfs"] {
                let (mut s_best, mut r_best): (Option<Run>, Option<Run>) = (None, None);
                for round in 0..rounds {
                    let (text, secs, rss) =
                        timed(Command::new(&sr).args([format!("check-{strategy}").as_str(), clients]));
                    // The final line is "Done. states=…, unique=…"; earlier ones are progress.
                    let done = text.lines().rev().find(|l| l.starts_with("Done.")).unwrap_or("");
                    let sr_run = Run {
                        unique: number_after(done, "unique="),
                        seconds: secs,
                        rss_kib: rss,
                    };
                    let (text, secs, rss) = timed(Command::new(&paxos).args([
                        "check",
                        "--config",
                        smelt_cfg,
                        "--threads",
                        threads.as_str(),
                        format!("--{strategy}").as_str(),
                        "--progress",
                        "0",
                    ]));
                    let smelt_run = Run {
                        unique: smelt_unique(&text),
                        seconds: secs,
                        rss_kib: rss,
                    };
                    eprintln!("  round {} {label} {strategy}: load {}", round + 1, uptime());
                    row("stateright", label, strategy, &sr_run);
                    row("smelt", label, strategy, &smelt_run);
                    if s_best.as_ref().is_none_or(|b| smelt_run.seconds < b.seconds) {
                        s_best = Some(smelt_run);
                    }
                    if r_best.as_ref().is_none_or(|b| sr_run.seconds < b.seconds) {
                        r_best = Some(sr_run);
                    }
                }
                if let (Some(s), Some(r)) = (s_best, r_best) {
                    ratios.push((
                        label.to_string(),
                        strategy,
                        r.seconds / s.seconds.max(1e-9),
                        (r.rss_kib as f64 / r.unique.max(1) as f64) / (s.rss_kib as f64 / s.unique.max(1) as f64),
                        s.unique == r.unique,
                    ));
                }
            }
        }
        println!();
        println!(
            "| config     | alg  | speed smelt/stateright | memory per state stateright/smelt | same unique states |"
        );
        println!(
            "|------------|------|-----------------------:|----------------------------------:|--------------------|"
        );
        for (label, strategy, speed, mem, same) in &ratios {
            println!("| {label:<10} | {strategy:<4} | {speed:>22.2} | {mem:>33.2} | {same} |");
        }
        println!(
            "(ratios from the best round of each tool; > 1.00 means smelt is faster / leaner. stateright's example"
        );
        println!(" reports progress once a second, so its times on the small config are dominated by that period.)");
    }
    if want(2) {
        println!();
        println!("## liveness vs safety mode on the same configuration (1 thread)");
        println!();
        println!("Liveness keeps the whole state graph (its edges on disk, `edges.rs`); a state of");
        println!("a liveness graph also carries fault counters and owed deliveries, so the two modes");
        println!("reach different numbers of states: the ratio compares peak memory per state.");
        println!();
        println!(
            "| spec / config | mode | states | edges | secs | peak RSS MiB | bytes/state | liveness/safety per state |"
        );
        println!("|---|---|--:|--:|--:|--:|--:|--:|");
        for (spec, cfg, extra) in [
            ("specs/paxos.sm", "small", &[][..]),
            ("specs/abd.sm", "concurrent", &[][..]),
            ("specs/two_phase_commit.sm", "lossy", &[][..]),
            ("specs/raft.sm", "elections_race", &[][..]),
            ("specs/two_phase_commit.sm", "progress", &["--crashes", "2"][..]),
            ("specs/raft.sm", "progress", &["--clients", "2"][..]),
            ("specs/primary_backup.sm", "progress", &[][..]),
        ] {
            let bin = harness(spec);
            let mut safety_per_state = None;
            for mode in ["safety", "liveness"] {
                let (text, secs, rss) = timed(
                    Command::new(&bin)
                        .args([
                            "check",
                            "--config",
                            cfg,
                            "--mode",
                            mode,
                            "--threads",
                            "1",
                            "--progress",
                            "0",
                        ])
                        .args(extra),
                );
                let line = text.lines().find(|l| l.contains("unique states")).unwrap_or("");
                let states = smelt_unique(&text);
                let edges = number_after(line, "(");
                let per_state = rss as f64 * 1024.0 / states.max(1) as f64;
                let ratio = match safety_per_state {
                    None => {
                        safety_per_state = Some(per_state);
                        String::new()
                    }
                    Some(s) => format!("{:.2}", per_state / s),
                };
                let name = format!(
                    "{} / {cfg}{}{}",
                    Path::new(spec).file_stem().unwrap().to_string_lossy(),
                    if extra.is_empty() { "" } else { " " },
                    extra.join(" ")
                );
                println!(
                    "| {name} | {mode} | {states} | {edges} | {secs:.2} | {:.1} | {per_state:.0} | {ratio} |",
                    rss as f64 / 1024.0
                );
            }
        }
        println!();
        println!("(Small graphs are dominated by the process's own few MiB: compare the large rows.)");
    }
    if want(3) {
        frontier_vs_live(quick);
    }
    if want(4) {
        thread_speedup(quick);
    }
    if want(5) {
        symmetry(quick);
    }
    println!();
    println!("load average at the end: {}", uptime());
}

/// One `smelt check` run of a harness with `args`.
fn smelt_run(bin: &Path, config: &str, args: &[&str]) -> Run {
    let (text, secs, rss) = timed(
        Command::new(bin)
            .args(["check", "--config", config, "--progress", "0"])
            .args(args),
    );
    Run {
        unique: smelt_unique(&text),
        seconds: secs,
        rss_kib: rss,
    }
}

fn frontier_vs_live(quick: bool) {
    println!();
    println!("## BFS frontier: encoded chunks (new) vs live states (old), 1 thread, alternating");
    println!();
    println!("| config     | alg  | tool       |     unique |     secs |   states/s |  RSS MiB |  B/state |");
    println!("|------------|------|------------|-----------:|---------:|-----------:|---------:|---------:|");
    let mut cases = vec![("specs/paxos.sm", "three_clients"), ("specs/raft.sm", "crash")];
    if quick {
        cases = vec![("specs/paxos.sm", "small")];
    } else if std::env::var_os("SMELT_BENCH_SKIP_ALL_FAULTS").is_none() {
        cases.push(("specs/raft.sm", "all_faults"));
    }
    let mut ratios = Vec::new();
    let mut disk_ratios = Vec::new();
    for (spec, cfg) in cases {
        let bin = harness(spec);
        // The live layout is unbounded: give both the same large budget so
        // that neither stops.
        let common = ["--threads", "1", "--memory", "22GiB"];
        let new = smelt_run(&bin, cfg, &common);
        let old = smelt_run(&bin, cfg, &[&common[..], &["--live-frontier"]].concat());
        // Everything the search can put on disk there: the frontier and the
        // visited set (one page per shard in RAM).
        let disk = smelt_run(
            &bin,
            cfg,
            &[&common[..], &["--frontier-ram", "0", "--visited-ram", "0"]].concat(),
        );
        eprintln!("  {spec} {cfg}: load {}", uptime());
        row("encoded", cfg, "bfs", &new);
        row("live", cfg, "bfs", &old);
        row("all disk", cfg, "bfs", &disk);
        disk_ratios.push((cfg, new.seconds / disk.seconds.max(1e-9), disk.unique == new.unique));
        ratios.push((
            cfg,
            old.seconds / new.seconds.max(1e-9),
            (old.rss_kib as f64 / old.unique.max(1) as f64) / (new.rss_kib as f64 / new.unique.max(1) as f64),
            new.rss_kib as f64 * 1024.0 / new.unique.max(1) as f64,
            new.unique == old.unique,
        ));
    }
    println!();
    println!("| config     | speed encoded/live | memory per state live/encoded | encoded B/state | same states |");
    println!("|------------|-------------------:|------------------------------:|----------------:|-------------|");
    for (cfg, speed, mem, bps, same) in ratios {
        println!("| {cfg:<10} | {speed:>18.2} | {mem:>29.1} | {bps:>15.1} | {same} |");
    }
    println!();
    println!("| config     | speed all-disk/encoded | same states |");
    println!("|------------|-----------------------:|-------------|");
    for (cfg, speed, same) in disk_ratios {
        println!("| {cfg:<10} | {speed:>22.2} | {same} |");
    }
}

fn thread_speedup(quick: bool) {
    println!();
    println!("## BFS with 1 and 2 threads (encoded frontier)");
    println!();
    println!("| config     | alg  | threads    |     unique |     secs |   states/s |  RSS MiB |  B/state |");
    println!("|------------|------|------------|-----------:|---------:|-----------:|---------:|---------:|");
    let cases = if quick {
        vec![("specs/paxos.sm", "small")]
    } else {
        vec![("specs/paxos.sm", "three_clients"), ("specs/raft.sm", "replication")]
    };
    let mut ratios = Vec::new();
    for (spec, cfg) in cases {
        let bin = harness(spec);
        let one = smelt_run(&bin, cfg, &["--threads", "1"]);
        let two = smelt_run(&bin, cfg, &["--threads", "2"]);
        eprintln!("  {spec} {cfg}: load {}", uptime());
        row("1", cfg, "bfs", &one);
        row("2", cfg, "bfs", &two);
        ratios.push((cfg, one.seconds / two.seconds.max(1e-9), one.unique == two.unique));
    }
    println!();
    println!("| config     | speed-up 2 threads / 1 | same states |");
    println!("|------------|-----------------------:|-------------|");
    for (cfg, speedup, same) in ratios {
        println!("| {cfg:<10} | {speedup:>22.2} | {same} |");
    }
}

/// The search's own time from a `smelt check` summary line ("…, 0.11 s, …"),
/// without the process's start-up.
fn search_seconds(text: &str) -> f64 {
    text.lines()
        .find(|l| l.contains("unique states"))
        .and_then(|l| l.split(", ").find(|p| p.ends_with(" s")))
        .and_then(|p| p.trim_end_matches(" s").parse().ok())
        .unwrap_or(0.0)
}

fn symmetry(quick: bool) {
    println!();
    println!("## symmetry: states kept against symmetry classes (1 thread)");
    println!();
    println!("| spec / config     | no symmetry | classes | refined (new) | local (old) | new/classes | old/classes | secs new | secs old | time new/old |");
    println!("|-------------------|------------:|--------:|--------------:|------------:|------------:|------------:|---------:|---------:|-------------:|");
    let mut cases = vec![
        ("specs/bench/two_phase_tla.sm", "rm5"),
        ("specs/bench/two_phase_tla.sm", "rm6"),
    ];
    if !quick {
        cases.extend([
            ("specs/bench/two_phase_tla.sm", "rm7"),
            ("specs/bench/two_phase_tla.sm", "rm8"),
            ("specs/raft.sm", "crash"),
        ]);
    }
    for (spec, cfg) in cases {
        let bin = harness(spec);
        let out = Command::new(&bin)
            .args(["check", "--config", cfg, "--count-classes", "100000000"])
            .output()
            .expect("count classes");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("symmetry classes")).unwrap_or("");
        let all = number_after(line, ": ");
        let classes = number_after(line, "states, ");
        let run = |extra: &[&str]| {
            let (text, _, _) = timed(
                Command::new(&bin)
                    .args(["check", "--config", cfg, "--progress", "0", "--threads", "1"])
                    .args(extra),
            );
            (smelt_unique(&text), search_seconds(&text))
        };
        // Alternate and keep each one's faster time.
        let (new, mut new_s) = run(&[]);
        let (old, mut old_s) = run(&["--symmetry-local"]);
        new_s = new_s.min(run(&[]).1);
        old_s = old_s.min(run(&["--symmetry-local"]).1);
        let name = format!("{} / {cfg}", Path::new(spec).file_stem().unwrap().to_string_lossy());
        println!(
            "| {name:<17} | {all:>11} | {classes:>7} | {new:>13} | {old:>11} | {:>11.2} | {:>11.2} | {new_s:>8.2} | {old_s:>8.2} | {:>12.2} |",
            new as f64 / classes.max(1) as f64,
            old as f64 / classes.max(1) as f64,
            new_s / old_s.max(1e-9),
        );
    }
    println!("(classes: the reachable states searched with symmetry off, their orbits under permutations of each");
    println!(" role's servers counted by Burnside's lemma — independent of the representative the search uses.)");
}
