//! Input generation for the "the front end never panics" fuzz test and the
//! fuzz benchmark: a seeded PRNG, a corpus of real specs, and mutations at
//! the byte, character and token level. Deterministic for a given seed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// xorshift64*: tiny, fast, deterministic; quality is plenty for fuzzing.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// The specs every mutation starts from: the repository's `specs/*.sm` and
/// the valid test specs, as `(name, text)`.
pub fn corpus() -> Vec<(String, String)> {
    let dsl = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [dsl.join("../specs"), dsl.join("tests/data/valid")] {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let p = e.expect("directory entry").path();
            if p.extension().is_some_and(|x| x == "sm") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

/// Words and symbols of the grammar, and a few names and literals, for
/// token replacement and insertion.
pub const VOCABULARY: &[&str] = &[
    "protocol",
    "type",
    "record",
    "enum",
    "message",
    "service",
    "request",
    "role",
    "state",
    "initial",
    "durable",
    "var",
    "timer",
    "choice",
    "on",
    "from",
    "when",
    "timeout",
    "entry",
    "exit",
    "init",
    "let",
    "if",
    "else",
    "for",
    "in",
    "send",
    "broadcast",
    "goto",
    "set",
    "cancel",
    "reply",
    "redirect",
    "to",
    "choose",
    "assert",
    "return",
    "match",
    "true",
    "false",
    "self",
    "forall",
    "exists",
    "invariant",
    "reachable",
    "eventually",
    "leads_to",
    "linearizable",
    "check",
    "const",
    "fn",
    "is",
    "as",
    "count",
    "servers",
    "clients",
    "workload",
    "network",
    "lossy",
    "crash",
    "stops",
    "mode",
    "symmetry",
    "max_depth",
    "max_states",
    "strategy",
    "threads",
    "expect",
    "timing",
    "drops",
    "ok",
    "violation",
    "safety",
    "liveness",
    "peers",
    "members",
    "len",
    "max",
    "min",
    "Some",
    "None",
    "Option",
    "List",
    "Set",
    "Map",
    "Node",
    "Client",
    "Request",
    "Reply",
    "Bytes",
    "\"a\"",
    "\"{ // \\\" }\"",
    "\"\\x4",
    "\"\\q\"",
    "u64",
    "i8",
    "bool",
    "x",
    "y",
    "Foo",
    "__x",
    "State",
    "0",
    "1",
    "18446744073709551616",
    "99999999999999999999999999999999999999999",
    "1u64",
    "10ms",
    "5s",
    "7us",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    ">",
    ",",
    ";",
    ":",
    "::",
    ".",
    "..",
    "=",
    "==",
    "!=",
    "<=",
    ">=",
    "=>",
    "->",
    "~>",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "&&",
    "||",
    "|",
    "+=",
    "-=",
    "_",
    "@",
    "#",
    "\"",
    "'",
    "\\",
    "//",
    "/*",
    "*/",
    "\n",
    " ",
    "\t",
    "\u{feff}",
    "é",
    "✓",
    "🦀",
    "\u{0}",
];

/// Splits text into tokens (words, numbers, operators, single characters,
/// whitespace runs, comments), so that concatenating them gives the text.
pub fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let len = if c.is_alphanumeric() || c == '_' {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())
        } else if c.is_whitespace() {
            rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len())
        } else if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |k| k + 2)
        } else if [
            "==", "!=", "<=", ">=", "=>", "->", "~>", "&&", "||", "::", "..", "+=", "-=",
        ]
        .iter()
        .any(|op| rest.starts_with(op))
        {
            2
        } else {
            c.len_utf8()
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// Random bytes, biased towards ASCII so that some of it lexes.
pub fn random_bytes(rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let n = rng.below(max_len + 1);
    (0..n)
        .map(|_| {
            if rng.chance(70) {
                b" \n{}()[]<>:;,.=!+-*/%&|~_abcxyz019"[rng.below(34)]
            } else {
                rng.next_u64() as u8
            }
        })
        .collect()
}

/// A random valid UTF-8 string mixing grammar tokens and arbitrary
/// characters (multi-byte ones included).
pub fn random_text(rng: &mut Rng, max_tokens: usize) -> String {
    let n = rng.below(max_tokens + 1);
    let mut s = String::new();
    for _ in 0..n {
        if rng.chance(75) {
            let word: &&str = rng.pick(VOCABULARY);
            s.push_str(word);
            if rng.chance(50) {
                s.push(' ');
            }
        } else {
            let c = char::from_u32(rng.next_u64() as u32 % 0x11_0000).unwrap_or('\u{fffd}');
            s.push(c);
        }
    }
    s
}

/// A prefix of `text` cut at a character boundary.
pub fn truncate(text: &str, at: usize) -> &str {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

/// One token-level mutation (or a few) of `text`. `long_max` bounds the
/// operators of an inserted flat expression (the limit is 2048; debug
/// builds are slow on long ones).
pub fn mutate(rng: &mut Rng, text: &str, other: &str, long_max: usize) -> String {
    let mut toks: Vec<String> = tokens(text).into_iter().map(String::from).collect();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        if toks.is_empty() {
            toks.push(rng.pick(VOCABULARY).to_string());
        }
        let i = rng.below(toks.len());
        match rng.below(9) {
            // delete
            0 => {
                toks.remove(i);
            }
            // duplicate
            1 => {
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            // swap with another token
            2 => {
                let j = rng.below(toks.len());
                toks.swap(i, j);
            }
            // replace with a vocabulary token
            3 | 4 => toks[i] = rng.pick(VOCABULARY).to_string(),
            // insert a vocabulary token
            5 => toks.insert(i, rng.pick(VOCABULARY).to_string()),
            // deep nesting, around the parser's limit
            6 => {
                let depth = 50 + rng.below(30);
                let (open, close, inner) = *rng.pick(&[
                    ("(", ")", "1"),
                    ("[", "]", "x"),
                    ("{", "}", ""),
                    ("Some(", ")", "1"),
                    ("!", "", "true"),
                    ("-", "", "1"),
                    ("if true { ", " } else { 0 }", "1"),
                ]);
                let nest = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
                toks.insert(i, nest);
            }
            // a long flat expression
            7 => {
                let n = 1 + rng.below(long_max.max(1));
                toks.insert(i, vec!["1"; n].join(" + "));
            }
            // splice: the tail of another spec
            _ => {
                let others = tokens(other);
                let j = rng.below(others.len().max(1));
                toks.truncate(i);
                toks.extend(others[j.min(others.len())..].iter().map(|t| t.to_string()));
            }
        }
    }
    toks.concat()
}

/// Checks one input and the front end's contract on it; returns whether it
/// checked clean. Panics (with the input) if the contract is broken.
pub fn check(name: &str, text: &str) -> bool {
    let result = std::panic::catch_unwind(|| smelt_dsl::check_source(name, text));
    let checked = match result {
        Ok(c) => c,
        Err(_) => panic!("check_source panicked on {name}: {text:?}"),
    };
    assert_contract(&checked, text, name);
    // Rendering and the JSON form must not panic either.
    let rendered = checked.render(false);
    assert!(checked.diagnostics.is_empty() || !rendered.is_empty());
    let _ = smelt_dsl::diag::to_json(&checked.file, &checked.diagnostics);
    checked.spec.is_some()
}

pub fn assert_contract(checked: &smelt_dsl::Checked, text: &str, name: &str) {
    assert_eq!(
        checked.spec.is_some(),
        !checked.has_errors(),
        "{name}: `spec` must be `Some` exactly when there are no errors: {text:?}"
    );
    for d in &checked.diagnostics {
        let spans = std::iter::once(&d.primary).chain(&d.secondary).map(|l| l.span);
        for s in spans {
            let (a, b) = (s.start as usize, s.end as usize);
            assert!(
                a <= b && b <= checked.file.text.len(),
                "{name}: span {a}..{b} outside the text ({} bytes) in {:?}: {text:?}",
                checked.file.text.len(),
                d.message
            );
            assert!(
                checked.file.text.is_char_boundary(a) && checked.file.text.is_char_boundary(b),
                "{name}: span {a}..{b} splits a character in {:?}: {text:?}",
                d.message
            );
        }
        assert!(!d.message.is_empty(), "{name}: empty message: {text:?}");
    }
}
