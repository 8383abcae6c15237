//! Fuzzes the front end in release mode: `cargo bench -p smelt-dsl --bench
//! fuzz`. Runs `SMELT_FUZZ_INPUTS` inputs (default 100,000; seed
//! `SMELT_FUZZ_SEED`, default 1): prefix truncations of every corpus spec
//! (at every byte when the budget allows), token-level mutations, random
//! text and random bytes. Every input must come back without a panic, with
//! `spec` set exactly when there is no error and every span inside the
//! text (see `tests/support/fuzz_gen.rs`). Prints what ran and how long it
//! took; exits non-zero on the first broken contract.

#[path = "../tests/support/fuzz_gen.rs"]
mod fuzz_gen;

use fuzz_gen::{check, corpus, mutate, random_bytes, random_text, truncate, Rng};
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Phase {
    name: &'static str,
    inputs: usize,
    clean: usize,
    secs: f64,
}

fn run(name: &'static str, inputs: impl Iterator<Item = (String, String)>) -> Phase {
    let start = Instant::now();
    let (mut n, mut clean) = (0, 0);
    for (label, text) in inputs {
        n += 1;
        if check(&label, &text) {
            clean += 1;
        }
    }
    let p = Phase {
        name,
        inputs: n,
        clean,
        secs: start.elapsed().as_secs_f64(),
    };
    println!(
        "{:<12} {:>8} inputs {:>8} clean {:>8.1} s {:>8.0} inputs/s",
        p.name,
        p.inputs,
        p.clean,
        p.secs,
        p.inputs as f64 / p.secs.max(1e-9)
    );
    p
}

fn main() {
    let total = env("SMELT_FUZZ_INPUTS", 100_000) as usize;
    let seed = env("SMELT_FUZZ_SEED", 1);
    let specs = corpus();
    let corpus_bytes: usize = specs.iter().map(|(_, t)| t.len() + 1).sum();
    println!(
        "fuzzing the front end: {total} inputs, seed {seed}, corpus of {} specs ({corpus_bytes} bytes)",
        specs.len()
    );
    // 40% truncations (every byte if that fits), 40% mutations, 20% random.
    let truncations = total * 2 / 5;
    let step = corpus_bytes.div_ceil(truncations.max(1)).max(1);
    let mutations = total * 2 / 5;
    // What the truncation phase will really run (cut points every `step`
    // bytes), so that the three phases add up to `total`.
    let cut_points: usize = specs.iter().map(|(_, t)| t.len() / step + 1).sum();
    let random = total - truncations.min(cut_points) - mutations;

    let mut phases = Vec::new();
    let t = specs.iter().flat_map(|(name, text)| {
        (0..=text.len())
            .step_by(step)
            .map(move |at| (format!("{name}[..{at}]"), truncate(text, at).to_string()))
    });
    phases.push(run("truncations", t.take(truncations)));

    let mut rng = Rng::new(seed);
    let m = (0..mutations).map(|i| {
        let (name, text) = rng.pick(&specs);
        let (_, other) = rng.pick(&specs);
        (format!("{name}~{i}"), mutate(&mut rng, text, other, 3000))
    });
    phases.push(run("mutations", m));

    let mut rng = Rng::new(seed ^ 0xABCD);
    let r = (0..random).map(|i| {
        if i % 2 == 0 {
            (format!("random_text_{i}"), random_text(&mut rng, 300))
        } else {
            let bytes = random_bytes(&mut rng, 600);
            (
                format!("random_bytes_{i}"),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        }
    });
    phases.push(run("random", r));

    let inputs: usize = phases.iter().map(|p| p.inputs).sum();
    let clean: usize = phases.iter().map(|p| p.clean).sum();
    let secs: f64 = phases.iter().map(|p| p.secs).sum();
    println!(
        "{:<12} {:>8} inputs {:>8} clean {:>8.1} s {:>8.0} inputs/s   no panic, contract held",
        "total",
        inputs,
        clean,
        secs,
        inputs as f64 / secs.max(1e-9)
    );
}
