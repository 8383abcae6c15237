//! The build-script API: generate a spec's module into `OUT_DIR`.
//!
//! In `build.rs`, call `smelt_compiler::build("specs/raft.sm")` from
//! `main`; then in `src/lib.rs`,
//! `include!(concat!(env!("OUT_DIR"), "/raft.rs"));` defines `mod raft`.

use crate::{expand_file, pretty, Options};
use std::path::{Path, PathBuf};

/// Generates `OUT_DIR/<module>.rs` for a spec, and tells cargo to re-run
/// when the spec (or its directory) changes. A spec error stops the build
/// with the same `file:line:col` text `smelt lint` prints.
pub fn build(spec: impl AsRef<Path>) {
    Builder::new(spec).run()
}

/// A small builder for the less common options.
pub struct Builder {
    spec: PathBuf,
    options: Options,
    out_dir: Option<PathBuf>,
}

impl Builder {
    pub fn new(spec: impl AsRef<Path>) -> Builder {
        Builder {
            spec: spec.as_ref().to_path_buf(),
            options: Options::default(),
            out_dir: None,
        }
    }

    /// The path generated code uses to reach `smelt-support`
    /// (default `::smelt::support`).
    pub fn support_path(mut self, path: &str) -> Builder {
        self.options.support_path = path.to_string();
        self
    }

    /// Where to write (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Builder {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Generates the module; on a spec error prints it and exits the build
    /// script with status 1 (cargo shows the message).
    pub fn run(self) {
        if let Err(msg) = self.try_run() {
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }

    /// Generates the module and returns the path written.
    pub fn try_run(&self) -> Result<PathBuf, String> {
        let spec = if self.spec.is_relative() {
            match std::env::var_os("CARGO_MANIFEST_DIR") {
                Some(dir) => PathBuf::from(dir).join(&self.spec),
                None => self.spec.clone(),
            }
        } else {
            self.spec.clone()
        };
        println!("cargo:rerun-if-changed={}", spec.display());
        if let Some(dir) = spec.parent() {
            // A new spec in the directory (an `include`d one later) is noticed too.
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        let expanded = expand_file(&spec, &self.spec.display().to_string(), &self.options)?;
        // A variant's base is an input too.
        for input in expanded.inputs.iter().skip(1) {
            println!("cargo:rerun-if-changed={}", input.display());
        }
        let (module, tokens) = (expanded.module, expanded.tokens);
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(
                std::env::var_os("OUT_DIR").ok_or("error: OUT_DIR is not set; call `build` from a build script")?,
            ),
        };
        let out = out_dir.join(format!("{module}.rs"));
        forget_renamed_module(&out_dir, &spec, &module)?;
        let code = pretty(&tokens);
        // Write only on change, so an untouched spec does not force a rebuild.
        if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&out, code).map_err(|e| format!("error: cannot write {}: {e}", out.display()))?;
        }
        Ok(out)
    }
}

/// The file in `OUT_DIR` that remembers which module each spec generated.
const MANIFEST: &str = "smelt-modules.txt";

/// When a spec's protocol is renamed, its module file changes name too. The
/// old `OUT_DIR/<old>.rs` would otherwise stay behind, and an `include!` of it
/// would keep compiling against stale code; deleting it turns the rename into
/// a clear "file not found" error at the `include!`. The manifest holds one
/// `spec path <TAB> module` line per spec built into this `OUT_DIR`.
fn forget_renamed_module(out_dir: &Path, spec: &Path, module: &str) -> Result<(), String> {
    let manifest = out_dir.join(MANIFEST);
    let key = spec.display().to_string();
    let old = std::fs::read_to_string(&manifest).unwrap_or_default();
    let mut lines: Vec<(String, String)> = old
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(s, m)| (s.to_string(), m.to_string()))
        .collect();
    let mut changed = true;
    match lines.iter().position(|(s, _)| *s == key) {
        Some(i) if lines[i].1 == module => changed = false,
        Some(i) => {
            let previous = std::mem::replace(&mut lines[i].1, module.to_string());
            // Another spec may legitimately generate the old module name;
            // only delete a file no other entry still claims.
            if !lines.iter().any(|(_, other)| *other == previous) {
                let stale = out_dir.join(format!("{previous}.rs"));
                match std::fs::remove_file(&stale) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("error: cannot remove stale {}: {e}", stale.display())),
                }
            }
        }
        None => lines.push((key, module.to_string())),
    }
    if changed {
        let text: String = lines.iter().map(|(s, m)| format!("{s}\t{m}\n")).collect();
        std::fs::write(&manifest, text).map_err(|e| format!("error: cannot write {}: {e}", manifest.display()))?;
    }
    Ok(())
}
