//! The build-script API: generate a spec's module into `OUT_DIR`.
//!
//! In `build.rs`, call `smelt_compiler::build("specs/raft.sm")` from
//! `main`; then in `src/lib.rs`,
//! `include!(concat!(env!("OUT_DIR"), "/raft.rs"));` defines `mod raft`.

use crate::{expand, pretty, Options};
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
        let text = std::fs::read_to_string(&spec).map_err(|e| format!("error: cannot read {}: {e}", spec.display()))?;
        let (module, tokens) = expand(&self.spec.display().to_string(), &text, &self.options)?;
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(
                std::env::var_os("OUT_DIR").ok_or("error: OUT_DIR is not set; call `build` from a build script")?,
            ),
        };
        let out = out_dir.join(format!("{module}.rs"));
        let code = pretty(&tokens);
        // Write only on change, so an untouched spec does not force a rebuild.
        if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&out, code).map_err(|e| format!("error: cannot write {}: {e}", out.display()))?;
        }
        Ok(out)
    }
}
