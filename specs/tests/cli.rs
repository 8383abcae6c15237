//! `smelt check`'s output streams, in process (`main_to` is the harness's
//! `main` with its standard output given).

use smelt::model_check::cli::main_to;

type P = smelt_specs::two_phase_commit::TwoPhaseCommit;

fn check(args: &[&str]) -> (i32, String) {
    let mut out = Vec::new();
    let code = main_to::<P>(args.iter().map(|a| a.to_string()).collect(), &mut out);
    (code, String::from_utf8(out).expect("utf-8 output"))
}

#[test]
fn json_to_stdout_is_the_json_document_alone() {
    let (code, out) = check(&["--config", "small", "--json", "-"]);
    assert_eq!(code, 0, "{out}");
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let reports = reports.as_array().expect("an array of reports");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["check"], "small");
    assert!(
        reports[0]["stats"]["unique_states"].as_u64().unwrap_or(0) > 100,
        "{out}"
    );
}

#[test]
fn without_json_stdout_has_the_summary() {
    let (code, out) = check(&["--config", "small"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("check `small` of "), "{out}");
    assert!(out.contains("invariant Consistency: holds"), "{out}");
}

#[test]
fn a_usage_error_exits_2() {
    let (code, _) = check(&["--config", "no_such_check"]);
    assert_eq!(code, 2);
}
