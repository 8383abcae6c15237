//! Which properties a run checks, and their evaluation on one state.

use crate::config::RunConfig;
use crate::history::Cache;
use crate::system::{SysState, System};
use smelt_support::{HandlerError, PropertyKind, Protocol};

/// A property of a run: the built-in ones and the spec's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PropId {
    /// No handler fails (overflow, missing key, failed assertion, ...).
    HandlerError,
    /// Client histories are linearizable against the service.
    Linearizable,
    /// A spec property, by index into `Protocol::properties()`.
    Spec(usize),
}

impl PropId {
    pub fn name<P: Protocol>(self) -> &'static str {
        match self {
            PropId::HandlerError => "handler_error",
            PropId::Linearizable => "linearizable",
            PropId::Spec(i) => P::properties()[i].name,
        }
    }

    pub fn kind<P: Protocol>(self) -> PropertyKind {
        match self {
            PropId::HandlerError => PropertyKind::Invariant,
            PropId::Linearizable => PropertyKind::Linearizable,
            PropId::Spec(i) => P::properties()[i].kind,
        }
    }
}

/// The properties a safety search watches.
pub struct SafetyProps {
    /// Must hold in every state: handler errors, invariants, linearizability.
    pub always: Vec<PropId>,
    /// Must hold in some state.
    pub sometimes: Vec<PropId>,
    pub linearizable: bool,
}

impl SafetyProps {
    pub fn of<P: Protocol>(cfg: &RunConfig) -> SafetyProps {
        let mut always = vec![PropId::HandlerError];
        let mut sometimes = Vec::new();
        let mut linearizable = false;
        for (i, p) in P::properties().iter().enumerate() {
            if cfg.skips(p.name) {
                continue;
            }
            match p.kind {
                PropertyKind::Invariant => always.push(PropId::Spec(i)),
                PropertyKind::Reachable => sometimes.push(PropId::Spec(i)),
                PropertyKind::Linearizable => {
                    linearizable = true;
                    always.push(PropId::Linearizable);
                }
                PropertyKind::Eventually | PropertyKind::LeadsTo => {}
            }
        }
        SafetyProps {
            always,
            sometimes,
            linearizable,
        }
    }
}

/// The outcome of evaluating one property on one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eval {
    Holds,
    Fails,
    /// Evaluating the property itself failed (e.g. `unwrap` of `None`).
    Error(HandlerError),
}

pub fn eval<P: Protocol>(sys: &System<P>, s: &SysState<P>, p: PropId, cache: &Cache) -> Eval {
    match p {
        PropId::HandlerError => {
            if s.nodes.iter().any(|n| P::failure(&n.state).is_some()) {
                Eval::Fails
            } else {
                Eval::Holds
            }
        }
        PropId::Linearizable => {
            if cache.linearizable(&sys.service, &s.history) {
                Eval::Holds
            } else {
                Eval::Fails
            }
        }
        PropId::Spec(i) => match P::eval(i, s) {
            Ok(true) => Eval::Holds,
            Ok(false) => Eval::Fails,
            Err(e) => Eval::Error(e),
        },
    }
}

/// The first failed node and its error, for reports.
pub fn first_failure<P: Protocol>(s: &SysState<P>) -> Option<(usize, HandlerError)> {
    s.nodes
        .iter()
        .enumerate()
        .find_map(|(i, n)| P::failure(&n.state).map(|e| (i, e.clone())))
}
