//! `smelt check --explore`: stateright's Explorer on the generated model.

use crate::config::RunConfig;
use smelt_support::Protocol;

pub fn serve<P: Protocol>(_cfg: RunConfig, _addr: &str) -> i32 {
    eprintln!("--explore is not implemented yet");
    2
}
