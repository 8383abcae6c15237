//! The entry point of a spec's harness binary.
//!
//! `smelt check some.sm` (and `run`, `cluster`, `client`) work on any spec
//! path: the CLI generates a tiny crate whose `main` is
//!
//! ```ignore
//! smelt::protocol!("/abs/path/some.sm");
//! fn main() { std::process::exit(smelt::harness::main::<some::Some>()) }
//! ```
//!
//! builds it once (cached under `target/smelt-harness`, rebuilt by cargo only
//! when the spec or smelt changes) and runs it. This function dispatches the
//! harness's own command line to the checker or the runtime.
//!
//! There are two harnesses per spec. `smelt check` builds one against smelt
//! without default features: it links the checker only, not the runtime
//! (tokio — whose scheduler also loads libm —, toml, tracing, postcard) nor
//! the front end. It builds in about half the CPU time, and its code and
//! read-only data are 2.2 MB instead of 3.7. That matters for memory: the
//! pages of the binary a run touches (the kernel maps them 64 KiB at a
//! time) count towards its resident set, and in a small check they are
//! most of it — paxos with 2 clients under DFS peaked at 5.0 MiB with the
//! full harness and 4.0 MiB with this one. `smelt run`, `cluster` and
//! `client` build the other harness, with the `runtime` feature.

use smelt_support::Protocol;

/// The harness's allocator. Model checking clones and drops millions of
/// small states; mimalloc is markedly faster at that than the system
/// allocator (see the model-check benchmark). It is built with `no_thp`
/// (see the root `Cargo.toml`): by default mimalloc asks the kernel for
/// transparent huge pages on its arenas, so every 2 MiB region it touches
/// becomes resident at once, which tripled the peak of small checks (paxos
/// with 2 clients, BFS on 2 threads: 44 MiB, 16 MiB without). A kernel
/// whose THP setting is `always` rather than `madvise` may still use them.
pub type Allocator = mimalloc::MiMalloc;
/// The allocator value, for `#[global_allocator]` in harness crates.
pub const MIMALLOC: Allocator = mimalloc::MiMalloc;

pub fn main<P: Protocol>() -> i32 {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: <harness> (check|run|cluster|client) [args...]");
        return 2;
    }
    let command = args.remove(0);
    match command.as_str() {
        "check" => smelt_model_check::cli::main::<P>(args),
        #[cfg(feature = "runtime")]
        "run" | "cluster" | "client" => smelt_runtime::cli::main::<P>(&command, args),
        #[cfg(not(feature = "runtime"))]
        "run" | "cluster" | "client" => {
            eprintln!("this harness was built for `check` only (smelt's `runtime` feature is off)");
            2
        }
        other => {
            eprintln!("unknown harness command `{other}`");
            2
        }
    }
}
