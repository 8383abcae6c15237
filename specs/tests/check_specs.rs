//! Model-checks every `check` block of every spec in the library, in
//! process (no harness build), and holds each to its `expect`: the specs
//! must hold and the buggy variants must fail with the property they name.
//! Every run must also prove it searched: a lower bound on unique states
//! (exact counts where we have an independent reference).
//!
//! The searches that take minutes or gigabytes (`DEEP`) run in the deep
//! suite only: `cargo test --workspace --release -- --ignored` (CI runs it
//! after the default suite). Every check of a spec is listed in its
//! test's sizes, so none is left out of both.

use smelt::model_check::cli::run_check;
use smelt::model_check::report::{render_summary, CheckReport, Verdict};
use smelt::model_check::RunConfig;
use smelt::support::Protocol;

/// Expected size of a check: the exact count or a lower bound.
#[derive(Clone, Copy)]
enum States {
    Exactly(u64),
    AtLeast(u64),
}

/// The raft searches with every fault at once (`all_faults` and
/// `compaction_faults`, the longest) run one at a time. (They needed 12
/// and 3.7 GiB before the BFS frontier was encoded; now under 300 MiB.)
fn one_deep_raft_search_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static DEEP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DEEP.lock().unwrap_or_else(|e| e.into_inner())
}

fn run<P: Protocol>(name: &str) -> CheckReport {
    run_with::<P>(name, |_| {})
}

/// Runs check `name` of `P` with its config changed by `edit` (as a
/// command-line override would).
fn run_with<P: Protocol>(name: &str, edit: impl FnOnce(&mut RunConfig)) -> CheckReport {
    let _deep = matches!(name, "all_faults" | "compaction_faults").then(one_deep_raft_search_at_a_time);
    let check = P::checks()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{} has no check `{name}`", P::NAME));
    let spec = format!("specs/{}", P::SPEC.trim_start_matches("specs/"));
    let mut cfg = RunConfig::from_check(&check);
    edit(&mut cfg);
    run_check::<P>(&spec, cfg).unwrap_or_else(|e| panic!("{} `{name}`: {e}", P::NAME))
}

/// The checks that belong to the deep suite (`--ignored`), by protocol and
/// check name: each takes more than about 20 seconds or 1 GiB here.
const DEEP: &[(&str, &str)] = &[
    ("Paxos", "crash"),
    ("Raft", "replication"),
    ("Raft", "crash"),
    ("Raft", "two_clients"),
    ("Raft", "retries"),
    ("Raft", "all_faults"),
    ("Raft", "compaction_faults"),
    ("Raft", "figure8"),
    ("MultiPaxos", "basic"),
    ("MultiPaxos", "crash"),
    ("MultiPaxos", "retries"),
    ("ChainReplication", "restart"),
    ("ABD", "crash_retry"),
    ("ABD", "same_coordinator_crash"),
    ("PrimaryBackup", "progress"),
];

fn is_deep<P: Protocol>(check: &str) -> bool {
    DEEP.contains(&(P::NAME, check))
}

/// Runs every check of `P` but the deep ones, and compares each with its
/// expectation.
fn check_all<P: Protocol>(sizes: &[(&str, States)]) -> Vec<CheckReport> {
    check_some::<P>(sizes, false)
}

/// Runs the deep checks of `P` (there must be some).
fn check_deep<P: Protocol>(sizes: &[(&str, States)]) -> Vec<CheckReport> {
    let rs = check_some::<P>(sizes, true);
    assert!(!rs.is_empty(), "{} has no deep check", P::NAME);
    rs
}

fn check_some<P: Protocol>(sizes: &[(&str, States)], deep: bool) -> Vec<CheckReport> {
    for (name, _) in sizes {
        assert!(
            P::checks().iter().any(|c| c.name == *name),
            "{} has no check `{name}`",
            P::NAME
        );
    }
    let mut out = Vec::new();
    for c in P::checks().into_iter().filter(|c| is_deep::<P>(&c.name) == deep) {
        let r = run::<P>(&c.name);
        let summary = render_summary(&r);
        // For the catalogue (specs/README.md): `--nocapture` prints it.
        let steps = r
            .properties
            .iter()
            .filter(|p| p.trace_text.is_some())
            .filter_map(|p| p.steps)
            .min();
        let delta = r
            .properties
            .iter()
            .find(|p| p.name == "runtime_equivalence")
            .and_then(|p| p.detail.clone())
            .unwrap_or_default();
        eprintln!(
            "{} `{}`: {} states, {:.1} s, counterexample steps {steps:?}, delta check: {delta}",
            P::NAME,
            c.name,
            r.stats.unique_states,
            r.stats.seconds
        );
        assert_eq!(
            r.as_expected,
            Some(true),
            "{} `{}` did not go as expected:\n{summary}",
            P::NAME,
            c.name
        );
        match sizes.iter().find(|(n, _)| *n == c.name).map(|(_, s)| *s) {
            Some(States::Exactly(n)) => assert_eq!(r.stats.unique_states, n, "{} `{}`:\n{summary}", P::NAME, c.name),
            Some(States::AtLeast(n)) => assert!(
                r.stats.unique_states >= n,
                "{} `{}` explored too little:\n{summary}",
                P::NAME,
                c.name
            ),
            None => panic!("{} `{}`: give its expected size in this test", P::NAME, c.name),
        }
        out.push(r);
    }
    out
}

/// The counterexample of the first violated property, as printed.
fn counterexample(r: &CheckReport) -> String {
    r.properties
        .iter()
        .find_map(|p| p.trace_text.clone())
        .unwrap_or_default()
}

const PAXOS_SIZES: &[(&str, States)] = &[
    ("small", States::Exactly(16_668)),
    ("ordered", States::AtLeast(10_000)),
    ("three_clients", States::Exactly(1_194_428)),
    ("crash", States::AtLeast(2_000_000)),
    ("progress_stop", States::Exactly(2_922)),
];

#[test]
fn paxos_matches_stateright_state_counts() {
    // stateright's examples/paxos.rs `check 2` and `check 3`.
    check_all::<smelt_specs::paxos::Paxos>(PAXOS_SIZES);
}

#[test]
#[ignore = "deep: paxos with a crash, over 2 million states"]
fn paxos_deep() {
    check_deep::<smelt_specs::paxos::Paxos>(PAXOS_SIZES);
}

#[test]
fn two_phase_commit() {
    check_all::<smelt_specs::two_phase_commit::TwoPhaseCommit>(&[
        ("small", States::AtLeast(100)),
        ("crashes", States::AtLeast(100)),
        ("lossy", States::AtLeast(100)),
        ("progress", States::AtLeast(10_000)),
        ("fast_path", States::AtLeast(50)),
        ("fast_path_crash", States::AtLeast(3_000)),
        ("fast_path_crash_ordered", States::AtLeast(3_000)),
    ]);
}

/// two_phase_commit.sm before `restarted`: an RM that crashed between the
/// TM's Prepare and its vote waits for a timer, so the fast path after a
/// crash never ends.
#[test]
fn buggy_two_phase_commit_waits_after_a_restart() {
    type B = smelt_specs::buggy::two_phase_commit_wait_after_restart::TwoPhaseCommitWaitAfterRestart;
    let rs = check_all::<B>(&[("fast_path_crash", States::AtLeast(3_000))]);
    assert_trace_has(
        &rs[0],
        &[
            "6 steps, then nothing fairness requires can happen any more",
            "RM1 crashes",
            "RM1 recovers",
        ],
    );
}

/// The report's counterexample contains every one of `needles`.
fn assert_trace_has(r: &CheckReport, needles: &[&str]) {
    let trace = counterexample(r);
    assert!(needles.iter().all(|n| trace.contains(n)), "{trace}");
}

#[test]
fn abd() {
    check_all::<smelt_specs::abd::ABD>(ABD_SIZES);
}

const ABD_SIZES: &[(&str, States)] = &[
    ("small", States::AtLeast(1_000)),
    ("concurrent", States::AtLeast(10_000)),
    ("same_coordinator", States::AtLeast(300_000)),
    ("same_coordinator_crash", States::AtLeast(5_000_000)),
    ("crash", States::AtLeast(10_000)),
    ("crash_retry", States::AtLeast(15_000_000)),
    ("progress", States::AtLeast(10_000)),
    ("progress_stop", States::Exactly(24_971)),
];

#[test]
#[ignore = "deep: about a minute; run with --ignored"]
fn abd_deep() {
    let rs = check_deep::<smelt_specs::abd::ABD>(ABD_SIZES);
    // Exhaustive to its depth bound, no further.
    let r = rs.iter().find(|r| r.check == "crash_retry").expect("crash_retry");
    assert!(!r.stats.complete && r.stats.max_depth == 17, "{}", render_summary(r));
}

/// Steps of the shortest counterexample a run found.
fn violation_steps(r: &CheckReport) -> Option<usize> {
    r.properties
        .iter()
        .filter(|p| p.verdict == Verdict::Violated)
        .filter_map(|p| p.steps)
        .min()
}

const RAFT_SIZES: &[(&str, States)] = &[
    ("replication", States::AtLeast(2_600_000)),
    ("two_clients", States::AtLeast(650_000)),
    ("elections_race", States::AtLeast(10_000)),
    ("crash", States::AtLeast(4_900_000)),
    ("exactly_once", States::AtLeast(1_000)),
    ("cas", States::AtLeast(1_500)),
    ("retries", States::AtLeast(3_300_000)),
    ("progress", States::AtLeast(1_000)),
    ("all_faults", States::AtLeast(2_600_000)),
    ("compaction_faults", States::AtLeast(850_000)),
    ("figure8", States::AtLeast(2_200_000)),
];

#[test]
fn raft() {
    check_all::<smelt_specs::raft::Raft>(RAFT_SIZES);
}

#[test]
#[ignore = "deep: minutes; run with --ignored"]
fn raft_deep() {
    let rs = check_deep::<smelt_specs::raft::Raft>(RAFT_SIZES);
    // The searches with every fault are checked to their depth bounds, and
    // say so.
    for (check, depth) in [("all_faults", 13), ("compaction_faults", 14)] {
        let r = rs.iter().find(|r| r.check == check).expect(check);
        assert!(!r.stats.complete && r.stats.max_depth == depth, "{}", render_summary(r));
    }
}

#[test]
fn chain_replication() {
    check_all::<smelt_specs::chain_replication::ChainReplication>(CHAIN_SIZES);
}

/// chain_replication.sm before `restarted`: a server that crashes before
/// it holds anything never asks again for the update the crash lost (the
/// defect `progress_restart` found once liveness let a crash lose
/// messages).
#[test]
fn buggy_chain_forgets_an_update_lost_at_a_crash() {
    type B = smelt_specs::buggy::chain_resync_only_with_history::ChainResyncOnlyWithHistory;
    let rs = check_all::<B>(&[("progress_restart", States::AtLeast(100_000))]);
    assert_trace_has(
        &rs[0],
        &[
            "12 steps, then nothing fairness requires can happen any more",
            "Server1 crashes",
            "network drops Forward",
        ],
    );
}

const CHAIN_SIZES: &[(&str, States)] = &[
    ("concurrent", States::AtLeast(500)),
    ("three_clients", States::AtLeast(100_000)),
    ("long_chain", States::AtLeast(2_000)),
    ("restart", States::AtLeast(15_000_000)),
    ("restart_one_client", States::AtLeast(25_000)),
    ("progress", States::AtLeast(100_000)),
    ("progress_restart", States::AtLeast(600_000)),
];

#[test]
#[ignore = "deep: about three minutes and 0.4 GiB; run with --ignored"]
fn chain_replication_deep() {
    check_deep::<smelt_specs::chain_replication::ChainReplication>(CHAIN_SIZES);
}

#[test]
fn primary_backup() {
    check_all::<smelt_specs::primary_backup::PrimaryBackup>(PRIMARY_BACKUP_SIZES);
}

const PRIMARY_BACKUP_SIZES: &[(&str, States)] = &[
    ("crash", States::AtLeast(100_000)),
    ("three_backups", States::AtLeast(4_000)),
    ("progress", States::AtLeast(10_000_000)),
    ("progress_one_client", States::AtLeast(5_000)),
    ("fast_path", States::AtLeast(200)),
];

#[test]
#[ignore = "deep: about 6 minutes and 2 GiB; run with --ignored"]
fn primary_backup_deep() {
    check_deep::<smelt_specs::primary_backup::PrimaryBackup>(PRIMARY_BACKUP_SIZES);
}

const MULTIPAXOS_SIZES: &[(&str, States)] = &[
    ("basic", States::AtLeast(2_000_000)),
    ("no_timing", States::AtLeast(10_000)),
    ("crash", States::AtLeast(800_000)),
    ("retries", States::AtLeast(1_500_000)),
    ("progress", States::AtLeast(100_000)),
];

fn report<'a>(rs: &'a [CheckReport], check: &str) -> &'a CheckReport {
    rs.iter()
        .find(|r| r.check == check)
        .unwrap_or_else(|| panic!("no report for `{check}`"))
}

#[test]
#[ignore = "deep: about a minute and 2 GiB; run with --ignored"]
fn multipaxos_deep() {
    let rs = check_deep::<smelt_specs::multi_paxos::MultiPaxos>(MULTIPAXOS_SIZES);
    // Retries and the crash config are checked to their depth bounds, and
    // say so.
    for check in ["retries", "crash"] {
        let r = report(&rs, check);
        assert!(!r.stats.complete && r.stats.max_depth == 22, "{}", render_summary(r));
    }
}

#[test]
fn multipaxos() {
    let rs = check_all::<smelt_specs::multi_paxos::MultiPaxos>(MULTIPAXOS_SIZES);
    // Without the timing rule a lease is worthless: an old master reads
    // from its own copy after a new one chose a write.
    insta::assert_snapshot!("multipaxos_no_timing", counterexample(report(&rs, "no_timing")));
    // A bound too small to reach every `reachable` (a new master after a
    // chosen value takes 14 steps) does not pass as "ok up to depth 10".
    let r = run_with::<smelt_specs::multi_paxos::MultiPaxos>("crash", |c| c.max_depth = Some(10));
    assert!(!r.violated() && r.as_expected == Some(false), "{}", render_summary(&r));
}

#[test]
fn buggy_multipaxos_lease_outlasts_the_guard() {
    let rs = check_all::<smelt_specs::buggy::multi_paxos_long_lease::MultiPaxosLongLease>(&[(
        "basic",
        States::AtLeast(10_000),
    )]);
    insta::assert_snapshot!("multipaxos_long_lease", counterexample(&rs[0]));
}

#[test]
fn liveness_cycle_found_and_fixed() {
    let rs = check_all::<smelt_specs::liveness::cycle::Cycle>(&[("walk", States::Exactly(3))]);
    insta::assert_snapshot!("cycle_lasso", counterexample(&rs[0]));
    check_all::<smelt_specs::liveness::no_cycle::NoCycle>(&[("walk", States::Exactly(4))]);
}

#[test]
fn liveness_deadlock_ends_in_the_stuck_state() {
    let rs = check_all::<smelt_specs::liveness::stuck::Stuck>(&[("walk", States::Exactly(2))]);
    let trace = counterexample(&rs[0]);
    assert!(
        trace.contains("(deadlock)") && !trace.contains("back to step"),
        "{trace}"
    );
    insta::assert_snapshot!("stuck_deadlock", trace);
}

#[test]
fn liveness_dueling_proposers() {
    let rs = check_all::<smelt_specs::liveness::dueling_paxos::DuelingPaxos>(&[
        ("dueling", States::AtLeast(100)),
        ("single", States::AtLeast(10)),
    ]);
    insta::assert_snapshot!("dueling_lasso", counterexample(&rs[0]));
}

#[test]
fn buggy_paxos_accepts_a_lower_ballot() {
    let rs = check_all::<smelt_specs::buggy::paxos_accept_lower_ballot::PaxosAcceptLowerBallot>(&[(
        "small",
        States::AtLeast(100),
    )]);
    insta::assert_snapshot!("paxos_accept_lower_ballot", counterexample(&rs[0]));
}

mod knobs {
    smelt::protocol!("tests/data/stream.sm");
}

mod dup_timer {
    smelt::protocol!("tests/data/dup_timer.sm");
}

mod unhandled_timer {
    smelt::protocol!("tests/data/unhandled_timer.sm");
}

mod forgotten_timer {
    smelt::protocol!("tests/data/forgotten_timer.sm");
}

mod stale_message {
    smelt::protocol!("tests/data/stale_message.sm");
}

mod missed_message {
    smelt::protocol!("tests/data/missed_message.sm");
}

mod blobs {
    smelt::protocol!("tests/data/blobs.sm");
}

mod lazy_send {
    smelt::protocol!("tests/data/lazy_send.sm");
}

/// `timing no_timeouts`: no timer fires, so a run that needs its
/// retransmit timer to make the first send never finishes — the lasso
/// takes the lazy choice and then nothing — while the default timing
/// lets the timer fire and the same spec make progress.
#[test]
fn no_timeouts_leaves_the_fast_path_to_messages_alone() {
    let rs = check_all::<lazy_send::lazy_send::LazySend>(&[
        ("progress", States::Exactly(8)),
        ("fast_path", States::Exactly(4)),
    ]);
    let trace = counterexample(&rs[1]);
    assert!(
        trace.contains("`eager` = false") && !trace.contains("timeout"),
        "{trace}"
    );
    assert!(
        render_summary(&rs[1]).contains("no timeouts after the faults"),
        "{}",
        render_summary(&rs[1])
    );
}

/// `Bytes` values through the whole checker: durable across a crash,
/// linearizable, and printed as literals in a counterexample.
#[test]
fn bytes_values() {
    let rs = check_all::<blobs::blobs::Blobs>(&[("single", States::AtLeast(50)), ("copies", States::AtLeast(5))]);
    insta::assert_snapshot!("blobs_copies", counterexample(&rs[1]));
}

#[test]
fn partial_synchrony_on_a_duplicating_network_lets_timers_fire() {
    check_all::<dup_timer::dup_timer::DupTimer>(&[("dup", States::AtLeast(5)), ("nondup", States::AtLeast(5))]);
}

/// Something a node does not handle — a timeout, or a message on a network
/// that does not duplicate — is gone, as on the runtime, where a stale one
/// matters: it no longer holds back another node's or a later timer under
/// a timing model (`held`'s two checks, `timed` and `timed_liveness`, reach
/// `reached`), and fairness no longer hands it over in a later state that
/// handles it (`missed`'s `progress` ends stuck after the step `lost`).
fn unhandled_is_gone<Held: Protocol, Missed: Protocol>(reached: &str, lost: &str) {
    let rs = check_all::<Held>(&[("timed", States::Exactly(3)), ("timed_liveness", States::Exactly(3))]);
    for r in &rs {
        let p = r
            .properties
            .iter()
            .find(|p| p.name == reached)
            .expect("the reachable property");
        assert_eq!(p.verdict, Verdict::Reached, "{}", render_summary(r));
    }
    let rs = check_all::<Missed>(&[("progress", States::Exactly(5))]);
    let trace = counterexample(&rs[0]);
    assert!(trace.contains("(deadlock)") && trace.contains(lost), "{trace}");
}

#[test]
fn a_timer_that_fires_into_no_handler_is_gone() {
    unhandled_is_gone::<
        unhandled_timer::unhandled_timer::UnhandledTimer,
        forgotten_timer::forgotten_timer::ForgottenTimer,
    >("SlowFired", "timeout `tick`");
}

#[test]
fn a_message_the_node_ignores_is_consumed() {
    unhandled_is_gone::<stale_message::stale_message::StaleMessage, missed_message::missed_message::MissedMessage>(
        "Ticked",
        "receives Ping",
    );
}

#[test]
fn each_fault_knob_changes_the_verdict() {
    // `fifo` holds; reordering, loss, duplication and crashes each break the
    // stream (the `expect` of every config says so, and `check_all` holds
    // each config to it).
    let rs = check_all::<knobs::stream::Stream>(&[
        ("fifo", States::AtLeast(4)),
        ("reordering", States::AtLeast(2)),
        ("loss", States::AtLeast(2)),
        ("duplication", States::AtLeast(2)),
        ("crash", States::AtLeast(2)),
    ]);
    // Each failing config is `fifo` with one knob turned; turned back, the
    // same config holds: that knob alone breaks the stream.
    let fifo = &rs[0].config;
    for r in &rs[1..] {
        assert!(r.violated(), "`{}` should fail", r.check);
        let c = &r.config;
        let knobs = [c.network != fifo.network, c.lossy != fifo.lossy, c.crash != fifo.crash];
        assert_eq!(knobs.iter().filter(|k| **k).count(), 1, "`{}` turns one knob", r.check);
        let back = run_with::<knobs::stream::Stream>(&r.check, |c| {
            c.network = fifo.network;
            c.lossy = fifo.lossy;
            c.crash = fifo.crash;
            c.expect = smelt::support::Expect::Ok;
        });
        assert!(
            !back.violated(),
            "`{}` without its knob:\n{}",
            r.check,
            render_summary(&back)
        );
    }
}

/// `stops`: a server that never comes back. Two-phase commit's `progress`
/// holds through a crash-restart, and blocks when a participant stops for
/// good (its classic weakness, which no crash-restart shows); abd.sm's
/// `progress_stop` holds with one replica gone.
#[test]
fn a_server_that_stops_for_good_blocks_two_phase_commit() {
    use smelt::model_check::report::Verdict;
    let stopped = run_with::<smelt_specs::two_phase_commit::TwoPhaseCommit>("progress", |c| {
        c.stops = 1;
        c.crash = 0;
        c.drops = 0;
    });
    let p = stopped
        .properties
        .iter()
        .find(|p| p.name == "AllDecided")
        .expect("AllDecided");
    assert_eq!(p.verdict, Verdict::Violated, "{}", render_summary(&stopped));
    let trace = p.trace_text.as_deref().unwrap_or_default();
    assert!(trace.contains("stops for good"), "{trace}");
    assert!(
        !trace.contains("recovers from its durable state"),
        "a stopped server never recovers:\n{trace}"
    );
    let restarted = run_with::<smelt_specs::two_phase_commit::TwoPhaseCommit>("progress", |c| {
        c.crash = 1;
        c.drops = 0;
    });
    assert!(!restarted.violated(), "{}", render_summary(&restarted));
}

#[test]
fn symmetry_reduces_two_phase_commit() {
    use smelt::model_check::cli::run_safety;
    let check = smelt_specs::two_phase_commit::TwoPhaseCommit::checks()
        .into_iter()
        .find(|c| c.name == "small")
        .unwrap();
    let mut cfg = RunConfig::from_check(&check);
    cfg.symmetry = true;
    let with =
        run_safety::<smelt_specs::two_phase_commit::TwoPhaseCommit>("two_phase_commit.sm", cfg.clone(), None).unwrap();
    cfg.symmetry = false;
    let without =
        run_safety::<smelt_specs::two_phase_commit::TwoPhaseCommit>("two_phase_commit.sm", cfg, None).unwrap();
    assert!(!with.violated() && !without.violated());
    let factor = without.stats.unique_states as f64 / with.stats.unique_states as f64;
    // Three interchangeable resource managers: up to 3! = 6.
    assert!(
        factor > 2.0,
        "symmetry reduced {} to {} states only",
        without.stats.unique_states,
        with.stats.unique_states
    );
    // DFS reduces just as much.
    let mut dfs = RunConfig::from_check(&check);
    dfs.symmetry = true;
    dfs.strategy = smelt::support::Strategy::Dfs;
    let d = run_safety::<smelt_specs::two_phase_commit::TwoPhaseCommit>("two_phase_commit.sm", dfs, None).unwrap();
    assert_eq!(d.stats.unique_states, with.stats.unique_states);
}

#[test]
fn buggy_two_phase_commit_commits_on_a_majority() {
    let rs = check_all::<smelt_specs::buggy::two_phase_commit_majority::TwoPhaseCommitMajority>(&[(
        "small",
        States::AtLeast(10),
    )]);
    insta::assert_snapshot!("two_phase_commit_majority", counterexample(&rs[0]));
}

#[test]
fn buggy_register_replies_before_the_write_is_replicated() {
    let rs = check_all::<smelt_specs::buggy::abd_early_reply::AbdEarlyReply>(&[("small", States::AtLeast(10))]);
    insta::assert_snapshot!("abd_early_reply", counterexample(&rs[0]));
}

/// Each akka-raft bug of the DEMi study, as a variant of raft.sm, fails
/// the property its own config names; the shortest counterexample of that
/// config is pinned. The three-server variants also carry raft.sm's
/// `all_faults` check (every fault at once, depth 13) and fail it too, in
/// the number of steps given.
macro_rules! raft_bug {
    ($test:ident, $module:ident :: $proto:ident, $sizes:expr $(, all_faults in $steps:literal steps)?) => {
        #[test]
        fn $test() {
            let rs = check_all::<smelt_specs::buggy::$module::$proto>($sizes);
            insta::assert_snapshot!(stringify!($test), counterexample(&rs[0]));
            $(
                let all = rs.iter().find(|r| r.check == "all_faults").expect("all_faults");
                assert_eq!(violation_steps(all), Some($steps), "{}", render_summary(all));
            )?
        }
    };
}

raft_bug!(
    raft_42_commit_by_mode,
    raft_commit_by_mode::RaftCommitByMode,
    &[
        ("commit_by_mode", States::AtLeast(100)),
        ("all_faults", States::AtLeast(250_000))
    ],
    all_faults in 11 steps
);
raft_bug!(
    raft_45_duplicate_votes,
    raft_duplicate_votes::RaftDuplicateVotes,
    &[("duplicate_votes", States::AtLeast(100))]
);
raft_bug!(
    raft_46_stale_vote,
    raft_stale_vote::RaftStaleVote,
    &[
        ("stale_vote", States::AtLeast(100)),
        ("all_faults", States::AtLeast(3_000))
    ],
    all_faults in 7 steps
);
raft_bug!(
    raft_56_forget_vote,
    raft_forget_vote::RaftForgetVote,
    &[
        ("forget_vote", States::AtLeast(100)),
        ("all_faults", States::AtLeast(10_000))
    ],
    all_faults in 8 steps
);
raft_bug!(
    raft_58a_early_commands,
    raft_early_commands::RaftEarlyCommands,
    &[
        ("early_commands", States::AtLeast(100)),
        ("all_faults", States::AtLeast(250))
    ],
    all_faults in 5 steps
);
raft_bug!(
    raft_58b_zero_indexed,
    raft_zero_indexed::RaftZeroIndexed,
    &[
        ("zero_indexed", States::AtLeast(100)),
        ("all_faults", States::AtLeast(250_000))
    ],
    all_faults in 11 steps
);
raft_bug!(
    raft_62_volatile_vote,
    raft_volatile_vote::RaftVolatileVote,
    &[
        ("volatile_vote", States::AtLeast(100)),
        ("all_faults", States::AtLeast(10_000))
    ],
    all_faults in 8 steps
);
raft_bug!(
    raft_66_truncate_on_stale,
    raft_truncate_on_stale::RaftTruncateOnStale,
    &[
        ("truncate_on_stale", States::AtLeast(100)),
        ("all_faults", States::AtLeast(90_000))
    ],
    all_faults in 10 steps
);

/// Exactly once: without deduplication a retried write is applied a
/// second time, after a later write, and a read after both sees the first
/// value again (the bug an outside linearizability checker found in the
/// deployed store). The counterexample shows both copies committed.
#[test]
fn buggy_raft_applies_a_retried_write_twice() {
    let rs = check_all::<smelt_specs::buggy::raft_no_dedup::RaftNoDedup>(&[
        ("exactly_once", States::AtLeast(100)),
        ("retries", States::AtLeast(100_000)),
        ("cas", States::AtLeast(100)),
    ]);
    // The shortest counterexample (one server): both copies committed and
    // applied, and the concurrent read sees the append twice.
    assert_eq!(violation_steps(&rs[0]), Some(6), "{}", render_summary(&rs[0]));
    let trace = counterexample(&rs[0]);
    assert!(trace.contains(r#"Value(Some("aa"))"#), "{trace}");
    insta::assert_snapshot!("raft_no_dedup", trace);
    // Across a leader change in a cluster of two.
    assert_eq!(violation_steps(&rs[1]), Some(19), "{}", render_summary(&rs[1]));
    // A retried compare-and-swap applied twice: its second copy finds its
    // own value and reports a mismatch to the client whose swap took effect.
    assert_eq!(rs[2].check, "cas");
    assert_eq!(violation_steps(&rs[2]), Some(5), "{}", render_summary(&rs[2]));
    assert!(
        counterexample(&rs[2]).contains(r#"Mismatch("a")"#),
        "{}",
        counterexample(&rs[2])
    );
}

/// Figure 8 of the Raft paper: a leader that commits an entry of an
/// earlier term by counting the servers that store it (here the leader of
/// term 3, the entry of term 1) loses it to the leader of term 4, whose
/// log has a later last term. raft.sm's `figure8` holds; the variant fails
/// it in 37 steps: the bad commit (its client answered) and the election
/// of a leader without the entry.
#[test]
fn buggy_raft_commits_an_earlier_terms_entry_by_counting() {
    let rs = check_all::<smelt_specs::buggy::raft_figure8::RaftFigure8>(&[("figure8", States::AtLeast(300_000))]);
    let r = &rs[0];
    assert_eq!(violation_steps(r), Some(37), "{}", render_summary(r));
    let bug = r.properties.iter().find(|p| p.verdict == Verdict::Violated).unwrap();
    assert_eq!(bug.name, "LeaderCompleteness", "{}", render_summary(r));
    let trace = counterexample(r);
    // Either client's request may be the one committed by counting (the
    // two are alike; which one the search meets first is not the point).
    assert!(trace.contains("#1, PutOk)"), "{trace}");
    insta::assert_snapshot!("raft_figure8", trace);
}

/// Compaction without InstallSnapshot rests on SnapshotsHeldByAll: a
/// server that compacts every applied entry breaks it (and nothing else in
/// Figure 3 notices), so the invariant is not vacuous.
#[test]
fn buggy_raft_compacts_what_a_follower_still_needs() {
    let rs = check_all::<smelt_specs::buggy::raft_compact_committed::RaftCompactCommitted>(&[(
        "compact_committed",
        States::AtLeast(100),
    )]);
    insta::assert_snapshot!("raft_compact_committed", counterexample(&rs[0]));
}

/// `send early` is explored, not trusted: a vote sent before the voter's
/// new term and vote are durable is lost with them in a torn step (the
/// message out, the write not), and the restarted voter votes again in the
/// same term. raft.sm sends only the leader's AppendEntries early.
#[test]
fn buggy_raft_votes_twice_after_an_early_vote() {
    let rs = check_all::<smelt_specs::buggy::raft_early_vote::RaftEarlyVote>(&[("early_vote", States::AtLeast(1_000))]);
    insta::assert_snapshot!("raft_early_vote", counterexample(&rs[0]));
}

/// Depth-first search keeps only fingerprints (no parent links); its
/// counterexample comes from the branch it was on, and must replay.
#[test]
fn dfs_counterexamples_come_from_the_search_path() {
    type P = smelt_specs::buggy::paxos_accept_lower_ballot::PaxosAcceptLowerBallot;
    let check = P::checks().into_iter().find(|c| c.name == "small").unwrap();
    let mut cfg = RunConfig::from_check(&check);
    cfg.strategy = smelt::support::Strategy::Dfs;
    let r = run_check::<P>("specs/buggy/paxos_accept_lower_ballot.sm", cfg).unwrap();
    let bug = r.properties.iter().find(|p| p.name == "Agreement").unwrap();
    let text = bug.trace_text.as_deref().unwrap_or_default();
    assert!(
        text.contains("✗ invariant Agreement fails here"),
        "{}",
        render_summary(&r)
    );
    assert!(bug.steps.unwrap_or(0) >= 8, "{text}");
}

/// BFS splits each level between the calling thread and helper threads;
/// the states it finds, and the length of the shortest counterexample, do
/// not depend on how many there are.
#[test]
fn bfs_with_helper_threads_matches_one_thread() {
    type P = smelt_specs::paxos::Paxos;
    let check = P::checks().into_iter().find(|c| c.name == "small").unwrap();
    let mut cfg = RunConfig::from_check(&check);
    cfg.strategy = smelt::support::Strategy::Bfs;
    cfg.threads = 3;
    let r = run_check::<P>("specs/paxos.sm", cfg).unwrap();
    assert_eq!(r.as_expected, Some(true), "{}", render_summary(&r));
    assert_eq!(r.stats.unique_states, 16_668);

    type B = smelt_specs::buggy::paxos_accept_lower_ballot::PaxosAcceptLowerBallot;
    let check = B::checks().into_iter().find(|c| c.name == "small").unwrap();
    let steps = |threads: usize| {
        let mut cfg = RunConfig::from_check(&check);
        cfg.strategy = smelt::support::Strategy::Bfs;
        cfg.threads = threads;
        let r = run_check::<B>("specs/buggy/paxos_accept_lower_ballot.sm", cfg).unwrap();
        let bug = r.properties.iter().find(|p| p.name == "Agreement").unwrap();
        assert!(
            bug.trace_text
                .as_deref()
                .is_some_and(|t| t.contains("✗ invariant Agreement fails here")),
            "{}",
            render_summary(&r)
        );
        bug.steps.unwrap()
    };
    assert_eq!(steps(3), steps(1));
}

/// Every counterexample the simulator shortens must replay step by step:
/// `simulate::run` replays it without skipping anything (each delivery of
/// a message in flight where it happens, the property failing only at the
/// end) and reports an internal error otherwise. Run on every buggy
/// variant that random walks find, several seeds each.
#[test]
fn every_shortened_simulation_trace_replays_step_by_step() {
    use smelt::model_check::simulate::{run, SimOptions};
    fn sim<P: Protocol>(check: &str) -> usize {
        let c = P::checks().into_iter().find(|c| c.name == check).unwrap();
        let mut found = 0;
        for seed in 1..=3 {
            let opts = SimOptions {
                seed,
                walks: 3_000,
                max_depth: 60,
                shard: (0, 1),
                walk: None,
            };
            let r = run::<P>(P::SPEC, RunConfig::from_check(&c), &opts)
                .unwrap_or_else(|e| panic!("{} `{check}` seed {seed}: {e}", P::NAME));
            if let Some(bug) = r.properties.iter().find(|p| p.verdict == Verdict::Violated) {
                assert_eq!(bug.trace.as_ref().map(Vec::len), bug.steps, "{}", render_summary(&r));
                found += 1;
            }
        }
        found
    }
    use smelt_specs::buggy::*;
    let found = [
        sim::<paxos_accept_lower_ballot::PaxosAcceptLowerBallot>("small"),
        sim::<two_phase_commit_majority::TwoPhaseCommitMajority>("small"),
        sim::<abd_early_reply::AbdEarlyReply>("small"),
        sim::<multi_paxos_long_lease::MultiPaxosLongLease>("basic"),
        sim::<raft_stale_vote::RaftStaleVote>("stale_vote"),
        sim::<raft_volatile_vote::RaftVolatileVote>("volatile_vote"),
        sim::<raft_early_commands::RaftEarlyCommands>("early_commands"),
        sim::<raft_duplicate_votes::RaftDuplicateVotes>("duplicate_votes"),
        sim::<raft_no_dedup::RaftNoDedup>("exactly_once"),
    ];
    // Not vacuous: most runs find their bug and shorten it.
    assert!(found.iter().sum::<usize>() >= 15, "{found:?}");
}

#[test]
fn simulation_finds_a_bug_by_seed_and_replays_it() {
    use smelt::model_check::simulate::{run, SimOptions};
    type P = smelt_specs::buggy::paxos_accept_lower_ballot::PaxosAcceptLowerBallot;
    let check = P::checks().into_iter().find(|c| c.name == "small").unwrap();
    let cfg = RunConfig::from_check(&check);
    let opts = SimOptions {
        seed: 42,
        walks: 20_000,
        max_depth: 60,
        shard: (0, 1),
        walk: None,
    };
    let found = run::<P>("paxos_accept_lower_ballot.sm", cfg.clone(), &opts).unwrap();
    let (seed, walk) = found.seed_walk.expect("random walks find the bug");
    let bug = found
        .properties
        .iter()
        .find(|p| p.verdict == Verdict::Violated)
        .unwrap();
    // The same walk, alone, replays to the same counterexample.
    let again = run::<P>(
        "paxos_accept_lower_ballot.sm",
        cfg.clone(),
        &SimOptions {
            walk: Some(walk),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(again.seed_walk, Some((seed, walk)));
    let bug2 = again
        .properties
        .iter()
        .find(|p| p.verdict == Verdict::Violated)
        .unwrap();
    assert_eq!(bug.trace_text, bug2.trace_text);
    // Shortened, it is close to the shortest counterexample BFS finds.
    let bfs = run_check::<P>("paxos_accept_lower_ballot.sm", cfg).unwrap();
    let shortest = bfs
        .properties
        .iter()
        .filter_map(|p| p.steps.filter(|_| p.verdict == Verdict::Violated))
        .min()
        .unwrap();
    let simulated = bug.steps.unwrap();
    assert!(
        simulated <= shortest + 4,
        "simulation's trace has {simulated} steps, BFS's shortest {shortest}"
    );
    // Shards split the walks: shards 0/2 and 1/2 together take exactly the
    // steps of all walks (each walk is fixed by seed and number; the
    // correct spec, so no walk stops early at a violation).
    type Ok = smelt_specs::paxos::Paxos;
    let small = Ok::checks().into_iter().find(|c| c.name == "small").unwrap();
    let steps = |shard: (u64, u64)| {
        run::<Ok>(
            "paxos.sm",
            RunConfig::from_check(&small),
            &SimOptions {
                shard,
                walks: 10,
                max_depth: 30,
                ..opts.clone()
            },
        )
        .unwrap()
        .stats
        .unique_states
    };
    let (a, b, whole) = (steps((0, 2)), steps((1, 2)), steps((0, 1)));
    assert!(a > 0 && b > 0, "both shards walk: {a} and {b} steps");
    assert_eq!(a + b, whole, "shards 0/2 and 1/2 take the steps of all walks");
}

#[test]
fn a_race_budget_lets_two_candidates_stand_in_one_term() {
    // raft.sm `progress` has `races 1`: one election timer may fire while a
    // RequestVote is on its way to its server, so two servers stand in
    // term 1 — and the request is still answered. Without the budget the
    // timing model never lets that happen.
    use smelt::model_check::report::Verdict;
    let two = |r: &CheckReport| {
        let p = r
            .properties
            .iter()
            .find(|p| p.name == "TwoCandidates")
            .expect("TwoCandidates");
        p.verdict
    };
    let with = run::<smelt_specs::raft::Raft>("progress");
    assert_eq!(with.config.races, 1);
    assert_eq!(with.as_expected, Some(true), "{}", render_summary(&with));
    assert_eq!(two(&with), Verdict::Reached, "{}", render_summary(&with));
    let without = run_with::<smelt_specs::raft::Raft>("progress", |c| c.races = 0);
    assert_eq!(two(&without), Verdict::Violated, "{}", render_summary(&without));
    assert!(with.stats.unique_states > without.stats.unique_states);
}

/// A delivery is a step only while its message is in flight. The search
/// offers only those, but simulation's shortening replays a list of
/// actions with some removed: a delivery whose send was removed used to
/// run anyway and show replies never sent.
#[test]
fn a_message_not_in_flight_cannot_be_delivered() {
    use smelt::model_check::system::{Action, System};
    use smelt::support::Id;
    use smelt_specs::paxos::{Msg, Paxos, Prepared};
    let check = Paxos::checks().into_iter().find(|c| c.name == "small").unwrap();
    let sys = System::<Paxos>::new(RunConfig::from_check(&check)).unwrap();
    let init = sys.init();
    let mut actions = Vec::new();
    sys.actions(&init, &mut actions);
    let request = actions
        .iter()
        .find(|a| matches!(a, Action::Deliver { .. }))
        .expect("a request in flight at the start")
        .clone();
    let Action::Deliver { dst: leader, .. } = request else {
        unreachable!()
    };
    let after = sys.next(&init, &request).expect("in flight: a step");
    // The leader opened ballot (1, leader). A promise for it that no
    // server sent would, if delivered, make a quorum with the leader's own.
    let other = Id::from((usize::from(leader) + 1) % 3);
    let phantom = Action::Deliver {
        src: other,
        dst: leader,
        msg: Msg::Prepared(Prepared {
            ballot: (1, leader),
            last_accepted: None,
        }),
    };
    assert!(
        sys.next(&after, &phantom).is_none(),
        "a promise never sent was delivered"
    );
    // Replaying a list of actions (as simulation's shortening does) stops
    // there.
    let trace = smelt::model_check::trace::replay_actions(&sys, &[request, phantom]);
    assert_eq!(trace.steps.len(), 1);
}
