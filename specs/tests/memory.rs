//! The checker's memory: the encoded BFS frontier gives back exactly the
//! states it was given (in RAM and from disk), a search whose frontier
//! spills to disk explores exactly what an in-RAM one does, and a liveness
//! search whose fingerprint index spills gives the same answers. (A search
//! that outgrows its memory budget: `memory_budget.rs`, alone in its
//! process.)

use smelt::model_check::cli::run_check;
use smelt::model_check::frontier::{Decoder, Encoder, Keys};
use smelt::model_check::net::Net;
use smelt::model_check::report::{render_summary, CheckReport};
use smelt::model_check::search::fingerprint;
use smelt::model_check::system::{SysState, System};
use smelt::model_check::RunConfig;
use smelt::support::Protocol;
use std::collections::HashSet;

fn config<P: Protocol>(name: &str) -> RunConfig {
    RunConfig::of_check::<P>(name).unwrap()
}

fn run<P: Protocol>(name: &str, edit: impl FnOnce(&mut RunConfig)) -> CheckReport {
    let mut cfg = config::<P>(name);
    edit(&mut cfg);
    run_check::<P>(P::SPEC, cfg).unwrap_or_else(|e| panic!("{} `{name}`: {e}", P::NAME))
}

/// The first `n` states of a breadth-first walk of check `name`, in
/// generation order (siblings next to each other, as the search writes
/// them), with their fingerprints.
fn states<P: Protocol>(name: &str, n: usize) -> (System<P>, Vec<(SysState<P>, u64)>) {
    let sys = System::<P>::new(config::<P>(name)).unwrap();
    let init = sys.init();
    let mut seen = HashSet::from([fingerprint(&init)]);
    let mut out = vec![(init.clone(), fingerprint(&init))];
    let mut next = 0;
    let mut actions = Vec::new();
    while out.len() < n && next < out.len() {
        let s = out[next].0.clone();
        next += 1;
        actions.clear();
        sys.actions(&s, &mut actions);
        for a in &actions {
            if let Some(t) = sys.next(&s, a) {
                let fp = fingerprint(&t);
                if seen.insert(fp) {
                    out.push((t, fp));
                }
            }
        }
    }
    (sys, out)
}

/// Encodes `states` in chunks of `per_chunk`, decodes every chunk and
/// compares state by state.
fn round_trip<P: Protocol>(name: &str, n: usize, per_chunk: usize) {
    let (sys, states) = states::<P>(name, n);
    assert!(
        states.len() >= n.min(1000),
        "{} `{name}`: only {} states",
        P::NAME,
        states.len()
    );
    let keys = Keys::default();
    let mut enc = Encoder::<P>::default();
    let mut back = Vec::new();
    for chunk in states.chunks(per_chunk) {
        for (s, fp) in chunk {
            enc.push(s.clone(), *fp, &keys);
        }
        let (raw, count) = enc.finish().open().unwrap();
        assert_eq!(count as usize, chunk.len());
        let mut dec = Decoder::<P>::new(&raw, count, Net::new(sys.cfg.network), &keys);
        while let Some((s, fp)) = dec.next_state().unwrap() {
            assert_eq!(fp, fingerprint(s), "a decoded state hashes as its fingerprint");
            back.push((s.clone(), fp));
        }
    }
    assert_eq!(back.len(), states.len());
    for (i, ((a, fa), (b, fb))) in states.iter().zip(&back).enumerate() {
        assert_eq!(fa, fb, "{} `{name}`: state {i}", P::NAME);
        assert!(a == b, "{} `{name}`: state {i} differs after decoding", P::NAME);
    }
}

#[test]
fn the_encoded_frontier_gives_back_every_state() {
    // Ordered links, crashes and storage, histories.
    round_trip::<smelt_specs::raft::Raft>("crash", 20_000, 997);
    round_trip::<smelt_specs::chain_replication::ChainReplication>("restart_one_client", 12_702, 4096);
    // A duplicating network and pending `choose` options.
    round_trip::<smelt_specs::two_phase_commit::TwoPhaseCommit>("lossy", 20_000, 1);
    // An unordered multiset network, three clients.
    round_trip::<smelt_specs::paxos::Paxos>("three_clients", 20_000, 20_000);
}

#[test]
fn a_damaged_chunk_is_an_error_not_a_state() {
    type P = smelt_specs::raft::Raft;
    let (sys, states) = states::<P>("crash", 300);
    let keys = Keys::default();
    let mut enc = Encoder::<P>::default();
    for (s, fp) in &states {
        enc.push(s.clone(), *fp, &keys);
    }
    let (raw, count) = enc.finish().open().unwrap();
    // Cut short anywhere, or with a byte changed, decoding ends in an
    // error or in states that are not the ones written — never a panic.
    let mut errors = 0;
    for cut in (0..raw.len()).step_by(raw.len() / 97 + 1) {
        for damaged in [raw[..cut].to_vec(), {
            let mut r = raw.clone();
            r[cut] ^= 0xa5;
            r
        }] {
            let mut dec = Decoder::<P>::new(&damaged, count, Net::new(sys.cfg.network), &keys);
            loop {
                match dec.next_state() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
    }
    assert!(errors > 0);
}

/// The same check with the frontier in RAM (the default here), entirely on
/// disk, and as live states; and with the visited set spilled to disk (one
/// page per shard in RAM: every shard spills many times, its parents read
/// back from disk for the counterexample).
fn same_search<P: Protocol>(name: &str) {
    let ram = run::<P>(name, |_| {});
    let disk = run::<P>(name, |c| c.frontier_ram = Some(0));
    let live = run::<P>(name, |c| c.live_frontier = true);
    let spilled = run::<P>(name, |c| c.visited_ram = Some(0));
    assert_eq!(ram.stats.frontier_disk_bytes_max, 0, "{}", render_summary(&ram));
    assert!(disk.stats.frontier_disk_bytes_max > 0, "{}", render_summary(&disk));
    assert_eq!(ram.stats.visited_disk_bytes, 0, "{}", render_summary(&ram));
    // A page per shard holds 217 entries with parents (85% of 256): only a
    // search smaller than 64 such pages fits without spilling.
    if ram.stats.unique_states > 64 * 256 {
        assert!(spilled.stats.visited_disk_bytes > 0, "{}", render_summary(&spilled));
    }
    for other in [&disk, &live, &spilled] {
        assert_eq!(
            (
                other.stats.unique_states,
                other.stats.total_states,
                other.stats.max_depth
            ),
            (ram.stats.unique_states, ram.stats.total_states, ram.stats.max_depth),
            "{} `{name}`",
            P::NAME
        );
        for (a, b) in ram.properties.iter().zip(&other.properties) {
            assert_eq!((&a.name, a.verdict, a.steps), (&b.name, b.verdict, b.steps));
            // One thread: the same order of states, so the same counterexample.
            assert_eq!(a.trace_text, b.trace_text);
        }
    }
    assert!(ram.stats.complete || ram.violated());
}

#[test]
fn a_frontier_on_disk_searches_the_same_states() {
    same_search::<smelt_specs::paxos::Paxos>("ordered");
    same_search::<smelt_specs::raft::Raft>("elections_race");
    same_search::<smelt_specs::chain_replication::ChainReplication>("restart_one_client");
    same_search::<smelt_specs::two_phase_commit::TwoPhaseCommit>("lossy");
    same_search::<smelt_specs::buggy::paxos_accept_lower_ballot::PaxosAcceptLowerBallot>("small");
}

/// DFS keeps fingerprints only; spilled, it finds the same states.
#[test]
fn a_visited_set_on_disk_searches_the_same_states_under_dfs() {
    type P = smelt_specs::paxos::Paxos;
    let dfs = |c: &mut RunConfig| c.strategy = smelt::support::Strategy::Dfs;
    let ram = run::<P>("three_clients", dfs);
    let spilled = run::<P>("three_clients", |c| {
        dfs(c);
        c.visited_ram = Some(0);
    });
    assert!(spilled.stats.visited_disk_bytes > 0, "{}", render_summary(&spilled));
    assert_eq!(ram.stats.unique_states, 1_194_428);
    assert_eq!(spilled.stats.unique_states, ram.stats.unique_states);
    assert_eq!(spilled.stats.total_states, ram.stats.total_states);
}

#[test]
fn a_liveness_graph_whose_index_spills_gives_the_same_answers() {
    type C = smelt_specs::chain_replication::ChainReplication;
    type D = smelt_specs::liveness::dueling_paxos::DuelingPaxos;
    use smelt::model_check::report::Verdict;
    // One page per shard of RAM for the fingerprint index (`--visited-ram
    // 0`): about 16,000 states; the rest in sorted runs on disk.
    let ram = run::<C>("progress", |_| {});
    let disk = run::<C>("progress", |c| c.visited_ram = Some(0));
    let summary = render_summary(&disk);
    assert!(disk.stats.complete, "{summary}");
    assert_eq!(ram.stats.visited_disk_bytes, 0, "{}", render_summary(&ram));
    assert!(disk.stats.visited_disk_bytes > 0, "{summary}");
    assert!(disk.stats.graph_disk_bytes > 0, "{summary}");
    assert_eq!(
        (disk.stats.unique_states, disk.stats.total_states),
        (ram.stats.unique_states, ram.stats.total_states)
    );
    let verdict = |r: &CheckReport, name: &str| r.properties.iter().find(|p| p.name == name).map(|p| p.verdict);
    assert_eq!(verdict(&disk, "AllDone"), Some(Verdict::Holds), "{summary}");
    assert_eq!(disk.as_expected, Some(true), "{summary}");
    // A violation: the same lasso, step for step (52,036 states with a
    // drop and a crash).
    let faults = |c: &mut RunConfig| {
        c.drops = 1;
        c.crash = 1;
    };
    let ram = run::<D>("dueling", faults);
    let disk = run::<D>("dueling", |c| {
        faults(c);
        c.visited_ram = Some(0);
    });
    let lasso = |r: &CheckReport| {
        r.properties
            .iter()
            .find(|p| p.verdict == Verdict::Violated)
            .and_then(|p| p.trace_text.clone())
    };
    assert!(ram.stats.unique_states > 50_000, "{}", render_summary(&ram));
    assert!(lasso(&ram).is_some(), "{}", render_summary(&ram));
    assert!(disk.stats.visited_disk_bytes > 0, "{}", render_summary(&disk));
    assert_eq!(disk.stats.unique_states, ram.stats.unique_states);
    assert_eq!(lasso(&disk), lasso(&ram));
}
