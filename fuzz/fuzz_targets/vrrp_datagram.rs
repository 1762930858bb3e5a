//! Fuzzes the VRRP receive path from the raw sockets on.
//!
//! IPv4: the datagram is split into header fields and payload (`vrrp::network::parse_ipv4`),
//! routed by VRID (`peek_vrid`), its IP header checked (`validate_ip_header`) and the payload
//! decoded with the datagram's own addresses. No datagram may panic; the payload must lie inside
//! the datagram, and a packet that decodes must have the VRID it was routed by.
//!
//! IPv6 (input layout: byte 0 the control buffer's length n, then n bytes of the control
//! buffer of a `recvmsg`, then the VRRP message): the control messages are read by
//! `parse_cmsgs` (hand-written over `struct cmsghdr`): no panic, and what it finds survives
//! bytes appended after it unchanged. With a hop limit and a destination found, the message is checked
//! and decoded as an IPv6 advert from a link-local source to that destination.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use lbd::dataplane::vrrp::network::{parse_cmsgs, parse_ipv4};
use lbd::dataplane::vrrp::packet::{decode, peek_vrid, validate_ip_header, IP_PROTOCOL_VRRP};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = data.first().map_or(0, |&n| usize::from(n));
    let control = data.get(1..).unwrap_or_default();
    let (control, message) = control.split_at(n.min(control.len()));
    let c = parse_cmsgs(control);
    let mut longer = control.to_vec();
    longer.extend_from_slice(&[0xff; 64]);
    let l = parse_cmsgs(&longer);
    // Appended bytes can add messages, never change one already read.
    if c.hop_limit.is_some() {
        assert_eq!(l.hop_limit, c.hop_limit);
    }
    if c.dst.is_some() {
        assert_eq!((l.dst, l.ifindex), (c.dst, c.ifindex));
    }
    if let (Some(ttl), Some(dst)) = (c.hop_limit, c.dst) {
        // keepalived lk01's link-local address: the seed from its capture decodes.
        let src = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1));
        let dst = IpAddr::V6(dst);
        let _ = validate_ip_header(ttl, IP_PROTOCOL_VRRP, dst, None);
        if let Ok(p) = decode(message, src, dst) {
            assert_eq!(Some(p.vrid), peek_vrid(message));
            assert!(p.addresses.iter().all(IpAddr::is_ipv6));
        }
    }

    let Some(r) = parse_ipv4(data) else {
        return;
    };
    assert!(r.payload.len() <= data.len().saturating_sub(20));
    let Some(vrid) = peek_vrid(r.payload) else {
        return;
    };
    let (src, dst) = (IpAddr::V4(r.src), IpAddr::V4(r.dst));
    let _ = validate_ip_header(r.ttl, r.protocol, dst, Some(dst));
    if let Ok(p) = decode(r.payload, src, dst) {
        assert_eq!(p.vrid, vrid);
    }
});
