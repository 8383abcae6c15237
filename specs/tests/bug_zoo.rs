//! The bug zoo cannot drift. Every file in `specs/buggy/` is a variant
//! (`dsl/src/variant.rs`): it states only its change to its base spec, and
//! the spec the checker sees is put together from the base each time. This
//! test holds that composition to the variant's marked change, with its own
//! reading of the variant file and an independent line diff (`similar`)
//! between the base and the composed text: the lines removed are exactly
//! the change's `-` lines (plus the base's checks the variant does not
//! keep, its protocol line and replaced `expect`s), the lines added exactly
//! its `+` lines, its own checks and the new name. That each change is a
//! bug is `check_specs.rs`'s part: each variant fails the check it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Marks where a kept check goes in `Marked::tail`.
const KEEP: &str = "\0keep ";

/// A variant file, read naively: what it says it changes.
#[derive(Default)]
struct Marked {
    name: String,
    base: String,
    removed: Vec<String>,
    added: Vec<String>,
    /// Kept checks, with their replacement `expect`, if any.
    kept: Vec<(String, Option<String>)>,
    /// Lines outside the header and the changes, appended after the base;
    /// a kept check's place is marked with `KEEP`.
    tail: Vec<String>,
}

fn read_marked(text: &str) -> Marked {
    let mut m = Marked::default();
    let mut in_change = false;
    let mut header = false;
    for line in text.lines() {
        if !header {
            if let Some(rest) = line.strip_prefix("variant ") {
                let (name, rest) = rest.split_once(" of ").expect("variant NAME of \"BASE\"");
                m.name = name.trim().to_string();
                m.base = rest.trim().trim_matches('"').to_string();
                header = true;
            }
            continue;
        }
        if in_change {
            match line.chars().next() {
                Some('}') => in_change = false,
                Some('-') => m.removed.push(line[1..].trim_end().to_string()),
                Some('+') => m.added.push(line[1..].trim_end().to_string()),
                _ => {}
            }
        } else if line.trim() == "change {" {
            in_change = true;
        } else if let Some(rest) = line.strip_prefix("keep check ") {
            let (name, expect) = match rest.split_once(' ') {
                Some((n, e)) => (n, Some(e.trim().to_string())),
                None => (rest, None),
            };
            m.kept.push((name.trim().to_string(), expect));
            m.tail.push(format!("{KEEP}{}", name.trim()));
        } else {
            m.tail.push(line.trim_end().to_string());
        }
    }
    assert!(header, "no `variant` line");
    m
}

/// The base's top-level check blocks: name → their lines.
fn base_checks(base: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, Vec<String>)> = None;
    for line in base.lines() {
        if let Some((name, lines)) = &mut cur {
            lines.push(line.trim_end().to_string());
            if line == "}" {
                out.insert(std::mem::take(name), std::mem::take(lines));
                cur = None;
            }
        } else if let Some(rest) = line.strip_prefix("check ") {
            let name = rest.trim_end_matches(['{', ' ']).to_string();
            cur = Some((name, vec![line.trim_end().to_string()]));
        }
    }
    out
}

/// Takes one copy of `line` out of `pool`; false if there is none.
fn take(pool: &mut BTreeMap<String, usize>, line: &str) -> bool {
    match pool.get_mut(line) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

fn count<'a>(lines: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l.clone()).or_insert(0) += 1;
    }
    m
}

fn variants() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("buggy");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("specs/buggy")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sm"))
        .collect();
    v.sort();
    v
}

#[test]
fn each_variant_differs_from_its_base_exactly_by_its_marked_change() {
    let all = variants();
    assert!(all.len() >= 16, "the zoo has {} variants", all.len());
    for path in all {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            smelt_dsl::variant::is_variant(&text),
            "{shown} is a copy, not a variant"
        );
        let m = read_marked(&text);
        assert!(!m.removed.is_empty() || !m.added.is_empty(), "{shown} changes nothing");
        let base_path = path.parent().unwrap().join(&m.base);
        let base = std::fs::read_to_string(&base_path).unwrap();
        let checked = smelt_dsl::check_file(&path).unwrap();
        assert!(checked.spec.is_some(), "{shown}:\n{}", checked.render_errors());
        let composed = &checked.file.text;

        // What the diff may remove, and must: the change's `-` lines; the
        // base's checks not kept, its protocol line, replaced `expect`s.
        let checks = base_checks(&base);
        let protocol = base.lines().find(|l| l.starts_with("protocol ")).unwrap().to_string();
        let mut may_remove = count(&m.removed);
        let mut may_add = count(&m.added);
        let mut must_remove = m.removed.clone();
        let must_add = m.added.clone();
        *may_remove.entry(protocol.clone()).or_insert(0) += 1;
        *may_add.entry(format!("protocol {}", m.name)).or_insert(0) += 1;
        // Every base check leaves its place; kept ones come back in the
        // variant's own part, where its `keep` is.
        let mut tail_expected = Vec::new();
        for t in &m.tail {
            let Some(name) = t.strip_prefix(KEEP) else {
                tail_expected.push(t.clone());
                continue;
            };
            let (_, expect) = m.kept.iter().find(|(k, _)| k == name).unwrap();
            for l in &checks[name] {
                match expect {
                    Some(e) if l.trim_start().starts_with("expect ") => {
                        tail_expected.push(l.replace(l.trim_start(), e))
                    }
                    _ => tail_expected.push(l.clone()),
                }
            }
        }
        for lines in checks.values() {
            for l in lines {
                *may_remove.entry(l.clone()).or_insert(0) += 1;
            }
            must_remove.push(lines[0].clone());
        }
        for (k, _) in &m.kept {
            assert!(checks.contains_key(k), "{shown} keeps a check `{k}` its base lacks");
        }

        // The variant's own lines come last, as written; the rest is the
        // base, changed.
        let lines: Vec<&str> = composed.lines().collect();
        let (body, tail) = lines.split_at(lines.len() - tail_expected.len());
        let tail: Vec<String> = tail.iter().map(|l| l.trim_end().to_string()).collect();
        assert_eq!(
            tail, tail_expected,
            "{shown}: the variant's own lines do not end the composed spec"
        );
        let body = body.join("\n") + "\n";
        let diff = similar::TextDiff::from_lines(base.as_str(), body.as_str());
        let (mut removed, mut added) = (Vec::new(), Vec::new());
        for op in diff.iter_all_changes() {
            let line = op.value().trim_end_matches(['\n', '\r']).trim_end().to_string();
            match op.tag() {
                similar::ChangeTag::Delete => removed.push(line),
                similar::ChangeTag::Insert => added.push(line),
                similar::ChangeTag::Equal => {}
            }
        }
        for l in &removed {
            assert!(
                take(&mut may_remove, l),
                "{shown}: the composed spec lacks a line of its base that the variant does not remove:\n{l}"
            );
        }
        for l in &added {
            // A dropped check leaves its (now empty) line behind.
            assert!(
                l.is_empty() || take(&mut may_add, l),
                "{shown}: the composed spec has a line that is neither its base's nor the variant's change:\n{l}"
            );
        }
        // And every marked change happened: each `-` line and base check
        // is gone, each `+` line is there.
        let removed = count(&removed);
        for (l, n) in count(&must_remove) {
            assert!(
                removed.get(&l).copied().unwrap_or(0) >= n,
                "{shown}: `{l}` should be removed, and is still in the composed spec"
            );
        }
        let added = count(&added);
        for (l, n) in count(&must_add) {
            assert!(
                added.get(&l).copied().unwrap_or(0) >= n,
                "{shown}: `{l}` is missing from the composed spec"
            );
        }
    }
}

/// The base is read each time: a change to it reaches the variant, and a
/// change that no longer fits it is an error naming the variant's line.
#[test]
fn a_change_to_the_base_reaches_the_variant_or_stops_it() {
    let dir = std::env::temp_dir().join(format!("smelt-zoo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("buggy")).unwrap();
    let specs = Path::new(env!("CARGO_MANIFEST_DIR"));
    let raft = std::fs::read_to_string(specs.join("raft.sm")).unwrap();
    let variant = std::fs::read_to_string(specs.join("buggy/raft_46_stale_vote.sm")).unwrap();
    std::fs::write(dir.join("buggy/v.sm"), &variant).unwrap();

    // An edit elsewhere in the base shows in the variant.
    let edited = raft.replace("const WINDOW: u64 = 4", "const WINDOW: u64 = 3");
    assert_ne!(edited, raft);
    std::fs::write(dir.join("raft.sm"), &edited).unwrap();
    let c = smelt_dsl::check_file(&dir.join("buggy/v.sm")).unwrap();
    assert!(c.spec.is_some(), "{}", c.render_errors());
    assert!(c.file.text.contains("const WINDOW: u64 = 3"));
    assert!(c.file.text.contains("on Vote(v) from src when v.granted {"));

    // An edit to the lines the change removes makes it an error there.
    let moved = raft.replace(
        "on Vote(v) from src when v.term == current_term && v.granted {",
        "on Vote(v) from src when v.granted && v.term == current_term {",
    );
    assert_ne!(moved, raft);
    std::fs::write(dir.join("raft.sm"), &moved).unwrap();
    let c = smelt_dsl::check_file(&dir.join("buggy/v.sm")).unwrap();
    assert!(c.spec.is_none());
    let shown = c.render_errors();
    let line = variant.lines().position(|l| l == "change {").unwrap() + 1;
    assert!(shown.contains("this change does not apply"), "{shown}");
    assert!(shown.contains(&format!("v.sm:{line}:1")), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}
