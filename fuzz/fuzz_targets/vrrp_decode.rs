//! Fuzzes the VRRP decoder: no input may panic, and whatever decodes must re-encode and decode
//! to the same packet (bytes identical except VRRPv3's reserved bits, sent as zero).
//!
//! Input layout: byte 0 picks the IP families, the next 32 bytes give the IP source and
//! destination (4 or 16 bytes each), the rest is the VRRP message.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbd::dataplane::vrrp::packet::{decode, Version, VrrpPacket};
use libfuzzer_sys::fuzz_target;

fn addr(v6: bool, b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 33 {
        return;
    }
    let src = addr(data[0] & 1 != 0, &data[1..17]);
    let dst = addr(data[0] & 2 != 0, &data[17..33]);
    let bytes = &data[33..];
    let Ok(p) = decode(bytes, src, dst) else {
        return;
    };
    let again = p.encode(src, dst).expect("a decoded packet encodes");
    let q = decode(&again, src, dst).expect("an encoded packet decodes");
    assert_eq!(VrrpPacket { checksum: p.checksum, ..q }, p);
    let rsvd = matches!(p.version, Version::V3 { .. }) && bytes[4] & 0xf0 != 0;
    if !rsvd {
        assert_eq!(again, bytes);
    }
});
