//! `smelt check` on several specs or a directory: one exit status for all
//! (the most severe), and `--junit FILE`. `tests/data/` holds a spec whose
//! check holds (`mutate_me.sm`) and a variant of it whose check fails
//! (`climb_wrong.sm`). The first run builds their harnesses.

mod common;

use common::smelt;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

#[test]
fn a_directory_checks_every_spec_in_it_with_one_status_and_a_junit_report() {
    let xml = std::env::temp_dir().join(format!("smelt-junit-{}.xml", std::process::id()));
    let (code, out, err) = smelt(&["check", DATA, "--junit", xml.to_str().unwrap()]);
    // One spec's check fails: the status is 1 for the whole run.
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report = std::fs::read_to_string(&xml).unwrap();
    assert!(
        report.contains(r#"<testsuites name="smelt check" tests="2" skipped="0" failures="1" errors="0">"#),
        "{report}"
    );
    assert!(
        report.contains(r#"<testcase name="small" classname="ClimbWrong""#),
        "{report}"
    );
    assert!(
        report.contains(r#"<failure message="Bounded violated in 6 steps">"#),
        "{report}"
    );
    // The counterexample is in the failure, step by step.
    assert!(
        report.contains("6. Node0: receives Num { n: 3 } from Node0 | changes: high: 2 → 3"),
        "{report}"
    );
    assert!(
        report.contains(r#"<testcase name="small" classname="Climb""#),
        "{report}"
    );

    // The spec that holds, alone: status 0, no failure.
    let spec = format!("{DATA}/mutate_me.sm");
    let (code, _, err) = smelt(&["check", &spec, "--junit", xml.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let report = std::fs::read_to_string(&xml).unwrap();
    assert!(
        report.contains(r#"tests="1" skipped="0" failures="0" errors="0""#),
        "{report}"
    );
    let _ = std::fs::remove_file(&xml);

    // A spec that cannot be read makes the whole run a usage error (2),
    // more severe than a violation.
    let wrong = format!("{DATA}/climb_wrong.sm");
    let (code, _, err) = smelt(&["check", &wrong, "/nonexistent/x.sm"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn several_specs_refuse_one_json_file() {
    let a = format!("{DATA}/mutate_me.sm");
    let b = format!("{DATA}/climb_wrong.sm");
    let (code, _, err) = smelt(&["check", &a, &b, "--json", "x.json"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--json takes one spec"), "{err}");
    let (code, _, err) = smelt(&["check", &a, "--junit", "x.xml", "--json", "-"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("give --json a file"), "{err}");
    let (code, _, err) = smelt(&["check", &a, "--junit"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--junit needs a file"), "{err}");
}
