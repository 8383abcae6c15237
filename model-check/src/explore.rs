//! `smelt check --explore`: stateright's Explorer on smelt's system model.
//!
//! The Explorer is a web UI for walking a model's state space by hand. It
//! runs on any `stateright::Model`, so this module implements that trait for
//! the system model (the same transitions `smelt check` searches), with the
//! spec's properties. stateright properties are plain function pointers, so
//! each property index gets its own monomorphized evaluator from a table.

use crate::config::RunConfig;
use crate::history::Cache;
use crate::props::{eval, Eval, PropId};
use crate::symmetry::canonical;
use crate::system::{Action, SysState, System};
use smelt_support::stateright::{Expectation, Model, Property};
use smelt_support::{PropertyKind, Protocol};

pub struct ExploreModel<P: Protocol> {
    sys: System<P>,
    cache: Cache,
}

impl<P: Protocol> Model for ExploreModel<P> {
    type State = SysState<P>;
    type Action = Action<P>;

    fn init_states(&self) -> Vec<SysState<P>> {
        let s = self.sys.init();
        vec![if self.sys.cfg.symmetry {
            canonical(&self.sys, s)
        } else {
            s
        }]
    }

    fn actions(&self, s: &SysState<P>, out: &mut Vec<Action<P>>) {
        self.sys.actions(s, out);
    }

    fn next_state(&self, s: &SysState<P>, a: Action<P>) -> Option<SysState<P>> {
        let t = self.sys.next(s, &a)?;
        Some(if self.sys.cfg.symmetry {
            canonical(&self.sys, t)
        } else {
            t
        })
    }

    fn format_action(&self, a: &Action<P>) -> String {
        crate::trace::describe(&self.sys, a)
    }

    fn format_step(&self, s: &SysState<P>, a: Action<P>) -> Option<String> {
        let t = self.sys.next(s, &a)?;
        let trace = crate::trace::Trace {
            init: s.clone(),
            steps: vec![(a, t)],
            loop_start: None,
        };
        Some(crate::trace::render(&self.sys, &trace))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut out = vec![Property {
            expectation: Expectation::Always,
            name: "handler_error",
            condition: handler_ok::<P>,
        }];
        for (i, p) in P::properties().iter().enumerate().take(TABLE.len()) {
            let condition = condition::<P>(i);
            match p.kind {
                PropertyKind::Invariant => out.push(Property {
                    expectation: Expectation::Always,
                    name: p.name,
                    condition,
                }),
                PropertyKind::Reachable => out.push(Property {
                    expectation: Expectation::Sometimes,
                    name: p.name,
                    condition,
                }),
                PropertyKind::Linearizable => out.push(Property {
                    expectation: Expectation::Always,
                    name: "linearizable",
                    condition: linearizable::<P>,
                }),
                PropertyKind::Eventually | PropertyKind::LeadsTo => {}
            }
        }
        out
    }
}

fn handler_ok<P: Protocol>(m: &ExploreModel<P>, s: &SysState<P>) -> bool {
    eval(&m.sys, s, PropId::HandlerError, &m.cache) == Eval::Holds
}

fn linearizable<P: Protocol>(m: &ExploreModel<P>, s: &SysState<P>) -> bool {
    eval(&m.sys, s, PropId::Linearizable, &m.cache) == Eval::Holds
}

fn spec_property<P: Protocol, const I: usize>(m: &ExploreModel<P>, s: &SysState<P>) -> bool {
    eval(&m.sys, s, PropId::Spec(I), &m.cache) == Eval::Holds
}

/// One evaluator per property index (the Explorer shows at most this many).
const TABLE: [(); 32] = [(); 32];

type Cond<P> = fn(&ExploreModel<P>, &SysState<P>) -> bool;

fn condition<P: Protocol>(i: usize) -> Cond<P> {
    macro_rules! table {
        ($($n:literal)*) => {
            match i {
                $($n => spec_property::<P, $n>,)*
                _ => handler_ok::<P>,
            }
        };
    }
    table!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31)
}

/// Serves the Explorer for one config until the process is stopped.
pub fn serve<P: Protocol>(cfg: RunConfig, addr: &str) -> i32 {
    let sys = match System::<P>::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let model = ExploreModel {
        sys,
        cache: Cache::default(),
    };
    println!("Explorer for {} on http://{addr}/ (Ctrl-C to stop)", P::NAME);
    // The Explorer serves from its own threads; keep them alive.
    let _checker = model.checker().serve(addr);
    loop {
        std::thread::park();
    }
}
