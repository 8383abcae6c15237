//! Handler errors: what happens instead of a panic or a silent wrap.
//!
//! A handler that overflows an integer, reads a missing map key, unwraps
//! `None` or fails an `assert` stops with a `HandlerError`. The model checker
//! reports it as a violation of the built-in `handler_error` property, with
//! the trace that led there; the runtime logs it and stops the node
//! (fail-stop), without persisting or sending anything from that handler.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A position in the spec: one-based line and column, and the file: 0 for
/// the spec itself, 1 for a variant's base (`Protocol::SPEC_BASE`), where
/// the code of a variant comes from unless the variant wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Loc(pub u32, pub u32, pub u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorKind {
    Overflow,
    DivisionByZero,
    MissingKey,
    IndexOutOfRange,
    UnwrapNone,
    EmptyCollection,
    AssertionFailed,
    ConversionOutOfRange,
    /// `entry` blocks kept changing state without settling.
    GotoLoop,
}

impl ErrorKind {
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::Overflow => "integer overflow",
            ErrorKind::DivisionByZero => "division by zero",
            ErrorKind::MissingKey => "map has no such key",
            ErrorKind::IndexOutOfRange => "list index out of range",
            ErrorKind::UnwrapNone => "`unwrap` of `None`",
            ErrorKind::EmptyCollection => "`min`/`max` of an empty collection",
            ErrorKind::AssertionFailed => "assertion failed",
            ErrorKind::ConversionOutOfRange => "value out of range for the target type",
            ErrorKind::GotoLoop => "`entry` blocks changed state too many times in a row",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HandlerError {
    pub kind: ErrorKind,
    pub at: Loc,
    /// The operands or the failed assertion's text.
    pub detail: String,
}

impl HandlerError {
    pub fn new(kind: ErrorKind, at: Loc, detail: impl Into<String>) -> HandlerError {
        HandlerError {
            kind,
            at,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}:{}", self.kind.describe(), self.at.0, self.at.1)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for HandlerError {}
