//! `smelt check`, as run by a spec's harness binary.

use smelt_support::Protocol;

/// Runs `smelt check` for protocol `P` with the given arguments (after the
/// spec path). Returns the exit code.
pub fn main<P: Protocol>(args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("smelt check: not built yet for {}", P::NAME);
    2
}
