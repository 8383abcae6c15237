//! `smelt build spec.sm -o DIR`: the spec's harness — node, local cluster,
//! client, simulator and checker in one executable — release-built and
//! copied to `DIR`, where it runs without cargo, the smelt sources or the
//! spec (the spec is compiled in; `--version` names its SHA-256).

use super::harness;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The `.sm` spec.
    spec: PathBuf,
    /// The directory to put the executable in (created if needed).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// The executable's name (default: the spec's file stem, e.g. `raft`).
    #[arg(long)]
    name: Option<String>,
}

pub fn build(a: BuildArgs) -> i32 {
    let bin = match harness::build(&a.spec, false) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let name = a.name.clone().unwrap_or_else(|| {
        a.spec
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "node".into())
    });
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        eprintln!("error: --name {name:?}: expected a file name");
        return 2;
    }
    match install(&bin, &a.out, &name) {
        Ok(dest) => {
            let version = std::process::Command::new(&dest).arg("--version").output();
            match version {
                Ok(v) if v.status.success() => {
                    println!(
                        "built {}: {}",
                        dest.display(),
                        String::from_utf8_lossy(&v.stdout).trim()
                    );
                    0
                }
                Ok(v) => {
                    eprintln!(
                        "error: the built {} does not run: {}",
                        dest.display(),
                        String::from_utf8_lossy(&v.stderr)
                    );
                    2
                }
                Err(e) => {
                    eprintln!("error: the built {} does not run: {e}", dest.display());
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Copies `bin` to `out/name` through a temporary file and a rename, so
/// that a running copy of an older build is never overwritten in place.
fn install(bin: &std::path::Path, out: &std::path::Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let dest = out.join(name);
    let tmp = out.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::copy(bin, &tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", dest.display())
    })?;
    Ok(dest)
}
