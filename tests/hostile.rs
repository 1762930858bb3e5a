//! Hostile input and faults (issue #22): every probe that crashed, wedged or bloated lbd, as a
//! regression test against the real binary, on 127.0.0.1 only. Each test bounds what it sends in
//! count and time.

#[path = "support/server.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::ChildServer;

/// Sends raw bytes on a fresh connection and reads the response until the server closes it or
/// `wait` passes; returns what arrived.
fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // A complete JSON error body is enough.
                if out.ends_with(b"}}") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The JSON body of a raw HTTP/1.1 response.
fn body_of(resp: &str) -> Value {
    let i = resp.find("\r\n\r\n").expect("a header/body separator");
    serde_json::from_str(&resp[i + 4..]).unwrap_or(Value::Null)
}

fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn healthz_ok(lbd: &ChildServer) {
    let r = reqwest::get(format!("http://{}/healthz", lbd.http_addr))
        .await
        .expect("lbd still answers");
    assert_eq!(r.status().as_u16(), 200);
}

fn rss_peak_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn deeply_nested_import_is_refused_on_its_line_and_the_daemon_lives() {
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    // The probe that aborted lbd 4 times in 4: 50,000 nested blocks, 200 KB.
    let body = "a {\n".repeat(50_000);
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/import/keepalived?node_name=lk01",
            lbd.http_addr
        ))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "body");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.starts_with("keepalived.conf:17: blocks nested deeper than 16"),
        "{m}"
    );
    healthz_ok(&lbd).await;
}

#[tokio::test]
async fn an_oversized_content_length_gets_413_at_once_in_the_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    for (path, limit) in [
        ("/api/v1/virtual-servers", 1024 * 1024),
        ("/api/v1/import/keepalived?node_name=lk01", 8 * 1024 * 1024),
        ("/api/v1/config", 32 * 1024 * 1024),
    ] {
        let method = if path == "/api/v1/config" {
            "PUT"
        } else {
            "POST"
        };
        // Only the head: a server that waits for the body never answers.
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        );
        let t = Instant::now();
        let resp = raw(lbd.http_addr, head.as_bytes(), Duration::from_secs(5));
        let took = t.elapsed();
        assert_eq!(status_of(&resp), 413, "{path}: {resp}");
        let v = body_of(&resp);
        assert_eq!(v["error"]["code"], "payload_too_large", "{resp}");
        assert_eq!(v["error"]["field"], "body");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("limit of {limit} bytes")),
            "{resp}"
        );
        assert!(
            resp.to_ascii_lowercase().contains("connection: close"),
            "{resp}"
        );
        println!("{method} {path}: 413 after {took:?} with no body sent");
    }
    // A chunked body has no length to check first: it is read up to the limit, then refused.
    let mut s = TcpStream::connect(lbd.http_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"POST /api/v1/virtual-servers HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut refused = String::new();
    for _ in 0..32 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).is_err() {
            break;
        }
    }
    let mut buf = vec![0u8; 4096];
    if let Ok(n) = s.read(&mut buf) {
        refused = String::from_utf8_lossy(&buf[..n]).to_string();
    }
    assert_eq!(status_of(&refused), 413, "{refused}");
    healthz_ok(&lbd).await;
}

#[tokio::test]
async fn parallel_large_bodies_share_one_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let pid = lbd.child.id();
    let before = rss_peak_kib(pid);
    // Eight 30 MB bodies at once (the probe's eight 63 MB bodies took lbd to 557 MB). They are
    // refused after reading (not JSON), so what they cost is the body buffers.
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = format!("http://{}/api/v1/config", lbd.http_addr);
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![b'x'; 30 * 1000 * 1000];
            c.put(url)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 400);
    }
    let peak = rss_peak_kib(pid);
    println!(
        "peak RSS: {} MiB before, {} MiB after eight parallel 30 MB bodies",
        before / 1024,
        peak / 1024
    );
    // The budget is 96 MiB of bodies at once; eight bodies unbounded would be 240 MB.
    assert!(
        peak < before + 200 * 1024,
        "peak RSS grew by {} MiB",
        (peak - before) / 1024
    );
    healthz_ok(&lbd).await;
}

#[tokio::test]
async fn json_bodies_are_strict_and_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}/api/v1/virtual-servers", lbd.http_addr);
    let c = reqwest::Client::new();
    let send = |body: String| {
        let c = c.clone();
        let url = url.clone();
        async move {
            let r = c.post(url).body(body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let ok = json!({"address": "10.0.0.1", "port": 80}).to_string();
    // Trailing garbage, and a second document, are refused (they were accepted with 201).
    for body in [format!("{ok} garbage"), format!("{ok}{ok}")] {
        let (status, v) = send(body).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "bad_request");
        assert_eq!(v["error"]["field"], "body");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trailing characters"));
    }
    // A wrong JSON type in an enum field is a 422 naming the field (it was a 400 with none).
    let (status, v) =
        send(json!({"address": "10.0.0.2", "port": 80, "protocol": 6}).to_string()).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_argument");
    assert_eq!(v["error"]["field"], "protocol");
    let (status, v) = send(
        json!({"address": "10.0.0.2", "port": 80, "real_servers": [{"address": "10.0.1.1", "weight": "heavy"}]})
            .to_string(),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["field"], "real_servers[0].weight");
    // Nothing of the refused writes was committed.
    let cfg: Value = reqwest::get(format!("http://{}/api/v1/config", lbd.http_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["revision"], 0);
}

#[tokio::test]
async fn addresses_and_ports_that_cannot_work_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}/api/v1/virtual-servers", lbd.http_addr);
    let c = reqwest::Client::new();
    for (body, field, reason) in [
        (
            json!({"address": "255.255.255.255", "port": 80}),
            "address",
            "limited broadcast",
        ),
        (
            json!({"address": "224.0.0.18", "port": 80}),
            "address",
            "multicast",
        ),
        (
            json!({"address": "0.0.0.0", "port": 80}),
            "address",
            "unspecified",
        ),
        (
            json!({"address": "0.1.2.3", "port": 80}),
            "address",
            "this network",
        ),
        (
            json!({"address": "10.0.0.1", "port": 80, "forwarding": "nat",
                   "real_servers": [{"address": "10.0.1.1", "port": 0}]}),
            "real_servers[0].port",
            "port 0",
        ),
        (
            json!({"address": "10.0.0.1", "port": 80,
                   "real_servers": [{"address": "255.255.255.255"}]}),
            "real_servers[0].address",
            "limited broadcast",
        ),
    ] {
        let r = c.post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(reason),
            "{v}"
        );
    }
}

/// Opens `n` connections that each hold the server in a different way, and keeps them.
fn slow_clients(http: SocketAddr, grpc: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let (addr, bytes): (SocketAddr, &[u8]) = match i % 5 {
            // Half a request head, never finished.
            0 => (http, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "),
            // A head that announces a body, and a body that stops.
            1 => (
                http,
                b"POST /api/v1/virtual-servers HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{\"addr",
            ),
            // A keep-alive connection after one request, then silence.
            2 => (http, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            // An HTTP/2 connection (prior knowledge) that opens and says nothing more.
            3 => (http, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
            // A gRPC connection that never speaks.
            _ => (grpc, b""),
        };
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(bytes).unwrap();
        conns.push(s);
    }
    conns
}

fn raise_own_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on our own process with a struct that outlives the calls.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[tokio::test]
async fn a_slow_client_flood_neither_blocks_others_nor_holds_descriptors() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn_with(
        &dir.path().join("lbd.db"),
        &[
            "--header-timeout-ms",
            "5000",
            "--body-timeout-ms",
            "5000",
            "--idle-timeout-ms",
            "6000",
        ],
    );
    let pid = lbd.child.id();
    let baseline = open_fds(pid);
    let conns = slow_clients(lbd.http_addr, lbd.grpc_addr, 5_000);
    // Let the server accept them all.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) < baseline + 4_900 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = open_fds(pid);
    assert!(held >= baseline + 4_900, "server holds {held} descriptors");

    // Others are served meanwhile: a read and a write on fresh connections.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let t = Instant::now();
    let r = c
        .get(format!("http://{}/healthz", lbd.http_addr))
        .send()
        .await
        .unwrap();
    let healthz = t.elapsed();
    assert_eq!(r.status().as_u16(), 200);
    let t = Instant::now();
    let r = c
        .post(format!("http://{}/api/v1/virtual-servers", lbd.http_addr))
        .json(&json!({"address": "10.0.0.1", "port": 80}))
        .send()
        .await
        .unwrap();
    let write = t.elapsed();
    assert_eq!(r.status().as_u16(), 201);
    println!(
        "with 5,000 slow connections open ({held} descriptors): /healthz {healthz:?}, a write {write:?}"
    );
    assert!(
        healthz < Duration::from_secs(2) && write < Duration::from_secs(2),
        "healthz {healthz:?}, write {write:?}"
    );

    // Every kind of slow connection is closed by its timeout: the descriptors come back.
    let deadline = Instant::now() + Duration::from_secs(15);
    while open_fds(pid) > baseline + 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = open_fds(pid);
    println!("descriptors: {baseline} before, {held} with the flood, {after} after the timeouts");
    assert!(
        after <= baseline + 20,
        "{after} descriptors still open (baseline {baseline})"
    );
    // And the clients see their connections closed (EOF after any error response).
    let mut closed = 0;
    for mut s in conns {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    closed += 1;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    assert_eq!(closed, 5_000);
    healthz_ok(&lbd).await;
}

#[test]
fn a_second_lbd_on_the_same_database_exits_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let first = ChildServer::spawn(&db);
    let t = Instant::now();
    let err = failed_start(&db, &[], false);
    assert!(t.elapsed() < Duration::from_secs(5), "exits at once");
    assert!(
        err.contains(&format!(
            "is in use by another lbd (pid {})",
            first.child.id()
        )),
        "{err}"
    );
    // The first one was not disturbed.
    assert_eq!(healthz_status(first.http_addr), 200);
}

/// `GET /healthz` over a plain socket, for tests without a runtime: the status.
fn healthz_status(addr: SocketAddr) -> u16 {
    let resp = raw(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    status_of(&resp)
}

/// Runs `lbd serve` on `db` expecting it to fail at start; returns its stderr.
fn failed_start(db: &std::path::Path, extra: &[&str], as_nobody: bool) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbd"));
    cmd.args(["serve", "--grpc-listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(db)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    if !extra.contains(&"--http-listen") {
        cmd.args(["--http-listen", "127.0.0.1:0"]);
    }
    if as_nobody {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "lbd started");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_read_only_database_is_found_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    // A valid database, then made read-only.
    {
        let mut lbd = ChildServer::spawn(&db);
        assert_eq!(lbd.terminate().code(), Some(0));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root writes whatever the mode says: run lbd as nobody there (the directory stays open to
    // it, so only the file is read-only).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        for f in ["lbd.db-wal", "lbd.db-shm", "lbd.db.lock"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
    }
    let err = failed_start(&db, &[], root);
    assert!(err.contains("cannot be written"), "{err}");
}

#[test]
fn a_damaged_database_is_reported_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db, &junk).unwrap();
    let err = failed_start(&db, &[], false);
    assert!(
        err.contains("is damaged or is not an lbd database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        junk,
        "the file was not touched"
    );
}

#[test]
fn a_start_that_cannot_listen_leaves_no_database_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let err = failed_start(&db, &["--http-listen", &port], false);
    assert!(err.contains("cannot listen on"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn kill_9_during_1000_acknowledged_writes_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let mut lbd = ChildServer::spawn(&db);
    let base = format!("http://{}", lbd.http_addr);
    let client = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Four writers, each with its own ports, keep writing until the server dies.
    for w in 0..4u16 {
        let c = client.clone();
        let base = base.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0..1_000u16 {
                let port = 1 + w * 1_000 + i;
                let r = c
                    .post(format!("{base}/api/v1/virtual-servers"))
                    .json(&json!({"address": "10.0.0.1", "port": port}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        if tx.send(port).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
    }
    drop(tx);
    let mut acked = Vec::new();
    while let Some(port) = rx.recv().await {
        acked.push(port);
        if acked.len() == 1_000 {
            break;
        }
    }
    // Other writes are in flight right now.
    lbd.kill9();
    assert_eq!(acked.len(), 1_000);

    let store = lbd::control::store::Store::open(&db).await.unwrap();
    let loaded = store.load().await.unwrap();
    store.close().await;
    let stored: std::collections::HashSet<u16> = loaded
        .snapshot
        .config
        .virtual_servers
        .iter()
        .filter_map(|v| v.port)
        .collect();
    let lost: Vec<_> = acked.iter().filter(|p| !stored.contains(p)).collect();
    println!(
        "{} acknowledged, {} stored after kill -9, {} lost",
        acked.len(),
        stored.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:?}");
    assert_eq!(loaded.snapshot.revision as usize, stored.len());
}
