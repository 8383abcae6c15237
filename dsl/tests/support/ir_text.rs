//! A readable text form of a checked `ir::Spec`, for snapshot tests.
//!
//! It reads like the spec with every name resolved: role variables print as
//! `var.x`, service variables as `svc.x`, constants as `const.X`, locals
//! bare; bindings in patterns carry their inferred type (`v: u64`); integer
//! literals carry their type unless it is `u64`; operators are fully
//! parenthesized. Spans are left out so that editing comments does not
//! churn the snapshots.

use smelt_dsl::ast::{BinOp, ComprKind, UnOp};
use smelt_dsl::ir::{self, Builtin, ExprKind as K, Mutation, Pat, Spec, StmtKind as S, Ty};
use std::fmt::Write;

pub fn render(spec: &Spec) -> String {
    let mut p = Printer {
        spec,
        out: String::new(),
        role: None,
    };
    p.spec();
    p.out
}

struct Printer<'a> {
    spec: &'a Spec,
    out: String,
    /// The role whose bodies are being printed, to name its states, timers
    /// and variables.
    role: Option<usize>,
}

/// `Name` or `Name(args)`.
fn ctor(name: &str, args: &str) -> String {
    if args.is_empty() {
        name.to_string()
    } else {
        format!("{name}({args})")
    }
}

fn duration(us: u64) -> String {
    if us.checked_rem(1_000_000) == Some(0) {
        format!("{}s", us / 1_000_000)
    } else if us.checked_rem(1_000) == Some(0) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

impl Printer<'_> {
    fn line(&mut self, indent: usize, text: impl AsRef<str>) {
        for _ in 0..indent {
            self.out.push_str("    ");
        }
        self.out.push_str(text.as_ref());
        self.out.push('\n');
    }

    fn spec(&mut self) {
        let s = self.spec;
        self.line(0, format!("protocol {}", s.name));
        match &s.asymmetry {
            None => self.line(0, format!("symmetric: {}", s.symmetric)),
            Some((_, why)) => self.line(0, format!("symmetric: {} ({why})", s.symmetric)),
        }
        for c in &s.consts {
            let v = match &c.value {
                ir::ConstValue::Int(i) => i.to_string(),
                ir::ConstValue::Bool(b) => b.to_string(),
                ir::ConstValue::Bytes(b) => bytes_lit(b),
            };
            self.line(0, format!("const {}: {} = {v}", c.name, self.ty(&c.ty)));
        }
        for a in &s.aliases {
            self.line(0, format!("type {} = {}", a.name, self.ty(&a.ty)));
        }
        for r in &s.records {
            let fields = self.fields(&r.fields);
            if fields.is_empty() {
                self.line(0, format!("record {}", r.name));
            } else {
                self.line(0, format!("record {} {{ {fields} }}", r.name));
            }
        }
        for e in &s.enums {
            let vs: Vec<String> = e
                .variants
                .iter()
                .map(|(n, ts)| {
                    if ts.is_empty() {
                        n.clone()
                    } else {
                        format!("{n}({})", self.tys(ts))
                    }
                })
                .collect();
            self.line(0, format!("enum {} {{ {} }}", e.name, vs.join(", ")));
        }
        for m in &s.messages {
            let fields = self.fields(&m.fields);
            if fields.is_empty() {
                self.line(0, format!("message {}", m.name));
            } else {
                self.line(0, format!("message {} {{ {fields} }}", m.name));
            }
        }
        for f in &s.fns {
            let params = self.params(&f.params);
            self.line(0, format!("fn {}({params}) -> {}", f.name, self.ty(&f.ret)));
            for (pat, value) in &f.lets {
                let text = format!("let {} = {}", self.pat(pat), self.expr(value));
                self.line(1, text);
            }
            let body = self.expr(&f.body);
            self.line(1, body);
        }
        if let Some(svc) = &s.service {
            self.line(0, format!("service {}", svc.name));
            if let Some(n) = svc.sessions {
                self.line(1, format!("sessions {n}"));
            }
            for r in &svc.replies {
                let text = if r.fields.is_empty() {
                    format!("reply {}", r.name)
                } else {
                    format!("reply {}({})", r.name, self.tys(&r.fields))
                };
                self.line(1, text);
            }
            for v in &svc.vars {
                let text = format!("var {}: {} = {}", v.name, self.ty(&v.ty), self.expr(&v.init));
                self.line(1, text);
            }
            for r in &svc.requests {
                let params = self.params(&r.params);
                let replies: Vec<&str> = r.replies.iter().map(|x| svc.replies[*x].name.as_str()).collect();
                self.line(
                    1,
                    format!("request {} -> {}", ctor(&r.name, &params), replies.join(" | ")),
                );
                self.block(2, &r.body);
            }
        }
        for (ri, r) in s.roles.iter().enumerate() {
            self.role = Some(ri);
            self.line(0, format!("role {}", r.name));
            for v in &r.vars {
                let kind = if v.durable && v.ghost {
                    "durable ghost"
                } else if v.durable {
                    "durable"
                } else if v.ghost {
                    "ghost"
                } else {
                    "var"
                };
                let text = format!("{kind} {}: {} = {}", v.name, self.ty(&v.ty), self.expr(&v.init));
                self.line(1, text);
            }
            for t in &r.timers {
                self.line(
                    1,
                    format!("timer {}: {}..{}", t.name, duration(t.min_us), duration(t.max_us)),
                );
            }
            for c in &r.choices {
                self.line(1, format!("choice {}: {}", c.name, self.ty(&c.ty)));
            }
            if !r.init.is_empty() {
                self.line(1, "init");
                self.block(2, &r.init);
            }
            for (si, st) in r.states.iter().enumerate() {
                let initial = if r.initial_state == Some(si) { "initial " } else { "" };
                self.line(1, format!("{initial}state {}", st.name));
                if !st.entry.is_empty() {
                    self.line(2, "entry");
                    self.block(3, &st.entry);
                }
                if !st.exit.is_empty() {
                    self.line(2, "exit");
                    self.block(3, &st.exit);
                }
                for h in &st.handlers {
                    self.handler(2, h);
                }
            }
            for h in &r.handlers {
                self.handler(1, h);
            }
            if let Some(e) = &r.ready {
                self.line(1, format!("ready when {}", self.expr(e)));
            }
            for m in &r.metrics {
                self.line(
                    1,
                    format!("metric {} = {}: {}", m.name, self.expr(&m.value), self.ty(&m.value.ty)),
                );
            }
        }
        self.role = None;
        for p in &s.properties {
            let text = match &p.kind {
                ir::PropertyKind::Invariant(e) => format!("invariant {}: {}", p.name, self.expr(e)),
                ir::PropertyKind::Reachable(e) => format!("reachable {}: {}", p.name, self.expr(e)),
                ir::PropertyKind::Eventually(e) => format!("eventually {}: {}", p.name, self.expr(e)),
                ir::PropertyKind::LeadsTo { binders, from, to } => {
                    let b = if binders.is_empty() {
                        String::new()
                    } else {
                        format!("forall {}. ", self.binders(binders))
                    };
                    format!("leads_to {}: {b}{} ~> {}", p.name, self.expr(from), self.expr(to))
                }
                ir::PropertyKind::Linearizable => format!("linearizable {}", p.name),
            };
            self.line(0, text);
        }
        for c in &s.checks {
            self.check(c);
        }
    }

    fn check(&mut self, c: &ir::Check) {
        let s = self.spec;
        self.line(0, format!("check {}", c.name));
        let servers: Vec<String> = s
            .roles
            .iter()
            .zip(&c.servers)
            .map(|(r, n)| format!("{} = {n}", r.name))
            .collect();
        self.line(1, format!("servers {}", servers.join(", ")));
        self.line(1, format!("clients {}", c.clients));
        if !c.workload.is_empty() {
            let w: Vec<String> = c.workload.iter().map(|e| self.expr(e)).collect();
            self.line(1, format!("workload {}", w.join(", ")));
        }
        self.line(
            1,
            format!(
                "network {}, lossy {}, drops {}, races {}, crash {}, mode {:?}, timing {:?}",
                c.network.name(),
                c.lossy,
                c.drops,
                c.races,
                c.crash,
                c.mode,
                c.timing
            ),
        );
        self.line(
            1,
            format!(
                "symmetry {}, strategy {:?}, max_depth {:?}, max_states {:?}, threads {:?}, expect {:?}",
                c.symmetry, c.strategy, c.max_depth, c.max_states, c.threads, c.expect
            ),
        );
        if c.retries.is_some() || c.sessions.is_some() {
            self.line(1, format!("retries {:?}, sessions {:?}", c.retries, c.sessions));
        }
    }

    fn handler(&mut self, indent: usize, h: &ir::Handler) {
        let role = self.role.map(|r| &self.spec.roles[r]);
        let mut head = match &h.event {
            ir::Event::Msg { msg, bind, from } => {
                let m = &self.spec.messages[*msg];
                let mut t = format!("on {}", m.name);
                match bind {
                    ir::MsgBind::None => {}
                    ir::MsgBind::Whole(l) => write!(t, "({})", self.local_decl(*l)).unwrap(),
                    ir::MsgBind::Fields(fs) => {
                        let fs: Vec<String> = fs
                            .iter()
                            .map(|(i, l)| format!("{} as {}", m.fields[*i].0, self.local_decl(*l)))
                            .collect();
                        write!(t, " {{ {} }}", fs.join(", ")).unwrap();
                    }
                }
                if let Some(f) = from {
                    write!(t, " from {}", self.local_decl(*f)).unwrap();
                }
                t
            }
            ir::Event::Timeout(t) => format!("on timeout {}", role.map_or("?", |r| r.timers[*t].name.as_str())),
            ir::Event::Choose { choice, pat } => format!(
                "on choose {}({})",
                role.map_or("?", |r| r.choices[*choice].name.as_str()),
                self.pat(pat)
            ),
            ir::Event::Request {
                req,
                args,
                bind_any,
                client,
            } => {
                let r = match (req, bind_any) {
                    (Some(r), _) => {
                        let name = &self.spec.service.as_ref().unwrap().requests[*r].name;
                        let args: Vec<String> = args.iter().map(|p| self.pat(p)).collect();
                        ctor(name, &args.join(", "))
                    }
                    (None, Some(l)) => format!("({})", self.local_decl(*l)),
                    (None, None) => "(?)".to_string(),
                };
                format!("on request {r} from {}", self.local_decl(*client))
            }
        };
        if let Some(g) = &h.guard {
            write!(head, " when {}", self.expr(g)).unwrap();
        }
        self.line(indent, head);
        self.block(indent + 1, &h.body);
    }

    fn block(&mut self, indent: usize, stmts: &[ir::Stmt]) {
        if stmts.is_empty() {
            self.line(indent, "(nothing)");
        }
        for s in stmts {
            self.stmt(indent, s);
        }
    }

    fn stmt(&mut self, indent: usize, s: &ir::Stmt) {
        let role = self.role.map(|r| &self.spec.roles[r]);
        let text = match &s.kind {
            S::Let { pat, value } => format!("let {} = {}", self.pat(pat), self.expr(value)),
            S::Assign { target, value } => format!("{} = {}", self.target(target), self.expr(value)),
            S::Mutate { target, op, args } => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a)).collect();
                let op = match op {
                    Mutation::DropFirst => "drop_first".to_string(),
                    op => format!("{op:?}").to_lowercase(),
                };
                format!("{}.{op}({})", self.target(target), args.join(", "))
            }
            S::If { cond, then, els } => {
                let c = self.expr(cond);
                self.line(indent, format!("if {c}"));
                self.block(indent + 1, then);
                if !els.is_empty() {
                    self.line(indent, "else");
                    self.block(indent + 1, els);
                }
                return;
            }
            S::For { pat, iter, body } => {
                let text = format!("for {} in {}", self.pat(pat), self.expr(iter));
                self.line(indent, text);
                self.block(indent + 1, body);
                return;
            }
            S::Match { scrutinee, arms } => {
                let text = format!("match {}", self.expr(scrutinee));
                self.line(indent, text);
                for (p, b) in arms {
                    let text = format!("{} =>", self.pat(p));
                    self.line(indent + 1, text);
                    self.block(indent + 2, b);
                }
                return;
            }
            S::Send { dst, msg, early } => {
                format!(
                    "send {}{} {}",
                    if *early { "early " } else { "" },
                    self.expr(dst),
                    self.expr(msg)
                )
            }
            S::Broadcast { dsts, msg, early } => {
                let e = if *early { "early " } else { "" };
                format!("broadcast {e}{} {}", self.expr(dsts), self.expr(msg))
            }
            S::Goto(st) => format!("goto {}", role.map_or("?", |r| r.states[*st].name.as_str())),
            S::SetTimer(t) => format!("set {}", role.map_or("?", |r| r.timers[*t].name.as_str())),
            S::CancelTimer(t) => format!("cancel {}", role.map_or("?", |r| r.timers[*t].name.as_str())),
            S::Reply { client, value } => format!("reply {} {}", self.expr(client), self.expr(value)),
            S::ServiceReply(v) => format!("reply {}", self.expr(v)),
            S::Redirect { client, to } => format!("redirect {} to {}", self.expr(client), self.expr(to)),
            S::Choose { choice, options } => format!(
                "choose {} in {}",
                role.map_or("?", |r| r.choices[*choice].name.as_str()),
                self.expr(options)
            ),
            S::Assert { cond, text } => format!("assert {}  // \"{text}\"", self.expr(cond)),
            S::Return => "return".to_string(),
        };
        self.line(indent, text);
    }

    fn target(&self, t: &ir::Target) -> String {
        let (mut out, mut ty) = match &t.root {
            ir::TargetRoot::Var(v) => {
                let var = self.role.map(|r| &self.spec.roles[r].vars[*v]);
                (
                    format!("var.{}", var.map_or("?", |v| v.name.as_str())),
                    var.map_or(Ty::Error, |v| v.ty.clone()),
                )
            }
            ir::TargetRoot::ServiceVar(v) => {
                let var = &self.spec.service.as_ref().unwrap().vars[*v];
                (format!("svc.{}", var.name), var.ty.clone())
            }
        };
        for e in &t.path {
            let rt = ty.resolved();
            match (e, rt) {
                (ir::TargetElem::Field(i), Ty::Record(r)) => {
                    let (name, fty) = &self.spec.records[r].fields[*i];
                    write!(out, ".{name}").unwrap();
                    ty = fty.clone();
                }
                (ir::TargetElem::TupleField(i), Ty::Tuple(ts)) => {
                    write!(out, ".{i}").unwrap();
                    ty = ts[*i].clone();
                }
                (ir::TargetElem::Index(ix), Ty::Map(_, v)) | (ir::TargetElem::Index(ix), Ty::List(v)) => {
                    write!(out, "[{}]", self.expr(ix)).unwrap();
                    ty = *v;
                }
                (e, t) => write!(out, "<bad path {e:?} in {t:?}>").unwrap(),
            }
        }
        out
    }

    fn binders(&self, bs: &[ir::Binder]) -> String {
        let bs: Vec<String> = bs
            .iter()
            .map(|b| match b {
                ir::Binder::Role { local, role } => {
                    format!("{}: {}", self.local_name(*local), self.spec.roles[*role].name)
                }
                ir::Binder::Clients { local } => format!("{}: Client", self.local_name(*local)),
                ir::Binder::In { pat, iter } => format!("{} in {}", self.pat(pat), self.expr(iter)),
            })
            .collect();
        bs.join(", ")
    }

    fn local_name(&self, l: usize) -> &str {
        &self.spec.locals[l].name
    }

    fn local_decl(&self, l: usize) -> String {
        let local = &self.spec.locals[l];
        format!("{}: {}", local.name, self.ty(&local.ty))
    }

    fn params(&self, ps: &[usize]) -> String {
        ps.iter().map(|p| self.local_decl(*p)).collect::<Vec<_>>().join(", ")
    }

    fn fields(&self, fs: &[(String, Ty)]) -> String {
        fs.iter()
            .map(|(n, t)| format!("{n}: {}", self.ty(t)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn tys(&self, ts: &[Ty]) -> String {
        ts.iter().map(|t| self.ty(t)).collect::<Vec<_>>().join(", ")
    }

    fn ty(&self, t: &Ty) -> String {
        let s = self.spec;
        match t {
            Ty::Bool => "bool".into(),
            Ty::Int(i) => i.name().into(),
            Ty::Node => "Node".into(),
            Ty::Client => "Client".into(),
            Ty::Bytes => "Bytes".into(),
            Ty::Option(t) => format!("Option<{}>", self.ty(t)),
            Ty::Tuple(ts) => format!("({})", self.tys(ts)),
            Ty::List(t) => format!("List<{}>", self.ty(t)),
            Ty::Set(t) => format!("Set<{}>", self.ty(t)),
            Ty::Map(k, v) => format!("Map<{}, {}>", self.ty(k), self.ty(v)),
            Ty::Record(id) => s.records[*id].name.clone(),
            Ty::Enum(id) => s.enums[*id].name.clone(),
            Ty::Message(id) => s.messages[*id].name.clone(),
            Ty::Request => "Request".into(),
            Ty::Reply => "Reply".into(),
            Ty::Service => s.service.as_ref().map_or("Service".into(), |x| x.name.clone()),
            Ty::Alias(id, _) => s.aliases[*id].name.clone(),
            Ty::Instance(r) => format!("instance {}", s.roles[*r].name),
            Ty::ClientInstance => "client instance".into(),
            Ty::Error => "<error>".into(),
        }
    }

    fn pat(&self, p: &Pat) -> String {
        let s = self.spec;
        let args = |ps: &[Pat]| ps.iter().map(|p| self.pat(p)).collect::<Vec<_>>().join(", ");
        match p {
            Pat::Wildcard => "_".into(),
            Pat::Bind(l) => self.local_decl(*l),
            Pat::Int(i) => i.to_string(),
            Pat::Bool(b) => b.to_string(),
            Pat::Tuple(ps) => format!("({})", args(ps)),
            Pat::None => "None".into(),
            Pat::Some(p) => format!("Some({})", self.pat(p)),
            Pat::Enum { en, variant, args: ps } => {
                let e = &s.enums[*en];
                let v = &e.variants[*variant].0;
                if ps.is_empty() {
                    format!("{}::{v}", e.name)
                } else {
                    format!("{}::{v}({})", e.name, args(ps))
                }
            }
            Pat::Reply { reply, args: ps } => ctor(&s.service.as_ref().unwrap().replies[*reply].name, &args(ps)),
            Pat::Request { req, args: ps } => ctor(&s.service.as_ref().unwrap().requests[*req].name, &args(ps)),
        }
    }

    /// An operand of an operator: parenthesized if it is itself an operation.
    fn operand(&self, e: &ir::Expr) -> String {
        match &e.kind {
            K::Binary { .. }
            | K::Unary { .. }
            | K::Cast { .. }
            | K::None
            | K::List(_)
            | K::Set(_)
            | K::Map(_)
            | K::Quant { .. }
            | K::If { .. }
            | K::Match { .. } => format!("({})", self.expr(e)),
            _ => self.expr(e),
        }
    }

    fn list(&self, es: &[ir::Expr]) -> String {
        es.iter().map(|e| self.expr(e)).collect::<Vec<_>>().join(", ")
    }

    fn record_fields(
        &self,
        names: &[(String, Ty)],
        fields: &[Option<ir::Expr>],
        base: &Option<Box<ir::Expr>>,
    ) -> String {
        let mut parts: Vec<String> = names
            .iter()
            .zip(fields)
            .filter_map(|((n, _), v)| v.as_ref().map(|v| format!("{n}: {}", self.expr(v))))
            .collect();
        if let Some(b) = base {
            parts.push(format!("..{}", self.expr(b)));
        }
        if parts.is_empty() {
            "{}".into()
        } else {
            format!("{{ {} }}", parts.join(", "))
        }
    }

    fn expr(&self, e: &ir::Expr) -> String {
        let s = self.spec;
        let role = self.role.map(|r| &s.roles[r]);
        match &e.kind {
            K::Int(v) => match e.ty.int() {
                Some(ir::IntTy::U64) | None => v.to_string(),
                Some(i) => format!("{v}{}", i.name()),
            },
            K::Bool(b) => b.to_string(),
            K::Bytes(b) => bytes_lit(b),
            K::Const(c) => format!("const.{}", s.consts[*c].name),
            K::Local(l) => self.local_name(*l).to_string(),
            K::Var(v) => format!("var.{}", role.map_or("?", |r| r.vars[*v].name.as_str())),
            K::ServiceVar(v) => format!("svc.{}", s.service.as_ref().unwrap().vars[*v].name),
            K::ServiceInitial => format!("{}.initial", s.service.as_ref().unwrap().name),
            K::SelfNode => "self".into(),
            K::Restarted => "restarted".into(),
            K::Servers => "servers".into(),
            K::Peers => "peers".into(),
            K::Members(r) => format!("members({})", s.roles[*r].name),
            K::SelfIs(st) => format!("self is {}", role.map_or("?", |r| r.states[*st].name.as_str())),
            K::InstanceVar { inst, role, var } => {
                format!("{}.{}", self.local_name(*inst), s.roles[*role].vars[*var].name)
            }
            K::InstanceIs { inst, role, state } => {
                format!("{} is {}", self.local_name(*inst), s.roles[*role].states[*state].name)
            }
            K::InstanceId(l) => format!("{}.id", self.local_name(*l)),
            K::ClientAttr { inst, attr } => {
                format!("{}.{}", self.local_name(*inst), format!("{attr:?}").to_lowercase())
            }
            K::None => format!("None: {}", self.ty(&e.ty)),
            K::Some(x) => format!("Some({})", self.expr(x)),
            K::Tuple(xs) => format!("({})", self.list(xs)),
            K::Record { rec, fields, base } => {
                let r = &s.records[*rec];
                format!("{} {}", r.name, self.record_fields(&r.fields, fields, base))
            }
            K::MessageLit { msg, fields, base } => {
                let m = &s.messages[*msg];
                format!("{} {}", m.name, self.record_fields(&m.fields, fields, base))
            }
            K::EnumCtor { en, variant, args } => {
                let en = &s.enums[*en];
                let v = &en.variants[*variant].0;
                if args.is_empty() {
                    format!("{}::{v}", en.name)
                } else {
                    format!("{}::{v}({})", en.name, self.list(args))
                }
            }
            K::RequestCtor { req, args } => {
                let name = &s.service.as_ref().unwrap().requests[*req].name;
                ctor(name, &self.list(args))
            }
            K::ReplyCtor { reply, args } => {
                let name = &s.service.as_ref().unwrap().replies[*reply].name;
                ctor(name, &self.list(args))
            }
            K::List(xs) => format!("[{}]: {}", self.list(xs), self.ty(&e.ty)),
            K::Set(xs) => format!("{{{}}}: {}", self.list(xs), self.ty(&e.ty)),
            K::Map(kvs) => {
                let kvs: Vec<String> = kvs
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.expr(k), self.expr(v)))
                    .collect();
                format!("{{{}}}: {}", kvs.join(", "), self.ty(&e.ty))
            }
            K::Compr {
                kind,
                head,
                head_value,
                pat,
                iter,
                filters,
            } => {
                let h = match head_value {
                    Some(v) => format!("{}: {}", self.expr(head), self.expr(v)),
                    None => self.expr(head),
                };
                let mut t = format!("{h} | {} in {}", self.pat(pat), self.expr(iter));
                for f in filters {
                    write!(t, ", {}", self.expr(f)).unwrap();
                }
                match kind {
                    ComprKind::List => format!("[{t}]"),
                    ComprKind::Set | ComprKind::Map => format!("{{{t}}}"),
                }
            }
            K::Quant { forall, binders, body } => format!(
                "{} {}. {}",
                if *forall { "forall" } else { "exists" },
                self.binders(binders),
                self.expr(body)
            ),
            K::Count { pat, iter, cond } => {
                format!("count({} in {}. {})", self.pat(pat), self.expr(iter), self.expr(cond))
            }
            K::If { cond, then, els } => format!(
                "if {} {{ {} }} else {{ {} }}",
                self.expr(cond),
                self.expr(then),
                self.expr(els)
            ),
            K::Match { scrutinee, arms } => {
                let arms: Vec<String> = arms
                    .iter()
                    .map(|(p, x)| format!("{} => {}", self.pat(p), self.expr(x)))
                    .collect();
                format!("match {} {{ {} }}", self.expr(scrutinee), arms.join(", "))
            }
            K::Unary { op, expr } => {
                let op = match op {
                    UnOp::Neg => "-",
                    UnOp::Not => "!",
                };
                format!("{op}{}", self.operand(expr))
            }
            K::Binary { op, lhs, rhs } => {
                let sym = match op {
                    BinOp::In => "in",
                    op => op.symbol(),
                };
                format!("{} {sym} {}", self.operand(lhs), self.operand(rhs))
            }
            K::Field { base, index } => {
                let name = match base.ty.resolved() {
                    Ty::Record(r) => s.records[r].fields[*index].0.clone(),
                    Ty::Message(m) => s.messages[m].fields[*index].0.clone(),
                    t => format!("<field {index} of {t:?}>"),
                };
                format!("{}.{name}", self.operand(base))
            }
            K::TupleField { base, index } => format!("{}.{index}", self.operand(base)),
            K::Index { base, index } => format!("{}[{}]", self.operand(base), self.expr(index)),
            K::Builtin { f, args } => {
                let name = match f {
                    Builtin::ClientNode => "client_node".to_string(),
                    f => {
                        // `IsSome` -> `is_some`.
                        let mut n = String::new();
                        for (i, c) in format!("{f:?}").chars().enumerate() {
                            if c.is_uppercase() && i > 0 {
                                n.push('_');
                            }
                            n.push(c.to_ascii_lowercase());
                        }
                        n
                    }
                };
                format!("{name}({})", self.list(args))
            }
            K::Call { f, args } => format!("{}({})", s.fns[*f].name, self.list(args)),
            K::Cast { expr, to } => format!("{} as {}", self.operand(expr), to.name()),
        }
    }
}

/// A byte string as a spec literal: printable ASCII as itself, other
/// bytes escaped.
fn bytes_lit(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}
