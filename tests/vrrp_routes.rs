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
