//! keepalived 2.2.7 wire vectors, decoded and re-encoded byte for byte.
//!
//! Bytes copied from shared/vectors/keepalived/test_vectors.txt (captured between lk01
//! 192.168.10.101 prio 100 and lk02 192.168.10.102 prio 90, VIP 192.168.10.100, VRID 1; v2 with
//! auth PASS "1234567"). Each constant names the section ([...]) it comes from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::hex;
use crate::dataplane::vrrp::packet::{
    decode, validate_ip_header, AuthPass, AuthType, DecodeError, IpHeaderError, Version,
    IP_PROTOCOL_VRRP,
};
use crate::dataplane::vrrp::{Action, Input, Instance, InstanceConfig};
use crate::model::{Centiseconds, VrrpGroup};

/// [vrrpv2_advert] frame_hex: lk01 MASTER, prio 100, advert_int 1, auth PASS '1234567'.
const V2_ADVERT_FRAME: &str = "01005e0000120200c0a80a65080045c0002800030000ff700f83c0a80a65e000
0012210164010101de52c0a80a643132333435363700";
/// [vrrpv2_advert] vrrp_hex.
const V2_ADVERT: &str = "210164010101de52c0a80a643132333435363700";
/// [vrrpv2_advert_backup_takeover] vrrp_hex: lk02 (prio 90) right after takeover.
const V2_ADVERT_LK02: &str = "21015a010101e852c0a80a643132333435363700";
/// [vrrpv2_prio0] vrrp_hex: lk01's priority-0 advert on SIGTERM.
const V2_PRIO0: &str = "2101000101014253c0a80a643132333435363700";
/// [vrrpv3_advert] frame_hex: lk01, prio 100, 1 s = 100 cs.
const V3_ADVERT_FRAME: &str = "01005e0000120200c0a80a65080045c0002000030000ff700f8bc0a80a65e000
0012310164010064f3efc0a80a64";
/// [vrrpv3_advert] vrrp_hex.
const V3_ADVERT: &str = "310164010064f3efc0a80a64";
/// [vrrpv3_prio0] vrrp_hex.
const V3_PRIO0: &str = "31010001006457f0c0a80a64";
/// [vrrpv3_advert_10ms] vrrp_hex: advert_int 1 cs.
const V3_ADVERT_10MS: &str = "310164010001f452c0a80a64";

const LK01: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 101);
const LK02: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 102);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 100);
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// Decodes `hex` from `src` to 224.0.0.18 and checks that encoding the result gives the
/// same bytes.
fn roundtrip(vector: &str, src: Ipv4Addr) -> crate::dataplane::vrrp::VrrpPacket {
    let bytes = hex(vector);
    let p = decode(&bytes, v4(src), v4(GROUP)).unwrap();
    assert_eq!(
        p.encode(v4(src), v4(GROUP)).unwrap(),
        bytes,
        "re-encode {vector}"
    );
    p
}

#[test]
fn v2_advert_decodes_and_reencodes() {
    let p = roundtrip(V2_ADVERT, LK01);
    assert_eq!(p.vrid.get(), 1);
    assert_eq!(p.priority, 100);
    assert_eq!(p.count_ip, 1);
    assert_eq!(p.checksum, 0xde52);
    assert_eq!(p.addresses, vec![v4(VIP)]);
    assert_eq!(p.advert_interval(), Duration::from_secs(1));
    let Version::V2 {
        auth_type,
        adver_int,
        auth_data,
    } = p.version
    else {
        panic!("not v2: {p:?}");
    };
    assert_eq!(auth_type, AuthType::SimplePassword);
    assert_eq!(adver_int, 1);
    assert_eq!(&auth_data, b"1234567\0");
    assert!(AuthPass::new("1234567").unwrap().matches(&auth_data));
    assert!(!AuthPass::new("1234568").unwrap().matches(&auth_data));
    assert!(!AuthPass::new("123456").unwrap().matches(&auth_data));
}

#[test]
fn v2_other_vectors_roundtrip() {
    let p = roundtrip(V2_ADVERT_LK02, LK02);
    assert_eq!((p.priority, p.checksum), (90, 0xe852));
    let p = roundtrip(V2_PRIO0, LK01);
    assert_eq!((p.priority, p.checksum), (0, 0x4253));
}

#[test]
fn v2_checksum_does_not_cover_the_ip_addresses() {
    // RFC 3768 section 5.3.8: over the VRRP message only, so any src/dst decode the same.
    let bytes = hex(V2_ADVERT);
    let other = v4(Ipv4Addr::new(10, 0, 0, 1));
    assert!(decode(&bytes, other, other).is_ok());
}

#[test]
fn v3_vectors_roundtrip_with_pseudo_header() {
    let p = roundtrip(V3_ADVERT, LK01);
    assert_eq!(
        p.version,
        Version::V3 {
            max_adver_int: Centiseconds(100)
        }
    );
    assert_eq!((p.priority, p.checksum), (100, 0xf3ef));
    assert_eq!(p.addresses, vec![v4(VIP)]);
    let p = roundtrip(V3_PRIO0, LK01);
    assert_eq!((p.priority, p.checksum), (0, 0x57f0));
    let p = roundtrip(V3_ADVERT_10MS, LK01);
    assert_eq!(p.advert_interval(), Duration::from_millis(10));
    assert_eq!(p.checksum, 0xf452);
}

#[test]
fn v3_checksum_covers_the_pseudo_header() {
    // RFC 5798 section 5.2.8: the same bytes from another source fail the checksum.
    let bytes = hex(V3_ADVERT);
    let err = decode(&bytes, v4(LK02), v4(GROUP)).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadChecksum {
                received: 0xf3ef,
                ..
            }
        ),
        "{err}"
    );
}

/// Splits an untagged Ethernet + IPv4 (IHL 5) frame into (ttl, protocol, src, dst, payload).
fn split_frame(frame: &[u8]) -> (u8, u8, IpAddr, IpAddr, &[u8]) {
    let ip = &frame[14..];
    assert_eq!(ip[0], 0x45);
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    (ip[8], ip[9], v4(src), v4(dst), &ip[20..total])
}

#[test]
fn full_frames_pass_the_ip_header_checks() {
    for frame in [V2_ADVERT_FRAME, V3_ADVERT_FRAME] {
        let frame = hex(frame);
        let (ttl, proto, src, dst, payload) = split_frame(&frame);
        assert_eq!((ttl, proto), (255, IP_PROTOCOL_VRRP));
        validate_ip_header(ttl, proto, dst, None).unwrap();
        let p = decode(payload, src, dst).unwrap();
        assert_eq!(p.encode(src, dst).unwrap(), payload);
    }
    assert_eq!(
        validate_ip_header(64, 112, v4(GROUP), None),
        Err(IpHeaderError::BadTtl(64))
    );
    assert_eq!(
        validate_ip_header(255, 17, v4(GROUP), None),
        Err(IpHeaderError::BadProtocol(17))
    );
    let me = v4(LK01);
    assert_eq!(
        validate_ip_header(255, 112, me, None),
        Err(IpHeaderError::BadDestination(me))
    );
    assert_eq!(validate_ip_header(255, 112, me, Some(me)), Ok(()));
}

/// The test bed's keepalived configuration as an lbd group.
fn group(version: u8, advert_ms: u32) -> VrrpGroup {
    let auth = if version == 2 {
        serde_json::json!("1234567")
    } else {
        serde_json::Value::Null
    };
    let mut g = serde_json::json!({
        "name": "VI_1",
        "vrid": 1,
        "version": version,
        "advert_interval_ms": advert_ms,
        "virtual_addresses": ["192.168.10.100/24"],
        "nodes": [
            {"node": "lk01", "priority": 100, "interface": "eth0"},
            {"node": "lk02", "priority": 90, "interface": "eth0"}
        ]
    });
    if !auth.is_null() {
        g["auth_pass"] = auth;
    }
    serde_json::from_value(g).unwrap()
}

fn instance(version: u8, advert_ms: u32, node: &str, addr: Ipv4Addr) -> Instance {
    let g = group(version, advert_ms);
    let n = g.node(node).unwrap();
    Instance::new(InstanceConfig::from_model(&g, n, v4(addr)).unwrap())
}

/// The bytes of the first SendAdvert in `actions`, encoded for each destination.
fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert {
                packet,
                src,
                destinations,
            } => Some(
                destinations
                    .iter()
                    .map(|d| packet.encode(*src, *d).unwrap())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn our_adverts_are_keepalived_bytes() {
    let t0 = Instant::now();
    for (version, ms, vector, prio0) in [
        (2, 1000, V2_ADVERT, V2_PRIO0),
        (3, 1000, V3_ADVERT, V3_PRIO0),
        (3, 10, V3_ADVERT_10MS, ""),
    ] {
        let mut lk01 = instance(version, ms, "lk01", LK01);
        lk01.on_input(Input::Startup, t0);
        let down = lk01
            .deadline(crate::dataplane::vrrp::Timer::MasterDown)
            .unwrap();
        let acts = lk01.on_input(
            Input::TimerExpired(crate::dataplane::vrrp::Timer::MasterDown),
            down,
        );
        assert_eq!(sent(&acts), vec![hex(vector)], "v{version} {ms} ms");
        if !prio0.is_empty() {
            let acts = lk01.on_input(Input::Shutdown, down);
            assert_eq!(sent(&acts), vec![hex(prio0)], "v{version} priority 0");
        }
    }
}

#[test]
fn lk02_takeover_advert_is_keepalived_bytes() {
    // [vrrpv2_prio0] arrives at lk02 (Backup), which takes over after Skew_Time and sends
    // [vrrpv2_advert_backup_takeover].
    let t0 = Instant::now();
    let mut lk02 = instance(2, 1000, "lk02", LK02);
    lk02.on_input(Input::Startup, t0);
    let acts = lk02.on_input(
        Input::Datagram {
            src: v4(LK01),
            dst: v4(GROUP),
            ttl: 255,
            bytes: hex(V2_PRIO0),
        },
        t0,
    );
    // Skew_Time for priority 90: (256 - 90) / 256 s.
    let at = t0 + Duration::from_nanos(166 * 3_906_250);
    assert_eq!(
        acts,
        vec![Action::StartTimer {
            timer: crate::dataplane::vrrp::Timer::MasterDown,
            at
        }]
    );
    let acts = lk02.on_input(
        Input::TimerExpired(crate::dataplane::vrrp::Timer::MasterDown),
        at,
    );
    assert_eq!(sent(&acts), vec![hex(V2_ADVERT_LK02)]);
}

// ---- VRRPv3 over IPv6 ---------------------------------------------------------------------------
//
// keepalived 2.2.7 captured by tests/data/keepalived-v6/capture.sh (see its README.md):
// lk01 fe80::ff:fe00:1 prio 100, lk02 fe80::ff:fe00:2 prio 90, VRID 1, advert 1 s, VIP
// 2001:db8:10::100, to ff02::12. Frame numbers are the pcap's.

/// Frame 6: lk01's first advert as master (Ethernet + IPv6 + VRRP).
const V6_ADVERT_FRAME: &str = "33330000001202000000000186dd6c040b17001870fffe800000000000000000
00fffe000001ff0200000000000000000000000000123101640100643eb120010db8001000000000000000000100";
/// Frame 15: lk01's priority-0 advert on SIGTERM.
const V6_PRIO0_FRAME: &str = "33330000001202000000000186dd6c040b17001870fffe800000000000000000
00fffe000001ff020000000000000000000000000012310100010064a2b120010db8001000000000000000000100";
/// Frame 16: lk02's first advert after taking over.
const V6_TAKEOVER_FRAME: &str = "33330000001202000000000286dd6c026cfd001870fffe8000000000000000
0000fffe000002ff02000000000000000000000000001231015a01006448b020010db8001000000000000000000100";

/// Splits an untagged Ethernet + IPv6 frame without extension headers into (traffic class,
/// hop limit, next header, src, dst, payload).
fn split_frame6(frame: &[u8]) -> (u8, u8, u8, IpAddr, IpAddr, &[u8]) {
    let ip = &frame[14..];
    assert_eq!(ip[0] >> 4, 6);
    let tclass = (ip[0] << 4) | (ip[1] >> 4);
    let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let src = <[u8; 16]>::try_from(&ip[8..24]).unwrap();
    let dst = <[u8; 16]>::try_from(&ip[24..40]).unwrap();
    (
        tclass,
        ip[7],
        ip[6],
        IpAddr::V6(Ipv6Addr::from(src)),
        IpAddr::V6(Ipv6Addr::from(dst)),
        &ip[40..40 + len],
    )
}

const V6_LK01: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
const V6_LK02: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 2);

fn group6() -> VrrpGroup {
    serde_json::from_value(serde_json::json!({
        "name": "VI_6",
        "vrid": 1,
        "version": 3,
        "advert_interval_ms": 1000,
        "virtual_addresses": ["2001:db8:10::100/64"],
        "nodes": [
            {"node": "lk01", "priority": 100, "interface": "eth0"},
            {"node": "lk02", "priority": 90, "interface": "eth0"}
        ]
    }))
    .unwrap()
}

fn instance6(node: &str, addr: Ipv6Addr) -> Instance {
    let g = group6();
    let n = g.node(node).unwrap();
    Instance::new(InstanceConfig::from_model(&g, n, IpAddr::V6(addr)).unwrap())
}

#[test]
fn v6_vectors_decode_pass_the_header_checks_and_reencode() {
    let vip: IpAddr = "2001:db8:10::100".parse().unwrap();
    for (frame, src, prio) in [
        (V6_ADVERT_FRAME, V6_LK01, 100),
        (V6_PRIO0_FRAME, V6_LK01, 0),
        (V6_TAKEOVER_FRAME, V6_LK02, 90),
    ] {
        let frame = hex(frame);
        let (tclass, hops, next, s, d, payload) = split_frame6(&frame);
        // keepalived's IPv6 adverts: CS6 traffic class (lbd sets IPV6_TCLASS alike), hop 255.
        assert_eq!((tclass, hops, next), (0xc0, 255, IP_PROTOCOL_VRRP));
        assert_eq!(s, IpAddr::V6(src));
        validate_ip_header(hops, next, d, None).unwrap();
        let p = decode(payload, s, d).unwrap();
        assert_eq!(p.priority, prio);
        assert_eq!(p.addresses, vec![vip]);
        assert_eq!(
            p.version,
            Version::V3 {
                max_adver_int: Centiseconds(100)
            }
        );
        assert_eq!(p.encode(s, d).unwrap(), payload);
        // The checksum covers the IPv6 pseudo-header: from another source it is wrong.
        let moved = IpAddr::V6(if src == V6_LK01 { V6_LK02 } else { V6_LK01 });
        assert!(matches!(
            decode(payload, moved, d),
            Err(DecodeError::BadChecksum { .. })
        ));
    }
}

#[test]
fn our_ipv6_adverts_are_keepalived_bytes() {
    let t0 = Instant::now();
    let mut lk01 = instance6("lk01", V6_LK01);
    lk01.on_input(Input::Startup, t0);
    let down = lk01
        .deadline(crate::dataplane::vrrp::Timer::MasterDown)
        .unwrap();
    let acts = lk01.on_input(
        Input::TimerExpired(crate::dataplane::vrrp::Timer::MasterDown),
        down,
    );
    let theirs = hex(V6_ADVERT_FRAME);
    assert_eq!(sent(&acts), vec![split_frame6(&theirs).5.to_vec()]);
    let acts = lk01.on_input(Input::Shutdown, down);
    let prio0 = hex(V6_PRIO0_FRAME);
    assert_eq!(sent(&acts), vec![split_frame6(&prio0).5.to_vec()]);

    // lk02 hears lk01's priority 0 and takes over with keepalived's bytes.
    let mut lk02 = instance6("lk02", V6_LK02);
    lk02.on_input(Input::Startup, t0);
    let (_, hops, _, s, d, payload) = split_frame6(&prio0);
    lk02.on_input(
        Input::Datagram {
            src: s,
            dst: d,
            ttl: hops,
            bytes: payload.to_vec(),
        },
        t0,
    );
    let at = lk02
        .deadline(crate::dataplane::vrrp::Timer::MasterDown)
        .unwrap();
    let acts = lk02.on_input(
        Input::TimerExpired(crate::dataplane::vrrp::Timer::MasterDown),
        at,
    );
    let takeover = hex(V6_TAKEOVER_FRAME);
    assert_eq!(sent(&acts), vec![split_frame6(&takeover).5.to_vec()]);
    // The takeover announces the VIP (the engine sends NAs for IPv6 addresses).
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::SendGarp { addresses, .. }
            if addresses.iter().any(|v| v.address.is_ipv6())
    )));
}
