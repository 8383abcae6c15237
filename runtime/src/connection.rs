//! TCP connections: outbound peer links, inbound peer and client
//! connections. These tasks do I/O only; every protocol event goes through
//! the node's bounded inbound queue to the one event loop that owns the
//! actor state.
//!
//! Peer links are one-way: a node connects to every other server and sends
//! on that connection; it receives on the connections the others opened.
//! So there is never a question of which of two simultaneous connections
//! wins, and a link's queue belongs to exactly one writer task.

use crate::frame::{self, Frame, FrameError, Hello, Kind, Response, HEADER_LEN};
use crate::node::{Event, Limits};
use crate::rng::Rng;
use smelt_support::{Client, Id, Protocol};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, warn};

/// What connection tasks need to know about the node.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub cluster: u64,
    pub id: u64,
    pub servers: u64,
    pub limits: Limits,
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
    if r.read(&mut raw[..1]).await.map_err(ReadError::Io)? == 0 {
        return Ok(None);
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
    /// protocol tolerates loss, the node must not grow without limit).
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

/// Keeps a link to peer `to` at `addr` up (reconnecting with exponential
/// backoff and jitter) and writes the queued frames. Ends when the event
/// loop drops the queue's sender (after writing what is queued, if
/// connected) or when `stop` fires.
pub async fn peer_writer(
    ctx: Ctx,
    to: u64,
    addr: SocketAddr,
    hello: Vec<u8>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    queued_bytes: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let l = &ctx.limits;
    let mut rng = Rng::new(Rng::seed_from(ctx.id ^ (to << 20)));
    let mut backoff_ms = l.reconnect_ms_min;
    let mut was_up = false;
    loop {
        let connect = tokio::time::timeout(Duration::from_millis(l.connect_timeout_ms), TcpStream::connect(addr));
        let stream = match connect.await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                debug!(peer = to, %addr, error = %e, "connect failed");
                None
            }
            Err(_) => None,
        };
        if let Some(stream) = stream {
            backoff_ms = l.reconnect_ms_min;
            let _ = stream.set_nodelay(true);
            info!(peer = to, %addr, "connected to peer");
            was_up = true;
            let mut w = BufWriter::new(stream);
            let result = async {
                w.write_all(&hello).await?;
                w.flush().await?;
                while let Some(f) = rx.recv().await {
                    queued_bytes.fetch_sub(f.len(), Ordering::Relaxed);
                    w.write_all(&f).await?;
                    while let Ok(f) = rx.try_recv() {
                        queued_bytes.fetch_sub(f.len(), Ordering::Relaxed);
                        w.write_all(&f).await?;
                    }
                    w.flush().await?;
                }
                Ok::<(), std::io::Error>(())
            }
            .await;
            match result {
                Ok(()) => {
                    let _ = w.shutdown().await;
                    return;
                }
                Err(e) => warn!(peer = to, %addr, error = %e, "peer link lost; reconnecting"),
            }
        } else if was_up {
            was_up = false;
            warn!(peer = to, %addr, "peer unreachable; retrying with backoff");
        }
        if *stop.borrow() {
            return;
        }
        let jitter = rng.below(backoff_ms / 2 + 1);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(backoff_ms + jitter)) => {}
            _ = stop.changed() => return,
        }
        backoff_ms = (backoff_ms * 2).min(l.reconnect_ms_max);
    }
}

/// Accepts peer connections and feeds their messages to the event loop.
pub async fn accept_peers<P: Protocol>(listener: TcpListener, ctx: Ctx, tx: mpsc::Sender<Event<P>>) {
    let permits = Arc::new(Semaphore::new(ctx.limits.peer_connections_max));
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
        let (ctx, tx) = (ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match read_peer::<P>(stream, &ctx, &tx).await {
                Ok(()) => debug!(%from, "peer connection closed"),
                Err(e) => warn!(%from, error = %e, "closing peer connection after a bad frame"),
            }
        });
    }
}

fn reject(why: String) -> ReadError {
    ReadError::Frame(FrameError::Rejected(why))
}

async fn read_peer<P: Protocol>(stream: TcpStream, ctx: &Ctx, tx: &mpsc::Sender<Event<P>>) -> Result<(), ReadError> {
    let max = ctx.limits.frame_payload_bytes_max;
    let mut r = BufReader::new(stream);
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
    let hello: Hello = frame::payload(&first.payload).map_err(ReadError::Frame)?;
    if hello.protocol != P::NAME {
        return Err(reject(format!(
            "peer runs protocol `{}`, this node `{}`",
            hello.protocol,
            P::NAME
        )));
    }
    while let Some(f) = read_frame(&mut r, max).await? {
        check_cluster(ctx, &f)?;
        if f.kind != Kind::Peer || f.sender != src {
            return Err(reject(format!(
                "{:?} frame from {} on the link of {src}",
                f.kind, f.sender
            )));
        }
        let msg: P::Msg = frame::payload(&f.payload).map_err(ReadError::Frame)?;
        let src = Id::from(src as usize);
        if tx.send(Event::Peer { src, msg }).await.is_err() {
            return Ok(());
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
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
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
        if f.kind != Kind::Request {
            return Err(reject(format!("{:?} frame on a client connection", f.kind)));
        }
        let (tag, request): (Client, P::Request) = frame::payload(&f.payload).map_err(ReadError::Frame)?;
        if let Err(why) = crate::client::check_tag(&tag) {
            debug!(conn, %why, "invalid request tag");
            let response: Response<P::Reply> = Response::Invalid(tag, why);
            if let Ok(f) = frame::encode(
                Kind::Response,
                ctx.cluster,
                ctx.id,
                &response,
                ctx.limits.frame_payload_bytes_max,
            ) {
                // A full queue drops it, as it would a reply.
                let _ = out.try_send(f);
            }
            continue;
        }
        let msg = P::request_msg(tag, request);
        if tx.send(Event::Request { conn, msg }).await.is_err() {
            break;
        }
    }
    Ok(())
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
