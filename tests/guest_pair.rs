//! Issue #21, the test: the classic two-director pair end to end in the guest kernel. lk01
//! (.101) and lk02 (.102) run lbd with peer sync, configured through lk01 alone by importing
//! both directors' keepalived.conf files (VRRPv3, VIP 192.168.10.100, a DR virtual server with
//! two TCP-checked real servers); web01 (.103) and web02 (.104) are DR real servers prepared by
//! `lbd realserver up --vip`; a client (.105) sends about 100 requests/s, a new connection
//! each, through every step: a graceful stop of the master, its restart and preemption back,
//! a dead real server, a crash with the link down, and a weight changed on the backup while it
//! is master. Functional outcomes are asserted, and that a planned handover (graceful stop,
//! preempt back) fails at most the one request in flight when the client's ARP entry moves;
//! the timings (emulated: the qemu guest) are printed as a report table, bounded only to catch
//! a hang. Runs inside the guest (see
//! tests/README.md); every namespace is the test's own and goes with it.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::Topology;
use vrrp::{holds_vip, now_unix_ms, wait_for, Director, LBD, VIP};

/// VRRPv3 advert interval (s): 0.5 s, as guest_peer (stable in the emulated guest);
/// `LBD_PAIR_ADVERT` (seconds) runs the scenario at another, e.g. 0.1.
fn advert() -> f64 {
    std::env::var("LBD_PAIR_ADVERT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.5)
}
/// Health timing: a round every 0.5 s, one attempt of at most 0.3 s (`retry 0`).
const DELAY_LOOP_MS: u64 = 500;
const CONNECT_TIMEOUT_MS: u64 = 300;
const CHECK_BOUND: Duration = Duration::from_millis(DELAY_LOOP_MS + CONNECT_TIMEOUT_MS);
/// Only to catch a hang: the guest's timings are emulated.
const HANG: Duration = Duration::from_secs(30);
const WEB01: &str = "192.168.10.103:80";
const WEB02: &str = "192.168.10.104:80";

fn in_guest(test: &str) -> bool {
    if std::env::var_os("LBD_IN_GUEST").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("LBD_REQUIRE_GUEST").is_none(),
        "{test} needs the guest kernel"
    );
    eprintln!("SKIP {test}: needs a kernel with IPVS (run tests/run-all)");
    false
}

/// The seed's keepalived.conf shape (tests/data/keepalived/lk01.conf) with this test's values:
/// VRRPv3 with fast adverts and fast health checks.
fn keepalived_conf(node: &str, master: bool, priority: u8) -> String {
    let real = |addr: &str| {
        format!(
            "    real_server {addr} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_port 80\n            connect_timeout {}\n            retry 0\n        }}\n    }}\n",
            CONNECT_TIMEOUT_MS as f64 / 1000.0
        )
    };
    format!(
        "! Configuration File for keepalived (director {node})\n\nglobal_defs {{\n   router_id {node}\n   vrrp_version 3\n}}\n\n\
         vrrp_instance VI_1 {{\n    state {}\n    interface eth0\n    virtual_router_id 1\n    priority {priority}\n    advert_int {}\n    virtual_ipaddress {{\n        {VIP}\n    }}\n}}\n\n\
         virtual_server {VIP} 80 {{\n    delay_loop {}\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\n{}{}}}\n",
        if master { "MASTER" } else { "BACKUP" },
        advert(),
        DELAY_LOOP_MS as f64 / 1000.0,
        real("192.168.10.103"),
        real("192.168.10.104"),
    )
}

fn peer_args(secret: &str, me: &str, other: &str) -> Vec<String> {
    vec![
        "--peer".into(),
        format!("{other}:7946"),
        "--peer-listen".into(),
        format!("{me}:7946"),
        "--peer-secret-file".into(),
        secret.into(),
    ]
}

/// `lbd` with `args` in `host` against the director there; asserts success, returns stdout.
fn lbd(t: &Topology, host: &str, args: &[&str]) -> String {
    let mut a = vec![LBD];
    a.extend_from_slice(args);
    let out = t.exec(host, &a);
    assert!(
        out.status.success(),
        "lbd {} in {host}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny HTTP server on port 80 (all addresses: DR packets arrive for the VIP) in a host's
/// namespace: answers each connection `HTTP/1.0 200 OK` with `name` as the body and closes.
/// Dropping it closes the listening socket, so connections are refused from then on.
struct Web {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Web {
    fn start(t: &Topology, host: &str, name: &'static str) -> Web {
        let listener = t.in_host(host, || {
            TcpListener::bind("0.0.0.0:80").expect("bind port 80")
        });
        listener.set_nonblocking(true).expect("O_NONBLOCK");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let reply = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{name}",
            name.len()
        );
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        // Read the request head (a health check connects and closes: EOF).
                        let mut buf = [0u8; 1024];
                        let mut got = Vec::new();
                        while let Ok(n @ 1..) = s.read(&mut buf) {
                            got.extend_from_slice(&buf[..n]);
                            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                                let _ = s.write_all(reply.as_bytes());
                                break;
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Web {
            stop,
            thread: Some(thread),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Enters `host`'s network namespace on the calling thread (a thread of its own).
fn enter(path: &str) {
    let file = File::open(path).expect("namespace file");
    // SAFETY: setns on the calling thread only (a thread this test started for it), with the
    // namespace file open for the call.
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// One request to the VIP on a new connection from source port `port`: the body, or why not.
fn get(port: u16, connect: Duration, read: Duration) -> Result<String, String> {
    let addr: SocketAddr = format!("{VIP}:80").parse().map_err(|e| format!("{e}"))?;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    let local: SocketAddr = format!("0.0.0.0:{port}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    sock.bind(&local.into()).map_err(|e| format!("bind: {e}"))?;
    sock.connect_timeout(&addr.into(), connect)
        .map_err(|e| format!("connect: {e}"))?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(read)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(read)).map_err(|e| e.to_string())?;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {VIP}\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") => Ok(body.to_string()),
        _ => Err(format!("bad reply {text:?}")),
    }
}

/// One request of the load: when it started and ended, the step it ran in, and the outcome.
#[derive(Debug, Clone)]
struct Shot {
    start: Instant,
    end: Instant,
    step: usize,
    reply: Result<String, String>,
}

/// About 100 requests/s from the client's namespace, each on a new connection (200 ms to
/// connect, 500 ms to answer), tagged with the step the test is in. Source ports go up one by
/// one from 10000 (below the kernel's ephemeral range): IPVS keeps an entry per client
/// address:port for minutes (DR: FIN_WAIT), and a reused port would be sent to the real server
/// of that entry, a dead one included (whose packets IPVS drops), which no step is about. The
/// range wraps after 22,000 requests, more than the test sends.
struct Load {
    stop: Arc<AtomicBool>,
    step: Arc<AtomicUsize>,
    shots: Arc<Mutex<Vec<Shot>>>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    fn start(t: &Topology, host: &str) -> Load {
        let path = format!("/run/netns/{}", t.ns(host));
        let stop = Arc::new(AtomicBool::new(false));
        let step = Arc::new(AtomicUsize::new(0));
        let shots = Arc::new(Mutex::new(Vec::new()));
        let (stop2, step2, shots2) = (stop.clone(), step.clone(), shots.clone());
        let thread = std::thread::spawn(move || {
            enter(&path);
            let every = Duration::from_millis(10);
            let mut next = Instant::now();
            let mut port: u16 = 10_000;
            while !stop2.load(Ordering::SeqCst) {
                let start = Instant::now();
                let step = step2.load(Ordering::SeqCst);
                port = if port >= 31_999 { 10_000 } else { port + 1 };
                let reply = get(port, Duration::from_millis(200), Duration::from_millis(500));
                let end = Instant::now();
                if let Ok(mut v) = shots2.lock() {
                    v.push(Shot {
                        start,
                        end,
                        step,
                        reply,
                    });
                }
                next += every;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
        });
        Load {
            stop,
            step,
            shots,
            thread: Some(thread),
        }
    }

    /// Starts step `n`: the requests from now on count for it.
    fn step(&self, n: usize) {
        self.step.store(n, Ordering::SeqCst);
    }

    fn shots(&self) -> Vec<Shot> {
        self.shots.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn finish(mut self) -> Vec<Shot> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shots()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Per step: requests, failures, and the longest time without a successful reply (from the
/// previous success, possibly in an earlier step, to each success of this step, and from the
/// last one to the step's end).
fn step_stats(shots: &[Shot], step: usize, end: Instant) -> (usize, usize, Duration) {
    let mut last_ok: Option<Instant> = None;
    let (mut n, mut failed, mut gap) = (0, 0, Duration::ZERO);
    let mut seen = false;
    for s in shots {
        if s.step == step {
            seen = true;
            n += 1;
            match &s.reply {
                Ok(_) => {
                    if let Some(l) = last_ok {
                        gap = gap.max(s.end.saturating_duration_since(l));
                    }
                }
                Err(_) => failed += 1,
            }
        }
        if s.step > step {
            break;
        }
        if s.reply.is_ok() {
            last_ok = Some(s.end);
        }
    }
    if let (true, Some(l)) = (seen, last_ok) {
        gap = gap.max(end.saturating_duration_since(l));
    }
    (n, failed, gap)
}

/// The failures of one step by kind: "refused 3, timeout 2".
fn failure_kinds(shots: &[Shot], step: usize) -> String {
    let mut kinds: Vec<(&'static str, usize)> = Vec::new();
    for s in shots.iter().filter(|s| s.step == step) {
        let Err(e) = &s.reply else { continue };
        let k = if e.contains("refused") {
            "refused"
        } else if e.contains("timed out") || e.contains("WouldBlock") || e.contains("temporarily") {
            "timeout"
        } else if e.contains("reset") {
            "reset"
        } else if e.starts_with("bad reply") {
            "empty/bad reply"
        } else {
            "other"
        };
        match kinds.iter_mut().find(|(x, _)| *x == k) {
            Some((_, n)) => *n += 1,
            None => kinds.push((k, 1)),
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ipvsadm -Ln` in a host's namespace.
fn ipvsadm(t: &Topology, host: &str) -> String {
    let out = t.exec(host, &["ipvsadm", "-Ln"]);
    assert!(
        out.status.success(),
        "ipvsadm -Ln in {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The services and real servers of `ipvsadm -Ln` text without the counters:
/// "TCP 192.168.10.100:80 rr", "-> 192.168.10.103:80 Route 1".
fn table(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first() {
                Some(&"TCP") | Some(&"UDP") | Some(&"SCTP") | Some(&"FWM") => Some(w.join(" ")),
                Some(&"->") if w.get(1) != Some(&"RemoteAddress:Port") && w.len() >= 4 => {
                    Some(w[..4].join(" "))
                }
                _ => None,
            }
        })
        .collect()
}

fn want_table(w103: u32, w104: u32) -> Vec<String> {
    vec![
        format!("TCP {VIP}:80 rr"),
        format!("-> {WEB01} Route {w103}"),
        format!("-> {WEB02} Route {w104}"),
    ]
}

/// `/proc/net/ip_vs` of the calling thread's namespace, as `ipvsadm -Ln` would write it.
fn proc_table() -> String {
    let text = std::fs::read_to_string("/proc/thread-self/net/ip_vs").unwrap_or_default();
    let dotted = |hex: &str| -> Option<String> {
        let (a, p) = hex.split_once(':')?;
        let a = u32::from_str_radix(a, 16).ok()?;
        let p = u16::from_str_radix(p, 16).ok()?;
        Some(format!("{}:{p}", std::net::Ipv4Addr::from(a)))
    };
    text.lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match (w.first(), w.get(1).and_then(|h| dotted(h))) {
                (Some(&"->"), Some(d)) => format!("  -> {d} {}\n", w[2..].join(" ")),
                _ => format!("{l}\n"),
            }
        })
        .collect()
}

fn lists(text: &str, rs: &str) -> bool {
    table(text)
        .iter()
        .any(|l| l.starts_with(&format!("-> {rs} ")))
}

/// Watches a director's table (`/proc/net/ip_vs`, every 20 ms, from a thread in its
/// namespace) until `rs` is listed (`listed`) or not; the instant it first saw that.
fn watch(t: &Topology, host: &str, rs: &'static str, listed: bool) -> JoinHandle<Option<Instant>> {
    let path = format!("/run/netns/{}", t.ns(host));
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        enter(&path);
        let end = Instant::now() + HANG;
        let mut first = true;
        loop {
            let met = lists(&proc_table(), rs) == listed;
            let now = Instant::now();
            if first {
                let _ = tx.send(());
                first = false;
            }
            if met {
                return Some(now);
            }
            if now > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let _ = rx.recv_timeout(HANG);
    h
}

/// The time of this director's latest transition to `to` (unix ms), if any.
fn last_transition(t: &Topology, d: &Director, to: &str) -> Option<u64> {
    d.group(t)["transitions"]
        .as_array()?
        .iter()
        .rev()
        .find(|x| x["to"] == to)
        .and_then(|x| x["time_unix_ms"].as_u64())
}

/// Prints a director's events since `since` (unix ms), each with its time after `since`: how
/// a restart went (catch-up, data plane, VRRP).
fn timeline(t: &Topology, d: &Director, since: u64) {
    let (code, v) = d.api(t, "GET", "/api/v1/events?limit=1000", None);
    assert_eq!(code, 200, "{v}");
    for e in v.as_array().cloned().unwrap_or_default() {
        let at = e["time_unix_ms"].as_u64().unwrap_or(0);
        if at >= since {
            let mut e = e.clone();
            if let Some(m) = e.as_object_mut() {
                m.remove("seq");
                m.remove("time_unix_ms");
            }
            eprintln!("  {}: +{} ms {e}", d.host, at - since);
        }
    }
    eprintln!("  {} transitions: {}", d.host, d.group(t)["transitions"]);
}

/// The first lines of a director's newest log (lbd's own account of a start).
fn log_head(dir: &Path, node: &str, lines: usize) {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{node}-")) && n.ends_with(".log"))
                })
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    if let Some(p) = logs.last() {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        for l in text.lines().take(lines) {
            eprintln!("  log {node}: {l}");
        }
    }
}

/// Milliseconds, or "?" when unknown.
fn opt_ms(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One row of the report.
struct Row {
    step: &'static str,
    end: Instant,
    /// Takeover or detection time, as words.
    timing: String,
    /// Whether both directors' tables agreed at the step's end (or why not compared).
    agreement: String,
}

/// Both directors' tables (ipvsadm -Ln) compared: "yes" or what each had.
fn agreement(t: &Topology) -> String {
    let (a, b) = (table(&ipvsadm(t, "lk01")), table(&ipvsadm(t, "lk02")));
    if a == b {
        format!("yes ({} lines)", a.len())
    } else {
        format!("NO: lk01 {a:?} lk02 {b:?}")
    }
}

fn write_conf(dir: &Path, node: &str, master: bool, priority: u8) -> String {
    let path = dir.join(format!("{node}-keepalived.conf"));
    std::fs::write(&path, keepalived_conf(node, master, priority)).expect("write conf");
    path.to_str().expect("path").to_string()
}

#[test]
fn the_classic_pair_end_to_end() {
    if !in_guest("the_classic_pair_end_to_end") {
        return;
    }
    if !netns::privileged("guest_pair") {
        return;
    }
    let _ = Command::new("modprobe").arg("ip_vs").status();
    let mut t = Topology::new("gpair");
    t.add_host("lk01", "192.168.10.101/24");
    t.add_host("lk02", "192.168.10.102/24");
    t.add_host("web01", "192.168.10.103/24");
    t.add_host("web02", "192.168.10.104/24");
    t.add_host("client", "192.168.10.105/24");

    // The real servers: `lbd realserver up` (VIP on lo, ARP sysctls) in their namespaces.
    for web in ["web01", "web02"] {
        let said = lbd(&t, web, &["realserver", "up", "--vip", VIP]);
        eprintln!("{web}: lbd realserver up --vip {VIP}: {}", said.trim());
        let lo = t.exec(web, &["ip", "-o", "-4", "addr", "show", "dev", "lo"]);
        assert!(
            String::from_utf8_lossy(&lo.stdout).contains(&format!("{VIP}/32")),
            "{web}: the VIP on lo"
        );
        let arp = t.exec(web, &["cat", "/proc/sys/net/ipv4/conf/all/arp_ignore"]);
        assert_eq!(String::from_utf8_lossy(&arp.stdout).trim(), "1", "{web}");
    }
    let mut web01 = Web::start(&t, "web01", "web01");
    let _web02 = Web::start(&t, "web02", "web02");

    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "the-pair-secret-0123456789abcdef\n").expect("secret");
    let secret = secret.to_str().expect("path").to_string();
    let a_args = peer_args(&secret, "192.168.10.101", "192.168.10.102");
    let b_args = peer_args(&secret, "192.168.10.102", "192.168.10.101");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut a = Director::start_bare(&t, "lk01", dir.path(), "lk01", &a_args);
    let b = Director::start_bare(&t, "lk02", dir.path(), "lk02", &b_args);

    // The whole configuration goes in through lk01: both directors' keepalived.conf files.
    let url = ["--url", "http://127.0.0.1:8080"];
    for (node, master, prio) in [("lk01", true, 150), ("lk02", false, 100)] {
        let path = write_conf(dir.path(), node, master, prio);
        let said = lbd(
            &t,
            "lk01",
            &[
                &["import-keepalived", &path, "--node-name", node][..],
                &url[..],
            ]
            .concat(),
        );
        eprintln!("import {node}'s file through lk01: {}", said.trim());
    }
    let want = a.status(&t)["revision"].as_u64().unwrap_or(0);
    wait_for("lk02 to get lk01's config", HANG, || {
        (b.status(&t)["revision"].as_u64() == Some(want)).then_some(())
    });

    // 1. lk01 is master and holds the VIP; both tables are the service with both servers.
    a.wait_state(&t, "master", HANG);
    b.wait_state(&t, "backup", HANG);
    wait_for("lk01 to hold the VIP", HANG, || {
        holds_vip(&t, "lk01").then_some(())
    });
    assert!(!holds_vip(&t, "lk02"), "the backup holds no VIP");
    for d in ["lk01", "lk02"] {
        wait_for(&format!("{d}'s table"), HANG, || {
            (table(&ipvsadm(&t, d)) == want_table(1, 1)).then_some(())
        });
    }
    eprintln!(
        "lk01 master with the VIP; both tables:\n{}",
        ipvsadm(&t, "lk02")
    );

    // 2. Eight requests from the client alternate web01/web02.
    let mut replies = Vec::new();
    for _ in 0..8 {
        let out = t.exec(
            "client",
            &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")],
        );
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        replies.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    eprintln!("eight curls: {replies:?}");
    for w in replies.windows(2) {
        assert_ne!(w[0], w[1], "rr alternates: {replies:?}");
    }
    for name in ["web01", "web02"] {
        assert_eq!(
            replies.iter().filter(|r| *r == name).count(),
            4,
            "{replies:?}"
        );
    }

    // 3. The load runs from here on.
    let mut rows: Vec<Row> = Vec::new();
    let load = Load::start(&t, "client");
    load.step(0);
    std::thread::sleep(Duration::from_secs(3));
    rows.push(Row {
        step: "0 steady",
        end: Instant::now(),
        timing: "-".into(),
        agreement: agreement(&t),
    });

    // 4. SIGTERM lk01: lk02 takes over, holds the VIP, sends GARP.
    let garps = b.group(&t)["counters"]["garps_sent"].as_u64().unwrap_or(0);
    load.step(1);
    let sent = now_unix_ms();
    a.term();
    b.wait_state(&t, "master", HANG);
    wait_for("lk02 to hold the VIP", HANG, || {
        holds_vip(&t, "lk02").then_some(())
    });
    let took = last_transition(&t, &b, "master").map(|m| m.saturating_sub(sent));
    eprintln!("lk01 stopped (4):");
    timeline(&t, &b, sent);
    let g = b.group(&t)["counters"]["garps_sent"].as_u64().unwrap_or(0);
    assert!(g > garps, "lk02 sent gratuitous ARP ({garps} → {g})");
    std::thread::sleep(Duration::from_secs(2));
    rows.push(Row {
        step: "4 SIGTERM lk01",
        end: Instant::now(),
        timing: format!("lk02 master after {} ms; {} GARPs", opt_ms(took), g - garps),
        agreement: "lk01 down".into(),
    });

    // 5. lk01 returns: it catches up by sync and preempts back.
    load.step(2);
    let started = now_unix_ms();
    a.spawn(&t);
    let answering = now_unix_ms() - started;
    a.wait_state(&t, "master", HANG);
    b.wait_state(&t, "backup", HANG);
    wait_for("lk01 to hold the VIP", HANG, || {
        holds_vip(&t, "lk01").then_some(())
    });
    assert_eq!(
        a.status(&t)["revision"],
        b.status(&t)["revision"],
        "lk01 caught up"
    );
    let took = last_transition(&t, &a, "master").map(|m| m.saturating_sub(started));
    eprintln!("lk01 restarted (5): answering after {answering} ms");
    timeline(&t, &a, started);
    log_head(dir.path(), "lk01", 40);
    wait_for("lk01's table", HANG, || {
        (table(&ipvsadm(&t, "lk01")) == want_table(1, 1)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    rows.push(Row {
        step: "5 lk01 restarted",
        end: Instant::now(),
        timing: format!(
            "lk01 answers {answering} ms, master {} ms after its start",
            opt_ms(took)
        ),
        agreement: agreement(&t),
    });

    // 6. web01 stops: both tables drop it within the check bound; only web02 answers.
    let (wa, wb) = (
        watch(&t, "lk01", WEB01, false),
        watch(&t, "lk02", WEB01, false),
    );
    load.step(3);
    let stopped = Instant::now();
    web01.halt();
    let (da, db) = (
        wa.join().expect("watch").expect("lk01 drops web01"),
        wb.join().expect("watch").expect("lk02 drops web01"),
    );
    let (da, db) = (da - stopped, db - stopped);
    // The client: from a moment after both dropped it, only web02 answers.
    std::thread::sleep(Duration::from_secs(2));
    let settled = stopped + da.max(db) + Duration::from_millis(500);
    let late: Vec<Shot> = load
        .shots()
        .into_iter()
        .filter(|s| s.step == 3 && s.start > settled)
        .collect();
    assert!(!late.is_empty(), "the load runs");
    // Every reply is web02's and nothing reaches web01's closed port (refused); a request lost
    // otherwise (an emulated hiccup past the 200 ms connect timeout) is counted, not failed.
    let wrong: Vec<&Shot> = late
        .iter()
        .filter(|s| match &s.reply {
            Ok(body) => body != "web02",
            Err(e) => e.contains("refused"),
        })
        .collect();
    assert!(wrong.is_empty(), "only web02 answers: {wrong:?}");
    let lost_late = late.iter().filter(|s| s.reply.is_err()).count();
    let last_bad = load
        .shots()
        .iter()
        .filter(|s| s.step == 3 && s.reply.as_deref() != Ok("web02"))
        .map(|s| s.end - stopped)
        .max();
    rows.push(Row {
        step: "6 web01 stopped",
        end: Instant::now(),
        timing: format!(
            "dropped by lk01 {:.0} ms, lk02 {:.0} ms ({:.0} ms apart; bound {:.0} ms); last non-web02 reply {}; {lost_late} lost after",
            ms(da),
            ms(db),
            ms(da.max(db) - da.min(db)),
            ms(CHECK_BOUND),
            last_bad.map_or("none".into(), |d| format!("{:.0} ms", ms(d)))
        ),
        agreement: agreement(&t),
    });
    let (wa, wb) = (
        watch(&t, "lk01", WEB01, true),
        watch(&t, "lk02", WEB01, true),
    );
    load.step(4);
    let restarted = Instant::now();
    web01 = Web::start(&t, "web01", "web01");
    let (ra, rb) = (
        wa.join().expect("watch").expect("lk01 lists web01 again"),
        wb.join().expect("watch").expect("lk02 lists web01 again"),
    );
    let (ra, rb) = (ra - restarted, rb - restarted);
    wait_for("web01 to answer the client again", HANG, || {
        load.shots()
            .iter()
            .any(|s| s.step == 4 && s.reply.as_deref() == Ok("web01"))
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    rows.push(Row {
        step: "6 web01 restarted",
        end: Instant::now(),
        timing: format!("back in lk01 {:.0} ms, lk02 {:.0} ms", ms(ra), ms(rb)),
        agreement: agreement(&t),
    });

    // 7. SIGKILL lk01 and take its link down: lk02 takes over.
    load.step(5);
    let killed = now_unix_ms();
    a.kill();
    t.set_port("lk01", false);
    b.wait_state(&t, "master", HANG);
    wait_for("lk02 to hold the VIP", HANG, || {
        holds_vip(&t, "lk02").then_some(())
    });
    let took = last_transition(&t, &b, "master").map(|m| m.saturating_sub(killed));
    eprintln!("lk01 killed (7):");
    timeline(&t, &b, killed);
    std::thread::sleep(Duration::from_secs(2));
    rows.push(Row {
        step: "7 SIGKILL lk01, link down",
        end: Instant::now(),
        timing: format!(
            "lk02 master after {} ms (3 x advert + skew = {:.0} ms)",
            opt_ms(took),
            (3.0 * advert() + (256.0 - 100.0) * advert() / 256.0) * 1000.0
        ),
        agreement: "lk01 down".into(),
    });

    // 8. A weight changed through lk02's API while it is master; lk01 returns and has it.
    load.step(6);
    let said = lbd(
        &t,
        "lk02",
        &[
            &[
                "ctl",
                "edit-real",
                &format!("{VIP}:80"),
                "192.168.10.103",
                "-w",
                "3",
            ][..],
            &url[..],
        ]
        .concat(),
    );
    eprintln!("lk02: {}", said.trim());
    wait_for("lk02's table to take the weight", HANG, || {
        (table(&ipvsadm(&t, "lk02")) == want_table(3, 1)).then_some(())
    });
    t.set_port("lk01", true);
    let started = now_unix_ms();
    a.spawn(&t);
    let answering = now_unix_ms() - started;
    a.wait_state(&t, "master", HANG);
    b.wait_state(&t, "backup", HANG);
    wait_for("lk01 to hold the VIP", HANG, || {
        holds_vip(&t, "lk01").then_some(())
    });
    assert!(!holds_vip(&t, "lk02"), "lk02 let the VIP go");
    let took = last_transition(&t, &a, "master").map(|m| m.saturating_sub(started));
    eprintln!("lk01 back (8):");
    timeline(&t, &a, started);
    wait_for("lk01's table to have the new weight", HANG, || {
        (table(&ipvsadm(&t, "lk01")) == want_table(3, 1)).then_some(())
    });
    assert_eq!(a.status(&t)["revision"], b.status(&t)["revision"]);
    std::thread::sleep(Duration::from_secs(2));
    rows.push(Row {
        step: "8 weight on lk02; lk01 back",
        end: Instant::now(),
        timing: format!(
            "lk01 answers {answering} ms, master {} ms after its start; weight 3 synced",
            opt_ms(took)
        ),
        agreement: agreement(&t),
    });
    let shots = load.finish();

    // No flap on the way: lk02 went through exactly the planned states, and the restarted
    // lk01 only from backup to master.
    let states = |d: &Director| -> Vec<String> {
        d.group(&t)["transitions"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|x| x["to"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        states(&b),
        ["backup", "master", "backup", "master", "backup"],
        "lk02's transitions: {}",
        b.group(&t)["transitions"]
    );
    assert_eq!(
        states(&a),
        ["backup", "master"],
        "lk01's transitions: {}",
        a.group(&t)["transitions"]
    );

    // The report (a Markdown table, for the closing note).
    let mut report = format!(
        "\nguest_pair report: qemu guest (emulated timing, debug build), VRRPv3 advert {} s, health delay_loop {DELAY_LOOP_MS} ms + connect_timeout {CONNECT_TIMEOUT_MS} ms, load ~100 req/s (new connection each; 200 ms connect, 500 ms read)\n\n| step | requests | failed | longest gap (ms) | takeover / detection | tables agree |\n|---|---|---|---|---|---|\n",
        advert()
    );
    for (i, r) in rows.iter().enumerate() {
        let (n, failed, gap) = step_stats(&shots, i, r.end);
        let kinds = failure_kinds(&shots, i);
        let failed = if kinds.is_empty() {
            failed.to_string()
        } else {
            format!("{failed} ({kinds})")
        };
        report.push_str(&format!(
            "| {} | {n} | {failed} | {:.0} | {} | {} |\n",
            r.step,
            ms(gap),
            r.timing,
            r.agreement
        ));
    }
    eprintln!("{report}");

    // A planned handover (graceful stop, preempt back) loses nothing but, at most, the one
    // request in flight when the client's ARP entry moves: its SYN went to the old master and
    // its next packet to the new one, whose kernel has the VIP but not that connection and
    // resets it (the load is sequential, so at most one request straddles the move). One CI
    // run saw that request end with an empty reply instead of a reset (step 5, once in five
    // runs; not explained yet). No request times out or is refused: the VIP is never nowhere
    // (the stopped master holds it until the new master's advert, the new master announces
    // before its advert).
    for (i, what) in [
        (1, "graceful stop"),
        (2, "restart and preempt back"),
        (6, "return after a crash and preempt back"),
    ] {
        let failed: Vec<&Shot> = shots
            .iter()
            .filter(|s| s.step == i && s.reply.is_err())
            .collect();
        let straddled = failed
            .iter()
            .filter(|s| {
                s.reply
                    .as_ref()
                    .is_err_and(|e| e.contains("reset") || e.starts_with("bad reply"))
            })
            .count();
        assert!(
            failed.len() == straddled && straddled <= 1,
            "{what}: only the one request in flight at the ARP move may fail (a reset or an empty reply, never a timeout or a refusal): {failed:?}"
        );
    }
    drop(web01);
}
