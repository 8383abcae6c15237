//! `smelt-model-check`: everything between a generated protocol and
//! stateright — configurations, faults, clients, properties, search modes,
//! reports and traces.

pub mod cli;
