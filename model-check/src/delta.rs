//! The persisted path, checked: each step also runs the handler the way the
//! runtime does — owned state, deltas on, ghost writes off, no full saves —
//! and must produce the same sends, timers and choices and the same state
//! (ghost variables aside), and its deltas, replayed over the node's last
//! storage (as recovery replays the log), must give the storage the checker
//! saved. A mismatch is a checker error that names the handler and its line
//! in the spec: the deployed node would not be the node that was checked.

use crate::system::Cmd;
use smelt_support::{Effects, Id, Protocol};
use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The runtime's way of running a handler (`smelt_runtime::core::Fx`
/// with ghosts off), recording what it does: the model's commands but
/// `Save` (deltas instead).
pub struct RuntimeFx<P: Protocol> {
    pub effects: Vec<Cmd<P>>,
    pub deltas: Vec<P::Delta>,
    pub handler: Option<&'static str>,
}

impl<P: Protocol> RuntimeFx<P> {
    pub fn new() -> Self {
        RuntimeFx {
            effects: Vec::new(),
            deltas: Vec::new(),
            handler: None,
        }
    }
}

impl<P: Protocol> Default for RuntimeFx<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Protocol> Effects<P, P::Delta> for RuntimeFx<P> {
    const DELTAS: bool = true;
    const FULL_SAVE: bool = false;
    const GHOST: bool = false;

    fn send(&mut self, dst: Id, msg: P::Message) {
        self.effects.push(Cmd::Send(dst, msg));
    }
    fn send_early(&mut self, dst: Id, msg: P::Message) {
        self.effects.push(Cmd::SendEarly(dst, msg));
    }
    fn set_timer(&mut self, timer: P::TimerKind, _range: Range<Duration>) {
        self.effects.push(Cmd::SetTimer(timer));
    }
    fn cancel_timer(&mut self, timer: P::TimerKind) {
        self.effects.push(Cmd::CancelTimer(timer));
    }
    fn choose(&mut self, key: &'static str, options: Vec<P::Choice>) {
        self.effects.push(Cmd::Choose(key, options));
    }
    fn save(&mut self, _storage: P::Durable) {}
    fn delta(&mut self, delta: P::Delta) {
        self.deltas.push(delta);
    }
    fn handler(&mut self, name: &'static str) {
        self.handler.get_or_insert(name);
    }
    /// Both lengths, in one number.
    fn mark(&self) -> usize {
        (self.effects.len() << 32) | self.deltas.len()
    }
    fn rollback(&mut self, mark: usize) {
        self.effects.truncate(mark >> 32);
        self.deltas.truncate(mark & 0xffff_ffff);
    }
}

/// The delta check's counters and first mismatch.
#[derive(Default)]
pub struct DeltaCheck {
    pub steps: AtomicU64,
    pub mismatch: Mutex<Option<String>>,
}

impl DeltaCheck {
    pub fn record(&self, what: String) {
        let mut m = self.mismatch.lock().unwrap_or_else(|e| e.into_inner());
        m.get_or_insert(what);
    }

    pub fn first(&self) -> Option<String> {
        self.mismatch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn compared(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }
}

/// Which handler a step ran, for messages.
pub fn handler_name(fx: &RuntimeFx<impl Protocol>, what: &str) -> String {
    match fx.handler {
        Some(h) => format!("{what}, in {}", h.trim_end_matches('.')),
        None => what.to_string(),
    }
}

/// The state a handler left: the new one, or the one it started from.
pub fn result_state<'a, S: Clone>(new: &'a Option<S>, old: &'a S) -> Cow<'a, S> {
    match new {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Borrowed(old),
    }
}
