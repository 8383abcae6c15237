//! The protocol library, compiled: every spec in this directory through
//! `smelt::protocol!`, so that tests and benchmarks can drive the generated
//! code directly. The `.sm` files are the source of truth; `smelt check`
//! works on them without this crate.

smelt::protocol!("paxos.sm");
smelt::protocol!("two_phase_commit.sm");
