//! Counterexamples: rebuilt from fingerprints and printed as a message
//! sequence a person can follow.
//!
//! A path is rebuilt by replaying from the initial state and, at each step,
//! finding the action whose (canonical) successor has the next fingerprint.
//! The replay keeps the real, un-canonicalized states, so with symmetry on
//! the trace still shows the node ids of an actual execution.
//!
//! Each step prints the event (delivery, timeout, crash, recovery, drop,
//! choice), the fields of the node's state that changed, and what it sent.
//! Node ids are printed as role names (`Server1`, `Client4`), also inside
//! message payloads.

use crate::search::{fingerprint, Discovery, Fp, Search};
use crate::system::{Action, SysState, System};
use serde::Serialize;
use smelt_support::{Id, Protocol};
use std::fmt::Write;

pub struct Trace<P: Protocol> {
    pub init: SysState<P>,
    pub steps: Vec<(Action<P>, SysState<P>)>,
    /// Liveness: the index of the first step of the repeating loop.
    pub loop_start: Option<usize>,
}

impl<P: Protocol> Trace<P> {
    pub fn last(&self) -> &SysState<P> {
        self.steps.last().map(|(_, s)| s).unwrap_or(&self.init)
    }
}

/// Rebuilds the path to `target` from the visited table.
pub fn reconstruct<P: Protocol>(search: &Search<P>, d: &Discovery) -> Option<Trace<P>> {
    let fps = match &d.path {
        Some(path) => path.clone(),
        None => search.table.path_to(d.fp),
    };
    replay(search.sys, &fps)
}

/// Replays a path of fingerprints (of canonical states, with symmetry on)
/// from the initial state.
///
/// The replay walks the path in the canonical domain, where the search
/// went, so every step is found. Alongside, it keeps the renaming from the
/// current canonical state to the actual execution and applies each step's
/// action, renamed, to the actual state: the trace shows a real execution
/// with the node ids it really had.
pub fn replay<P: Protocol>(sys: &System<P>, fps: &[Fp]) -> Option<Trace<P>> {
    let canon = |s: SysState<P>| -> (SysState<P>, Vec<Id>) {
        if sys.cfg.symmetry {
            crate::symmetry::canonical_with_map(sys, s)
        } else {
            let n = s.nodes.len();
            (s, (0..n).map(Id::from).collect())
        }
    };
    let init = sys.init();
    let (mut cur, map0) = canon(init.clone());
    if fps.first().copied() != Some(fingerprint(&cur)) {
        return None;
    }
    // sigma[canonical id] = actual id
    let mut sigma = invert(&map0);
    let mut actual = init.clone();
    let mut steps = Vec::new();
    let mut actions = Vec::new();
    for want in &fps[1..] {
        actions.clear();
        sys.actions(&cur, &mut actions);
        let (a, next, map) = actions.iter().find_map(|a| {
            let t = sys.next(&cur, a)?;
            let (c, map) = canon(t);
            (fingerprint(&c) == *want).then(|| (a.clone(), c, map))
        })?;
        let s = sigma.clone();
        let real = a.rewrite_ids(&|id: Id| s.get(usize::from(id)).copied().unwrap_or(id));
        let real_next = sys.next(&actual, &real)?;
        steps.push((real, real_next.clone()));
        actual = real_next;
        // The next canonical state's ids map to the raw successor's ids by
        // the inverse of `map`, and those to the actual ids by `sigma`.
        let back = invert(&map);
        sigma = back
            .iter()
            .map(|raw| s.get(usize::from(*raw)).copied().unwrap_or(*raw))
            .collect();
        cur = next;
    }
    Some(Trace {
        init,
        steps,
        loop_start: None,
    })
}

fn invert(map: &[Id]) -> Vec<Id> {
    let mut inv: Vec<Id> = (0..map.len()).map(Id::from).collect();
    for (old, new) in map.iter().enumerate() {
        if let Some(slot) = inv.get_mut(usize::from(*new)) {
            *slot = Id::from(old);
        }
    }
    inv
}

/// Replays a list of actions (simulation and shrinking); stops at the first
/// action that is not enabled.
pub fn replay_actions<P: Protocol>(sys: &System<P>, actions: &[Action<P>]) -> Trace<P> {
    let init = sys.init();
    let mut cur = init.clone();
    let mut steps = Vec::new();
    for a in actions {
        match sys.next(&cur, a) {
            Some(t) => {
                cur = t.clone();
                steps.push((a.clone(), t));
            }
            None => break,
        }
    }
    Trace {
        init,
        steps,
        loop_start: None,
    }
}

/// Node names: role name and id (`Server0`, `Client3`).
pub fn node_name<P: Protocol>(sys: &System<P>, id: Id) -> String {
    let i = usize::from(id);
    match sys.layout.role_of(id) {
        Some(r) => format!("{}{}", P::roles().get(r).map(|x| x.name).unwrap_or("Node"), i),
        None if i < sys.actors.len() => format!("Client{i}"),
        None => format!("Id({i})"),
    }
}

/// `Debug` text with every `Id(n)` replaced by the node's name (but not
/// inside a `Bytes` value: its text is the user's, not an id).
pub fn names<P: Protocol>(sys: &System<P>, text: &str) -> String {
    outside_strings(text, |t| ids_named(t, &|n| node_name(sys, Id::from(n))))
}

/// `text` with `f` applied to the parts outside string literals (`"..."`
/// with `\`-escapes, as `Bytes` and `String` print themselves), so that
/// bytes that happen to read `Id(1)` or `Client { node: ` stay as written.
fn outside_strings(text: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&f(&rest[..open]));
        let b = rest.as_bytes();
        let mut i = open + 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        // `i` stops on a `"` (one byte, a char boundary) or past the end.
        let close = (i + 1).min(rest.len());
        out.push_str(&rest[open..close]);
        rest = &rest[close..];
    }
    out.push_str(&f(rest));
    out
}

/// Every `Id(n)` in `text` (which holds no string literal) as `name(n)`.
fn ids_named(text: &str, name: &dyn Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(k) = rest.find("Id(") {
        let (head, tail) = rest.split_at(k);
        out.push_str(head);
        let digits: String = tail[3..].chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && tail[3 + digits.len()..].starts_with(')') {
            let n: usize = digits.parse().unwrap_or(0);
            // Only whole identifiers: `ClientId(3)` is not a node.
            let prev = head.chars().last();
            if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                out.push_str(&tail[..4 + digits.len()]);
            } else {
                out.push_str(&name(n));
            }
            rest = &tail[4 + digits.len()..];
        } else {
            out.push_str("Id(");
            rest = &tail[3..];
        }
    }
    out.push_str(rest);
    out
}

/// A message as the trace shows it: node names for ids (so a client
/// request handle reads `Client3#2`, request 2 of client 3), and
/// `Prepare { .. }` rather than `Prepare(Prepare { .. })`.
pub fn show<P: Protocol, T: std::fmt::Debug>(sys: &System<P>, value: &T) -> String {
    let text = names(sys, &format!("{value:?}"));
    unwrap_variant(&text)
}

/// A choice as `Role(Choice(value))` → `value`; a client's pick stays whole.
fn choice_value(text: &str) -> String {
    let strip = |t: &str| -> Option<String> {
        let open = t.find('(')?;
        let name = &t[..open];
        (name.chars().all(|c| c.is_alphanumeric() || c == '_') && t.ends_with(')'))
            .then(|| t[open + 1..t.len() - 1].to_string())
    };
    match strip(text).and_then(|inner| strip(&inner)) {
        Some(v) if !text.starts_with("Client(") => v,
        _ => text.to_string(),
    }
}

/// `Name(Name { .. })` → `Name { .. }`.
fn unwrap_variant(text: &str) -> String {
    if let Some(open) = text.find('(') {
        let name = &text[..open];
        let inner = &text[open + 1..];
        if !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            && text.ends_with(')')
            && inner.starts_with(name)
            && inner[name.len()..].starts_with([' ', ')'])
        {
            return inner[..inner.len() - 1].to_string();
        }
    }
    text.to_string()
}

#[derive(Clone, Debug, Serialize)]
pub struct JsonStep {
    pub step: usize,
    pub node: String,
    pub event: String,
    pub changes: Vec<String>,
    pub sends: Vec<String>,
    pub in_loop: bool,
}

/// The steps of a trace in structured form (for JSON reports and tests).
pub fn steps<P: Protocol>(sys: &System<P>, t: &Trace<P>) -> Vec<JsonStep> {
    let mut out = Vec::new();
    let mut before = &t.init;
    for (k, (a, after)) in t.steps.iter().enumerate() {
        let (node, event) = describe_action(sys, a);
        let changes = match a {
            Action::Deliver { dst: n, .. }
            | Action::Timeout { node: n, .. }
            | Action::Choose { node: n, .. }
            | Action::Recover(n) => changed_fields(sys, before, after, usize::from(*n)),
            _ => Vec::new(),
        };
        out.push(JsonStep {
            step: k + 1,
            node,
            event,
            changes,
            sends: sends(sys, before, a),
            in_loop: t.loop_start.is_some_and(|l| k >= l),
        });
        before = after;
    }
    out
}

/// One line for an action: `Server1 receives Prepare { .. } from Server0`.
pub fn describe<P: Protocol>(sys: &System<P>, a: &Action<P>) -> String {
    let (node, event) = describe_action(sys, a);
    format!("{node} {event}")
}

fn describe_action<P: Protocol>(sys: &System<P>, a: &Action<P>) -> (String, String) {
    match a {
        Action::Deliver { src, dst, msg } => (
            node_name(sys, *dst),
            format!("receives {} from {}", show(sys, msg), node_name(sys, *src)),
        ),
        Action::Drop { src, dst, msg } => (
            "network".into(),
            format!(
                "drops {} from {} to {}",
                show(sys, msg),
                node_name(sys, *src),
                node_name(sys, *dst)
            ),
        ),
        Action::Timeout { node, timer } => {
            let name = P::timer_info(timer)
                .and_then(|(r, i)| {
                    P::roles()
                        .get(r)
                        .and_then(|x| x.timers.get(i))
                        .map(|t| t.name.to_string())
                })
                .unwrap_or_else(|| format!("{timer:?}"));
            (node_name(sys, *node), format!("timeout `{name}`"))
        }
        Action::Crash(n) => (node_name(sys, *n), "crashes (volatile state lost)".into()),
        Action::Stop(n) => (node_name(sys, *n), "stops for good (crashes and never recovers)".into()),
        Action::Torn(inner) => {
            let (node, event) = describe_action(sys, inner);
            (
                node,
                format!("{event}, sends its early messages and crashes before its durable writes reach the disk"),
            )
        }
        Action::Recover(n) => (node_name(sys, *n), "recovers from its durable state".into()),
        Action::Choose { node, key, value } => (
            node_name(sys, *node),
            format!("chooses `{key}` = {}", choice_value(&show(sys, value))),
        ),
        Action::Calm => (
            "environment".into(),
            "stops making faults; from here on it is fair".into(),
        ),
    }
}

fn changed_fields<P: Protocol>(sys: &System<P>, before: &SysState<P>, after: &SysState<P>, i: usize) -> Vec<String> {
    let old = P::describe_fields(&before.nodes[i].state);
    let new = P::describe_fields(&after.nodes[i].state);
    let mut out = Vec::new();
    for (name, v) in &new {
        match old.iter().find(|(n, _)| n == name) {
            Some((_, o)) if o == v => {}
            Some((_, o)) => out.push(format!("{name}: {} → {}", names(sys, o), names(sys, v))),
            None => out.push(format!("{name}: {}", names(sys, v))),
        }
    }
    out
}

/// What a step sent, grouped by message: `Prepare { .. } → Server1, Server2`.
fn sends<P: Protocol>(sys: &System<P>, before: &SysState<P>, a: &Action<P>) -> Vec<String> {
    let Some((_, sent)) = sys.next_with_sends(before, a) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (dst, msg) in sent {
        let m = show(sys, &msg);
        let to = node_name(sys, dst);
        match out.iter_mut().find(|(x, _)| *x == m) {
            Some((_, dsts)) => dsts.push(to),
            None => out.push((m, vec![to])),
        }
    }
    out.into_iter()
        .map(|(m, dsts)| format!("{m} → {}", dsts.join(", ")))
        .collect()
}

/// The whole trace as text.
pub fn render<P: Protocol>(sys: &System<P>, t: &Trace<P>) -> String {
    let mut out = String::new();
    let initial: Vec<String> = t
        .init
        .net
        .deliverable()
        .map(|e| {
            format!(
                "{} → {}: {}",
                node_name(sys, e.src),
                node_name(sys, e.dst),
                show(sys, e.msg)
            )
        })
        .collect();
    if !initial.is_empty() {
        let _ = writeln!(out, "  initially in flight:");
        for m in initial {
            let _ = writeln!(out, "      {m}");
        }
    }
    for s in steps(sys, t) {
        if t.loop_start == Some(s.step - 1) {
            let _ = writeln!(out, "  ---- loop: the following steps repeat forever ----");
        }
        let marker = if s.in_loop { "↻" } else { " " };
        let _ = writeln!(out, "{marker}{:>3}. {} {}", s.step, s.node, s.event);
        for c in &s.changes {
            let _ = writeln!(out, "         {c}");
        }
        for m in &s.sends {
            let _ = writeln!(out, "         sends {m}");
        }
    }
    if let Some(l) = t.loop_start {
        let _ = writeln!(out, "  ---- back to step {} ----", l + 1);
    }
    out
}

/// Every server's state in one block, for "the values that broke it".
pub fn render_nodes<P: Protocol>(sys: &System<P>, s: &SysState<P>) -> String {
    let mut out = String::new();
    for i in 0..s.nodes.len() {
        let id = Id::from(i);
        let fields = P::describe_fields(&s.nodes[i].state);
        let down = if s.is_stopped(i) {
            " (stopped)"
        } else if s.is_crashed(i) {
            " (crashed)"
        } else {
            ""
        };
        let body: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={}", names(sys, v))).collect();
        let _ = writeln!(out, "      {}{}: {}", node_name(sys, id), down, body.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_not_rewritten() {
        let name = |n: usize| format!("Server{n}");
        let text = r#"Put { key: Id(1), value: "Id(1) \"Id(2)\" \\" }, Id(3), "Client { node: Id(0), request_id: 1 }""#;
        let named = outside_strings(text, |t| ids_named(t, &name));
        assert_eq!(
            named,
            r#"Put { key: Server1, value: "Id(1) \"Id(2)\" \\" }, Server3, "Client { node: Id(0), request_id: 1 }""#
        );
        // An unclosed quote (not from `Bytes`) keeps the rest as it is.
        assert_eq!(
            outside_strings("Id(1) \"Id(2)", |t| ids_named(t, &name)),
            "Server1 \"Id(2)"
        );
        assert_eq!(outside_strings("é\"é\\", |t| t.to_uppercase()), "É\"é\\");
    }
}
