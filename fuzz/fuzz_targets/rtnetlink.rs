//! Fuzzes the rtnetlink answer decoding: finding the ack (NLMSG_ERROR) of a request in a
//! datagram of netlink messages (`linux/netlink.h`, walked by
//! `lbd::kernel::nlsocket::messages` and read with neli's types), with its extended ack's text, and the error its code stands for. No
//! datagram may panic, and what follows an ack found cannot change it. The same bytes as the
//! body of an RTM_NEWLINK and an RTM_NEWADDR (`kernel::interface`'s readers, neli's
//! `Ifinfomsg`/`Ifaddrmsg`, and `kernel::vmac`'s link detail): no panic, and a link-local
//! address found is one. The same datagram as route-group notifications
//! (`lbd::kernel::rtnl::parse_deletions`, the VRRP engine's watch of its addresses, routes
//! and rules): no panic.
//!
//! Input layout: bytes 0..4 the request's sequence number, the rest the received datagram.
#![no_main]

use lbd::kernel::rtnl::ack;
use lbd::kernel::nlsocket::ack_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let seq = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    let dgram = &data[4..];
    let _ = lbd::kernel::interface::parse_link(dgram);
    let _ = lbd::kernel::interface::parse_ipv4_address(dgram, seq, "eth0");
    if let Ok(Some(a)) = lbd::kernel::interface::parse_ipv6_link_local(dgram, seq) {
        assert!(a.is_unicast_link_local());
    }
    // kernel::vmac's reader of the same answer (nested IFLA_LINKINFO): a mode is a macvlan's.
    if let Ok(d) = lbd::kernel::vmac::parse_link_detail(dgram) {
        assert!(d.macvlan_mode.is_none() || d.kind.as_deref() == Some("macvlan"));
    }
    // The VRRP engine's watch: deletions of addresses, routes and rules; never more than
    // the messages there are (16 bytes of header and a body at least).
    let gone = lbd::kernel::rtnl::parse_deletions(dgram);
    assert!(gone.len() <= dgram.len() / 24);
    let Some(found) = ack(dgram, seq) else {
        return;
    };
    let code = found.code;
    // What AddressSocket makes of it: 0 is done, anything else an error.
    assert_eq!(ack_error(code).is_none(), code == 0);
    // The walk stops at the ack: whatever the kernel sends after it cannot change the answer.
    let mut longer = dgram.to_vec();
    longer.extend_from_slice(dgram);
    assert_eq!(ack(&longer, seq), Some(found.clone()));
    // The refusal keeps the code's errno and the kernel's text.
    let text = found.ext_ack.clone();
    if let Some(r) = found.refusal() {
        assert_eq!(r.ext_ack, text);
    }
});
