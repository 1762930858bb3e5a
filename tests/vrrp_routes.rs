//! VRRP virtual address options, virtual routes and virtual rules for real (#25), in network
//! namespaces (root): two lbd directors imported from a keepalived.conf with
//! `virtual_ipaddress { ... dev eth0 scope link label eth0:vip }`, `virtual_routes` and
//! `virtual_rules`; the master has the address with its label and scope, the route in table
//! 100 and the rule, the backup has none of them, and they move on failover; then keepalived
//! given the same file in a namespace of its own, whose `ip addr`/`ip route`/`ip rule` lines
//! lbd's must equal. Only the namespaces the tests create are touched.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::time::Duration;

use serde_json::json;

use netns::{privileged, Topology};
use vrrp::{holds_vip, keepalived_available, wait_for, Conf, Director, Keepalived};

const LONG: Duration = Duration::from_secs(10);

/// The address line with keepalived's options, then the routes and rules blocks: `Conf`
/// writes `vip` inside `virtual_ipaddress { }` and closes it after.
const BLOCKS: &str = "192.168.10.100/32 dev eth0 scope link label eth0:vip
    }
    virtual_routes {
        10.1.0.0/16 via 192.168.10.1 dev eth0 table 100
        blackhole 10.3.0.0/16 table 100 metric 7
    }
    virtual_rules {
        from 192.168.10.100/32 table 100 priority 100
        fwmark 0x7 table 100 priority 101";

fn conf(router_id: &str, priority: u8) -> Conf {
    let mut c = Conf::new(router_id, priority, 3, 0.1);
    c.vip = BLOCKS.into();
    c
}

fn two_hosts(name: &str) -> Topology {
    let mut t = Topology::new(name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t
}

/// `ip ARGS` in `host`'s namespace, its output.
fn ip(t: &Topology, host: &str, args: &[&str]) -> String {
    let mut a = vec!["ip"];
    a.extend_from_slice(args);
    let out = t.exec(host, &a);
    assert!(
        out.status.success(),
        "ip {args:?} in {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the master adds, as `ip` prints it: the VIP's line (from `inet` to the label), the
/// routes of table 100, the rules lbd or keepalived added (protocol keepalived).
fn state_of(t: &Topology, host: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let addrs = ip(t, host, &["-o", "-4", "addr", "show", "dev", "eth0"])
        .lines()
        .filter(|l| l.contains("192.168.10.100"))
        .map(|l| {
            let l = l.split_once("inet ").map_or(l, |x| x.1);
            l.split('\\').next().unwrap_or("").trim().to_string()
        })
        .collect();
    // A table nothing was ever added to does not exist: no routes.
    let out = t.exec(host, &["ip", "route", "show", "table", "100"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("FIB table does not exist"),
        "ip route show table 100 in {host}: {err}"
    );
    let routes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let rules = ip(t, host, &["rule", "show"])
        .lines()
        .filter(|l| l.contains("lookup 100"))
        .map(|l| l.trim().to_string())
        .collect();
    (addrs, routes, rules)
}

fn assert_holds(t: &Topology, host: &str) {
    let (addrs, routes, rules) = state_of(t, host);
    assert_eq!(
        addrs,
        vec!["192.168.10.100/32 scope link eth0:vip".to_string()],
        "{host}"
    );
    assert!(
        routes.contains(&"10.1.0.0/16 via 192.168.10.1 dev eth0 proto keepalived".to_string()),
        "{host}: {routes:?}"
    );
    assert!(
        routes.contains(&"blackhole 10.3.0.0/16 proto keepalived metric 7".to_string()),
        "{host}: {routes:?}"
    );
    assert_eq!(routes.len(), 2, "{host}: {routes:?}");
    assert_eq!(
        rules,
        vec![
            "100:\tfrom 192.168.10.100 lookup 100 proto keepalived".to_string(),
            "101:\tfrom all fwmark 0x7 lookup 100 proto keepalived".to_string(),
        ],
        "{host}"
    );
}

fn assert_clear(t: &Topology, host: &str) {
    assert_eq!(state_of(t, host), (vec![], vec![], vec![]), "{host}");
}

#[test]
fn the_master_has_the_labelled_vip_routes_and_rules_and_they_move_on_failover() {
    if !privileged("the_master_has_the_labelled_vip_routes_and_rules") {
        return;
    }
    let t = two_hosts("vroute");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Director::start(&t, "a", dir.path(), &conf("lk01", 150));
    let b = Director::start(&t, "b", dir.path(), &conf("lk02", 100));
    a.wait_state(&t, "master", LONG);
    b.wait_state(&t, "backup", LONG);
    wait_for("a's routes", LONG, || {
        (state_of(&t, "a").1.len() == 2).then_some(())
    });
    assert_holds(&t, "a");
    assert_clear(&t, "b");
    // The API shows the address with its options as an object, the routes and rules too.
    let (code, g) = a.api(&t, "GET", "/api/v1/vrrp-groups", None);
    assert_eq!(code, 200, "{g}");
    assert_eq!(
        g[0]["virtual_addresses"][0],
        json!({"address": "192.168.10.100/32", "dev": "eth0", "scope": "link", "label": "eth0:vip"})
    );
    assert_eq!(g[0]["virtual_routes"][0]["via"], "192.168.10.1");
    assert_eq!(g[0]["virtual_rules"][1]["fwmark"], 7);

    // SIGTERM: a hands over, b adds them all, a removed them all.
    a.term();
    b.wait_state(&t, "master", LONG);
    wait_for("b's routes", LONG, || {
        (state_of(&t, "b").1.len() == 2).then_some(())
    });
    assert_holds(&t, "b");
    wait_for("a clear", LONG, || {
        (state_of(&t, "a") == (vec![], vec![], vec![])).then_some(())
    });
    assert!(!holds_vip(&t, "a"));

    // An edit on the running master: the route gone is removed, the new one added.
    b.patch_group(
        &t,
        json!({"virtual_routes": [
            {"to": "10.2.0.0/16", "via": "192.168.10.1", "dev": "eth0", "table": 100, "metric": 5}
        ]}),
    );
    wait_for("b's edited routes", LONG, || {
        let routes = state_of(&t, "b").1;
        (routes == vec!["10.2.0.0/16 via 192.168.10.1 dev eth0 proto keepalived metric 5"])
            .then_some(())
    });
    // A label that does not start with the interface's name is refused, naming the field.
    let id = b.group_id(&t);
    let (code, v) = b.api(
        &t,
        "PATCH",
        &format!("/api/v1/vrrp-groups/{id}"),
        Some(json!({"virtual_addresses": [{"address": "192.168.10.100/32", "label": "eth1:x"}]})),
    );
    assert_eq!(code, 422, "{v}");
    assert!(v.to_string().contains("virtual_addresses[0].label"), "{v}");
}

/// keepalived with the same file, alone in a namespace of its own, becomes master and adds
/// the same address, routes and rules as lbd does: `ip` prints the same lines.
#[test]
fn keepalived_adds_the_same_address_routes_and_rules() {
    if !privileged("keepalived_adds_the_same_address_routes_and_rules")
        || !keepalived_available("keepalived_adds_the_same_address_routes_and_rules")
    {
        return;
    }
    let mut t = Topology::new("vrtka");
    t.add_host("a", "192.168.10.101/24");
    t.add_host("k", "192.168.10.103/24");
    let dir = tempfile::tempdir().unwrap();
    let mut ka = conf("lk09", 150);
    ka.master = true;
    let mut k = Keepalived::start(&t, "k", dir.path(), &ka);
    wait_for("keepalived's routes", LONG, || {
        (state_of(&t, "k").1.len() == 2).then_some(())
    });
    let keepalived = state_of(&t, "k");
    k.term();
    let log = k.log_text();
    let d = Director::start(&t, "a", dir.path(), &conf("lk01", 150));
    d.wait_state(&t, "master", LONG);
    wait_for("lbd's routes", LONG, || {
        (state_of(&t, "a").1.len() == 2).then_some(())
    });
    assert_eq!(state_of(&t, "a"), keepalived, "keepalived's log:\n{log}");
    assert_holds(&t, "a");
}

/// A VIP and a route of each kind, tracked and `no_track` (keepalived's tracking, #25).
const WATCHED: &str = "192.168.10.100/32 dev eth0
        192.168.10.110/32 dev eth0 no_track
    }
    virtual_routes {
        10.1.0.0/16 via 192.168.10.1 dev eth0 table 100
        10.2.0.0/16 via 192.168.10.1 dev eth0 table 100 no_track
        blackhole 2001:db8:9::/48 table 100
    }
    virtual_rules {
        from 192.168.10.100/32 table 100 priority 100";

fn watched_conf(router_id: &str, priority: u8) -> Conf {
    let mut c = Conf::new(router_id, priority, 3, 0.1);
    c.vip = WATCHED.into();
    c
}

/// The routes of table 100 in `host`, by destination.
fn table_100(t: &Topology, host: &str) -> Vec<String> {
    let out = t.exec(host, &["ip", "route", "show", "table", "100"]);
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    v.sort();
    v
}

fn has_address(t: &Topology, host: &str, a: &str) -> bool {
    ip(t, host, &["-o", "-4", "addr", "show", "dev", "eth0"]).contains(&format!("inet {a}/"))
}

fn transitions(d: &Director, t: &Topology) -> Vec<serde_json::Value> {
    d.group(t)["transitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// As keepalived 2.2.7 (checked on the wire, see src/dataplane/vrrp/watch.rs): a master whose
/// tracked virtual route or VIP someone deletes sends priority 0, removes everything, and is
/// master again Skew_Time later with everything back (its peer of lower priority stays
/// backup); a `no_track` route or VIP deleted changes nothing and stays deleted until the next
/// transition to master.
#[test]
fn a_deleted_route_or_vip_makes_the_master_leave_and_come_back_no_track_ones_stay_deleted() {
    if !privileged("a_deleted_route_or_vip_makes_the_master_leave") {
        return;
    }
    let t = two_hosts("vrwatch");
    let dir = tempfile::tempdir().unwrap();
    let a = Director::start(&t, "a", dir.path(), &watched_conf("lk01", 150));
    let b = Director::start(&t, "b", dir.path(), &watched_conf("lk02", 100));
    a.wait_state(&t, "master", LONG);
    b.wait_state(&t, "backup", LONG);
    let both = vec!["10.1.0.0/16".to_string(), "10.2.0.0/16".to_string()];
    wait_for("a's routes", LONG, || {
        (table_100(&t, "a") == both).then_some(())
    });
    assert!(has_address(&t, "a", "192.168.10.110"));
    // The API shows no_track on the address and the route.
    let (code, g) = a.api(&t, "GET", "/api/v1/vrrp-groups", None);
    assert_eq!(code, 200, "{g}");
    assert_eq!(
        g[0]["virtual_addresses"][1],
        json!({"address": "192.168.10.110/32", "dev": "eth0", "no_track": true})
    );
    assert_eq!(g[0]["virtual_routes"][1]["no_track"], true);
    assert!(g[0]["virtual_routes"][0].get("no_track").is_none());

    // no_track: deleted, nothing happens, not put back.
    let before = transitions(&a, &t).len();
    ip(&t, "a", &["route", "del", "10.2.0.0/16", "table", "100"]);
    ip(
        &t,
        "a",
        &["addr", "del", "192.168.10.110/32", "dev", "eth0"],
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(a.state(&t), "master");
    assert_eq!(transitions(&a, &t).len(), before);
    assert_eq!(table_100(&t, "a"), vec!["10.1.0.0/16".to_string()]);
    assert!(!has_address(&t, "a", "192.168.10.110"));
    assert_eq!(b.state(&t), "backup");

    // A tracked route deleted: master -> backup (priority 0) -> master, everything back, the
    // no_track ones too (a transition to master).
    let zero_before = b.group(&t)["counters"]["priority_zero_received"]
        .as_u64()
        .unwrap_or(0);
    let t0 = vrrp::now_unix_ms();
    ip(&t, "a", &["route", "del", "10.1.0.0/16", "table", "100"]);
    let tr = wait_for("a's leave and return", LONG, || {
        let tr = transitions(&a, &t);
        (tr.len() >= before + 2 && tr.last()?["to"] == "master").then_some(tr)
    });
    let (left, back) = (&tr[before], &tr[before + 1]);
    assert_eq!(
        (&left["from"], &left["to"], &left["reason"]),
        (&json!("master"), &json!("backup"), &json!("object_deleted")),
        "{tr:?}"
    );
    assert_eq!(
        left["detail"],
        "virtual route 10.1.0.0/16 via 192.168.10.1 dev eth0 table 100"
    );
    assert_eq!(back["to"], "master", "{tr:?}");
    let ms = |v: &serde_json::Value| v["time_unix_ms"].as_u64().unwrap_or(0);
    let (left_ms, back_ms) = (ms(left).saturating_sub(t0), ms(back).saturating_sub(t0));
    eprintln!("route deleted: backup after {left_ms} ms, master again after {back_ms} ms (Skew_Time 41 ms)");
    assert!(left_ms < 500, "{left_ms}");
    assert!(
        back_ms - left_ms >= 35 && back_ms - left_ms < 1000,
        "{tr:?}"
    );
    wait_for("a's routes back", LONG, || {
        (table_100(&t, "a") == both).then_some(())
    });
    assert!(has_address(&t, "a", "192.168.10.110"));
    assert!(has_address(&t, "a", "192.168.10.100"));
    assert_eq!(b.state(&t), "backup");
    // (Counters are published at most every 250 ms.)
    wait_for("b's count of priority-0 adverts", LONG, || {
        let n = b.group(&t)["counters"]["priority_zero_received"].as_u64();
        (n.unwrap_or(0) > zero_before).then_some(())
    });
    assert!(!has_address(&t, "b", "192.168.10.100"));

    // A tracked VIP deleted: the same.
    let n = transitions(&a, &t).len();
    ip(
        &t,
        "a",
        &["addr", "del", "192.168.10.100/32", "dev", "eth0"],
    );
    let tr = wait_for("a's leave and return", LONG, || {
        let tr = transitions(&a, &t);
        (tr.len() >= n + 2 && tr.last()?["to"] == "master").then_some(tr)
    });
    assert_eq!(
        tr[n]["detail"], "virtual address 192.168.10.100/32 on eth0",
        "{tr:?}"
    );
    wait_for("a's VIP back", LONG, || {
        has_address(&t, "a", "192.168.10.100").then_some(())
    });
    let events = a.events(&t);
    assert!(
        events
            .iter()
            .filter(|e| e.to_string().contains("object_deleted"))
            .count()
            >= 2,
        "{events:?}"
    );

    // An IPv6 route (the kernel gives it metric 1024): the same.
    let v6 = |t: &Topology| ip(t, "a", &["-6", "route", "show", "table", "100"]);
    assert!(v6(&t).contains("2001:db8:9::/48"), "{}", v6(&t));
    let n = transitions(&a, &t).len();
    ip(
        &t,
        "a",
        &[
            "-6",
            "route",
            "del",
            "blackhole",
            "2001:db8:9::/48",
            "table",
            "100",
        ],
    );
    let tr = wait_for("a's leave and return", LONG, || {
        let tr = transitions(&a, &t);
        (tr.len() >= n + 2 && tr.last()?["to"] == "master").then_some(tr)
    });
    assert_eq!(
        tr[n]["detail"], "virtual route blackhole 2001:db8:9::/48 table 100",
        "{tr:?}"
    );
    wait_for("a's IPv6 route back", LONG, || {
        v6(&t).contains("2001:db8:9::/48").then_some(())
    });

    // lbd's own removal (an edit drops a route from the running master) is not a deletion
    // by someone else: no transition.
    let n = transitions(&a, &t).len();
    a.patch_group(
        &t,
        json!({"virtual_routes": [
            {"to": "10.1.0.0/16", "via": "192.168.10.1", "dev": "eth0", "table": 100}
        ]}),
    );
    wait_for("the edit", LONG, || {
        (table_100(&t, "a") == vec!["10.1.0.0/16".to_string()]).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(transitions(&a, &t).len(), n);
    assert_eq!(a.state(&t), "master");
}

/// keepalived 2.2.7 with the same file, master of the same pair with an lbd backup: deleting
/// its tracked route makes it send priority 0 and come back (its log: BACKUP then MASTER),
/// with the route back, the lbd backup staying backup; its no_track route deleted stays
/// deleted. What lbd does in the test above.
#[test]
fn keepalived_leaves_and_comes_back_the_same_way() {
    if !privileged("keepalived_leaves_and_comes_back_the_same_way")
        || !keepalived_available("keepalived_leaves_and_comes_back_the_same_way")
    {
        return;
    }
    let mut t = Topology::new("vrwka");
    t.add_host("k", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    let dir = tempfile::tempdir().unwrap();
    let mut k = Keepalived::start(&t, "k", dir.path(), &watched_conf("lk09", 150));
    wait_for("keepalived's routes", LONG, || {
        (table_100(&t, "k").len() == 2).then_some(())
    });
    let b = Director::start(&t, "b", dir.path(), &watched_conf("lk02", 100));
    b.wait_state(&t, "backup", LONG);
    let entering =
        |k: &Keepalived, s: &str| k.log_text().matches(&format!("Entering {s} STATE")).count();
    let (masters, backups) = (entering(&k, "MASTER"), entering(&k, "BACKUP"));

    ip(&t, "k", &["route", "del", "10.2.0.0/16", "table", "100"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(entering(&k, "MASTER"), masters, "{}", k.log_text());
    assert_eq!(table_100(&t, "k"), vec!["10.1.0.0/16".to_string()]);

    ip(&t, "k", &["route", "del", "10.1.0.0/16", "table", "100"]);
    wait_for("keepalived back to master", LONG, || {
        (entering(&k, "MASTER") == masters + 1).then_some(())
    });
    assert_eq!(entering(&k, "BACKUP"), backups + 1, "{}", k.log_text());
    wait_for("keepalived's routes back", LONG, || {
        (table_100(&t, "k").len() == 2).then_some(())
    });
    assert_eq!(b.state(&t), "backup");
    wait_for("b's count of priority-0 adverts", LONG, || {
        let n = b.group(&t)["counters"]["priority_zero_received"].as_u64();
        (n.unwrap_or(0) >= 1).then_some(())
    });
    k.term();
}

/// The watch reads a flood of route changes in bounded rounds (`rtnl::WATCH_READS` datagrams
/// per call), so the VRRP thread gets back to its timers between them, and misses none: 300
/// routes deleted at once come out as 300 deletions over several calls.
#[test]
fn the_watch_reads_a_flood_in_bounded_rounds() {
    if !privileged("the_watch_reads_a_flood_in_bounded_rounds") {
        return;
    }
    let mut t = Topology::new("rwflood");
    t.add_host("a", "192.168.10.101/24");
    let dir = tempfile::tempdir().unwrap();
    let batch = |verb: &str| {
        let path = dir.path().join(format!("{verb}.batch"));
        let lines: String = (0..300)
            .map(|i| format!("route {verb} 10.9.{}.{}/32 dev eth0\n", i / 256, i % 256))
            .collect();
        std::fs::write(&path, lines).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (add, del) = (batch("add"), batch("del"));
    let ns = t.ns("a");
    let (most, total, calls) = t.in_host("a", move || {
        let mut w = lbd::kernel::rtnl::RouteWatch::open().unwrap();
        w.follow_routes(true).unwrap();
        for b in [&add, &del] {
            let out = std::process::Command::new("ip")
                .args(["-batch", b])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let routes = |d: &[lbd::kernel::rtnl::Deletion]| {
            d.iter()
                .filter(|d| matches!(d, lbd::kernel::rtnl::Deletion::Route(_)))
                .count()
        };
        // 600 datagrams queued (300 additions, then 300 deletions): each call takes at most
        // WATCH_READS of them; a call that finds the queue empty returns at once.
        let (mut most, mut total, mut calls) = (0, 0, 0);
        for _ in 0..100 {
            let (d, lost) = w.read();
            assert!(!lost, "the kernel dropped notifications");
            let n = routes(&d);
            most = most.max(n);
            total += n;
            calls += usize::from(n > 0);
        }
        (most, total, calls)
    });
    eprintln!("{ns}: 300 deletions read over {calls} calls, at most {most} in one");
    assert!(most <= lbd::kernel::rtnl::WATCH_READS, "{most} in one call");
    assert_eq!(total, 300);
    assert!(calls >= 300 / lbd::kernel::rtnl::WATCH_READS, "{calls}");
}
