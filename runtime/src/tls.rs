//! Mutual TLS on peer links and, if the cluster file asks, on client links
//! (rustls with aws-lc-rs).
//!
//! The cluster file names a certificate authority and each node's
//! certificate and key (paths relative to the file):
//!
//! ```toml
//! [tls]
//! ca = "certs/ca.pem"
//! client_links = true               # clients too must present a certificate
//! client_cert = "certs/client.pem"  # what `smelt client` presents
//! client_key = "certs/client.key"
//!
//! [[node]]
//! id = 0
//! address = "10.0.0.1:7400"
//! cert = "certs/node-0.pem"          # signed by the CA; its subjectAltName
//! key = "certs/node-0.key"           # names 10.0.0.1 (the address's host)
//! ```
//!
//! What it guarantees: every connection a node accepts completes a TLS
//! handshake in which the other side proves a certificate chained to the
//! cluster's CA and valid now, **before the first frame is read**: a peer
//! with no certificate, one of another CA, an expired one, or one speaking
//! plaintext is refused (logged, counted in `smelt_tls_refused_total`) and
//! nothing it sent reaches the protocol. A node dialling a peer checks the
//! peer's certificate against the host of that peer's address in the
//! cluster file, so a machine that took over an address without the key
//! cannot pose as the node. A client checks the server the same way.
//!
//! A peer that says it is node `i` must also show a certificate naming the
//! host of node `i`'s address: a client's certificate (which names no
//! node's host) is refused on the peer port. What it does not do: tell
//! apart nodes that share a host (each one's certificate names the same
//! address), check revocation, or reload certificates without a restart.
//!
//! [`Authority`] makes a CA and certificates (`smelt certs`, `smelt cluster
//! --tls`, and the tests' wrong-CA and expired certificates).

use crate::cluster::Cluster;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A certificate or key file larger than this is not one.
pub const PEM_FILE_BYTES_MAX: u64 = 1 << 20;

/// The `[tls]` table of a cluster file, paths resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    pub ca: PathBuf,
    /// Client links use TLS too, and clients must present a certificate.
    pub client_links: bool,
    /// The certificate and key clients present (`smelt client`).
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the {what} {shown}: {e}"))?;
    if meta.len() > PEM_FILE_BYTES_MAX {
        return Err(format!("the {what} {shown} is larger than {PEM_FILE_BYTES_MAX} bytes"));
    }
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {shown}: {e}"))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path, "certificate")?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("certificate {}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("private key {}: {e}", path.display()))
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots
            .add(c)
            .map_err(|e| format!("CA certificate {}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A server config that demands a client certificate chained to `roots`.
fn server_config(
    roots: Arc<RootCertStore>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| e.to_string())?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("the node's certificate and key: {e}"))?;
    Ok(Arc::new(cfg))
}

/// A client config that trusts only `roots` and presents `identity`.
fn client_config(
    roots: Arc<RootCertStore>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<ClientConfig>, String> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((certs, key)) => b
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("the client certificate and key: {e}"))?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name a peer's certificate must carry: the host of its address
/// (`10.0.0.1:7400` → the IP address 10.0.0.1, `db-0.example:7400` → the
/// DNS name db-0.example).
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = match address.rsplit_once(':') {
        Some((h, _)) => h,
        None => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("address `{address}`: `{host}` is no host name: {e}"))
}

/// What a node needs for TLS.
#[derive(Clone)]
pub struct NodeTls {
    /// Accepts peers: demands a certificate of the cluster's CA.
    pub peers: TlsAcceptor,
    /// The host each node's certificate must name (by node id): a peer
    /// that says it is node `i` must show a certificate for node `i`'s
    /// address, so a client certificate of the same CA cannot pose as a
    /// server.
    pub peer_names: Vec<ServerName<'static>>,
    /// Dials peers, presenting the node's certificate.
    pub dial: TlsConnector,
    /// Accepts clients, when the cluster puts client links under TLS.
    pub clients: Option<TlsAcceptor>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("clients", &self.clients.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Node `id`'s TLS setup from the cluster file; `None` if the file has
    /// no `[tls]`. Every file is read and checked here, at start-up.
    pub fn load(cluster: &Cluster, id: u64) -> Result<Option<NodeTls>, String> {
        let Some(tls) = &cluster.tls else { return Ok(None) };
        let me = cluster
            .node(id)
            .ok_or_else(|| format!("node {id} is not in the cluster file"))?;
        let (Some(cert), Some(key)) = (&me.cert, &me.key) else {
            return Err(format!(
                "the cluster file has [tls], but node {id} names no `cert` and `key`"
            ));
        };
        let ca = cluster.path_of(&tls.ca);
        let roots = load_roots(&ca)?;
        let (cert, key) = (cluster.path_of(cert), cluster.path_of(key));
        let (certs, key_der) = (load_certs(&cert)?, load_key(&key)?);
        let named = |e: String| format!("{} and {} (CA {}): {e}", cert.display(), key.display(), ca.display());
        let server = server_config(roots.clone(), certs.clone(), key_der.clone_key()).map_err(named)?;
        let client = client_config(roots, Some((certs, key_der))).map_err(named)?;
        let peer_names = cluster
            .nodes
            .iter()
            .map(|n| server_name(&n.address))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(NodeTls {
            peers: TlsAcceptor::from(server.clone()),
            peer_names,
            dial: TlsConnector::from(client),
            clients: tls.client_links.then(|| TlsAcceptor::from(server)),
        }))
    }
}

/// The TLS config `smelt client` uses, if the cluster's client links use
/// TLS: the cluster's CA, and the certificate and key in `identity` (by
/// default the cluster file's `client_cert` and `client_key`).
pub fn client_tls(
    cluster: &Cluster,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<Option<Arc<ClientConfig>>, String> {
    let Some(tls) = &cluster.tls else { return Ok(None) };
    if !tls.client_links {
        return Ok(None);
    }
    let from_file = || {
        tls.client_identity
            .as_ref()
            .map(|(c, k)| (cluster.path_of(c), cluster.path_of(k)))
    };
    let Some((cert, key)) = identity.or_else(from_file) else {
        return Err("the cluster's client links use TLS: name a client certificate and key (`client_cert` and `client_key` in [tls])".into());
    };
    let ca = cluster.path_of(&tls.ca);
    let roots = load_roots(&ca)?;
    client_config(roots, Some((load_certs(&cert)?, load_key(&key)?)))
        .map(Some)
        .map_err(|e| format!("{} and {} (CA {}): {e}", cert.display(), key.display(), ca.display()))
}

/// A certificate authority that issues node and client certificates.
pub struct Authority {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert_pem: String,
    key_pem: String,
}

/// A certificate and its private key, PEM-encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

impl Authority {
    /// A new CA named `name`, valid from yesterday for `valid_days`.
    pub fn new(name: &str, valid_days: i64) -> Result<Authority, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - days(1);
        params.not_after = now + days(valid_days);
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let key_pem = key.serialize_pem();
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem,
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate for `names` (IP addresses or DNS names), good for
    /// both ends of a connection, valid from `from_days` to `to_days`
    /// relative to now (negative: in the past).
    pub fn issue(&self, common_name: &str, names: &[String], from_days: i64, to_days: i64) -> Result<Issued, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| format!("{names:?}: {e}"))?;
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + days(from_days);
        params.not_after = now + days(to_days);
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| e.to_string())?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Whether `cert` (a peer's end-entity certificate) names `name`.
pub fn names(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> bool {
    webpki::EndEntityCert::try_from(cert).is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok())
}

/// The host names a node's certificate carries: the hosts of its peer and
/// client addresses.
pub fn node_names(cluster: &Cluster, id: u64) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(n) = cluster.node(id) {
        for a in std::iter::once(&n.address).chain(&n.client_address) {
            let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            if !names.contains(&host) {
                names.push(host);
            }
        }
    }
    names
}

/// Writes a new CA, a certificate and key for every node of `cluster` and
/// one for clients into `dir` (keys readable by the owner only), and
/// returns the cluster with `[tls]` and each node's `cert` and `key`
/// naming them (relative to `base`, the cluster file's directory, where
/// they lie under it). Refuses to overwrite a CA already in `dir`.
pub fn generate(cluster: &Cluster, dir: &Path, base: &Path, valid_days: i64) -> Result<Cluster, String> {
    let ca = Authority::new(&format!("smelt CA of cluster {}", cluster.cluster_id), valid_days)?;
    write_certs(&ca, cluster, dir, base, valid_days)
}

/// [`generate`] with the CA `ca`.
pub fn write_certs(
    ca: &Authority,
    cluster: &Cluster,
    dir: &Path,
    base: &Path,
    valid_days: i64,
) -> Result<Cluster, String> {
    let ca_path = dir.join("ca.pem");
    if ca_path.exists() {
        return Err(format!("{} exists: not overwriting a CA", ca_path.display()));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_file(&dir.join("ca.key"), ca.key_pem(), true)?;
    write_file(&ca_path, ca.cert_pem(), false)?;
    let rel = |p: PathBuf| p.strip_prefix(base).map(Path::to_path_buf).unwrap_or(p);
    let mut out = cluster.clone();
    for n in &mut out.nodes {
        let names = node_names(cluster, n.id);
        let issued = ca.issue(&format!("node {}", n.id), &names, -1, valid_days)?;
        let (cert, key) = (
            dir.join(format!("node-{}.pem", n.id)),
            dir.join(format!("node-{}.key", n.id)),
        );
        write_file(&key, &issued.key_pem, true)?;
        write_file(&cert, &issued.cert_pem, false)?;
        n.cert = Some(rel(cert).display().to_string());
        n.key = Some(rel(key).display().to_string());
    }
    let client = ca.issue("client", &["client".to_string()], -1, valid_days)?;
    let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
    write_file(&key, &client.key_pem, true)?;
    write_file(&cert, &client.cert_pem, false)?;
    out.tls = Some(ClusterTls {
        ca: rel(ca_path),
        client_links: true,
        client_identity: Some((rel(cert), rel(key))),
    });
    Ok(out)
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    if secret {
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_address_host() {
        assert!(matches!(server_name("127.0.0.1:7400"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]:7400"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("db-0.example:7400"), Ok(ServerName::DnsName(_))));
        assert!(server_name("bad host:1").is_err());
    }
}
