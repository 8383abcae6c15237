//! TCP connections: outbound peer links, inbound peer and client
//! connections. These tasks do I/O only; every protocol event goes through
//! the node's bounded inbound queue to the one event loop that owns the
//! actor state.
//!
//! Peer links are one-way: a node connects to every other server and sends
//! on that connection; it receives on the connections the others opened.
//! So there is never a question of which of two simultaneous connections
//! wins, and a link's queue belongs to exactly one writer task.
//!
//! **A link is reliable and in order between two live processes**, across
//! reconnects: the writer numbers each message (per sender incarnation),
//! keeps it until the receiver acknowledges it, and resends what is
//! unacknowledged on a new connection; the receiver delivers each number
//! once, in order, and reads only the newest connection of a sender (a
//! reader of an older one stops at its next frame: its frames can never
//! interleave with the new one's). The receiver acknowledges as it reads
//! (a frame read but not yet handled is lost if the receiver crashes, as
//! the model's crash allows), every `ACK_EVERY` messages and on a ping.
//! The writer pings every `link_keepalive_ms` and takes a link with no
//! answer, or a write blocked, for `link_dead_ms` for dead: it reconnects
//! (and resends), so a link stalled by a partition recovers within a
//! bounded time after it heals. What a
//! link still loses: a sender's unacknowledged messages when it crashes,
//! and, beyond `peer_queue_len_max` / `peer_queue_bytes_max` of them to a
//! peer that does not acknowledge, the oldest (counted and logged) — see
//! the runtime's contract with the model in ARCHITECTURE.md.

use crate::frame::{self, Frame, FrameError, Hello, Kind, Response, HEADER_LEN};
use crate::node::{Event, Limits};
use crate::rng::Rng;
use crate::tls::NodeTls;
use rustls::pki_types::ServerName;
use smelt_support::{Client, Id, Protocol};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// The receiver acknowledges after this many messages (and on a ping).
pub const ACK_EVERY: u64 = 32;

/// The receiving end of the links from one sender: which connection is
/// current, which incarnation of the sender it carries, and the last
/// message number delivered in order.
#[derive(Debug, Default)]
pub struct LinkIn {
    generation: u64,
    incarnation: u64,
    last: u64,
}

/// Every sender's `LinkIn`, shared by the reader tasks of a node.
pub type Links = Arc<std::sync::Mutex<HashMap<u64, Arc<tokio::sync::Mutex<LinkIn>>>>>;

/// What connection tasks need to know about the node.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub cluster: u64,
    pub id: u64,
    pub servers: u64,
    pub limits: Limits,
    /// Mutual TLS, if the cluster file has `[tls]`.
    pub tls: Option<NodeTls>,
    /// Connections refused in the TLS handshake.
    pub tls_refused: Arc<AtomicU64>,
    /// What `Status` frames are answered from (`None`: not answered).
    pub admin: Option<Arc<crate::admin::AdminInfo>>,
    /// Per server id, a count of the hellos accepted from it: a writer
    /// waiting out its reconnect backoff to that server dials again at
    /// once when it moves (see `peer_writer`).
    pub peer_hellos: Arc<Vec<watch::Sender<u64>>>,
}

impl Ctx {
    /// `peer_hellos` for a cluster of `servers`.
    pub fn hello_counts(servers: u64) -> Arc<Vec<watch::Sender<u64>>> {
        Arc::new((0..servers).map(|_| watch::channel(0).0).collect())
    }
}

/// A connection's byte stream: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

/// The server side of an accepted connection: the TLS handshake first, if
/// `acceptor` is set, so nothing is read as a frame from a connection that
/// has not proved a certificate of the cluster's CA. `None`: refused
/// (logged and counted).
async fn accept_tls(
    tcp: TcpStream,
    acceptor: Option<&TlsAcceptor>,
    ctx: &Ctx,
    from: SocketAddr,
    what: &str,
) -> Option<(Stream, PeerCert)> {
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        return Some((Box::new(tcp), None));
    };
    let limit = Duration::from_millis(ctx.limits.handshake_timeout_ms);
    let why = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => {
            let cert = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.clone().into_owned());
            return Some((Box::new(s), cert));
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no TLS handshake within {} ms", limit.as_millis()),
    };
    warn!(%from, error = %why, "refused a {what} connection in the TLS handshake");
    ctx.tls_refused.fetch_add(1, Ordering::Relaxed);
    None
}

/// The end-entity certificate the far side of a TLS stream showed.
type PeerCert = Option<rustls::pki_types::CertificateDer<'static>>;

/// The client side of a peer link: the TLS handshake, if the cluster uses
/// TLS, checking that the peer's certificate names `name`.
async fn dial_tls(tcp: TcpStream, ctx: &Ctx, name: &ServerName<'static>) -> Result<Stream, String> {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &ctx.tls else {
        return Ok(Box::new(tcp));
    };
    let limit = Duration::from_millis(ctx.limits.handshake_timeout_ms);
    match tokio::time::timeout(limit, tls.dial.connect(name.clone(), tcp)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
        Err(_) => Err(format!("no TLS handshake within {} ms", limit.as_millis())),
    }
}

#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Frame(FrameError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Frame(e) => write!(f, "{e}"),
        }
    }
}

/// Reads one frame; `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, payload_bytes_max: usize) -> Result<Option<Frame>, ReadError> {
    let mut raw = [0u8; HEADER_LEN];
    match r.read(&mut raw[..1]).await {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        // TLS reports a close without its close_notify (a peer that was
        // killed) this way: between frames, that is an end of stream.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    r.read_exact(&mut raw[1..]).await.map_err(ReadError::Io)?;
    let header = frame::Header::parse(&raw, payload_bytes_max).map_err(ReadError::Frame)?;
    let mut payload = vec![0u8; header.len as usize];
    r.read_exact(&mut payload).await.map_err(ReadError::Io)?;
    header.verify(&raw, &payload).map_err(ReadError::Frame)?;
    Ok(Some(Frame {
        kind: header.kind,
        cluster: header.cluster,
        sender: header.sender,
        payload,
    }))
}

/// The sending side of one peer link, owned by the event loop.
pub struct PeerOut {
    pub tx: mpsc::Sender<Vec<u8>>,
    /// Bytes sitting in the queue; bounds memory for a peer that is down.
    pub queued_bytes: Arc<AtomicUsize>,
}

impl PeerOut {
    /// Queues a frame unless the queue is full; a full queue drops it (the
    /// node must not grow without limit; a gap in the model's contract,
    /// counted in the node's stats — ARCHITECTURE.md).
    pub fn offer(&self, bytes: Vec<u8>, bytes_max: usize) -> bool {
        let len = bytes.len();
        if self.queued_bytes.load(Ordering::Relaxed) + len > bytes_max {
            return false;
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if self.tx.try_send(bytes).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// Messages to one peer that are numbered and not yet acknowledged.
struct Unacked {
    next_seq: u64,
    /// The last number handed to a connection's socket (messages taken
    /// while the link was down are numbered but not written): what a
    /// receiver's earlier incarnation can have read (`Hello::written`).
    written: u64,
    frames: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    /// Dropped because the peer did not acknowledge in time (see the
    /// module).
    dropped: u64,
}

impl Unacked {
    fn ack(&mut self, upto: u64) {
        while self.frames.front().is_some_and(|(s, _)| *s <= upto) {
            if let Some((_, f)) = self.frames.pop_front() {
                self.bytes -= f.len();
            }
        }
    }
}

/// Writes and flushes `frames`, within `limit`: a write blocked by a full
/// send buffer (a partition, a peer that stopped reading) counts as a dead
/// link, so the writer reconnects and goes on taking the loop's messages.
async fn write_frames<W: AsyncWrite + Unpin>(
    w: &mut W,
    frames: impl Iterator<Item = &[u8]>,
    limit: Duration,
) -> Result<(), String> {
    let write = async {
        for f in frames {
            w.write_all(f).await?;
        }
        w.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("a write blocked for {} ms", limit.as_millis())),
    }
}

/// Keeps a link to peer `to` at `addr` up (reconnecting with exponential
/// backoff and jitter), numbers and writes the messages the loop queues
/// (each the encoding of one `P::Msg`), keeps them until acknowledged and
/// resends the rest on a new connection. Ends when the event loop drops
/// the queue's sender (after writing what is queued, if connected) or when
/// `stop` fires.
/// Counts a connected peer link while it lives (a gauge for metrics).
struct LinkUp<'a>(&'a AtomicU64);

impl<'a> LinkUp<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        LinkUp(n)
    }
}

impl Drop for LinkUp<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn peer_writer(
    ctx: Ctx,
    to: u64,
    addr: SocketAddr,
    name: ServerName<'static>,
    hello: Hello,
    mut rx: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    links_up: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let l = &ctx.limits;
    let mut rng = Rng::new(Rng::seed_from(ctx.id ^ (to << 20)));
    let mut backoff_ms = l.reconnect_ms_min;
    let mut was_up = false;
    let mut out = Unacked {
        next_seq: 1,
        written: 0,
        frames: VecDeque::new(),
        bytes: 0,
        dropped: 0,
    };
    let max = l.frame_payload_bytes_max;
    let dead = Duration::from_millis(l.link_dead_ms);
    // Hellos from `to`: a peer that connects to this node is up (typically
    // it just restarted), so a backoff grown while it was down (up to
    // `reconnect_ms_max`, plus jitter) ends at once. Without this, every
    // message to a restarted peer waited out that backoff — in raft.sm long
    // enough for a restarted follower to hear nothing from the leader,
    // time out and depose it (`transport.rs::
    // a_peer_that_connects_ends_the_backoff_to_it`).
    let mut hellos = ctx.peer_hellos.get(to as usize).map(|h| h.subscribe());
    loop {
        // Seen before dialling: a hello that comes while this attempt
        // fails still ends the backoff after it.
        if let Some(h) = &mut hellos {
            h.borrow_and_update();
        }
        let connect = tokio::time::timeout(Duration::from_millis(l.connect_timeout_ms), TcpStream::connect(addr));
        let stream = match connect.await {
            Ok(Ok(s)) => match dial_tls(s, &ctx, &name).await {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(peer = to, %addr, error = %e, "no TLS session with the peer");
                    None
                }
            },
            Ok(Err(e)) => {
                debug!(peer = to, %addr, error = %e, "connect failed");
                None
            }
            Err(_) => None,
        };
        if let Some(stream) = stream {
            backoff_ms = l.reconnect_ms_min;
            info!(peer = to, %addr, resend = out.frames.len(), "connected to peer");
            was_up = true;
            let _up = LinkUp::new(&links_up);
            let (read, write) = tokio::io::split(stream);
            let mut w = BufWriter::new(write);
            // Acks are read by a task of their own: a read cut off by
            // `select!` would lose its place in the stream.
            let (ack_tx, mut acks) = watch::channel(Ok(0u64));
            let cluster = ctx.cluster;
            let ack_reader = tokio::spawn(async move {
                let mut r = BufReader::new(read);
                loop {
                    let got = match read_frame(&mut r, 64).await {
                        Ok(Some(f)) if f.kind == Kind::Ack && f.cluster == cluster => {
                            frame::payload::<u64>(&f.payload).map_err(|e| e.to_string())
                        }
                        Ok(Some(f)) => Err(format!("unexpected {:?} frame from the peer", f.kind)),
                        Ok(None) => Err("the peer closed the link".into()),
                        Err(e) => Err(e.to_string()),
                    };
                    let end = got.is_err();
                    if ack_tx.send(got).is_err() || end {
                        return;
                    }
                }
            });
            let result: Result<bool, String> = async {
                // The hello, then everything not yet acknowledged.
                let hello = Hello {
                    written: out.written,
                    ..hello.clone()
                };
                let hello = frame::encode(Kind::Hello, ctx.cluster, ctx.id, &hello, max).map_err(|e| e.to_string())?;
                let resend = std::iter::once(&hello[..]).chain(out.frames.iter().map(|(_, f)| &f[..]));
                // Numbered as written before the write: a partial write may
                // still reach the receiver.
                out.written = out.written.max(out.next_seq - 1);
                write_frames(&mut w, resend, dead).await?;
                let mut heard = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(l.link_keepalive_ms.max(1)));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        m = rx.recv() => {
                            let Some(msg) = m else { return Ok(true) };
                            queued_bytes.fetch_sub(msg.len(), Ordering::Relaxed);
                            let mut batch = vec![msg];
                            while let Ok(m) = rx.try_recv() {
                                queued_bytes.fetch_sub(m.len(), Ordering::Relaxed);
                                batch.push(m);
                            }
                            let first = out.frames.len();
                            for msg in batch {
                                let seq = out.next_seq;
                                out.next_seq += 1;
                                match frame::encode(Kind::Peer, ctx.cluster, ctx.id, &(seq, &msg[..]), max) {
                                    Ok(f) => {
                                        out.bytes += f.len();
                                        out.frames.push_back((seq, f));
                                    }
                                    Err(e) => warn!(peer = to, error = %e, "message not sent"),
                                }
                            }
                            let fresh: Vec<&[u8]> = out.frames.iter().skip(first).map(|(_, f)| &f[..]).collect();
                            out.written = out.next_seq - 1;
                            write_frames(&mut w, fresh.into_iter(), dead).await?;
                            trim(&mut out, l, to, &dropped);
                        }
                        r = acks.changed() => {
                            if r.is_err() {
                                return Err("the link's reader stopped".into());
                            }
                            let upto = acks.borrow_and_update().clone()?;
                            out.ack(upto);
                            heard = Instant::now();
                        }
                        _ = tick.tick() => {
                            if heard.elapsed() > Duration::from_millis(l.link_dead_ms) {
                                return Err(format!("no acknowledgement for {} ms", l.link_dead_ms));
                            }
                            let ping = frame::encode(Kind::Ping, ctx.cluster, ctx.id, &(), max).map_err(|e| e.to_string())?;
                            write_frames(&mut w, std::iter::once(&ping[..]), dead).await?;
                        }
                    }
                }
            }
            .await;
            ack_reader.abort();
            match result {
                Ok(_) => {
                    let _ = w.shutdown().await;
                    return;
                }
                Err(e) => {
                    warn!(peer = to, %addr, error = %e, unacked = out.frames.len(), "peer link lost; reconnecting")
                }
            }
        } else if was_up {
            was_up = false;
            warn!(peer = to, %addr, "peer unreachable; retrying with backoff");
        }
        if *stop.borrow() {
            return;
        }
        // While down, keep taking the loop's messages (numbered, kept for
        // the resend), within the bounds.
        let jitter = rng.below(backoff_ms / 2 + 1);
        let wake = tokio::time::sleep(Duration::from_millis(backoff_ms + jitter));
        tokio::pin!(wake);
        let mut heard = false;
        loop {
            tokio::select! {
                _ = &mut wake => break,
                _ = stop.changed() => return,
                Ok(()) = hello_from(&mut hellos) => {
                    debug!(peer = to, %addr, "the peer connected to us: dialling it now");
                    heard = true;
                    break;
                }
                m = rx.recv() => {
                    let Some(msg) = m else { return };
                    queued_bytes.fetch_sub(msg.len(), Ordering::Relaxed);
                    let seq = out.next_seq;
                    out.next_seq += 1;
                    if let Ok(f) = frame::encode(Kind::Peer, ctx.cluster, ctx.id, &(seq, &msg[..]), max) {
                        out.bytes += f.len();
                        out.frames.push_back((seq, f));
                    }
                    trim(&mut out, l, to, &dropped);
                }
            }
        }
        backoff_ms = if heard {
            l.reconnect_ms_min
        } else {
            (backoff_ms * 2).min(l.reconnect_ms_max)
        };
    }
}

/// The next hello from the writer's peer (never, without a count for it).
async fn hello_from(hellos: &mut Option<watch::Receiver<u64>>) -> Result<(), watch::error::RecvError> {
    match hellos {
        Some(h) => h.changed().await,
        None => std::future::pending().await,
    }
}

/// Beyond the bounds, the oldest unacknowledged messages are dropped: a
/// peer that has not acknowledged anything for that long loses them (the
/// receiver sees the gap in the numbers and logs it).
fn trim(out: &mut Unacked, l: &Limits, to: u64, dropped: &AtomicU64) {
    let mut n = 0;
    while out.frames.len() > l.peer_queue_len_max || out.bytes > l.peer_queue_bytes_max {
        let Some((_, f)) = out.frames.pop_front() else { break };
        out.bytes -= f.len();
        n += 1;
    }
    if n > 0 {
        out.dropped += n;
        dropped.fetch_add(n, Ordering::Relaxed);
        warn!(
            peer = to,
            dropped = n,
            total = out.dropped,
            "the peer acknowledges nothing: its oldest messages are dropped"
        );
    }
}

/// Accepts peer connections and feeds their messages to the event loop.
pub async fn accept_peers<P: Protocol>(listener: TcpListener, ctx: Ctx, tx: mpsc::Sender<Event<P>>) {
    let permits = Arc::new(Semaphore::new(ctx.limits.peer_connections_max));
    let links: Links = Arc::default();
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%from, "too many peer connections; closing this one");
            continue;
        };
        let (ctx, tx, links) = (ctx.clone(), tx.clone(), links.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Some((stream, cert)) = accept_tls(stream, ctx.tls.as_ref().map(|t| &t.peers), &ctx, from, "peer").await
            else {
                return;
            };
            match read_peer::<P>(stream, cert, &ctx, &tx, &links).await {
                Ok(()) => debug!(%from, "peer connection closed"),
                Err(e) => warn!(%from, error = %e, "closing peer connection after a bad frame"),
            }
        });
    }
}

fn reject(why: String) -> ReadError {
    ReadError::Frame(FrameError::Rejected(why))
}

async fn send_ack<W: AsyncWrite + Unpin>(w: &mut W, ctx: &Ctx, last: u64) -> Result<(), ReadError> {
    let f = frame::encode(
        Kind::Ack,
        ctx.cluster,
        ctx.id,
        &last,
        ctx.limits.frame_payload_bytes_max,
    )
    .map_err(ReadError::Frame)?;
    w.write_all(&f).await.map_err(ReadError::Io)?;
    w.flush().await.map_err(ReadError::Io)
}

async fn read_peer<P: Protocol>(
    stream: Stream,
    cert: PeerCert,
    ctx: &Ctx,
    tx: &mpsc::Sender<Event<P>>,
    links: &Links,
) -> Result<(), ReadError> {
    let max = ctx.limits.frame_payload_bytes_max;
    let (read, mut write) = tokio::io::split(stream);
    let mut r = BufReader::new(read);
    let first = tokio::time::timeout(
        Duration::from_millis(ctx.limits.handshake_timeout_ms),
        read_frame(&mut r, max),
    )
    .await
    .map_err(|_| reject("no hello in time".into()))??;
    let Some(first) = first else { return Ok(()) };
    check_cluster(ctx, &first)?;
    if first.kind != Kind::Hello {
        return Err(reject(format!("expected a hello, got {:?}", first.kind)));
    }
    let src = first.sender;
    if src >= ctx.servers || src == ctx.id {
        return Err(reject(format!("hello from unknown server id {src}")));
    }
    if let Some(tls) = &ctx.tls {
        // Only node `src`'s certificate may speak for node `src`.
        let named = match (&cert, tls.peer_names.get(src as usize)) {
            (Some(c), Some(name)) => crate::tls::names(c, name),
            _ => false,
        };
        if !named {
            ctx.tls_refused.fetch_add(1, Ordering::Relaxed);
            return Err(reject(format!(
                "a hello as node {src}, with a certificate that does not name node {src}'s host"
            )));
        }
    }
    let hello: Hello = frame::payload(&first.payload).map_err(ReadError::Frame)?;
    if hello.protocol != P::NAME {
        return Err(reject(format!(
            "peer runs protocol `{}`, this node `{}`",
            hello.protocol,
            P::NAME
        )));
    }
    // The sender is up: this node's writer to it need not wait out its
    // backoff.
    if let Some(h) = ctx.peer_hellos.get(src as usize) {
        h.send_modify(|n| *n += 1);
    }
    // This connection is now the sender's current one: a reader of an
    // older one stops at its next frame.
    let link = links
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(src)
        .or_default()
        .clone();
    let (generation, mut last) = {
        let mut l = link.lock().await;
        l.generation += 1;
        if l.incarnation != hello.incarnation {
            // A sender incarnation this process has not heard: what it
            // wrote before may have reached an earlier incarnation of this
            // node, so it is skipped, not delivered twice (see `Hello`).
            l.incarnation = hello.incarnation;
            l.last = hello.written;
        }
        (l.generation, l.last)
    };
    send_ack(&mut write, ctx, last).await?;
    let mut unacked = 0u64;
    let id = Id::from(src as usize);
    while let Some(f) = read_frame(&mut r, max).await? {
        check_cluster(ctx, &f)?;
        if f.sender != src {
            return Err(reject(format!(
                "{:?} frame from {} on the link of {src}",
                f.kind, f.sender
            )));
        }
        match f.kind {
            Kind::Peer => {
                let (seq, bytes): (u64, Vec<u8>) = frame::payload(&f.payload).map_err(ReadError::Frame)?;
                let msg: P::Msg = frame::payload(&bytes).map_err(ReadError::Frame)?;
                // Delivered under the link's lock, so a newer connection's
                // messages cannot overtake this one's.
                let mut l = link.lock().await;
                if l.generation != generation {
                    debug!(peer = src, "an older connection of the peer: closed");
                    return Ok(());
                }
                if seq <= l.last {
                    // A resend of what arrived already.
                    continue;
                }
                if seq != l.last + 1 {
                    warn!(
                        peer = src,
                        lost = seq - l.last - 1,
                        "messages from the peer were lost (its queue to this node overflowed)"
                    );
                }
                l.last = seq;
                last = seq;
                if tx.send(Event::Peer { src: id, msg }).await.is_err() {
                    return Ok(());
                }
                drop(l);
                unacked += 1;
                if unacked >= ACK_EVERY {
                    send_ack(&mut write, ctx, last).await?;
                    unacked = 0;
                }
            }
            Kind::Ping => {
                send_ack(&mut write, ctx, last).await?;
                unacked = 0;
            }
            k => return Err(reject(format!("{k:?} frame on the link of {src}"))),
        }
    }
    Ok(())
}

fn check_cluster(ctx: &Ctx, f: &Frame) -> Result<(), ReadError> {
    if f.cluster != ctx.cluster {
        return Err(reject(format!(
            "frame of cluster {:016x}, this is {:016x}",
            f.cluster, ctx.cluster
        )));
    }
    Ok(())
}

/// Accepts client connections. Each gets a connection number
/// (`next_conn`) and a bounded queue for the responses the event loop
/// routes back to it. The protocol never sees the number: it sees the
/// sessions whose requests arrive on the connection.
pub async fn accept_clients<P: Protocol>(
    listener: TcpListener,
    ctx: Ctx,
    tx: mpsc::Sender<Event<P>>,
    next_conn: Arc<AtomicU64>,
) {
    let permits = Arc::new(Semaphore::new(ctx.limits.clients_max));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%from, "too many client connections; closing this one");
            continue;
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let (ctx, tx) = (ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Some((stream, _)) = accept_tls(
                stream,
                ctx.tls.as_ref().and_then(|t| t.clients.as_ref()),
                &ctx,
                from,
                "client",
            )
            .await
            else {
                return;
            };
            let (read, write) = tokio::io::split(stream);
            let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(ctx.limits.client_queue_len_max);
            let invalid_tx = out_tx.clone();
            if tx.send(Event::ClientOpen { conn, tx: out_tx }).await.is_err() {
                return;
            }
            debug!(%from, conn, "client connected");
            let writer = tokio::spawn(async move {
                let mut w = BufWriter::new(write);
                while let Some(f) = out_rx.recv().await {
                    w.write_all(&f).await?;
                    while let Ok(f) = out_rx.try_recv() {
                        w.write_all(&f).await?;
                    }
                    w.flush().await?;
                }
                Ok::<(), std::io::Error>(())
            });
            let mut r = BufReader::new(read);
            let result = read_client::<P, _>(&mut r, conn, &ctx, &tx, &invalid_tx).await;
            drop(invalid_tx);
            if let Err(e) = &result {
                warn!(%from, error = %e, "closing client connection after a bad frame");
            }
            let _ = tx.send(Event::ClientClosed { conn }).await;
            let _ = writer.await;
        });
    }
}

/// Reads a client's request frames. A frame that is not a well-formed
/// request closes the connection; a well-formed request whose tag makes no
/// sense (`client::check_tag`) is answered `Invalid` here, and never
/// reaches the protocol.
async fn read_client<P: Protocol, R: AsyncRead + Unpin>(
    r: &mut R,
    conn: u64,
    ctx: &Ctx,
    tx: &mpsc::Sender<Event<P>>,
    out: &mpsc::Sender<Vec<u8>>,
) -> Result<(), ReadError> {
    while let Some(f) = read_frame(r, ctx.limits.frame_payload_bytes_max).await? {
        check_cluster(ctx, &f)?;
        if f.kind == Kind::Status {
            // Answered here, from what the loop published: an operator's
            // question never waits behind the protocol's handlers.
            let Some(admin) = &ctx.admin else {
                return Err(reject("this node answers no status".into()));
            };
            answer(ctx, out, Kind::Status, &admin.status());
            continue;
        }
        if f.kind != Kind::Request {
            return Err(reject(format!("{:?} frame on a client connection", f.kind)));
        }
        let (tag, request): (Client, P::Request) = frame::payload(&f.payload).map_err(ReadError::Frame)?;
        if let Err(why) = crate::client::check_tag(&tag) {
            debug!(conn, %why, "invalid request tag");
            answer(ctx, out, Kind::Response, &Response::<P::Reply>::Invalid(tag, why));
            continue;
        }
        let msg = P::request_msg(tag, request);
        if tx.send(Event::Request { conn, msg }).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Queues an answer the reader gives itself (a status, an `Invalid`) on a
/// client connection. A full queue drops it, as it would a reply: the
/// client's attempt times out and it asks again.
fn answer<T: serde::Serialize>(ctx: &Ctx, out: &mpsc::Sender<Vec<u8>>, kind: Kind, body: &T) {
    if let Ok(f) = frame::encode(kind, ctx.cluster, ctx.id, body, ctx.limits.frame_payload_bytes_max) {
        let _ = out.try_send(f);
    }
}

/// Encodes what a handler sent to a client as a response frame, if it is
/// something a client understands (a reply or a redirect), with the
/// session it goes to.
pub fn response_frame<P: Protocol>(ctx: &Ctx, msg: &P::Msg) -> Option<(u64, Result<Vec<u8>, FrameError>)> {
    let (session, response) = match P::client_msg(msg)? {
        smelt_support::ClientMsg::Reply(tag, reply) => (tag.session.id, Response::Reply(tag, reply.clone())),
        smelt_support::ClientMsg::Redirect(tag, hint) => (
            tag.session.id,
            Response::Redirect(tag, hint.map(|h| usize::from(h) as u64)),
        ),
        smelt_support::ClientMsg::Request(..) => return None,
    };
    Some((
        session,
        frame::encode(
            Kind::Response,
            ctx.cluster,
            ctx.id,
            &response,
            ctx.limits.frame_payload_bytes_max,
        ),
    ))
}
