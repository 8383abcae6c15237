//! Mutual TLS between real node processes (`[tls]` in the cluster file):
//! a cluster with certificates of its CA works, and a peer or client
//! without one — another CA's certificate, an expired certificate of the
//! right CA, no certificate, plaintext — is refused in the handshake,
//! before any frame is read; on the peer port, so is a client's
//! certificate of the right CA that claims to be a node (at its hello).
//!
//! The probe that shows "before any frame is read": a node answers a
//! peer's hello with an acknowledgement frame at once. Each probe sends a
//! well-formed hello and reports whether an acknowledgement came back. The
//! same probe with a certificate of the cluster's CA gets one (so a refusal
//! is the TLS check's doing, not a broken probe).

mod common;

use common::*;
use smelt_runtime::client::{Client, ClientOptions};
use smelt_runtime::cluster::Cluster;
use smelt_runtime::frame::{self, Hello, Kind};
use smelt_runtime::tls::{self, Authority};
use smelt_support::{Id, Protocol};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn node_entry() {
    common::node_entry();
}

/// Writes `issued` as `<dir>/<name>.pem` and `.key`.
fn write_identity(dir: &Path, name: &str, issued: &tls::Issued) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, &issued.cert_pem).expect("write cert");
    std::fs::write(&key, &issued.key_pem).expect("write key");
    (cert, key)
}

/// A rustls client that trusts the cluster's CA and presents `identity`.
fn tls_client(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .expect("cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            b.with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(key).expect("key"))
                .expect("identity")
        }
        None => b.with_no_client_auth(),
    })
}

/// Connects to `address` as peer `sender`, over TLS with `tls` or in
/// plaintext, sends a hello and waits for an acknowledgement frame:
/// `Ok(())` if one came, otherwise why not.
fn probe_peer(
    cluster: &Cluster,
    address: &str,
    sender: u64,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let tcp = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    tcp.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut s: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp),
        Some(cfg) => {
            let name = tls::server_name(address)?;
            let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
    };
    let hello = Hello {
        protocol: paxos::Paxos::NAME.to_string(),
        incarnation: 7,
        written: 0,
    };
    let f = frame::encode(Kind::Hello, cluster.hash(), sender, &hello, 1 << 20).expect("encode");
    s.write_all(&f).map_err(|e| format!("send: {e}"))?;
    s.flush().map_err(|e| format!("send: {e}"))?;
    let mut raw = [0u8; frame::HEADER_LEN];
    s.read_exact(&mut raw).map_err(|e| format!("receive: {e}"))?;
    let header = frame::Header::parse(&raw, 1 << 20).map_err(|e| format!("not a frame: {e}"))?;
    if header.kind != Kind::Ack {
        return Err(format!("a {:?} frame", header.kind));
    }
    Ok(())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn refused_count(metrics: &str) -> u64 {
    let (code, body) = http_get(metrics, "/metrics");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("smelt_tls_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("smelt_tls_refused_total in /metrics")
}

#[test]
fn tls_cluster_serves_its_clients_and_refuses_other_certificates_and_plaintext() {
    let dir = scratch("tls");
    let (file, plain) = write_cluster(&dir, &[("Server", 3, true)]);
    let certs = dir.join("certs");
    let ours = Authority::new("the cluster's CA", 30).expect("CA");
    let cluster = tls::write_certs(&ours, &plain, &certs, &dir, 30).expect("certificates");
    std::fs::write(&file, cluster.to_toml()).expect("write cluster file");
    let cluster = Cluster::load(&file).expect("reload");
    assert!(cluster.tls.is_some());

    // Outsiders' certificates: another CA's, and an expired one of ours.
    let other = Authority::new("another cluster", 30).expect("other CA");
    let names = vec!["127.0.0.1".to_string(), "client".to_string()];
    let foreign = write_identity(&dir, "foreign", &other.issue("foreign", &names, -1, 30).expect("issue"));
    let expired = write_identity(&dir, "expired", &ours.issue("expired", &names, -30, -1).expect("issue"));
    let ca = certs.join("ca.pem");

    // Node 0 alone first: the probes claim to be node 1.
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut nodes = vec![NodeProc::start("paxos", &dir, &file, 0, &["--metrics", &metrics])];
    let addr = &cluster.nodes[0].address;
    let node1 = (certs.join("node-1.pem"), certs.join("node-1.key"));
    let with = |id: &(PathBuf, PathBuf)| Some(tls_client(&ca, Some((&id.0, &id.1))));
    // (Not `wait_up`: its bare TCP connection would count as a refusal.)
    let heard = eventually(Duration::from_secs(20), || {
        probe_peer(&cluster, addr, 1, with(&node1)).ok()
    });
    assert!(
        heard.is_some(),
        "a peer with a certificate of the cluster's CA is not heard"
    );
    assert_eq!(refused_count(&metrics), 0);
    let client = (certs.join("client.pem"), certs.join("client.key"));
    let probes = [
        ("a client's certificate of the cluster's CA", with(&client)),
        ("another CA's certificate", with(&foreign)),
        ("an expired certificate", with(&expired)),
        ("no certificate", Some(tls_client(&ca, None))),
        ("plaintext", None),
    ];
    for (what, cfg) in probes {
        let got = probe_peer(&cluster, addr, 1, cfg);
        assert!(got.is_err(), "a peer with {what} got an acknowledgement");
    }
    let refused = eventually(Duration::from_secs(10), || (refused_count(&metrics) == 5).then_some(()));
    assert!(refused.is_some(), "tls_refused is {}, not 5", refused_count(&metrics));
    let log = nodes[0].log_text().to_lowercase();
    for why in [
        "does not name node 1's host",
        "unknownissuer",
        "certificate expired",
        "sent no certificates",
        "corrupt message",
    ] {
        assert!(log.contains(why), "no refusal for `{why}` in the log:\n{log}");
    }

    // The whole cluster, over TLS: a write, read back from every node.
    nodes.extend((1..3).map(|i| NodeProc::start("paxos", &dir, &file, i, &[])));
    wait_up(&cluster, &[1, 2]);
    let mut c = Client::<paxos::Paxos>::new(&cluster, quick_client(500)).expect("client");
    let (reply, _) = c.call(paxos::Request::Put { v: 42 }).expect("put over TLS");
    assert_eq!(reply, paxos::Reply::PutOk);
    for i in 0..3 {
        let v = eventually(Duration::from_secs(10), || {
            match c.call_at(Id::from(i), paxos::Request::Get) {
                Ok(Some(paxos::Reply::GetOk(Some(v)))) => Some(v),
                _ => None,
            }
        });
        assert_eq!(v, Some(42), "node {i} did not answer over TLS");
    }

    // Clients without a certificate of the CA get nothing, and are counted.
    let before = refused_count(&metrics);
    let once = ClientOptions {
        attempts_max: 1,
        ..quick_client(500)
    };
    let plaintext = Cluster {
        tls: None,
        ..cluster.clone()
    };
    for (what, cluster, identity) in [
        ("another CA's certificate", &cluster, Some(foreign.clone())),
        ("an expired certificate", &cluster, Some(expired.clone())),
        ("plaintext", &plaintext, None),
    ] {
        let opts = ClientOptions {
            tls_identity: identity,
            ..once.clone()
        };
        let mut c = Client::<paxos::Paxos>::new(cluster, opts).expect("client");
        let got = c.call_at(Id::from(0), paxos::Request::Get);
        assert!(got.is_err(), "a client with {what} was answered: {got:?}");
    }
    let counted = eventually(Duration::from_secs(10), || {
        (refused_count(&metrics) == before + 3).then_some(())
    });
    assert!(
        counted.is_some(),
        "client refusals not counted: {}",
        refused_count(&metrics)
    );
    for n in &mut nodes {
        assert_eq!(n.term(), Some(0), "node {} did not stop cleanly", n.id);
    }
}

/// A node whose certificate does not name the host of its address is not
/// trusted by its peers, and a node started with a missing key says so.
#[test]
fn tls_setup_errors_are_named() {
    let dir = scratch("tls-errors");
    let (file, plain) = write_cluster(&dir, &[("Server", 1, true)]);
    let cluster = tls::generate(&plain, &dir.join("certs"), &dir, 30).expect("certificates");
    let mut broken = cluster.clone();
    broken.nodes[0].key = Some("certs/missing.key".into());
    std::fs::write(&file, broken.to_toml()).expect("write cluster file");
    let mut node = NodeProc::start("paxos", &dir, &file, 0, &[]);
    assert_eq!(node.wait_exit(Duration::from_secs(20)), Some(2), "{}", node.log_text());
    assert!(node.log_text().contains("missing.key"), "{}", node.log_text());
    // The CA may not be overwritten by a second `generate`.
    let again = tls::generate(&plain, &dir.join("certs"), &dir, 30);
    assert!(again.err().is_some_and(|e| e.contains("not overwriting")));
}

/// A certificate that does not name the server's address is refused by
/// the client that dials it.
#[test]
fn a_certificate_for_another_host_is_not_trusted() {
    let dir = scratch("tls-name");
    let (file, plain) = write_cluster(&dir, &[("Server", 1, true)]);
    let certs = dir.join("certs");
    let ours = Authority::new("the cluster's CA", 30).expect("CA");
    let cluster = tls::write_certs(&ours, &plain, &certs, &dir, 30).expect("certificates");
    // Node 0's certificate, issued again for another host.
    let elsewhere = ours.issue("node 0", &["10.9.9.9".to_string()], -1, 30).expect("issue");
    std::fs::write(certs.join("node-0.pem"), &elsewhere.cert_pem).expect("cert");
    std::fs::write(certs.join("node-0.key"), &elsewhere.key_pem).expect("key");
    std::fs::write(&file, cluster.to_toml()).expect("write cluster file");
    let cluster = Cluster::load(&file).expect("reload");
    let node = NodeProc::start("paxos", &dir, &file, 0, &[]);
    wait_up(&cluster, &[0]);
    let opts = ClientOptions {
        attempts_max: 1,
        ..quick_client(500)
    };
    let mut c = Client::<paxos::Paxos>::new(&cluster, opts).expect("client");
    match c.call_at(Id::from(0), paxos::Request::Get) {
        Err(e) => assert!(e.to_string().contains("not valid for name"), "{e}"),
        Ok(r) => panic!("a server whose certificate names another host was trusted: {r:?}"),
    }
    drop(node);
}
