//! A search that outgrows its memory budget stops with verdict unknown and
//! says why. Alone in its test binary: the budget's backstop compares the
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

#[test]
fn a_search_over_its_memory_budget_stops_with_unknown() {
    let _alone = alone();
    type P = smelt_specs::paxos::Paxos;
    for strategy in [Strategy::Bfs, Strategy::Dfs] {
        // 4 MiB: the visited set may take 2.5 MiB, about 120,000 states
        // (BFS) — a tenth of this check; the search's resident memory
        // passes the budget too, whichever is seen first stops it.
        let check = P::checks().into_iter().find(|c| c.name == "three_clients").unwrap();
        let mut cfg = RunConfig::from_check(&check);
        cfg.memory = Some(4 << 20);
        cfg.strategy = strategy;
        let r = run_check::<P>(P::SPEC, cfg).unwrap();
        let summary = render_summary(&r);
        let why = r.stats.stopped.as_deref().unwrap_or_default();
        assert!(why.starts_with("out of memory budget"), "{summary}");
        assert!(why.contains("--memory"), "{summary}");
        assert!(!r.stats.complete);
        assert!(
            r.stats.unique_states > 10_000 && r.stats.unique_states < 1_194_428,
            "{summary}"
        );
        assert_eq!(r.stats.memory_budget_bytes, 4 << 20);
        // Nothing is claimed: the invariants are unknown, and the check is
        // not as expected.
        for p in r
            .properties
            .iter()
            .filter(|p| p.name == "Agreement" || p.name == "linearizable")
        {
            assert_eq!(p.verdict, Verdict::Unknown, "{summary}");
        }
        assert_eq!(r.as_expected, Some(false), "{summary}");
        assert!(summary.contains("search incomplete: out of memory budget"), "{summary}");
    }
}

#[test]
fn the_command_line_says_unknown_with_exit_status_3() {
    let _alone = alone();
    type P = smelt_specs::paxos::Paxos;
    let main = |args: &[&str]| smelt::model_check::cli::main::<P>(args.iter().map(|s| s.to_string()).collect());
    let base = ["--config", "three_clients", "--progress", "0"];
    assert_eq!(main(&[&base[..], &["--memory", "4MiB"]].concat()), 3);
    // Bad budgets and spill directories are usage errors, before any search.
    assert_eq!(main(&[&base[..], &["--memory", "12 parsecs"]].concat()), 2);
    assert_eq!(main(&[&base[..], &["--memory", "1K"]].concat()), 2);
    assert_eq!(main(&[&base[..], &["--spill-dir", "/nonexistent/smelt"]].concat()), 2);
}
