//! Text → `ast::File`, with every syntax error reported.
//!
//! The grammar lives in `smelt.pest`. A clean file is parsed in one go. When
//! pest reports an error, the file is cut into top-level items (by scanning
//! for item keywords at brace depth zero) and each item is parsed on its own,
//! so that one typo does not hide the errors in the rest of the file. Roles,
//! services and states are cut further into their members for the same
//! reason. The parser therefore returns a tree *and* its errors, as
//! rust-analyzer's does: the checker still sees every item that parsed.
//!
//! Limits (TigerBeetle style): files over `SOURCE_BYTES_MAX` and nesting
//! deeper than `NESTING_MAX` are refused up front with a diagnostic, and
//! pest's call limit bounds backtracking, so no input can exhaust the stack
//! or run for long.

use crate::ast::*;
use crate::diag::Diagnostic;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::cell::RefCell;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "smelt.pest"]
struct SmParser;

pub const SOURCE_BYTES_MAX: usize = 1 << 20;
pub const NESTING_MAX: usize = 64;
/// Operators in one expression; bounds the depth of the expression tree.
pub const EXPR_OPERATORS_MAX: usize = 2048;
/// Depth of the parse tree. Nesting that brackets do not show (`else if`
/// chains, nested quantifiers) is bounded by this, so that the tree
/// builder, the checker and the compiler, which recurse over the tree,
/// cannot run out of stack.
pub const TREE_DEPTH_MAX: usize = 1000;
const CALL_LIMIT: usize = 20_000_000;

pub fn parse(src: &str) -> (File, Vec<Diagnostic>) {
    if src.len() > SOURCE_BYTES_MAX {
        let d = Diagnostic::error(
            Span::new(0, 0),
            format!("the spec is {} bytes; the limit is {SOURCE_BYTES_MAX} bytes", src.len()),
        );
        return (File::default(), vec![d]);
    }
    if let Some(d) = check_nesting(src) {
        return (File::default(), vec![d]);
    }
    pest::set_call_limit(std::num::NonZeroUsize::new(CALL_LIMIT));

    match parse_rule(Rule::file, src) {
        Ok(mut pairs) => {
            let b = Builder::new(0);
            let file = b.file(pairs.next().expect("file rule"));
            (file, b.diags.into_inner())
        }
        Err(_) => recover(src),
    }
}

/// Parses `input` as `rule` and enforces the limits on the resulting tree
/// (`TREE_DEPTH_MAX`, `EXPR_OPERATORS_MAX`) before anything recurses over
/// it; a violation is reported like a syntax error at the offending spot.
fn parse_rule(rule: Rule, input: &str) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    let pairs = SmParser::parse(rule, input)?;
    match tree_limits(pairs.clone()) {
        None => Ok(pairs),
        Some((pos, message)) => Err(pest::error::Error::new_from_pos(
            ErrorVariant::CustomError { message },
            pest::Position::new(input, pos).unwrap_or_else(|| pest::Position::from_start(input)),
        )),
    }
}

/// The first place where the tree is too deep or an expression has too many
/// operators, with a message. One pass over the pairs in pre-order, with a
/// stack of the ends of the enclosing pairs (no recursion).
fn tree_limits(pairs: pest::iterators::Pairs<'_, Rule>) -> Option<(usize, String)> {
    let mut ends: Vec<usize> = Vec::new();
    // The outermost expression being counted, and its operators so far
    // (nested expressions count towards it: they deepen the same tree).
    let mut expr_end = 0;
    let mut operators = 0;
    for p in pairs.flatten() {
        let (start, end) = (p.as_span().start(), p.as_span().end());
        while ends.last().is_some_and(|&e| e <= start) {
            ends.pop();
        }
        ends.push(end);
        if ends.len() > TREE_DEPTH_MAX {
            return Some((
                start,
                format!("the spec is nested more than {TREE_DEPTH_MAX} levels deep here"),
            ));
        }
        match p.as_rule() {
            Rule::expr | Rule::cond_expr if start >= expr_end => {
                expr_end = end;
                operators = 0;
            }
            Rule::implies
            | Rule::or
            | Rule::and
            | Rule::eq
            | Rule::ne
            | Rule::le
            | Rule::ge
            | Rule::lt
            | Rule::gt
            | Rule::in_op
            | Rule::add
            | Rule::sub
            | Rule::mul
            | Rule::div
            | Rule::rem
            | Rule::neg
            | Rule::not
            | Rule::method_call
            | Rule::field_access
            | Rule::index
            | Rule::cast
            | Rule::is_state => {
                operators += 1;
                if operators > EXPR_OPERATORS_MAX {
                    return Some((
                        start,
                        format!("this expression has more than {EXPR_OPERATORS_MAX} operators; split it with `let`"),
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// Rejects pathological nesting before pest or the tree builders recurse on
/// it. Counts brackets and runs of prefix operators outside comments and
/// string literals. Also refuses a block comment or a string literal that is
/// never closed: pest would report it further on, far from the `/*` or `"`
/// that is the mistake.
fn check_nesting(src: &str) -> Option<Diagnostic> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            let open = i;
            i += 2;
            while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                i += 1;
            }
            if i + 1 >= bytes.len() {
                return Some(
                    Diagnostic::error(Span::new(open, open + 2), "unterminated block comment")
                        .label("this comment is never closed with `*/`"),
                );
            }
            i += 2;
            continue;
        }
        if c == b'"' {
            match string_end(bytes, i) {
                Some(end) => {
                    i = end;
                    prefix_run = 0;
                    continue;
                }
                None => {
                    let line_end = src[i..].find('\n').map_or(src.len(), |k| i + k);
                    let end = i + src[i..line_end].trim_end().len();
                    return Some(
                        Diagnostic::error(Span::new(i, end), "unterminated string literal")
                            .label("this string is never closed with `\"`")
                            .note("a string literal ends on the line it starts; write a line break as `\\n`"),
                    );
                }
            }
        }
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > NESTING_MAX {
                    return Some(
                        Diagnostic::error(
                            Span::new(i, i + 1),
                            format!("brackets are nested more than {NESTING_MAX} deep"),
                        )
                        .label("too deep"),
                    );
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == b'!' || c == b'-' {
            prefix_run += 1;
            if prefix_run > NESTING_MAX {
                return Some(
                    Diagnostic::error(
                        Span::new(i, i + 1),
                        format!("more than {NESTING_MAX} operators in a row"),
                    )
                    .label("too many"),
                );
            }
        } else if !c.is_ascii_whitespace() && c != b'=' {
            prefix_run = 0;
        }
        i += 1;
    }
    None
}

/// The offset just after the closing quote of the string literal whose
/// opening quote is at `bytes[at]`; `None` if the line or the input ends
/// first. The same lexing as `string_lit` in the grammar: `\\` takes the
/// next byte unless it is a line break (a multi-byte character's other
/// bytes are never `"`, `\\` or a line break, so they need no care).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(i + 1),
            b'\n' => return None,
            b'\\' if bytes.get(i + 1).is_some_and(|&b| b != b'\n') => i += 2,
            b'\\' => return None,
            _ => i += 1,
        }
    }
    None
}

// ------------------------------------------------------------------ recovery

const ITEM_KEYWORDS: &[&str] = &[
    "protocol",
    "const",
    "type",
    "record",
    "enum",
    "message",
    "fn",
    "service",
    "role",
    "invariant",
    "reachable",
    "eventually",
    "leads_to",
    "linearizable",
    "check",
];
/// Every keyword of the grammar (`keyword` in `smelt.pest`).
const KEYWORDS: &[&str] = &[
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
    "ghost",
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
    "early",
];
const ROLE_MEMBER_KEYWORDS: &[&str] = &[
    "durable", "ghost", "var", "timer", "choice", "init", "initial", "state", "on",
];
const STATE_MEMBER_KEYWORDS: &[&str] = &["entry", "exit", "on"];
const SERVICE_MEMBER_KEYWORDS: &[&str] = &["var", "request", "sessions"];

/// Keywords that are always followed by a name. A keyword right after one of
/// them is being (mis)used as that name (`var state: u64`), not starting a
/// new member, so recovery must not cut there: one mistake, one error.
const NAME_FOLLOWS: &[&str] = &[
    "protocol",
    "const",
    "type",
    "record",
    "enum",
    "message",
    "fn",
    "service",
    "request",
    "role",
    "state",
    "initial",
    "durable",
    "ghost",
    "var",
    "timer",
    "choice",
    "goto",
    "set",
    "cancel",
    "timeout",
    "choose",
    "invariant",
    "reachable",
    "eventually",
    "leads_to",
    "check",
    "is",
    "from",
];

/// Offsets where a word from `keywords` starts at brace depth zero of
/// `src[from..to]`, skipping comments. A keyword after `.` (a field such as
/// `Register.initial`) or after a keyword in `NAME_FOLLOWS` is not a split
/// point.
///
/// For items, a keyword at the start of a line also splits when braces are
/// unbalanced before it, so that a missing `}` in one role does not swallow
/// the rest of the file.
fn split_points(src: &str, from: usize, to: usize, keywords: &[&str]) -> Vec<usize> {
    let line_start_splits = keywords == ITEM_KEYWORDS;
    let bytes = src.as_bytes();
    let mut points = Vec::new();
    let mut depth = 0i64;
    let mut i = from;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    // The previous significant token: a word, or else one symbol byte.
    let mut prev_word: Option<&str> = None;
    let mut prev_char = 0u8;
    while i < to {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && i + 1 < to && bytes[i + 1] == b'/' {
            while i < to && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && i + 1 < to && bytes[i + 1] == b'*' {
            i += 2;
            while i + 1 < to && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == b'"' {
            i = string_end(&bytes[..to], i).unwrap_or(to);
            prev_word = None;
            prev_char = c;
            continue;
        }
        match c {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            _ => {}
        }
        if is_word(c) && (i == from || !is_word(bytes[i - 1])) {
            let mut j = i;
            while j < to && is_word(bytes[j]) {
                j += 1;
            }
            let word = &src[i..j];
            let after_name_keyword = prev_word.is_some_and(|w| NAME_FOLLOWS.contains(&w));
            let line_start = line_start_splits && (i == 0 || bytes[i - 1] == b'\n');
            if (depth == 0 || line_start) && keywords.contains(&word) && prev_char != b'.' && !after_name_keyword {
                points.push(i);
                depth = 0;
            }
            prev_word = Some(word);
            prev_char = 0;
            i = j;
            continue;
        }
        prev_word = None;
        prev_char = c;
        i += 1;
    }
    points
}

fn chunks(points: &[usize], end: usize) -> Vec<(usize, usize)> {
    points
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, points.get(k + 1).copied().unwrap_or(end)))
        .collect()
}

fn recover(src: &str) -> (File, Vec<Diagnostic>) {
    pest::set_error_detail(true);
    let mut file = File::default();
    let mut diags = Vec::new();
    let points = split_points(src, 0, src.len(), ITEM_KEYWORDS);
    let first = points.first().copied().unwrap_or(src.len());
    if !only_trivia(&src[..first]) {
        // Text before the first item: report it as what it is.
        let (_, d) = parse_chunk(src, 0, first.max(trivia_end(src, 0)), Rule::item_only);
        diags.extend(d.into_iter().take(1));
        if diags.is_empty() {
            diags.push(Diagnostic::error(
                Span::new(0, first),
                "expected an item (`role`, `message`, ...)",
            ));
        }
    }
    for (start, end) in chunks(&points, src.len()) {
        match parse_rule(Rule::item_only, &src[start..end]) {
            Ok(mut pairs) => {
                let b = Builder::new(start);
                b.item_only(pairs.next().expect("item_only"), &mut file);
                diags.extend(b.diags.into_inner());
            }
            Err(e) => {
                let word = src[start..]
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .next();
                let recovered = match word {
                    Some("role") => recover_role(src, start, end, &mut file, &mut diags),
                    Some("service") => recover_service(src, start, end, &mut file, &mut diags),
                    _ => false,
                };
                if !recovered {
                    diags.push(pest_error(src, start, e));
                    file.broken.extend(declared_name(src, start));
                    // `protocol Name` is all there is to a protocol line: keep
                    // the name, so the checker does not also report it missing.
                    if word == Some("protocol") && file.protocol.is_none() {
                        let name_end = trivia_end(src, start + "protocol".len());
                        file.protocol = header_name(src, start, name_end + token_span(src, name_end).range().len());
                    }
                }
            }
        }
    }
    (file, diags)
}

fn only_trivia(s: &str) -> bool {
    trivia_end(s, 0) == s.len()
}

/// The offset after any whitespace and comments starting at `i`.
fn trivia_end(s: &str, mut i: usize) -> usize {
    let b = s.as_bytes();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            match s[i + 2..].find("*/") {
                Some(k) => i = i + 2 + k + 2,
                None => return b.len(),
            }
        } else {
            return i;
        }
    }
}

fn parse_chunk(src: &str, start: usize, end: usize, rule: Rule) -> (Option<Pair<'_, Rule>>, Vec<Diagnostic>) {
    match parse_rule(rule, &src[start..end]) {
        Ok(mut p) => (p.next(), vec![]),
        Err(e) => (None, vec![pest_error(src, start, e)]),
    }
}

/// The `{ ... }` body of a block-structured item or member in
/// `src[start..end]`: the offset just after its `{` and the offset of the
/// matching `}`. Braces in comments and string literals do not count. When the `{` is never
/// closed, the body runs to `end` and `diags` gets an error; text after the
/// `}` other than a `;` is reported as unexpected (`expected` says what
/// could have come there).
fn body_bounds(
    src: &str,
    start: usize,
    end: usize,
    expected: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<(usize, usize)> {
    let open = start + src[start..end].find('{')?;
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < end {
        match b[i] {
            b'/' if i + 1 < end && b[i + 1] == b'/' => {
                while i < end && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if i + 1 < end && b[i + 1] == b'*' => {
                i = src[i + 2..end].find("*/").map_or(end, |k| i + 2 + k + 2);
                continue;
            }
            b'"' => {
                i = string_end(&b[..end], i).unwrap_or(end);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    let mut after = trivia_end(src, i + 1).min(end);
                    if after < end && b[after] == b';' {
                        after = trivia_end(src, after + 1).min(end);
                    }
                    if after < end {
                        diags.push(unexpected_at(src, after, expected));
                    }
                    return Some((open + 1, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    diags.push(
        Diagnostic::error(Span::new(open, open + 1), "unclosed `{`")
            .label("this `{` has no matching `}`")
            .note("every `{` needs a `}`; a missing one is often at the end of a block or handler above"),
    );
    Some((open + 1, end))
}

/// Whether a word scanned by recovery is a valid name (`ident` in the grammar).
fn is_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !KEYWORDS.contains(&word)
}

fn header_name(src: &str, start: usize, open: usize) -> Option<Ident> {
    // `role Name {`: the second word of the header.
    let header = &src[start..open];
    let kw_len = header.find(|c: char| c.is_whitespace())?;
    let rest = &header[kw_len..];
    let lead = rest.len() - rest.trim_start().len();
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let s = start + kw_len + lead;
    // Anything else in the header (`role A B {`), or a name that is not
    // one (`role state {`), is for pest to report.
    if !is_name(&name) || !only_trivia(&src[s + name.len()..open]) {
        return None;
    }
    Some(Ident {
        span: Span::new(s, s + name.len()),
        name,
    })
}

fn recover_role(src: &str, start: usize, end: usize, file: &mut File, diags: &mut Vec<Diagnostic>) -> bool {
    let mut body_diags = Vec::new();
    let Some((body_start, body_end)) = body_bounds(src, start, end, ITEM_CATEGORY, &mut body_diags) else {
        return false;
    };
    let Some(name) = header_name(src, start, body_start - 1) else {
        return false;
    };
    diags.append(&mut body_diags);
    let mut role = RoleDecl {
        name,
        vars: vec![],
        timers: vec![],
        choices: vec![],
        inits: vec![],
        ready: vec![],
        metrics: vec![],
        states: vec![],
        handlers: vec![],
        span: Span::new(start, end),
    };
    let points = split_points(src, body_start, body_end, ROLE_MEMBER_KEYWORDS);
    let lead = &src[body_start..points.first().copied().unwrap_or(body_end)];
    if !only_trivia(lead) {
        let s = trivia_end(src, body_start);
        diags.push(unexpected_at(
            src,
            s,
            "a role member (`var`, `durable`, `timer`, `state`, `on`, ...)",
        ));
    }
    // `initial state` is one member: drop the split point of `state` right after `initial`.
    let points = merge_initial(src, points);
    for (s, e) in chunks(&points, body_end) {
        match parse_rule(Rule::role_member_only, &src[s..e]) {
            Ok(mut pairs) => {
                let b = Builder::new(s);
                let p = pairs.next().expect("role_member_only");
                for m in p.into_inner() {
                    if m.as_rule() != Rule::EOI {
                        b.role_member(m, &mut role);
                    }
                }
                diags.extend(b.diags.into_inner());
            }
            Err(err) => {
                let word = src[s..].split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next();
                if matches!(word, Some("state") | Some("initial")) {
                    if let Some(st) = recover_state(src, s, e, diags) {
                        role.states.push(st);
                        continue;
                    }
                }
                diags.push(pest_error(src, s, err));
                file.broken.extend(declared_name(src, s));
            }
        }
    }
    file.items.push(Item::Role(role));
    true
}

fn merge_initial(src: &str, points: Vec<usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for p in points {
        if let Some(&last) = out.last() {
            if src[last..].starts_with("initial") && only_trivia(&src[last + "initial".len()..p]) {
                continue;
            }
        }
        out.push(p);
    }
    out
}

fn recover_state(src: &str, start: usize, end: usize, diags: &mut Vec<Diagnostic>) -> Option<StateDecl> {
    let mut body_diags = Vec::new();
    let (body_start, body_end) = body_bounds(
        src,
        start,
        end,
        "a role member (`var`, `durable`, `timer`, `state`, `on`, ...)",
        &mut body_diags,
    )?;
    // The header is `[initial] state Name {`; every offset stays before `{`.
    let open = body_start - 1;
    let word_at = |at: usize| -> &str {
        let len = src[at..open]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(open - at);
        &src[at..at + len]
    };
    let mut at = trivia_end(src, start).min(open);
    let initial = word_at(at) == "initial";
    if initial {
        at = trivia_end(src, at + "initial".len()).min(open);
    }
    if word_at(at) != "state" {
        return None;
    }
    let name_start = trivia_end(src, at + "state".len()).min(open);
    let name = word_at(name_start).to_string();
    // Anything else in the header (`state A B {`), or a name that is not
    // one (`state init {`), is for pest to report.
    if !is_name(&name) || !only_trivia(&src[name_start + name.len()..body_start - 1]) {
        return None;
    }
    diags.append(&mut body_diags);
    let mut st = StateDecl {
        name: Ident {
            span: Span::new(name_start, name_start + name.len()),
            name,
        },
        initial,
        entries: vec![],
        exits: vec![],
        handlers: vec![],
        span: Span::new(start, end),
    };
    let points = split_points(src, body_start, body_end, STATE_MEMBER_KEYWORDS);
    let lead = &src[body_start..points.first().copied().unwrap_or(body_end)];
    if !only_trivia(lead) {
        diags.push(unexpected_at(
            src,
            trivia_end(src, body_start),
            "`entry`, `exit` or a handler (`on ...`)",
        ));
    }
    for (s, e) in chunks(&points, body_end) {
        match parse_rule(Rule::state_member_only, &src[s..e]) {
            Ok(mut pairs) => {
                let b = Builder::new(s);
                for m in pairs.next().expect("state_member_only").into_inner() {
                    if m.as_rule() != Rule::EOI {
                        b.state_member(m, &mut st);
                    }
                }
                diags.extend(b.diags.into_inner());
            }
            Err(err) => diags.push(pest_error(src, s, err)),
        }
    }
    Some(st)
}

fn recover_service(src: &str, start: usize, end: usize, file: &mut File, diags: &mut Vec<Diagnostic>) -> bool {
    let mut body_diags = Vec::new();
    let Some((body_start, body_end)) = body_bounds(src, start, end, ITEM_CATEGORY, &mut body_diags) else {
        return false;
    };
    let Some(name) = header_name(src, start, body_start - 1) else {
        return false;
    };
    diags.append(&mut body_diags);
    let mut svc = ServiceDecl {
        name,
        sessions: None,
        extra_sessions: vec![],
        vars: vec![],
        requests: vec![],
        span: Span::new(start, end),
    };
    let points = split_points(src, body_start, body_end, SERVICE_MEMBER_KEYWORDS);
    for (s, e) in chunks(&points, body_end) {
        match parse_rule(Rule::service_member_only, &src[s..e]) {
            Ok(mut pairs) => {
                let b = Builder::new(s);
                for m in pairs.next().expect("service_member_only").into_inner() {
                    if m.as_rule() != Rule::EOI {
                        b.service_member(m, &mut svc);
                    }
                }
                diags.extend(b.diags.into_inner());
            }
            Err(err) => {
                diags.push(pest_error(src, s, err));
                file.broken.extend(declared_name(src, s));
            }
        }
    }
    file.items.push(Item::Service(svc));
    true
}

/// The name an item or member starting at `at` declares: the word after its
/// keyword (`message Foo`, `var x`, `initial state S`, `on timeout t`).
fn declared_name(src: &str, at: usize) -> Option<String> {
    let mut words = src[at..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let mut kw = words.next()?;
    if kw == "initial" || kw == "on" {
        kw = words.next()?;
    }
    let _ = kw;
    let name = words.next()?;
    Some(name.to_string())
}

fn unexpected_at(src: &str, at: usize, expected: &str) -> Diagnostic {
    let span = token_span(src, at);
    let found = describe_found(src, span);
    Diagnostic::error(span, format!("expected {expected}, found {found}")).label("unexpected here")
}

// ------------------------------------------------------------------ syntax errors

/// The span of the token starting at `at` (a word, a number or one symbol).
fn token_span(src: &str, at: usize) -> Span {
    let at = at.min(src.len());
    let rest = &src[at..];
    let mut chars = rest.char_indices();
    let len = match chars.next() {
        None => 0,
        // A string literal is one token (to the end of its line if unclosed).
        Some((_, '"')) => string_end(rest.as_bytes(), 0).unwrap_or_else(|| rest.find('\n').unwrap_or(rest.len())),
        Some((_, c)) if c.is_alphanumeric() || c == '_' => rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len()),
        Some((_, c)) => {
            let two = rest.get(..2).unwrap_or("");
            if ["==", "!=", "<=", ">=", "=>", "&&", "||", "::", "..", "~>", "+=", "-="].contains(&two) {
                2
            } else {
                c.len_utf8()
            }
        }
    };
    Span::new(at, at + len)
}

fn describe_found(src: &str, span: Span) -> String {
    if span.start as usize >= src.len() {
        return "end of file".to_string();
    }
    let text = &src[span.range()];
    if text.is_empty() {
        "end of file".to_string()
    } else if text.starts_with('"') {
        "a string literal".to_string()
    } else {
        format!("`{}`", text.escape_debug())
    }
}

/// Turns a pest error on `src[base..]` into a diagnostic: the caret sits
/// under the token where parsing stopped and the message says what would
/// have been accepted there, in the spec's own vocabulary.
fn pest_error(src: &str, base: usize, e: pest::error::Error<Rule>) -> Diagnostic {
    let loc = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    // pest's own location is where the last *rule* failed (for `{ x: u64
    // y: u64 }` the start of `u64`); the detailed attempts know the furthest
    // position any token was expected at (`y`), which is usually the better
    // place for the caret.
    let max = e.parse_attempts().map_or(loc, |a| a.max_position.max(loc));
    let at_loc = trivia_end(src, (base + loc).min(src.len()));
    let at_max = trivia_end(src, (base + max).min(src.len()));
    if let ErrorVariant::CustomError { message } = &e.variant {
        // Our own limits (`tree_limits`) say what they are; pest's own
        // ("call limit reached") need the context.
        let message = if message.contains("limit reached") {
            format!("cannot parse this spec: {message}")
        } else {
            message.clone()
        };
        return Diagnostic::error(token_span(src, at_loc), message).label("limit exceeded here");
    }
    let mut categories: Vec<&'static str> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    if let Some(attempts) = e.parse_attempts() {
        for stack in attempts.call_stacks() {
            // The deepest rule says what kind of thing was being started:
            // "an expression" reads better than the list of its first tokens.
            if let Some(r) = stack.deepest.get_rule() {
                if let Some(f) = category(*r) {
                    if !categories.contains(&f) {
                        categories.push(f);
                    }
                }
            }
        }
        for t in attempts.expected_tokens() {
            let t = t.to_string();
            if let Some(f) = friendly_token(&t) {
                if !tokens.contains(&f) {
                    tokens.push(f);
                }
            }
        }
    } else if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(f) = category(*r) {
                if !categories.contains(&f) {
                    categories.push(f);
                }
            }
        }
    }

    // `1u64`: the caret may be inside the word; report the whole word.
    for at in [at_loc, at_max] {
        let mut w = at;
        while w > base && src.as_bytes()[w - 1].is_ascii_alphanumeric() {
            w -= 1;
        }
        let word = &src[token_span(src, w).range()];
        if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains(|c: char| c.is_ascii_alphabetic()) {
            return Diagnostic::error(token_span(src, w), format!("`{word}` is not a number"))
                .label("integer literals have no suffix")
                .note("an integer literal takes its type from where it is used; convert with `as`, e.g. `x as u32`");
        }
    }
    // `var state: u64`: pest gets as far as the end of the keyword (trying
    // to read it as a name); say why a good-looking name is refused.
    let loc_span = token_span(src, at_loc);
    let loc_text = &src[loc_span.range()];
    if KEYWORDS.contains(&loc_text)
        && categories.contains(&"a name")
        && at_max <= trivia_end(src, loc_span.end as usize)
    {
        return Diagnostic::error(loc_span, format!("expected a name, found keyword `{loc_text}`"))
            .label("a keyword cannot be used as a name")
            .note(format!("`{loc_text}` is reserved by the language; choose another name"));
    }

    let span = token_span(src, at_max);
    let found = describe_found(src, span);
    let found_text = &src[span.range()];
    if let Some(c) = found_text.chars().next() {
        if found_text.chars().count() == 1 && !c.is_alphanumeric() && !"{}()[]<>:;,.=!+-*/%&|~_".contains(c) {
            return Diagnostic::error(span, format!("unexpected character `{}`", c.escape_debug()))
                .label("not part of the language");
        }
    }

    // "an item" is also what pest says when a token inside an item is
    // missing (`fn f(x: u64) u64`): keep it only where an item could start,
    // that is after a complete item.
    if categories.contains(&ITEM_CATEGORY)
        && !(max >= trivia_end(src, base) - base && SmParser::parse(Rule::item_only, &src[base..base + max]).is_ok())
    {
        categories.retain(|c| *c != ITEM_CATEGORY);
    }
    // Long lists of operators and statement keywords read better as one
    // word each.
    let operators = [
        "`!=`", "`%`", "`&&`", "`*`", "`+`", "`-`", "`/`", "`<=`", "`<`", "`==`", "`=>`", "`>=`", "`>`", "`||`",
    ];
    let postfix = ["`.`", "`[`", "`(`", "`::`", "`as`", "`is`", "`in`"];
    if tokens.iter().filter(|t| operators.contains(&t.as_str())).count() >= 3 {
        tokens.retain(|t| !operators.contains(&t.as_str()) && !postfix.contains(&t.as_str()));
        tokens.push("an operator".to_string());
    }
    let statements = [
        "`let`",
        "`if`",
        "`for`",
        "`match`",
        "`send`",
        "`broadcast`",
        "`goto`",
        "`set`",
        "`cancel`",
        "`reply`",
        "`redirect`",
        "`choose`",
        "`assert`",
        "`return`",
    ];
    if tokens.iter().filter(|t| statements.contains(&t.as_str())).count() >= 3 {
        tokens.retain(|t| !statements.contains(&t.as_str()));
        tokens.push("a statement".to_string());
    }
    if categories.contains(&BLOCK_CATEGORY) {
        tokens.retain(|t| t != "`{`");
    }
    // pest names `expr` itself when too many alternatives failed inside it,
    // also right after a complete expression; "an expression" is only
    // true where one can start, which tokens like `!` or `true` show.
    let expression_starts = [
        "`!`", "`self`", "`true`", "`false`", "`forall`", "`exists`", "`count`", "`if`", "`match`",
    ];
    if !tokens.iter().any(|t| expression_starts.contains(&t.as_str())) {
        categories.retain(|c| *c != "an expression");
    }
    let starts_expression = categories.contains(&"an expression");
    let mut expected: Vec<String> = Vec::new();
    for t in tokens {
        // Tokens that merely start an expression are covered by the category.
        if starts_expression
            && [
                "`!`", "`(`", "`-`", "`[`", "`{`", "`self`", "`true`", "`false`", "`count`", "`exists`", "`forall`",
                "`if`", "`match`",
            ]
            .contains(&t.as_str())
        {
            continue;
        }
        expected.push(t);
    }
    expected.extend(categories.iter().map(|c| c.to_string()));
    expected.sort_by_key(|s| (!s.starts_with('`'), s.clone()));
    expected.dedup();
    expected.truncate(8);
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("expected {}, found {found}", expected[0]),
        _ => {
            let (last, rest) = expected.split_last().expect("non-empty");
            format!("expected {} or {}, found {found}", rest.join(", "), last)
        }
    };
    let label = if found == "end of file" {
        "the spec ends here".to_string()
    } else {
        "unexpected here".to_string()
    };
    let mut d = Diagnostic::error(span, message).label(label);
    if found_text == "=" && expected.iter().any(|e| e == "an operator") && !expected.iter().any(|e| e == "a statement")
    {
        d = d.note("`=` assigns, which only statements do; to compare, write `==`");
    }
    if found_text == "when" {
        d = d.note("only message, request and `choose` handlers take a `when` guard; test other conditions with `if` in the block");
    }
    d
}

fn friendly_token(t: &str) -> Option<String> {
    // pest quotes literals; character classes come out as ranges like `a..z`.
    let t = t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t);
    let noise = t.is_empty()
        || t.contains(char::is_whitespace)
        || t.contains("..") && t.len() > 2
        // `"` starts a string literal, which "an expression" already covers.
        || matches!(t, "/*" | "//" | "\u{feff}" | "_" | "\"")
        || t.starts_with('\u{feff}')
        || t.chars().count() == 1 && t.chars().all(|c| c.is_ascii_alphanumeric());
    if noise {
        return None;
    }
    Some(format!("`{t}`"))
}

const ESCAPES_NOTE: &str =
    "the escapes are `\\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\0` and `\\xNN` (one byte in hex, e.g. `\\xff`)";
const ITEM_CATEGORY: &str = "an item (`role`, `message`, ...)";
const BLOCK_CATEGORY: &str = "a block `{ ... }`";

/// What a rule that was about to start means to a spec author.
fn category(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::ident | Rule::path | Rule::path_expr => "a name",
        Rule::int_lit => "an integer",
        Rule::duration_lit => "a duration like `150ms`",
        Rule::ty => "a type",
        Rule::expr | Rule::cond_expr => "an expression",
        Rule::pattern => "a pattern",
        Rule::block => BLOCK_CATEGORY,
        Rule::handler => "a handler (`on ...`)",
        Rule::ck_unknown => "a check option",
        Rule::protocol_decl
        | Rule::const_decl
        | Rule::type_alias
        | Rule::record_decl
        | Rule::enum_decl
        | Rule::message_decl
        | Rule::fn_decl
        | Rule::service_decl
        | Rule::role_decl
        | Rule::property_decl => ITEM_CATEGORY,
        _ => return None,
    })
}

/// The length of `text` without trailing whitespace and comments, which
/// pest may include in a rule's span (after a failed optional part).
fn content_len(text: &str) -> usize {
    let mut t = text.trim_end();
    loop {
        let line_start = t.rfind('\n').map(|i| i + 1).unwrap_or(0);
        if let Some(k) = line_comment_at(&t[line_start..]) {
            t = t[..line_start + k].trim_end();
            continue;
        }
        if t.ends_with("*/") {
            if let Some(k) = t.rfind("/*") {
                t = t[..k].trim_end();
                continue;
            }
        }
        return t.len();
    }
}

/// Where a `//` comment starts on `line`, skipping string literals (which
/// may contain `//`).
fn line_comment_at(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i)?,
            b'/' if b.get(i + 1) == Some(&b'/') => return Some(i),
            _ => i += 1,
        }
    }
    None
}

// ------------------------------------------------------------------ pairs → AST

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::implies, Assoc::Right))
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::in_op, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
            .op(Op::postfix(Rule::method_call)
                | Op::postfix(Rule::field_access)
                | Op::postfix(Rule::index)
                | Op::postfix(Rule::cast)
                | Op::postfix(Rule::is_state))
    })
}

struct Builder {
    base: usize,
    diags: RefCell<Vec<Diagnostic>>,
}

type P<'i> = Pair<'i, Rule>;

impl Builder {
    fn new(base: usize) -> Builder {
        Builder {
            base,
            diags: RefCell::new(Vec::new()),
        }
    }

    /// The pair's span without the trailing whitespace pest may include.
    fn span(&self, p: &P) -> Span {
        let s = p.as_span();
        let text = p.as_str();
        let end = s.start() + content_len(text);
        Span::new(self.base + s.start(), self.base + end)
    }

    fn error(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn ident(&self, p: P) -> Ident {
        debug_assert_eq!(p.as_rule(), Rule::ident);
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn int(&self, p: P) -> u128 {
        let digits: String = p.as_str().chars().filter(|c| c.is_ascii_digit()).collect();
        match digits.parse::<u128>() {
            Ok(v) if v <= u64::MAX as u128 => v,
            _ => {
                self.error(
                    Diagnostic::error(self.span(&p), "integer literal is too large").label("larger than u64::MAX"),
                );
                0
            }
        }
    }

    fn duration_us(&self, p: P) -> u64 {
        let s = p.as_str();
        let (digits, unit) = if let Some(d) = s.strip_suffix("ms") {
            (d, 1_000u128)
        } else if let Some(d) = s.strip_suffix("us") {
            (d, 1)
        } else {
            (s.strip_suffix('s').unwrap_or(s), 1_000_000)
        };
        let digits: String = digits.chars().filter(|c| c.is_ascii_digit()).collect();
        match digits.parse::<u128>().ok().and_then(|v| v.checked_mul(unit)) {
            Some(v) if v <= u64::MAX as u128 => v as u64,
            _ => {
                self.error(Diagnostic::error(self.span(&p), "duration is too large"));
                0
            }
        }
    }

    /// The bytes of a string literal: each character stands for its UTF-8
    /// bytes, and the escapes `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and `\xNN`
    /// (one byte, two hex digits) for one byte each. A bad escape is
    /// reported at its own span and left out.
    fn string(&self, p: P) -> Vec<u8> {
        let text = p.as_str();
        // The grammar guarantees the quotes; the body starts after the first.
        let start = self.base + p.as_span().start() + 1;
        let body = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
        let mut out = Vec::with_capacity(body.len());
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let Some((j, e)) = chars.next() else { break };
            let simple = match e {
                '\\' => Some(b'\\'),
                '"' => Some(b'"'),
                'n' => Some(b'\n'),
                'r' => Some(b'\r'),
                't' => Some(b'\t'),
                '0' => Some(0),
                _ => None,
            };
            if let Some(b) = simple {
                out.push(b);
                continue;
            }
            let escape_end = j + e.len_utf8();
            if e != 'x' {
                self.error(
                    Diagnostic::error(
                        Span::new(start + i, start + escape_end),
                        format!("unknown escape `{}` in a string literal", &body[i..escape_end]),
                    )
                    .label("not an escape")
                    .note(ESCAPES_NOTE),
                );
                continue;
            }
            // `\x` and the next two characters, which must be hex digits.
            let mut end = escape_end;
            let mut digits = 0;
            while digits < 2 {
                match chars.peek() {
                    Some(&(k, d)) if d.is_ascii_hexdigit() => {
                        end = k + 1;
                        digits += 1;
                        chars.next();
                    }
                    _ => break,
                }
            }
            match u8::from_str_radix(&body[escape_end..end], 16) {
                Ok(b) if digits == 2 => out.push(b),
                _ => {
                    // Show the character that is not a digit, if any.
                    let shown_end = chars.peek().map_or(end, |&(k, d)| k + d.len_utf8());
                    self.error(
                        Diagnostic::error(
                            Span::new(start + i, start + shown_end),
                            format!("`{}` is not a byte escape", &body[i..shown_end]),
                        )
                        .label("`\\x` takes two hex digits")
                        .note(ESCAPES_NOTE),
                    );
                }
            }
        }
        out
    }

    fn file(&self, p: P) -> File {
        let mut file = File::default();
        for c in p.into_inner() {
            self.top(c, &mut file);
        }
        file
    }

    fn item_only(&self, p: P, file: &mut File) {
        for c in p.into_inner() {
            self.top(c, file);
        }
    }

    fn top(&self, c: P, file: &mut File) {
        match c.as_rule() {
            Rule::protocol_decl => {
                let id = self.ident(c.into_inner().next().expect("name"));
                if let Some(prev) = &file.protocol {
                    self.error(
                        Diagnostic::error(id.span, "the protocol is named twice")
                            .secondary(prev.span, "first named here"),
                    );
                } else {
                    file.protocol = Some(id);
                }
            }
            Rule::EOI => {}
            _ => file.items.push(self.item(c)),
        }
    }

    fn item(&self, p: P) -> Item {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::const_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let ty = self.ty(it.next().unwrap());
                let value = self.expr(it.next().unwrap());
                Item::Const(ConstDecl { name, ty, value, span })
            }
            Rule::type_alias => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let ty = self.ty(it.next().unwrap());
                Item::TypeAlias(TypeAlias { name, ty, span })
            }
            Rule::record_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let fields = it.map(|f| self.field(f)).collect();
                Item::Record(RecordDecl { name, fields, span })
            }
            Rule::enum_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let variants = it
                    .map(|v| {
                        let mut vi = v.into_inner();
                        let name = self.ident(vi.next().unwrap());
                        let fields = vi.next().map(|tl| self.ty_list(tl)).unwrap_or_default();
                        Variant { name, fields }
                    })
                    .collect();
                Item::Enum(EnumDecl { name, variants, span })
            }
            Rule::message_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let fields = it.map(|f| self.field(f)).collect();
                Item::Message(MessageDecl { name, fields, span })
            }
            Rule::fn_decl => {
                let mut it = p.into_inner().peekable();
                let name = self.ident(it.next().unwrap());
                let mut params = Vec::new();
                while it.peek().map(|x| x.as_rule()) == Some(Rule::param) {
                    params.push(self.field(it.next().unwrap()));
                }
                let ret = self.ty(it.next().unwrap());
                let mut lets = Vec::new();
                let mut body = None;
                for x in it {
                    match x.as_rule() {
                        Rule::fn_let => {
                            let span = self.span(&x);
                            let mut li = x.into_inner();
                            let pat = self.pattern(li.next().unwrap());
                            let mut nxt = li.next().unwrap();
                            let ty = if nxt.as_rule() == Rule::ty {
                                let t = self.ty(nxt);
                                nxt = li.next().unwrap();
                                Some(t)
                            } else {
                                None
                            };
                            lets.push(FnLet {
                                pat,
                                ty,
                                value: self.expr(nxt),
                                span,
                            });
                        }
                        _ => body = Some(self.expr(x)),
                    }
                }
                Item::Fn(FnDecl {
                    name,
                    params,
                    ret,
                    lets,
                    body: body.expect("fn body"),
                    span,
                })
            }
            Rule::service_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let mut svc = ServiceDecl {
                    name,
                    sessions: None,
                    extra_sessions: vec![],
                    vars: vec![],
                    requests: vec![],
                    span,
                };
                for m in it {
                    self.service_member(m, &mut svc);
                }
                Item::Service(svc)
            }
            Rule::role_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let mut role = RoleDecl {
                    name,
                    vars: vec![],
                    timers: vec![],
                    choices: vec![],
                    inits: vec![],
                    ready: vec![],
                    metrics: vec![],
                    states: vec![],
                    handlers: vec![],
                    span,
                };
                for m in it {
                    self.role_member(m, &mut role);
                }
                Item::Role(role)
            }
            Rule::property_decl => Item::Property(self.property(p.into_inner().next().unwrap())),
            Rule::check_decl => Item::Check(self.check(p)),
            r => unreachable!("item rule {r:?}"),
        }
    }

    fn field(&self, p: P) -> Field {
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let ty = self.ty(it.next().unwrap());
        Field { name, ty }
    }

    fn ty_list(&self, p: P) -> Vec<TypeExpr> {
        p.into_inner().map(|t| self.ty(t)).collect()
    }

    fn ty(&self, p: P) -> TypeExpr {
        let span = self.span(&p);
        let inner = if p.as_rule() == Rule::ty {
            p.into_inner().next().unwrap()
        } else {
            p
        };
        let kind = match inner.as_rule() {
            Rule::named_ty => TypeExprKind::Named(self.ident(inner.into_inner().next().unwrap())),
            Rule::generic_ty => {
                let mut it = inner.into_inner();
                let name = self.ident(it.next().unwrap());
                TypeExprKind::Generic(name, self.ty_list(it.next().unwrap()))
            }
            Rule::tuple_ty => TypeExprKind::Tuple(inner.into_inner().map(|t| self.ty(t)).collect()),
            r => unreachable!("type rule {r:?}"),
        };
        TypeExpr { kind, span }
    }

    fn service_member(&self, m: P, svc: &mut ServiceDecl) {
        match m.as_rule() {
            Rule::sessions_decl => {
                let span = self.span(&m);
                let n = self.int(m.into_inner().find(|p| p.as_rule() == Rule::int_lit).unwrap());
                // A second declaration is reported by the checker; keep the first.
                match svc.sessions {
                    None => svc.sessions = Some((n, span)),
                    Some(_) => svc.extra_sessions.push(span),
                }
            }
            Rule::var_decl => svc.vars.push(self.var_decl(m)),
            Rule::request_decl => {
                let span = self.span(&m);
                let mut it = m.into_inner();
                let name = self.ident(it.next().unwrap());
                let mut params = Vec::new();
                let mut replies = Vec::new();
                let mut body = None;
                for x in it {
                    match x.as_rule() {
                        Rule::param => params.push(self.field(x)),
                        Rule::reply_sig => {
                            let span = self.span(&x);
                            let mut ri = x.into_inner();
                            let name = self.ident(ri.next().unwrap());
                            let fields = ri.next().map(|tl| self.ty_list(tl)).unwrap_or_default();
                            replies.push(ReplySig { name, fields, span });
                        }
                        Rule::block => body = Some(self.block(x)),
                        r => unreachable!("request part {r:?}"),
                    }
                }
                svc.requests.push(RequestDecl {
                    name,
                    params,
                    replies,
                    body: body.expect("request body"),
                    span,
                });
            }
            r => unreachable!("service member {r:?}"),
        }
    }

    fn var_decl(&self, p: P) -> VarDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let words: Vec<Rule> = it.next().unwrap().into_inner().map(|w| w.as_rule()).collect();
        let (durable, ghost) = (words.contains(&Rule::durable_kw), words.contains(&Rule::ghost_kw));
        let name = self.ident(it.next().unwrap());
        let ty = self.ty(it.next().unwrap());
        let init = self.expr(it.next().unwrap());
        VarDecl {
            durable,
            ghost,
            name,
            ty,
            init,
            span,
        }
    }

    fn role_member(&self, m: P, role: &mut RoleDecl) {
        let span = self.span(&m);
        match m.as_rule() {
            Rule::var_decl => role.vars.push(self.var_decl(m)),
            Rule::timer_decl => {
                let mut it = m.into_inner();
                let name = self.ident(it.next().unwrap());
                let min_us = self.duration_us(it.next().unwrap());
                let max_us = it.next().map(|d| self.duration_us(d)).unwrap_or(min_us);
                role.timers.push(TimerDecl {
                    name,
                    min_us,
                    max_us,
                    span,
                });
            }
            Rule::choice_decl => {
                let mut it = m.into_inner();
                let name = self.ident(it.next().unwrap());
                let ty = self.ty(it.next().unwrap());
                role.choices.push(ChoiceDecl { name, ty, span });
            }
            Rule::init_block => role.inits.push(self.block(m.into_inner().next().unwrap())),
            Rule::ready_decl => {
                let cond = self.expr(m.into_inner().nth(1).unwrap());
                role.ready.push(ReadyDecl { cond, span });
            }
            Rule::metric_decl => {
                let mut it = m.into_inner().skip(1);
                let name = self.ident(it.next().unwrap());
                let value = self.expr(it.next().unwrap());
                role.metrics.push(MetricDecl { name, value, span });
            }
            Rule::state_decl => {
                let mut it = m.into_inner().peekable();
                let initial = it.peek().map(|x| x.as_rule()) == Some(Rule::initial_kw);
                if initial {
                    it.next();
                }
                let name = self.ident(it.next().unwrap());
                let mut st = StateDecl {
                    name,
                    initial,
                    entries: vec![],
                    exits: vec![],
                    handlers: vec![],
                    span,
                };
                for sm in it {
                    self.state_member(sm, &mut st);
                }
                role.states.push(st);
            }
            Rule::handler => role.handlers.push(self.handler(m)),
            r => unreachable!("role member {r:?}"),
        }
    }

    fn state_member(&self, sm: P, st: &mut StateDecl) {
        match sm.as_rule() {
            Rule::entry_block => st.entries.push(self.block(sm.into_inner().next().unwrap())),
            Rule::exit_block => st.exits.push(self.block(sm.into_inner().next().unwrap())),
            Rule::handler => st.handlers.push(self.handler(sm)),
            r => unreachable!("state member {r:?}"),
        }
    }

    fn handler(&self, p: P) -> Handler {
        let span = self.span(&p);
        let h = p.into_inner().next().unwrap();
        let mut guard = None;
        let mut body = None;
        let kind = match h.as_rule() {
            Rule::on_msg => {
                let mut it = h.into_inner();
                let msg = self.ident(it.next().unwrap());
                let mut binding = MsgBinding::None;
                let mut from = None;
                for x in it {
                    match x.as_rule() {
                        Rule::msg_binding => {
                            let s = x.as_str().trim_start();
                            let ids: Vec<Ident> = x.into_inner().map(|i| self.ident(i)).collect();
                            binding = if s.starts_with('(') {
                                MsgBinding::Whole(ids.into_iter().next().unwrap())
                            } else {
                                MsgBinding::Fields(ids)
                            };
                        }
                        Rule::from_clause => from = Some(self.ident(x.into_inner().next().unwrap())),
                        Rule::when_clause => guard = Some(self.expr(x.into_inner().next().unwrap())),
                        Rule::block => body = Some(self.block(x)),
                        r => unreachable!("on_msg part {r:?}"),
                    }
                }
                HandlerKind::Msg { msg, binding, from }
            }
            Rule::on_timeout => {
                let mut it = h.into_inner();
                let timer = self.ident(it.next().unwrap());
                body = Some(self.block(it.next().unwrap()));
                HandlerKind::Timeout { timer }
            }
            Rule::on_choose => {
                let mut it = h.into_inner();
                let choice = self.ident(it.next().unwrap());
                let pat = self.pattern(it.next().unwrap());
                for x in it {
                    match x.as_rule() {
                        Rule::when_clause => guard = Some(self.expr(x.into_inner().next().unwrap())),
                        _ => body = Some(self.block(x)),
                    }
                }
                HandlerKind::Choose { choice, pat }
            }
            Rule::on_request => {
                let mut it = h.into_inner();
                let r = it.next().unwrap();
                let req = match r.as_rule() {
                    Rule::request_any => RequestPat::Any(self.ident(r.into_inner().next().unwrap())),
                    _ => {
                        let mut ri = r.into_inner();
                        let name = self.ident(ri.next().unwrap());
                        RequestPat::Named {
                            name,
                            args: ri.map(|x| self.pattern(x)).collect(),
                        }
                    }
                };
                let from = self.ident(it.next().unwrap());
                for x in it {
                    match x.as_rule() {
                        Rule::when_clause => guard = Some(self.expr(x.into_inner().next().unwrap())),
                        _ => body = Some(self.block(x)),
                    }
                }
                HandlerKind::Request { req, from }
            }
            r => unreachable!("handler {r:?}"),
        };
        Handler {
            kind,
            guard,
            body: body.expect("handler body"),
            span,
        }
    }

    fn block(&self, p: P) -> Block {
        let span = self.span(&p);
        Block {
            stmts: p.into_inner().map(|s| self.stmt(s)).collect(),
            span,
        }
    }

    fn place(&self, p: P) -> Place {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let base = self.ident(it.next().unwrap());
        let path = it
            .map(|e| match e.as_rule() {
                Rule::place_field => self.dot(e.into_inner().next().unwrap()),
                Rule::place_index => PlaceElem::Index(self.expr(e.into_inner().next().unwrap())),
                r => unreachable!("place {r:?}"),
            })
            .collect();
        Place { base, path, span }
    }

    /// A `dot_ident`: `.name` or `.0`.
    fn dot(&self, d: P) -> PlaceElem {
        let x = d.into_inner().next().unwrap();
        match x.as_rule() {
            Rule::ident => PlaceElem::Field(self.ident(x)),
            Rule::dot_keyword => PlaceElem::Field(Ident {
                name: x.as_str().to_string(),
                span: self.span(&x),
            }),
            _ => {
                let span = self.span(&x);
                PlaceElem::TupleIndex(self.int(x).min(u32::MAX as u128) as u32, span)
            }
        }
    }

    fn stmt(&self, p: P) -> Stmt {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        let kind = match rule {
            Rule::let_stmt => {
                let pat = self.pattern(it.next().unwrap());
                let mut nxt = it.next().unwrap();
                let ty = if nxt.as_rule() == Rule::ty {
                    let t = self.ty(nxt);
                    nxt = it.next().unwrap();
                    Some(t)
                } else {
                    None
                };
                StmtKind::Let {
                    pat,
                    ty,
                    value: self.expr(nxt),
                }
            }
            Rule::assign_stmt => {
                let place = self.place(it.next().unwrap());
                let op = match it.next().unwrap().as_str() {
                    "+=" => AssignOp::Add,
                    "-=" => AssignOp::Sub,
                    _ => AssignOp::Set,
                };
                StmtKind::Assign {
                    place,
                    op,
                    value: self.expr(it.next().unwrap()),
                }
            }
            Rule::call_stmt => {
                let place = self.place(it.next().unwrap());
                StmtKind::Call {
                    place,
                    args: it.map(|a| self.expr(a)).collect(),
                }
            }
            Rule::if_stmt => self.if_stmt(it),
            Rule::for_stmt => {
                let pat = self.pattern(it.next().unwrap());
                let iter = self.expr(it.next().unwrap());
                StmtKind::For {
                    pat,
                    iter,
                    body: self.block(it.next().unwrap()),
                }
            }
            Rule::match_stmt => {
                let scrutinee = self.expr(it.next().unwrap());
                let arms = it
                    .map(|a| {
                        let mut ai = a.into_inner();
                        let pat = self.pattern(ai.next().unwrap());
                        let b = ai.next().unwrap();
                        let body = if b.as_rule() == Rule::block {
                            self.block(b)
                        } else {
                            let s = self.stmt(b);
                            Block {
                                span: s.span,
                                stmts: vec![s],
                            }
                        };
                        StmtArm { pat, body }
                    })
                    .collect();
                StmtKind::Match { scrutinee, arms }
            }
            Rule::send_stmt | Rule::broadcast_stmt => {
                let mut it = it.peekable();
                let early = it.next_if(|p| p.as_rule() == Rule::early_kw).is_some();
                let to = self.expr(it.next().unwrap());
                let msg = self.expr(it.next().unwrap());
                if rule == Rule::send_stmt {
                    StmtKind::Send { dst: to, msg, early }
                } else {
                    StmtKind::Broadcast { dsts: to, msg, early }
                }
            }
            Rule::goto_stmt => StmtKind::Goto(self.ident(it.next().unwrap())),
            Rule::set_stmt => StmtKind::Set(self.ident(it.next().unwrap())),
            Rule::cancel_stmt => StmtKind::Cancel(self.ident(it.next().unwrap())),
            Rule::reply_stmt => {
                let first = self.expr(it.next().unwrap());
                match it.next() {
                    Some(v) => StmtKind::Reply {
                        target: Some(first),
                        value: self.expr(v),
                    },
                    None => StmtKind::Reply {
                        target: None,
                        value: first,
                    },
                }
            }
            Rule::redirect_stmt => StmtKind::Redirect {
                client: self.expr(it.next().unwrap()),
                to: self.expr(it.next().unwrap()),
            },
            Rule::choose_stmt => StmtKind::Choose {
                choice: self.ident(it.next().unwrap()),
                options: self.expr(it.next().unwrap()),
            },
            Rule::assert_stmt => StmtKind::Assert(self.expr(it.next().unwrap())),
            Rule::return_stmt => StmtKind::Return,
            r => unreachable!("stmt {r:?}"),
        };
        Stmt { kind, span }
    }

    fn if_stmt(&self, mut it: pest::iterators::Pairs<Rule>) -> StmtKind {
        let cond = self.expr(it.next().unwrap());
        let then = self.block(it.next().unwrap());
        let els = it.next().map(|e| {
            let span = self.span(&e);
            let kind = match e.as_rule() {
                Rule::if_stmt => self.if_stmt(e.into_inner()),
                _ => StmtKind::Block(self.block(e)),
            };
            Box::new(Stmt { kind, span })
        });
        StmtKind::If { cond, then, els }
    }

    fn path(&self, p: P) -> Path {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let first = self.ident(it.next().unwrap());
        let second = it.next().map(|s| self.ident(s));
        Path { first, second, span }
    }

    fn pattern(&self, p: P) -> Pattern {
        let span = self.span(&p);
        let inner = if p.as_rule() == Rule::pattern {
            p.into_inner().next().unwrap()
        } else {
            p
        };
        let kind = match inner.as_rule() {
            Rule::wildcard_pat => PatternKind::Wildcard,
            Rule::literal_pat => {
                let l = inner.into_inner().next().unwrap();
                match l.as_rule() {
                    Rule::int_lit => PatternKind::Int(self.int(l)),
                    Rule::string_lit => PatternKind::Bytes(self.string(l)),
                    _ => PatternKind::Bool(l.as_str() == "true"),
                }
            }
            Rule::tuple_pat => PatternKind::Tuple(inner.into_inner().map(|x| self.pattern(x)).collect()),
            Rule::ctor_pat => {
                let has_parens = inner.as_str().trim_end().ends_with(')');
                let mut it = inner.into_inner();
                let path = self.path(it.next().unwrap());
                let args: Vec<Pattern> = it.map(|x| self.pattern(x)).collect();
                PatternKind::Ctor {
                    path,
                    args: if has_parens { Some(args) } else { None },
                }
            }
            r => unreachable!("pattern {r:?}"),
        };
        Pattern { kind, span }
    }

    fn expr(&self, p: P) -> Expr {
        debug_assert!(matches!(p.as_rule(), Rule::expr | Rule::cond_expr));
        pratt()
            .map_primary(|x| self.primary(x))
            .map_prefix(|op, e| {
                let span = self.span(&op).to(e.span);
                let op = if op.as_rule() == Rule::neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                Expr {
                    kind: ExprKind::Unary { op, expr: Box::new(e) },
                    span,
                }
            })
            .map_postfix(|e, op| {
                let span = e.span.to(self.span(&op));
                let kind = match op.as_rule() {
                    Rule::field_access => match self.dot(op.into_inner().next().unwrap()) {
                        PlaceElem::Field(name) => ExprKind::Field {
                            base: Box::new(e),
                            name,
                        },
                        PlaceElem::TupleIndex(index, index_span) => ExprKind::TupleIndex {
                            base: Box::new(e),
                            index,
                            index_span,
                        },
                        PlaceElem::Index(_) => unreachable!(),
                    },
                    Rule::method_call => {
                        let mut it = op.into_inner();
                        let name = match self.dot(it.next().unwrap()) {
                            PlaceElem::Field(n) => n,
                            PlaceElem::TupleIndex(i, s) => Ident {
                                name: i.to_string(),
                                span: s,
                            },
                            PlaceElem::Index(_) => unreachable!(),
                        };
                        ExprKind::Method {
                            recv: Box::new(e),
                            name,
                            args: it.map(|a| self.expr(a)).collect(),
                        }
                    }
                    Rule::index => ExprKind::Index {
                        base: Box::new(e),
                        index: Box::new(self.expr(op.into_inner().next().unwrap())),
                    },
                    Rule::cast => ExprKind::Cast {
                        expr: Box::new(e),
                        ty: self.ty(op.into_inner().next().unwrap()),
                    },
                    Rule::is_state => ExprKind::Is {
                        expr: Box::new(e),
                        state: self.ident(op.into_inner().next().unwrap()),
                    },
                    r => unreachable!("postfix {r:?}"),
                };
                Expr { kind, span }
            })
            .map_infix(|lhs, op, rhs| {
                let op_span = self.span(&op);
                let span = lhs.span.to(rhs.span);
                let op = match op.as_rule() {
                    Rule::implies => BinOp::Implies,
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::in_op => BinOp::In,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::rem => BinOp::Rem,
                    r => unreachable!("infix {r:?}"),
                };
                Expr {
                    kind: ExprKind::Binary {
                        op,
                        op_span,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                }
            })
            .parse(p.into_inner())
    }

    fn exprs(&self, it: pest::iterators::Pairs<Rule>) -> Vec<Expr> {
        it.map(|x| self.expr(x)).collect()
    }

    fn primary(&self, p: P) -> Expr {
        let span = self.span(&p);
        let rule = p.as_rule();
        let kind = match rule {
            Rule::int_lit => ExprKind::Int(self.int(p)),
            Rule::bool_lit => ExprKind::Bool(p.as_str() == "true"),
            Rule::string_lit => ExprKind::Bytes(self.string(p)),
            Rule::duration_lit => ExprKind::Duration(self.duration_us(p)),
            Rule::kw_self => ExprKind::SelfNode,
            Rule::path_expr => ExprKind::Path(self.path(p.into_inner().next().unwrap())),
            Rule::call => {
                let mut it = p.into_inner();
                let path = self.path(it.next().unwrap());
                ExprKind::Call {
                    path,
                    args: self.exprs(it),
                }
            }
            Rule::record_lit => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().unwrap());
                let mut fields = Vec::new();
                let mut base = None;
                for x in it {
                    match x.as_rule() {
                        Rule::record_field => {
                            let mut fi = x.into_inner();
                            let f = self.ident(fi.next().unwrap());
                            fields.push((f, fi.next().map(|v| self.expr(v))));
                        }
                        _ => base = Some(Box::new(self.expr(x.into_inner().next().unwrap()))),
                    }
                }
                ExprKind::Record { name, fields, base }
            }
            Rule::paren_or_tuple => {
                let trailing_comma = p.as_str().trim_end_matches(')').trim_end().ends_with(',');
                let mut items = self.exprs(p.into_inner());
                if items.len() == 1 && !trailing_comma {
                    ExprKind::Paren(Box::new(items.pop().unwrap()))
                } else {
                    ExprKind::Tuple(items)
                }
            }
            Rule::list_lit => ExprKind::List(self.exprs(p.into_inner())),
            Rule::set_lit => ExprKind::Set(self.exprs(p.into_inner())),
            Rule::map_lit => ExprKind::Map(
                p.into_inner()
                    .map(|e| {
                        let mut ei = e.into_inner();
                        (self.expr(ei.next().unwrap()), self.expr(ei.next().unwrap()))
                    })
                    .collect(),
            ),
            Rule::list_compr | Rule::brace_compr => {
                let mut it = p.into_inner();
                let head = it.next().unwrap();
                let (kind, head, head_value) = if head.as_rule() == Rule::map_entry {
                    let mut hi = head.into_inner();
                    let k = self.expr(hi.next().unwrap());
                    let v = self.expr(hi.next().unwrap());
                    (ComprKind::Map, k, Some(Box::new(v)))
                } else if rule == Rule::list_compr {
                    (ComprKind::List, self.expr(head), None)
                } else {
                    (ComprKind::Set, self.expr(head), None)
                };
                let mut gi = it.next().unwrap().into_inner();
                let pat = self.pattern(gi.next().unwrap());
                let iter = self.expr(gi.next().unwrap());
                let filters = it.map(|f| self.expr(f.into_inner().next().unwrap())).collect();
                ExprKind::Compr {
                    kind,
                    head: Box::new(head),
                    head_value,
                    pat,
                    iter: Box::new(iter),
                    filters,
                }
            }
            Rule::quantifier | Rule::quantifier_ns => {
                let mut it = p.into_inner();
                let forall = it.next().unwrap().as_str() == "forall";
                let binders = self.binders(it.next().unwrap());
                let body = self.expr(it.next().unwrap());
                ExprKind::Quant {
                    forall,
                    binders,
                    body: Box::new(body),
                }
            }
            Rule::count_expr => {
                let mut it = p.into_inner();
                let pat = self.pattern(it.next().unwrap());
                let iter = self.expr(it.next().unwrap());
                let cond = self.expr(it.next().unwrap());
                ExprKind::Count {
                    pat,
                    iter: Box::new(iter),
                    cond: Box::new(cond),
                }
            }
            Rule::if_expr => {
                let mut it = p.into_inner();
                let cond = self.expr(it.next().unwrap());
                let then = self.expr(it.next().unwrap());
                let e = it.next().unwrap();
                let els = if e.as_rule() == Rule::if_expr {
                    self.primary(e)
                } else {
                    self.expr(e)
                };
                ExprKind::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    els: Box::new(els),
                }
            }
            Rule::match_expr => {
                let mut it = p.into_inner();
                let scrutinee = self.expr(it.next().unwrap());
                let arms = it
                    .map(|a| {
                        let mut ai = a.into_inner();
                        (self.pattern(ai.next().unwrap()), self.expr(ai.next().unwrap()))
                    })
                    .collect();
                ExprKind::Match {
                    scrutinee: Box::new(scrutinee),
                    arms,
                }
            }
            r => unreachable!("primary {r:?}"),
        };
        Expr { kind, span }
    }

    fn binders(&self, p: P) -> Vec<Binder> {
        p.into_inner()
            .map(|b| {
                let b = b.into_inner().next().unwrap();
                match b.as_rule() {
                    Rule::role_binder => {
                        let mut ids: Vec<Ident> = b.into_inner().map(|i| self.ident(i)).collect();
                        let role = ids.pop().unwrap();
                        Binder::Role { names: ids, role }
                    }
                    _ => {
                        let mut it = b.into_inner();
                        let pat = self.pattern(it.next().unwrap());
                        Binder::In {
                            pat,
                            iter: self.expr(it.next().unwrap()),
                        }
                    }
                }
            })
            .collect()
    }

    fn property(&self, p: P) -> PropertyDecl {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        if rule == Rule::linearizable_decl {
            let name = it.next().map(|n| self.ident(n));
            return PropertyDecl {
                kind: PropertyKind::Linearizable,
                name,
                span,
            };
        }
        let name = Some(self.ident(it.next().unwrap()));
        let kind = match rule {
            Rule::invariant_decl => PropertyKind::Invariant(self.expr(it.next().unwrap())),
            Rule::reachable_decl => PropertyKind::Reachable(self.expr(it.next().unwrap())),
            Rule::eventually_decl => PropertyKind::Eventually(self.expr(it.next().unwrap())),
            Rule::leads_to_decl => {
                let mut nxt = it.next().unwrap();
                let binders = if nxt.as_rule() == Rule::lt_binders {
                    let b = self.binders(nxt.into_inner().next().unwrap());
                    nxt = it.next().unwrap();
                    b
                } else {
                    vec![]
                };
                let from = self.expr(nxt);
                let to = self.expr(it.next().unwrap());
                PropertyKind::LeadsTo { binders, from, to }
            }
            r => unreachable!("property {r:?}"),
        };
        PropertyDecl { kind, name, span }
    }

    fn check(&self, p: P) -> CheckDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let entries = it
            .map(|e| {
                let span = self.span(&e);
                let rule = e.as_rule();
                let mut ei = e.into_inner();
                let kind = match rule {
                    Rule::ck_servers => {
                        let first = ei.next().unwrap();
                        if first.as_rule() == Rule::int_lit {
                            CheckEntryKind::Servers(self.int(first))
                        } else {
                            let counts = std::iter::once(first)
                                .chain(ei)
                                .map(|rc| {
                                    let mut ri = rc.into_inner();
                                    (self.ident(ri.next().unwrap()), self.int(ri.next().unwrap()))
                                })
                                .collect();
                            CheckEntryKind::RoleCounts(counts)
                        }
                    }
                    Rule::ck_clients => CheckEntryKind::Clients(self.int(ei.next().unwrap())),
                    Rule::ck_workload => CheckEntryKind::Workload(self.exprs(ei)),
                    Rule::ck_network => CheckEntryKind::Network(self.ident(ei.next().unwrap())),
                    Rule::ck_lossy => CheckEntryKind::Lossy,
                    Rule::ck_drops => CheckEntryKind::Drops(self.int(ei.next().unwrap())),
                    Rule::ck_races => CheckEntryKind::Races(self.int(ei.next().unwrap())),
                    Rule::ck_crash => CheckEntryKind::Crash(self.int(ei.next().unwrap())),
                    Rule::ck_stops => CheckEntryKind::Stops(self.int(ei.next().unwrap())),
                    Rule::ck_retries => CheckEntryKind::Retries(self.int(ei.next().unwrap())),
                    Rule::ck_sessions => CheckEntryKind::Sessions(self.int(ei.next().unwrap())),
                    Rule::ck_mode => CheckEntryKind::Mode(self.ident(ei.next().unwrap())),
                    Rule::ck_symmetry => CheckEntryKind::Symmetry,
                    Rule::ck_max_depth => CheckEntryKind::MaxDepth(self.int(ei.next().unwrap())),
                    Rule::ck_max_states => CheckEntryKind::MaxStates(self.int(ei.next().unwrap())),
                    Rule::ck_strategy => CheckEntryKind::Strategy(self.ident(ei.next().unwrap())),
                    Rule::ck_threads => CheckEntryKind::Threads(self.int(ei.next().unwrap())),
                    Rule::ck_timing => CheckEntryKind::Timing(self.ident(ei.next().unwrap())),
                    Rule::ck_bound => CheckEntryKind::Bound(self.expr(ei.next().unwrap())),
                    Rule::ck_skip => CheckEntryKind::Skip(ei.map(|i| self.ident(i)).collect()),
                    Rule::ck_expect => {
                        let x = ei.next().unwrap();
                        if x.as_rule() == Rule::expect_ok {
                            CheckEntryKind::ExpectOk
                        } else {
                            let name = x.into_inner().next().unwrap();
                            // The keyword `linearizable` names the built-in property here.
                            let name = Ident {
                                name: name.as_str().to_string(),
                                span: self.span(&name),
                            };
                            CheckEntryKind::ExpectViolation(name)
                        }
                    }
                    Rule::ck_unknown => CheckEntryKind::Unknown(self.ident(ei.next().unwrap())),
                    r => unreachable!("check entry {r:?}"),
                };
                CheckEntry { kind, span }
            })
            .collect();
        CheckDecl { name, entries, span }
    }
}
