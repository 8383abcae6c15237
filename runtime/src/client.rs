//! A blocking client for a running cluster, driving the same policy state
//! machine as the model checker's client (`smelt_support::Caller`).
//!
//! A client is a *session*: it names itself (a random id, and as the
//! session's epoch the wall clock in milliseconds when it was made) and
//! numbers its requests 1, 2, 3, ... Every request frame carries both, so
//! a retry through another server is recognisably the same request. What a
//! user of [`Client::call`] gets:
//! - `Ok(reply)`: the request took effect exactly once, as the reply says —
//!   provided the spec's service keeps sessions (`sessions N`) and applies
//!   requests through them (`apply(kv, client, request)`), as raft.sm and
//!   multipaxos.sm do. Without that the spec decides: a retried write may
//!   take effect twice.
//! - `Err(Unknown)`: no answer within the attempts (or the session was
//!   evicted from the service's table). The request may have taken effect,
//!   at most once, and it cannot take effect after the next call of this
//!   client has: the session's table records the later request, and a late
//!   copy of this one is then stale.
//! - `Err(Rejected)`: the service refused the request without applying it
//!   (a session error that a correct client never causes).
//!
//! Retry policy (the checker explores the same one, with `retries N`): one
//! attempt waits `attempt_timeout_ms` at one server; a timeout or a broken
//! connection resends to the next server, at most `attempts_max - 1`
//! times; a redirect goes to the hinted server, or without a hint to the
//! next one after a short pause (redirects are not counted: a cluster in
//! an election redirects for a while), and the whole call gives up after
//! `call_timeout_ms`.

use crate::cluster::Cluster;
use crate::frame::{self, Kind, Response, HEADER_LEN};
use crate::rng::Rng;
use smelt_support::{Caller, Client as Tag, Id, Policy, Protocol, Session, SessionError, Step};
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Session ids start here: far above any server id, so that the node can
/// route a reply addressed to a session (the session id is its node id,
/// `Client::node`) apart from peer messages.
pub const SESSION_ID_MIN: u64 = 1 << 32;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How long one attempt waits for an answer.
    pub attempt_timeout_ms: u64,
    /// Attempts per request: the first, and resends after timeouts.
    pub attempts_max: u32,
    /// The longest a call takes before it gives up, redirects included.
    pub call_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Pause after a redirect without a hint (say, during an election).
    pub redirect_pause_ms: u64,
    pub frame_payload_bytes_max: usize,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            attempt_timeout_ms: 1000,
            attempts_max: 10,
            call_timeout_ms: 15_000,
            connect_timeout_ms: 500,
            redirect_pause_ms: 50,
            frame_payload_bytes_max: frame::PAYLOAD_BYTES_MAX,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientError {
    /// No answer: the request may or may not have taken effect (once at
    /// most). `expired`: the service evicted the session; the client goes on
    /// with a new one.
    Unknown {
        attempts: u32,
        last: String,
        expired: bool,
    },
    /// The service refused the request without applying it.
    Rejected(SessionError),
    /// The node refused the request frame itself (a malformed tag).
    Invalid(String),
    Config(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unknown {
                expired: true, attempts, ..
            } => write!(
                f,
                "outcome unknown: the session expired after {attempts} attempt(s); the request may have been applied (once)"
            ),
            ClientError::Unknown { attempts, last, .. } => write!(
                f,
                "no reply after {attempt} attempt(s) (last: {last}); the request may have been applied (once)",
                attempt = attempts
            ),
            ClientError::Rejected(e) => write!(f, "rejected: {e}"),
            ClientError::Invalid(e) => write!(f, "invalid request: {e}"),
            ClientError::Config(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClientError {}

/// How one attempt ended.
enum Attempt<R> {
    Reply(R),
    Redirect(Option<Id>),
    Invalid(String),
    Failed(String),
}

pub struct Client<P: Protocol> {
    cluster: u64,
    servers: Vec<(Id, SocketAddr)>,
    conns: Vec<Option<TcpStream>>,
    /// The session and the call in flight: the policy's state.
    caller: Caller,
    /// Index into `servers` of the server that answered last: where the
    /// next call starts.
    home: usize,
    rng: Rng,
    opts: ClientOptions,
    _p: PhantomData<P>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<P: Protocol> Client<P> {
    pub fn new(cluster: &Cluster, opts: ClientOptions) -> Result<Client<P>, ClientError> {
        let servers = cluster.client_servers::<P>().map_err(ClientError::Config)?;
        if opts.attempts_max == 0 {
            return Err(ClientError::Config("attempts_max must be at least 1".into()));
        }
        let mut rng = Rng::new(Rng::seed_from(0));
        let home = rng.below(servers.len() as u64) as usize;
        let session = Self::fresh_session(&mut rng, now_ms());
        Ok(Client {
            cluster: cluster.hash(),
            conns: servers.iter().map(|_| None).collect(),
            servers,
            caller: Caller::new(session),
            home,
            rng,
            opts,
            _p: PhantomData,
        })
    }

    /// A session no other client has: a random id (two clients collide with
    /// probability 2^-63 per pair) and the epoch `epoch` (the clock, or
    /// above the floor of a session table that evicted the last one).
    fn fresh_session(rng: &mut Rng, epoch: u64) -> Session {
        Session {
            epoch,
            id: SESSION_ID_MIN + rng.below(u64::MAX / 2 - SESSION_ID_MIN),
        }
    }

    /// The servers this client talks to.
    pub fn servers(&self) -> Vec<Id> {
        self.servers.iter().map(|(id, _)| *id).collect()
    }

    /// The client's current session.
    pub fn session(&self) -> Session {
        self.caller.session
    }

    fn policy(&self) -> Policy {
        Policy {
            servers: self.servers.len() as u32,
            resends_max: Some(self.opts.attempts_max - 1),
        }
    }

    /// Sends `request` until it has an answer, following the policy (see
    /// the module). Returns the reply and the server that gave it.
    pub fn call(&mut self, request: P::Request) -> Result<(P::Reply, Id), ClientError> {
        let n = self.servers.len() as u32;
        let first = self.home as u32;
        let deadline = Instant::now() + Duration::from_millis(self.opts.call_timeout_ms);
        let mut step = self.caller.begin();
        let mut attempts = 0u32;
        let mut last = String::from("nothing tried");
        loop {
            let (tag, target) = match step {
                Step::Send { tag, target } => (tag, target),
                Step::Unknown { expired } => {
                    return Err(ClientError::Unknown {
                        attempts,
                        last,
                        expired,
                    })
                }
                Step::Done | Step::Ignore => unreachable!("a call step is a send or an end"),
            };
            if Instant::now() >= deadline {
                self.caller.give_up();
                return Err(ClientError::Unknown {
                    attempts,
                    last: format!("{last}; gave up after {} ms", self.opts.call_timeout_ms),
                    expired: false,
                });
            }
            let i = target.index(first, n) as usize;
            attempts += 1;
            let started = Instant::now();
            match self.attempt(i, tag, &request) {
                Attempt::Reply(r) => {
                    let rejected = P::rejection(&r);
                    match self.caller.on_reply(tag, rejected, now_ms()) {
                        Step::Done => {
                            self.home = i;
                            return match rejected {
                                Some(e) => Err(ClientError::Rejected(e)),
                                None => Ok((r, self.servers[i].0)),
                            };
                        }
                        Step::Unknown { expired } => {
                            // The caller moved to an epoch above the floor;
                            // the new session gets a fresh id as well.
                            let epoch = self.caller.session.epoch;
                            self.caller = Caller::new(Self::fresh_session(&mut self.rng, epoch));
                            return Err(ClientError::Unknown {
                                attempts,
                                last: format!("server {}: session expired", usize::from(self.servers[i].0)),
                                expired,
                            });
                        }
                        _ => unreachable!("a reply to the call in flight ends it"),
                    }
                }
                Attempt::Redirect(hint) => {
                    last = format!("server {} redirected to {hint:?}", usize::from(self.servers[i].0));
                    let hint = hint
                        .and_then(|h| self.servers.iter().position(|(id, _)| *id == h))
                        .filter(|&j| j != i)
                        .map(|j| j as u32);
                    if hint.is_none() {
                        self.pause(attempts);
                    }
                    step = self.caller.on_redirect(&self.policy(), tag, hint);
                }
                Attempt::Invalid(why) => {
                    self.caller.give_up();
                    return Err(ClientError::Invalid(why));
                }
                Attempt::Failed(why) => {
                    last = format!("server {}: {why}", usize::from(self.servers[i].0));
                    // A refused connection fails at once; pause so that the
                    // attempts outlast a node that is still starting.
                    if started.elapsed() < Duration::from_millis(self.opts.attempt_timeout_ms) {
                        self.pause(attempts);
                    }
                    step = self.caller.on_timeout(&self.policy());
                }
            }
        }
    }

    fn pause(&self, attempts: u32) {
        let pause = self.opts.redirect_pause_ms.saturating_mul(attempts as u64).min(1000);
        std::thread::sleep(Duration::from_millis(pause));
    }

    /// One attempt at one server, without retries: `Ok(None)` when it
    /// redirected, an error when it did not answer in time. The request
    /// is a call of its own (the next sequence number); after an error it
    /// is abandoned, like a call that gave up.
    pub fn call_at(&mut self, server: Id, request: P::Request) -> Result<Option<P::Reply>, ClientError> {
        let Some(i) = self.servers.iter().position(|(id, _)| *id == server) else {
            return Err(ClientError::Config(format!(
                "server {} takes no client requests",
                usize::from(server)
            )));
        };
        let Step::Send { tag, .. } = self.caller.begin() else {
            unreachable!("a call starts with a send")
        };
        let out = match self.attempt(i, tag, &request) {
            Attempt::Reply(r) => match self.caller.on_reply(tag, P::rejection(&r), now_ms()) {
                Step::Done => match P::rejection(&r) {
                    Some(e) => Err(ClientError::Rejected(e)),
                    None => Ok(Some(r)),
                },
                _ => {
                    let epoch = self.caller.session.epoch;
                    self.caller = Caller::new(Self::fresh_session(&mut self.rng, epoch));
                    Err(ClientError::Unknown {
                        attempts: 1,
                        last: "session expired".into(),
                        expired: true,
                    })
                }
            },
            Attempt::Redirect(_) => Ok(None),
            Attempt::Invalid(why) => Err(ClientError::Invalid(why)),
            Attempt::Failed(last) => Err(ClientError::Unknown {
                attempts: 1,
                last,
                expired: false,
            }),
        };
        self.caller.give_up();
        out
    }

    fn attempt(&mut self, i: usize, tag: Tag, request: &P::Request) -> Attempt<P::Reply> {
        match self.try_attempt(i, tag, request) {
            Ok(a) => a,
            Err(e) => {
                // The connection may hold half a frame: start over next time.
                self.conns[i] = None;
                Attempt::Failed(e)
            }
        }
    }

    fn try_attempt(&mut self, i: usize, tag: Tag, request: &P::Request) -> Result<Attempt<P::Reply>, String> {
        let deadline = Instant::now() + Duration::from_millis(self.opts.attempt_timeout_ms);
        let addr = self.servers[i].1;
        if self.conns[i].is_none() {
            let s = TcpStream::connect_timeout(&addr, Duration::from_millis(self.opts.connect_timeout_ms))
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let _ = s.set_nodelay(true);
            self.conns[i] = Some(s);
        }
        let max = self.opts.frame_payload_bytes_max;
        let bytes = frame::encode(Kind::Request, self.cluster, 0, &(tag, request), max).map_err(|e| e.to_string())?;
        let conn = self.conns[i].as_mut().ok_or("no connection")?;
        conn.write_all(&bytes).map_err(|e| format!("send: {e}"))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out".into());
            }
            conn.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            let f = read_frame_blocking(conn, max)?;
            if f.kind != Kind::Response || f.cluster != self.cluster {
                return Err(format!("unexpected {:?} frame", f.kind));
            }
            let response: Response<P::Reply> = frame::payload(&f.payload).map_err(|e| e.to_string())?;
            match response {
                Response::Reply(t, reply) if t == tag => return Ok(Attempt::Reply(reply)),
                Response::Redirect(t, hint) if t == tag => {
                    return Ok(Attempt::Redirect(hint.map(|h| Id::from(h as usize))));
                }
                Response::Invalid(t, why) if t == tag => return Ok(Attempt::Invalid(why)),
                // A late answer to an earlier request: skip it.
                _ => continue,
            }
        }
    }
}

/// Checks a request's tag before it reaches the protocol: the session id
/// must be one a client could have drawn (not a server's), and sequence
/// numbers start at 1. The node answers a bad tag with `Invalid`.
pub fn check_tag(tag: &Tag) -> Result<(), String> {
    if tag.session.id < SESSION_ID_MIN || tag.session.id > u64::MAX / 2 {
        return Err(format!(
            "session id {} is outside the range clients draw from ({SESSION_ID_MIN}..{})",
            tag.session.id,
            u64::MAX / 2
        ));
    }
    if tag.seq == 0 {
        return Err("sequence numbers start at 1".into());
    }
    Ok(())
}

fn read_frame_blocking(conn: &mut TcpStream, max: usize) -> Result<frame::Frame, String> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => format!("receive: {e}"),
    };
    let mut raw = [0u8; HEADER_LEN];
    conn.read_exact(&mut raw).map_err(io)?;
    let header = frame::Header::parse(&raw, max).map_err(|e| e.to_string())?;
    let mut payload = vec![0u8; header.len as usize];
    conn.read_exact(&mut payload).map_err(io)?;
    header.verify(&raw, &payload).map_err(|e| e.to_string())?;
    Ok(frame::Frame {
        kind: header.kind,
        cluster: header.cluster,
        sender: header.sender,
        payload,
    })
}
