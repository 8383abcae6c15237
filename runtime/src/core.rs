//! A node's event loop without I/O: the state machine that owns the actor
//! state, runs one handler at a time and decides what leaves the node and
//! when. The tokio shell (`node.rs`) feeds it events from sockets, a clock
//! and the committer thread; the deterministic simulator (`smelt-sim`)
//! feeds it the same events from a seeded scheduler. Both run this code.
//!
//! The core keeps the model checker's assumptions:
//! - *Handler atomicity*: each event runs one `handle_*` call to completion.
//! - *Durable before visible*: a handler's deltas become one log record
//!   (lsn + 1); its messages and replies are tagged with that lsn and held
//!   until the committer reports it durable. Messages of a handler that
//!   saved nothing are tagged with the last lsn (they may reveal state not
//!   yet durable). A `send early` is tagged with the lsn before its
//!   handler's record. Outputs leave in the order they were produced.
//! - Timers, `choose` outcomes and messages to itself stay inside the node
//!   and act at once (a crash loses them, with the state they came from).
//!
//! Time is a `Duration` since a start the shell chooses; the core never
//! reads a clock.
//!
//! Invariants (asserted where they are kept): lsns of records are
//! consecutive; `durable_lsn <= last_lsn`; held outputs are in tag order
//! and all newer than `durable_lsn`; nothing is released past a failure
//! that was not durable before it.

use crate::commit::Record;
use crate::connection::{self, Ctx};
use crate::node::{Exit, NodeStats};
use crate::rng::Rng;
use crate::storage::Recovered;
use smelt_support::{Effects, Id, Protocol};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, error, warn};

/// One effect of a handler, in the order the handler produced it.
pub enum Effect<P: Protocol> {
    /// `early`: the message waits for the durability of earlier handlers
    /// only, not of this one (`send early`).
    Send(Id, P::Msg, bool),
    SetTimer(P::Timer, Range<Duration>),
    CancelTimer(P::Timer),
    Choose(&'static str, Vec<P::Random>),
    Delta(P::Delta),
}

/// Whether handlers keep `ghost` variables. A deployed node does not
/// (`NoGhosts`: nothing evaluates properties there, so ghost writes are
/// compiled away); the simulator does (`KeepGhosts`), because it checks the
/// spec's invariants, which may read them. The front end guarantees that
/// no protocol code reads a ghost, so the two run the same protocol.
pub trait Ghosts: Send + 'static {
    const ON: bool;
}

pub struct NoGhosts;
impl Ghosts for NoGhosts {
    const ON: bool = false;
}

pub struct KeepGhosts;
impl Ghosts for KeepGhosts {
    const ON: bool = true;
}

/// The runtime's `Effects`: collects a handler's effects so the core can
/// persist the deltas before releasing the messages.
pub struct Fx<P: Protocol, G: Ghosts = NoGhosts> {
    pub effects: Vec<Effect<P>>,
    _g: std::marker::PhantomData<G>,
}

impl<P: Protocol, G: Ghosts> Fx<P, G> {
    pub fn new() -> Self {
        Fx {
            effects: Vec::new(),
            _g: std::marker::PhantomData,
        }
    }
}

impl<P: Protocol, G: Ghosts> Default for Fx<P, G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Protocol, G: Ghosts> Effects<P, P::Delta> for Fx<P, G> {
    const DELTAS: bool = true;
    const FULL_SAVE: bool = false;
    const GHOST: bool = G::ON;

    fn send(&mut self, dst: Id, msg: P::Msg) {
        self.effects.push(Effect::Send(dst, msg, false));
    }
    fn send_early(&mut self, dst: Id, msg: P::Msg) {
        self.effects.push(Effect::Send(dst, msg, true));
    }
    fn set_timer(&mut self, timer: P::Timer, range: Range<Duration>) {
        self.effects.push(Effect::SetTimer(timer, range));
    }
    fn cancel_timer(&mut self, timer: P::Timer) {
        self.effects.push(Effect::CancelTimer(timer));
    }
    fn choose(&mut self, key: &'static str, options: Vec<P::Random>) {
        self.effects.push(Effect::Choose(key, options));
    }
    /// Never called: with `FULL_SAVE = false` generated code reports deltas.
    fn save(&mut self, _storage: P::Storage) {}
    fn delta(&mut self, delta: P::Delta) {
        self.effects.push(Effect::Delta(delta));
    }
    fn mark(&self) -> usize {
        self.effects.len()
    }
    fn rollback(&mut self, mark: usize) {
        self.effects.truncate(mark);
    }
}

/// What leaves the node, once it may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// A message for server `to`: its encoding (`postcard` of `P::Msg`);
    /// the link numbers it and frames it (`connection.rs`).
    Peer { to: u64, msg: Vec<u8> },
    /// A response frame for client session `session` (routed by the shell
    /// to the connection that last carried one of the session's requests).
    Client { session: u64, frame: Vec<u8> },
}

/// What the committer should do next: append these records (one per
/// handler that changed durable state, consecutive lsns), then, if asked,
/// snapshot the durable state as it is after record `lsn`.
pub struct Commit<P: Protocol> {
    pub records: Vec<Record>,
    pub snapshot: Option<(u64, P::Storage)>,
}

enum Input<P: Protocol> {
    Msg(Id, P::Msg),
    Timeout(P::Timer),
    Random(P::Random),
}

pub struct Core<P: Protocol, G: Ghosts = NoGhosts> {
    actor: P,
    id: Id,
    state: P::State,
    ctx: Ctx,
    rng: Rng,
    timers: BTreeMap<P::Timer, Duration>,
    /// Pending `choose` outcomes by key; a later `choose` of the same key
    /// replaces an earlier one, an empty one cancels it (stateright's rule).
    choices: BTreeMap<&'static str, P::Random>,
    /// Messages the node sent to itself.
    local: VecDeque<P::Msg>,
    durable_lsn: u64,
    last_lsn: u64,
    /// Records not yet handed to the committer.
    batch: Vec<Record>,
    /// Records handed over, not yet durable: (lsn, bytes).
    unsynced: VecDeque<(u64, usize)>,
    unsynced_bytes: usize,
    /// Outputs waiting for the fsync of record `.0`, in production order.
    held: VecDeque<(u64, Out)>,
    /// Outputs that may leave now.
    ready: Vec<Out>,
    /// Log bytes since the last snapshot request.
    log_bytes: u64,
    /// The size of the last snapshot, as the committer reports it.
    last_snapshot_bytes: u64,
    fx: Fx<P, G>,
    stats: Arc<NodeStats>,
    failed: Option<String>,
    stopping: bool,
    now: Duration,
}

impl<P: Protocol, G: Ghosts> Core<P, G> {
    /// Starts a node: restores the recovered durable state and runs the
    /// start handler, whose effects are routed like any other handler's.
    pub fn start(
        actor: P,
        id: Id,
        ctx: Ctx,
        seed: u64,
        recovered: &Recovered<P::Storage>,
        stats: Arc<NodeStats>,
        now: Duration,
    ) -> Core<P, G> {
        let mut fx = Fx::new();
        let state = actor.handle_start(id, recovered.storage.as_ref(), recovered.boot, &mut fx);
        let mut core = Core {
            actor,
            id,
            state,
            ctx,
            rng: Rng::new(seed),
            timers: BTreeMap::new(),
            choices: BTreeMap::new(),
            local: VecDeque::new(),
            durable_lsn: recovered.last_lsn,
            last_lsn: recovered.last_lsn,
            batch: Vec::new(),
            unsynced: VecDeque::new(),
            unsynced_bytes: 0,
            held: VecDeque::new(),
            ready: Vec::new(),
            log_bytes: recovered.log_bytes,
            last_snapshot_bytes: recovered.snapshot_bytes,
            fx,
            stats,
            failed: None,
            stopping: false,
            now,
        };
        core.after_handler();
        core
    }

    pub fn id(&self) -> Id {
        self.id
    }

    /// The actor state (for the simulator's properties and for tests).
    pub fn state(&self) -> &P::State {
        &self.state
    }

    /// The spec's `ready when` for this node (`None`: it declares none).
    pub fn spec_ready(&self) -> Option<bool> {
        self.actor.ready(self.id, &self.state)
    }

    /// The spec's `metric` declarations for this node, evaluated.
    pub fn spec_metrics(&self) -> Vec<(&'static str, i128)> {
        self.actor.spec_metrics(self.id, &self.state)
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn last_lsn(&self) -> u64 {
        self.last_lsn
    }

    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    /// Whether the core takes new events: not when stopping or failed, and
    /// not while too much awaits an fsync (the disk sets the pace).
    pub fn accepting(&self) -> bool {
        !self.stopping
            && self.failed.is_none()
            && self.held.len() < self.ctx.limits.held_len_max
            && self.unsynced_bytes < self.ctx.limits.unsynced_bytes_max
    }

    /// Local work (choices, messages to itself) is waiting for `tick`.
    pub fn busy(&self) -> bool {
        self.accepting() && (!self.local.is_empty() || !self.choices.is_empty())
    }

    /// When the next timer is due, if any is armed.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.values().min().copied()
    }

    /// Stop taking events; `finished` says when everything durable left.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// The core is done when it is stopping (asked to, or failed) and every
    /// record is durable and every held output released.
    pub fn finished(&self) -> Option<Exit> {
        if !(self.stopping || self.failed.is_some()) {
            return None;
        }
        if !self.batch.is_empty() || self.durable_lsn < self.last_lsn || !self.held.is_empty() {
            return None;
        }
        Some(match &self.failed {
            Some(e) => Exit::HandlerFailed(e.clone()),
            None => Exit::Stopped,
        })
    }

    /// A message from server `src`.
    pub fn peer_message(&mut self, src: Id, msg: P::Msg, now: Duration) {
        self.now = self.now.max(now);
        self.handle(Input::Msg(src, msg));
    }

    /// A client request (`Msg::Request`, its tag checked): the protocol
    /// sees it as sent by the session (`Client::node`).
    pub fn client_request(&mut self, msg: P::Msg, now: Duration) {
        self.now = self.now.max(now);
        let Some(smelt_support::ClientMsg::Request(tag, _)) = P::client_msg(&msg) else {
            return;
        };
        self.handle(Input::Msg(tag.node(), msg));
    }

    /// Runs the timers due at `now`, then the choices and self-messages
    /// pending at the start of the call (any they create wait for the next
    /// turn, so I/O is never starved).
    pub fn tick(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if !self.accepting() {
            return;
        }
        if !self.timers.is_empty() {
            let mut due: Vec<(Duration, P::Timer)> = self
                .timers
                .iter()
                .filter(|(_, at)| **at <= self.now)
                .map(|(t, at)| (*at, t.clone()))
                .collect();
            due.sort_by_key(|(at, _)| *at);
            for (_, t) in due {
                // An earlier timeout handler may have cancelled or re-armed it.
                if self.timers.get(&t).is_some_and(|at| *at <= self.now) {
                    self.timers.remove(&t);
                    self.handle(Input::Timeout(t));
                }
            }
        }
        if !self.accepting() {
            return;
        }
        for (_, r) in std::mem::take(&mut self.choices) {
            self.handle(Input::Random(r));
        }
        for _ in 0..self.local.len() {
            let Some(m) = self.local.pop_front() else { break };
            self.handle(Input::Msg(self.id, m));
        }
    }

    fn handle(&mut self, input: Input<P>) {
        if self.failed.is_some() {
            return;
        }
        // The state is handed over owned, so the generated handler changes
        // it in place: a handler's CPU cost follows what it changes, not the
        // size of the state (a long log is not copied per append).
        let kind = match &input {
            Input::Msg(_, msg) if matches!(P::client_msg(msg), Some(smelt_support::ClientMsg::Request(..))) => 1,
            Input::Msg(..) => 0,
            Input::Timeout(_) => 2,
            Input::Random(_) => 3,
        };
        self.stats.handler_kinds[kind].fetch_add(1, Ordering::Relaxed);
        let mut cow: Cow<'_, P::NodeState> = Cow::Owned(std::mem::take(&mut self.state));
        match input {
            Input::Msg(src, msg) => self.actor.handle_msg(self.id, &mut cow, src, msg, &mut self.fx),
            Input::Timeout(t) => self.actor.handle_timeout(self.id, &mut cow, &t, &mut self.fx),
            Input::Random(r) => self.actor.handle_random(self.id, &mut cow, &r, &mut self.fx),
        }
        self.state = cow.into_owned();
        self.after_handler();
    }

    /// Persists, schedules and routes one handler's effects.
    fn after_handler(&mut self) {
        self.stats.handlers.fetch_add(1, Ordering::Relaxed);
        // A handler error is recorded in the state (the generated wrapper
        // rolled its effects back).
        if self.failed.is_none() {
            if let Some(e) = P::failure(&self.state) {
                error!(node = self.ctx.id, error = %e, "handler failed; the node stops (fail-stop)");
                self.failed = Some(e.to_string());
            }
        }
        let mut deltas = Vec::new();
        let mut sends = Vec::new();
        // What the state was before this handler: an early send may leave
        // once that is durable. (The checker explores the crash that then
        // loses this handler's writes but not the message: a torn step.)
        let before = self.last_lsn;
        for e in self.fx.effects.drain(..) {
            match e {
                Effect::Delta(d) => deltas.push(d),
                Effect::Send(dst, msg, early) => sends.push((dst, msg, early)),
                Effect::SetTimer(t, range) => {
                    let at = self.now + self.rng.duration_in(&range);
                    self.timers.insert(t, at);
                }
                Effect::CancelTimer(t) => {
                    self.timers.remove(&t);
                }
                Effect::Choose(key, options) => {
                    if options.is_empty() {
                        self.choices.remove(key);
                    } else {
                        let i = self.rng.below(options.len() as u64) as usize;
                        if let Some(r) = options.into_iter().nth(i) {
                            self.choices.insert(key, r);
                        }
                    }
                }
            }
        }
        if !deltas.is_empty() {
            match postcard::to_stdvec(&deltas) {
                Ok(payload) if payload.len() as u64 <= crate::storage::RECORD_BYTES_MAX => {
                    self.last_lsn += 1;
                    let bytes = payload.len() + crate::storage::RECORD_HEADER_LEN as usize;
                    self.unsynced.push_back((self.last_lsn, bytes));
                    self.unsynced_bytes += bytes;
                    self.log_bytes += bytes as u64;
                    debug_assert!(self.batch.last().is_none_or(|r| r.lsn + 1 == self.last_lsn));
                    self.batch.push(Record {
                        lsn: self.last_lsn,
                        payload,
                    });
                }
                Ok(payload) => {
                    // Dropping the deltas would make memory and disk differ.
                    self.failed = Some(format!("one handler's durable changes take {} bytes", payload.len()));
                    error!(
                        node = self.ctx.id,
                        "a handler's durable changes exceed the record limit; stopping"
                    );
                    return;
                }
                Err(e) => {
                    self.failed = Some(format!("cannot encode durable changes: {e}"));
                    error!(node = self.ctx.id, error = %e, "cannot encode durable changes; stopping");
                    return;
                }
            }
        }
        let tag = self.last_lsn;
        for (dst, msg, early) in sends {
            self.route(if early { before } else { tag }, dst, msg);
        }
    }

    fn route(&mut self, tag: u64, dst: Id, msg: P::Msg) {
        let d = usize::from(dst) as u64;
        let out = if dst == self.id {
            if self.local.len() < self.ctx.limits.local_queue_len_max {
                self.local.push_back(msg);
            } else {
                // Dropping it would be a loss the model does not make.
                self.failed = Some(format!(
                    "more than {} messages to itself are waiting",
                    self.ctx.limits.local_queue_len_max
                ));
                error!(node = self.ctx.id, "too many messages to itself; stopping");
            }
            return;
        } else if d < self.ctx.servers {
            match postcard::to_stdvec(&msg) {
                Ok(bytes) if bytes.len() + 64 <= self.ctx.limits.frame_payload_bytes_max => {
                    Out::Peer { to: d, msg: bytes }
                }
                Ok(bytes) => {
                    warn!(
                        node = self.ctx.id,
                        to = d,
                        bytes = bytes.len(),
                        "message not sent: larger than a frame"
                    );
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    warn!(node = self.ctx.id, to = d, error = %e, "message not sent");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        } else {
            match connection::response_frame::<P>(&self.ctx, &msg) {
                Some((session, Ok(frame))) => Out::Client { session, frame },
                Some((_, Err(e))) => {
                    warn!(node = self.ctx.id, error = %e, "reply not sent");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                None => {
                    debug!(
                        node = self.ctx.id,
                        to = d,
                        "a non-client message to a client id is dropped"
                    );
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        };
        if (tag <= self.durable_lsn && self.held.is_empty()) || self.ctx.limits.unsafe_release_before_fsync {
            self.release(out);
        } else {
            debug_assert!(self.held.back().is_none_or(|(t, _)| *t <= tag));
            self.held.push_back((tag, out));
        }
    }

    fn release(&mut self, out: Out) {
        self.stats.released.fetch_add(1, Ordering::Relaxed);
        self.ready.push(out);
    }

    /// The committer reports everything up to `lsn` durable.
    pub fn durable(&mut self, lsn: u64) {
        debug_assert!(
            lsn <= self.last_lsn,
            "durable {lsn} beyond the last record {}",
            self.last_lsn
        );
        self.durable_lsn = self.durable_lsn.max(lsn);
        while self.unsynced.front().is_some_and(|(l, _)| *l <= self.durable_lsn) {
            if let Some((_, b)) = self.unsynced.pop_front() {
                self.unsynced_bytes -= b;
            }
        }
        while self.held.front().is_some_and(|(l, _)| *l <= self.durable_lsn) {
            if let Some((_, out)) = self.held.pop_front() {
                self.release(out);
            }
        }
    }

    /// The committer finished a snapshot of this many bytes.
    pub fn snapshot_taken(&mut self, bytes: u64) {
        self.last_snapshot_bytes = bytes;
    }

    /// What may leave the node now, in order.
    pub fn take_outputs(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.ready)
    }

    /// This turn's records for the committer and, when the log has grown
    /// past the last snapshot, a snapshot of the state after them.
    pub fn take_commit(&mut self) -> Option<Commit<P>> {
        if self.batch.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.batch);
        // A failed handler's changes to the state may be partly applied in
        // place while its deltas were rolled back: after a failure the
        // state is no longer what the log says, so it is never snapshotted.
        let mut snapshot = None;
        if self.failed.is_none()
            && self.log_bytes >= self.ctx.limits.snapshot_log_bytes_min.max(self.last_snapshot_bytes)
        {
            if let Some(storage) = P::storage_of(&self.state) {
                debug!(
                    node = self.ctx.id,
                    lsn = self.last_lsn,
                    log_bytes = self.log_bytes,
                    "snapshot requested"
                );
                snapshot = Some((self.last_lsn, storage));
                self.log_bytes = 0;
            }
        }
        Some(Commit { records, snapshot })
    }
}
