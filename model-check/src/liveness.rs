//! Liveness mode (see `cli::LIVENESS_HELP`).

use crate::config::RunConfig;
use crate::report::CheckReport;
use crate::system::{SysState, System};
use crate::trace::{names, node_name};
use smelt_support::{Id, Protocol};
use std::fmt::Write;
use std::time::Duration;

pub fn run<P: Protocol>(_spec: &str, _cfg: RunConfig, _progress: Option<Duration>) -> Result<CheckReport, String> {
    Err("liveness mode is not implemented yet".into())
}

/// The client histories of a state, one line per client.
pub fn render_history<P: Protocol>(sys: &System<P>, s: &SysState<P>) -> String {
    let mut out = String::from("    client histories:\n");
    for (c, ops) in s.history.clients.iter().enumerate() {
        let id = Id::from(sys.first_client + c);
        let ops: Vec<String> = ops
            .iter()
            .map(|o| match &o.ret {
                Some(r) => format!(
                    "{} → {}",
                    names(sys, &format!("{:?}", o.req)),
                    names(sys, &format!("{r:?}"))
                ),
                None => format!("{} → (in flight)", names(sys, &format!("{:?}", o.req))),
            })
            .collect();
        let _ = writeln!(out, "      {}: {}", node_name(sys, id), ops.join("; "));
    }
    out
}
