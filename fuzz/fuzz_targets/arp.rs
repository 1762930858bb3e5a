//! Fuzzes the gratuitous-ARP frame parser (Ethernet II + ARP, RFC 826 / RFC 5227 section 3): no
//! frame may panic, and whatever it accepts must be the frame lbd itself would send for that
//! sender and address (same ARP body; the Ethernet addresses are not part of the announcement).
#![no_main]

use lbd::kernel::garp::{garp_frame, parse_garp, FRAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
