//! Symmetry reduction: every state is replaced by a representative of its
//! class under permutations of the servers of each role.
//!
//! The representative sorts the servers of each role by their own state
//! (and storage, crash flag and timers, to break ties), then renames node
//! ids everywhere — in node states, messages, timers, choices, storage and
//! the history — accordingly. Clients are never permuted. Because the
//! search stores and expands representatives, the reduction works the same
//! under BFS, DFS and simulation and with several roles (stateright's
//! `symmetry()` is ignored by its BFS and sorts all actors together).
//!
//! Servers whose own states are equal are told apart by how the rest of the
//! state refers to them (`refine`): in two-phase commit, prepared resource
//! managers differ only in whether the coordinator has counted their vote
//! yet. Without that step, such a class is stored once per way of numbering
//! its tied servers. Any order is sound (the representative is always a
//! member of the class); a better order only merges more of each class into
//! one representative. `count_classes` counts the classes independently,
//! so that the benchmark can say how close the reduction gets.
//!
//! Soundness needs the protocol to be symmetric; the front end decides that
//! (`Protocol::SYMMETRIC`) and refuses `symmetry` otherwise. Client targets
//! are symmetric too: with symmetry on, clients pick their server
//! nondeterministically instead of by index.

use crate::system::{Node, SysState, System};
use smelt_support::{Id, Protocol, Rewrite};
use std::cmp::Ordering;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

pub fn canonical<P: Protocol>(sys: &System<P>, s: SysState<P>) -> SysState<P> {
    canonical_with_map(sys, s).0
}

/// The representative and the renaming that produced it: `map[old] = new`.
pub fn canonical_with_map<P: Protocol>(sys: &System<P>, s: SysState<P>) -> (SysState<P>, Vec<Id>) {
    if sys.cfg.symmetry_local {
        return canonical_local(sys, s);
    }
    let n = s.nodes.len();
    let keys = own_keys(sys, &s);
    // order[new slot] = old slot
    let mut order: Vec<usize> = (0..n).collect();
    // Runs of servers whose keys tie: [start, end) of new slots.
    let mut ties: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for ids in &sys.layout.roles {
        let end = start + ids.len();
        order[start..end].sort_by_key(|&i| keys[i]);
        runs(start, end, |x, y| keys[order[x]] == keys[order[y]], &mut ties);
        start = end;
    }
    if !ties.is_empty() {
        let orders: usize = ties.iter().map(|&(a, b)| (1..=b - a).product::<usize>()).product();
        if orders <= BRUTE_FORCE_ORDERS_MAX {
            return least_of_orders(s, order, &ties);
        }
        refine(&s, &mut order, ties);
    }
    rename(s, &order)
}

/// Ids no node has: the server being described, and one per role standing
/// for all of that role's servers (in `own_keys` and `profile_of`).
const MARK: usize = 1 << 20;
const ROLE_BASE: usize = MARK + 1;

/// Each server's key (by slot; 0 for clients): a hash of its own state,
/// storage, timers, choices and crash flag with its own id replaced by a
/// mark and every other server's id by its role's, so that the key does
/// not depend on how the servers are numbered (a candidate that voted for
/// itself has the same key whichever server it is). Keys are memoized per
/// thread (`KeyMemo`): most nodes of a state are shared with its parent
/// and siblings.
fn own_keys<P: Protocol>(sys: &System<P>, s: &SysState<P>) -> Vec<u64> {
    let n = s.nodes.len();
    let mut role_of: Vec<Option<usize>> = vec![None; n];
    for (r, ids) in sys.layout.roles.iter().enumerate() {
        for &id in ids {
            role_of[usize::from(id)] = Some(r);
        }
    }
    let salt = ahash::RandomState::with_seeds(1, 3, 5, 7).hash_one(&role_of);
    let mut keys = vec![0u64; n];
    KeyMemo::<P>::with(|memo| {
        let mut start = 0;
        for ids in &sys.layout.roles {
            let end = start + ids.len();
            if ids.len() > 1 {
                for (i, key) in keys.iter_mut().enumerate().take(end).skip(start) {
                    let crashed = s.is_crashed(i);
                    *key = memo.get(&s.nodes[i], i, crashed, salt, || {
                        let f = |id: Id| {
                            let k = usize::from(id);
                            match role_of.get(k).copied().flatten() {
                                _ if k == i => Id::from(MARK),
                                Some(r) => Id::from(ROLE_BASE + r),
                                None => id,
                            }
                        };
                        let mut h = ahash::RandomState::with_seeds(3, 5, 7, 9).build_hasher();
                        s.nodes[i].rewrite_ids(&f).hash(&mut h);
                        crashed.hash(&mut h);
                        h.finish()
                    });
                }
            }
            start = end;
        }
    });
    keys
}

/// A small direct-mapped memo of `own_keys`, one per thread and protocol:
/// (node, slot, crash flag, layout) → key. An entry is used only if the
/// node is equal to the one it was computed for, so the memo changes the
/// time a key takes, never the key.
struct KeyMemo<P: Protocol> {
    slots: Vec<Option<MemoEntry<P>>>,
}

struct MemoEntry<P: Protocol> {
    node: Node<P>,
    slot: usize,
    crashed: bool,
    salt: u64,
    key: u64,
}

/// Entries per thread: the nodes it holds stay alive (a few MiB at most).
const KEY_MEMO_SLOTS: usize = 1 << 12;

thread_local! {
    static KEY_MEMOS: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<P: Protocol> KeyMemo<P> {
    fn with<R>(f: impl FnOnce(&mut KeyMemo<P>) -> R) -> R {
        KEY_MEMOS.with(|memos| {
            let mut memos = memos.borrow_mut();
            let at = match memos.iter().position(|m| m.is::<KeyMemo<P>>()) {
                Some(k) => k,
                None => {
                    memos.push(Box::new(KeyMemo::<P> {
                        slots: (0..KEY_MEMO_SLOTS).map(|_| None).collect(),
                    }));
                    memos.len() - 1
                }
            };
            let memo = memos[at].downcast_mut::<KeyMemo<P>>().expect("checked by `is`");
            f(memo)
        })
    }

    fn get(&mut self, node: &Node<P>, slot: usize, crashed: bool, salt: u64, compute: impl FnOnce() -> u64) -> u64 {
        let index = (node.state.hash_value() ^ salt ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) as usize
            % KEY_MEMO_SLOTS;
        if let Some(e) = &self.slots[index] {
            if e.slot == slot && e.crashed == crashed && e.salt == salt && same_node(&e.node, node) {
                return e.key;
            }
        }
        let key = compute();
        self.slots[index] = Some(MemoEntry {
            node: node.clone(),
            slot,
            crashed,
            salt,
            key,
        });
        key
    }
}

fn same_node<P: Protocol>(a: &Node<P>, b: &Node<P>) -> bool {
    let state = Arc::ptr_eq(&a.state, &b.state) || a.state == b.state;
    let storage = match (&a.storage, &b.storage) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
        (None, None) => true,
        _ => false,
    };
    state && storage && a.timers == b.timers && a.choices == b.choices
}

/// The form before `own_keys` (`--symmetry-local`, a benchmark's
/// baseline): servers sorted by their own state as it is, ids included,
/// and ties left in numbering order.
fn canonical_local<P: Protocol>(sys: &System<P>, s: SysState<P>) -> (SysState<P>, Vec<Id>) {
    let mut order: Vec<usize> = (0..s.nodes.len()).collect();
    let mut start = 0;
    for ids in &sys.layout.roles {
        let end = start + ids.len();
        order[start..end].sort_by(|&a, &b| compare(&s, a, b));
        start = end;
    }
    rename(s, &order)
}

/// `s` with its nodes put in `order` (`order[new] = old`) and ids renamed
/// to match, and the renaming `map[old] = new`.
fn rename<P: Protocol>(s: SysState<P>, order: &[usize]) -> (SysState<P>, Vec<Id>) {
    if order.iter().enumerate().all(|(i, &o)| i == o) {
        let n = order.len();
        return (s, (0..n).map(Id::from).collect());
    }
    renamed(&s, order)
}

fn renamed<P: Protocol>(s: &SysState<P>, order: &[usize]) -> (SysState<P>, Vec<Id>) {
    let mut map = vec![Id::from(0); order.len()];
    for (new, &old) in order.iter().enumerate() {
        map[old] = Id::from(new);
    }
    let f = |id: Id| map.get(usize::from(id)).copied().unwrap_or(id);
    (s.rewrite_ids(order, &f), map)
}

/// With few orders of the tied servers (three servers of a role tied at
/// most), try them all and keep the state with the least hash: the exact
/// representative of the class, for about the cost of `refine`'s profiles.
const BRUTE_FORCE_ORDERS_MAX: usize = 6;

fn least_of_orders<P: Protocol>(s: SysState<P>, order: Vec<usize>, ties: &[(usize, usize)]) -> (SysState<P>, Vec<Id>) {
    let hasher = ahash::RandomState::with_seeds(3, 5, 7, 9);
    let mut orders = vec![order];
    for &(a, b) in ties {
        orders = orders
            .into_iter()
            .flat_map(|o| {
                permutations(&o[a..b]).into_iter().map(move |run| {
                    let mut o = o.clone();
                    o[a..b].copy_from_slice(&run);
                    o
                })
            })
            .collect();
    }
    // The least hash so far, and its state and renaming (`None`: `s`
    // itself).
    type Renamed<P> = (SysState<P>, Vec<Id>);
    let mut best: Option<(u64, Option<Renamed<P>>)> = None;
    for o in &orders {
        let (h, candidate) = if o.iter().enumerate().all(|(i, &x)| i == x) {
            (hasher.hash_one(&s), None)
        } else {
            let (c, map) = renamed(&s, o);
            (hasher.hash_one(&c), Some((c, map)))
        };
        if best.as_ref().is_none_or(|b| h < b.0) {
            best = Some((h, candidate));
        }
    }
    match best {
        Some((_, Some(chosen))) => chosen,
        _ => {
            let n = s.nodes.len();
            (s, (0..n).map(Id::from).collect())
        }
    }
}

/// Every order of `items`.
pub fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for k in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(k);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

/// Pushes onto `out` the runs of two or more consecutive slots in
/// `[start, end)` that `same` says are equal.
fn runs(start: usize, end: usize, same: impl Fn(usize, usize) -> bool, out: &mut Vec<(usize, usize)>) {
    let mut a = start;
    while a < end {
        let mut b = a + 1;
        while b < end && same(b - 1, b) {
            b += 1;
        }
        if b - a > 1 {
            out.push((a, b));
        }
        a = b;
    }
}

fn compare<P: Protocol>(s: &SysState<P>, a: usize, b: usize) -> Ordering {
    let (x, y) = (&s.nodes[a], &s.nodes[b]);
    x.state
        .cmp(&y.state)
        .then_with(|| x.storage.cmp(&y.storage))
        .then_with(|| s.is_crashed(a).cmp(&s.is_crashed(b)))
        .then_with(|| x.timers.cmp(&y.timers))
}

/// Rounds of refinement at most: each splits runs by what the previous
/// round told apart (one is enough when servers are referred to only by
/// others, as in two-phase commit; references between tied servers can
/// need more).
const REFINE_ROUNDS_MAX: usize = 3;

/// Orders the servers within each run of tied ones by a profile of how the
/// whole state refers to them, repeating while runs split. The profile of
/// server `i` is the state with `i` renamed to a mark and every server of a
/// run renamed to its run's first slot, hashed so that it does not depend
/// on how the tied servers happen to be numbered (the tied nodes, as a
/// sorted list of hashes). Collapsing ids may merge entries of maps keyed
/// by id in an order that does depend on the numbering; that costs
/// reduction, never soundness.
fn refine<P: Protocol>(s: &SysState<P>, order: &mut [usize], mut ties: Vec<(usize, usize)>) {
    let n = order.len();
    debug_assert!(n < MARK);
    let mut profile = vec![0u64; n]; // by old slot
    for _ in 0..REFINE_ROUNDS_MAX {
        // base[old] = the id a tied server collapses to, else its new slot.
        let mut base: Vec<Id> = vec![Id::from(0); n];
        for (new, &old) in order.iter().enumerate() {
            base[old] = Id::from(new);
        }
        let mut run_of: Vec<Option<usize>> = vec![None; n]; // by new slot
        for (r, &(a, b)) in ties.iter().enumerate() {
            for slot in a..b {
                base[order[slot]] = Id::from(a);
                run_of[slot] = Some(r);
            }
        }
        for &(a, b) in &ties {
            for slot in a..b {
                let i = order[slot];
                profile[i] = profile_of(s, order, &base, &run_of, ties.len(), i);
            }
        }
        let mut next = Vec::new();
        for &(a, b) in &ties {
            order[a..b].sort_by_key(|&i| profile[i]);
            runs(a, b, |x, y| profile[order[x]] == profile[order[y]], &mut next);
        }
        if next == ties {
            return;
        }
        ties = next;
        if ties.is_empty() {
            return;
        }
    }
}

fn profile_of<P: Protocol>(
    s: &SysState<P>,
    order: &[usize],
    base: &[Id],
    run_of: &[Option<usize>],
    run_count: usize,
    i: usize,
) -> u64 {
    let f = |id: Id| {
        let k = usize::from(id);
        if k == i {
            Id::from(MARK)
        } else {
            base.get(k).copied().unwrap_or(id)
        }
    };
    let hasher = ahash::RandomState::with_seeds(3, 5, 7, 9);
    let mut h = hasher.build_hasher();
    let node_hash = |old: usize| {
        let mut nh = hasher.build_hasher();
        s.nodes[old].rewrite_ids(&f).hash(&mut nh);
        s.is_crashed(old).hash(&mut nh);
        nh.finish()
    };
    let mut tied: Vec<Vec<u64>> = vec![Vec::new(); run_count];
    for (slot, &old) in order.iter().enumerate() {
        match run_of[slot] {
            Some(r) => tied[r].push(node_hash(old)),
            None => node_hash(old).hash(&mut h),
        }
    }
    for mut t in tied {
        t.sort_unstable();
        t.hash(&mut h);
    }
    s.net.rewrite(&f).hash(&mut h);
    (*s.history).rewrite(&f).hash(&mut h);
    h.finish()
}

/// The reachable states of `sys` (searched here without reduction, with
/// clients as `symmetry` makes them, and without a depth bound) and the number of classes they form under the
/// permutations of servers within each role — counted by Burnside's lemma,
/// without `canonical`: the number of classes is the average, over the
/// group, of the number of states a permutation leaves unchanged.
/// Permutations of the same cycle type are conjugate, and the reachable set
/// is closed under the group (the protocol is symmetric), so they fix
/// equally many states: one permutation per cycle type is tried, weighted
/// by how many there are. States are told apart by 128-bit hashes.
pub fn count_classes<P: Protocol>(sys: &System<P>, max_states: u64) -> Result<(u64, u128), String> {
    let init = sys.init();
    let sizes: Vec<usize> = sys.layout.roles.iter().map(|r| r.len()).collect();
    let types = cycle_types(&sizes, init.nodes.len());
    let group: u128 = types.iter().map(|t| t.count).sum();
    let mut fixed = vec![0u128; types.len()];
    let (h1, h2) = (
        ahash::RandomState::with_seeds(1, 2, 3, 4),
        ahash::RandomState::with_seeds(5, 6, 7, 8),
    );
    let key = |s: &SysState<P>| (u128::from(h1.hash_one(s)) << 64) | u128::from(h2.hash_one(s));
    let mut seen = std::collections::HashSet::new();
    seen.insert(key(&init));
    let mut level = vec![init];
    let mut actions = Vec::new();
    while !level.is_empty() {
        let mut next = Vec::new();
        for s in &level {
            for (k, t) in types.iter().enumerate() {
                let f = |id: Id| t.perm.get(usize::from(id)).map(|&x| Id::from(x)).unwrap_or(id);
                if t.identity || s.rewrite_ids(&t.inverse, &f) == *s {
                    fixed[k] += 1;
                }
            }
            actions.clear();
            sys.actions(s, &mut actions);
            for a in &actions {
                let Some(t) = sys.next(s, a) else { continue };
                if seen.insert(key(&t)) {
                    if seen.len() as u64 > max_states {
                        return Err(format!("more than {max_states} states"));
                    }
                    next.push(t);
                }
            }
        }
        level = next;
    }
    let total: u128 = types.iter().zip(&fixed).map(|(t, &f)| t.count * f).sum();
    if !total.is_multiple_of(group) {
        return Err(format!(
            "Burnside's sum {total} is not a multiple of the group's order {group}: the reachable states \
             are not closed under the permutations (is the protocol symmetric?)"
        ));
    }
    Ok((seen.len() as u64, total / group))
}

/// A permutation of the servers standing for its cycle type.
struct CycleType {
    /// perm[old] = new, for every node (clients, after the servers, fixed).
    perm: Vec<usize>,
    /// inverse[new] = old (the `order` `rewrite_ids` takes).
    inverse: Vec<usize>,
    /// How many permutations of the group have this type.
    count: u128,
    identity: bool,
}

/// One permutation per cycle type of the product of the symmetric groups
/// on each role's servers (`sizes[r]` servers in role `r`, numbered in
/// order), as permutations of all `n` nodes.
fn cycle_types(sizes: &[usize], n: usize) -> Vec<CycleType> {
    assert!(sizes.iter().sum::<usize>() <= n);
    // Per role: (cycle lengths, how many permutations have them).
    let per_role: Vec<Vec<(Vec<usize>, u128)>> = sizes
        .iter()
        .map(|&m| {
            partitions(m, m)
                .into_iter()
                .map(|p| {
                    let c = permutations_of_type(m, &p);
                    (p, c)
                })
                .collect()
        })
        .collect();
    let mut out = vec![(Vec::<usize>::from_iter(0..n), 1u128)];
    let mut start = 0;
    for (r, choices) in per_role.iter().enumerate() {
        let mut grown = Vec::new();
        for (perm, count) in &out {
            for (cycles, c) in choices {
                let mut perm = perm.clone();
                let mut at = start;
                for &len in cycles {
                    for k in 0..len {
                        perm[at + k] = at + (k + 1) % len;
                    }
                    at += len;
                }
                grown.push((perm, count * c));
            }
        }
        out = grown;
        start += sizes[r];
    }
    out.into_iter()
        .map(|(perm, count)| {
            let mut inverse = vec![0; n];
            for (old, &new) in perm.iter().enumerate() {
                inverse[new] = old;
            }
            let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
            CycleType {
                perm,
                inverse,
                count,
                identity,
            }
        })
        .collect()
}

/// The partitions of `m` into parts of at most `max`, largest part first.
fn partitions(m: usize, max: usize) -> Vec<Vec<usize>> {
    if m == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for first in (1..=max.min(m)).rev() {
        for mut rest in partitions(m - first, first) {
            rest.insert(0, first);
            out.push(rest);
        }
    }
    out
}

/// How many permutations of `m` elements have the cycle lengths `cycles`:
/// m! / Π_k (k^{c_k} c_k!), where c_k cycles have length k.
fn permutations_of_type(m: usize, cycles: &[usize]) -> u128 {
    let factorial = |k: usize| (1..=k as u128).product::<u128>();
    let mut denominator = 1u128;
    for k in 1..=m {
        let c = cycles.iter().filter(|&&x| x == k).count();
        denominator *= (k as u128).pow(c as u32) * factorial(c);
    }
    factorial(m) / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_types_cover_the_group() {
        // S_4: 5 cycle types, 24 permutations; S_3 × S_2: 3 × 2 types, 12.
        let t = cycle_types(&[4], 4);
        assert_eq!(t.len(), 5);
        assert_eq!(t.iter().map(|t| t.count).sum::<u128>(), 24);
        let t = cycle_types(&[1, 3, 2], 7);
        assert_eq!(t.len(), 6);
        assert_eq!(t.iter().map(|t| t.count).sum::<u128>(), 12);
        assert_eq!(t.iter().filter(|t| t.identity).count(), 1);
        // Each representative permutes within its role only.
        for t in &t {
            assert_eq!(t.perm[0], 0);
            assert!(t.perm[1..4].iter().all(|&p| (1..4).contains(&p)));
            assert!(t.perm[4..6].iter().all(|&p| (4..6).contains(&p)));
            assert_eq!(t.perm[6], 6);
        }
        assert_eq!(partitions(8, 8).len(), 22);
        assert_eq!(permutations_of_type(4, &[2, 2]), 3);
        assert_eq!(permutations_of_type(4, &[3, 1]), 8);
    }
}
