//! Statements: what each one may do, where, and to which variables.

use super::expr::{compatible, contains_error, element_type};
use super::{BlockKind, Checker, Ctx};
use crate::ast::{self, AssignOp, BinOp, PlaceElem, Span, StmtKind as S};
use crate::diag::Diagnostic;
use crate::ir::{self, ExprKind as K, Mutation, StmtKind as I, Target, TargetElem, TargetRoot, Ty};

/// Where a block sits, for the statements that care.
#[derive(Clone, Copy, Debug)]
pub(super) struct BlockInfo {
    /// The state whose handler or entry block this is, if any.
    pub state: Option<usize>,
}

impl Checker<'_> {
    pub(super) fn block(&mut self, b: &ast::Block, info: BlockInfo) -> Vec<ir::Stmt> {
        self.push_scope();
        let mut out = Vec::new();
        let mut ended: Option<Span> = None;
        for s in &b.stmts {
            if let Some(end) = ended.take() {
                let d = Diagnostic::warning(s.span, "unreachable statement")
                    .label("never runs")
                    .secondary(end, "the handler ends here");
                self.error(d);
            }
            if matches!(s.kind, S::Goto(_) | S::Return) {
                ended = Some(s.span);
            }
            if let Some(st) = self.stmt(s, info) {
                out.push(st);
            }
        }
        self.pop_scope();
        out
    }

    fn need_role(&mut self, span: Span, what: &str) -> Option<usize> {
        match self.ctx {
            Ctx::Handler { role, .. } => Some(role),
            _ => {
                let d = Diagnostic::error(span, format!("`{what}` is only allowed in a role's handlers"))
                    .label(format!("not allowed {}", self.ctx_label_short()));
                self.error(d);
                None
            }
        }
    }

    fn ctx_label_short(&self) -> &'static str {
        match self.ctx {
            Ctx::Handler { .. } => "here",
            Ctx::VarInit { .. } => "in an initializer",
            Ctx::Service => "in a service",
            Ctx::Function => "in a function",
            Ctx::Property => "in a property",
            Ctx::Static => "here",
        }
    }

    fn stmt(&mut self, s: &ast::Stmt, info: BlockInfo) -> Option<ir::Stmt> {
        let span = s.span;
        let kind = match &s.kind {
            S::Let { pat, ty, value } => {
                let want = ty.as_ref().map(|t| self.resolve_type(t));
                let before = self.diags.len();
                let v = self.expr(value, want.as_ref());
                let v = match &want {
                    Some(w) => self.coerce(v, w),
                    None => v,
                };
                if contains_error(&v.ty) && self.diags.len() == before {
                    let d = Diagnostic::error(value.span, "cannot infer the type of this value")
                        .label("type unknown")
                        .note("annotate the binding, e.g. `let x: Option<u64> = None`");
                    self.error(d);
                }
                let ty = v.ty.clone();
                let pat = self.pattern(pat, &ty, true);
                if !super::expr::irrefutable(&pat) {
                    let d = Diagnostic::error(span, "`let` needs a pattern that always matches")
                        .label("use `match` for patterns that may fail");
                    self.error(d);
                }
                I::Let { pat, value: v }
            }
            S::Assign { place, op, value } => {
                let target = self.target(place)?;
                self.ghost_ok = self.is_ghost(&target);
                let v = self.expr(value, Some(&target.ty));
                self.ghost_ok = false;
                let v = self.coerce(v, &target.ty);
                let v = match op {
                    AssignOp::Set => v,
                    AssignOp::Add | AssignOp::Sub => {
                        if target.ty.int().is_none() && !matches!(target.ty.resolved(), Ty::Set(_) | Ty::Error) {
                            let d = Diagnostic::error(
                                place.span,
                                format!(
                                    "`{}=` needs an integer or set, found `{}`",
                                    if *op == AssignOp::Add { "+" } else { "-" },
                                    self.ty_name(&target.ty)
                                ),
                            )
                            .label("not a number");
                            self.error(d);
                        }
                        let read = self.target_read(&target);
                        let bop = if *op == AssignOp::Add { BinOp::Add } else { BinOp::Sub };
                        ir::Expr {
                            kind: K::Binary {
                                op: bop,
                                lhs: Box::new(read),
                                rhs: Box::new(v),
                            },
                            ty: target.ty.resolved(),
                            span,
                        }
                    }
                };
                I::Assign { target, value: v }
            }
            S::Call { place, args } => {
                let Some(PlaceElem::Field(method)) = place.path.last() else {
                    let d = Diagnostic::error(place.span, "expected a statement")
                        .label("a call statement looks like `log.push(x)`");
                    self.error(d);
                    return None;
                };
                let method = method.clone();
                let base = ast::Place {
                    base: place.base.clone(),
                    path: place.path[..place.path.len() - 1].to_vec(),
                    span: place.span,
                };
                let target = self.target(&base)?;
                self.mutation(target, &method, args, span)?
            }
            S::If { cond, then, els } => {
                let c = self.expr(cond, Some(&Ty::Bool));
                let c = self.coerce(c, &Ty::Bool);
                let t = self.block(then, info);
                let e = match els {
                    None => vec![],
                    Some(st) => match &st.kind {
                        S::Block(b) => self.block(b, info),
                        _ => self.stmt(st, info).into_iter().collect(),
                    },
                };
                I::If {
                    cond: c,
                    then: t,
                    els: e,
                }
            }
            S::Block(b) => {
                let stmts = self.block(b, info);
                I::If {
                    cond: ir::Expr {
                        kind: K::Bool(true),
                        ty: Ty::Bool,
                        span,
                    },
                    then: stmts,
                    els: vec![],
                }
            }
            S::For { pat, iter, body } => {
                self.push_scope();
                let it = self.expr(iter, None);
                let elem = self.iter_elem(&it);
                let pat = self.pattern(pat, &elem, true);
                if !super::expr::irrefutable(&pat) {
                    let d = Diagnostic::error(pat_span(&pat, span), "`for` needs a pattern that always matches")
                        .label("refutable");
                    self.error(d);
                }
                let body = self.block(body, info);
                self.pop_scope();
                // Sets and maps are visited in id order; a list in its own
                // order, which a permutation of the servers preserves (the
                // places where id order could enter a list, such as
                // `m.values()` or a comprehension over a set, are checked
                // where the list is made).
                let id_ordered = matches!(it.ty.resolved(), Ty::Set(_) | Ty::Map(..));
                if id_ordered
                    && self.has_node(&elem)
                    && !order_insensitive(&body, &bound_locals(&pat))
                    && self.spec.asymmetry.is_none()
                {
                    self.spec.symmetric = false;
                    self.spec.asymmetry = Some((
                        iter.span,
                        "this loop visits nodes in id order and its effect may depend on that order".into(),
                    ));
                }
                I::For { pat, iter: it, body }
            }
            S::Match { scrutinee, arms } => {
                let sc = self.expr(scrutinee, None);
                let mut out = Vec::new();
                for a in arms {
                    self.push_scope();
                    let p = self.pattern(&a.pat, &sc.ty, true);
                    let b = self.block(&a.body, info);
                    self.pop_scope();
                    out.push((p, b));
                }
                I::Match {
                    scrutinee: sc,
                    arms: out,
                }
            }
            S::Send { dst, msg, early } => {
                self.need_role(span, "send")?;
                let d = self.expr(dst, Some(&Ty::Node));
                let d = self.coerce(d, &Ty::Node);
                let m = self.message_expr(msg)?;
                I::Send {
                    dst: d,
                    msg: m,
                    early: *early,
                }
            }
            S::Broadcast { dsts, msg, early } => {
                self.need_role(span, "broadcast")?;
                let d = self.expr(dsts, Some(&Ty::Set(Box::new(Ty::Node))));
                match d.ty.resolved() {
                    Ty::Set(t) | Ty::List(t) if compatible(&t, &Ty::Node) => {}
                    Ty::Error => {}
                    t => {
                        let dd = Diagnostic::error(
                            d.span,
                            format!("`broadcast` needs a set of nodes, found `{}`", self.ty_name(&t)),
                        )
                        .label("not a set of nodes");
                        self.error(dd);
                    }
                }
                let m = self.message_expr(msg)?;
                I::Broadcast {
                    dsts: d,
                    msg: m,
                    early: *early,
                }
            }
            S::Goto(state) => {
                let role = self.need_role(span, "goto")?;
                if self.handler_ctx_block() == Some(BlockKind::Exit) {
                    let d = Diagnostic::error(span, "`goto` is not allowed in an `exit` block")
                        .label("the node is already leaving this state");
                    self.error(d);
                }
                let Some(t) = self.spec.roles[role].states.iter().position(|s| s.name == state.name) else {
                    let cands = self.spec.roles[role].states.iter().map(|s| s.name.clone()).collect();
                    let what = format!("state of role `{}`:", self.spec.roles[role].name);
                    self.unknown(&what, state, cands, None);
                    return None;
                };
                let from = info.state.unwrap_or(usize::MAX);
                self.goto_targets[role].push((from, t));
                I::Goto(t)
            }
            S::Set(timer) | S::Cancel(timer) => {
                let role = self.need_role(span, if matches!(s.kind, S::Set(_)) { "set" } else { "cancel" })?;
                let Some(t) = self.spec.roles[role].timers.iter().position(|x| x.name == timer.name) else {
                    let cands = self.spec.roles[role].timers.iter().map(|t| t.name.clone()).collect();
                    let what = format!("timer of role `{}`:", self.spec.roles[role].name);
                    self.unknown(
                        &what,
                        timer,
                        cands,
                        Some("declare it in the role: `timer name: 100ms..200ms`".into()),
                    );
                    return None;
                };
                if matches!(s.kind, S::Set(_)) {
                    I::SetTimer(t)
                } else {
                    I::CancelTimer(t)
                }
            }
            S::Reply { target: Some(c), value } if self.ctx == Ctx::Service => {
                // The service answers its caller; there is no client to name.
                let d = Diagnostic::error(c.span, "a service request replies without naming a client")
                    .label("remove this")
                    .note("in a service, write `reply Value(...)`; `reply c Value(...)` is for role handlers");
                self.error(d);
                let v = self.expr(value, Some(&Ty::Reply));
                let v = self.coerce(v, &Ty::Reply);
                I::ServiceReply(v)
            }
            S::Reply { target: Some(c), value } => {
                self.need_role(span, "reply")?;
                let c = self.expr(c, Some(&Ty::Client));
                let c = self.coerce(c, &Ty::Client);
                let v = self.expr(value, Some(&Ty::Reply));
                let v = self.coerce(v, &Ty::Reply);
                I::Reply { client: c, value: v }
            }
            S::Reply { target: None, value } => {
                if self.ctx != Ctx::Service {
                    let d = Diagnostic::error(span, "`reply` in a role needs the client: `reply c Reply(...)`")
                        .label("whom to reply to?")
                        .note("bind the client with `on request Put(v) from c`");
                    self.error(d);
                    return None;
                }
                let v = self.expr(value, Some(&Ty::Reply));
                let v = self.coerce(v, &Ty::Reply);
                I::ServiceReply(v)
            }
            S::Redirect { client, to } => {
                self.need_role(span, "redirect")?;
                let c = self.expr(client, Some(&Ty::Client));
                let c = self.coerce(c, &Ty::Client);
                let opt = Ty::Option(Box::new(Ty::Node));
                let t = self.expr(to, Some(&opt));
                let t = if compatible(&t.ty, &Ty::Node) && !t.ty.is_error() {
                    let sp = t.span;
                    ir::Expr {
                        kind: K::Some(Box::new(t)),
                        ty: opt,
                        span: sp,
                    }
                } else {
                    self.coerce(t, &opt)
                };
                I::Redirect { client: c, to: t }
            }
            S::Choose { choice, options } => {
                let role = self.need_role(span, "choose")?;
                let Some(c) = self.spec.roles[role].choices.iter().position(|x| x.name == choice.name) else {
                    let cands = self.spec.roles[role].choices.iter().map(|c| c.name.clone()).collect();
                    self.unknown(
                        "choice",
                        choice,
                        cands,
                        Some("declare it in the role: `choice name: Type`".into()),
                    );
                    return None;
                };
                let ct = self.spec.roles[role].choices[c].ty.clone();
                let o = self.expr(options, Some(&Ty::Set(Box::new(ct.clone()))));
                match element_type(&o.ty) {
                    Some(e) if compatible(&e, &ct) && !matches!(o.ty.resolved(), Ty::Map(..)) => {}
                    _ => {
                        let d = Diagnostic::error(
                            o.span,
                            format!(
                                "`choose {}` needs a set or list of `{}`, found `{}`",
                                choice.name,
                                self.ty_name(&ct),
                                self.ty_name(&o.ty)
                            ),
                        )
                        .label("wrong options");
                        self.error(d);
                    }
                }
                I::Choose { choice: c, options: o }
            }
            S::Assert(e) => {
                let c = self.expr(e, Some(&Ty::Bool));
                let c = self.coerce(c, &Ty::Bool);
                let text = self.file_text_hint(e);
                I::Assert { cond: c, text }
            }
            S::Return => I::Return,
        };
        Some(ir::Stmt { kind, span })
    }

    /// The source text of an expression, for messages at run time.
    fn file_text_hint(&self, e: &ast::Expr) -> String {
        self.src
            .get(e.span.range())
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn message_expr(&mut self, msg: &ast::Expr) -> Option<ir::Expr> {
        let m = self.expr(msg, None);
        match m.ty.resolved() {
            Ty::Message(id) => {
                self.msg_sent[id] = true;
                Some(m)
            }
            Ty::Error => None,
            t => {
                let d = Diagnostic::error(
                    m.span,
                    format!("only messages can be sent, found a `{}`", self.ty_name(&t)),
                )
                .label("not a message")
                .note("declare it with `message Name { ... }`");
                self.error(d);
                None
            }
        }
    }

    /// Resolves an assignable place: a role variable in a handler or a
    /// service variable in a request, then fields and indices into it.
    fn target(&mut self, place: &ast::Place) -> Option<Target> {
        let name = &place.base;
        if let Some(l) = self.lookup_local(&name.name) {
            let decl = self.spec.locals[l].span;
            let d = Diagnostic::error(
                name.span,
                format!("cannot assign to `{}`: it is a local binding", name.name),
            )
            .label("immutable")
            .secondary(decl, "bound here")
            .note("locals are immutable; keep state in a `var` of the role");
            self.error(d);
            return None;
        }
        let (root, mut ty) = match self.ctx {
            Ctx::Handler { role, block } => {
                let Some(v) = self.spec.roles[role].vars.iter().position(|x| x.name == name.name) else {
                    return self.unknown_target(name);
                };
                let var = self.spec.roles[role].vars[v].clone();
                // A durable ghost is the checker's observation, not state the
                // deployed node recovers: `init` may count starts in one.
                if block == BlockKind::Init && var.durable && !var.ghost {
                    let vs = var.span;
                    let d = Diagnostic::error(place.span, format!("`init` assigns durable variable `{}`", name.name))
                        .label("would overwrite the recovered value")
                        .secondary(vs, "declared `durable` here")
                        .note("`init` runs on every start, including recovery after a crash; give the durable variable its initial value in its declaration");
                    self.error(d);
                }
                (TargetRoot::Var(v), var.ty.clone())
            }
            Ctx::Service => {
                let s = self.spec.service.as_ref()?;
                let Some(v) = s.vars.iter().position(|x| x.name == name.name) else {
                    return self.unknown_target(name);
                };
                (TargetRoot::ServiceVar(v), s.vars[v].ty.clone())
            }
            Ctx::Property => {
                let d = Diagnostic::error(place.span, "properties only read state; they cannot assign")
                    .label("assignment in a property");
                self.error(d);
                return None;
            }
            _ => {
                if self.consts.contains_key(&name.name) {
                    let d = Diagnostic::error(name.span, format!("cannot assign to constant `{}`", name.name))
                        .label("constant");
                    self.error(d);
                    return None;
                }
                let d = Diagnostic::error(
                    place.span,
                    format!("assignment is not allowed {}", self.ctx_label_short()),
                )
                .label("no state to assign here");
                self.error(d);
                return None;
            }
        };
        let mut path = Vec::new();
        for elem in &place.path {
            let t = ty.resolved();
            match elem {
                PlaceElem::Field(f) => {
                    let fields = match &t {
                        Ty::Record(id) => self.spec.records[*id].fields.clone(),
                        Ty::Error => return None,
                        _ => {
                            let d = Diagnostic::error(
                                f.span,
                                format!("a value of type `{}` has no fields", self.ty_name(&ty)),
                            )
                            .label(format!("no field `{}`", f.name));
                            self.error(d);
                            return None;
                        }
                    };
                    let Some(i) = fields.iter().position(|(n, _)| *n == f.name) else {
                        let owner = self.ty_name(&ty);
                        let cands = fields.iter().map(|(n, _)| n.clone()).collect();
                        self.unknown(&format!("field of record `{owner}`:"), f, cands, None);
                        return None;
                    };
                    path.push(TargetElem::Field(i));
                    ty = fields[i].1.clone();
                }
                PlaceElem::TupleIndex(i, sp) => match &t {
                    Ty::Tuple(ts) if (*i as usize) < ts.len() => {
                        path.push(TargetElem::TupleField(*i as usize));
                        ty = ts[*i as usize].clone();
                    }
                    _ => {
                        let d = Diagnostic::error(*sp, format!("no element `.{i}` in a `{}`", self.ty_name(&ty)))
                            .label("out of range");
                        self.error(d);
                        return None;
                    }
                },
                PlaceElem::Index(ix) => match &t {
                    Ty::Map(k, v) => {
                        let k = (**k).clone();
                        let x = self.expr(ix, Some(&k));
                        let x = self.coerce(x, &k);
                        path.push(TargetElem::Index(x));
                        ty = (**v).clone();
                    }
                    Ty::List(e) => {
                        let e = (**e).clone();
                        let x = self.expr(ix, Some(&Ty::Int(crate::ir::IntTy::U64)));
                        if x.ty.int().is_none() && !x.ty.is_error() {
                            let d = Diagnostic::error(x.span, "list index must be an integer").label("not an integer");
                            self.error(d);
                        }
                        path.push(TargetElem::Index(x));
                        ty = e;
                    }
                    _ => {
                        let d = Diagnostic::error(place.span, format!("cannot index into a `{}`", self.ty_name(&ty)))
                            .label("only `Map` and `List` can be indexed");
                        self.error(d);
                        return None;
                    }
                },
            }
        }
        Some(Target {
            root,
            path,
            ty,
            span: place.span,
        })
    }

    fn unknown_target(&mut self, name: &ast::Ident) -> Option<Target> {
        let mut cands = Vec::new();
        match self.ctx {
            Ctx::Handler { role, .. } => cands.extend(self.spec.roles[role].vars.iter().map(|v| v.name.clone())),
            Ctx::Service => cands.extend(
                self.spec
                    .service
                    .iter()
                    .flat_map(|s| s.vars.iter().map(|v| v.name.clone())),
            ),
            _ => {}
        }
        let note = if self.consts.contains_key(&name.name) {
            Some(format!("`{}` is a constant", name.name))
        } else {
            None
        };
        self.unknown("variable", name, cands, note);
        None
    }

    /// The current value of a target, as an expression (for `x += e`).
    fn target_read(&mut self, t: &Target) -> ir::Expr {
        let (mut e, mut ty) = match &t.root {
            TargetRoot::Var(v) => {
                let role = self.role_of_ctx().unwrap_or(0);
                let ty = self
                    .spec
                    .roles
                    .get(role)
                    .map(|r| r.vars[*v].ty.clone())
                    .unwrap_or(Ty::Error);
                (K::Var(*v), ty)
            }
            TargetRoot::ServiceVar(v) => (
                K::ServiceVar(*v),
                self.spec
                    .service
                    .as_ref()
                    .map(|s| s.vars[*v].ty.clone())
                    .unwrap_or(Ty::Error),
            ),
        };
        for elem in &t.path {
            let base = ir::Expr {
                kind: e,
                ty: ty.clone(),
                span: t.span,
            };
            let rt = ty.resolved();
            (e, ty) = match (elem, rt) {
                (TargetElem::Field(i), Ty::Record(id)) => (
                    K::Field {
                        base: Box::new(base),
                        index: *i,
                    },
                    self.spec.records[id].fields[*i].1.clone(),
                ),
                (TargetElem::TupleField(i), Ty::Tuple(ts)) => (
                    K::TupleField {
                        base: Box::new(base),
                        index: *i,
                    },
                    ts[*i].clone(),
                ),
                (TargetElem::Index(ix), Ty::Map(_, v)) => (
                    K::Index {
                        base: Box::new(base),
                        index: Box::new(ix.clone()),
                    },
                    *v,
                ),
                (TargetElem::Index(ix), Ty::List(v)) => (
                    K::Index {
                        base: Box::new(base),
                        index: Box::new(ix.clone()),
                    },
                    *v,
                ),
                _ => (K::Bool(false), Ty::Error),
            };
        }
        ir::Expr {
            kind: e,
            ty: ty.resolved(),
            span: t.span,
        }
    }

    fn mutation(&mut self, target: Target, method: &ast::Ident, args: &[ast::Expr], span: Span) -> Option<I> {
        let t = target.ty.resolved();
        let n = method.name.as_str();
        let (op, tys): (Mutation, Vec<Ty>) = match (&t, n) {
            (Ty::List(e), "push") => (Mutation::Push, vec![(**e).clone()]),
            (Ty::List(_), "truncate") => (Mutation::Truncate, vec![Ty::Int(crate::ir::IntTy::U64)]),
            (Ty::List(_), "drop_first") => (Mutation::DropFirst, vec![Ty::Int(crate::ir::IntTy::U64)]),
            (Ty::List(_), "extend") => (Mutation::Extend, vec![t.clone()]),
            (Ty::Set(e), "insert") => (Mutation::Insert, vec![(**e).clone()]),
            (Ty::Set(e), "remove") => (Mutation::Remove, vec![(**e).clone()]),
            (Ty::Map(k, v), "insert") => (Mutation::Insert, vec![(**k).clone(), (**v).clone()]),
            (Ty::Map(k, _), "remove") => (Mutation::Remove, vec![(**k).clone()]),
            (Ty::List(_) | Ty::Set(_) | Ty::Map(..), "clear") => (Mutation::Clear, vec![]),
            (Ty::Error, _) => return None,
            _ => {
                let methods: &[&str] = match t {
                    Ty::List(_) => &["push", "truncate", "drop_first", "extend", "clear"],
                    Ty::Set(_) | Ty::Map(..) => &["insert", "remove", "clear"],
                    _ => &[],
                };
                let mut d = Diagnostic::error(
                    method.span,
                    format!(
                        "cannot call `.{n}(...)` as a statement on a `{}`",
                        self.ty_name(&target.ty)
                    ),
                );
                d = match crate::diag::suggest(n, methods.iter().copied()) {
                    Some(s) => d.label(format!("did you mean `{s}`?")),
                    None => d.label("unknown mutation"),
                };
                if !methods.is_empty() {
                    d = d.note(format!(
                        "a `{}` can be changed with {}",
                        self.ty_name(&target.ty),
                        methods
                            .iter()
                            .map(|m| if *m == "clear" {
                                "`.clear()`".to_string()
                            } else {
                                format!("`.{m}(...)`")
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                self.error(d);
                return None;
            }
        };
        if args.len() != tys.len() {
            let d = Diagnostic::error(
                span,
                format!(
                    "`.{n}(...)` takes {} argument{}, found {}",
                    tys.len(),
                    if tys.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            )
            .label("wrong number of arguments");
            self.error(d);
            return None;
        }
        self.ghost_ok = self.is_ghost(&target);
        let args = args
            .iter()
            .zip(&tys)
            .map(|(a, t)| {
                let x = self.expr(a, Some(t));
                self.coerce(x, t)
            })
            .collect();
        self.ghost_ok = false;
        Some(I::Mutate { target, op, args })
    }

    /// Does this assignment change a `ghost` variable of the handler's role?
    pub(super) fn is_ghost(&self, target: &Target) -> bool {
        match (target.root.clone(), self.ctx) {
            (TargetRoot::Var(v), Ctx::Handler { role, .. }) => self.spec.roles[role].vars[v].ghost,
            _ => false,
        }
    }
}

fn pat_span(_p: &ir::Pat, fallback: Span) -> Span {
    fallback
}

fn bound_locals(p: &ir::Pat) -> Vec<usize> {
    let mut out = Vec::new();
    fn go(p: &ir::Pat, out: &mut Vec<usize>) {
        match p {
            ir::Pat::Bind(l) => out.push(*l),
            ir::Pat::Tuple(ps)
            | ir::Pat::Enum { args: ps, .. }
            | ir::Pat::Reply { args: ps, .. }
            | ir::Pat::Request { args: ps, .. } => ps.iter().for_each(|p| go(p, out)),
            ir::Pat::Some(p) => go(p, out),
            _ => {}
        }
    }
    go(p, &mut out);
    out
}

/// Whether a loop body over nodes has the same effect in any iteration
/// order: it only sends to the loop's own node, inserts into or removes from
/// sets and maps, or writes map entries, possibly under conditions.
fn order_insensitive(body: &[ir::Stmt], loop_locals: &[usize]) -> bool {
    body.iter().all(|s| match &s.kind {
        I::Let { .. } | I::Assert { .. } => true,
        I::Send { dst, .. } => matches!(dst.kind, K::Local(l) if loop_locals.contains(&l)),
        I::Mutate { op, target, .. } => {
            matches!(op, Mutation::Insert | Mutation::Remove)
                && matches!(target.ty.resolved(), Ty::Set(_) | Ty::Map(..))
        }
        I::Assign { target, .. } => target.path.iter().any(|e| matches!(e, TargetElem::Index(_))),
        I::If { then, els, .. } => order_insensitive(then, loop_locals) && order_insensitive(els, loop_locals),
        I::Match { arms, .. } => arms.iter().all(|(_, b)| order_insensitive(b, loop_locals)),
        I::For { body, .. } => order_insensitive(body, loop_locals),
        _ => false,
    })
}

/// The replies a block gives, as `(min, max)` over its paths (capped at 2,
/// meaning "more than once"), separately for the paths that fall through
/// its end and the paths that leave it with `return`; `None` when there is
/// no such path.
#[derive(Clone, Copy, Debug)]
struct ReplyPaths {
    fall: Option<(u32, u32)>,
    ret: Option<(u32, u32)>,
}

fn union(a: Option<(u32, u32)>, b: Option<(u32, u32)>) -> Option<(u32, u32)> {
    match (a, b) {
        (Some((a1, b1)), Some((a2, b2))) => Some((a1.min(a2), b1.max(b2))),
        (x, None) | (None, x) => x,
    }
}

fn then(a: Option<(u32, u32)>, b: Option<(u32, u32)>) -> Option<(u32, u32)> {
    let ((a1, b1), (a2, b2)) = (a?, b?);
    Some(((a1 + a2).min(2), (b1 + b2).min(2)))
}

impl Checker<'_> {
    /// `(min, max)` number of replies a service request body gives over all
    /// its paths (`max` capped at 2), and whether every path ends in
    /// `return`. Path-sensitive: `if c { reply A; return }; reply B` replies
    /// exactly once. A `match` statement whose arms do not cover every value
    /// also has the path where no arm runs.
    pub(super) fn reply_counts(&self, stmts: &[ir::Stmt]) -> (u32, u32, bool) {
        let p = self.reply_paths(stmts);
        let (min, max) = union(p.fall, p.ret).unwrap_or((0, 0));
        (min, max, p.fall.is_none())
    }

    fn reply_paths(&self, stmts: &[ir::Stmt]) -> ReplyPaths {
        let mut acc = ReplyPaths {
            fall: Some((0, 0)),
            ret: None,
        };
        for s in stmts {
            if acc.fall.is_none() {
                break;
            }
            let p = match &s.kind {
                I::ServiceReply(_) => ReplyPaths {
                    fall: Some((1, 1)),
                    ret: None,
                },
                I::Return => ReplyPaths {
                    fall: None,
                    ret: Some((0, 0)),
                },
                I::If { then, els, .. } => {
                    let (t, e) = (self.reply_paths(then), self.reply_paths(els));
                    ReplyPaths {
                        fall: union(t.fall, e.fall),
                        ret: union(t.ret, e.ret),
                    }
                }
                I::Match { scrutinee, arms } => {
                    let pats: Vec<&ir::Pat> = arms.iter().map(|(p, _)| p).collect();
                    let mut p = ReplyPaths {
                        fall: if self.covers(&scrutinee.ty, &pats) {
                            None
                        } else {
                            Some((0, 0))
                        },
                        ret: None,
                    };
                    for (_, b) in arms {
                        let a = self.reply_paths(b);
                        p.fall = union(p.fall, a.fall);
                        p.ret = union(p.ret, a.ret);
                    }
                    p
                }
                I::For { body, .. } => {
                    // Zero or more iterations: any reply in the body may
                    // happen several times.
                    let b = self.reply_paths(body);
                    let many = |x: Option<(u32, u32)>| x.is_some_and(|(_, hi)| hi > 0);
                    let before = if many(b.fall) { 2 } else { 0 };
                    ReplyPaths {
                        fall: Some((0, if many(b.fall) || many(b.ret) { 2 } else { 0 })),
                        ret: b.ret.map(|(lo, hi)| (lo, hi.max(before))),
                    }
                }
                _ => ReplyPaths {
                    fall: Some((0, 0)),
                    ret: None,
                },
            };
            acc.ret = union(acc.ret, then(acc.fall, p.ret));
            acc.fall = then(acc.fall, p.fall);
        }
        acc
    }
}
