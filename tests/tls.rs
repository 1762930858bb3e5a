//! TLS for both APIs (`lbd serve --tls-cert/--tls-key/--tls-client-ca`), against the real
//! binary on 127.0.0.1: curl over https, mutual TLS, gRPC over TLS (tonic, and Python's grpcio
//! when it is installed), the certificate's reload on SIGHUP, and `lbd ctl --ca`.
//!
//! The CA and certificates are made with rcgen at test time.

#[path = "support/server.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use lbd::control::tls;
use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName};
use support::ChildServer;

/// A CA that signs certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `cn`: a server one (for localhost and 127.0.0.1) or a client one.
    fn leaf(&self, cn: &str, serial: u64, server: bool) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let names = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            vec![]
        };
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert, key)
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).unwrap();
    }
}

fn write_leaf(dir: &Path, name: &str, leaf: &(rcgen::Certificate, KeyPair)) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, leaf.0.pem()).unwrap();
    std::fs::write(&k, leaf.1.serialize_pem()).unwrap();
    (c, k)
}

/// The files of one test: the CA, lbd's certificate and key, a client certificate from the CA
/// and one from another CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    ca_pem: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    server_der: CertificateDer<'static>,
    client: (PathBuf, PathBuf),
    stranger: (PathBuf, PathBuf),
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("lbd test CA");
        let ca_pem = dir.path().join("ca.pem");
        ca.write(&ca_pem);
        let server = ca.leaf("lbd-one", 1, true);
        let server_der = server.0.der().clone();
        let (server_cert, server_key) = write_leaf(dir.path(), "server", &server);
        let client = write_leaf(dir.path(), "client", &ca.leaf("operator", 10, false));
        let other = Ca::new("another CA");
        let stranger = write_leaf(dir.path(), "stranger", &other.leaf("operator", 10, false));
        Pki {
            dir,
            ca,
            ca_pem,
            server_cert,
            server_key,
            server_der,
            client,
            stranger,
        }
    }

    fn spawn(&self, mutual: bool) -> ChildServer {
        self.spawn_with(mutual, &[])
    }

    fn spawn_with(&self, mutual: bool, extra: &[&str]) -> ChildServer {
        let mut args = vec![
            "--tls-cert".to_string(),
            self.server_cert.display().to_string(),
            "--tls-key".to_string(),
            self.server_key.display().to_string(),
        ];
        if mutual {
            args.push("--tls-client-ca".into());
            args.push(self.ca_pem.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ChildServer::spawn_with(&self.dir.path().join("lbd.db"), &args)
    }
}

/// curl's exit code and the HTTP status it printed.
fn curl(args: &[&str], url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl (Debian's curl package) runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn https_with_curl() {
    let pki = Pki::new();
    let lbd = pki.spawn(false);
    let url = format!("https://127.0.0.1:{}/api/v1/status", lbd.http_addr.port());
    assert_eq!(curl(&["--cacert", p(&pki.ca_pem)], &url), (0, "200".into()));
    // HTTP/2 by ALPN too.
    assert_eq!(
        curl(&["--http2", "--cacert", p(&pki.ca_pem)], &url),
        (0, "200".into())
    );
    // Not trusted without the CA (curl's 60: the peer's certificate cannot be verified).
    let (code, _) = curl(&[], &url);
    assert_eq!(code, 60, "curl without the CA");
    // Plain HTTP on the TLS port gets no answer.
    let plain = format!("http://127.0.0.1:{}/api/v1/status", lbd.http_addr.port());
    let (code, status) = curl(&[], &plain);
    assert!(code != 0 && status != "200", "plain HTTP: {code} {status}");
    // The status says TLS is on, without mutual TLS.
    let out = Command::new("curl")
        .args(["-sS", "--cacert", p(&pki.ca_pem), &url])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["auth"]["tls"],
        serde_json::json!({"mutual": false}),
        "{v}"
    );
}

#[test]
fn mutual_tls_with_curl() {
    let pki = Pki::new();
    let lbd = pki.spawn(true);
    let url = format!("https://127.0.0.1:{}/api/v1/status", lbd.http_addr.port());
    let ca = ["--cacert", p(&pki.ca_pem)];
    // No client certificate: refused.
    let (code, status) = curl(&ca, &url);
    assert!(
        code != 0 && status != "200",
        "no client cert: {code} {status}"
    );
    // A certificate from the CA: served.
    let with =
        |c: &(PathBuf, PathBuf)| curl(&[ca[0], ca[1], "--cert", p(&c.0), "--key", p(&c.1)], &url);
    assert_eq!(with(&pki.client), (0, "200".into()));
    // A certificate from another CA: refused.
    let (code, status) = with(&pki.stranger);
    assert!(
        code != 0 && status != "200",
        "foreign client cert: {code} {status}"
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            ca[0],
            ca[1],
            "--cert",
            p(&pki.client.0),
            "--key",
            p(&pki.client.1),
        ])
        .arg(&url)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["auth"]["tls"]["mutual"], true, "{v}");
}

fn client_config(
    pki: &Pki,
    identity: Option<&(PathBuf, PathBuf)>,
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let roots = tls::load_roots(&pki.ca_pem).unwrap();
    let identity = identity.map(|(c, k)| {
        (
            tls::load_certs("client certificate", c).unwrap(),
            tls::load_key(k).unwrap(),
        )
    });
    Arc::new(tls::client_config(roots, identity, alpn).unwrap())
}

/// A gRPC client over TLS: tonic's channel on a rustls connector of our own.
async fn grpc_tls(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<LbdClient<tonic::transport::Channel>, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: tonic::codegen::http::Uri| {
        let cfg = cfg.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").expect("name");
            let s = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await?;
            Ok::<_, std::io::Error>(TokioIo::new(s))
        }
    });
    let ch = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await?;
    Ok(LbdClient::new(ch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_and_mutual_tls() {
    let pki = Pki::new();
    let lbd = pki.spawn(false);
    let mut c = grpc_tls(lbd.grpc_addr, client_config(&pki, None, tls::ALPN_GRPC))
        .await
        .expect("connect over TLS");
    let s = c
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner();
    assert_eq!(s.node, "lk01");
    let t = s.auth.and_then(|a| a.tls).expect("status says TLS");
    assert!(!t.mutual);
    // Plain h2c to the TLS port fails.
    let plain = LbdClient::connect(format!("http://{}", lbd.grpc_addr)).await;
    match plain {
        Err(_) => {}
        Ok(mut c) => assert!(c.get_status(pb::GetStatusRequest {}).await.is_err()),
    }
    python_grpcio(&pki, lbd.grpc_addr, None);
    drop(lbd);

    let lbd = pki.spawn(true);
    let mut c = grpc_tls(
        lbd.grpc_addr,
        client_config(&pki, Some(&pki.client), tls::ALPN_GRPC),
    )
    .await
    .expect("connect with a client certificate");
    let s = c
        .get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus")
        .into_inner();
    assert_eq!(s.node, "lk01");
    // Without a client certificate, or with a foreign one: no call goes through.
    for id in [None, Some(&pki.stranger)] {
        if let Ok(mut c) = grpc_tls(lbd.grpc_addr, client_config(&pki, id, tls::ALPN_GRPC)).await {
            assert!(
                c.get_status(pb::GetStatusRequest {}).await.is_err(),
                "a call went through with client cert {id:?}"
            );
        }
    }
    python_grpcio(&pki, lbd.grpc_addr, Some(&pki.client));
}

/// The same call from Python's grpcio (Debian's python3-grpcio), raw bytes in and out (an
/// empty GetStatusRequest is zero bytes), when it is installed.
fn python_grpcio(pki: &Pki, addr: SocketAddr, identity: Option<&(PathBuf, PathBuf)>) {
    // Debian's package is for the system interpreter, which a pyenv `python3` may hide.
    let Some(python) = ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import grpc"])
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("python3-grpcio is not installed: skipping the grpcio client");
        return;
    };
    let script = r#"
import sys, grpc
ca, target = open(sys.argv[1], 'rb').read(), sys.argv[2]
cert = open(sys.argv[3], 'rb').read() if len(sys.argv) > 3 else None
key = open(sys.argv[4], 'rb').read() if len(sys.argv) > 4 else None
creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
ch = grpc.secure_channel(target, creds, options=[('grpc.ssl_target_name_override', 'localhost')])
call = ch.unary_unary('/lbd.v1.Lbd/GetStatus', request_serializer=lambda b: b, response_deserializer=lambda b: b)
resp = call(b'', timeout=10)
assert b'lk01' in resp, resp
print('ok', len(resp))
"#;
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        script,
        p(&pki.ca_pem),
        &format!("127.0.0.1:{}", addr.port()),
    ]);
    if let Some((c, k)) = identity {
        cmd.args([p(c), p(k)]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "grpcio: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificate lbd presents to a new connection.
async fn served_cert(pki: &Pki, addr: SocketAddr) -> Option<CertificateDer<'static>> {
    let cfg = client_config(pki, None, tls::ALPN_HTTP);
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let s = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .ok()?;
    s.get_ref().1.peer_certificates()?.first().cloned()
}

fn sighup(lbd: &ChildServer) {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(lbd.child.id() as i32, libc::SIGHUP);
    }
}

async fn wait_for_cert(pki: &Pki, addr: SocketAddr, want: &CertificateDer<'static>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if served_cert(pki, addr).await.as_ref() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate() {
    let pki = Pki::new();
    let lbd = pki.spawn(false);
    assert_eq!(
        served_cert(&pki, lbd.http_addr).await,
        Some(pki.server_der.clone())
    );

    // A new certificate (another serial and name), and SIGHUP: new connections get it, on
    // both ports.
    let next = pki.ca.leaf("lbd-two", 2, true);
    let next_der = next.0.der().clone();
    write_leaf(pki.dir.path(), "server", &next);
    sighup(&lbd);
    assert!(
        wait_for_cert(&pki, lbd.http_addr, &next_der).await,
        "HTTP port kept the old certificate"
    );
    assert!(
        wait_for_cert(&pki, lbd.grpc_addr, &next_der).await,
        "gRPC port kept the old certificate"
    );
    let url = format!("https://127.0.0.1:{}/api/v1/status", lbd.http_addr.port());
    assert_eq!(curl(&["--cacert", p(&pki.ca_pem)], &url), (0, "200".into()));

    // A broken key and SIGHUP: the certificate in force stays, and the status says why.
    std::fs::write(
        &pki.server_key,
        "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    sighup(&lbd);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", p(&pki.ca_pem), &url])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["auth"]["tls"]["reload_error"].is_string() || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status["auth"]["tls"]["reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("server.key")),
        "{status}"
    );
    assert_eq!(
        served_cert(&pki, lbd.http_addr).await,
        Some(next_der.clone())
    );
    assert_eq!(served_cert(&pki, lbd.grpc_addr).await, Some(next_der));
}

/// Clients that connect and never start a handshake hold only their own connection, and only
/// for the handshake timeout (`--header-timeout-ms`): others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_do_not_wedge_the_accept_loops() {
    use tokio::io::AsyncReadExt;
    let pki = Pki::new();
    let lbd = pki.spawn_with(false, &["--header-timeout-ms", "700"]);
    let mut silent = Vec::new();
    for addr in [lbd.http_addr, lbd.grpc_addr] {
        for _ in 0..4 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
    }
    let url = format!("https://127.0.0.1:{}/api/v1/status", lbd.http_addr.port());
    assert_eq!(curl(&["--cacert", p(&pki.ca_pem)], &url), (0, "200".into()));
    let mut c = grpc_tls(lbd.grpc_addr, client_config(&pki, None, tls::ALPN_GRPC))
        .await
        .expect("connect over TLS");
    c.get_status(pb::GetStatusRequest {})
        .await
        .expect("GetStatus");
    // The silent ones are closed once the handshake timeout passes.
    for mut s in silent {
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection stayed open: {r:?}"
        );
    }
}

#[test]
fn ctl_over_https() {
    let pki = Pki::new();
    let lbd = pki.spawn(false);
    let url = format!("https://127.0.0.1:{}", lbd.http_addr.port());
    let ctl = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args(["ctl", "--url", &url])
            .args(extra)
            .arg("status")
            .env_remove("LBD_CA")
            .env_remove("LBD_TOKEN")
            .output()
            .unwrap()
    };
    let out = ctl(&["--ca", p(&pki.ca_pem)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lk01"));
    // Through the environment too.
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--url", &url, "status"])
        .env("LBD_CA", &pki.ca_pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA: a clear refusal.
    let out = ctl(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ca"));
    drop(lbd);

    // Mutual TLS: --cert/--key.
    let lbd = pki.spawn(true);
    let url = format!("https://127.0.0.1:{}", lbd.http_addr.port());
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args(["ctl", "--url", &url, "--ca", p(&pki.ca_pem)])
            .args(extra)
            .arg("status")
            .output()
            .unwrap()
    };
    let out = run(&["--cert", p(&pki.client.0), "--key", p(&pki.client.1)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!run(&[]).status.success());
}

#[test]
fn cert_and_key_go_together() {
    let pki = Pki::new();
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(pki.dir.path().join("lbd.db"))
        .args(["--tls-cert", p(&pki.server_cert)])
        .env_remove("LBD_TLS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert and --tls-key go together"),
        "{err}"
    );
    // A key that is not one: lbd does not start, and says which file.
    let bad = pki.dir.path().join("bad.key");
    std::fs::write(&bad, "nothing").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(pki.dir.path().join("lbd.db"))
        .args(["--tls-cert", p(&pki.server_cert), "--tls-key", p(&bad)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.key"), "{err}");
}
