//! `smelt run`, `smelt cluster` and `smelt client`, as run by a spec's
//! harness binary.

use smelt_support::Protocol;

/// Runs a runtime subcommand (`run`, `cluster`, `client`) for protocol `P`.
pub fn main<P: Protocol>(command: &str, args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("smelt {command}: not built yet for {}", P::NAME);
    2
}
