//! Rust identifiers for spec names.

use proc_macro2::{Ident, Span};

const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "super", "trait", "true", "try",
    "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield", "union",
];

/// Names the generated handlers use for their own parameters; spec locals
/// with these names get a trailing underscore.
const INTERNAL: &[&str] = &[
    "me", "st", "fx", "dirty", "view", "msg", "timer", "random", "storage", "state", "binding",
];

/// An identifier as written, escaped if it is a Rust keyword.
pub fn ident(name: &str) -> Ident {
    match name {
        "self" | "Self" | "crate" | "super" => Ident::new(&format!("{name}_"), Span::call_site()),
        _ if RUST_KEYWORDS.contains(&name) => Ident::new_raw(name, Span::call_site()),
        _ => Ident::new(name, Span::call_site()),
    }
}

/// The Rust name of a spec local.
pub fn local(name: &str) -> Ident {
    if INTERNAL.contains(&name) {
        ident(&format!("{name}_"))
    } else {
        ident(name)
    }
}

/// `Server` + `State` → `ServerState`.
pub fn suffixed(name: &str, suffix: &str) -> Ident {
    Ident::new(&format!("{name}{suffix}"), Span::call_site())
}

/// `TwoPhaseCommit` → `two_phase_commit`, `ABD` → `abd`,
/// `HTTPServer` → `http_server`: runs of capitals are one word.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    if RUST_KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// `vote_timeout` → `VoteTimeout`.
pub fn camel(name: &str) -> Ident {
    let mut out = String::new();
    let mut up = true;
    for c in name.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    Ident::new(&out, Span::call_site())
}

#[cfg(test)]
mod tests {
    use super::snake;

    #[test]
    fn snake_case_keeps_acronyms_together() {
        assert_eq!(snake("TwoPhaseCommit"), "two_phase_commit");
        assert_eq!(snake("ABD"), "abd");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(snake("Paxos2Go"), "paxos2_go");
        assert_eq!(snake("Raft"), "raft");
    }
}
