//! Gratuitous ARP (RFC 5227 section 3 "ARP Announcement", RFC 5944 section 4.6): an ARP request
//! whose sender and target protocol address are both the virtual address, broadcast, so every
//! host and switch on the segment learns the new master's MAC for it.
//!
//! ```text
//!  Ethernet II                          ARP (RFC 826)
//!  0                   1                 0                   1                   2                   3
//!  +-----------------------------+       +-------------------------------+-------------------------------+
//!  | destination MAC (broadcast) |       | HTYPE = 1 (Ethernet)          | PTYPE = 0x0800 (IPv4)         |
//!  | source MAC (interface)      |       | HLEN = 6      | PLEN = 4      | OPER = 1 (request)            |
//!  | EtherType = 0x0806          |       | SHA: sender MAC (6) | SPA: virtual address (4)                |
//!  +-----------------------------+       | THA: ff:ff:ff:ff:ff:ff (6) | TPA: virtual address (4)          |
//!                                        +---------------------------------------------------------------+
//! ```
//!
//! The layout, including THA = broadcast, is what keepalived 2.2.7 sends (checked byte for byte
//! against its capture in the tests). Linux hosts update an existing neighbour entry on such a
//! request (`arp_process`: `sip == tip` is a gratuitous ARP and overrides the lock time).
//!
//! The frames are built and read with `pnet_packet`; the socket is socket2's.

use std::io;
use std::mem;
use std::net::Ipv4Addr;

use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::Packet;
use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

/// EtherType of ARP (`ETH_P_ARP` in `linux/if_ether.h`).
pub const ETH_P_ARP: u16 = 0x0806;
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
pub const FRAME_LEN: usize = ETHERNET_HEADER_LEN + ArpPacket::minimum_packet_size();
const ETHERNET_HEADER_LEN: usize = EthernetPacket::minimum_packet_size();
const _: () = assert!(FRAME_LEN == 42);

/// The whole Ethernet frame announcing `addr` at `mac`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let (eth, arp) = f.split_at_mut(ETHERNET_HEADER_LEN);
    // Both halves are exactly the minimum size of their packet, so `new` is always `Some`.
    if let Some(mut e) = MutableEthernetPacket::new(eth) {
        e.set_destination(BROADCAST.into());
        e.set_source(mac.into());
        e.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut a) = MutableArpPacket::new(arp) {
        a.set_hardware_type(ArpHardwareTypes::Ethernet);
        a.set_protocol_type(EtherTypes::Ipv4);
        a.set_hw_addr_len(6);
        a.set_proto_addr_len(4);
        a.set_operation(ArpOperations::Request);
        a.set_sender_hw_addr(mac.into());
        a.set_sender_proto_addr(addr);
        a.set_target_hw_addr(BROADCAST.into());
        a.set_target_proto_addr(addr);
    }
    f
}

/// What a gratuitous ARP frame announces: (sender MAC, address), or `None` for any other frame.
/// Request or reply alike (RFC 5227 allows both as announcements).
pub fn parse_garp(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    // pnet reads the addresses at the offsets of Ethernet/IPv4 whatever the lengths say.
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
    {
        return None;
    }
    let spa = arp.get_sender_proto_addr();
    if spa != arp.get_target_proto_addr() {
        return None;
    }
    Some((arp.get_sender_hw_addr().octets(), spa))
}

/// The link-layer address frames go to: interface `ifindex`, Ethernet address `dst`,
/// EtherType `protocol` (`struct sockaddr_ll`).
///
/// Hand-written: socket2 builds IPv4, IPv6 and Unix addresses only, and the `SockAddr` of any
/// other family comes from its storage and length, which the caller must vouch for.
fn link_addr(ifindex: u32, protocol: u16, dst: [u8; 6]) -> io::Result<SockAddr> {
    let ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of this platform's sockaddr types and smaller than the storage
    // (view_as's condition); the storage then holds an AF_PACKET address of exactly
    // size_of::<sockaddr_ll>() bytes, the family and length SockAddr::new is told.
    Ok(unsafe {
        let sll = storage.view_as::<libc::sockaddr_ll>();
        sll.sll_family = libc::AF_PACKET as libc::sa_family_t;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex = ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        SockAddr::new(
            storage,
            mem::size_of::<libc::sockaddr_ll>() as socket2::socklen_t,
        )
    })
}

/// An AF_PACKET socket that sends ready-made frames out of one interface.
pub struct PacketSocket {
    sock: Socket,
}

impl PacketSocket {
    pub fn open() -> io::Result<PacketSocket> {
        // Protocol 0: send only, receive nothing (no frames are queued on this socket).
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)?;
        Ok(PacketSocket { sock })
    }

    /// Sends an ARP frame, to broadcast.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        self.send_to(ifindex, ETH_P_ARP, BROADCAST, frame)
    }

    /// Sends a frame of EtherType `protocol` to Ethernet address `dst`.
    pub fn send_to(
        &self,
        ifindex: u32,
        protocol: u16,
        dst: [u8; 6],
        frame: &[u8],
    ) -> io::Result<()> {
        self.sock
            .send_to(frame, &link_addr(ifindex, protocol, dst)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `../shared/vectors/keepalived/test_vectors.txt`, vector `garp_takeover`: the first of the
    /// 5 gratuitous ARPs keepalived 2.2.7 (lk02, MAC 02:00:c0:a8:0a:66) sent on becoming master
    /// for VIP 192.168.10.100, captured on the bridge in network namespaces.
    const KEEPALIVED_GARP: &str =
        "ffffffffffff0200c0a80a66080600010800060400010200c0a80a66c0a80a64ffffffffffffc0a80a64";

    #[test]
    fn encodes_what_keepalived_sends_and_decodes_it_back() {
        let mac = [0x02, 0x00, 0xc0, 0xa8, 0x0a, 0x66];
        let vip = Ipv4Addr::new(192, 168, 10, 100);
        let ours = garp_frame(mac, vip);
        let theirs = hex(KEEPALIVED_GARP);
        assert_eq!(ours.as_slice(), theirs.as_slice());
        assert_eq!(parse_garp(&theirs), Some((mac, vip)));
    }

    /// The hand-built sockaddr_ll (socket2 builds no link-layer address): an AF_PACKET address
    /// of its full size; an index the kernel's int cannot hold is refused, not wrapped.
    #[test]
    fn link_addresses_are_packet_addresses() {
        let a = link_addr(3, ETH_P_ARP, BROADCAST).unwrap();
        assert_eq!(i32::from(a.family()), libc::AF_PACKET);
        assert_eq!(a.len() as usize, mem::size_of::<libc::sockaddr_ll>());
        assert_eq!(
            link_addr(u32::MAX, ETH_P_ARP, BROADCAST)
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn other_frames_are_not_gratuitous_arp() {
        let mut f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        f[41] = 2; // target differs from sender: an ordinary request
        assert_eq!(parse_garp(&f), None);
        assert_eq!(parse_garp(&f[..20]), None);
        let mut ip = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        ip[12..14].copy_from_slice(&EtherTypes::Ipv4.0.to_be_bytes());
        assert_eq!(parse_garp(&ip), None);
        // pnet reads the addresses where Ethernet/IPv4 puts them: other lengths are refused.
        let mut long = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        long[18] = 8;
        assert_eq!(parse_garp(&long), None);
        // An announcement sent as a reply (RFC 5227 section 3 allows it) is one too.
        let mut reply = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        reply[21] = 2;
        assert_eq!(
            parse_garp(&reply),
            Some(([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1)))
        );
    }

    /// Hex (whitespace ignored) to bytes; a copy of the VRRP tests' helper, so the kernel layer's
    /// tests do not import the data plane.
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert_eq!(digits.len() % 2, 0, "odd hex length");
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }
}
