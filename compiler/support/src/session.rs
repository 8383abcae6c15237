//! Client sessions: what makes a replicated service apply each client
//! request exactly once, however often the client sends it.
//!
//! A client names itself with a [`Session`] it picks (not one a server
//! assigns, so a retry through another server carries the same name) and
//! numbers its requests within the session (`seq`, from 1, increasing; gaps
//! are allowed). A service that declares `sessions N` keeps, as part of its
//! replicated state, a [`Sessions`] table: per session, the last request it
//! applied (its `seq`, a hash of the request, and the reply). Every replica
//! applies the same log, so every replica makes the same decision:
//!
//! | request `(s, seq)` | table | decision |
//! |---|---|---|
//! | `seq > last` (and `seq - last <= SEQ_AHEAD_MAX`) | `s` known | apply; record |
//! | `seq == last`, same request | `s` known | the recorded reply (a retry) |
//! | `seq == last`, another request | `s` known | `Reused` |
//! | `seq < last` | `s` known | `Stale`: the client has moved on; not applied |
//! | any | `s` unknown, `s.epoch <= floor` | `Expired { floor }`: not applied |
//! | `seq <= SEQ_AHEAD_MAX` | `s` unknown, `s.epoch > floor` or no floor yet | apply; record (a new session) |
//! | `seq == 0`, or too far ahead | any | `Invalid` / `Ahead` |
//!
//! The table holds at most `N` sessions. Recording a new session in a full
//! table evicts the least recently used one (by an apply counter that is
//! part of the replicated state: expiry is decided by the log, never by a
//! clock) and raises `floor` to at least its epoch (there is no floor until
//! the first eviction). That is what makes
//! eviction safe: a late copy of an evicted session's request finds the
//! session unknown with `epoch <= floor` and is refused, never applied a
//! second time. A session unknown with `epoch > floor` was never evicted,
//! so it never applied anything. The price: a client must pick a new
//! session's epoch above every floor it has been told (the runtime client
//! uses the wall clock in milliseconds, then `floor + 1` if refused; the
//! model client counts), and a client told `Expired` cannot know whether
//! its outstanding request was applied (it reports an unknown outcome).

use crate::rewrite::Rewrite;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeMap;

/// A client's self-chosen name. `id` is unique (the runtime client draws it
/// at random, above every server id; a model client uses its actor id);
/// `epoch` orders sessions by creation for the eviction floor.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    pub epoch: u64,
    pub id: u64,
}

/// Ids below this are node ids (the model's clients); the runtime's
/// clients draw theirs above it.
const NODE_IDS: u64 = 1 << 32;

/// Compact, for traces: a model client's session prints as its node id
/// (`Id(3)`, which a trace shows as `Client3`) with `@epoch` after its
/// first; a runtime session as its id in hex and its epoch.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.id < NODE_IDS, self.epoch) {
            (true, 0) => write!(f, "Id({})", self.id),
            (true, e) => write!(f, "Id({})@{e}", self.id),
            (false, e) => write!(f, "{:x}@{e}", self.id),
        }
    }
}

/// How far past a session's last applied `seq` a request may be numbered
/// before it is refused as nonsense (a client skips numbers only for
/// requests answered outside the log, such as lease reads).
pub const SEQ_AHEAD_MAX: u64 = 1 << 32;

/// Why a service with sessions refused a request. Sent to the client as the
/// reply `Rejected(error)`; never the result of applying the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SessionError {
    /// The session was evicted (or is older than every session that may
    /// still be recorded): nothing of it is applied any more. Start a new
    /// session with an epoch above `floor`. Whether the request was applied
    /// before the eviction is unknown.
    Expired { floor: u64 },
    /// A late copy of a request older than the session's last applied one
    /// (`last`): not applied. The client has moved on and ignores it.
    Stale { last: u64 },
    /// The same `seq` as the last applied request, but another request.
    Reused { seq: u64 },
    /// `seq` is more than `SEQ_AHEAD_MAX` past the session's last one.
    Ahead { last: u64 },
    /// `seq` 0: sequence numbers start at 1.
    Invalid,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Expired { floor } => write!(
                f,
                "the session expired (evicted from the session table; new sessions need an epoch above {floor})"
            ),
            SessionError::Stale { last } => write!(f, "a stale request: the session already applied request {last}"),
            SessionError::Reused { seq } => {
                write!(
                    f,
                    "sequence number {seq} was already used by another request of this session"
                )
            }
            SessionError::Ahead { last } => write!(
                f,
                "sequence number from the future: more than {SEQ_AHEAD_MAX} past the last applied request ({last})"
            ),
            SessionError::Invalid => f.write_str("sequence numbers start at 1"),
        }
    }
}

impl Rewrite for Session {
    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self {
        *self
    }
}

impl Rewrite for SessionError {
    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self {
        *self
    }
}

/// The last request a session applied.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Applied<R> {
    pub seq: u64,
    /// `request_hash` of the request, to tell a retry from a reused `seq`.
    pub hash: u64,
    pub reply: R,
    /// The table's apply counter when the session last applied a request.
    pub used: u64,
}

/// What the table says about a request, before it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admit<R> {
    /// New: apply it, then `record` the reply.
    Apply,
    /// A retry of the last applied request: answer this, apply nothing.
    Recorded(R),
    Refuse(SessionError),
}

/// A service's session table. Part of the service's state, so it is
/// replicated, snapshotted and compacted with it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sessions<R> {
    pub table: BTreeMap<Session, Applied<R>>,
    /// Every evicted session has `epoch <= floor`; `None` until the first
    /// eviction.
    pub floor: Option<u64>,
    /// Requests applied through the table: the clock of least recent use.
    pub applied: u64,
}

/// Compact, for traces: `{Client3#2: PutOk}` (each session's last applied
/// request and its reply), then the floor once there is one.
impl<R: std::fmt::Debug> std::fmt::Debug for Sessions<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (s, a)) in self.table.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s:?}#{}: {:?}", a.seq, a.reply)?;
        }
        if let Some(floor) = self.floor {
            write!(f, "; floor {floor}")?;
        }
        f.write_str("}")
    }
}

impl<R> Default for Sessions<R> {
    fn default() -> Self {
        Sessions {
            table: BTreeMap::new(),
            floor: None,
            applied: 0,
        }
    }
}

impl<R: Clone> Sessions<R> {
    /// Decides what to do with request `seq` of `session`, whose hash is
    /// `hash`. Changes nothing.
    pub fn admit(&self, session: Session, seq: u64, hash: u64) -> Admit<R> {
        if seq == 0 {
            return Admit::Refuse(SessionError::Invalid);
        }
        match self.table.get(&session) {
            Some(a) if seq == a.seq => {
                if a.hash == hash {
                    Admit::Recorded(a.reply.clone())
                } else {
                    Admit::Refuse(SessionError::Reused { seq })
                }
            }
            Some(a) if seq < a.seq => Admit::Refuse(SessionError::Stale { last: a.seq }),
            Some(a) if seq - a.seq > SEQ_AHEAD_MAX => Admit::Refuse(SessionError::Ahead { last: a.seq }),
            Some(_) => Admit::Apply,
            None => match self.floor {
                Some(floor) if session.epoch <= floor => Admit::Refuse(SessionError::Expired { floor }),
                _ if seq > SEQ_AHEAD_MAX => Admit::Refuse(SessionError::Ahead { last: 0 }),
                _ => Admit::Apply,
            },
        }
    }

    /// Records that request `seq` of `session` was applied with `reply`,
    /// after `admit` said `Apply`. A new session in a full table (more
    /// than `capacity` sessions) evicts the least recently used one first.
    pub fn record(&mut self, session: Session, seq: u64, hash: u64, reply: R, capacity: u64) {
        debug_assert!(matches!(self.admit(session, seq, hash), Admit::Apply));
        self.applied = self.applied.saturating_add(1);
        let used = self.applied;
        if let Some(a) = self.table.get_mut(&session) {
            *a = Applied { seq, hash, reply, used };
            return;
        }
        while self.table.len() as u64 >= capacity.max(1) {
            let Some(lru) = self.table.iter().min_by_key(|(_, a)| a.used).map(|(s, _)| *s) else {
                break;
            };
            self.table.remove(&lru);
            self.floor = Some(self.floor.map_or(lru.epoch, |f| f.max(lru.epoch)));
        }
        self.table.insert(session, Applied { seq, hash, reply, used });
        debug_assert!(self.table.len() as u64 <= capacity.max(1));
    }

    /// The reply recorded for request `seq` of `session`, if that is the
    /// session's last applied request (what a retry would get).
    pub fn recorded(&self, session: Session, seq: u64) -> Option<&R> {
        self.table.get(&session).filter(|a| a.seq == seq).map(|a| &a.reply)
    }
}

impl<R: Rewrite> Rewrite for Sessions<R> {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        Sessions {
            table: self
                .table
                .iter()
                .map(|(s, a)| {
                    (
                        *s,
                        Applied {
                            seq: a.seq,
                            hash: a.hash,
                            reply: a.reply.rewrite(f),
                            used: a.used,
                        },
                    )
                })
                .collect(),
            floor: self.floor,
            applied: self.applied,
        }
    }
}

/// A hash of a request that every replica, and every build of the same
/// spec, computes alike: FNV-1a over the request's postcard encoding (a
/// documented, stable format), not `std::hash`, whose output for derived
/// impls is not promised to stay the same across compilers.
pub fn request_hash<T: Serialize>(request: &T) -> u64 {
    struct Fnv(u64);
    impl postcard::ser_flavors::Flavor for Fnv {
        type Output = u64;
        fn try_push(&mut self, b: u8) -> postcard::Result<()> {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            Ok(())
        }
        fn finalize(self) -> postcard::Result<u64> {
            Ok(self.0)
        }
    }
    // Encoding a generated request cannot fail (no maps with non-string
    // keys issue, no unsupported types); a failure would hash as 0 alike on
    // every replica.
    postcard::serialize_with_flavor(request, Fnv(0xcbf2_9ce4_8422_2325)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(epoch: u64, id: u64) -> Session {
        Session { epoch, id }
    }

    #[test]
    fn a_table_that_never_evicted_admits_every_new_session() {
        let t: Sessions<u8> = Sessions::default();
        // Epoch 0 is a model client's first session.
        assert_eq!(t.admit(s(0, 3), 1, 0), Admit::Apply);
        assert_eq!(t.admit(s(u64::MAX, 3), 7, 0), Admit::Apply);
        assert_eq!(
            t.admit(s(0, 3), 1 + SEQ_AHEAD_MAX, 0),
            Admit::Refuse(SessionError::Ahead { last: 0 })
        );
    }

    #[test]
    fn a_retry_gets_the_recorded_reply_and_a_late_copy_is_stale() {
        let mut t: Sessions<&str> = Sessions::default();
        let a = s(1, 100);
        assert_eq!(t.admit(a, 1, 7), Admit::Apply);
        t.record(a, 1, 7, "ok1", 8);
        assert_eq!(t.admit(a, 1, 7), Admit::Recorded("ok1"));
        assert_eq!(t.admit(a, 1, 8), Admit::Refuse(SessionError::Reused { seq: 1 }));
        assert_eq!(t.admit(a, 3, 9), Admit::Apply, "gaps are allowed");
        t.record(a, 3, 9, "ok3", 8);
        assert_eq!(t.admit(a, 1, 7), Admit::Refuse(SessionError::Stale { last: 3 }));
        assert_eq!(t.admit(a, 0, 7), Admit::Refuse(SessionError::Invalid));
        assert_eq!(
            t.admit(a, 4 + SEQ_AHEAD_MAX, 1),
            Admit::Refuse(SessionError::Ahead { last: 3 })
        );
        assert_eq!(t.recorded(a, 3), Some(&"ok3"));
        assert_eq!(t.recorded(a, 1), None);
    }

    #[test]
    fn eviction_is_least_recently_used_and_refuses_the_evicted_forever() {
        let mut t: Sessions<u8> = Sessions::default();
        let (a, b, c) = (s(5, 1), s(3, 2), s(9, 3));
        t.record(a, 1, 0, 1, 2);
        t.record(b, 1, 0, 2, 2);
        t.record(a, 2, 0, 3, 2); // a used more recently than b
        t.record(c, 1, 0, 4, 2); // evicts b
        assert!(t.table.contains_key(&a) && t.table.contains_key(&c) && !t.table.contains_key(&b));
        assert_eq!(t.floor, Some(3));
        // A late copy of b's request is refused, not applied again.
        assert_eq!(t.admit(b, 1, 0), Admit::Refuse(SessionError::Expired { floor: 3 }));
        // A new session above the floor is accepted; one at or below it is not.
        assert_eq!(t.admit(s(4, 9), 1, 0), Admit::Apply);
        assert_eq!(
            t.admit(s(3, 9), 1, 0),
            Admit::Refuse(SessionError::Expired { floor: 3 })
        );
        t.record(s(4, 9), 1, 0, 5, 2); // evicts a (epoch 5): the floor rises
        assert_eq!(t.floor, Some(5));
        assert!(t.table.len() == 2);
    }

    #[test]
    fn request_hash_is_the_fnv_of_the_encoding() {
        assert_eq!(request_hash(&()), 0xcbf2_9ce4_8422_2325);
        assert_ne!(request_hash(&(1u64, 2u64)), request_hash(&(2u64, 1u64)));
        // Pinned: a change of encoding or hash would make replicas of
        // different builds disagree about retries.
        assert_eq!(request_hash(&7u8), 0xaf63_ba4c_8601_b2c6);
    }
}
