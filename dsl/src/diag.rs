//! Diagnostics: what the front end tells a protocol author.
//!
//! Every diagnostic has one primary label (the exact offending text), may
//! have secondary labels (for example the declaration it conflicts with) and
//! notes. Rendering goes through `codespan-reporting`, so the output has the
//! familiar `file:line:col`, the source line and a caret underline. The same
//! text is used by `smelt lint`, the proc macro's `compile_error!` and the
//! build-script API, so a user sees one format everywhere.

use crate::ast::Span;
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            primary: Label {
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Text printed under the caret.
    pub fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A source file: its display name, its text and a line index.
///
/// A variant's source (see `variant.rs`) is text put together from two
/// files, its base and the variant itself; `origin` says which byte of the
/// text came from where, so that every position shown to the author names
/// the file and line they wrote.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
    origin: Option<std::sync::Arc<Origin>>,
}

/// Where a composed text's bytes come from.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The files the text was put together from (each without an origin).
    pub files: Vec<SourceFile>,
    /// Sorted, contiguous pieces covering the text.
    pub pieces: Vec<Piece>,
}

/// `text[start..end]` is a copy of `files[file].text[file_start..]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    pub file: usize,
    pub file_start: usize,
}

impl Origin {
    /// The file and offset there of a byte of the composed text, and the
    /// end of the piece it lies in (in that file's offsets).
    fn map(&self, offset: usize) -> Option<(usize, usize, usize)> {
        let i = match self.pieces.binary_search_by(|p| {
            if p.end <= offset {
                std::cmp::Ordering::Less
            } else if p.start > offset {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => i,
            // Past the end (an end-of-file span): the last piece's end.
            Err(i) => i.checked_sub(1)?,
        };
        let p = self.pieces[i];
        let within = offset.min(p.end) - p.start;
        Some((p.file, p.file_start + within, p.file_start + (p.end - p.start)))
    }
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
            origin: None,
        }
    }

    /// A text put together from other files, with where each piece is from.
    pub fn composed(name: impl Into<String>, text: impl Into<String>, origin: Origin) -> SourceFile {
        debug_assert!(origin.files.iter().all(|f| f.origin.is_none()));
        debug_assert!(origin.pieces.windows(2).all(|w| w[0].end == w[1].start));
        let mut f = SourceFile::new(name, text);
        debug_assert!(origin.pieces.last().is_none_or(|p| p.end == f.text.len()));
        f.origin = Some(std::sync::Arc::new(origin));
        f
    }

    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_deref()
    }

    /// The file a byte offset was written in, and its one-based line and
    /// column there: this file itself unless it is composed.
    pub fn locate(&self, offset: u32) -> (&str, usize, usize) {
        if let Some(origin) = &self.origin {
            if let Some((file, at, _)) = origin.map(offset as usize) {
                let f = &origin.files[file];
                let (line, col) = f.line_col(at as u32);
                return (&f.name, line, col);
            }
        }
        let (line, col) = self.line_col(offset);
        (&self.name, line, col)
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let start = self.line_starts[line];
        // The offset may fall inside a multi-byte character when it comes
        // from a mutated input; count characters up to the nearest boundary.
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let col = self.text[start..end].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a span, clamped to the file and to character boundaries.
    pub fn snippet(&self, span: Span) -> &str {
        let mut start = (span.start as usize).min(self.text.len());
        let mut end = (span.end as usize).min(self.text.len()).max(start);
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        while !self.text.is_char_boundary(end) {
            end += 1;
        }
        &self.text[start..end]
    }

    fn clamp(&self, span: Span) -> std::ops::Range<usize> {
        let mut start = (span.start as usize).min(self.text.len());
        let mut end = (span.end as usize).min(self.text.len()).max(start);
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        while !self.text.is_char_boundary(end) {
            end += 1;
        }
        start..end
    }
}

/// Renders diagnostics as text. `color` selects ANSI colours; callers pass
/// `false` when the output is not a terminal.
pub fn render(file: &SourceFile, diags: &[Diagnostic], color: bool) -> String {
    // The files labels point into: this one, or the ones it was composed of.
    let mut files = SimpleFiles::new();
    let sources: Vec<&SourceFile> = match &file.origin {
        Some(o) => o.files.iter().collect(),
        None => vec![file],
    };
    for f in &sources {
        files.add(f.name.as_str(), f.text.as_str());
    }
    let place = |span: Span| -> (usize, std::ops::Range<usize>) {
        let range = file.clamp(span);
        match file.origin.as_ref().and_then(|o| o.map(range.start)) {
            Some((id, start, piece_end)) => {
                // A span that runs past its piece is cut at the piece's end.
                let end = (start + range.len()).min(piece_end);
                (id, sources[id].clamp(Span::new(start, end)))
            }
            None => (0, if file.origin.is_some() { 0..0 } else { range }),
        }
    };
    let config = term::Config::default();
    let mut out = String::new();
    for d in diags {
        let severity = match d.severity {
            Severity::Error => cs::Severity::Error,
            Severity::Warning => cs::Severity::Warning,
        };
        let (id, range) = place(d.primary.span);
        let mut labels = vec![cs::Label::primary(id, range).with_message(&d.primary.message)];
        for l in &d.secondary {
            let (id, range) = place(l.span);
            labels.push(cs::Label::secondary(id, range).with_message(&l.message));
        }
        let diag = cs::Diagnostic::new(severity)
            .with_message(&d.message)
            .with_labels(labels)
            .with_notes(d.notes.clone());
        let mut buf = Vec::new();
        let result = if color {
            let mut w = term::termcolor::Ansi::new(&mut buf);
            term::emit_to_write_style(&mut w, &config, &files, &diag)
        } else {
            let mut w = term::termcolor::NoColor::new(&mut buf);
            term::emit_to_write_style(&mut w, &config, &files, &diag)
        };
        match result {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&buf)),
            // Rendering only fails on an out-of-range span, which `clamp`
            // rules out; fall back to a one-line form rather than panic.
            Err(_) => {
                let (name, line, col) = file.locate(d.primary.span.start);
                out.push_str(&format!("{}:{}:{}: {}\n", name, line, col, d.message));
            }
        }
    }
    out
}

/// One diagnostic in machine-readable form, for editors and CI.
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub severity: Severity,
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub text: String,
    pub label: String,
    pub related: Vec<JsonRelated>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JsonRelated {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

pub fn to_json(file: &SourceFile, diags: &[Diagnostic]) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| {
            let (name, line, column) = file.locate(d.primary.span.start);
            let (_, end_line, end_column) = file.locate(d.primary.span.end);
            JsonDiagnostic {
                file: name.to_string(),
                severity: d.severity,
                message: d.message.clone(),
                line,
                column,
                end_line,
                end_column,
                text: file.snippet(d.primary.span).to_string(),
                label: d.primary.message.clone(),
                related: d
                    .secondary
                    .iter()
                    .map(|l| {
                        let (_, line, column) = file.locate(l.span.start);
                        JsonRelated {
                            line,
                            column,
                            message: l.message.clone(),
                        }
                    })
                    .collect(),
                notes: d.notes.clone(),
            }
        })
        .collect()
}

/// Edit distance, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let max = match name.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            // Case-only differences are the most likely typo of all.
            let d = if c.eq_ignore_ascii_case(name) {
                0
            } else {
                levenshtein(name, c)
            };
            (d, c)
        })
        .filter(|(d, _)| *d <= max)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c)
}
