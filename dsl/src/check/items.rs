//! Roles, service bodies, properties and check configurations.

use super::expr::contains_error;
use super::stmt::BlockInfo;
use super::types::placeholder;
use super::{BlockKind, Checker, Ctx};
use crate::ast::{self, CheckEntryKind as CE, HandlerKind, Item, MsgBinding, PropertyKind as PK, RequestPat, Span};
use crate::diag::{suggest, Diagnostic};
use crate::ir::{
    self, Event, Expect, Mode, Network, Strategy, Timing, Ty, CLIENTS_MAX, RETRIES_MAX, SERVERS_MAX, SESSIONS_MAX,
};

impl Checker<'_> {
    pub(super) fn declare_roles(&mut self) {
        let file = self.file;
        for item in &file.items {
            let Item::Role(r) = item else { continue };
            if let Some(&first) = self.roles.get(&r.name.name) {
                let span = self.spec.roles[first].span;
                self.duplicate("role", &r.name, span);
                continue;
            }
            if r.name.name == "Client" {
                self.error(
                    Diagnostic::error(r.name.span, "`Client` is reserved for the model checker's clients")
                        .label("choose another role name"),
                );
                continue;
            }
            let mut role = ir::Role {
                name: r.name.name.clone(),
                vars: vec![],
                timers: vec![],
                choices: vec![],
                init: vec![],
                ready: None,
                metrics: vec![],
                states: vec![],
                initial_state: None,
                handlers: vec![],
                span: r.span,
            };
            for v in &r.vars {
                if let Some(prev) = role.vars.iter().find(|x| x.name == v.name.name) {
                    let span = prev.span;
                    self.duplicate("variable", &v.name, span);
                    continue;
                }
                if matches!(v.name.name.as_str(), "servers" | "peers") {
                    self.error(
                        Diagnostic::error(
                            v.name.span,
                            format!("`{}` is built in and cannot be a variable name", v.name.name),
                        )
                        .label("reserved name"),
                    );
                    continue;
                }
                let ty = self.resolve_type(&v.ty);
                role.vars.push(ir::Var {
                    name: v.name.name.clone(),
                    ty,
                    durable: v.durable,
                    ghost: v.ghost,
                    init: placeholder(v.span),
                    span: v.span,
                });
            }
            for t in &r.timers {
                if let Some(prev) = role.timers.iter().find(|x| x.name == t.name.name) {
                    let span = prev.span;
                    self.duplicate("timer", &t.name, span);
                    continue;
                }
                if t.min_us > t.max_us {
                    self.error(
                        Diagnostic::error(t.span, "timer range is empty: the lower bound exceeds the upper bound")
                            .label("write `min..max`"),
                    );
                }
                role.timers.push(ir::Timer {
                    name: t.name.name.clone(),
                    min_us: t.min_us,
                    max_us: t.max_us,
                    span: t.span,
                });
            }
            for c in &r.choices {
                if let Some(prev) = role.choices.iter().find(|x| x.name == c.name.name) {
                    let span = prev.span;
                    self.duplicate("choice", &c.name, span);
                    continue;
                }
                let ty = self.resolve_type(&c.ty);
                role.choices.push(ir::Choice {
                    name: c.name.name.clone(),
                    ty,
                    span: c.span,
                });
            }
            let mut initial: Option<(usize, Span)> = None;
            for s in &r.states {
                if let Some(prev) = role.states.iter().find(|x| x.name == s.name.name) {
                    let span = prev.span;
                    self.duplicate("state", &s.name, span);
                    continue;
                }
                if s.initial {
                    if let Some((_, prev)) = initial {
                        self.error(
                            Diagnostic::error(s.name.span, "a role has exactly one initial state")
                                .label("second `initial` state")
                                .secondary(prev, "first `initial` state"),
                        );
                    } else {
                        initial = Some((role.states.len(), s.name.span));
                    }
                }
                role.states.push(ir::State {
                    name: s.name.name.clone(),
                    entry: vec![],
                    exit: vec![],
                    handlers: vec![],
                    span: s.span,
                });
            }
            if !role.states.is_empty() {
                role.initial_state = Some(initial.map(|(i, _)| i).unwrap_or(0));
            }
            self.roles.insert(r.name.name.clone(), self.spec.roles.len());
            self.spec.roles.push(role);
            self.goto_targets.push(vec![]);
        }
    }

    pub(super) fn check_service_bodies(&mut self) {
        let file = self.file;
        let Some(svc) = file.items.iter().find_map(|i| match i {
            Item::Service(s) => Some(s),
            _ => None,
        }) else {
            return;
        };
        if self.spec.service.as_ref().map(|s| s.span) != Some(svc.span) {
            return;
        }
        for (i, v) in svc.vars.iter().enumerate() {
            let Some(idx) = self
                .spec
                .service
                .as_ref()
                .unwrap()
                .vars
                .iter()
                .position(|x| x.name == v.name.name)
            else {
                continue;
            };
            if idx != i {
                continue;
            }
            let ty = self.spec.service.as_ref().unwrap().vars[idx].ty.clone();
            let e = self.in_ctx(Ctx::Static, |this| {
                let e = this.expr(&v.init, Some(&ty));
                this.coerce(e, &ty)
            });
            self.spec.service.as_mut().unwrap().vars[idx].init = e;
        }
        for r in &svc.requests {
            let Some(&id) = self.requests.get(&r.name.name) else {
                continue;
            };
            if self.spec.service.as_ref().unwrap().requests[id].span != r.span {
                continue;
            }
            let params = self.spec.service.as_ref().unwrap().requests[id].params.clone();
            let allowed = self.spec.service.as_ref().unwrap().requests[id].replies.clone();
            let body = self.in_ctx(Ctx::Service, |this| {
                for (p, decl) in params.iter().zip(&r.params) {
                    this.scopes.last_mut().unwrap().push((decl.name.name.clone(), *p));
                }
                this.block(&r.body, BlockInfo { state: None })
            });
            // Every reply must be one the request declares.
            let mut bad = Vec::new();
            collect_service_replies(&body, &mut |e: &ir::Expr| {
                if let ir::ExprKind::ReplyCtor { reply, .. } = &e.kind {
                    if !allowed.contains(reply) {
                        bad.push((e.span, *reply));
                    }
                }
            });
            for (span, reply) in bad {
                let rn = self.spec.service.as_ref().unwrap().replies[reply].name.clone();
                let d = Diagnostic::error(
                    span,
                    format!("request `{}` does not declare the reply `{rn}`", r.name.name),
                )
                .label("undeclared reply")
                .secondary(r.name.span, format!("add it to the signature: `-> ... | {rn}`"));
                self.error(d);
            }
            let (min, max, _) = self.reply_counts(&body);
            if min == 0 {
                let d = Diagnostic::error(
                    r.name.span,
                    format!("request `{}` does not reply on every path", r.name.name),
                )
                .label("some path ends without `reply`")
                .note("a service request is a sequential function: it must produce exactly one reply");
                self.error(d);
            } else if max > 1 {
                let d = Diagnostic::error(
                    r.name.span,
                    format!("request `{}` may reply more than once", r.name.name),
                )
                .label("a path replies twice")
                .note("a service request must produce exactly one reply");
                self.error(d);
            }
            self.spec.service.as_mut().unwrap().requests[id].body = body;
        }
    }

    pub(super) fn check_roles(&mut self) {
        let file = self.file;
        for item in &file.items {
            let Item::Role(r) = item else { continue };
            let Some(&role) = self.roles.get(&r.name.name) else {
                continue;
            };
            if self.spec.roles[role].span != r.span {
                continue;
            }
            // Variable initializers, in declaration order.
            for v in &r.vars {
                let Some(idx) = self.spec.roles[role].vars.iter().position(|x| x.name == v.name.name) else {
                    continue;
                };
                if self.spec.roles[role].vars[idx].span != v.span {
                    continue;
                }
                let ty = self.spec.roles[role].vars[idx].ty.clone();
                let e = self.in_ctx(
                    Ctx::VarInit {
                        role,
                        var: idx,
                        durable: v.durable,
                    },
                    |this| {
                        this.ghost_ok = v.ghost;
                        let e = this.expr(&v.init, Some(&ty));
                        this.ghost_ok = false;
                        this.coerce(e, &ty)
                    },
                );
                self.spec.roles[role].vars[idx].init = e;
            }
            let mut init = Vec::new();
            for b in &r.inits {
                let stmts = self.in_ctx(
                    Ctx::Handler {
                        role,
                        block: BlockKind::Init,
                    },
                    |this| this.block(b, BlockInfo { state: None }),
                );
                init.extend(stmts);
            }
            if r.inits.len() > 1 {
                self.error(
                    Diagnostic::error(r.inits[1].span, "a role has at most one `init` block").label("second `init`"),
                );
            }
            self.spec.roles[role].init = init;
            for s in &r.states {
                let Some(sid) = self.spec.roles[role].states.iter().position(|x| x.name == s.name.name) else {
                    continue;
                };
                if self.spec.roles[role].states[sid].span != s.span {
                    continue;
                }
                let info = BlockInfo { state: Some(sid) };
                if s.entries.len() > 1 {
                    self.error(
                        Diagnostic::error(
                            s.entries[1].span,
                            format!("state `{}` has more than one `entry` block", s.name.name),
                        )
                        .label("second `entry`"),
                    );
                }
                if s.exits.len() > 1 {
                    self.error(
                        Diagnostic::error(
                            s.exits[1].span,
                            format!("state `{}` has more than one `exit` block", s.name.name),
                        )
                        .label("second `exit`"),
                    );
                }
                let entry = s
                    .entries
                    .first()
                    .map(|b| {
                        self.in_ctx(
                            Ctx::Handler {
                                role,
                                block: BlockKind::Entry,
                            },
                            |this| this.block(b, info),
                        )
                    })
                    .unwrap_or_default();
                let exit = s
                    .exits
                    .first()
                    .map(|b| {
                        self.in_ctx(
                            Ctx::Handler {
                                role,
                                block: BlockKind::Exit,
                            },
                            |this| this.block(b, info),
                        )
                    })
                    .unwrap_or_default();
                let handlers = s.handlers.iter().filter_map(|h| self.handler(role, h, info)).collect();
                let st = &mut self.spec.roles[role].states[sid];
                st.entry = entry;
                st.exit = exit;
                st.handlers = handlers;
            }
            let handlers = r
                .handlers
                .iter()
                .filter_map(|h| self.handler(role, h, BlockInfo { state: None }))
                .collect();
            self.spec.roles[role].handlers = handlers;
            self.check_observers(role, r);
        }
    }

    /// `ready when e` and `metric name = e`: expressions over the role's
    /// state (as in a handler's guard), for the deployed node's operators.
    fn check_observers(&mut self, role: usize, r: &ast::RoleDecl) {
        if let Some(second) = r.ready.get(1) {
            self.error(
                Diagnostic::error(second.span, "a role has at most one `ready when`")
                    .label("second `ready`")
                    .secondary(r.ready[0].span, "first `ready`"),
            );
        }
        let ctx = || Ctx::Handler {
            role,
            block: BlockKind::Handler,
        };
        if let Some(d) = r.ready.first() {
            let e = self.in_ctx(ctx(), |this| {
                let e = this.expr(&d.cond, Some(&Ty::Bool));
                this.coerce(e, &Ty::Bool)
            });
            self.spec.roles[role].ready = Some(e);
        }
        let mut metrics: Vec<ir::Metric> = Vec::new();
        for m in &r.metrics {
            if let Some(prev) = metrics.iter().find(|x| x.name == m.name.name) {
                let span = prev.span;
                self.duplicate("metric", &m.name, span);
                continue;
            }
            if let Some(v) = self.spec.roles[role].vars.iter().find(|v| v.name == m.name.name) {
                let span = v.span;
                self.error(
                    Diagnostic::error(
                        m.name.span,
                        format!("`{}` is a variable of the role, exported already", m.name.name),
                    )
                    .label("choose another name")
                    .secondary(span, "the variable"),
                );
                continue;
            }
            let e = self.in_ctx(ctx(), |this| this.expr(&m.value, None));
            if !matches!(e.ty.resolved(), Ty::Int(_) | Ty::Bool | Ty::Error) {
                let shown = self.ty_name(&e.ty);
                self.error(
                    Diagnostic::error(
                        m.value.span,
                        format!("a metric is an integer or a boolean; this is `{shown}`"),
                    )
                    .label("not a number")
                    .note("`len(...)` of a collection is one"),
                );
                continue;
            }
            metrics.push(ir::Metric {
                name: m.name.name.clone(),
                value: e,
                span: m.span,
            });
        }
        self.spec.roles[role].metrics = metrics;
    }

    fn handler(&mut self, role: usize, h: &ast::Handler, info: BlockInfo) -> Option<ir::Handler> {
        self.in_ctx(
            Ctx::Handler {
                role,
                block: BlockKind::Handler,
            },
            |this| {
                let event = match &h.kind {
                    HandlerKind::Msg { msg, binding, from } => {
                        let Some((super::TypeDef::Message(m), _)) = this.types.get(&msg.name).copied() else {
                            let cands: Vec<String> = this.spec.messages.iter().map(|m| m.name.clone()).collect();
                            let note = if this.requests.contains_key(&msg.name) {
                                Some(format!(
                                    "`{}` is a service request: handle it with `on request {}(...) from c`",
                                    msg.name, msg.name
                                ))
                            } else if this.spec.roles[role].timers.iter().any(|t| t.name == msg.name) {
                                Some(format!(
                                    "`{}` is a timer: handle it with `on timeout {}`",
                                    msg.name, msg.name
                                ))
                            } else {
                                None
                            };
                            this.unknown("message", msg, cands, note);
                            return None;
                        };
                        this.msg_handled[m] = true;
                        let fields = this.spec.messages[m].fields.clone();
                        let bind = match binding {
                            MsgBinding::None => ir::MsgBind::None,
                            MsgBinding::Whole(id) => ir::MsgBind::Whole(this.bind(id, Ty::Message(m))),
                            MsgBinding::Fields(ids) => {
                                let mut out = Vec::new();
                                for id in ids {
                                    match fields.iter().position(|(n, _)| *n == id.name) {
                                        Some(i) => {
                                            let l = this.bind(id, fields[i].1.clone());
                                            out.push((i, l));
                                        }
                                        None => {
                                            let cands = fields.iter().map(|(n, _)| n.clone()).collect();
                                            let what = format!("field of message `{}`:", msg.name);
                                            this.unknown(&what, id, cands, None);
                                        }
                                    }
                                }
                                ir::MsgBind::Fields(out)
                            }
                        };
                        let from = from.as_ref().map(|f| this.bind(f, Ty::Node));
                        Event::Msg { msg: m, bind, from }
                    }
                    HandlerKind::Timeout { timer } => {
                        let Some(t) = this.spec.roles[role].timers.iter().position(|x| x.name == timer.name) else {
                            let cands = this.spec.roles[role].timers.iter().map(|t| t.name.clone()).collect();
                            let what = format!("timer of role `{}`:", this.spec.roles[role].name);
                            this.unknown(
                                &what,
                                timer,
                                cands,
                                Some("declare it in the role: `timer name: 100ms..200ms`".into()),
                            );
                            return None;
                        };
                        Event::Timeout(t)
                    }
                    HandlerKind::Choose { choice, pat } => {
                        let Some(c) = this.spec.roles[role].choices.iter().position(|x| x.name == choice.name) else {
                            let cands = this.spec.roles[role].choices.iter().map(|c| c.name.clone()).collect();
                            this.unknown("choice", choice, cands, None);
                            return None;
                        };
                        let ty = this.spec.roles[role].choices[c].ty.clone();
                        let pat = this.pattern(pat, &ty, true);
                        Event::Choose { choice: c, pat }
                    }
                    HandlerKind::Request { req, from } => {
                        if this.spec.service.is_none() {
                            let d = Diagnostic::error(h.span, "`on request` needs a `service` block")
                                .label("this protocol declares no service");
                            this.error(d);
                            return None;
                        }
                        let (req_id, args, bind_any) = match req {
                            RequestPat::Any(id) => (None, vec![], Some(this.bind(id, Ty::Request))),
                            RequestPat::Named { name, args } => {
                                let Some(&r) = this.requests.get(&name.name) else {
                                    let cands = this.requests.keys().cloned().collect();
                                    this.unknown("request", name, cands, None);
                                    return None;
                                };
                                let params = this.spec.service.as_ref().unwrap().requests[r].params.clone();
                                if !args.is_empty() && args.len() != params.len()
                                    || args.is_empty() && !params.is_empty()
                                {
                                    let d = Diagnostic::error(
                                        name.span,
                                        format!(
                                            "request `{}` has {} parameter{}; the handler binds {}",
                                            name.name,
                                            params.len(),
                                            if params.len() == 1 { "" } else { "s" },
                                            args.len()
                                        ),
                                    )
                                    .label("wrong number of bindings");
                                    this.error(d);
                                }
                                let pats = args
                                    .iter()
                                    .enumerate()
                                    .map(|(i, p)| {
                                        let ty = params
                                            .get(i)
                                            .map(|l| this.spec.locals[*l].ty.clone())
                                            .unwrap_or(Ty::Error);
                                        this.pattern(p, &ty, true)
                                    })
                                    .collect();
                                (Some(r), pats, None)
                            }
                        };
                        let client = this.bind(from, Ty::Client);
                        Event::Request {
                            req: req_id,
                            args,
                            bind_any,
                            client,
                        }
                    }
                };
                let guard = h.guard.as_ref().map(|g| {
                    let e = this.expr(g, Some(&Ty::Bool));
                    this.coerce(e, &Ty::Bool)
                });
                let body = this.block(&h.body, info);
                Some(ir::Handler {
                    event,
                    guard,
                    body,
                    span: h.span,
                })
            },
        )
    }

    pub(super) fn check_properties(&mut self) {
        let file = self.file;
        let mut names: Vec<(String, Span)> = Vec::new();
        for item in &file.items {
            let Item::Property(p) = item else { continue };
            let name = match &p.name {
                Some(n) => n.name.clone(),
                None => "linearizable".to_string(),
            };
            let name_span = p.name.as_ref().map(|n| n.span).unwrap_or(p.span);
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
                let first = *first;
                let d = Diagnostic::error(name_span, format!("property `{name}` is declared twice"))
                    .label("declared again here")
                    .secondary(first, "first declared here");
                self.error(d);
                continue;
            }
            names.push((name.clone(), name_span));
            let kind = self.in_ctx(Ctx::Property, |this| match &p.kind {
                PK::Invariant(e) => ir::PropertyKind::Invariant(this.prop_bool(e)),
                PK::Reachable(e) => ir::PropertyKind::Reachable(this.prop_bool(e)),
                PK::Eventually(e) => ir::PropertyKind::Eventually(this.prop_bool(e)),
                PK::LeadsTo { binders, from, to } => {
                    let q = ast::Expr {
                        kind: ast::ExprKind::Quant {
                            forall: true,
                            binders: binders.clone(),
                            body: Box::new(ast::Expr {
                                kind: ast::ExprKind::Bool(true),
                                span: from.span,
                            }),
                        },
                        span: p.span,
                    };
                    // Check binders through the quantifier path to share code,
                    // then re-bind them in this scope for `from` and `to`.
                    let checked = this.expr(&q, Some(&Ty::Bool));
                    let binders = match checked.kind {
                        ir::ExprKind::Quant { binders, .. } => binders,
                        _ => vec![],
                    };
                    if binders.iter().any(|b| matches!(b, ir::Binder::In { .. })) {
                        let d = Diagnostic::error(p.span, "`leads_to` quantifies over role or client instances only")
                            .label("`x in collection` is not allowed here")
                            .note("write e.g. `leads_to Answered: forall c: Client. c.waiting ~> !c.waiting`");
                        this.error(d);
                    }
                    for b in &binders {
                        let locals: Vec<usize> = match b {
                            ir::Binder::Role { local, .. } | ir::Binder::Clients { local } => vec![*local],
                            ir::Binder::In { pat, .. } => pat_locals(pat),
                        };
                        for l in locals {
                            let name = this.spec.locals[l].name.clone();
                            this.scopes.last_mut().unwrap().push((name, l));
                        }
                    }
                    let f = this.prop_bool(from);
                    let t = this.prop_bool(to);
                    ir::PropertyKind::LeadsTo {
                        binders,
                        from: f,
                        to: t,
                    }
                }
                PK::Linearizable => {
                    if this.spec.service.is_none() {
                        let d = Diagnostic::error(p.span, "`linearizable` needs a `service` block")
                            .label("nothing to linearize against")
                            .note("declare the sequential behaviour clients expect in `service Name { ... }`");
                        this.error(d);
                    }
                    ir::PropertyKind::Linearizable
                }
            });
            self.spec.properties.push(ir::Property {
                name,
                kind,
                span: p.span,
            });
        }
    }

    fn prop_bool(&mut self, e: &ast::Expr) -> ir::Expr {
        let x = self.expr(e, Some(&Ty::Bool));
        self.coerce(x, &Ty::Bool)
    }

    pub(super) fn check_checks(&mut self) {
        let file = self.file;
        let mut seen: Vec<(String, Span)> = Vec::new();
        for item in &file.items {
            let Item::Check(c) = item else { continue };
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == c.name.name) {
                let first = *first;
                self.duplicate("check", &c.name, first);
                continue;
            }
            seen.push((c.name.name.clone(), c.name.span));
            let check = self.check_config(c);
            self.spec.checks.push(check);
        }
    }

    fn check_config(&mut self, c: &ast::CheckDecl) -> ir::Check {
        let client_local = self.new_local("client", Ty::Int(ir::IntTy::U64), c.name.span);
        let mut k = ir::Check {
            name: c.name.name.clone(),
            servers: vec![0; self.spec.roles.len()],
            clients: 0,
            workload: vec![],
            client_local,
            network: Network::UnorderedNonDuplicating,
            lossy: false,
            drops: 0,
            races: 0,
            crash: 0,
            stops: 0,
            retries: None,
            sessions: None,
            mode: Mode::Safety,
            symmetry: false,
            max_depth: None,
            max_states: None,
            strategy: Strategy::Bfs,
            threads: None,
            timing: Timing::Any,
            expect: Expect::Unspecified,
            bound: None,
            skip: vec![],
            span: c.span,
        };
        let mut timing_given = false;
        let mut servers_given = false;
        let mut seen: Vec<(String, Span)> = Vec::new();
        let range = |this: &mut Self, v: u128, lo: u128, hi: u128, what: &str, span: Span| -> u64 {
            if v < lo || v > hi {
                let d = Diagnostic::error(span, format!("{what} must be between {lo} and {hi}, found {v}"))
                    .label("out of range");
                this.error(d);
            }
            v.min(u64::MAX as u128) as u64
        };
        for e in &c.entries {
            let key = entry_key(&e.kind);
            if key != "unknown" {
                if let Some((_, first)) = seen.iter().find(|(k, _)| k == key) {
                    let first = *first;
                    let d = Diagnostic::error(e.span, format!("check option `{key}` is given twice"))
                        .label("given again here")
                        .secondary(first, "first given here");
                    self.error(d);
                    continue;
                }
                seen.push((key.to_string(), e.span));
            }
            match &e.kind {
                CE::Servers(n) => {
                    servers_given = true;
                    match self.spec.roles.len() {
                        0 => {}
                        1 => k.servers[0] = range(self, *n, 1, SERVERS_MAX as u128, "the number of servers", e.span),
                        _ => {
                            let names: Vec<String> =
                                self.spec.roles.iter().map(|r| format!("{} = 1", r.name)).collect();
                            let d = Diagnostic::error(e.span, "this protocol has several roles; give a count per role")
                                .label("which role?")
                                .note(format!("for example: `servers {}`", names.join(", ")));
                            self.error(d);
                        }
                    }
                }
                CE::RoleCounts(counts) => {
                    servers_given = true;
                    for (role, n) in counts {
                        match self.roles.get(&role.name) {
                            Some(&r) => k.servers[r] = range(self, *n, 0, SERVERS_MAX as u128, "a role count", e.span),
                            None => {
                                let cands = self.roles.keys().cloned().collect();
                                self.unknown("role", role, cands, None);
                            }
                        }
                    }
                    if k.servers.iter().sum::<u64>() == 0 {
                        self.error(
                            Diagnostic::error(e.span, "a check needs at least one server").label("all counts are zero"),
                        );
                    }
                    if k.servers.iter().sum::<u64>() > SERVERS_MAX {
                        self.error(
                            Diagnostic::error(e.span, format!("at most {SERVERS_MAX} servers in total"))
                                .label("too many"),
                        );
                    }
                }
                CE::Clients(n) => k.clients = range(self, *n, 0, CLIENTS_MAX as u128, "the number of clients", e.span),
                CE::Workload(exprs) => {
                    if self.spec.service.is_none() {
                        self.error(
                            Diagnostic::error(e.span, "a workload needs a `service` block")
                                .label("no requests to issue"),
                        );
                        continue;
                    }
                    let local = k.client_local;
                    let wl = self.in_ctx(Ctx::Static, |this| {
                        this.scopes.last_mut().unwrap().push(("client".to_string(), local));
                        exprs
                            .iter()
                            .map(|x| {
                                let v = this.expr(x, Some(&Ty::Request));
                                this.coerce(v, &Ty::Request)
                            })
                            .collect::<Vec<_>>()
                    });
                    k.workload = wl;
                }
                CE::Network(n) => {
                    k.network = match n.name.as_str() {
                        "unordered_duplicating" | "duplicating" => Network::UnorderedDuplicating,
                        "unordered_nonduplicating" | "unordered" => Network::UnorderedNonDuplicating,
                        "ordered" | "fifo" => Network::Ordered,
                        _ => {
                            let opts = [
                                "unordered_duplicating",
                                "unordered_nonduplicating",
                                "unordered",
                                "ordered",
                            ];
                            let mut d = Diagnostic::error(n.span, format!("unknown network kind `{}`", n.name));
                            d = match suggest(&n.name, opts) {
                                Some(s) => d.label(format!("did you mean `{s}`?")),
                                None => d.label("unknown network"),
                            };
                            self.error(d.note("network kinds: `unordered_nonduplicating` (alias `unordered`), `unordered_duplicating`, `ordered` (FIFO per link, like TCP)"));
                            continue;
                        }
                    }
                }
                CE::Lossy => k.lossy = true,
                CE::Drops(n) => k.drops = range(self, *n, 0, 64, "the drop budget", e.span),
                CE::Races(n) => k.races = range(self, *n, 0, 64, "the race budget", e.span),
                CE::Crash(n) => k.crash = range(self, *n, 0, SERVERS_MAX as u128, "the crash count", e.span),
                CE::Stops(n) => k.stops = range(self, *n, 0, SERVERS_MAX as u128, "the stop count", e.span),
                CE::Retries(n) => k.retries = Some(range(self, *n, 0, RETRIES_MAX as u128, "`retries`", e.span)),
                CE::Sessions(n) => {
                    let v = range(
                        self,
                        *n,
                        1,
                        SESSIONS_MAX as u128,
                        "the session table's capacity",
                        e.span,
                    );
                    if self.spec.service.as_ref().is_some_and(|s| s.sessions.is_none()) {
                        let d = Diagnostic::error(
                            e.span,
                            "this check sets a session table's capacity, but the service keeps no sessions",
                        )
                        .label("no `sessions` in the service")
                        .note("declare `sessions N` in the service block");
                        self.error(d);
                    }
                    k.sessions = Some(v);
                }
                CE::Mode(m) => {
                    k.mode = match m.name.as_str() {
                        "safety" => Mode::Safety,
                        "liveness" => Mode::Liveness,
                        _ => {
                            let mut d = Diagnostic::error(m.span, format!("unknown mode `{}`", m.name));
                            d = match suggest(&m.name, ["safety", "liveness"]) {
                                Some(s) => d.label(format!("did you mean `{s}`?")),
                                None => d.label("expected `safety` or `liveness`"),
                            };
                            self.error(d);
                            continue;
                        }
                    }
                }
                CE::Symmetry => k.symmetry = true,
                CE::MaxDepth(n) => k.max_depth = Some(range(self, *n, 1, u32::MAX as u128, "`max_depth`", e.span)),
                CE::MaxStates(n) => k.max_states = Some(range(self, *n, 1, u64::MAX as u128, "`max_states`", e.span)),
                CE::Strategy(s) => {
                    k.strategy = match s.name.as_str() {
                        "bfs" => Strategy::Bfs,
                        "dfs" => Strategy::Dfs,
                        _ => {
                            let mut d = Diagnostic::error(s.span, format!("unknown search strategy `{}`", s.name));
                            d = match suggest(&s.name, ["bfs", "dfs"]) {
                                Some(x) => d.label(format!("did you mean `{x}`?")),
                                None => d.label("expected `bfs` or `dfs`"),
                            };
                            self.error(d);
                            continue;
                        }
                    }
                }
                CE::Threads(n) => k.threads = Some(range(self, *n, 1, 256, "`threads`", e.span)),
                CE::Timing(t) => {
                    timing_given = true;
                    k.timing = match t.name.as_str() {
                        "any" => Timing::Any,
                        "partial_synchrony" => Timing::PartialSynchrony,
                        "synchronous" => Timing::Synchronous,
                        "no_timeouts" => Timing::NoTimeouts,
                        _ => {
                            let mut d = Diagnostic::error(t.span, format!("unknown timing model `{}`", t.name));
                            d = match suggest(&t.name, ["any", "partial_synchrony", "synchronous", "no_timeouts"]) {
                                Some(x) => d.label(format!("did you mean `{x}`?")),
                                None => d.label("expected `any`, `partial_synchrony`, `synchronous` or `no_timeouts`"),
                            };
                            self.error(d);
                            continue;
                        }
                    }
                }
                CE::Bound(x) => {
                    let b = self.in_ctx(Ctx::Property, |this| this.prop_bool(x));
                    k.bound = Some(b);
                }
                CE::Skip(names) => {
                    for p in names {
                        if !self.spec.properties.iter().any(|x| x.name == p.name) {
                            let cands = self.spec.properties.iter().map(|x| x.name.clone()).collect();
                            self.unknown("property", p, cands, None);
                        } else if !k.skip.contains(&p.name) {
                            k.skip.push(p.name.clone());
                        }
                    }
                }
                CE::ExpectOk => k.expect = Expect::Ok,
                CE::ExpectViolation(p) => {
                    let builtin = ["handler_error", "linearizable"];
                    if !self.spec.properties.iter().any(|x| x.name == p.name) && !builtin.contains(&p.name.as_str()) {
                        let mut cands: Vec<String> = self.spec.properties.iter().map(|x| x.name.clone()).collect();
                        cands.extend(builtin.map(String::from));
                        self.unknown(
                            "property",
                            p,
                            cands,
                            Some("`handler_error` names the built-in \"no handler fails\" property".into()),
                        );
                    }
                    k.expect = Expect::Violation(p.name.clone());
                }
                CE::Unknown(name) => {
                    let opts = [
                        "servers",
                        "clients",
                        "workload",
                        "network",
                        "lossy",
                        "drops",
                        "races",
                        "crash",
                        "stops",
                        "retries",
                        "sessions",
                        "mode",
                        "symmetry",
                        "max_depth",
                        "max_states",
                        "strategy",
                        "threads",
                        "bound",
                        "skip",
                        "timing",
                        "expect",
                    ];
                    let mut d = Diagnostic::error(name.span, format!("unknown check option `{}`", name.name));
                    d = match suggest(&name.name, opts) {
                        Some(s) => d.label(format!("did you mean `{s}`?")),
                        None => d.label("unknown option"),
                    };
                    self.error(d.note(format!("options: {}", opts.join(", "))));
                }
            }
        }
        if !servers_given && !self.spec.roles.is_empty() {
            let d = Diagnostic::error(
                c.name.span,
                format!("check `{}` does not say how many servers to run", c.name.name),
            )
            .label("missing `servers`")
            .note(if self.spec.roles.len() == 1 {
                "add `servers 3`".to_string()
            } else {
                format!(
                    "add `servers {}`",
                    self.spec
                        .roles
                        .iter()
                        .map(|r| format!("{} = 1", r.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            self.error(d);
        }
        if k.clients > 0 && k.workload.is_empty() && self.spec.service.is_some() {
            let d = Diagnostic::error(
                c.name.span,
                format!("check `{}` has clients but no `workload`", c.name.name),
            )
            .label("what should the clients request?")
            .note("add e.g. `workload Put(client + 1), Get`; `client` is the client's index from 0");
            self.error(d);
        }
        if k.clients > 0 && self.spec.service.is_none() {
            let d = Diagnostic::error(c.name.span, "clients need a `service` to call")
                .label("this protocol declares no service");
            self.error(d);
        }
        if k.mode == Mode::Liveness && !timing_given {
            k.timing = Timing::PartialSynchrony;
        }
        if k.mode == Mode::Safety && k.drops > 0 {
            let d = Diagnostic::error(c.name.span, "`drops` is the fault budget of a liveness check")
                .label("safety check with a drop budget")
                .note("for message loss in a safety check, use `lossy`");
            self.error(d);
        }
        if k.mode == Mode::Safety && k.stops > 0 {
            let d = Diagnostic::error(c.name.span, "`stops` is a fault of a liveness check")
                .label("safety check with servers that stop")
                .note("a safety check's `crash N` already covers servers that never come back");
            self.error(d);
        }
        if k.mode == Mode::Safety && k.races > 0 {
            let d = Diagnostic::error(c.name.span, "`races` is a fault budget of a liveness check")
                .label("safety check with a race budget")
                .note("a safety check with `timing any` lets every timer fire at any moment already");
            self.error(d);
        }
        if k.symmetry && !self.spec.symmetric {
            // Reported with the reason in `analyse`, once the whole spec is known.
        }
        let _ = contains_error;
        k
    }
}

fn entry_key(k: &CE) -> &'static str {
    match k {
        CE::Servers(_) | CE::RoleCounts(_) => "servers",
        CE::Clients(_) => "clients",
        CE::Workload(_) => "workload",
        CE::Network(_) => "network",
        CE::Lossy => "lossy",
        CE::Drops(_) => "drops",
        CE::Races(_) => "races",
        CE::Crash(_) => "crash",
        CE::Stops(_) => "stops",
        CE::Retries(_) => "retries",
        CE::Sessions(_) => "sessions",
        CE::Mode(_) => "mode",
        CE::Symmetry => "symmetry",
        CE::MaxDepth(_) => "max_depth",
        CE::MaxStates(_) => "max_states",
        CE::Strategy(_) => "strategy",
        CE::Threads(_) => "threads",
        CE::Timing(_) => "timing",
        CE::Bound(_) => "bound",
        CE::Skip(_) => "skip",
        CE::ExpectOk | CE::ExpectViolation(_) => "expect",
        CE::Unknown(_) => "unknown",
    }
}

fn pat_locals(p: &ir::Pat) -> Vec<usize> {
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

fn collect_service_replies(stmts: &[ir::Stmt], f: &mut impl FnMut(&ir::Expr)) {
    for s in stmts {
        match &s.kind {
            ir::StmtKind::ServiceReply(e) => f(e),
            ir::StmtKind::If { then, els, .. } => {
                collect_service_replies(then, f);
                collect_service_replies(els, f);
            }
            ir::StmtKind::Match { arms, .. } => arms.iter().for_each(|(_, b)| collect_service_replies(b, f)),
            ir::StmtKind::For { body, .. } => collect_service_replies(body, f),
            _ => {}
        }
    }
}
