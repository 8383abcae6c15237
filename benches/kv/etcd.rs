//! The etcd side: Debian's etcd (installed if absent), three members on
//! 127.0.0.1, and `etcdserverpb.KV/Put` over native gRPC: HTTP/2 through the
//! `h2` crate with hand-encoded protobuf, no gateway.
//!
//! All clients talk to the leader, like smelt's clients (which follow
//! redirects to it and stay): a follower would forward each proposal to the
//! leader, one more hop that smelt does not pay. They share a few HTTP/2
//! connections (one per `CLIENTS_PER_CONNECTION` clients), multiplexed as
//! gRPC clients do; etcd's own benchmark tool likewise spreads its clients
//! over several connections (`--clients` over `--conns`).

use super::load::{Backend, KvClient};
use super::{free_port, retry, Procs, Scratch};
use bytes::Bytes;
use h2::client::SendRequest;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio_rustls::TlsConnector;

const CLIENTS_PER_CONNECTION: usize = 8;
/// A put that takes longer than this counts as an error.
const PUT_TIMEOUT: Duration = Duration::from_secs(10);

/// `etcd --version`'s first line, installing Debian's packages when etcd is
/// not on PATH.
pub fn ensure_installed() -> Result<String, String> {
    let version = || {
        let out = Command::new("etcd").arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status
            .success()
            .then(|| text.lines().next().unwrap_or("").to_string())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    let apt = |args: &[&str]| {
        println!("etcd is not on PATH: running `apt-get {}`", args.join(" "));
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = ["install", "-y", "etcd-server", "etcd-client"];
    // An old or missing package list makes the first try fail: update, retry.
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err("installing etcd failed (needs root and Debian's package lists)".into());
    }
    version().ok_or_else(|| "etcd is still not on PATH after installing etcd-server".into())
}

/// Three etcd members with fresh data directories.
pub struct Etcd {
    rt: tokio::runtime::Runtime,
    /// Client URL of each member.
    members: Vec<SocketAddr>,
    /// With mutual TLS: how clients connect.
    tls: Option<TlsConnector>,
    leader: usize,
    procs: Procs,
    _dir: Scratch,
}

impl Etcd {
    /// With `tls`: a fresh CA, a certificate per member (for 127.0.0.1)
    /// and one for the clients; etcd demands client certificates of the CA
    /// on both its peer and its client URLs.
    pub fn start(tls: bool) -> Result<Etcd, String> {
        let dir = Scratch::new("etcd");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let scheme = if tls { "https" } else { "http" };
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}={scheme}://127.0.0.1:{peer}"))
            .collect();
        let certs = if tls { Some(Certs::new(&dir.0)?) } else { None };
        let mut procs = Procs::default();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("{scheme}://127.0.0.1:{peer}");
            let mut cmd = Command::new("etcd");
            if let Some(c) = &certs {
                let (cert, key) = c.member(i);
                cmd.arg("--cert-file")
                    .arg(&cert)
                    .arg("--key-file")
                    .arg(&key)
                    .arg("--trusted-ca-file")
                    .arg(&c.ca)
                    .arg("--client-cert-auth")
                    .arg("--peer-cert-file")
                    .arg(&cert)
                    .arg("--peer-key-file")
                    .arg(&key)
                    .arg("--peer-trusted-ca-file")
                    .arg(&c.ca)
                    .arg("--peer-client-cert-auth");
            }
            cmd.args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.0.join(format!("m{i}")))
                .args([
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-token", &format!("kv-bench-{}", std::process::id())])
                .args(["--initial-cluster-state", "new"])
                .args(["--logger", "zap", "--log-level", "warn"]);
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ETCD")) {
                cmd.env_remove(k);
            }
            procs.spawn(&format!("etcd m{i}"), &mut cmd, &dir.0.join(format!("m{i}.log")));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let members: Vec<SocketAddr> = ports
            .iter()
            .map(|(c, _)| SocketAddr::from(([127, 0, 0, 1], *c)))
            .collect();
        let tls = match &certs {
            Some(c) => Some(c.connector()?),
            None => None,
        };
        let mut me = Etcd {
            rt,
            members,
            tls,
            leader: 0,
            procs,
            _dir: dir,
        };
        // Healthy once every member reports the same leader, one of them.
        me.leader = retry(Duration::from_secs(30), || {
            me.procs.check_alive()?;
            let statuses: Vec<(u64, u64)> = me.members.iter().map(|m| me.status(*m)).collect::<Result<_, _>>()?;
            let leader = statuses[0].1;
            let agreed = statuses.iter().all(|(_, l)| *l == leader);
            match statuses.iter().position(|(member, _)| *member == leader) {
                Some(i) if agreed => Ok(i),
                _ => Err(format!("no agreed leader yet: {statuses:?}")),
            }
        })?;
        Ok(me)
    }

    pub fn check_alive(&mut self) -> Result<(), String> {
        self.procs.check_alive()
    }

    /// `Maintenance/Status` of one member: its member id and its leader's.
    fn status(&self, member: SocketAddr) -> Result<(u64, u64), String> {
        let reply = self.rt.block_on(async {
            let send = connect(member, self.tls.as_ref()).await?;
            unary(send, member, "etcdserverpb.Maintenance/Status", Vec::new()).await
        })?;
        // StatusResponse: header = 1 (ResponseHeader: member_id = 2), leader = 4.
        let header = proto::find(&reply, 1).and_then(|f| f.bytes()).unwrap_or_default();
        let member_id = proto::find(header, 2).and_then(|f| f.varint()).unwrap_or(0);
        let leader = proto::find(&reply, 4).and_then(|f| f.varint()).unwrap_or(0);
        Ok((member_id, leader))
    }
}

impl Backend for Etcd {
    fn clients(&self, n: usize) -> Result<Vec<Box<dyn KvClient>>, String> {
        let leader = self.members[self.leader];
        let conns: Vec<SendRequest<Bytes>> = self.rt.block_on(async {
            let mut conns = Vec::new();
            for _ in 0..n.div_ceil(CLIENTS_PER_CONNECTION) {
                conns.push(connect(leader, self.tls.as_ref()).await?);
            }
            Ok::<_, String>(conns)
        })?;
        Ok((0..n)
            .map(|i| {
                Box::new(EtcdClient {
                    rt: self.rt.handle().clone(),
                    send: conns[i % conns.len()].clone(),
                    addr: leader,
                }) as Box<dyn KvClient>
            })
            .collect())
    }
}

struct EtcdClient {
    rt: tokio::runtime::Handle,
    send: SendRequest<Bytes>,
    addr: SocketAddr,
}

impl KvClient for EtcdClient {
    fn put(&mut self, client: usize, seq: u64, value: &[u8]) -> Result<(), String> {
        let request = put_request(format!("client-{client}-{seq}").as_bytes(), value);
        let call = unary(self.send.clone(), self.addr, "etcdserverpb.KV/Put", request);
        match self
            .rt
            .block_on(async { tokio::time::timeout(PUT_TIMEOUT, call).await })
        {
            Ok(reply) => reply.map(|_| ()),
            Err(_) => Err(format!("no answer within {PUT_TIMEOUT:?}")),
        }
    }
}

/// PutRequest { key = 1, value = 2 }.
pub fn put_request(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(key.len() + value.len() + 8);
    proto::bytes_field(&mut m, 1, key);
    proto::bytes_field(&mut m, 2, value);
    m
}

/// An HTTP/2 connection (prior knowledge without TLS; with TLS, ALPN h2),
/// driven by a task.
async fn connect(addr: SocketAddr, tls: Option<&TlsConnector>) -> Result<SendRequest<Bytes>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => h2_over(tcp, addr).await,
        Some(tls) => {
            let name = rustls::pki_types::ServerName::from(addr.ip());
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            h2_over(stream, addr).await
        }
    }
}

/// The HTTP/2 handshake over `io`; a task drives the connection.
async fn h2_over<T>(io: T, addr: SocketAddr) -> Result<SendRequest<Bytes>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("HTTP/2 handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// A CA and certificates for the members and the clients, as files.
struct Certs {
    dir: std::path::PathBuf,
    ca: std::path::PathBuf,
    client: (std::path::PathBuf, std::path::PathBuf),
}

impl Certs {
    fn new(dir: &std::path::Path) -> Result<Certs, String> {
        use smelt::runtime::tls::Authority;
        let ca = Authority::new("kv bench etcd CA", 30)?;
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).map(|()| p).map_err(|e| e.to_string())
        };
        let names = ["127.0.0.1".to_string(), "localhost".to_string()];
        for i in 0..3 {
            let m = ca.issue(&format!("m{i}"), &names, -1, 30)?;
            write(&format!("m{i}.pem"), &m.cert_pem)?;
            write(&format!("m{i}.key"), &m.key_pem)?;
        }
        let c = ca.issue("client", &["client".to_string()], -1, 30)?;
        Ok(Certs {
            dir: dir.to_path_buf(),
            ca: write("ca.pem", ca.cert_pem())?,
            client: (write("client.pem", &c.cert_pem)?, write("client.key", &c.key_pem)?),
        })
    }

    fn member(&self, i: usize) -> (std::path::PathBuf, std::path::PathBuf) {
        (self.dir.join(format!("m{i}.pem")), self.dir.join(format!("m{i}.key")))
    }

    /// Trusts the CA, presents the client certificate, offers h2.
    fn connector(&self) -> Result<TlsConnector, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&self.ca).map_err(|e| e.to_string())? {
            roots.add(c.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let certs = CertificateDer::pem_file_iter(&self.client.0)
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::from_pem_file(&self.client.1).map_err(|e| e.to_string())?;
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| e.to_string())?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(TlsConnector::from(std::sync::Arc::new(cfg)))
    }
}

/// One unary gRPC call: the request message, length-prefixed, in one DATA
/// frame; the reply message back; `grpc-status` 0 in the trailers (or in
/// the headers of a trailers-only answer).
async fn unary(send: SendRequest<Bytes>, addr: SocketAddr, method: &str, message: Vec<u8>) -> Result<Bytes, String> {
    let request = http::Request::post(format!("http://{addr}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .map_err(|e| e.to_string())?;
    let mut send = send.ready().await.map_err(|e| format!("connection: {e}"))?;
    let (response, mut body) = send.send_request(request, false).map_err(|e| e.to_string())?;
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0); // not compressed
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    body.send_data(Bytes::from(framed), true).map_err(|e| e.to_string())?;
    let (head, mut recv) = response.await.map_err(|e| e.to_string())?.into_parts();
    if head.status != http::StatusCode::OK {
        return Err(format!("HTTP status {}", head.status));
    }
    let mut data = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.map_err(|e| e.to_string())?;
    let status = |name: &str| {
        trailers
            .as_ref()
            .and_then(|t| t.get(name))
            .or_else(|| head.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    match status("grpc-status").as_deref() {
        Some("0") => {}
        code => return Err(format!("grpc-status {code:?}: {:?}", status("grpc-message"))),
    }
    if data.len() < 5 {
        return Err("no reply message".into());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + len {
        return Err(format!("reply message cut short: {} of {len} bytes", data.len() - 5));
    }
    Ok(Bytes::from(data).slice(5..5 + len))
}

/// Just enough protobuf for PutRequest and StatusResponse.
mod proto {
    pub fn varint(buf: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        buf.push(v as u8);
    }

    /// A length-delimited field (wire type 2).
    pub fn bytes_field(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        varint(buf, (field << 3) | 2);
        varint(buf, bytes.len() as u64);
        buf.extend_from_slice(bytes);
    }

    pub enum Field<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    impl<'a> Field<'a> {
        pub fn varint(&self) -> Option<u64> {
            match self {
                Field::Varint(v) => Some(*v),
                _ => None,
            }
        }
        pub fn bytes(&self) -> Option<&'a [u8]> {
            match self {
                Field::Bytes(b) => Some(b),
                _ => None,
            }
        }
    }

    fn read_varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The first occurrence of field `want` in message `msg`.
    pub fn find(mut msg: &[u8], want: u64) -> Option<Field<'_>> {
        while !msg.is_empty() {
            let key = read_varint(&mut msg)?;
            let field = match key & 7 {
                0 => Field::Varint(read_varint(&mut msg)?),
                2 => {
                    let len = read_varint(&mut msg)? as usize;
                    let (bytes, rest) = msg.split_at_checked(len)?;
                    msg = rest;
                    Field::Bytes(bytes)
                }
                1 | 5 => {
                    let n = if key & 7 == 1 { 8 } else { 4 };
                    msg = msg.get(n..)?;
                    Field::Fixed
                }
                _ => return None,
            };
            if key >> 3 == want {
                return Some(field);
            }
        }
        None
    }
}
