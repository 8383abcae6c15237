//! The deterministic simulator: every node of a cluster, with the runtime's
//! own event-loop core (`smelt_runtime::core`), storage and recovery
//! (`storage` on the in-memory `vfs::SimFs` disk) and client policy
//! (`client::Policy`), in one process, driven by a seeded scheduler with an
//! injected clock, network and disk. On every run it checks the spec's
//! invariants on the nodes' states after every event, the linearizability
//! of the client histories at the end, and progress once the faults stop.
//! A run is a function of its seed: a failure prints the seed, and the same
//! seed replays it with a full event trace.
//!
//! What the simulated environment does (each as the real one can, see the
//! runtime's contract with the model in ARCHITECTURE.md):
//! - **Network.** Frames between two live processes arrive in order (TCP)
//!   after a latency; a partition stalls a link, and the stalled frames
//!   arrive after it heals (TCP retransmits them). A crashed process's
//!   connections reset: frames on the way to it are lost, frames on the way
//!   from it arrive up to a random point. Frames sent to a node that is
//!   down wait in the sender's queue (up to the runtime's bound) and arrive
//!   once it is back.
//! - **Disk.** Records become durable when the simulated fsync completes
//!   (a latency after the core hands them over); a crash keeps what was
//!   durable, and, if an fsync was in flight, possibly a torn prefix of
//!   its bytes (with a zeroed last page). A node that is down may find a
//!   flipped bit in a record or a snapshot: recovery must refuse it (the
//!   simulator then repairs the bit, as an operator restoring the file
//!   would, and restarts). An fsync may fail: the node stops (exit 4).
//! - **Clock.** Each node's clock runs at its own rate (±5%); timers fire
//!   on the node's clock.
//! - **Clients.** Each runs its workload through the runtime client's
//!   `Policy` (timeouts, resends, redirects, deadlines), on the simulated
//!   network and clock.

mod world;

pub mod cli;

pub use world::{run, Bugs, Options, Outcome, Stats, Verdict};
