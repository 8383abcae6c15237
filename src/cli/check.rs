//! `smelt check`: one spec, several, or a directory of them, with one exit
//! status; `--junit FILE` writes a JUnit XML report (one test suite per
//! spec, one test case per check) that CI systems render.
//!
//! Each spec runs in its own harness (`harness.rs`), which parses the
//! check options itself; this layer only splits off the specs and
//! `--junit`, and reads the harness's JSON report to write the XML.

use super::harness;
use std::path::{Path, PathBuf};

/// Exit statuses, most severe first: a usage or environment error (2), a
/// wrong spec or protocol (1), a search that could not finish (3), success.
const SEVERITY: [i32; 4] = [2, 1, 3, 0];

fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| SEVERITY.iter().position(|&s| s == c).unwrap_or(0);
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

pub fn run(first: PathBuf, mut args: Vec<String>) -> i32 {
    // Leading arguments that are specs or directories are more specs.
    let mut targets = vec![first];
    while args.first().is_some_and(|a| !a.starts_with('-')) {
        targets.push(PathBuf::from(args.remove(0)));
    }
    let junit = match take_option(&mut args, "--junit") {
        Ok(j) => j,
        Err(e) => return usage(&e),
    };
    let specs = match expand(&targets) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let json = args.iter().position(|a| a == "--json" || a.starts_with("--json="));
    if specs.len() > 1 && json.is_some() {
        return usage("--json takes one spec; with several, use --junit");
    }
    let user_json = json.map(|i| {
        args[i]
            .strip_prefix("--json=")
            .map(String::from)
            .or_else(|| args.get(i + 1).filter(|v| !v.starts_with('-')).cloned())
            .unwrap_or_else(|| "-".into())
    });
    if junit.is_some() && user_json.as_deref() == Some("-") {
        return usage("--junit reads the JSON report: give --json a file, not `-`");
    }
    let mut status = 0;
    let mut suites = Vec::new();
    for spec in &specs {
        if specs.len() > 1 {
            eprintln!("== {}", spec.display());
        }
        let tmp = junit.as_ref().map(|_| match &user_json {
            Some(p) => (PathBuf::from(p), false),
            None => (
                std::env::temp_dir().join(format!("smelt-check-{}-{}.json", std::process::id(), suites.len())),
                true,
            ),
        });
        let mut a = args.clone();
        if let Some((path, true)) = &tmp {
            a.push("--json".into());
            a.push(path.display().to_string());
        }
        let code = harness::run(spec, "check", &a);
        status = worst(status, code);
        if let Some((path, ours)) = tmp {
            suites.push(suite(spec, &path, code));
            if ours {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if let Some(out) = junit {
        let mut report = quick_junit::Report::new("smelt check");
        report.add_test_suites(suites);
        let written = report
            .to_string()
            .map_err(|e| e.to_string())
            .and_then(|x| std::fs::write(&out, x).map_err(|e| format!("cannot write {out}: {e}")));
        if let Err(e) = written {
            eprintln!("error: {e}");
            return 2;
        }
    }
    status
}

fn usage(e: &str) -> i32 {
    eprintln!("error: {e}");
    2
}

/// Removes `--name VALUE` (or `--name=VALUE`) from `args`.
fn take_option(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let prefix = format!("{name}=");
    if let Some(i) = args.iter().position(|a| a.starts_with(&prefix)) {
        return Ok(Some(args.remove(i)[prefix.len()..].to_string()));
    }
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    args.remove(i);
    if i < args.len() && !args[i].starts_with('-') {
        Ok(Some(args.remove(i)))
    } else {
        Err(format!("{name} needs a file"))
    }
}

/// Specs named, and the `.sm` files directly in directories named (in name
/// order; subdirectories are not searched).
fn expand(targets: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for t in targets {
        if t.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(t)
                .map_err(|e| format!("cannot read {}: {e}", t.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sm"))
                .collect();
            if found.is_empty() {
                return Err(format!("{} holds no .sm file", t.display()));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// One spec's test suite, from its JSON report file.
fn suite(spec: &Path, json: &Path, code: i32) -> quick_junit::TestSuite {
    let report: Option<serde_json::Value> = std::fs::read(json).ok().and_then(|b| serde_json::from_slice(&b).ok());
    suite_of(&spec.display().to_string(), report.as_ref(), code)
}

/// One spec's test suite, from its JSON report (a suite with one error
/// when there is none: the spec did not build, or the harness failed).
pub(super) fn suite_of(name: &str, report: Option<&serde_json::Value>, code: i32) -> quick_junit::TestSuite {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(name.to_string());
    let Some(checks) = report.and_then(|r| r.as_array()) else {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(format!("no report: `smelt check {name}` exited with status {code}"));
        suite.add_test_case(TestCase::new("(spec)", status));
        return suite;
    };
    for r in checks {
        let check = r["check"].as_str().unwrap_or("?");
        let violated: Vec<&serde_json::Value> = r["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["verdict"] == "violated")
            .collect();
        let complete = r["stats"]["complete"].as_bool().unwrap_or(false);
        let status = match r["as_expected"].as_bool() {
            Some(true) => TestCaseStatus::success(),
            None if violated.is_empty() && (complete || r["stats"]["stopped"].is_null()) => TestCaseStatus::success(),
            // A simulation claims no completeness: finding nothing is its
            // success, unless shards of it are missing (`smelt merge`).
            None if violated.is_empty()
                && r["mode"] == "simulation"
                && r["simulation"]["missing_shards"]
                    .as_array()
                    .is_none_or(|m| m.is_empty()) =>
            {
                TestCaseStatus::success()
            }
            _ => {
                let unknown = violated.is_empty() && r["stats"]["out_of_resources"].as_bool() == Some(true);
                let mut s = TestCaseStatus::non_success(if unknown {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                });
                let what: Vec<String> = violated
                    .iter()
                    .map(|p| {
                        let steps = p["steps"]
                            .as_u64()
                            .map(|n| format!(" in {n} steps"))
                            .unwrap_or_default();
                        format!("{} violated{steps}", p["name"].as_str().unwrap_or("?"))
                    })
                    .collect();
                let expected = r["expected"].as_str().unwrap_or("");
                let msg = if what.is_empty() {
                    format!(
                        "not as expected ({expected}): {}",
                        r["stats"]["stopped"].as_str().unwrap_or("a `reachable` not reached")
                    )
                } else {
                    what.join(", ")
                };
                s.set_message(msg);
                // The counterexample itself, step by step, as the JSON report has it.
                let traces: Vec<String> = violated
                    .iter()
                    .map(|p| {
                        let trace = trace_lines(p);
                        let trace = trace.join("\n");
                        format!(
                            "{}: {}\n{trace}",
                            p["name"].as_str().unwrap_or("?"),
                            p["text"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                if !traces.is_empty() {
                    s.set_description(traces.join("\n\n"));
                }
                s
            }
        };
        let mut case = TestCase::new(check.to_string(), status);
        case.set_classname(r["protocol"].as_str().unwrap_or("?").to_string());
        if let Some(secs) = r["stats"]["seconds"].as_f64() {
            case.set_time(std::time::Duration::from_secs_f64(secs.max(0.0)));
        }
        case.set_system_out(format!(
            "{} states, {} mode",
            r["stats"]["unique_states"].as_u64().unwrap_or(0),
            r["mode"].as_str().unwrap_or("?")
        ));
        suite.add_test_case(case);
    }
    suite
}

/// A violated property's counterexample, a line per step, from the JSON
/// report: `6. Node0: receives ... | changes: high: 2 → 3 | sends: ...`.
pub(super) fn trace_lines(p: &serde_json::Value) -> Vec<String> {
    p["trace"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|st| {
            let list = |k: &str| {
                st[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let mut line = format!(
                "{}. {}: {}",
                st["step"],
                st["node"].as_str().unwrap_or("?"),
                st["event"].as_str().unwrap_or("?")
            );
            for (k, label) in [("changes", "changes"), ("sends", "sends")] {
                let l = list(k);
                if !l.is_empty() {
                    line.push_str(&format!(" | {label}: {l}"));
                }
            }
            line
        })
        .collect()
}
