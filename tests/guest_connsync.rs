//! Issue #24, the test: established connections survive failover and failback with IPVS
//! connection sync, in the guest kernel. The classic pair's topology (tests/guest_pair.rs):
//! lk01 (.101) and lk02 (.102) run lbd with peer sync, configured through lk01 by importing
//! both directors' keepalived.conf with `lvs_sync_daemon eth0 VI_1`; web01 (.103) and web02
//! (.104) are DR real servers that stream each connection at a limited rate for as long as the
//! client reads; the client (.105) keeps `STREAMS` such transfers open through the VIP while
//! (each step's transfers start before the event and end `AFTER` past it, so every one of them
//! spans it however long the guest takes):
//!
//! - A. lk01 (master) crashes: SIGKILL and its switch port down; lk02 takes over.
//! - B. lk01 "reboots" (its VIP, sync daemons and lbd gone, so it knows none of the
//!   connections opened meanwhile) and comes back: it starts its daemons, holds preemption
//!   until its backup daemon has received the connections (the failback gate,
//!   src/dataplane/failback.rs), then preempts back.
//! - C. lk01 (master again) is stopped with SIGTERM; lk02 takes over.
//! - D. lk01's lbd restarts (its kernel's daemons kept running) and preempts back.
//! - E. as B, with `failback_hold_ms` 0: the control (no failback rule).
//!
//! A transfer survives when it reads without an error up to its end, and data still flows at
//! the end. A-D are asserted, E (the control) reported. Also reported: who sent the resets the
//! client got (a director's stack answering a packet its IPVS did not know, or a real server). Also checked: `ipvsadm -L
//! --daemon` agrees with lbd's status on both directors, the connections came by sync
//! (`/proc/net/ip_vs_conn_sync` as the status counts them), and a daemon stopped behind lbd's
//! back is restarted. A report table is printed (`-- --nocapture`). Runs inside the guest
//! (see tests/README.md); every namespace is the test's own.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::Topology;
use vrrp::{holds_vip, keepalived_available, wait_for, Director, LBD, VIP};

/// Concurrent transfers per scenario.
const STREAMS: usize = 8;
/// Each transfer: chunks of `CHUNK` bytes, one every `EVERY` (4 KiB every 10 ms: about
/// 400 KiB/s in small writes, so the client ACKs some hundred times a second through the
/// director and the kernel's master daemon sends each connection again well within a second:
/// it queues a connection at its 3rd packet and every 50th after, net.ipv4.vs.sync_threshold
/// `3 50`).
const CHUNK: usize = 4 * 1024;
const EVERY: Duration = Duration::from_millis(10);
/// A transfer goes on this long after its step's event (the new master holding the VIP).
const AFTER: Duration = Duration::from_secs(5);
/// A transfer that received nothing for this long at its end has stalled (a connection whose
/// packets go nowhere is not reset, it hangs).
const STALL: Duration = Duration::from_secs(2);
/// The server ends a stream after this long whatever happens (only a leak guard).
const STREAM_MAX: Duration = Duration::from_secs(180);
/// Only to catch a hang.
const HANG: Duration = Duration::from_secs(60);

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

fn keepalived_conf(node: &str, master: bool, priority: u8) -> String {
    let real = |addr: &str| {
        format!(
            "    real_server {addr} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_port 80\n            connect_timeout 0.3\n            retry 0\n        }}\n    }}\n"
        )
    };
    format!(
        "! director {node}\n\nglobal_defs {{\n   router_id {node}\n   vrrp_version 3\n   lvs_sync_daemon eth0 VI_1\n}}\n\n\
         vrrp_instance VI_1 {{\n    state {}\n    interface eth0\n    virtual_router_id 1\n    priority {priority}\n    advert_int 0.5\n    virtual_ipaddress {{\n        {VIP}\n    }}\n}}\n\n\
         virtual_server {VIP} 80 {{\n    delay_loop 0.5\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\n{}{}}}\n",
        if master { "MASTER" } else { "BACKUP" },
        real("192.168.10.103"),
        real("192.168.10.104"),
    )
}

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

fn sh(t: &Topology, host: &str, args: &[&str]) -> String {
    let out = t.exec(host, args);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A streaming HTTP server on port 80 in a host's namespace: each request is answered with
/// chunks of `CHUNK` bytes at `EVERY` until the client closes (at most `STREAM_MAX`). A health
/// check (connect, close) is just closed.
struct Streamer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Streamer {
    fn start(t: &Topology, host: &str) -> Streamer {
        let listener = t.in_host(host, || TcpListener::bind("0.0.0.0:80").expect("bind 80"));
        listener.set_nonblocking(true).expect("O_NONBLOCK");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let stop3 = stop2.clone();
                        std::thread::spawn(move || serve(s, &stop3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Streamer {
            stop,
            thread: Some(thread),
        }
    }
}

fn serve(mut s: TcpStream, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(n @ 1..) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            _ => return,
        }
    }
    let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
    if s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").is_err() {
        return;
    }
    let chunk = vec![b'x'; CHUNK];
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < STREAM_MAX {
        if stop.load(Ordering::SeqCst) || s.write_all(&chunk).is_err() {
            return;
        }
        next += EVERY;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `STREAMS` transfers from the client through the VIP, each on a thread in the client's
/// namespace, until [`Transfers::end`]; each one's outcome is `Ok(bytes)` when it read without
/// an error and data still flowed at its end.
struct Transfers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<usize, String>>>,
}

impl Transfers {
    fn start(t: &Topology) -> Transfers {
        let path = format!("/run/netns/{}", t.ns("client"));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..STREAMS)
            .map(|_| {
                let path = path.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    enter(&path);
                    transfer(&stop)
                })
            })
            .collect();
        // Every transfer connected and streaming before the step's event.
        std::thread::sleep(Duration::from_secs(3));
        Transfers { stop, threads }
    }

    /// Lets the transfers run `AFTER` more, then ends them.
    fn end(self) -> Vec<Result<usize, String>> {
        std::thread::sleep(AFTER);
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    }
}

fn enter(path: &str) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).expect("namespace file");
    // SAFETY: setns on the calling thread only (a thread this test started for it).
    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Client source ports, one new each transfer: no transfer meets an IPVS connection entry an
/// earlier one left (a director keeps them for minutes, and one pointing at the other real
/// server would send the new transfer there).
static PORT: AtomicU16 = AtomicU16::new(20_000);

fn transfer(stop: &AtomicBool) -> Result<usize, String> {
    let addr: SocketAddr = format!("{VIP}:80").parse().map_err(|e| format!("{e}"))?;
    let port = PORT.fetch_add(1, Ordering::SeqCst);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    let local: SocketAddr = format!("0.0.0.0:{port}")
        .parse()
        .map_err(|e| format!("{e}"))?;
    sock.bind(&local.into()).map_err(|e| format!("bind: {e}"))?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {VIP}\r\n\r\n").as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0usize;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {n} bytes")),
            Ok(k) => {
                n += k;
                last = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("{e} after {n} bytes")),
        }
    }
    let quiet = last.elapsed();
    if quiet > STALL {
        return Err(format!(
            "stalled: nothing for {} ms at the end, after {n} bytes",
            quiet.as_millis()
        ));
    }
    Ok(n)
}

fn survivors(r: &[Result<usize, String>]) -> usize {
    r.iter().filter(|x| x.is_ok()).count()
}

fn failures(r: &[Result<usize, String>]) -> String {
    let f: Vec<&String> = r.iter().filter_map(|x| x.as_ref().err()).collect();
    if f.is_empty() {
        "-".into()
    } else {
        format!("{f:?}")
    }
}

/// `ipvsadm -L --daemon` in `host`.
fn daemons_text(t: &Topology, host: &str) -> String {
    sh(t, host, &["ipvsadm", "-L", "--daemon"])
}

/// lbd's status of the sync daemons agrees with `ipvsadm -L --daemon`: each running daemon of
/// the status is a line `ROLE sync daemon (mcast=IF, syncid=N, maxlen=M, group=G, port=P,
/// ttl=T)`, and there is no other line.
fn agree(t: &Topology, d: &Director) -> Result<(), String> {
    let text = daemons_text(t, &d.host);
    let st = d.status(t);
    let cs = &st["dataplane"]["connection_sync"];
    let mut lines = 0;
    for dm in cs["daemons"].as_array().cloned().unwrap_or_default() {
        if dm["state"] != "running" {
            continue;
        }
        lines += 1;
        let want = format!(
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
            dm["role"].as_str().unwrap_or("?"),
            dm["interface"].as_str().unwrap_or("?"),
            dm["sync_id"],
            dm["maxlen"],
            dm["group"].as_str().unwrap_or("?"),
            dm["port"],
            dm["ttl"]
        );
        if !text.contains(&want) {
            return Err(format!(
                "{}: status says `{want}`, ipvsadm says:\n{text}",
                d.host
            ));
        }
    }
    let theirs = text.lines().filter(|l| l.contains("sync daemon")).count();
    if theirs != lines {
        return Err(format!(
            "{}: {lines} running in the status, {theirs} in ipvsadm:\n{text}",
            d.host
        ));
    }
    Ok(())
}

fn both_running(t: &Topology, d: &Director) -> bool {
    let st = d.status(t);
    let ds = st["dataplane"]["connection_sync"]["daemons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ds.len() == 2
        && ds
            .iter()
            .all(|x| x["state"] == "running" && x["reason"].is_null())
}

fn synced(t: &Topology, d: &Director) -> (u64, u64) {
    let st = d.status(t);
    let c = &st["dataplane"]["connection_sync"]["connections"];
    (
        c["total"].as_u64().unwrap_or(0),
        c["synced"].as_u64().unwrap_or(0),
    )
}

/// Resets the client receives during a step, with the sender's MAC named as a host: the
/// director whose stack answered a packet IPVS did not take, or a real server that got a
/// packet of a connection it never had (`tcpdump -e` in the client's namespace).
struct ResetWatch {
    child: std::process::Child,
    file: std::path::PathBuf,
}

impl ResetWatch {
    fn start(t: &Topology, dir: &Path, step: &str) -> ResetWatch {
        let file = dir.join(format!("rst-{step}.txt"));
        let out = std::fs::File::create(&file).expect("rst file");
        let child = Command::new("ip")
            .args(["netns", "exec", &t.ns("client")])
            .args(["tcpdump", "-i", "eth0", "-e", "-nn", "-l", "-U"])
            // Only the resets the client receives: its own at the end (it closes with data
            // unread) are not news.
            .arg("dst host 192.168.10.105 and tcp[tcpflags] & tcp-rst != 0")
            .stdout(std::process::Stdio::from(out))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tcpdump");
        ResetWatch { child, file }
    }

    /// "N resets from HOST, ..." ("none" when there were none).
    fn stop(mut self, t: &Topology) -> String {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        let macs: Vec<(String, String)> = ["lk01", "lk02", "web01", "web02", "client"]
            .iter()
            .map(|h| {
                let l = sh(t, h, &["cat", "/sys/class/net/eth0/address"]);
                (l.trim().to_string(), h.to_string())
            })
            .collect();
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for line in text.lines() {
            let src = line.split_whitespace().nth(1).unwrap_or("?").to_string();
            let who = macs
                .iter()
                .find(|(m, _)| *m == src)
                .map(|(_, h)| h.clone())
                .unwrap_or(src);
            *counts.entry(who).or_default() += 1;
        }
        if counts.is_empty() {
            "none".into()
        } else {
            counts
                .iter()
                .map(|(h, n)| format!("{n} from {h}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// The returning director's failback gate as its status shows it.
fn gate(t: &Topology, d: &Director) -> String {
    let st = d.status(t);
    let f = &st["dataplane"]["connection_sync"]["failback"];
    format!(
        "gate {} ({}) after {} ms with {} by sync",
        f["state"].as_str().unwrap_or("?"),
        f["reason"].as_str().unwrap_or("-"),
        f["waited_ms"],
        f["synced"]
    )
}

struct Row {
    step: &'static str,
    survived: usize,
    timing: String,
    failures: String,
    /// Who sent the resets the client got ([`ResetWatch`]).
    resets: String,
}

/// A crash of lk01 as the network sees it: lbd killed, its switch port down.
fn crash(t: &Topology, a: &mut Director) {
    a.kill();
    t.set_port("lk01", false);
}

/// lk01 as after a reboot: no VIP, no sync daemons (so none of the connections opened while it
/// was away), back on the network, lbd started.
fn reboot(t: &Topology, a: &mut Director) -> Duration {
    let _ = sh(
        t,
        "lk01",
        &["ip", "addr", "del", &format!("{VIP}/32"), "dev", "eth0"],
    );
    let _ = sh(t, "lk01", &["ipvsadm", "--stop-daemon", "master"]);
    let _ = sh(t, "lk01", &["ipvsadm", "--stop-daemon", "backup"]);
    assert!(
        !daemons_text(t, "lk01").contains("sync daemon"),
        "lk01's daemons stopped"
    );
    t.set_port("lk01", true);
    let started = Instant::now();
    a.spawn(t);
    // What lk01's table holds of the transfers while it waits to preempt.
    let mut seen = Vec::new();
    wait_for("lk01 to preempt", HANG, || {
        let text = sh(t, "lk01", &["cat", "/proc/net/ip_vs_conn_sync"]);
        let by_sync = text
            .lines()
            .filter(|l| l.contains("ESTABLISHED") && l.to_lowercase().contains(" sync "))
            .count();
        seen.push(format!("{} ms: {by_sync}", started.elapsed().as_millis()));
        (a.state(t) == "master").then_some(())
    });
    eprintln!(
        "lk01 after its start, established connections by sync: {}",
        seen.join(", ")
    );
    eprintln!(
        "lk01 as it became master:\n{}",
        sh(t, "lk01", &["ipvsadm", "-L", "-n", "-c"])
    );
    started.elapsed()
}

#[test]
fn established_connections_survive_failover_and_failback() {
    if !in_guest("established_connections_survive_failover_and_failback") {
        return;
    }
    if !netns::privileged("guest_connsync") {
        return;
    }
    let _ = Command::new("modprobe").arg("ip_vs").status();
    let mut t = Topology::new("gsync");
    t.add_host("lk01", "192.168.10.101/24");
    t.add_host("lk02", "192.168.10.102/24");
    t.add_host("web01", "192.168.10.103/24");
    t.add_host("web02", "192.168.10.104/24");
    t.add_host("client", "192.168.10.105/24");
    for web in ["web01", "web02"] {
        lbd(&t, web, &["realserver", "up", "--vip", VIP]);
    }
    let _w1 = Streamer::start(&t, "web01");
    let _w2 = Streamer::start(&t, "web02");

    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "the-sync-secret-0123456789abcdef\n").expect("secret");
    let secret = secret.to_str().expect("path").to_string();
    let peer = |me: &str, other: &str| -> Vec<String> {
        vec![
            "--peer".into(),
            format!("{other}:7946"),
            "--peer-listen".into(),
            format!("{me}:7946"),
            "--peer-secret-file".into(),
            secret.clone(),
        ]
    };
    let (pa, pb) = (
        peer("192.168.10.101", "192.168.10.102"),
        peer("192.168.10.102", "192.168.10.101"),
    );
    let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
    let pb: Vec<&str> = pb.iter().map(String::as_str).collect();
    let mut a = Director::start_bare(&t, "lk01", dir.path(), "lk01", &pa);
    let b = Director::start_bare(&t, "lk02", dir.path(), "lk02", &pb);
    for (node, master, prio) in [("lk01", true, 150), ("lk02", false, 100)] {
        let path = dir.path().join(format!("{node}.conf"));
        std::fs::write(&path, keepalived_conf(node, master, prio)).expect("conf");
        let said = lbd(
            &t,
            "lk01",
            &[
                "import-keepalived",
                path.to_str().unwrap_or_default(),
                "--node-name",
                node,
                "--url",
                "http://127.0.0.1:8080",
            ],
        );
        eprintln!("import {node}: {}", said.trim());
    }
    let rev = a.status(&t)["revision"].as_u64().unwrap_or(0);
    wait_for("lk02 to get the config", HANG, || {
        (b.status(&t)["revision"].as_u64() == Some(rev)).then_some(())
    });
    a.wait_state(&t, "master", HANG);
    b.wait_state(&t, "backup", HANG);
    wait_for("lk01 to hold the VIP", HANG, || {
        holds_vip(&t, "lk01").then_some(())
    });
    for d in [&a, &b] {
        wait_for(&format!("{}'s sync daemons", d.host), HANG, || {
            both_running(&t, d).then_some(())
        });
        agree(&t, d).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{}: {}", d.host, daemons_text(&t, &d.host).trim());
    }
    // The import said sync id = VI_1's VRID (1).
    assert!(daemons_text(&t, "lk02").contains("backup sync daemon (mcast=eth0, syncid=1,"));

    let mut rows = Vec::new();

    // A. Crash of the master.
    let w = ResetWatch::start(&t, dir.path(), "A");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let (total, by_sync) = synced(&t, &b);
    eprintln!("lk02 before the crash: {total} connections, {by_sync} by sync");
    assert!(
        by_sync >= STREAMS as u64,
        "lk02 has the transfers by sync: {total} connections, {by_sync} by sync"
    );
    let t0 = Instant::now();
    crash(&t, &mut a);
    b.wait_state(&t, "master", HANG);
    let took = t0.elapsed();
    let r = x.end();
    rows.push(Row {
        step: "A crash of lk01 (SIGKILL, port down)",
        survived: survivors(&r),
        timing: format!("lk02 master after {} ms", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // B. lk01 reboots and preempts back.
    let w = ResetWatch::start(&t, dir.path(), "B");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let rebooted_at = vrrp::now_unix_ms();
    let took = reboot(&t, &mut a);
    b.wait_state(&t, "backup", HANG);
    // The gate opened because the stream was in, not at its bound.
    let opened = gate(&t, &a);
    assert!(opened.contains("open (stream_received)"), "{opened}");
    // ... and said so in its events, once since the reboot.
    let ev: Vec<serde_json::Value> = a
        .events(&t)
        .into_iter()
        .filter(|e| {
            e["type"] == "failback_gate_opened"
                && e["time_unix_ms"]
                    .as_u64()
                    .is_some_and(|ms| ms >= rebooted_at)
        })
        .collect();
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["reason"], "stream_received", "{ev:#?}");
    let r = x.end();
    rows.push(Row {
        step: "B lk01 rebooted, preempts back (failback gate, hold 3000 ms)",
        survived: survivors(&r),
        timing: format!(
            "lk01 master {} ms after its start; {}",
            took.as_millis(),
            gate(&t, &a)
        ),
        failures: failures(&r),
        resets: w.stop(&t),
    });
    for d in [&a, &b] {
        wait_for(&format!("{}'s sync daemons", d.host), HANG, || {
            both_running(&t, d).then_some(())
        });
        agree(&t, d).unwrap_or_else(|e| panic!("{e}"));
    }

    // C. SIGTERM of the master.
    let w = ResetWatch::start(&t, dir.path(), "C");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    a.term();
    b.wait_state(&t, "master", HANG);
    let took = t0.elapsed();
    assert!(
        daemons_text(&t, "lk01").contains("backup sync daemon"),
        "lbd's stop leaves the daemons running"
    );
    let r = x.end();
    rows.push(Row {
        step: "C SIGTERM of lk01",
        survived: survivors(&r),
        timing: format!("lk02 master after {} ms", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // D. lk01's lbd restarts (the kernel's daemons kept running) and preempts back.
    let w = ResetWatch::start(&t, dir.path(), "D");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    a.spawn(&t);
    a.wait_state(&t, "master", HANG);
    let took = t0.elapsed();
    b.wait_state(&t, "backup", HANG);
    let r = x.end();
    rows.push(Row {
        step: "D lk01's lbd restarted, preempts back",
        survived: survivors(&r),
        timing: format!(
            "lk01 master {} ms after its start; {}",
            took.as_millis(),
            gate(&t, &a)
        ),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // Drift: `ipvsadm --stop-daemon master` behind lbd's back on lk02; the periodic pass
    // (every 10 s) starts it again.
    let repairs = b.status(&t)["dataplane"]["drift_repairs"]
        .as_u64()
        .unwrap_or(0);
    sh(&t, "lk02", &["ipvsadm", "--stop-daemon", "master"]);
    // Not checked gone here: a pass that comes right after the stop has it back before a
    // look could see it gone (seen once in CI). The repair counted below says lbd found it
    // missing.
    let t0 = Instant::now();
    wait_for("lk02's master daemon to be restarted", HANG, || {
        daemons_text(&t, "lk02")
            .contains("master sync daemon (mcast=eth0, syncid=1,")
            .then_some(())
    });
    let drift_ms = t0.elapsed().as_millis();
    wait_for("the repair to be counted", HANG, || {
        (b.status(&t)["dataplane"]["drift_repairs"]
            .as_u64()
            .unwrap_or(0)
            > repairs)
            .then_some(())
    });
    agree(&t, &b).unwrap_or_else(|e| panic!("{e}"));

    // E. The control: B without the failback rule (failback_hold_ms 0, set through lk02 and
    // replicated; the VRRP engine reads it when lbd starts).
    let (code, v) = b.api(
        &t,
        "PUT",
        "/api/v1/connection-sync",
        Some(
            serde_json::json!({"interface": "eth0", "sync_id": 1, "vrrp_group": "VI_1",
                                "failback_hold_ms": 0}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    let rev = b.status(&t)["revision"].as_u64().unwrap_or(0);
    wait_for("lk01 to get the hold", HANG, || {
        (a.status(&t)["revision"].as_u64() == Some(rev)).then_some(())
    });
    crash(&t, &mut a);
    b.wait_state(&t, "master", HANG);
    std::thread::sleep(Duration::from_secs(2));
    let w = ResetWatch::start(&t, dir.path(), "E");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let took = reboot(&t, &mut a);
    let r = x.end();
    let control = survivors(&r);
    rows.push(Row {
        step: "E as B without the hold (control)",
        survived: control,
        timing: format!("lk01 master {} ms after its start", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    eprintln!(
        "\n| step | transfers survived (of {STREAMS}) | timing | resets | failures |\n|---|---|---|---|---|"
    );
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} |",
            r.step, r.survived, r.timing, r.resets, r.failures
        );
    }
    eprintln!("| drift: master daemon stopped on lk02 | - | restarted after {drift_ms} ms | - |\n");
    log_tail(dir.path());

    // Failover (A, C) and failback (B, D) keep every connection. E is the control: without
    // the gate the returning director preempts before it has the connections, and resets them.
    for r in &rows[..4] {
        assert_eq!(
            r.survived, STREAMS,
            "{}: {} (resets: {})",
            r.step, r.failures, r.resets
        );
    }
}

/// keepalived (full: VRRP and the checker, which programs IPVS and runs `lvs_sync_daemon`) in a
/// namespace.
struct Keepalived {
    host: String,
    conf: String,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl Keepalived {
    fn start(t: &Topology, host: &str, dir: &Path, conf: &str) -> Keepalived {
        let mut k = Keepalived {
            host: host.into(),
            conf: conf.into(),
            dir: dir.to_path_buf(),
            child: None,
        };
        k.spawn(t);
        k
    }

    fn spawn(&mut self, t: &Topology) {
        let p = |s: &str| {
            self.dir
                .join(format!("{}-{s}", self.host))
                .to_string_lossy()
                .into_owned()
        };
        let log = std::fs::File::create(p("keepalived.log")).expect("log");
        let err = log.try_clone().expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &t.ns(&self.host)])
            .args([
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--no-syslog",
                "--use-file",
                &self.conf,
                "--pid",
                &p("k.pid"),
                "--vrrp_pid",
                &p("v.pid"),
                "--checkers_pid",
                &p("c.pid"),
            ])
            .stdout(std::process::Stdio::from(log))
            .stderr(std::process::Stdio::from(err))
            .spawn()
            .expect("keepalived");
        self.child = Some(child);
    }

    fn signal(&mut self, sig: i32) {
        if let Some(mut c) = self.child.take() {
            // keepalived runs a parent with VRRP and checker children: for a crash, stop the
            // parent first (it would respawn them), kill the children, then the parent.
            if sig == libc::SIGKILL {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(c.id() as i32, libc::SIGSTOP) };
                let _ = Command::new("pkill")
                    .args(["-KILL", "-P", &c.id().to_string()])
                    .output();
            }
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// The anchor: the same steps with keepalived's `lvs_sync_daemon` (the master daemon on the
/// VRRP master, the backup daemon on the backup, switched on transitions). Measured and
/// reported, not asserted: it is keepalived's behaviour, not lbd's.
#[test]
fn anchor_keepalived_lvs_sync_daemon() {
    if !in_guest("anchor_keepalived_lvs_sync_daemon") {
        return;
    }
    if !netns::privileged("guest_connsync") || !keepalived_available("guest_connsync") {
        return;
    }
    let _ = Command::new("modprobe").arg("ip_vs").status();
    let mut t = Topology::new("gsyncka");
    t.add_host("lk01", "192.168.10.101/24");
    t.add_host("lk02", "192.168.10.102/24");
    t.add_host("web01", "192.168.10.103/24");
    t.add_host("web02", "192.168.10.104/24");
    t.add_host("client", "192.168.10.105/24");
    for web in ["web01", "web02"] {
        lbd(&t, web, &["realserver", "up", "--vip", VIP]);
    }
    let _w1 = Streamer::start(&t, "web01");
    let _w2 = Streamer::start(&t, "web02");
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = |node: &str, master: bool, prio: u8| {
        let path = dir.path().join(format!("{node}.conf"));
        std::fs::write(&path, keepalived_conf(node, master, prio)).expect("conf");
        path.to_string_lossy().into_owned()
    };
    let mut a = Keepalived::start(&t, "lk01", dir.path(), &conf("lk01", true, 150));
    let _b = Keepalived::start(&t, "lk02", dir.path(), &conf("lk02", false, 100));
    wait_for("lk01 to hold the VIP", HANG, || {
        holds_vip(&t, "lk01").then_some(())
    });
    wait_for("keepalived's daemons", HANG, || {
        (daemons_text(&t, "lk01").contains("master sync daemon")
            && daemons_text(&t, "lk02").contains("backup sync daemon"))
        .then_some(())
    });
    wait_for("both tables", HANG, || {
        ["lk01", "lk02"]
            .iter()
            .all(|h| sh(&t, h, &["ipvsadm", "-Ln"]).matches("Route").count() == 2)
            .then_some(())
    });
    eprintln!(
        "keepalived: lk01 {} / lk02 {}",
        daemons_text(&t, "lk01").trim(),
        daemons_text(&t, "lk02").trim()
    );
    let mut rows = Vec::new();
    let tr = &t;
    let vip_at = move |h: &'static str| move || holds_vip(tr, h).then_some(());

    // A. Crash of the master.
    let w = ResetWatch::start(&t, dir.path(), "kA");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    a.signal(libc::SIGKILL);
    t.set_port("lk01", false);
    wait_for("lk02 to hold the VIP", HANG, vip_at("lk02"));
    let took = t0.elapsed();
    let r = x.end();
    rows.push(Row {
        step: "A crash of lk01 (SIGKILL, port down)",
        survived: survivors(&r),
        timing: format!("lk02 holds the VIP after {} ms", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // B. lk01 reboots and preempts back.
    let w = ResetWatch::start(&t, dir.path(), "kB");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let _ = sh(
        &t,
        "lk01",
        &["ip", "addr", "del", &format!("{VIP}/32"), "dev", "eth0"],
    );
    let _ = sh(&t, "lk01", &["ipvsadm", "--stop-daemon", "master"]);
    let _ = sh(&t, "lk01", &["ipvsadm", "--stop-daemon", "backup"]);
    let _ = sh(&t, "lk01", &["ipvsadm", "-C"]);
    t.set_port("lk01", true);
    let t0 = Instant::now();
    a.spawn(&t);
    wait_for("lk01 to hold the VIP", HANG, vip_at("lk01"));
    let took = t0.elapsed();
    let r = x.end();
    rows.push(Row {
        step: "B lk01 rebooted, preempts back",
        survived: survivors(&r),
        timing: format!("lk01 holds the VIP {} ms after its start", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // C. SIGTERM of the master.
    std::thread::sleep(Duration::from_secs(2));
    let w = ResetWatch::start(&t, dir.path(), "kC");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    a.signal(libc::SIGTERM);
    wait_for("lk02 to hold the VIP", HANG, vip_at("lk02"));
    let took = t0.elapsed();
    let r = x.end();
    rows.push(Row {
        step: "C SIGTERM of lk01",
        survived: survivors(&r),
        timing: format!("lk02 holds the VIP after {} ms", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    // D. keepalived restarted on lk01, preempts back.
    let w = ResetWatch::start(&t, dir.path(), "kD");
    let x = Transfers::start(&t);
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    a.spawn(&t);
    wait_for("lk01 to hold the VIP", HANG, vip_at("lk01"));
    let took = t0.elapsed();
    let r = x.end();
    rows.push(Row {
        step: "D keepalived restarted on lk01, preempts back",
        survived: survivors(&r),
        timing: format!("lk01 holds the VIP {} ms after its start", took.as_millis()),
        failures: failures(&r),
        resets: w.stop(&t),
    });

    eprintln!(
        "\nkeepalived (anchor)\n| step | transfers survived (of {STREAMS}) | timing | resets | failures |\n|---|---|---|---|---|"
    );
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} |",
            r.step, r.survived, r.timing, r.resets, r.failures
        );
    }
}

fn log_tail(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let sync: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains("connection sync"))
                    .collect();
                if !sync.is_empty() {
                    eprintln!("{}:\n{}", p.display(), sync.join("\n"));
                }
            }
        }
    }
}
