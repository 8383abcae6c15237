//! Data-driven tests of the front end, in the style of rust-analyzer: one
//! helper, many data files. Adding a case means adding a file.
//!
//! - `data/valid/*.sm` and the repository's `specs/*.sm` must check without
//!   errors; the snapshot is the warnings (if any) and a readable dump of
//!   the IR (see `support/ir_text.rs`).
//! - `data/invalid/*.sm` must fail; each starts with a `//` comment saying
//!   what it tests, and the snapshot is the exact rendered diagnostics.
//!
//! Snapshots live in `snapshots/`. Review changes with `cargo insta review`,
//! or regenerate with `INSTA_UPDATE=always` and read the diff. A new spec
//! in `specs/` needs its snapshot accepted the same way.

#[path = "support/ir_text.rs"]
mod ir_text;

use std::path::Path;

/// Checks one data file and returns the snapshot text. The display name is
/// the path relative to the data directory, so snapshots do not depend on
/// where the repository is checked out.
fn check(path: &Path, expect_valid: bool) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .unwrap_or_default()
        .to_string_lossy();
    let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
    let checked = smelt_dsl::check_source(&name, &text);
    let rendered = checked.render(false);
    let first_line = text.trim_start_matches('\u{feff}').lines().next().unwrap_or("");
    assert!(
        first_line.starts_with("//"),
        "{name}: the first line must be a comment saying what the file tests"
    );
    assert_eq!(
        checked.spec.is_some(),
        !checked.has_errors(),
        "{name}: `spec` must be `Some` exactly when there are no errors"
    );
    if expect_valid {
        let spec = checked
            .spec
            .as_ref()
            .unwrap_or_else(|| panic!("{name} must check without errors, got:\n{rendered}"));
        let mut out = String::new();
        if !rendered.is_empty() {
            out.push_str(&rendered);
            out.push_str("----\n");
        }
        out.push_str(&ir_text::render(spec));
        out
    } else {
        assert!(checked.has_errors(), "{name} must have errors, got:\n{rendered}");
        rendered
    }
}

#[test]
fn valid() {
    insta::glob!("data/valid", "*.sm", |path| {
        insta::assert_snapshot!(check(path, true));
    });
}

#[test]
fn repo_specs() {
    insta::glob!("../../specs", "*.sm", |path| {
        insta::assert_snapshot!(check(path, true));
    });
}

#[test]
fn invalid() {
    insta::glob!("data/invalid", "*.sm", |path| {
        insta::assert_snapshot!(check(path, false));
    });
}
