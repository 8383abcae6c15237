//! The front end never panics: random bytes, every kind of truncation and
//! token-level mutations of real specs all come back as diagnostics, with
//! `spec` set exactly when there is no error and every span inside the
//! text. Deterministic (fixed seeds); sized to run in a few seconds in a
//! debug build. `SMELT_FUZZ_SCALE=10` runs ten times as many inputs; the
//! release-mode benchmark `cargo bench -p smelt-dsl --bench fuzz` runs
//! 100,000 and more.

#[path = "support/fuzz_gen.rs"]
mod fuzz_gen;

use fuzz_gen::{check, corpus, mutate, random_bytes, random_text, truncate, Rng};

fn scale() -> usize {
    std::env::var("SMELT_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

#[test]
fn random_text_never_panics() {
    let mut rng = Rng::new(1);
    for i in 0..300 * scale() {
        let text = random_text(&mut rng, 200);
        check(&format!("random_text_{i}.sm"), &text);
        let bytes = random_bytes(&mut rng, 400);
        check(&format!("random_bytes_{i}.sm"), &String::from_utf8_lossy(&bytes));
    }
}

/// `check_file` on bytes that are not UTF-8 reports it, with a span that
/// lies inside the (lossily decoded) text.
#[test]
fn random_files_never_panic() {
    let mut rng = Rng::new(2);
    let dir = std::env::temp_dir().join(format!("smelt-dsl-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input.sm");
    let specs = corpus();
    for i in 0..100 * scale() {
        let mut bytes = random_bytes(&mut rng, 300);
        if i % 2 == 0 {
            // Invalid UTF-8 in the middle of a real spec.
            let (_, text) = rng.pick(&specs);
            let mut b = text.as_bytes().to_vec();
            let at = rng.below(b.len() + 1);
            b.splice(at..at, bytes.drain(..bytes.len().min(3)));
            bytes = b;
        }
        std::fs::write(&path, &bytes).unwrap();
        let checked = smelt_dsl::check_file(&path).expect("read the temporary file");
        fuzz_gen::assert_contract(&checked, &String::from_utf8_lossy(&bytes), "file");
        let _ = checked.render(false);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncations_never_panic() {
    let mut rng = Rng::new(3);
    for (name, text) in corpus() {
        // A sample of prefixes: evenly spaced and random cut points (the
        // benchmark cuts at every byte).
        let n = 8 * scale();
        let mut cuts: Vec<usize> = (0..n).map(|k| k * text.len() / n).collect();
        cuts.extend((0..4 * scale()).map(|_| rng.below(text.len() + 1)));
        for at in cuts {
            check(&format!("{name}[..{at}]"), truncate(&text, at));
        }
    }
}

#[test]
fn mutations_never_panic() {
    let mut rng = Rng::new(4);
    let specs = corpus();
    let mut clean = 0;
    let n = 60 * scale();
    for i in 0..n {
        let (name, text) = rng.pick(&specs);
        let (_, other) = rng.pick(&specs);
        let mutated = mutate(&mut rng, text, other, 300);
        if check(&format!("{name}~{i}"), &mutated) {
            clean += 1;
        }
    }
    // Some mutations are harmless (a duplicated newline); most are not.
    assert!(clean > 0 && clean < n, "{clean} of {n} mutated specs checked clean");
}

/// The limits are enforced with a diagnostic, not a crash.
#[test]
fn limits_are_diagnostics() {
    let cases = [
        (
            "huge.sm",
            format!("protocol P\n// {}\n", "x".repeat(smelt_dsl::parser::SOURCE_BYTES_MAX)),
        ),
        (
            "deep.sm",
            format!("protocol P\nconst X: u64 = {}1{}\n", "(".repeat(65), ")".repeat(65)),
        ),
        (
            "nots.sm",
            format!("protocol P\nconst X: bool = {}true\n", "!".repeat(200)),
        ),
        (
            "long.sm",
            format!("protocol P\nconst X: u64 = {}\n", vec!["1"; 3000].join(" + ")),
        ),
        (
            "else_if_chain.sm",
            format!(
                "protocol P\nfn f(x: u64) -> u64 {{ {} else {{ 0 }} }}\n",
                vec!["if x == 1 { 1 }"; 1100].join(" else ")
            ),
        ),
        (
            "quantifiers.sm",
            format!("protocol P\nconst X: bool = {}true\n", "forall x in [1]. ".repeat(1100)),
        ),
        (
            "generics.sm",
            format!(
                "protocol P\nrole R {{ var x: {}u64{} = None }}\n",
                "Option<".repeat(1100),
                ">".repeat(1100)
            ),
        ),
    ];
    for (name, text) in cases {
        let checked = smelt_dsl::check_source(name, &text);
        fuzz_gen::assert_contract(&checked, &text, name);
        assert!(checked.has_errors(), "{name} must be refused");
    }
    // Just within the nesting limit is fine.
    let ok = format!("protocol P\nconst X: u64 = {}1{}\n", "(".repeat(60), ")".repeat(60));
    assert!(check("nested_ok.sm", &ok));
}
