//! Subcommands. Exit codes: 0 success, 1 the spec or protocol is wrong (spec
//! errors, a violated property), 2 usage or environment errors.

mod harness;
mod lint;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "smelt",
    version,
    about = "Write a protocol as explicit state machines, model-check it, deploy the same code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs and print their diagnostics.
    Lint(lint::LintArgs),
    /// Print the Rust code generated from a spec.
    Expand(lint::ExpandArgs),
    /// Model-check a spec (see `smelt check <spec> --help` for the options).
    #[command(disable_help_flag = true)]
    Check(Forward),
    /// Run one node of a spec's protocol on real sockets and disk.
    #[command(disable_help_flag = true)]
    Run(Forward),
    /// Run a local cluster of a spec's protocol on 127.0.0.1.
    #[command(disable_help_flag = true)]
    Cluster(Forward),
    /// Send requests to a running cluster of a spec's protocol.
    #[command(disable_help_flag = true)]
    Client(Forward),
}

/// A spec path followed by the arguments of the spec's harness, which parses
/// them itself (it knows the spec's properties, requests and checks).
#[derive(clap::Args)]
struct Forward {
    /// The `.sm` spec.
    spec: std::path::PathBuf,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Lint(a) => lint::lint(a),
        Command::Expand(a) => lint::expand(a),
        Command::Check(f) => harness::run(&f.spec, "check", &f.args),
        Command::Run(f) => harness::run(&f.spec, "run", &f.args),
        Command::Cluster(f) => harness::run(&f.spec, "cluster", &f.args),
        Command::Client(f) => harness::run(&f.spec, "client", &f.args),
    }
}
