//! Mutant generation (`mutate.rs`): what is mutated, and what never is.

use smelt_dsl::ast::Item;
use smelt_dsl::mutate::{equivalent, mutants, OPERATORS};

fn spec(name: &str) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/").to_string() + name).unwrap()
}

/// The checks' own code (properties, checks, the service, the functions
/// properties call, ghost state) is never mutated: a mutant there would
/// test the checks against themselves.
#[test]
fn only_the_protocol_is_mutated() {
    for name in [
        "raft.sm",
        "paxos.sm",
        "abd.sm",
        "two_phase_commit.sm",
        "multipaxos.sm",
        "chain_replication.sm",
        "primary_backup.sm",
    ] {
        let text = spec(name);
        let (file, _) = smelt_dsl::parser::parse(&text);
        let ms = mutants(&file, &text);
        assert!(ms.len() >= 20, "{name}: only {} mutants", ms.len());
        let off_limits: Vec<_> = file
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Property(p) => Some(p.span),
                Item::Check(c) => Some(c.span),
                Item::Service(s) => Some(s.span),
                _ => None,
            })
            .collect();
        for m in &ms {
            assert!(OPERATORS.contains(&m.operator));
            for s in &off_limits {
                assert!(
                    m.span.end <= s.start || m.span.start >= s.end,
                    "{name}: {} mutates the checks' code: {}",
                    m.operator,
                    m.description
                );
            }
            let changed = m.apply(&text);
            assert_ne!(changed, text, "{name}: {} changes nothing", m.description);
            // Ghost state is the checks' too.
            assert!(
                !(m.operator == "assign"
                    && (m.description.contains("leader_log") || m.description.starts_with("`history."))),
                "{name}: {}",
                m.description
            );
        }
    }
    // raft.sm's `committed_agree` is read by an invariant only.
    let text = spec("raft.sm");
    let (file, _) = smelt_dsl::parser::parse(&text);
    let f = file
        .items
        .iter()
        .find_map(|i| match i {
            Item::Fn(f) if f.name.name == "committed_agree" => Some(f.span),
            _ => None,
        })
        .expect("raft.sm has committed_agree");
    assert!(mutants(&file, &text)
        .iter()
        .all(|m| m.span.end <= f.start || m.span.start >= f.end));
}

#[test]
fn each_operator_makes_its_change() {
    let text = spec("two_phase_commit.sm");
    let (file, _) = smelt_dsl::parser::parse(&text);
    let list: Vec<String> = mutants(&file, &text)
        .iter()
        .map(|m| format!("{:<12} {}", m.operator, m.description))
        .collect();
    insta::assert_snapshot!(list.join("\n"));
}

/// Each mutant of `operator` in `text`, described, with whether it is marked
/// equivalent.
fn marked(text: &str, operator: &str) -> Vec<(String, bool)> {
    let (file, _) = smelt_dsl::parser::parse(text);
    mutants(&file, text)
        .into_iter()
        .filter(|m| m.operator == operator)
        .map(|m| (m.description.clone(), equivalent(text, &m).is_some()))
        .collect()
}

#[test]
fn a_marked_mutant_is_equivalent_with_its_reason() {
    let text = "protocol P\nmessage M\nrole R {\n    // smelt: equivalent(durable, cmp) the value is never read\n    durable x: u64 = 0\n    // smelt: equivalent(send)\n    on M { send self M }\n}\n";
    let (file, _) = smelt_dsl::parser::parse(text);
    let ms = mutants(&file, text);
    let durable = ms.iter().find(|m| m.operator == "durable").unwrap();
    assert_eq!(equivalent(text, durable).as_deref(), Some("the value is never read"));
    // A mark without a reason does not count.
    let send = ms.iter().find(|m| m.operator == "send").unwrap();
    assert_eq!(equivalent(text, send), None);
    // A trailing mark is its own line's, not the next line's.
    let text = "protocol P\nmessage M\nrole R {\n    var x: u64 = 0\n    on M {\n        x = 1 // smelt: equivalent(*) this one only\n        x = 2\n    }\n}\n";
    assert_eq!(
        marked(text, "assign"),
        [
            ("`x = 1` deleted".to_string(), true),
            ("`x = 2` deleted".to_string(), false)
        ]
    );
    // `OPERATOR=REPLACEMENT` marks one of an operator's mutants on a line.
    let text = "protocol P\nmessage M\nrole R {\n    var x: u64 = 0\n    on M {\n        x = x + 1 // smelt: equivalent(off_by_one=2) skipping a number is harmless\n    }\n}\n";
    assert_eq!(
        marked(text, "off_by_one"),
        [
            ("`x + 1` → `x + 2`".to_string(), true),
            ("`x + 1` → `x + 0`".to_string(), false)
        ]
    );
}
