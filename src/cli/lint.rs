//! `smelt lint` and `smelt expand`.

use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub struct LintArgs {
    /// Spec files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format; `json` is one array of diagnostics, for editors and CI.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Args)]
pub struct ExpandArgs {
    /// The spec to expand.
    file: PathBuf,
}

/// Exit status: 0 without errors (warnings allowed), 1 with errors, 2 when a
/// file cannot be read.
pub fn lint(args: LintArgs) -> i32 {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut status = 0;
    let mut json = Vec::new();
    for path in &args.files {
        let checked = match smelt_dsl::check_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                status = 2;
                continue;
            }
        };
        if checked.has_errors() && status == 0 {
            status = 1;
        }
        match args.format {
            Format::Text => {
                print!("{}", checked.render(color));
                let (e, w) = counts(&checked);
                if e + w == 0 {
                    println!("{}: ok", path.display());
                } else {
                    println!("{}: {e} error{}, {w} warning{}", path.display(), plural(e), plural(w));
                }
            }
            Format::Json => json.extend(smelt_dsl::diag::to_json(&checked.file, &checked.diagnostics)),
        }
    }
    if let Format::Json = args.format {
        match serde_json::to_string_pretty(&json) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    }
    status
}

fn counts(c: &smelt_dsl::Checked) -> (usize, usize) {
    let e = c.diagnostics.iter().filter(|d| d.is_error()).count();
    (e, c.diagnostics.len() - e)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn expand(args: ExpandArgs) -> i32 {
    if let Err(e) = std::fs::metadata(&args.file) {
        eprintln!("error: cannot read {}: {e}", args.file.display());
        return 2;
    }
    let name = args.file.display().to_string();
    match smelt_compiler::expand_file(&args.file, &name, &smelt_compiler::Options::default()) {
        Ok(e) => {
            print!("{}", smelt_compiler::pretty(&e.tokens));
            0
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            1
        }
    }
}
