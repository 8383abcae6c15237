//! How long `smelt lint` takes: `cargo bench -p smelt-dsl --bench lint`.
//! For each spec in `specs/` and the biggest valid test spec, runs
//! `check_source` `SMELT_LINT_RUNS` times (default 200) after a warm-up and
//! prints the median and 99th percentile. The target is well under 10 ms
//! for the largest spec.

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::var("SMELT_LINT_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
        .max(1);
    let dsl = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dsl.join("../specs"))
        .expect("specs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sm"))
        .collect();
    files.sort();
    // The biggest valid test spec.
    let biggest = std::fs::read_dir(dsl.join("tests/data/valid"))
        .expect("tests/data/valid")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sm"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    files.extend(biggest);

    println!("check_source, {runs} runs each (after 20 warm-up runs)");
    println!(
        "{:<40} {:>7} {:>6} {:>11} {:>11} {:>8}",
        "spec", "bytes", "lines", "median", "p99", "errors"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read spec");
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let dir = if path.starts_with(dsl.join("tests")) {
            "dsl/tests/data/valid"
        } else {
            "specs"
        };
        let name = format!("{dir}/{file}");
        for _ in 0..20 {
            std::hint::black_box(smelt_dsl::check_source_in(
                &name,
                &text,
                path.parent().expect("in a directory"),
            ));
        }
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut errors = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let c = std::hint::black_box(smelt_dsl::check_source_in(
                &name,
                &text,
                path.parent().expect("in a directory"),
            ));
            times.push(t.elapsed());
            errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
        }
        times.sort();
        let median = times[times.len() / 2];
        let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
        println!(
            "{:<40} {:>7} {:>6} {:>8.3} ms {:>8.3} ms {:>8}",
            name,
            text.len(),
            text.lines().count(),
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            errors
        );
    }
}
