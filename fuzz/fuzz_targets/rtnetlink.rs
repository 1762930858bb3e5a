//! Fuzzes the rtnetlink answer decoding: finding the ack (NLMSG_ERROR) of a request in a
//! datagram of netlink messages (`linux/netlink.h`), and the error its code stands for. No
//! datagram may panic, and what follows an ack found cannot change it.
//!
//! Input layout: bytes 0..4 the request's sequence number, the rest the received datagram.
#![no_main]

use lbd::kernel::rtnl::ack_code;
use lbd::netlink::ack_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let seq = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    let dgram = &data[4..];
    let Some(code) = ack_code(dgram, seq) else {
        return;
    };
    // What AddressSocket makes of it: 0 is done, anything else an error.
    assert_eq!(ack_error(code).is_none(), code == 0);
    // The walk stops at the ack: whatever the kernel sends after it cannot change the answer.
    let mut longer = dgram.to_vec();
    longer.extend_from_slice(dgram);
    assert_eq!(ack_code(&longer, seq), Some(code));
});
