//! The entry point of a spec's harness binary.
//!
//! `smelt check some.sm` (and `run`, `cluster`, `client`) work on any spec
//! path: the CLI generates a tiny crate whose `main` is
//!
//! ```text
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
//! read-only data are 2.2 MB instead of 3.6. That matters for memory: the
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

/// `mi_option_arena_reserve` in mimalloc 3's `mi_option_t` (the bindings
/// of `libmimalloc-sys` do not name it); a test checks it against the
/// option's documented default.
const MI_OPTION_ARENA_RESERVE: std::ffi::c_int = 23;

/// The address space mimalloc reserves per arena, in KiB.
const ARENA_RESERVE_KIB: std::ffi::c_long = 64 * 1024;

extern "C" {
    // From the mimalloc library that `libmimalloc-sys` builds and links.
    fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// Makes mimalloc reserve its heap in 64 MiB arenas instead of 1 GiB ones.
/// The reservation itself is only address space, but each arena's metadata
/// (about 80 bitmaps, one bit per 64 KiB slice each) is sized for it and
/// touched when the arena is set up: 176 KiB resident for 1 GiB before the
/// first object, 4% of a small check (paxos with 2 clients under DFS peaks
/// at 4 MiB); 28 KiB for 64 MiB. mimalloc doubles the size of every eighth
/// new arena, so a check that allocates gigabytes still uses a few dozen
/// (the benchmark's 3-client BFS, 640 MiB, uses 9 and runs as fast).
/// `MIMALLOC_ARENA_RESERVE` in the environment still wins.
///
/// It must run before the first allocation, which the Rust runtime makes
/// before `main`: harness crates register it as an ELF constructor
/// (`.init_array`, run after mimalloc's own, which reads the environment).
/// Only harness binaries do; any other program linking smelt keeps its
/// allocator as it is.
pub extern "C" fn configure_allocator() {
    // SAFETY: sets one value in mimalloc's option table; `mi_option_set_default`
    // ignores an option the environment already set.
    unsafe { mi_option_set_default(MI_OPTION_ARENA_RESERVE, ARENA_RESERVE_KIB) }
}

/// The entry point of a harness built from a spec file: `spec` is the
/// spec's text (for `--version`). A binary from `smelt build` is this
/// harness, so it also answers `--version` and `--help` for operators.
pub fn main_of<P: Protocol>(spec: &[u8]) -> i32 {
    let first = std::env::args().nth(1);
    match first.as_deref() {
        Some("--version" | "-V") => {
            println!("{}", version::<P>(spec));
            0
        }
        Some("--help" | "-h") => {
            println!("{}", usage::<P>(spec));
            0
        }
        None => {
            eprintln!("{}", usage::<P>(spec));
            2
        }
        Some(_) => main::<P>(),
    }
}

/// `<program> (protocol <name>) smelt <version>, spec <file> sha256 <hex>,
/// storage schema sha256 <hex>` (the hash a data directory records).
pub fn version<P: Protocol>(spec: &[u8]) -> String {
    let program = std::env::args()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "smelt-harness".into());
    let file = std::path::Path::new(P::SPEC)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| P::SPEC.to_string());
    format!(
        "{program} (protocol {}) smelt {}, spec {file} sha256 {}, storage schema sha256 {}",
        P::NAME,
        env!("CARGO_PKG_VERSION"),
        smelt_model_check::report::sha256_hex(spec),
        smelt_model_check::report::sha256_hex(P::STORAGE_SCHEMA.as_bytes())
    )
}

fn usage<P: Protocol>(spec: &[u8]) -> String {
    let runtime = if cfg!(feature = "runtime") {
        "  run       run one node (--id, --cluster FILE, --data-dir DIR)
  cluster   run a local cluster on 127.0.0.1
  client    send a request to a cluster (--cluster FILE)
  admin     status of every node; save or inspect a data directory
  sim       seeded simulations of a cluster under faults
"
    } else {
        ""
    };
    format!(
        "{}\n\nUsage: <program> <COMMAND> [OPTIONS]   (<COMMAND> --help for its options)\n\nCommands:\n{runtime}  check     model-check the protocol\n  --version print the version and the spec's hash",
        version::<P>(spec)
    )
}

pub fn main<P: Protocol>() -> i32 {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: <harness> (check|run|cluster|client|admin|sim) [args...]");
        return 2;
    }
    let command = args.remove(0);
    match command.as_str() {
        "check" => smelt_model_check::cli::main::<P>(args),
        #[cfg(feature = "runtime")]
        "run" | "cluster" | "client" | "admin" => smelt_runtime::cli::main::<P>(&command, args),
        #[cfg(feature = "runtime")]
        "sim" => smelt_sim::cli::main::<P>(args),
        #[cfg(not(feature = "runtime"))]
        "run" | "cluster" | "client" | "admin" | "sim" => {
            eprintln!("this harness was built for `check` only (smelt's `runtime` feature is off)");
            2
        }
        other => {
            eprintln!("unknown harness command `{other}`");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_reserve_is_the_option_we_mean() {
        // The option's default (1 GiB, in KiB), unless the environment set it.
        if std::env::var_os("MIMALLOC_ARENA_RESERVE").is_none() {
            // SAFETY: reads mimalloc's option table.
            assert_eq!(unsafe { mi_option_get(MI_OPTION_ARENA_RESERVE) }, 1024 * 1024);
        }
    }
}
