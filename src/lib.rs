//! smelt: write a distributed protocol as explicit state machines in a
//! `.sm` spec, model-check the generated Rust, and deploy the same code.
//!
//! ```text
//! smelt::protocol!("specs/paxos.sm"); // defines `mod paxos`
//! ```
//!
//! This crate is the facade: it re-exports the pieces and hosts the `smelt`
//! command-line tool.

pub use smelt_macros::protocol;
/// What generated code depends on; generated modules reach it as `::smelt::support`.
pub use smelt_support as support;

pub mod harness;
pub use smelt_model_check as model_check;
#[cfg(feature = "runtime")]
pub use smelt_runtime as runtime;
#[cfg(feature = "runtime")]
pub use smelt_sim as sim;
