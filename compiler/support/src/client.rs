//! Clients: the request handle specs pass around, and the model of a client
//! that the checker runs against a protocol's service.
//!
//! The model client issues its workload one request at a time (so its
//! history is sequential per client, as linearizability requires). Its k-th
//! request goes to `servers[(id + k + attempt) % n]` and has request id
//! `(k + 1) * id`: the same rule as stateright's `RegisterActor`, which is
//! what makes state counts comparable with hand-written stateright models.

use crate::rewrite::Rewrite;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A handle on one client request: who asked, under which request id.
/// `reply c X` sends `X` to `c.node` tagged with `c.request_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Client {
    pub node: Id,
    pub request_id: u64,
}

impl Rewrite for Client {
    fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
        Client {
            node: f(self.node),
            request_id: self.request_id,
        }
    }
}

/// How the client part of a protocol's messages looks to a client.
pub enum ClientMsg<'a, Req, Rep> {
    Request(u64, &'a Req),
    Reply(u64, &'a Rep),
    /// Retry elsewhere; the hint names a node that may serve the request.
    Redirect(u64, Option<Id>),
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

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientState {
    /// Requests sent so far (the index of the next one).
    pub sent: u32,
    /// The request id of the outstanding request.
    pub awaiting: Option<u64>,
    /// Retries and redirects of the outstanding request; shifts the target.
    pub attempt: u32,
}

impl ClientState {
    pub fn done(&self) -> bool {
        self.awaiting.is_none()
    }

    pub fn waiting(&self) -> bool {
        self.awaiting.is_some()
    }

    pub fn completed(&self) -> u64 {
        self.sent as u64 - u64::from(self.awaiting.is_some())
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
    pub request_id: u64,
    pub request: Req,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientActor<Req> {
    pub workload: Vec<Req>,
    /// The nodes that serve clients, in id order.
    pub servers: Vec<Id>,
    /// Retry on a timer (liveness checks with message loss need it).
    pub retry: bool,
    /// Pick the server for each request nondeterministically instead of
    /// by index (symmetry reduction needs targets that do not depend on how
    /// servers are numbered).
    pub pick: bool,
}

impl<Req: Clone> ClientActor<Req> {
    pub fn request_id(id: Id, k: u32) -> u64 {
        (k as u64 + 1) * (usize::from(id) as u64).max(1)
    }

    fn target(&self, id: Id, k: u32, attempt: u32) -> Id {
        let n = self.servers.len().max(1);
        let i = (usize::from(id) + k as usize + attempt as usize) % n;
        self.servers.get(i).copied().unwrap_or(id)
    }

    fn send(&self, id: Id, k: u32, attempt: u32, to: Option<Id>) -> Option<ClientSend<Req>> {
        let request = self.workload.get(k as usize)?.clone();
        let dst = to.unwrap_or_else(|| self.target(id, k, attempt));
        Some(ClientSend {
            dst,
            request_id: Self::request_id(id, k),
            request,
        })
    }

    pub fn on_start(&self, id: Id) -> (ClientState, Option<ClientSend<Req>>) {
        match self.send(id, 0, 0, None) {
            Some(s) => (
                ClientState {
                    sent: 1,
                    awaiting: Some(s.request_id),
                    attempt: 0,
                },
                Some(s),
            ),
            None => (
                ClientState {
                    sent: 0,
                    awaiting: None,
                    attempt: 0,
                },
                None,
            ),
        }
    }

    /// A reply arrived. `None` when it is not for the outstanding request
    /// (late or duplicate): the client ignores it.
    pub fn on_reply(&self, id: Id, s: &ClientState, request_id: u64) -> Option<(ClientState, Option<ClientSend<Req>>)> {
        if s.awaiting != Some(request_id) {
            return None;
        }
        match self.send(id, s.sent, 0, None) {
            Some(next) => Some((
                ClientState {
                    sent: s.sent + 1,
                    awaiting: Some(next.request_id),
                    attempt: 0,
                },
                Some(next),
            )),
            None => Some((
                ClientState {
                    sent: s.sent,
                    awaiting: None,
                    attempt: 0,
                },
                None,
            )),
        }
    }

    /// The server declined and named another: resend the same request there
    /// (or to the next server without a hint).
    pub fn on_redirect(
        &self,
        id: Id,
        s: &ClientState,
        request_id: u64,
        hint: Option<Id>,
    ) -> Option<(ClientState, ClientSend<Req>)> {
        if s.awaiting != Some(request_id) || s.sent == 0 {
            return None;
        }
        let hint = hint.filter(|h| self.servers.contains(h));
        let attempt = if hint.is_some() {
            s.attempt
        } else {
            s.attempt.wrapping_add(1) % self.servers.len().max(1) as u32
        };
        let send = self.send(id, s.sent - 1, attempt, hint)?;
        Some((ClientState { attempt, ..s.clone() }, send))
    }

    /// The retry timer fired: resend to the next server.
    pub fn on_retry(&self, id: Id, s: &ClientState) -> Option<(ClientState, ClientSend<Req>)> {
        if s.awaiting.is_none() || s.sent == 0 {
            return None;
        }
        let attempt = s.attempt.wrapping_add(1) % self.servers.len().max(1) as u32;
        let send = self.send(id, s.sent - 1, attempt, None)?;
        Some((ClientState { attempt, ..s.clone() }, send))
    }

    /// The request a client has outstanding, if any.
    pub fn outstanding(&self, s: &ClientState) -> Option<&Req> {
        if s.awaiting.is_some() && s.sent > 0 {
            self.workload.get(s.sent as usize - 1)
        } else {
            None
        }
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
        send: ClientSend<P::Request>,
        to_pick: bool,
        fx: &mut E,
    ) {
        if c.pick && to_pick {
            let options = c.servers.iter().map(|s| P::client_choice(*s)).collect();
            fx.choose("target", options);
        } else {
            fx.send(send.dst, P::request_msg(send.request_id, send.request));
        }
        if c.retry {
            fx.set_timer(P::client_retry_timer(), RETRY);
        }
    }

    pub fn start<P: Protocol, E: Effects<P, P::Delta>>(c: &ClientActor<P::Request>, id: Id, fx: &mut E) -> ClientState {
        let (s, send) = c.on_start(id);
        if let Some(send) = send {
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
            ClientMsg::Reply(rid, _) => {
                let (next, send) = c.on_reply(id, s, rid)?;
                match send {
                    Some(send) => dispatch::<P, E>(c, send, true, fx),
                    None if c.retry => fx.cancel_timer(P::client_retry_timer()),
                    None => {}
                }
                Some(next)
            }
            ClientMsg::Redirect(rid, hint) => {
                let (next, send) = c.on_redirect(id, s, rid, hint)?;
                // A hint is followed; without one, a picking client picks again.
                dispatch::<P, E>(c, send, hint.is_none(), fx);
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
        let (Some(rid), Some(req)) = (s.awaiting, c.outstanding(s)) else {
            return None;
        };
        fx.send(dst, P::request_msg(rid, req.clone()));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_stateright_register_client_rule() {
        // Client actor 4 in a 3-server model: first request to server 1 with
        // id 4, second to server 2 with id 8 (as in stateright's paxos trace).
        let c = ClientActor {
            workload: vec!['a', 'b'],
            servers: Id::vec_from(0..3),
            retry: false,
            pick: false,
        };
        let (s, send) = c.on_start(Id::from(4));
        let send = send.unwrap();
        assert_eq!((send.dst, send.request_id), (Id::from(1), 4));
        assert!(c.on_reply(Id::from(4), &s, 99).is_none());
        let (s, next) = c.on_reply(Id::from(4), &s, 4).unwrap();
        let next = next.unwrap();
        assert_eq!((next.dst, next.request_id, next.request), (Id::from(2), 8, 'b'));
        let (s, none) = c.on_reply(Id::from(4), &s, 8).unwrap();
        assert!(none.is_none() && s.done() && s.completed() == 2);
    }
}
