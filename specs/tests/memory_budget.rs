//! The memory budget: a safety search far over its budget's RAM completes
//! from disk (the frontier and the visited set spill); a liveness search
//! that still does not fit its budget stops with verdict unknown and says
//! why. Alone in its test binary: the budget's backstop compares the
//! resident memory the search added with the budget, and other tests in
//! the same process would add to it.

use smelt::model_check::cli::run_check;
use smelt::model_check::report::{render_summary, Verdict};
use smelt::model_check::RunConfig;
use smelt::support::{Protocol, Strategy};

/// The tests here run one at a time (each measures the process's memory).
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn config<P: Protocol>(name: &str) -> RunConfig {
    RunConfig::of_check::<P>(name).unwrap()
}

#[test]
fn a_search_far_over_its_memory_budget_completes_from_disk() {
    let _alone = alone();
    type P = smelt_specs::paxos::Paxos;
    for strategy in [Strategy::Bfs, Strategy::Dfs] {
        // 8 MiB: the visited set's share (5 MiB) holds about 250,000
        // states under BFS (500,000 under DFS) — under half of this check
        // — and the frontier gets no RAM at all (the budget's reserve is
        // 64 MiB at least).
        let mut cfg = config::<P>("three_clients");
        cfg.memory = Some(8 << 20);
        cfg.strategy = strategy;
        let r = run_check::<P>(P::SPEC, cfg).unwrap();
        let summary = render_summary(&r);
        assert!(r.stats.complete, "{summary}");
        assert_eq!(r.stats.unique_states, 1_194_428, "{summary}");
        assert!(r.stats.visited_disk_bytes > 0, "{summary}");
        if strategy == Strategy::Bfs {
            assert!(r.stats.frontier_disk_bytes_max > 0, "{summary}");
        }
        assert_eq!(r.as_expected, Some(true), "{summary}");
        assert!(summary.contains("the visited set spilled to disk"), "{summary}");
    }
}

#[test]
fn a_liveness_search_over_its_memory_budget_stops_with_unknown() {
    let _alone = alone();
    type P = smelt_specs::chain_replication::ChainReplication;
    // 128,477 states and their edges need about 10 MiB.
    let mut cfg = config::<P>("progress");
    cfg.memory = Some(4 << 20);
    let r = run_check::<P>(P::SPEC, cfg).unwrap();
    let summary = render_summary(&r);
    let why = r.stats.stopped.as_deref().unwrap_or_default();
    assert!(why.starts_with("out of memory budget"), "{summary}");
    assert!(why.contains("--memory"), "{summary}");
    assert!(!r.stats.complete);
    assert!(
        r.stats.unique_states > 1_000 && r.stats.unique_states < 128_477,
        "{summary}"
    );
    assert_eq!(r.stats.memory_budget_bytes, 4 << 20);
    // Nothing is claimed: the liveness properties are unknown, and the check
    // is not as expected.
    let eventually = r.properties.iter().find(|p| p.name == "AllDone").expect("AllDone");
    assert_eq!(eventually.verdict, Verdict::Unknown, "{summary}");
    assert_eq!(r.as_expected, Some(false), "{summary}");
    assert!(summary.contains("search incomplete: out of memory budget"), "{summary}");
}

#[test]
fn the_command_line_says_unknown_with_exit_status_3() {
    let _alone = alone();
    type P = smelt_specs::chain_replication::ChainReplication;
    let main = |args: &[&str]| smelt::model_check::cli::main::<P>(args.iter().map(|s| s.to_string()).collect());
    let base = ["--config", "progress", "--progress", "0"];
    // 1 MiB, the least budget accepted: 128,477 states need several.
    assert_eq!(main(&[&base[..], &["--memory", "1MiB"]].concat()), 3);
    // Bad budgets and spill directories are usage errors, before any search.
    assert_eq!(main(&[&base[..], &["--memory", "12 parsecs"]].concat()), 2);
    assert_eq!(main(&[&base[..], &["--memory", "1K"]].concat()), 2);
    assert_eq!(main(&[&base[..], &["--spill-dir", "/nonexistent/smelt"]].concat()), 2);
}
