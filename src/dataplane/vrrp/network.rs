//! VRRP on the wire: one raw socket (IP protocol 112) per interface and address family.
//!
//! # IPv4
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
//!
//! # IPv6 (RFC 5798 section 5.1.2)
//!
//! A raw IPv6 socket neither takes nor delivers the IPv6 header, so the fields VRRP needs travel
//! as ancillary data (RFC 3542): on sending, `IPV6_PKTINFO` names the source (the interface's
//! link-local address, RFC 5798 section 5.1.2.1) and the interface; the hop limit is the
//! socket's (`IPV6_MULTICAST_HOPS` and `IPV6_UNICAST_HOPS` 255, section 5.1.2.3). On receiving,
//! `IPV6_RECVHOPLIMIT` and `IPV6_RECVPKTINFO` make the kernel hand over the hop limit and the
//! destination, which [`parse_cmsgs`] reads; the source is the message's address.
//!
//! ```text
//!  sendmsg/recvmsg control buffer, one message after another (struct cmsghdr, RFC 3542 20.2):
//!  +---------------------+-------------+------------+----------------------+-------+
//!  | cmsg_len (size_t)   | cmsg_level  | cmsg_type  | data                 | pad   |
//!  | header + data bytes | IPPROTO_IPV6| IPV6_...   | hop limit: int       | to a  |
//!  |                     | (int)       | (int)      | pktinfo: in6_pktinfo | long  |
//!  +---------------------+-------------+------------+----------------------+-------+
//!  struct in6_pktinfo: | ipi6_addr (16 bytes) | ipi6_ifindex (unsigned int) |
//! ```
//!
//! The checksum is lbd's own: it is computed with the IPv6 pseudo-header by the codec on
//! sending and checked by it on receipt, so a bad one is counted. keepalived instead hands it to
//! the kernel (`IPV6_CHECKSUM` offset 6), which then drops bad packets before anyone sees them;
//! lbd sets `IPV6_CHECKSUM` to -1 (off, the default of a raw socket that is not ICMPv6).

use std::io::{self, IoSlice, Read};
use std::mem::{self, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{
    Domain, InterfaceIndexOrAddress, MaybeUninitSlice, MsgHdr, MsgHdrMut, Protocol, SockAddr,
    Socket, Type,
};

use super::packet::{IP_PROTOCOL_VRRP, VRRP_MULTICAST_V4, VRRP_MULTICAST_V6, VRRP_TTL};

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

/// The address family of a VRRP socket: one socket per (interface, family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// A received VRRP datagram's IP fields, of either family; the VRRP message is
/// `buf[payload]` of the buffer it was read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    pub payload: std::ops::Range<usize>,
}

/// The VRRP socket of one (interface, family).
pub enum FamilySocket {
    V4(VrrpSocket),
    V6(Vrrp6Socket),
}

impl FamilySocket {
    pub fn open(family: Family, ifname: &str, ifindex: u32) -> io::Result<FamilySocket> {
        Ok(match family {
            Family::V4 => FamilySocket::V4(VrrpSocket::open(ifname, ifindex)?),
            Family::V6 => FamilySocket::V6(Vrrp6Socket::open(ifname, ifindex)?),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            FamilySocket::V4(s) => s.raw_fd(),
            FamilySocket::V6(s) => s.raw_fd(),
        }
    }

    /// Sends one advert from `src` to `dst`, both of the socket's family.
    pub fn send(&mut self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        match (self, src, dst) {
            (FamilySocket::V4(s), IpAddr::V4(a), IpAddr::V4(b)) => s.send(a, b, payload),
            (FamilySocket::V6(s), IpAddr::V6(a), IpAddr::V6(b)) => s.send(a, b, payload),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{src} to {dst} is not of this VRRP socket's address family"),
            )),
        }
    }

    /// Reads one queued datagram into `buf`: `Ok(None)` when none is queued,
    /// `Ok(Some(None))` when one was read but is not a VRRP datagram lbd can check (not IPv4,
    /// or without the hop limit and destination an IPv6 one needs).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Option<Datagram>>> {
        match self {
            FamilySocket::V4(s) => Ok(s.recv(buf)?.map(|n| {
                parse_ipv4(&buf[..n]).map(|r| {
                    // The payload follows the header: IHL words (parse_ipv4 checked them).
                    let start = usize::from(buf[0] & 0x0f) * 4;
                    Datagram {
                        src: IpAddr::V4(r.src),
                        dst: IpAddr::V4(r.dst),
                        ttl: r.ttl,
                        payload: start..start + r.payload.len(),
                    }
                })
            })),
            FamilySocket::V6(s) => Ok(s.recv(buf)?.map(|(n, src, c)| match c {
                Cmsgs {
                    hop_limit: Some(ttl),
                    dst: Some(dst),
                    ..
                } => Some(Datagram {
                    src: IpAddr::V6(src),
                    dst: IpAddr::V6(dst),
                    ttl,
                    payload: 0..n,
                }),
                _ => None,
            })),
        }
    }
}

/// Room for the control messages lbd asks for (a hop limit and a pktinfo: 20 + 40 bytes on
/// 64-bit) and some the kernel may add.
pub const CONTROL_LEN: usize = 128;

/// `CMSG_ALIGN`: control messages are aligned to `long`.
const fn cmsg_align(len: usize) -> usize {
    let a = mem::size_of::<libc::c_long>();
    (len + a - 1) & !(a - 1)
}
/// `CMSG_LEN(0)`: the aligned size of `struct cmsghdr`.
pub const CMSG_HEADER_LEN: usize = cmsg_align(mem::size_of::<libc::cmsghdr>());
/// `sizeof(struct in6_pktinfo)`.
pub const IN6_PKTINFO_LEN: usize = 20;

/// What the control messages of one received IPv6 datagram say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cmsgs {
    /// `IPV6_HOPLIMIT`: the hop limit the datagram arrived with.
    pub hop_limit: Option<u8>,
    /// `IPV6_PKTINFO`: the destination address ...
    pub dst: Option<Ipv6Addr>,
    /// ... and the interface it arrived on.
    pub ifindex: Option<u32>,
}

/// Reads the control buffer `control` (the bytes `recvmsg` filled) as a sequence of
/// `struct cmsghdr` in this machine's layout. Bounded: every step moves forward by at least
/// a header, and a message whose length is short or runs past the buffer ends the walk.
/// Unknown messages are skipped; of two of a kind (the kernel sends one) the first usable one
/// counts, so bytes after a message never change what it said. Fuzzed (fuzz/fuzz_targets/vrrp_datagram.rs).
pub fn parse_cmsgs(control: &[u8]) -> Cmsgs {
    const SZ: usize = mem::size_of::<usize>();
    const INT: usize = mem::size_of::<libc::c_int>();
    let mut out = Cmsgs::default();
    let mut off = 0usize;
    while let Some(h) = control.get(off..off + CMSG_HEADER_LEN) {
        let mut len = [0u8; SZ];
        len.copy_from_slice(&h[..SZ]);
        let len = usize::from_ne_bytes(len);
        let int_at = |at: usize| {
            let mut b = [0u8; INT];
            b.copy_from_slice(&h[at..at + INT]);
            libc::c_int::from_ne_bytes(b)
        };
        let (level, ty) = (int_at(SZ), int_at(SZ + INT));
        if len < CMSG_HEADER_LEN {
            break;
        }
        let Some(data) = control.get(off + CMSG_HEADER_LEN..off.saturating_add(len)) else {
            break;
        };
        if level == libc::IPPROTO_IPV6 {
            match ty {
                libc::IPV6_HOPLIMIT if data.len() >= INT && out.hop_limit.is_none() => {
                    let mut b = [0u8; INT];
                    b.copy_from_slice(&data[..INT]);
                    out.hop_limit = u8::try_from(libc::c_int::from_ne_bytes(b)).ok();
                }
                libc::IPV6_PKTINFO if data.len() >= IN6_PKTINFO_LEN && out.dst.is_none() => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&data[..16]);
                    let mut i = [0u8; 4];
                    i.copy_from_slice(&data[16..20]);
                    out.dst = Some(Ipv6Addr::from(a));
                    out.ifindex = Some(u32::from_ne_bytes(i));
                }
                _ => {}
            }
        }
        off = off.saturating_add(cmsg_align(len));
    }
    out
}

/// One control message as `sendmsg` takes it: header, `data`, padding (`CMSG_SPACE`).
pub fn cmsg(level: libc::c_int, ty: libc::c_int, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CMSG_HEADER_LEN + cmsg_align(data.len()));
    out.extend_from_slice(&(CMSG_HEADER_LEN + data.len()).to_ne_bytes());
    out.extend_from_slice(&level.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.resize(CMSG_HEADER_LEN, 0);
    out.extend_from_slice(data);
    out.resize(CMSG_HEADER_LEN + cmsg_align(data.len()), 0);
    out
}

/// The `IPV6_PKTINFO` control message that sends from `src` out of interface `ifindex`.
pub fn pktinfo(src: Ipv6Addr, ifindex: u32) -> Vec<u8> {
    let mut info = [0u8; IN6_PKTINFO_LEN];
    info[..16].copy_from_slice(&src.octets());
    info[16..].copy_from_slice(&ifindex.to_ne_bytes());
    cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info)
}

/// `buf` as the uninitialised bytes socket2's receive calls take.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has the layout of u8; the slice only ever receives initialised
    // bytes (the kernel's), so `buf` stays initialised when the borrow ends.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// The raw IPv6 protocol-112 socket of one interface: bound to it, member of ff02::12 on it.
pub struct Vrrp6Socket {
    sock: Socket,
    ifindex: u32,
}

impl Vrrp6Socket {
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Vrrp6Socket> {
        let sock = Socket::new(
            Domain::IPV6,
            Type::RAW.nonblocking(),
            Some(Protocol::from(i32::from(IP_PROTOCOL_VRRP))),
        )?;
        sock.bind_device(Some(ifname.as_bytes()))?;
        sock.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
        sock.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
        sock.set_multicast_loop_v6(false)?;
        sock.set_multicast_if_v6(ifindex)?;
        // Only the groups this socket joined, not every group any socket joined.
        sock.set_multicast_all_v6(false)?;
        sock.set_recv_hoplimit_v6(true)?;
        crate::kernel::nlsocket::set_int_opt(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
        // IPV6_CHECKSUM: the offset of the checksum the kernel fills and checks; -1, none.
        crate::kernel::nlsocket::set_int_opt(&sock, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, -1)?;
        // CS6, as keepalived's IPv6 adverts (its IPv4 ones carry the same byte as TOS).
        sock.set_tclass_v6(u32::from(TOS_INTERNETWORK_CONTROL))?;
        sock.set_priority(7)?;
        let _ = sock.set_recv_buffer_size(1 << 20);
        sock.join_multicast_v6(&VRRP_MULTICAST_V6, ifindex)?;
        Ok(Vrrp6Socket { sock, ifindex })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Sends the VRRP message `payload` from `src` to `dst` out of this interface.
    pub fn send(&mut self, src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> io::Result<()> {
        let scope = if dst.is_unicast_link_local() || dst.is_multicast() {
            self.ifindex
        } else {
            0
        };
        let to = SockAddr::from(SocketAddrV6::new(dst, 0, 0, scope));
        let control = pktinfo(src, self.ifindex);
        let bufs = [IoSlice::new(payload)];
        let msg = MsgHdr::new()
            .with_addr(&to)
            .with_buffers(&bufs)
            .with_control(&control);
        self.sock.sendmsg(&msg, 0)?;
        Ok(())
    }

    /// Reads one queued datagram's VRRP message into `buf`: its length, source and control
    /// messages; `Ok(None)` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Ipv6Addr, Cmsgs)>> {
        let mut control = [0u8; CONTROL_LEN];
        loop {
            let mut from = SockAddr::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
            let mut bufs = [MaybeUninitSlice::new(as_uninit(buf))];
            let mut msg = MsgHdrMut::new()
                .with_addr(&mut from)
                .with_buffers(&mut bufs)
                .with_control(as_uninit(&mut control));
            match self.sock.recvmsg(&mut msg, 0) {
                Ok(n) => {
                    let clen = msg.control_len().min(CONTROL_LEN);
                    let truncated = msg.flags().is_truncated();
                    let Some(src) = from.as_socket_ipv6().map(|a| *a.ip()) else {
                        continue;
                    };
                    if truncated {
                        continue;
                    }
                    return Ok(Some((n, src, parse_cmsgs(&control[..clen]))));
                }
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

    #[test]
    fn control_messages_are_read_back_and_bounded() {
        let dst = VRRP_MULTICAST_V6;
        let mut control = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        );
        control.extend_from_slice(&pktinfo(dst, 9));
        // What the kernel sends is aligned: CMSG_SPACE(4) + CMSG_SPACE(20).
        assert_eq!(
            control.len(),
            CMSG_HEADER_LEN + cmsg_align(4) + CMSG_HEADER_LEN + cmsg_align(20)
        );
        let want = Cmsgs {
            hop_limit: Some(255),
            dst: Some(dst),
            ifindex: Some(9),
        };
        assert_eq!(parse_cmsgs(&control), want);
        // An unknown message first is skipped.
        let mut other = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &[1, 2, 3, 4]);
        other.extend_from_slice(&control);
        assert_eq!(parse_cmsgs(&other), want);
        // A hop limit out of a byte's range is no hop limit.
        let big = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &256i32.to_ne_bytes(),
        );
        assert_eq!(parse_cmsgs(&big).hop_limit, None);
        // The first usable one of two counts.
        let mut two = big.clone();
        two.extend_from_slice(&cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &64i32.to_ne_bytes(),
        ));
        two.extend_from_slice(&control);
        assert_eq!(parse_cmsgs(&two).hop_limit, Some(64));
        // Cut anywhere, a message that no longer fits is not read (and nothing panics).
        let pktinfo_at = CMSG_HEADER_LEN + cmsg_align(4);
        for cut in 0..control.len() {
            let c = parse_cmsgs(&control[..cut]);
            assert_eq!(
                c.hop_limit.is_some(),
                cut >= CMSG_HEADER_LEN + 4,
                "cut at {cut}"
            );
            assert_eq!(
                c.dst.is_some(),
                cut >= pktinfo_at + CMSG_HEADER_LEN + IN6_PKTINFO_LEN,
                "cut at {cut}"
            );
        }
        // A length shorter than its header ends the walk instead of looping.
        let mut zero = control.clone();
        zero[..mem::size_of::<usize>()].copy_from_slice(&0usize.to_ne_bytes());
        assert_eq!(parse_cmsgs(&zero), Cmsgs::default());
        // A length past the buffer, likewise.
        let mut huge = control.clone();
        huge[..mem::size_of::<usize>()].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(parse_cmsgs(&huge), Cmsgs::default());
    }

    #[test]
    fn sockets_refuse_addresses_of_the_other_family() {
        // No socket is opened: the family check comes first. Built from a socket that is
        // never bound to a device nor sent on, so no packet leaves.
        let sock = Socket::new(Domain::IPV6, Type::DGRAM, None).unwrap();
        let mut s = FamilySocket::V6(Vrrp6Socket { sock, ifindex: 0 });
        let e = s
            .send(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                &[],
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(Family::of(IpAddr::V6(Ipv6Addr::LOCALHOST)), Family::V6);
    }
}
