//! Variants: a spec written as a change to another spec.
//!
//! A bug zoo of hand-kept copies drifts: every change to the base spec has
//! to be made again in each copy, and copies that miss one stop testing
//! what they claim to. A variant states only its difference, and is put
//! together from the base each time it is read, so a change to the base
//! reaches every variant. A variant file looks like this:
//!
//! ```text
//! // raft-46: a vote from an earlier term is counted.
//! variant RaftStaleVote of "../raft.sm"
//!
//! // BUG: the vote's term is not compared with ours.
//! change {
//! -        on Vote(v) from src when v.term == current_term && v.granted {
//! +        on Vote(v) from src when v.granted {
//! }
//!
//! keep check all_faults expect violation ElectionSafety
//!
//! check stale_vote {
//!     ...
//! }
//! ```
//!
//! - Comments may come before the `variant NAME of "BASE"` line, which
//!   names the variant's protocol and its base (relative to the variant's
//!   directory; the base must be a spec, not another variant).
//! - A `change { ... }` block is a hunk of a diff located by content, not
//!   by line number: lines starting with `-` are base lines it removes, `+`
//!   lines it adds, a space (or nothing) lines of the base it keeps. The
//!   kept and removed lines, in order, must occur exactly once in the base
//!   (trailing whitespace aside), so a change that no longer fits its base
//!   is an error naming the variant's line, never a silent no-op.
//! - The base's checks are dropped (a variant's checks are about its bug);
//!   `keep check NAME` keeps one as the base has it, optionally with its
//!   `expect` replaced (`keep check NAME expect violation P`).
//! - Every other line (comments, checks, properties, declarations) is
//!   appended after the base.
//!
//! The result is one text whose [`Origin`] maps every byte back to the
//! base or the variant, so diagnostics name the file and line written.

use crate::ast::{CheckEntryKind, Item, Span};
use crate::diag::{Diagnostic, Origin, Piece, SourceFile};
use std::path::{Component, Path, PathBuf};

/// A variant put together: the composed source, and the base's path.
pub struct Composed {
    pub file: SourceFile,
    pub base: PathBuf,
}

/// Whether a spec's text is a variant: its first line that is neither
/// blank nor a comment starts with the word `variant`.
pub fn is_variant(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))
        .is_some_and(|l| {
            l.strip_prefix("variant")
                .is_some_and(|r| r.starts_with(char::is_whitespace))
        })
}

/// One line of the variant file: its byte range (with the newline) and
/// its text (without it).
#[derive(Clone, Copy)]
struct Line<'a> {
    start: usize,
    end: usize,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        let end = at + l.len();
        out.push(Line {
            start: at,
            end,
            text: l.trim_end_matches(['\n', '\r']),
        });
        at = end;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Keep,
    Remove,
    Add,
}

struct Hunk {
    /// The `change {` line.
    head: Span,
    /// Each line: its mark and the range of its text after the mark
    /// (with the newline) in the variant.
    lines: Vec<(Mark, usize, usize)>,
}

enum Tail {
    Line(usize, usize),
    Keep(usize),
}

struct Keep {
    name: String,
    name_span: Span,
    /// The replacement `expect ...` entry, if any.
    expect: Option<Span>,
}

/// What the variant file says, before the base is read.
struct Parsed {
    name: Span,
    base: Span,
    base_path: String,
    hunks: Vec<Hunk>,
    keeps: Vec<Keep>,
    /// What follows the base, in the variant's order: its own lines, and
    /// the checks it keeps (an index into `keeps`).
    tail: Vec<Tail>,
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Splits off the first whitespace-separated word of `s` (which starts at
/// byte `at` of the file): the word's span and the rest.
fn word(s: &str, at: usize) -> Option<(&str, Span, &str, usize)> {
    let trimmed = s.trim_start();
    let skip = s.len() - trimmed.len();
    if trimmed.is_empty() {
        return None;
    }
    let len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
    let start = at + skip;
    Some((
        &trimmed[..len],
        Span::new(start, start + len),
        &trimmed[len..],
        start + len,
    ))
}

/// The text of a line without a trailing `// comment` (variant directives
/// hold no strings with `//` in them except the base path, handled apart).
fn strip_comment(s: &str) -> &str {
    match s.find("//") {
        Some(i) => &s[..i],
        None => s,
    }
}

fn parse(text: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let all = lines(text);
    let mut errors = Vec::new();
    let mut i = 0;
    while i < all.len() && (all[i].text.trim().is_empty() || all[i].text.trim_start().starts_with("//")) {
        i += 1;
    }
    let Some(head) = all.get(i) else {
        return Err(vec![Diagnostic::error(Span::new(0, 0), "empty variant")]);
    };
    let head_span = Span::new(head.start, head.start + head.text.len());
    let usage = "a variant starts with `variant NAME of \"BASE\"`, BASE a path relative to this file";
    let header = (|| {
        let (_, _, rest, at) = word(head.text, head.start)?;
        let (name, name_span, rest, at) = word(rest, at)?;
        if !is_ident(name) {
            return None;
        }
        let (of, _, rest, at) = word(rest, at)?;
        if of != "of" {
            return None;
        }
        let t = rest.trim_start();
        let q = at + (rest.len() - t.len());
        let t = t.strip_prefix('"')?;
        let close = t.find('"')?;
        let path = &t[..close];
        let after = t[close + 1..].trim();
        if path.is_empty() || !(after.is_empty() || after.starts_with("//")) {
            return None;
        }
        Some((name_span, Span::new(q + 1, q + 1 + close), path.to_string()))
    })();
    let Some((name, base, base_path)) = header else {
        return Err(vec![
            Diagnostic::error(head_span, "malformed variant header").label(usage)
        ]);
    };
    let mut parsed = Parsed {
        name,
        base,
        base_path,
        hunks: Vec::new(),
        keeps: Vec::new(),
        tail: Vec::new(),
    };
    let mut open: Option<Hunk> = None;
    for l in &all[i + 1..] {
        let span = Span::new(l.start, l.start + l.text.len());
        if let Some(h) = &mut open {
            if l.text.trim_end() == "}" {
                if !h.lines.iter().any(|(m, _, _)| *m != Mark::Keep) {
                    errors.push(
                        Diagnostic::error(h.head, "this change changes nothing").label("it has no `-` or `+` line"),
                    );
                } else if !h.lines.iter().any(|(m, _, _)| *m != Mark::Add) {
                    errors.push(
                        Diagnostic::error(h.head, "this change has nothing to find in the base")
                            .label("it needs at least one kept (` `) or removed (`-`) line to say where it goes"),
                    );
                }
                parsed.hunks.extend(open.take());
                continue;
            }
            let mark = match l.text.chars().next() {
                None => Some(Mark::Keep),
                Some(' ') => Some(Mark::Keep),
                Some('-') => Some(Mark::Remove),
                Some('+') => Some(Mark::Add),
                Some(_) => None,
            };
            match mark {
                // An empty line is an empty kept line: it has no mark to skip.
                Some(m) => h.lines.push((m, (l.start + 1).min(l.end), l.end)),
                None => errors.push(
                    Diagnostic::error(span, "a line of a change starts with `-`, `+` or a space").label(
                        "`-` removes a line of the base, `+` adds one, a space keeps one; `}` alone ends the change",
                    ),
                ),
            }
            continue;
        }
        let code = strip_comment(l.text).trim();
        if code == "change {" {
            open = Some(Hunk {
                head: span,
                lines: Vec::new(),
            });
            continue;
        }
        if let Some((first, _, rest, at)) = word(strip_comment(l.text), l.start) {
            if first == "keep" {
                let keep = (|| {
                    let (c, _, rest, at) = word(rest, at)?;
                    if c != "check" {
                        return None;
                    }
                    let (name, name_span, rest, at) = word(rest, at)?;
                    if !is_ident(name) {
                        return None;
                    }
                    let t = rest.trim();
                    let expect = if t.is_empty() {
                        None
                    } else if t.starts_with("expect") {
                        let s = at + (rest.len() - rest.trim_start().len());
                        Some(Span::new(s, s + t.len()))
                    } else {
                        return None;
                    };
                    Some(Keep {
                        name: name.to_string(),
                        name_span,
                        expect,
                    })
                })();
                match keep {
                    Some(k) => {
                        parsed.tail.push(Tail::Keep(parsed.keeps.len()));
                        parsed.keeps.push(k);
                    }
                    None => errors.push(
                        Diagnostic::error(span, "malformed `keep`")
                            .label("write `keep check NAME`, or `keep check NAME expect ...` to change its verdict"),
                    ),
                }
                continue;
            }
        }
        parsed.tail.push(Tail::Line(l.start, l.end));
    }
    if let Some(h) = open {
        errors
            .push(Diagnostic::error(h.head, "this change is not closed").label("end it with a line holding only `}`"));
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// `dir/rel` with `.` and `..` resolved lexically, for display.
fn join(dir: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// One replacement of a byte range of the base.
struct Edit {
    range: std::ops::Range<usize>,
    /// What replaces it: ranges of the variant (`true`) or the base.
    with: Vec<(bool, std::ops::Range<usize>)>,
    /// What it is, for an overlap error.
    what: String,
    /// Where to report an overlap, in the variant.
    at: Span,
}

/// Reads the base of the variant `file` (`read` is given `dir` joined with
/// the header's path: `dir` is the variant's directory, where `file.name`
/// may be a path relative to something else) and applies the variant.
/// Errors are diagnostics on the variant file.
pub fn compose(
    file: &SourceFile,
    dir: &Path,
    read: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Composed, Vec<Diagnostic>> {
    let mut vtext = file.text.clone();
    if !vtext.ends_with('\n') {
        vtext.push('\n');
    }
    let p = parse(&vtext)?;
    // The base as shown (next to the variant's name) and as read.
    let base_path = join(Path::new(&file.name).parent().unwrap_or(Path::new("")), &p.base_path);
    let base_real = join(dir, &p.base_path);
    let mut btext = match read(&base_real) {
        Ok(t) => t,
        Err(e) => {
            return Err(vec![Diagnostic::error(
                p.base,
                format!("cannot read the base {}: {e}", base_path.display()),
            )
            .label("relative to this variant's directory")])
        }
    };
    if is_variant(&btext) {
        return Err(vec![
            Diagnostic::error(p.base, "the base is a variant itself").label("a variant's base must be a spec")
        ]);
    }
    if !btext.ends_with('\n') {
        btext.push('\n');
    }
    let (ast, diags) = crate::parser::parse(&btext);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(vec![Diagnostic::error(p.base, "the base has syntax errors")
            .label(format!("`smelt lint {}` shows them", base_path.display()))]);
    }
    let Some(protocol) = &ast.protocol else {
        return Err(vec![Diagnostic::error(p.base, "the base declares no protocol")]);
    };
    let mut errors = Vec::new();
    let mut edits = vec![Edit {
        range: protocol.span.range(),
        with: vec![(true, p.name.range())],
        what: "the protocol's name".into(),
        at: p.name,
    }];
    let checks: Vec<_> = ast
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Check(c) => Some(c),
            _ => None,
        })
        .collect();
    for k in &p.keeps {
        if !checks.iter().any(|c| c.name.name == k.name) {
            let names = checks.iter().map(|c| c.name.name.as_str());
            let mut d = Diagnostic::error(k.name_span, format!("the base has no check `{}`", k.name));
            if let Some(s) = crate::diag::suggest(&k.name, names) {
                d = d.label(format!("did you mean `{s}`?"));
            }
            errors.push(d);
        }
    }
    // Every base check leaves its place; a kept one is put back where the
    // variant's `keep` is, with its `expect` replaced if the `keep` says so.
    let mut kept: Vec<Vec<(bool, std::ops::Range<usize>)>> = vec![Vec::new(); p.keeps.len()];
    for c in &checks {
        let keep = p.keeps.iter().position(|k| k.name == c.name.name);
        edits.push(Edit {
            range: c.span.range(),
            with: Vec::new(),
            what: format!(
                "the base's check `{}` (a variant's checks are its own: write them, or `keep` the base's, below the changes)",
                c.name.name
            ),
            at: p.base,
        });
        let Some(k) = keep else { continue };
        // With the newline after its `}`, so what follows starts a line.
        let whole =
            c.span.start as usize..c.span.end as usize + usize::from(btext[c.span.range().end..].starts_with('\n'));
        let Some(e) = p.keeps[k].expect else {
            kept[k] = vec![(false, whole)];
            continue;
        };
        let old = c
            .entries
            .iter()
            .find(|x| matches!(x.kind, CheckEntryKind::ExpectOk | CheckEntryKind::ExpectViolation(_)));
        match old {
            Some(old) => {
                let o = old.span.range();
                kept[k] = vec![
                    (false, whole.start..o.start),
                    (true, e.range()),
                    (false, o.end..whole.end),
                ];
            }
            None => errors.push(
                Diagnostic::error(
                    e,
                    format!("the base's check `{}` has no `expect` to replace", c.name.name),
                )
                .label("the base's checks end with `expect ok` or `expect violation P`"),
            ),
        }
    }
    let base_lines = lines(&btext);
    let trimmed: Vec<&str> = base_lines.iter().map(|l| l.text.trim_end()).collect();
    for h in &p.hunks {
        let old: Vec<&str> = h
            .lines
            .iter()
            .filter(|(m, _, _)| *m != Mark::Add)
            .map(|(_, s, e)| vtext[*s..*e].trim_end())
            .collect();
        let found: Vec<usize> = (0..trimmed.len().saturating_sub(old.len() - 1))
            .filter(|&i| trimmed[i..i + old.len()] == old[..])
            .collect();
        let at = match found[..] {
            [one] => one,
            [] => {
                // The longest run of the change's lines the base does have,
                // to point at the line that differs.
                let (best, from) = (0..trimmed.len())
                    .map(|i| (old.iter().zip(&trimmed[i..]).take_while(|(a, b)| a == b).count(), i))
                    .max_by_key(|&(k, i)| (k, std::cmp::Reverse(i)))
                    .unwrap_or((0, 0));
                let mut d = Diagnostic::error(h.head, format!("this change does not apply to {}", base_path.display()))
                    .label("its kept and removed lines are not in the base, in this order");
                if best > 0 {
                    d = d.note(format!(
                        "its first {best} line(s) match at line {} of the base; the next one, `{}`, does not",
                        from + 1,
                        old[best].trim()
                    ));
                }
                errors.push(d);
                continue;
            }
            ref many => {
                let at: Vec<String> = many.iter().map(|i| (i + 1).to_string()).collect();
                errors.push(
                    Diagnostic::error(h.head, format!("this change applies in {} places", many.len())).label(format!(
                        "lines {} of {}: add kept lines around it to say which",
                        at.join(", "),
                        base_path.display()
                    )),
                );
                continue;
            }
        };
        let mut with = Vec::new();
        let mut j = at;
        for &(m, s, e) in &h.lines {
            match m {
                Mark::Keep => {
                    with.push((false, base_lines[j].start..base_lines[j].end));
                    j += 1;
                }
                Mark::Remove => j += 1,
                Mark::Add => with.push((true, s..e)),
            }
        }
        edits.push(Edit {
            range: base_lines[at].start..base_lines[j - 1].end,
            with,
            what: format!("the change at line {}", line_of(&vtext, h.head.start)),
            at: h.head,
        });
    }
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    for w in edits.windows(2) {
        if w[1].range.start < w[0].range.end {
            let (a, b) = (&w[0], &w[1]);
            // Report on the change (a `change` block's head), naming the other.
            let (here, other) = if b.what.starts_with("the change") {
                (b, a)
            } else {
                (a, b)
            };
            errors.push(Diagnostic::error(here.at, format!("this overlaps {}", other.what)));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| d.primary.span.start);
        return Err(errors);
    }
    // Put the text together, recording where each piece is from.
    let mut text = String::new();
    let mut pieces = Vec::new();
    let mut push = |text: &mut String, variant: bool, r: std::ops::Range<usize>| {
        if r.is_empty() {
            return;
        }
        let src = if variant { &vtext } else { &btext };
        pieces.push(Piece {
            start: text.len(),
            end: text.len() + r.len(),
            file: usize::from(!variant),
            file_start: r.start,
        });
        text.push_str(&src[r]);
    };
    let mut pos = 0;
    for e in &edits {
        push(&mut text, false, pos..e.range.start);
        for (v, r) in &e.with {
            push(&mut text, *v, r.clone());
        }
        pos = e.range.end;
    }
    push(&mut text, false, pos..btext.len());
    for t in &p.tail {
        match t {
            Tail::Line(s, e) => push(&mut text, true, *s..*e),
            Tail::Keep(k) => {
                for (v, r) in &kept[*k] {
                    push(&mut text, *v, r.clone());
                }
            }
        }
    }
    let origin = Origin {
        files: vec![
            SourceFile::new(file.name.clone(), vtext),
            SourceFile::new(base_path.display().to_string(), btext),
        ],
        pieces,
    };
    Ok(Composed {
        file: SourceFile::composed(file.name.clone(), text, origin),
        base: base_real,
    })
}

fn line_of(text: &str, offset: u32) -> usize {
    text[..offset as usize].matches('\n').count() + 1
}
