//! Health checks against real TCP and HTTP servers on 127.0.0.1 ephemeral ports, and their effect
//! on the desired IPVS table through the data-plane actor (in-memory kernel).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbd::dataplane::actor::{spawn, ActorConfig};
use lbd::events::{EventBus, EventKind};
use lbd::health::state::HealthState;
use lbd::health::{round, CheckSpec, HttpUrl, Probe};
use lbd::kernel::memory::MemoryKernel;
use lbd::model::{Config, Snapshot};
use lbd::status::{DataplaneStatus, StatusBoard};
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
    let specs = lbd::health::specs(&imported.config);
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
