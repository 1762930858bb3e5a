//! Issue #19's health requirement in a real kernel: a real server that stops answering leaves
//! both directors' IPVS tables within the check bound + 1 s, read with `ipvsadm -Ln` in each
//! director's network namespace (IPVS tables are per namespace, so one guest kernel holds two
//! directors). lk01 and lk02 run lbd with peer sync, configured through lk01 alone; web01 and
//! web02 answer on port 80. Then a real server that only the backup cannot reach: the backup
//! keeps it (it uses the master's verdicts) and lists the disagreement in its status. Runs
//! inside the guest (see tests/README.md); every namespace is the test's own and goes with it.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::Topology;
use serde_json::{json, Value};
use vrrp::{wait_for, Conf, Director};

/// The health check's timing: a round every `DELAY_LOOP_MS`, one attempt of at most
/// `CONNECT_TIMEOUT_MS` (`retry` 0), so a dead server is seen within their sum (see
/// `lbd::dataplane::health`: delay_loop + connect_timeout * (retry + 1)).
const DELAY_LOOP_MS: u64 = 500;
const CONNECT_TIMEOUT_MS: u64 = 300;
const CHECK_BOUND: Duration = Duration::from_millis(DELAY_LOOP_MS + CONNECT_TIMEOUT_MS);
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

/// A TCP server on port 80 in a host's namespace: accepts and closes. Dropping it closes the
/// listening socket, so connections are refused from then on.
struct Web {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Web {
    fn start(t: &Topology, host: &str, addr: &'static str) -> Web {
        let listener = t.in_host(host, move || TcpListener::bind(addr).expect("bind port 80"));
        listener.set_nonblocking(true).expect("O_NONBLOCK");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Web {
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener; returns once it is closed.
    fn stop(mut self) {
        self.halt();
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

/// Whether `ipvsadm -Ln` text lists the real server `rs` ("a.b.c.d:port").
fn lists(table: &str, rs: &str) -> bool {
    table.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.first() == Some(&"->") && w.get(1) == Some(&rs)
    })
}

/// How a [`Sampler`] reads a director's table.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// `ipvsadm -Ln` (the requirement's reading; a few hundred ms per run in the guest).
    Ipvsadm,
    /// `/proc/net/ip_vs` of the namespace, the same table (no process start: a sharper clock).
    Proc,
}

/// `/proc/net/ip_vs` with its hex IPv4 addresses written as `ipvsadm -Ln` writes them.
fn proc_table(text: &str) -> String {
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

/// What a [`Sampler`] saw.
#[derive(Debug)]
struct Sampled {
    /// When the first `ipvsadm -Ln` that met the condition returned.
    met: Option<Instant>,
    /// When the last one that did not meet it started: the change came after this.
    before: Option<Instant>,
    /// `ipvsadm -Ln` runs, and the longest one (the sampling's resolution).
    polls: u32,
    longest: Duration,
    /// The first table that broke `invariant`, if any.
    broken: Option<String>,
}

/// Reads a director's table every 20 ms (`source`) on a thread inside `host`'s namespace (a
/// command inherits the thread's namespace: no `ip netns exec` per poll; `/proc/thread-self/net`
/// is the thread's) until `until` holds for a table, or `stop` is set, or `limit` passes;
/// checks `invariant` on every table.
struct Sampler {
    thread: JoinHandle<Sampled>,
    ready: std::sync::mpsc::Receiver<()>,
}

impl Sampler {
    fn start(
        t: &Topology,
        host: &str,
        source: Source,
        limit: Duration,
        until: impl Fn(&str) -> bool + Send + 'static,
        invariant: impl Fn(&str) -> bool + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> Sampler {
        let path = format!("/run/netns/{}", t.ns(host));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let file = File::open(&path).expect("namespace file");
            // SAFETY: setns on this thread only, with the namespace file open for the call; the
            // thread ends with the sampling.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let end = Instant::now() + limit;
            let mut s = Sampled {
                met: None,
                before: None,
                polls: 0,
                longest: Duration::ZERO,
                broken: None,
            };
            loop {
                let began = Instant::now();
                let text = match source {
                    Source::Ipvsadm => {
                        let out = Command::new("ipvsadm")
                            .arg("-Ln")
                            .output()
                            .expect("ipvsadm");
                        String::from_utf8_lossy(&out.stdout).into_owned()
                    }
                    Source::Proc => proc_table(
                        &std::fs::read_to_string("/proc/thread-self/net/ip_vs")
                            .expect("/proc/thread-self/net/ip_vs"),
                    ),
                };
                let now = Instant::now();
                s.polls += 1;
                s.longest = s.longest.max(now - began);
                if s.polls == 1 {
                    let _ = ready_tx.send(());
                }
                if s.broken.is_none() && !invariant(&text) {
                    s.broken = Some(text.clone());
                }
                if until(&text) {
                    s.met = Some(now);
                    return s;
                }
                s.before = Some(began);
                if stop.load(Ordering::SeqCst) || now > end {
                    return s;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler { thread, ready }
    }

    /// Waits for the first poll (so a change after this is seen from before it).
    fn wait_ready(&self) {
        let _ = self.ready.recv_timeout(Duration::from_secs(30));
    }

    fn join(self) -> Sampled {
        self.thread.join().expect("sampler thread")
    }
}

fn peer0(t: &Topology, d: &Director) -> Value {
    d.status(t)["sync"]["peers"][0].clone()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// When, after `from`, the sampled change happened: after the last poll without it began and by
/// the end of the first poll with it (`ipvsadm -Ln` costs a few hundred ms in the guest).
fn window(r: &Sampled, from: Instant) -> String {
    match r.met {
        Some(m) => format!(
            "{:.0}-{:.0} ms ({} polls, the longest {:.0} ms)",
            ms(r.before
                .map_or(Duration::ZERO, |b| b.saturating_duration_since(from))),
            ms(m - from),
            r.polls,
            ms(r.longest)
        ),
        None => format!("never ({} polls)", r.polls),
    }
}

/// Starts samplers on each director that stop when `rs` is no longer listed (`gone`) or is
/// listed again: lk01's and lk02's `ipvsadm -Ln`, then lk01's and lk02's `/proc/net/ip_vs`.
fn samplers(t: &Topology, rs: &'static str, gone: bool) -> [Sampler; 4] {
    let go = |host: &str, source| {
        let s = Sampler::start(
            t,
            host,
            source,
            Duration::from_secs(30),
            move |table| lists(table, rs) != gone,
            move |table| lists(table, WEB02),
            Arc::new(AtomicBool::new(false)),
        );
        s.wait_ready();
        s
    };
    [
        go("lk01", Source::Ipvsadm),
        go("lk02", Source::Ipvsadm),
        go("lk01", Source::Proc),
        go("lk02", Source::Proc),
    ]
}

/// Joins the four samplers of [`samplers`]; prints when each saw the change after `from`, and
/// asserts that each saw it within `bound` and the two directors within 1 s of each other.
fn judge(what: &str, s: [Sampler; 4], from: Instant, bound: Duration) -> Vec<Sampled> {
    let r: Vec<Sampled> = s.into_iter().map(Sampler::join).collect();
    let names = [
        "lk01 ipvsadm -Ln",
        "lk02 ipvsadm -Ln",
        "lk01 /proc/net/ip_vs",
        "lk02 /proc/net/ip_vs",
    ];
    for (name, r) in names.iter().zip(&r) {
        eprintln!("{what}: {name}: {}", window(r, from));
    }
    let took: Vec<Duration> = names
        .iter()
        .zip(&r)
        .map(|(name, r)| {
            let d = r
                .met
                .unwrap_or_else(|| panic!("{what}: {name} never saw it"))
                - from;
            assert!(d <= bound, "{what}: {name} took {d:?}, the bound {bound:?}");
            d
        })
        .collect();
    for pair in [(0, 1), (2, 3)] {
        let (a, b) = (took[pair.0], took[pair.1]);
        let apart = a.max(b) - a.min(b);
        assert!(
            apart <= Duration::from_secs(1),
            "{what}: {} and {} {apart:?} apart",
            names[pair.0],
            names[pair.1]
        );
    }
    for (name, r) in names.iter().zip(&r) {
        assert!(
            r.broken.is_none(),
            "{what}: web02 left the table ({name}): {:?}",
            r.broken
        );
    }
    r
}

#[test]
fn a_dead_real_server_leaves_both_directors_tables_within_the_check_bound() {
    if !in_guest("a_dead_real_server_leaves_both_directors_tables_within_the_check_bound") {
        return;
    }
    if !netns::privileged("guest_peer") {
        return;
    }
    let _ = Command::new("modprobe").arg("ip_vs").status();
    let mut t = Topology::new("gpeer");
    t.add_host("lk01", "192.168.10.101/24");
    t.add_host("lk02", "192.168.10.102/24");
    t.add_host("web01", "192.168.10.103/24");
    t.add_host("web02", "192.168.10.104/24");
    let web01 = Web::start(&t, "web01", WEB01);
    let _web02 = Web::start(&t, "web02", WEB02);

    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "the-pair-secret-0123456789abcdef\n").expect("secret");
    let secret = secret.to_str().expect("path").to_string();
    let a_args = peer_args(&secret, "192.168.10.101", "192.168.10.102");
    let b_args = peer_args(&secret, "192.168.10.102", "192.168.10.101");
    let a_args: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let a = Director::start_bare(&t, "lk01", dir.path(), "lk01", &a_args);
    let b = Director::start_bare(&t, "lk02", dir.path(), "lk02", &b_args);

    // The whole configuration goes in through lk01: both directors' VRRP settings and the
    // virtual server with its two TCP-checked real servers.
    let mut c1 = Conf::new("lk01", 150, 3, 0.5);
    c1.master = true;
    let c2 = Conf::new("lk02", 100, 3, 0.5);
    a.import(&t, &c1);
    a.import(&t, &c2);
    let check = json!({"type": "tcp", "connect_timeout_ms": CONNECT_TIMEOUT_MS, "retry": 0});
    let vs = json!({
        "address": "192.168.10.100", "port": 80, "delay_loop_ms": DELAY_LOOP_MS,
        "real_servers": [
            {"address": "192.168.10.103", "health_check": check},
            {"address": "192.168.10.104", "health_check": check},
        ]
    });
    let created: Value =
        serde_json::from_str(&a.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs.to_string())))
            .expect("created virtual server");
    let vs_id = created["id"].as_i64().expect("virtual server id");
    let web01_id = created["real_servers"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["address"] == "192.168.10.103"))
        .and_then(|r| r["id"].as_i64())
        .expect("web01's real server id");
    let want = a.status(&t)["revision"].as_u64().unwrap_or(0);
    wait_for("lk02 to get lk01's config", Duration::from_secs(10), || {
        (b.status(&t)["revision"].as_u64() == Some(want)).then_some(())
    });
    a.wait_state(&t, "master", Duration::from_secs(20));
    b.wait_state(&t, "backup", Duration::from_secs(20));

    // Both tables hold the service with both real servers (lk02's came by sync alone).
    for d in ["lk01", "lk02"] {
        wait_for(
            &format!("{d}'s table to list both real servers"),
            Duration::from_secs(20),
            || {
                let table = ipvsadm(&t, d);
                (table.contains("TCP  192.168.10.100:80")
                    && lists(&table, WEB01)
                    && lists(&table, WEB02))
                .then_some(())
            },
        );
    }
    // The backup follows the master's verdicts.
    let p = wait_for(
        "lk02 to see lk01 as master",
        Duration::from_secs(10),
        || {
            let p = peer0(&t, &b);
            (p["master"] == true).then_some(p)
        },
    );
    assert_eq!(p["node"], "lk01", "{p}");
    assert_eq!(p["reachable"], true, "{p}");

    // 1. web01 stops answering: both directors drop it within the check bound + 1 s, within
    //    1 s of each other; web02 stays.
    let bound = CHECK_BOUND + Duration::from_secs(1);
    let s = samplers(&t, WEB01, true);
    let stopped = Instant::now();
    web01.stop();
    judge("web01 stopped, gone", s, stopped, bound);

    // web01 answers again: both bring it back.
    let s = samplers(&t, WEB01, false);
    let restarted = Instant::now();
    let web01 = Web::start(&t, "web01", WEB01);
    judge("web01 restarted, back", s, restarted, bound);

    // 2. Only lk02 cannot reach web01. Its own check says down, but as the backup it keeps
    //    the master's verdict (up) in its table, and its status names the disagreement.
    let stop = Arc::new(AtomicBool::new(false));
    let keeps = |host: &str| {
        let s = Sampler::start(
            &t,
            host,
            Source::Ipvsadm,
            Duration::from_secs(60),
            |_| false,
            |table| lists(table, WEB01) && lists(table, WEB02),
            stop.clone(),
        );
        s.wait_ready();
        s
    };
    let (ka, kb) = (keeps("lk01"), keeps("lk02"));
    let out = t.exec(
        "lk02",
        &["ip", "route", "add", "blackhole", "192.168.10.103/32"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cut = Instant::now();
    let own_down = |h: &Value| {
        h.as_array().is_some_and(|v| {
            v.iter()
                .any(|r| r["real_server_id"] == web01_id && r["state"] == "down")
        })
    };
    let (d, seen) = wait_for(
        "lk02's status to list the disagreement",
        Duration::from_secs(10),
        || {
            let s = b.status(&t);
            let d = s["sync"]["peers"][0]["health_disagreements"].clone();
            let listed = d.as_array().is_some_and(|v| {
                v.iter().any(|x| {
                    x["real_server_id"] == web01_id
                        && x["virtual_server_id"] == vs_id
                        && x["local_up"] == false
                        && x["peer_up"] == true
                })
            });
            (listed && own_down(&s["health"])).then_some((d, cut.elapsed()))
        },
    );
    eprintln!(
        "lk02 cut off from web01: disagreement listed after {:.0} ms: {d}",
        ms(seen)
    );
    // Several more check rounds with lk02's own verdict down: the table does not move.
    std::thread::sleep(CHECK_BOUND * 3);
    stop.store(true, Ordering::SeqCst);
    let (ka, kb) = (ka.join(), kb.join());
    for (host, r) in [("lk01", &ka), ("lk02", &kb)] {
        assert!(
            r.broken.is_none(),
            "{host}'s table lost a real server while only lk02 could not reach web01 ({} polls): {:?}",
            r.polls,
            r.broken
        );
    }
    assert!(
        own_down(&b.status(&t)["health"]),
        "lk02's own check still says down"
    );
    let p = peer0(&t, &b);
    assert_eq!(p["master"], true, "{p}");
    assert_eq!(a.state(&t), "master");
    assert_eq!(b.state(&t), "backup");

    // The route goes: the disagreement clears.
    let out = t.exec(
        "lk02",
        &["ip", "route", "del", "blackhole", "192.168.10.103/32"],
    );
    assert!(out.status.success());
    wait_for("the disagreement to clear", Duration::from_secs(10), || {
        peer0(&t, &b)["health_disagreements"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    drop(web01);
}
