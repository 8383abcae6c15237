//! The storage schema: a canonical text of the types a node's durable
//! state is made of, emitted as `Protocol::STORAGE_SCHEMA`.
//!
//! The runtime records its hash in a data directory and refuses to load a
//! directory written under another one (the records would not decode, or
//! worse, decode into something else). So the text holds exactly what
//! decides the bytes on disk — the durable variables of each role in
//! order, and the definitions of every type they reach — and nothing
//! else: a handler, a message, a comment or a line number may change
//! without it (that is an upgrade, not a new format).

use crate::Spec;
use smelt_dsl::ir::Ty;
use std::fmt::Write;

/// The encoding of deltas and storage for given types; raised when the
/// compiler changes how it persists the same types.
pub const STORAGE_ENCODING: u32 = 1;

/// A named type whose definition is part of the schema.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Named {
    Record(usize),
    Enum(usize),
    Message(usize),
    Request,
    Reply,
    Service,
}

struct Writer<'a> {
    spec: &'a Spec,
    /// Named types met, in order of first mention; each defined once.
    named: Vec<Named>,
}

impl Writer<'_> {
    fn ty(&mut self, t: &Ty) -> String {
        let mut named = |n: Named, text: String| {
            if !self.named.contains(&n) {
                self.named.push(n);
            }
            text
        };
        match t {
            Ty::Bool => "bool".into(),
            Ty::Int(i) => format!("{i:?}").to_lowercase(),
            Ty::Node => "node".into(),
            Ty::Client => "client".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Option(t) => format!("option<{}>", self.ty(t)),
            Ty::Tuple(ts) => format!("({})", ts.iter().map(|t| self.ty(t)).collect::<Vec<_>>().join(", ")),
            Ty::List(t) => format!("list<{}>", self.ty(t)),
            Ty::Set(t) => format!("set<{}>", self.ty(t)),
            Ty::Map(k, v) => format!("map<{}, {}>", self.ty(k), self.ty(v)),
            Ty::Record(id) => named(Named::Record(*id), format!("record {}", self.spec.records[*id].name)),
            Ty::Enum(id) => named(Named::Enum(*id), format!("enum {}", self.spec.enums[*id].name)),
            Ty::Message(id) => named(Named::Message(*id), format!("message {}", self.spec.messages[*id].name)),
            Ty::Request => named(Named::Request, "request".into()),
            Ty::Reply => named(Named::Reply, "reply".into()),
            Ty::Service => named(Named::Service, "service".into()),
            // Aliases are names only: the bytes are the aliased type's.
            Ty::Alias(_, t) => self.ty(t),
            Ty::Instance(_) | Ty::ClientInstance | Ty::Error => "()".into(),
        }
    }

    fn fields<'t>(&mut self, fields: impl IntoIterator<Item = (&'t str, &'t Ty)>) -> String {
        let parts: Vec<String> = fields
            .into_iter()
            .map(|(n, t)| format!("{n}: {}", self.ty(t)))
            .collect();
        parts.join(", ")
    }

    fn definition(&mut self, n: Named) -> String {
        let spec = self.spec;
        match n {
            Named::Record(id) => {
                let r = &spec.records[id];
                let f = self.fields(r.fields.iter().map(|(n, t)| (n.as_str(), t)));
                format!("record {} {{ {f} }}", r.name)
            }
            Named::Message(id) => {
                let m = &spec.messages[id];
                let f = self.fields(m.fields.iter().map(|(n, t)| (n.as_str(), t)));
                format!("message {} {{ {f} }}", m.name)
            }
            Named::Enum(id) => {
                let e = &spec.enums[id];
                let vs: Vec<String> = e
                    .variants
                    .iter()
                    .map(|(v, ts)| format!("{v}({})", ts.iter().map(|t| self.ty(t)).collect::<Vec<_>>().join(", ")))
                    .collect();
                format!("enum {} {{ {} }}", e.name, vs.join(", "))
            }
            Named::Request => {
                let Some(s) = &spec.service else {
                    return "request {}".into();
                };
                let vs: Vec<String> = s
                    .requests
                    .iter()
                    .map(|r| {
                        let ps: Vec<String> = r.params.iter().map(|&l| self.ty(&spec.locals[l].ty)).collect();
                        format!("{}({})", r.name, ps.join(", "))
                    })
                    .collect();
                format!("request {{ {} }}", vs.join(", "))
            }
            Named::Reply => {
                let Some(s) = &spec.service else {
                    return "reply {}".into();
                };
                let vs: Vec<String> = s
                    .replies
                    .iter()
                    .map(|r| {
                        format!(
                            "{}({})",
                            r.name,
                            r.fields.iter().map(|t| self.ty(t)).collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect();
                format!("reply {{ {} }}", vs.join(", "))
            }
            Named::Service => {
                let Some(s) = &spec.service else {
                    return "service {}".into();
                };
                let f = self.fields(s.vars.iter().map(|v| (v.name.as_str(), &v.ty)));
                // The session table (and with it the replies it records).
                let sessions = if s.sessions.is_some() {
                    self.ty(&Ty::Reply);
                    ", sessions"
                } else {
                    ""
                };
                format!("service {} {{ {f}{sessions} }}", s.name)
            }
        }
    }
}

/// The schema text of `spec`'s durable state (see the module docs).
pub fn storage_schema(spec: &Spec) -> String {
    let mut w = Writer {
        spec,
        named: Vec::new(),
    };
    let mut out = format!("smelt storage {STORAGE_ENCODING}\n");
    for role in &spec.roles {
        let f = w.fields(role.vars.iter().filter(|v| v.durable).map(|v| (v.name.as_str(), &v.ty)));
        let _ = writeln!(out, "role {} {{ {f} }}", role.name);
    }
    // Definitions may name more types: go on until none is new.
    let mut i = 0;
    while i < w.named.len() {
        let d = w.definition(w.named[i]);
        let _ = writeln!(out, "{d}");
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::storage_schema;

    fn schema(text: &str) -> String {
        let checked = smelt_dsl::check_source("t.sm", text);
        let Some(spec) = &checked.spec else {
            panic!("{}", checked.render_errors())
        };
        storage_schema(spec)
    }

    const BASE: &str = r#"protocol T
record Entry { term: u64, tag: Tag }
enum Tag { A, B(u64) }
message Ping { n: u64 }
role Server {
    durable term: u64 = 0
    durable log: List<Entry> = []
    var seen: u64 = 0
    on Ping(m) when m.n > term {
        term = m.n
    }
}
"#;

    #[test]
    fn the_schema_is_the_durable_types_and_nothing_else() {
        let base = schema(BASE);
        assert_eq!(
            base,
            "smelt storage 1\nrole Server { term: u64, log: list<record Entry> }\nrecord Entry { term: u64, tag: enum Tag }\nenum Tag { A(), B(u64) }\n"
        );
        // Handlers, volatile variables, messages, comments and positions
        // are not the format.
        let same = BASE
            .replace("m.n > term", "m.n >= term")
            .replace("var seen: u64 = 0", "var seen: u32 = 1")
            .replace(
                "message Ping { n: u64 }",
                "// a comment\n\nmessage Ping { n: u64, extra: bool }",
            );
        assert_eq!(schema(&same), base);
        // A durable type, a reached definition, or the order of durable
        // variables is.
        for changed in [
            BASE.replace("durable term: u64", "durable term: u32")
                .replace("message Ping { n: u64 }", "message Ping { n: u32 }"),
            BASE.replace("enum Tag { A, B(u64) }", "enum Tag { A, B(u64), C }"),
            BASE.replace(
                "record Entry { term: u64, tag: Tag }",
                "record Entry { tag: Tag, term: u64 }",
            ),
            BASE.replace("var seen: u64 = 0", "durable seen: u64 = 0"),
        ] {
            assert_ne!(schema(&changed), base, "{changed}");
        }
    }
}
