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
use rustls::pki_types::ServerName;
use smelt_support::{Caller, Client as Tag, Id, Protocol, Session, SessionError, Step};
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
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
    /// The certificate and key to present when the cluster's client links
    /// use TLS (default: the cluster file's `client_cert` and `client_key`).
    pub tls_identity: Option<(PathBuf, PathBuf)>,
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
            tls_identity: None,
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

/// How one attempt at one server ended, as the call policy sees it.
pub enum Attempt<R> {
    Reply(R),
    Redirect(Option<Id>),
    Invalid(String),
    /// No answer in time, or the connection failed; `quick`: it failed at
    /// once (say, a refused connection), not after the attempt timeout.
    Failed {
        why: String,
        quick: bool,
    },
}

/// What the caller of a `Policy` should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<R> {
    /// Send the call's request (tagged `tag`) to server `server` (an index
    /// into the client's servers), after a pause of `pause_ms`.
    Send {
        server: usize,
        tag: Tag,
        pause_ms: u64,
    },
    Done(Result<(R, Id), ClientError>),
}

/// One call in progress.
#[derive(Clone, Debug)]
pub struct Call {
    first: u32,
    attempts: u32,
    started_ms: u64,
    last: String,
}

/// The client's whole policy, without I/O: the session (`Caller`, shared
/// with the model checker's client) plus what the runtime adds — where a
/// call starts, pauses after hintless redirects and refused connections,
/// and the call's deadline. `Client` drives it over TCP with the wall
/// clock; the simulator (`smelt-sim`) drives the same code with its own
/// network and clock. Times are milliseconds on the driver's clock.
pub struct Policy<P: Protocol> {
    servers: Vec<Id>,
    caller: Caller,
    /// Index into `servers` of the server that answered last: where the
    /// next call starts.
    home: usize,
    rng: Rng,
    opts: ClientOptions,
    _p: PhantomData<P>,
}

impl<P: Protocol> Policy<P> {
    /// A client of `servers`; `seed` draws the session id and the first
    /// server, `epoch_ms` is the session's epoch (the wall clock).
    pub fn new(servers: Vec<Id>, opts: ClientOptions, seed: u64, epoch_ms: u64) -> Result<Policy<P>, ClientError> {
        if servers.is_empty() {
            return Err(ClientError::Config("no servers to call".into()));
        }
        if opts.attempts_max == 0 {
            return Err(ClientError::Config("attempts_max must be at least 1".into()));
        }
        let mut rng = Rng::new(seed);
        let home = rng.below(servers.len() as u64) as usize;
        let session = fresh_session(&mut rng, epoch_ms);
        Ok(Policy {
            servers,
            caller: Caller::new(session),
            home,
            rng,
            opts,
            _p: PhantomData,
        })
    }

    pub fn session(&self) -> Session {
        self.caller.session
    }

    /// The session and the call in flight (the model client's view of it).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn servers(&self) -> &[Id] {
        &self.servers
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn caller_policy(&self) -> smelt_support::Policy {
        smelt_support::Policy {
            servers: self.servers.len() as u32,
            resends_max: Some(self.opts.attempts_max - 1),
        }
    }

    /// Starts a call at time `now_ms`.
    pub fn begin(&mut self, now_ms: u64) -> (Call, Decision<P::Reply>) {
        let mut call = Call {
            first: self.home as u32,
            attempts: 0,
            started_ms: now_ms,
            last: String::from("nothing tried"),
        };
        let step = self.caller.begin();
        let d = self.next(&mut call, step, 0, now_ms);
        (call, d)
    }

    /// Turns the caller's step into what to do next.
    fn next(&mut self, call: &mut Call, step: Step, pause_ms: u64, now_ms: u64) -> Decision<P::Reply> {
        match step {
            Step::Send { tag, target } => {
                if now_ms.saturating_add(pause_ms) >= call.started_ms.saturating_add(self.opts.call_timeout_ms) {
                    self.caller.give_up();
                    return Decision::Done(Err(ClientError::Unknown {
                        attempts: call.attempts,
                        last: format!("{}; gave up after {} ms", call.last, self.opts.call_timeout_ms),
                        expired: false,
                    }));
                }
                call.attempts += 1;
                let server = target.index(call.first, self.servers.len() as u32) as usize;
                Decision::Send { server, tag, pause_ms }
            }
            Step::Unknown { expired } => Decision::Done(Err(ClientError::Unknown {
                attempts: call.attempts,
                last: std::mem::take(&mut call.last),
                expired,
            })),
            Step::Done | Step::Ignore => unreachable!("a call step is a send or an end"),
        }
    }

    fn pause_ms(&self, attempts: u32) -> u64 {
        self.opts.redirect_pause_ms.saturating_mul(attempts as u64).min(1000)
    }

    /// The attempt of `call` (tagged `tag`) at server `server` ended.
    pub fn attempted(
        &mut self,
        call: &mut Call,
        server: usize,
        tag: Tag,
        outcome: Attempt<P::Reply>,
        now_ms: u64,
    ) -> Decision<P::Reply> {
        let name = usize::from(self.servers[server]);
        match outcome {
            Attempt::Reply(r) => {
                let rejected = P::rejection(&r);
                match self.caller.on_reply(tag, rejected, now_ms) {
                    Step::Done => {
                        self.home = server;
                        Decision::Done(match rejected {
                            Some(e) => Err(ClientError::Rejected(e)),
                            None => Ok((r, self.servers[server])),
                        })
                    }
                    Step::Unknown { expired } => {
                        // The caller moved to an epoch above the floor;
                        // the new session gets a fresh id as well.
                        let epoch = self.caller.session.epoch;
                        self.caller = Caller::new(fresh_session(&mut self.rng, epoch));
                        Decision::Done(Err(ClientError::Unknown {
                            attempts: call.attempts,
                            last: format!("server {name}: session expired"),
                            expired,
                        }))
                    }
                    _ => unreachable!("a reply to the call in flight ends it"),
                }
            }
            Attempt::Redirect(hint) => {
                call.last = format!("server {name} redirected to {hint:?}");
                let hint = hint
                    .and_then(|h| self.servers.iter().position(|id| *id == h))
                    .filter(|&j| j != server)
                    .map(|j| j as u32);
                let pause = if hint.is_none() {
                    self.pause_ms(call.attempts)
                } else {
                    0
                };
                let policy = self.caller_policy();
                let step = self.caller.on_redirect(&policy, tag, hint);
                self.next(call, step, pause, now_ms)
            }
            Attempt::Invalid(why) => {
                self.caller.give_up();
                Decision::Done(Err(ClientError::Invalid(why)))
            }
            Attempt::Failed { why, quick } => {
                call.last = format!("server {name}: {why}");
                // A refused connection fails at once; pause so that the
                // attempts outlast a node that is still starting.
                let pause = if quick { self.pause_ms(call.attempts) } else { 0 };
                let policy = self.caller_policy();
                let step = self.caller.on_timeout(&policy);
                self.next(call, step, pause, now_ms)
            }
        }
    }
}

/// A session no other client has: a random id (two clients collide with
/// probability 2^-63 per pair) and the epoch `epoch` (the clock, or above
/// the floor of a session table that evicted the last one).
fn fresh_session(rng: &mut Rng, epoch: u64) -> Session {
    Session {
        epoch,
        id: SESSION_ID_MIN + rng.below(u64::MAX / 2 - SESSION_ID_MIN),
    }
}

pub struct Client<P: Protocol> {
    cluster: u64,
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<Conn>>,
    /// With TLS: the config, and the name each server's certificate must
    /// carry (the host of its client address).
    tls: Option<(Arc<rustls::ClientConfig>, Vec<ServerName<'static>>)>,
    policy: Policy<P>,
}

/// A connection to a server: TCP, or TLS over TCP.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    pub(crate) fn set_read_timeout(&self, d: Duration) -> Result<(), String> {
        self.tcp().set_read_timeout(Some(d)).map_err(|e| e.to_string())
    }
}

/// Connects to `addr` within `connect_timeout`, then, with `tls`, does the
/// handshake by `deadline`.
pub(crate) fn connect(
    addr: SocketAddr,
    tls: Option<(&Arc<rustls::ClientConfig>, &ServerName<'static>)>,
    connect_timeout: Duration,
    deadline: Instant,
) -> Result<Conn, String> {
    let s = TcpStream::connect_timeout(&addr, connect_timeout).map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(match tls {
        None => Conn::Plain(s),
        Some((cfg, name)) => Conn::Tls(Box::new(handshake(s, cfg, name, deadline)?)),
    })
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
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
        let tls = match crate::tls::client_tls(cluster, opts.tls_identity.clone()).map_err(ClientError::Config)? {
            None => None,
            Some(cfg) => {
                let names = servers
                    .iter()
                    .map(|(id, _)| {
                        let node = cluster.node(usize::from(*id) as u64);
                        let addr = node.and_then(|n| n.client_address.as_deref()).unwrap_or_default();
                        crate::tls::server_name(addr)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ClientError::Config)?;
                Some((cfg, names))
            }
        };
        let policy = Policy::new(
            servers.iter().map(|(id, _)| *id).collect(),
            opts,
            Rng::seed_from(0),
            now_ms(),
        )?;
        Ok(Client {
            cluster: cluster.hash(),
            conns: servers.iter().map(|_| None).collect(),
            addrs: servers.iter().map(|(_, a)| *a).collect(),
            tls,
            policy,
        })
    }

    /// The servers this client talks to.
    pub fn servers(&self) -> Vec<Id> {
        self.policy.servers().to_vec()
    }

    /// The client's current session.
    pub fn session(&self) -> Session {
        self.policy.session()
    }

    /// Sends `request` until it has an answer, following the policy (see
    /// the module). Returns the reply and the server that gave it.
    pub fn call(&mut self, request: P::Request) -> Result<(P::Reply, Id), ClientError> {
        let (mut call, mut d) = self.policy.begin(now_ms());
        loop {
            match d {
                Decision::Done(result) => return result,
                Decision::Send { server, tag, pause_ms } => {
                    if pause_ms > 0 {
                        std::thread::sleep(Duration::from_millis(pause_ms));
                    }
                    let outcome = self.attempt(server, tag, &request);
                    d = self.policy.attempted(&mut call, server, tag, outcome, now_ms());
                }
            }
        }
    }

    /// One attempt at one server, without retries: `Ok(None)` when it
    /// redirected, an error when it did not answer in time. The request
    /// is a call of its own (the next sequence number); after an error it
    /// is abandoned, like a call that gave up.
    pub fn call_at(&mut self, server: Id, request: P::Request) -> Result<Option<P::Reply>, ClientError> {
        let Some(i) = self.policy.servers().iter().position(|id| *id == server) else {
            return Err(ClientError::Config(format!(
                "server {} takes no client requests",
                usize::from(server)
            )));
        };
        let (mut call, d) = self.policy.begin(now_ms());
        let Decision::Send { tag, .. } = d else {
            unreachable!("a call starts with a send")
        };
        match self.attempt(i, tag, &request) {
            Attempt::Redirect(_) => {
                self.policy.caller.give_up();
                Ok(None)
            }
            Attempt::Failed { why, .. } => {
                self.policy.caller.give_up();
                Err(ClientError::Unknown {
                    attempts: 1,
                    last: why,
                    expired: false,
                })
            }
            outcome => match self.policy.attempted(&mut call, i, tag, outcome, now_ms()) {
                Decision::Done(r) => r.map(|(r, _)| Some(r)),
                Decision::Send { .. } => unreachable!("a reply or a refusal ends the call"),
            },
        }
    }

    fn attempt(&mut self, i: usize, tag: Tag, request: &P::Request) -> Attempt<P::Reply> {
        let started = Instant::now();
        match self.try_attempt(i, tag, request) {
            Ok(a) => a,
            Err(why) => {
                // The connection may hold half a frame: start over next time.
                self.conns[i] = None;
                let quick = started.elapsed() < Duration::from_millis(self.policy.opts.attempt_timeout_ms);
                Attempt::Failed { why, quick }
            }
        }
    }

    fn try_attempt(&mut self, i: usize, tag: Tag, request: &P::Request) -> Result<Attempt<P::Reply>, String> {
        let opts = &self.policy.opts;
        let deadline = Instant::now() + Duration::from_millis(opts.attempt_timeout_ms);
        let addr = self.addrs[i];
        if self.conns[i].is_none() {
            let tls = self.tls.as_ref().map(|(cfg, names)| (cfg, &names[i]));
            let timeout = Duration::from_millis(opts.connect_timeout_ms);
            self.conns[i] = Some(connect(addr, tls, timeout, deadline)?);
        }
        let max = opts.frame_payload_bytes_max;
        let bytes = frame::encode(Kind::Request, self.cluster, 0, &(tag, request), max).map_err(|e| e.to_string())?;
        let conn = self.conns[i].as_mut().ok_or("no connection")?;
        conn.write_all(&bytes).map_err(|e| format!("send: {e}"))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out".into());
            }
            conn.tcp().set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
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

/// The TLS handshake with a server, within the attempt's deadline: the
/// server must show a certificate of the cluster's CA naming `name`.
fn handshake(
    mut tcp: TcpStream,
    cfg: &Arc<rustls::ClientConfig>,
    name: &ServerName<'static>,
    deadline: Instant,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    tcp.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(left)).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(cfg.clone(), name.clone()).map_err(|e| format!("TLS: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

pub(crate) fn read_frame_blocking(conn: &mut Conn, max: usize) -> Result<frame::Frame, String> {
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
