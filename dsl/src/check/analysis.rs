//! Whole-spec analyses run after everything is resolved: warnings about
//! dead code and the symmetry verdict.

use super::Checker;
use crate::ast::{self, CheckEntryKind, Item};
use crate::diag::Diagnostic;
use crate::ir::{self, StmtKind as I};

impl Checker<'_> {
    pub(super) fn analyse(&mut self) {
        self.symmetry_requests();
        // With syntax errors, some handlers and gotos are missing from the
        // tree, and "never used" warnings would be wrong. The same goes for
        // other errors: a misspelt `goto Decidde` must not also make state
        // `Decided` "never entered".
        if !self.syntax_errors && !self.diags.iter().any(|d| d.is_error()) {
            self.unreachable_states();
            self.message_usage();
            self.timer_usage();
        }
    }

    fn unreachable_states(&mut self) {
        for r in 0..self.spec.roles.len() {
            let role = &self.spec.roles[r];
            let Some(init) = role.initial_state else { continue };
            let n = role.states.len();
            let mut reached = vec![false; n];
            reached[init] = true;
            // Edges from `usize::MAX` come from role-level handlers and `init`,
            // which run in every state.
            loop {
                let mut changed = false;
                for &(from, to) in &self.goto_targets[r] {
                    let from_live = from == usize::MAX || reached.get(from).copied().unwrap_or(false);
                    if from_live && !reached[to] {
                        reached[to] = true;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            for (s, ok) in reached.iter().enumerate() {
                if !ok {
                    let st = &self.spec.roles[r].states[s];
                    let d = Diagnostic::warning(
                        st.span,
                        format!(
                            "state `{}` of role `{}` is never entered",
                            st.name, self.spec.roles[r].name
                        ),
                    )
                    .label("unreachable state")
                    .note("no `goto` reachable from the initial state leads here");
                    self.diags.push(d);
                }
            }
        }
    }

    fn message_usage(&mut self) {
        for m in 0..self.spec.messages.len() {
            let msg = &self.spec.messages[m];
            if !self.msg_handled[m] {
                let d = Diagnostic::warning(msg.span, format!("no role handles message `{}`", msg.name))
                    .label("never handled")
                    .note("a node that receives it ignores it");
                self.diags.push(d);
            } else if !self.msg_sent[m] {
                let d =
                    Diagnostic::warning(msg.span, format!("message `{}` is never sent", msg.name)).label("never sent");
                self.diags.push(d);
            }
        }
    }

    fn timer_usage(&mut self) {
        for r in 0..self.spec.roles.len() {
            let role = &self.spec.roles[r];
            let mut set = vec![false; role.timers.len()];
            let mut handled = vec![false; role.timers.len()];
            let mut visit = |stmts: &[ir::Stmt]| {
                walk(stmts, &mut |s| {
                    if let I::SetTimer(t) = s {
                        set[*t] = true;
                    }
                })
            };
            visit(&role.init);
            for st in &role.states {
                visit(&st.entry);
                visit(&st.exit);
                for h in &st.handlers {
                    visit(&h.body);
                }
            }
            for h in &role.handlers {
                visit(&h.body);
            }
            let all_handlers = role
                .handlers
                .iter()
                .chain(role.states.iter().flat_map(|s| s.handlers.iter()));
            for h in all_handlers {
                if let ir::Event::Timeout(t) = h.event {
                    handled[t] = true;
                }
            }
            for (t, timer) in role.timers.iter().enumerate() {
                if !set[t] {
                    let d = Diagnostic::warning(timer.span, format!("timer `{}` is never set", timer.name))
                        .label("never armed");
                    self.diags.push(d);
                } else if !handled[t] {
                    let d = Diagnostic::warning(
                        timer.span,
                        format!("timer `{}` has no `on timeout` handler", timer.name),
                    )
                    .label("fires into nothing");
                    self.diags.push(d);
                }
            }
        }
    }

    /// A check that asks for symmetry reduction on a spec whose behaviour
    /// depends on node ids would give unsound verdicts: refuse it.
    fn symmetry_requests(&mut self) {
        if self.spec.symmetric {
            return;
        }
        let file: &ast::File = self.file;
        for item in &file.items {
            let Item::Check(c) = item else { continue };
            for e in &c.entries {
                if matches!(e.kind, CheckEntryKind::Symmetry) {
                    let mut d = Diagnostic::error(e.span, "symmetry reduction would be unsound for this protocol")
                        .label("servers are not interchangeable");
                    if let Some((span, why)) = &self.spec.asymmetry {
                        d = d.secondary(*span, why.clone());
                    }
                    self.diags
                        .push(d.note("remove `symmetry`, or make the protocol independent of how nodes are numbered"));
                }
            }
        }
    }
}

/// Calls `f` on every statement kind, recursively.
pub(crate) fn walk(stmts: &[ir::Stmt], f: &mut impl FnMut(&I)) {
    for s in stmts {
        f(&s.kind);
        match &s.kind {
            I::If { then, els, .. } => {
                walk(then, f);
                walk(els, f);
            }
            I::For { body, .. } => walk(body, f),
            I::Match { arms, .. } => arms.iter().for_each(|(_, b)| walk(b, f)),
            _ => {}
        }
    }
}
