//! VRRP failover, lbd against keepalived in the same run, in network namespaces (root).
//!
//! Two directors (a: priority 150, b: priority 100) and a client on a bridge. Each director
//! answers UDP probes to VIP:7777 with its own name; the client probes every 10 ms. A trial
//! waits for a steady master a, then at t0 sends SIGTERM or SIGKILL to a's VRRP process, or
//! takes a's switch port down ("host dead"), and measures t0 -> the first reply from b.
//!
//! Then a soak: two lbd directors at v3 10 ms for LBD_VRRP_SOAK_SECS (default 600) with both
//! cores busy; every transition of b to master while a lives is a false takeover (split
//! brain). keepalived gets the same soak for LBD_VRRP_SOAK_KEEPALIVED_SECS (default 60).
//!
//! `cargo bench --bench vrrp` (env LBD_VRRP_TRIALS, default 5; LBD_VRRP_ONLY=failover|soak).
//! Prints a report; asserts nothing.

#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "../tests/support/vrrp.rs"]
mod vrrp;

use std::fs::File;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::Topology;
use vrrp::{holds_vip, wait_for, Conf, Director, Keepalived, VIP};

const PORT: u16 = 7777;

fn enter(t: &Topology, host: &str) -> File {
    File::open(format!("/run/netns/{}", t.ns(host))).expect("namespace file")
}

fn setns(f: &File) {
    // SAFETY: setns on the calling thread only.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Answers probes with `name` from inside `host`, until `stop`.
fn responder(t: &Topology, host: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let ns = enter(t, host);
    let name = host.to_string();
    std::thread::spawn(move || {
        setns(&ns);
        let s = UdpSocket::bind(("0.0.0.0", PORT)).expect("bind responder");
        s.set_read_timeout(Some(Duration::from_millis(50))).ok();
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(name.as_bytes(), from);
            }
        }
    })
}

type Replies = Arc<Mutex<Vec<(Instant, String)>>>;

/// Probes VIP:7777 every 10 ms from `client`; records every reply with its arrival time.
fn prober(t: &Topology, stop: Arc<AtomicBool>, replies: Replies) -> JoinHandle<()> {
    let ns = enter(t, "client");
    std::thread::spawn(move || {
        setns(&ns);
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind prober");
        s.set_nonblocking(true).ok();
        let mut buf = [0u8; 64];
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let _ = s.send_to(b"probe", (VIP, PORT));
            next += Duration::from_millis(10);
            // Busy-ish wait for replies until the next probe is due.
            while Instant::now() < next {
                match s.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        let who = String::from_utf8_lossy(&buf[..n]).into_owned();
                        if let Ok(mut r) = replies.lock() {
                            r.push((Instant::now(), who));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    Sigterm,
    Sigkill,
    PortDown,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Impl {
    Lbd,
    Keepalived,
}

enum Node {
    Lbd(Director),
    Keepalived(Keepalived),
}

impl Node {
    fn start(i: Impl, t: &Topology, host: &str, dir: &std::path::Path, c: &Conf) -> Node {
        match i {
            Impl::Lbd => Node::Lbd(Director::start(t, host, dir, c)),
            Impl::Keepalived => Node::Keepalived(Keepalived::start(t, host, dir, c)),
        }
    }
    fn term(&mut self) {
        match self {
            Node::Lbd(d) => d.term(),
            Node::Keepalived(k) => k.term(),
        }
    }
    fn kill(&mut self) {
        match self {
            Node::Lbd(d) => d.kill(),
            Node::Keepalived(k) => k.kill(),
        }
    }
}

/// One failover; `None` when b never answered within the limit.
fn trial(i: Impl, version: u8, advert: f64, kill: Event, n: usize) -> Option<Duration> {
    let name = format!("bv{n}");
    let mut t = Topology::new(&name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t.add_host("client", "192.168.10.50/24");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Conf::new("da", 150, version, advert);
    let cb = Conf::new("db", 100, version, advert);
    let stop = Arc::new(AtomicBool::new(false));
    let replies: Replies = Arc::default();
    let threads = vec![
        responder(&t, "a", stop.clone()),
        responder(&t, "b", stop.clone()),
        prober(&t, stop.clone(), replies.clone()),
    ];
    let mut a = Node::start(i, &t, "a", dir.path(), &ca);
    let _b = Node::start(i, &t, "b", dir.path(), &cb);
    // Steady: a holds the VIP and has answered for a while, b is backup (not holding it).
    let steady = Duration::from_secs_f64((advert * 4.0).max(0.5));
    let ok = (|| {
        wait_for("a to hold the VIP", Duration::from_secs(20), || {
            (holds_vip(&t, "a") && !holds_vip(&t, "b")).then_some(())
        });
        std::thread::sleep(steady);
        let r = replies.lock().ok()?;
        let last = r.last()?;
        (last.1 == "a" && last.0.elapsed() < Duration::from_millis(100)).then_some(())
    })();
    if ok.is_none() {
        eprintln!("  trial {n}: no steady master a; skipped");
        stop.store(true, Ordering::Relaxed);
        return None;
    }
    let t0 = Instant::now();
    match kill {
        Event::Sigterm => a.term(),
        Event::Sigkill => a.kill(),
        Event::PortDown => t.set_port("a", false),
    }
    let limit = Duration::from_secs_f64(advert * 4.0 + 5.0);
    let got = loop {
        let first_b = replies.lock().ok().and_then(|r| {
            r.iter()
                .find(|(at, who)| *at > t0 && who == "b")
                .map(|x| x.0)
        });
        if let Some(at) = first_b {
            break Some(at - t0);
        }
        if t0.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        let _ = th.join();
    }
    got
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i.min(s.len() - 1)]
}

fn failover(trials: usize) {
    println!("## Failover: signal to first reply via the new master (client probes every 10 ms)\n");
    println!("| config | event | impl | trials | median ms | p99 (max) ms | min ms | lost |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut n = 0;
    for (label, version, advert, reps) in [
        ("v2 advert 1 s", 2u8, 1.0, trials.min(3)),
        ("v3 100 ms", 3, 0.1, trials),
        ("v3 10 ms", 3, 0.01, trials * 2),
    ] {
        for kill in [Event::Sigterm, Event::Sigkill, Event::PortDown] {
            for imp in [Impl::Keepalived, Impl::Lbd] {
                let mut got = Vec::new();
                let mut lost = 0;
                for _ in 0..reps {
                    n += 1;
                    match trial(imp, version, advert, kill, n) {
                        Some(d) => got.push(d),
                        None => lost += 1,
                    }
                }
                if got.is_empty() {
                    println!("| {label} | {kill:?} | {imp:?} | {reps} | - | - | - | {lost} |");
                    continue;
                }
                println!(
                    "| {label} | {kill:?} | {imp:?} | {reps} | {} | {} | {} | {lost} |",
                    ms(percentile(&got, 0.5)),
                    ms(percentile(&got, 1.0)),
                    ms(percentile(&got, 0.0)),
                );
            }
        }
    }
    println!();
}

/// Keeps every core busy at normal priority until `stop`.
fn burn(stop: Arc<AtomicBool>) -> Vec<JoinHandle<()>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (0..cores * 2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x: u64 = 1;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100_000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect()
}

fn soak(i: Impl, secs: u64) {
    let mut t = Topology::new("soak");
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Conf::new("da", 150, 3, 0.01);
    let cb = Conf::new("db", 100, 3, 0.01);
    let a = Node::start(i, &t, "a", dir.path(), &ca);
    let b = Node::start(i, &t, "b", dir.path(), &cb);
    wait_for("a to hold the VIP", Duration::from_secs(20), || {
        (holds_vip(&t, "a") && !holds_vip(&t, "b")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let count = |node: &Node| -> u64 {
        match node {
            Node::Lbd(d) => d.group(&t)["counters"]["became_master"]
                .as_u64()
                .unwrap_or(0),
            Node::Keepalived(k) => k.log_text().matches("Entering MASTER STATE").count() as u64,
        }
    };
    let b0 = count(&b);
    let stop = Arc::new(AtomicBool::new(false));
    let burners = burn(stop.clone());
    let start = Instant::now();
    let mut vip_on_b = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        if holds_vip(&t, "b") {
            vip_on_b += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in burners {
        let _ = h.join();
    }
    let false_takeovers = count(&b) - b0;
    println!(
        "| {i:?} | {secs} s | {} | {false_takeovers} | {vip_on_b} |",
        match &a {
            Node::Lbd(d) => d.status(&t)["vrrp"]["scheduling"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            Node::Keepalived(_) => "normal (default)".into(),
        }
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP: the VRRP benchmark needs root (network namespaces)");
        return;
    }
    let trials = std::env::var("LBD_VRRP_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let only = std::env::var("LBD_VRRP_ONLY").unwrap_or_default();
    if only.is_empty() || only == "failover" {
        failover(trials);
    }
    if only.is_empty() || only == "soak" {
        let secs = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        println!("## Soak at v3 10 ms, all cores busy: false takeovers\n");
        println!("| impl | duration | advert thread | false takeovers | VIP seen on b (of 2 samples/s) |");
        println!("|---|---|---|---|---|");
        soak(Impl::Lbd, secs("LBD_VRRP_SOAK_SECS", 600));
        soak(Impl::Keepalived, secs("LBD_VRRP_SOAK_KEEPALIVED_SECS", 60));
    }
}
