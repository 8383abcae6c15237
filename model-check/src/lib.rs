//! `smelt-model-check`: everything between a generated protocol and the
//! search — configurations, faults, clients, properties, search modes,
//! reports and traces. It depends on the `Protocol` trait of
//! `smelt-support` only, never on the spec language.

pub mod cli;
pub mod column;
pub mod config;
pub mod delta;
pub mod edges;
pub mod explore;
pub mod frontier;
pub mod history;
pub mod liveness;
pub mod memory;
pub mod net;
pub mod props;
pub mod report;
pub mod search;
pub mod simulate;
pub mod symmetry;
pub mod system;
pub mod trace;
pub mod visited;

pub use config::RunConfig;
pub use search::Search;
pub use system::System;
