//! Fuzzes the VRRP receive path from the raw socket on: the IPv4 datagram is split into header
//! fields and payload (`vrrp::network::parse_ipv4`), routed by VRID (`peek_vrid`), its IP
//! header checked (`validate_ip_header`) and the payload decoded with the datagram's own
//! addresses. No datagram may panic; the payload must lie inside the datagram, and a packet
//! that decodes must have the VRID it was routed by.
#![no_main]

use std::net::IpAddr;

use lbd::dataplane::vrrp::network::parse_ipv4;
use lbd::dataplane::vrrp::packet::{decode, peek_vrid, validate_ip_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
