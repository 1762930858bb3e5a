//! The network-namespace topology helper itself: hosts on a bridge talk, the root namespace sees
//! nothing of them, and teardown leaves nothing behind. Needs root (see support/netns.rs).

#[path = "support/netns.rs"]
mod netns;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::Packet;

use netns::{privileged, Topology};

#[test]
fn two_hosts_on_a_bridge_exchange_a_packet_and_teardown_is_complete() {
    if !privileged("two_hosts_on_a_bridge_exchange_a_packet_and_teardown_is_complete") {
        return;
    }
    let root_links_before = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap()
        .stdout;
    let names;
    {
        let mut t = Topology::new("pair");
        t.add_host("a", "192.168.77.1/24");
        t.add_host("b", "192.168.77.2/24");
        names = t.existing();
        assert_eq!(names.len(), 3, "bridge + 2 hosts: {names:?}");

        // b listens; a sends; b receives the payload from a's address; a capture on b's eth0
        // sees the frame.
        let cap = t.capture("b");
        let server = t.in_host("b", || {
            let s = UdpSocket::bind("192.168.77.2:9000").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        });
        t.in_host("a", || {
            let s = UdpSocket::bind("192.168.77.1:0").unwrap();
            // The first datagram may wait for ARP; send a few.
            for _ in 0..3 {
                s.send_to(b"hello from a", "192.168.77.2:9000").unwrap();
            }
        });
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).expect("b receives a's datagram");
        assert_eq!(&buf[..n], b"hello from a");
        assert_eq!(from.ip().to_string(), "192.168.77.1");
        let frames = cap.stop();
        let udp = frames
            .iter()
            .filter_map(|f| EthernetPacket::new(f))
            .find(|e| {
                e.get_ethertype() == EtherTypes::Ipv4
                    && Ipv4Packet::new(e.payload()).is_some_and(|ip| {
                        ip.get_next_level_protocol() == IpNextHeaderProtocols::Udp
                            && ip.payload().ends_with(b"hello from a")
                    })
            })
            .expect("the UDP frame was captured");
        assert_eq!(
            udp.get_source().octets(),
            [2, 0, 0, 0, 0, 1],
            "sent by a's eth0 (MAC of host 1)"
        );
        let ip = Ipv4Packet::new(udp.payload()).expect("IPv4");
        assert_eq!(ip.get_source(), Ipv4Addr::new(192, 168, 77, 1));
        assert!(
            frames
                .iter()
                .filter_map(|f| EthernetPacket::new(f))
                .any(|e| e.get_ethertype() == EtherTypes::Arp),
            "and the ARP exchange before it"
        );

        // A command in a namespace sees its own interface; the root namespace has no route there.
        let out = t.exec("a", &["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("192.168.77.1/24"));
        let route = Command::new("ip")
            .args(["route", "get", "192.168.77.2"])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&route.stdout).contains("dev p"),
            "the root namespace must not reach the test hosts"
        );
    }
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap()
        .stdout;
    let left = String::from_utf8_lossy(&left);
    for n in &names {
        assert!(!left.contains(n.as_str()), "{n} survived teardown");
    }
    let root_links_after = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(
        root_links_before, root_links_after,
        "the root namespace's links are unchanged"
    );
}

#[test]
fn teardown_happens_when_a_test_panics() {
    if !privileged("teardown_happens_when_a_test_panics") {
        return;
    }
    let r = std::panic::catch_unwind(|| {
        let mut t = Topology::new("panic");
        t.add_host("x", "192.168.78.1/24");
        assert_eq!(t.existing().len(), 2);
        panic!("a failing test");
    });
    assert!(r.is_err());
    let left = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap()
        .stdout;
    assert!(
        !String::from_utf8_lossy(&left).contains("lbdt-panic"),
        "namespaces left after a panic"
    );
}

#[test]
fn realserver_up_and_down_in_a_namespace() {
    if !privileged("realserver_up_and_down_in_a_namespace") {
        return;
    }
    let mut t = Topology::new("rs");
    t.add_host("rs1", "192.168.79.3/24");
    let lbd = env!("CARGO_BIN_EXE_lbd");
    let run = |args: &[&str]| {
        let out = t.exec("rs1", &[&[lbd][..], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sysctl = |k: &str| {
        String::from_utf8_lossy(
            &t.exec("rs1", &["cat", &format!("/proc/sys/net/ipv4/conf/{k}")])
                .stdout,
        )
        .trim()
        .to_string()
    };
    let lo = || {
        String::from_utf8_lossy(
            &t.exec("rs1", &["ip", "-o", "addr", "show", "dev", "lo"])
                .stdout,
        )
        .into_owned()
    };

    let out = run(&["realserver", "up", "--vip", "192.168.79.100"]);
    assert!(out.contains("added 192.168.79.100/32 to lo"), "{out}");
    assert!(
        out.contains("net.ipv4.conf.all.arp_ignore = 1 (was 0)"),
        "{out}"
    );
    assert!(lo().contains("192.168.79.100/32"));
    for conf in ["all", "default", "lo"] {
        assert_eq!(sysctl(&format!("{conf}/arp_ignore")), "1");
        assert_eq!(sysctl(&format!("{conf}/arp_announce")), "2");
    }
    // Idempotent.
    assert_eq!(
        run(&["realserver", "up", "--vip", "192.168.79.100"]).trim(),
        "nothing to change"
    );
    // The root namespace is untouched.
    let root_lo = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap()
        .stdout;
    assert!(!String::from_utf8_lossy(&root_lo).contains("192.168.79.100"));

    let out = run(&["realserver", "down", "--vip", "192.168.79.100"]);
    assert!(
        out.contains("removed 192.168.79.100/32 from lo")
            && out.contains("arp_announce = 0 (was 2)"),
        "{out}"
    );
    assert!(!lo().contains("192.168.79.100"));
    assert_eq!(sysctl("all/arp_ignore"), "0");
    assert_eq!(
        run(&["realserver", "down", "--vip", "192.168.79.100"]).trim(),
        "nothing to change"
    );
}

/// rtnetlink through neli, inside a host's namespace: the interface reads (index, MAC, state,
/// IPv4 addresses in the kernel's order), a virtual address added and removed with its acks
/// (EEXIST and EADDRNOTAVAIL are answers, not errors), and a link change heard by the VRRP
/// thread's link monitor.
#[test]
fn rtnetlink_reads_writes_and_hears_links_in_a_namespace() {
    if !privileged("rtnetlink_reads_writes_and_hears_links_in_a_namespace") {
        return;
    }
    let mut t = Topology::new("rtnl");
    t.add_host("a", "192.168.78.1/24");
    t.in_host("a", || {
        use lbd::kernel::netlink::NetlinkKernel;
        use lbd::kernel::{interface, rtnl::LinkMonitor, Kernel};
        use lbd::model::VirtualAddress;

        let info = interface::info("eth0").unwrap();
        assert!(info.up, "{info:?}");
        assert_ne!(info.mac, [0; 6]);
        assert_eq!(interface::index("eth0").unwrap(), info.index);
        let primary: Ipv4Addr = "192.168.78.1".parse().unwrap();
        assert_eq!(interface::ipv4_addresses("eth0").unwrap(), vec![primary]);

        let mut k = NetlinkKernel::new();
        let vip: VirtualAddress = "192.168.78.100/32".parse().unwrap();
        assert!(k.address_add("eth0", &vip).unwrap());
        assert!(!k.address_add("eth0", &vip).unwrap(), "already there");
        assert_eq!(
            interface::ipv4_addresses("eth0").unwrap(),
            vec![primary, "192.168.78.100".parse::<Ipv4Addr>().unwrap()]
        );
        assert!(k.address_del("eth0", &vip).unwrap());
        assert!(!k.address_del("eth0", &vip).unwrap(), "already gone");
        assert!(k.address_add("nosuch0", &vip).is_err());

        let m = LinkMonitor::open().unwrap();
        assert!(!m.drain());
        let down = Command::new("ip")
            .args(["link", "set", "eth0", "down"])
            .status()
            .unwrap();
        assert!(down.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !m.drain() {
            assert!(std::time::Instant::now() < deadline, "no link event");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!interface::info("eth0").unwrap().up);
    });
}
