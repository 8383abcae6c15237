//! One role: its actor, state, storage, deltas, timers and choices, the
//! start-up code, one function per handler and the dispatchers that pick
//! the handler for an event.

use crate::expr::Scope;
use crate::names::{camel, ident, snake};
use crate::Gen;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use smelt_dsl::ir::{Event, Handler, MsgBind, Pat, Role, Ty};

impl Gen<'_> {
    pub fn role(&self, r: usize) -> TokenStream {
        let role = &self.spec.roles[r];
        let derives = self.derives();
        let s = &self.s;
        let p = self.protocol_ident();
        let name = ident(&role.name);
        let state_t = self.role_ident(r, "State");
        let phase_t = self.role_ident(r, "Phase");
        let storage_t = self.role_ident(r, "Storage");
        let delta_t = self.role_ident(r, "Delta");
        let timer_t = self.role_ident(r, "Timer");
        let choice_t = self.role_ident(r, "Choice");
        let doc = format!(" Role `{}` ({}).", role.name, self.loc_text(role.span));
        let observers = self.observers(r);

        let phases: Vec<Ident> = if role.states.is_empty() {
            vec![format_ident!("Main")]
        } else {
            role.states.iter().map(|s| ident(&s.name)).collect()
        };
        let initial = role.initial_state.unwrap_or(0);
        let phase_variants = phases.iter().enumerate().map(|(i, p)| {
            if i == initial {
                quote!(#[default] #p)
            } else {
                quote!(#p)
            }
        });

        let fields = role.vars.iter().map(|v| {
            let n = ident(&v.name);
            let t = self.ty(&v.ty);
            let doc = if v.durable {
                " Durable: survives a crash."
            } else {
                " Volatile: reset on restart."
            };
            quote!(#[doc = #doc] pub #n: #t)
        });
        let durable: Vec<_> = role.vars.iter().filter(|v| v.durable).collect();
        let storage_fields = durable.iter().map(|v| {
            let n = ident(&v.name);
            let t = self.ty(&v.ty);
            quote!(pub #n: #t)
        });
        let storage_of = durable.iter().map(|v| {
            let n = ident(&v.name);
            quote!(#n: st.#n.clone())
        });
        let erase_state = role.vars.iter().filter(|v| v.ghost).map(|v| {
            let n = ident(&v.name);
            quote!(self.#n = Default::default();)
        });
        let erase_storage = durable.iter().filter(|v| v.ghost).map(|v| {
            let n = ident(&v.name);
            quote!(self.#n = Default::default();)
        });
        let (delta_variants, delta_apply) = self.deltas(role);
        let timers = role.timers.iter().map(|t| camel(&t.name));
        let choices = role.choices.iter().map(|c| {
            let v = camel(&c.name);
            let t = self.ty(&c.ty);
            quote!(#v(#t))
        });

        let start = self.start_fn(r);
        let dispatch = self.dispatchers(r);
        let handlers = self.handler_fns(r);
        let blocks = self.state_blocks(r);
        let at = self.loc(role.span);
        let sessions_field = match self.spec.service.as_ref().and_then(|s| s.sessions) {
            Some(_) => quote! {
                /// The capacity of the service's session table (`sessions`).
                pub sessions: u64,
            },
            None => quote!(),
        };

        quote! {
            #[doc = #doc]
            #[derive(Clone, Debug, PartialEq, Eq, Hash)]
            pub struct #name {
                /// Every server of every role.
                pub servers: BTreeSet<Id>,
                /// `servers` without this node.
                pub peers: BTreeSet<Id>,
                /// The servers of each role, in role order.
                pub members: Vec<BTreeSet<Id>>,
                #sessions_field
            }

            /// The explicit states of the role.
            #derives
            #[derive(Default, Copy)]
            pub enum #phase_t { #(#phase_variants,)* }

            #derives
            #[derive(Default)]
            pub struct #state_t {
                /// The explicit state the node is in.
                pub phase: #phase_t,
                #(#fields,)*
                /// Set when a handler failed; the node then ignores every event.
                pub failure: Option<HandlerError>,
            }

            /// The durable part of the state: what a node recovers after a crash.
            #derives
            #[derive(Default)]
            pub struct #storage_t { #(#storage_fields,)* }

            /// One change to durable state, as the runtime logs it.
            #derives
            pub enum #delta_t { #(#delta_variants,)* }

            #derives
            pub enum #timer_t { #(#timers,)* }

            #derives
            pub enum #choice_t { #(#choices,)* }

            impl #state_t {
                /// Resets the ghost variables (which the runtime does not
                /// keep), to compare a state with the runtime's.
                #[allow(unused_variables)]
                pub fn erase_ghosts(&mut self) {
                    #(#erase_state)*
                }
            }

            impl #storage_t {
                /// The durable variables of a state.
                pub fn of(st: &#state_t) -> Self {
                    #storage_t { #(#storage_of,)* }
                }

                /// Resets the durable ghost variables.
                #[allow(unused_variables)]
                pub fn erase_ghosts(&mut self) {
                    #(#erase_storage)*
                }

                /// Replays one logged change.
                #[allow(unreachable_code)]
                pub fn apply(&mut self, delta: #delta_t) -> Result<(), String> {
                    match delta {
                        #(#delta_apply)*
                    }
                    Ok(())
                }
            }

            impl #name {
                #observers
                #start
                #dispatch
                #blocks
                #handlers

                /// Follows `goto`s: runs `exit` of the old state and `entry` of
                /// the new one until the node settles.
                fn settle<E: Effects<#p, Delta>>(&self, me: Id, st: &mut Cow<'_, #state_t>, fx: &mut E, dirty: &mut bool, mut flow: Flow<#phase_t>) -> Result<(), HandlerError> {
                    let mut hops = 0u32;
                    while let Flow::Goto(next) = flow {
                        hops += 1;
                        if hops > #s::GOTO_CHAIN_MAX {
                            return Err(HandlerError::new(#s::ErrorKind::GotoLoop, #at, format!("{next:?}")));
                        }
                        self.exit(me, st, fx, dirty)?;
                        if st.phase != next {
                            st.to_mut().phase = next;
                        }
                        flow = self.entry(me, st, fx, dirty)?;
                    }
                    Ok(())
                }

                fn save<E: Effects<#p, Delta>>(&self, st: &#state_t, fx: &mut E, dirty: bool) {
                    if dirty && E::FULL_SAVE {
                        fx.save(Storage::#name(#storage_t::of(st)));
                    }
                }
            }
        }
    }

    /// `ready when e` and `metric name = e`: read-only methods over the
    /// role's state, for the deployed node's `/ready` and metrics.
    fn observers(&self, r: usize) -> TokenStream {
        let role = &self.spec.roles[r];
        let state_t = self.role_ident(r, "State");
        let sc = Scope::Handler(r);
        let ready = role.ready.as_ref().map(|e| {
            let cond = self.expr_owned(e, sc);
            let doc = format!(" `ready when ...` ({}).", self.loc_text(e.span));
            // An expression may fail (an overflow, a missing key): the
            // caller reads an error as "not ready".
            quote! {
                #[doc = #doc]
                #[allow(unused_variables)]
                pub fn ready(&self, me: Id, st: &#state_t) -> Result<bool, HandlerError> {
                    Ok(#cond)
                }
            }
        });
        let metrics = (!role.metrics.is_empty()).then(|| {
            let values = role.metrics.iter().map(|m| {
                let name = &m.name;
                let v = self.expr_owned(&m.value, sc);
                quote! {
                    let value = (|| -> Result<i128, HandlerError> { Ok(i128::from(#v)) })();
                    if let Ok(v) = value {
                        out.push((#name, v));
                    }
                }
            });
            quote! {
                /// The role's `metric` declarations, evaluated; one whose
                /// expression fails (an overflow, a missing key) is left out.
                #[allow(unused_variables)]
                pub fn metrics(&self, me: Id, st: &#state_t) -> Vec<(&'static str, i128)> {
                    let mut out = Vec::new();
                    #(#values)*
                    out
                }
            }
        });
        quote!(#ready #metrics)
    }

    /// Delta variants of a role's durable variables, and how to apply each.
    fn deltas(&self, role: &Role) -> (Vec<TokenStream>, Vec<TokenStream>) {
        let dt = format_ident!("{}Delta", role.name);
        let mut variants = Vec::new();
        // postcard encodes an enum variant by its position, so variants
        // added after the log format was first written go after all the
        // others: an older data directory's records keep their meaning.
        let mut later = Vec::new();
        // Added after `later`'s kinds (postcard numbers variants by
        // position, so records already on disk keep their meaning).
        let mut newest = Vec::new();
        let mut apply = Vec::new();
        for v in role.vars.iter().filter(|v| v.durable) {
            let n = ident(&v.name);
            let c = camel(&v.name);
            let t = self.ty(&v.ty);
            variants.push(quote!(#c(#t)));
            apply.push(quote!(#dt::#c(x) => self.#n = x,));
            match v.ty.resolved() {
                Ty::List(e) => {
                    let e = self.ty(&e);
                    let (push, trunc, set, ext) = (
                        format_ident!("{}Push", c),
                        format_ident!("{}Truncate", c),
                        format_ident!("{}Set", c),
                        format_ident!("{}Extend", c),
                    );
                    variants.push(quote!(#push(#e)));
                    variants.push(quote!(#trunc(u64)));
                    variants.push(quote!(#set(u64, #e)));
                    variants.push(quote!(#ext(Vec<#e>)));
                    apply.push(quote!(#dt::#push(x) => self.#n.push(x),));
                    apply.push(
                        quote!(#dt::#trunc(k) => self.#n.truncate(usize::try_from(k).map_err(|e| e.to_string())?),),
                    );
                    apply.push(quote!(#dt::#set(i, x) => {
                        let len = self.#n.len();
                        match self.#n.get_mut(usize::try_from(i).map_err(|e| e.to_string())?) {
                            Some(slot) => *slot = x,
                            None => return Err(format!("index {} out of range of `{}` (length {})", i, stringify!(#n), len)),
                        }
                    }));
                    apply.push(quote!(#dt::#ext(xs) => self.#n.extend(xs),));
                    let drop = format_ident!("{}DropFirst", c);
                    later.push(quote!(#drop(u64)));
                    apply.push(quote!(#dt::#drop(k) => {
                        let k = usize::try_from(k).map_err(|e| e.to_string())?.min(self.#n.len());
                        self.#n.drain(..k);
                    }));
                }
                Ty::Service => {
                    // A request applied to a durable service state is
                    // logged as the request: replaying it through the
                    // (deterministic) service gives the same state, and
                    // the record is the size of the request, not the store.
                    let a = format_ident!("{}Apply", c);
                    later.push(quote!(#a(Request)));
                    apply.push(quote!(#dt::#a(r) => {
                        self.#n.apply(&r).map_err(|e| e.to_string())?;
                    }));
                    // Through the session table: the client and the
                    // table's capacity replay the same decision.
                    if self.spec.service.as_ref().is_some_and(|s| s.sessions.is_some()) {
                        let a = format_ident!("{}ApplySession", c);
                        newest.push(quote!(#a(Client, Request, u64)));
                        apply.push(quote!(#dt::#a(c, r, capacity) => {
                            self.#n.apply_session(&c, &r, capacity).map_err(|e| e.to_string())?;
                        }));
                    }
                }
                Ty::Set(e) => {
                    let e = self.ty(&e);
                    let (ins, rem) = (format_ident!("{}Insert", c), format_ident!("{}Remove", c));
                    variants.push(quote!(#ins(#e)));
                    variants.push(quote!(#rem(#e)));
                    apply.push(quote!(#dt::#ins(x) => { self.#n.insert(x); }));
                    apply.push(quote!(#dt::#rem(x) => { self.#n.remove(&x); }));
                }
                Ty::Map(k, val) => {
                    let (k, val) = (self.ty(&k), self.ty(&val));
                    let (ins, rem) = (format_ident!("{}Insert", c), format_ident!("{}Remove", c));
                    variants.push(quote!(#ins(#k, #val)));
                    variants.push(quote!(#rem(#k)));
                    apply.push(quote!(#dt::#ins(k, x) => { self.#n.insert(k, x); }));
                    apply.push(quote!(#dt::#rem(k) => { self.#n.remove(&k); }));
                }
                _ => {}
            }
        }
        variants.extend(later);
        variants.extend(newest);
        (variants, apply)
    }

    fn start_fn(&self, r: usize) -> TokenStream {
        let s = &self.s;
        let role = &self.spec.roles[r];
        let p = self.protocol_ident();
        let state_t = self.role_ident(r, "State");
        let storage_t = self.role_ident(r, "Storage");
        let sc = Scope::VarInit(r);
        let durable_inits = role.vars.iter().filter(|v| v.durable).map(|v| {
            let n = ident(&v.name);
            let t = self.ty(&v.ty);
            let e = self.expr_owned(&v.init, sc);
            quote!(let #n: #t = #e;)
        });
        let durable_names: Vec<Ident> = role.vars.iter().filter(|v| v.durable).map(|v| ident(&v.name)).collect();
        let restore = role.vars.iter().map(|v| {
            let n = ident(&v.name);
            let t = self.ty(&v.ty);
            if v.durable {
                quote!(let #n: #t = stored.#n;)
            } else {
                let e = self.expr_owned(&v.init, sc);
                quote!(let #n: #t = #e;)
            }
        });
        let all: Vec<Ident> = role.vars.iter().map(|v| ident(&v.name)).collect();
        quote! {
            /// The durable state of a node that has never saved anything.
            pub fn initial_storage(&self, me: Id) -> Result<#storage_t, HandlerError> {
                #(#durable_inits)*
                Ok(#storage_t { #(#durable_names,)* })
            }

            /// Starts a node: durable variables from `storage` (or their
            /// initial values on a first start), volatile ones from their
            /// initializers, then `init` and the initial state's `entry`.
            pub fn start<E: Effects<#p, Delta>>(&self, me: Id, storage: Option<&#storage_t>, boot: #s::Boot, fx: &mut E) -> Result<#state_t, HandlerError> {
                let stored = match storage {
                    Some(s) => s.clone(),
                    None => self.initial_storage(me)?,
                };
                #(#restore)*
                let mut state = Cow::Owned(#state_t { phase: Default::default(), #(#all,)* failure: None });
                let st = &mut state;
                let mut dirty = false;
                let dirty = &mut dirty;
                if let Flow::Goto(phase) = self.init(me, boot.restarted(), st, fx, dirty)? {
                    st.to_mut().phase = phase;
                }
                let flow = self.entry(me, st, fx, dirty)?;
                self.settle(me, st, fx, dirty, flow)?;
                self.save(st, fx, *dirty);
                Ok(state.into_owned())
            }
        }
    }

    /// `init`, `entry` and `exit`.
    fn state_blocks(&self, r: usize) -> TokenStream {
        let role = &self.spec.roles[r];
        let p = self.protocol_ident();
        let state_t = self.role_ident(r, "State");
        let phase_t = self.role_ident(r, "Phase");
        let sc = Scope::Handler(r);
        let init = self.stmts(&role.init, sc);
        let entries = role.states.iter().filter(|s| !s.entry.is_empty()).map(|s| {
            let n = ident(&s.name);
            let b = self.stmts(&s.entry, sc);
            quote!(#phase_t::#n => { #b })
        });
        let exits = role.states.iter().filter(|s| !s.exit.is_empty()).map(|s| {
            let n = ident(&s.name);
            let b = self.stmts(&s.exit, sc);
            quote!(#phase_t::#n => { #b })
        });
        let sig = quote!(<E: Effects<#p, Delta>>(&self, me: Id, st: &mut Cow<'_, #state_t>, fx: &mut E, dirty: &mut bool) -> Result<Flow<#phase_t>, HandlerError>);
        // A start is a step too: the delta check names it like a handler.
        let label = format!(
            "the start of role `{}` (`init`, initializers, initial `entry`; {}).",
            role.name,
            self.loc_text(role.span)
        );
        quote! {
            /// The `init` block: runs on every start, including after a crash.
            fn init<E: Effects<#p, Delta>>(&self, me: Id, restarted: bool, st: &mut Cow<'_, #state_t>, fx: &mut E, dirty: &mut bool) -> Result<Flow<#phase_t>, HandlerError> {
                fx.handler(#label);
                #init
                Ok(Flow::Stay)
            }

            /// The `entry` block of the current state.
            fn entry #sig {
                match st.phase {
                    #(#entries)*
                    _ => {}
                }
                Ok(Flow::Stay)
            }

            /// The `exit` block of the current state.
            fn exit #sig {
                match st.phase {
                    #(#exits)*
                    _ => {}
                }
                Ok(Flow::Stay)
            }
        }
    }

    /// Every handler of the role, with where it is declared: `(state, index
    /// within its scope, handler)`.
    fn all_handlers(&self, r: usize) -> Vec<(Option<usize>, usize, &Handler)> {
        let role = &self.spec.roles[r];
        let mut out = Vec::new();
        for (si, s) in role.states.iter().enumerate() {
            for (i, h) in s.handlers.iter().enumerate() {
                out.push((Some(si), i, h));
            }
        }
        for (i, h) in role.handlers.iter().enumerate() {
            out.push((None, i, h));
        }
        out
    }

    fn handler_name(&self, r: usize, state: Option<usize>, i: usize, h: &Handler) -> Ident {
        let role = &self.spec.roles[r];
        let scope = match state {
            Some(s) => snake(&role.states[s].name),
            None => "any".to_string(),
        };
        let event = match &h.event {
            Event::Msg { msg, .. } => snake(&self.spec.messages[*msg].name),
            Event::Timeout(t) => format!("timeout_{}", role.timers[*t].name),
            Event::Choose { choice, .. } => format!("choose_{}", role.choices[*choice].name),
            Event::Request { req: Some(q), .. } => format!(
                "request_{}",
                snake(&self.spec.service.as_ref().expect("service").requests[*q].name)
            ),
            Event::Request { req: None, .. } => "request".to_string(),
        };
        format_ident!("{}_on_{}_{}", scope, event, i)
    }

    /// Locals a handler binds, in parameter order.
    fn handler_params(&self, h: &Handler) -> Vec<usize> {
        let mut out = Vec::new();
        match &h.event {
            Event::Msg { bind, from, .. } => {
                match bind {
                    MsgBind::None => {}
                    MsgBind::Whole(l) => out.push(*l),
                    MsgBind::Fields(fs) => out.extend(fs.iter().map(|(_, l)| *l)),
                }
                out.extend(from.iter().copied());
            }
            Event::Timeout(_) => {}
            Event::Choose { pat, .. } => pat_locals(pat, &mut out),
            Event::Request {
                args, bind_any, client, ..
            } => {
                out.push(*client);
                out.extend(bind_any.iter().copied());
                for a in args {
                    pat_locals(a, &mut out);
                }
            }
        }
        out
    }

    fn handler_fns(&self, r: usize) -> TokenStream {
        let p = self.protocol_ident();
        let state_t = self.role_ident(r, "State");
        let phase_t = self.role_ident(r, "Phase");
        let mut out = TokenStream::new();
        for (state, i, h) in self.all_handlers(r) {
            let name = self.handler_name(r, state, i, h);
            let params = self.handler_params(h).into_iter().map(|l| {
                let n = self.local_name(l);
                let t = self.ty(&self.spec.locals[l].ty);
                quote!(#n: #t)
            });
            let body = self.stmts(&h.body, Scope::Handler(r));
            let doc = format!(
                " `on {}` ({}).",
                self.file
                    .snippet(h.span)
                    .lines()
                    .next()
                    .unwrap_or("")
                    // Without a trailing comment (an equivalence mark, say).
                    .split("//")
                    .next()
                    .unwrap_or("")
                    .trim_end()
                    .trim_start_matches("on ")
                    .trim_end_matches('{')
                    .trim(),
                self.loc_text(h.span)
            );
            let label = doc.trim().to_string();
            out.extend(quote! {
                #[doc = #doc]
                fn #name<E: Effects<#p, Delta>>(&self, me: Id, st: &mut Cow<'_, #state_t>, fx: &mut E, dirty: &mut bool, #(#params),*) -> Result<Flow<#phase_t>, HandlerError> {
                    fx.handler(#label);
                    #body
                    Ok(Flow::Stay)
                }
            });
        }
        out
    }

    /// The dispatchers: for each event kind, try the current state's
    /// handlers, then the role's, in declaration order; run the first whose
    /// pattern and guard match.
    fn dispatchers(&self, r: usize) -> TokenStream {
        let role = &self.spec.roles[r];
        let p = self.protocol_ident();
        let state_t = self.role_ident(r, "State");
        let phase_t = self.role_ident(r, "Phase");
        let timer_t = self.role_ident(r, "Timer");
        let choice_t = self.role_ident(r, "Choice");
        type Kind = (&'static str, TokenStream, fn(&Event) -> bool);
        let kinds: [Kind; 3] = [
            ("on_msg", quote!(src: Id, msg: Msg), |e| {
                matches!(e, Event::Msg { .. } | Event::Request { .. })
            }),
            ("on_timeout", quote!(timer: &#timer_t), |e| {
                matches!(e, Event::Timeout(_))
            }),
            ("on_random", quote!(random: &#choice_t), |e| {
                matches!(e, Event::Choose { .. })
            }),
        ];
        let mut out = TokenStream::new();
        for (fname, param, is_kind) in kinds {
            let fname = format_ident!("{}", fname);
            let mut by_state = Vec::new();
            for (si, s) in role.states.iter().enumerate() {
                let tries: Vec<TokenStream> = s
                    .handlers
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| is_kind(&h.event))
                    .map(|(i, h)| self.try_handler(r, Some(si), i, h))
                    .collect();
                if !tries.is_empty() {
                    let n = ident(&s.name);
                    by_state.push(quote!(#phase_t::#n => { #(#tries)* }));
                }
            }
            let any: Vec<TokenStream> = role
                .handlers
                .iter()
                .enumerate()
                .filter(|(_, h)| is_kind(&h.event))
                .map(|(i, h)| self.try_handler(r, None, i, h))
                .collect();
            let state_match = if by_state.is_empty() {
                quote!()
            } else {
                quote!(match st.phase {
                    #(#by_state)*
                    _ => {}
                })
            };
            out.extend(quote! {
                pub fn #fname<E: Effects<#p, Delta>>(&self, me: Id, st: &mut Cow<'_, #state_t>, #param, fx: &mut E) -> Result<(), HandlerError> {
                    let mut dirty = false;
                    let dirty = &mut dirty;
                    let flow = 'handled: {
                        #state_match
                        #(#any)*
                        // No handler for this event here: ignore it.
                        return Ok(());
                    };
                    self.settle(me, st, fx, dirty, flow)?;
                    self.save(st, fx, *dirty);
                    Ok(())
                }
            });
        }
        out
    }

    /// Tries one handler inside a dispatcher: binds, checks the guard, runs.
    fn try_handler(&self, r: usize, state: Option<usize>, i: usize, h: &Handler) -> TokenStream {
        let role = &self.spec.roles[r];
        let name = self.handler_name(r, state, i, h);
        let args: Vec<Ident> = self.handler_params(h).into_iter().map(|l| self.local_name(l)).collect();
        let sc = Scope::Handler(r);
        // The bound values move into the handler: the dispatcher does not
        // use them once it has decided to run it.
        let call = quote!(break 'handled self.#name(me, st, fx, dirty, #(#args),*)?;);
        let run = match &h.guard {
            Some(g) => {
                let guard = self.expr_owned(g, sc);
                quote! {
                    if #guard {
                        #call
                    }
                }
            }
            None => call,
        };
        match &h.event {
            Event::Msg { msg, bind, from } => {
                let m = ident(&self.spec.messages[*msg].name);
                let mt = ident(&self.spec.messages[*msg].name);
                let binds = match bind {
                    MsgBind::None => quote!(),
                    MsgBind::Whole(l) => {
                        let n = self.local_name(*l);
                        quote!(let #n: #mt = __m.clone();)
                    }
                    MsgBind::Fields(fs) => {
                        let bs = fs.iter().map(|(f, l)| {
                            let n = self.local_name(*l);
                            let field = ident(&self.spec.messages[*msg].fields[*f].0);
                            quote!(let #n = __m.#field.clone();)
                        });
                        quote!(#(#bs)*)
                    }
                };
                let from = from.map(|l| {
                    let n = self.local_name(l);
                    // `from src` binds the parameter itself.
                    if n == "src" {
                        quote!()
                    } else {
                        quote!(let #n: Id = src;)
                    }
                });
                quote! {
                    if let Msg::#m(__m) = &msg {
                        #binds
                        #from
                        #run
                    }
                }
            }
            Event::Timeout(t) => {
                let tt = self.role_ident(r, "Timer");
                let v = camel(&role.timers[*t].name);
                quote! {
                    if let #tt::#v = timer {
                        #run
                    }
                }
            }
            Event::Choose { choice, pat } => {
                let ct = self.role_ident(r, "Choice");
                let v = camel(&role.choices[*choice].name);
                let p = self.pat(pat);
                quote! {
                    if let #ct::#v(__x) = random {
                        #[allow(irrefutable_let_patterns)]
                        if let #p = __x.clone() {
                            #run
                        }
                    }
                }
            }
            Event::Request {
                req,
                args: pats_ir,
                bind_any,
                client,
            } => {
                let pats = pats_ir;
                let c = self.local_name(*client);
                let bind_client = quote!(let #c: Client = *__tag;);
                match req {
                    None => {
                        let n = self.local_name(bind_any.expect("any-request binding"));
                        quote! {
                            if let Msg::Request(__tag, __r) = &msg {
                                #bind_client
                                let #n: Request = __r.clone();
                                #run
                            }
                        }
                    }
                    Some(q) => {
                        let rq = &self.spec.service.as_ref().expect("service").requests[*q];
                        let v = ident(&rq.name);
                        let fields: Vec<Ident> = rq.params.iter().map(|p| ident(&self.spec.locals[*p].name)).collect();
                        let tmp: Vec<Ident> = (0..fields.len()).map(|k| format_ident!("__a{}", k)).collect();
                        let pat_req = if fields.is_empty() {
                            quote!(Request::#v)
                        } else {
                            quote!(Request::#v { #(#fields: #tmp),* })
                        };
                        let pats: Vec<TokenStream> = pats.iter().map(|p| self.pat(p)).collect();
                        let simple = pats_simple(pats_ir);
                        let bind_args = if pats.is_empty() {
                            run
                        } else if simple {
                            // Plain names: bind them and go on.
                            quote! {
                                #(let #pats = #tmp.clone();)*
                                #run
                            }
                        } else {
                            quote! {
                                #[allow(irrefutable_let_patterns)]
                                if let (#(#pats,)*) = (#(#tmp.clone(),)*) {
                                    #run
                                }
                            }
                        };
                        quote! {
                            if let Msg::Request(__tag, #pat_req) = &msg {
                                #bind_client
                                #bind_args
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether every pattern is a plain binding or `_` (so `let` suffices).
fn pats_simple(pats: &[Pat]) -> bool {
    pats.iter().all(|p| matches!(p, Pat::Bind(_) | Pat::Wildcard))
}

fn pat_locals(p: &Pat, out: &mut Vec<usize>) {
    match p {
        Pat::Bind(l) => out.push(*l),
        Pat::Tuple(ps) | Pat::Enum { args: ps, .. } | Pat::Reply { args: ps, .. } | Pat::Request { args: ps, .. } => {
            ps.iter().for_each(|p| pat_locals(p, out))
        }
        Pat::Some(p) => pat_locals(p, out),
        _ => {}
    }
}
