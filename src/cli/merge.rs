//! `smelt merge`: one verdict from the JSON reports of one simulation split
//! into shards (`smelt check --simulate --shard i/n --json shard-i.json`)
//! and run on several machines — a CI job matrix, Kubernetes indexed jobs.
//!
//! The merged verdict is the one the unsharded run gives. A simulation
//! stops at its first violating walk; walk `k` belongs to shard `k mod n`,
//! whose run reaches walk `k` unless an earlier walk of its own failed. So
//! the lowest violating walk over all shards is the unsharded run's first,
//! and its counterexample (shortened from the same walk, deterministically)
//! is the same one. Walks and steps add up; a `reachable` is reached when
//! any shard reached it.
//!
//! Nothing is merged that was not one search: every report of a check must
//! name the same spec text (SHA-256), protocol, configuration, seed, number
//! of walks, depth and number of shards, and no shard may come twice. A
//! missing shard leaves a run without violation incomplete (exit 3, the
//! missing shards named); a violation found is a violation regardless.

use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`smelt check ... --simulate --shard i/n
    /// --json FILE`), in any order.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Write the merged report as JSON to this file (`-` for stdout).
    #[arg(long, num_args = 0..=1, default_missing_value = "-")]
    json: Option<String>,
    /// Also write a JUnit XML report of the merged verdicts.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Exit 0 when every check's outcome is what its `expect` says.
    #[arg(long)]
    expect: bool,
}

pub fn merge(a: MergeArgs) -> i32 {
    let mut inputs = Vec::new();
    for path in &a.reports {
        let name = path.display().to_string();
        let value = std::fs::read(path)
            .map_err(|e| format!("cannot read {name}: {e}"))
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| format!("{name}: not a JSON report: {e}")));
        match value {
            Ok(v) => inputs.push((name, v)),
            Err(e) => return usage(&e),
        }
    }
    let merged = match merge_reports(&inputs) {
        Ok(m) => m,
        Err(e) => return usage(&e),
    };
    let json_on_stdout = a.json.as_deref() == Some("-");
    for m in &merged {
        let text = summary(m);
        if json_on_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    let reports: Vec<&Value> = merged.iter().map(|m| &m.report).collect();
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
        if path == "-" {
            println!("{text}");
        } else if let Err(e) = std::fs::write(path, text) {
            return usage(&format!("cannot write {path}: {e}"));
        }
    }
    let status = status(&merged, a.expect);
    if let Some(out) = &a.junit {
        let spec = merged
            .first()
            .and_then(|m| m.report["spec"].as_str())
            .unwrap_or("merged")
            .to_string();
        let value = Value::Array(reports.into_iter().cloned().collect());
        let mut report = quick_junit::Report::new("smelt merge");
        report.add_test_suite(super::check::suite_of(&spec, Some(&value), status));
        let written = report
            .to_string()
            .map_err(|e| e.to_string())
            .and_then(|x| std::fs::write(out, x).map_err(|e| format!("cannot write {}: {e}", out.display())));
        if let Err(e) = written {
            return usage(&e);
        }
    }
    status
}

fn usage(e: &str) -> i32 {
    eprintln!("error: {e}");
    2
}

/// `smelt check`'s exit statuses for the merged verdicts.
fn status(merged: &[Merged], expect: bool) -> i32 {
    let violated = |m: &Merged| properties(&m.report).any(|p| p["verdict"] == "violated");
    if expect {
        let all = merged
            .iter()
            .all(|m| m.report["as_expected"].as_bool().unwrap_or(!violated(m)));
        return if all { 0 } else { 1 };
    }
    if merged.iter().any(violated) {
        1
    } else if merged.iter().any(|m| !m.missing.is_empty()) {
        3
    } else {
        0
    }
}

/// One check's merged report.
pub struct Merged {
    /// In the schema of `smelt check --json`, `simulation` describing the
    /// shards merged.
    pub report: Value,
    pub shards: u64,
    pub missing: Vec<u64>,
    /// The violated properties: (name, the shard and walk it comes from).
    pub found: Vec<(String, u64, Option<u64>)>,
}

fn properties(r: &Value) -> impl Iterator<Item = &Value> {
    r["properties"].as_array().into_iter().flatten()
}

/// What every shard of one search must agree on, with the field's name.
const SAME: [(&str, &[&str]); 7] = [
    ("spec text (sha256)", &["spec_sha256"]),
    ("configuration", &["config"]),
    ("mode", &["mode"]),
    ("seed", &["simulation", "seed"]),
    ("walks", &["simulation", "walks"]),
    ("depth", &["simulation", "max_depth"]),
    ("number of shards", &["simulation", "shard", "1"]),
];

fn field<'a>(r: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(r, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[*k],
    })
}

/// (protocol, check): the reports of one check are merged together.
type CheckKey = (String, String);

/// Merges the reports of `inputs` (file name, the file's JSON: an array of
/// reports as `smelt check --json` writes, or one report), check by check.
pub fn merge_reports(inputs: &[(String, Value)]) -> Result<Vec<Merged>, String> {
    // Checks in order of first appearance, with their (file, report)s.
    let mut groups: Vec<(CheckKey, Vec<(&str, &Value)>)> = Vec::new();
    for (file, v) in inputs {
        let reports: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![v],
            _ => return Err(format!("{file}: not a report of `smelt check --json`")),
        };
        if reports.is_empty() {
            return Err(format!("{file}: holds no check"));
        }
        for r in reports {
            let (Some(protocol), Some(check)) = (r["protocol"].as_str(), r["check"].as_str()) else {
                return Err(format!("{file}: not a report of `smelt check --json`"));
            };
            let key = (protocol.to_string(), check.to_string());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.push((file, r)),
                None => groups.push((key, vec![(file, r)])),
            }
        }
    }
    groups
        .into_iter()
        .map(|((protocol, check), shards)| merge_check(&protocol, &check, &shards))
        .collect()
}

fn merge_check(protocol: &str, check: &str, shards: &[(&str, &Value)]) -> Result<Merged, String> {
    let what = format!("check `{check}` of {protocol}");
    for (file, r) in shards {
        if r["mode"] != "simulation" {
            return Err(format!(
                "{file}: {what} is a {} search; only simulations split into shards (`--simulate --shard i/n`)",
                r["mode"].as_str().unwrap_or("?")
            ));
        }
        let sim = &r["simulation"];
        if !sim.is_object() {
            return Err(format!(
                "{file}: {what} has no `simulation` section (written by an older smelt?)"
            ));
        }
        if let Some(w) = sim["replayed_walk"].as_u64() {
            return Err(format!(
                "{file}: {what} replayed walk {w} alone (`--walk`), not a shard"
            ));
        }
    }
    let (first_file, first) = shards[0];
    for (file, r) in &shards[1..] {
        for (name, path) in SAME {
            if field(r, path) != field(first, path) {
                return Err(format!(
                    "{first_file} and {file} are not shards of one search: {what} differs in {name} ({} vs {})",
                    field(first, path),
                    field(r, path)
                ));
            }
        }
    }
    let num = |r: &Value, path: &[&str]| field(r, path).as_u64();
    let (Some(n), Some(walks), Some(seed)) = (
        num(first, &["simulation", "shard", "1"]),
        num(first, &["simulation", "walks"]),
        num(first, &["simulation", "seed"]),
    ) else {
        return Err(format!("{first_file}: {what}: malformed `simulation` section"));
    };
    let mut seen: Vec<Option<&str>> = vec![None; n as usize];
    let mut walks_run = 0u64;
    let mut steps_run = 0u64;
    for (file, r) in shards {
        let i = num(r, &["simulation", "shard", "0"]).filter(|&i| i < n);
        let (Some(i), Some(w), Some(s)) = (
            i,
            num(r, &["simulation", "walks_run"]),
            num(r, &["simulation", "steps_run"]),
        ) else {
            return Err(format!("{file}: {what}: malformed `simulation` section"));
        };
        if let Some(other) = seen[i as usize].replace(file) {
            return Err(format!("{other} and {file} are both shard {i}/{n} of {what}"));
        }
        // The walks shard i owns: k < walks with k % n == i. A shard that
        // found nothing ran all of them, or its report is not a whole run.
        let owned = if i < walks { (walks - i).div_ceil(n) } else { 0 };
        let found = num(r, &["simulation", "violation_walk"]);
        if w > owned || (found.is_none() && w != owned) {
            return Err(format!(
                "{file}: shard {i}/{n} of {what} ran {w} of its {owned} walks without a violation: not a whole run"
            ));
        }
        walks_run += w;
        steps_run += s;
    }
    let missing: Vec<u64> = (0..n).filter(|&i| seen[i as usize].is_none()).collect();
    let shard_of = |r: &Value| num(r, &["simulation", "shard", "0"]).unwrap_or(0);
    let walk_of = |r: &Value| num(r, &["simulation", "violation_walk"]);
    // Shards by their violating walk, lowest first (those without last):
    // the first is the unsharded run's violation, the report's base.
    let mut ordered: Vec<&Value> = shards.iter().map(|(_, r)| *r).collect();
    ordered.sort_by_key(|r| (walk_of(r).unwrap_or(u64::MAX), shard_of(r)));
    let chosen_walk = walk_of(ordered[0]);
    let mut report = ordered[0].clone();
    let mut found = Vec::new();
    if let Some(props) = report["properties"].as_array_mut() {
        for p in props.iter_mut().filter(|p| p["verdict"] != "skipped") {
            let name = p["name"].clone();
            let of = |r: &'_ Value| properties(r).find(|q| q["name"] == name).cloned();
            // Violated in any shard is violated (a shard's walks are as
            // real as the unsharded run's; the property reported there
            // comes from the earliest walk).
            if let Some((r, q)) = ordered
                .iter()
                .filter_map(|r| of(r).map(|q| (*r, q)))
                .find(|(_, q)| q["verdict"] == "violated")
            {
                found.push((name.as_str().unwrap_or("?").to_string(), shard_of(r), walk_of(r)));
                *p = q;
                continue;
            }
            if p["kind"] == "reachable" {
                // Reached in any shard is reached, after the fewest steps.
                let best = ordered
                    .iter()
                    .filter_map(|r| of(r).map(|q| (q, shard_of(r))))
                    .filter(|(q, _)| q["verdict"] == "reached")
                    .map(|(q, shard)| (q["steps"].as_u64().unwrap_or(u64::MAX), shard))
                    .min();
                if let Some((steps, shard)) = best {
                    p["verdict"] = json!("reached");
                    p["steps"] = json!(steps);
                    p["detail"] = json!(format!("reached after {steps} steps (shard {shard})"));
                }
                continue;
            }
            // Work counts add up (the delta check's "N steps compared").
            let counts: Option<Vec<u64>> = ordered
                .iter()
                .map(|r| {
                    of(r).and_then(|q| {
                        q["detail"]
                            .as_str()
                            .and_then(|d| d.strip_suffix(" steps compared"))
                            .and_then(|n| n.parse().ok())
                    })
                })
                .collect();
            if let Some(c) = counts {
                p["detail"] = json!(format!("{} steps compared", c.iter().sum::<u64>()));
            }
        }
    }
    let secs = shards
        .iter()
        .filter_map(|(_, r)| r["stats"]["seconds"].as_f64())
        .fold(0.0, f64::max);
    let max_depth = num(first, &["simulation", "max_depth"]).unwrap_or(0);
    let stats = &mut report["stats"];
    stats["unique_states"] = json!(steps_run);
    stats["total_states"] = json!(steps_run);
    // The shards ran side by side: the time is the slowest one's.
    stats["seconds"] = json!(secs);
    stats["states_per_second"] = json!(if secs > 0.0 { steps_run as f64 / secs } else { 0.0 });
    stats["peak_rss_bytes"] = shards
        .iter()
        .filter_map(|(_, r)| r["stats"]["peak_rss_bytes"].as_u64())
        .max()
        .map_or(Value::Null, |b| json!(b));
    stats["stopped"] = json!(format!(
        "simulation: {walks_run} walk(s) of at most {max_depth} steps, seed {seed}, in {} of {n} shards{}",
        n - missing.len() as u64,
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (missing: {})", list(&missing))
        }
    ));
    let sim = &mut report["simulation"];
    sim["shard"] = Value::Null;
    sim["shards"] = json!(n);
    sim["shards_merged"] = json!((0..n).filter(|i| !missing.contains(i)).collect::<Vec<_>>());
    sim["missing_shards"] = json!(missing);
    sim["walks_run"] = json!(walks_run);
    sim["steps_run"] = json!(steps_run);
    sim["violation_walk"] = chosen_walk.map_or(Value::Null, |w| json!(w));
    // `expect` again, on the merged outcome.
    let violated: Vec<&str> = found.iter().map(|(name, _, _)| name.as_str()).collect();
    let met = match report["expected"].as_str() {
        Some("ok") => Some(violated.is_empty() && missing.is_empty()),
        Some(e) => e.strip_prefix("violation of ").map(|name| violated.contains(&name)),
        None => None,
    };
    report["as_expected"] = met.map_or(Value::Null, Value::Bool);
    Ok(Merged {
        report,
        shards: n,
        missing,
        found,
    })
}

fn list(xs: &[u64]) -> String {
    xs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// The human summary of one merged check.
fn summary(m: &Merged) -> String {
    use std::fmt::Write;
    let r = &m.report;
    let sim = &r["simulation"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "check `{}` of {}, merged from {} of {} shards:",
        r["check"].as_str().unwrap_or("?"),
        r["spec"].as_str().unwrap_or("?"),
        m.shards - m.missing.len() as u64,
        m.shards
    );
    let _ = writeln!(
        out,
        "  {} walks, {} steps, seed {}; slowest shard {:.2} s",
        sim["walks_run"],
        sim["steps_run"],
        sim["seed"],
        r["stats"]["seconds"].as_f64().unwrap_or(0.0)
    );
    if !m.missing.is_empty() {
        let _ = writeln!(
            out,
            "  shards missing: {} — without a violation the verdict is incomplete",
            list(&m.missing)
        );
    }
    for p in properties(r) {
        let verdict = p["verdict"].as_str().unwrap_or("?");
        let mark = match verdict {
            "holds" | "reached" => "✓",
            "violated" => "✗",
            "skipped" => "-",
            _ => "?",
        };
        let detail = p["detail"].as_str().map(|d| format!(" — {d}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {mark} {} {}: {verdict}{detail}",
            p["kind"].as_str().unwrap_or("?"),
            p["name"].as_str().unwrap_or("?")
        );
    }
    for p in properties(r).filter(|p| p["verdict"] == "violated") {
        let name = p["name"].as_str().unwrap_or("?");
        let Some((_, shard, walk)) = m.found.iter().find(|(n, _, _)| n == name) else {
            continue;
        };
        let replay = match (walk, sim["seed"].as_u64()) {
            (Some(walk), Some(seed)) => format!(
                "seed {seed} walk {walk}; replay with `smelt check {} --config {} --simulate --seed {seed} --walk {walk}`",
                r["spec"].as_str().unwrap_or("?"),
                r["check"].as_str().unwrap_or("?"),
            ),
            _ => p["detail"].as_str().unwrap_or("").to_string(),
        };
        let _ = writeln!(out, "\n  {name}, from shard {shard} ({replay}):");
        for line in super::check::trace_lines(p) {
            let _ = writeln!(out, "    {line}");
        }
    }
    if let (Some(e), Some(met)) = (r["expected"].as_str(), r["as_expected"].as_bool()) {
        let _ = writeln!(out, "  expected {e}: {}", if met { "yes" } else { "NO" });
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard's report as `smelt check --simulate --json` writes it.
    fn shard(i: u64, n: u64, walks_run: u64, steps: u64, violation: Option<u64>) -> Value {
        let prop = |name: &str, kind: &str, verdict: &str| json!({"name": name, "kind": kind, "verdict": verdict, "steps": null, "detail": null, "trace": null});
        let mut props = vec![
            prop("handler_error", "invariant", "unknown"),
            prop("seen", "reachable", "unknown"),
        ];
        if violation.is_some() {
            props[0]["verdict"] = json!("violated");
        }
        if i == 1 {
            props[1] = json!({"name": "seen", "kind": "reachable", "verdict": "reached", "steps": 4, "detail": "reached after 4 steps"});
        }
        json!([{
            "spec": "x.sm", "protocol": "X", "check": "small", "mode": "simulation",
            "config": {"clients": 1}, "spec_sha256": "ab",
            "stats": {"seconds": 1.0 + i as f64, "unique_states": steps},
            "properties": props, "expected": "ok", "as_expected": violation.is_none(),
            "simulation": {"seed": 7, "walks": 10, "max_depth": 20, "shard": [i, n], "replayed_walk": null,
                           "walks_run": walks_run, "steps_run": steps, "violation_walk": violation},
        }])
    }

    fn inputs(v: Vec<Value>) -> Vec<(String, Value)> {
        v.into_iter()
            .enumerate()
            .map(|(k, v)| (format!("s{k}.json"), v))
            .collect()
    }

    #[test]
    fn shards_add_up_and_the_lowest_violating_walk_wins() {
        // 10 walks in 3 shards: shard 0 owns 0,3,6,9; 1 owns 1,4,7; 2 owns 2,5,8.
        let m = merge_reports(&inputs(vec![
            shard(2, 3, 3, 30, Some(8)),
            shard(0, 3, 4, 40, None),
            shard(1, 3, 2, 20, Some(4)),
        ]))
        .unwrap();
        let r = &m[0].report;
        assert_eq!(r["simulation"]["violation_walk"], 4);
        assert_eq!(r["simulation"]["walks_run"], 9);
        assert_eq!(r["stats"]["unique_states"], 90);
        assert_eq!(r["stats"]["seconds"], 3.0);
        assert_eq!(r["properties"][1]["verdict"], "reached");
        assert_eq!(r["as_expected"], false);
        assert_eq!(m[0].found, vec![("handler_error".to_string(), 1, Some(4))]);
        assert_eq!(status(&m, false), 1);
    }

    #[test]
    fn a_property_violated_in_any_shard_is_violated_and_counts_add_up() {
        let equivalence = |verdict: &str, detail: &str| json!({"name": "runtime_equivalence", "kind": "invariant", "verdict": verdict, "detail": detail});
        let mut a = shard(0, 2, 5, 50, None);
        a[0]["properties"]
            .as_array_mut()
            .unwrap()
            .push(equivalence("unknown", "120 steps compared"));
        let mut b = shard(1, 2, 5, 50, None);
        b[0]["properties"]
            .as_array_mut()
            .unwrap()
            .push(equivalence("unknown", "80 steps compared"));
        let m = merge_reports(&inputs(vec![a.clone(), b])).unwrap();
        assert_eq!(m[0].report["properties"][2]["detail"], "200 steps compared");
        // A mismatch found in shard 1 only, no walk violated anywhere.
        let mut b = shard(1, 2, 5, 50, None);
        b[0]["properties"].as_array_mut().unwrap().push(equivalence(
            "violated",
            "the deployed node would not be the checked one",
        ));
        let m = merge_reports(&inputs(vec![a, b])).unwrap();
        assert_eq!(m[0].report["properties"][2]["verdict"], "violated");
        assert_eq!(m[0].found, vec![("runtime_equivalence".to_string(), 1, None)]);
        assert_eq!(status(&m, false), 1);
    }

    #[test]
    fn a_missing_shard_leaves_the_verdict_incomplete() {
        let m = merge_reports(&inputs(vec![shard(0, 3, 4, 40, None), shard(2, 3, 3, 30, None)])).unwrap();
        assert_eq!(m[0].missing, vec![1]);
        assert_eq!(m[0].report["as_expected"], false);
        assert_eq!(m[0].report["properties"][1]["verdict"], "unknown");
        assert_eq!(status(&m, false), 3);
        assert_eq!(status(&m, true), 1);
        let all = merge_reports(&inputs(vec![
            shard(0, 3, 4, 40, None),
            shard(1, 3, 3, 30, None),
            shard(2, 3, 3, 30, None),
        ]))
        .unwrap();
        assert_eq!((status(&all, false), status(&all, true)), (0, 0));
        assert_eq!(all[0].report["as_expected"], true);
    }

    #[test]
    fn reports_of_different_searches_are_refused() {
        let mut other = shard(1, 3, 3, 30, None);
        other[0]["simulation"]["seed"] = json!(8);
        let e = merge_reports(&inputs(vec![shard(0, 3, 4, 40, None), other]))
            .err()
            .unwrap();
        assert!(e.contains("differs in seed (7 vs 8)"), "{e}");
        let mut other = shard(1, 3, 3, 30, None);
        other[0]["spec_sha256"] = json!("cd");
        let e = merge_reports(&inputs(vec![shard(0, 3, 4, 40, None), other]))
            .err()
            .unwrap();
        assert!(e.contains("spec text"), "{e}");
        let e = merge_reports(&inputs(vec![shard(0, 3, 4, 40, None), shard(0, 3, 4, 40, None)]))
            .err()
            .unwrap();
        assert!(e.contains("both shard 0/3"), "{e}");
        // A shard that stopped short without a violation is not a whole run.
        let e = merge_reports(&inputs(vec![shard(0, 3, 2, 40, None)])).err().unwrap();
        assert!(e.contains("ran 2 of its 4 walks"), "{e}");
        let mut bfs = shard(0, 3, 4, 40, None);
        bfs[0]["mode"] = json!("safety");
        let e = merge_reports(&inputs(vec![bfs])).err().unwrap();
        assert!(e.contains("only simulations"), "{e}");
        let e = merge_reports(&inputs(vec![json!({"no": "report"})])).err().unwrap();
        assert!(e.contains("not a report"), "{e}");
    }
}
