//! `smelt check` on several specs or a directory: one exit status for all
//! (the most severe), and `--junit FILE`. `tests/data/` holds a spec whose
//! check holds (`mutate_me.sm`) and a variant of it whose check fails
//! (`climb_wrong.sm`). The first run builds their harnesses.

mod common;

use common::smelt;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// A JSON report file.
fn read(path: impl AsRef<std::path::Path>) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Each property of a report with its verdict.
fn verdicts(r: &serde_json::Value) -> Vec<(String, String)> {
    r["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].to_string(), p["verdict"].to_string()))
        .collect()
}

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

/// `smelt merge` joins the JSON reports of one simulation run as shards
/// (`--shard i/n`, as a CI job matrix would) into the unsharded run's
/// verdict: the same violation from the same walk with the same
/// counterexample; for a spec that holds, the same walks and steps in all
/// and the same verdicts. A missing shard leaves the verdict incomplete;
/// shards of different searches are refused.
#[test]
fn shards_merge_into_the_unsharded_verdict() {
    let dir = std::env::temp_dir().join(format!("smelt-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    let simulate = |spec: &str, seed: &str, shard: Option<&str>, json: &str| {
        let mut args = vec![
            "check",
            spec,
            "--simulate",
            "--seed",
            seed,
            "--walks",
            "60",
            "--json",
            json,
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        smelt(&args)
    };
    for (spec, status) in [("climb_wrong.sm", 1), ("mutate_me.sm", 0)] {
        let spec = format!("{DATA}/{spec}");
        let whole = file("whole.json");
        let (code, out, err) = simulate(&spec, "5", None, &whole);
        assert_eq!(code, Some(status), "{out}\n{err}");
        let shards: Vec<String> = (0..3).map(|i| file(&format!("shard-{i}.json"))).collect();
        for (i, s) in shards.iter().enumerate() {
            let (code, out, err) = simulate(&spec, "5", Some(&format!("{i}/3")), s);
            assert!(matches!(code, Some(0 | 1)), "{out}\n{err}");
        }
        let merged = file("merged.json");
        let mut args = vec!["merge", "--json", &merged];
        args.extend(shards.iter().rev().map(String::as_str));
        let (code, out, err) = smelt(&args);
        assert_eq!(code, Some(status), "{out}\n{err}");
        let (whole, merged) = (&read(&whole)[0], &read(&merged)[0]);
        let violated = |r: &serde_json::Value| -> Vec<serde_json::Value> {
            r["properties"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["verdict"] == "violated")
                .cloned()
                .collect()
        };
        assert_eq!(merged["seed_walk"], whole["seed_walk"]);
        assert_eq!(violated(merged), violated(whole), "same violation, same trace");
        if status == 0 {
            assert_eq!(verdicts(merged), verdicts(whole));
            for k in ["walks_run", "steps_run"] {
                assert_eq!(merged["simulation"][k], whole["simulation"][k], "{k}");
            }
            assert_eq!(whole["simulation"]["walks_run"], 60);
            assert!(out.contains("merged from 3 of 3 shards"), "{out}");
            // --expect: the check's `expect ok` is met.
            let (code, _, err) = smelt(&["merge", "--expect", &shards[0], &shards[1], &shards[2]]);
            assert_eq!(code, Some(0), "{err}");
            // Without shard 1 nothing is decided: exit 3, and the shard named.
            let (code, out, _) = smelt(&["merge", &shards[0], &shards[2]]);
            assert_eq!(code, Some(3), "{out}");
            assert!(out.contains("shards missing: 1"), "{out}");
            // A shard of another search (another seed) is refused.
            let other = file("other.json");
            let (code, out, err) = simulate(&spec, "6", Some("1/3"), &other);
            assert_eq!(code, Some(0), "{out}\n{err}");
            let (code, _, err) = smelt(&["merge", &shards[0], &other, &shards[2]]);
            assert_eq!(code, Some(2), "{err}");
            assert!(err.contains("differs in seed (5 vs 6)"), "{err}");
        } else {
            assert!(!violated(merged).is_empty());
            assert!(out.contains("replay with `smelt check"), "{out}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The job-matrix examples in `docs/shards/` run as written: every `smelt`
/// line of each file, once per shard index, then the merge, on this
/// checkout — with the files' own variables (the seed, the depth, the
/// number of shards), only `WALKS` lowered and paths pointed at this
/// checkout and a scratch directory. The merged verdict is the unsharded
/// run's.
#[test]
#[ignore = "deep: builds raft.sm's check harness (a minute or two) and runs the examples' shards"]
fn the_documented_job_matrices_run_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = format!("{root}/docs/shards");
    let walks = "96";
    // `NAME: "value"` (GitHub's env) or `- name: NAME` + `value: "v"` (a pod's).
    let var = |text: &str, name: &str| -> String {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let at = |i: usize| {
            lines[i]
                .split_once(':')
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        lines
            .iter()
            .enumerate()
            .find_map(|(i, l)| {
                if l.starts_with(&format!("{name}:")) {
                    at(i)
                } else if *l == format!("- name: {name}") {
                    at(i + 1)
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("{name} not in the example"))
    };
    let commands = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.trim_start_matches("- ").trim_start_matches("run: "))
            .filter(|l| l.contains("smelt check") || l.contains("smelt merge"))
            .map(String::from)
            .collect()
    };
    let run = |dir: &std::path::Path, line: &str, env: &[(&str, String)]| -> (Option<i32>, String) {
        let line = line
            .replace("/smelt/target/release/smelt", common::SMELT)
            .replace("./target/release/smelt", common::SMELT)
            .replace("/smelt/specs/", &format!("{root}/specs/"))
            .replace(" specs/", &format!(" {root}/specs/"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("sh");
        let text = format!(
            "$ {line}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };

    // GitHub Actions: a matrix over `shard`, the run id as the seed.
    let gh = std::fs::read_to_string(format!("{docs}/github-actions.yml")).unwrap();
    let (depth, shards) = (var(&gh, "DEPTH"), var(&gh, "SHARDS"));
    let n: u64 = shards.parse().unwrap();
    assert!(gh.contains(&format!(
        "shard: [{}]",
        (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )));
    let seed = "77";
    let env = [
        ("WALKS", walks.to_string()),
        ("DEPTH", depth.clone()),
        ("SHARDS", shards.clone()),
    ];
    let cmds = commands(&gh);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    let dir = std::env::temp_dir().join(format!("smelt-gh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let line = cmds[0]
            .replace("${{ github.run_id }}", seed)
            .replace("${{ matrix.shard }}", &i.to_string());
        let (code, out) = run(&dir, &line, &env);
        assert!(matches!(code, Some(0 | 1)), "{out}");
    }
    let (code, out) = run(&dir, &cmds[1], &env);
    assert!(matches!(code, Some(0 | 1)), "{out}");
    assert!(out.contains(&format!("merged from {n} of {n} shards")), "{out}");
    assert!(std::fs::read_to_string(dir.join("smelt.xml"))
        .unwrap()
        .contains("<testsuites"));
    // The same search unsharded: the same verdicts.
    let whole = format!(
        "./target/release/smelt check specs/raft.sm --config all_faults --simulate --seed {seed} --walks {walks} --max-depth {depth} --json whole.json"
    );
    let (whole_code, out) = run(&dir, &whole, &env);
    assert_eq!(code, whole_code, "{out}");
    let (sharded, whole) = (read(dir.join("shard-0.json")), read(dir.join("whole.json")));
    assert_eq!(sharded[0]["simulation"]["walks"], whole[0]["simulation"]["walks"]);
    let _ = std::fs::remove_dir_all(&dir);

    // Kubernetes: an Indexed Job (JOB_COMPLETION_INDEX), then the merge Job.
    let job = std::fs::read_to_string(format!("{docs}/kubernetes-indexed-job.yaml")).unwrap();
    let merge = std::fs::read_to_string(format!("{docs}/kubernetes-merge-job.yaml")).unwrap();
    let completions: u64 = var(&job, "completions").parse().unwrap();
    let env = [
        ("SEED", var(&job, "SEED")),
        ("WALKS", walks.to_string()),
        ("DEPTH", var(&job, "DEPTH")),
    ];
    let (shard_cmd, merge_cmd) = (commands(&job), commands(&merge));
    assert_eq!((shard_cmd.len(), merge_cmd.len()), (1, 1));
    let dir = std::env::temp_dir().join(format!("smelt-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..completions {
        let mut env = env.to_vec();
        env.push(("JOB_COMPLETION_INDEX", i.to_string()));
        let (code, out) = run(&dir, &shard_cmd[0], &env);
        // `test $? -le 1`: a violation is reported, not retried.
        assert_eq!(code, Some(0), "{out}");
    }
    let (code, out) = run(&dir, &merge_cmd[0], &env);
    assert!(matches!(code, Some(0 | 1)), "{out}");
    assert!(
        out.contains(&format!("merged from {completions} of {completions} shards")),
        "{out}"
    );
    let merged = read(dir.join("merged.json"));
    let whole = format!(
        "/smelt/target/release/smelt check /smelt/specs/raft.sm --config all_faults --simulate --seed {} --walks {walks} --max-depth {} --json whole.json",
        env[0].1, env[2].1
    );
    let (whole_code, out) = run(&dir, &whole, &env);
    assert_eq!(code, whole_code, "{out}");
    let whole = read(dir.join("whole.json"));
    assert_eq!(verdicts(&merged[0]), verdicts(&whole[0]));
    assert_eq!(merged[0]["seed_walk"], whole[0]["seed_walk"]);
    if whole_code == Some(0) {
        assert_eq!(
            merged[0]["simulation"]["steps_run"],
            whole[0]["simulation"]["steps_run"]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
