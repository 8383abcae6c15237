//! Client histories and their linearizability.
//!
//! The history is recorded from the clients' own state transitions — an
//! invocation when a client sends a *new* request, a return when a client
//! accepts the reply to its outstanding request — never from message
//! deliveries as such. So duplicated or stale replies, which a client
//! ignores, are never recorded, whatever the network kind. (stateright's
//! paxos example records returns on delivery and reports a false
//! counterexample on its ordered network.)
//!
//! The recorded information matches stateright's `LinearizabilityTester`
//! exactly: per client, its operations in order, each with how many
//! operations every client had completed when it was invoked (the real-time
//! order). That is what keeps state counts comparable with stateright.
//! Unlike the tester, the history can have node ids rewritten (symmetry) and
//! its verdict is cached by fingerprint, since many states share a history.

use serde::{Deserialize, Serialize};
use smelt_support::stateright::semantics::SequentialSpec;
use smelt_support::{HandlerError, Rewrite};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op<Req, Rep> {
    pub req: Req,
    pub ret: Option<Rep>,
    /// The client gave up on it (or its session expired): it never
    /// returns, and the client went on with its next operation. It may
    /// have taken effect, at any point after its invocation, or never.
    pub abandoned: bool,
    /// Operations each client had ended (returned or abandoned: always a
    /// prefix of its operations) when this one was invoked.
    pub seen: Vec<u32>,
}

impl<Req, Rep> Op<Req, Rep> {
    fn in_flight(&self) -> bool {
        self.ret.is_none() && !self.abandoned
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct History<Req, Rep> {
    /// Per client (by client index), its operations in invocation order.
    pub clients: Vec<Vec<Op<Req, Rep>>>,
    /// A client returned without an operation in flight, or invoked twice.
    pub malformed: bool,
}

impl<Req: Clone, Rep: Clone> History<Req, Rep> {
    pub fn new(clients: usize) -> Self {
        History {
            clients: vec![Vec::new(); clients],
            malformed: false,
        }
    }

    /// How many of client `c`'s operations have ended.
    fn ended(&self, c: usize) -> u32 {
        let ops = &self.clients[c];
        (ops.len() - usize::from(ops.last().is_some_and(Op::in_flight))) as u32
    }

    pub fn invoke(&mut self, client: usize, req: Req) {
        if client >= self.clients.len() {
            self.malformed = true;
            return;
        }
        if self.clients[client].last().is_some_and(Op::in_flight) {
            self.malformed = true;
            return;
        }
        let seen = (0..self.clients.len()).map(|c| self.ended(c)).collect();
        self.clients[client].push(Op {
            req,
            ret: None,
            abandoned: false,
            seen,
        });
    }

    pub fn ret(&mut self, client: usize, rep: Rep) {
        match self.clients.get_mut(client).and_then(|ops| ops.last_mut()) {
            Some(op) if op.in_flight() => op.ret = Some(rep),
            _ => self.malformed = true,
        }
    }

    /// The client gave up on its operation in flight.
    pub fn abandon(&mut self, client: usize) {
        match self.clients.get_mut(client).and_then(|ops| ops.last_mut()) {
            Some(op) if op.in_flight() => op.abandoned = true,
            _ => self.malformed = true,
        }
    }

    pub fn len(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<Req: Rewrite, Rep: Rewrite> Rewrite for History<Req, Rep> {
    fn rewrite<F: Fn(smelt_support::Id) -> smelt_support::Id>(&self, f: &F) -> Self {
        History {
            clients: self
                .clients
                .iter()
                .map(|ops| {
                    ops.iter()
                        .map(|o| Op {
                            req: o.req.rewrite(f),
                            ret: o.ret.as_ref().map(|r| r.rewrite(f)),
                            abandoned: o.abandoned,
                            seen: o.seen.clone(),
                        })
                        .collect()
                })
                .collect(),
            malformed: self.malformed,
        }
    }
}

/// Searches for a linearization: a total order of the completed operations
/// (and of any subset of in-flight ones) that respects each client's order
/// and real time, in which every completed operation returns what the
/// sequential specification returns. Returns it, or `None`.
pub fn linearize<S, R>(init: &S, h: &History<S::Op, R>) -> Option<Vec<(S::Op, R)>>
where
    S: SequentialSpec<Ret = Result<R, HandlerError>> + Clone + Hash + Eq,
    S::Op: Clone,
    R: Clone + PartialEq,
{
    if h.malformed {
        return None;
    }
    let h = &processes(h);
    let n = h.clients.len();
    let mut placed = vec![0u32; n];
    let mut order = Vec::new();
    let mut dead: HashSet<(u64, Vec<u32>)> = HashSet::new();
    if search(init, h, &mut placed, &mut order, &mut dead) {
        Some(order)
    } else {
        None
    }
}

/// The history as sequential processes: each client's operations that
/// were not abandoned, in order, then one process per abandoned operation
/// (a client that gives up on an operation is, for linearizability, a
/// process that crashed: the operation may take effect at any point after
/// its invocation, also after the client's later operations, or never —
/// Knossos and Porcupine model it the same way). `seen` counts, per
/// process, the operations that must precede: the returned ones among
/// those a client had ended. A history without abandoned operations is
/// returned as it is.
fn processes<Req: Clone, Rep: Clone>(h: &History<Req, Rep>) -> History<Req, Rep> {
    if !h.clients.iter().flatten().any(|o| o.abandoned) {
        return h.clone();
    }
    let n = h.clients.len();
    // kept[c][k]: how many of client c's first k operations were not abandoned.
    let kept: Vec<Vec<u32>> = h
        .clients
        .iter()
        .map(|ops| {
            let mut v = vec![0u32];
            for o in ops {
                v.push(v.last().copied().unwrap_or(0) + u32::from(!o.abandoned));
            }
            v
        })
        .collect();
    let abandoned = h.clients.iter().flatten().filter(|o| o.abandoned).count();
    let seen = |o: &Op<Req, Rep>| -> Vec<u32> {
        let mut s: Vec<u32> = (0..n).map(|c| kept[c][o.seen[c] as usize]).collect();
        s.resize(n + abandoned, 0);
        s
    };
    let mut clients: Vec<Vec<Op<Req, Rep>>> = h
        .clients
        .iter()
        .map(|ops| {
            ops.iter()
                .filter(|o| !o.abandoned)
                .map(|o| Op {
                    seen: seen(o),
                    ..o.clone()
                })
                .collect()
        })
        .collect();
    for o in h.clients.iter().flatten().filter(|o| o.abandoned) {
        clients.push(vec![Op {
            req: o.req.clone(),
            ret: None,
            abandoned: false,
            seen: seen(o),
        }]);
    }
    History {
        clients,
        malformed: false,
    }
}

fn search<S, R>(
    spec: &S,
    h: &History<S::Op, R>,
    placed: &mut Vec<u32>,
    order: &mut Vec<(S::Op, R)>,
    dead: &mut HashSet<(u64, Vec<u32>)>,
) -> bool
where
    S: SequentialSpec<Ret = Result<R, HandlerError>> + Clone + Hash + Eq,
    S::Op: Clone,
    R: Clone + PartialEq,
{
    // Done when every completed operation is placed; in-flight ones may
    // never have taken effect.
    let done = h.clients.iter().enumerate().all(|(c, ops)| {
        let p = placed[c] as usize;
        p == ops.len() || (p + 1 == ops.len() && ops[p].ret.is_none())
    });
    if done {
        return true;
    }
    let key = (fingerprint(spec), placed.clone());
    if dead.contains(&key) {
        return false;
    }
    for c in 0..h.clients.len() {
        let p = placed[c] as usize;
        let Some(op) = h.clients[c].get(p) else { continue };
        // Every operation that completed before `op` was invoked must be
        // placed already.
        if op
            .seen
            .iter()
            .enumerate()
            .any(|(other, &k)| other != c && placed[other] < k)
        {
            continue;
        }
        let mut next = spec.clone();
        let got = match next.invoke(&op.req) {
            Ok(r) => r,
            Err(_) => continue,
        };
        match &op.ret {
            Some(r) if *r != got => continue,
            // An operation in flight (it is the last of its process, and
            // no operation waits for it) that changes nothing: placing it
            // here leads where not placing it does, so only the latter is
            // searched. This is what keeps histories with many unanswered
            // reads (clients that gave up during a partition) cheap.
            None if next == *spec => continue,
            _ => {}
        }
        placed[c] += 1;
        order.push((op.req.clone(), got));
        if search(&next, h, placed, order, dead) {
            return true;
        }
        order.pop();
        placed[c] -= 1;
    }
    dead.insert(key);
    false
}

fn fingerprint<T: Hash>(t: &T) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(t)
}

/// Verdicts by history fingerprint. Most states share their history with
/// many others, so this turns a search per state into a lookup.
pub struct Cache {
    shards: Vec<Mutex<HashMap<u64, bool>>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            shards: (0..64).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Cache {
    pub fn linearizable<S, R>(&self, init: &S, h: &History<S::Op, R>) -> bool
    where
        S: SequentialSpec<Ret = Result<R, HandlerError>> + Clone + Hash + Eq,
        S::Op: Clone + Hash,
        R: Clone + PartialEq + Hash,
    {
        if h.is_empty() {
            return true;
        }
        let fp = fingerprint(h);
        let shard = &self.shards[(fp as usize) % self.shards.len()];
        if let Some(v) = shard.lock().ok().and_then(|m| m.get(&fp).copied()) {
            return v;
        }
        let v = linearize(init, h).is_some();
        if let Ok(mut m) = shard.lock() {
            m.insert(fp, v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: `Some(v)` writes, `None` reads.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Reg(u8);
    impl SequentialSpec for Reg {
        type Op = Option<u8>;
        type Ret = Result<u8, HandlerError>;
        fn invoke(&mut self, op: &Option<u8>) -> Self::Ret {
            if let Some(v) = op {
                self.0 = *v;
            }
            Ok(self.0)
        }
    }

    #[test]
    fn unanswered_reads_cost_nothing_and_change_nothing() {
        // Forty reads given up on, around writes: each may take effect
        // anywhere or never. Without skipping their placement the search
        // tries them at every point; with it, one path.
        let mut h = History::new(2);
        for k in 0..40u8 {
            h.invoke(0, None);
            h.abandon(0);
            h.invoke(1, Some(k));
            h.ret(1, k);
        }
        let order = linearize(&Reg(0), &h).expect("linearizable");
        assert_eq!(order.len(), 40, "only the writes are placed: {order:?}");
        // And an unanswered write still counts: a read of its value after
        // it is linearizable, a read of a value nobody wrote is not.
        let mut h = History::new(2);
        h.invoke(0, Some(7));
        h.abandon(0);
        h.invoke(1, None);
        h.ret(1, 7);
        assert!(linearize(&Reg(0), &h).is_some());
        let mut h = History::new(2);
        h.invoke(0, None);
        h.abandon(0);
        h.invoke(1, None);
        h.ret(1, 9);
        assert!(linearize(&Reg(0), &h).is_none());
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let mut h = History::new(2);
        h.invoke(0, Some(1));
        h.ret(0, 1);
        h.invoke(1, None);
        h.ret(1, 1);
        assert!(linearize(&Reg(0), &h).is_some());
    }

    #[test]
    fn stale_read_after_completed_write_is_not() {
        let mut h = History::new(2);
        h.invoke(0, Some(1));
        h.ret(0, 1);
        h.invoke(1, None);
        h.ret(1, 0); // read started after the write completed, saw the old value
        assert!(linearize(&Reg(0), &h).is_none());
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        let mut h = History::new(2);
        h.invoke(0, Some(1));
        h.invoke(1, None);
        h.ret(1, 0);
        h.ret(0, 1);
        assert!(linearize(&Reg(0), &h).is_some());
        // An in-flight write may or may not have taken effect.
        let mut h = History::new(2);
        h.invoke(0, Some(1));
        h.invoke(1, None);
        h.ret(1, 1);
        assert!(linearize(&Reg(0), &h).is_some());
    }

    #[test]
    fn an_abandoned_write_may_take_effect_later_or_never() {
        // Client 0 gives up on write 1 and then writes 2; client 1 reads
        // afterwards and sees 1: the abandoned write took effect late.
        let mut h = History::new(2);
        h.invoke(0, Some(1));
        h.abandon(0);
        h.invoke(0, Some(2));
        h.ret(0, 2);
        h.invoke(1, None);
        h.ret(1, 1);
        assert!(linearize(&Reg(0), &h).is_some());
        // ... or never: the read sees 2.
        let mut h2 = History::new(2);
        h2.invoke(0, Some(1));
        h2.abandon(0);
        h2.invoke(0, Some(2));
        h2.ret(0, 2);
        h2.invoke(1, None);
        h2.ret(1, 2);
        assert!(linearize(&Reg(0), &h2).is_some());
        // But not before it was invoked: a read that returned before the
        // abandoned write began cannot see it.
        let mut h3 = History::new(2);
        h3.invoke(1, None);
        h3.ret(1, 1);
        h3.invoke(0, Some(1));
        h3.abandon(0);
        assert!(linearize(&Reg(0), &h3).is_none());
        // A completed write does not take effect twice: after 1, 2 (both
        // answered) a read of 1 is a violation.
        let mut h4 = History::new(2);
        h4.invoke(0, Some(1));
        h4.ret(0, 1);
        h4.invoke(0, Some(2));
        h4.ret(0, 2);
        h4.invoke(1, None);
        h4.ret(1, 1);
        assert!(linearize(&Reg(0), &h4).is_none());
    }

    #[test]
    fn abandoning_twice_or_without_an_operation_is_malformed() {
        let mut h: History<Option<u8>, u8> = History::new(1);
        h.abandon(0);
        assert!(h.malformed);
        let mut h: History<Option<u8>, u8> = History::new(1);
        h.invoke(0, None);
        h.abandon(0);
        h.abandon(0);
        assert!(h.malformed);
    }

    #[test]
    fn returning_twice_is_malformed() {
        let mut h: History<Option<u8>, u8> = History::new(1);
        h.invoke(0, None);
        h.ret(0, 0);
        h.ret(0, 0);
        assert!(h.malformed && linearize(&Reg(0), &h).is_none());
    }
}
