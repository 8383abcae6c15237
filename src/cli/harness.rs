//! Builds and runs a spec's harness binary (see `smelt::harness`).
//!
//! Layout under `<target>/smelt-harness/`: per spec path two directories,
//! each holding a two-file crate — `<stem>-<hash of the absolute path>-check`
//! for `smelt check` (smelt without default features: the checker only) and
//! `<stem>-<hash>` for `run`, `cluster` and `client` (with the `runtime`
//! feature) — and one shared `target/` so that smelt and its dependencies
//! compile once for all specs. Cargo's own change tracking (the macro's
//! `include_bytes!` of the spec) decides when a harness needs rebuilding.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The smelt source tree this binary was built from.
const SMELT_ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) fn harness_root() -> PathBuf {
    if let Some(d) = std::env::var_os("SMELT_HARNESS_DIR") {
        return PathBuf::from(d);
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t).join("smelt-harness"),
        None => Path::new(SMELT_ROOT).join("target").join("smelt-harness"),
    }
}

/// Checks the spec, builds its harness if needed and runs
/// `<harness> <command> <args>`. Returns the exit code.
pub fn run(spec: &Path, command: &str, args: &[String]) -> i32 {
    // `check` needs only the checker; the runtime's commands get the harness
    // that also links the runtime.
    let bin = match build(spec, command == "check") {
        Ok(b) => b,
        Err(code) => return code,
    };
    let status = Command::new(&bin)
        .arg(command)
        .args(args)
        .env("SMELT_SPEC_PATH", spec)
        .status();
    match status {
        Ok(s) => s.code().unwrap_or(2),
        Err(e) => {
            eprintln!("error: cannot run {}: {e}", bin.display());
            2
        }
    }
}

/// Checks the spec and builds its harness if needed (`check_only`: the
/// checker's, else the one that also links the runtime). Returns the
/// binary, or the exit code after saying what went wrong.
pub fn build(spec: &Path, check_only: bool) -> Result<PathBuf, i32> {
    let abs = match spec.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", spec.display());
            return Err(2);
        }
    };
    let checked = match smelt_dsl::check_file(&abs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", spec.display());
            return Err(2);
        }
    };
    let Some(ir) = &checked.spec else {
        // Show the path as the user wrote it.
        let shown = smelt_dsl::check_file(spec)
            .map(|c| c.render_errors())
            .unwrap_or_default();
        eprint!("{shown}");
        return Err(2);
    };
    let module = smelt_compiler::module_name(ir);
    let protocol = ir.name.clone();
    let root = harness_root();
    let stem = abs
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spec".into());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    let suffix = if check_only { "-check" } else { "" };
    let dir = root.join(format!("{}-{:016x}{suffix}", stem, h.finish()));
    if let Err(e) = write_crate(&dir, &abs, &module, &protocol, check_only) {
        eprintln!("error: cannot write the harness in {}: {e}", dir.display());
        return Err(2);
    }
    let target = root.join("target");
    let bin = target
        .join("release")
        .join(format!("smelt-harness-{}", crate_suffix(&dir)));
    if !bin.exists() {
        eprintln!(
            "smelt: building the model for {} (the first build takes a minute or two)...",
            spec.display()
        );
    }
    match cargo_build(&dir, &target) {
        Ok(o) if o.status.success() => Ok(bin),
        Ok(o) => {
            eprintln!("error: building the harness for {} failed:", spec.display());
            eprint!("{}", String::from_utf8_lossy(&o.stderr));
            Err(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(2)
        }
    }
}

fn crate_suffix(dir: &Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().replace(['.', ' '], "_"))
        .unwrap_or_default()
        .to_lowercase()
}

pub(crate) fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text)?;
    }
    Ok(())
}

fn write_crate(dir: &Path, spec: &Path, module: &str, protocol: &str, check_only: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    let name = format!("smelt-harness-{}", crate_suffix(dir));
    let features = if check_only { "" } else { "\"runtime\"" };
    let manifest = manifest(&name, features, 1, "`smelt`");
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    let main = format!(
        r#"// Generated by `smelt`; safe to delete.
smelt::protocol!({spec:?});

#[global_allocator]
static ALLOCATOR: smelt::harness::Allocator = mimalloc_instance();

const fn mimalloc_instance() -> smelt::harness::Allocator {{
    smelt::harness::MIMALLOC
}}

// Sets the allocator's options before the first allocation.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE_ALLOCATOR: extern "C" fn() = smelt::harness::configure_allocator;

fn main() {{
    // The spec's text, for `--version`.
    std::process::exit(smelt::harness::main_of::<{module}::{protocol}>(include_bytes!({spec:?})))
}}
"#,
        spec = spec.display().to_string()
    );
    write_if_changed(&dir.join("src").join("main.rs"), &main)?;
    copy_lock(dir);
    Ok(())
}

/// `<stem>-<hash of the absolute path>`: a directory name per spec.
pub(crate) fn dir_key(abs: &Path) -> String {
    let stem = abs
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spec".into());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    format!("{stem}-{:016x}", h.finish())
}

/// Builds one checker-only harness for several versions of a spec (each
/// `(name, text)` a module `name` that is also the harness's first
/// argument: `<bin> <name> check ...`), and returns the binary. Used by
/// `smelt mutate`, so that many mutants cost one build.
pub(crate) fn build_multi(
    dir: &Path,
    files: &[(String, String)],
    module: &str,
    protocol: &str,
) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| format!("cannot write the harness in {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("src")).map_err(io)?;
    let name = format!(
        "smelt-harness-{}",
        crate_suffix(dir.parent().unwrap_or(dir)) + "_" + &crate_suffix(dir)
    );
    let manifest = manifest(&name, "", 0, "`smelt mutate`");
    write_if_changed(&dir.join("Cargo.toml"), &manifest).map_err(io)?;
    let mut mods = String::new();
    let mut arms = String::new();
    for (m, text) in files {
        let path = dir.join(format!("{m}.sm"));
        write_if_changed(&path, text).map_err(io)?;
        mods.push_str(&format!(
            "mod {m} {{\n    smelt::protocol!({:?});\n}}\n",
            path.display().to_string()
        ));
        let key = m.trim_start_matches('m');
        arms.push_str(&format!(
            "        {key:?} => smelt::model_check::cli::main::<{m}::{module}::{protocol}>(args),\n"
        ));
    }
    let main = format!(
        r#"// Generated by `smelt mutate`; safe to delete.
{mods}
fn main() {{
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `<bin> <version> check <options>`: only the checker is linked.
    if args.len() < 2 || args[1] != "check" {{
        eprintln!("usage: <harness> <version> check [options]");
        std::process::exit(2);
    }}
    let which = args.remove(0);
    args.remove(0);
    std::process::exit(match which.as_str() {{
{arms}        other => {{
            eprintln!("no version `{{other}}` in this harness");
            2
        }}
    }})
}}
"#
    );
    write_if_changed(&dir.join("src").join("main.rs"), &main).map_err(io)?;
    copy_lock(dir);
    let target = harness_root().join("target");
    let out = cargo_build(dir, &target)?;
    if !out.status.success() {
        return Err(format!(
            "building the mutants in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(target.join("release").join(name))
}

/// The harness crate's manifest: smelt from this source tree with
/// `features`, built with debug info level `debug`; `by` names the
/// command that wrote it.
fn manifest(name: &str, features: &str, debug: u8, by: &str) -> String {
    format!(
        r#"# Generated by {by}; safe to delete.
[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
smelt = {{ path = {root:?}, default-features = false, features = [{features}] }}

[profile.release]
debug = {debug}

[workspace]
"#,
        root = SMELT_ROOT
    )
}

/// Resolve dependencies exactly as the smelt workspace does.
fn copy_lock(dir: &Path) {
    if !dir.join("Cargo.lock").exists() {
        let _ = std::fs::copy(Path::new(SMELT_ROOT).join("Cargo.lock"), dir.join("Cargo.lock"));
    }
}

/// `cargo build --release` of a harness crate into the shared `target`.
fn cargo_build(dir: &Path, target: &Path) -> Result<std::process::Output, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .output()
        .map_err(|e| format!("cannot run cargo ({}): {e}", Path::new(&cargo).display()))
}
