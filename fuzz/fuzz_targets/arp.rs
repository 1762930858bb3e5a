//! Fuzzes the takeover announcement parsers.
//!
//! Gratuitous ARP (Ethernet II + ARP, RFC 826 / RFC 5227 section 3): no frame may panic, and
//! whatever it accepts must be the frame lbd itself would send for that sender and address
//! (same ARP body; the Ethernet addresses are not part of the announcement).
//!
//! Unsolicited Neighbor Advertisement (Ethernet II + IPv6 + ICMPv6 136, RFC 4861 section
//! 7.2.6, with lbd's own walk of the NDP options): no frame may panic, and what it accepts
//! announces the same as lbd's own frame for that MAC, target and R flag.
#![no_main]

use lbd::kernel::garp::{garp_frame, parse_garp, FRAME_LEN};
use lbd::kernel::ndisc::{na_frame, parse_na};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(a) = parse_na(data) {
        assert_eq!(parse_na(&na_frame(a.mac, a.target, a.router)), Some(a));
    }
    let Some((mac, addr)) = parse_garp(data) else {
        return;
    };
    let ours = garp_frame(mac, addr);
    assert_eq!(parse_garp(&ours), Some((mac, addr)));
    // Same EtherType, hardware/protocol types and lengths, sender and protocol addresses.
    assert_eq!(&data[12..20], &ours[12..20]);
    assert_eq!(&data[22..32], &ours[22..32]);
    assert_eq!(&data[38..FRAME_LEN], &ours[38..FRAME_LEN]);
});
