//! Peer sync between two lbd directors in network namespaces (root; no packet leaves the
//! namespaces this test creates): the pair is configured through lk01 alone, survives a
//! partition with split edits, and a returning director catches up before it preempts.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::time::Duration;

use netns::Topology;
use serde_json::Value;
use vrrp::{wait_for, Conf, Director};

fn peer_args<'a>(secret: &'a str, me: &'a str, other: &'a str) -> Vec<String> {
    vec![
        "--peer".into(),
        format!("{other}:7946"),
        "--peer-listen".into(),
        format!("{me}:7946"),
        "--peer-secret-file".into(),
        secret.into(),
    ]
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn vs(port: u16) -> String {
    format!(
        r#"{{"address":"192.168.10.100","port":{port},"real_servers":[{{"address":"192.168.10.103"}}]}}"#
    )
}

fn revision(t: &Topology, d: &Director) -> u64 {
    d.status(t)["revision"].as_u64().unwrap_or(0)
}

fn peer(t: &Topology, d: &Director) -> Value {
    d.status(t)["sync"]["peers"][0].clone()
}

#[test]
fn a_pair_in_namespaces_syncs_survives_a_partition_and_catches_up_before_preempting() {
    if !netns::privileged("peer_netns") {
        return;
    }
    let mut t = Topology::new("peer");
    t.add_host("lk01", "192.168.10.101/24");
    t.add_host("lk02", "192.168.10.102/24");
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

    // 1. The whole config goes in through lk01: both directors' keepalived.conf files.
    let mut c1 = Conf::new("lk01", 150, 3, 0.1);
    c1.master = true;
    let c2 = Conf::new("lk02", 100, 3, 0.1);
    a.import(&t, &c1);
    a.import(&t, &c2);
    a.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs(80)));
    let want = revision(&t, &a);
    wait_for("lk02 to get lk01's config", Duration::from_secs(3), || {
        (revision(&t, &b) == want).then_some(())
    });
    assert_eq!(
        a.http(&t, "GET", "/api/v1/config", None),
        b.http(&t, "GET", "/api/v1/config", None),
        "one configuration, the same ids"
    );
    a.wait_state(&t, "master", Duration::from_secs(10));
    b.wait_state(&t, "backup", Duration::from_secs(10));
    let p = peer(&t, &b);
    assert_eq!(p["node"], "lk01");
    assert_eq!(p["master"], true, "{p}");
    assert_eq!(p["in_sync"], true, "{p}");
    let text = b.status_text(&t);
    assert!(
        text.contains("sync: peer 192.168.10.101:7946 (lk01): in sync"),
        "{text}"
    );

    // 2. A partition (the switch stops forwarding lk02's frames, its link stays up); both are edited; lk01 twice, so it wins.
    t.set_partitioned("lk02", true);
    b.wait_state(&t, "master", Duration::from_secs(5));
    wait_for("lk01 to see lk02 gone", Duration::from_secs(6), || {
        (peer(&t, &a)["reachable"] == false).then_some(())
    });
    a.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs(81)));
    a.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs(82)));
    b.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs(83)));
    t.set_partitioned("lk02", false);
    wait_for(
        "the link and one configuration",
        Duration::from_secs(10),
        || {
            let (ca, cb) = (
                a.http(&t, "GET", "/api/v1/config", None),
                b.http(&t, "GET", "/api/v1/config", None),
            );
            (ca == cb && peer(&t, &a)["reachable"] == true).then_some(())
        },
    );
    let cfg = json(&b.http(&t, "GET", "/api/v1/config", None));
    let ports: Vec<u64> = cfg["virtual_servers"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v["port"].as_u64())
        .collect();
    assert_eq!(ports, vec![80, 81, 82], "lk01's higher revision wins");
    let conflicts = json(&b.http(&t, "GET", "/api/v1/conflicts", None));
    assert_eq!(conflicts.as_array().map(Vec::len), Some(1), "{conflicts}");
    assert_eq!(conflicts[0]["origin"], "lk02");
    b.wait_state(&t, "backup", Duration::from_secs(5));

    // 3. lk01 stops; lk02 takes over and is edited; lk01 returns and must catch up before it
    //    preempts back.
    a.term();
    b.wait_state(&t, "master", Duration::from_secs(5));
    b.http(&t, "POST", "/api/v1/virtual-servers", Some(&vs(84)));
    let newest = revision(&t, &b);
    a.spawn(&t);
    a.wait_state(&t, "master", Duration::from_secs(10));
    assert_eq!(revision(&t, &a), newest);
    // In lk01's own event history, the peer's configuration came before the preemption.
    let events = json(&a.http(&t, "GET", "/api/v1/events?limit=1000", None));
    let events = events.as_array().cloned().unwrap_or_default();
    let took = events
        .iter()
        .rposition(|e| e["type"] == "config_committed" && e["revision"].as_u64() == Some(newest));
    let master = events
        .iter()
        .rposition(|e| e["type"] == "vrrp_state_changed" && e["to"] == "master");
    assert!(
        matches!((took, master), (Some(t), Some(m)) if t < m),
        "catch-up {took:?} must precede the preemption {master:?}: {events:?}"
    );
    b.wait_state(&t, "backup", Duration::from_secs(5));
}
