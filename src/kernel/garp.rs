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

use std::io;
use std::mem;
use std::net::Ipv4Addr;

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

/// EtherType of ARP (`ETH_P_ARP` in `linux/if_ether.h`).
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv4 (`ETH_P_IP`).
pub const ETH_P_IP: u16 = 0x0800;
/// `ARPHRD_ETHER` (`linux/if_arp.h`).
pub const ARPHRD_ETHER: u16 = 1;
/// `ARPOP_REQUEST`.
pub const ARPOP_REQUEST: u16 = 1;
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
pub const FRAME_LEN: usize = 42;

/// The whole Ethernet frame announcing `addr` at `mac`.
pub fn garp_frame(mac: [u8; 6], addr: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&addr.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&addr.octets());
    f
}

/// What a gratuitous ARP frame announces: (sender MAC, address), or `None` for any other frame.
pub fn parse_garp(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    if frame.len() < FRAME_LEN
        || frame[12..14] != ETH_P_ARP.to_be_bytes()
        || frame[14..16] != ARPHRD_ETHER.to_be_bytes()
        || frame[16..18] != ETH_P_IP.to_be_bytes()
        || frame[18] != 6
        || frame[19] != 4
    {
        return None;
    }
    let spa = Ipv4Addr::new(frame[28], frame[29], frame[30], frame[31]);
    let tpa = Ipv4Addr::new(frame[38], frame[39], frame[40], frame[41]);
    if spa != tpa {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[22..28]);
    Some((mac, spa))
}

/// The link-layer address frames go to: interface `ifindex`, broadcast, EtherType ARP
/// (`struct sockaddr_ll`).
///
/// Hand-written: socket2 builds IPv4, IPv6 and Unix addresses only, and the `SockAddr` of any
/// other family comes from its storage and length, which the caller must vouch for.
fn link_addr(ifindex: u32) -> io::Result<SockAddr> {
    let ifindex =
        i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of this platform's sockaddr types and smaller than the storage
    // (view_as's condition); the storage then holds an AF_PACKET address of exactly
    // size_of::<sockaddr_ll>() bytes, the family and length SockAddr::new is told.
    Ok(unsafe {
        let sll = storage.view_as::<libc::sockaddr_ll>();
        sll.sll_family = libc::AF_PACKET as libc::sa_family_t;
        sll.sll_protocol = ETH_P_ARP.to_be();
        sll.sll_ifindex = ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&BROADCAST);
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

    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        self.sock.send_to(frame, &link_addr(ifindex)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::tests::hex;

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
        let a = link_addr(3).unwrap();
        assert_eq!(i32::from(a.family()), libc::AF_PACKET);
        assert_eq!(a.len() as usize, mem::size_of::<libc::sockaddr_ll>());
        assert_eq!(
            link_addr(u32::MAX).unwrap_err().kind(),
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
        ip[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        assert_eq!(parse_garp(&ip), None);
    }
}
