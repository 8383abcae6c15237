//! What a spec costs at build time: `cargo bench -p smelt-compiler --bench
//! expand` (add `-- --no-build` to skip part 2).
//!
//! 1. Expansion — front end (`check_source`), code generation (`compile`)
//!    and `pretty` — for every spec in `specs/` (top level, `buggy/`,
//!    `liveness/`): `SMELT_EXPAND_RUNS` runs each (default 100) after a
//!    warm-up, median and p99. This binary is optimized; the proc macro in
//!    a `cargo build` is not (proc macros build at opt-level 0 in the dev
//!    profile), so part 2 also times the phases of the largest spec with
//!    this binary built in the dev profile (`-- --phases <spec>`). Target:
//!    under 100 ms for the largest spec.
//! 2. The build of the specs crate (`specs/src/lib.rs` and the specs it
//!    expands), in the dev profile, in a fresh target directory: from
//!    clean (every dependency too), after touching one spec, and with no
//!    change. The crate is copied to a scratch directory (with the
//!    repository's `Cargo.lock`) so that touching a spec leaves the
//!    repository alone.

use smelt_compiler::{compile, pretty, Options};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compiler/ has a parent")
        .to_path_buf()
}

/// Every spec of the library, with its display name (relative to the root).
fn specs() -> Vec<(String, PathBuf)> {
    let root = repo_root();
    let mut out = Vec::new();
    for dir in ["specs", "specs/buggy", "specs/liveness"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("entry").path();
            if path.extension().is_some_and(|x| x == "sm") {
                let name = format!("{dir}/{}", path.file_name().unwrap_or_default().to_string_lossy());
                out.push((name, path));
            }
        }
    }
    out.sort();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Stats {
    median: Duration,
    p99: Duration,
}

fn stats(mut times: Vec<Duration>) -> Stats {
    times.sort();
    Stats {
        median: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
    }
}

/// Part 1; returns the largest spec and its median total expansion time.
fn expansion(runs: usize) -> (String, PathBuf, Duration) {
    let options = Options {
        support_path: "::smelt::support".into(),
    };
    println!("## Expansion (optimized), {runs} runs per spec after 10 warm-up runs; median (p99) in ms\n");
    println!(
        "| {:<40} | {:>6} | {:>5} | {:>9} | {:>9} | {:>9} | {:>17} |",
        "spec", "bytes", "lines", "front end", "codegen", "pretty", "total"
    );
    println!(
        "|{:-<42}|{:->8}|{:->7}|{:->11}|{:->11}|{:->11}|{:->19}|",
        "", "", "", "", "", "", ""
    );
    let mut largest: Option<(u64, String, PathBuf, Duration)> = None;
    for (name, path) in specs() {
        let text = std::fs::read_to_string(&path).expect("read spec");
        let one =
            |check: &mut Vec<Duration>, gen: &mut Vec<Duration>, pp: &mut Vec<Duration>, all: &mut Vec<Duration>| {
                let t0 = Instant::now();
                let checked = smelt_dsl::check_source_in(&name, &text, path.parent().expect("in a directory"));
                let t1 = Instant::now();
                let spec = checked.spec.as_ref().unwrap_or_else(|| panic!("{name} has errors"));
                let tokens = compile(spec, &checked.file, &options);
                let t2 = Instant::now();
                let code = std::hint::black_box(pretty(&tokens));
                let t3 = Instant::now();
                assert!(!code.is_empty());
                check.push(t1 - t0);
                gen.push(t2 - t1);
                pp.push(t3 - t2);
                all.push(t3 - t0);
            };
        let (mut c, mut g, mut p, mut a) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..10 {
            one(&mut c, &mut g, &mut p, &mut a);
        }
        let (mut c, mut g, mut p, mut a) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            one(&mut c, &mut g, &mut p, &mut a);
        }
        let (c, g, p, a) = (stats(c), stats(g), stats(p), stats(a));
        println!(
            "| {:<40} | {:>6} | {:>5} | {:>9.3} | {:>9.3} | {:>9.3} | {:>7.3} ({:>7.3}) |",
            name,
            text.len(),
            text.lines().count(),
            ms(c.median),
            ms(g.median),
            ms(p.median),
            ms(a.median),
            ms(a.p99)
        );
        let size = text.len() as u64;
        if largest.as_ref().is_none_or(|l| size > l.0) {
            largest = Some((size, name, path, a.median));
        }
    }
    let (_, name, path, median) = largest.expect("at least one spec");
    let verdict = if median < Duration::from_millis(100) {
        "under"
    } else {
        "OVER"
    };
    println!(
        "\nLargest spec: {name}, {:.3} ms median — {verdict} the 100 ms target.\n",
        ms(median)
    );
    (name, path, median)
}

/// Runs cargo in `dir` with `target`; returns how long it took and its
/// stderr.
fn cargo(dir: &Path, target: &Path, args: &[&str]) -> (Duration, String) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let start = Instant::now();
    let out = Command::new(cargo)
        .args(args)
        .arg("--target-dir")
        .arg(target)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .expect("run cargo");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "cargo {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (took, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Part 2.
fn builds(largest: &(String, PathBuf, Duration)) {
    let root = repo_root();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smelt-bench-build");
    let _ = std::fs::remove_dir_all(&work);
    let krate = work.join("specs");
    let target = work.join("target");
    std::fs::create_dir_all(krate.join("src")).expect("create scratch crate");
    let manifest = format!(
        "[package]\nname = \"smelt-specs\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\nsmelt = {{ path = {:?} }}\n",
        root.display().to_string()
    );
    std::fs::write(krate.join("Cargo.toml"), manifest).expect("write manifest");
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).expect("copy Cargo.lock");
    std::fs::copy(root.join("specs/src/lib.rs"), krate.join("src/lib.rs")).expect("copy lib.rs");
    // Every spec the crate may expand, at the same relative path.
    let mut spec_files = Vec::new();
    for (name, path) in specs() {
        let to = krate.join(name.trim_start_matches("specs/"));
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("create spec dir");
        std::fs::copy(&path, &to).expect("copy spec");
        spec_files.push(to);
    }
    spec_files.sort();
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).expect("lib.rs");
    let expanded = lib.matches("protocol!(").count();
    // Touch a spec the crate expands (paxos.sm when it does).
    let touched = spec_files
        .iter()
        .find(|p| p.ends_with("paxos.sm"))
        .or_else(|| spec_files.first())
        .expect("a spec to touch")
        .clone();

    println!("## Build of the specs crate ({expanded} `protocol!` calls), dev profile, fresh target directory\n");
    println!("| {:<52} | {:>9} |", "build", "seconds");
    println!("|{:-<54}|{:->11}|", "", "");
    let compiled = |stderr: &str| stderr.contains("Compiling smelt-specs");
    let (clean, _) = cargo(&krate, &target, &["build", "--lib"]);
    println!(
        "| {:<52} | {:>9.1} |",
        "from clean (all dependencies)",
        clean.as_secs_f64()
    );
    let (none, stderr) = cargo(&krate, &target, &["build", "--lib"]);
    assert!(!compiled(&stderr), "a build with no change recompiled:\n{stderr}");
    println!("| {:<52} | {:>9.2} |", "no change", none.as_secs_f64());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&touched)
        .expect("open spec");
    file.set_modified(std::time::SystemTime::now()).expect("touch spec");
    drop(file);
    let touched_name = touched.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (incremental, stderr) = cargo(&krate, &target, &["build", "--lib"]);
    assert!(compiled(&stderr), "touching a spec did not recompile:\n{stderr}");
    println!(
        "| {:<52} | {:>9.2} |",
        format!("incremental, after touching {touched_name}"),
        incremental.as_secs_f64()
    );

    // The unoptimized expansion, as the proc macro runs it in this build:
    // this benchmark built in the dev profile, in `--phases` mode.
    let (name, path, optimized) = largest;
    let cargo_bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo_bin)
        .args([
            "bench",
            "-q",
            "--profile",
            "dev",
            "-p",
            "smelt-compiler",
            "--bench",
            "expand",
        ])
        .arg("--target-dir")
        .arg(&target)
        .args(["--", "--phases"])
        .arg(path)
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo bench --profile dev");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("phases "))
        .unwrap_or_else(|| {
            panic!(
                "no phases from the dev-profile run:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let t: Vec<f64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
    println!(
        "\nExpansion of {name} unoptimized (dev profile, as the proc macro runs in `cargo build`), \
         median of 20: front end {:.1} ms + codegen {:.1} ms = {:.1} ms for `protocol!`; \
         + pretty {:.1} ms = {:.1} ms for the build-script API. Optimized total: {:.1} ms.",
        t[0],
        t[1],
        t[0] + t[1],
        t[2],
        t[0] + t[1] + t[2],
        ms(*optimized)
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// `--phases <spec>`: one line with the median time of each phase, for
/// part 2, which runs this binary built in the dev profile.
fn phases(path: &str) {
    let text = std::fs::read_to_string(path).expect("read spec");
    let options = Options::default();
    let (mut c, mut g, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..23 {
        let t0 = Instant::now();
        let checked = smelt_dsl::check_source_in(
            path,
            &text,
            std::path::Path::new(path).parent().expect("in a directory"),
        );
        let t1 = Instant::now();
        let tokens = compile(checked.spec.as_ref().expect("no errors"), &checked.file, &options);
        let t2 = Instant::now();
        std::hint::black_box(pretty(&tokens));
        let t3 = Instant::now();
        if i >= 3 {
            c.push(t1 - t0);
            g.push(t2 - t1);
            p.push(t3 - t2);
        }
    }
    let (c, g, p) = (stats(c).median, stats(g).median, stats(p).median);
    println!("phases {:.3} {:.3} {:.3}", ms(c), ms(g), ms(p));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--phases") {
        phases(args.get(i + 1).expect("--phases <spec>"));
        return;
    }
    let runs: usize = std::env::var("SMELT_EXPAND_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(1);
    let largest = expansion(runs);
    if args.iter().any(|a| a == "--no-build") {
        return;
    }
    builds(&largest);
}
