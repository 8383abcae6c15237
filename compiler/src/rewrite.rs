//! Node-id rewriting for every generated type, so the checker can map a
//! state to the representative of its symmetry class. Also implements
//! stateright's `Rewrite<Id>` for the types its `ActorModel` needs, so the
//! generated actor works with stateright's own `symmetry()` as well.

use crate::names::{camel, ident};
use crate::Gen;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

impl Gen<'_> {
    fn rewrite_struct(&self, name: &Ident, fields: &[Ident]) -> TokenStream {
        quote! {
            impl Rewrite for #name {
                fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
                    #name { #(#fields: self.#fields.rewrite(f),)* }
                }
            }
        }
    }

    /// `variants`: name and number of payload values (`None` for struct
    /// variants with these field names).
    fn rewrite_enum(&self, name: &Ident, variants: &[(Ident, Vec<Ident>, bool)]) -> TokenStream {
        if variants.is_empty() {
            return quote! {
                impl Rewrite for #name {
                    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { match *self {} }
                }
            };
        }
        let arms = variants.iter().map(|(v, fields, named)| {
            if fields.is_empty() {
                quote!(#name::#v => #name::#v,)
            } else if *named {
                quote!(#name::#v { #(#fields),* } => #name::#v { #(#fields: #fields.rewrite(f)),* },)
            } else {
                quote!(#name::#v(#(#fields),*) => #name::#v(#(#fields.rewrite(f)),*),)
            }
        });
        quote! {
            impl Rewrite for #name {
                fn rewrite<F: Fn(Id) -> Id>(&self, f: &F) -> Self {
                    match self { #(#arms)* }
                }
            }
        }
    }

    fn positional(n: usize) -> Vec<Ident> {
        (0..n).map(|i| format_ident!("x{}", i)).collect()
    }

    pub fn rewrites(&self) -> TokenStream {
        let s = &self.s;
        let mut out = TokenStream::new();
        for r in &self.spec.records {
            let fs: Vec<Ident> = r.fields.iter().map(|(f, _)| ident(f)).collect();
            out.extend(self.rewrite_struct(&ident(&r.name), &fs));
        }
        for m in &self.spec.messages {
            let fs: Vec<Ident> = m.fields.iter().map(|(f, _)| ident(f)).collect();
            out.extend(self.rewrite_struct(&ident(&m.name), &fs));
        }
        for e in &self.spec.enums {
            let vs: Vec<_> = e
                .variants
                .iter()
                .map(|(v, ts)| (ident(v), Self::positional(ts.len()), false))
                .collect();
            out.extend(self.rewrite_enum(&ident(&e.name), &vs));
        }
        // Msg
        let mut msg_vs: Vec<_> = self
            .spec
            .messages
            .iter()
            .map(|m| (ident(&m.name), Self::positional(1), false))
            .collect();
        if let Some(svc) = &self.spec.service {
            msg_vs.push((format_ident!("Request"), Self::positional(2), false));
            msg_vs.push((format_ident!("Reply"), Self::positional(2), false));
            msg_vs.push((format_ident!("Redirect"), Self::positional(2), false));
            let mut fs: Vec<Ident> = svc.vars.iter().map(|v| ident(&v.name)).collect();
            if svc.sessions.is_some() {
                fs.push(format_ident!("__sessions"));
            }
            out.extend(self.rewrite_struct(&ident(&svc.name), &fs));
            let req_vs: Vec<_> = svc
                .requests
                .iter()
                .map(|r| {
                    (
                        ident(&r.name),
                        r.params.iter().map(|p| ident(&self.spec.locals[*p].name)).collect(),
                        true,
                    )
                })
                .collect();
            out.extend(self.rewrite_enum(&format_ident!("Request"), &req_vs));
            let mut rep_vs: Vec<_> = svc
                .replies
                .iter()
                .map(|r| (ident(&r.name), Self::positional(r.fields.len()), false))
                .collect();
            if svc.sessions.is_some() {
                rep_vs.push((format_ident!("Rejected"), Self::positional(1), false));
            }
            out.extend(self.rewrite_enum(&format_ident!("Reply"), &rep_vs));
        } else {
            out.extend(quote! {
                impl Rewrite for NoService {
                    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { NoService }
                }
            });
        }
        out.extend(self.rewrite_enum(&format_ident!("Msg"), &msg_vs));
        let mut state_vs = Vec::new();
        let mut storage_vs = Vec::new();
        let mut delta_vs = Vec::new();
        let mut timer_vs = Vec::new();
        let mut random_vs = Vec::new();
        for (r, role) in self.spec.roles.iter().enumerate() {
            let n = ident(&role.name);
            let mut fs: Vec<Ident> = vec![format_ident!("phase")];
            fs.extend(role.vars.iter().map(|v| ident(&v.name)));
            fs.push(format_ident!("failure"));
            out.extend(self.rewrite_struct(&self.role_ident(r, "State"), &fs));
            let ds: Vec<Ident> = role.vars.iter().filter(|v| v.durable).map(|v| ident(&v.name)).collect();
            out.extend(self.rewrite_struct(&self.role_ident(r, "Storage"), &ds));
            let phase = self.role_ident(r, "Phase");
            out.extend(quote! {
                impl Rewrite for #phase {
                    fn rewrite<F: Fn(Id) -> Id>(&self, _: &F) -> Self { *self }
                }
            });
            // Delta variants mirror `role::deltas`.
            let mut dvs = Vec::new();
            let mut later = Vec::new();
            let mut newest = Vec::new();
            for v in role.vars.iter().filter(|v| v.durable) {
                let c = camel(&v.name);
                dvs.push((c.clone(), Self::positional(1), false));
                match v.ty.resolved() {
                    smelt_dsl::ir::Ty::List(_) => {
                        dvs.push((format_ident!("{}Push", c), Self::positional(1), false));
                        dvs.push((format_ident!("{}Truncate", c), Self::positional(1), false));
                        dvs.push((format_ident!("{}Set", c), Self::positional(2), false));
                        dvs.push((format_ident!("{}Extend", c), Self::positional(1), false));
                        later.push((format_ident!("{}DropFirst", c), Self::positional(1), false));
                    }
                    smelt_dsl::ir::Ty::Service => {
                        later.push((format_ident!("{}Apply", c), Self::positional(1), false));
                        if self.spec.service.as_ref().is_some_and(|s| s.sessions.is_some()) {
                            newest.push((format_ident!("{}ApplySession", c), Self::positional(3), false));
                        }
                    }
                    smelt_dsl::ir::Ty::Set(_) => {
                        dvs.push((format_ident!("{}Insert", c), Self::positional(1), false));
                        dvs.push((format_ident!("{}Remove", c), Self::positional(1), false));
                    }
                    smelt_dsl::ir::Ty::Map(..) => {
                        dvs.push((format_ident!("{}Insert", c), Self::positional(2), false));
                        dvs.push((format_ident!("{}Remove", c), Self::positional(1), false));
                    }
                    _ => {}
                }
            }
            dvs.extend(later);
            dvs.extend(newest);
            out.extend(self.rewrite_enum(&self.role_ident(r, "Delta"), &dvs));
            let tvs: Vec<_> = role.timers.iter().map(|t| (camel(&t.name), vec![], false)).collect();
            out.extend(self.rewrite_enum(&self.role_ident(r, "Timer"), &tvs));
            let cvs: Vec<_> = role
                .choices
                .iter()
                .map(|c| (camel(&c.name), Self::positional(1), false))
                .collect();
            out.extend(self.rewrite_enum(&self.role_ident(r, "Choice"), &cvs));
            state_vs.push((n.clone(), Self::positional(1), false));
            storage_vs.push((n.clone(), Self::positional(1), false));
            delta_vs.push((n.clone(), Self::positional(1), false));
            timer_vs.push((n.clone(), Self::positional(1), false));
            random_vs.push((n, Self::positional(1), false));
        }
        state_vs.push((format_ident!("Client"), Self::positional(1), false));
        timer_vs.push((format_ident!("Client"), Self::positional(1), false));
        random_vs.push((format_ident!("Client"), Self::positional(1), false));
        out.extend(self.rewrite_enum(&format_ident!("State"), &state_vs));
        out.extend(self.rewrite_enum(&format_ident!("Storage"), &storage_vs));
        out.extend(self.rewrite_enum(&format_ident!("Delta"), &delta_vs));
        out.extend(self.rewrite_enum(&format_ident!("Timer"), &timer_vs));
        out.extend(self.rewrite_enum(&format_ident!("Random"), &random_vs));
        for t in ["Msg", "State", "Storage", "Random", "Timer"] {
            let t = format_ident!("{}", t);
            out.extend(quote! {
                impl #s::stateright::Rewrite<Id> for #t {
                    fn rewrite<S>(&self, plan: &#s::stateright::RewritePlan<Id, S>) -> Self {
                        Rewrite::rewrite(self, &|id| plan.rewrite(&id))
                    }
                }
            });
        }
        out
    }
}
