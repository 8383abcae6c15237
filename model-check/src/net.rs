//! The network: messages in flight between nodes.
//!
//! Three kinds, as in stateright: unordered with duplication (a message,
//! once sent, can be delivered any number of times), unordered without
//! duplication (a multiset), and ordered (FIFO per directed link, like TCP).
//! All are ordered collections, so iteration — and therefore the order of
//! actions and of counterexamples — is deterministic.
//!
//! Liveness mode keeps the duplicating network as `Owed`: each message also
//! records whether it was sent since it was last delivered. Fairness owes
//! one delivery after each send, not deliveries of old messages forever: a
//! protocol whose progress needs a message again must send it again, as it
//! must on a real network (a re-send is a new copy in flight; here it
//! marks the message owed again, which keeps the state space finite).

use serde::{Deserialize, Serialize};
use smelt_support::{Id, NetworkKind, Rewrite};
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Env<M> {
    pub src: Id,
    pub dst: Id,
    pub msg: M,
}

impl<M: Rewrite> Rewrite for Env<M> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        Env {
            src: f(self.src),
            dst: f(self.dst),
            msg: self.msg.rewrite(f),
        }
    }
}

/// Messages in flight. Each kind is a sorted `Vec`: a global state is
/// cloned for every successor, and one allocation clones faster and takes
/// less memory than a tree (the sets are small: tens of messages).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Net<M: Ord> {
    /// A set: delivery does not consume.
    Duplicating(Vec<Env<M>>),
    /// A multiset: envelope and count, sorted by envelope.
    NonDuplicating(Vec<(Env<M>, u32)>),
    /// FIFO queues per directed link, sorted by `(src, dst)`.
    Ordered(Vec<((Id, Id), VecDeque<M>)>),
    /// Duplicating, in liveness mode: a set of envelopes, each with whether
    /// it is owed a delivery (sent since it was last delivered).
    Owed(Vec<(Env<M>, bool)>),
}

impl<M: Ord + Clone> Net<M> {
    pub fn new(kind: NetworkKind) -> Self {
        match kind {
            NetworkKind::UnorderedDuplicating => Net::Duplicating(Vec::new()),
            NetworkKind::UnorderedNonDuplicating => Net::NonDuplicating(Vec::new()),
            NetworkKind::Ordered => Net::Ordered(Vec::new()),
        }
    }

    /// The network of a check: a duplicating one tracks owed deliveries in
    /// liveness mode (see the module's comment).
    pub fn for_mode(kind: NetworkKind, liveness: bool) -> Self {
        match kind {
            NetworkKind::UnorderedDuplicating if liveness => Net::Owed(Vec::new()),
            _ => Net::new(kind),
        }
    }

    /// Whether `env` is in flight and owed a delivery: always for the kinds
    /// that consume on delivery, for `Owed` only if sent since delivered,
    /// never for the plain duplicating network (fairness does not apply).
    pub fn owed(&self, env: &Env<M>) -> bool {
        match self {
            Net::Owed(v) => v.binary_search_by(|(e, _)| e.cmp(env)).is_ok_and(|k| v[k].1),
            Net::Duplicating(_) | Net::NonDuplicating(_) | Net::Ordered(_) => true,
        }
    }

    pub fn send(&mut self, env: Env<M>) {
        match self {
            Net::Duplicating(v) => {
                if let Err(k) = v.binary_search(&env) {
                    v.insert(k, env);
                }
            }
            Net::NonDuplicating(v) => match v.binary_search_by(|(e, _)| e.cmp(&env)) {
                Ok(k) => v[k].1 += 1,
                Err(k) => v.insert(k, (env, 1)),
            },
            Net::Ordered(v) => {
                let key = (env.src, env.dst);
                match v.binary_search_by(|(k, _)| k.cmp(&key)) {
                    Ok(k) => v[k].1.push_back(env.msg),
                    Err(k) => v.insert(k, (key, VecDeque::from([env.msg]))),
                }
            }
            Net::Owed(v) => match v.binary_search_by(|(e, _)| e.cmp(&env)) {
                Ok(k) => v[k].1 = true,
                Err(k) => v.insert(k, (env, true)),
            },
        }
    }

    /// Each distinct envelope that can be delivered now (for an ordered
    /// network, the head of each link).
    pub fn deliverable(&self) -> Box<dyn Iterator<Item = Env<&M>> + '_> {
        match self {
            Net::Duplicating(v) => Box::new(v.iter().map(|e| Env {
                src: e.src,
                dst: e.dst,
                msg: &e.msg,
            })),
            Net::NonDuplicating(v) => Box::new(v.iter().map(|(e, _)| Env {
                src: e.src,
                dst: e.dst,
                msg: &e.msg,
            })),
            Net::Ordered(v) => Box::new(
                v.iter()
                    .filter_map(|((s, d), q)| q.front().map(|msg| Env { src: *s, dst: *d, msg })),
            ),
            Net::Owed(v) => Box::new(v.iter().map(|(e, _)| Env {
                src: e.src,
                dst: e.dst,
                msg: &e.msg,
            })),
        }
    }

    /// Whether `env` can be delivered now: in flight, and on an ordered
    /// network at the head of its link.
    pub fn in_flight(&self, env: &Env<M>) -> bool {
        match self {
            Net::Duplicating(v) => v.binary_search(env).is_ok(),
            Net::NonDuplicating(v) => v.binary_search_by(|(e, _)| e.cmp(env)).is_ok(),
            Net::Ordered(v) => v
                .binary_search_by(|(k, _)| k.cmp(&(env.src, env.dst)))
                .is_ok_and(|k| v[k].1.front() == Some(&env.msg)),
            Net::Owed(v) => v.binary_search_by(|(e, _)| e.cmp(env)).is_ok(),
        }
    }

    /// Every message in flight, with multiplicity.
    pub fn len(&self) -> usize {
        match self {
            Net::Duplicating(v) => v.len(),
            Net::NonDuplicating(v) => v.iter().map(|(_, n)| *n as usize).sum(),
            Net::Ordered(v) => v.iter().map(|(_, q)| q.len()).sum(),
            Net::Owed(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a message to `dst` is in flight.
    pub fn has_message_to(&self, dst: Id) -> bool {
        self.deliverable().any(|e| e.dst == dst)
    }

    /// Drops spare capacity: states sit in the search frontier by the
    /// million, and growth slack would be stored with each of them.
    pub fn compact(&mut self) {
        match self {
            Net::Duplicating(v) => v.shrink_to_fit(),
            Net::NonDuplicating(v) => v.shrink_to_fit(),
            Net::Ordered(v) => v.shrink_to_fit(),
            Net::Owed(v) => v.shrink_to_fit(),
        }
    }

    /// Delivery consumes the message, except on a duplicating network
    /// (where it is only no longer owed).
    pub fn on_deliver(&mut self, env: &Env<M>) {
        match self {
            Net::Duplicating(_) => {}
            Net::Owed(v) => {
                if let Ok(k) = v.binary_search_by(|(e, _)| e.cmp(env)) {
                    v[k].1 = false;
                }
            }
            _ => {
                self.remove(env);
            }
        }
    }

    /// Removes every message to `dst` (a node that stopped for good: they
    /// would never be delivered, and kept they would only tell apart
    /// states no behaviour can).
    pub fn drop_all_to(&mut self, dst: Id) {
        match self {
            Net::Duplicating(v) => v.retain(|e| e.dst != dst),
            Net::NonDuplicating(v) => v.retain(|(e, _)| e.dst != dst),
            Net::Ordered(v) => v.retain(|((_, d), _)| *d != dst),
            Net::Owed(v) => v.retain(|(e, _)| e.dst != dst),
        }
    }

    /// Removes one copy (a drop). Returns whether it was there.
    pub fn remove(&mut self, env: &Env<M>) -> bool {
        match self {
            Net::Duplicating(v) => match v.binary_search(env) {
                Ok(k) => {
                    v.remove(k);
                    true
                }
                Err(_) => false,
            },
            Net::NonDuplicating(v) => match v.binary_search_by(|(e, _)| e.cmp(env)) {
                Ok(k) if v[k].1 > 1 => {
                    v[k].1 -= 1;
                    true
                }
                Ok(k) => {
                    v.remove(k);
                    true
                }
                Err(_) => false,
            },
            Net::Ordered(v) => {
                let key = (env.src, env.dst);
                let Ok(k) = v.binary_search_by(|(x, _)| x.cmp(&key)) else {
                    return false;
                };
                if v[k].1.front() != Some(&env.msg) {
                    return false;
                }
                v[k].1.pop_front();
                if v[k].1.is_empty() {
                    v.remove(k);
                }
                true
            }
            // A drop loses the message for good, owed or not.
            Net::Owed(v) => match v.binary_search_by(|(e, _)| e.cmp(env)) {
                Ok(k) => {
                    v.remove(k);
                    true
                }
                Err(_) => false,
            },
        }
    }
}

impl<M: Ord + Clone + Rewrite> Rewrite for Net<M> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        match self {
            Net::Duplicating(v) => {
                let mut v: Vec<Env<M>> = v.iter().map(|e| e.rewrite(f)).collect();
                v.sort();
                Net::Duplicating(v)
            }
            Net::NonDuplicating(v) => {
                let mut v: Vec<(Env<M>, u32)> = v.iter().map(|(e, n)| (e.rewrite(f), *n)).collect();
                v.sort();
                Net::NonDuplicating(v)
            }
            Net::Ordered(v) => {
                let mut v: Vec<((Id, Id), VecDeque<M>)> =
                    v.iter().map(|((s, d), q)| ((f(*s), f(*d)), q.rewrite(f))).collect();
                v.sort_by_key(|x| x.0);
                Net::Ordered(v)
            }
            Net::Owed(v) => {
                let mut v: Vec<(Env<M>, bool)> = v.iter().map(|(e, o)| (e.rewrite(f), *o)).collect();
                v.sort();
                Net::Owed(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(s: usize, d: usize, m: u8) -> Env<u8> {
        Env {
            src: Id::from(s),
            dst: Id::from(d),
            msg: m,
        }
    }

    #[test]
    fn ordered_links_deliver_heads_only() {
        let mut n = Net::new(NetworkKind::Ordered);
        n.send(env(0, 1, 1));
        n.send(env(0, 1, 2));
        n.send(env(1, 0, 3));
        let heads: Vec<u8> = n.deliverable().map(|e| *e.msg).collect();
        assert_eq!(heads, vec![1, 3]);
        assert!(!n.remove(&env(0, 1, 2)), "only the head of a link can go");
        n.on_deliver(&env(0, 1, 1));
        assert_eq!(n.deliverable().map(|e| *e.msg).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn duplicating_keeps_delivered_messages() {
        let mut n = Net::new(NetworkKind::UnorderedDuplicating);
        n.send(env(0, 1, 1));
        n.send(env(0, 1, 1));
        assert_eq!(n.len(), 1);
        n.on_deliver(&env(0, 1, 1));
        assert_eq!(n.len(), 1);
        let mut m = Net::new(NetworkKind::UnorderedNonDuplicating);
        m.send(env(0, 1, 1));
        m.send(env(0, 1, 1));
        assert_eq!(m.len(), 2);
        m.on_deliver(&env(0, 1, 1));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn owed_tracks_a_delivery_per_send() {
        let mut n = Net::for_mode(NetworkKind::UnorderedDuplicating, true);
        assert!(matches!(n, Net::Owed(_)));
        assert!(matches!(
            Net::<u8>::for_mode(NetworkKind::UnorderedDuplicating, false),
            Net::Duplicating(_)
        ));
        n.send(env(0, 1, 1));
        assert!(n.owed(&env(0, 1, 1)));
        n.on_deliver(&env(0, 1, 1));
        assert!(!n.owed(&env(0, 1, 1)), "delivered: owed nothing more");
        assert_eq!(n.deliverable().count(), 1, "but it may be delivered again");
        n.send(env(0, 1, 1));
        assert!(n.owed(&env(0, 1, 1)), "sent again: owed again");
        assert_eq!(n.len(), 1);
        assert!(n.remove(&env(0, 1, 1)));
        assert!(n.is_empty() && !n.owed(&env(0, 1, 1)), "a drop loses it for good");
    }
}
