//! Symmetry reduction keeps one state per class: the representative
//! (`symmetry::canonical`) is the same for every member of a class, checked
//! state by state against every permutation of the servers, and a search
//! stores exactly as many states as there are classes (counted without the
//! reduction, by Burnside's lemma).

use smelt::model_check::symmetry::{canonical, count_classes, permutations};
use smelt::model_check::system::{SysState, System};
use smelt::model_check::RunConfig;
use smelt::support::{Id, Protocol};
use std::collections::HashSet;

fn config<P: Protocol>(name: &str) -> RunConfig {
    RunConfig::of_check::<P>(name).unwrap()
}

/// Every permutation of the servers within each role, as `order[new] = old`.
fn group(sys: &System<impl Protocol>, n: usize) -> Vec<Vec<usize>> {
    let mut out = vec![(0..n).collect::<Vec<usize>>()];
    for ids in &sys.layout.roles {
        let slots: Vec<usize> = ids.iter().map(|&i| usize::from(i)).collect();
        out = out
            .into_iter()
            .flat_map(|o| {
                let slots = slots.clone();
                permutations(&slots).into_iter().map(move |p| {
                    let mut o = o.clone();
                    for (k, &s) in slots.iter().enumerate() {
                        o[s] = p[k];
                    }
                    o
                })
            })
            .collect();
    }
    out
}

fn permuted<P: Protocol>(s: &SysState<P>, order: &[usize]) -> SysState<P> {
    let mut map = vec![Id::from(0); order.len()];
    for (new, &old) in order.iter().enumerate() {
        map[old] = Id::from(new);
    }
    s.rewrite_ids(order, &|id: Id| map.get(usize::from(id)).copied().unwrap_or(id))
}

/// Walks the first `max` reachable states of check `name` (no reduction)
/// and asserts that each one's permutations have its representative.
fn same_representative<P: Protocol>(name: &str, max: usize) -> usize {
    let sys = System::<P>::new(config::<P>(name)).unwrap();
    let init = sys.init();
    let n = init.nodes.len();
    let perms = group(&sys, n);
    let mut seen = HashSet::from([init.clone()]);
    let mut queue = std::collections::VecDeque::from([init]);
    let mut actions = Vec::new();
    let mut checked = 0;
    while let Some(s) = queue.pop_front() {
        let rep = canonical(&sys, s.clone());
        for o in &perms {
            let other = canonical(&sys, permuted(&s, o));
            assert!(
                other == rep,
                "{} `{name}`: two members of one class have different representatives\n{s:?}\npermuted by {o:?}:\n{:?}\nrepresentatives:\n{rep:?}\n{other:?}",
                P::NAME,
                permuted(&s, o)
            );
        }
        checked += 1;
        if checked == max {
            break;
        }
        actions.clear();
        sys.actions(&s, &mut actions);
        for a in &actions {
            if let Some(t) = sys.next(&s, a) {
                if seen.insert(t.clone()) {
                    queue.push_back(t);
                }
            }
        }
    }
    checked
}

/// Runs check `name` of `P` (its `symmetry` as written, or off) and returns
/// the states it stored.
fn stored<P: Protocol>(name: &str, symmetry: bool) -> u64 {
    let mut cfg = config::<P>(name);
    cfg.symmetry = symmetry;
    let r = smelt::model_check::cli::run_safety::<P>(P::SPEC, cfg, None).unwrap();
    assert!(r.stats.complete && !r.violated(), "{} `{name}`", P::NAME);
    r.stats.unique_states
}

fn classes<P: Protocol>(name: &str) -> (u64, u128) {
    let sys = System::<P>::new(config::<P>(name)).unwrap();
    count_classes(&sys, 10_000_000).unwrap()
}

type TwoPhaseTla = smelt_specs::bench::two_phase_tla::TwoPhaseTla;

/// Ties broken by trying every order (at most three servers tied).
#[test]
fn representatives_primary_backup() {
    type P = smelt_specs::primary_backup::PrimaryBackup;
    // Every reachable state of `three_backups`, against all 6 orders.
    assert_eq!(same_representative::<P>("three_backups", usize::MAX), 13_410);
    assert_eq!(classes::<P>("three_backups"), (13_410, 4_210));
    assert_eq!(stored::<P>("three_backups", true), 4_210);
}

/// Ties broken by profiles (five servers tied: 120 orders).
#[test]
fn representatives_two_phase_tla() {
    assert_eq!(same_representative::<TwoPhaseTla>("rm5", usize::MAX), 8_832);
    // TLC's count for TwoPhase with 3 resource managers is 288.
    assert_eq!(stored::<TwoPhaseTla>("rm3", false), 288);
    for (name, all) in [("rm3", 288), ("rm5", 8_832), ("rm6", 50_816)] {
        let (states, classes) = classes::<TwoPhaseTla>(name);
        assert_eq!(states, all);
        assert_eq!(u128::from(stored::<TwoPhaseTla>(name, true)), classes, "`{name}`");
    }
}

/// raft.sm: servers refer to themselves and each other (votes, next and
/// match indexes), and clients choose a server (a choice whose options
/// are renamed). The first 20,000 states of `elections_race` against every
/// permutation, and the whole search against the classes.
#[test]
fn representatives_raft() {
    type P = smelt_specs::raft::Raft;
    same_representative::<P>("elections_race", 20_000);
    let (all, classes) = classes::<P>("elections_race");
    assert!(all > 100_000, "{all}");
    assert_eq!(u128::from(stored::<P>("elections_race", true)), classes);
}

#[test]
fn representatives_two_phase_commit() {
    type P = smelt_specs::two_phase_commit::TwoPhaseCommit;
    same_representative::<P>("small", usize::MAX);
    for name in ["small", "crashes"] {
        let (_, classes) = classes::<P>(name);
        assert_eq!(u128::from(stored::<P>(name, true)), classes, "`{name}`");
    }
}
