//! Peer sync between real lbd servers on 127.0.0.1: two and three directors, each with its own
//! SQLite file, HTTP API and peer listener, following each other over `lbd.peer.v1.Peer`.

#[path = "support/server.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SECRET: &str = "a-shared-secret-of-the-pair-0123456789\n";

/// A free port on 127.0.0.1 for a peer listener (the peers must know each other's address
/// before either starts). Taken below the kernel's ephemeral range (32768 and up), so no
/// server's own `127.0.0.1:0` bind can take it between this check and the peer's bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Node {
    name: String,
    dir: tempfile::TempDir,
    peer_port: u16,
    peers: Vec<String>,
    secret: String,
    /// Mutual TLS: (CA, certificate, key) files; with it, no secret.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
    running: Option<lbd::daemon::Running>,
    base: String,
}

impl Node {
    fn new(name: &str, peer_port: u16) -> Node {
        Node {
            name: name.into(),
            dir: tempfile::tempdir().unwrap(),
            peer_port,
            peers: Vec::new(),
            secret: SECRET.into(),
            tls: None,
            running: None,
            base: String::new(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("lbd.db")
    }

    async fn start(&mut self) {
        self.start_with(true).await
    }

    /// `peered: false` starts it alone (no `--peer`): a director cut off from its peers.
    async fn start_with(&mut self, peered: bool) {
        let mut cfg = support::config(&self.db());
        cfg.node_name = self.name.clone();
        if peered {
            let secret_file = self.dir.path().join("secret");
            std::fs::write(&secret_file, &self.secret).unwrap();
            let tls = self.tls.as_ref().map(|(ca, cert, key)| {
                lbd::control::tls::mutual(ca, cert, key, lbd::control::tls::ALPN_GRPC).unwrap()
            });
            cfg.peer = Some(lbd::peer::PeerConfig {
                peers: self.peers.clone(),
                listen: format!("127.0.0.1:{}", self.peer_port).parse().unwrap(),
                key: if tls.is_some() {
                    lbd::peer::seal::Key::tls_only()
                } else {
                    lbd::peer::read_key(&secret_file).unwrap()
                },
                tls,
                catch_up: Duration::from_secs(3),
            });
        }
        let running = lbd::daemon::start(cfg).await.expect("start lbd");
        self.base = format!("http://{}", running.http_addr);
        self.running = Some(running);
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let c = reqwest::Client::new();
        let mut r = c.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn config(&self) -> Value {
        self.get("/api/v1/config").await
    }

    async fn revision(&self) -> u64 {
        self.get("/api/v1/status").await["revision"]
            .as_u64()
            .unwrap()
    }

    /// Creates the virtual server `vs(port)` here.
    async fn post_vs(&self, port: u16) -> Value {
        self.send(
            reqwest::Method::POST,
            "/api/v1/virtual-servers",
            Some(vs(port)),
        )
        .await
    }

    /// Waits until this director is at `revision`.
    async fn at(&self, revision: u64, limit: Duration) -> Duration {
        until(
            &format!("{} at revision {revision}", self.name),
            limit,
            || async { self.revision().await == revision },
        )
        .await
    }

    async fn sync(&self) -> Value {
        self.get("/api/v1/status").await["sync"].clone()
    }
}

fn addr(n: &Node) -> String {
    format!("127.0.0.1:{}", n.peer_port)
}

/// A full mesh of `names`.
fn mesh(names: &[&str]) -> Vec<Node> {
    let mut nodes: Vec<Node> = names.iter().map(|n| Node::new(n, free_port())).collect();
    let addrs: Vec<String> = nodes.iter().map(addr).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.peers = addrs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| a.clone())
            .collect();
    }
    nodes
}

fn vs(port: u16) -> Value {
    json!({"address": "192.168.10.100", "port": port, "protocol": "tcp",
           "real_servers": [{"address": "192.168.10.103", "port": port},
                            {"address": "192.168.10.104", "port": port}]})
}

/// Polls until `f` holds, up to `limit`; returns how long it took.
async fn until<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    loop {
        if f().await {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The configuration without what may differ between directors (nothing should).
async fn same_config(a: &Node, b: &Node) -> bool {
    a.config().await == b.config().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_either_director_reaches_the_other_with_the_same_ids_and_revision() {
    let mut nodes = mesh(&["lk01", "lk02"]);
    for n in &mut nodes {
        n.start().await;
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    until("the link", Duration::from_secs(10), || async {
        let s = a.sync().await;
        s["peers"][0]["reachable"] == true && s["peers"][0]["in_sync"] == true
    })
    .await;

    let mut took = Vec::new();
    for (i, (writer, reader)) in [(a, b), (b, a), (a, b)].into_iter().enumerate() {
        let created = writer
            .send(
                reqwest::Method::POST,
                "/api/v1/virtual-servers",
                Some(vs(80 + i as u16)),
            )
            .await;
        let id = created["id"].as_i64().unwrap();
        let rev = writer.revision().await;
        let d = until(
            "the write on the other director",
            Duration::from_secs(1),
            || async { reader.revision().await == rev },
        )
        .await;
        took.push(d);
        // The same entity, with the same id, on the reader.
        let got = reader.get(&format!("/api/v1/virtual-servers/{id}")).await;
        assert_eq!(got, created, "write {i}");
        assert!(same_config(a, b).await);
    }
    println!("replication latency on loopback: {took:?}");

    // Each revision records who made it: lk02's write is in both lineages with origin lk02.
    let sa = a.sync().await;
    assert_eq!(sa["peers"][0]["node"], "lk02");
    assert_eq!(sa["peers"][0]["authenticated"], true);
    assert_eq!(sa["peers"][0]["following_us"], true);
    assert_eq!(sa["mode"], "shared_secret");
    // /metrics: the link as Prometheus sees it.
    let text = reqwest::get(format!("{}/metrics", a.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let peer = format!("{{peer=\"{}\"}}", addr(b));
    for line in [
        format!("lbd_peer_up{peer} 1"),
        format!("lbd_peer_authenticated{peer} 1"),
        format!("lbd_peer_in_sync{peer} 1"),
        format!("lbd_peer_revision{peer} 3"),
        "lbd_sync_conflicts 0".to_string(),
        "lbd_sync_catching_up 0".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    // Events: the reader says it took the peer's configuration.
    let ev = b.get("/api/v1/events").await;
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "peer_sync" && e["kind"] == "took"),
        "{ev}"
    );
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_directors_converge_and_a_returning_one_catches_up() {
    let mut nodes = mesh(&["lk01", "lk02", "lk03"]);
    for n in &mut nodes {
        n.start().await;
    }
    nodes[2].post_vs(80).await;
    for n in &nodes[..2] {
        until(
            "lk03's write everywhere",
            Duration::from_secs(2),
            || async { n.revision().await == 1 },
        )
        .await;
    }
    // lk02 goes away; two writes happen meanwhile.
    nodes[1].stop().await;
    nodes[0].post_vs(81).await;
    nodes[2].post_vs(82).await;
    until("lk01 and lk03 agree", Duration::from_secs(2), || async {
        nodes[0].revision().await == 3 && nodes[2].revision().await == 3
    })
    .await;
    let s = nodes[0].sync().await;
    let down = s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"] == addr(&nodes[1]))
        .unwrap()
        .clone();
    until("lk01 to see lk02 gone", Duration::from_secs(5), || async {
        let s = nodes[0].sync().await;
        s["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["address"] == addr(&nodes[1]) && p["reachable"] == false)
    })
    .await;
    let _ = down;
    // lk02 returns and catches up with no operator action.
    nodes[1].start().await;
    until("lk02 to catch up", Duration::from_secs(3), || async {
        nodes[1].revision().await == 3
    })
    .await;
    assert!(same_config(&nodes[0], &nodes[1]).await);
    assert!(same_config(&nodes[1], &nodes[2]).await);
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_edits_follow_the_rule_and_the_loser_is_kept() {
    let mut nodes = mesh(&["lk01", "lk02"]);
    for n in &mut nodes {
        n.start().await;
    }
    nodes[0].post_vs(80).await;
    nodes[1].at(1, Duration::from_secs(2)).await;
    // Cut apart: each runs alone and is edited once (both reach revision 2).
    for n in &mut nodes {
        n.stop().await;
    }
    for n in &mut nodes {
        n.start_with(false).await;
    }
    nodes[0].post_vs(81).await;
    nodes[1].post_vs(82).await;
    let lost = nodes[1].config().await;
    for n in &mut nodes {
        n.stop().await;
    }
    // Together again: equal revisions, so the origin that sorts first (lk01) wins.
    for n in &mut nodes {
        n.start().await;
    }
    until("one configuration", Duration::from_secs(5), || async {
        same_config(&nodes[0], &nodes[1]).await
    })
    .await;
    let cfg = nodes[1].config().await;
    let ports: Vec<u64> = cfg["virtual_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![80, 81], "lk01's side wins: {cfg}");
    // lk02 kept its side; lk01 keeps nothing.
    let conflicts = nodes[1].get("/api/v1/conflicts").await;
    let list = conflicts.as_array().unwrap();
    assert_eq!(list.len(), 1, "{conflicts}");
    assert_eq!(list[0]["origin"], "lk02");
    assert_eq!(list[0]["winner_origin"], "lk01");
    assert_eq!(list[0]["revision"], 2);
    // lk01 won a tie and re-stamped its side as revision 3, so revision 2 names one
    // configuration on each director and no If-Match of it passes against the other.
    assert_eq!(list[0]["winner_revision"], 3);
    assert_eq!(nodes[1].revision().await, 3);
    // gRPC lists the same record.
    let mut g = lbd::grpc::pb::lbd_client::LbdClient::connect(format!(
        "http://{}",
        nodes[1].running.as_ref().unwrap().grpc_addr
    ))
    .await
    .unwrap();
    let listed = g
        .list_conflicts(lbd::grpc::pb::ListConflictsRequest {})
        .await
        .unwrap()
        .into_inner()
        .conflicts;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].origin, "lk02");
    assert!(!listed[0].changes.is_empty());
    let st = g
        .get_status(lbd::grpc::pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let sync = st.sync.unwrap();
    assert_eq!(sync.conflicts, 1);
    assert_eq!(sync.peers[0].node.as_deref(), Some("lk01"));
    assert!(nodes[0]
        .get("/api/v1/conflicts")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(nodes[1].sync().await["conflicts"], 1);
    let ev = nodes[1].get("/api/v1/events").await;
    assert!(ev
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "peer_sync" && e["kind"] == "lost_split"));
    // Re-applying it is a normal write: it wins by revision and reaches lk01.
    let id = list[0]["id"].as_i64().unwrap();
    nodes[1]
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/conflicts/{id}/apply"),
            None,
        )
        .await;
    until(
        "the re-applied side on lk01",
        Duration::from_secs(2),
        || async { same_config(&nodes[0], &nodes[1]).await },
    )
    .await;
    // The lost side's entities are back (by identity; the ones new to lk01 get fresh ids,
    // ids are never reused).
    let ports = |c: &Value| -> Vec<u64> {
        c["virtual_servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["port"].as_u64().unwrap())
            .collect()
    };
    let now = nodes[0].config().await;
    assert_eq!(ports(&now), vec![80, 82]);
    assert_eq!(ports(&now), ports(&lost));
    assert!(nodes[1]
        .get("/api/v1/conflicts")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_secret_is_refused_on_both_sides() {
    let mut nodes = mesh(&["lk01", "lk02"]);
    nodes[1].secret = "not-the-pair-secret-at-all-0000000\n".into();
    for n in &mut nodes {
        n.start().await;
    }
    nodes[0].post_vs(80).await;
    for n in &nodes {
        until(
            "the refusal in the status",
            Duration::from_secs(5),
            || async {
                let s = n.sync().await;
                let p = &s["peers"][0];
                p["authenticated"] == false
                    && p["reachable"] == false
                    && p["error"].as_str().is_some_and(|e| e.contains("refused"))
                    && p["refused"]
                        .as_str()
                        .is_some_and(|e| e.contains("does not authenticate"))
            },
        )
        .await;
    }
    // Nothing crossed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nodes[1].revision().await, 0);
    for n in &mut nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lbd_refuses_peers_without_a_secret() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "serve",
            "--db",
            "/nonexistent/x.db",
            "--peer",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--peer-secret-file"), "{err}");
}

/// A CA for the peer link, and a director certificate from it naming 127.0.0.1 (used both as
/// server and as client).
struct PeerCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    pem: PathBuf,
}

impl PeerCa {
    fn new(dir: &std::path::Path, name: &str) -> PeerCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        PeerCa { cert, key, pem }
    }

    /// (CA, certificate, key) files for director `node`.
    fn director(&self, dir: &std::path::Path, node: &str) -> (PathBuf, PathBuf, PathBuf) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, node);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            dir.join(format!("{node}.pem")),
            dir.join(format!("{node}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (self.pem.clone(), c, k)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_links_the_pair_and_refuses_a_certificate_from_another_ca() {
    let pki = tempfile::tempdir().unwrap();
    let ca = PeerCa::new(pki.path(), "pair-ca");
    let mut nodes = mesh(&["lk01", "lk02"]);
    nodes[0].tls = Some(ca.director(pki.path(), "lk01"));
    nodes[1].tls = Some(ca.director(pki.path(), "lk02"));
    // No shared secret in this pair: the certificates authenticate.
    nodes[1].secret = "unrelated-secret-that-is-not-used\n".into();
    for n in &mut nodes {
        n.start().await;
    }
    nodes[0].post_vs(80).await;
    nodes[1].at(1, Duration::from_secs(3)).await;
    let s = nodes[1].sync().await;
    assert_eq!(s["mode"], "mutual_tls");
    assert_eq!(s["peers"][0]["authenticated"], true);
    for n in &mut nodes {
        n.stop().await;
    }

    // lk02 comes back with a certificate from another CA: refused, and both say why.
    let other = PeerCa::new(pki.path(), "other-ca");
    let (_, cert, key) = other.director(pki.path(), "lk02-foreign");
    nodes[1].tls = Some((ca.pem.clone(), cert, key));
    for n in &mut nodes {
        n.start().await;
    }
    nodes[0].post_vs(81).await;
    for n in &nodes {
        let t0 = Instant::now();
        loop {
            let p = n.sync().await["peers"][0].clone();
            if p["reachable"] == false
                && p["authenticated"] == false
                && p["error"].as_str().is_some_and(|e| e.contains("refused"))
                && p["refused"]
                    .as_str()
                    .is_some_and(|e| e.contains("TLS handshake failed"))
            {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{}: the refused certificate is not in the status: {p}",
                n.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(nodes[1].revision().await, 1, "nothing crossed");
    for n in &mut nodes {
        n.stop().await;
    }
}
