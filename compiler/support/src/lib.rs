//! What code generated from a `.sm` spec depends on, besides `stateright`
//! and `serde`: checked arithmetic that reports handler errors instead of
//! wrapping or panicking, the model of a client, the `Effects` interface that
//! lets the same handler code run in the model checker and on the runtime,
//! node-id rewriting for symmetry reduction, and the `Protocol` trait through
//! which `smelt-model-check` and `smelt-runtime` drive a generated protocol.
//!
//! Boundary: this crate knows nothing about the `.sm` language. It is a
//! runtime library for generated code, and the only interface the checker
//! and the runtime have to a protocol.

pub mod args;
pub mod bytes;
pub mod client;
pub mod effects;
pub mod error;
pub mod ops;
pub mod protocol;
pub mod rewrite;
pub mod session;

pub use args::parse_map;
pub use bytes::Bytes;
pub use client::{Caller, Client, ClientActor, ClientMsg, ClientState, ClientTimer, Policy, Step, Target};
pub use effects::Effects;
pub use error::{ErrorKind, HandlerError, Loc};
pub use protocol::*;
pub use rewrite::{IdMap, Rewrite};
pub use session::{request_hash, Admit, Session, SessionError, Sessions, SEQ_AHEAD_MAX};

pub use serde;
pub use stateright;
pub use stateright::actor::Id;

/// Ordered collections only: iteration order is part of a protocol's
/// behaviour, so it must not depend on hashing.
pub type Map<K, V> = std::collections::BTreeMap<K, V>;
pub type Set<T> = std::collections::BTreeSet<T>;

/// `format!("{:?}", x)`, as a function so generated code stays formattable.
pub fn debug<T: std::fmt::Debug>(x: &T) -> String {
    format!("{x:?}")
}

/// How a generated handler body ends: stay in the current state, or `goto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow<S> {
    Stay,
    Goto(S),
}

/// `entry` blocks may `goto` again; this many transitions in one event is a
/// handler error (a state machine that never settles).
pub const GOTO_CHAIN_MAX: u32 = 16;
