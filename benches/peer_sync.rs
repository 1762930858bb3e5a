//! Peer-sync latency on loopback: two in-process directors (real HTTP, real SQLite files, the
//! real peer link; the in-memory kernel, so the host's missing IPVS does not matter), from a
//! write's acknowledgement on one director to the same revision committed on the other.
//!
//!   cargo bench --bench peer_sync
//!
//! Phases: single edits (a weight) on a small configuration; the 2,277-service / 37,205-real-
//! server configuration (keepalived 2.3.0's release-note size) in one PUT; then single edits
//! with that configuration loaded (each revision crosses the link whole). Prints a report;
//! asserts nothing. `LBD_BENCH_EDITS` edits per phase (default 200).

use std::time::{Duration, Instant};

use lbd::kernel::memory::MemoryKernel;
use serde_json::{json, Value};

const SECRET: &str = "bench-secret-0123456789abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

async fn start(dir: &std::path::Path, name: &str, me: u16, peer: u16) -> lbd::daemon::Running {
    let secret = dir.join(format!("{name}.secret"));
    std::fs::write(&secret, SECRET).expect("secret");
    let cfg = lbd::daemon::ServerConfig {
        peer: Some(lbd::peer::PeerConfig {
            peers: vec![format!("127.0.0.1:{peer}")],
            listen: format!("127.0.0.1:{me}").parse().expect("addr"),
            key: lbd::peer::read_key(&secret).expect("key"),
            catch_up: Duration::from_secs(3),
        }),
        tls: None,
        db: dir.join(format!("{name}.db")),
        http_listen: "127.0.0.1:0".parse().expect("addr"),
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        node_name: name.into(),
        resync_interval: Duration::from_secs(3600),
        limits: Default::default(),
        notifier: None,
        auth: Default::default(),
    };
    lbd::daemon::start_with_kernel(cfg, Box::new(MemoryKernel::default()))
        .await
        .expect("start")
}

/// Waits until `r`'s committed revision is at least `rev`.
async fn seen(r: &lbd::daemon::Running, rev: u64) {
    let mut w = r.service.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(60), w.wait_for(|s| s.revision >= rev)).await;
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn big_config() -> Value {
    const SERVICES: usize = 2_277;
    const DESTS: usize = 37_205;
    let vss: Vec<Value> = (0..SERVICES)
        .map(|i| {
            let n = if i < DESTS - SERVICES * 16 { 17 } else { 16 };
            json!({"address": format!("10.{}.{}.{}", 10 + i / 62_500, (i / 250) % 250, i % 250 + 1),
                   "port": 80, "scheduler": "wlc",
                   "real_servers": (0..n).map(|j| {
                       let k = i * 17 + j;
                       json!({"address": format!("172.{}.{}.{}", 16 + k / 62_500, (k / 250) % 250, k % 250 + 1)})
                   }).collect::<Vec<_>>()})
        })
        .collect();
    json!({"virtual_servers": vss})
}

/// `n` weight edits on `a`'s first real server; the latencies to `b`.
async fn edits(
    c: &reqwest::Client,
    a: &lbd::daemon::Running,
    b: &lbd::daemon::Running,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let base = format!("http://{}", a.http_addr);
    let cfg: Value = c
        .get(format!("{base}/api/v1/config"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let vs = cfg["virtual_servers"][0]["id"].as_i64().unwrap_or(0);
    let rs = cfg["virtual_servers"][0]["real_servers"][0]["id"]
        .as_i64()
        .unwrap_or(0);
    let (mut from_ack, mut from_send) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t0 = Instant::now();
        let r: Value = c
            .patch(format!(
                "{base}/api/v1/virtual-servers/{vs}/real-servers/{rs}"
            ))
            .header("content-type", "application/merge-patch+json")
            .body(json!({"weight": 2 + (i % 50)}).to_string())
            .send()
            .await
            .expect("patch")
            .json()
            .await
            .expect("json");
        let acked = Instant::now();
        let rev = a.service.snapshot().revision;
        let _ = r;
        seen(b, rev).await;
        from_ack.push(acked.elapsed());
        from_send.push(t0.elapsed());
    }
    (from_ack, from_send)
}

fn report(what: &str, mut ack: Vec<Duration>, mut send: Vec<Duration>) {
    println!(
        "{what:<44} n={:<4} ack->peer p50 {:>7.2} ms  p99 {:>7.2} ms   request->peer p50 {:>7.2} ms  p99 {:>7.2} ms",
        ack.len(),
        pct(&mut ack, 0.5),
        pct(&mut ack, 0.99),
        pct(&mut send, 0.5),
        pct(&mut send, 0.99)
    );
}

fn main() {
    let n: usize = std::env::var("LBD_BENCH_EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pa, pb) = (free_port(), free_port());
        let a = start(dir.path(), "lk01", pa, pb).await;
        let b = start(dir.path(), "lk02", pb, pa).await;
        let c = reqwest::Client::new();
        let base = format!("http://{}", a.http_addr);
        let r = c
            .post(format!("{base}/api/v1/virtual-servers"))
            .body(
                json!({"address": "192.168.10.100", "port": 80,
                       "real_servers": [{"address": "192.168.10.103"}, {"address": "192.168.10.104"}]})
                .to_string(),
            )
            .send()
            .await
            .expect("post");
        assert!(r.status().is_success());
        seen(&b, a.service.snapshot().revision).await;
        println!("peer sync on loopback (two in-process directors, SQLite synchronous=FULL)");
        let (ack, send) = edits(&c, &a, &b, n).await;
        report("single edit, 1 virtual server", ack, send);

        let big = big_config().to_string();
        let t0 = Instant::now();
        let r = c
            .put(format!("{base}/api/v1/config"))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
        let acked = Instant::now();
        seen(&b, a.service.snapshot().revision).await;
        println!(
            "{:<44} PUT {:>7.1} ms, then ack->peer {:>7.1} ms ({} MB of JSON)",
            "whole config, 2,277 / 37,205",
            (acked - t0).as_secs_f64() * 1000.0,
            acked.elapsed().as_secs_f64() * 1000.0,
            big.len() / 1_000_000
        );
        let (ack, send) = edits(&c, &a, &b, n.min(50)).await;
        report("single edit, 2,277 / 37,205 loaded", ack, send);
        let _ = a.shutdown().await;
        let _ = b.shutdown().await;
    });
}
