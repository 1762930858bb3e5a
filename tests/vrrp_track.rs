//! VRRP tracking for real (#25), two lbd directors in network namespaces (root): a weighted
//! tracked interface, a tracked virtual server whose health check fails, a failing track
//! script, each lowering the master's priority below the backup's so that the backup takes
//! over, and back; and a notify command that hangs is killed at its timeout while the adverts
//! keep their rhythm. Only interfaces inside the namespaces the tests create are touched
//! (veth pairs the tests add there).

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::Packet;
use serde_json::{json, Value};

use netns::{privileged, Topology};
use vrrp::{holds_vip, wait_for, Conf, Director};

const LONG: Duration = Duration::from_secs(10);
const A: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const B: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);

fn two_hosts(name: &str) -> Topology {
    let mut t = Topology::new(name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t
}

/// a master at 150, b backup at 100 (VRRPv3, 100 ms).
fn pair(t: &Topology, dir: &std::path::Path) -> (Director, Director) {
    let ca = Conf::new("lk01", 150, 3, 0.1);
    let cb = Conf::new("lk02", 100, 3, 0.1);
    let a = Director::start(t, "a", dir, &ca);
    let b = Director::start(t, "b", dir, &cb);
    a.wait_state(t, "master", LONG);
    b.wait_state(t, "backup", LONG);
    (a, b)
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

/// Adds an up link `name` in `host`'s namespace (a veth pair, both ends there: the dummy
/// driver may not be available).
fn dummy(t: &Topology, host: &str, name: &str) {
    let peer = format!("{name}p");
    ip(
        t,
        host,
        &["link", "add", name, "type", "veth", "peer", "name", &peer],
    );
    ip(t, host, &["link", "set", &peer, "up"]);
    ip(t, host, &["link", "set", name, "up"]);
}

/// Waits until `d`'s group has effective priority `p`; returns the group.
fn wait_priority(d: &Director, t: &Topology, p: u64) -> Value {
    wait_for(&format!("{} at priority {p}", d.host), LONG, || {
        let g = d.group(t);
        (g["priority"] == p).then_some(g)
    })
}

/// The first tracked object's state in `d`'s status.
fn tracked_state(d: &Director, t: &Topology) -> String {
    d.group(t)["tracked"][0]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn events_of(d: &Director, t: &Topology, kind: &str) -> Vec<Value> {
    d.events(t)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// a's priority falls from 150 to 90 (below b's 100): b takes over and holds the VIP; then
/// `restore` brings it back to 150 and a preempts back.
fn hand_over_and_back(
    t: &Topology,
    a: &Director,
    b: &Director,
    fail: impl Fn(),
    restore: impl Fn(),
) {
    let g = wait_priority(a, t, 150);
    assert_eq!(g["configured_priority"], 150);
    assert_eq!(g["state"], "master");
    fail();
    let g = wait_priority(a, t, 90);
    assert_eq!(
        g["configured_priority"], 150,
        "the configuration is untouched"
    );
    let text = a.status_text(t);
    assert!(text.contains("priority 90 (configured 150)"), "{text}");
    assert!(text.contains(": failing"), "{text}");
    b.wait_state(t, "master", LONG);
    a.wait_state(t, "backup", LONG);
    wait_for("the VIP on b only", LONG, || {
        (holds_vip(t, "b") && !holds_vip(t, "a")).then_some(())
    });
    // No FAULT on the way: a weighted object moves the priority only.
    let ga = a.group(t);
    let states: Vec<&str> = ga["transitions"]
        .as_array()
        .map(|v| v.iter().filter_map(|x| x["to"].as_str()).collect())
        .unwrap_or_default();
    assert!(!states.contains(&"fault"), "{states:?}");
    restore();
    wait_priority(a, t, 150);
    a.wait_state(t, "master", LONG);
    b.wait_state(t, "backup", LONG);
    wait_for("the VIP back on a", LONG, || {
        (holds_vip(t, "a") && !holds_vip(t, "b")).then_some(())
    });
    let ev = events_of(a, t, "vrrp_priority_changed");
    let moves: Vec<(u64, u64)> = ev
        .iter()
        .map(|e| {
            (
                e["from"].as_u64().unwrap_or(0),
                e["to"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        moves.contains(&(150, 90)) && moves.contains(&(90, 150)),
        "{ev:?}"
    );
}

#[test]
fn a_weighted_interface_going_down_hands_over_and_back() {
    if !privileged("a_weighted_interface_going_down_hands_over_and_back") {
        return;
    }
    let t = two_hosts("trkif");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&t, dir.path());
    dummy(&t, "a", "trk0");
    a.patch_group(
        &t,
        json!({"track_interfaces_weighted": [{"interface": "trk0", "weight": -60}]}),
    );
    wait_for("trk0 known up", LONG, || {
        (tracked_state(&a, &t) == "up").then_some(())
    });
    hand_over_and_back(
        &t,
        &a,
        &b,
        || ip(&t, "a", &["link", "set", "trk0", "down"]),
        || ip(&t, "a", &["link", "set", "trk0", "up"]),
    );
    let ev = events_of(&a, &t, "vrrp_priority_changed");
    assert_eq!(ev[0]["cause"], "interface trk0", "{ev:?}");
}

#[test]
fn a_virtual_server_whose_real_servers_fail_their_checks_hands_over_and_back() {
    if !privileged("a_virtual_server_whose_real_servers_fail") {
        return;
    }
    let t = two_hosts("trkvs");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&t, dir.path());
    // The check reads the namespace's own /sys: healthy while the link rs0 exists there.
    dummy(&t, "a", "rs0");
    let vs = json!({
        "address": "10.9.9.9", "port": 80, "protocol": "tcp", "delay_loop_ms": 200,
        "real_servers": [{"address": "10.9.9.10", "port": 80, "health_check": {
            "type": "misc", "misc_path": "/usr/bin/test -e /sys/class/net/rs0",
            "misc_timeout_ms": 1000, "retry": 0}}]
    });
    let (code, v) = a.api(&t, "POST", "/api/v1/virtual-servers", Some(vs));
    assert_eq!(code, 201, "{v}");
    a.patch_group(
        &t,
        json!({"track_virtual_servers": [{"virtual_server": "tcp 10.9.9.9:80", "weight": -60}]}),
    );
    wait_for("the virtual server known up", LONG, || {
        (tracked_state(&a, &t) == "up").then_some(())
    });
    hand_over_and_back(
        &t,
        &a,
        &b,
        || ip(&t, "a", &["link", "del", "rs0"]),
        || dummy(&t, "a", "rs0"),
    );
    let ev = events_of(&a, &t, "vrrp_priority_changed");
    assert_eq!(ev[0]["cause"], "virtual server tcp 10.9.9.9:80", "{ev:?}");
}

#[test]
fn a_failing_track_script_hands_over_and_back() {
    if !privileged("a_failing_track_script_hands_over_and_back") {
        return;
    }
    let t = two_hosts("trkscr");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair(&t, dir.path());
    dummy(&t, "a", "chk0");
    a.patch_group(
        &t,
        json!({"track_scripts": [{"name": "chk", "command": "/usr/bin/test -e /sys/class/net/chk0",
            "interval_ms": 200, "timeout_ms": 1000, "weight": -60, "rise": 2, "fall": 2}]}),
    );
    wait_for("the script known up", LONG, || {
        (tracked_state(&a, &t) == "up").then_some(())
    });
    assert_eq!(a.group(&t)["tracked"][0]["detail"], "exit 0");
    hand_over_and_back(
        &t,
        &a,
        &b,
        || ip(&t, "a", &["link", "del", "chk0"]),
        || dummy(&t, "a", "chk0"),
    );
    // The failure is an event with the exit status.
    let ev = events_of(&a, &t, "vrrp_command");
    assert!(
        ev.iter()
            .any(|e| e["command"] == "script chk" && e["ok"] == false && e["result"] == "exit 1"),
        "{ev:?}"
    );
}

/// VRRP adverts among captured frames: (when, source, priority).
fn adverts(frames: &[(Instant, Vec<u8>)]) -> Vec<(Instant, Ipv4Addr, u8)> {
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
            Some((*at, ip.get_source(), *ip.payload().get(2)?))
        })
        .collect()
}

#[test]
fn a_notify_command_that_hangs_is_killed_at_its_timeout_and_adverts_keep_their_rhythm() {
    if !privileged("a_notify_command_that_hangs_is_killed") {
        return;
    }
    let t = two_hosts("trkntf");
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b) = pair(&t, dir.path());
    // `notify` gets INSTANCE NAME STATE PRIORITY: touch makes them files in `out`.
    let out_dir = dir.path().join("notified");
    std::fs::create_dir(&out_dir).unwrap();
    let touch = format!("/usr/bin/env -C {} /usr/bin/touch", out_dir.display());
    // A distinctive argument, to find the process.
    b.patch_group(
        &t,
        json!({"notify": {"master": "/bin/sleep 31.25", "timeout_ms": 1000, "any": touch,
            "stop": format!("{touch} stopped")}}),
    );
    let cap = t.capture("a");
    std::thread::sleep(Duration::from_millis(300));
    a.patch_node(&t, json!({"priority": 50}));
    b.wait_state(&t, "master", LONG);
    let became = Instant::now();
    wait_for(
        "the hanging command running",
        Duration::from_secs(2),
        || {
            let out = t.exec("b", &["pgrep", "-f", "sleep 31.25"]);
            out.status.success().then_some(())
        },
    );
    let ev = wait_for("the notify_master event", LONG, || {
        events_of(&b, &t, "vrrp_command")
            .into_iter()
            .find(|e| e["command"] == "notify_master")
    });
    let took = became.elapsed();
    assert_eq!(ev["ok"], false, "{ev}");
    assert!(
        ev["result"].as_str().unwrap_or("").contains("timed out"),
        "{ev}"
    );
    assert!(
        took < Duration::from_secs(4),
        "killed at its 1 s timeout, not later: {took:?}"
    );
    // Killed, with its process group.
    let out = t.exec("b", &["pgrep", "-f", "sleep 31.25"]);
    assert!(!out.status.success(), "still running");
    std::thread::sleep(Duration::from_millis(300));
    let frames = cap.stop_timed();
    let from_b: Vec<_> = adverts(&frames).into_iter().filter(|x| x.1 == B).collect();
    assert!(from_b.len() >= 10, "{} adverts from b", from_b.len());
    let gap = from_b
        .windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    assert!(
        gap < Duration::from_millis(200),
        "{gap:?} without an advert from b while its notify command hung"
    );
    assert!(from_b.iter().all(|x| x.2 == 100));
    assert!(!from_b.is_empty() && adverts(&frames).iter().any(|x| x.1 == A));
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&out_dir), vec!["100", "INSTANCE", "MASTER", "VI_1"]);
    // SIGTERM: the stop's commands run before lbd exits.
    b.term();
    let files = names(&out_dir);
    assert!(
        files.contains(&"STOP".to_string()) && files.contains(&"stopped".to_string()),
        "{files:?}"
    );
}
