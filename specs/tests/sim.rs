//! The deterministic simulator on the library's specs: seeded runs of the
//! deployed node code with every fault, zero violations; the same seed
//! gives the same run; and the simulator has teeth — it catches a buggy
//! spec, two runtime bugs switched on for the test, and a spec that relies
//! on a behaviour the runtime does not provide.
//!
//! The long runs (10,000 seeds of raft.sm, 1,000 of multipaxos.sm) are in
//! the deep suite (`--ignored`).

use smelt::sim::cli::{render, run_many, Summary};
use smelt::sim::{run, Bugs, Options, Verdict};
use smelt::support::{Bytes, Protocol};
use smelt_specs::multi_paxos::{self, MultiPaxos};
use smelt_specs::raft::{self, Raft};

fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Three clients on two keys: appends (a second application would show
/// twice), puts, reads, a compare-and-swap and a guarded batch on both keys.
fn raft_workloads() -> Vec<Vec<raft::Request>> {
    vec![
        vec![
            raft::Request::Append {
                key: 1,
                value: bytes("a"),
            },
            raft::Request::Get { key: 1 },
        ],
        vec![
            raft::Request::Append {
                key: 1,
                value: bytes("b"),
            },
            raft::Request::Put {
                key: 2,
                value: bytes("p"),
            },
        ],
        vec![
            raft::Request::Get { key: 2 },
            raft::Request::Cas {
                key: 1,
                expected: bytes("a"),
                value: bytes("c"),
            },
            raft::Request::Txn {
                guards: [(2, bytes("p"))].into(),
                puts: [(1, bytes("t")), (2, bytes("t"))].into(),
            },
            raft::Request::Get { key: 1 },
        ],
    ]
}

fn multipaxos_workloads() -> Vec<Vec<multi_paxos::Request>> {
    vec![
        vec![multi_paxos::Request::Put { v: 1 }, multi_paxos::Request::Get],
        vec![multi_paxos::Request::Put { v: 2 }],
        vec![multi_paxos::Request::Get],
    ]
}

fn opts(seed: u64) -> Options {
    Options {
        seed,
        servers: vec![3],
        clients: 3,
        ..Options::default()
    }
}

fn summary<P: Protocol>(o: &Options, w: &[Vec<P::Request>], runs: u64) -> Summary {
    let sum = run_many::<P>(o, w, runs, true).expect("runs");
    eprintln!("{}", render(P::SPEC, &o.check, &sum));
    sum
}

fn assert_clean(sum: &Summary) {
    if let Some(bad) = sum.failed.first() {
        panic!(
            "seed {} fails: {:?}\nreplay with the trace: smelt sim --seed {} --runs 1 --trace",
            bad.seed, bad.verdict, bad.seed
        );
    }
}

#[test]
fn raft_holds_under_every_fault() {
    let sum = summary::<Raft>(&opts(1), &raft_workloads(), 40);
    assert_clean(&sum);
    let t = &sum.totals;
    // The runs did what they claim: faults of every kind, answers, and
    // answers after the faults.
    assert!(
        t.crashes > 10 && t.partitions > 10 && t.torn_writes > 0 && t.flips_refused > 0,
        "{t:?}"
    );
    assert!(t.restarts > 10 && t.snapshots > 0 && t.ok > 500, "{t:?}");
}

#[test]
fn multipaxos_holds_under_every_fault() {
    let sum = summary::<MultiPaxos>(&opts(1), &multipaxos_workloads(), 25);
    assert_clean(&sum);
    assert!(sum.totals.crashes > 5 && sum.totals.ok > 200, "{:?}", sum.totals);
}

#[test]
fn a_seed_replays_exactly() {
    let o = Options {
        trace: true,
        ..opts(77)
    };
    let a = run::<Raft>(&o, &raft_workloads()).expect("run");
    let b = run::<Raft>(&o, &raft_workloads()).expect("run");
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.trace, b.trace);
    assert!(a.trace.len() > 100, "a trace of {} events", a.trace.len());
    let c = run::<Raft>(&Options { seed: 78, ..o }, &raft_workloads()).expect("run");
    assert_ne!(a.stats, c.stats, "another seed, another run");
}

/// Finds the first failing seed in `runs` seeds from 1.
fn first_failure<P: Protocol>(o: &Options, w: &[Vec<P::Request>], runs: u64) -> (u64, String) {
    let sum = run_many::<P>(o, w, runs, true).expect("runs");
    let bad = sum
        .failed
        .first()
        .unwrap_or_else(|| panic!("no violation in {runs} seeds:\n{}", render(P::SPEC, &o.check, &sum)));
    let Verdict::Violation { what, .. } = &bad.verdict else {
        unreachable!()
    };
    // The seed alone reproduces it.
    let again = run::<P>(
        &Options {
            seed: bad.seed,
            ..o.clone()
        },
        w,
    )
    .expect("replay");
    assert_eq!(again.verdict, bad.verdict, "seed {} does not replay", bad.seed);
    eprintln!("caught by seed {}: {what}", bad.seed);
    (bad.seed, what.clone())
}

#[test]
fn catches_raft_62_the_volatile_vote() {
    use smelt_specs::buggy::raft_volatile_vote::{self as v, RaftVolatileVote};
    let w = vec![vec![v::Request::Put {
        key: 1,
        value: bytes("a"),
    }]];
    // Elections under crashes: many short ones.
    let o = Options {
        clients: 1,
        disk: false,
        fault_gap_ms: (5, 60),
        down_ms: (1, 150),
        ..opts(1)
    };
    let (_, what) = first_failure::<RaftVolatileVote>(&o, &w, 500);
    assert!(
        what.contains("ElectionSafety") || what.contains("linearizable"),
        "{what}"
    );
}

#[test]
fn catches_replies_released_before_their_fsync() {
    let o = Options {
        bugs: Bugs {
            release_before_fsync: true,
            ..Bugs::default()
        },
        partition: false,
        ..opts(1)
    };
    first_failure::<Raft>(&o, &raft_workloads(), 200);
}

#[test]
fn catches_snapshots_installed_without_fsync() {
    let o = Options {
        bugs: Bugs {
            snapshot_without_fsync: true,
            ..Bugs::default()
        },
        partition: false,
        ..opts(1)
    };
    let (_, what) = first_failure::<Raft>(&o, &raft_workloads(), 200);
    assert!(what.contains("cannot start on the data it wrote itself"), "{what}");
}

mod stream {
    smelt::protocol!("tests/data/stream.sm");
}

/// stream.sm holds on the model's lossless FIFO network (`fifo`), and its
/// correctness rests on that: a crash of the receiver loses messages in the
/// runtime, which the contract says (and the `loss` and `crash` checks
/// show). The simulator finds it on the real node code.
#[test]
fn catches_a_spec_that_relies_on_a_lossless_network() {
    use stream::stream::Stream;
    let o = Options {
        servers: vec![1, 1],
        clients: 0,
        partition: false,
        disk: false,
        ..opts(1)
    };
    let (_, what) = first_failure::<Stream>(&o, &[], 200);
    assert!(
        what.contains("handler failed") || what.contains("no progress"),
        "{what}"
    );
}

/// Runs from `SMELT_SIM_RUNS`, or `default`: the deep suite's bounded set,
/// which the benchmark runs at a larger count (README, the simulator).
fn runs_or(default: u64) -> u64 {
    std::env::var("SMELT_SIM_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// 1,000 seeds in CI's deep suite (156 s here beside `multipaxos_seeds`);
/// the README's benchmark of 10,000 is this test with
/// `SMELT_SIM_RUNS=10000` (about 17 minutes).
#[test]
#[ignore = "deep: 1,000 seeded runs of raft.sm (SMELT_SIM_RUNS for more); run with --ignored"]
fn raft_seeds() {
    let sum = summary::<Raft>(&opts(1_000_000), &raft_workloads(), runs_or(1_000));
    assert_clean(&sum);
}

#[test]
#[ignore = "deep: 1,000 seeded runs of multipaxos.sm (SMELT_SIM_RUNS for more); run with --ignored"]
fn multipaxos_seeds() {
    let sum = summary::<MultiPaxos>(&opts(2_000_000), &multipaxos_workloads(), runs_or(1_000));
    assert_clean(&sum);
}
