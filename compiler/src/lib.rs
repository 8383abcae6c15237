//! `smelt-compiler`: checked spec IR → Rust.
//!
//! The code generator is an ordinary library with no I/O: [`compile`] takes
//! a checked [`Spec`](smelt_dsl::ir::Spec) and returns tokens. The proc
//! macro (`smelt-macros`) and the build-script API ([`build`]) are thin
//! shells around [`expand`], which adds the front end and turns spec errors
//! into the same `file:line:col` text `smelt lint` prints.
//!
//! What the generated module contains, and why, is described in
//! `ARCHITECTURE.md` (section "Generated code").

mod build;
mod expr;
mod names;
mod protocol;
mod rewrite;
mod role;
pub mod schema;
mod stmt;
mod ty;

pub use build::{build, Builder};

use proc_macro2::TokenStream;
use smelt_dsl::ir::Spec;
use smelt_dsl::SourceFile;

/// Code generation options.
#[derive(Clone, Debug)]
pub struct Options {
    /// The path through which generated code reaches `smelt-support`.
    /// `::smelt::support` for users of the `smelt` crate.
    pub support_path: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            support_path: "::smelt::support".to_string(),
        }
    }
}

/// Generates the Rust module for a checked spec. `file` is the spec's
/// source, used to turn spans into the line:column positions that handler
/// errors report.
pub fn compile(spec: &Spec, file: &SourceFile, options: &Options) -> TokenStream {
    let support: TokenStream = options
        .support_path
        .parse()
        .unwrap_or_else(|_| "::smelt::support".parse().expect("valid path"));
    let g = Gen { spec, file, s: support };
    g.module()
}

/// The name of the module generated for a spec (`Paxos` → `paxos`).
pub fn module_name(spec: &Spec) -> String {
    names::snake(&spec.name)
}

/// Checks and compiles spec source text. On error, returns the rendered
/// diagnostics (errors only, no colour): the text a user sees.
pub fn expand(name: &str, text: &str, options: &Options) -> Result<(String, TokenStream), String> {
    let checked = smelt_dsl::check_source(name, text);
    match &checked.spec {
        Some(spec) => Ok((module_name(spec), compile(spec, &checked.file, options))),
        None => Err(checked.render_errors()),
    }
}

/// A spec file expanded: the module's name, its tokens, and every file the
/// expansion read (the spec, and a variant's base), for change tracking.
pub struct Expanded {
    pub module: String,
    pub tokens: TokenStream,
    pub inputs: Vec<std::path::PathBuf>,
}

/// Checks and compiles the spec at `path` (a variant's base is read next to
/// it), showing it as `shown` in diagnostics. On error, returns the
/// rendered diagnostics.
pub fn expand_file(path: &std::path::Path, shown: &str, options: &Options) -> Result<Expanded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(std::path::Path::new(""));
    let checked = smelt_dsl::check_source_in(shown, &text, dir);
    let mut inputs = vec![path.to_path_buf()];
    inputs.extend(checked.base.clone());
    match &checked.spec {
        Some(spec) => Ok(Expanded {
            module: module_name(spec),
            tokens: compile(spec, &checked.file, options),
            inputs,
        }),
        None => Err(checked.render_errors()),
    }
}

/// Pretty-prints generated tokens as a Rust source file.
pub fn pretty(tokens: &TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        // Generated code always parses; if it does not, show it raw rather
        // than hide the problem.
        Err(e) => format!("// generated code does not parse: {e}\n{tokens}"),
    }
}

pub(crate) struct Gen<'a> {
    pub spec: &'a Spec,
    pub file: &'a SourceFile,
    /// Path of the support crate.
    pub s: TokenStream,
}
