//! `smelt-runtime`: runs a generated protocol on real sockets and a real
//! disk.

pub mod cli;
