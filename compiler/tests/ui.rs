//! UI tests of `smelt::protocol!`: a spec with errors, used from a user's
//! crate, must fail the build with ONE rustc error that carries the spec's
//! `file:line:col` diagnostics — not a cascade of "unresolved module" errors
//! from the code that uses the missing module.
//!
//! Each case is a binary of one scratch crate (see `scratch/mod.rs`):
//! `src/bin/<case>.rs` is `smelt::protocol!("specs/<case>.sm")` plus a `main`
//! that uses the module, and `specs/<case>.sm` is a copy of
//! `tests/ui/<case>.sm`. The test runs `cargo build --bin <case>` and reads
//! rustc's output as a user sees it. The first run compiles smelt and its
//! dependencies into the shared scratch target (2–3.5 minutes on 2 shared
//! cores, shared with `rebuild.rs`); after that the file takes 2–4 seconds.

mod scratch;

use scratch::{error_lines, smelt_dependency, Crate};
use std::sync::OnceLock;

/// The scratch crate with one binary per case, built once (the `valid`
/// case) so that the failing cases only expand their macro.
fn ui_crate() -> &'static Crate {
    static CRATE: OnceLock<Crate> = OnceLock::new();
    CRATE.get_or_init(|| {
        let krate = Crate::new("ui", &format!("[dependencies]\n{}", smelt_dependency()));
        krate.write("src/lib.rs", "");
        let cases = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui")).expect("tests/ui");
        for entry in cases {
            let path = entry.expect("tests/ui entry").path();
            let case = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("read case");
            krate.write(&format!("specs/{case}.sm"), &text);
            krate.write(
                &format!("src/bin/{case}.rs"),
                &bin_source(&case, &format!("specs/{case}.sm")),
            );
        }
        // A spec path that does not exist.
        krate.write(
            "src/bin/missing_spec.rs",
            &bin_source("missing_spec", "specs/missing_spec.sm"),
        );
        let run = krate.cargo_ok(&["run", "-q", "--bin", "valid"]);
        assert_eq!(run.stdout.trim(), "Valid 1", "the valid case runs its handler");
        krate
    })
}

/// A binary that uses the generated module the way a user's code does: a
/// broken spec must not also cause errors here.
fn bin_source(case: &str, spec: &str) -> String {
    let module = case;
    let protocol: String = case
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!(
        r#"smelt::protocol!({spec:?});

use smelt::support::stateright::actor::{{Id, Out}};
use smelt::support::{{Boot, Layout, Protocol}};
use std::borrow::Cow;

fn main() {{
    let node = {module}::{protocol}::server(Id::from(0), &Layout::new(&[1], 0)).unwrap();
    let mut out = Out::new();
    let mut state = Cow::Owned(node.handle_start(Id::from(0), None, Boot::First, &mut out));
    node.handle_msg(Id::from(0), &mut state, Id::from(0), {module}::Msg::Ping({module}::Ping {{}}), &mut out);
    println!("{{}} {{}}", {module}::{protocol}::NAME, {module}::{protocol}::describe_fields(&state)[0].1);
}}
"#
    )
}

/// Builds a failing case and returns its stderr, after checking that it
/// failed with exactly one error, reported at the macro call.
fn build_fails(case: &str) -> String {
    let krate = ui_crate();
    let run = krate.cargo(&["build", "-q", "--bin", case]);
    assert!(!run.ok, "{case} must not build");
    let errors = error_lines(&run.stderr);
    assert_eq!(
        errors.len(),
        1,
        "{case}: expected one error, got {errors:#?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("--> src/bin/{case}.rs:1:")),
        "{case}: the error must point at the `protocol!` call:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("due to 1 previous error"),
        "{case}: cargo must report one error:\n{}",
        run.stderr
    );
    run.stderr
}

/// The spec's own diagnostics, as `smelt lint` renders them: every one must
/// appear, with its location, inside the single rustc error.
fn expected_diagnostics(case: &str) -> String {
    let path = format!("{}/tests/ui/{case}.sm", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("read case");
    match smelt_compiler::expand(&format!("specs/{case}.sm"), &text, &Default::default()) {
        Ok(_) => panic!("{case} is expected to have errors"),
        Err(e) => e,
    }
}

fn assert_spec_errors(case: &str, locations: &[&str]) {
    let stderr = build_fails(case);
    let diagnostics = expected_diagnostics(case);
    assert!(stderr.contains("error: the spec has errors:"), "{case}:\n{stderr}");
    for line in diagnostics.lines().filter(|l| l.contains('┌')) {
        assert!(
            stderr.contains(line.trim()),
            "{case}: `{}` missing from:\n{stderr}",
            line.trim()
        );
    }
    for loc in locations {
        assert!(
            diagnostics.contains(loc) && stderr.contains(loc),
            "{case}: no diagnostic at {loc}:\n{stderr}"
        );
    }
    let reported = diagnostics.lines().filter(|l| l.contains('┌')).count();
    assert_eq!(
        reported,
        locations.len(),
        "{case}: unexpected diagnostics:\n{diagnostics}"
    );
    // The message as the user reads it (up to rustc's pointer to the call).
    let message = stderr.split("\n --> ").next().unwrap_or_default();
    insta::assert_snapshot!(case, message);
}

#[test]
fn syntax_error() {
    assert_spec_errors("syntax_error", &["specs/syntax_error.sm:9:5"]);
}

#[test]
fn type_error() {
    assert_spec_errors("type_error", &["specs/type_error.sm:7:22"]);
}

#[test]
fn several_errors_make_one_compile_error() {
    assert_spec_errors(
        "several_errors",
        &[
            "specs/several_errors.sm:16:5",
            "specs/several_errors.sm:19:17",
            "specs/several_errors.sm:23:17",
        ],
    );
}

#[test]
fn missing_spec_file() {
    let stderr = build_fails("missing_spec");
    assert!(stderr.contains("error: cannot read spec `"), "{stderr}");
    assert!(stderr.contains("specs/missing_spec.sm`"), "{stderr}");
    // The error points at the path literal in the macro call.
    assert!(stderr.contains("--> src/bin/missing_spec.rs:1:18"), "{stderr}");
}
