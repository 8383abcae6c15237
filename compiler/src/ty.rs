//! Types and type declarations.
//!
//! Every generated type derives `Clone, Debug, PartialEq, Eq, Hash,
//! PartialOrd, Ord, Serialize, Deserialize` and `Default` (so that a node
//! whose start fails still has a state to attach the error to). Collections
//! are `Vec`, `BTreeSet` and `BTreeMap`: ordered, so iteration is
//! deterministic.

use crate::names::{ident, suffixed};
use crate::Gen;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use smelt_dsl::ir::{IntTy, Ty};

impl Gen<'_> {
    pub fn derives(&self) -> TokenStream {
        let s = &self.s;
        // serde's derive must be told where serde is: the user's crate need
        // not depend on it directly.
        let serde_path = format!("{}::serde", s).replace(' ', "");
        quote! {
            #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, #s::serde::Serialize, #s::serde::Deserialize)]
            #[serde(crate = #serde_path)]
        }
    }

    pub fn ty(&self, t: &Ty) -> TokenStream {
        match t {
            Ty::Bool => quote!(bool),
            Ty::Int(i) => int_ty(*i),
            Ty::Node => quote!(Id),
            Ty::Client => quote!(Client),
            Ty::Bytes => quote!(Bytes),
            Ty::Option(t) => {
                let t = self.ty(t);
                quote!(Option<#t>)
            }
            Ty::Tuple(ts) => {
                let ts = ts.iter().map(|t| self.ty(t));
                quote!((#(#ts,)*))
            }
            Ty::List(t) => {
                let t = self.ty(t);
                quote!(Vec<#t>)
            }
            Ty::Set(t) => {
                let t = self.ty(t);
                quote!(BTreeSet<#t>)
            }
            Ty::Map(k, v) => {
                let (k, v) = (self.ty(k), self.ty(v));
                quote!(BTreeMap<#k, #v>)
            }
            Ty::Record(id) => {
                let n = ident(&self.spec.records[*id].name);
                quote!(#n)
            }
            Ty::Enum(id) => {
                let n = ident(&self.spec.enums[*id].name);
                quote!(#n)
            }
            Ty::Message(id) => {
                let n = ident(&self.spec.messages[*id].name);
                quote!(#n)
            }
            Ty::Request => quote!(Request),
            Ty::Reply => quote!(Reply),
            Ty::Service => {
                let n = ident(&self.spec.service.as_ref().map(|s| s.name.clone()).unwrap_or_default());
                quote!(#n)
            }
            Ty::Alias(id, _) => {
                let n = ident(&self.spec.aliases[*id].name);
                quote!(#n)
            }
            Ty::Instance(_) | Ty::ClientInstance | Ty::Error => quote!(()),
        }
    }

    /// Whether values of the type are `Copy` in the generated code, so
    /// reads need no `.clone()`.
    pub fn is_copy(&self, t: &Ty) -> bool {
        match t.resolved() {
            Ty::Bool | Ty::Int(_) | Ty::Node | Ty::Client => true,
            Ty::Option(t) => self.is_copy(&t),
            Ty::Tuple(ts) => ts.iter().all(|t| self.is_copy(t)),
            _ => false,
        }
    }

    pub fn type_decls(&self) -> TokenStream {
        let derives = self.derives();
        let mut out = TokenStream::new();
        for a in &self.spec.aliases {
            let n = ident(&a.name);
            let t = self.ty(&a.ty);
            out.extend(quote!(pub type #n = #t;));
        }
        for r in &self.spec.records {
            let n = ident(&r.name);
            let fields = r.fields.iter().map(|(f, t)| {
                let f = ident(f);
                let t = self.ty(t);
                quote!(pub #f: #t)
            });
            out.extend(quote! {
                #derives
                #[derive(Default)]
                pub struct #n { #(#fields,)* }
            });
        }
        for e in &self.spec.enums {
            let n = ident(&e.name);
            let variants = e.variants.iter().map(|(v, ts)| {
                let v = ident(v);
                if ts.is_empty() {
                    quote!(#v)
                } else {
                    let ts = ts.iter().map(|t| self.ty(t));
                    quote!(#v(#(#ts),*))
                }
            });
            let default = e.variants.first().map(|(v, ts)| {
                let v = ident(v);
                if ts.is_empty() {
                    quote!(#n::#v)
                } else {
                    let ds = ts.iter().map(|_| quote!(Default::default()));
                    quote!(#n::#v(#(#ds),*))
                }
            });
            out.extend(quote! {
                #derives
                pub enum #n { #(#variants,)* }
                impl Default for #n {
                    fn default() -> Self { #default }
                }
            });
        }
        for m in &self.spec.messages {
            let n = ident(&m.name);
            let fields = m.fields.iter().map(|(f, t)| {
                let f = ident(f);
                let t = self.ty(t);
                quote!(pub #f: #t)
            });
            out.extend(quote! {
                #derives
                #[derive(Default)]
                pub struct #n { #(#fields,)* }
                impl From<#n> for Msg {
                    fn from(m: #n) -> Msg { Msg::#n(m) }
                }
            });
        }
        out
    }

    /// The `Msg` enum: every message, plus the client protocol when the
    /// spec has a service.
    pub fn msg_enum(&self) -> TokenStream {
        let derives = self.derives();
        let mut variants: Vec<TokenStream> = self
            .spec
            .messages
            .iter()
            .map(|m| {
                let n = ident(&m.name);
                quote!(#n(#n))
            })
            .collect();
        if self.spec.service.is_some() {
            variants.push(quote! {
                /// A client request, tagged with the client's session and
                /// the request's sequence number in it.
                Request(Client, Request)
            });
            variants.push(quote! {
                /// The reply to the request with this tag.
                Reply(Client, Reply)
            });
            variants.push(quote! {
                /// "Ask this node instead" (or any other node, without a hint).
                Redirect(Client, Option<Id>)
            });
        }
        quote! {
            /// Every message of the protocol.
            #derives
            pub enum Msg { #(#variants,)* }
        }
    }

    /// The service: its state, request and reply types, and its sequential
    /// semantics (`apply`), which is both the linearizability oracle and
    /// the application of a replicated state machine.
    pub fn service_decls(&self) -> TokenStream {
        let derives = self.derives();
        let s = &self.s;
        let Some(svc) = &self.spec.service else {
            // No service: empty types keep the `Protocol` impl uniform.
            return quote! {
                #derives
                pub enum Request {}
                #derives
                pub enum Reply {}
                #derives
                #[derive(Default)]
                pub struct NoService;
                impl #s::stateright::semantics::SequentialSpec for NoService {
                    type Op = Request;
                    type Ret = Result<Reply, HandlerError>;
                    fn invoke(&mut self, op: &Request) -> Self::Ret { match *op {} }
                }
                impl Rewrite for Request { fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { match *self {} } }
                impl Rewrite for Reply { fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { match *self {} } }
            };
        };
        let name = ident(&svc.name);
        let mut fields: Vec<TokenStream> = svc
            .vars
            .iter()
            .map(|v| {
                let f = ident(&v.name);
                let t = self.ty(&v.ty);
                quote!(pub #f: #t)
            })
            .collect();
        let mut inits: Vec<TokenStream> = svc
            .vars
            .iter()
            .map(|v| {
                let f = ident(&v.name);
                let e = self.expr_owned(&v.init, crate::expr::Scope::Static);
                quote!(#f: #e)
            })
            .collect();
        if svc.sessions.is_some() {
            fields.push(quote! {
                /// The session table: the last request each client session
                /// applied, with its reply (`sessions`).
                pub __sessions: #s::Sessions<Reply>
            });
            inits.push(quote!(__sessions: #s::Sessions::default()));
        }
        let req_variants = svc.requests.iter().map(|r| {
            let n = ident(&r.name);
            if r.params.is_empty() {
                quote!(#n)
            } else {
                let ps = r.params.iter().map(|p| {
                    let l = &self.spec.locals[*p];
                    let f = ident(&l.name);
                    let t = self.ty(&l.ty);
                    quote!(#f: #t)
                });
                quote!(#n { #(#ps),* })
            }
        });
        let req_default = svc.requests.first().map(|r| {
            let n = ident(&r.name);
            if r.params.is_empty() {
                quote!(Request::#n)
            } else {
                let ps = r.params.iter().map(|p| {
                    let f = ident(&self.spec.locals[*p].name);
                    quote!(#f: Default::default())
                });
                quote!(Request::#n { #(#ps),* })
            }
        });
        let mut reply_variants: Vec<TokenStream> = svc
            .replies
            .iter()
            .map(|r| {
                let n = ident(&r.name);
                if r.fields.is_empty() {
                    quote!(#n)
                } else {
                    let ts = r.fields.iter().map(|t| self.ty(t));
                    quote!(#n(#(#ts),*))
                }
            })
            .collect();
        // A service with sessions refuses some requests without applying
        // them; the refusal is a reply the client recognises.
        let sessions = svc.sessions.map(|_| {
            reply_variants.push(quote! {
                /// The session table refused the request; it was not applied.
                Rejected(#s::SessionError)
            });
            quote! {
                /// Applies request `request` of `client` once: a retry of the
                /// session's last applied request gets its recorded reply, a
                /// refused one `Rejected` (see `smelt_support::session`).
                /// `capacity`: the most sessions the table keeps.
                pub fn apply_session(&mut self, client: &Client, request: &Request, capacity: u64) -> Result<Reply, HandlerError> {
                    let hash = #s::request_hash(request);
                    match self.__sessions.admit(client.session, client.seq, hash) {
                        #s::Admit::Apply => {
                            let reply = self.apply(request)?;
                            self.__sessions.record(client.session, client.seq, hash, reply.clone(), capacity);
                            Ok(reply)
                        }
                        #s::Admit::Recorded(reply) => Ok(reply),
                        #s::Admit::Refuse(e) => Ok(Reply::Rejected(e)),
                    }
                }
            }
        });
        let reply_default = svc.replies.first().map(|r| {
            let n = ident(&r.name);
            if r.fields.is_empty() {
                quote!(Reply::#n)
            } else {
                let ds = r.fields.iter().map(|_| quote!(Default::default()));
                quote!(Reply::#n(#(#ds),*))
            }
        });
        let arms = svc.requests.iter().map(|r| {
            let n = ident(&r.name);
            let binds = r.params.iter().map(|p| {
                let f = ident(&self.spec.locals[*p].name);
                let l = crate::names::local(&self.spec.locals[*p].name);
                quote!(#f: #l)
            });
            let clones = r.params.iter().map(|p| {
                let l = crate::names::local(&self.spec.locals[*p].name);
                quote!(let #l = #l.clone();)
            });
            let pat = if r.params.is_empty() {
                quote!(Request::#n)
            } else {
                quote!(Request::#n { #(#binds),* })
            };
            let body = self.stmts(&r.body, crate::expr::Scope::Service);
            let doc = format!(" `request {}` ({})", r.name, self.loc_text(r.span));
            quote! {
                #[doc = #doc]
                #pat => {
                    #(#clones)*
                    #body
                }
            }
        });
        let at = self.loc(svc.span);
        quote! {
            /// The state of the service, as its sequential specification sees it.
            #derives
            #[derive(Default)]
            pub struct #name { #(#fields,)* }

            /// A client request.
            #derives
            pub enum Request { #(#req_variants,)* }
            impl Default for Request {
                fn default() -> Self { #req_default }
            }

            /// A reply to a client.
            #derives
            pub enum Reply { #(#reply_variants,)* }
            impl Default for Reply {
                fn default() -> Self { #reply_default }
            }

            impl #name {
                /// The service before any request.
                pub fn initial() -> Result<Self, HandlerError> {
                    Ok(#name { #(#inits,)* })
                }

                /// Applies one request, in the order the protocol decided.
                #[allow(unused_mut, unused_variables, unreachable_code)]
                pub fn apply(&mut self, request: &Request) -> Result<Reply, HandlerError> {
                    let mut reply: Option<Reply> = None;
                    match request.clone() {
                        #(#arms)*
                    }
                    // The checker guarantees one reply on every path.
                    #s::ops::unwrap(reply, #at)
                }

                #sessions
            }

            impl #s::stateright::semantics::SequentialSpec for #name {
                type Op = Request;
                type Ret = Result<Reply, HandlerError>;
                fn invoke(&mut self, op: &Request) -> Self::Ret {
                    self.apply(op)
                }
            }
        }
    }

    /// `smelt_support::Loc(line, col, file)` for a span: file 1 is a
    /// variant's base, 0 the spec itself.
    pub fn loc(&self, span: smelt_dsl::ast::Span) -> TokenStream {
        let (name, l, c) = self.file.locate(span.start);
        let file = u8::from(name != self.file.name);
        let (l, c) = (l as u32, c as u32);
        let s = &self.s;
        quote!(#s::Loc(#l, #c, #file))
    }

    pub fn loc_text(&self, span: smelt_dsl::ast::Span) -> String {
        let (name, l, c) = self.file.locate(span.start);
        let name = std::path::Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{name}:{l}:{c}")
    }

    pub fn role_ident(&self, role: usize, suffix: &str) -> proc_macro2::Ident {
        suffixed(&self.spec.roles[role].name, suffix)
    }

    pub fn protocol_ident(&self) -> proc_macro2::Ident {
        format_ident!("{}", self.spec.name)
    }
}

pub fn int_ty(i: IntTy) -> TokenStream {
    match i {
        IntTy::U8 => quote!(u8),
        IntTy::U16 => quote!(u16),
        IntTy::U32 => quote!(u32),
        IntTy::U64 => quote!(u64),
        IntTy::I8 => quote!(i8),
        IntTy::I16 => quote!(i16),
        IntTy::I32 => quote!(i32),
        IntTy::I64 => quote!(i64),
    }
}
