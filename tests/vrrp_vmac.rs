//! VRRP virtual MAC (keepalived's `use_vmac`, RFC 5798 section 7.3) for real, in network
//! namespaces on the host kernel (root; CI runs these): two lbd directors and a client on a
//! bridge. The master's virtual addresses live on a macvlan `vrrp.VRID` with the MAC
//! 00:00:5e:00:01:VRID, so the client's neighbour entry never changes on a failover; adverts and
//! gratuitous ARPs carry that MAC (with `vmac_xmit_base`, adverts carry the base interface's).
//! The macvlan survives a restart of lbd and goes with the group. Then lbd against keepalived,
//! both with `use_vmac`. Nothing leaves the namespaces the tests create; the macvlans are made
//! inside them.

#[path = "support/netns.rs"]
mod netns;
#[path = "support/vrrp.rs"]
mod vrrp;

use std::net::Ipv4Addr;
use std::time::Duration;

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::Packet;

use netns::{privileged, Topology};
use vrrp::{keepalived_available, wait_for, Conf, Director, Keepalived, VIP};

const LONG: Duration = Duration::from_secs(10);
const VMAC: &str = "00:00:5e:00:01:01";
const VMAC_BYTES: [u8; 6] = [0, 0, 0x5e, 0, 1, 1];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];

fn topology(name: &str) -> Topology {
    let mut t = Topology::new(name);
    t.add_host("a", "192.168.10.101/24");
    t.add_host("b", "192.168.10.102/24");
    t.add_host("client", "192.168.10.50/24");
    t
}

fn conf(router_id: &str, priority: u8, extra: &str) -> Conf {
    let mut c = Conf::new(router_id, priority, 3, 0.1);
    c.extra = extra.into();
    c
}

fn text(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// `ip -d link show dev NAME` in `host` (`None`: no such interface).
fn link(t: &Topology, host: &str, name: &str) -> Option<String> {
    let o = t.exec(host, &["ip", "-d", "-o", "link", "show", "dev", name]);
    o.status.success().then(|| text(o))
}

/// Whether `dev` in `host` holds the VIP.
fn holds(t: &Topology, host: &str, dev: &str) -> bool {
    let o = t.exec(host, &["ip", "-o", "-4", "addr", "show", "dev", dev]);
    text(o).contains(&format!("{VIP}/32"))
}

fn sysctl(t: &Topology, host: &str, dev: &str, key: &str) -> String {
    let path = format!("/proc/sys/net/ipv4/conf/{dev}/{key}");
    text(t.exec(host, &["cat", &path])).trim().to_string()
}

fn neigh(t: &Topology) -> String {
    text(t.exec("client", &["ip", "neigh", "show", VIP]))
}

/// A TCP connection from the client to the VIP's port 9, where nothing listens: the holder's
/// kernel answers with a reset (refused); nobody answering is a timeout.
fn client_reaches_vip(t: &Topology) -> Option<std::io::ErrorKind> {
    t.in_host("client", || {
        let addr = format!("{VIP}:9").parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .err()
            .map(|e| e.kind())
    })
}

/// The VRRP adverts among captured frames: (Ethernet source, IP source, priority).
fn adverts(frames: &[Vec<u8>]) -> Vec<([u8; 6], Ipv4Addr, u8)> {
    frames
        .iter()
        .filter_map(|f| {
            let e = EthernetPacket::new(f)?;
            if e.get_ethertype() != EtherTypes::Ipv4 {
                return None;
            }
            let ip = Ipv4Packet::new(e.payload())?;
            if ip.get_next_level_protocol() != IpNextHeaderProtocols::Vrrp {
                return None;
            }
            Some((
                e.get_source().octets(),
                ip.get_source(),
                *ip.payload().get(2)?,
            ))
        })
        .collect()
}

/// The gratuitous ARPs for the VIP among captured frames: (Ethernet source, ARP sender MAC).
fn vip_garps(frames: &[Vec<u8>]) -> Vec<([u8; 6], [u8; 6])> {
    frames
        .iter()
        .filter_map(|f| {
            let (sha, ip) = lbd::kernel::garp::parse_garp(f)?;
            let src = EthernetPacket::new(f)?.get_source().octets();
            (ip.to_string() == VIP).then_some((src, sha))
        })
        .collect()
}

#[test]
fn the_vip_lives_on_the_virtual_mac_and_a_failover_keeps_the_clients_neighbour_entry() {
    if !privileged("vrrp_vmac") {
        return;
    }
    let t = topology("vmac");
    let dir = tempfile::tempdir().unwrap();
    let cap = t.capture("client");
    let mut a = Director::start(&t, "a", dir.path(), &conf("lk01", 150, "    use_vmac\n"));
    let b = Director::start(&t, "b", dir.path(), &conf("lk02", 100, "    use_vmac\n"));
    let g = a.wait_state(&t, "master", LONG);
    assert_eq!(g["interface"], "vrrp.1", "{g}");
    b.wait_state(&t, "backup", LONG);
    wait_for("the VIP on a's vrrp.1", LONG, || {
        holds(&t, "a", "vrrp.1").then_some(())
    });

    // Both directors have the macvlan: private mode, the virtual MAC, over eth0; only the
    // master's holds the VIP, and no eth0 does.
    for host in ["a", "b"] {
        let l = link(&t, host, "vrrp.1").unwrap_or_else(|| panic!("no vrrp.1 on {host}"));
        assert!(l.contains("vrrp.1@eth0"), "{host}: {l}");
        assert!(l.contains(&format!("link/ether {VMAC}")), "{host}: {l}");
        assert!(l.contains("macvlan mode private"), "{host}: {l}");
        assert!(l.contains(",UP"), "{host}: {l}");
        assert!(!holds(&t, host, "eth0"), "{host}'s eth0 holds the VIP");
        // keepalived's sysctls.
        assert_eq!(sysctl(&t, host, "vrrp.1", "arp_ignore"), "1");
        assert_eq!(sysctl(&t, host, "vrrp.1", "accept_local"), "1");
        assert_eq!(sysctl(&t, host, "vrrp.1", "rp_filter"), "0");
        assert_eq!(sysctl(&t, host, "eth0", "arp_ignore"), "1");
        assert_eq!(sysctl(&t, host, "eth0", "arp_filter"), "1");
        assert_eq!(sysctl(&t, host, "eth0", "arp_announce"), "2");
        let v6 = text(t.exec(
            host,
            &["cat", "/proc/sys/net/ipv6/conf/vrrp.1/disable_ipv6"],
        ));
        assert_eq!(v6.trim(), "1", "{host}");
    }
    assert!(!holds(&t, "b", "vrrp.1"));

    // The client reaches the VIP, and its neighbour entry is the virtual MAC.
    assert_eq!(
        client_reaches_vip(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(neigh(&t).contains(VMAC), "{}", neigh(&t));

    // Failover: b becomes master and takes the VIP on its own vrrp.1; the client's entry is
    // still the same MAC (no ARP change needed) and its traffic reaches b.
    let a_index = link(&t, "a", "vrrp.1").unwrap_or_default();
    a.term();
    let g = b.wait_state(&t, "master", LONG);
    assert_eq!(g["interface"], "vrrp.1", "{g}");
    wait_for("the VIP on b's vrrp.1", LONG, || {
        holds(&t, "b", "vrrp.1").then_some(())
    });
    assert!(!holds(&t, "a", "vrrp.1"), "a released the VIP on SIGTERM");
    // lbd's stop leaves the macvlan: a restart is hitless.
    assert!(
        link(&t, "a", "vrrp.1").is_some(),
        "a's vrrp.1 went with lbd"
    );
    // Whatever state the entry is in right after the move (seen once: none, mid-probe), a
    // link-layer address it shows is the virtual MAC; after the next connection it must be.
    let n = neigh(&t);
    assert!(!n.contains("lladdr") || n.contains(VMAC), "{n}");
    assert_eq!(
        client_reaches_vip(&t),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the client's traffic reaches b"
    );
    assert!(neigh(&t).contains(VMAC), "{}", neigh(&t));
    let frames = cap.stop();

    // Adverts carried the virtual MAC as their source (a's and then b's), never a base MAC.
    let ads = adverts(&frames);
    assert!(ads.len() >= 5, "{} adverts", ads.len());
    assert!(
        ads.iter().all(|(mac, _, _)| *mac == VMAC_BYTES),
        "{:?}",
        ads.iter()
            .filter(|a| a.0 != VMAC_BYTES)
            .take(3)
            .collect::<Vec<_>>()
    );
    let from_a = ads
        .iter()
        .filter(|a| a.1.octets() == [192, 168, 10, 101])
        .count();
    let from_b = ads
        .iter()
        .filter(|a| a.1.octets() == [192, 168, 10, 102])
        .count();
    assert!(from_a > 0 && from_b > 0, "a: {from_a}, b: {from_b}");
    eprintln!(
        "captured {} adverts (a {from_a}, b {from_b}), all from {VMAC}; client: {}",
        ads.len(),
        neigh(&t).trim()
    );
    // a's stop advert (priority 0) went out of the macvlan too.
    assert!(ads
        .iter()
        .any(|a| a.1.octets() == [192, 168, 10, 101] && a.2 == 0));
    // Gratuitous ARPs: from the virtual MAC, announcing it.
    let garps = vip_garps(&frames);
    assert!(!garps.is_empty(), "no gratuitous ARP for the VIP");
    eprintln!(
        "{} gratuitous ARPs for the VIP, all from and for {VMAC}",
        garps.len()
    );
    assert!(
        garps.iter().all(|g| *g == (VMAC_BYTES, VMAC_BYTES)),
        "{garps:?}"
    );

    // a comes back: it adopts its macvlan (the same interface, not a new one) and preempts.
    a.spawn(&t);
    a.wait_state(&t, "master", LONG);
    wait_for("the VIP back on a only", LONG, || {
        (holds(&t, "a", "vrrp.1") && !holds(&t, "b", "vrrp.1")).then_some(())
    });
    let ifindex = |l: &str| l.split(':').next().unwrap_or("").to_string();
    assert_eq!(
        ifindex(&link(&t, "a", "vrrp.1").unwrap_or_default()),
        ifindex(&a_index),
        "a's vrrp.1 was recreated instead of adopted"
    );

    // vmac_xmit_base: a's adverts now leave from eth0 with eth0's MAC; the VIP and its
    // gratuitous ARPs stay on the macvlan. (The group restarts for it: b may master a moment.)
    let cap = t.capture("client");
    a.patch_group(&t, serde_json::json!({"vmac_xmit_base": true}));
    wait_for("a master again, on eth0", LONG, || {
        let g = a.group(&t);
        (g["state"] == "master" && g["interface"] == "eth0").then_some(())
    });
    wait_for("the VIP on a's vrrp.1 after the edit", LONG, || {
        (holds(&t, "a", "vrrp.1") && !holds(&t, "a", "eth0")).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let frames = cap.stop();
    let ads = adverts(&frames);
    let last_a: Vec<_> = ads
        .iter()
        .filter(|x| x.1.octets() == [192, 168, 10, 101] && x.2 == 150)
        .collect();
    eprintln!(
        "vmac_xmit_base: a's last adverts from {:?}",
        last_a.iter().rev().take(3).map(|x| x.0).collect::<Vec<_>>()
    );
    assert!(
        last_a.len() >= 3 && last_a.iter().rev().take(3).all(|x| x.0 == MAC_A),
        "a's adverts after vmac_xmit_base: {last_a:?}"
    );
    assert!(neigh(&t).contains(VMAC), "{}", neigh(&t));
    // The same macvlan (only where adverts go changed), and an event saying so.
    assert_eq!(
        ifindex(&link(&t, "a", "vrrp.1").unwrap_or_default()),
        ifindex(&a_index),
        "vmac_xmit_base recreated a's vrrp.1"
    );
    let ev = a.events(&t);
    assert!(
        ev.iter().any(|e| e["type"] == "vrrp_reconfigured"
            && e["in_place"] == false
            && e["changes"][0] == "virtual-MAC interface vrrp.1→vrrp.1 (adverts on eth0)"),
        "{ev:?}"
    );

    // The group goes: lbd removes the macvlan it made, with the VIP.
    let id = b.group_id(&t);
    let (code, v) = b.api(&t, "DELETE", &format!("/api/v1/vrrp-groups/{id}"), None);
    assert!(code == 200 || code == 204, "{code} {v}");
    wait_for("b's vrrp.1 removed with its group", LONG, || {
        link(&t, "b", "vrrp.1").is_none().then_some(())
    });
    // An interface of that name that lbd would not have made is left alone (refused).
    t.exec(
        "b",
        &[
            "ip", "link", "add", "vrrp.1", "type", "veth", "peer", "name", "x0",
        ],
    );
    b.import(&t, &conf("lk02", 100, "    use_vmac\n"));
    wait_for("the group refusing the foreign vrrp.1", LONG, || {
        let g = b.group(&t);
        g["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a private macvlan"))
            .then_some(())
    });
    let l = link(&t, "b", "vrrp.1").unwrap_or_default();
    assert!(l.contains("veth"), "{l}");
}

/// lbd and keepalived 2.2.7, both with `use_vmac`: they elect each other and fail over both
/// ways, and the client's neighbour entry is the virtual MAC throughout.
#[test]
fn lbd_and_keepalived_with_use_vmac_fail_over_both_ways() {
    if !privileged("vrrp_vmac_interop") || !keepalived_available("vrrp_vmac_interop") {
        return;
    }
    let t = topology("vmacka");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Director::start(&t, "a", dir.path(), &conf("lk01", 150, "    use_vmac\n"));
    a.wait_state(&t, "master", LONG);
    let mut k = Keepalived::start(&t, "b", dir.path(), &conf("lk02", 100, "    use_vmac\n"));
    wait_for("keepalived's vrrp.1", LONG, || {
        link(&t, "b", "vrrp.1").map(|_| ())
    });
    let l = link(&t, "b", "vrrp.1").unwrap_or_default();
    assert!(
        l.contains(&format!("link/ether {VMAC}")),
        "{l}\n{}",
        k.log_text()
    );
    // keepalived hears lbd (through its macvlan) and stays backup.
    std::thread::sleep(Duration::from_millis(800));
    assert!(holds(&t, "a", "vrrp.1"));
    assert!(!holds(&t, "b", "vrrp.1"), "{}", k.log_text());
    assert_eq!(
        client_reaches_vip(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(neigh(&t).contains(VMAC), "{}", neigh(&t));
    // lbd stops: keepalived takes over on its vrrp.1 and the client's traffic reaches it.
    a.term();
    wait_for("keepalived master with the VIP", LONG, || {
        holds(&t, "b", "vrrp.1").then_some(())
    });
    wait_for("the client to reach keepalived", LONG, || {
        (client_reaches_vip(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    // keepalived leaves arp_announce as it is: its ARP for the client, from eth0, names the
    // VIP as sender, and the client may now file the VIP under keepalived's eth0 MAC (lbd sets
    // arp_announce=2 on the parent; see README).
    eprintln!("client with keepalived master: {}", neigh(&t).trim());
    // lbd comes back with the higher priority: it hears keepalived, preempts, and keepalived
    // lets go; lbd's gratuitous ARPs (from the virtual MAC) put the client back on it.
    a.spawn(&t);
    a.wait_state(&t, "master", LONG);
    wait_for("the VIP back on lbd only", LONG, || {
        (holds(&t, "a", "vrrp.1") && !holds(&t, "b", "vrrp.1")).then_some(())
    });
    wait_for("the client's entry on the virtual MAC", LONG, || {
        neigh(&t).contains(VMAC).then_some(())
    });
    wait_for("the client to reach lbd", LONG, || {
        (client_reaches_vip(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    assert!(neigh(&t).contains(VMAC), "{}", neigh(&t));
    // keepalived stops (and removes its macvlan); lbd's side is untouched.
    k.term();
    assert!(holds(&t, "a", "vrrp.1"));
    assert_eq!(
        client_reaches_vip(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
}

// IPv6 (keepalived's `use_vmac` on a VRRPv3 IPv6 instance): the virtual MAC is
// 00:00:5e:00:02:VRID; the macvlan gets no address of the kernel's making (addrgenmode none)
// but the parent's link-local address, which the adverts come from (RFC 5798 5.1.2.1).

const VIP6: &str = "2001:db8:10::100";
const VMAC6: &str = "00:00:5e:00:02:01";
const VMAC6_BYTES: [u8; 6] = [0, 0, 0x5e, 0, 2, 1];
/// The hosts' link-local addresses: EUI-64 of 02:00:00:00:00:0N.
const LL_A: &str = "fe80::ff:fe00:1";
const LL_B: &str = "fe80::ff:fe00:2";
/// Link-local duplicate address detection (about a second) comes before any advert.
const LONG6: Duration = Duration::from_secs(20);

/// a, b and a client with 2001:db8:10::50/64, every eth0's link-local address settled (until
/// then neither lbd nor keepalived can send an advert).
fn topology6(name: &str) -> Topology {
    let t = topology(name);
    for h in ["a", "b", "client"] {
        wait_for("the link-local address to settle", LONG6, || {
            let a = addrs6(&t, h, "eth0");
            (a.contains("fe80::") && !a.contains("tentative")).then_some(())
        });
    }
    let out = t.exec(
        "client",
        &[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:10::50/64",
            "dev",
            "eth0",
            "nodad",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    t
}

fn conf6(router_id: &str, priority: u8, extra: &str) -> Conf {
    let mut c = conf(router_id, priority, extra);
    c.vip = format!("{VIP6}/64");
    c
}

/// `host`'s IPv6 addresses on `dev` as `ip -6 -o addr` lists them.
fn addrs6(t: &Topology, host: &str, dev: &str) -> String {
    text(t.exec(host, &["ip", "-6", "-o", "addr", "show", "dev", dev]))
}

/// Whether `dev` in `host` holds the IPv6 VIP, usable (not tentative).
fn holds6(t: &Topology, host: &str, dev: &str) -> bool {
    addrs6(t, host, dev)
        .lines()
        .any(|l| l.contains(&format!("{VIP6}/64")) && !l.contains("tentative"))
}

fn neigh6(t: &Topology) -> String {
    text(t.exec("client", &["ip", "-6", "neigh", "show", VIP6]))
}

fn client_reaches_vip6(t: &Topology) -> Option<std::io::ErrorKind> {
    t.in_host("client", || {
        let addr = format!("[{VIP6}]:9").parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .err()
            .map(|e| e.kind())
    })
}

/// The VRRPv3 adverts over IPv6 among captured frames: (Ethernet source, IP source, priority).
fn adverts6(frames: &[Vec<u8>]) -> Vec<([u8; 6], std::net::Ipv6Addr, u8)> {
    use pnet_packet::ipv6::Ipv6Packet;
    frames
        .iter()
        .filter_map(|f| {
            let e = EthernetPacket::new(f)?;
            if e.get_ethertype() != EtherTypes::Ipv6 {
                return None;
            }
            let ip = Ipv6Packet::new(e.payload())?;
            if ip.get_next_header() != IpNextHeaderProtocols::Vrrp {
                return None;
            }
            Some((
                e.get_source().octets(),
                ip.get_source(),
                *ip.payload().get(2)?,
            ))
        })
        .collect()
}

/// The unsolicited NAs for the IPv6 VIP among captured frames: (Ethernet source, target
/// link-layer address).
fn vip_nas(frames: &[Vec<u8>]) -> Vec<([u8; 6], [u8; 6])> {
    let vip: std::net::Ipv6Addr = VIP6.parse().unwrap();
    frames
        .iter()
        .filter_map(|f| {
            let na = lbd::kernel::ndisc::parse_na(f)?;
            let src = EthernetPacket::new(f)?.get_source().octets();
            (na.target == vip).then_some((src, na.mac))
        })
        .collect()
}

#[test]
fn an_ipv6_vip_lives_on_the_virtual_mac_and_a_failover_keeps_the_clients_neighbour_entry() {
    if !privileged("vrrp_vmac6") {
        return;
    }
    let t = topology6("vmac6");
    let dir = tempfile::tempdir().unwrap();
    let cap = t.capture("client");
    let mut a = Director::start(&t, "a", dir.path(), &conf6("lk01", 150, "    use_vmac\n"));
    let b = Director::start(&t, "b", dir.path(), &conf6("lk02", 100, "    use_vmac\n"));
    let g = a.wait_state(&t, "master", LONG6);
    assert_eq!(g["interface"], "vrrp.1", "{g}");
    assert_eq!(g["primary_address"], LL_A, "{g}");
    // b hears a through its own macvlan (the adverts carry the MAC b's macvlan has too).
    wait_for("b to follow a", LONG6, || {
        let g = b.group(&t);
        (g["state"] == "backup" && g["master_address"] == LL_A).then_some(())
    });
    wait_for("the VIP on a's vrrp.1", LONG6, || {
        holds6(&t, "a", "vrrp.1").then_some(())
    });

    // Both directors: the macvlan with the IPv6 virtual MAC, no address of the kernel's
    // making, and the parent's own link-local address (no duplicate between them), usable.
    for (host, ll) in [("a", LL_A), ("b", LL_B)] {
        let l = link(&t, host, "vrrp.1").unwrap_or_else(|| panic!("no vrrp.1 on {host}"));
        assert!(l.contains("vrrp.1@eth0"), "{host}: {l}");
        assert!(l.contains(&format!("link/ether {VMAC6}")), "{host}: {l}");
        assert!(l.contains("macvlan mode private"), "{host}: {l}");
        assert!(l.contains("addrgenmode none"), "{host}: {l}");
        assert!(l.contains(",UP"), "{host}: {l}");
        let v6 = addrs6(&t, host, "vrrp.1");
        let lls: Vec<&str> = v6.lines().filter(|l| l.contains("fe80::")).collect();
        assert_eq!(lls.len(), 1, "{host}: {v6}");
        // As keepalived leaves it: no DAD, deprecated (never a source the kernel picks).
        assert!(
            lls[0].contains(&format!("{ll}/64"))
                && lls[0].contains("nodad")
                && lls[0].contains("deprecated")
                && !lls[0].contains("tentative"),
            "{host}: {v6}"
        );
        assert!(!holds6(&t, host, "eth0"), "{host}'s eth0 holds the VIP");
        let cat = |key: &str| {
            let path = format!("/proc/sys/net/ipv6/conf/vrrp.1/{key}");
            text(t.exec(host, &["cat", &path])).trim().to_string()
        };
        assert_eq!(cat("disable_ipv6"), "0", "{host}");
        assert_eq!(cat("router_solicitations"), "0", "{host}");
        // No IPv4 ARP sysctls on the parent for an IPv6 group.
        assert_eq!(sysctl(&t, host, "eth0", "arp_ignore"), "0", "{host}");
    }
    assert!(!holds6(&t, "b", "vrrp.1"));

    // The client reaches the VIP, and its neighbour entry is the virtual MAC.
    assert_eq!(
        client_reaches_vip6(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));

    // Failover: b takes the VIP on its own vrrp.1; the client's entry stays the virtual MAC.
    let t0 = std::time::Instant::now();
    a.term();
    let g = b.wait_state(&t, "master", LONG6);
    assert_eq!(g["interface"], "vrrp.1", "{g}");
    wait_for("the VIP on b's vrrp.1", LONG6, || {
        holds6(&t, "b", "vrrp.1").then_some(())
    });
    let took = t0.elapsed();
    assert!(!holds6(&t, "a", "vrrp.1"), "a released the VIP on SIGTERM");
    assert!(
        link(&t, "a", "vrrp.1").is_some(),
        "a's vrrp.1 went with lbd"
    );
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    assert_eq!(
        client_reaches_vip6(&t),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the client's traffic reaches b"
    );
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    eprintln!("IPv6 failover: b holds the VIP {took:?} after SIGTERM to a");
    let frames = cap.stop();

    // Adverts: from the virtual MAC, each from its director's link-local address.
    let ads = adverts6(&frames);
    // At least a's adverts as master, its priority 0 on SIGTERM and b's first as master (how
    // many more depends on how fast the failover went).
    assert!(ads.len() >= 3, "{} adverts", ads.len());
    assert!(
        ads.iter().all(|(mac, _, _)| *mac == VMAC6_BYTES),
        "{:?}",
        ads.iter()
            .filter(|a| a.0 != VMAC6_BYTES)
            .take(3)
            .collect::<Vec<_>>()
    );
    let from = |ll: &str| ads.iter().filter(|a| a.1.to_string() == ll).count();
    let (from_a, from_b) = (from(LL_A), from(LL_B));
    assert_eq!(from_a + from_b, ads.len(), "{ads:?}");
    assert!(from_a > 0 && from_b > 0, "a: {from_a}, b: {from_b}");
    assert!(ads.iter().any(|a| a.1.to_string() == LL_A && a.2 == 0));
    assert!(ads.iter().any(|a| a.1.to_string() == LL_A && a.2 != 0));
    // Unsolicited NAs for the VIP: from the virtual MAC, announcing it.
    let nas = vip_nas(&frames);
    assert!(!nas.is_empty(), "no NA for the VIP");
    assert!(
        nas.iter().all(|n| *n == (VMAC6_BYTES, VMAC6_BYTES)),
        "{nas:?}"
    );
    // No router solicitation ever left a macvlan (ICMPv6 type 133 from the virtual MAC).
    let rs = frames.iter().filter(|f| {
        EthernetPacket::new(f).is_some_and(|e| {
            e.get_source().octets() == VMAC6_BYTES
                && e.get_ethertype() == EtherTypes::Ipv6
                && e.payload().get(6) == Some(&58)
                && e.payload().get(40) == Some(&133)
        })
    });
    assert_eq!(rs.count(), 0, "a router solicitation from the virtual MAC");
    eprintln!(
        "captured {} IPv6 adverts (a {from_a}, b {from_b}), all from {VMAC6}; {} NAs from and for it; client: {}",
        ads.len(),
        nas.len(),
        neigh6(&t).trim()
    );

    // a comes back and preempts on the same (adopted) macvlan.
    a.spawn(&t);
    a.wait_state(&t, "master", LONG6);
    wait_for("the VIP back on a only", LONG6, || {
        (holds6(&t, "a", "vrrp.1") && !holds6(&t, "b", "vrrp.1")).then_some(())
    });
    assert_eq!(
        client_reaches_vip6(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));

    // vmac_xmit_base: a's adverts leave eth0 with eth0's MAC, from eth0's link-local address;
    // the macvlan keeps the VIP and loses the link-local address it no longer sends from.
    let cap = t.capture("client");
    a.patch_group(&t, serde_json::json!({"vmac_xmit_base": true}));
    wait_for("a master again, on eth0", LONG6, || {
        let g = a.group(&t);
        (g["state"] == "master" && g["interface"] == "eth0").then_some(())
    });
    wait_for("the VIP on a's vrrp.1 after the edit", LONG6, || {
        (holds6(&t, "a", "vrrp.1") && !holds6(&t, "a", "eth0")).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let frames = cap.stop();
    let last_a: Vec<_> = adverts6(&frames)
        .into_iter()
        .filter(|x| x.1.to_string() == LL_A && x.2 == 150)
        .collect();
    assert!(
        last_a.len() >= 3 && last_a.iter().rev().take(3).all(|x| x.0 == MAC_A),
        "a's adverts after vmac_xmit_base: {last_a:?}"
    );
    let v6 = addrs6(&t, "a", "vrrp.1");
    assert!(!v6.contains("fe80::"), "{v6}");
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    // The edit restarted a's group and b mastered a moment. When b let go of the VIP, its
    // macvlan's MLD report (leaving the VIP's solicited-node group) came from the virtual MAC
    // after a's NAs, and the bridge learned that MAC on b's port; a's adverts no longer carry
    // it, so only a's next NA burst (garp_master_delay, 5 s) teaches the bridge back, as with
    // keepalived (which drops such reports only with its optional nftables/iptables rules).
    let t0 = std::time::Instant::now();
    wait_for("the client to reach a again", LONG6, || {
        (client_reaches_vip6(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    eprintln!(
        "vmac_xmit_base: the client reaches a again {:?} after a was master on eth0",
        t0.elapsed()
    );
}

/// lbd and keepalived 2.2.7, both with `use_vmac` on an IPv6 group: keepalived's macvlan is
/// set up as lbd's (virtual MAC, addrgenmode none, the parent's link-local address); they
/// elect each other and fail over both ways (each master and backup of the other), the
/// client's entry the virtual MAC throughout.
#[test]
fn lbd_and_keepalived_with_ipv6_use_vmac_fail_over_both_ways() {
    if !privileged("vrrp_vmac6_interop") || !keepalived_available("vrrp_vmac6_interop") {
        return;
    }
    let t = topology6("vmac6ka");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Director::start(&t, "a", dir.path(), &conf6("lk01", 150, "    use_vmac\n"));
    a.wait_state(&t, "master", LONG6);
    let mut k = Keepalived::start(&t, "b", dir.path(), &conf6("lk02", 100, "    use_vmac\n"));
    wait_for(
        "keepalived's vrrp.1 with its link-local address",
        LONG6,
        || addrs6(&t, "b", "vrrp.1").contains("fe80::").then_some(()),
    );
    // keepalived's macvlan is what lbd makes: compare a's and b's.
    for host in ["a", "b"] {
        let l = link(&t, host, "vrrp.1").unwrap_or_default();
        assert!(
            l.contains(&format!("link/ether {VMAC6}")) && l.contains("addrgenmode none"),
            "{host}: {l}\n{}",
            k.log_text()
        );
    }
    // The same address state on both: the parent's link-local address, nodad, deprecated.
    let state = |host: &str| {
        let v6 = addrs6(&t, host, "vrrp.1");
        let l = v6
            .lines()
            .find(|l| l.contains("fe80::"))
            .unwrap_or_default();
        ["scope link", "nodad", "deprecated", "preferred_lft 0sec"]
            .iter()
            .filter(|w| l.contains(*w))
            .count()
    };
    let kv6 = addrs6(&t, "b", "vrrp.1");
    assert!(kv6.contains(&format!("{LL_B}/64")), "{kv6}");
    assert!(addrs6(&t, "a", "vrrp.1").contains(&format!("{LL_A}/64")));
    assert_eq!(
        (state("a"), state("b")),
        (4, 4),
        "{kv6}\n{}",
        addrs6(&t, "a", "vrrp.1")
    );
    eprintln!("keepalived's vrrp.1: {}", kv6.trim());
    // keepalived hears lbd (through its macvlan) and stays backup.
    std::thread::sleep(Duration::from_millis(800));
    assert!(holds6(&t, "a", "vrrp.1"));
    assert!(!holds6(&t, "b", "vrrp.1"), "{}", k.log_text());
    assert!(
        !k.log_text().contains("Entering MASTER STATE"),
        "{}",
        k.log_text()
    );
    assert_eq!(
        client_reaches_vip6(&t),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    // lbd stops: keepalived takes over on its vrrp.1.
    let t0 = std::time::Instant::now();
    a.term();
    wait_for("keepalived master with the VIP", LONG6, || {
        holds6(&t, "b", "vrrp.1").then_some(())
    });
    eprintln!(
        "lbd -> keepalived: VIP on keepalived {:?} after SIGTERM",
        t0.elapsed()
    );
    wait_for("the client to reach keepalived", LONG6, || {
        (client_reaches_vip6(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    // lbd comes back with the higher priority: it hears keepalived (from keepalived's
    // link-local address), preempts, and keepalived lets go.
    a.spawn(&t);
    let t0 = std::time::Instant::now();
    a.wait_state(&t, "master", LONG6);
    wait_for("the VIP back on lbd only", LONG6, || {
        (holds6(&t, "a", "vrrp.1") && !holds6(&t, "b", "vrrp.1")).then_some(())
    });
    eprintln!(
        "keepalived -> lbd: VIP back on lbd only {:?} after its start",
        t0.elapsed()
    );
    let g = a.group(&t);
    assert_eq!(g["counters"]["checksum_errors"], 0, "{g}");
    assert!(
        g["counters"]["adverts_received"].as_u64().unwrap_or(0) > 0,
        "lbd heard keepalived: {g}"
    );
    wait_for("the client to reach lbd", LONG6, || {
        (client_reaches_vip6(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    let log = k.log_text();
    assert!(
        log.lines()
            .rev()
            .find(|l| l.contains("Entering"))
            .is_some_and(|l| l.contains("BACKUP")),
        "keepalived back to backup:\n{log}"
    );
    // lbd drops below keepalived: keepalived preempts (lbd's lower-priority advert, heard on
    // its macvlan), lbd follows it as backup, and the client keeps the virtual MAC.
    a.patch_node(&t, serde_json::json!({"priority": 50}));
    wait_for("lbd backup of keepalived", LONG6, || {
        let g = a.group(&t);
        (g["state"] == "backup" && g["master_address"] == LL_B && g["master_priority"] == 100)
            .then_some(())
    });
    wait_for("the VIP on keepalived only", LONG6, || {
        (holds6(&t, "b", "vrrp.1") && !holds6(&t, "a", "vrrp.1")).then_some(())
    });
    wait_for("the client to reach keepalived", LONG6, || {
        (client_reaches_vip6(&t) == Some(std::io::ErrorKind::ConnectionRefused)).then_some(())
    });
    assert!(neigh6(&t).contains(VMAC6), "{}", neigh6(&t));
    // keepalived stops: lbd takes over again.
    k.term();
    a.wait_state(&t, "master", LONG6);
    wait_for("the VIP on lbd after keepalived's stop", LONG6, || {
        holds6(&t, "a", "vrrp.1").then_some(())
    });
}
