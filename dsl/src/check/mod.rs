//! `ast::File` → `ir::Spec`: name resolution, type checking and the rules
//! that make a spec trustworthy for the compiler.
//!
//! The checker never stops at the first error. Anything it cannot make sense
//! of gets type `Ty::Error`, which is compatible with everything, so one
//! mistake produces one diagnostic rather than a cascade. A spec with any
//! error yields no IR.
//!
//! Modules: `types` resolves type expressions and declarations, `expr` and
//! `stmt` check bodies, `items` checks roles, services, properties and check
//! configs, and `analysis` produces warnings and the symmetry verdict.

mod analysis;
mod expr;
mod items;
mod stmt;
mod types;

use crate::ast::{self, Ident, Span};
use crate::diag::{suggest, Diagnostic};
use crate::ir::{self, LocalId, RoleId, StateId, Ty};
use std::collections::HashMap;

/// Checks a parsed file. Returns the IR only when there are no errors;
/// warnings are returned either way.
pub fn check(file: &ast::File, src: &str, syntax_errors: bool) -> (Option<ir::Spec>, Vec<Diagnostic>) {
    let mut c = Checker::new(file, src);
    c.syntax_errors = syntax_errors;
    c.run();
    let has_errors = c.diags.iter().any(|d| d.is_error());
    let mut diags = c.diags;
    diags.sort_by_key(|d| (d.primary.span.start, d.primary.span.end));
    diags.dedup();
    if has_errors {
        (None, diags)
    } else {
        (Some(c.spec), diags)
    }
}

/// What a name in the type namespace refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TypeDef {
    Alias(usize),
    Record(usize),
    Enum(usize),
    Message(usize),
    Service,
}

/// Where a body is being checked; decides which names and statements are
/// allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ctx {
    /// A role handler, `entry`, `exit` or `init` block.
    Handler { role: RoleId, block: BlockKind },
    /// The initializer of role variable `var` (vars are initialized in order).
    VarInit { role: RoleId, var: usize, durable: bool },
    /// A service request body or service variable initializer.
    Service,
    /// A pure function body.
    Function,
    /// A property: may quantify over instances and read their variables.
    Property,
    /// A constant or a check config (workload) expression.
    Static,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Handler,
    Init,
    Entry,
    Exit,
}

struct Checker<'a> {
    file: &'a ast::File,
    src: &'a str,
    /// Set while checking the direct argument of an order-insensitive
    /// aggregate (`max`, `len`, ...), so `m.values()` there is symmetric.
    order_insensitive: bool,
    /// Set while checking ghost code (the value of an assignment to a
    /// `ghost` variable, or its initializer): only there may handlers read
    /// ghost variables.
    ghost_ok: bool,
    /// Parts of the file did not parse; usage warnings would be guesses.
    syntax_errors: bool,
    diags: Vec<Diagnostic>,
    spec: ir::Spec,

    types: HashMap<String, (TypeDef, Span)>,
    /// Aliases being resolved, for cycle detection.
    alias_state: Vec<AliasState>,
    consts: HashMap<String, usize>,
    fns: HashMap<String, usize>,
    roles: HashMap<String, RoleId>,
    requests: HashMap<String, usize>,
    replies: HashMap<String, usize>,

    ctx: Ctx,
    scopes: Vec<Vec<(String, LocalId)>>,
    /// Functions called by each function, for recursion detection.
    fn_calls: Vec<Vec<(usize, Span)>>,
    current_fn: Option<usize>,

    // Usage, for warnings.
    msg_handled: Vec<bool>,
    msg_sent: Vec<bool>,
    goto_targets: Vec<Vec<(StateId, StateId)>>,
}

#[derive(Clone, Debug)]
enum AliasState {
    Unresolved,
    InProgress,
    Done,
}

impl<'a> Checker<'a> {
    fn new(file: &'a ast::File, src: &'a str) -> Checker<'a> {
        Checker {
            file,
            src,
            order_insensitive: false,
            ghost_ok: false,
            syntax_errors: false,
            diags: Vec::new(),
            spec: ir::Spec {
                name: String::new(),
                consts: vec![],
                aliases: vec![],
                records: vec![],
                enums: vec![],
                messages: vec![],
                fns: vec![],
                service: None,
                roles: vec![],
                properties: vec![],
                checks: vec![],
                locals: vec![],
                symmetric: true,
                asymmetry: None,
            },
            types: HashMap::new(),
            alias_state: vec![],
            consts: HashMap::new(),
            fns: HashMap::new(),
            roles: HashMap::new(),
            requests: HashMap::new(),
            replies: HashMap::new(),
            ctx: Ctx::Static,
            scopes: vec![],
            fn_calls: vec![],
            current_fn: None,
            msg_handled: vec![],
            msg_sent: vec![],
            goto_targets: vec![],
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self) {
        match &self.file.protocol {
            Some(p) => self.spec.name = p.name.clone(),
            // With syntax errors the declaration may be in a part that did
            // not parse; the syntax error is the one to fix first.
            None if self.syntax_errors && self.src.contains("protocol") => self.spec.name = "Protocol".to_string(),
            None => {
                let span = Span::new(0, 0);
                self.error(
                    Diagnostic::error(span, "the spec does not name its protocol")
                        .label("expected `protocol Name` here")
                        .note("every spec starts with `protocol Name`; the name becomes the generated Rust module"),
                );
                self.spec.name = "Protocol".to_string();
            }
        }
        self.declare_types();
        self.resolve_type_decls();
        self.declare_service();
        self.check_consts();
        self.declare_roles();
        self.reserved_names();
        self.declare_fns();
        self.check_fn_bodies();
        self.check_service_bodies();
        self.check_roles();
        self.check_properties();
        self.check_checks();
        self.analyse();
    }

    // ------------------------------------------------------------ names

    /// Type names the generated Rust module uses itself. A spec type with one
    /// of these names would not compile, so it is rejected here, where the
    /// error can point at the spec.
    fn reserved_names(&mut self) {
        let mut reserved: Vec<(String, String)> = [
            "State",
            "Msg",
            "Timer",
            "Random",
            "Storage",
            "Delta",
            "Flow",
            "Effects",
            "Id",
            "Cow",
            "Duration",
            "HandlerError",
            "Loc",
            "Layout",
            "View",
            "Protocol",
            "Actor",
            "Out",
            "Vec",
            "BTreeMap",
            "BTreeSet",
            "Result",
            "Ok",
            "Err",
            "String",
            "Some",
            "None",
            "Box",
            "Self",
        ]
        .iter()
        .map(|n| (n.to_string(), "a name the generated Rust code uses".to_string()))
        .collect();
        reserved.push((
            self.spec.name.clone(),
            "the name of the protocol (its generated actor type)".into(),
        ));
        for r in &self.spec.roles {
            reserved.push((r.name.clone(), format!("the name of role `{}`", r.name)));
            for suffix in ["State", "Phase", "Storage", "Delta", "Timer", "Choice"] {
                reserved.push((
                    format!("{}{suffix}", r.name),
                    format!("generated for role `{}`", r.name),
                ));
            }
        }
        let mut found: Vec<(Span, String, String)> = Vec::new();
        for (name, (_, span)) in &self.types {
            if let Some((_, why)) = reserved.iter().find(|(n, _)| n == name) {
                found.push((*span, name.clone(), why.clone()));
            }
        }
        found.sort();
        for (span, name, why) in found {
            self.error(
                Diagnostic::error(span, format!("the type name `{name}` is reserved"))
                    .label("choose another name")
                    .note(format!("`{name}` is {why}")),
            );
        }
    }

    /// Reports a duplicate declaration.
    ///
    /// `what` is a kind ("type") or, like for `unknown`, "kind of owner:"
    /// ("field of record `P`:"), which reads "field `x` of record `P`".
    fn duplicate(&mut self, what: &str, name: &Ident, first: Span) {
        let message = match what.strip_suffix(':').and_then(|w| w.split_once(" of ")) {
            Some((kind, owner)) => format!("{kind} `{}` of {owner} is declared twice", name.name),
            None => format!("{what} `{}` is declared twice", name.name),
        };
        self.error(
            Diagnostic::error(name.span, message)
                .label("declared again here")
                .secondary(first, "first declared here"),
        );
    }

    /// Reports an unknown name, with a suggestion from `candidates`.
    ///
    /// `what` is either a kind ("type") or "kind of owner:" ("timer of role
    /// `Server`:"), which reads as "role `Server` has no timer `x`".
    fn unknown(&mut self, what: &str, name: &Ident, candidates: Vec<String>, extra_note: Option<String>) {
        if self.file.broken.contains(&name.name) {
            return;
        }
        let (message, kind) = match what.strip_suffix(':').and_then(|w| w.split_once(" of ")) {
            Some((kind, owner)) => (format!("{owner} has no {kind} `{}`", name.name), kind.to_string()),
            None => (format!("unknown {what} `{}`", name.name), what.to_string()),
        };
        let mut d = Diagnostic::error(name.span, message);
        match suggest(&name.name, candidates.iter().map(String::as_str)) {
            Some(s) => d = d.label(format!("did you mean `{s}`?")),
            None if kind == "name" => d = d.label("not declared anywhere"),
            None => d = d.label(format!("no {kind} with this name")),
        }
        if let Some(n) = extra_note {
            d = d.note(n);
        }
        self.error(d);
    }

    fn new_local(&mut self, name: &str, ty: Ty, span: Span) -> LocalId {
        let id = self.spec.locals.len();
        self.spec.locals.push(ir::Local {
            name: name.to_string(),
            ty,
            span,
        });
        id
    }

    /// Declares a local in the innermost scope.
    fn bind(&mut self, name: &Ident, ty: Ty) -> LocalId {
        if name.name.starts_with("__") {
            self.error(
                Diagnostic::error(
                    name.span,
                    format!(
                        "`{}`: names starting with `__` are reserved for generated code",
                        name.name
                    ),
                )
                .label("choose another name"),
            );
        }
        let id = self.new_local(&name.name, ty, name.span);
        if let Some(scope) = self.scopes.last_mut() {
            scope.push((name.name.clone(), id));
        }
        id
    }

    fn lookup_local(&self, name: &str) -> Option<LocalId> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    fn push_scope(&mut self) {
        self.scopes.push(Vec::new());
    }

    fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    /// Runs `f` with a fresh context and scope stack.
    fn in_ctx<T>(&mut self, ctx: Ctx, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved_ctx = std::mem::replace(&mut self.ctx, ctx);
        let saved_scopes = std::mem::take(&mut self.scopes);
        self.scopes.push(Vec::new());
        let r = f(self);
        self.scopes = saved_scopes;
        self.ctx = saved_ctx;
        r
    }

    fn role_of_ctx(&self) -> Option<RoleId> {
        match self.ctx {
            Ctx::Handler { role, .. } | Ctx::VarInit { role, .. } => Some(role),
            _ => None,
        }
    }

    /// Every name visible as a value here, for suggestions.
    fn value_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.iter().flatten().map(|(n, _)| n.clone()).collect();
        v.extend(self.consts.keys().cloned());
        if let Some(r) = self.role_of_ctx() {
            v.extend(self.spec.roles[r].vars.iter().map(|x| x.name.clone()));
            v.extend(["servers", "peers"].map(String::from));
        }
        if self.ctx == Ctx::Service {
            if let Some(s) = &self.spec.service {
                v.extend(s.vars.iter().map(|x| x.name.clone()));
            }
        }
        if self.ctx == Ctx::Property {
            v.extend(["servers"].map(String::from));
        }
        v.push("None".to_string());
        v
    }
}
