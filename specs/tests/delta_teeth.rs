//! The delta check has teeth. `runtime_equivalence` (model-check's
//! `delta.rs`) runs every explored step again the runtime's way (owned
//! state, deltas on, no full saves, ghost writes off) and compares it with
//! the checker's step. These tests wrap real generated protocols in
//! `Faulty`, which implements `Protocol` by delegating every item to the
//! generated code except one deliberately broken piece (`Fault`), and
//! check that the property then fails, naming the handler at its exact
//! `file:line:col` in the spec (a restart names only its step: `init`
//! blocks report no handler) — while with the faithful wrapper (and the
//! bare protocol) it holds over the same nonzero number of compared steps.
//!
//! Every fault is on a path only the runtime (and so only the delta check)
//! takes: the checker's own search is unchanged, so every other property
//! keeps its verdict and only `runtime_equivalence` can see the fault.

use smelt::model_check::cli::run_check;
use smelt::model_check::report::{render_summary, CheckReport, Verdict};
use smelt::model_check::RunConfig;
use smelt::support::stateright::actor::{Actor, Id, Out};
use smelt::support::{
    Boot, CheckConfig, Client, ClientMsg, ClientState, Effects, HandlerError, Layout, PropertyInfo, Protocol, RoleInfo,
    SessionError, View,
};
use smelt_specs::chain_replication::ChainReplication;
use smelt_specs::primary_backup::{self, PrimaryBackup};
use smelt_specs::raft::Raft;
use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Range;
use std::time::Duration;

// ------------------------------------------------------------ the wrapper

/// One deliberately broken piece of a protocol. Every hook defaults to the
/// generated code, so `Faithful` breaks nothing.
trait Fault<P: Protocol>: Clone + Debug + Eq + Hash + Send + Sync + 'static {
    /// Replaying a logged change (recovery's way).
    fn apply_delta(storage: &mut P::Durable, delta: P::Delta) -> Result<(), String> {
        P::apply_delta(storage, delta)
    }
    fn erase_ghosts(state: &mut P::NodeState) {
        P::erase_ghosts(state)
    }
    fn erase_ghost_storage(storage: &mut P::Durable) {
        P::erase_ghost_storage(storage)
    }
    /// On the runtime's path only (`Effects::DELTAS`), cancelling a timer
    /// is lost: a handler whose effects depend on the world it runs in.
    const RUNTIME_LOSES_CANCELS: bool = false;
    /// On the owned-state path only (the runtime's: it changes its state in
    /// place), a delivery's state changes are lost, as if the generated
    /// owned fast path forgot to write its result back.
    const OWNED_PATH_LOSES_WRITES: bool = false;
}

/// No fault: the wrapper must be invisible.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Faithful;
impl<P: Protocol> Fault<P> for Faithful {}

/// A generated protocol with one fault `F`; everything else delegates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Faulty<P, F> {
    inner: P,
    fault: PhantomData<F>,
}

impl<P: Protocol, F: Fault<P>> Faulty<P, F> {
    fn wrap(inner: P) -> Self {
        Faulty {
            inner,
            fault: PhantomData,
        }
    }
}

/// `P`'s effects sink seen as the wrapper's: what the generated handlers
/// of `P` emit goes to the effects of `Faulty<P, F>` (the same types).
struct FxAs<'a, E, F> {
    fx: &'a mut E,
    fault: PhantomData<F>,
}

impl<'a, E, F> FxAs<'a, E, F> {
    fn new(fx: &'a mut E) -> Self {
        FxAs { fx, fault: PhantomData }
    }
}

impl<P, F, E> Effects<P, P::Delta> for FxAs<'_, E, F>
where
    P: Protocol,
    F: Fault<P>,
    E: Effects<Faulty<P, F>, P::Delta>,
{
    const DELTAS: bool = E::DELTAS;
    const FULL_SAVE: bool = E::FULL_SAVE;
    const GHOST: bool = E::GHOST;

    fn send(&mut self, dst: Id, msg: P::Message) {
        self.fx.send(dst, msg)
    }
    fn send_early(&mut self, dst: Id, msg: P::Message) {
        self.fx.send_early(dst, msg)
    }
    fn set_timer(&mut self, timer: P::TimerKind, range: Range<Duration>) {
        self.fx.set_timer(timer, range)
    }
    fn cancel_timer(&mut self, timer: P::TimerKind) {
        if F::RUNTIME_LOSES_CANCELS && E::DELTAS {
            return;
        }
        self.fx.cancel_timer(timer)
    }
    fn choose(&mut self, key: &'static str, options: Vec<P::Choice>) {
        self.fx.choose(key, options)
    }
    fn save(&mut self, storage: P::Durable) {
        self.fx.save(storage)
    }
    fn delta(&mut self, delta: P::Delta) {
        self.fx.delta(delta)
    }
    fn handler(&mut self, name: &'static str) {
        self.fx.handler(name)
    }
    fn mark(&self) -> usize {
        self.fx.mark()
    }
    fn rollback(&mut self, mark: usize) {
        self.fx.rollback(mark)
    }
}

/// A global state of the wrapper seen as one of `P` (the same states).
struct ViewAs<'a, V, F> {
    view: &'a V,
    fault: PhantomData<F>,
}

impl<'a, V, F> ViewAs<'a, V, F> {
    fn new(view: &'a V) -> Self {
        ViewAs {
            view,
            fault: PhantomData,
        }
    }
}

impl<P, F, V> View<P> for ViewAs<'_, V, F>
where
    P: Protocol,
    F: Fault<P>,
    V: View<Faulty<P, F>>,
{
    fn actor_count(&self) -> usize {
        self.view.actor_count()
    }
    fn actor_state(&self, index: usize) -> &P::NodeState {
        self.view.actor_state(index)
    }
    fn is_crashed(&self, index: usize) -> bool {
        self.view.is_crashed(index)
    }
}

impl<P: Protocol, F: Fault<P>> Actor for Faulty<P, F> {
    type Msg = P::Message;
    type State = P::NodeState;
    type Timer = P::TimerKind;
    type Random = P::Choice;
    type Storage = P::Durable;

    fn name(&self) -> String {
        self.inner.name()
    }
    fn on_start(&self, id: Id, storage: &Option<P::Durable>, o: &mut Out<Self>) -> P::NodeState {
        let boot = if storage.is_some() { Boot::Restart } else { Boot::First };
        self.handle_start(id, storage.as_ref(), boot, o)
    }
    fn on_msg(&self, id: Id, state: &mut Cow<P::NodeState>, src: Id, msg: P::Message, o: &mut Out<Self>) {
        self.handle_msg(id, state, src, msg, o)
    }
    fn on_timeout(&self, id: Id, state: &mut Cow<P::NodeState>, timer: &P::TimerKind, o: &mut Out<Self>) {
        self.handle_timeout(id, state, timer, o)
    }
    fn on_random(&self, id: Id, state: &mut Cow<P::NodeState>, random: &P::Choice, o: &mut Out<Self>) {
        self.handle_random(id, state, random, o)
    }
}

impl<P: Protocol, F: Fault<P>> Protocol for Faulty<P, F> {
    type Message = P::Message;
    type NodeState = P::NodeState;
    type TimerKind = P::TimerKind;
    type Choice = P::Choice;
    type Durable = P::Durable;
    type Request = P::Request;
    type Reply = P::Reply;
    type Service = P::Service;
    type Delta = P::Delta;

    const NAME: &'static str = P::NAME;
    const SPEC: &'static str = P::SPEC;
    const SYMMETRIC: bool = P::SYMMETRIC;
    const SESSIONS: Option<u64> = P::SESSIONS;

    fn roles() -> &'static [RoleInfo] {
        P::roles()
    }
    fn properties() -> &'static [PropertyInfo] {
        P::properties()
    }
    fn checks() -> Vec<CheckConfig> {
        P::checks()
    }
    fn workload(check: usize, client: u64) -> Result<Vec<P::Request>, HandlerError> {
        P::workload(check, client)
    }
    fn service() -> Result<P::Service, HandlerError> {
        P::service()
    }
    fn server(id: Id, layout: &Layout) -> Option<Self> {
        P::server(id, layout).map(Self::wrap)
    }
    fn client(workload: Vec<P::Request>, servers: Vec<Id>, retry: Option<Option<u32>>, pick: bool) -> Self {
        Self::wrap(P::client(workload, servers, retry, pick))
    }
    fn is_client(&self) -> bool {
        self.inner.is_client()
    }
    fn eval<V: View<Self>>(property: usize, view: &V) -> Result<bool, HandlerError> {
        P::eval(property, &ViewAs::<V, F>::new(view))
    }
    fn eval_bound<V: View<Self>>(check: usize, view: &V) -> Result<bool, HandlerError> {
        P::eval_bound(check, &ViewAs::<V, F>::new(view))
    }
    fn eval_leads_to<V: View<Self>>(
        property: usize,
        view: &V,
        binding: &[usize],
        target: bool,
    ) -> Result<bool, HandlerError> {
        P::eval_leads_to(property, &ViewAs::<V, F>::new(view), binding, target)
    }
    fn failure(state: &P::NodeState) -> Option<&HandlerError> {
        P::failure(state)
    }
    fn client_state(state: &P::NodeState) -> Option<&ClientState> {
        P::client_state(state)
    }
    fn client_node_state(state: ClientState) -> P::NodeState {
        P::client_node_state(state)
    }
    fn describe_state(state: &P::NodeState) -> (&'static str, Option<&'static str>) {
        P::describe_state(state)
    }
    fn describe_fields(state: &P::NodeState) -> Vec<(&'static str, String)> {
        P::describe_fields(state)
    }
    fn requests() -> &'static [(&'static str, &'static [&'static str])] {
        P::requests()
    }
    fn parse_request(words: &[&str]) -> Result<P::Request, String> {
        P::parse_request(words)
    }
    fn request_msg(tag: Client, request: P::Request) -> P::Message {
        P::request_msg(tag, request)
    }
    fn reply_msg(tag: Client, reply: P::Reply) -> P::Message {
        P::reply_msg(tag, reply)
    }
    fn rejection(reply: &P::Reply) -> Option<SessionError> {
        P::rejection(reply)
    }
    fn client_msg(msg: &P::Message) -> Option<ClientMsg<'_, P::Request, P::Reply>> {
        P::client_msg(msg)
    }
    fn client_retry_timer() -> P::TimerKind {
        P::client_retry_timer()
    }
    fn client_choice(target: Id) -> P::Choice {
        P::client_choice(target)
    }
    fn as_client_choice(choice: &P::Choice) -> Option<Id> {
        P::as_client_choice(choice)
    }
    fn timer_info(timer: &P::TimerKind) -> Option<(usize, usize)> {
        P::timer_info(timer)
    }
    fn sends_early_on_msg(msg: &P::Message) -> bool {
        P::sends_early_on_msg(msg)
    }
    fn sends_early_on_other() -> bool {
        P::sends_early_on_other()
    }

    fn handle_start<E: Effects<Self, P::Delta>>(
        &self,
        id: Id,
        storage: Option<&P::Durable>,
        boot: Boot,
        fx: &mut E,
    ) -> P::NodeState {
        self.inner.handle_start(id, storage, boot, &mut FxAs::<E, F>::new(fx))
    }
    fn handle_msg<E: Effects<Self, P::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, P::NodeState>,
        src: Id,
        msg: P::Message,
        fx: &mut E,
    ) {
        if F::OWNED_PATH_LOSES_WRITES && matches!(state, Cow::Owned(_)) {
            // Effects as usual; the state changes go nowhere.
            let mut scratch = state.clone();
            return self
                .inner
                .handle_msg(id, &mut scratch, src, msg, &mut FxAs::<E, F>::new(fx));
        }
        self.inner.handle_msg(id, state, src, msg, &mut FxAs::<E, F>::new(fx))
    }
    fn handle_timeout<E: Effects<Self, P::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, P::NodeState>,
        timer: &P::TimerKind,
        fx: &mut E,
    ) {
        self.inner.handle_timeout(id, state, timer, &mut FxAs::<E, F>::new(fx))
    }
    fn handle_random<E: Effects<Self, P::Delta>>(
        &self,
        id: Id,
        state: &mut Cow<'_, P::NodeState>,
        random: &P::Choice,
        fx: &mut E,
    ) {
        self.inner.handle_random(id, state, random, &mut FxAs::<E, F>::new(fx))
    }

    fn initial_storage(&self, id: Id) -> Result<P::Durable, HandlerError> {
        self.inner.initial_storage(id)
    }
    fn apply_delta(storage: &mut P::Durable, delta: P::Delta) -> Result<(), String> {
        F::apply_delta(storage, delta)
    }
    fn storage_of(state: &P::NodeState) -> Option<P::Durable> {
        P::storage_of(state)
    }
    fn erase_ghosts(state: &mut P::NodeState) {
        F::erase_ghosts(state)
    }
    fn erase_ghost_storage(storage: &mut P::Durable) {
        F::erase_ghost_storage(storage)
    }
}

// ------------------------------------------------------------ the faults

/// Recovery's replay ignores a backup's `log.push`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct DropsBackupLogPush;
impl Fault<PrimaryBackup> for DropsBackupLogPush {
    fn apply_delta(storage: &mut primary_backup::Storage, delta: primary_backup::Delta) -> Result<(), String> {
        if matches!(
            delta,
            primary_backup::Delta::Backup(primary_backup::BackupDelta::LogPush(_))
        ) {
            return Ok(());
        }
        PrimaryBackup::apply_delta(storage, delta)
    }
}

/// Recovery's replay ignores an assignment to the primary's `committed`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct IgnoresCommitted;
impl Fault<PrimaryBackup> for IgnoresCommitted {
    fn apply_delta(storage: &mut primary_backup::Storage, delta: primary_backup::Delta) -> Result<(), String> {
        if matches!(
            delta,
            primary_backup::Delta::Primary(primary_backup::PrimaryDelta::Committed(_))
        ) {
            return Ok(());
        }
        PrimaryBackup::apply_delta(storage, delta)
    }
}

/// Recovery's replay rejects the primary's `log.push`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RejectsPrimaryLogPush;
impl Fault<PrimaryBackup> for RejectsPrimaryLogPush {
    fn apply_delta(storage: &mut primary_backup::Storage, delta: primary_backup::Delta) -> Result<(), String> {
        if matches!(
            delta,
            primary_backup::Delta::Primary(primary_backup::PrimaryDelta::LogPush(_))
        ) {
            return Err("no such change (test fault)".into());
        }
        PrimaryBackup::apply_delta(storage, delta)
    }
}

/// The runtime's path loses every `cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RuntimeLosesCancels;
impl<P: Protocol> Fault<P> for RuntimeLosesCancels {
    const RUNTIME_LOSES_CANCELS: bool = true;
}

/// The owned-state path loses a delivery's state changes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OwnedPathLosesWrites;
impl<P: Protocol> Fault<P> for OwnedPathLosesWrites {
    const OWNED_PATH_LOSES_WRITES: bool = true;
}

/// Ghost variables are compared as they are: the checker writes them and
/// the runtime does not, so this must fail wherever a ghost changes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct KeepsGhosts;
impl<P: Protocol> Fault<P> for KeepsGhosts {
    fn erase_ghosts(_: &mut P::NodeState) {}
}

/// The same for durable ghosts in storage (states are still compared with
/// ghosts erased, so the storage comparison is what must fail).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct KeepsGhostStorage;
impl<P: Protocol> Fault<P> for KeepsGhostStorage {
    fn erase_ghost_storage(_: &mut P::Durable) {}
}

// ------------------------------------------------------------ running

fn run<P: Protocol>(check: &str, edit: impl FnOnce(&mut RunConfig)) -> CheckReport {
    let c = P::checks()
        .into_iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("{} has no check `{check}`", P::NAME));
    let mut cfg = RunConfig::from_check(&c);
    assert!(cfg.delta_check, "the delta check is on by default");
    edit(&mut cfg);
    let spec = format!("specs/{}", P::SPEC.trim_start_matches("specs/"));
    run_check::<P>(&spec, cfg).unwrap_or_else(|e| panic!("{} `{check}`: {e}", P::NAME))
}

fn verdict_of<'a>(r: &'a CheckReport, name: &str) -> (&'a Verdict, &'a str) {
    let p = r
        .properties
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no property `{name}`:\n{}", render_summary(r)));
    (&p.verdict, p.detail.as_deref().unwrap_or(""))
}

/// Every verdict but `runtime_equivalence`'s, by property.
fn other_verdicts(r: &CheckReport) -> Vec<(String, Verdict)> {
    r.properties
        .iter()
        .filter(|p| p.name != "runtime_equivalence")
        .map(|p| (p.name.clone(), p.verdict))
        .collect()
}

/// The number in `runtime_equivalence`'s "N steps compared", asserting it
/// holds.
fn holds_over(r: &CheckReport) -> u64 {
    let (v, detail) = verdict_of(r, "runtime_equivalence");
    assert_eq!(*v, Verdict::Holds, "{}", render_summary(r));
    assert_eq!(r.as_expected, Some(true), "{}", render_summary(r));
    let n: u64 = detail
        .strip_suffix(" steps compared")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected detail `{detail}`"));
    assert!(n > 0, "no step compared:\n{}", render_summary(r));
    n
}

/// A baseline: the bare protocol holds `runtime_equivalence` over a
/// nonzero number of steps, and so does the faithful wrapper, over the very
/// same search (so a fault's failure below is the fault's).
fn baseline<P: Protocol>(check: &str) -> (CheckReport, u64) {
    let bare = run::<P>(check, |_| {});
    let n = holds_over(&bare);
    let wrapped = run::<Faulty<P, Faithful>>(check, |_| {});
    assert_eq!(holds_over(&wrapped), n, "{}", render_summary(&wrapped));
    assert_eq!(wrapped.stats.unique_states, bare.stats.unique_states);
    assert_eq!(other_verdicts(&wrapped), other_verdicts(&bare));
    eprintln!(
        "{} `{check}`: {} states, {n} steps compared",
        P::NAME,
        bare.stats.unique_states
    );
    (bare, n)
}

/// Where a handler is declared, as a mismatch names it.
struct Named {
    header: String,
    file: String,
    line: usize,
    col: usize,
}

/// Runs `check` of `P` with fault `F` and returns the mismatch: the
/// property must be violated (and nothing else changed), and the message
/// must name a handler as "`header` (file:line:col)" where `header` is what
/// the spec has at that line and column.
fn caught<P: Protocol, F: Fault<P>>(check: &str, base: &CheckReport) -> (String, Named) {
    let r = run::<Faulty<P, F>>(check, |_| {});
    let (v, detail) = verdict_of(&r, "runtime_equivalence");
    assert_eq!(*v, Verdict::Violated, "{}", render_summary(&r));
    assert_eq!(r.as_expected, Some(false), "{}", render_summary(&r));
    assert_eq!(other_verdicts(&r), other_verdicts(base), "{}", render_summary(&r));
    assert_eq!(r.stats.unique_states, base.stats.unique_states);
    assert!(
        detail.starts_with("the deployed node would not be the checked one: "),
        "{detail}"
    );
    let named = handler_named(detail).unwrap_or_else(|| panic!("no handler named in: {detail}"));
    let path = format!(
        "{}/{}",
        env!("CARGO_MANIFEST_DIR"),
        P::SPEC.trim_start_matches("specs/")
    );
    assert_eq!(
        std::path::Path::new(&path).file_name().unwrap().to_string_lossy(),
        named.file,
        "{detail}"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .lines()
        .nth(named.line - 1)
        .and_then(|l| l.get(named.col - 1..))
        .unwrap_or_else(|| panic!("{}:{}:{} is not in the spec", named.file, named.line, named.col));
    assert!(
        at.starts_with(&named.header),
        "{}:{}:{} reads `{at}`, not `{}`",
        named.file,
        named.line,
        named.col,
        named.header
    );
    // The message to a user, as `smelt check` prints it.
    let summary = render_summary(&r);
    assert!(summary.contains(detail), "{summary}");
    eprintln!("{} `{check}` with {}: {detail}", P::NAME, std::any::type_name::<F>());
    (detail.to_string(), named)
}

/// Parses "... in `HEADER` (FILE:LINE:COL) ..." out of a mismatch (the
/// generated label quotes the header itself, so it reads
/// "in ``HEADER` (FILE:LINE:COL).`").
fn handler_named(detail: &str) -> Option<Named> {
    let rest = &detail[detail.find(", in `")? + ", in `".len()..];
    let rest = rest.strip_prefix('`').unwrap_or(rest);
    let (header, rest) = rest.split_once("` (")?;
    let (loc, _) = rest.split_once(')')?;
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_string();
    Some(Named {
        header: header.to_string(),
        file,
        line,
        col,
    })
}

// ------------------------------------------------------------ the tests

/// A small primary-backup search with restarts: two writes, three backups,
/// `crash 1`, so logs are pushed, commit points assigned, timers cancelled
/// and storage replayed after restarts.
const PB: &str = "three_backups";

#[test]
fn faithful_wrapper_holds_like_the_protocol() {
    let (_, n) = baseline::<PrimaryBackup>(PB);
    assert!(n > 1_000, "{n} steps compared");
}

#[test]
fn replay_dropping_a_log_push_is_caught() {
    let (base, _) = baseline::<PrimaryBackup>(PB);
    let (detail, named) = caught::<PrimaryBackup, DropsBackupLogPush>(PB, &base);
    assert_eq!(named.header, "on Replicate(m) from p");
    assert!(
        detail.contains("replaying the runtime's deltas over the last storage does not give the checker's"),
        "{detail}"
    );
    assert!(detail.contains("LogPush"), "{detail}");
}

#[test]
fn replay_ignoring_an_assignment_is_caught() {
    let (base, _) = baseline::<PrimaryBackup>(PB);
    let (detail, named) = caught::<PrimaryBackup, IgnoresCommitted>(PB, &base);
    assert_eq!(named.header, "on Ack(a) from b when a.len > acked[b]");
    assert!(
        detail.contains("replaying the runtime's deltas over the last storage does not give the checker's"),
        "{detail}"
    );
    assert!(detail.contains("Committed("), "{detail}");
}

#[test]
fn replay_rejecting_a_delta_is_caught() {
    let (base, _) = baseline::<PrimaryBackup>(PB);
    let (detail, named) = caught::<PrimaryBackup, RejectsPrimaryLogPush>(PB, &base);
    assert_eq!(named.header, "on request Put(v) from c");
    assert!(
        detail.contains("a delta does not replay: no such change (test fault)"),
        "{detail}"
    );
}

#[test]
fn runtime_effects_differing_are_caught() {
    let (base, _) = baseline::<PrimaryBackup>(PB);
    let (detail, named) = caught::<PrimaryBackup, RuntimeLosesCancels>(PB, &base);
    assert_eq!(named.header, "on Ack(a) from b when a.len > acked[b]");
    assert!(
        detail.contains("the runtime's effects differ from the checker's"),
        "{detail}"
    );
    assert!(detail.contains("CancelTimer"), "{detail}");
}

#[test]
fn runtime_state_differing_is_caught() {
    let (base, _) = baseline::<PrimaryBackup>(PB);
    let (detail, named) = caught::<PrimaryBackup, OwnedPathLosesWrites>(PB, &base);
    assert!(named.header.starts_with("on "), "{detail}");
    assert!(
        detail.contains("the runtime's state differs from the checker's (ghosts aside): "),
        "{detail}"
    );
}

/// With the delta check off (`--no-delta-check`), the same broken replay
/// passes: nothing else in the checker looks at it.
#[test]
fn only_the_delta_check_sees_a_broken_replay() {
    let r = run::<Faulty<PrimaryBackup, DropsBackupLogPush>>(PB, |c| c.delta_check = false);
    let (v, _) = verdict_of(&r, "runtime_equivalence");
    assert_eq!(*v, Verdict::Skipped, "{}", render_summary(&r));
    assert_eq!(r.as_expected, Some(true), "{}", render_summary(&r));
}

/// Raft's ghosts (`leader_log`, and the durable `history`): the runtime
/// does not write them, so the comparison must erase them — and must see
/// the difference when it does not.
const RAFT: &str = "exactly_once";

#[test]
fn raft_ghosts_must_be_erased_to_compare() {
    let (base, _) = baseline::<Raft>(RAFT);
    let (detail, named) = caught::<Raft, KeepsGhosts>(RAFT, &base);
    assert!(
        detail.contains("the runtime's state differs from the checker's (ghosts aside): "),
        "{detail}"
    );
    assert!(
        detail.contains("history: checker") || detail.contains("leader_log: checker"),
        "{detail}"
    );
    assert!(named.header.starts_with("on "), "{detail}");

    let (detail, _) = caught::<Raft, KeepsGhostStorage>(RAFT, &base);
    assert!(
        detail.contains("replaying the runtime's deltas over the last storage does not give the checker's"),
        "{detail}"
    );
    assert!(detail.contains("history"), "{detail}");
}

/// A restart's step is compared too: `starts` (a durable ghost) is
/// incremented by `init` in the checker only. The mismatch names the
/// start of the role and the role's spec line.
#[test]
fn restart_steps_are_compared() {
    let check = "restart_one_client";
    let bare = run::<ChainReplication>(check, |_| {});
    let n = holds_over(&bare);
    eprintln!("ChainReplication `{check}`: {n} steps compared");
    let r = run::<Faulty<ChainReplication, KeepsGhosts>>(check, |_| {});
    let (v, detail) = verdict_of(&r, "runtime_equivalence");
    assert_eq!(*v, Verdict::Violated, "{}", render_summary(&r));
    assert_eq!(other_verdicts(&r), other_verdicts(&bare));
    assert!(
        detail.contains(
            " restarting, in the start of role `Server` (`init`, initializers, initial `entry`; chain_replication.sm:"
        ) && detail.contains("the runtime's state differs from the checker's (ghosts aside): starts: checker "),
        "{detail}"
    );
    eprintln!("ChainReplication `{check}` with KeepsGhosts: {detail}");
}

/// Liveness searches run every step through the same comparison.
#[test]
fn liveness_runs_compare_too() {
    let check = "progress_one_client";
    let (base, n) = baseline::<PrimaryBackup>(check);
    assert_eq!(base.mode, "liveness");
    assert!(n > 1_000, "{n} steps compared");
    let (detail, named) = caught::<PrimaryBackup, DropsBackupLogPush>(check, &base);
    assert_eq!(named.header, "on Replicate(m) from p");
    assert!(
        detail.contains("replaying the runtime's deltas over the last storage does not give the checker's"),
        "{detail}"
    );
}
