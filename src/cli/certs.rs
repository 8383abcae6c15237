//! `smelt certs --cluster FILE`: a new certificate authority and a
//! certificate for every node and for clients, and the cluster file
//! rewritten to use them (mutual TLS on peer and client links; see the
//! runtime's `tls` module for what that guarantees).

use smelt_runtime::cluster::Cluster;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct CertsArgs {
    /// The cluster file; rewritten with `[tls]` and each node's `cert` and
    /// `key` (the old one is kept as FILE.before-tls).
    #[arg(long)]
    cluster: PathBuf,
    /// Where the CA, the certificates and their keys go (default: `certs`
    /// beside the cluster file). Keys are written readable by their owner
    /// only; `ca.key` signs new certificates: keep it off the nodes.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// How long the certificates are valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
}

pub fn certs(a: CertsArgs) -> i32 {
    match run(&a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run(a: &CertsArgs) -> Result<(), String> {
    // Absolute paths, so that the files' paths can be written relative to
    // the cluster file's directory whatever the working directory is.
    let absolute =
        |p: &Path| -> Result<PathBuf, String> { std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display())) };
    let file = absolute(&a.cluster)?;
    let cluster = Cluster::load(&file)?;
    if cluster.tls.is_some() {
        return Err(format!(
            "{} already has [tls]: remove it first to make a new CA",
            a.cluster.display()
        ));
    }
    if a.days == 0 {
        return Err("--days must be at least 1".into());
    }
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = match &a.out {
        Some(o) => absolute(o)?,
        None => base.join("certs"),
    };
    let with_tls = smelt_runtime::tls::generate(&cluster, &out, &base, i64::from(a.days))?;
    let backup = Path::new(&format!("{}.before-tls", a.cluster.display())).to_path_buf();
    std::fs::copy(&a.cluster, &backup).map_err(|e| format!("cannot keep {}: {e}", backup.display()))?;
    let tmp = Path::new(&format!("{}.tmp", a.cluster.display())).to_path_buf();
    std::fs::write(&tmp, with_tls.to_toml())
        .and_then(|()| std::fs::rename(&tmp, &a.cluster))
        .map_err(|e| format!("cannot rewrite {}: {e}", a.cluster.display()))?;
    println!(
        "a CA and certificates for {} nodes and clients in {} (valid {} days); {} now uses them (the old file is {})",
        with_tls.nodes.len(),
        out.display(),
        a.days,
        a.cluster.display(),
        backup.display()
    );
    println!(
        "each node needs ca.pem and its own node-<id>.pem and node-<id>.key; clients ca.pem, client.pem and client.key"
    );
    Ok(())
}
