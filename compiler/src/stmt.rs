//! Statements.
//!
//! In a handler, state lives in `st: &mut Cow<RoleState>`. Every write
//! first compares with the current value and calls `st.to_mut()` only if
//! something changes, so a handler whose guards or conditions leave the
//! state alone hands stateright back a borrowed `Cow`, and the checker can
//! prune the step as a no-op. A change to a durable variable sets `dirty`
//! (the handler's storage is saved once, at the end) and, on the runtime,
//! reports a delta sized to the change: pushing onto a durable list reports
//! the pushed element, not the list.

use crate::expr::Scope;
use crate::names::{camel, ident};
use crate::Gen;
use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{format_ident, quote};
use smelt_dsl::ir::{Builtin, ExprKind, Mutation, Pat, Stmt, StmtKind as S, Target, TargetElem, TargetRoot, Ty};

impl Gen<'_> {
    pub fn stmts(&self, stmts: &[Stmt], sc: Scope) -> TokenStream {
        let mut out = TokenStream::new();
        let mut i = 0;
        while i < stmts.len() {
            if let Some(fused) = self.apply_in_place(stmts, i, sc) {
                out.extend(fused);
                i += 2;
            } else {
                out.extend(self.stmt(&stmts[i], sc));
                i += 1;
            }
        }
        out
    }

    /// `let (next, out) = apply(kv, r)` directly followed by `kv = next`,
    /// with `next` not used again, is how a spec applies a request to a
    /// service-typed variable. Taken literally it copies the whole service
    /// state (a key-value map) per request, which made a raft.sm node's cost
    /// per commit grow with the number of keys. When the handler already
    /// owns its state -- always on the runtime, and in the checker once
    /// the handler has changed something -- the pair becomes one in-place
    /// `apply`. A borrowed state keeps the copy-and-compare form, so a
    /// request that changes nothing (a read) still leaves the state
    /// borrowed and the checker still sees a no-op. A durable variable
    /// reports the request as its delta; a ghost one keeps the general form
    /// (inside its `E::GHOST` guard).
    fn apply_in_place(&self, stmts: &[Stmt], i: usize, sc: Scope) -> Option<TokenStream> {
        let Scope::Handler(role) = sc else { return None };
        let S::Let {
            pat: Pat::Tuple(pats),
            value,
        } = &stmts[i].kind
        else {
            return None;
        };
        let [Pat::Bind(next), reply_pat] = pats.as_slice() else {
            return None;
        };
        let ExprKind::Builtin {
            f: Builtin::Apply,
            args,
        } = &value.kind
        else {
            return None;
        };
        // `apply(s, r)`, or through the session table `apply(s, c, r)`.
        let (svc, client, req) = match args.as_slice() {
            [svc, req] => (svc, None, req),
            [svc, c, req] => (svc, Some(c), req),
            _ => return None,
        };
        let ExprKind::Var(v) = svc.kind else { return None };
        let S::Assign { target, value: back } = &stmts.get(i + 1)?.kind else {
            return None;
        };
        let same_var = matches!(target.root, TargetRoot::Var(t) if t == v) && target.path.is_empty();
        if !same_var || !matches!(back.kind, ExprKind::Local(l) if l == *next) {
            return None;
        }
        let var = &self.spec.roles[role].vars[v];
        // A name can only be over-approximated here (another local may
        // share it), which at worst keeps the general form.
        if var.ghost || mentions(&self.stmts(&stmts[i + 2..], sc), &self.local_name(*next)) {
            return None;
        }
        let n = ident(&var.name);
        let p = self.pat(reply_pat);
        let r = self.expr_owned(req, sc);
        // A durable store logs the request itself (`<Var>Apply`; through
        // the session table `<Var>ApplySession`, with the client and the
        // table's capacity), which the storage replays through the same
        // `apply`. Applied in place the change is not compared (that would
        // copy the store), so the storage counts as changed; a borrowed
        // state still compares, so a read stays a no-op in the checker.
        let (bind_client, call, delta) = match client {
            Some(c) => {
                let c = self.expr_owned(c, sc);
                let a = format_ident!("{}ApplySession", camel(&var.name));
                (
                    quote!(let __c: Client = #c;),
                    quote!(apply_session(&__c, &__req, self.sessions)),
                    quote!(#a(__c, __req.clone(), self.sessions)),
                )
            }
            None => {
                let a = format_ident!("{}Apply", camel(&var.name));
                (quote!(), quote!(apply(&__req)), quote!(#a(__req.clone())))
            }
        };
        let mark = if var.durable {
            let rn = ident(&self.spec.roles[role].name);
            let dt = self.role_ident(role, "Delta");
            quote!(*dirty = true; if E::DELTAS { fx.delta(Delta::#rn(#dt::#delta)); })
        } else {
            quote!()
        };
        let owned = if var.durable {
            quote!(let __reply = __st.#n.#call?; #mark __reply)
        } else {
            quote!(__st.#n.#call?)
        };
        Some(quote!(
            let #p = {
                let __req = #r;
                #bind_client
                if let ::std::borrow::Cow::Owned(__st) = &mut *st {
                    #owned
                } else {
                    let mut __service = st.#n.clone();
                    let __reply = __service.#call?;
                    if st.#n != __service {
                        st.to_mut().#n = __service;
                        #mark
                    }
                    __reply
                }
            };
        ))
    }

    fn stmt(&self, st: &Stmt, sc: Scope) -> TokenStream {
        let s = &self.s;
        let at = self.loc(st.span);
        match &st.kind {
            S::Let { pat, value } => {
                let p = self.pat(pat);
                let v = self.expr_owned(value, sc);
                quote!(let #p = #v;)
            }
            S::Assign { target, value } => self.ghost_guard(target, sc, self.assign(target, value, sc)),
            S::Mutate { target, op, args } => self.ghost_guard(target, sc, self.mutate(target, *op, args, sc)),
            S::If { cond, then, els } => {
                let c = self.expr_owned(cond, sc);
                let t = self.stmts(then, sc);
                if els.is_empty() {
                    quote!(if #c { #t })
                } else {
                    let e = self.stmts(els, sc);
                    quote!(if #c { #t } else { #e })
                }
            }
            S::For { pat, iter, body } => {
                // Iterate over the value at loop start, so the body may
                // change the collection it walks.
                let p = self.pat(pat);
                let it = self.expr_owned(iter, sc);
                let b = self.stmts(body, sc);
                quote!(for #p in #it { #b })
            }
            S::Match { scrutinee, arms } => {
                let x = self.expr_owned(scrutinee, sc);
                let arms = arms.iter().map(|(p, b)| {
                    let p = self.pat(p);
                    let b = self.stmts(b, sc);
                    quote!(#p => { #b })
                });
                quote!(match #x {
                    #(#arms)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                })
            }
            S::Send { dst, msg, early } => {
                let d = self.expr_owned(dst, sc);
                let m = self.expr_owned(msg, sc);
                let send = send_fn(*early);
                quote!(fx.#send(#d, Msg::from(#m));)
            }
            S::Broadcast { dsts, msg, early } => {
                let d = self.expr_ref(dsts, sc);
                let m = self.expr_owned(msg, sc);
                let send = send_fn(*early);
                quote!({
                    let __msg = Msg::from(#m);
                    for __dst in (#d).iter() {
                        fx.#send(*__dst, __msg.clone());
                    }
                })
            }
            S::Goto(state) => {
                let Scope::Handler(role) = sc else { return quote!() };
                let phase = self.role_ident(role, "Phase");
                let n = ident(&self.spec.roles[role].states[*state].name);
                quote!(return Ok(Flow::Goto(#phase::#n));)
            }
            S::SetTimer(t) | S::CancelTimer(t) => {
                let Scope::Handler(role) = sc else { return quote!() };
                let r = ident(&self.spec.roles[role].name);
                let tt = self.role_ident(role, "Timer");
                let timer = &self.spec.roles[role].timers[*t];
                let v = camel(&timer.name);
                if matches!(st.kind, S::SetTimer(_)) {
                    let (lo, hi) = (timer.min_us, timer.max_us);
                    quote!(fx.set_timer(Timer::#r(#tt::#v), Duration::from_micros(#lo)..Duration::from_micros(#hi));)
                } else {
                    quote!(fx.cancel_timer(Timer::#r(#tt::#v));)
                }
            }
            S::Reply { client, value } => {
                let c = self.expr_owned(client, sc);
                let v = self.expr_owned(value, sc);
                quote!({
                    let __client: Client = #c;
                    fx.send(__client.node(), Msg::Reply(__client, #v));
                })
            }
            S::ServiceReply(v) => {
                let v = self.expr_owned(v, sc);
                quote!(reply = Some(#v);)
            }
            S::Redirect { client, to } => {
                let c = self.expr_owned(client, sc);
                let t = self.expr_owned(to, sc);
                quote!({
                    let __client: Client = #c;
                    fx.send(__client.node(), Msg::Redirect(__client, #t));
                })
            }
            S::Choose { choice, options } => {
                let Scope::Handler(role) = sc else { return quote!() };
                let r = ident(&self.spec.roles[role].name);
                let ct = self.role_ident(role, "Choice");
                let name = &self.spec.roles[role].choices[*choice].name;
                let v = camel(name);
                let o = self.expr_ref(options, sc);
                quote!(fx.choose(#name, (#o).iter().cloned().map(|x| Random::#r(#ct::#v(x))).collect());)
            }
            S::Assert { cond, text } => {
                let c = self.expr_owned(cond, sc);
                quote!(#s::ops::assert(#c, #at, #text)?;)
            }
            S::Return => match sc {
                Scope::Service => quote!(return #s::ops::unwrap(reply, #at);),
                _ => quote!(return Ok(Flow::Stay);),
            },
        }
    }

    /// The role and variable a target writes, when it is a role variable.
    fn target_var(&self, t: &Target, sc: Scope) -> Option<(usize, usize)> {
        match (&t.root, sc) {
            (TargetRoot::Var(v), Scope::Handler(r)) => Some((r, *v)),
            _ => None,
        }
    }

    /// Read and write paths for a target, up to (not including) the last
    /// element when `stop_before_last`. Index keys are bound to `__k{i}`
    /// locals by `keys`.
    fn target_paths(&self, t: &Target, sc: Scope, upto: usize) -> (TokenStream, TokenStream, TokenStream) {
        let s = &self.s;
        let at = self.loc(t.span);
        let (mut read, mut write, mut ty) = match &t.root {
            TargetRoot::Var(v) => {
                let Scope::Handler(role) = sc else {
                    return (quote!(), quote!(), quote!());
                };
                let var = &self.spec.roles[role].vars[*v];
                let n = ident(&var.name);
                (quote!(st.#n), quote!(__st.#n), var.ty.clone())
            }
            TargetRoot::ServiceVar(v) => {
                let var = &self.spec.service.as_ref().expect("service").vars[*v];
                let n = ident(&var.name);
                (quote!(self.#n), quote!(self.#n), var.ty.clone())
            }
        };
        let mut keys = TokenStream::new();
        for (i, e) in t.path.iter().enumerate() {
            if let TargetElem::Index(x) = e {
                let k = format_ident!("__k{}", i);
                let v = self.expr_owned(x, sc);
                keys.extend(quote!(let #k = #v;));
            }
            if i >= upto {
                continue;
            }
            let rt = ty.resolved();
            match e {
                TargetElem::Field(f) => {
                    let (name, fty) = match &rt {
                        Ty::Record(id) => self.spec.records[*id].fields[*f].clone(),
                        _ => (format!("field{f}"), Ty::Error),
                    };
                    let n = ident(&name);
                    read = quote!(#read.#n);
                    write = quote!(#write.#n);
                    ty = fty;
                }
                TargetElem::TupleField(f) => {
                    let idx = syn::Index::from(*f);
                    read = quote!(#read.#idx);
                    write = quote!(#write.#idx);
                    ty = match &rt {
                        Ty::Tuple(ts) => ts[*f].clone(),
                        _ => Ty::Error,
                    };
                }
                TargetElem::Index(_) => {
                    let k = format_ident!("__k{}", i);
                    match &rt {
                        Ty::Map(_, v) => {
                            read = quote!((*#s::ops::map_get(&#read, &#k, #at)?));
                            write = quote!((*#s::ops::map_get_mut(&mut #write, &#k, #at)?));
                            ty = (**v).clone();
                        }
                        Ty::List(v) => {
                            read = quote!((*#s::ops::list_get(&#read, #k, #at)?));
                            write = quote!((*#s::ops::list_get_mut(&mut #write, #k, #at)?));
                            ty = (**v).clone();
                        }
                        _ => {}
                    }
                }
            }
        }
        (keys, read, write)
    }

    /// The delta reporting a change to durable variable `var` after a write
    /// through `t` (whose value now lives at `__st`).
    fn after_write_delta(&self, role: usize, var: usize, t: &Target) -> TokenStream {
        let s = &self.s;
        let at = self.loc(t.span);
        let r = ident(&self.spec.roles[role].name);
        let dt = self.role_ident(role, "Delta");
        let v = &self.spec.roles[role].vars[var];
        let n = ident(&v.name);
        let c = camel(&v.name);
        let whole = quote!(fx.delta(Delta::#r(#dt::#c(__st.#n.clone()))););
        let d = match (t.path.first(), v.ty.resolved()) {
            (None, _) => whole,
            (Some(TargetElem::Index(_)), Ty::List(_)) => {
                let set = format_ident!("{}Set", c);
                quote!(fx.delta(Delta::#r(#dt::#set(__k0 as u64, #s::ops::list_get(&__st.#n, __k0, #at)?.clone())));)
            }
            (Some(TargetElem::Index(_)), Ty::Map(..)) => {
                let ins = format_ident!("{}Insert", c);
                quote!(fx.delta(Delta::#r(#dt::#ins(__k0.clone(), #s::ops::map_get(&__st.#n, &__k0, #at)?.clone())));)
            }
            _ => whole,
        };
        quote!(if E::DELTAS { #d })
    }

    /// A write to a `ghost` variable runs only where `E::GHOST` (the
    /// checker, which evaluates the properties that read it); the runtime
    /// compiles it away. The language guarantees protocol code never reads
    /// ghost state, so skipping the write changes nothing else.
    fn ghost_guard(&self, t: &Target, sc: Scope, code: TokenStream) -> TokenStream {
        match self.target_var(t, sc) {
            Some((role, var)) if self.spec.roles[role].vars[var].ghost => {
                // `assign` yields one `{ ... }` block: reuse its braces.
                let mut it = code.clone().into_iter();
                match (it.next(), it.next()) {
                    (Some(proc_macro2::TokenTree::Group(g)), None)
                        if g.delimiter() == proc_macro2::Delimiter::Brace =>
                    {
                        quote!(if E::GHOST #code)
                    }
                    _ => quote!(if E::GHOST { #code }),
                }
            }
            _ => code,
        }
    }

    fn assign(&self, t: &Target, value: &smelt_dsl::ir::Expr, sc: Scope) -> TokenStream {
        let s = &self.s;
        let at = self.loc(t.span);
        let v = self.expr_owned(value, sc);
        let last_index = matches!(t.path.last(), Some(TargetElem::Index(_)));
        let upto = if last_index { t.path.len() - 1 } else { t.path.len() };
        let (keys, read, write) = self.target_paths(t, sc, upto);
        let parent_ty = parent_type(self, t, upto, sc);
        let k = format_ident!("__k{}", t.path.len().saturating_sub(1));
        let (changed, store) = if last_index {
            match parent_ty.resolved() {
                Ty::Map(..) => (
                    quote!(#read.get(&#k) != Some(&__v)),
                    quote!(#write.insert(#k.clone(), __v);),
                ),
                _ => (
                    quote!(*#s::ops::list_get(&#read, #k, #at)? != __v),
                    quote!(*#s::ops::list_get_mut(&mut #write, #k, #at)? = __v;),
                ),
            }
        } else {
            (quote!(#read != __v), quote!(#write = __v;))
        };
        match self.target_var(t, sc) {
            Some((role, var)) => {
                let durable = self.spec.roles[role].vars[var].durable;
                let mark = if durable {
                    let d = self.after_write_delta(role, var, t);
                    quote!(*dirty = true; #d)
                } else {
                    quote!()
                };
                quote!({
                    let __v = #v;
                    #keys
                    if #changed {
                        let __st = st.to_mut();
                        #store
                        #mark
                    }
                })
            }
            None => {
                // The service state is a plain value: write it directly.
                quote!({
                    let __v = #v;
                    #keys
                    #store
                })
            }
        }
    }

    fn mutate(&self, t: &Target, op: Mutation, args: &[smelt_dsl::ir::Expr], sc: Scope) -> TokenStream {
        let (keys, read, write) = self.target_paths(t, sc, t.path.len());
        let arg_names: Vec<proc_macro2::Ident> = (0..args.len()).map(|i| format_ident!("__a{}", i)).collect();
        let arg_binds = args.iter().zip(&arg_names).map(|(a, n)| {
            let v = self.expr_owned(a, sc);
            quote!(let #n = #v;)
        });
        let is_map = matches!(t.ty.resolved(), Ty::Map(..));
        let a0 = arg_names.first().cloned();
        let a1 = arg_names.get(1).cloned();
        let (changed, store) = match op {
            Mutation::Push => (quote!(true), quote!(#write.push(#a0);)),
            Mutation::Truncate => {
                let s = &self.s;
                (
                    quote!((#a0 as u128) < (#read.len() as u128)),
                    quote!(#s::ops::truncate(&mut #write, #a0);),
                )
            }
            Mutation::DropFirst => {
                let s = &self.s;
                (
                    quote!((#a0 as u128) > 0 && !#read.is_empty()),
                    quote!(#s::ops::drop_first(&mut #write, #a0);),
                )
            }
            Mutation::Extend => (quote!(!#a0.is_empty()), quote!(#write.extend(#a0);)),
            Mutation::Insert if is_map => (quote!(#read.get(&#a0) != Some(&#a1)), quote!(#write.insert(#a0, #a1);)),
            Mutation::Insert => (quote!(!#read.contains(&#a0)), quote!(#write.insert(#a0);)),
            Mutation::Remove if is_map => (quote!(#read.contains_key(&#a0)), quote!(#write.remove(&#a0);)),
            Mutation::Remove => (quote!(#read.contains(&#a0)), quote!(#write.remove(&#a0);)),
            Mutation::Clear => (quote!(!#read.is_empty()), quote!(#write.clear();)),
        };
        match self.target_var(t, sc) {
            Some((role, var)) => {
                let durable = self.spec.roles[role].vars[var].durable;
                let (before, after) = if !durable {
                    (quote!(), quote!())
                } else if t.path.is_empty() {
                    // A mutation of the whole durable variable: report the
                    // operation itself, which is what makes appends cheap.
                    let r = ident(&self.spec.roles[role].name);
                    let dt = self.role_ident(role, "Delta");
                    let c = camel(&self.spec.roles[role].vars[var].name);
                    let d = match op {
                        Mutation::Push => {
                            let x = format_ident!("{}Push", c);
                            quote!(#dt::#x(#a0.clone()))
                        }
                        Mutation::Truncate => {
                            let x = format_ident!("{}Truncate", c);
                            quote!(#dt::#x(#a0 as u64))
                        }
                        Mutation::DropFirst => {
                            let x = format_ident!("{}DropFirst", c);
                            quote!(#dt::#x(#a0 as u64))
                        }
                        Mutation::Extend => {
                            let x = format_ident!("{}Extend", c);
                            quote!(#dt::#x(#a0.clone()))
                        }
                        Mutation::Insert if is_map => {
                            let x = format_ident!("{}Insert", c);
                            quote!(#dt::#x(#a0.clone(), #a1.clone()))
                        }
                        Mutation::Insert => {
                            let x = format_ident!("{}Insert", c);
                            quote!(#dt::#x(#a0.clone()))
                        }
                        Mutation::Remove => {
                            let x = format_ident!("{}Remove", c);
                            quote!(#dt::#x(#a0.clone()))
                        }
                        Mutation::Clear => quote!(#dt::#c(Default::default())),
                    };
                    (
                        quote!(*dirty = true; if E::DELTAS { fx.delta(Delta::#r(#d)); }),
                        quote!(),
                    )
                } else {
                    (quote!(*dirty = true;), self.after_write_delta(role, var, t))
                };
                quote!({
                    #(#arg_binds)*
                    #keys
                    if #changed {
                        #before
                        let __st = st.to_mut();
                        #store
                        #after
                    }
                })
            }
            None => quote!({
                #(#arg_binds)*
                #keys
                if #changed {
                    #store
                }
            }),
        }
    }
}

/// The type of the location holding the last element of `t.path` (the
/// collection an index writes into).
fn parent_type(g: &Gen, t: &Target, upto: usize, sc: Scope) -> Ty {
    let mut ty = match (&t.root, sc) {
        (TargetRoot::Var(v), Scope::Handler(r)) => g.spec.roles[r].vars[*v].ty.clone(),
        (TargetRoot::Var(_), _) => Ty::Error,
        (TargetRoot::ServiceVar(v), _) => g
            .spec
            .service
            .as_ref()
            .map(|s| s.vars[*v].ty.clone())
            .unwrap_or(Ty::Error),
    };
    for e in &t.path[..upto] {
        ty = match (e, ty.resolved()) {
            (TargetElem::Field(f), Ty::Record(id)) => g.spec.records[id].fields[*f].1.clone(),
            (TargetElem::TupleField(f), Ty::Tuple(ts)) => ts[*f].clone(),
            (TargetElem::Index(_), Ty::Map(_, v)) => *v,
            (TargetElem::Index(_), Ty::List(v)) => *v,
            _ => Ty::Error,
        };
    }
    ty
}

/// Whether `ts` contains the identifier `id` anywhere.
fn mentions(ts: &TokenStream, id: &Ident) -> bool {
    ts.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == *id,
        TokenTree::Group(g) => mentions(&g.stream(), id),
        _ => false,
    })
}

/// The `Effects` method for a send: `send_early` lets the runtime release
/// the message before the handler's own durable writes are on disk.
fn send_fn(early: bool) -> Ident {
    if early {
        format_ident!("send_early")
    } else {
        format_ident!("send")
    }
}

/// Whether any of `body` (nested blocks included) is a `send early` or
/// `broadcast early`.
pub(crate) fn sends_early(body: &[Stmt]) -> bool {
    body.iter().any(|s| match &s.kind {
        S::Send { early, .. } | S::Broadcast { early, .. } => *early,
        S::If { then, els, .. } => sends_early(then) || sends_early(els),
        S::For { body, .. } => sends_early(body),
        S::Match { arms, .. } => arms.iter().any(|(_, b)| sends_early(b)),
        _ => false,
    })
}
