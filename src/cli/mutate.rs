//! `smelt mutate spec.sm`: checks the spec's checks. Each mutant (one
//! semantic change to the protocol, `smelt_dsl::mutate`) is run against the
//! spec's own checks; a mutant the checks do not notice is a hole in them
//! (or an equivalent mutant, which the author marks in the spec).
//!
//! Mutants are compiled together, in batches of `--batch` per harness crate
//! (one `mod` each, dispatched by index), so a hundred mutants cost a few
//! builds, not a hundred. The unmutated spec is built alongside and runs
//! first: it must pass its checks, and its times order them (cheapest
//! first, so most mutants die fast).

use super::harness;
use smelt_dsl::mutate::{self, Mutant};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(clap::Args)]
pub struct MutateArgs {
    /// The `.sm` spec (not a variant: mutate its base).
    spec: PathBuf,
    /// Only these operators (comma-separated): cmp, logic, conjunct,
    /// negation, guard, quorum, off_by_one, durable, assign, send, timer,
    /// reply_early.
    #[arg(long, value_delimiter = ',')]
    operators: Vec<String>,
    /// Only these `check` blocks (comma-separated; default: all of them).
    #[arg(long = "config", value_delimiter = ',')]
    configs: Vec<String>,
    /// Each check of a mutant stops after this many states; a mutant is
    /// then killed only by a violation found before.
    #[arg(long, default_value_t = 1_000_000)]
    max_states: u64,
    /// Run a random sample of this many mutants (reproducible: `--seed`).
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only these mutants (comma-separated numbers, as `--list` and
    /// the report number them): to re-run survivors, e.g. with more states.
    #[arg(long, value_delimiter = ',')]
    mutants: Vec<usize>,
    /// List the mutants (with the equivalent and invalid ones) and stop.
    #[arg(long)]
    list: bool,
    /// Mutants compiled per harness build.
    #[arg(long, default_value_t = 40)]
    batch: usize,
    /// Checks run at once (default: the machine's cores), one thread each.
    #[arg(long)]
    jobs: Option<usize>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit 1 when the kill rate (killed over mutants that are neither
    /// equivalent nor invalid) is below this percentage.
    #[arg(long)]
    min_kill_rate: Option<f64>,
}

/// What became of one mutant.
#[derive(Clone, Debug)]
enum Outcome {
    /// Marked `smelt: equivalent(..)` in the spec.
    Equivalent { reason: String },
    /// The mutated spec does not type-check (the language rules it out).
    Invalid { error: String },
    /// Not in the sample.
    NotRun,
    /// A check failed on it.
    Killed { check: String, by: String },
    /// Every check passed (within `--max-states`, as the spec itself did).
    Survived,
    /// No check failed, but one that finishes on the spec was cut at
    /// `--max-states` on the mutant.
    Unknown { check: String },
    /// The harness did not produce a report.
    Error { message: String },
}

struct Row {
    id: usize,
    operator: &'static str,
    location: String,
    description: String,
    outcome: Outcome,
    change: String,
}

impl Row {
    fn json(&self) -> serde_json::Value {
        let (status, detail) = match &self.outcome {
            Outcome::Equivalent { reason } => ("equivalent", serde_json::json!({ "reason": reason })),
            Outcome::Invalid { error } => ("invalid", serde_json::json!({ "error": error })),
            Outcome::NotRun => ("not_run", serde_json::json!({})),
            Outcome::Killed { check, by } => ("killed", serde_json::json!({ "check": check, "by": by })),
            Outcome::Survived => ("survived", serde_json::json!({})),
            Outcome::Unknown { check } => ("unknown", serde_json::json!({ "check": check })),
            Outcome::Error { message } => ("error", serde_json::json!({ "message": message })),
        };
        serde_json::json!({
            "id": self.id,
            "operator": self.operator,
            "location": self.location,
            "description": self.description,
            "status": status,
            "detail": detail,
            "change": self.change,
        })
    }
}

/// The result of one check of one build: killed by what, or how it went.
enum Run {
    Killed(String),
    Passed,
    Cut,
}

pub fn mutate(args: MutateArgs) -> i32 {
    match mutate_inner(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn mutate_inner(args: &MutateArgs) -> Result<i32, String> {
    let shown = args.spec.display().to_string();
    let text = std::fs::read_to_string(&args.spec).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if smelt_dsl::variant::is_variant(&text) {
        return Err(format!("{shown} is a variant: mutate its base"));
    }
    let checked = smelt_dsl::check_source(&shown, &text);
    let Some(ir) = &checked.spec else {
        eprint!("{}", checked.render_errors());
        return Ok(1);
    };
    for op in &args.operators {
        if !mutate::OPERATORS.contains(&op.as_str()) {
            return Err(format!(
                "unknown operator `{op}` (one of {})",
                mutate::OPERATORS.join(", ")
            ));
        }
    }
    let mut checks: Vec<String> = ir.checks.iter().map(|c| c.name.clone()).collect();
    if !args.configs.is_empty() {
        for c in &args.configs {
            if !checks.contains(c) {
                return Err(format!("{shown} has no check `{c}` (it has {})", checks.join(", ")));
            }
        }
        checks.retain(|c| args.configs.contains(c));
    }
    if checks.is_empty() {
        return Err(format!("{shown} has no check to run its mutants against"));
    }
    let (ast, _) = smelt_dsl::parser::parse(&text);
    let all: Vec<Mutant> = mutate::mutants(&ast, &text)
        .into_iter()
        .filter(|m| args.operators.is_empty() || args.operators.iter().any(|o| o == m.operator))
        .collect();
    // Equivalent and invalid mutants are settled without a build.
    let mut outcomes: Vec<Option<Outcome>> = all
        .iter()
        .map(|m| {
            if let Some(reason) = mutate::equivalent(&text, m) {
                return Some(Outcome::Equivalent { reason });
            }
            let c = smelt_dsl::check_source(&shown, &m.apply(&text));
            c.diagnostics.iter().find(|d| d.is_error()).map(|d| Outcome::Invalid {
                error: d.message.clone(),
            })
        })
        .collect();
    for &i in &args.mutants {
        if i >= all.len() {
            return Err(format!(
                "there is no mutant #{i} (the last is #{})",
                all.len().saturating_sub(1)
            ));
        }
    }
    if !args.mutants.is_empty() {
        for (i, o) in outcomes.iter_mut().enumerate() {
            if o.is_none() && !args.mutants.contains(&i) {
                *o = Some(Outcome::NotRun);
            }
        }
    }
    let mut candidates: Vec<usize> = (0..all.len()).filter(|&i| outcomes[i].is_none()).collect();
    if let Some(n) = args.sample {
        shuffle(&mut candidates, args.seed);
        for &i in candidates.iter().skip(n) {
            outcomes[i] = Some(Outcome::NotRun);
        }
        candidates.truncate(n);
        candidates.sort_unstable();
    }
    let sf = smelt_dsl::SourceFile::new(shown.clone(), text.clone());
    let locate = |m: &Mutant| {
        let (l, c) = sf.line_col(m.span.start);
        format!("{}:{l}:{c}", file_name(&args.spec))
    };
    if args.list {
        for (i, m) in all.iter().enumerate() {
            let status = match &outcomes[i] {
                Some(Outcome::Equivalent { reason }) => format!("equivalent: {reason}"),
                Some(Outcome::Invalid { error }) => format!("invalid: {error}"),
                Some(Outcome::NotRun) => "not run (--sample, --mutants)".into(),
                _ => "to run".into(),
            };
            println!(
                "#{i:<4} {:<12} {:<24} {}  [{status}]",
                m.operator,
                locate(m),
                m.description
            );
        }
        println!("{} mutants, {} to run", all.len(), candidates.len());
        return Ok(0);
    }
    eprintln!(
        "smelt mutate: {} mutants of {shown} ({} to run, {} equivalent, {} invalid); checks: {}",
        all.len(),
        candidates.len(),
        outcomes
            .iter()
            .filter(|o| matches!(o, Some(Outcome::Equivalent { .. })))
            .count(),
        outcomes
            .iter()
            .filter(|o| matches!(o, Some(Outcome::Invalid { .. })))
            .count(),
        checks.join(", ")
    );

    // Build: the spec itself with the first batch, then batch after batch.
    let abs = args
        .spec
        .canonicalize()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let root = harness::harness_root().join(format!("mutate-{}", harness::dir_key(&abs)));
    let mut bins: Vec<(Vec<usize>, PathBuf)> = Vec::new();
    let batches: Vec<&[usize]> = if candidates.is_empty() {
        vec![&[]]
    } else {
        candidates.chunks(args.batch.max(1)).collect()
    };
    for (b, ids) in batches.iter().enumerate() {
        let dir = root.join(format!("b{b}"));
        let mut files = Vec::new();
        if b == 0 {
            files.push(("orig".to_string(), text.clone()));
        }
        for &i in ids.iter() {
            files.push((format!("m{i}"), all[i].apply(&text)));
        }
        eprintln!(
            "smelt mutate: building batch {} of {} ({} mutants)...",
            b + 1,
            batches.len(),
            ids.len()
        );
        let bin = harness::build_multi(&dir, &files, &smelt_compiler::module_name(ir), &ir.name)?;
        bins.push((ids.to_vec(), bin));
    }

    // The spec itself: must pass; its times order the checks.
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut timed = Vec::new();
    for c in &checks {
        let t = std::time::Instant::now();
        let (run, report) = run_check(&bins[0].1, "orig", c, args.max_states)?;
        match run {
            Run::Killed(by) => {
                return Err(format!(
                    "{shown} fails its own check `{c}` ({by}); fix it before mutating it\n{report}"
                ))
            }
            Run::Cut => eprintln!(
                "smelt mutate: `{c}` on {shown} itself stops at {} states: mutants are killed there only by a violation found before",
                args.max_states
            ),
            Run::Passed => {}
        }
        timed.push((t.elapsed(), c.clone(), matches!(run, Run::Cut)));
    }
    timed.sort_by_key(|t| t.0);
    let order: Vec<(String, bool)> = timed.into_iter().map(|(_, c, cut)| (c, cut)).collect();

    // Every candidate, `jobs` at a time.
    let work: Vec<(usize, &PathBuf)> = bins
        .iter()
        .flat_map(|(ids, bin)| ids.iter().map(move |&i| (i, bin)))
        .collect();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::<(usize, Outcome)>::new());
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(work.len().max(1)) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, bin)) = work.get(k) else { break };
                let outcome = judge(bin, i, &order, args.max_states);
                let mut d = done.lock().expect("no panics while held");
                eprintln!(
                    "[{}/{}] #{i} {} {}: {}",
                    d.len() + 1,
                    work.len(),
                    all[i].operator,
                    locate(&all[i]),
                    short(&outcome)
                );
                d.push((i, outcome));
            });
        }
    });
    for (i, o) in done.into_inner().expect("no panics while held") {
        outcomes[i] = Some(o);
    }

    let rows: Vec<Row> = all
        .iter()
        .enumerate()
        .map(|(i, m)| Row {
            id: i,
            operator: m.operator,
            location: locate(m),
            description: m.description.clone(),
            outcome: outcomes[i].clone().unwrap_or(Outcome::NotRun),
            change: change_block(&text, m),
        })
        .collect();
    let (report, rate) = render(&shown, &rows, &checks, started.elapsed());
    print!("{report}");
    if let Some(path) = &args.json {
        let doc = serde_json::json!({ "spec": shown, "checks": checks, "max_states": args.max_states, "kill_rate": rate, "mutants": rows.iter().map(Row::json).collect::<Vec<_>>() });
        let s = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, s).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(match (args.min_kill_rate, rate) {
        (Some(min), Some(r)) if r < min => {
            eprintln!("kill rate {r:.1}% is below --min-kill-rate {min}%");
            1
        }
        _ => 0,
    })
}

/// Runs a mutant through the checks, cheapest first, until one fails.
fn judge(bin: &Path, i: usize, order: &[(String, bool)], max_states: u64) -> Outcome {
    let mut unknown = None;
    for (c, cut_on_spec) in order {
        match run_check(bin, &format!("{i}"), c, max_states) {
            Ok((Run::Killed(by), _)) => return Outcome::Killed { check: c.clone(), by },
            Ok((Run::Cut, _)) if !cut_on_spec => unknown = unknown.or(Some(c.clone())),
            Ok(_) => {}
            Err(message) => return Outcome::Error { message },
        }
    }
    match unknown {
        Some(check) => Outcome::Unknown { check },
        None => Outcome::Survived,
    }
}

/// Runs one check of one build (`which`: `orig` or a mutant's index) and
/// says what it found, with the JSON report for messages.
fn run_check(bin: &Path, which: &str, check: &str, max_states: u64) -> Result<(Run, String), String> {
    let out = Command::new(bin)
        .args([
            which,
            "check",
            "--config",
            check,
            "--json",
            "-",
            "--no-delta-check",
            "--threads",
            "1",
        ])
        .args(["--max-states", &max_states.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        let err = String::from_utf8_lossy(&out.stderr);
        format!("no report from check `{check}`: {}", err.trim())
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let Some(r) = report.as_array().and_then(|a| a.first()) else {
        // Liveness needs the whole graph: past the bound it stops with no
        // verdict at all, which is a cut like a safety search's.
        if stderr.contains("exceeds max_states") {
            return Ok((Run::Cut, String::new()));
        }
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(format!("no report from check `{check}`: {last}"));
    };
    let complete = r["stats"]["complete"].as_bool().unwrap_or(false);
    let as_expected = r["as_expected"].as_bool();
    let violated: Vec<&str> = r["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["verdict"] == "violated")
        .filter_map(|p| p["name"].as_str())
        .collect();
    let text = serde_json::to_string(&r["properties"]).unwrap_or_default();
    let run = match as_expected {
        Some(true) => Run::Passed,
        _ if !violated.is_empty() => Run::Killed(violated.join(", ")),
        // A complete search that misses a `reachable`, or some other
        // expectation: the check noticed.
        Some(false) if complete || r["stats"]["stopped"].as_str().is_none_or(|s| !s.contains("max_states")) => {
            let unmet: Vec<&str> = r["properties"]
                .as_array()
                .into_iter()
                .flatten()
                // A `reachable` not reached (`unknown` after a complete
                // or depth-bounded search); the others stay `unknown`
                // only when the search stopped.
                .filter(|p| p["kind"] == "reachable" && p["verdict"] != "reached")
                .filter_map(|p| p["name"].as_str())
                .collect();
            Run::Killed(if unmet.is_empty() {
                "its expectation".into()
            } else {
                unmet.join(", ")
            })
        }
        _ => Run::Cut,
    };
    Ok((run, text))
}

fn short(o: &Outcome) -> String {
    match o {
        Outcome::Killed { check, by } => format!("killed by `{check}` ({by})"),
        Outcome::Survived => "SURVIVED".into(),
        Outcome::Unknown { check } => format!("unknown (`{check}` cut at the state limit)"),
        Outcome::Error { message } => format!("error: {message}"),
        Outcome::Equivalent { .. } => "equivalent".into(),
        Outcome::Invalid { .. } => "invalid".into(),
        Outcome::NotRun => "not run".into(),
    }
}

/// The mutant as a `change` block (the bug zoo's variant format): the
/// whole lines it touches, before and after.
fn change_block(text: &str, m: &Mutant) -> String {
    let r = m.span.range();
    let start = text[..r.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[r.end..].find('\n').map_or(text.len(), |i| r.end + i);
    let old = &text[start..end];
    let new = format!("{}{}{}", &text[start..r.start], m.replacement, &text[r.end..end]);
    let mut out = String::from("change {\n");
    for l in old.lines() {
        let _ = writeln!(out, "-{l}");
    }
    for l in new.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(out, "+{l}");
    }
    out.push_str("}\n");
    out
}

/// The human report, and the kill rate over mutants that ran.
fn render(shown: &str, rows: &[Row], checks: &[String], took: std::time::Duration) -> (String, Option<f64>) {
    let mut out = String::new();
    let _ = writeln!(out, "mutants of {shown}, against checks {}:", checks.join(", "));
    let _ = writeln!(
        out,
        "\n| operator | mutants | killed | survived | unknown | equivalent | invalid | not run | kill rate |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = [0usize; 8];
    let ops: Vec<&str> = mutate::OPERATORS
        .iter()
        .copied()
        .filter(|o| rows.iter().any(|r| r.operator == *o))
        .collect();
    for op in ops.iter().map(Some).chain([None]) {
        let mine: Vec<&Row> = rows.iter().filter(|r| op.is_none_or(|o| r.operator == *o)).collect();
        let n = |f: fn(&Outcome) -> bool| mine.iter().filter(|r| f(&r.outcome)).count();
        let c = [
            mine.len(),
            n(|o| matches!(o, Outcome::Killed { .. })),
            n(|o| matches!(o, Outcome::Survived)),
            n(|o| matches!(o, Outcome::Unknown { .. } | Outcome::Error { .. })),
            n(|o| matches!(o, Outcome::Equivalent { .. })),
            n(|o| matches!(o, Outcome::Invalid { .. })),
            n(|o| matches!(o, Outcome::NotRun)),
            0,
        ];
        if op.is_some() {
            for (t, x) in total.iter_mut().zip(c) {
                *t += x;
            }
        }
        let c = if op.is_some() { c } else { total };
        let ran = c[1] + c[2] + c[3];
        let rate = if ran == 0 {
            "–".to_string()
        } else {
            format!("{:.1}%", 100.0 * c[1] as f64 / ran as f64)
        };
        let name = op.map_or("**all**".to_string(), |o| format!("`{o}`"));
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {rate} |",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        );
    }
    let ran = total[1] + total[2] + total[3];
    let rate = (ran > 0).then(|| 100.0 * total[1] as f64 / ran as f64);
    let survivors: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Survived | Outcome::Unknown { .. } | Outcome::Error { .. }
            )
        })
        .collect();
    if !survivors.is_empty() {
        let _ = writeln!(
            out,
            "\nNot killed (add a check or a property that notices, or mark the mutant\n`// smelt: equivalent({{operator}}) reason` on its line, or\n`equivalent({{operator}}={{new code}})` for one of its mutants there):"
        );
        for r in survivors {
            let _ = writeln!(
                out,
                "\n#{} {} at {}: {} [{}]\n{}",
                r.id,
                r.operator,
                r.location,
                r.description,
                short(&r.outcome),
                r.change
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} mutants run in {:.0} s; kill rate {}",
        ran,
        took.as_secs_f64(),
        rate.map_or("–".into(), |r| format!("{r:.1}% ({} of {ran})", total[1]))
    );
    (out, rate)
}

/// A reproducible shuffle (xorshift; the sample must not depend on the
/// platform's random source).
fn shuffle(v: &mut [usize], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into_owned())
}
