//! Control-plane throughput and latency: reads/s and durable writes/s over real HTTP on
//! 127.0.0.1, against a real SQLite file (WAL, synchronous=FULL). Prints a report; asserts nothing.
//!
//! `cargo bench --bench api` (env LBD_BENCH_SECS, default 5 per phase).

use std::time::{Duration, Instant};

use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Phase {
    name: String,
    count: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
}

impl Phase {
    fn print(&mut self) {
        self.lat.sort();
        println!(
            "{:<44} {:>9.0} req/s   p50 {:>8.3} ms   p99 {:>8.3} ms   ({} requests)",
            self.name,
            self.count as f64 / self.elapsed.as_secs_f64(),
            percentile(&self.lat, 0.50).as_secs_f64() * 1e3,
            percentile(&self.lat, 0.99).as_secs_f64() * 1e3,
            self.count
        );
    }
}

/// Runs `conc` client tasks for `secs`; each loops `op` and records its latency.
async fn phase<F, Fut>(name: &str, conc: usize, secs: f64, op: F) -> Phase
where
    F: Fn(reqwest::Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut handles = Vec::new();
    for worker in 0..conc {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut lat = Vec::new();
            let mut i = 0;
            // Bounded by time and by count.
            while Instant::now() < deadline && i < 2_000_000 {
                let t = Instant::now();
                assert!(op(client.clone(), worker, i).await, "request failed");
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("worker"));
    }
    Phase {
        name: name.to_string(),
        count: lat.len(),
        elapsed: start.elapsed(),
        lat,
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; a filter that names something else skips this.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.iter().any(|a| !"api".contains(a.as_str())) {
        return;
    }
    let secs: f64 = std::env::var("LBD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = lbd::daemon::ServerConfig {
        peer: None,
        db: dir.path().join("bench.db"),
        http_listen: "127.0.0.1:0".parse().expect("addr"),
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        node_name: "bench".into(),
        resync_interval: std::time::Duration::from_secs(10),
        limits: Default::default(),
        notifier: None,
        tls: None,
        auth: Default::default(),
    };
    let running = lbd::daemon::start(cfg).await.expect("start");
    let base = format!("http://{}", running.http_addr);
    let client = reqwest::Client::new();

    // A realistic table: 100 virtual servers x 16 real servers with TCP checks.
    let vss: Vec<_> = (0..100u16)
        .map(|i| {
            json!({"address": format!("10.0.{}.{}", i / 250, i % 250 + 1), "port": 80,
                   "real_servers": (0..16).map(|j| json!({"address": format!("10.1.{i}.{}", j + 1),
                       "health_check": {"type": "tcp", "connect_timeout_ms": 3000}})).collect::<Vec<_>>()})
        })
        .collect();
    let r = client
        .put(format!("{base}/api/v1/config"))
        .body(json!({"virtual_servers": vss}).to_string())
        .send()
        .await
        .expect("load");
    assert!(r.status().is_success());
    let cfg: serde_json::Value = client
        .get(format!("{base}/api/v1/config"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let vs_id = cfg["virtual_servers"][0]["id"].as_i64().expect("id");
    let rs_ids: Vec<i64> = cfg["virtual_servers"][0]["real_servers"]
        .as_array()
        .expect("rs")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();

    println!("lbd control-plane benchmark: 100 virtual servers x 16 real servers, {} cores, {secs} s per phase",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    for conc in [1, 8] {
        let b = base.clone();
        let mut p = phase(
            &format!("GET one virtual server (conc {conc})"),
            conc,
            secs,
            move |c, _, _| {
                let url = format!("{b}/api/v1/virtual-servers/{vs_id}");
                async move {
                    c.get(url)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                }
            },
        )
        .await;
        p.print();
    }
    let b = base.clone();
    let mut p = phase(
        "GET whole config, 1,600 real servers (conc 2)",
        2,
        secs,
        move |c, _, _| {
            let url = format!("{b}/api/v1/config");
            async move {
                match c.get(url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    p.print();
    for conc in [1, 8] {
        let b = base.clone();
        let ids = rs_ids.clone();
        let mut p = phase(&format!("PUT real server weight, durable (conc {conc})"), conc, secs, move |c, w, i| {
            let rs = ids[w % ids.len()];
            let url = format!("{b}/api/v1/virtual-servers/{vs_id}/real-servers/{rs}");
            let body = json!({"address": format!("10.1.0.{}", w % ids.len() + 1), "weight": (i % 100) + 2}).to_string();
            async move { c.put(url).body(body).send().await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .await;
        p.print();
    }
    let rev: serde_json::Value = client
        .get(format!("{base}/api/v1/status"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    println!("final revision {}", rev["revision"]);
    running.shutdown().await.expect("shutdown");
}
