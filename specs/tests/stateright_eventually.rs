//! A gap in stateright 0.31 that smelt's liveness mode closes.
//!
//! stateright evaluates an `Expectation::Eventually` property only at terminal
//! states, that is states with no successors. When a revisited state is reached,
//! the checker cannot tell a cycle from a join in the DAG, so it treats the state as
//! non-terminal. A behaviour that loops forever without reaching the goal therefore
//! never reaches a terminal state, and it is never reported. stateright's own docs
//! on `Property::eventually` describe this false negative.
//!
//! The test below models `specs/liveness/cycle.sm` (one walker going A → B → C → A
//! forever, never `Done`) directly with stateright's `Model` trait. It shows that
//! stateright explores the whole state space and still finds no counterexample.
//! smelt, run on the same spec, reports the cycle as a lasso. For contrast, a walk
//! that ends in a non-goal state (a deadlock) is caught by stateright too. This shows
//! that the gap is specifically about cycles.

use smelt::model_check::cli::run_check;
use smelt::model_check::report::{render_summary, Verdict};
use smelt::model_check::RunConfig;
use smelt::support::stateright::{Checker, Model, Property};
use smelt::support::Protocol;

/// The walker's position, as in `cycle.sm`. `Done` is the goal; no walk reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Walker {
    A,
    B,
    C,
    Done,
}

/// A one-walker model in which each state has at most one successor, its `tick`.
/// With `cyclic` set, C goes back to A (as in `cycle.sm`). Without it, C has no
/// successor, so the walk deadlocks outside the goal.
struct Walk {
    cyclic: bool,
}

impl Model for Walk {
    type State = Walker;
    type Action = ();

    fn init_states(&self) -> Vec<Walker> {
        vec![Walker::A]
    }

    fn actions(&self, s: &Walker, actions: &mut Vec<()>) {
        // The single action is the timer firing. The walk has nothing to do once it
        // is done, and nothing to do at C unless it is cyclic.
        if *s != Walker::Done && (*s != Walker::C || self.cyclic) {
            actions.push(());
        }
    }

    fn next_state(&self, s: &Walker, _: ()) -> Option<Walker> {
        Some(match s {
            Walker::A => Walker::B,
            Walker::B => Walker::C,
            Walker::C => Walker::A,
            Walker::Done => return None,
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually("finished", |_, s| *s == Walker::Done)]
    }
}

#[test]
fn stateright_misses_a_cycle_that_smelt_reports_as_a_lasso() {
    // stateright searches every state of the cycle: the search is not vacuous.
    // Every state has a successor, though, so the `eventually` property is never
    // evaluated at a terminal state, and no counterexample is reported.
    let checker = Walk { cyclic: true }.checker().spawn_bfs().join();
    assert_eq!(checker.unique_state_count(), 3, "stateright should visit A, B and C");
    assert!(checker.is_done());
    assert!(
        checker.discovery("finished").is_none(),
        "stateright 0.31 was expected to miss the cycle; if it now reports it, this gap is closed upstream"
    );

    // smelt checks the same behaviour, compiled from `cycle.sm`, in liveness mode.
    // It looks for a reachable cycle on which the goal never holds, and it finds
    // the walk A → B → C → A.
    type P = smelt_specs::liveness::cycle::Cycle;
    let check = P::checks()
        .into_iter()
        .find(|c| c.name == "walk")
        .expect("check `walk`");
    let spec = format!("specs/{}", P::SPEC.trim_start_matches("specs/"));
    let report = run_check::<P>(&spec, RunConfig::from_check(&check)).expect("smelt runs");
    let summary = render_summary(&report);
    assert_eq!(
        report.stats.unique_states, 3,
        "smelt should search the same 3 states:\n{summary}"
    );
    let finished = report
        .properties
        .iter()
        .find(|p| p.name == "Finished")
        .expect("property `Finished`");
    assert_eq!(finished.verdict, Verdict::Violated, "{summary}");
    // The counterexample is a lasso: its steps marked `in_loop` make up the cycle,
    // which has all three ticks. An empty loop would mean a deadlock instead.
    let trace = finished.trace.as_ref().expect("a counterexample trace");
    let in_loop = trace.iter().filter(|s| s.in_loop).count();
    assert_eq!(in_loop, 3, "the lasso should loop over the three ticks:\n{summary}");
    println!("stateright: no discovery in {} states", checker.unique_state_count());
    println!("smelt:\n{summary}");
}

#[test]
fn stateright_does_catch_a_walk_that_deadlocks() {
    // Here the walk stops at C, a state with no successor that is not the goal.
    // A state with no successor is terminal, so stateright evaluates `eventually`
    // there and reports the path A → B → C as a counterexample.
    let checker = Walk { cyclic: false }.checker().spawn_bfs().join();
    checker.assert_discovery("finished", vec![(), ()]);
    let path = checker.discovery("finished").expect("a counterexample");
    assert_eq!(path.last_state(), &Walker::C);
    assert_eq!(checker.unique_state_count(), 3);
}
