//! Subcommands. Exit codes: 0 success, 1 the spec or protocol is wrong (spec
//! errors, a violated property), 2 usage or environment errors.

mod build;
mod certs;
mod check;
mod harness;
mod lint;
mod merge;
mod mutate;

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
    /// Check the spec's checks: run them on semantic mutants of its
    /// protocol and report which mutants no check notices.
    Mutate(mutate::MutateArgs),
    /// Model-check specs: `smelt check a.sm [b.sm dir/ ...] [options]`, one
    /// exit status for all; `--junit FILE` writes a JUnit XML report (see
    /// `smelt check --help` for the other options).
    #[command(disable_help_flag = true)]
    Check(Forward),
    /// Merge the JSON reports of one simulation run as shards (`smelt
    /// check --simulate --shard i/n --json FILE` on several machines) into
    /// one verdict, the unsharded run's; exit status as `smelt check`'s.
    Merge(merge::MergeArgs),
    /// Build a spec's protocol into a standalone executable in DIR (node,
    /// cluster, client, simulator and checker; runs without cargo or the
    /// sources): `smelt build specs/raft.sm -o out/`.
    Build(build::BuildArgs),
    /// Make a certificate authority and certificates for a cluster file's
    /// nodes and clients, and turn on mutual TLS in it: `smelt certs
    /// --cluster cluster.toml`.
    Certs(certs::CertsArgs),
    /// Run one node of a spec's protocol on real sockets and disk.
    #[command(disable_help_flag = true)]
    Run(Forward),
    /// Run a local cluster of a spec's protocol on 127.0.0.1.
    #[command(disable_help_flag = true)]
    Cluster(Forward),
    /// Send a request to a running cluster: `smelt client [spec.sm] --cluster
    /// cluster.toml put 5` (the spec defaults to the cluster file's `spec`).
    #[command(disable_help_flag = true)]
    Client(ClientForward),
    /// Operate a running cluster: `smelt admin [spec.sm] status --cluster
    /// cluster.toml`, `save` (a consistent copy of a node's data directory)
    /// and `inspect` (see `smelt admin --help`).
    #[command(disable_help_flag = true)]
    Admin(ClientForward),
    /// Run the deployed node code of every node of a cluster in one process,
    /// under a seeded scheduler with network, disk and clock faults (see
    /// `smelt sim <spec> --help`).
    #[command(disable_help_flag = true)]
    Sim(Forward),
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

/// `smelt client` arguments: an optional spec path, then the harness's.
#[derive(clap::Args)]
struct ClientForward {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Splits off the spec: the first argument when it names a `.sm` file,
/// otherwise the `spec` of the cluster file given with `--cluster`.
fn client_spec(mut args: Vec<String>) -> Result<(std::path::PathBuf, Vec<String>), String> {
    if args.first().is_some_and(|a| a.ends_with(".sm")) {
        let spec = args.remove(0);
        return Ok((spec.into(), args));
    }
    let file = args
        .iter()
        .position(|a| a == "--cluster")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--cluster=").map(String::from)))
        .ok_or("usage: smelt client [spec.sm] --cluster cluster.toml <request> [args...]")?;
    let spec = smelt_runtime::cluster::spec_of(std::path::Path::new(&file))?;
    Ok((spec, args))
}

/// The help of a command whose options are the harness's but do not depend
/// on the spec (`None` for the others).
fn spec_free_help(command: &str) -> Option<String> {
    match command {
        "check" => {
            use clap::CommandFactory;
            let mut cmd = smelt_model_check::cli::Args::command().override_usage("smelt check <SPEC> [OPTIONS]");
            Some(cmd.render_long_help().to_string())
        }
        "run" | "cluster" | "client" | "admin" => smelt_runtime::cli::help(command),
        "sim" => Some(smelt_sim::cli::help()),
        _ => None,
    }
}

pub fn main() -> i32 {
    // `smelt check --help` without a spec: the options are the harness's, but
    // they do not depend on the spec, so print them without building one.
    // The same for the runtime's commands and the simulator.
    let argv: Vec<String> = std::env::args().collect();
    if let Some(command) = argv.get(1).map(String::as_str) {
        if matches!(argv.get(2).map(String::as_str), None | Some("--help" | "-h")) {
            if let Some(help) = spec_free_help(command) {
                // Without any argument it is a usage error, shown as help.
                if argv.len() == 2 {
                    eprintln!("{help}");
                    return 2;
                }
                println!("{help}");
                return 0;
            }
        }
    }
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
        Command::Mutate(a) => mutate::mutate(a),
        Command::Check(f) => check::run(f.spec, f.args),
        Command::Merge(a) => merge::merge(a),
        Command::Build(a) => build::build(a),
        Command::Certs(a) => certs::certs(a),
        Command::Run(f) => harness::run(&f.spec, "run", &f.args),
        Command::Cluster(f) => harness::run(&f.spec, "cluster", &f.args),
        Command::Sim(f) => harness::run(&f.spec, "sim", &f.args),
        Command::Client(f) => match client_spec(f.args) {
            Ok((spec, args)) => harness::run(&spec, "client", &args),
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
        Command::Admin(f) => match client_spec(f.args) {
            Ok((spec, args)) => harness::run(&spec, "admin", &args),
            Err(e) => {
                eprintln!("error: {e}");
                2
            }
        },
    }
}
