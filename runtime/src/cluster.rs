//! The cluster file: which nodes exist, their roles and addresses.
//!
//! ```toml
//! cluster_id = "demo"              # frames of other clusters are rejected
//! spec = "specs/paxos.sm"          # relative to this file; for `smelt client`
//!
//! [[node]]
//! id = 0                           # ids are 0.. in role order, as in the model
//! role = "Server"
//! address = "127.0.0.1:7400"       # peer traffic
//! client_address = "127.0.0.1:7500" # optional: where clients connect
//! cert = "certs/node-0.pem"         # with [tls]: this node's certificate
//! key = "certs/node-0.key"          # and key (crate::tls)
//! ```
//!
//! Node ids follow `smelt_support::Layout`: the servers of the first role
//! come first, numbered from 0, then those of the second role, and so on. So
//! the generated code sees exactly the ids it saw in the model checker.

use crate::tls::ClusterTls;
use serde::{Deserialize, Serialize};
use smelt_support::{Id, Layout, Protocol};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// More nodes than this in one cluster file is treated as a mistake.
pub const NODES_MAX: usize = 1024;
/// Cluster files are small; a larger one is not a cluster file.
pub const FILE_BYTES_MAX: u64 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u64,
    pub role: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// The node's TLS certificate and key (PEM), relative to the cluster
    /// file; required with `[tls]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFormat {
    ca: String,
    #[serde(default)]
    client_links: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls: Option<TlsFormat>,
    #[serde(rename = "node")]
    nodes: Vec<NodeEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    pub cluster_id: String,
    /// The spec, resolved against the cluster file's directory.
    pub spec: Option<PathBuf>,
    /// Sorted by id; ids are exactly `0..nodes.len()`.
    pub nodes: Vec<NodeEntry>,
    /// Mutual TLS (`crate::tls`); its paths and the nodes' `cert` and `key`
    /// are as written, resolved with [`Cluster::path_of`].
    pub tls: Option<ClusterTls>,
    /// The cluster file's directory.
    pub base: PathBuf,
}

impl Cluster {
    pub fn load(path: &Path) -> Result<Cluster, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read cluster file {shown}: {e}"))?;
        if meta.len() > FILE_BYTES_MAX {
            return Err(format!("cluster file {shown} is larger than {FILE_BYTES_MAX} bytes"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read cluster file {shown}: {e}"))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Cluster::parse(&text, base).map_err(|e| format!("cluster file {shown}: {e}"))
    }

    pub fn parse(text: &str, base: &Path) -> Result<Cluster, String> {
        let f: FileFormat = toml::from_str(text).map_err(|e| e.to_string())?;
        if f.cluster_id.is_empty() {
            return Err("`cluster_id` is empty".into());
        }
        if f.nodes.is_empty() || f.nodes.len() > NODES_MAX {
            return Err(format!(
                "a cluster has 1 to {NODES_MAX} nodes, this one has {}",
                f.nodes.len()
            ));
        }
        let mut nodes = f.nodes;
        nodes.sort_by_key(|n| n.id);
        for (i, n) in nodes.iter().enumerate() {
            if n.id != i as u64 {
                return Err(format!(
                    "node ids must be 0..{} with each id once; found id {} where {i} was expected",
                    nodes.len(),
                    n.id
                ));
            }
        }
        let spec = f.spec.map(|s| {
            let p = PathBuf::from(s);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        });
        let tls = match f.tls {
            None => None,
            Some(t) => {
                if let Some(n) = nodes.iter().find(|n| n.cert.is_none() || n.key.is_none()) {
                    return Err(format!("[tls] is set, but node {} names no `cert` and `key`", n.id));
                }
                let client_identity = match (t.client_cert, t.client_key) {
                    (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
                    (None, None) => None,
                    _ => return Err("[tls] names one of `client_cert` and `client_key` without the other".into()),
                };
                Some(ClusterTls {
                    ca: PathBuf::from(t.ca),
                    client_links: t.client_links,
                    client_identity,
                })
            }
        };
        Ok(Cluster {
            cluster_id: f.cluster_id,
            spec,
            nodes,
            tls,
            base: base.to_path_buf(),
        })
    }

    pub fn to_toml(&self) -> String {
        let text = |p: &PathBuf| p.display().to_string();
        // `spec` was resolved against the file's directory: written back
        // relative to it, as it was read.
        let spec = self.spec.as_ref().map(|p| {
            p.strip_prefix(&self.base)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.clone())
        });
        let f = FileFormat {
            cluster_id: self.cluster_id.clone(),
            spec: spec.as_ref().map(text),
            tls: self.tls.as_ref().map(|t| TlsFormat {
                ca: text(&t.ca),
                client_links: t.client_links,
                client_cert: t.client_identity.as_ref().map(|(c, _)| text(c)),
                client_key: t.client_identity.as_ref().map(|(_, k)| text(k)),
            }),
            nodes: self.nodes.clone(),
        };
        toml::to_string(&f).unwrap_or_default()
    }

    /// A path the cluster file names, resolved against its directory.
    pub fn path_of(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The cluster id as it appears in frames.
    pub fn hash(&self) -> u64 {
        crate::frame::cluster_hash(&self.cluster_id)
    }

    pub fn node(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.get(usize::try_from(id).ok()?)
    }

    /// Checks the roles against protocol `P` and builds the layout: every
    /// role name must be one of `P`'s, and ids must follow role order.
    pub fn layout<P: Protocol>(&self) -> Result<Layout, String> {
        let roles = P::roles();
        let mut counts = vec![0u64; roles.len()];
        let mut last = 0usize;
        for n in &self.nodes {
            let Some(r) = roles.iter().position(|r| r.name.eq_ignore_ascii_case(&n.role)) else {
                let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
                return Err(format!(
                    "node {} has role `{}`, but {} has roles {}",
                    n.id,
                    n.role,
                    P::NAME,
                    names.join(", ")
                ));
            };
            if r < last {
                return Err(format!(
                    "node {} of role `{}` comes after a node of role `{}`: ids are numbered in role order ({})",
                    n.id,
                    roles[r].name,
                    roles[last].name,
                    roles.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
                ));
            }
            last = r;
            counts[r] += 1;
        }
        Ok(Layout::new(&counts, 0))
    }

    /// The servers that take client requests, in id order.
    pub fn client_servers<P: Protocol>(&self) -> Result<Vec<(Id, SocketAddr)>, String> {
        let layout = self.layout::<P>()?;
        let mut out = Vec::new();
        for n in &self.nodes {
            let Some(addr) = &n.client_address else { continue };
            let serves = layout
                .role_of(Id::from(n.id as usize))
                .and_then(|r| P::roles().get(r))
                .is_some_and(|r| r.serves_clients);
            if serves {
                out.push((Id::from(n.id as usize), resolve(addr)?));
            }
        }
        if out.is_empty() {
            return Err("no node in the cluster file has a `client_address` and serves clients".into());
        }
        Ok(out)
    }
}

/// Resolves `host:port` to one socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address `{addr}`: {e}"))?
        .next()
        .ok_or_else(|| format!("address `{addr}` resolves to nothing"))
}

/// The spec named by a cluster file, for `smelt client --cluster FILE`.
pub fn spec_of(path: &Path) -> Result<PathBuf, String> {
    Cluster::load(path)?
        .spec
        .ok_or_else(|| format!("cluster file {} names no `spec`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
cluster_id = "t"
spec = "x.sm"
[[node]]
id = 1
role = "Server"
address = "127.0.0.1:2"
[[node]]
id = 0
role = "Server"
address = "127.0.0.1:1"
client_address = "127.0.0.1:3"
"#;

    #[test]
    fn parses_sorts_and_round_trips() {
        let c = Cluster::parse(TEXT, Path::new("/base")).unwrap();
        assert_eq!(c.nodes[0].id, 0);
        assert_eq!(c.spec.as_deref(), Some(Path::new("/base/x.sm")));
        let again = Cluster::parse(&c.to_toml(), Path::new("/base")).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn rejects_gaps_and_unknown_fields() {
        let gap = TEXT.replace("id = 1", "id = 2");
        assert!(Cluster::parse(&gap, Path::new(".")).unwrap_err().contains("node ids"));
        let extra = format!("{TEXT}\nbogus = 1\n");
        assert!(Cluster::parse(&extra, Path::new(".")).is_err());
        assert!(Cluster::parse("cluster_id = \"x\"\nnode = []", Path::new(".")).is_err());
    }

    #[test]
    fn tls_needs_every_node_to_name_its_certificate() {
        let tls = TEXT.replace("spec = \"x.sm\"", "spec = \"x.sm\"\n[tls]\nca = \"ca.pem\"");
        let e = Cluster::parse(&tls, Path::new(".")).unwrap_err();
        assert!(e.contains("names no `cert`"), "{e}");
        let named = tls.replace(
            "role = \"Server\"",
            "role = \"Server\"\ncert = \"n.pem\"\nkey = \"n.key\"",
        );
        let c = Cluster::parse(&named, Path::new("/base")).unwrap();
        assert_eq!(c.path_of(&c.tls.as_ref().unwrap().ca), Path::new("/base/ca.pem"));
        assert_eq!(Cluster::parse(&c.to_toml(), Path::new("/base")).unwrap(), c);
        let half = named.replace("ca = \"ca.pem\"", "ca = \"ca.pem\"\nclient_cert = \"c.pem\"");
        assert!(Cluster::parse(&half, Path::new("."))
            .unwrap_err()
            .contains("without the other"));
    }
}
