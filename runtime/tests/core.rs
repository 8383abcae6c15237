//! The node's event-loop core (`smelt_runtime::core::Core`) driven
//! directly, on an injected clock: no sockets, no disk, no sleeps. Every
//! verdict depends only on the `now` the test hands the core and on the
//! seed of the node's RNG.
//!
//! It pins two rows of ARCHITECTURE.md's "The runtime's contract with the
//! model":
//! - *Self-messages*: up to `Limits::local_queue_len_max` (4096) messages a
//!   node sent itself may wait, none lost or reordered; one more stops the
//!   node (a handler failure, exit 1) rather than drop it.
//! - *Timers*: `set` of an armed timer replaces its deadline with a new one
//!   drawn from now (the countdown starts over), `cancel` disarms it, and a
//!   crash loses every timer.
//!
//! The spec, `tests/specs/flood.sm`, lets a client request make the server
//! send itself a burst of numbered notes, or arm or cancel its one timer
//! (`beat: 100ms..120ms`); its state counts notes handled, notes handled
//! out of order, and timeouts.

use smelt_runtime::connection::Ctx;
use smelt_runtime::core::{Core, Out};
use smelt_runtime::node::{Exit, Limits, NodeStats};
use smelt_runtime::storage::Recovered;
use smelt_support::{Boot, Client, Id, Layout, Protocol, Session};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

smelt::protocol!("tests/specs/flood.sm");

use flood::{Flood, Request};

/// `beat`'s range as flood.sm declares it.
const BEAT_MIN: Duration = Duration::from_millis(100);
const BEAT_MAX: Duration = Duration::from_millis(120);

/// Seeds for the node's RNG: each test runs for all of them, so no verdict
/// rests on one lucky timer draw.
const SEEDS: std::ops::Range<u64> = 0..64;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Nothing durable: a node's first start, or a restart of this spec (it
/// has no durable variables, so a crash keeps nothing).
fn nothing_recovered() -> Recovered<<Flood as Protocol>::Durable> {
    Recovered {
        storage: None,
        boot: Boot::First,
        last_lsn: 0,
        snapshot_lsn: 0,
        snapshot_bytes: 0,
        records_replayed: 0,
        log_bytes: 0,
        torn_tail: None,
    }
}

/// A node of a one-server cluster, as the shell builds it (`NoGhosts`,
/// default limits), started at `now`.
struct Node {
    core: Core<Flood>,
    stats: Arc<NodeStats>,
    seq: u64,
}

impl Node {
    fn start(seed: u64, now: Duration) -> Node {
        let layout = Layout::new(&[1], 0);
        let id = Id::from(0);
        let actor = Flood::server(id, &layout).expect("node 0 is a server");
        let ctx = Ctx {
            cluster: 1,
            id: 0,
            servers: 1,
            limits: Limits::default(),
            tls: None,
            tls_refused: Default::default(),
            admin: None,
            peer_hellos: Default::default(),
        };
        let stats = Arc::new(NodeStats::default());
        let core = Core::start(actor, id, ctx, seed, &nothing_recovered(), stats.clone(), now);
        Node { core, stats, seq: 0 }
    }

    /// Delivers one client request at `now` (from one client session).
    fn request(&mut self, request: Request, now: Duration) {
        self.seq += 1;
        let tag = Client {
            session: Session { epoch: 1, id: 1 << 32 },
            seq: self.seq,
        };
        self.core.client_request(Flood::request_msg(tag, request), now);
    }

    /// A variable of the server's state (all of flood.sm's are `u64`).
    fn var(&self, name: &str) -> u64 {
        let fields = Flood::describe_fields(self.core.state());
        let (_, v) = fields
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no variable {name} in {fields:?}"));
        v.parse().unwrap_or_else(|e| panic!("{name} = {v}: {e}"))
    }

    fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// Self-messages: the 4096 bound.

/// The documented bound, and the exit code a handler failure gives.
/// Fails if `Limits::default().local_queue_len_max` or
/// `cli::EXIT_HANDLER_FAILED` changes (then ARCHITECTURE.md is stale).
#[test]
fn the_self_message_bound_is_4096_and_stopping_exits_1() {
    assert_eq!(Limits::default().local_queue_len_max, 4096);
    assert_eq!(smelt_runtime::cli::EXIT_HANDLER_FAILED, 1);
}

/// Exactly 4096 waiting self-messages are kept — from one handler, or
/// gathered over several handlers before the node gets to them — and all
/// are handled, in sending order, at the next turn; the bound counts the
/// messages waiting, not those ever sent, so it holds again after a turn.
///
/// Fails if the bound check in `core.rs` (`route`) is made stricter (e.g.
/// `self.local.len() + 1 < local_queue_len_max`: the 4096th stops the
/// node), if a self-message is dropped or reordered on the way (`handled`
/// or `misordered`), or if the bound counts messages ever sent instead of
/// those waiting (the second round would stop the node).
#[test]
fn self_messages_up_to_the_bound_all_arrive_in_order() {
    let mut node = Node::start(1, Duration::ZERO);
    // One handler sends 4096.
    node.request(Request::Burst { n: 4096 }, ms(1));
    assert_eq!(node.core.failed(), None);
    assert!(node.core.busy(), "the notes wait for the next turn");
    assert_eq!(node.var("handled"), 0, "a handler's self-messages wait for tick");
    node.core.tick(ms(1));
    assert_eq!(node.var("sent"), 4096);
    assert_eq!(node.var("handled"), 4096);
    assert_eq!(node.var("misordered"), 0);
    assert!(!node.core.busy());

    // Three handlers fill the queue to the brim between two turns.
    node.request(Request::Burst { n: 4000 }, ms(2));
    node.request(Request::Burst { n: 95 }, ms(2));
    node.request(Request::Burst { n: 1 }, ms(2));
    assert_eq!(node.core.failed(), None);
    assert!(node.core.accepting());
    node.core.tick(ms(2));
    assert_eq!(node.var("handled"), 2 * 4096);
    assert_eq!(node.var("misordered"), 0);
    assert_eq!(node.dropped(), 0);
    assert_eq!(node.core.failed(), None);
    assert_eq!(node.core.finished(), None, "the node goes on");
    // Every request was answered, nothing else left the node.
    let outs = node.core.take_outputs();
    assert_eq!(outs.len(), 4);
    assert!(outs.iter().all(|o| matches!(o, Out::Client { .. })));
}

/// One self-message past 4096 waiting stops the node: the core records a
/// handler failure (the shell then exits 1), takes no further events and
/// does not handle the queued ones; nothing was dropped on the way and the
/// failing handler ran to its end (`sent` counts every note).
///
/// Fails if the check in `route` is loosened (`<=`: the 4097th is queued
/// and the node goes on), or replaced by dropping the message (with or
/// without counting it in `stats.dropped`): then `failed()` is `None`.
#[test]
fn one_self_message_past_the_bound_stops_the_node() {
    // Past the bound within one handler, and across handlers.
    for bursts in [&[4097][..], &[4096, 1], &[2048, 2047, 2]] {
        let mut node = Node::start(2, Duration::ZERO);
        for &n in bursts {
            assert_eq!(node.core.failed(), None, "{bursts:?}: stopped before the 4097th");
            node.request(Request::Burst { n }, ms(1));
        }
        let sent: u64 = bursts.iter().sum();
        assert_eq!(node.var("sent"), sent, "{bursts:?}");
        let err = node.core.failed().map(String::from);
        assert_eq!(
            err.as_deref(),
            Some("more than 4096 messages to itself are waiting"),
            "{bursts:?}"
        );
        assert_eq!(node.dropped(), 0, "{bursts:?}: a message was dropped");
        assert!(!node.core.accepting());
        assert!(!node.core.busy());
        // Nothing durable is outstanding, so the node is done: with the
        // exit the shell maps to `EXIT_HANDLER_FAILED` (1).
        assert_eq!(node.core.finished(), Some(Exit::HandlerFailed(err.unwrap_or_default())));
        // It stopped: later turns and events run no handler.
        let handlers = node.stats.handlers.load(Ordering::Relaxed);
        node.core.tick(ms(2));
        node.request(Request::Burst { n: 1 }, ms(3));
        node.request(Request::Arm, ms(3));
        node.core.tick(ms(1000));
        assert_eq!(node.stats.handlers.load(Ordering::Relaxed), handlers, "{bursts:?}");
        assert_eq!(node.var("handled"), 0, "{bursts:?}");
        assert_eq!(node.var("sent"), sent, "{bursts:?}");
        assert_eq!(node.core.next_deadline(), None, "{bursts:?}");
    }
}

// ---------------------------------------------------------------------------
// Timers.

/// `set` of an armed timer starts its countdown over: armed at 0 (deadline
/// in 100..120ms), set again at 99ms (just before the first deadline could
/// come), it does not fire at its first deadline, fires once, exactly at
/// its new deadline, which lies within `beat`'s range after the second
/// set — never twice.
///
/// Fails if `set` of an armed timer kept the old deadline (e.g.
/// `self.timers.entry(t).or_insert(at)` in `after_handler`): it fires at the
/// first deadline. Fails if both deadlines were kept (two timeouts), or if
/// the new deadline were drawn from an earlier time than the handler's.
#[test]
fn setting_an_armed_timer_restarts_its_countdown() {
    for seed in SEEDS {
        let mut node = Node::start(seed, Duration::ZERO);
        assert_eq!(node.core.next_deadline(), None);
        node.request(Request::Arm, Duration::ZERO);
        let first = node.core.next_deadline().expect("armed");
        assert!(
            (BEAT_MIN..BEAT_MAX).contains(&first),
            "seed {seed}: first deadline {first:?}"
        );

        let again = ms(99);
        node.core.tick(again);
        assert_eq!(node.var("fired"), 0, "seed {seed}: fired before its deadline");
        node.request(Request::Arm, again);
        let second = node.core.next_deadline().expect("still armed");
        assert!(
            (again + BEAT_MIN..again + BEAT_MAX).contains(&second),
            "seed {seed}: set at {again:?}, deadline {second:?}"
        );
        assert!(second > first, "seed {seed}: the ranges do not overlap");

        // The old deadline passes: nothing fires, the new one stays.
        node.core.tick(first);
        assert_eq!(
            node.var("fired"),
            0,
            "seed {seed}: fired at the replaced deadline {first:?}"
        );
        assert_eq!(node.core.next_deadline(), Some(second), "seed {seed}");
        node.core.tick(second - Duration::from_nanos(1));
        assert_eq!(node.var("fired"), 0, "seed {seed}: fired before {second:?}");

        // The new one fires, once.
        node.core.tick(second);
        assert_eq!(node.var("fired"), 1, "seed {seed}: did not fire at {second:?}");
        assert_eq!(node.core.next_deadline(), None, "seed {seed}");
        node.core.tick(ms(10_000));
        assert_eq!(node.var("fired"), 1, "seed {seed}: fired again");
        assert_eq!(node.core.failed(), None);
    }
}

/// The same with the clock stepping in 1 ms turns, as a shell whose loop
/// wakes often: the timeout comes at the first turn at or after the new
/// deadline, so within `beat`'s range (rounded up to a turn) of the last
/// set and never at the old deadline; here it is re-armed several times
/// in a row, each time before the previous deadline.
///
/// Fails for the same changes as `setting_an_armed_timer_restarts_its_countdown`.
#[test]
fn a_timer_reset_again_and_again_never_fires_until_left_alone() {
    for seed in SEEDS {
        let mut node = Node::start(seed, Duration::ZERO);
        let mut fired_at = None;
        let mut last_set = Duration::ZERO;
        for t in 0..=1000u64 {
            let now = ms(t);
            // Re-armed every 50 ms up to 400 ms: always before the
            // deadline (at least 100 ms after the previous set).
            if t <= 400 && t % 50 == 0 {
                node.request(Request::Arm, now);
                last_set = now;
            }
            node.core.tick(now);
            if fired_at.is_none() && node.var("fired") > 0 {
                fired_at = Some(now);
            }
        }
        let fired_at = fired_at.unwrap_or_else(|| panic!("seed {seed}: never fired"));
        assert_eq!(last_set, ms(400));
        assert!(
            fired_at >= last_set + BEAT_MIN && fired_at <= last_set + BEAT_MAX,
            "seed {seed}: last set at {last_set:?}, fired at {fired_at:?}"
        );
        assert_eq!(node.var("fired"), 1, "seed {seed}");
    }
}

/// `cancel` disarms: a cancelled timer never fires, however far the clock
/// runs; cancelling an unarmed timer is harmless; and arming it again
/// afterwards counts from the new `set`.
///
/// Fails if `Effect::CancelTimer` in `after_handler` did not remove the
/// timer (it fires at its deadline), or if a cancel left a stale deadline
/// behind that a later `set` did not replace.
#[test]
fn a_cancelled_timer_never_fires() {
    for seed in SEEDS {
        let mut node = Node::start(seed, Duration::ZERO);
        node.request(Request::Disarm, Duration::ZERO);
        assert_eq!(node.core.next_deadline(), None);

        node.request(Request::Arm, Duration::ZERO);
        let deadline = node.core.next_deadline().expect("armed");
        node.request(Request::Disarm, ms(50));
        assert_eq!(node.core.next_deadline(), None, "seed {seed}: still armed after cancel");
        for now in [deadline, BEAT_MAX, ms(1000), ms(3_600_000)] {
            node.core.tick(now);
            assert_eq!(node.var("fired"), 0, "seed {seed}: a cancelled timer fired at {now:?}");
        }

        // Armed again: counts from this set only.
        let set = ms(3_600_000);
        node.request(Request::Arm, set);
        let again = node.core.next_deadline().expect("armed");
        assert!(
            (set + BEAT_MIN..set + BEAT_MAX).contains(&again),
            "seed {seed}: {again:?}"
        );
        node.core.tick(again - Duration::from_nanos(1));
        assert_eq!(node.var("fired"), 0, "seed {seed}");
        node.core.tick(again);
        assert_eq!(node.var("fired"), 1, "seed {seed}");
        assert_eq!(node.core.failed(), None);
    }
}

/// A crash loses every timer (and every waiting message to itself): they
/// live only in the core's memory. A crashed node's core is dropped and a
/// new one starts from what was durable — here nothing — on a clock that
/// starts again at zero, as `node::start` and the simulator do.
///
/// Fails if timers or self-messages were carried into the restarted core
/// (e.g. persisted with the durable state and restored in `Core::start`):
/// the timer would fire or the notes would be handled after the restart.
#[test]
fn a_crash_loses_all_timers() {
    for seed in SEEDS {
        let mut node = Node::start(seed, Duration::ZERO);
        node.request(Request::Arm, Duration::ZERO);
        node.request(Request::Burst { n: 10 }, Duration::ZERO);
        assert!(node.core.next_deadline().is_some());
        assert!(node.core.busy());
        drop(node); // the crash

        let mut node = Node::start(seed, Duration::ZERO);
        assert_eq!(
            node.core.next_deadline(),
            None,
            "seed {seed}: a timer survived the crash"
        );
        assert!(!node.core.busy(), "seed {seed}: local work survived the crash");
        for now in [Duration::ZERO, BEAT_MIN, BEAT_MAX, ms(10_000)] {
            node.core.tick(now);
        }
        assert_eq!(node.var("fired"), 0, "seed {seed}");
        assert_eq!(node.var("handled"), 0, "seed {seed}");
    }
}
