//! VRRP on the wire: one raw IPv4 socket (protocol 112) per interface.
//!
//! lbd writes the IP header itself (`IP_HDRINCL`), as keepalived does, so the source is always
//! the configured primary address (RFC 5798 section 5.1.1.1) even while the interface also holds
//! virtual addresses, and TTL is 255 (section 5.1.1.3) for unicast peers as well as multicast.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |TOS = 0xc0     |          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|     Fragment Offset     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   TTL = 255   | Protocol = 112|         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Address (this director's primary address)     |
//! |          Destination Address (224.0.0.18 or a unicast peer)   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! TOS 0xc0 (precedence "internetwork control") and no DF flag: what keepalived 2.2.7 sends.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use super::packet::{IP_PROTOCOL_VRRP, VRRP_MULTICAST_V4, VRRP_TTL};

/// keepalived's TOS for adverts (`IPTOS_PREC_INTERNETCONTROL`).
pub const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
pub const IPV4_HEADER_LEN: usize = 20;

/// The Internet checksum (RFC 1071) of `data`.
fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 header of an advert of `payload_len` bytes.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, id: u16, payload_len: usize) -> [u8; 20] {
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45;
    h[1] = TOS_INTERNETWORK_CONTROL;
    h[2..4].copy_from_slice(&((IPV4_HEADER_LEN + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[8] = VRRP_TTL;
    h[9] = IP_PROTOCOL_VRRP;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = ones_complement_sum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// A received datagram's IP fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    pub payload: &'a [u8],
}

/// Splits an IPv4 datagram (as a raw socket delivers it) into header fields and payload;
/// `None` when it is not a well-formed IPv4 datagram.
pub fn parse_ipv4(p: &[u8]) -> Option<Received<'_>> {
    if p.len() < IPV4_HEADER_LEN || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < IPV4_HEADER_LEN || p.len() < ihl || total < ihl {
        return None;
    }
    let end = total.min(p.len());
    Some(Received {
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        ttl: p[8],
        protocol: p[9],
        payload: &p[ihl..end],
    })
}

/// The raw protocol-112 socket of one interface: bound to it, member of 224.0.0.18 on it.
pub struct VrrpSocket {
    sock: Socket,
    next_id: u16,
}

impl VrrpSocket {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW.nonblocking(),
            Some(Protocol::from(i32::from(IP_PROTOCOL_VRRP))),
        )?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        sock.set_header_included_v4(true)?;
        // Our own multicast adverts need not come back to us.
        sock.set_multicast_loop_v4(false)?;
        // Adverts first in the interface's queue (TC_PRIO_CONTROL).
        sock.set_priority(7)?;
        let _ = sock.set_recv_buffer_size(1 << 20);
        sock.join_multicast_v4_n(&VRRP_MULTICAST_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        Ok(VrrpSocket { sock, next_id: 1 })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Sends one advert (the VRRP message `payload`) from `src` to `dst`.
    pub fn send(&mut self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut pkt = Vec::with_capacity(IPV4_HEADER_LEN + payload.len());
        pkt.extend_from_slice(&ipv4_header(src, dst, id, payload.len()));
        pkt.extend_from_slice(payload);
        self.sock
            .send_to(&pkt, &SockAddr::from(SocketAddrV4::new(dst, 0)))?;
        Ok(())
    }

    /// Reads one queued datagram into `buf`; `Ok(None)` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match (&self.sock).read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(None),
                    _ => return Err(e),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::vrrp::tests::hex;

    /// The IP header of `vrrpv2_advert` in `../shared/vectors/keepalived/test_vectors.txt`:
    /// keepalived 2.2.7 (lk01, 192.168.10.101) advertising VRID 1 with auth PASS, IP id 3,
    /// captured on the bridge between two namespaces.
    const KEEPALIVED_V2_IP_HEADER: &str = "45c0002800030000ff700f83c0a80a65e0000012";

    #[test]
    fn header_matches_keepalived_and_parses_back() {
        let src = Ipv4Addr::new(192, 168, 10, 101);
        let h = ipv4_header(src, VRRP_MULTICAST_V4, 3, 20);
        let theirs = hex(KEEPALIVED_V2_IP_HEADER);
        assert_eq!(h.as_slice(), theirs.as_slice());
        // A correct checksum sums to zero over the whole header.
        assert_eq!(ones_complement_sum(&h), 0);
        let mut dgram = h.to_vec();
        dgram.extend_from_slice(&[0u8; 20]);
        let r = parse_ipv4(&dgram).unwrap();
        assert_eq!(
            (r.src, r.dst, r.ttl, r.protocol),
            (src, VRRP_MULTICAST_V4, 255, 112)
        );
        assert_eq!(r.payload.len(), 20);
    }

    #[test]
    fn malformed_datagrams_are_refused() {
        assert!(parse_ipv4(&[]).is_none());
        assert!(parse_ipv4(&[0x65; 40]).is_none()); // version 6
        let mut h = ipv4_header(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 1, 0).to_vec();
        h[0] = 0x4f; // IHL 60 bytes, but only 20 present
        assert!(parse_ipv4(&h).is_none());
    }
}
