//! What the tests that run the `smelt` binary share.

use std::process::Command;

pub const SMELT: &str = env!("CARGO_BIN_EXE_smelt");

/// Runs `smelt args...`: the exit code, stdout and stderr.
pub fn smelt(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(SMELT).args(args).output().expect("run smelt");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
