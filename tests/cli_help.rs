//! The commands whose options do not depend on the spec answer `--help`
//! without a spec and without building a harness (no cargo run here: each
//! answers in milliseconds).

mod common;

use common::smelt;

#[test]
fn help_without_a_spec() {
    for (command, option) in [
        ("check", "--max-depth"),
        ("run", "--data-dir"),
        ("cluster", "--nodes"),
        ("client", "--cluster"),
        ("sim", "--seed"),
        ("merge", "--junit"),
    ] {
        for flag in ["--help", "-h"] {
            let (code, out, err) = smelt(&[command, flag]);
            assert_eq!(code, Some(0), "smelt {command} {flag}: {err}");
            assert!(
                out.contains(&format!("Usage: smelt {command}")),
                "smelt {command} {flag}:\n{out}"
            );
            assert!(out.contains(option), "smelt {command} {flag} lacks {option}:\n{out}");
        }
    }
}

#[test]
fn no_arguments_is_a_usage_error_that_shows_the_help() {
    for command in ["check", "run", "cluster", "client", "sim", "merge"] {
        let (code, out, err) = smelt(&[command]);
        assert_eq!(code, Some(2), "smelt {command}");
        assert!(out.is_empty(), "smelt {command} printed on stdout: {out}");
        assert!(
            err.contains(&format!("Usage: smelt {command}")),
            "smelt {command}:\n{err}"
        );
    }
}

#[test]
fn check_help_documents_the_exit_statuses() {
    let (_, out, _) = smelt(&["check", "--help"]);
    for status in [
        "0  no property violated",
        "1  a property violated",
        "2  usage error",
        "3  no violation found",
    ] {
        assert!(out.contains(status), "missing `{status}`:\n{out}");
    }
}
