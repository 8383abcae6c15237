//! Clients: the request handle specs pass around, the client's policy as a
//! state machine without I/O, and the model client built on it.
//!
//! **One client, two worlds.** [`Caller`] decides what a client sends and
//! where, and what a reply, a redirect or a timeout does: the model's
//! client actor ([`ClientActor`], driven by the checker) and the runtime's
//! client library (`smelt_runtime::client`, driven by sockets and a clock)
//! both call it, so the retry policy the deployed client follows is the one
//! the checker explores. What the two worlds add is only how a step is
//! carried out: the model sends a message and lets the retry timer fire at
//! any moment; the runtime writes a frame and waits up to its attempt
//! timeout.
//!
//! The policy, for one request (a *call*):
//! - the call gets the next sequence number of the client's session and
//!   goes to a server (the model: `servers[(id + k) % n]` for its k-th
//!   request, stateright's `RegisterActor` rule, or any server when clients
//!   pick; the runtime: the server that answered last);
//! - a reply tagged with the call's `(session, seq)` ends it; anything else
//!   (a late reply to an earlier call, a duplicate) is ignored;
//! - a redirect sends the same request (same tag) to the hinted server, or
//!   without a hint to the next one;
//! - a timeout resends it to the next server, at most `resends_max` times;
//!   one more timeout gives up: the outcome is *unknown* (the request may
//!   have been applied, once). The session goes on: its next call has a
//!   higher `seq`, so a late copy of the abandoned one can no longer be
//!   applied once the next call is (see `session`);
//! - a `Rejected(Expired)` reply ends the call with an unknown outcome and
//!   starts a new session, with an epoch above the floor it names.

use crate::rewrite::Rewrite;
use crate::session::{Session, SessionError};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A handle on one client request: who asked (the session) and which of
/// its requests this is (`seq`). `reply c X` sends `X` to the session's
/// client, tagged with both, and so does `redirect`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Client {
    pub session: Session,
    pub seq: u64,
}

/// `session#seq`: in a trace, `Client3#2` is request 2 of client 3.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}#{}", self.session, self.seq)
    }
}

impl Client {
    /// Where replies to this client go: the session's id as a node id (a
    /// model client's actor; on the runtime, whichever connection last
    /// carried a request of the session).
    pub fn node(&self) -> Id {
        Id::from(self.session.id as usize)
    }
}

impl Rewrite for Client {
    /// Clients are not permuted by symmetry: their ids stay.
    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self {
        *self
    }
}

/// How the client part of a protocol's messages looks to a client.
pub enum ClientMsg<'a, Req, Rep> {
    Request(Client, &'a Req),
    Reply(Client, &'a Rep),
    /// Retry elsewhere; the hint names a node that may serve the request.
    Redirect(Client, Option<Id>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientTimer {
    /// Resend the outstanding request to the next server.
    Retry,
}

impl Rewrite for ClientTimer {
    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self {
        *self
    }
}

/// The call in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pending {
    pub seq: u64,
    /// How many servers past the call's first one it has moved on
    /// (modulo the number of servers). A redirect with a hint goes to the
    /// hint without changing it.
    pub attempt: u32,
    /// How often it was resent after a timeout (counted only when the
    /// policy bounds resends, so an unbounded client's state stays finite).
    pub resends: u32,
}

/// The retry policy's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// How many servers the client knows (targets are indices below this).
    pub servers: u32,
    /// Resends after timeouts before the client gives up; `None`: never.
    pub resends_max: Option<u32>,
}

/// Where a step sends the call's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `attempt` servers past the call's first one, modulo the number of
    /// servers (the driver knows which server came first).
    Next { attempt: u32 },
    /// The server a redirect named, as an index into the client's servers.
    Hint(u32),
}

impl Target {
    /// The index of the server, for a call that started at `first`.
    pub fn index(self, first: u32, servers: u32) -> u32 {
        match self {
            Target::Next { attempt } => ((first as u64 + attempt as u64) % servers.max(1) as u64) as u32,
            Target::Hint(i) => i,
        }
    }
}

/// What a client's step asks its driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the call's request, tagged `tag`, to `target`.
    Send { tag: Client, target: Target },
    /// The call ended with this reply (the one just handed in).
    Done,
    /// The call ended without an answer: it may or may not have been
    /// applied. `expired`: because its session expired.
    Unknown { expired: bool },
    /// Not about the call in flight: nothing to do.
    Ignore,
}

/// A client's session and its call in flight: the client's whole policy
/// state. Small and hashable, since it is part of every model state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Caller {
    pub session: Session,
    /// The last sequence number used in this session.
    pub seq: u64,
    pub pending: Option<Pending>,
}

impl Caller {
    pub fn new(session: Session) -> Caller {
        Caller {
            session,
            seq: 0,
            pending: None,
        }
    }

    fn tag(&self, p: &Pending) -> Client {
        Client {
            session: self.session,
            seq: p.seq,
        }
    }

    fn is_pending(&self, tag: Client) -> Option<Pending> {
        self.pending.filter(|p| tag.session == self.session && tag.seq == p.seq)
    }

    /// Starts a call, to the driver's first server for it. The previous
    /// call must have ended.
    pub fn begin(&mut self) -> Step {
        debug_assert!(self.pending.is_none(), "one call at a time per session");
        self.seq += 1;
        let p = Pending {
            seq: self.seq,
            attempt: 0,
            resends: 0,
        };
        self.pending = Some(p);
        Step::Send {
            tag: self.tag(&p),
            target: Target::Next { attempt: 0 },
        }
    }

    /// A reply tagged `tag` arrived; `rejected` is its session verdict, if
    /// it is a `Rejected` reply. `min_epoch` is the least epoch a new
    /// session may take (the runtime passes its clock, the model 0).
    pub fn on_reply(&mut self, tag: Client, rejected: Option<SessionError>, min_epoch: u64) -> Step {
        if self.is_pending(tag).is_none() {
            return Step::Ignore;
        }
        self.pending = None;
        match rejected {
            Some(SessionError::Expired { floor }) => {
                let epoch = self
                    .session
                    .epoch
                    .saturating_add(1)
                    .max(floor.saturating_add(1))
                    .max(min_epoch);
                self.session.epoch = epoch;
                self.seq = 0;
                Step::Unknown { expired: true }
            }
            _ => Step::Done,
        }
    }

    /// A redirect tagged `tag` arrived, with a hint as an index into the
    /// client's servers (`None`: no hint, or one the client does not know).
    pub fn on_redirect(&mut self, policy: &Policy, tag: Client, hint: Option<u32>) -> Step {
        let Some(mut p) = self.is_pending(tag) else {
            return Step::Ignore;
        };
        let target = match hint {
            Some(h) => Target::Hint(h),
            None => {
                p.attempt = (p.attempt + 1) % policy.servers.max(1);
                Target::Next { attempt: p.attempt }
            }
        };
        self.pending = Some(p);
        Step::Send {
            tag: self.tag(&p),
            target,
        }
    }

    /// The driver gives up on the call (its overall deadline passed): the
    /// outcome is unknown, as after the last timeout.
    pub fn give_up(&mut self) -> Step {
        match self.pending.take() {
            Some(_) => Step::Unknown { expired: false },
            None => Step::Ignore,
        }
    }

    /// The call's timeout expired: resend it to the next server, or give up
    /// once it was resent `resends_max` times.
    pub fn on_timeout(&mut self, policy: &Policy) -> Step {
        let Some(mut p) = self.pending else {
            return Step::Ignore;
        };
        if let Some(m) = policy.resends_max {
            if p.resends >= m {
                self.pending = None;
                return Step::Unknown { expired: false };
            }
            p.resends += 1;
        }
        p.attempt = (p.attempt + 1) % policy.servers.max(1);
        self.pending = Some(p);
        Step::Send {
            tag: self.tag(&p),
            target: Target::Next { attempt: p.attempt },
        }
    }
}

/// A model client's state: its policy state and its progress through the
/// workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientState {
    /// Requests of the workload invoked so far (the index of the next one).
    pub sent: u32,
    /// Of those, the ones that ended without an answer (the client gave up,
    /// or its session expired).
    pub abandoned: u32,
    pub caller: Caller,
}

impl ClientState {
    /// Every request of the workload was answered: nothing in flight (a
    /// client sends its next request as soon as one ends, so nothing is
    /// left to send) and nothing given up on.
    pub fn done(&self) -> bool {
        self.caller.pending.is_none() && self.abandoned == 0
    }

    pub fn waiting(&self) -> bool {
        self.caller.pending.is_some()
    }

    /// Requests that ended, answered or abandoned.
    pub fn completed(&self) -> u64 {
        self.sent as u64 - u64::from(self.caller.pending.is_some())
    }
}

impl Rewrite for ClientState {
    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self {
        self.clone()
    }
}

/// What a client step asks the environment to do.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientSend<Req> {
    pub dst: Id,
    pub tag: Client,
    pub request: Req,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientActor<Req> {
    pub workload: Vec<Req>,
    /// The nodes that serve clients, in id order.
    pub servers: Vec<Id>,
    /// Retry on a timer: `Some(policy bound)`; `None`: the client never
    /// times out (no retry timer at all).
    pub retry: Option<Option<u32>>,
    /// Pick the server for each request nondeterministically instead of
    /// by index (symmetry reduction needs targets that do not depend on how
    /// servers are numbered).
    pub pick: bool,
}

impl<Req: Clone> ClientActor<Req> {
    pub fn policy(&self) -> Policy {
        Policy {
            servers: self.servers.len() as u32,
            resends_max: self.retry.flatten(),
        }
    }

    /// A model client's first session: epoch 0, named by its actor id.
    pub fn session(id: Id) -> Session {
        Session {
            epoch: 0,
            id: usize::from(id) as u64,
        }
    }

    /// Where request `k` of client `id` goes first: stateright's
    /// `RegisterActor` rule, `servers[(id + k) % n]`.
    fn first(&self, id: Id, k: u32) -> u32 {
        let n = self.servers.len().max(1);
        ((usize::from(id) + k as usize) % n) as u32
    }

    fn dst(&self, id: Id, k: u32, target: Target) -> Id {
        let i = target.index(self.first(id, k), self.servers.len() as u32);
        self.servers.get(i as usize).copied().unwrap_or(id)
    }

    /// Invokes the next request of the workload, if any.
    fn next(&self, id: Id, s: &mut ClientState) -> Option<ClientSend<Req>> {
        let request = self.workload.get(s.sent as usize)?.clone();
        let k = s.sent;
        s.sent += 1;
        match s.caller.begin() {
            Step::Send { tag, target } => Some(ClientSend {
                dst: self.dst(id, k, target),
                tag,
                request,
            }),
            _ => None,
        }
    }

    fn resend(&self, id: Id, s: &ClientState, step: Step) -> Option<ClientSend<Req>> {
        let Step::Send { tag, target } = step else { return None };
        Some(ClientSend {
            dst: self.dst(id, s.sent.checked_sub(1)?, target),
            tag,
            request: self.outstanding(s)?.clone(),
        })
    }

    pub fn on_start(&self, id: Id) -> (ClientState, Option<ClientSend<Req>>) {
        let mut s = ClientState {
            sent: 0,
            abandoned: 0,
            caller: Caller::new(Self::session(id)),
        };
        let send = self.next(id, &mut s);
        (s, send)
    }

    /// A reply arrived. `None` when it is not for the outstanding request
    /// (late or duplicate): the client ignores it.
    pub fn on_reply(
        &self,
        id: Id,
        s: &ClientState,
        tag: Client,
        rejected: Option<SessionError>,
    ) -> Option<(ClientState, Option<ClientSend<Req>>)> {
        let mut next = s.clone();
        match next.caller.on_reply(tag, rejected, 0) {
            Step::Done => {}
            Step::Unknown { .. } => next.abandoned += 1,
            _ => return None,
        }
        let send = self.next(id, &mut next);
        Some((next, send))
    }

    /// The server declined and named another: resend the same request there
    /// (or to the next server without a hint).
    pub fn on_redirect(
        &self,
        id: Id,
        s: &ClientState,
        tag: Client,
        hint: Option<Id>,
    ) -> Option<(ClientState, ClientSend<Req>)> {
        let hint = hint
            .and_then(|h| self.servers.iter().position(|x| *x == h))
            .map(|i| i as u32);
        let mut next = s.clone();
        let step = next.caller.on_redirect(&self.policy(), tag, hint);
        let send = self.resend(id, &next, step)?;
        Some((next, send))
    }

    /// The retry timer fired: resend to the next server, or give up and go
    /// on with the next request.
    pub fn on_retry(&self, id: Id, s: &ClientState) -> Option<(ClientState, Option<ClientSend<Req>>)> {
        let mut next = s.clone();
        match next.caller.on_timeout(&self.policy()) {
            step @ Step::Send { .. } => {
                let send = self.resend(id, &next, step)?;
                Some((next, Some(send)))
            }
            Step::Unknown { .. } => {
                next.abandoned += 1;
                let send = self.next(id, &mut next);
                Some((next, send))
            }
            _ => None,
        }
    }

    /// The request a client has outstanding, if any.
    pub fn outstanding(&self, s: &ClientState) -> Option<&Req> {
        if s.caller.pending.is_some() && s.sent > 0 {
            self.workload.get(s.sent as usize - 1)
        } else {
            None
        }
    }

    /// The tag of the outstanding request.
    pub fn outstanding_tag(s: &ClientState) -> Option<Client> {
        s.caller.pending.map(|p| Client {
            session: s.caller.session,
            seq: p.seq,
        })
    }
}

/// The model client's behaviour, generic over the protocol so generated
/// code only forwards to it. Each function returns the new client state
/// when it changed.
pub mod model {
    use super::*;
    use crate::{Effects, Protocol};
    use std::time::Duration;

    const RETRY: std::ops::Range<Duration> = Duration::from_millis(500)..Duration::from_millis(1000);

    fn dispatch<P: Protocol, E: Effects<P, P::Delta>>(
        c: &ClientActor<P::Request>,
        send: Option<ClientSend<P::Request>>,
        to_pick: bool,
        fx: &mut E,
    ) {
        match send {
            Some(send) => {
                if c.pick && to_pick {
                    let options = c.servers.iter().map(|s| P::client_choice(*s)).collect();
                    fx.choose("target", options);
                } else {
                    fx.send(send.dst, P::request_msg(send.tag, send.request));
                }
                if c.retry.is_some() {
                    fx.set_timer(P::client_retry_timer(), RETRY);
                }
            }
            None if c.retry.is_some() => fx.cancel_timer(P::client_retry_timer()),
            None => {}
        }
    }

    pub fn start<P: Protocol, E: Effects<P, P::Delta>>(c: &ClientActor<P::Request>, id: Id, fx: &mut E) -> ClientState {
        let (s, send) = c.on_start(id);
        if send.is_some() {
            dispatch::<P, E>(c, send, true, fx);
        }
        s
    }

    pub fn on_msg<P: Protocol, E: Effects<P, P::Delta>>(
        c: &ClientActor<P::Request>,
        id: Id,
        s: &ClientState,
        msg: &P::Message,
        fx: &mut E,
    ) -> Option<ClientState> {
        match P::client_msg(msg)? {
            ClientMsg::Reply(tag, reply) => {
                let (next, send) = c.on_reply(id, s, tag, P::rejection(reply))?;
                dispatch::<P, E>(c, send, true, fx);
                Some(next)
            }
            ClientMsg::Redirect(tag, hint) => {
                let (next, send) = c.on_redirect(id, s, tag, hint)?;
                // A hint is followed; without one, a picking client picks again.
                dispatch::<P, E>(c, Some(send), hint.is_none(), fx);
                (next != *s).then_some(next)
            }
            ClientMsg::Request(..) => None,
        }
    }

    pub fn on_timeout<P: Protocol, E: Effects<P, P::Delta>>(
        c: &ClientActor<P::Request>,
        id: Id,
        s: &ClientState,
        fx: &mut E,
    ) -> Option<ClientState> {
        let (next, send) = c.on_retry(id, s)?;
        dispatch::<P, E>(c, send, true, fx);
        (next != *s).then_some(next)
    }

    /// A picking client chose where to send its outstanding request.
    pub fn on_random<P: Protocol, E: Effects<P, P::Delta>>(
        c: &ClientActor<P::Request>,
        s: &ClientState,
        choice: &P::Choice,
        fx: &mut E,
    ) -> Option<ClientState> {
        let dst = P::as_client_choice(choice)?;
        let (Some(tag), Some(req)) = (ClientActor::<P::Request>::outstanding_tag(s), c.outstanding(s)) else {
            return None;
        };
        fx.send(dst, P::request_msg(tag, req.clone()));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(epoch: u64, id: u64, seq: u64) -> Client {
        Client {
            session: Session { epoch, id },
            seq,
        }
    }

    #[test]
    fn follows_stateright_register_client_rule() {
        // Client actor 4 in a 3-server model: first request to server 1,
        // second to server 2 (as in stateright's paxos trace); sequence
        // numbers 1 and 2 of session (0, 4).
        let c = ClientActor {
            workload: vec!['a', 'b'],
            servers: Id::vec_from(0..3),
            retry: None,
            pick: false,
        };
        let (s, send) = c.on_start(Id::from(4));
        let send = send.unwrap();
        assert_eq!((send.dst, send.tag), (Id::from(1), tag(0, 4, 1)));
        assert!(c.on_reply(Id::from(4), &s, tag(0, 4, 9), None).is_none());
        let (s, next) = c.on_reply(Id::from(4), &s, tag(0, 4, 1), None).unwrap();
        let next = next.unwrap();
        assert_eq!((next.dst, next.tag, next.request), (Id::from(2), tag(0, 4, 2), 'b'));
        let (s, none) = c.on_reply(Id::from(4), &s, tag(0, 4, 2), None).unwrap();
        assert!(none.is_none() && s.done() && s.completed() == 2 && s.abandoned == 0);
    }

    #[test]
    fn timeouts_resend_to_the_next_server_then_give_up_and_go_on() {
        let c = ClientActor {
            workload: vec!['a', 'b'],
            servers: Id::vec_from(0..3),
            retry: Some(Some(1)),
            pick: false,
        };
        let id = Id::from(3);
        let (s, send) = c.on_start(id);
        assert_eq!(send.unwrap().dst, Id::from(0));
        let (s, resend) = c.on_retry(id, &s).unwrap();
        let resend = resend.unwrap();
        assert_eq!(
            (resend.dst, resend.tag, resend.request),
            (Id::from(1), tag(0, 3, 1), 'a')
        );
        // A redirect with a hint goes there, with the same tag.
        let (s, r) = c.on_redirect(id, &s, tag(0, 3, 1), Some(Id::from(2))).unwrap();
        assert_eq!((r.dst, r.tag), (Id::from(2), tag(0, 3, 1)));
        // The second timeout gives up: request 'b' goes out with seq 2.
        let (s, next) = c.on_retry(id, &s).unwrap();
        let next = next.unwrap();
        assert_eq!((next.tag, next.request), (tag(0, 3, 2), 'b'));
        assert_eq!((s.sent, s.abandoned), (2, 1));
        // A client that gave up on a request is never "done": not every
        // request was answered.
        let (s2, _) = c.on_reply(id, &s, tag(0, 3, 2), None).unwrap();
        assert!(!s2.done() && s2.caller.pending.is_none());
        // A late reply to the abandoned request is ignored.
        assert!(c.on_reply(id, &s, tag(0, 3, 1), None).is_none());
    }

    #[test]
    fn an_expired_session_ends_the_call_and_starts_a_session_above_the_floor() {
        let mut k = Caller::new(Session { epoch: 3, id: 77 });
        let Step::Send { tag: t, .. } = k.begin() else { panic!() };
        assert_eq!(
            k.on_reply(t, Some(SessionError::Expired { floor: 9 }), 5),
            Step::Unknown { expired: true }
        );
        assert_eq!(k.session, Session { epoch: 10, id: 77 });
        let Step::Send { tag: t2, .. } = k.begin() else {
            panic!()
        };
        assert_eq!(t2.seq, 1);
        // A clock ahead of the floor wins.
        assert_eq!(
            k.on_reply(t2, Some(SessionError::Expired { floor: 9 }), 500),
            Step::Unknown { expired: true }
        );
        assert_eq!(k.session.epoch, 500);
        // Other refusals end the call as answered (the driver reports them).
        let Step::Send { tag: t3, .. } = k.begin() else {
            panic!()
        };
        assert_eq!(k.on_reply(t3, Some(SessionError::Reused { seq: 1 }), 0), Step::Done);
    }
}
