//! Unsolicited Neighbor Advertisements (RFC 4861 section 7.2.6): IPv6's gratuitous ARP. A new
//! master multicasts one per virtual IPv6 address to all nodes, Override set, so every
//! neighbour cache on the link points the address at the new master's MAC.
//!
//! ```text
//!  Ethernet II (RFC 2464 section 7)       IPv6 (RFC 8200 section 3)
//!  +-------------------------------+      +-------+---------------+-----------------------+
//!  | destination 33:33:00:00:00:01 |      |Ver = 6| Traffic Cl = 0| Flow Label = 0        |
//!  | source MAC (interface)        |      +-------+-------+-------+-----------------------+
//!  | EtherType = 0x86dd            |      | Payload Length = 32   | Next = 58 | Hop = 255 |
//!  +-------------------------------+      | Source Address: the virtual address           |
//!                                         | Destination Address: ff02::1 (all nodes)      |
//!                                         +-----------------------------------------------+
//!
//!  Neighbor Advertisement (RFC 4861 section 4.4)
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |   Type = 136  |   Code = 0    |          Checksum             |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |R|S|O|                     Reserved                            |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |                Target Address: the virtual address            |
//!  |                          (16 bytes)                           |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  | Type = 2      | Length = 1    |  Target Link-Layer Address    |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+         (our MAC)             +
//!  |                                                               |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! S (solicited) is clear: nobody asked. O (override) is set. R (router) is set when the
//! interface forwards IPv6, as keepalived 2.2.7 does (a director forwarding for its real servers
//! is a router to them; an NA with R clear would make hosts drop it from their router list,
//! RFC 4861 section 7.2.5). The source is the virtual address itself, as keepalived's. The
//! checksum is ICMPv6's (RFC 4443 section 2.3), over the IPv6 pseudo-header.
//!
//! Built with `pnet_packet`; read back with it too, except the options, which lbd walks itself
//! (pnet 0.35 computes an option's length as `length * 8` in a `u8`, which overflows).

use std::net::Ipv6Addr;

use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags, NeighborAdvertPacket,
};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::Packet;

/// EtherType of IPv6 (`ETH_P_IPV6` in `linux/if_ether.h`).
pub const ETH_P_IPV6: u16 = 0x86dd;
/// All-nodes multicast (RFC 4291 section 2.7.1), where unsolicited NAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Its Ethernet address (RFC 2464 section 7: 33:33 and the low 32 bits).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// Hop limit of every Neighbor Discovery message (RFC 4861 section 7.1.2).
pub const NDISC_HOPLIMIT: u8 = 255;
/// `ND_OPT_TARGET_LINKADDR` (RFC 4861 section 4.6.1).
pub const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// `ND_NA_FLAG_ROUTER` (`netinet/icmp6.h`, first byte after the checksum).
pub const ND_NA_FLAG_ROUTER: u8 = NeighborAdvertFlags::Router;
/// `ND_NA_FLAG_SOLICITED`.
pub const ND_NA_FLAG_SOLICITED: u8 = NeighborAdvertFlags::Solicited;
/// `ND_NA_FLAG_OVERRIDE`.
pub const ND_NA_FLAG_OVERRIDE: u8 = NeighborAdvertFlags::Override;

const ETHERNET_HEADER_LEN: usize = EthernetPacket::minimum_packet_size();
const IPV6_HEADER_LEN: usize = Ipv6Packet::minimum_packet_size();
/// `struct nd_neighbor_advert`: type, code, checksum, flags and reserved, target.
const NA_LEN: usize = NeighborAdvertPacket::minimum_packet_size();
/// The Target Link-Layer Address option for Ethernet: 8 bytes.
const OPTION_LEN: usize = 8;
const ICMP_LEN: usize = NA_LEN + OPTION_LEN;
/// The whole frame: 14 + 40 + 24 + 8.
pub const FRAME_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + ICMP_LEN;
const _: () = assert!(FRAME_LEN == 86);

/// The whole Ethernet frame advertising `addr` at `mac`; `router` sets the R flag.
pub fn na_frame(mac: [u8; 6], addr: Ipv6Addr, router: bool) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let (eth, rest) = f.split_at_mut(ETHERNET_HEADER_LEN);
    let (ip, icmp) = rest.split_at_mut(IPV6_HEADER_LEN);
    // Every slice is at least the minimum size of its packet, so `new` is always `Some`.
    if let Some(mut e) = MutableEthernetPacket::new(eth) {
        e.set_destination(ALL_NODES_MAC.into());
        e.set_source(mac.into());
        e.set_ethertype(EtherTypes::Ipv6);
    }
    if let Some(mut p) = MutableIpv6Packet::new(ip) {
        p.set_version(6);
        p.set_payload_length(ICMP_LEN as u16);
        p.set_next_header(IpNextHeaderProtocols::Icmpv6);
        p.set_hop_limit(NDISC_HOPLIMIT);
        p.set_source(addr);
        p.set_destination(ALL_NODES);
    }
    if let Some(mut na) = MutableNeighborAdvertPacket::new(&mut icmp[..NA_LEN]) {
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        let r = if router { ND_NA_FLAG_ROUTER } else { 0 };
        na.set_flags(r | ND_NA_FLAG_OVERRIDE);
        na.set_target_addr(addr);
    }
    icmp[NA_LEN] = ND_OPT_TARGET_LINKADDR;
    icmp[NA_LEN + 1] = (OPTION_LEN / 8) as u8;
    icmp[NA_LEN + 2..].copy_from_slice(&mac);
    let sum = Icmpv6Packet::new(icmp).map(|p| icmpv6::checksum(&p, &addr, &ALL_NODES));
    if let Some(sum) = sum {
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    f
}

/// What an unsolicited Neighbor Advertisement announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// The Target Link-Layer Address option's MAC.
    pub mac: [u8; 6],
    /// The target address.
    pub target: Ipv6Addr,
    /// The R flag.
    pub router: bool,
}

/// Reads a frame as an unsolicited NA that overrides: Ethernet + IPv6 (no extension headers),
/// ICMPv6 type 136 code 0 with a good checksum, hop limit 255, S clear and O set, with a
/// Target Link-Layer Address option of 6 bytes. `None` for anything else.
pub fn parse_na(frame: &[u8]) -> Option<Announcement> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new(eth.payload())?;
    if ip.get_version() != 6
        || ip.get_next_header() != IpNextHeaderProtocols::Icmpv6
        || ip.get_hop_limit() != NDISC_HOPLIMIT
    {
        return None;
    }
    // pnet's payload is cut to the payload length when it fits, else the whole rest.
    let icmp = ip.payload();
    if usize::from(ip.get_payload_length()) != icmp.len() || icmp.len() < NA_LEN {
        return None;
    }
    let sum = icmpv6::checksum(
        &Icmpv6Packet::new(icmp)?,
        &ip.get_source(),
        &ip.get_destination(),
    );
    let na = NeighborAdvertPacket::new(icmp)?;
    if na.get_icmpv6_type() != Icmpv6Types::NeighborAdvert
        || na.get_icmpv6_code() != Icmpv6Code(0)
        || na.get_checksum() != sum
    {
        return None;
    }
    let flags = na.get_flags();
    if flags & ND_NA_FLAG_SOLICITED != 0 || flags & ND_NA_FLAG_OVERRIDE == 0 {
        return None;
    }
    let mac = target_link_addr(&icmp[NA_LEN..])?;
    Some(Announcement {
        mac,
        target: na.get_target_addr(),
        router: flags & ND_NA_FLAG_ROUTER != 0,
    })
}

/// The first Target Link-Layer Address option of 6 bytes among `options` (RFC 4861 section
/// 4.6: type, length in units of 8 bytes, never 0). Bounded: each step moves on by at least 8.
fn target_link_addr(mut options: &[u8]) -> Option<[u8; 6]> {
    while let [ty, len, ..] = *options {
        let n = usize::from(len) * 8;
        if n == 0 || n > options.len() {
            return None;
        }
        if ty == NdpOptionTypes::TargetLLAddr.0 && n == OPTION_LEN {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&options[2..8]);
            return Some(mac);
        }
        options = &options[n..];
    }
    None
}

/// Whether interface `ifname` forwards IPv6 (`net.ipv6.conf.<ifname>.forwarding`, of the
/// caller's network namespace): the R flag of its NAs. Unreadable counts as not forwarding.
pub fn forwarding(ifname: &str) -> bool {
    if ifname.contains('/') || ifname.starts_with('.') {
        return false;
    }
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .is_ok_and(|s| s.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac() -> [u8; 6] {
        [0x02, 0x00, 0x00, 0x00, 0x00, 0x66]
    }

    #[test]
    fn a_frame_reads_back_and_its_checksum_is_ones_complement_zero() {
        let vip: Ipv6Addr = "2001:db8:10::100".parse().unwrap();
        for router in [false, true] {
            let f = na_frame(mac(), vip, router);
            assert_eq!(
                parse_na(&f),
                Some(Announcement {
                    mac: mac(),
                    target: vip,
                    router
                })
            );
            // Fixed fields where RFC 4861 puts them.
            assert_eq!(&f[..6], &ALL_NODES_MAC);
            assert_eq!(&f[12..14], &ETH_P_IPV6.to_be_bytes());
            assert_eq!(f[14] >> 4, 6);
            assert_eq!((f[20], f[21]), (58, 255));
            assert_eq!(&f[38..54], &ALL_NODES.octets());
            assert_eq!(f[54], 136);
            assert_eq!(f[58], if router { 0xa0 } else { 0x20 });
            assert_eq!(&f[62..78], &vip.octets());
            assert_eq!(&f[78..80], &[2, 1]);
            assert_eq!(&f[80..86], &mac());
            // The sum over pseudo-header and message, checksum included, is 0xffff.
            let mut ph = Vec::new();
            ph.extend_from_slice(&f[22..54]);
            ph.extend_from_slice(&(ICMP_LEN as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, 58]);
            ph.extend_from_slice(&f[54..]);
            let mut sum: u32 = ph
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff);
        }
    }

    /// tests/data/keepalived-v6 (README.md), frame 7: the first of the 5 unsolicited NAs
    /// keepalived 2.2.7 (lk01, MAC 02:00:00:00:00:01, IPv6 forwarding off) sent on becoming
    /// master for 2001:db8:10::100.
    const KEEPALIVED_NA: &str =
        "33330000000102000000000186dd6000000000203aff20010db800100000000000000000\
        0100ff0200000000000000000000000000018800f70c2000000020010db80010000000000000000001000201\
        020000000001";

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn encodes_what_keepalived_sends_and_decodes_it_back() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip: Ipv6Addr = "2001:db8:10::100".parse().unwrap();
        let theirs = hex(KEEPALIVED_NA);
        assert_eq!(na_frame(mac, vip, false).as_slice(), theirs.as_slice());
        assert_eq!(
            parse_na(&theirs),
            Some(Announcement {
                mac,
                target: vip,
                router: false
            })
        );
    }

    #[test]
    fn other_frames_are_not_announcements() {
        let vip: Ipv6Addr = "2001:db8:10::100".parse().unwrap();
        let good = na_frame(mac(), vip, false);
        let with = |at: usize, v: u8| {
            let mut f = good;
            f[at] = v;
            f
        };
        assert!(parse_na(&good[..60]).is_none());
        assert!(parse_na(&with(21, 64)).is_none(), "hop limit 64");
        assert!(parse_na(&with(54, 135)).is_none(), "a solicitation");
        assert!(parse_na(&with(58, 0x60)).is_none(), "solicited");
        assert!(parse_na(&with(58, 0x00)).is_none(), "no override");
        assert!(parse_na(&with(85, 0x67)).is_none(), "bad checksum");
        assert!(parse_na(&with(79, 0)).is_none(), "option length 0");
        assert!(parse_na(&with(79, 200)).is_none(), "option past the end");
        assert!(
            parse_na(&with(78, 1)).is_none(),
            "source, not target, option"
        );
        assert!(parse_na(&with(12, 0x08)).is_none(), "not IPv6");
    }
}
