//! Expressions and patterns.
//!
//! An expression is generated either as an owned value (`expr_owned`) or as
//! a reference (`expr_ref`). Places — variables, fields, map entries — are
//! borrowed where a reference will do and cloned only when a value is
//! needed, and `Copy` values are never cloned, which keeps the output
//! readable. Partial operations go through `smelt_support::ops` and end in
//! `?`, so every generated function that evaluates expressions returns
//! `Result<_, HandlerError>`.

use crate::names::{ident, local};
use crate::ty::int_ty;
use crate::Gen;
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use smelt_dsl::ast::{BinOp, ComprKind, UnOp};
use smelt_dsl::ir::{Binder, Builtin, ClientAttr, Expr, ExprKind as K, Pat, Ty};
use std::cell::Cell;

/// Where an expression is evaluated; decides how variables are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A handler of a role: `self` is the role's actor, `st` its state.
    Handler(usize),
    /// A role variable initializer in `on_start`: earlier variables are locals.
    VarInit(usize),
    /// A service request: `self` is the service state.
    Service,
    /// A spec function.
    Function,
    /// A property: `view` gives the global state.
    Property,
    /// A constant or workload expression.
    Static,
}

thread_local! {
    static LABELS: Cell<u32> = const { Cell::new(0) };
}

/// A fresh loop label, for quantifiers that must break out of nested loops.
fn label() -> syn::Lifetime {
    let n = LABELS.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1) % 10_000);
        n
    });
    syn::Lifetime::new(&format!("'q{n}"), proc_macro2::Span::call_site())
}

pub fn reset_labels() {
    LABELS.with(|c| c.set(0));
}

impl Gen<'_> {
    /// A parameter of a spec function whose type is not `Copy` is passed
    /// by reference: `term_at(log, i)` must not copy a whole log per call.
    /// Inside the function its place is `(*name)`, so every use reads
    /// exactly as it would for an owned local of the same type.
    pub fn by_ref_param(&self, l: usize) -> bool {
        self.spec.fns.iter().any(|f| f.params.contains(&l)) && !self.is_copy(&self.spec.locals[l].ty)
    }

    pub fn local_name(&self, l: usize) -> proc_macro2::Ident {
        local(&self.spec.locals[l].name)
    }

    /// The `Id` companion of a role-instance binder.
    fn instance_id(&self, l: usize) -> proc_macro2::Ident {
        format_ident!("{}_id", self.local_name(l))
    }

    pub fn expr_owned(&self, e: &Expr, sc: Scope) -> TokenStream {
        match self.place(e, sc) {
            Some(p) if self.is_copy(&e.ty) => p,
            Some(p) => quote!(#p.clone()),
            None => self.construct(e, sc),
        }
    }

    pub fn expr_ref(&self, e: &Expr, sc: Scope) -> TokenStream {
        match self.place(e, sc) {
            Some(p) => quote!(&#p),
            None => {
                let v = self.construct(e, sc);
                quote!(&(#v))
            }
        }
    }

    /// `l.take(n)` or `l.skip(n)` of a list.
    fn is_list_cut(&self, e: &Expr) -> bool {
        matches!(e.ty.resolved(), Ty::List(_))
            && matches!(
                e.kind,
                K::Builtin {
                    f: Builtin::Take | Builtin::Skip,
                    ..
                }
            )
    }

    /// A list-typed expression as a `&[T]`, without copying a `take` or a
    /// `skip` of a list.
    fn list_slice(&self, e: &Expr, sc: Scope) -> TokenStream {
        let s = &self.s;
        if let K::Builtin {
            f: f @ (Builtin::Take | Builtin::Skip),
            args,
        } = &e.kind
        {
            if matches!(args[0].ty.resolved(), Ty::List(_)) {
                let (a, n) = (self.expr_ref(&args[0], sc), self.expr_owned(&args[1], sc));
                let g = if *f == Builtin::Skip {
                    quote!(skip_slice)
                } else {
                    quote!(take_slice)
                };
                return quote!(#s::ops::#g(#a, #n));
            }
        }
        match self.place(e, sc) {
            Some(p) => quote!(&#p[..]),
            None => {
                let v = self.construct(e, sc);
                quote!(&(#v)[..])
            }
        }
    }

    /// A place expression (of type `T`, borrowable), when `e` denotes one.
    fn place(&self, e: &Expr, sc: Scope) -> Option<TokenStream> {
        let s = &self.s;
        Some(match &e.kind {
            K::Local(l) if self.by_ref_param(*l) => {
                let n = self.local_name(*l);
                quote!((*#n))
            }
            K::Local(l) => {
                let n = self.local_name(*l);
                quote!(#n)
            }
            K::Var(v) => {
                let role = match sc {
                    Scope::Handler(r) | Scope::VarInit(r) => r,
                    _ => return None,
                };
                let n = ident(&self.spec.roles[role].vars[*v].name);
                match sc {
                    Scope::Handler(_) => quote!(st.#n),
                    _ => quote!(#n),
                }
            }
            K::ServiceVar(v) => {
                let n = ident(&self.spec.service.as_ref()?.vars[*v].name);
                quote!(self.#n)
            }
            K::Const(c) => {
                let n = format_ident!("{}", self.spec.consts[*c].name);
                quote!(#n)
            }
            K::Servers if matches!(sc, Scope::Handler(_) | Scope::VarInit(_)) => quote!(self.servers),
            K::Peers if matches!(sc, Scope::Handler(_) | Scope::VarInit(_)) => quote!(self.peers),
            K::Members(r) if matches!(sc, Scope::Handler(_) | Scope::VarInit(_)) => {
                let r = *r;
                quote!(self.members[#r])
            }
            K::InstanceVar { inst, role, var } => {
                let i = self.local_name(*inst);
                let n = ident(&self.spec.roles[*role].vars[*var].name);
                quote!(#i.#n)
            }
            K::Field { base, index } => {
                let b = self.place(base, sc)?;
                let f = ident(&field_name(self, &base.ty, *index));
                quote!(#b.#f)
            }
            K::TupleField { base, index } => {
                let b = self.place(base, sc)?;
                let i = syn::Index::from(*index);
                quote!(#b.#i)
            }
            K::Index { base, index } => {
                let at = self.loc(e.span);
                let b = self.expr_ref(base, sc);
                match base.ty.resolved() {
                    Ty::Map(..) => {
                        let k = self.expr_ref(index, sc);
                        quote!((*#s::ops::map_get(#b, #k, #at)?))
                    }
                    _ => {
                        let i = self.expr_owned(index, sc);
                        quote!((*#s::ops::list_get(#b, #i, #at)?))
                    }
                }
            }
            _ => return None,
        })
    }

    fn int_lit(&self, v: i128, t: &Ty) -> TokenStream {
        let lit = match t.int() {
            Some(smelt_dsl::ir::IntTy::U8) => Literal::u8_suffixed(v as u8),
            Some(smelt_dsl::ir::IntTy::U16) => Literal::u16_suffixed(v as u16),
            Some(smelt_dsl::ir::IntTy::U32) => Literal::u32_suffixed(v as u32),
            Some(smelt_dsl::ir::IntTy::I8) => Literal::i8_suffixed(v as i8),
            Some(smelt_dsl::ir::IntTy::I16) => Literal::i16_suffixed(v as i16),
            Some(smelt_dsl::ir::IntTy::I32) => Literal::i32_suffixed(v as i32),
            Some(smelt_dsl::ir::IntTy::I64) => Literal::i64_suffixed(v as i64),
            _ => Literal::u64_suffixed(v as u64),
        };
        quote!(#lit)
    }

    /// Builds the value of a non-place expression.
    fn construct(&self, e: &Expr, sc: Scope) -> TokenStream {
        let s = &self.s;
        let at = self.loc(e.span);
        match &e.kind {
            K::Int(v) => self.int_lit(*v, &e.ty),
            K::Bool(b) => quote!(#b),
            K::Bytes(b) => bytes_lit(b),
            K::SelfNode => quote!(me),
            K::Restarted => quote!(restarted),
            K::ServiceInitial => {
                let n = ident(&self.spec.service.as_ref().map(|s| s.name.clone()).unwrap_or_default());
                quote!(#n::initial()?)
            }
            K::Servers => quote!(servers_of(view)),
            K::Peers => quote!(BTreeSet::<Id>::new()),
            K::Members(r) => {
                let r = *r;
                quote!(members_of(view, #r))
            }
            K::SelfIs(state) => {
                let Scope::Handler(role) = sc else { return quote!(false) };
                let phase = self.role_ident(role, "Phase");
                let st = ident(&self.spec.roles[role].states[*state].name);
                quote!(matches!(st.phase, #phase::#st))
            }
            K::InstanceIs { inst, role, state } => {
                let i = self.local_name(*inst);
                let phase = self.role_ident(*role, "Phase");
                let st = ident(&self.spec.roles[*role].states[*state].name);
                quote!(matches!(#i.phase, #phase::#st))
            }
            K::InstanceId(l) => {
                let i = self.instance_id(*l);
                quote!(#i)
            }
            K::ClientAttr { inst, attr } => {
                let i = self.local_name(*inst);
                match attr {
                    ClientAttr::Done => quote!(#i.done()),
                    ClientAttr::Waiting => quote!(#i.waiting()),
                    ClientAttr::Completed => quote!(#i.completed()),
                    ClientAttr::Id => {
                        let id = self.instance_id(*inst);
                        quote!(#id)
                    }
                }
            }
            K::None => quote!(None),
            K::Some(x) => {
                let x = self.expr_owned(x, sc);
                quote!(Some(#x))
            }
            K::Tuple(xs) => {
                let xs = xs.iter().map(|x| self.expr_owned(x, sc));
                quote!((#(#xs,)*))
            }
            K::Record { rec, fields, base } => {
                let n = ident(&self.spec.records[*rec].name);
                let names: Vec<String> = self.spec.records[*rec].fields.iter().map(|(f, _)| f.clone()).collect();
                self.struct_lit(quote!(#n), &names, fields, base.as_deref(), sc)
            }
            K::MessageLit { msg, fields, base } => {
                let n = ident(&self.spec.messages[*msg].name);
                let names: Vec<String> = self.spec.messages[*msg].fields.iter().map(|(f, _)| f.clone()).collect();
                self.struct_lit(quote!(#n), &names, fields, base.as_deref(), sc)
            }
            K::EnumCtor { en, variant, args } => {
                let e = ident(&self.spec.enums[*en].name);
                let v = ident(&self.spec.enums[*en].variants[*variant].0);
                if args.is_empty() {
                    quote!(#e::#v)
                } else {
                    let args = args.iter().map(|a| self.expr_owned(a, sc));
                    quote!(#e::#v(#(#args),*))
                }
            }
            K::RequestCtor { req, args } => {
                let r = &self.spec.service.as_ref().expect("service").requests[*req];
                let v = ident(&r.name);
                if args.is_empty() {
                    quote!(Request::#v)
                } else {
                    let fs = r.params.iter().zip(args).map(|(p, a)| {
                        let f = ident(&self.spec.locals[*p].name);
                        let a = self.expr_owned(a, sc);
                        quote!(#f: #a)
                    });
                    quote!(Request::#v { #(#fs),* })
                }
            }
            K::ReplyCtor { reply, args } => {
                let v = ident(&self.spec.service.as_ref().expect("service").replies[*reply].name);
                if args.is_empty() {
                    quote!(Reply::#v)
                } else {
                    let args = args.iter().map(|a| self.expr_owned(a, sc));
                    quote!(Reply::#v(#(#args),*))
                }
            }
            K::List(xs) => {
                let xs = xs.iter().map(|x| self.expr_owned(x, sc));
                quote!(Vec::from([#(#xs),*]))
            }
            K::Set(xs) => {
                if xs.is_empty() {
                    quote!(BTreeSet::new())
                } else {
                    let xs = xs.iter().map(|x| self.expr_owned(x, sc));
                    quote!(BTreeSet::from([#(#xs),*]))
                }
            }
            K::Map(kvs) => {
                if kvs.is_empty() {
                    quote!(BTreeMap::new())
                } else {
                    let kvs = kvs.iter().map(|(k, v)| {
                        let (k, v) = (self.expr_owned(k, sc), self.expr_owned(v, sc));
                        quote!((#k, #v))
                    });
                    quote!(BTreeMap::from([#(#kvs),*]))
                }
            }
            K::Compr {
                kind,
                head,
                head_value,
                pat,
                iter,
                filters,
            } => {
                let p = self.pat(pat);
                let it = self.iter_elems(iter, sc);
                let h = self.expr_owned(head, sc);
                let cond = self.all(filters, sc);
                let (init, push) = match kind {
                    ComprKind::List => (quote!(Vec::new()), quote!(__out.push(#h);)),
                    ComprKind::Set => (quote!(BTreeSet::new()), quote!(__out.insert(#h);)),
                    ComprKind::Map => {
                        let v = head_value.as_ref().map(|v| self.expr_owned(v, sc)).unwrap_or_default();
                        (quote!(BTreeMap::new()), quote!(__out.insert(#h, #v);))
                    }
                };
                quote!({
                    let mut __out = #init;
                    for #p in #it {
                        if #cond { #push }
                    }
                    __out
                })
            }
            K::Quant { forall, binders, body } => {
                let b = self.expr_owned(body, sc);
                let l = label();
                let (init, hit) = if *forall {
                    (quote!(true), quote!(!(#b)))
                } else {
                    (quote!(false), quote!(#b))
                };
                let mut inner = quote! {
                    if #hit {
                        __found = !__found;
                        break #l;
                    }
                };
                for b in binders.iter().rev() {
                    inner = self.binder_loop(b, inner, sc);
                }
                quote!({
                    let mut __found = #init;
                    #l: {
                        #inner
                    }
                    __found
                })
            }
            K::Count { pat, iter, cond } => {
                let p = self.pat(pat);
                let it = self.iter_elems(iter, sc);
                let c = self.expr_owned(cond, sc);
                quote!({
                    let mut __n: u64 = 0;
                    for #p in #it {
                        if #c { __n += 1; }
                    }
                    __n
                })
            }
            K::If { cond, then, els } => {
                let c = self.expr_owned(cond, sc);
                let t = self.expr_owned(then, sc);
                let f = self.expr_owned(els, sc);
                quote!(if #c { #t } else { #f })
            }
            K::Match { scrutinee, arms } => {
                let x = self.expr_owned(scrutinee, sc);
                let arms = arms.iter().map(|(p, e)| {
                    let p = self.pat(p);
                    let e = self.expr_owned(e, sc);
                    quote!(#p => #e,)
                });
                quote!(match #x {
                    #(#arms)*
                    #[allow(unreachable_patterns)]
                    _ => return Err(HandlerError::new(#s::ErrorKind::UnwrapNone, #at, "no match arm")),
                })
            }
            K::Unary { op: UnOp::Not, expr } => {
                let x = self.expr_owned(expr, sc);
                quote!(!(#x))
            }
            K::Unary { op: UnOp::Neg, expr } => {
                if let K::Int(v) = expr.kind {
                    return self.int_lit(-v, &e.ty);
                }
                let x = self.expr_owned(expr, sc);
                quote!(#s::ops::neg(#x, #at)?)
            }
            K::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e, sc),
            K::Field { base, index } => {
                let b = self.expr_owned(base, sc);
                let f = ident(&field_name(self, &base.ty, *index));
                quote!((#b).#f)
            }
            K::TupleField { base, index } => {
                let b = self.expr_owned(base, sc);
                let i = syn::Index::from(*index);
                quote!((#b).#i)
            }
            K::Builtin { f, args } => self.builtin(*f, args, e, sc),
            K::Call { f, args } => {
                let n = format_ident!("{}", self.spec.fns[*f].name);
                let params = &self.spec.fns[*f].params;
                let args = args.iter().zip(params).map(|(a, p)| {
                    if self.by_ref_param(*p) {
                        self.expr_ref(a, sc)
                    } else {
                        self.expr_owned(a, sc)
                    }
                });
                quote!(spec_fns::#n(#(#args),*)?)
            }
            K::Cast { expr, to } => {
                let x = self.expr_owned(expr, sc);
                let t = int_ty(*to);
                quote!(#s::ops::cast::<_, #t>(#x, #at)?)
            }
            // Places never reach here.
            K::Local(_) | K::Var(_) | K::ServiceVar(_) | K::Const(_) | K::InstanceVar { .. } | K::Index { .. } => {
                quote!(compile_error!("smelt: internal error: place in construct"))
            }
        }
    }

    fn struct_lit(
        &self,
        name: TokenStream,
        names: &[String],
        fields: &[Option<Expr>],
        base: Option<&Expr>,
        sc: Scope,
    ) -> TokenStream {
        let given = names.iter().zip(fields).filter_map(|(n, f)| {
            let f = f.as_ref()?;
            let n = ident(n);
            let v = self.expr_owned(f, sc);
            Some(quote!(#n: #v))
        });
        match base {
            Some(b) => {
                let b = self.expr_owned(b, sc);
                quote!(#name { #(#given,)* ..#b })
            }
            None => quote!(#name { #(#given),* }),
        }
    }

    /// `a && b && ...` of boolean expressions (`true` when empty).
    fn all(&self, es: &[Expr], sc: Scope) -> TokenStream {
        if es.is_empty() {
            return quote!(true);
        }
        let es = es.iter().map(|e| self.expr_owned(e, sc));
        quote!(#((#es))&&*)
    }

    /// An iterator of owned elements of a collection, without copying the
    /// collection itself: map entries come out as `(key, value)`.
    pub fn iter_elems(&self, iter: &Expr, sc: Scope) -> TokenStream {
        let r = self.expr_ref(iter, sc);
        match iter.ty.resolved() {
            Ty::Map(..) => quote!((#r).iter().map(|(k, v)| (k.clone(), v.clone()))),
            _ => quote!((#r).iter().cloned()),
        }
    }

    fn binder_loop(&self, b: &Binder, inner: TokenStream, sc: Scope) -> TokenStream {
        match b {
            Binder::Role { local, role } => {
                let n = self.local_name(*local);
                let id = self.instance_id(*local);
                let f = format_ident!("instances_of_{}", crate::names::snake(&self.spec.roles[*role].name));
                quote!(for (#id, #n) in #f(view) { #inner })
            }
            Binder::Clients { local } => {
                let n = self.local_name(*local);
                let id = self.instance_id(*local);
                quote!(for (#id, #n) in client_instances(view) { #inner })
            }
            Binder::In { pat, iter } => {
                let p = self.pat(pat);
                let it = self.iter_elems(iter, sc);
                quote!(for #p in #it { #inner })
            }
        }
    }

    fn binary(&self, op: BinOp, lhs: &Expr, rhs: &Expr, e: &Expr, sc: Scope) -> TokenStream {
        let s = &self.s;
        let at = self.loc(e.span);
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies => {
                let (a, b) = (self.expr_owned(lhs, sc), self.expr_owned(rhs, sc));
                match op {
                    BinOp::And => quote!((#a && #b)),
                    BinOp::Or => quote!((#a || #b)),
                    _ => quote!((!#a || #b)),
                }
            }
            BinOp::Eq | BinOp::Ne if matches!(lhs.kind, K::None) || matches!(rhs.kind, K::None) => {
                // `x == None` reads better as `x.is_none()`.
                let other = if matches!(lhs.kind, K::None) { rhs } else { lhs };
                let r = self.expr_ref(other, sc);
                if op == BinOp::Eq {
                    quote!((#r).is_none())
                } else {
                    quote!((#r).is_some())
                }
            }
            BinOp::Eq | BinOp::Ne if self.is_list_cut(lhs) || self.is_list_cut(rhs) => {
                // `a.take(i) == b.take(i)` compares slices of the lists,
                // without copying either prefix (Figure 3's invariants do
                // this for every index of every pair of logs).
                let (a, b) = (self.list_slice(lhs, sc), self.list_slice(rhs, sc));
                if op == BinOp::Eq {
                    quote!((#a == #b))
                } else {
                    quote!((#a != #b))
                }
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let (a, b) = if self.is_copy(&lhs.ty) {
                    (self.expr_owned(lhs, sc), self.expr_owned(rhs, sc))
                } else {
                    (self.expr_ref(lhs, sc), self.expr_ref(rhs, sc))
                };
                match op {
                    BinOp::Eq => quote!((#a == #b)),
                    BinOp::Ne => quote!((#a != #b)),
                    BinOp::Lt => quote!((#a < #b)),
                    BinOp::Le => quote!((#a <= #b)),
                    BinOp::Gt => quote!((#a > #b)),
                    _ => quote!((#a >= #b)),
                }
            }
            BinOp::In => quote!(compile_error!("smelt: internal error: `in` is lowered to contains")),
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => match e.ty.resolved() {
                Ty::Set(_) => {
                    let (a, b) = (self.expr_ref(lhs, sc), self.expr_ref(rhs, sc));
                    if op == BinOp::Add {
                        quote!((#a).union(#b).cloned().collect::<BTreeSet<_>>())
                    } else {
                        quote!((#a).difference(#b).cloned().collect::<BTreeSet<_>>())
                    }
                }
                Ty::List(_) => {
                    let (a, b) = (self.expr_owned(lhs, sc), self.expr_owned(rhs, sc));
                    quote!({
                        let mut __list = #a;
                        __list.extend(#b);
                        __list
                    })
                }
                Ty::Bytes => {
                    let (a, b) = (self.expr_ref(lhs, sc), self.expr_ref(rhs, sc));
                    quote!((#a).concat(#b))
                }
                _ => {
                    let (a, b) = (self.expr_owned(lhs, sc), self.expr_owned(rhs, sc));
                    let f = match op {
                        BinOp::Add => quote!(add),
                        BinOp::Sub => quote!(sub),
                        BinOp::Mul => quote!(mul),
                        BinOp::Div => quote!(div),
                        _ => quote!(rem),
                    };
                    quote!(#s::ops::#f(#a, #b, #at)?)
                }
            },
        }
    }

    fn builtin(&self, f: Builtin, args: &[Expr], e: &Expr, sc: Scope) -> TokenStream {
        let s = &self.s;
        let at = self.loc(e.span);
        let r = |i: usize| self.expr_ref(&args[i], sc);
        let o = |i: usize| self.expr_owned(&args[i], sc);
        match f {
            Builtin::Len => {
                let a = r(0);
                quote!(((#a).len() as u64))
            }
            Builtin::Min | Builtin::Max => {
                let a = r(0);
                let g = if f == Builtin::Min { quote!(min) } else { quote!(max) };
                quote!(#s::ops::#g((#a).iter(), #at)?)
            }
            Builtin::Sum => {
                let a = r(0);
                quote!(#s::ops::sum((#a).iter(), #at)?)
            }
            Builtin::Majority => match args[0].ty.resolved() {
                Ty::Int(_) => {
                    let a = o(0);
                    quote!(#s::ops::majority(#a as usize))
                }
                _ => {
                    let a = r(0);
                    quote!(#s::ops::majority((#a).len()))
                }
            },
            Builtin::Sorted => {
                let a = r(0);
                quote!({
                    let mut __sorted: Vec<_> = (#a).iter().cloned().collect();
                    __sorted.sort();
                    __sorted
                })
            }
            Builtin::Keys => {
                let a = r(0);
                quote!((#a).keys().cloned().collect::<BTreeSet<_>>())
            }
            Builtin::Values => {
                let a = r(0);
                quote!((#a).values().cloned().collect::<Vec<_>>())
            }
            Builtin::Contains => {
                let (c, x) = (r(0), r(1));
                match args[0].ty.resolved() {
                    Ty::Map(..) => quote!((#c).contains_key(#x)),
                    _ => quote!((#c).contains(#x)),
                }
            }
            Builtin::Get => match args[0].ty.resolved() {
                Ty::Map(..) => {
                    let (c, k) = (r(0), r(1));
                    quote!((#c).get(#k).cloned())
                }
                _ => {
                    let (c, i) = (r(0), o(1));
                    quote!(#s::ops::list_get_opt(#c, #i))
                }
            },
            Builtin::IsSome => {
                let a = r(0);
                quote!((#a).is_some())
            }
            Builtin::IsNone => {
                let a = r(0);
                quote!((#a).is_none())
            }
            Builtin::Unwrap => {
                let a = o(0);
                quote!(#s::ops::unwrap(#a, #at)?)
            }
            Builtin::UnwrapOr => {
                let (a, d) = (o(0), o(1));
                quote!((#a).unwrap_or(#d))
            }
            Builtin::First | Builtin::Last => {
                let a = r(0);
                let g = if f == Builtin::First {
                    quote!(first)
                } else {
                    quote!(last)
                };
                quote!((#a).#g().cloned())
            }
            Builtin::Slice => {
                let (a, from, to) = (r(0), o(1), o(2));
                quote!(#s::ops::slice(#a, #from, #to, #at)?)
            }
            Builtin::Skip | Builtin::Take => {
                let (a, n) = (r(0), o(1));
                let g = if f == Builtin::Skip { quote!(skip) } else { quote!(take) };
                quote!(#s::ops::#g(#a, #n))
            }
            Builtin::Union | Builtin::Intersect | Builtin::Minus => {
                let (a, b) = (r(0), r(1));
                let g = match f {
                    Builtin::Union => quote!(union),
                    Builtin::Intersect => quote!(intersection),
                    _ => quote!(difference),
                };
                quote!((#a).#g(#b).cloned().collect::<BTreeSet<_>>())
            }
            Builtin::With | Builtin::Without => {
                let c = o(0);
                let body = match (f, args[0].ty.resolved()) {
                    (Builtin::With, Ty::Map(..)) => {
                        let (k, v) = (o(1), o(2));
                        quote!(__c.insert(#k, #v);)
                    }
                    (Builtin::With, _) => {
                        let x = o(1);
                        quote!(__c.insert(#x);)
                    }
                    _ => {
                        let x = r(1);
                        quote!(__c.remove(#x);)
                    }
                };
                quote!({
                    let mut __c = #c;
                    #body
                    __c
                })
            }
            Builtin::Apply if args.len() == 3 => {
                let (svc, client, req) = (o(0), r(1), r(2));
                quote!({
                    let mut __service = #svc;
                    let __reply = __service.apply_session(#client, #req, self.sessions)?;
                    (__service, __reply)
                })
            }
            Builtin::Apply => {
                let (svc, req) = (o(0), r(1));
                quote!({
                    let mut __service = #svc;
                    let __reply = __service.apply(#req)?;
                    (__service, __reply)
                })
            }
            Builtin::ClientNode => {
                let a = o(0);
                quote!((#a).node())
            }
            Builtin::ClientSession => {
                let a = o(0);
                quote!({
                    let __s = (#a).session;
                    (__s.epoch, __s.id)
                })
            }
            Builtin::ClientSeq => {
                let a = o(0);
                quote!((#a).seq)
            }
            Builtin::Recorded => {
                let (svc, c) = (r(0), o(1));
                quote!({
                    let __c: Client = #c;
                    (#svc).__sessions.recorded(__c.session, __c.seq).cloned()
                })
            }
            Builtin::Range => {
                let (lo, hi) = (o(0), o(1));
                let max = smelt_dsl::ir::RANGE_LEN_MAX;
                quote!(#s::ops::range(#lo, #hi, #max, #at)?)
            }
        }
    }

    /// A Rust pattern binding by value.
    pub fn pat(&self, p: &Pat) -> TokenStream {
        match p {
            Pat::Wildcard => quote!(_),
            Pat::Bind(l) => {
                let n = self.local_name(*l);
                quote!(#n)
            }
            Pat::Int(v) => {
                let l = Literal::i128_unsuffixed(*v);
                quote!(#l)
            }
            Pat::Bool(b) => quote!(#b),
            Pat::Tuple(ps) => {
                let ps = ps.iter().map(|p| self.pat(p));
                quote!((#(#ps,)*))
            }
            Pat::None => quote!(None),
            Pat::Some(p) => {
                let p = self.pat(p);
                quote!(Some(#p))
            }
            Pat::Enum { en, variant, args } => {
                let e = ident(&self.spec.enums[*en].name);
                let v = ident(&self.spec.enums[*en].variants[*variant].0);
                if args.is_empty() {
                    quote!(#e::#v)
                } else {
                    let ps = args.iter().map(|p| self.pat(p));
                    quote!(#e::#v(#(#ps),*))
                }
            }
            Pat::Reply { reply, args } => {
                let v = ident(&self.spec.service.as_ref().expect("service").replies[*reply].name);
                if args.is_empty() {
                    quote!(Reply::#v)
                } else {
                    let ps = args.iter().map(|p| self.pat(p));
                    quote!(Reply::#v(#(#ps),*))
                }
            }
            Pat::Request { req, args } => {
                let r = &self.spec.service.as_ref().expect("service").requests[*req];
                let v = ident(&r.name);
                if r.params.is_empty() {
                    quote!(Request::#v)
                } else {
                    let fs = r.params.iter().enumerate().map(|(i, p)| {
                        let f = ident(&self.spec.locals[*p].name);
                        let sub = args.get(i).map(|a| self.pat(a)).unwrap_or(quote!(_));
                        quote!(#f: #sub)
                    });
                    quote!(Request::#v { #(#fs),* })
                }
            }
        }
    }
}

/// A `Bytes` literal: `Bytes::from_static(b"...")`, which allocates nothing
/// (and is a constant expression).
pub fn bytes_lit(b: &[u8]) -> TokenStream {
    let l = Literal::byte_string(b);
    quote!(Bytes::from_static(#l))
}

/// The name of field `index` of a record or message type.
pub fn field_name(g: &Gen, t: &Ty, index: usize) -> String {
    match t.resolved() {
        Ty::Record(id) => g.spec.records[id].fields[index].0.clone(),
        Ty::Message(id) => g.spec.messages[id].fields[index].0.clone(),
        _ => format!("field{index}"),
    }
}
