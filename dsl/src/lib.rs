//! The smelt specification language: grammar, syntax tree, name resolution,
//! type checking and diagnostics.
//!
//! The entry point is [`check_source`]: text in, a checked [`ir::Spec`] (when
//! there are no errors) and every diagnostic out. It never panics, whatever
//! bytes it is given; a fuzz test holds it to that.

// Syntax trees have variants of very different sizes; boxing them would
// only add noise to every constructor and match.
#![allow(clippy::large_enum_variant)]

pub mod ast;
mod check;
pub mod diag;
pub mod ir;
pub mod mutate;
pub mod parser;
pub mod variant;

pub use diag::{Diagnostic, Severity, SourceFile};

/// The result of checking one spec.
pub struct Checked {
    pub file: SourceFile,
    /// `Some` exactly when `diagnostics` has no errors.
    pub spec: Option<ir::Spec>,
    pub diagnostics: Vec<Diagnostic>,
    /// For a variant (see [`variant`]), the base it was put together from:
    /// a build that tracks the spec must track this file too.
    pub base: Option<std::path::PathBuf>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics rendered as `smelt lint` prints them.
    pub fn render(&self, color: bool) -> String {
        diag::render(&self.file, &self.diagnostics, color)
    }

    /// Only the errors, rendered: what the proc macro and build API report.
    pub fn render_errors(&self) -> String {
        let errors: Vec<Diagnostic> = self.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        diag::render(&self.file, &errors, false)
    }
}

/// Stack for the front end's thread. Nesting is bounded by the parser's
/// limits, so this is generous; it is only reserved, not touched.
const STACK_BYTES: usize = 64 << 20;

/// Parses and checks a spec. `name` is the path shown in diagnostics.
/// A variant cannot be checked from its text alone (its base is another
/// file): [`check_source_in`] and [`check_file`] read it.
pub fn check_source(name: &str, text: &str) -> Checked {
    if variant::is_variant(text) {
        let d = Diagnostic::error(ast::Span::new(0, 0), "this spec is a variant of another")
            .label("a variant is checked from its file, next to its base");
        return Checked {
            file: SourceFile::new(name, text),
            spec: None,
            diagnostics: vec![d],
            base: None,
        };
    }
    check_composed(SourceFile::new(name, text), None)
}

/// Like [`check_source`], and a variant's base is read from `dir` (the
/// directory the spec's file is in; `name` is only shown).
pub fn check_source_in(name: &str, text: &str, dir: &std::path::Path) -> Checked {
    if !variant::is_variant(text) {
        return check_source(name, text);
    }
    let file = SourceFile::new(name, text);
    match variant::compose(&file, dir, |p| std::fs::read_to_string(p)) {
        Ok(c) => check_composed(c.file, Some(c.base)),
        Err(diagnostics) => Checked {
            file,
            spec: None,
            diagnostics,
            base: None,
        },
    }
}

fn check_composed(file: SourceFile, base: Option<std::path::PathBuf>) -> Checked {
    // Run on a thread with a known stack size so that deeply nested (but
    // within-limits) input behaves the same under the test harness, the
    // proc macro and the CLI.
    let run = move || {
        let (ast, mut diagnostics) = parser::parse(&file.text);
        let syntax_errors = diagnostics.iter().any(Diagnostic::is_error);
        let (spec, more) = check::check(&ast, &file.text, syntax_errors);
        diagnostics.extend(more);
        diagnostics.sort_by_key(|d| (d.primary.span.start, d.primary.span.end));
        let spec = if diagnostics.iter().any(Diagnostic::is_error) {
            None
        } else {
            spec
        };
        Checked {
            file,
            spec,
            diagnostics,
            base,
        }
    };
    match std::thread::Builder::new()
        .name("smelt-dsl".into())
        .stack_size(STACK_BYTES)
        .spawn(run)
    {
        Ok(h) => match h.join() {
            Ok(c) => c,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(e) => panic!("cannot start the front end's thread: {e}"),
    }
}

/// Reads and checks a spec file.
pub fn check_file(path: &std::path::Path) -> std::io::Result<Checked> {
    let bytes = std::fs::read(path)?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // In the lossily decoded text the invalid bytes start with a
            // U+FFFD replacement character at the same offset.
            let d = Diagnostic::error(
                ast::Span::new(valid, valid + char::REPLACEMENT_CHARACTER.len_utf8()),
                "the spec is not valid UTF-8",
            )
            .label("invalid byte here");
            return Ok(Checked {
                file: SourceFile::new(path.display().to_string(), text),
                spec: None,
                diagnostics: vec![d],
                base: None,
            });
        }
    };
    let dir = path.parent().unwrap_or(std::path::Path::new(""));
    Ok(check_source_in(&path.display().to_string(), &text, dir))
}
