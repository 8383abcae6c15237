//! The network: messages in flight between nodes.
//!
//! Three kinds, as in stateright: unordered with duplication (a message,
//! once sent, can be delivered any number of times), unordered without
//! duplication (a multiset), and ordered (FIFO per directed link, like TCP).
//! All are ordered collections, so iteration — and therefore the order of
//! actions and of counterexamples — is deterministic.

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
}

impl<M: Ord + Clone> Net<M> {
    pub fn new(kind: NetworkKind) -> Self {
        match kind {
            NetworkKind::UnorderedDuplicating => Net::Duplicating(Vec::new()),
            NetworkKind::UnorderedNonDuplicating => Net::NonDuplicating(Vec::new()),
            NetworkKind::Ordered => Net::Ordered(Vec::new()),
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
        }
    }

    /// Every message in flight, with multiplicity.
    pub fn len(&self) -> usize {
        match self {
            Net::Duplicating(v) => v.len(),
            Net::NonDuplicating(v) => v.iter().map(|(_, n)| *n as usize).sum(),
            Net::Ordered(v) => v.iter().map(|(_, q)| q.len()).sum(),
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
        }
    }

    /// Delivery consumes the message, except on a duplicating network.
    pub fn on_deliver(&mut self, env: &Env<M>) {
        if !matches!(self, Net::Duplicating(_)) {
            self.remove(env);
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
}
