//! Unit tests of generated actors, driven directly through the `handle_*`
//! entry points the model checker and the runtime share: durable saves only
//! on change, guard no-ops, handler errors and their rollback, the order of
//! `goto`/`exit`/`entry`, durable state across a restart, and deltas.
//!
//! `Paxos` and `TwoPhaseCommit` come from the library; two tiny specs in
//! `tests/data/` cover what those do not exercise (a durable list, an
//! overflow after effects, exit/entry chains).

use smelt::support::stateright::actor::{Actor, Command, Id, Out};
use smelt::support::{Boot, Effects, ErrorKind, HandlerError, Layout, Loc, Protocol};
use smelt_specs::paxos::{self, Paxos};
use smelt_specs::two_phase_commit::{self as tpc, TwoPhaseCommit};
use std::borrow::Cow;
use std::ops::Range;
use std::time::Duration;

smelt::protocol!("tests/data/journal.sm");
smelt::protocol!("tests/data/order.sm");

/// An effect, comparable (stateright's `Command` is not `PartialEq`).
#[derive(Debug, PartialEq)]
enum Event<A: Actor, D> {
    Send(Id, A::Msg),
    SetTimer(A::Timer, Range<Duration>),
    CancelTimer(A::Timer),
    Choose(String, Vec<A::Random>),
    Save(A::Storage),
    Delta(D),
}

/// The effects a handler left in stateright's `Out`.
type Cmd<P> = Event<P, <P as Protocol>::Delta>;

fn events<P: Protocol>(out: Out<P>) -> Vec<Cmd<P>> {
    out.into_iter()
        .map(|c| match c {
            Command::Send(dst, msg) => Event::Send(dst, msg),
            Command::SetTimer(t, range) => Event::SetTimer(t, range),
            Command::CancelTimer(t) => Event::CancelTimer(t),
            Command::ChooseRandom(key, options) => Event::Choose(key, options),
            Command::Save(s) => Event::Save(s),
        })
        .collect()
}

/// The server `id` of a cluster with `servers` nodes per role.
fn node<P: Protocol>(servers: &[u64], id: usize) -> P {
    P::server(Id::from(id), &Layout::new(servers, 0)).expect("a server id")
}

/// Starts a node with stateright's `Out`; returns the state and effects.
fn start<P: Protocol>(actor: &P, id: usize, storage: Option<&P::Storage>) -> (P::State, Vec<Cmd<P>>) {
    let mut out = Out::new();
    let boot = if storage.is_some() { Boot::Restart } else { Boot::First };
    let state = actor.handle_start(Id::from(id), storage, boot, &mut out);
    (state, events(out))
}

/// Delivers `msg` from `src` to node `id` in `state`; returns the effects
/// and whether the state was copied (a `Cow::Owned`) — i.e. changed.
fn deliver<P: Protocol>(actor: &P, id: usize, state: &mut P::State, src: usize, msg: P::Msg) -> (Vec<Cmd<P>>, bool) {
    let mut out = Out::new();
    let mut cow = Cow::Borrowed(&*state);
    actor.handle_msg(Id::from(id), &mut cow, Id::from(src), msg, &mut out);
    let owned = matches!(cow, Cow::Owned(_));
    let next = cow.into_owned();
    *state = next;
    (events(out), owned)
}

fn saves<A: Actor, D>(cmds: &[Event<A, D>]) -> usize {
    cmds.iter().filter(|c| matches!(c, Event::Save(_))).count()
}

/// The position (line, column) of `needle` in the spec text, for checking
/// the location a handler error reports.
fn loc_in(spec: &str, line_containing: &str, needle: &str) -> Loc {
    let (i, line) = spec
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(line_containing))
        .unwrap_or_else(|| panic!("no line with `{line_containing}`"));
    let col = line[..line.find(needle).expect("needle in line")].chars().count();
    Loc(i as u32 + 1, col as u32 + 1, 0)
}

/// An `Effects` like the runtime's: deltas, no full saves, every effect
/// recorded in order.
#[derive(Debug)]
struct Recorder<A: Actor, D> {
    events: Vec<Event<A, D>>,
}

impl<A: Actor, D> Recorder<A, D> {
    fn new() -> Self {
        Recorder { events: Vec::new() }
    }
}

impl<A: Actor, D> Effects<A, D> for Recorder<A, D> {
    const DELTAS: bool = true;
    const FULL_SAVE: bool = false;
    const GHOST: bool = false;

    fn send(&mut self, dst: Id, msg: A::Msg) {
        self.events.push(Event::Send(dst, msg));
    }
    fn set_timer(&mut self, timer: A::Timer, range: Range<Duration>) {
        self.events.push(Event::SetTimer(timer, range));
    }
    fn cancel_timer(&mut self, timer: A::Timer) {
        self.events.push(Event::CancelTimer(timer));
    }
    fn choose(&mut self, key: &'static str, options: Vec<A::Random>) {
        self.events.push(Event::Choose(key.to_string(), options));
    }
    fn save(&mut self, storage: A::Storage) {
        self.events.push(Event::Save(storage));
    }
    fn delta(&mut self, delta: D) {
        self.events.push(Event::Delta(delta));
    }
    fn mark(&self) -> usize {
        self.events.len()
    }
    fn rollback(&mut self, mark: usize) {
        self.events.truncate(mark);
    }
}

// ---------------------------------------------------------------- Paxos --

const PAXOS: &[u64] = &[5];

fn server(state: &paxos::State) -> &paxos::ServerState {
    match state {
        paxos::State::Server(s) => s,
        other => panic!("not a server: {other:?}"),
    }
}

fn storage(state: &paxos::State) -> paxos::ServerStorage {
    paxos::ServerStorage::of(server(state))
}

/// Request 1 of the client whose session is named by node 9.
fn client9() -> smelt::support::Client {
    smelt::support::Client {
        session: smelt::support::Session { epoch: 0, id: 9 },
        seq: 1,
    }
}

fn put(v: u64) -> paxos::Msg {
    paxos::Msg::Request(client9(), paxos::Request::Put { v })
}

fn proposal(value: u64) -> paxos::Proposal {
    paxos::Proposal {
        client: client9(),
        value,
    }
}

fn accept(round: u64, leader: usize, value: u64) -> paxos::Msg {
    paxos::Msg::Accept(paxos::Accept {
        ballot: (round, Id::from(leader)),
        proposal: proposal(value),
    })
}

#[test]
fn paxos_fresh_start_saves_nothing() {
    let a: Paxos = node(PAXOS, 0);
    let (state, cmds) = start(&a, 0, None);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(server(&state).ballot, (0, Id::from(0)));
    assert_eq!(server(&state).phase, paxos::ServerPhase::Undecided);
}

#[test]
fn paxos_volatile_change_saves_nothing() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    // A request makes node 0 a leader: a new (durable) ballot.
    let (cmds, _) = deliver(&a, 0, &mut state, 9, put(7));
    assert_eq!(saves(&cmds), 1);
    let ballot = server(&state).ballot;
    assert_eq!(ballot, (1, Id::from(0)));
    // One promise of five: only the volatile `prepares` changes.
    let prepared = paxos::Msg::Prepared(paxos::Prepared {
        ballot,
        last_accepted: None,
    });
    let before = storage(&state);
    let (cmds, changed) = deliver(&a, 0, &mut state, 1, prepared);
    assert!(changed, "the promise is recorded");
    assert!(cmds.is_empty(), "no quorum yet, and nothing durable changed: {cmds:?}");
    assert_eq!(server(&state).prepares.len(), 2);
    assert_eq!(storage(&state), before);
}

#[test]
fn paxos_durable_change_saves_once_at_the_end() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    // `Accept` changes two durable variables: one save, after the send.
    let (cmds, changed) = deliver(&a, 0, &mut state, 2, accept(3, 2, 7));
    assert!(changed);
    let expected: Vec<Cmd<Paxos>> = vec![
        Event::Send(
            Id::from(2),
            paxos::Msg::Accepted(paxos::Accepted {
                ballot: (3, Id::from(2)),
            }),
        ),
        Event::Save(paxos::Storage::Server(paxos::ServerStorage {
            ballot: (3, Id::from(2)),
            accepted: Some(((3, Id::from(2)), proposal(7))),
        })),
    ];
    assert_eq!(cmds, expected);
    // The request handler changes the ballot (durable) and three volatile
    // variables, then broadcasts: the one save is the last effect.
    let (cmds, _) = deliver(&a, 0, &mut state, 9, put(8));
    assert_eq!(saves(&cmds), 1, "{cmds:?}");
    assert_eq!(cmds.len(), 5, "four prepares and a save: {cmds:?}");
    assert!(matches!(cmds.last(), Some(Event::Save(_))), "{cmds:?}");
}

#[test]
fn paxos_reapplying_the_same_value_saves_nothing() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    deliver(&a, 0, &mut state, 2, accept(3, 2, 7));
    let before = state.clone();
    // The same `Accept` again passes the guard (`ballot <= m.ballot`) and
    // writes the values the node already has: it answers, saves nothing
    // and leaves the state borrowed.
    let (cmds, changed) = deliver(&a, 0, &mut state, 2, accept(3, 2, 7));
    assert!(!changed, "writing equal values must not copy the state");
    assert_eq!(saves(&cmds), 0, "{cmds:?}");
    assert_eq!(cmds.len(), 1, "only the `Accepted` reply: {cmds:?}");
    assert_eq!(state, before);
}

#[test]
fn paxos_guard_no_op_leaves_the_state_borrowed() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    deliver(&a, 0, &mut state, 2, accept(3, 2, 7));
    let before = state.clone();
    for ballot in [(1, Id::from(4)), (3, Id::from(1)), (3, Id::from(2))] {
        // `on Prepare(m) when ballot < m.ballot`: a lower or equal ballot.
        let prepare = paxos::Msg::Prepare(paxos::Prepare { ballot });
        let (cmds, changed) = deliver(&a, 0, &mut state, 1, prepare);
        assert!(!changed, "a guard that fails must not copy the state ({ballot:?})");
        assert!(cmds.is_empty(), "{cmds:?}");
    }
    // `Accepted` for another ballot, and a lower `Accept`.
    let stale = paxos::Msg::Accepted(paxos::Accepted {
        ballot: (2, Id::from(0)),
    });
    for msg in [stale, accept(2, 4, 1)] {
        let (cmds, changed) = deliver(&a, 0, &mut state, 1, msg);
        assert!(!changed);
        assert!(cmds.is_empty(), "{cmds:?}");
    }
    assert_eq!(state, before);
}

#[test]
fn paxos_overflow_is_a_handler_error_with_the_spec_location() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    deliver(&a, 0, &mut state, 2, accept(u64::MAX, 2, 7));
    let before = state.clone();
    // A request at ballot round `u64::MAX` cannot start round `MAX + 1`.
    let (cmds, changed) = deliver(&a, 0, &mut state, 9, put(8));
    assert!(cmds.is_empty(), "a failed handler has no effects: {cmds:?}");
    assert!(changed);
    let failure = Paxos::failure(&state).expect("the node failed").clone();
    let text = include_str!("../paxos.sm");
    assert_eq!(failure.kind, ErrorKind::Overflow);
    assert_eq!(failure.at, loc_in(text, "ballot = (ballot.0 + 1, self)", "ballot.0"));
    // The handler's writes before the overflow (`proposal`, `prepares`,
    // `accepts`) are rolled back: only `failure` differs.
    let mut expected = server(&before).clone();
    expected.failure = Some(failure);
    assert_eq!(server(&state), &expected);
}

#[test]
fn paxos_restart_keeps_durable_state_and_resets_volatile_state() {
    let a: Paxos = node(PAXOS, 0);
    let (mut state, _) = start(&a, 0, None);
    let (cmds, _) = deliver(&a, 0, &mut state, 9, put(7));
    let saved = match cmds.last() {
        Some(Event::Save(s)) => s.clone(),
        other => panic!("expected a save, got {other:?}"),
    };
    assert!(server(&state).proposal.is_some());
    assert_eq!(server(&state).prepares.len(), 1);

    // Crash and restart from the saved storage.
    let (restarted, cmds) = start(&a, 0, Some(&saved));
    assert!(cmds.is_empty(), "restoring saves nothing: {cmds:?}");
    let s = server(&restarted);
    assert_eq!(s.ballot, (1, Id::from(0)), "durable `ballot` survives");
    assert_eq!(s.accepted, None);
    assert_eq!(s.proposal, None, "volatile `proposal` is reset");
    assert!(s.prepares.is_empty() && s.accepts.is_empty());
    assert_eq!(s.phase, paxos::ServerPhase::Undecided);
    assert_eq!(Paxos::storage_of(&restarted), Some(saved));
}

#[test]
fn paxos_deltas_report_each_durable_write() {
    let a: Paxos = node(PAXOS, 0);
    let mut fx = Recorder::new();
    let state = a.handle_start(Id::from(0), None, Boot::First, &mut fx);
    assert!(fx.events.is_empty());
    let mut cow = Cow::Owned(state);
    a.handle_msg(Id::from(0), &mut cow, Id::from(2), accept(3, 2, 7), &mut fx);
    let ballot = (3, Id::from(2));
    let expected: Vec<Event<Paxos, paxos::Delta>> = vec![
        Event::Delta(paxos::Delta::Server(paxos::ServerDelta::Ballot(ballot))),
        Event::Delta(paxos::Delta::Server(paxos::ServerDelta::Accepted(Some((
            ballot,
            proposal(7),
        ))))),
        Event::Send(Id::from(2), paxos::Msg::Accepted(paxos::Accepted { ballot })),
    ];
    assert_eq!(fx.events, expected, "deltas at the writes, no full save");
}

// ---------------------------------------------------- two-phase commit --

/// TM = node 0, RMs = nodes 1..=3.
const TPC: &[u64] = &[1, 3];

fn tm(state: &tpc::State) -> &tpc::TMState {
    match state {
        tpc::State::TM(s) => s,
        other => panic!("not the TM: {other:?}"),
    }
}

fn rm(state: &tpc::State) -> &tpc::RMState {
    match state {
        tpc::State::RM(s) => s,
        other => panic!("not an RM: {other:?}"),
    }
}

fn vote(yes: bool) -> tpc::Msg {
    tpc::Msg::Vote(tpc::Vote { yes })
}

fn to_rms(msg: tpc::Msg) -> Vec<Cmd<TwoPhaseCommit>> {
    (1..=3).map(|i| Event::Send(Id::from(i), msg.clone())).collect()
}

#[test]
fn tpc_goto_runs_the_handler_then_entry_then_saves() {
    let t: TwoPhaseCommit = node(TPC, 0);
    let (mut state, cmds) = start(&t, 0, None);
    let mut expected = to_rms(tpc::Msg::Prepare(tpc::Prepare {}));
    expected.push(Event::SetTimer(
        tpc::Timer::TM(tpc::TMTimer::VoteTimeout),
        Duration::from_millis(100)..Duration::from_millis(200),
    ));
    assert_eq!(
        cmds, expected,
        "`init` prepares and arms the timer; nothing durable changed"
    );

    // A `no` vote: the handler decides and broadcasts, `goto Done` runs
    // Done's `entry` (cancel the timer), and the save comes last.
    let (cmds, _) = deliver(&t, 0, &mut state, 2, vote(false));
    let mut expected = to_rms(tpc::Msg::Abort(tpc::Abort {}));
    expected.push(Event::CancelTimer(tpc::Timer::TM(tpc::TMTimer::VoteTimeout)));
    expected.push(Event::Save(tpc::Storage::TM(tpc::TMStorage { decision: Some(false) })));
    assert_eq!(cmds, expected);
    assert_eq!(tm(&state).phase, tpc::TMPhase::Done);
}

#[test]
fn tpc_tm_restart_keeps_the_decision_and_forgets_votes() {
    let t: TwoPhaseCommit = node(TPC, 0);
    let (mut state, _) = start(&t, 0, None);
    let (cmds, changed) = deliver(&t, 0, &mut state, 1, vote(true));
    assert!(changed && cmds.is_empty(), "a yes vote is volatile: {cmds:?}");
    assert_eq!(tm(&state).yes_votes.len(), 1);

    // Restart before deciding: the vote is forgotten and `init` prepares again.
    let initial = t.initial_storage(Id::from(0)).expect("initial storage");
    let (restarted, cmds) = start(&t, 0, Some(&initial));
    assert!(tm(&restarted).yes_votes.is_empty());
    assert_eq!(tm(&restarted).phase, tpc::TMPhase::Collecting);
    assert_eq!(cmds.len(), 4, "three prepares and the timer: {cmds:?}");

    // Decide (abort), then restart from the saved decision: `init`
    // re-announces it and goes to `Done` (whose `entry` cancels the timer)
    // without saving anything.
    let (cmds, _) = deliver(&t, 0, &mut state, 3, vote(false));
    let saved = match cmds.last() {
        Some(Event::Save(s)) => s.clone(),
        other => panic!("expected a save, got {other:?}"),
    };
    let (restarted, cmds) = start(&t, 0, Some(&saved));
    let mut expected = to_rms(tpc::Msg::Abort(tpc::Abort {}));
    expected.push(Event::CancelTimer(tpc::Timer::TM(tpc::TMTimer::VoteTimeout)));
    assert_eq!(cmds, expected);
    let s = tm(&restarted);
    assert_eq!((s.decision, s.phase), (Some(false), tpc::TMPhase::Done));
    assert!(s.yes_votes.is_empty());
}

#[test]
fn tpc_rm_restart_resumes_in_the_state_its_durable_vote_implies() {
    let r: TwoPhaseCommit = node(TPC, 2);
    let give_up = tpc::Timer::RM(tpc::RMTimer::GiveUp);
    let ask = tpc::Timer::RM(tpc::RMTimer::Ask);
    let ms = |a, b| std::time::Duration::from_millis(a)..std::time::Duration::from_millis(b);
    // Not voted yet: the give-up timer runs from the start.
    let (mut state, cmds) = start(&r, 2, None);
    assert_eq!(cmds, vec![Event::SetTimer(give_up.clone(), ms(300, 400))]);
    let (cmds, _) = deliver(&r, 2, &mut state, 0, tpc::Msg::Prepare(tpc::Prepare {}));
    let willing = |yes| tpc::Random::RM(tpc::RMChoice::Willing(yes));
    assert_eq!(
        cmds,
        vec![Event::Choose("willing".into(), vec![willing(false), willing(true)])]
    );

    let mut out = Out::new();
    let mut cow = Cow::Borrowed(&state);
    r.handle_random(Id::from(2), &mut cow, &willing(true), &mut out);
    let state = cow.into_owned();
    let cmds = events(out);
    let saved = tpc::Storage::RM(tpc::RMStorage {
        vote: Some(true),
        outcome: None,
        decided: None,
    });
    // The choice: vote yes, go to `Prepared` (whose `entry` stops giving
    // up and starts asking), save the vote.
    assert_eq!(
        cmds,
        vec![
            Event::Send(Id::from(0), vote(true)),
            Event::CancelTimer(give_up.clone()),
            Event::SetTimer(ask.clone(), ms(100, 200)),
            Event::Save(saved.clone())
        ]
    );
    assert_eq!(rm(&state).phase, tpc::RMPhase::Prepared);

    // After a crash, `init` reads the durable vote and goes to `Prepared`.
    // It asks the TM at once (the answer may have been lost with the
    // crash), then on its timer; it does not give up.
    let (restarted, cmds) = start(&r, 2, Some(&saved));
    assert_eq!(
        cmds,
        vec![
            Event::Send(Id::from(0), vote(true)),
            Event::CancelTimer(give_up.clone()),
            Event::SetTimer(ask, ms(100, 200))
        ]
    );
    assert_eq!(rm(&restarted), rm(&state));

    // Restarted before it voted (nothing saved): it aborts at once, says
    // so, and records it — it does not wait for `give_up`.
    let mut out = Out::new();
    let forgot = r.handle_start(Id::from(2), None, Boot::Restart, &mut out);
    assert_eq!(rm(&forgot).phase, tpc::RMPhase::Aborted);
    let cmds = events(out);
    assert!(cmds.contains(&Event::Send(Id::from(0), vote(false))), "{cmds:?}");
    assert!(!cmds.iter().any(|c| matches!(c, Event::SetTimer(..))), "{cmds:?}");
    assert_eq!(saves(&cmds), 1, "{cmds:?}");
}

// ------------------------------------------------------ tests/data specs --

fn journal_server(state: &journal::State) -> &journal::ServerState {
    match state {
        journal::State::Server(s) => s,
        other => panic!("not a server: {other:?}"),
    }
}

fn append(v: u64) -> journal::Msg {
    journal::Msg::Append(journal::Append { v })
}

#[test]
fn journal_push_reports_a_push_delta_not_the_list() {
    let j: journal::Journal = node(&[1], 0);
    let mut fx = Recorder::new();
    let state = j.handle_start(Id::from(0), None, Boot::First, &mut fx);
    let mut storage = j.initial_storage(Id::from(0)).expect("initial storage");
    let mut cow = Cow::Owned(state);
    for v in [5, 6] {
        fx.events.clear();
        j.handle_msg(Id::from(0), &mut cow, Id::from(3), append(v), &mut fx);
        let size = journal_server(&cow).log.len() as u64;
        let total = journal_server(&cow).total;
        let expected: Vec<Event<journal::Journal, journal::Delta>> = vec![
            Event::Delta(journal::Delta::Server(journal::ServerDelta::LogPush(v))),
            Event::Send(Id::from(3), journal::Msg::Appended(journal::Appended { size })),
            Event::Delta(journal::Delta::Server(journal::ServerDelta::Total(total))),
        ];
        assert_eq!(fx.events, expected);
        // Replaying the deltas, as recovery does, rebuilds the storage.
        for e in fx.events.drain(..) {
            if let Event::Delta(d) = e {
                journal::Journal::apply_delta(&mut storage, d).expect("delta applies");
            }
        }
        assert_eq!(Some(&storage), journal::Journal::storage_of(&cow).as_ref());
    }
    assert_eq!(journal_server(&cow).log, vec![5, 6]);

    // With stateright's `Out` the same handler saves the whole storage once.
    let mut state = cow.into_owned();
    let (cmds, _) = deliver(&j, 0, &mut state, 3, append(7));
    assert_eq!(saves(&cmds), 1);
    assert!(matches!(
        cmds.last(),
        Some(Event::Save(journal::Storage::Server(s))) if s.log == vec![5, 6, 7] && s.total == 18
    ));
}

#[test]
fn journal_ghost_state_is_kept_by_the_checker_and_skipped_by_the_runtime() {
    let j: journal::Journal = node(&[1], 0);
    // Runtime-like effects (`GHOST = false`): the protocol state changes,
    // the ghost variables keep their initial values.
    let mut fx = Recorder::new();
    let mut cow = Cow::Owned(j.handle_start(Id::from(0), None, Boot::First, &mut fx));
    j.handle_msg(Id::from(0), &mut cow, Id::from(3), append(5), &mut fx);
    let s = journal_server(&cow);
    assert_eq!((s.log.clone(), s.appended.clone(), s.appends), (vec![5], vec![], 0));

    // The checker's effects (`Out`): the ghost assignments run.
    let mut state = cow.into_owned();
    deliver(&j, 0, &mut state, 3, append(6));
    let s = journal_server(&state);
    assert_eq!((s.log.clone(), s.appended.clone(), s.appends), (vec![5, 6], vec![6], 1));
}

#[test]
fn journal_overflow_rolls_back_the_push_the_send_and_the_delta() {
    let j: journal::Journal = node(&[1], 0);
    let mut fx = Recorder::new();
    let mut cow = Cow::Owned(j.handle_start(Id::from(0), None, Boot::First, &mut fx));
    j.handle_msg(Id::from(0), &mut cow, Id::from(3), append(1), &mut fx);
    let before = journal_server(&cow).clone();
    fx.events.clear();

    // `log.push` (a delta) and `send` run, then `total + m.v` overflows.
    let mut borrowed = Cow::Borrowed(&*cow);
    j.handle_msg(Id::from(0), &mut borrowed, Id::from(3), append(u64::MAX), &mut fx);
    assert!(fx.events.is_empty(), "rolled back: {:?}", fx.events);
    let failed = borrowed.into_owned();
    let expected = HandlerError {
        kind: ErrorKind::Overflow,
        at: loc_in(include_str!("data/journal.sm"), "total = total + m.v", "total + m.v"),
        detail: journal::Journal::failure(&failed)
            .map(|e| e.detail.clone())
            .unwrap_or_default(),
    };
    assert_eq!(journal::Journal::failure(&failed), Some(&expected));
    assert_eq!(expected.to_string().split(':').next(), Some("integer overflow at 23"));
    let s = journal_server(&failed);
    assert_eq!((&s.log, s.total), (&before.log, before.total), "the push is undone");

    // A failed node ignores every later event.
    let mut failed_cow = Cow::Borrowed(&failed);
    j.handle_msg(Id::from(0), &mut failed_cow, Id::from(3), append(1), &mut fx);
    assert!(matches!(failed_cow, Cow::Borrowed(_)));
    assert!(fx.events.is_empty());
}

fn order_state(state: &order::State) -> &order::NodeState {
    match state {
        order::State::Node(s) => s,
        other => panic!("not a node: {other:?}"),
    }
}

fn step(n: u64) -> Cmd<order::Order> {
    Event::Send(Id::from(0), order::Msg::Step(order::Step { n }))
}

#[test]
fn order_handler_exit_entry_along_a_goto_chain() {
    let a: order::Order = node(&[1], 0);
    let (mut state, cmds) = start(&a, 0, None);
    assert!(cmds.is_empty());
    // `on Go` (0), `goto B`: exit A (1), entry B (2) which goes to C:
    // exit B (3), entry C (4).
    let (cmds, _) = deliver(&a, 0, &mut state, 0, order::Msg::Go(order::Go {}));
    assert_eq!(cmds, (0..=4).map(step).collect::<Vec<_>>());
    assert_eq!(order_state(&state).phase, order::NodePhase::C);
}

#[test]
fn order_entry_chain_that_never_settles_is_a_handler_error() {
    let a: order::Order = node(&[1], 0);
    let (mut state, _) = start(&a, 0, None);
    let (cmds, _) = deliver(&a, 0, &mut state, 0, order::Msg::Spin(order::Spin {}));
    assert!(cmds.is_empty(), "A's exit is rolled back: {cmds:?}");
    let failure = order::Order::failure(&state).expect("the node failed");
    assert_eq!(failure.kind, ErrorKind::GotoLoop);
    assert_eq!(failure.at, loc_in(include_str!("data/order.sm"), "role Node", "role"));
    assert_eq!(
        order_state(&state).phase,
        order::NodePhase::A,
        "the state is rolled back"
    );
}

mod raft_storage {
    use super::*;
    use smelt::support::{Bytes, Client};
    use smelt_specs::raft::{self, Raft};

    fn entry(term: u64, key: u64, value: &'static [u8]) -> raft::Entry {
        raft::Entry {
            term,
            command: Some(raft::Command {
                client: Client {
                    session: smelt::support::Session { epoch: 0, id: 9 },
                    seq: key,
                },
                op: raft::Request::Put {
                    key,
                    value: Bytes::from_static(value),
                },
            }),
        }
    }

    fn server(state: &raft::State) -> &raft::ServerState {
        match state {
            raft::State::Server(s) => s,
            other => panic!("not a server: {other:?}"),
        }
    }

    /// Two entries from leader 0 of term 1, both committed, the first held
    /// by every server.
    fn append_two() -> raft::Msg {
        raft::Msg::AppendEntries(raft::AppendEntries {
            term: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![entry(1, 7, b"a"), entry(1, 8, b"b")],
            leader_commit: 2,
            held_by_all: 1,
        })
    }

    /// Follower 1 of 3 takes `append_two` with the runtime's effects.
    fn append_two_on_the_runtime(actor: &Raft, fx: &mut Recorder<Raft, raft::Delta>) -> raft::State {
        let mut cow = Cow::Owned(actor.handle_start(Id::from(1), None, Boot::First, fx));
        actor.handle_msg(Id::from(1), &mut cow, Id::from(0), append_two(), fx);
        cow.into_owned()
    }

    /// The durable snapshot store logs each request compacted into it, not
    /// the store; the log is compacted with a `DropFirst`, not rewritten;
    /// the serving store (volatile) logs nothing; and replaying the deltas
    /// gives exactly the durable state the handler left.
    #[test]
    fn raft_compaction_logs_small_deltas_that_replay_to_the_same_storage() {
        let actor: Raft = node(&[3], 1);
        let mut fx = Recorder::new();
        let state = append_two_on_the_runtime(&actor, &mut fx);
        let s = server(&state);
        assert_eq!((s.commit_index, s.snap_index, s.snap_term, s.log.len()), (2, 1, 1, 1));
        assert_eq!(s.kv.data.get(&8), Some(&Bytes::from_static(b"b")));
        assert_eq!(s.snap_kv.data.get(&8), None, "entry 2 is not held by all yet");
        assert_eq!(s.snap_kv.data.get(&7), Some(&Bytes::from_static(b"a")));
        // The runtime's effects skip ghost writes: no history.
        assert!(s.history.is_empty());

        let deltas: Vec<raft::Delta> = fx
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Delta(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        let applied: Vec<_> = deltas
            .iter()
            .filter(
                |d| matches!(d, raft::Delta::Server(raft::ServerDelta::SnapKvApplySession(c, _, 4096)) if c.seq == 7),
            )
            .collect();
        assert_eq!(
            applied.len(),
            1,
            "one SnapKvApplySession (client, request, table capacity) per compacted request: {deltas:?}"
        );
        assert!(
            deltas
                .iter()
                .any(|d| matches!(d, raft::Delta::Server(raft::ServerDelta::LogDropFirst(1)))),
            "{deltas:?}"
        );
        assert!(
            !deltas.iter().any(|d| matches!(
                d,
                raft::Delta::Server(raft::ServerDelta::SnapKv(_) | raft::ServerDelta::Log(_))
            )),
            "no whole-variable writes of the store or the log: {deltas:?}"
        );

        let mut storage = actor.initial_storage(Id::from(1)).expect("initial storage");
        for d in deltas {
            Raft::apply_delta(&mut storage, d).expect("replays");
        }
        assert_eq!(Some(storage), Raft::storage_of(&state));
    }

    /// The checker's effects keep the ghost `history`, which is also
    /// durable: the whole log survives compaction (and a restart) there. A
    /// restarted server serves from its snapshot.
    #[test]
    fn raft_history_is_the_uncompacted_log_in_the_checker_and_survives_a_restart() {
        let actor: Raft = node(&[3], 1);
        let (mut state, _) = start(&actor, 1, None);
        let (cmds, _) = deliver(&actor, 1, &mut state, 0, append_two());
        let s = server(&state);
        assert_eq!(s.history, vec![entry(1, 7, b"a"), entry(1, 8, b"b")]);
        assert_eq!(s.log, vec![entry(1, 8, b"b")]);
        let saved = cmds
            .into_iter()
            .find_map(|c| match c {
                Event::Save(s) => Some(s),
                _ => None,
            })
            .expect("a save");
        let (restarted, _) = start(&actor, 1, Some(&saved));
        let r = server(&restarted);
        assert_eq!((r.history.len(), r.snap_index, r.commit_index), (2, 1, 1));
        assert_eq!((&r.kv, &r.snap_kv), (&s.snap_kv, &s.snap_kv));
        assert_eq!(r.log, s.log);
    }
}

/// `restarted` in chain_replication.sm's `init`: a first start sends
/// nothing; a restart asks the predecessor to re-send, even when the
/// server holds nothing (the update it lost may have been its first).
#[test]
fn chain_init_reads_restarted() {
    use smelt_specs::chain_replication::{self as chain, ChainReplication};
    let middle = node::<ChainReplication>(&[3], 1);
    let mut first = Out::new();
    let st = middle.handle_start(Id::from(1), None, Boot::First, &mut first);
    let sends = |cmds: &[Cmd<ChainReplication>]| -> Vec<(Id, chain::Msg)> {
        cmds.iter()
            .filter_map(|c| match c {
                Event::Send(dst, m) => Some((*dst, m.clone())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(sends(&events(first)), vec![], "a first start has nothing to recover");
    let saved = ChainReplication::storage_of(&st).expect("a server has storage");
    let mut again = Out::new();
    middle.handle_start(Id::from(1), Some(&saved), Boot::Restart, &mut again);
    let resent = sends(&events(again));
    assert_eq!(resent.len(), 1, "one Resync to the predecessor: {resent:?}");
    assert_eq!(resent[0].0, Id::from(0));
    assert!(
        format!("{:?}", resent[0].1).contains("Resync"),
        "{:?} is a Resync",
        resent[0].1
    );
}
