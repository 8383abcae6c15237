//! Snapshots of the generated code, pretty-printed, for every spec of the
//! protocol library: `specs/*.sm`, `specs/buggy/*.sm`, `specs/liveness/*.sm`.
//! One helper, many cases; adding a spec adds a case.
//!
//! The display name is the path relative to the repository root
//! (`specs/paxos.sm`), so snapshots do not depend on where the repository is
//! checked out. Review changes with `cargo insta review`, or regenerate with
//! `INSTA_UPDATE=always cargo test -p smelt-compiler --test snapshots` and
//! read the diff.

use smelt_compiler::{expand_file, pretty, Options};
use std::path::Path;

/// Expands one spec the way `smelt::protocol!` does and returns the
/// pretty-printed module.
fn expand_spec(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate lives in the repository");
    let rel = path.strip_prefix(root).unwrap_or(path);
    let name = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let options = Options {
        support_path: "::smelt::support".into(),
    };
    let e = expand_file(path, &name, &options).unwrap_or_else(|e| panic!("{name} has errors:\n{e}"));
    let (module, code) = (e.module, pretty(&e.tokens));
    assert!(
        !code.starts_with("// generated code does not parse"),
        "{name}: the generated code does not parse:\n{code}"
    );
    assert!(
        code.contains(&format!("pub mod {module} {{")),
        "{name}: the module is not named `{module}`"
    );
    assert!(
        code.contains(&format!("const SPEC: &'static str = \"{name}\";")),
        "{name}: `Protocol::SPEC` is not the display name"
    );
    // Expansion is deterministic: the same input gives the same text.
    let again = expand_file(path, &name, &options).expect("second expansion");
    assert_eq!(code, pretty(&again.tokens), "{name}: expansion is not deterministic");
    code
}

#[test]
fn specs() {
    insta::glob!("../../specs", "{*.sm,buggy/*.sm,liveness/*.sm,bench/*.sm}", |path| {
        insta::assert_snapshot!(expand_spec(path));
    });
}
