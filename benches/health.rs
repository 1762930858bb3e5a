//! Health-check throughput and memory: TCP checks per second on ONE core against 10,000 loopback
//! listeners, and memory per checked real server. Prints a report; asserts nothing.
//!
//! `cargo bench --bench health` (env LBD_BENCH_SECS, default 5; LBD_BENCH_SERVERS, default 10000).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd::dataplane::health::{attempt, CheckSpec, Probe};

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

/// A listener whose accept queue is full: SYNs to it are dropped, so a connect times out (a dead
/// host, without sending anything off this machine).
fn black_hole() -> (std::os::fd::OwnedFd, std::net::TcpStream, SocketAddr) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on descriptors we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as u16;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        assert_eq!(
            libc::bind(
                fd,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32
            ),
            0
        );
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        libc::getsockname(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len);
        let addr = SocketAddr::from(([127, 0, 0, 1], u16::from_be(sa.sin_port)));
        // One connection fills the queue of a backlog-0 listener.
        let filler = std::net::TcpStream::connect(addr).expect("filler");
        (owned, filler, addr)
    }
}

/// Detection time: a real checker task (as the actor runs it) watches a server that fails at a
/// random point of its delay_loop; the time from the failure to the Down verdict.
fn detection(
    rt: &tokio::runtime::Runtime,
    name: &str,
    delay_loop_ms: u32,
    timeout_ms: u32,
    retry: u32,
    dbr_ms: u32,
    refuse: bool,
) {
    let bound = delay_loop_ms + timeout_ms * (retry + 1) + dbr_ms * retry;
    let mut times = Vec::new();
    for trial in 0..5u64 {
        let t = rt.block_on(async {
            // Up: a normal listener. Down: closed (refused) or replaced by a black hole.
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = l.local_addr().expect("addr").port();
            let (tx, mut rx) = tokio::sync::mpsc::channel(4);
            let mut checkers = lbd::dataplane::health::Checkers::new(tokio::sync::watch::Sender::default(), Default::default(), tx);
            let cfg: lbd::model::Config = serde_json::from_value(serde_json::json!({"virtual_servers": [{
                "id": 1, "address": "10.0.0.1", "port": 80, "forwarding": "nat", "delay_loop_ms": delay_loop_ms,
                "real_servers": [{"id": 2 + trial as i64, "address": "127.0.0.1", "port": port,
                    "health_check": {"type": "tcp", "connect_timeout_ms": timeout_ms, "retry": retry,
                                     "delay_before_retry_ms": dbr_ms}}]}]})).expect("config");
            checkers.sync(&cfg);
            // Fail at a pseudo-random point of the cycle, after the first round.
            let offset = (trial * 7919 % 1000) as f64 / 1000.0;
            tokio::time::sleep(Duration::from_millis(u64::from(delay_loop_ms)) * 2 + Duration::from_millis(u64::from(delay_loop_ms)).mul_f64(offset)).await;
            let _hole;
            let _kept;
            if refuse {
                drop(l);
            } else {
                // Keep the port bound (no RST) but stop completing handshakes.
                _kept = l;
                let (fd, filler, addr) = black_hole();
                _hole = (fd, filler);
                let mut c = cfg.clone();
                std::sync::Arc::make_mut(&mut c.virtual_servers[0]).real_servers[0].port = Some(addr.port());
                checkers.sync(&c);
            }
            let t0 = Instant::now();
            // The first verdict among the round reports, as the actor takes it.
            let v = loop {
                let r = rx.recv().await.expect("report");
                if let Some(v) = checkers.apply([r]).pop() {
                    break v;
                }
            };
            assert_eq!(v.state, lbd::dataplane::health::state::HealthState::Down);
            t0.elapsed()
        });
        times.push(t);
    }
    times.sort();
    println!(
        "  {name:<52} bound {bound:>5} ms   median {:>7.1} ms   max {:>7.1} ms",
        times[2].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3
    );
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

    println!("  detection time (failure -> Down verdict), 5 trials each:");
    detection(
        &rt,
        "refused, delay_loop 200 ms, timeout 100, retry 2, dbr 50",
        200,
        100,
        2,
        50,
        true,
    );
    detection(
        &rt,
        "black hole, delay_loop 200 ms, timeout 100, retry 2, dbr 50",
        200,
        100,
        2,
        50,
        false,
    );
    detection(
        &rt,
        "black hole, delay_loop 1500 ms, timeout 300, retry 3, dbr 400",
        1500,
        300,
        3,
        400,
        false,
    );

    // Memory: n idle checker tasks (long delay_loop) as the actor runs them.
    let before = rss_kib();
    let board = tokio::sync::watch::Sender::default();
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let kib = rt.block_on(async {
        let mut checkers = lbd::dataplane::health::Checkers::new(board, Default::default(), tx);
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
    // SAFETY: rusage is plain data (all-zero is valid).
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
