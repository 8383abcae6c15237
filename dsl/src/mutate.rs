//! Semantic mutants of a spec, for `smelt mutate`: does the spec's own set
//! of checks notice when its protocol is changed in a way that matters?
//!
//! A mutant is one text edit at one span of the protocol's code (roles and
//! the functions they call). What the checks read is never mutated:
//! properties, checks, the service (the reference the linearizability
//! check compares with), `ghost` state and the functions properties call.
//! Each operator is one kind of mistake protocol authors make:
//!
//! | operator | what it does |
//! |---|---|
//! | `cmp` | a comparison's boundary moves (`<` ↔ `<=`, `>` ↔ `>=`) or flips (`==` ↔ `!=`) |
//! | `logic` | `&&` ↔ `||` |
//! | `conjunct` | one side of an `&&` is dropped (a guard or condition loses a clause) |
//! | `negation` | a `!` is dropped |
//! | `guard` | a handler's `when` guard is dropped |
//! | `quorum` | `majority(..)` is one smaller or one larger |
//! | `off_by_one` | an integer added or subtracted is one larger or smaller |
//! | `durable` | a `durable` variable becomes volatile (`var`) |
//! | `assign` | an assignment or a mutating call (`push`, `insert`, ...) is deleted |
//! | `send` | a `send` or `broadcast` is deleted |
//! | `timer` | a `set` or `cancel` of a timer is deleted |
//! | `reply_early` | a `reply` moves to the start of its block (before the work it should wait for) |
//!
//! An author marks a mutant that cannot change behaviour with a comment on
//! its line or the line above: `// smelt: equivalent(OPERATOR) reason` (or
//! `equivalent(*)`); the reason is required. Where one operator makes
//! several mutants on a line and only some are equivalent, the mark names
//! the replacement too: `equivalent(off_by_one=2)` marks `x + 1` → `x + 2`
//! and not `x + 1` → `x + 0` (the text after `=` is the mutant's new code,
//! as `smelt mutate` prints it on the `+` line of its diff, without spaces
//! around it; several marks are separated by commas).

use crate::ast::{self, BinOp, ExprKind, Item, Span, StmtKind, UnOp};
use std::collections::BTreeSet;

/// The operators, in the order reports list them.
pub const OPERATORS: &[&str] = &[
    "cmp",
    "logic",
    "conjunct",
    "negation",
    "guard",
    "quorum",
    "off_by_one",
    "durable",
    "assign",
    "send",
    "timer",
    "reply_early",
];

/// One mutant: `span` of the spec's text replaced by `replacement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutant {
    pub operator: &'static str,
    pub span: Span,
    pub replacement: String,
    /// What changed, in words (`<` → `<=`).
    pub description: String,
}

impl Mutant {
    /// The mutated spec.
    pub fn apply(&self, text: &str) -> String {
        let r = self.span.range();
        let mut out = String::with_capacity(text.len() + self.replacement.len());
        out.push_str(&text[..r.start]);
        out.push_str(&self.replacement);
        out.push_str(&text[r.end..]);
        out
    }
}

/// Every mutant of a spec that parses (an empty list if it does not), in
/// text order. `text` must be the text `file` was parsed from.
pub fn mutants(file: &ast::File, text: &str) -> Vec<Mutant> {
    let mut g = Gen {
        text,
        out: Vec::new(),
        ghosts: BTreeSet::new(),
    };
    let checked_fns = fns_read_by_properties(file);
    for item in &file.items {
        if let Item::Role(r) = item {
            g.ghosts
                .extend(r.vars.iter().filter(|v| v.ghost).map(|v| v.name.name.clone()));
        }
    }
    for item in &file.items {
        match item {
            Item::Role(r) => {
                for v in &r.vars {
                    g.var(v);
                }
                for b in &r.inits {
                    g.block(b);
                }
                for s in &r.states {
                    for b in s.entries.iter().chain(&s.exits) {
                        g.block(b);
                    }
                    for h in &s.handlers {
                        g.handler(h);
                    }
                }
                for h in &r.handlers {
                    g.handler(h);
                }
            }
            Item::Fn(f) if !checked_fns.contains(&f.name.name) => {
                for l in &f.lets {
                    g.expr(&l.value);
                }
                g.expr(&f.body);
            }
            _ => {}
        }
    }
    g.out.sort_by_key(|m| (m.span.start, m.span.end, m.operator));
    g.out
        .dedup_by(|a, b| a.span == b.span && a.replacement == b.replacement);
    g.out
}

/// The reason a mutant is marked equivalent, if it is: an annotation on
/// its first line, or on a comment line just above it.
pub fn equivalent(text: &str, m: &Mutant) -> Option<String> {
    let start = m.span.start as usize;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let prev_start = text[..line_start.saturating_sub(1)].rfind('\n').map_or(0, |i| i + 1);
    // The line above counts only when it is a comment alone (a trailing
    // comment belongs to its own line's code).
    let above = &text[prev_start..line_start];
    let above = if above.trim_start().starts_with("//") {
        above
    } else {
        ""
    };
    for line in [&text[line_start..line_end], above] {
        let Some(at) = line.find("smelt: equivalent(") else {
            continue;
        };
        let rest = &line[at + "smelt: equivalent(".len()..];
        let Some(close) = rest.find(')') else { continue };
        let ops = &rest[..close];
        let reason = rest[close + 1..].trim();
        let marks = |o: &str| match o.split_once('=') {
            Some((op, new)) => op.trim() == m.operator && new.trim() == m.replacement.trim(),
            None => o == "*" || o == m.operator,
        };
        if !reason.is_empty() && ops.split(',').map(str::trim).any(marks) {
            return Some(reason.to_string());
        }
    }
    None
}

/// Functions a property calls, directly or through other functions: they
/// are part of what is checked, not of the protocol.
fn fns_read_by_properties(file: &ast::File) -> BTreeSet<String> {
    let fns: Vec<&ast::FnDecl> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Fn(f) => Some(f),
            _ => None,
        })
        .collect();
    let mut calls = BTreeSet::new();
    for item in &file.items {
        if let Item::Property(p) = item {
            match &p.kind {
                ast::PropertyKind::Invariant(e)
                | ast::PropertyKind::Reachable(e)
                | ast::PropertyKind::Eventually(e) => called(e, &mut calls),
                ast::PropertyKind::LeadsTo { from, to, .. } => {
                    called(from, &mut calls);
                    called(to, &mut calls);
                }
                ast::PropertyKind::Linearizable => {}
            }
        }
    }
    loop {
        let before = calls.len();
        for f in &fns {
            if calls.contains(&f.name.name) {
                let mut more = BTreeSet::new();
                for l in &f.lets {
                    called(&l.value, &mut more);
                }
                called(&f.body, &mut more);
                calls.extend(more);
            }
        }
        if calls.len() == before {
            return calls;
        }
    }
}

fn called(e: &ast::Expr, out: &mut BTreeSet<String>) {
    if let ExprKind::Call { path, .. } = &e.kind {
        out.insert(path.display());
    }
    for c in children(e) {
        called(c, out);
    }
}

/// The direct subexpressions of an expression.
fn children(e: &ast::Expr) -> Vec<&ast::Expr> {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Bool(_)
        | ExprKind::Bytes(_)
        | ExprKind::Duration(_)
        | ExprKind::SelfNode
        | ExprKind::Path(_) => vec![],
        ExprKind::Call { args, .. } => args.iter().collect(),
        ExprKind::Record { fields, base, .. } => fields
            .iter()
            .filter_map(|(_, v)| v.as_ref())
            .chain(base.as_deref())
            .collect(),
        ExprKind::Tuple(xs) | ExprKind::List(xs) | ExprKind::Set(xs) => xs.iter().collect(),
        ExprKind::Paren(x) => vec![x],
        ExprKind::Map(kvs) => kvs.iter().flat_map(|(k, v)| [k, v]).collect(),
        ExprKind::Compr {
            head,
            head_value,
            iter,
            filters,
            ..
        } => [&**head, &**iter]
            .into_iter()
            .chain(head_value.as_deref())
            .chain(filters)
            .collect(),
        ExprKind::Quant { binders, body, .. } => binders
            .iter()
            .filter_map(|b| match b {
                ast::Binder::In { iter, .. } => Some(iter),
                ast::Binder::Role { .. } => None,
            })
            .chain([&**body])
            .collect(),
        ExprKind::Count { iter, cond, .. } => vec![iter, cond],
        ExprKind::If { cond, then, els } => vec![cond, then, els],
        ExprKind::Match { scrutinee, arms } => [&**scrutinee].into_iter().chain(arms.iter().map(|(_, x)| x)).collect(),
        ExprKind::Unary { expr, .. } => vec![expr],
        ExprKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::Field { base, .. } | ExprKind::TupleIndex { base, .. } => vec![base],
        ExprKind::Index { base, index } => vec![base, index],
        ExprKind::Method { recv, args, .. } => [&**recv].into_iter().chain(args).collect(),
        ExprKind::Cast { expr, .. } | ExprKind::Is { expr, .. } => vec![expr],
    }
}

struct Gen<'a> {
    text: &'a str,
    out: Vec<Mutant>,
    ghosts: BTreeSet<String>,
}

impl Gen<'_> {
    fn push(&mut self, operator: &'static str, span: Span, replacement: impl Into<String>, description: String) {
        self.out.push(Mutant {
            operator,
            span,
            replacement: replacement.into(),
            description,
        });
    }

    fn src(&self, span: Span) -> &str {
        &self.text[span.range()]
    }

    fn var(&mut self, v: &ast::VarDecl) {
        if v.durable && !v.ghost && self.text[v.span.range()].starts_with("durable") {
            let at = v.span.start as usize;
            self.push(
                "durable",
                Span::new(at, at + "durable".len()),
                "var",
                format!("`{}` is volatile", v.name.name),
            );
        }
    }

    fn handler(&mut self, h: &ast::Handler) {
        if let Some(g) = &h.guard {
            // From the `when` keyword to the end of the guard.
            let before = &self.text[h.span.start as usize..g.span.start as usize];
            if let Some(w) = before.rfind("when") {
                let start = h.span.start as usize + w;
                let drop = before[..w].len() - before[..w].trim_end().len();
                self.push(
                    "guard",
                    Span::new(start - drop, g.span.end as usize),
                    "",
                    format!("guard `when {}` dropped", one_line(self.src(g.span))),
                );
            }
            self.expr(g);
        }
        self.block(&h.body);
    }

    /// Whether a statement writes only ghost state (the checks' own).
    fn writes_ghost(&self, place: &ast::Place) -> bool {
        self.ghosts.contains(&place.base.name)
    }

    fn block(&mut self, b: &ast::Block) {
        for (i, s) in b.stmts.iter().enumerate() {
            let text = one_line(self.src(s.span));
            match &s.kind {
                StmtKind::Assign { place, .. } | StmtKind::Call { place, .. } if !self.writes_ghost(place) => {
                    self.push("assign", s.span, "", format!("`{text}` deleted"));
                }
                StmtKind::Send { .. } | StmtKind::Broadcast { .. } => {
                    self.push("send", s.span, "", format!("`{text}` deleted"));
                }
                StmtKind::Set(_) | StmtKind::Cancel(_) => {
                    self.push("timer", s.span, "", format!("`{text}` deleted"));
                }
                StmtKind::Reply { .. } if i > 0 => {
                    // Moved before every statement of its block.
                    let first = b.stmts[0].span;
                    let whole = Span::new(first.start as usize, s.span.end as usize);
                    let head = &self.text[first.start as usize..s.span.start as usize];
                    let indent = self.indent_of(first);
                    let moved = format!("{}\n{indent}{}", self.src(s.span), head.trim_end());
                    self.push(
                        "reply_early",
                        whole,
                        moved,
                        format!("`{text}` moved to the start of its block"),
                    );
                }
                _ => {}
            }
            self.stmt(s);
        }
    }

    /// The whitespace before a span on its line.
    fn indent_of(&self, span: Span) -> String {
        let start = span.start as usize;
        let line = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        self.text[line..start]
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect()
    }

    fn stmt(&mut self, s: &ast::Stmt) {
        match &s.kind {
            StmtKind::Let { value, .. } => self.expr(value),
            StmtKind::Assign { place, value, .. } => {
                if !self.writes_ghost(place) {
                    self.place(place);
                    self.expr(value);
                }
            }
            StmtKind::Call { place, args } => {
                if !self.writes_ghost(place) {
                    self.place(place);
                    for a in args {
                        self.expr(a);
                    }
                }
            }
            StmtKind::If { cond, then, els } => {
                self.expr(cond);
                self.block(then);
                if let Some(e) = els {
                    self.stmt(e);
                }
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::For { iter, body, .. } => {
                self.expr(iter);
                self.block(body);
            }
            StmtKind::Match { scrutinee, arms } => {
                self.expr(scrutinee);
                for a in arms {
                    self.block(&a.body);
                }
            }
            StmtKind::Send { dst, msg, .. } => {
                self.expr(dst);
                self.expr(msg);
            }
            StmtKind::Broadcast { dsts, msg, .. } => {
                self.expr(dsts);
                self.expr(msg);
            }
            StmtKind::Reply { target, value } => {
                if let Some(t) = target {
                    self.expr(t);
                }
                self.expr(value);
            }
            StmtKind::Redirect { client, to } => {
                self.expr(client);
                self.expr(to);
            }
            StmtKind::Choose { options, .. } => self.expr(options),
            StmtKind::Assert(e) => self.expr(e),
            StmtKind::Goto(_) | StmtKind::Set(_) | StmtKind::Cancel(_) | StmtKind::Return => {}
        }
    }

    fn place(&mut self, p: &ast::Place) {
        for e in &p.path {
            if let ast::PlaceElem::Index(x) = e {
                self.expr(x);
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ExprKind::Binary { op, op_span, lhs, rhs } => {
                let flips: &[&str] = match op {
                    BinOp::Lt => &["<="],
                    BinOp::Le => &["<"],
                    BinOp::Gt => &[">="],
                    BinOp::Ge => &[">"],
                    BinOp::Eq => &["!="],
                    BinOp::Ne => &["=="],
                    BinOp::And => &["||"],
                    BinOp::Or => &["&&"],
                    _ => &[],
                };
                for sym in flips {
                    let operator = if matches!(op, BinOp::And | BinOp::Or) {
                        "logic"
                    } else {
                        "cmp"
                    };
                    self.push(
                        operator,
                        *op_span,
                        *sym,
                        format!("`{}` → `{sym}` in `{}`", op.symbol(), one_line(self.src(e.span))),
                    );
                }
                if *op == BinOp::And {
                    for (keep, gone) in [(lhs, rhs), (rhs, lhs)] {
                        self.push(
                            "conjunct",
                            e.span,
                            self.src(keep.span).to_string(),
                            format!("`&& {}` dropped", one_line(self.src(gone.span))),
                        );
                    }
                }
                if let (BinOp::Add | BinOp::Sub, ExprKind::Int(k)) = (op, &rhs.kind) {
                    let k = *k;
                    let mut alts = vec![k + 1];
                    if k > 0 {
                        alts.push(k - 1);
                    }
                    for n in alts {
                        self.push(
                            "off_by_one",
                            rhs.span,
                            n.to_string(),
                            format!(
                                "`{}` → `{} {} {n}`",
                                one_line(self.src(e.span)),
                                one_line(self.src(lhs.span)),
                                op.symbol()
                            ),
                        );
                    }
                }
            }
            ExprKind::Unary { op: UnOp::Not, expr } => {
                self.push(
                    "negation",
                    e.span,
                    format!("({})", self.src(expr.span)),
                    format!("`{}` → `{}`", one_line(self.src(e.span)), one_line(self.src(expr.span))),
                );
            }
            ExprKind::Call { path, .. } if path.display() == "majority" => {
                let call = self.src(e.span).to_string();
                for d in ["- 1", "+ 1"] {
                    self.push(
                        "quorum",
                        e.span,
                        format!("({call} {d})"),
                        format!("`{}` → `{} {d}`", one_line(&call), one_line(&call)),
                    );
                }
            }
            _ => {}
        }
        for c in children(e) {
            self.expr(c);
        }
    }
}

/// Text on one line, for descriptions.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
