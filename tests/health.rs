//! Health checks against real TCP and HTTP servers on 127.0.0.1 ephemeral ports, and their effect
//! on the desired IPVS table through the data-plane actor (in-memory kernel).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbd::control::events::{EventBus, EventKind};
use lbd::control::status::{DataplaneStatus, StatusBoard};
use lbd::dataplane::actor::{spawn, ActorConfig};
use lbd::dataplane::health::state::HealthState;
use lbd::dataplane::health::{round, CheckSpec, HttpUrl, Probe};
use lbd::kernel::memory::MemoryKernel;
use lbd::model::{Config, Snapshot};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// An HTTP server that answers `status` (changeable) and counts requests with their times.
struct FakeHttp {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeHttp {
    async fn start(status: u16, body: &'static str) -> FakeHttp {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let st = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (st2, hits2) = (st.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                hits2.lock().unwrap().push(Instant::now());
                let code = st2.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    if code == 0 {
                        // Never answer: the check must time out.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.0 {code} X\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        FakeHttp {
            addr,
            status: st,
            hits,
            task,
        }
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn spec(target: SocketAddr, probe: Probe, retry: u32) -> CheckSpec {
    CheckSpec {
        virtual_server_id: 1,
        real_server_id: 2,
        target,
        probe,
        delay_loop: Duration::from_millis(100),
        connect_timeout: Duration::from_millis(100),
        retry,
        delay_before_retry: Duration::from_millis(60),
        rise: 1,
        fall: 1,
    }
}

fn http(path: &str, expected: u16, body: Option<&str>) -> Probe {
    Probe::Http {
        host: "127.0.0.1".into(),
        urls: vec![HttpUrl {
            path: path.into(),
            statuses: vec![(expected, expected)],
            digest: None,
        }],
        body_contains: body.map(String::from),
        tls: None,
    }
}

#[tokio::test]
async fn http_check_status_body_timeout_and_retries() {
    let srv = FakeHttp::start(200, "all good").await;
    assert!(
        round(&spec(srv.addr, http("/health", 200, Some("good")), 0))
            .await
            .is_ok()
    );
    let e = round(&spec(srv.addr, http("/health", 200, Some("bad")), 0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not contain"), "{e}");
    let e = round(&spec(srv.addr, http("/", 204, None), 0))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "HTTP status 200 for /, expected 204");

    // A failing round makes 1 + retry attempts, delay_before_retry apart.
    srv.status.store(503, Ordering::SeqCst);
    srv.hits.lock().unwrap().clear();
    let t = Instant::now();
    assert!(round(&spec(srv.addr, http("/", 200, None), 3))
        .await
        .is_err());
    let hits = srv.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 4, "1 try + 3 retries");
    for w in hits.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(60),
            "retries are delay_before_retry apart"
        );
    }
    assert!(t.elapsed() >= Duration::from_millis(180));

    // A server that accepts and never answers: the attempt times out at connect_timeout.
    srv.status.store(0, Ordering::SeqCst);
    let t = Instant::now();
    let e = round(&spec(srv.addr, http("/", 200, None), 0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn tcp_check_connect_and_refused() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    assert!(round(&spec(addr, Probe::Tcp, 0)).await.is_ok());
    drop(l);
    let e = round(&spec(addr, Probe::Tcp, 1)).await.unwrap_err();
    assert!(e.to_string().contains("connect failed"), "{e}");
}

fn config(port: u16, inhibit: bool, delay_loop_ms: u32) -> Config {
    let mut c: Config = serde_json::from_value(json!({"virtual_servers": [
        {"id": 1, "address": "10.0.0.1", "port": 80, "forwarding": "nat", "delay_loop_ms": delay_loop_ms,
         "real_servers": [
            {"id": 2, "address": "127.0.0.1", "port": port, "weight": 3, "inhibit_on_failure": inhibit,
             "health_check": {"type": "tcp", "connect_timeout_ms": 100, "retry": 2, "delay_before_retry_ms": 50}},
            {"id": 3, "address": "127.0.0.2", "port": 9, "weight": 1}]},
        {"id": 4, "address": "10.0.0.2", "port": 80, "forwarding": "nat", "real_servers": []}
    ]}))
    .unwrap();
    for v in &mut c.virtual_servers {
        std::sync::Arc::make_mut(v).normalize();
    }
    c
}

fn weights(k: &MemoryKernel) -> Vec<(String, u32)> {
    k.with(|s| {
        s.table
            .services
            .values()
            .flat_map(|svc| {
                svc.dests
                    .iter()
                    .map(|(d, spec)| (format!("{}:{}", d.address, d.port), spec.weight))
            })
            .collect()
    })
}

async fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

#[tokio::test]
async fn dead_server_leaves_the_table_and_comes_back() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        revision: 1,
        config: config(port, false, 200),
    }));
    let board = StatusBoard::new(DataplaneStatus::default());
    let events = EventBus::default();
    let (_h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        events.clone(),
        ActorConfig::default(),
    );
    let target = format!("127.0.0.1:{port}");
    wait_until("programmed", Duration::from_secs(2), || {
        weights(&kernel).contains(&(target.clone(), 3))
    })
    .await;
    wait_until("first check", Duration::from_secs(2), || {
        board.health_list().first().is_some_and(|h| h.checks >= 1)
    })
    .await;
    assert_eq!(board.health_list()[0].state, HealthState::Up);

    // Bound: delay_loop 200 + connect_timeout 100 x 3 + delay_before_retry 50 x 2 = 600 ms
    // (a refused connect fails fast, so the real figure is lower); slack for a loaded machine.
    drop(l);
    let took = wait_until("removal", Duration::from_millis(600 + 1000), || {
        !weights(&kernel).iter().any(|(t, _)| *t == target)
    })
    .await;
    eprintln!("detected down in {took:?}");
    let h = &board.health_list()[0];
    assert_eq!(h.state, HealthState::Down);
    assert!(h.last_error.as_deref().unwrap().contains("connect failed"));
    assert_eq!(h.transitions, 1);
    assert!(events.recent(0).iter().any(|e| matches!(
        &e.kind,
        EventKind::HealthChanged {
            state: HealthState::Down,
            real_server_id: 2,
            ..
        }
    )));
    assert_eq!(
        weights(&kernel),
        vec![("127.0.0.2:9".to_string(), 1)],
        "the unchecked server stays"
    );

    // Health survives an edit that does not touch that real server.
    let mut edited = config(port, false, 200);
    std::sync::Arc::make_mut(&mut edited.virtual_servers[1]).scheduler = lbd::model::Scheduler::Wlc;
    tx.send(Arc::new(Snapshot {
        revision: 2,
        config: edited,
    }))
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(board.health_list()[0].state, HealthState::Down);
    assert!(!weights(&kernel).iter().any(|(t, _)| *t == target));

    // Back: one successful round brings it up within delay_loop (+ slack).
    let _l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_until("restore", Duration::from_millis(200 + 1000), || {
        weights(&kernel).contains(&(target.clone(), 3))
    })
    .await;
    assert_eq!(board.health_list()[0].transitions, 2);
}

#[tokio::test]
async fn inhibit_on_failure_sets_weight_zero() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let kernel = MemoryKernel::default();
    let (_tx, rx) = watch::channel(Arc::new(Snapshot {
        revision: 1,
        config: config(port, true, 100),
    }));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (_h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
    );
    let target = format!("127.0.0.1:{port}");
    wait_until("programmed", Duration::from_secs(2), || {
        weights(&kernel).contains(&(target.clone(), 3))
    })
    .await;
    drop(l);
    wait_until("weight 0", Duration::from_secs(2), || {
        weights(&kernel).contains(&(target.clone(), 0))
    })
    .await;
}

/// An HTTP server that answers each path with its own status and body.
async fn paths_server(routes: &'static [(&'static str, u16, &'static str)]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (code, body) = routes
                    .iter()
                    .find(|r| r.0 == path)
                    .map(|r| (r.1, r.2))
                    .unwrap_or((404, "no"));
                let resp = format!(
                    "HTTP/1.0 {code} X\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// keepalived's HTTP_GET with several url blocks: every url must pass, status codes may be
/// ranges, a digest is the MD5 of the body (as `genhash` prints it).
#[tokio::test]
async fn http_check_with_several_urls_status_ranges_and_digests() {
    static ROUTES: [(&str, u16, &str); 3] = [
        ("/a", 204, ""),
        ("/b", 200, "The quick brown fox jumps over the lazy dog"),
        ("/c", 503, "down"),
    ];
    let addr = paths_server(&ROUTES).await;
    // MD5("The quick brown fox jumps over the lazy dog"), the RFC 1321 test-suite classic.
    let fox = "9e107d9d372bb6826bd81d3542a419d6";
    let probe = |urls: Vec<HttpUrl>| Probe::Http {
        host: "127.0.0.1".into(),
        urls,
        body_contains: None,
        tls: None,
    };
    let url = |path: &str, statuses: Vec<(u16, u16)>, digest: Option<&str>| HttpUrl {
        path: path.into(),
        statuses,
        digest: digest.map(String::from),
    };
    let ok = probe(vec![
        url("/a", vec![(200, 299)], None),
        url("/b", vec![(200, 200)], Some(fox)),
    ]);
    round(&spec(addr, ok, 0)).await.unwrap();
    // The second url fails: the check fails, naming it.
    let e = round(&spec(
        addr,
        probe(vec![
            url("/a", vec![(200, 299)], None),
            url("/c", vec![(200, 299), (302, 302)], None),
        ]),
        0,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "HTTP status 503 for /c, expected 200-299 302"
    );
    let e = round(&spec(
        addr,
        probe(vec![url(
            "/b",
            vec![(200, 200)],
            Some("00000000000000000000000000000000"),
        )]),
        0,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("the body of /b has MD5 {fox}, expected 00000000000000000000000000000000")
    );
    // The model's form (keepalived's url blocks, imported) makes the same probe.
    let text = format!(
        "virtual_server 127.0.0.1 {} {{\n  protocol TCP\n  lb_kind NAT\n  real_server 127.0.0.1 {} {{\n    HTTP_GET {{\n      url {{\n        path /a\n        status_code 200-299\n      }}\n      url {{\n        path /b\n        digest {}\n      }}\n    }}\n  }}\n}}\n",
        addr.port(),
        addr.port(),
        fox.to_uppercase()
    );
    let imported = lbd::keepalived::import_into(
        &Config::default(),
        &text,
        std::path::Path::new("u.conf"),
        "n",
        &lbd::keepalived::parser::NoIncludes,
    )
    .unwrap();
    let specs = lbd::dataplane::health::specs(&imported.config);
    assert_eq!(
        specs[0].probe,
        probe(vec![
            url("/a", vec![(200, 299)], None),
            url("/b", vec![(200, 299)], Some(fox)),
        ])
    );
    let mut s = specs[0].clone();
    s.connect_timeout = Duration::from_millis(500);
    s.retry = 0;
    round(&s).await.unwrap();
}

fn misc(argv: &[&str], timeout_ms: u64, dynamic: bool) -> Probe {
    Probe::Misc {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout: Duration::from_millis(timeout_ms),
        dynamic,
        user: None,
    }
}

fn gone(pid: i32) -> bool {
    // Gone, or a zombie waiting to be reaped: either way it runs no more.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

/// keepalived's MISC_CHECK: exit 0 healthy, 1 down with the output kept; misc_dynamic's
/// weights; a command that hangs is killed at its timeout with what it started, while another
/// check runs on unaffected.
#[tokio::test]
async fn misc_check_exit_codes_dynamic_weight_and_timeout_kill() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let (w, _) = {
        let r = round(&spec(addr, misc(&["/bin/true"], 2000, false), 0))
            .await
            .unwrap();
        (r.1, r.0)
    };
    assert_eq!(w, None);
    let e = round(&spec(
        addr,
        misc(
            &["/bin/sh", "-c", "echo backend says no; exit 1"],
            2000,
            false,
        ),
        0,
    ))
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "exit 1: backend says no");
    // misc_dynamic: 2..=255 is healthy with weight code - 2; without it, a failure.
    let r = round(&spec(
        addr,
        misc(&["/bin/sh", "-c", "exit 7"], 2000, true),
        0,
    ))
    .await
    .unwrap();
    assert_eq!(r.1, Some(5));
    assert!(round(&spec(
        addr,
        misc(&["/bin/sh", "-c", "exit 7"], 2000, false),
        0
    ))
    .await
    .is_err());
    let e = round(&spec(addr, misc(&["/nonexistent/check"], 2000, false), 0))
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with("cannot run /nonexistent/check"),
        "{e}"
    );

    // A hanging command and what it started are killed at misc_timeout; a TCP check running at
    // the same time answers at once.
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "echo $$ > {p}; sleep 30 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = listener.local_addr().unwrap();
    let hang = spec(addr, misc(&["/bin/sh", "-c", &script], 300, false), 0);
    let t = Instant::now();
    let (hung, tcp) = tokio::join!(round(&hang), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        let r = round(&spec(tcp_addr, Probe::Tcp, 0)).await;
        (r, t.elapsed())
    });
    let took = t.elapsed();
    assert_eq!(hung.unwrap_err().to_string(), "timed out after 300ms");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(tcp.0.is_ok());
    assert!(tcp.1 < Duration::from_millis(200), "{:?}", tcp.1);
    let ids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !ids.iter().all(|p| gone(*p)) {
        assert!(Instant::now() < deadline, "{ids:?} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A misc_dynamic weight replaces the configured one in the IPVS table, and counts for quorum.
#[test]
fn dynamic_weights_reach_the_table() {
    use lbd::dataplane::desired::{desired_table, Health};
    let mut cfg: Config = serde_json::from_value(json!({"virtual_servers": [
        {"address": "10.0.0.1", "port": 80, "quorum": 3,
         "sorry_server": {"address": "10.0.0.99"},
         "real_servers": [{"address": "10.0.0.2", "weight": 1, "health_check": {"type": "misc",
             "misc_path": "/usr/local/bin/check web", "misc_dynamic": true}}]}]}))
    .unwrap();
    let vs = std::sync::Arc::make_mut(&mut cfg.virtual_servers[0]);
    vs.id = 1;
    vs.real_servers[0].id = 2;
    vs.normalize();
    lbd::model::validate::config(&cfg, None).unwrap();
    let weights = |h: &Health| -> Vec<(String, u32)> {
        desired_table(&cfg, h)
            .services
            .values()
            .flat_map(|s| {
                s.dests
                    .iter()
                    .map(|(k, d)| (k.address.to_string(), d.weight))
            })
            .collect()
    };
    // Configured weight 1 is below quorum 3: the sorry server joins.
    let mut h = Health::default();
    assert_eq!(
        weights(&h),
        vec![("10.0.0.2".into(), 1), ("10.0.0.99".into(), 1)]
    );
    h.weights.insert(2, 5);
    assert_eq!(weights(&h), vec![("10.0.0.2".into(), 5)]);
    let specs = lbd::dataplane::health::specs(&cfg);
    assert_eq!(
        specs[0].probe,
        Probe::Misc {
            argv: vec!["/usr/local/bin/check".into(), "web".into()],
            timeout: Duration::from_millis(60_000),
            dynamic: true,
            user: None,
        }
    );
}

/// keepalived's SSL_GET against an HTTPS server on 127.0.0.1 with a self-signed certificate made
/// here: without a CA it is checked like keepalived (no verification), with the certificate as
/// CA and the right server name it verifies, a wrong name fails; several urls and a digest work
/// over TLS as over plain HTTP.
#[tokio::test]
async fn ssl_get_over_tls_unverified_verified_and_wrong_name() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let server_cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server_cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (code, body) = match path.as_str() {
                    "/a" => (200, "The quick brown fox jumps over the lazy dog"),
                    "/b" => (204, ""),
                    _ => (404, "no"),
                };
                let resp = format!(
                    "HTTP/1.0 {code} X\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let probe = |ca_file: Option<&str>, server_name: Option<&str>| Probe::Http {
        host: "localhost".into(),
        urls: vec![
            HttpUrl {
                path: "/a".into(),
                statuses: vec![(200, 299)],
                digest: Some("9e107d9d372bb6826bd81d3542a419d6".into()),
            },
            HttpUrl {
                path: "/b".into(),
                statuses: vec![(204, 204)],
                digest: None,
            },
        ],
        body_contains: None,
        tls: Some(lbd::dataplane::health::http::Tls {
            ca_file: ca_file.map(String::from),
            server_name: server_name.map(String::from),
        }),
    };
    let mut sp = spec(addr, probe(None, None), 0);
    sp.connect_timeout = Duration::from_secs(2);
    round(&sp).await.unwrap();
    let ca = ca.display().to_string();
    sp.probe = probe(Some(&ca), Some("localhost"));
    round(&sp).await.unwrap();
    sp.probe = probe(Some(&ca), Some("wrong.example"));
    let e = round(&sp).await.unwrap_err();
    assert!(e.to_string().starts_with("TLS: "), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    // Plain HTTP against the TLS port fails.
    sp.probe = http("/a", 200, None);
    assert!(round(&sp).await.is_err());
    // The model's form: an imported SSL_GET makes this probe (unverified).
    let text = format!(
        "virtual_server 127.0.0.1 {p} {{\n  protocol TCP\n  lb_kind NAT\n  real_server 127.0.0.1 {p} {{\n    SSL_GET {{\n      url {{\n        path /b\n        status_code 204\n      }}\n    }}\n  }}\n}}\n",
        p = addr.port()
    );
    let imported = lbd::keepalived::import_into(
        &Config::default(),
        &text,
        std::path::Path::new("s.conf"),
        "n",
        &lbd::keepalived::parser::NoIncludes,
    )
    .unwrap();
    let mut s = lbd::dataplane::health::specs(&imported.config)[0].clone();
    assert!(matches!(&s.probe, Probe::Http { tls: Some(t), .. } if t.ca_file.is_none()));
    s.retry = 0;
    round(&s).await.unwrap();
    let exported = lbd::keepalived::export::export(&imported.config, "n");
    assert!(exported.contains("SSL_GET {"), "{exported}");
}
