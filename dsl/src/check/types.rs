//! Type declarations: aliases, records, enums, messages, the service's
//! request/reply types, constants and function signatures.

use super::{AliasState, Checker, Ctx, TypeDef};
use crate::ast::{self, Item, Span, TypeExprKind};
use crate::diag::Diagnostic;
use crate::ir::{self, ConstValue, IntTy, Ty, REJECTED, SESSIONS_MAX};

const BUILTIN_TYPES: &[&str] = &[
    "bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "Node", "Client", "Bytes", "Option", "List", "Set",
    "Map", "Request", "Reply",
];

impl Checker<'_> {
    pub(super) fn declare_types(&mut self) {
        let file = self.file;
        for item in &file.items {
            let (name, def) = match item {
                Item::TypeAlias(a) => {
                    let id = self.spec.aliases.len();
                    self.spec.aliases.push(ir::Alias {
                        name: a.name.name.clone(),
                        ty: Ty::Error,
                        span: a.span,
                    });
                    self.alias_state.push(AliasState::Unresolved);
                    (&a.name, TypeDef::Alias(id))
                }
                Item::Record(r) => {
                    let id = self.spec.records.len();
                    self.spec.records.push(ir::Record {
                        name: r.name.name.clone(),
                        fields: vec![],
                        span: r.span,
                    });
                    (&r.name, TypeDef::Record(id))
                }
                Item::Enum(e) => {
                    let id = self.spec.enums.len();
                    self.spec.enums.push(ir::Enum {
                        name: e.name.name.clone(),
                        variants: vec![],
                        span: e.span,
                    });
                    (&e.name, TypeDef::Enum(id))
                }
                Item::Message(m) => {
                    let id = self.spec.messages.len();
                    self.spec.messages.push(ir::Message {
                        name: m.name.name.clone(),
                        fields: vec![],
                        span: m.span,
                    });
                    self.msg_handled.push(false);
                    self.msg_sent.push(false);
                    (&m.name, TypeDef::Message(id))
                }
                Item::Service(s) => {
                    if self.types.values().any(|(d, _)| *d == TypeDef::Service) {
                        let first = self
                            .types
                            .values()
                            .find(|(d, _)| *d == TypeDef::Service)
                            .map(|x| x.1)
                            .unwrap_or_default();
                        self.error(
                            Diagnostic::error(s.name.span, "a protocol has at most one service")
                                .label("second service")
                                .secondary(first, "first service")
                                .note("the service is what clients call; put every request in one service block"),
                        );
                        continue;
                    }
                    (&s.name, TypeDef::Service)
                }
                _ => continue,
            };
            if BUILTIN_TYPES.contains(&name.name.as_str()) {
                self.error(
                    Diagnostic::error(
                        name.span,
                        format!("`{}` is a built-in type and cannot be redeclared", name.name),
                    )
                    .label("choose another name"),
                );
                continue;
            }
            if let Some((_, first)) = self.types.get(&name.name) {
                let first = *first;
                self.duplicate("type", name, first);
                continue;
            }
            self.types.insert(name.name.clone(), (def, name.span));
        }
    }

    pub(super) fn resolve_type_decls(&mut self) {
        let file = self.file;
        for item in &file.items {
            if let Item::TypeAlias(a) = item {
                if let Some((TypeDef::Alias(id), _)) = self.types.get(&a.name.name).copied() {
                    self.resolve_alias(id);
                }
            }
        }
        for item in &file.items {
            match item {
                Item::Record(r) => {
                    let Some((TypeDef::Record(id), _)) = self.types.get(&r.name.name).copied() else {
                        continue;
                    };
                    let fields = self.fields(&r.fields, "record", &r.name.name);
                    self.spec.records[id].fields = fields;
                }
                Item::Message(m) => {
                    let Some((TypeDef::Message(id), _)) = self.types.get(&m.name.name).copied() else {
                        continue;
                    };
                    let fields = self.fields(&m.fields, "message", &m.name.name);
                    self.spec.messages[id].fields = fields;
                }
                Item::Enum(e) => {
                    let Some((TypeDef::Enum(id), _)) = self.types.get(&e.name.name).copied() else {
                        continue;
                    };
                    let mut variants: Vec<(String, Vec<Ty>)> = Vec::new();
                    let mut spans: Vec<Span> = Vec::new();
                    for v in &e.variants {
                        if let Some(k) = variants.iter().position(|(n, _)| *n == v.name.name) {
                            self.duplicate("variant", &v.name, spans[k]);
                            continue;
                        }
                        let tys = v.fields.iter().map(|t| self.resolve_type(t)).collect();
                        variants.push((v.name.name.clone(), tys));
                        spans.push(v.name.span);
                    }
                    self.spec.enums[id].variants = variants;
                }
                _ => {}
            }
        }
        self.check_finite_types();
    }

    fn fields(&mut self, fields: &[ast::Field], what: &str, owner: &str) -> Vec<(String, Ty)> {
        let mut out: Vec<(String, Ty)> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for f in fields {
            if let Some(k) = out.iter().position(|(n, _)| *n == f.name.name) {
                self.duplicate(&format!("field of {what} `{owner}`:"), &f.name, spans[k]);
                continue;
            }
            let ty = self.resolve_type(&f.ty);
            out.push((f.name.name.clone(), ty));
            spans.push(f.name.span);
        }
        out
    }

    fn resolve_alias(&mut self, id: usize) {
        match self.alias_state[id] {
            AliasState::Done => return,
            AliasState::InProgress => {
                let span = self.spec.aliases[id].span;
                let name = self.spec.aliases[id].name.clone();
                self.error(
                    Diagnostic::error(span, format!("type alias `{name}` refers to itself"))
                        .label("this alias never bottoms out in a real type"),
                );
                self.spec.aliases[id].ty = Ty::Error;
                self.alias_state[id] = AliasState::Done;
                return;
            }
            AliasState::Unresolved => {}
        }
        self.alias_state[id] = AliasState::InProgress;
        let file = self.file;
        let decl = file.items.iter().find_map(|i| match i {
            Item::TypeAlias(a) if a.name.name == self.spec.aliases[id].name => Some(a),
            _ => None,
        });
        let ty = match decl {
            Some(a) => self.resolve_type(&a.ty),
            None => Ty::Error,
        };
        if !matches!(self.alias_state[id], AliasState::Done) {
            self.spec.aliases[id].ty = ty;
            self.alias_state[id] = AliasState::Done;
        }
    }

    /// Resolves a written type. Unknown names become `Ty::Error` after a
    /// diagnostic with a suggestion.
    pub(super) fn resolve_type(&mut self, t: &ast::TypeExpr) -> Ty {
        match &t.kind {
            TypeExprKind::Tuple(items) => {
                if items.len() == 1 {
                    self.error(
                        Diagnostic::error(t.span, "a tuple type needs at least two elements")
                            .label("write the element type without parentheses"),
                    );
                    return Ty::Error;
                }
                if items.is_empty() {
                    self.error(Diagnostic::error(
                        t.span,
                        "the unit type `()` is not a value type in smelt",
                    ));
                    return Ty::Error;
                }
                Ty::Tuple(items.iter().map(|i| self.resolve_type(i)).collect())
            }
            TypeExprKind::Generic(name, args) => {
                let arity = match name.name.as_str() {
                    "Option" | "List" | "Set" => 1,
                    "Map" => 2,
                    _ => {
                        let candidates = ["Option", "List", "Set", "Map"].map(String::from).to_vec();
                        self.unknown(
                            "generic type",
                            name,
                            candidates,
                            Some("the generic types are `Option<T>`, `List<T>`, `Set<T>` and `Map<K, V>`".into()),
                        );
                        return Ty::Error;
                    }
                };
                if args.len() != arity {
                    self.error(
                        Diagnostic::error(
                            t.span,
                            format!(
                                "`{}` takes {arity} type argument{}, found {}",
                                name.name,
                                if arity == 1 { "" } else { "s" },
                                args.len()
                            ),
                        )
                        .label("wrong number of type arguments"),
                    );
                    return Ty::Error;
                }
                let mut a: Vec<Ty> = args.iter().map(|x| self.resolve_type(x)).collect();
                match name.name.as_str() {
                    "Option" => Ty::Option(Box::new(a.remove(0))),
                    "List" => Ty::List(Box::new(a.remove(0))),
                    "Set" => Ty::Set(Box::new(a.remove(0))),
                    _ => {
                        let v = a.remove(1);
                        Ty::Map(Box::new(a.remove(0)), Box::new(v))
                    }
                }
            }
            TypeExprKind::Named(name) => {
                if let Some(i) = IntTy::from_name(&name.name) {
                    return Ty::Int(i);
                }
                match name.name.as_str() {
                    "bool" => return Ty::Bool,
                    "Node" => return Ty::Node,
                    "Client" => return Ty::Client,
                    "Bytes" => return Ty::Bytes,
                    "Request" | "Reply" => {
                        if self.spec.service.is_none() && !self.types.values().any(|(d, _)| *d == TypeDef::Service) {
                            self.error(
                                Diagnostic::error(name.span, format!("`{}` needs a `service` block", name.name))
                                    .label("this protocol declares no service")
                                    .note("`Request` and `Reply` are the request and reply types of the protocol's service"),
                            );
                            return Ty::Error;
                        }
                        return if name.name == "Request" { Ty::Request } else { Ty::Reply };
                    }
                    "Option" | "List" | "Set" | "Map" => {
                        self.error(
                            Diagnostic::error(name.span, format!("`{}` needs type arguments", name.name))
                                .label(format!("write `{}<...>`", name.name)),
                        );
                        return Ty::Error;
                    }
                    _ => {}
                }
                match self.types.get(&name.name).copied() {
                    Some((TypeDef::Alias(id), _)) => {
                        self.resolve_alias(id);
                        let inner = self.spec.aliases[id].ty.clone();
                        if inner.is_error() {
                            Ty::Error
                        } else {
                            Ty::Alias(id, Box::new(inner))
                        }
                    }
                    Some((TypeDef::Record(id), _)) => Ty::Record(id),
                    Some((TypeDef::Enum(id), _)) => Ty::Enum(id),
                    Some((TypeDef::Message(id), _)) => Ty::Message(id),
                    Some((TypeDef::Service, _)) => Ty::Service,
                    None => {
                        let mut candidates: Vec<String> = self.types.keys().cloned().collect();
                        candidates.extend(BUILTIN_TYPES.iter().map(|s| s.to_string()));
                        self.unknown("type", name, candidates, None);
                        Ty::Error
                    }
                }
            }
        }
    }

    /// Records and enums may not contain themselves except through a
    /// collection (which the generated Rust stores on the heap).
    fn check_finite_types(&mut self) {
        let n_rec = self.spec.records.len();
        let n = n_rec + self.spec.enums.len();
        // 0 = unvisited, 1 = on stack, 2 = done
        let mut mark = vec![0u8; n];
        for start in 0..n {
            if mark[start] == 0 {
                if let Some(cycle_at) = self.finite_visit(start, &mut mark) {
                    let (name, span) = if cycle_at < n_rec {
                        (
                            self.spec.records[cycle_at].name.clone(),
                            self.spec.records[cycle_at].span,
                        )
                    } else {
                        let e = &self.spec.enums[cycle_at - n_rec];
                        (e.name.clone(), e.span)
                    };
                    self.error(
                        Diagnostic::error(span, format!("type `{name}` contains itself"))
                            .label("infinitely large type")
                            .note("a type may refer to itself only inside a `List`, `Set` or `Map`"),
                    );
                }
            }
        }
    }

    fn finite_visit(&self, node: usize, mark: &mut Vec<u8>) -> Option<usize> {
        mark[node] = 1;
        let n_rec = self.spec.records.len();
        let tys: Vec<Ty> = if node < n_rec {
            self.spec.records[node].fields.iter().map(|(_, t)| t.clone()).collect()
        } else {
            self.spec.enums[node - n_rec]
                .variants
                .iter()
                .flat_map(|(_, ts)| ts.clone())
                .collect()
        };
        let mut direct = Vec::new();
        for t in &tys {
            direct_members(t, n_rec, &mut direct);
        }
        for d in direct {
            if mark[d] == 1 {
                mark[node] = 2;
                return Some(d);
            }
            if mark[d] == 0 {
                if let Some(c) = self.finite_visit(d, mark) {
                    mark[node] = 2;
                    return Some(c);
                }
            }
        }
        mark[node] = 2;
        None
    }

    pub(super) fn declare_service(&mut self) {
        let file = self.file;
        let Some(svc) = file.items.iter().find_map(|i| match i {
            Item::Service(s) => Some(s),
            _ => None,
        }) else {
            return;
        };
        let sessions = match svc.sessions {
            Some((n, span)) if !(1..=SESSIONS_MAX as u128).contains(&n) => {
                self.error(
                    Diagnostic::error(
                        span,
                        format!("the session table holds between 1 and {SESSIONS_MAX} sessions, not {n}"),
                    )
                    .label("out of range"),
                );
                // Still a service with sessions, so its uses are checked
                // as such (one error, not one per use).
                Some(n.clamp(1, SESSIONS_MAX as u128) as u64)
            }
            Some((n, _)) => Some(n as u64),
            None => None,
        };
        for &span in &svc.extra_sessions {
            let first = svc.sessions.map(|(_, s)| s).unwrap_or(span);
            self.error(
                Diagnostic::error(span, "`sessions` is declared twice")
                    .label("second declaration")
                    .secondary(first, "first declared here"),
            );
        }
        let mut service = ir::Service {
            name: svc.name.name.clone(),
            sessions,
            vars: vec![],
            requests: vec![],
            replies: vec![],
            span: svc.span,
        };
        // Reply variants may be shared by several requests, with the same payload.
        for r in &svc.requests {
            let mut reply_ids = Vec::new();
            for sig in &r.replies {
                let tys: Vec<Ty> = sig.fields.iter().map(|t| self.resolve_type(t)).collect();
                if sig.name.name == REJECTED && svc.sessions.is_some() {
                    self.error(
                        Diagnostic::error(sig.name.span, format!("`{REJECTED}` is the session table's reply"))
                            .label("reserved in a service with `sessions`")
                            .note("the service replies `Rejected` to requests it refuses (an expired session, a stale or reused sequence number); rename this reply"),
                    );
                }
                if let Some(&id) = self.replies.get(&sig.name.name) {
                    let prev: &ir::ReplyVariant = &service.replies[id];
                    if prev.fields.iter().map(Ty::resolved).ne(tys.iter().map(Ty::resolved)) {
                        let prev_span = prev.span;
                        self.error(
                            Diagnostic::error(
                                sig.span,
                                format!("reply `{}` is declared with two different payloads", sig.name.name),
                            )
                            .label("this payload")
                            .secondary(prev_span, "differs from this one"),
                        );
                    }
                    reply_ids.push(id);
                } else {
                    let id = service.replies.len();
                    service.replies.push(ir::ReplyVariant {
                        name: sig.name.name.clone(),
                        fields: tys,
                        span: sig.span,
                    });
                    self.replies.insert(sig.name.name.clone(), id);
                    reply_ids.push(id);
                }
            }
            if let Some(&first) = self.requests.get(&r.name.name) {
                let span = service.requests[first].span;
                self.duplicate("request", &r.name, span);
                continue;
            }
            if self.replies.contains_key(&r.name.name) {
                self.error(
                    Diagnostic::error(r.name.span, format!("`{}` is both a request and a reply", r.name.name))
                        .label("rename one of them"),
                );
            }
            let params = r
                .params
                .iter()
                .map(|p| {
                    let ty = self.resolve_type(&p.ty);
                    self.new_local(&p.name.name, ty, p.name.span)
                })
                .collect();
            self.requests.insert(r.name.name.clone(), service.requests.len());
            service.requests.push(ir::Request {
                name: r.name.name.clone(),
                params,
                replies: reply_ids,
                body: vec![],
                span: r.span,
            });
        }
        for v in &svc.vars {
            if let Some(prev) = service.vars.iter().find(|x| x.name == v.name.name) {
                let span = prev.span;
                self.duplicate("service variable", &v.name, span);
                continue;
            }
            let ty = self.resolve_type(&v.ty);
            if v.durable {
                self.error(
                    Diagnostic::error(v.span, "service variables cannot be `durable`")
                        .label("use `var`")
                        .note("a service is a sequential specification; durability belongs to the roles that implement it"),
                );
            }
            if v.ghost {
                self.error(
                    Diagnostic::error(v.span, "service variables cannot be `ghost`")
                        .label("use `var`")
                        .note("ghost variables record history for properties; declare them in a role"),
                );
            }
            service.vars.push(ir::Var {
                name: v.name.name.clone(),
                ty,
                durable: false,
                ghost: false,
                init: placeholder(v.span),
                span: v.span,
            });
        }
        self.spec.service = Some(service);
    }

    pub(super) fn check_consts(&mut self) {
        let file = self.file;
        for item in &file.items {
            let Item::Const(c) = item else { continue };
            if let Some(&first) = self.consts.get(&c.name.name) {
                let span = self.spec.consts[first].span;
                self.duplicate("constant", &c.name, span);
                continue;
            }
            let ty = self.resolve_type(&c.ty);
            let value = self.in_ctx(Ctx::Static, |this| {
                let e = this.expr(&c.value, Some(&ty));
                let e = this.coerce(e, &ty);
                this.const_eval(&e)
            });
            let value = match (value, ty.resolved()) {
                (Some(ConstValue::Int(v)), Ty::Int(i)) if v < i.min() || v > i.max() => {
                    self.error(
                        Diagnostic::error(c.value.span, format!("the value {v} does not fit in `{}`", i.name()))
                            .label("out of range"),
                    );
                    ConstValue::Int(0)
                }
                (Some(v), Ty::Int(_) | Ty::Bool | Ty::Bytes) => v,
                (_, Ty::Error) => ConstValue::Int(0),
                (Some(_), _) | (None, Ty::Int(_) | Ty::Bool | Ty::Bytes) => {
                    self.error(
                        Diagnostic::error(
                            c.value.span,
                            "a constant must be an integer, boolean or `Bytes` expression over literals and other constants",
                        )
                        .label("not a constant expression"),
                    );
                    ConstValue::Int(0)
                }
                (None, _) => {
                    self.error(
                        Diagnostic::error(c.ty.span, "constants must have an integer, `bool` or `Bytes` type")
                            .label("unsupported constant type"),
                    );
                    ConstValue::Int(0)
                }
            };
            self.consts.insert(c.name.name.clone(), self.spec.consts.len());
            self.spec.consts.push(ir::Const {
                name: c.name.name.clone(),
                ty,
                value,
                span: c.span,
            });
        }
    }

    /// Evaluates a checked constant expression. `None` if it is not constant
    /// or its evaluation fails (overflow, division by zero).
    fn const_eval(&mut self, e: &ir::Expr) -> Option<ConstValue> {
        use crate::ast::{BinOp, UnOp};
        use ir::ExprKind as K;
        Some(match &e.kind {
            K::Int(v) => ConstValue::Int(*v),
            K::Bool(b) => ConstValue::Bool(*b),
            K::Bytes(b) => ConstValue::Bytes(b.clone()),
            K::Const(id) => self.spec.consts.get(*id)?.value.clone(),
            K::Unary { op, expr } => match (op, self.const_eval(expr)?) {
                (UnOp::Neg, ConstValue::Int(v)) => ConstValue::Int(-v),
                (UnOp::Not, ConstValue::Bool(b)) => ConstValue::Bool(!b),
                _ => return None,
            },
            K::Binary { op, lhs, rhs } => {
                let (l, r) = (self.const_eval(lhs)?, self.const_eval(rhs)?);
                match (l, r) {
                    (ConstValue::Int(a), ConstValue::Int(b)) => match op {
                        BinOp::Add => ConstValue::Int(a.checked_add(b)?),
                        BinOp::Sub => ConstValue::Int(a.checked_sub(b)?),
                        BinOp::Mul => ConstValue::Int(a.checked_mul(b)?),
                        BinOp::Div => ConstValue::Int(a.checked_div(b)?),
                        BinOp::Rem => ConstValue::Int(a.checked_rem(b)?),
                        _ => ConstValue::Bool(compare(*op, &a, &b)?),
                    },
                    (ConstValue::Bytes(a), ConstValue::Bytes(b)) => ConstValue::Bool(compare(*op, &a, &b)?),
                    (ConstValue::Bool(a), ConstValue::Bool(b)) => match op {
                        BinOp::And => ConstValue::Bool(a && b),
                        BinOp::Or => ConstValue::Bool(a || b),
                        BinOp::Implies => ConstValue::Bool(!a || b),
                        BinOp::Eq => ConstValue::Bool(a == b),
                        BinOp::Ne => ConstValue::Bool(a != b),
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    pub(super) fn declare_fns(&mut self) {
        let file = self.file;
        for item in &file.items {
            let Item::Fn(f) = item else { continue };
            if let Some(&first) = self.fns.get(&f.name.name) {
                let span = self.spec.fns[first].span;
                self.duplicate("function", &f.name, span);
                continue;
            }
            let mut params = Vec::new();
            for p in &f.params {
                let ty = self.resolve_type(&p.ty);
                params.push(self.new_local(&p.name.name, ty, p.name.span));
            }
            let ret = self.resolve_type(&f.ret);
            self.fns.insert(f.name.name.clone(), self.spec.fns.len());
            self.spec.fns.push(ir::Function {
                name: f.name.name.clone(),
                params,
                ret,
                lets: vec![],
                body: placeholder(f.span),
                span: f.span,
            });
            self.fn_calls.push(vec![]);
        }
    }

    pub(super) fn check_fn_bodies(&mut self) {
        let file = self.file;
        for item in &file.items {
            let Item::Fn(f) = item else { continue };
            let Some(&id) = self.fns.get(&f.name.name) else {
                continue;
            };
            if self.spec.fns[id].span != f.span {
                continue; // a duplicate
            }
            let params = self.spec.fns[id].params.clone();
            let ret = self.spec.fns[id].ret.clone();
            self.current_fn = Some(id);
            let (lets, body) = self.in_ctx(Ctx::Function, |this| {
                for (p, decl) in params.iter().zip(&f.params) {
                    this.scopes.last_mut().unwrap().push((decl.name.name.clone(), *p));
                }
                let mut lets = Vec::new();
                for l in &f.lets {
                    let want = l.ty.as_ref().map(|t| this.resolve_type(t));
                    let value = this.expr(&l.value, want.as_ref());
                    let value = match &want {
                        Some(w) => this.coerce(value, w),
                        None => value,
                    };
                    let pat = this.pattern(&l.pat, &value.ty.clone(), true);
                    lets.push((pat, value));
                }
                let body = this.expr(&f.body, Some(&ret));
                let body = this.coerce(body, &ret);
                (lets, body)
            });
            self.current_fn = None;
            self.spec.fns[id].lets = lets;
            self.spec.fns[id].body = body;
        }
        // Functions must not recurse: they are total by construction. Each
        // cycle is reported once, from its function with the lowest index,
        // with every call on it.
        for start in 0..self.spec.fns.len() {
            // The DFS path; each entry is a function and the number of its
            // calls taken so far (the last one taken leads to the next entry).
            let mut stack = vec![(start, 0usize)];
            let mut seen = vec![false; self.spec.fns.len()];
            while let Some(&(f, i)) = stack.last() {
                if i >= self.fn_calls[f].len() {
                    stack.pop();
                    continue;
                }
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let (g, _) = self.fn_calls[f][i];
                if g == start {
                    let path: Vec<(usize, Span)> = stack.iter().map(|&(h, k)| (h, self.fn_calls[h][k - 1].1)).collect();
                    if path.iter().all(|&(h, _)| h >= start) {
                        self.report_recursion(&path);
                    }
                    break;
                }
                if !seen[g] {
                    seen[g] = true;
                    stack.push((g, 0));
                }
            }
        }
    }

    /// `path`: the functions of a call cycle, each with the span of its call
    /// to the next (the last calls the first).
    fn report_recursion(&mut self, path: &[(usize, Span)]) {
        let name = |i: usize| self.spec.fns[path[i % path.len()].0].name.clone();
        let mut d = if path.len() == 1 {
            Diagnostic::error(path[0].1, format!("function `{}` calls itself", name(0))).label("recursive call")
        } else {
            let through: Vec<String> = (1..path.len()).map(|i| format!("`{}`", name(i))).collect();
            Diagnostic::error(
                path[0].1,
                format!("function `{}` calls itself through {}", name(0), through.join(", ")),
            )
            .label(format!("calls `{}`", name(1)))
        };
        for (i, &(_, span)) in path.iter().enumerate().skip(1) {
            d = d.secondary(span, format!("`{}` calls `{}`", name(i), name(i + 1)));
        }
        self.error(d.note("functions must not recurse; use a quantifier, comprehension or aggregate instead"));
    }

    /// A human-readable type name, keeping alias names.
    pub(super) fn ty_name(&self, t: &Ty) -> String {
        match t {
            Ty::Bool => "bool".into(),
            Ty::Int(i) => i.name().into(),
            Ty::Node => "Node".into(),
            Ty::Client => "Client".into(),
            Ty::Bytes => "Bytes".into(),
            Ty::Option(t) => format!("Option<{}>", self.ty_name(t)),
            Ty::Tuple(ts) => format!(
                "({})",
                ts.iter().map(|t| self.ty_name(t)).collect::<Vec<_>>().join(", ")
            ),
            Ty::List(t) => format!("List<{}>", self.ty_name(t)),
            Ty::Set(t) => format!("Set<{}>", self.ty_name(t)),
            Ty::Map(k, v) => format!("Map<{}, {}>", self.ty_name(k), self.ty_name(v)),
            Ty::Record(id) => self.spec.records[*id].name.clone(),
            Ty::Enum(id) => self.spec.enums[*id].name.clone(),
            Ty::Message(id) => self.spec.messages[*id].name.clone(),
            Ty::Request => "Request".into(),
            Ty::Reply => "Reply".into(),
            Ty::Service => self
                .spec
                .service
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_else(|| "service".into()),
            Ty::Alias(id, _) => self.spec.aliases[*id].name.clone(),
            Ty::Instance(r) => format!("instance of role `{}`", self.spec.roles[*r].name),
            Ty::ClientInstance => "client instance".into(),
            Ty::Error => "_".into(),
        }
    }
}

/// Record/enum indices (records first, then enums) that `t` contains
/// without going through a collection.
fn direct_members(t: &Ty, n_rec: usize, out: &mut Vec<usize>) {
    match t {
        Ty::Record(id) => out.push(*id),
        Ty::Enum(id) => out.push(n_rec + id),
        Ty::Option(t) | Ty::Alias(_, t) => direct_members(t, n_rec, out),
        Ty::Tuple(ts) => ts.iter().for_each(|t| direct_members(t, n_rec, out)),
        _ => {}
    }
}

/// A dummy expression for declarations whose body is checked later.
pub(super) fn placeholder(span: Span) -> ir::Expr {
    ir::Expr {
        kind: ir::ExprKind::Bool(false),
        ty: Ty::Bool,
        span,
    }
}

/// A comparison of two constants of one ordered type (`None`: not a
/// comparison operator).
fn compare<T: Ord>(op: crate::ast::BinOp, a: &T, b: &T) -> Option<bool> {
    use crate::ast::BinOp;
    Some(match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        _ => return None,
    })
}
