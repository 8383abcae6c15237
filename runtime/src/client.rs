//! A blocking client for a running cluster: sends the spec's service
//! requests, follows `Redirect`s, and retries elsewhere on timeouts.
//!
//! Each request carries a request id; the node maps the connection to a
//! client id of its own, so `reply c ...` in the spec comes back on this
//! connection tagged with the request id. A retry reuses the request id, but
//! the spec decides what a repeated request means: without deduplication in
//! the spec, a retried write may take effect twice (at-least-once).

use crate::cluster::Cluster;
use crate::frame::{self, Kind, Response, HEADER_LEN};
use crate::rng::Rng;
use smelt_support::{Id, Protocol};
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How long one attempt waits for an answer.
    pub attempt_timeout_ms: u64,
    /// Attempts per request (each redirect or timeout is one).
    pub attempts_max: u32,
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
            connect_timeout_ms: 500,
            redirect_pause_ms: 50,
            frame_payload_bytes_max: frame::PAYLOAD_BYTES_MAX,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientError {
    /// No server answered within the attempts.
    NoReply {
        attempts: u32,
        last: String,
    },
    Config(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NoReply { attempts, last } => write!(f, "no reply after {attempts} attempt(s) (last: {last})"),
            ClientError::Config(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ClientError {}

/// How one attempt ended.
enum Attempt<R> {
    Reply(R),
    Redirect(Option<Id>),
    Failed(String),
}

pub struct Client<P: Protocol> {
    cluster: u64,
    servers: Vec<(Id, SocketAddr)>,
    conns: Vec<Option<TcpStream>>,
    /// Index into `servers` of the next server to try.
    next: usize,
    next_request_id: u64,
    opts: ClientOptions,
    _p: PhantomData<P>,
}

impl<P: Protocol> Client<P> {
    pub fn new(cluster: &Cluster, opts: ClientOptions) -> Result<Client<P>, ClientError> {
        let servers = cluster.client_servers::<P>().map_err(ClientError::Config)?;
        let mut rng = Rng::new(Rng::seed_from(0));
        let start = rng.below(servers.len() as u64) as usize;
        Ok(Client {
            cluster: cluster.hash(),
            conns: servers.iter().map(|_| None).collect(),
            servers,
            next: start,
            // Random so that two client processes do not share request ids.
            next_request_id: rng.next_u64() >> 1,
            opts,
            _p: PhantomData,
        })
    }

    /// The servers this client talks to.
    pub fn servers(&self) -> Vec<Id> {
        self.servers.iter().map(|(id, _)| *id).collect()
    }

    /// Sends `request` until some server replies, following redirects and
    /// moving on to the next server after a timeout. Returns the reply and
    /// the server that gave it.
    pub fn call(&mut self, request: P::Request) -> Result<(P::Reply, Id), ClientError> {
        let rid = self.fresh_id();
        let mut last = String::from("nothing tried");
        for attempt in 0..self.opts.attempts_max {
            let i = self.next % self.servers.len();
            let started = Instant::now();
            match self.attempt(i, rid, &request) {
                Attempt::Reply(r) => return Ok((r, self.servers[i].0)),
                Attempt::Redirect(hint) => {
                    last = format!("server {} redirected to {hint:?}", usize::from(self.servers[i].0));
                    match hint.and_then(|h| self.servers.iter().position(|(id, _)| *id == h)) {
                        Some(j) if j != i => self.next = j,
                        _ => {
                            self.next = i + 1;
                            let pause = self.opts.redirect_pause_ms.saturating_mul(attempt as u64 + 1).min(1000);
                            std::thread::sleep(Duration::from_millis(pause));
                        }
                    }
                }
                Attempt::Failed(why) => {
                    last = format!("server {}: {why}", usize::from(self.servers[i].0));
                    self.next = i + 1;
                    // A refused connection fails at once; pause so that the
                    // attempts outlast a node that is still starting.
                    if started.elapsed() < Duration::from_millis(self.opts.attempt_timeout_ms) {
                        let pause = self.opts.redirect_pause_ms.saturating_mul(attempt as u64 + 1).min(1000);
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                }
            }
        }
        Err(ClientError::NoReply {
            attempts: self.opts.attempts_max,
            last,
        })
    }

    /// One attempt at one server, without retries: `Ok(None)` when it
    /// redirected, an error when it did not answer in time.
    pub fn call_at(&mut self, server: Id, request: P::Request) -> Result<Option<P::Reply>, ClientError> {
        let Some(i) = self.servers.iter().position(|(id, _)| *id == server) else {
            return Err(ClientError::Config(format!(
                "server {} takes no client requests",
                usize::from(server)
            )));
        };
        let rid = self.fresh_id();
        match self.attempt(i, rid, &request) {
            Attempt::Reply(r) => Ok(Some(r)),
            Attempt::Redirect(_) => Ok(None),
            Attempt::Failed(last) => Err(ClientError::NoReply { attempts: 1, last }),
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.next_request_id
    }

    fn attempt(&mut self, i: usize, rid: u64, request: &P::Request) -> Attempt<P::Reply> {
        match self.try_attempt(i, rid, request) {
            Ok(a) => a,
            Err(e) => {
                // The connection may hold half a frame: start over next time.
                self.conns[i] = None;
                Attempt::Failed(e)
            }
        }
    }

    fn try_attempt(&mut self, i: usize, rid: u64, request: &P::Request) -> Result<Attempt<P::Reply>, String> {
        let deadline = Instant::now() + Duration::from_millis(self.opts.attempt_timeout_ms);
        let addr = self.servers[i].1;
        if self.conns[i].is_none() {
            let s = TcpStream::connect_timeout(&addr, Duration::from_millis(self.opts.connect_timeout_ms))
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let _ = s.set_nodelay(true);
            self.conns[i] = Some(s);
        }
        let max = self.opts.frame_payload_bytes_max;
        let bytes = frame::encode(Kind::Request, self.cluster, 0, &(rid, request), max).map_err(|e| e.to_string())?;
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
                Response::Reply(r, reply) if r == rid => return Ok(Attempt::Reply(reply)),
                Response::Redirect(r, hint) if r == rid => {
                    return Ok(Attempt::Redirect(hint.map(|h| Id::from(h as usize))));
                }
                // A late answer to an earlier request: skip it.
                _ => continue,
            }
        }
    }
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
