//! Symmetry reduction: every state is replaced by a canonical member of its
//! class under permutations of the servers of each role.
//!
//! The canonical member sorts the servers of each role by their state (and
//! storage, crash flag and timers, to break ties), then renames node ids
//! everywhere — in node states, messages, timers, choices, storage and the
//! history — accordingly. Clients are never permuted. Because the search
//! stores and expands canonical states, the reduction works the same under
//! BFS, DFS and simulation and with several roles (stateright's
//! `symmetry()` is ignored by its BFS and sorts all actors together).
//!
//! Soundness needs the protocol to be symmetric; the front end decides that
//! (`Protocol::SYMMETRIC`) and refuses `symmetry` otherwise. Client targets
//! are symmetric too: with symmetry on, clients pick their server
//! nondeterministically instead of by index.

use crate::system::{SysState, System};
use smelt_support::{Id, Protocol};
use std::cmp::Ordering;

pub fn canonical<P: Protocol>(sys: &System<P>, s: SysState<P>) -> SysState<P> {
    canonical_with_map(sys, s).0
}

/// The canonical member and the renaming that produced it: `map[old] = new`.
pub fn canonical_with_map<P: Protocol>(sys: &System<P>, s: SysState<P>) -> (SysState<P>, Vec<Id>) {
    let n = s.nodes.len();
    // order[new slot] = old slot
    let mut order: Vec<usize> = (0..n).collect();
    let mut start = 0;
    for ids in &sys.layout.roles {
        let end = start + ids.len();
        order[start..end].sort_by(|&a, &b| compare(&s, a, b));
        start = end;
    }
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        return (s, (0..n).map(Id::from).collect());
    }
    // map[old id] = new id
    let mut map = vec![Id::from(0); n];
    for (new, &old) in order.iter().enumerate() {
        map[old] = Id::from(new);
    }
    let f = |id: Id| map.get(usize::from(id)).copied().unwrap_or(id);
    let c = s.rewrite_ids(&order, &f);
    (c, map)
}

fn compare<P: Protocol>(s: &SysState<P>, a: usize, b: usize) -> Ordering {
    let (x, y) = (&s.nodes[a], &s.nodes[b]);
    x.state
        .cmp(&y.state)
        .then_with(|| x.storage.cmp(&y.storage))
        .then_with(|| s.is_crashed(a).cmp(&s.is_crashed(b)))
        .then_with(|| x.timers.cmp(&y.timers))
}
