//! The output side of a handler, abstracted so that one generated handler
//! body serves both worlds.
//!
//! In the model checker the effects go to stateright's `Out` (full storage
//! snapshots, no deltas). On the runtime they go to the node's event loop,
//! which persists the *deltas* of durable state (so appending to a log of a
//! million entries writes one entry) and releases messages only after the
//! fsync. Handlers are generic over `E: Effects`, so both instantiations are
//! the same source code, monomorphized.

use stateright::actor::{Actor, Command, Id, Out};
use std::ops::Range;
use std::time::Duration;

pub trait Effects<A: Actor, D> {
    /// Whether handlers should report durable deltas (`delta`).
    const DELTAS: bool;
    /// Whether handlers should report full storage snapshots (`save`).
    const FULL_SAVE: bool;
    /// Whether handlers should update `ghost` variables: yes where
    /// properties are evaluated (the checker), no on the runtime.
    const GHOST: bool;

    fn send(&mut self, dst: Id, msg: A::Msg);
    /// `send early`: the message may leave before this handler's durable
    /// writes are on disk (not before earlier handlers' writes). Where the
    /// difference does not matter it is an ordinary send.
    fn send_early(&mut self, dst: Id, msg: A::Msg) {
        self.send(dst, msg)
    }
    fn set_timer(&mut self, timer: A::Timer, range: Range<Duration>);
    fn cancel_timer(&mut self, timer: A::Timer);
    fn choose(&mut self, key: &'static str, options: Vec<A::Random>);
    fn save(&mut self, storage: A::Storage);
    fn delta(&mut self, delta: D);
    /// Generated code calls this as a handler starts, with the handler's
    /// header and place in the spec (`on AppendEntries(m) from src
    /// (raft.sm:412:5)`), so a tool can name what ran. Nothing by default.
    #[inline]
    fn handler(&mut self, name: &'static str) {
        let _ = name;
    }
    /// A position to roll back to if the handler fails.
    fn mark(&self) -> usize;
    /// Forgets every effect after `mark`: a failed handler has no effects.
    fn rollback(&mut self, mark: usize);
}

impl<A: Actor, D> Effects<A, D> for Out<A> {
    const DELTAS: bool = false;
    const FULL_SAVE: bool = true;
    const GHOST: bool = true;

    #[inline]
    fn send(&mut self, dst: Id, msg: A::Msg) {
        Out::send(self, dst, msg)
    }

    #[inline]
    fn set_timer(&mut self, timer: A::Timer, range: Range<Duration>) {
        Out::set_timer(self, timer, range)
    }

    #[inline]
    fn cancel_timer(&mut self, timer: A::Timer) {
        Out::cancel_timer(self, timer)
    }

    #[inline]
    fn choose(&mut self, key: &'static str, options: Vec<A::Random>) {
        Out::choose_random(self, key, options)
    }

    #[inline]
    fn save(&mut self, storage: A::Storage) {
        Out::save(self, storage)
    }

    #[inline]
    fn delta(&mut self, _delta: D) {}

    fn mark(&self) -> usize {
        self.len()
    }

    fn rollback(&mut self, mark: usize) {
        type Cmd<A> = Command<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random, <A as Actor>::Storage>;
        let kept: Vec<Cmd<A>> = std::mem::take(self).into_iter().take(mark).collect();
        *self = kept.into_iter().collect();
    }
}
