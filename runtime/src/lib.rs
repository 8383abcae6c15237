//! `smelt-runtime`: runs a generated protocol on real sockets and a real
//! disk, keeping the assumptions the model checker made: one handler at a
//! time per node, durable state on disk before any of its effects are
//! visible, messages that may be lost but are never corrupted or forged, and
//! a restart that restores exactly the durable state.
//!
//! - [`frame`]: the wire format (length-prefixed, versioned, checksummed).
//! - [`connection`]: TCP tasks for peers and clients.
//! - [`tls`]: mutual TLS on those connections; certificates for a cluster.
//! - [`storage`]: the write-ahead log of deltas, snapshots and recovery.
//! - [`commit`]: the group-commit thread.
//! - [`node`]: the event loop that owns the actor state.
//! - [`cluster`]: the cluster file.
//! - [`client`]: a blocking client library.
//! - [`metrics`]: `/metrics`, `/health` and `/ready` for operators.
//! - [`admin`]: `admin status`, `save` and `inspect` for operators.
//! - [`cli`]: `smelt run`, `smelt cluster`, `smelt client`.

pub mod admin;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod commit;
pub mod connection;
pub mod core;
pub mod frame;
pub mod metrics;
pub mod node;
pub mod rng;
pub mod storage;
pub mod tls;
pub mod vfs;
