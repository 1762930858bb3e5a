//! IPVS programming speed, measured inside the guest kernel (tests/guest/run), one mode per
//! fresh guest so neither side inherits the other's kernel state (IPVS keeps deleted destinations
//! in a trash list that slows later adds):
//!
//!   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/tests/guest/cargo-runner cargo bench --bench ipvs -- lbd
//!   ... -- ipvsadm      (the same table through `ipvsadm -R`)
//!   ... -- latency      (one API change to kernel applied, p50/p99, with the table loaded)
//!   cargo bench --bench ipvs -- latency-memory   (the same on the host, in-memory kernel)
//!
//! Which guest (tests/guest/run): `LBD_GUEST_KERNEL=uml` runs kernel code at native speed and
//! is the one to quote for IPVS itself; the default qemu guest emulates the CPU (every figure
//! inflated, the kernel's share most). Both make syscalls and thread wake-ups far dearer than on
//! a real director, so the latency mode also prints the floor of the guest it ran in: an HTTP
//! request that does nothing and a one-row SQLite transaction.
//!
//! The table is the size keepalived's 2.3.0 release notes used: 2,277 virtual servers with
//! 37,205 real servers. Prints a report; asserts nothing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbd::dataplane::desired::{desired_table, Health};
use lbd::dataplane::reconcile::reconcile;
use lbd::kernel::netlink::NetlinkKernel;
use lbd::kernel::Kernel;
use serde_json::{json, Value};

const SERVICES: usize = 2_277;
const DESTS: usize = 37_205;

fn vs_addr(i: usize) -> String {
    format!("10.{}.{}.{}", 10 + i / 62_500, (i / 250) % 250, i % 250 + 1)
}

fn rs_addr(i: usize, j: usize) -> String {
    let n = i * 17 + j;
    format!(
        "172.{}.{}.{}",
        16 + n / 62_500,
        (n / 250) % 250,
        n % 250 + 1
    )
}

/// (service index, real servers): 37,205 = 2,277 x 16 + 773.
fn shape() -> Vec<usize> {
    // LBD_IPVS_SERVICES=N: a small table of N services x 16, to see what the table size costs.
    if let Some(n) = std::env::var("LBD_IPVS_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return vec![16; n];
    }
    (0..SERVICES)
        .map(|i| if i < DESTS - SERVICES * 16 { 17 } else { 16 })
        .collect()
}

fn config_json() -> Value {
    let vss: Vec<Value> = shape()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"address": vs_addr(i), "port": 80, "scheduler": "wlc", "forwarding": "dr",
                   "real_servers": (0..*n).map(|j| json!({"address": rs_addr(i, j)})).collect::<Vec<_>>()})
        })
        .collect();
    json!({"virtual_servers": vss})
}

fn guest_only() -> bool {
    if std::env::var_os("LBD_IN_GUEST").is_none() {
        println!("ipvs benchmark: run it in the guest kernel (see the header of benches/ipvs.rs)");
        return false;
    }
    true
}

fn lbd_cold() {
    let mut cfg: lbd::model::Config = serde_json::from_value(config_json()).expect("config");
    for (i, v) in cfg.virtual_servers.iter_mut().enumerate() {
        let v = std::sync::Arc::make_mut(v);
        v.id = i as i64 + 1;
        v.normalize();
        for (j, r) in v.real_servers.iter_mut().enumerate() {
            r.id = 100_000 + (i * 17 + j) as i64;
        }
    }
    let mut k = NetlinkKernel::new();
    let t0 = Instant::now();
    let desired = desired_table(&cfg, &Health::default());
    let t_desired = t0.elapsed();
    let kernel = k.ipvs_dump().expect("dump");
    let t_dump = t0.elapsed();
    let owned = desired.services.keys().copied().collect();
    let ops = reconcile(&desired, &kernel, &owned);
    let t_diff = t0.elapsed();
    let report = k.ipvs_apply(&ops).expect("apply");
    let total = t0.elapsed();
    assert!(
        report.refused.is_empty(),
        "{:?}",
        &report.refused[..report.refused.len().min(3)]
    );
    let t1 = Instant::now();
    let back = k.ipvs_dump().expect("dump");
    let redump = t1.elapsed();
    println!(
        "lbd cold programming: {} services / {} destinations = {} ops in {} sendmsg calls: {:.3} s \
         (desired {:.3} s, dump {:.3} s, diff {:.3} s, apply {:.3} s); read back: {} destinations \
         in {:.3} s",
        back.services.len(),
        back.dest_count(),
        report.applied,
        report.round_trips,
        total.as_secs_f64(),
        t_desired.as_secs_f64(),
        (t_dump - t_desired).as_secs_f64(),
        (t_diff - t_dump).as_secs_f64(),
        (total - t_diff).as_secs_f64(),
        back.dest_count(),
        redump.as_secs_f64()
    );
    // A restart with nothing to do: dump + diff only.
    let t2 = Instant::now();
    let kernel = k.ipvs_dump().expect("dump");
    let ops = reconcile(&desired_table(&cfg, &Health::default()), &kernel, &owned);
    println!(
        "lbd converged restart: {} ops, {:.3} s (dump + diff)",
        ops.len(),
        t2.elapsed().as_secs_f64()
    );
}

fn ipvsadm_restore() {
    let mut rules = String::new();
    for (i, n) in shape().iter().enumerate() {
        rules.push_str(&format!("-A -t {}:80 -s wlc\n", vs_addr(i)));
        for j in 0..*n {
            rules.push_str(&format!(
                "-a -t {}:80 -r {}:80 -g -w 1\n",
                vs_addr(i),
                rs_addr(i, j)
            ));
        }
    }
    let t0 = Instant::now();
    let mut child = Command::new("ipvsadm")
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()
        .expect("ipvsadm -R");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("write rules");
    let st = child.wait().expect("wait");
    let took = t0.elapsed();
    assert!(st.success());
    let count = std::fs::read_to_string("/proc/net/ip_vs")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim_start().starts_with("->"))
        .count();
    println!(
        "ipvsadm -R cold programming: {SERVICES} services / {} destinations read back: {:.3} s",
        count.saturating_sub(1),
        took.as_secs_f64()
    );
}

/// `memory`: the in-memory kernel instead of IPVS, on any machine: the control path alone.
fn latency(memory: bool) {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel: Box<dyn Kernel> = if memory {
            Box::new(lbd::kernel::memory::MemoryKernel::default())
        } else {
            Box::new(NetlinkKernel::new())
        };
        let running = lbd::daemon::start_with_kernel(
            lbd::daemon::ServerConfig {
                peer: None,
                db: dir.path().join("bench.db"),
                http_listen: "127.0.0.1:0".parse().expect("addr"),
                grpc_listen: "127.0.0.1:0".parse().expect("addr"),
                node_name: "bench".into(),
                resync_interval: Duration::from_secs(3600),
                limits: Default::default(),
                notifier: None,
                tls: None,
                auth: Default::default(),
            },
            kernel,
        )
        .await
        .expect("start");
        let base = format!("http://{}", running.http_addr);
        let client = reqwest::Client::new();
        let mut events = running.service.events().subscribe();
        let t0 = Instant::now();
        let r = client
            .put(format!("{base}/api/v1/config"))
            .body(config_json().to_string())
            .send()
            .await
            .expect("put");
        assert!(r.status().is_success());
        let rev = r.json::<Value>().await.expect("json")["revision"]
            .as_u64()
            .expect("rev");
        wait_applied(&mut events, rev).await;
        let shape = shape();
        println!(
            "lbd via the API: load {} / {} (PUT /api/v1/config -> kernel applied): {:.3} s",
            shape.len(),
            shape.iter().sum::<usize>(),
            t0.elapsed().as_secs_f64()
        );
        let cfg: Value = client
            .get(format!("{base}/api/v1/config"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let vs = &cfg["virtual_servers"][shape.len() / 2];
        let (vs_id, rs) = (
            vs["id"].as_i64().expect("id"),
            vs["real_servers"][3].clone(),
        );
        let url = format!(
            "{base}/api/v1/virtual-servers/{vs_id}/real-servers/{}",
            rs["id"]
        );
        let changes: u32 = std::env::var("LBD_IPVS_CHANGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        // The floor of this machine (or guest) for any HTTP API: a request that does nothing.
        let mut floor = Vec::new();
        for _ in 0..changes {
            let t = Instant::now();
            let r = client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .expect("healthz");
            r.bytes().await.expect("body");
            floor.push(t.elapsed());
        }
        // ... and for any acknowledged SQLite write through sqlx, with the store's settings (WAL,
        // synchronous=FULL) on the same file system: a one-row update in a transaction.
        let mut sql_floor = Vec::new();
        {
            let pool = lbd::control::store::connect(&dir.path().join("floor.db"))
                .await
                .expect("floor db");
            sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
                .execute(&pool)
                .await
                .expect("create");
            for i in 0..changes {
                let t = Instant::now();
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query("INSERT OR REPLACE INTO t VALUES (1, ?1)")
                    .bind(i)
                    .execute(&mut *tx)
                    .await
                    .expect("write");
                tx.commit().await.expect("commit");
                sql_floor.push(t.elapsed());
            }
            pool.close().await;
        }
        let mut lat = Vec::new();
        let mut answered = Vec::new();
        for i in 0..changes {
            let body = json!({"address": rs["address"], "weight": 2 + i % 50}).to_string();
            let t = Instant::now();
            let r = client.put(&url).body(body).send().await.expect("put");
            answered.push(t.elapsed());
            let rev = r.headers()["etag"]
                .to_str()
                .expect("etag")
                .trim_matches('"')
                .parse::<u64>()
                .expect("rev");
            wait_applied(&mut events, rev).await;
            lat.push(t.elapsed());
        }
        // After the answer: the actor's diff and the netlink round trip, per change.
        let mut kernel: Vec<Duration> = lat
            .iter()
            .zip(&answered)
            .map(|(l, a)| l.saturating_sub(*a))
            .collect();
        for v in [
            &mut lat,
            &mut answered,
            &mut floor,
            &mut sql_floor,
            &mut kernel,
        ] {
            v.sort();
        }
        let pct = |v: &[Duration], q: f64| {
            v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
        };
        let line = |v: &[Duration]| {
            format!(
                "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                pct(v, 0.5),
                pct(v, 0.9),
                pct(v, 0.99),
                pct(v, 1.0)
            )
        };
        println!(
            "one API change to kernel applied, table loaded, {changes} changes: {}",
            line(&lat)
        );
        println!(
            "  the API's answer (validated, committed to SQLite): {}",
            line(&answered)
        );
        println!(
            "  after the answer until applied (actor diff + netlink): {}",
            line(&kernel)
        );
        println!(
            "  floor: GET /healthz (an HTTP round trip that does nothing): {}",
            line(&floor)
        );
        println!(
            "  floor: a one-row SQLite transaction through sqlx, same settings: {}",
            line(&sql_floor)
        );
        running.shutdown().await.expect("shutdown");
    });
}

async fn wait_applied(
    events: &mut tokio::sync::broadcast::Receiver<lbd::control::events::Event>,
    rev: u64,
) {
    loop {
        match events.recv().await {
            Ok(e) => {
                if let lbd::control::events::EventKind::DataplaneApplied { revision, .. } = e.kind {
                    if revision >= rev {
                        return;
                    }
                }
                if let lbd::control::events::EventKind::DataplaneDegraded { reason } = e.kind {
                    panic!("data plane degraded: {reason}");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(e) => panic!("events: {e}"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.iter().any(|a| a == "api" || a == "health") {
        return;
    }
    if args.first().map(String::as_str) == Some("latency-memory") {
        println!("(in-memory kernel: the control path alone, on this machine)");
        latency(true);
        return;
    }
    if !guest_only() {
        return;
    }
    // Both sides start with ip_vs loaded, as on a director after boot: the first use of a fresh
    // guest otherwise pays for the module load (a modprobe, about 0.1 s under user-mode-linux),
    // which neither lbd nor ipvsadm does per load.
    let loaded = Command::new("modprobe").arg("ip_vs").status();
    if !matches!(loaded, Ok(s) if s.success()) {
        println!("ipvs benchmark: modprobe ip_vs failed: {loaded:?}");
        return;
    }
    // tests/guest/run passes LBD_* into the guest.
    let guest = std::env::var("LBD_GUEST_KERNEL").unwrap_or_else(|_| "qemu".into());
    println!(
        "(guest: {guest}, kernel {})",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    match args.first().map(String::as_str) {
        Some("lbd") => lbd_cold(),
        Some("ipvsadm") => ipvsadm_restore(),
        Some("latency") => latency(false),
        _ => println!("ipvs benchmark: give a mode: lbd | ipvsadm | latency"),
    }
}
