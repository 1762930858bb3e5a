//! Health-check throughput and memory: TCP checks per second on ONE core against 10,000 loopback
//! listeners, and memory per checked real server. Prints a report; asserts nothing.
//!
//! `cargo bench --bench health` (env LBD_BENCH_SECS, default 5; LBD_BENCH_SERVERS, default 10000).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd::health::{attempt, CheckSpec, Probe};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn raise_fd_limit() {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn spec(i: usize, target: SocketAddr) -> CheckSpec {
    CheckSpec {
        virtual_server_id: 1,
        real_server_id: i as i64,
        target,
        probe: Probe::Tcp,
        delay_loop: Duration::from_secs(3600),
        connect_timeout: Duration::from_secs(3),
        retry: 0,
        delay_before_retry: Duration::from_secs(1),
        rise: 1,
        fall: 1,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.iter().any(|a| !"health".contains(a.as_str())) {
        return;
    }
    raise_fd_limit();
    let secs: f64 = std::env::var("LBD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let n: usize = std::env::var("LBD_BENCH_SERVERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);

    // The real servers: n listeners on 127.0.0.1, accepted and closed on their own thread.
    let server_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let addrs: Vec<SocketAddr> = server_rt.block_on(async {
        let mut addrs = Vec::with_capacity(n);
        for _ in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addrs.push(l.local_addr().expect("addr"));
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            });
        }
        addrs
    });
    std::thread::spawn(move || server_rt.block_on(std::future::pending::<()>()));

    // The checker: one thread, one current-thread runtime = one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let specs: Arc<Vec<CheckSpec>> =
        Arc::new(addrs.iter().enumerate().map(|(i, a)| spec(i, *a)).collect());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let (elapsed, cpu) = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let cpu0 = cpu_secs();
        let t = Instant::now();
        // 512 checks in flight at a time, cycling over all n servers.
        let mut tasks = Vec::new();
        for w in 0..512usize {
            let (specs, done, failed) = (specs.clone(), done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    if attempt(&specs[i % specs.len()]).await.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 512;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        (t.elapsed(), cpu_secs() - cpu0)
    });
    let d = done.load(Ordering::Relaxed);
    println!("lbd health-check benchmark: {n} loopback listeners, TCP connect checks on one core");
    println!(
        "  {:.0} checks/s ({} checks, {} failed, {:.1} s); process CPU {:.2} s (checker + listeners)",
        d as f64 / elapsed.as_secs_f64(),
        d,
        failed.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        cpu
    );

    // Memory: n idle checker tasks (long delay_loop) as the actor runs them.
    let before = rss_kib();
    let board = lbd::health::HealthBoard::default();
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let kib = rt.block_on(async {
        let mut checkers = lbd::health::Checkers::new(board, tx);
        let cfg: lbd::model::Config = serde_json::from_value(serde_json::json!({"virtual_servers": [{
            "id": 1, "address": "10.0.0.1", "port": 80, "forwarding": "nat", "delay_loop_ms": 3_600_000,
            "real_servers": addrs.iter().enumerate().map(|(i, a)| serde_json::json!({
                "id": i + 2, "address": a.ip().to_string(), "port": a.port(),
                "health_check": {"type": "tcp"}})).collect::<Vec<_>>()}]}))
        .expect("config");
        let cfg_kib = rss_kib();
        checkers.sync(&cfg);
        tokio::task::yield_now().await;
        let after = rss_kib();
        drop(checkers);
        (cfg_kib, after)
    });
    println!(
        "  memory: {:.2} KiB per checked real server (RSS {} KiB with the config -> {} KiB with {n} checkers; config itself {} KiB)",
        (kib.1.saturating_sub(kib.0)) as f64 / n as f64,
        kib.0,
        kib.1,
        kib.0.saturating_sub(before)
    );
}

fn cpu_secs() -> f64 {
    // SAFETY: rusage is plain data (all-zero is valid); getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
