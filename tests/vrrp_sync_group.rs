//! VRRP sync groups and gratuitous-ARP spacing for real (#25), lbd directors in network
//! namespaces (root): two groups in one `vrrp_sync_group` on two directors; when the tracked
//! interface of one group fails on the master, both groups (both VIPs) move to the backup, and
//! both come back when it recovers; and `vrrp_garp_interval` spaces a new master's gratuitous
//! ARPs on the wire (an AF_PACKET capture in the namespace). Only interfaces inside the
//! namespaces the tests create are touched.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_packet::arp::ArpPacket;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::Packet;
use serde_json::Value;

use netns::{privileged, Topology};
use vrrp::{keepalived_available, wait_for, Director, Keepalived};

const LONG: Duration = Duration::from_secs(10);
const VIP1: &str = "192.168.10.100";
const VIP2: &str = "192.168.10.200";

fn two_hosts(name: &str) -> Topology {
    let mut t = Topology::new(name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t
}

/// `ip` in `host`'s namespace, which must succeed.
fn ip(t: &Topology, host: &str, args: &[&str]) {
    let mut a = vec!["ip"];
    a.extend_from_slice(args);
    let out = t.exec(host, &a);
    assert!(
        out.status.success(),
        "ip {args:?} in {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An up link `name` in `host`'s namespace (a veth pair, both ends there).
fn veth(t: &Topology, host: &str, name: &str) {
    let peer = format!("{name}p");
    ip(
        t,
        host,
        &["link", "add", name, "type", "veth", "peer", "name", &peer],
    );
    ip(t, host, &["link", "set", &peer, "up"]);
    ip(t, host, &["link", "set", name, "up"]);
}

/// keepalived.conf of one director: VI_1 (tracking trk0) and VI_2 in sync group VG_1.
fn sync_conf(node: &str, priority: u8) -> String {
    sync_conf2(node, priority, priority)
}

/// As [`sync_conf`], with VI_1 at `p1` and VI_2 at `p2`.
fn sync_conf2(node: &str, p1: u8, p2: u8) -> String {
    format!(
        r#"global_defs {{
    router_id {node}
    vrrp_version 3
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 1
    priority {p1}
    advert_int 0.1
    track_interface {{
        trk0
    }}
    virtual_ipaddress {{
        {VIP1}
    }}
}}
vrrp_instance VI_2 {{
    state BACKUP
    interface eth0
    virtual_router_id 2
    priority {p2}
    advert_int 0.1
    virtual_ipaddress {{
        {VIP2}
    }}
}}
vrrp_sync_group VG_1 {{
    group {{
        VI_1
        VI_2
    }}
}}
"#
    )
}

fn start(t: &Topology, host: &str, dir: &std::path::Path, node: &str, conf: &str) -> Director {
    let d = Director::start_bare(t, host, dir, node, &[]);
    let path = dir.join(format!("{node}.conf"));
    std::fs::write(&path, conf).expect("write conf");
    let out = d.ctl_raw(
        t,
        &[
            "import-keepalived",
            path.to_str().unwrap_or_default(),
            "--node-name",
            node,
        ],
    );
    assert!(
        out.status.success(),
        "import into {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

/// The status of group `name` on `d`.
fn group(d: &Director, t: &Topology, name: &str) -> Value {
    d.status(t)["vrrp"]["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Waits until `d`'s groups VI_1 and VI_2 are in `s1` and `s2`.
fn wait_states(d: &Director, t: &Topology, s1: &str, s2: &str) {
    wait_for(&format!("{}: VI_1 {s1}, VI_2 {s2}", d.host), LONG, || {
        (group(d, t, "VI_1")["state"] == s1 && group(d, t, "VI_2")["state"] == s2).then_some(())
    });
}

/// Which of the two VIPs `host`'s eth0 holds.
fn vips(t: &Topology, host: &str) -> (bool, bool) {
    let out = t.exec(host, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    (
        s.contains(&format!("{VIP1}/32")),
        s.contains(&format!("{VIP2}/32")),
    )
}

#[test]
fn a_sync_group_moves_both_vips_when_one_groups_interface_fails_and_back() {
    if !privileged("a_sync_group_moves_both_vips") {
        return;
    }
    let t = two_hosts("vsync");
    let dir = tempfile::tempdir().unwrap();
    // Both directors track a trk0 of their own (an interface missing would be Fault).
    veth(&t, "a", "trk0");
    veth(&t, "b", "trk0");
    let a = start(&t, "a", dir.path(), "lk01", &sync_conf("lk01", 150));
    let b = start(&t, "b", dir.path(), "lk02", &sync_conf("lk02", 100));
    let (code, s) = a.api(&t, "GET", "/api/v1/vrrp-settings", None);
    assert_eq!(code, 200, "{s}");
    assert_eq!(
        s["sync_groups"][0]["groups"],
        serde_json::json!(["VI_1", "VI_2"])
    );
    wait_states(&a, &t, "master", "master");
    wait_states(&b, &t, "backup", "backup");
    wait_for("both VIPs on a only", LONG, || {
        (vips(&t, "a") == (true, true) && vips(&t, "b") == (false, false)).then_some(())
    });
    assert_eq!(group(&a, &t, "VI_2")["sync_group"], "VG_1");
    let text = a.status_text(&t);
    assert!(text.contains("VI_2   in sync group VG_1"), "{text}");

    // VI_1's tracked interface fails on a: VI_2, healthy, follows it to Fault.
    let cut = Instant::now();
    ip(&t, "a", &["link", "set", "trk0", "down"]);
    wait_states(&a, &t, "fault", "fault");
    wait_states(&b, &t, "master", "master");
    wait_for("both VIPs on b only", LONG, || {
        (vips(&t, "b") == (true, true) && vips(&t, "a") == (false, false)).then_some(())
    });
    eprintln!("both VIPs moved in {:?}", cut.elapsed());
    let g2 = group(&a, &t, "VI_2");
    let last = g2["transitions"]
        .as_array()
        .and_then(|v| v.last().cloned())
        .unwrap_or(Value::Null);
    assert_eq!(last["to"], "fault", "{g2}");
    assert_eq!(last["reason"], "sync_group", "{g2}");
    // VI_2 stays held while trk0 is down (its own interfaces are fine).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(group(&a, &t, "VI_2")["state"], "fault");
    assert_eq!(vips(&t, "a"), (false, false));
    let ev: Vec<Value> = a
        .events(&t)
        .into_iter()
        .filter(|e| e["type"] == "vrrp_state_changed" && e["group"] == "VI_2")
        .collect();
    assert!(
        ev.iter()
            .any(|e| e["reason"] == "sync_group" && e["to"] == "fault"),
        "{ev:#?}"
    );
    // The sync group's own event: master, then fault, on a.
    let sg: Vec<String> = a
        .events(&t)
        .into_iter()
        .filter(|e| e["type"] == "vrrp_sync_group_changed" && e["sync_group"] == "VG_1")
        .map(|e| e["to"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(sg.last().map(String::as_str), Some("fault"), "{sg:?}");
    assert!(sg.iter().any(|s| s == "master"), "{sg:?}");

    // trk0 comes back: a (150) preempts both groups back.
    ip(&t, "a", &["link", "set", "trk0", "up"]);
    wait_states(&a, &t, "master", "master");
    wait_states(&b, &t, "backup", "backup");
    wait_for("both VIPs back on a", LONG, || {
        (vips(&t, "a") == (true, true) && vips(&t, "b") == (false, false)).then_some(())
    });
    // b never split the pair: no moment where only one of its groups was master for long is
    // checkable afterwards, but both its groups went master and back the same number of times.
    let count = |d: &Director, g: &str| {
        group(d, &t, g)["transitions"]
            .as_array()
            .map(|v| v.iter().filter(|x| x["to"] == "master").count())
            .unwrap_or(0)
    };
    assert_eq!(count(&b, "VI_1"), count(&b, "VI_2"));
    assert_eq!(count(&a, "VI_1"), count(&a, "VI_2"));
}

/// lbd (a, 150) against keepalived 2.2.7 (b, 100), both with the sync group: a's tracked
/// interface fails, lbd hands both groups over and keepalived takes both VIPs; back when it
/// recovers.
#[test]
fn a_sync_group_against_keepalived() {
    if !privileged("a_sync_group_against_keepalived")
        || !keepalived_available("a_sync_group_against_keepalived")
    {
        return;
    }
    let t = two_hosts("vsyncka");
    let dir = tempfile::tempdir().unwrap();
    veth(&t, "a", "trk0");
    veth(&t, "b", "trk0");
    let a = start(&t, "a", dir.path(), "lk01", &sync_conf("lk01", 150));
    let k = Keepalived::start_text(&t, "b", dir.path(), "lk02", &sync_conf("lk02", 100));
    wait_states(&a, &t, "master", "master");
    wait_for("both VIPs on a only", LONG, || {
        (vips(&t, "a") == (true, true) && vips(&t, "b") == (false, false)).then_some(())
    });
    ip(&t, "a", &["link", "set", "trk0", "down"]);
    wait_states(&a, &t, "fault", "fault");
    wait_for("both VIPs on keepalived", LONG, || {
        (vips(&t, "b") == (true, true) && vips(&t, "a") == (false, false)).then_some(())
    });
    ip(&t, "a", &["link", "set", "trk0", "up"]);
    wait_states(&a, &t, "master", "master");
    wait_for("both VIPs back on a", LONG, || {
        (vips(&t, "a") == (true, true) && vips(&t, "b") == (false, false)).then_some(())
    });
    let log = k.log_text();
    assert!(
        log.contains("VRRP_Group(VG_1)") || log.contains("Syncing instances"),
        "keepalived ran the sync group: {log}"
    );
}

/// How many times `d`'s group `g` became master (its transitions history).
fn masters(d: &Director, t: &Topology, g: &str) -> usize {
    group(d, t, g)["transitions"]
        .as_array()
        .map(|v| v.iter().filter(|x| x["to"] == "master").count())
        .unwrap_or(0)
}

/// Watches for `secs` seconds that both VIPs stay on a and none on b, every 100 ms.
fn stays_on_a(t: &Topology, secs: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        assert_eq!(vips(t, "a"), (true, true), "{what}: a lost a VIP");
        assert_eq!(vips(t, "b"), (false, false), "{what}: b took a VIP");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// keepalived's "prefer backup": b outranks a in VI_1 (200 > 150) but not in VI_2 (100 <
/// 150). VI_1 of b would preempt, VI_2 of b would not; the group stays with a instead of
/// flapping, with lbd on b as with keepalived 2.2.7 on b; when a dies, b takes both.
#[test]
fn a_sync_group_whose_priorities_disagree_stays_with_its_master_as_keepalived() {
    if !privileged("a_sync_group_whose_priorities_disagree") {
        return;
    }
    let t = two_hosts("vsyncpb");
    let dir = tempfile::tempdir().unwrap();
    veth(&t, "a", "trk0");
    veth(&t, "b", "trk0");
    let mut a = start(&t, "a", dir.path(), "lk01", &sync_conf("lk01", 150));
    wait_states(&a, &t, "master", "master");

    // keepalived first, as the reference: it stays backup for both.
    if keepalived_available("a_sync_group_whose_priorities_disagree (keepalived part)") {
        let kdir = dir.path().join("k");
        std::fs::create_dir_all(&kdir).unwrap();
        let mut k = Keepalived::start_text(&t, "b", &kdir, "lk02", &sync_conf2("lk02", 200, 100));
        wait_for("keepalived running", LONG, || {
            k.log_text().contains("Entering BACKUP STATE").then_some(())
        });
        stays_on_a(&t, 4, "keepalived on b");
        assert_eq!(
            (masters(&a, &t, "VI_1"), masters(&a, &t, "VI_2")),
            (1, 1),
            "a never left master"
        );
        k.term();
    }

    // lbd on b: the same.
    let b = start(&t, "b", dir.path(), "lk02", &sync_conf2("lk02", 200, 100));
    wait_states(&b, &t, "backup", "backup");
    stays_on_a(&t, 4, "lbd on b");
    assert_eq!((masters(&a, &t, "VI_1"), masters(&a, &t, "VI_2")), (1, 1));
    assert_eq!((masters(&b, &t, "VI_1"), masters(&b, &t, "VI_2")), (0, 0));
    // b says why VI_1 does not take over.
    let g1 = group(&b, &t, "VI_1");
    assert_eq!(
        g1["sync_waiting"], "VG_1: VI_2 does not want master",
        "{g1}"
    );
    let text = b.status_text(&t);
    assert!(
        text.contains("VI_1   held in backup by its sync group"),
        "{text}"
    );

    // a dies: every member of b loses its master, and b takes both.
    let cut = Instant::now();
    a.kill();
    wait_states(&b, &t, "master", "master");
    wait_for("both VIPs on b", LONG, || {
        (vips(&t, "b") == (true, true)).then_some(())
    });
    eprintln!("b took both VIPs {:?} after a died", cut.elapsed());
    assert!(group(&b, &t, "VI_1")["sync_waiting"].is_null());
}

#[test]
fn vrrp_garp_interval_spaces_the_gratuitous_arps_on_the_wire() {
    if !privileged("vrrp_garp_interval_spaces_the_gratuitous_arps") {
        return;
    }
    let t = two_hosts("vgarp");
    let dir = tempfile::tempdir().unwrap();
    let conf = format!(
        r#"global_defs {{
    router_id lk01
    vrrp_version 3
    vrrp_garp_interval 0.2
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id 1
    priority 150
    advert_int 0.1
    garp_master_repeat 4
    garp_master_delay 0
    garp_master_refresh 0
    virtual_ipaddress {{
        {VIP1}
    }}
}}
"#
    );
    // Capture from before the director starts: its takeover's ARPs are all seen.
    let cap = t.capture("a");
    let a = start(&t, "a", dir.path(), "lk01", &conf);
    wait_for("a master", LONG, || {
        (group(&a, &t, "VI_1")["state"] == "master").then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let frames = cap.stop_timed();
    let vip: Ipv4Addr = VIP1.parse().unwrap();
    let arps: Vec<Instant> = frames
        .iter()
        .filter_map(|(at, f)| {
            let e = EthernetPacket::new(f)?;
            if e.get_ethertype() != EtherTypes::Arp {
                return None;
            }
            let arp = ArpPacket::new(e.payload())?;
            (arp.get_sender_proto_addr() == vip && arp.get_target_proto_addr() == vip)
                .then_some(*at)
        })
        .collect();
    assert_eq!(arps.len(), 4, "one burst of 4 gratuitous ARPs: {arps:?}");
    let gaps: Vec<Duration> = arps.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("gaps between gratuitous ARPs: {gaps:?}");
    for g in &gaps {
        assert!(
            *g >= Duration::from_millis(180) && *g <= Duration::from_millis(400),
            "gratuitous ARPs not 200 ms apart: {gaps:?}"
        );
    }
    // The adverts kept their 100 ms rhythm meanwhile (the thread never slept for the ARPs).
    let adverts: Vec<Instant> = frames
        .iter()
        .filter_map(|(at, f)| {
            let e = EthernetPacket::new(f)?;
            (e.get_ethertype() == EtherTypes::Ipv4
                && e.payload().get(9) == Some(&112)
                && e.payload().get(12..16) == Some(&[192, 168, 10, 101][..]))
            .then_some(*at)
        })
        .collect();
    assert!(adverts.len() >= 10, "{} adverts", adverts.len());
    let worst = adverts
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(worst < Duration::from_millis(200), "advert gap {worst:?}");
}
