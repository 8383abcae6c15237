//! `smelt::protocol!("specs/paxos.sm")` expands to the spec's generated
//! module (`pub mod paxos { ... }`).
//!
//! This crate is a shell: everything happens in `smelt-compiler`, which is
//! an ordinary, unit-testable library. The path is relative to the crate's
//! `Cargo.toml`. The expansion ends with an `include_bytes!` of the spec's
//! absolute path, so cargo rebuilds when the spec changes (the trick
//! pest_derive and askama use). A spec error becomes one `compile_error!`
//! carrying the same `file:line:col` text as `smelt lint`, next to an empty
//! module of the expected name, so the user sees that error and not a
//! cascade of "unresolved module" errors.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use std::path::PathBuf;

#[proc_macro]
pub fn protocol(input: TokenStream) -> TokenStream {
    let lit = match syn::parse::<syn::LitStr>(input) {
        Ok(l) => l,
        Err(e) => return e.to_compile_error().into(),
    };
    let rel = lit.value();
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = base.join(&rel);
    let abs = path.to_string_lossy().into_owned();
    if let Err(e) = std::fs::metadata(&path) {
        let msg = format!("cannot read spec `{}`: {e}", path.display());
        return syn::Error::new(lit.span(), msg).to_compile_error().into();
    }
    let options = smelt_compiler::Options::default();
    // Every file read (the spec, and a variant's base) is tracked.
    let track = |inputs: &[PathBuf]| {
        let files = inputs.iter().map(|p| p.to_string_lossy().into_owned());
        quote!(#(const _: &[u8] = include_bytes!(#files);)*)
    };
    match smelt_compiler::expand_file(&path, &rel, &options) {
        Ok(e) => {
            let (module, tracked) = (e.tokens, track(&e.inputs));
            quote!(#module #tracked).into()
        }
        Err(diagnostics) => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().replace(['-', '.'], "_"))
                .unwrap_or_else(|| "spec".into());
            let name = format_ident!("{}", stem);
            let msg = format!("the spec has errors:\n{diagnostics}");
            // The base of a variant with errors is not known here; the spec
            // itself is tracked, so editing it re-runs the expansion.
            let tracked = track(&[PathBuf::from(&abs)]);
            quote!(
                pub mod #name {}
                compile_error!(#msg);
                #tracked
            )
            .into()
        }
    }
}
