//! Expressions and patterns.
//!
//! Checking is bidirectional: callers pass the type they expect, if any, and
//! literals without a type of their own (`None`, `{}`, `[]`, integers) take
//! it from there. `==` and friends check the operand that has a type of its
//! own first, so `proposal == None` works in either order.

use super::{BlockKind, Checker, Ctx, TypeDef};
use crate::ast::{self, BinOp, ComprKind, ExprKind as A, Ident, PatternKind, Span, UnOp};
use crate::diag::{suggest, Diagnostic};
use crate::ir::{self, Builtin, ClientAttr, ExprKind as K, IntTy, Pat, Ty};

/// Whether a type may be unified with another, treating `Ty::Error` as a
/// wildcard at any depth and seeing through aliases.
pub(super) fn compatible(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Error, _) | (_, Ty::Error) => true,
        (Ty::Alias(_, a), b) | (b, Ty::Alias(_, a)) => compatible(a, b),
        (Ty::Option(a), Ty::Option(b)) | (Ty::List(a), Ty::List(b)) | (Ty::Set(a), Ty::Set(b)) => compatible(a, b),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => compatible(k1, k2) && compatible(v1, v2),
        (Ty::Tuple(a), Ty::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| compatible(x, y)),
        (a, b) => a == b,
    }
}

pub(super) fn contains_error(t: &Ty) -> bool {
    match t {
        Ty::Error => true,
        Ty::Alias(_, t) | Ty::Option(t) | Ty::List(t) | Ty::Set(t) => contains_error(t),
        Ty::Map(k, v) => contains_error(k) || contains_error(v),
        Ty::Tuple(ts) => ts.iter().any(contains_error),
        _ => false,
    }
}

/// `a` with its unknown parts filled in from `b`.
fn merge(a: &Ty, b: &Ty) -> Ty {
    match (a.resolved(), b.resolved()) {
        (Ty::Error, _) => b.resolved(),
        (Ty::Option(x), Ty::Option(y)) => Ty::Option(Box::new(merge(&x, &y))),
        (Ty::List(x), Ty::List(y)) => Ty::List(Box::new(merge(&x, &y))),
        (Ty::Set(x), Ty::Set(y)) => Ty::Set(Box::new(merge(&x, &y))),
        (Ty::Map(k1, v1), Ty::Map(k2, v2)) => Ty::Map(Box::new(merge(&k1, &k2)), Box::new(merge(&v1, &v2))),
        (Ty::Tuple(xs), Ty::Tuple(ys)) if xs.len() == ys.len() => {
            Ty::Tuple(xs.iter().zip(&ys).map(|(x, y)| merge(x, y)).collect())
        }
        (x, _) => x,
    }
}

/// Expressions whose type comes from context.
fn is_weak(e: &ast::Expr) -> bool {
    match &e.kind {
        A::Int(_) => true,
        A::Path(p) => p.second.is_none() && p.first.name == "None",
        A::Set(items) | A::List(items) => items.is_empty(),
        A::Paren(e) => is_weak(e),
        A::Unary { op: UnOp::Neg, expr } => is_weak(expr),
        _ => false,
    }
}

pub(super) fn element_type(t: &Ty) -> Option<Ty> {
    match t.resolved() {
        Ty::List(e) | Ty::Set(e) => Some(*e),
        Ty::Map(k, v) => Some(Ty::Tuple(vec![*k, *v])),
        Ty::Error => Some(Ty::Error),
        _ => None,
    }
}

fn mk(kind: K, ty: Ty, span: Span) -> ir::Expr {
    ir::Expr { kind, ty, span }
}

fn err_expr(span: Span) -> ir::Expr {
    mk(K::Bool(false), Ty::Error, span)
}

impl Checker<'_> {
    /// Reports a type mismatch unless `e` fits `expected`, and fills in the
    /// unknown parts of its type.
    pub(super) fn coerce(&mut self, mut e: ir::Expr, expected: &Ty) -> ir::Expr {
        if !compatible(&e.ty, expected) {
            let d = Diagnostic::error(
                e.span,
                format!(
                    "mismatched types: expected `{}`, found `{}`",
                    self.ty_name(expected),
                    self.ty_name(&e.ty)
                ),
            )
            .label(format!("this is a `{}`", self.ty_name(&e.ty)));
            self.error(d);
            e.ty = Ty::Error;
            return e;
        }
        if contains_error(&e.ty) {
            e.ty = merge(&e.ty, expected);
        }
        e
    }

    fn expect_bool(&mut self, e: &ast::Expr) -> ir::Expr {
        let x = self.expr(e, Some(&Ty::Bool));
        self.coerce(x, &Ty::Bool)
    }

    fn expect_int(&mut self, e: &ast::Expr, want: Option<&Ty>) -> ir::Expr {
        let x = self.expr(e, want.or(Some(&Ty::Int(IntTy::U64))));
        if x.ty.int().is_none() && !x.ty.is_error() {
            let d = Diagnostic::error(x.span, format!("expected an integer, found `{}`", self.ty_name(&x.ty)))
                .label("not an integer");
            self.error(d);
            return err_expr(x.span);
        }
        x
    }

    fn mark_asymmetric(&mut self, span: Span, why: &str) {
        if self.ctx != Ctx::Static && self.spec.asymmetry.is_none() {
            self.spec.symmetric = false;
            self.spec.asymmetry = Some((span, why.to_string()));
        }
    }

    /// Whether values of `t` contain node ids (so ordering them depends on
    /// the numbering of nodes).
    pub(super) fn has_node(&self, t: &Ty) -> bool {
        self.has_node_rec(t, &mut Vec::new())
    }

    fn has_node_rec(&self, t: &Ty, seen: &mut Vec<Ty>) -> bool {
        if seen.contains(t) {
            return false;
        }
        match t {
            Ty::Node | Ty::Client | Ty::Instance(_) | Ty::ClientInstance => true,
            Ty::Option(t) | Ty::List(t) | Ty::Set(t) | Ty::Alias(_, t) => self.has_node_rec(t, seen),
            Ty::Map(k, v) => self.has_node_rec(k, seen) || self.has_node_rec(v, seen),
            Ty::Tuple(ts) => ts.iter().any(|t| self.has_node_rec(t, seen)),
            Ty::Record(id) => {
                seen.push(t.clone());
                self.spec.records[*id]
                    .fields
                    .iter()
                    .any(|(_, f)| self.has_node_rec(f, seen))
            }
            Ty::Message(id) => {
                seen.push(t.clone());
                self.spec.messages[*id]
                    .fields
                    .iter()
                    .any(|(_, f)| self.has_node_rec(f, seen))
            }
            Ty::Enum(id) => {
                seen.push(t.clone());
                self.spec.enums[*id]
                    .variants
                    .iter()
                    .any(|(_, fs)| fs.iter().any(|f| self.has_node_rec(f, seen)))
            }
            Ty::Request | Ty::Reply | Ty::Service => {
                seen.push(t.clone());
                let Some(s) = &self.spec.service else { return false };
                s.vars.iter().any(|v| self.has_node_rec(&v.ty, seen))
                    || s.replies
                        .iter()
                        .any(|r| r.fields.iter().any(|f| self.has_node_rec(f, seen)))
                    || s.requests.iter().any(|r| {
                        r.params
                            .iter()
                            .any(|p| self.has_node_rec(&self.spec.locals[*p].ty, seen))
                    })
            }
            _ => false,
        }
    }

    pub(super) fn expr(&mut self, e: &ast::Expr, expected: Option<&Ty>) -> ir::Expr {
        let span = e.span;
        // The flag applies to the direct argument only, and only a method
        // call (`.values()`) consumes it.
        if !matches!(e.kind, A::Method { .. } | A::Paren(_)) {
            self.order_insensitive = false;
        }
        match &e.kind {
            A::Int(v) => {
                let ty = match expected.and_then(|t| t.int()) {
                    Some(i) => Ty::Int(i),
                    None => Ty::Int(IntTy::U64),
                };
                let i = ty.int().unwrap();
                if (*v as i128) > i.max() {
                    self.error(
                        Diagnostic::error(span, format!("the literal {v} does not fit in `{}`", i.name()))
                            .label("out of range"),
                    );
                }
                mk(K::Int(*v as i128), ty, span)
            }
            A::Bool(b) => mk(K::Bool(*b), Ty::Bool, span),
            A::Bytes(b) => mk(K::Bytes(b.clone()), Ty::Bytes, span),
            A::Duration(_) => {
                self.error(
                    Diagnostic::error(span, "durations are only allowed in `timer` declarations")
                        .label("not a value")
                        .note("handlers do not see time; declare a timer and use `set`/`on timeout`"),
                );
                err_expr(span)
            }
            A::SelfNode => {
                if self.role_of_ctx().is_none() {
                    self.error(
                        Diagnostic::error(span, "`self` is only available inside a role").label(self.ctx_label()),
                    );
                    return err_expr(span);
                }
                mk(K::SelfNode, Ty::Node, span)
            }
            A::Paren(inner) => self.expr(inner, expected),
            A::Path(p) => self.path_expr(p, expected, span),
            A::Call { path, args } => self.call(path, args, expected, span),
            A::Record { name, fields, base } => self.record_lit(name, fields, base.as_deref(), span),
            A::Tuple(items) => {
                let want: Vec<Option<Ty>> = match expected.map(Ty::resolved) {
                    Some(Ty::Tuple(ts)) if ts.len() == items.len() => ts.into_iter().map(Some).collect(),
                    _ => vec![None; items.len()],
                };
                let xs: Vec<ir::Expr> = items.iter().zip(&want).map(|(x, w)| self.expr(x, w.as_ref())).collect();
                let ty = Ty::Tuple(xs.iter().map(|x| x.ty.clone()).collect());
                mk(K::Tuple(xs), ty, span)
            }
            A::List(items) => {
                let want = match expected.map(Ty::resolved) {
                    Some(Ty::List(t)) => Some(*t),
                    _ => None,
                };
                let (xs, elem) = self.elements(items, want);
                mk(K::List(xs), Ty::List(Box::new(elem)), span)
            }
            A::Set(items) => {
                // `{}` is also the empty map when a map is expected.
                if items.is_empty() {
                    if let Some(Ty::Map(k, v)) = expected.map(Ty::resolved) {
                        return mk(K::Map(vec![]), Ty::Map(k, v), span);
                    }
                }
                let want = match expected.map(Ty::resolved) {
                    Some(Ty::Set(t)) => Some(*t),
                    _ => None,
                };
                let (xs, elem) = self.elements(items, want);
                mk(K::Set(xs), Ty::Set(Box::new(elem)), span)
            }
            A::Map(entries) => {
                let (mut kt, mut vt) = match expected.map(Ty::resolved) {
                    Some(Ty::Map(k, v)) => (*k, *v),
                    _ => (Ty::Error, Ty::Error),
                };
                let mut out = Vec::new();
                for (k, v) in entries {
                    let k = self.expr(k, Some(&kt).filter(|t| !t.is_error()));
                    let k = self.coerce(k, &kt);
                    kt = merge(&kt, &k.ty);
                    let v = self.expr(v, Some(&vt).filter(|t| !t.is_error()));
                    let v = self.coerce(v, &vt);
                    vt = merge(&vt, &v.ty);
                    out.push((k, v));
                }
                mk(K::Map(out), Ty::Map(Box::new(kt), Box::new(vt)), span)
            }
            A::Compr {
                kind,
                head,
                head_value,
                pat,
                iter,
                filters,
            } => {
                self.push_scope();
                let it = self.expr(iter, None);
                let elem = self.iter_elem(&it);
                let pat = self.pattern(pat, &elem, true);
                let filters: Vec<ir::Expr> = filters.iter().map(|f| self.expect_bool(f)).collect();
                let (want_h, want_v) = match (kind, expected.map(Ty::resolved)) {
                    (ComprKind::List, Some(Ty::List(t))) | (ComprKind::Set, Some(Ty::Set(t))) => (Some(*t), None),
                    (ComprKind::Map, Some(Ty::Map(k, v))) => (Some(*k), Some(*v)),
                    _ => (None, None),
                };
                let h = self.expr(head, want_h.as_ref());
                let hv = head_value.as_ref().map(|v| self.expr(v, want_v.as_ref()));
                self.pop_scope();
                if *kind == ComprKind::List && self.has_node(&elem) {
                    self.mark_asymmetric(span, "a list built from a collection of nodes is ordered by node id");
                }
                let ty = match kind {
                    ComprKind::List => Ty::List(Box::new(h.ty.clone())),
                    ComprKind::Set => Ty::Set(Box::new(h.ty.clone())),
                    ComprKind::Map => Ty::Map(
                        Box::new(h.ty.clone()),
                        Box::new(hv.as_ref().map(|v| v.ty.clone()).unwrap_or(Ty::Error)),
                    ),
                };
                mk(
                    K::Compr {
                        kind: *kind,
                        head: Box::new(h),
                        head_value: hv.map(Box::new),
                        pat,
                        iter: Box::new(it),
                        filters,
                    },
                    ty,
                    span,
                )
            }
            A::Quant { forall, binders, body } => {
                self.push_scope();
                let bs = self.binders(binders);
                let b = self.expect_bool(body);
                self.pop_scope();
                mk(
                    K::Quant {
                        forall: *forall,
                        binders: bs,
                        body: Box::new(b),
                    },
                    Ty::Bool,
                    span,
                )
            }
            A::Count { pat, iter, cond } => {
                self.push_scope();
                let it = self.expr(iter, None);
                let elem = self.iter_elem(&it);
                let pat = self.pattern(pat, &elem, true);
                let c = self.expect_bool(cond);
                self.pop_scope();
                mk(
                    K::Count {
                        pat,
                        iter: Box::new(it),
                        cond: Box::new(c),
                    },
                    Ty::Int(IntTy::U64),
                    span,
                )
            }
            A::If { cond, then, els } => {
                let c = self.expect_bool(cond);
                let (t, f) = if is_weak(then) && !is_weak(els) {
                    let f = self.expr(els, expected);
                    let t = self.expr(then, Some(&f.ty));
                    (t, f)
                } else {
                    let t = self.expr(then, expected);
                    let f = self.expr(els, Some(&t.ty));
                    (t, f)
                };
                let f = self.coerce(f, &t.ty);
                let ty = merge(&t.ty, &f.ty);
                mk(
                    K::If {
                        cond: Box::new(c),
                        then: Box::new(t),
                        els: Box::new(f),
                    },
                    ty,
                    span,
                )
            }
            A::Match { scrutinee, arms } => {
                let s = self.expr(scrutinee, None);
                let mut ty = expected.cloned().unwrap_or(Ty::Error);
                let mut out = Vec::new();
                for (p, body) in arms {
                    self.push_scope();
                    let pat = self.pattern(p, &s.ty, true);
                    let b = self.expr(body, Some(&ty).filter(|t| !contains_error(t)));
                    let b = self.coerce(b, &ty);
                    ty = merge(&ty, &b.ty);
                    self.pop_scope();
                    out.push((pat, b));
                }
                self.check_exhaustive(&s.ty, out.iter().map(|(p, _)| p), span);
                mk(
                    K::Match {
                        scrutinee: Box::new(s),
                        arms: out,
                    },
                    ty,
                    span,
                )
            }
            A::Unary { op, expr } => match op {
                UnOp::Not => {
                    let x = self.expect_bool(expr);
                    mk(
                        K::Unary {
                            op: *op,
                            expr: Box::new(x),
                        },
                        Ty::Bool,
                        span,
                    )
                }
                UnOp::Neg => {
                    // Negative literals get their type from context like any literal.
                    let x = self.expect_int(expr, expected.filter(|t| t.int().is_some()));
                    if let Some(i) = x.ty.int() {
                        if !i.signed() {
                            let d = Diagnostic::error(
                                span,
                                format!("cannot negate a value of unsigned type `{}`", i.name()),
                            )
                            .label("unsigned")
                            .note("use a signed type such as `i64` if negative values are meant");
                            self.error(d);
                            return err_expr(span);
                        }
                    }
                    let ty = x.ty.clone();
                    mk(
                        K::Unary {
                            op: *op,
                            expr: Box::new(x),
                        },
                        ty,
                        span,
                    )
                }
            },
            A::Binary { op, op_span, lhs, rhs } => self.binary(*op, *op_span, lhs, rhs, expected, span),
            A::Field { base, name } => self.field(base, name, span),
            A::TupleIndex {
                base,
                index,
                index_span,
            } => {
                let b = self.expr(base, None);
                match b.ty.resolved() {
                    Ty::Tuple(ts) => {
                        if (*index as usize) < ts.len() {
                            let ty = ts[*index as usize].clone();
                            mk(
                                K::TupleField {
                                    base: Box::new(b),
                                    index: *index as usize,
                                },
                                ty,
                                span,
                            )
                        } else {
                            let d = Diagnostic::error(
                                *index_span,
                                format!("this tuple has {} elements; `.{index}` is out of range", ts.len()),
                            )
                            .label("no such element");
                            self.error(d);
                            err_expr(span)
                        }
                    }
                    Ty::Error => err_expr(span),
                    t => {
                        let d = Diagnostic::error(
                            *index_span,
                            format!("`.{index}` needs a tuple, but this is a `{}`", self.ty_name(&t)),
                        )
                        .label("not a tuple");
                        self.error(d);
                        err_expr(span)
                    }
                }
            }
            A::Index { base, index } => {
                let b = self.expr(base, None);
                match b.ty.resolved() {
                    Ty::Map(k, v) => {
                        let i = self.expr(index, Some(&k));
                        let i = self.coerce(i, &k);
                        mk(
                            K::Index {
                                base: Box::new(b),
                                index: Box::new(i),
                            },
                            *v,
                            span,
                        )
                    }
                    Ty::List(t) => {
                        let i = self.expect_int(index, None);
                        mk(
                            K::Index {
                                base: Box::new(b),
                                index: Box::new(i),
                            },
                            *t,
                            span,
                        )
                    }
                    Ty::Error => err_expr(span),
                    t => {
                        let d = Diagnostic::error(
                            b.span,
                            format!("cannot index into a value of type `{}`", self.ty_name(&t)),
                        )
                        .label("only `Map` and `List` can be indexed");
                        self.error(d);
                        err_expr(span)
                    }
                }
            }
            A::Method { recv, name, args } => self.method(recv, name, args, expected, span),
            A::Cast { expr, ty } => {
                let to = self.resolve_type(ty);
                let x = self.expect_int(expr, None);
                match to.int() {
                    Some(i) => mk(
                        K::Cast {
                            expr: Box::new(x),
                            to: i,
                        },
                        Ty::Int(i),
                        span,
                    ),
                    None => {
                        if !to.is_error() {
                            let d = Diagnostic::error(
                                ty.span,
                                format!("`as` converts between integer types, not to `{}`", self.ty_name(&to)),
                            )
                            .label("not an integer type");
                            self.error(d);
                        }
                        err_expr(span)
                    }
                }
            }
            A::Is { expr, state } => self.is_state(expr, state, span),
        }
    }

    fn ctx_label(&self) -> String {
        match self.ctx {
            Ctx::Handler { .. } => "inside a handler".into(),
            Ctx::VarInit { .. } => "in a variable initializer".into(),
            Ctx::Service => "inside the service".into(),
            Ctx::Function => "inside a function".into(),
            Ctx::Property => "inside a property".into(),
            Ctx::Static => "in a constant or check configuration".into(),
        }
    }

    fn elements(&mut self, items: &[ast::Expr], want: Option<Ty>) -> (Vec<ir::Expr>, Ty) {
        let mut elem = want.unwrap_or(Ty::Error);
        let mut xs = Vec::new();
        // Elements with a type of their own go first, so `[0, x]` types `0` from `x`.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| is_weak(&items[i]));
        let mut out: Vec<Option<ir::Expr>> = vec![None; items.len()];
        for i in order {
            let x = self.expr(&items[i], Some(&elem).filter(|t| !contains_error(t)));
            let x = self.coerce(x, &elem);
            elem = merge(&elem, &x.ty);
            out[i] = Some(x);
        }
        xs.extend(out.into_iter().flatten());
        (xs, elem)
    }

    pub(super) fn iter_elem(&mut self, it: &ir::Expr) -> Ty {
        match element_type(&it.ty) {
            Some(t) => t,
            None => {
                let d = Diagnostic::error(
                    it.span,
                    format!("cannot iterate over a value of type `{}`", self.ty_name(&it.ty)),
                )
                .label("expected a `List`, `Set` or `Map`");
                self.error(d);
                Ty::Error
            }
        }
    }

    fn binders(&mut self, binders: &[ast::Binder]) -> Vec<ir::Binder> {
        let mut out = Vec::new();
        for b in binders {
            match b {
                ast::Binder::Role { names, role } => {
                    if self.ctx != Ctx::Property {
                        let d = Diagnostic::error(
                            role.span,
                            "quantifying over role instances is only allowed in properties",
                        )
                        .label(self.ctx_label())
                        .note("a handler only sees its own node; iterate over `servers` or `peers` instead");
                        self.error(d);
                    }
                    if role.name == "Client" {
                        for n in names {
                            let local = self.bind(n, Ty::ClientInstance);
                            out.push(ir::Binder::Clients { local });
                        }
                        continue;
                    }
                    let Some(&r) = self.roles.get(&role.name) else {
                        let mut c: Vec<String> = self.roles.keys().cloned().collect();
                        c.push("Client".into());
                        self.unknown("role", role, c, None);
                        for n in names {
                            self.bind(n, Ty::Error);
                        }
                        continue;
                    };
                    for n in names {
                        let local = self.bind(n, Ty::Instance(r));
                        out.push(ir::Binder::Role { local, role: r });
                    }
                }
                ast::Binder::In { pat, iter } => {
                    let it = self.expr(iter, None);
                    let elem = self.iter_elem(&it);
                    let pat = self.pattern(pat, &elem, true);
                    out.push(ir::Binder::In { pat, iter: it });
                }
            }
        }
        out
    }

    fn path_expr(&mut self, p: &ast::Path, expected: Option<&Ty>, span: Span) -> ir::Expr {
        if let Some(second) = &p.second {
            return self.enum_ctor(&p.first, second, &[], span, false);
        }
        let name = &p.first;
        if let Some(l) = self.lookup_local(&name.name) {
            let ty = self.spec.locals[l].ty.clone();
            return mk(K::Local(l), ty, span);
        }
        if let Some(e) = self.var_read(name, span) {
            return e;
        }
        if let Some(&c) = self.consts.get(&name.name) {
            let ty = self.spec.consts[c].ty.clone();
            return mk(K::Const(c), ty, span);
        }
        match name.name.as_str() {
            "servers" | "peers" => {
                let in_role = self.role_of_ctx().is_some();
                if !(in_role || (self.ctx == Ctx::Property && name.name == "servers")) {
                    let d = Diagnostic::error(span, format!("`{}` is only available inside a role", name.name))
                        .label(self.ctx_label());
                    self.error(d);
                    return err_expr(span);
                }
                if name.name == "peers" || self.ctx != Ctx::Property {
                    self.mark_asymmetric_if_multi_role();
                }
                let kind = if name.name == "servers" { K::Servers } else { K::Peers };
                return mk(kind, Ty::Set(Box::new(Ty::Node)), span);
            }
            "restarted" => {
                if !matches!(
                    self.ctx,
                    Ctx::Handler {
                        block: BlockKind::Init,
                        ..
                    }
                ) {
                    let d = Diagnostic::error(span, "`restarted` is only available in an `init` block")
                        .label(self.ctx_label())
                        .note("`init` runs on every start; `restarted` tells a recovery after a crash from the first start");
                    self.error(d);
                    return err_expr(span);
                }
                return mk(K::Restarted, Ty::Bool, span);
            }
            "None" => {
                let ty = match expected.map(Ty::resolved) {
                    Some(Ty::Option(t)) => Ty::Option(t),
                    _ => Ty::Option(Box::new(Ty::Error)),
                };
                return mk(K::None, ty, span);
            }
            _ => {}
        }
        if let Some(&r) = self.replies.get(&name.name) {
            return self.reply_ctor(r, &[], span);
        }
        if let Some(&r) = self.requests.get(&name.name) {
            return self.request_ctor(r, &[], span);
        }
        match self.types.get(&name.name).copied() {
            Some((TypeDef::Message(m), _)) => {
                if !self.spec.messages[m].fields.is_empty() {
                    let d = Diagnostic::error(
                        span,
                        format!(
                            "message `{}` has fields; build it with `{} {{ ... }}`",
                            name.name, name.name
                        ),
                    )
                    .label("fields missing");
                    self.error(d);
                    return err_expr(span);
                }
                return mk(
                    K::MessageLit {
                        msg: m,
                        fields: vec![],
                        base: None,
                    },
                    Ty::Message(m),
                    span,
                );
            }
            Some((TypeDef::Service, _)) => {
                let d = Diagnostic::error(
                    span,
                    format!(
                        "`{}` is the service type; its initial state is `{}.initial`",
                        name.name, name.name
                    ),
                )
                .label("a type, not a value");
                self.error(d);
                return err_expr(span);
            }
            Some(_) => {
                let d = Diagnostic::error(span, format!("`{}` is a type, not a value", name.name)).label("a type");
                self.error(d);
                return err_expr(span);
            }
            None => {}
        }
        if self.roles.contains_key(&name.name) {
            let d = Diagnostic::error(span, format!("`{}` is a role, not a value", name.name))
                .label("a role")
                .note(format!("use `members({})` for the set of its nodes", name.name));
            self.error(d);
            return err_expr(span);
        }
        let mut cands = self.value_names();
        cands.extend(self.replies.keys().cloned());
        cands.extend(self.requests.keys().cloned());
        self.unknown("name", name, cands, None);
        err_expr(span)
    }

    /// More than one role: `servers` mixes roles, so permuting ids within a
    /// role is still sound, but `peers`/`servers` being role-agnostic is fine.
    fn mark_asymmetric_if_multi_role(&mut self) {}

    /// A read of ghost variable `v` outside ghost code is an error (the
    /// runtime never updates ghost state, so protocol code must not see
    /// it): returns the error expression then.
    fn ghost_read(&mut self, role: usize, v: usize, span: Span) -> Option<ir::Expr> {
        let decl = &self.spec.roles[role].vars[v];
        if !decl.ghost || self.ghost_ok {
            return None;
        }
        let d = Diagnostic::error(span, format!("ghost variable `{}` is read by protocol code", decl.name))
            .label("ghost state")
            .secondary(decl.span, "declared `ghost` here")
            .note("ghost variables exist for properties: only properties and assignments to ghost variables may read them, so they cannot change what the protocol does");
        self.error(d);
        Some(err_expr(span))
    }

    /// A role or service variable read, respecting initialization order.
    fn var_read(&mut self, name: &Ident, span: Span) -> Option<ir::Expr> {
        match self.ctx {
            Ctx::Handler { role, .. } => {
                let v = self.spec.roles[role].vars.iter().position(|x| x.name == name.name)?;
                if let Some(e) = self.ghost_read(role, v, span) {
                    return Some(e);
                }
                let ty = self.spec.roles[role].vars[v].ty.clone();
                Some(mk(K::Var(v), ty, span))
            }
            Ctx::VarInit { role, var, durable } => {
                let v = self.spec.roles[role].vars.iter().position(|x| x.name == name.name)?;
                let decl = &self.spec.roles[role].vars[v];
                if v >= var {
                    let d = Diagnostic::error(span, format!("`{}` is used before it is initialized", name.name))
                        .label("declared later")
                        .secondary(decl.span, "declared here")
                        .note("variables are initialized in declaration order");
                    self.error(d);
                    return Some(err_expr(span));
                }
                if durable && !decl.durable {
                    let d = Diagnostic::error(span, format!("durable initializer reads volatile variable `{}`", name.name))
                        .label("volatile")
                        .secondary(decl.span, "declared without `durable` here")
                        .note("a durable variable is initialized once, when the node first starts; volatile state does not exist yet then");
                    self.error(d);
                    return Some(err_expr(span));
                }
                if let Some(e) = self.ghost_read(role, v, span) {
                    return Some(e);
                }
                let ty = self.spec.roles[role].vars[v].ty.clone();
                Some(mk(K::Var(v), ty, span))
            }
            Ctx::Service => {
                let s = self.spec.service.as_ref()?;
                let v = s.vars.iter().position(|x| x.name == name.name)?;
                Some(mk(K::ServiceVar(v), s.vars[v].ty.clone(), span))
            }
            _ => None,
        }
    }

    fn reply_ctor(&mut self, r: usize, args: &[ast::Expr], span: Span) -> ir::Expr {
        let fields = self.spec.service.as_ref().unwrap().replies[r].fields.clone();
        let name = self.spec.service.as_ref().unwrap().replies[r].name.clone();
        let args = self.ctor_args(&name, &fields, args, span);
        mk(K::ReplyCtor { reply: r, args }, Ty::Reply, span)
    }

    fn request_ctor(&mut self, r: usize, args: &[ast::Expr], span: Span) -> ir::Expr {
        let req = &self.spec.service.as_ref().unwrap().requests[r];
        let name = req.name.clone();
        let fields: Vec<Ty> = req.params.iter().map(|p| self.spec.locals[*p].ty.clone()).collect();
        let args = self.ctor_args(&name, &fields, args, span);
        mk(K::RequestCtor { req: r, args }, Ty::Request, span)
    }

    fn ctor_args(&mut self, name: &str, fields: &[Ty], args: &[ast::Expr], span: Span) -> Vec<ir::Expr> {
        if fields.len() != args.len() {
            let d = Diagnostic::error(
                span,
                format!(
                    "`{name}` takes {} argument{}, found {}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            )
            .label("wrong number of arguments");
            self.error(d);
        }
        args.iter()
            .enumerate()
            .map(|(i, a)| {
                let want = fields.get(i).cloned().unwrap_or(Ty::Error);
                let x = self.expr(a, Some(&want));
                self.coerce(x, &want)
            })
            .collect()
    }

    fn enum_ctor(&mut self, en: &Ident, variant: &Ident, args: &[ast::Expr], span: Span, called: bool) -> ir::Expr {
        let Some((TypeDef::Enum(id), _)) = self.types.get(&en.name).copied() else {
            let cands = self
                .types
                .iter()
                .filter(|(_, (d, _))| matches!(d, TypeDef::Enum(_)))
                .map(|(n, _)| n.clone())
                .collect();
            self.unknown("enum", en, cands, None);
            return err_expr(span);
        };
        let Some(v) = self.spec.enums[id]
            .variants
            .iter()
            .position(|(n, _)| *n == variant.name)
        else {
            let cands = self.spec.enums[id].variants.iter().map(|(n, _)| n.clone()).collect();
            self.unknown(&format!("variant of `{}`:", en.name), variant, cands, None);
            return err_expr(span);
        };
        let fields = self.spec.enums[id].variants[v].1.clone();
        if !called && !fields.is_empty() {
            let d = Diagnostic::error(
                span,
                format!(
                    "`{}::{}` carries {} value{}; write `{}::{}(...)`",
                    en.name,
                    variant.name,
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                    en.name,
                    variant.name
                ),
            )
            .label("arguments missing");
            self.error(d);
            return err_expr(span);
        }
        let args = self.ctor_args(&format!("{}::{}", en.name, variant.name), &fields, args, span);
        mk(
            K::EnumCtor {
                en: id,
                variant: v,
                args,
            },
            Ty::Enum(id),
            span,
        )
    }

    fn call(&mut self, path: &ast::Path, args: &[ast::Expr], expected: Option<&Ty>, span: Span) -> ir::Expr {
        if let Some(second) = &path.second {
            return self.enum_ctor(&path.first, second, args, span, true);
        }
        let name = &path.first;
        let arity = |this: &mut Self, n: usize| -> bool {
            if args.len() != n {
                let d = Diagnostic::error(
                    span,
                    format!(
                        "`{}` takes {n} argument{}, found {}",
                        name.name,
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label("wrong number of arguments");
                this.error(d);
                false
            } else {
                true
            }
        };
        match name.name.as_str() {
            "Some" => {
                if !arity(self, 1) {
                    return err_expr(span);
                }
                let want = match expected.map(Ty::resolved) {
                    Some(Ty::Option(t)) => Some(*t),
                    _ => None,
                };
                let x = self.expr(&args[0], want.as_ref());
                let ty = Ty::Option(Box::new(x.ty.clone()));
                return mk(K::Some(Box::new(x)), ty, span);
            }
            "range" => {
                if !arity(self, 2) {
                    return err_expr(span);
                }
                let lo = self.expect_int(
                    &args[0],
                    expected
                        .and_then(|t| match t.resolved() {
                            Ty::List(e) => Some(*e),
                            _ => None,
                        })
                        .as_ref()
                        .filter(|t| t.int().is_some()),
                );
                let want = lo.ty.clone();
                let hi = self.expr(&args[1], Some(&want));
                let hi = self.coerce(hi, &want);
                let ty = Ty::List(Box::new(lo.ty.clone()));
                return mk(
                    K::Builtin {
                        f: Builtin::Range,
                        args: vec![lo, hi],
                    },
                    ty,
                    span,
                );
            }
            "len" | "min" | "max" | "sum" | "sorted" => {
                if !arity(self, 1) {
                    return err_expr(span);
                }
                self.order_insensitive = true;
                let c = self.expr(&args[0], None);
                self.order_insensitive = false;
                let f = match name.name.as_str() {
                    "len" => Builtin::Len,
                    "min" => Builtin::Min,
                    "max" => Builtin::Max,
                    "sum" => Builtin::Sum,
                    _ => Builtin::Sorted,
                };
                return self.collection_builtin(f, c, span);
            }
            "majority" => {
                if !arity(self, 1) {
                    return err_expr(span);
                }
                let c = self.expr(&args[0], None);
                match c.ty.resolved() {
                    Ty::Int(_) | Ty::List(_) | Ty::Set(_) | Ty::Map(..) | Ty::Error => {}
                    t => {
                        let d = Diagnostic::error(
                            c.span,
                            format!("`majority` takes a count or a collection, not a `{}`", self.ty_name(&t)),
                        )
                        .label("expected a count or collection");
                        self.error(d);
                    }
                }
                return mk(
                    K::Builtin {
                        f: Builtin::Majority,
                        args: vec![c],
                    },
                    Ty::Int(IntTy::U64),
                    span,
                );
            }
            "members" => {
                if !arity(self, 1) {
                    return err_expr(span);
                }
                let role = match &args[0].kind {
                    A::Path(p) if p.second.is_none() => self.roles.get(&p.first.name).copied().ok_or(&p.first),
                    _ => {
                        self.error(
                            Diagnostic::error(args[0].span, "`members` takes a role name").label("not a role name"),
                        );
                        return err_expr(span);
                    }
                };
                return match role {
                    Ok(r) => mk(K::Members(r), Ty::Set(Box::new(Ty::Node)), span),
                    Err(id) => {
                        let id = id.clone();
                        let c = self.roles.keys().cloned().collect();
                        self.unknown("role", &id, c, None);
                        err_expr(span)
                    }
                };
            }
            "recorded" => {
                // `recorded(s, c)`: the reply the session table holds for
                // request `c`, if it is its session's last applied one.
                if !arity(self, 2) {
                    return err_expr(span);
                }
                if self.spec.service.as_ref().is_none_or(|s| s.sessions.is_none()) {
                    let d = Diagnostic::error(span, "`recorded` reads a session table, and the service keeps none")
                        .label("no `sessions` in the service")
                        .note("declare `sessions N` in the service block");
                    self.error(d);
                    return err_expr(span);
                }
                let s = self.expr(&args[0], Some(&Ty::Service));
                let s = self.coerce(s, &Ty::Service);
                let c = self.expr(&args[1], Some(&Ty::Client));
                let c = self.coerce(c, &Ty::Client);
                return mk(
                    K::Builtin {
                        f: Builtin::Recorded,
                        args: vec![s, c],
                    },
                    Ty::Option(Box::new(Ty::Reply)),
                    span,
                );
            }
            "apply" => {
                // `apply(s, r)`, or `apply(s, c, r)`: once per client request
                // (a service with `sessions`).
                if args.len() != 3 && !arity(self, 2) {
                    return err_expr(span);
                }
                let Some(svc) = &self.spec.service else {
                    self.error(Diagnostic::error(span, "`apply` needs a `service` block").label("no service declared"));
                    return err_expr(span);
                };
                if args.len() == 3 && !matches!(self.ctx, Ctx::Handler { .. }) {
                    let d = Diagnostic::error(span, "`apply` with a client is only allowed in a role's handlers")
                        .label("not in a handler")
                        .note("the session table's capacity belongs to the node that applies the request");
                    self.error(d);
                    return err_expr(span);
                }
                if args.len() == 3 && svc.sessions.is_none() {
                    let d = Diagnostic::error(span, "`apply` with a client needs a service with sessions")
                        .label("the service keeps no session table")
                        .note("declare `sessions N` in the service (at most N client sessions are remembered), or call `apply(state, request)`");
                    self.error(d);
                    return err_expr(span);
                }
                let s = self.expr(&args[0], Some(&Ty::Service));
                let mut out = vec![self.coerce(s, &Ty::Service)];
                if args.len() == 3 {
                    let c = self.expr(&args[1], Some(&Ty::Client));
                    out.push(self.coerce(c, &Ty::Client));
                }
                let r = self.expr(&args[args.len() - 1], Some(&Ty::Request));
                out.push(self.coerce(r, &Ty::Request));
                return mk(
                    K::Builtin {
                        f: Builtin::Apply,
                        args: out,
                    },
                    Ty::Tuple(vec![Ty::Service, Ty::Reply]),
                    span,
                );
            }
            _ => {}
        }
        if let Some(&f) = self.fns.get(&name.name) {
            if let Some(cur) = self.current_fn {
                self.fn_calls[cur].push((f, span));
            }
            let params = self.spec.fns[f].params.clone();
            let ret = self.spec.fns[f].ret.clone();
            let tys: Vec<Ty> = params.iter().map(|p| self.spec.locals[*p].ty.clone()).collect();
            let args = self.ctor_args(&name.name, &tys, args, span);
            return mk(K::Call { f, args }, ret, span);
        }
        if let Some(&r) = self.replies.get(&name.name) {
            return self.reply_ctor(r, args, span);
        }
        if let Some(&r) = self.requests.get(&name.name) {
            return self.request_ctor(r, args, span);
        }
        if let Some((TypeDef::Message(_) | TypeDef::Record(_), _)) = self.types.get(&name.name) {
            let d = Diagnostic::error(
                span,
                format!(
                    "`{}` is built with braces: `{} {{ field: value, ... }}`",
                    name.name, name.name
                ),
            )
            .label("not a function");
            self.error(d);
            return err_expr(span);
        }
        let mut cands: Vec<String> = self.fns.keys().cloned().collect();
        cands.extend(
            [
                "Some", "len", "min", "max", "sum", "sorted", "majority", "members", "apply", "recorded",
            ]
            .map(String::from),
        );
        cands.extend(self.replies.keys().cloned());
        cands.extend(self.requests.keys().cloned());
        self.unknown("function", name, cands, None);
        for a in args {
            self.expr(a, None);
        }
        err_expr(span)
    }

    fn collection_builtin(&mut self, f: Builtin, c: ir::Expr, span: Span) -> ir::Expr {
        let ct = c.ty.resolved();
        let elem = match (&ct, f) {
            (Ty::Error, _) => return err_expr(span),
            (Ty::List(t) | Ty::Set(t), _) => (**t).clone(),
            (Ty::Map(..) | Ty::Bytes, Builtin::Len) => Ty::Error,
            _ => {
                let what = if f == Builtin::Len {
                    "a `List`, `Set`, `Map` or `Bytes`"
                } else {
                    "a `List` or `Set`"
                };
                let d = Diagnostic::error(c.span, format!("expected {what}, found `{}`", self.ty_name(&c.ty)))
                    .label("not a collection");
                let d = if matches!(ct, Ty::Map(..)) {
                    d.note("use `m.keys()` or `m.values()`")
                } else {
                    d
                };
                self.error(d);
                return err_expr(span);
            }
        };
        let ty = match f {
            Builtin::Len => Ty::Int(IntTy::U64),
            Builtin::Min | Builtin::Max => {
                if self.has_node(&elem) {
                    self.mark_asymmetric(
                        span,
                        "`min`/`max` over values containing node ids depends on how nodes are numbered",
                    );
                }
                elem
            }
            Builtin::Sum => {
                if elem.int().is_none() && !elem.is_error() {
                    let d = Diagnostic::error(
                        c.span,
                        format!("`sum` needs integers, found a collection of `{}`", self.ty_name(&elem)),
                    )
                    .label("not integers");
                    self.error(d);
                    return err_expr(span);
                }
                elem
            }
            Builtin::Sorted => {
                if self.has_node(&elem) {
                    self.mark_asymmetric(
                        span,
                        "sorting values that contain node ids depends on how nodes are numbered",
                    );
                }
                Ty::List(Box::new(elem))
            }
            _ => unreachable!(),
        };
        mk(K::Builtin { f, args: vec![c] }, ty, span)
    }

    fn method(
        &mut self,
        recv: &ast::Expr,
        name: &Ident,
        args: &[ast::Expr],
        expected: Option<&Ty>,
        span: Span,
    ) -> ir::Expr {
        let order_ok = std::mem::take(&mut self.order_insensitive);
        let r = self.expr(recv, None);
        let rt = r.ty.resolved();
        if rt.is_error() {
            for a in args {
                self.expr(a, None);
            }
            return err_expr(span);
        }
        let n = name.name.as_str();
        let arity = |this: &mut Self, k: usize| -> bool {
            if args.len() != k {
                let d = Diagnostic::error(
                    span,
                    format!(
                        "`.{n}()` takes {k} argument{}, found {}",
                        if k == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label("wrong number of arguments");
                this.error(d);
                false
            } else {
                true
            }
        };
        let arg = |this: &mut Self, i: usize, t: &Ty| -> ir::Expr {
            let x = this.expr(&args[i], Some(t));
            this.coerce(x, t)
        };
        let b = |f: Builtin, args: Vec<ir::Expr>, ty: Ty| mk(K::Builtin { f, args }, ty, span);
        if n == "len" && matches!(rt, Ty::List(_) | Ty::Set(_) | Ty::Map(..) | Ty::Bytes) && arity(self, 0) {
            return b(Builtin::Len, vec![r], Ty::Int(IntTy::U64));
        }
        let methods: &[&str] = match &rt {
            Ty::Option(t) => {
                let t = (**t).clone();
                match n {
                    "is_some" | "is_none" if arity(self, 0) => {
                        return b(
                            if n == "is_some" {
                                Builtin::IsSome
                            } else {
                                Builtin::IsNone
                            },
                            vec![r],
                            Ty::Bool,
                        );
                    }
                    "unwrap" if arity(self, 0) => return b(Builtin::Unwrap, vec![r], t),
                    "unwrap_or" if arity(self, 1) => {
                        let d = arg(self, 0, &t);
                        return b(Builtin::UnwrapOr, vec![r, d], t);
                    }
                    "is_some" | "is_none" | "unwrap" | "unwrap_or" => return err_expr(span),
                    _ => &["is_some", "is_none", "unwrap", "unwrap_or"],
                }
            }
            Ty::Map(k, v) => {
                let (k, v) = ((**k).clone(), (**v).clone());
                match n {
                    "get" if arity(self, 1) => {
                        let key = arg(self, 0, &k);
                        return b(Builtin::Get, vec![r, key], Ty::Option(Box::new(v)));
                    }
                    "contains" if arity(self, 1) => {
                        let key = arg(self, 0, &k);
                        return b(Builtin::Contains, vec![r, key], Ty::Bool);
                    }
                    "keys" if arity(self, 0) => return b(Builtin::Keys, vec![r], Ty::Set(Box::new(k))),
                    "values" if arity(self, 0) => {
                        // The list is ordered by key; if keys are nodes, its
                        // order depends on node numbering unless it only
                        // feeds an order-insensitive aggregate.
                        if self.has_node(&k) && !order_ok {
                            self.mark_asymmetric(span, "`m.values()` of a map keyed by nodes is ordered by node id");
                        }
                        return b(Builtin::Values, vec![r], Ty::List(Box::new(v)));
                    }
                    "with" if arity(self, 2) => {
                        let key = arg(self, 0, &k);
                        let val = arg(self, 1, &v);
                        let ty = r.ty.clone();
                        return b(Builtin::With, vec![r, key, val], ty);
                    }
                    "without" if arity(self, 1) => {
                        let key = arg(self, 0, &k);
                        let ty = r.ty.clone();
                        return b(Builtin::Without, vec![r, key], ty);
                    }
                    "get" | "contains" | "keys" | "values" | "with" | "without" => return err_expr(span),
                    _ => &["get", "contains", "keys", "values", "with", "without", "len"],
                }
            }
            Ty::Set(t) => {
                let t = (**t).clone();
                match n {
                    "contains" if arity(self, 1) => {
                        let x = arg(self, 0, &t);
                        return b(Builtin::Contains, vec![r, x], Ty::Bool);
                    }
                    "union" | "intersect" | "minus" if arity(self, 1) => {
                        let ty = r.ty.clone();
                        let x = arg(self, 0, &ty);
                        let f = match n {
                            "union" => Builtin::Union,
                            "intersect" => Builtin::Intersect,
                            _ => Builtin::Minus,
                        };
                        return b(f, vec![r, x], ty);
                    }
                    "with" | "without" if arity(self, 1) => {
                        let ty = r.ty.clone();
                        let x = arg(self, 0, &t);
                        return b(
                            if n == "with" { Builtin::With } else { Builtin::Without },
                            vec![r, x],
                            ty,
                        );
                    }
                    "contains" | "union" | "intersect" | "minus" | "with" | "without" => return err_expr(span),
                    _ => &["contains", "union", "intersect", "minus", "with", "without", "len"],
                }
            }
            Ty::List(t) => {
                let t = (**t).clone();
                let u64t = Ty::Int(IntTy::U64);
                match n {
                    "get" if arity(self, 1) => {
                        let i = self.expect_int(&args[0], None);
                        return b(Builtin::Get, vec![r, i], Ty::Option(Box::new(t)));
                    }
                    "first" | "last" if arity(self, 0) => {
                        return b(
                            if n == "first" { Builtin::First } else { Builtin::Last },
                            vec![r],
                            Ty::Option(Box::new(t)),
                        );
                    }
                    "contains" if arity(self, 1) => {
                        let x = arg(self, 0, &t);
                        return b(Builtin::Contains, vec![r, x], Ty::Bool);
                    }
                    "slice" if arity(self, 2) => {
                        let from = arg(self, 0, &u64t);
                        let to = arg(self, 1, &u64t);
                        let ty = r.ty.clone();
                        return b(Builtin::Slice, vec![r, from, to], ty);
                    }
                    "skip" | "take" if arity(self, 1) => {
                        let k = arg(self, 0, &u64t);
                        let ty = r.ty.clone();
                        return b(if n == "skip" { Builtin::Skip } else { Builtin::Take }, vec![r, k], ty);
                    }
                    "get" | "first" | "last" | "contains" | "slice" | "skip" | "take" => return err_expr(span),
                    _ => &["get", "first", "last", "contains", "slice", "skip", "take", "len"],
                }
            }
            Ty::Client => match n {
                "node" if arity(self, 0) => return b(Builtin::ClientNode, vec![r], Ty::Node),
                "node" => return err_expr(span),
                _ => &["node"],
            },
            _ => &[],
        };
        let _ = expected;
        let mut d = Diagnostic::error(
            name.span,
            format!("no method `{n}` on a value of type `{}`", self.ty_name(&r.ty)),
        );
        d = match suggest(n, methods.iter().copied()) {
            Some(s) => d.label(format!("did you mean `{s}`?")),
            None => d.label("unknown method"),
        };
        if !methods.is_empty() {
            d = d.note(format!(
                "methods of `{}`: {}",
                self.ty_name(&r.ty),
                methods.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        self.error(d);
        for a in args {
            self.expr(a, None);
        }
        err_expr(span)
    }

    fn record_lit(
        &mut self,
        name: &Ident,
        fields: &[(Ident, Option<ast::Expr>)],
        base: Option<&ast::Expr>,
        span: Span,
    ) -> ir::Expr {
        let (decl, ty, is_msg) = match self.types.get(&name.name).copied() {
            Some((TypeDef::Record(id), _)) => (self.spec.records[id].fields.clone(), Ty::Record(id), false),
            Some((TypeDef::Message(id), _)) => (self.spec.messages[id].fields.clone(), Ty::Message(id), true),
            Some(_) => {
                let d = Diagnostic::error(name.span, format!("`{}` is not a record or message type", name.name))
                    .label("cannot be built with braces");
                self.error(d);
                return err_expr(span);
            }
            None => {
                let cands = self
                    .types
                    .iter()
                    .filter(|(_, (d, _))| matches!(d, TypeDef::Record(_) | TypeDef::Message(_)))
                    .map(|(n, _)| n.clone())
                    .collect();
                self.unknown("record or message", name, cands, None);
                return err_expr(span);
            }
        };
        let mut out: Vec<Option<ir::Expr>> = vec![None; decl.len()];
        let mut seen: Vec<Option<Span>> = vec![None; decl.len()];
        // A misspelt field is most likely the missing one: report it alone.
        let mut unknown_field = false;
        for (f, value) in fields {
            let Some(i) = decl.iter().position(|(n, _)| *n == f.name) else {
                unknown_field = true;
                let what = format!("field of `{}`:", name.name);
                let cands = decl.iter().map(|(n, _)| n.clone()).collect();
                self.unknown(&what, f, cands, None);
                if let Some(v) = value {
                    self.expr(v, None);
                }
                continue;
            };
            if let Some(prev) = seen[i] {
                self.duplicate("field", f, prev);
                continue;
            }
            seen[i] = Some(f.span);
            let want = decl[i].1.clone();
            let x = match value {
                Some(v) => self.expr(v, Some(&want)),
                None => self.path_expr(
                    &ast::Path {
                        first: f.clone(),
                        second: None,
                        span: f.span,
                    },
                    Some(&want),
                    f.span,
                ),
            };
            out[i] = Some(self.coerce(x, &want));
        }
        let base = base.map(|b| {
            let x = self.expr(b, Some(&ty));
            Box::new(self.coerce(x, &ty))
        });
        if base.is_none() && !unknown_field {
            let missing: Vec<String> = decl
                .iter()
                .zip(&out)
                .filter(|(_, o)| o.is_none())
                .map(|((n, _), _)| format!("`{n}`"))
                .collect();
            if !missing.is_empty() {
                let d = Diagnostic::error(
                    name.span,
                    format!(
                        "missing field{} {} in `{}`",
                        if missing.len() == 1 { "" } else { "s" },
                        missing.join(", "),
                        name.name
                    ),
                )
                .label("incomplete")
                .note("give every field, or copy the rest from a value with `..base`");
                self.error(d);
            }
        }
        let kind = match ty {
            Ty::Message(msg) => K::MessageLit { msg, fields: out, base },
            Ty::Record(rec) => K::Record { rec, fields: out, base },
            _ => unreachable!(),
        };
        let _ = is_msg;
        mk(kind, ty, span)
    }

    fn field(&mut self, base: &ast::Expr, name: &Ident, span: Span) -> ir::Expr {
        // `Register.initial`
        if let A::Path(p) = &base.kind {
            if p.second.is_none() && self.lookup_local(&p.first.name).is_none() {
                if let Some((TypeDef::Service, _)) = self.types.get(&p.first.name) {
                    if name.name == "initial" {
                        return mk(K::ServiceInitial, Ty::Service, span);
                    }
                    let d = Diagnostic::error(
                        name.span,
                        format!("the service type only has `{}.initial`", p.first.name),
                    )
                    .label("unknown");
                    self.error(d);
                    return err_expr(span);
                }
            }
        }
        let b = self.expr(base, None);
        let bt = b.ty.resolved();
        let fields: Vec<(String, Ty)> = match &bt {
            Ty::Record(id) => self.spec.records[*id].fields.clone(),
            Ty::Message(id) => self.spec.messages[*id].fields.clone(),
            Ty::Instance(role) => {
                let role = *role;
                let K::Local(inst) = b.kind else { return err_expr(span) };
                if let Some(v) = self.spec.roles[role].vars.iter().position(|x| x.name == name.name) {
                    let ty = self.spec.roles[role].vars[v].ty.clone();
                    return mk(K::InstanceVar { inst, role, var: v }, ty, span);
                }
                if name.name == "id" {
                    return mk(K::InstanceId(inst), Ty::Node, span);
                }
                let mut cands: Vec<String> = self.spec.roles[role].vars.iter().map(|v| v.name.clone()).collect();
                cands.push("id".into());
                let what = format!("variable of role `{}`:", self.spec.roles[role].name);
                self.unknown(&what, name, cands, None);
                return err_expr(span);
            }
            Ty::ClientInstance => {
                let K::Local(inst) = b.kind else { return err_expr(span) };
                let (attr, ty) = match name.name.as_str() {
                    "done" => (ClientAttr::Done, Ty::Bool),
                    "waiting" => (ClientAttr::Waiting, Ty::Bool),
                    "completed" => (ClientAttr::Completed, Ty::Int(IntTy::U64)),
                    "id" => (ClientAttr::Id, Ty::Node),
                    _ => {
                        let cands = ["done", "waiting", "completed", "id"].map(String::from).to_vec();
                        self.unknown(
                            "client attribute",
                            name,
                            cands,
                            Some("a client instance has `done`, `waiting`, `completed` and `id`".into()),
                        );
                        return err_expr(span);
                    }
                };
                return mk(K::ClientAttr { inst, attr }, ty, span);
            }
            Ty::Client if matches!(name.name.as_str(), "node" | "session" | "seq") => {
                let (f, ty) = match name.name.as_str() {
                    "node" => (Builtin::ClientNode, Ty::Node),
                    "session" => (
                        Builtin::ClientSession,
                        Ty::Tuple(vec![Ty::Int(IntTy::U64), Ty::Int(IntTy::U64)]),
                    ),
                    _ => (Builtin::ClientSeq, Ty::Int(IntTy::U64)),
                };
                return mk(K::Builtin { f, args: vec![b] }, ty, span);
            }
            Ty::Client => {
                let cands = ["session", "seq", "node"].map(String::from).to_vec();
                self.unknown(
                    "field of a client handle:",
                    name,
                    cands,
                    Some("a client handle has `session` (its session, as (epoch, id)), `seq` (the request's number in it) and `node`".into()),
                );
                return err_expr(span);
            }
            Ty::Error => return err_expr(span),
            t => {
                let d = Diagnostic::error(
                    name.span,
                    format!("a value of type `{}` has no fields", self.ty_name(t)),
                )
                .label(format!("no field `{}`", name.name));
                self.error(d);
                return err_expr(span);
            }
        };
        match fields.iter().position(|(n, _)| *n == name.name) {
            Some(i) => {
                let ty = fields[i].1.clone();
                mk(
                    K::Field {
                        base: Box::new(b),
                        index: i,
                    },
                    ty,
                    span,
                )
            }
            None => {
                let owner = self.ty_name(&b.ty);
                let what = if matches!(bt, Ty::Message(_)) {
                    "field of message"
                } else {
                    "field of record"
                };
                let cands = fields.iter().map(|(n, _)| n.clone()).collect();
                self.unknown(&format!("{what} `{owner}`:"), name, cands, None);
                err_expr(span)
            }
        }
    }

    fn is_state(&mut self, e: &ast::Expr, state: &Ident, span: Span) -> ir::Expr {
        let (role, inst) = if matches!(e.kind, A::SelfNode) {
            match self.ctx {
                Ctx::Handler { role, .. } => (role, None),
                _ => {
                    self.error(
                        Diagnostic::error(e.span, "`self is S` is only allowed inside a handler")
                            .label(self.ctx_label()),
                    );
                    return err_expr(span);
                }
            }
        } else {
            let x = self.expr(e, None);
            match (x.ty.resolved(), &x.kind) {
                (Ty::Instance(r), K::Local(l)) => (r, Some(*l)),
                (Ty::Error, _) => return err_expr(span),
                (t, _) => {
                    let d = Diagnostic::error(
                        x.span,
                        format!("`is` tests the state of a role instance, not a `{}`", self.ty_name(&t)),
                    )
                    .label("not a role instance");
                    self.error(d);
                    return err_expr(span);
                }
            }
        };
        let Some(s) = self.spec.roles[role].states.iter().position(|x| x.name == state.name) else {
            let cands = self.spec.roles[role].states.iter().map(|s| s.name.clone()).collect();
            let what = format!("state of role `{}`:", self.spec.roles[role].name);
            self.unknown(&what, state, cands, None);
            return err_expr(span);
        };
        let kind = match inst {
            Some(inst) => K::InstanceIs { inst, role, state: s },
            None => K::SelfIs(s),
        };
        mk(kind, Ty::Bool, span)
    }

    fn binary(
        &mut self,
        op: BinOp,
        op_span: Span,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        expected: Option<&Ty>,
        span: Span,
    ) -> ir::Expr {
        let bin = |op, l, r, ty| {
            mk(
                K::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                },
                ty,
                span,
            )
        };
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies => {
                let l = self.expect_bool(lhs);
                let r = self.expect_bool(rhs);
                bin(op, l, r, Ty::Bool)
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let (l, r) = self.operand_pair(lhs, rhs);
                if !compatible(&l.ty, &r.ty) {
                    let d = Diagnostic::error(
                        op_span,
                        format!(
                            "cannot compare `{}` with `{}`",
                            self.ty_name(&l.ty),
                            self.ty_name(&r.ty)
                        ),
                    )
                    .label("different types")
                    .secondary(l.span, format!("`{}`", self.ty_name(&l.ty)))
                    .secondary(r.span, format!("`{}`", self.ty_name(&r.ty)));
                    self.error(d);
                } else if !matches!(op, BinOp::Eq | BinOp::Ne) && self.has_node(&l.ty) {
                    self.mark_asymmetric(
                        op_span,
                        "ordering values that contain node ids depends on how nodes are numbered",
                    );
                }
                if contains_error(&l.ty) && contains_error(&r.ty) && !l.ty.is_error() && !r.ty.is_error() {
                    let d =
                        Diagnostic::error(span, "cannot infer the types in this comparison").label("annotate one side");
                    self.error(d);
                }
                let (l, r) = (self.fill(l, &r.ty.clone()), self.fill(r, &Ty::Error));
                let r = self.fill(r, &l.ty.clone());
                bin(op, l, r, Ty::Bool)
            }
            BinOp::In => {
                let c = self.expr(rhs, None);
                let want = match c.ty.resolved() {
                    Ty::List(t) | Ty::Set(t) | Ty::Map(t, _) => *t,
                    Ty::Error => Ty::Error,
                    t => {
                        let d = Diagnostic::error(
                            c.span,
                            format!(
                                "`in` needs a `List`, `Set` or `Map` on its right, found `{}`",
                                self.ty_name(&t)
                            ),
                        )
                        .label("not a collection");
                        self.error(d);
                        Ty::Error
                    }
                };
                let x = self.expr(lhs, Some(&want).filter(|t| !t.is_error()));
                let x = self.coerce(x, &want);
                mk(
                    K::Builtin {
                        f: Builtin::Contains,
                        args: vec![c, x],
                    },
                    Ty::Bool,
                    span,
                )
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let want = expected
                    .filter(|t| t.int().is_some() || matches!(t.resolved(), Ty::Set(_) | Ty::List(_) | Ty::Bytes));
                let (l, r) = if is_weak(lhs) && !is_weak(rhs) {
                    let r = self.expr(rhs, want);
                    let l = self.expr(lhs, Some(&r.ty));
                    (l, r)
                } else {
                    let l = self.expr(lhs, want);
                    let r = self.expr(rhs, Some(&l.ty));
                    (l, r)
                };
                let lt = l.ty.resolved();
                match (&lt, op) {
                    (Ty::Error, _) => err_expr(span),
                    (Ty::Int(_), _) => {
                        let r = self.coerce(r, &lt);
                        bin(op, l, r, lt)
                    }
                    (Ty::Set(_), BinOp::Add | BinOp::Sub) | (Ty::List(_) | Ty::Bytes, BinOp::Add) => {
                        let r = self.coerce(r, &lt);
                        bin(op, l, r, lt)
                    }
                    _ => {
                        let d = Diagnostic::error(op_span, format!("`{}` is not defined for `{}`", op.symbol(), self.ty_name(&l.ty)))
                            .label(format!("cannot apply `{}`", op.symbol()))
                            .note("arithmetic works on integers; `+`/`-` also mean union/difference of sets, and `+` concatenates lists and `Bytes`");
                        self.error(d);
                        err_expr(span)
                    }
                }
            }
        }
    }

    /// Checks two operands that must have the same type, typing the one with
    /// a type of its own first.
    fn operand_pair(&mut self, lhs: &ast::Expr, rhs: &ast::Expr) -> (ir::Expr, ir::Expr) {
        if is_weak(lhs) && !is_weak(rhs) {
            let r = self.expr(rhs, None);
            let l = self.expr(lhs, Some(&r.ty));
            (l, r)
        } else {
            let l = self.expr(lhs, None);
            let r = self.expr(rhs, Some(&l.ty));
            (l, r)
        }
    }

    fn fill(&mut self, mut e: ir::Expr, other: &Ty) -> ir::Expr {
        if contains_error(&e.ty) && compatible(&e.ty, other) {
            e.ty = merge(&e.ty, other);
        }
        e
    }

    /// Checks a pattern against the type it matches. `binding` allows
    /// names to bind (always true today; kept for refutability checks).
    pub(super) fn pattern(&mut self, p: &ast::Pattern, ty: &Ty, binding: bool) -> Pat {
        let t = ty.resolved();
        match &p.kind {
            PatternKind::Wildcard => Pat::Wildcard,
            PatternKind::Int(v) => {
                if t.int().is_none() && !t.is_error() {
                    let d = Diagnostic::error(p.span, format!("integer pattern cannot match a `{}`", self.ty_name(ty)))
                        .label("type mismatch");
                    self.error(d);
                }
                Pat::Int(*v as i128)
            }
            PatternKind::Bytes(_) => {
                let d = Diagnostic::error(p.span, "a string literal cannot be a pattern")
                    .label("not a pattern")
                    .note("compare `Bytes` with `==` instead, e.g. `if v == \"a\" { ... }`");
                self.error(d);
                Pat::Wildcard
            }
            PatternKind::Bool(b) => {
                if t != Ty::Bool && !t.is_error() {
                    let d = Diagnostic::error(p.span, format!("boolean pattern cannot match a `{}`", self.ty_name(ty)))
                        .label("type mismatch");
                    self.error(d);
                }
                Pat::Bool(*b)
            }
            PatternKind::Tuple(ps) => match &t {
                Ty::Tuple(ts) if ts.len() == ps.len() => {
                    Pat::Tuple(ps.iter().zip(ts).map(|(p, t)| self.pattern(p, t, binding)).collect())
                }
                Ty::Error => Pat::Tuple(ps.iter().map(|p| self.pattern(p, &Ty::Error, binding)).collect()),
                _ => {
                    let d = Diagnostic::error(
                        p.span,
                        format!(
                            "tuple pattern with {} elements cannot match a `{}`",
                            ps.len(),
                            self.ty_name(ty)
                        ),
                    )
                    .label("type mismatch");
                    self.error(d);
                    Pat::Wildcard
                }
            },
            PatternKind::Ctor { path, args } => self.ctor_pattern(path, args.as_deref(), ty, p.span, binding),
        }
    }

    fn ctor_pattern(
        &mut self,
        path: &ast::Path,
        args: Option<&[ast::Pattern]>,
        ty: &Ty,
        span: Span,
        binding: bool,
    ) -> Pat {
        let t = ty.resolved();
        let sub = |this: &mut Self, tys: &[Ty], name: &str| -> Vec<Pat> {
            let args = args.unwrap_or(&[]);
            if args.len() != tys.len() {
                let d = Diagnostic::error(
                    span,
                    format!(
                        "`{name}` has {} field{}, but the pattern has {}",
                        tys.len(),
                        if tys.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label("wrong number of fields");
                this.error(d);
            }
            args.iter()
                .enumerate()
                .map(|(i, a)| this.pattern(a, tys.get(i).unwrap_or(&Ty::Error), binding))
                .collect()
        };
        if let Some(variant) = &path.second {
            let Some((TypeDef::Enum(id), _)) = self.types.get(&path.first.name).copied() else {
                let cands = self
                    .types
                    .iter()
                    .filter(|(_, (d, _))| matches!(d, TypeDef::Enum(_)))
                    .map(|(n, _)| n.clone())
                    .collect();
                self.unknown("enum", &path.first, cands, None);
                return Pat::Wildcard;
            };
            if t != Ty::Enum(id) && !t.is_error() {
                let d = Diagnostic::error(
                    span,
                    format!(
                        "pattern of enum `{}` cannot match a `{}`",
                        path.first.name,
                        self.ty_name(ty)
                    ),
                )
                .label("type mismatch");
                self.error(d);
            }
            let Some(v) = self.spec.enums[id]
                .variants
                .iter()
                .position(|(n, _)| *n == variant.name)
            else {
                let cands = self.spec.enums[id].variants.iter().map(|(n, _)| n.clone()).collect();
                self.unknown(&format!("variant of `{}`:", path.first.name), variant, cands, None);
                return Pat::Wildcard;
            };
            let tys = self.spec.enums[id].variants[v].1.clone();
            let args = sub(self, &tys, &path.display());
            return Pat::Enum {
                en: id,
                variant: v,
                args,
            };
        }
        let name = path.first.name.as_str();
        match name {
            "None" if args.is_none() => {
                if !matches!(t, Ty::Option(_) | Ty::Error) {
                    let d = Diagnostic::error(span, format!("`None` cannot match a `{}`", self.ty_name(ty)))
                        .label("not an option");
                    self.error(d);
                }
                return Pat::None;
            }
            "Some" => {
                let inner = match &t {
                    Ty::Option(i) => (**i).clone(),
                    Ty::Error => Ty::Error,
                    _ => {
                        let d = Diagnostic::error(span, format!("`Some(..)` cannot match a `{}`", self.ty_name(ty)))
                            .label("not an option");
                        self.error(d);
                        Ty::Error
                    }
                };
                let mut a = sub(self, &[inner], "Some");
                return Pat::Some(Box::new(a.pop().unwrap_or(Pat::Wildcard)));
            }
            _ => {}
        }
        if let Some(&r) = self.replies.get(name) {
            if t == Ty::Reply || t.is_error() {
                let tys = self.spec.service.as_ref().unwrap().replies[r].fields.clone();
                let args = sub(self, &tys, name);
                return Pat::Reply { reply: r, args };
            }
        }
        if let Some(&r) = self.requests.get(name) {
            if t == Ty::Request || t.is_error() {
                let params = self.spec.service.as_ref().unwrap().requests[r].params.clone();
                let tys: Vec<Ty> = params.iter().map(|p| self.spec.locals[*p].ty.clone()).collect();
                let args = sub(self, &tys, name);
                return Pat::Request { req: r, args };
            }
        }
        if args.is_some() {
            let mut cands: Vec<String> = vec!["Some".into()];
            cands.extend(self.replies.keys().cloned());
            cands.extend(self.requests.keys().cloned());
            self.unknown("constructor", &path.first, cands, None);
            return Pat::Wildcard;
        }
        // A plain name binds.
        let local = self.bind(&path.first, ty.clone());
        Pat::Bind(local)
    }

    /// Matches in expressions must cover every value: an uncovered case
    /// would have no value.
    pub(super) fn check_exhaustive<'p>(&mut self, ty: &Ty, pats: impl Iterator<Item = &'p Pat>, span: Span) {
        let pats: Vec<&Pat> = pats.collect();
        if !self.covers(ty, &pats) {
            let d = Diagnostic::error(span, "this `match` does not cover every case")
                .label("some values match no arm")
                .note("add the missing cases or a final `_ => ...` arm");
            self.error(d);
        }
    }

    /// Whether `pats` together match every value of `ty`. This is the usual
    /// algorithm that specializes the patterns by constructor, column by
    /// column, so nested patterns count: `Pair(_, true)` and `Pair(_,
    /// false)` cover `Pair`, and `(true, _)`, `(false, _)` cover a tuple.
    /// Integers are never covered by literals alone. Work is bounded by
    /// `COVER_STEPS_MAX`; past it the match counts as not covered.
    pub(super) fn covers(&self, ty: &Ty, pats: &[&Pat]) -> bool {
        let rows: Vec<Vec<&Pat>> = pats.iter().map(|p| vec![*p]).collect();
        let mut budget = COVER_STEPS_MAX;
        self.covers_rows(&rows, std::slice::from_ref(ty), &mut budget)
    }

    fn covers_rows(&self, rows: &[Vec<&Pat>], tys: &[Ty], budget: &mut usize) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let Some((t, rest_tys)) = tys.split_first() else {
            return !rows.is_empty();
        };
        if rows.is_empty() {
            return false;
        }
        let t = t.resolved();
        let is_wild = |p: &Pat| matches!(p, Pat::Wildcard | Pat::Bind(_));
        // The constructors of `t`, as the types of their fields, for types
        // whose values can be enumerated by constructor.
        let ctors: Option<Vec<Vec<Ty>>> = match &t {
            Ty::Error => return true,
            Ty::Bool => Some(vec![vec![], vec![]]),
            Ty::Option(inner) => Some(vec![vec![], vec![(**inner).clone()]]),
            Ty::Tuple(ts) => Some(vec![ts.clone()]),
            Ty::Enum(id) => Some(self.spec.enums[*id].variants.iter().map(|(_, f)| f.clone()).collect()),
            // A service with sessions also replies `Rejected(..)`, which
            // no pattern names: only a wildcard covers it.
            Ty::Reply => self.spec.service.as_ref().map(|s| {
                let mut c: Vec<Vec<Ty>> = s.replies.iter().map(|r| r.fields.clone()).collect();
                if s.sessions.is_some() {
                    c.push(vec![]);
                }
                c
            }),
            Ty::Request => self.spec.service.as_ref().map(|s| {
                s.requests
                    .iter()
                    .map(|r| r.params.iter().map(|p| self.spec.locals[*p].ty.clone()).collect())
                    .collect()
            }),
            _ => None,
        };
        let ctors = match ctors {
            Some(c) if !rows.iter().all(|r| is_wild(r[0])) => c,
            // Only wildcards can cover this column (or only wildcards are
            // in it): drop it.
            _ => {
                let rest: Vec<Vec<&Pat>> = rows.iter().filter(|r| is_wild(r[0])).map(|r| r[1..].to_vec()).collect();
                return self.covers_rows(&rest, rest_tys, budget);
            }
        };
        ctors.iter().enumerate().all(|(c, fields)| {
            let mut specialized = Vec::new();
            for r in rows {
                // The sub-patterns of row `r` for constructor `c`, or skip
                // the row if its head is another constructor. Ill-typed
                // patterns were reported already; they match nothing here.
                let mut row: Vec<&Pat> = match r[0] {
                    p if is_wild(p) => vec![],
                    Pat::Bool(b) if *b == (c == 0) => vec![],
                    Pat::None if c == 0 => vec![],
                    Pat::Some(p) if c == 1 => vec![&**p],
                    Pat::Tuple(ps) => ps.iter().collect(),
                    Pat::Enum { variant, args, .. } if *variant == c => args.iter().collect(),
                    Pat::Reply { reply, args } if *reply == c => args.iter().collect(),
                    Pat::Request { req, args } if *req == c => args.iter().collect(),
                    _ => continue,
                };
                // Pad with wildcards (a wildcard head; or a pattern of the
                // wrong arity, already reported).
                row.resize(fields.len(), &WILDCARD);
                row.extend_from_slice(&r[1..]);
                specialized.push(row);
            }
            let mut tys = fields.clone();
            tys.extend_from_slice(rest_tys);
            self.covers_rows(&specialized, &tys, budget)
        })
    }

    pub(super) fn handler_ctx_block(&self) -> Option<BlockKind> {
        match self.ctx {
            Ctx::Handler { block, .. } => Some(block),
            _ => None,
        }
    }
}

/// Steps of the coverage check before it gives up (see `covers`).
const COVER_STEPS_MAX: usize = 100_000;
static WILDCARD: Pat = Pat::Wildcard;

pub(super) fn irrefutable(p: &Pat) -> bool {
    match p {
        Pat::Wildcard | Pat::Bind(_) => true,
        Pat::Tuple(ps) => ps.iter().all(irrefutable),
        _ => false,
    }
}
