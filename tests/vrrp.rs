//! VRRP for real, in network namespaces on the host kernel (root; CI runs these): two lbd
//! directors on a bridge, lbd against keepalived in both directions (v2 with auth, v3), and a
//! client that sees the VIP's MAC move. Nothing leaves the namespaces the tests create.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::{FromPacket, Packet};

use netns::{privileged, Topology};
use vrrp::{holds_vip, keepalived_available, now_unix_ms, wait_for, Conf, Director, Keepalived};

fn two_hosts(name: &str) -> Topology {
    let mut t = Topology::new(name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t
}

/// The last transition of a group status: (time, from, to, reason in words as `lbd ctl
/// status` and the log give it).
fn last_transition(g: &serde_json::Value) -> (u64, String, String, String) {
    let t = g["transitions"]
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .unwrap_or_default();
    let reason = serde_json::from_value::<lbd::control::events::VrrpReason>(t["reason"].clone())
        .map(|r| r.describe(t["detail"].as_str()))
        .unwrap_or_else(|e| format!("unreadable reason {}: {e}", t["reason"]));
    (
        t["time_unix_ms"].as_u64().unwrap_or(0),
        t["from"].as_str().unwrap_or("").into(),
        t["to"].as_str().unwrap_or("").into(),
        reason,
    )
}

const LONG: Duration = Duration::from_secs(10);

/// Samples which of two hosts hold the VIP, as fast as `ip` answers, until stopped. Pass the
/// holder first: it is read before the other each round, so a round that saw neither is a
/// real moment without the address (the holder let it go before the other had it), never an
/// artefact of the order.
struct VipSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<(Instant, bool, bool)>>>,
}

impl VipSampler {
    fn start(t: &Topology, a: &str, b: &str) -> VipSampler {
        let (na, nb) = (t.ns(a), t.ns(b));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let holds = |ns: &str| {
            let out = std::process::Command::new("ip")
                .args(["-n", ns, "-o", "-4", "addr", "show", "dev", "eth0"])
                .output()
                .expect("ip");
            String::from_utf8_lossy(&out.stdout).contains(&format!("{}/32", vrrp::VIP))
        };
        let thread = std::thread::spawn(move || {
            let mut v = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let ha = holds(&na);
                let hb = holds(&nb);
                v.push((Instant::now(), ha, hb));
            }
            v
        });
        VipSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns the samples and the longest run of rounds in which neither held it.
    fn finish(mut self) -> (Vec<(Instant, bool, bool)>, Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let v = self
            .thread
            .take()
            .map(|t| t.join().expect("sampler"))
            .unwrap_or_default();
        let (mut worst, mut since) = (Duration::ZERO, None);
        for &(at, ha, hb) in &v {
            match (ha || hb, since) {
                (false, None) => since = Some(at),
                (false, Some(s)) => worst = worst.max(at - s),
                (true, Some(_)) => since = None,
                (true, None) => {}
            }
        }
        (v, worst)
    }
}

impl Drop for VipSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn two_lbd_directors_elect_fail_over_and_preempt_back() {
    if !privileged("two_lbd_directors_elect_fail_over_and_preempt_back") {
        return;
    }
    two_directors("vrrp2", None);
}

/// The same scenario with both directors as the systemd unit runs them: user nobody holding
/// only CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_NICE (packaging/lbd.service).
#[test]
fn two_lbd_directors_with_only_three_capabilities() {
    if !privileged("two_lbd_directors_with_only_three_capabilities") {
        return;
    }
    two_directors("vrrpcap", Some("net_admin,net_raw,sys_nice"));
}

/// Without CAP_SYS_NICE lbd still elects and holds the VIP, and says that its VRRP thread
/// runs with normal scheduling.
#[test]
fn without_sys_nice_vrrp_runs_with_normal_scheduling_and_says_so() {
    if !privileged("without_sys_nice_vrrp_runs_with_normal_scheduling_and_says_so") {
        return;
    }
    let t = two_hosts("nonice");
    let dir = tempfile::tempdir().unwrap();
    let ca = Conf::new("lk01", 150, 3, 0.1);
    let a = Director::start_with(&t, "a", dir.path(), &ca, Some("net_admin,net_raw"));
    a.wait_state(&t, "master", LONG);
    assert!(holds_vip(&t, "a"));
    let status = a.status(&t);
    assert_eq!(status["vrrp"]["scheduling"], "normal", "{status}");
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("CAP_SYS_NICE"),
        "no word of the scheduling in the log:\n{logs}"
    );
}

fn two_directors(name: &str, caps: Option<&'static str>) {
    let t = two_hosts(name);
    let dir = tempfile::tempdir().unwrap();
    let ca = Conf::new("lk01", 150, 3, 0.1);
    let cb = Conf::new("lk02", 100, 3, 0.1);
    let mut a = Director::start_with(&t, "a", dir.path(), &ca, caps);
    let b = Director::start_with(&t, "b", dir.path(), &cb, caps);
    if caps.is_some() {
        // Really user nobody, with exactly CAP_NET_ADMIN (12), CAP_NET_RAW (13) and
        // CAP_SYS_NICE (23) effective: 1<<12 | 1<<13 | 1<<23 = 0x803000.
        let st = a.proc_status();
        assert!(st.contains("\nUid:\t65534\t65534\t65534\t65534\n"), "{st}");
        assert!(st.contains("\nCapEff:\t0000000000803000\n"), "{st}");
    }

    // The higher priority wins and holds the VIP; the backup knows who the master is.
    let ga = a.wait_state(&t, "master", LONG);
    assert_eq!(ga["master_address"], "192.168.10.101");
    let gb = b.wait_state(&t, "backup", LONG);
    wait_for("b to hear a", LONG, || {
        let g = b.group(&t);
        (g["master_address"] == "192.168.10.101" && g["master_priority"] == 150).then_some(())
    });
    assert!(holds_vip(&t, "a"));
    assert!(!holds_vip(&t, "b"));
    assert_eq!(gb["counters"]["auth_errors"], 0);
    // Real time where permitted (root here, but a container's cgroup may deny SCHED_FIFO).
    let status = a.status(&t);
    let sched = status["vrrp"]["scheduling"].as_str().unwrap_or("");
    assert!(sched == "fifo" || sched == "normal", "{status}");
    eprintln!("VRRP thread scheduling: {sched}");
    // `lbd ctl status` tells the operator the same.
    let text = a.status_text(&t);
    assert!(
        text.contains("vrrp: VI_1 vrid 1 v3: MASTER  [eth0 priority 150]  master 192.168.10.101 (priority 150)"),
        "{text}"
    );
    let text = b.status_text(&t);
    assert!(
        text.contains("vrrp: VI_1 vrid 1 v3: BACKUP  [eth0 priority 100]  master 192.168.10.101 (priority 150)"),
        "{text}"
    );
    assert!(text.contains("sync: "), "{text}");

    // SIGTERM: priority 0, so b takes over after its skew time, not a master-down interval;
    // a keeps the VIP until it hears b's advert, so the VIP is never nowhere.
    let sampler = VipSampler::start(&t, "a", "b");
    let before = now_unix_ms();
    a.term();
    let gb = b.wait_state(&t, "master", LONG);
    let (samples, nowhere) = sampler.finish();
    let both = samples.iter().filter(|s| s.1 && s.2).count();
    eprintln!(
        "SIGTERM handover: {} samples, {both} with both holding the VIP, longest without: {nowhere:?}",
        samples.len()
    );
    assert!(samples.len() > 10, "the sampler ran: {}", samples.len());
    assert!(
        samples.iter().any(|s| s.1 && !s.2),
        "a held the VIP after SIGTERM"
    );
    assert!(
        samples.iter().all(|s| s.1 || s.2),
        "a moment without the VIP anywhere (longest {nowhere:?})"
    );
    let (at, from, to, reason) = last_transition(&gb);
    assert_eq!((from.as_str(), to.as_str()), ("backup", "master"));
    assert_eq!(reason, "the master sent priority 0");
    let took = at.saturating_sub(before);
    assert!(
        took < cb.master_down().as_millis() as u64,
        "takeover after SIGTERM took {took} ms"
    );
    assert!(holds_vip(&t, "b"));
    assert!(!holds_vip(&t, "a"), "a released the VIP on SIGTERM");

    // Restart: a has the higher priority and preempts back. a adds the VIP and announces it
    // before its advert makes b let go: again never nowhere.
    let sampler = VipSampler::start(&t, "b", "a");
    a.spawn(&t);
    a.wait_state(&t, "master", LONG);
    let gb = b.wait_state(&t, "backup", LONG);
    wait_for("b to let the VIP go", LONG, || {
        (!holds_vip(&t, "b")).then_some(())
    });
    let (samples, nowhere) = sampler.finish();
    eprintln!(
        "preempt back: {} samples, longest without the VIP: {nowhere:?}",
        samples.len()
    );
    assert!(
        samples.iter().all(|s| s.1 || s.2),
        "a moment without the VIP anywhere on preempt (longest {nowhere:?})"
    );
    let (_, _, _, reason) = last_transition(&gb);
    assert!(
        reason.starts_with("higher-priority master 192.168.10.101"),
        "{reason}"
    );
    wait_for("the VIP back on a only", LONG, || {
        (holds_vip(&t, "a") && !holds_vip(&t, "b")).then_some(())
    });

    // SIGKILL: nothing is sent; b waits a whole master-down interval.
    let before = now_unix_ms();
    a.kill();
    let gb = b.wait_state(&t, "master", LONG);
    let (at, _, _, reason) = last_transition(&gb);
    assert_eq!(reason, "no advert within the master-down interval");
    let took = at.saturating_sub(before);
    // The last advert left at most one interval before the kill.
    let floor = cb.master_down().as_millis() as u64 - 100;
    assert!(
        took + 5 >= floor,
        "takeover after SIGKILL took {took} ms, master-down interval is {:?}",
        cb.master_down()
    );
    assert!(holds_vip(&t, "b"));
    assert!(
        holds_vip(&t, "a"),
        "a killed hard keeps its address until it runs again"
    );

    // The killed director comes back: it drops the stale VIP, then preempts.
    a.spawn(&t);
    a.wait_state(&t, "master", LONG);
    b.wait_state(&t, "backup", LONG);
    wait_for("the VIP on a only", LONG, || {
        (holds_vip(&t, "a") && !holds_vip(&t, "b")).then_some(())
    });
}

#[test]
fn nopreempt_keeps_the_new_master() {
    if !privileged("nopreempt_keeps_the_new_master") {
        return;
    }
    let t = two_hosts("vrrpnp");
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Conf::new("lk01", 150, 3, 0.1);
    ca.preempt = false;
    let mut cb = Conf::new("lk02", 100, 3, 0.1);
    cb.preempt = false;
    let mut a = Director::start(&t, "a", dir.path(), &ca);
    let b = Director::start(&t, "b", dir.path(), &cb);
    a.wait_state(&t, "master", LONG);
    b.wait_state(&t, "backup", LONG);
    a.term();
    b.wait_state(&t, "master", LONG);
    a.spawn(&t);
    a.wait_state(&t, "backup", LONG);
    // Several master-down intervals later, b is still master and a still backup.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(b.state(&t), "master");
    assert_eq!(a.state(&t), "backup");
    let ga = a.group(&t);
    assert_eq!(ga["master_address"], "192.168.10.102");
    assert!(holds_vip(&t, "b") && !holds_vip(&t, "a"));
}

/// lbd and keepalived elect the right master and fail over to each other, both directions.
fn interop(name: &str, version: u8, advert: f64, pass: Option<&str>) {
    let t = two_hosts(name);
    let dir = tempfile::tempdir().unwrap();
    let conf = |id: &str, prio: u8| {
        let mut c = Conf::new(id, prio, version, advert);
        c.auth_pass = pass.map(String::from);
        c
    };
    let limit = Duration::from_secs_f64(advert * 10.0 + 5.0);

    // keepalived is master (higher priority), lbd backup; SIGTERM keepalived -> lbd master.
    let mut k = Keepalived::start(&t, "a", dir.path(), &conf("ka", 150));
    let l = Director::start(&t, "b", dir.path(), &conf("lb", 100));
    wait_for("keepalived to hold the VIP", limit, || {
        holds_vip(&t, "a").then_some(())
    });
    let g = wait_for("lbd to follow keepalived", limit, || {
        let g = l.group(&t);
        (g["state"] == "backup" && g["master_address"] == "192.168.10.101").then_some(g)
    });
    assert_eq!(g["master_priority"], 150);
    assert!(!holds_vip(&t, "b"));
    k.term();
    let g = l.wait_state(&t, "master", limit);
    assert_eq!(last_transition(&g).3, "the master sent priority 0");
    assert!(holds_vip(&t, "b"));
    let g = l.group(&t);
    for c in [
        "auth_errors",
        "checksum_errors",
        "version_errors",
        "packet_errors",
    ] {
        assert_eq!(g["counters"][c], 0, "{c}: {g}");
    }
    drop(l);

    // lbd is master, keepalived backup; SIGTERM lbd -> keepalived master.
    let t = two_hosts(&format!("{name}r"));
    let mut l = Director::start(&t, "a", dir.path(), &conf("la", 150));
    let k = Keepalived::start(&t, "b", dir.path(), &conf("kb", 100));
    l.wait_state(&t, "master", limit);
    wait_for("keepalived to enter BACKUP", limit, || {
        k.log_text().contains("Entering BACKUP STATE").then_some(())
    });
    assert!(holds_vip(&t, "a") && !holds_vip(&t, "b"));
    std::thread::sleep(Duration::from_secs_f64(advert * 5.0));
    assert!(
        !k.log_text().contains("Entering MASTER STATE"),
        "keepalived must not take over from a live lbd:\n{}",
        k.log_text()
    );
    l.term();
    wait_for("keepalived to take over", limit, || {
        (holds_vip(&t, "b") && k.log_text().contains("Entering MASTER STATE")).then_some(())
    });
    assert!(!holds_vip(&t, "a"));
    let log = k.log_text();
    assert!(
        !log.contains("invalid") && !log.contains("authentication"),
        "keepalived complained:\n{log}"
    );
}

#[test]
fn lbd_and_keepalived_v2_with_auth_fail_over_both_ways() {
    if !privileged("lbd_and_keepalived_v2") || !keepalived_available("lbd_and_keepalived_v2") {
        return;
    }
    interop("kav2", 2, 1.0, Some("1234567"));
}

#[test]
fn lbd_and_keepalived_v3_fail_over_both_ways() {
    if !privileged("lbd_and_keepalived_v3") || !keepalived_available("lbd_and_keepalived_v3") {
        return;
    }
    interop("kav3", 3, 0.1, None);
}

#[test]
fn a_wrong_password_is_counted_and_not_obeyed() {
    if !privileged("a_wrong_password") || !keepalived_available("a_wrong_password") {
        return;
    }
    let t = two_hosts("vrrpauth");
    let dir = tempfile::tempdir().unwrap();
    let mut ck = Conf::new("ka", 150, 2, 1.0);
    ck.auth_pass = Some("right".into());
    let mut cl = Conf::new("lb", 100, 2, 1.0);
    cl.auth_pass = Some("wrong".into());
    let _k = Keepalived::start(&t, "a", dir.path(), &ck);
    let l = Director::start(&t, "b", dir.path(), &cl);
    // lbd drops keepalived's adverts (RFC 3768 section 7.1), so it never hears a master.
    let g = l.wait_state(&t, "master", Duration::from_secs(10));
    wait_for("auth errors counted", LONG, || {
        let g = l.group(&t);
        (g["counters"]["auth_errors"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    assert_eq!(g["counters"]["adverts_received"], 0, "{g}");
}

#[test]
fn a_client_sees_the_vip_move_on_the_first_gratuitous_arp() {
    if !privileged("a_client_sees_the_vip_move") {
        return;
    }
    let mut t = two_hosts("vrrpgarp");
    t.add_host("client", "192.168.10.50/24");
    let dir = tempfile::tempdir().unwrap();
    // One GARP, no repeat, no refresh: if the client moves, the first GARP moved it.
    let mut ca = Conf::new("lk01", 150, 3, 0.1);
    ca.garp = Some((1, 0, 0));
    let mut cb = Conf::new("lk02", 100, 3, 0.1);
    cb.garp = Some((1, 0, 0));
    let mut a = Director::start(&t, "a", dir.path(), &ca);
    let b = Director::start(&t, "b", dir.path(), &cb);
    a.wait_state(&t, "master", LONG);
    b.wait_state(&t, "backup", LONG);
    let mac_a = "02:00:00:00:00:01";
    let mac_b = "02:00:00:00:00:02";
    // The client talks to the VIP once, so it has a neighbour entry pointing at a.
    // (A TCP connect to a closed port: a's kernel answers with a reset.)
    let refused = t.in_host("client", || {
        let addr = format!("{}:9", vrrp::VIP).parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .err()
            .map(|e| e.kind())
    });
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    let neigh = || {
        String::from_utf8_lossy(&t.exec("client", &["ip", "neigh", "show", vrrp::VIP]).stdout)
            .into_owned()
    };
    assert!(neigh().contains(mac_a), "{}", neigh());

    let cap = t.capture("client");
    a.term();
    b.wait_state(&t, "master", LONG);
    // No traffic from the client meanwhile: only b's gratuitous ARP can have moved it.
    wait_for(
        "the client's entry to move to b",
        Duration::from_secs(3),
        || neigh().contains(mac_b).then_some(()),
    );
    let frames = cap.stop();
    let garps: Vec<_> = frames
        .iter()
        .filter_map(|f| lbd::kernel::garp::parse_garp(f))
        .filter(|(_, ip)| ip.to_string() == vrrp::VIP)
        .collect();
    assert_eq!(garps.len(), 1, "exactly one gratuitous ARP: {garps:?}");
    assert_eq!(garps[0].0, [2, 0, 0, 0, 0, 2]);
    let g = b.group(&t);
    assert_eq!(g["counters"]["garps_sent"], 1, "{g}");
}

#[test]
fn unicast_peers_elect_and_fail_over_without_multicast() {
    if !privileged("unicast_peers") {
        return;
    }
    let t = two_hosts("vrrpuc");
    let dir = tempfile::tempdir().unwrap();
    let mut ca = Conf::new("lk01", 150, 3, 0.1);
    ca.unicast = Some(("192.168.10.101".into(), "192.168.10.102".into()));
    let mut cb = Conf::new("lk02", 100, 3, 0.1);
    cb.unicast = Some(("192.168.10.102".into(), "192.168.10.101".into()));
    let cap = t.capture("b");
    let mut a = Director::start(&t, "a", dir.path(), &ca);
    let b = Director::start(&t, "b", dir.path(), &cb);
    a.wait_state(&t, "master", LONG);
    wait_for("b to hear a over unicast", LONG, || {
        let g = b.group(&t);
        (g["state"] == "backup" && g["master_address"] == "192.168.10.101").then_some(())
    });
    // Half a second of adverts at 100 ms.
    std::thread::sleep(Duration::from_millis(500));
    a.term();
    let g = b.wait_state(&t, "master", LONG);
    assert_eq!(last_transition(&g).3, "the master sent priority 0");
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop();
    // Every VRRP packet on the wire went to a peer's own address, none to 224.0.0.18.
    let vrrp: Vec<Ipv4Addr> = frames
        .iter()
        .filter_map(|f| EthernetPacket::new(f))
        .filter(|e| e.get_ethertype() == EtherTypes::Ipv4)
        .filter_map(|e| Ipv4Packet::new(e.payload()).map(|ip| ip.from_packet()))
        .filter(|ip| ip.next_level_protocol == IpNextHeaderProtocols::Vrrp)
        .map(|ip| ip.destination)
        .collect();
    assert!(vrrp.len() >= 5, "{} VRRP packets", vrrp.len());
    assert!(
        vrrp.iter()
            .all(|d| d.octets() == [192, 168, 10, 102] || d.octets() == [192, 168, 10, 101]),
        "{vrrp:?}"
    );
}

// ---- in-place edits (#25) ------------------------------------------------------------------------

/// The VRRP adverts among captured frames: (when, source, vrid, priority).
fn adverts(frames: &[(Instant, Vec<u8>)]) -> Vec<(Instant, Ipv4Addr, u8, u8)> {
    frames
        .iter()
        .filter_map(|(at, f)| {
            let e = EthernetPacket::new(f)?;
            if e.get_ethertype() != EtherTypes::Ipv4 {
                return None;
            }
            let ip = Ipv4Packet::new(e.payload())?;
            if ip.get_next_level_protocol() != IpNextHeaderProtocols::Vrrp {
                return None;
            }
            let p = ip.payload();
            Some((*at, ip.get_source(), *p.get(1)?, *p.get(2)?))
        })
        .collect()
}

/// The gratuitous ARPs among captured frames: (sender MAC, address).
fn garps(frames: &[(Instant, Vec<u8>)]) -> Vec<([u8; 6], Ipv4Addr)> {
    frames
        .iter()
        .filter_map(|(_, f)| lbd::kernel::garp::parse_garp(f))
        .collect()
}

/// The longest silence between consecutive adverts.
fn longest_gap(ads: &[(Instant, Ipv4Addr, u8, u8)]) -> Duration {
    ads.windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .max()
        .unwrap_or_default()
}

fn transitions(g: &serde_json::Value) -> usize {
    g["transitions"].as_array().map_or(0, Vec::len)
}

/// The `vrrp_reconfigured` events of a director.
fn reconfigured(d: &Director, t: &Topology) -> Vec<serde_json::Value> {
    d.events(t)
        .into_iter()
        .filter(|e| e["type"] == "vrrp_reconfigured")
        .collect()
}

const A: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const B: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);

/// Two lbd directors, a master at 150 and b backup at 100 (VRRPv3, 100 ms), one gratuitous
/// ARP per burst and no repeat or refresh: any GARP on the wire is news.
fn edit_pair(t: &Topology, dir: &std::path::Path) -> (Director, Director) {
    let mut ca = Conf::new("lk01", 150, 3, 0.1);
    ca.garp = Some((1, 0, 0));
    let mut cb = Conf::new("lk02", 100, 3, 0.1);
    cb.garp = Some((1, 0, 0));
    let a = Director::start(t, "a", dir, &ca);
    let b = Director::start(t, "b", dir, &cb);
    a.wait_state(t, "master", LONG);
    b.wait_state(t, "backup", LONG);
    wait_for("b to hear a", LONG, || {
        let g = b.group(t);
        (g["master_address"] == "192.168.10.101" && g["master_priority"] == 150).then_some(())
    });
    (a, b)
}

/// A priority edit on the master (through the HTTP API) changes nothing on the wire but the
/// advertised priority: no priority-0 advert, no state change, no gratuitous ARP, no gap. A
/// VRID edit restarts the group, and the event says why.
#[test]
fn a_priority_edit_on_the_master_changes_only_the_advertised_priority() {
    if !privileged("a_priority_edit_on_the_master") {
        return;
    }
    let t = two_hosts("vrrpedp");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = edit_pair(&t, dir.path());
    let (ga, gb) = (a.group(&t), b.group(&t));
    let cap = t.capture("b");
    std::thread::sleep(Duration::from_millis(500));
    a.patch_node(&t, serde_json::json!({"priority": 120}));
    wait_for("b to hear the new priority", LONG, || {
        (b.group(&t)["master_priority"] == 120).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let frames = cap.stop_timed();

    let ads: Vec<_> = adverts(&frames).into_iter().filter(|a| a.1 == A).collect();
    let prios: Vec<u8> = ads.iter().map(|a| a.3).collect();
    assert!(ads.len() >= 8, "{prios:?}");
    assert!(!prios.contains(&0), "a priority-0 advert: {prios:?}");
    let first_new = prios
        .iter()
        .position(|&p| p == 120)
        .expect("adverts at 120");
    assert!(first_new > 0, "{prios:?}");
    assert!(
        prios[..first_new].iter().all(|&p| p == 150)
            && prios[first_new..].iter().all(|&p| p == 120),
        "150s, then 120s: {prios:?}"
    );
    let gap = longest_gap(&ads);
    assert!(
        gap < Duration::from_millis(200),
        "{gap:?} without an advert"
    );
    assert!(
        !adverts(&frames).iter().any(|a| a.1 == B),
        "b stayed silent"
    );
    assert_eq!(garps(&frames), vec![], "no gratuitous ARP");

    let (ga2, gb2) = (a.group(&t), b.group(&t));
    assert_eq!(ga2["state"], "master");
    assert_eq!(ga2["priority"], 120);
    assert_eq!(transitions(&ga2), transitions(&ga), "{ga2}");
    assert_eq!(
        ga2["counters"]["became_master"],
        ga["counters"]["became_master"]
    );
    assert_eq!(ga2["counters"]["priority_zero_sent"], 0);
    assert_eq!(ga2["counters"]["garps_sent"], ga["counters"]["garps_sent"]);
    assert_eq!(gb2["state"], "backup");
    assert_eq!(transitions(&gb2), transitions(&gb), "{gb2}");
    assert!(holds_vip(&t, "a") && !holds_vip(&t, "b"));
    let ev = reconfigured(&a, &t);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["group"], "VI_1");
    assert_eq!(ev[0]["in_place"], true);
    assert_eq!(ev[0]["changes"], serde_json::json!(["priority 150→120"]));
    let text = a.status_text(&t);
    assert!(text.contains("MASTER  [eth0 priority 120]"), "{text}");

    // A new VRID cannot be taken in place: the group restarts (priority 0 for VRID 1), and
    // the event says why.
    let cap = t.capture("b");
    a.patch_group(&t, serde_json::json!({"vrid": 2}));
    b.wait_state(&t, "master", LONG);
    wait_for("a to run VRID 2", LONG, || {
        let g = a.group(&t);
        (g["vrid"] == 2 && g["state"] == "master").then_some(())
    });
    let frames = cap.stop_timed();
    let ev = reconfigured(&a, &t);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1]["in_place"], false);
    assert_eq!(ev[1]["vrid"], 1);
    assert_eq!(ev[1]["changes"][0], "vrid 1→2");
    assert!(
        adverts(&frames)
            .iter()
            .any(|&(_, src, vrid, prio)| src == A && vrid == 1 && prio == 0),
        "a stopped VRID 1 with priority 0"
    );
    let (_, _, _, reason) = last_transition(&b.group(&t));
    assert_eq!(reason, "the master sent priority 0");
}

/// An address added to the master's group is added to its interface and announced by
/// gratuitous ARP, alone; nothing fails over. Removed again, it goes, and the VIP stays.
#[test]
fn a_vip_added_to_the_master_is_added_and_announced_without_failover() {
    if !privileged("a_vip_added_to_the_master") {
        return;
    }
    let t = two_hosts("vrrpedv");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = edit_pair(&t, dir.path());
    let (ga, gb) = (a.group(&t), b.group(&t));
    let extra = "192.168.10.99";
    let holds = |host: &str, addr: &str| {
        let out = t.exec(host, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/32 "))
    };
    let vips = ga["virtual_addresses"].clone();
    let mut more = vips.as_array().cloned().unwrap_or_default();
    more.push(format!("{extra}/32").into());

    let cap = t.capture("b");
    std::thread::sleep(Duration::from_millis(300));
    for d in [&a, &b] {
        d.patch_group(&t, serde_json::json!({ "virtual_addresses": more }));
    }
    wait_for("a to hold the new address", LONG, || {
        holds("a", extra).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let frames = cap.stop_timed();
    let g = garps(&frames);
    assert_eq!(
        g,
        vec![([2, 0, 0, 0, 0, 1], extra.parse().unwrap())],
        "one gratuitous ARP, for the new address only"
    );
    assert!(holds_vip(&t, "a") && !holds_vip(&t, "b"));
    assert!(!holds("b", extra));
    let ads: Vec<_> = adverts(&frames);
    assert!(ads.iter().all(|a| a.1 == A && a.3 == 150), "{ads:?}");
    let gap = longest_gap(&ads);
    assert!(
        gap < Duration::from_millis(200),
        "{gap:?} without an advert"
    );
    let (ga2, gb2) = (a.group(&t), b.group(&t));
    assert_eq!(ga2["state"], "master");
    assert_eq!(gb2["state"], "backup");
    assert_eq!(transitions(&ga2), transitions(&ga), "{ga2}");
    assert_eq!(transitions(&gb2), transitions(&gb), "{gb2}");
    assert_eq!(ga2["virtual_addresses"], serde_json::json!(more));
    let ev = reconfigured(&a, &t);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["in_place"], true);
    assert_eq!(
        ev[0]["changes"],
        serde_json::json!([format!("virtual addresses +{extra}/32")])
    );

    // And out again: the address goes, the VIP stays, and nobody is told by ARP.
    let cap = t.capture("b");
    for d in [&a, &b] {
        d.patch_group(&t, serde_json::json!({ "virtual_addresses": vips }));
    }
    wait_for("a to drop the address", LONG, || {
        (!holds("a", extra)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop_timed();
    assert_eq!(garps(&frames), vec![]);
    assert!(holds_vip(&t, "a") && !holds_vip(&t, "b"));
    assert_eq!(a.state(&t), "master");
    assert_eq!(transitions(&a.group(&t)), transitions(&ga));
}

/// Lowering the master's priority below the backup's hands over as RFC 5798 section 6.4.3 has
/// it: the master's adverts carry the lower priority, the backup (preempt) takes over, and the
/// old master becomes backup when it hears it; no priority 0, no silence on the wire.
#[test]
fn lowering_the_master_priority_below_the_backup_hands_over() {
    if !privileged("lowering_the_master_priority") {
        return;
    }
    let t = two_hosts("vrrpedh");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = edit_pair(&t, dir.path());
    let cap = t.capture("b");
    std::thread::sleep(Duration::from_millis(300));
    a.patch_node(&t, serde_json::json!({"priority": 50}));
    let gb = b.wait_state(&t, "master", LONG);
    assert_eq!(last_transition(&gb).3, "preempted a lower-priority master");
    let ga = a.wait_state(&t, "backup", LONG);
    let reason = last_transition(&ga).3;
    assert!(
        reason.starts_with("higher-priority master 192.168.10.102"),
        "{reason}"
    );
    wait_for("the VIP on b only", LONG, || {
        (holds_vip(&t, "b") && !holds_vip(&t, "a")).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop_timed();
    let ads = adverts(&frames);
    assert!(
        !ads.iter().any(|a| a.3 == 0),
        "a priority-0 advert: {ads:?}"
    );
    let from_a: Vec<u8> = ads.iter().filter(|x| x.1 == A).map(|x| x.3).collect();
    assert!(
        from_a.contains(&50),
        "a advertised its new priority: {from_a:?}"
    );
    assert!(ads.iter().filter(|x| x.1 == B).all(|x| x.3 == 100));
    let first_b = ads.iter().position(|x| x.1 == B).expect("adverts from b");
    // a advertised 50 until b's first advert, then fell silent (a few ms allowed for an advert
    // of a's already on its way when b's arrived).
    assert_eq!(ads[first_b - 1].1, A);
    assert_eq!(ads[first_b - 1].3, 50);
    let heard = ads[first_b].0 + Duration::from_millis(20);
    assert!(
        !ads.iter().any(|x| x.1 == A && x.0 > heard),
        "a stopped advertising once it heard b"
    );
    let gap = longest_gap(&ads);
    assert!(
        gap < Duration::from_millis(200),
        "{gap:?} without an advert"
    );
    assert_eq!(ga["counters"]["priority_zero_sent"], 0);
    let ev = reconfigured(&a, &t);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["changes"], serde_json::json!(["priority 150→50"]));
}
