//! rtnetlink (`NETLINK_ROUTE`): adding and removing the virtual addresses, and a socket that
//! hears link changes (for VRRP's Fault state).
//!
//! ```text
//!  struct nlmsghdr (16)        struct ifaddrmsg (8)                       attributes
//!  +----------------------+    +--------+--------+--------+--------+    +----------------------+
//!  | len | type | flags   |    | family | prefix | flags  | scope  |    | IFA_LOCAL  (addr)    |
//!  | seq | pid            |    | index (u32)                       |    | IFA_ADDRESS (addr)   |
//!  +----------------------+    +-----------------------------------+    +----------------------+
//! ```
//! (`linux/netlink.h`, `linux/if_addr.h`, `linux/rtnetlink.h`.)

use std::io::{self, Cursor};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, RtAddrFamily, RtScope, Rtm};
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::rtnl::{IfaddrmsgBuilder, RtattrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;
use neli::ToBytes;

use crate::kernel::nlsocket::{messages, parse_ack, Ack, NetlinkSocket, Refusal};
use crate::model::VirtualAddress;

pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const NLMSG_ERROR: u16 = 2;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
/// `RTNLGRP_LINK`: multicast group of link changes (`RTMGRP_LINK` is its bit, 1).
pub const RTNLGRP_LINK: u32 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `IFA_F_NODAD`: an IPv6 virtual address must not wait for duplicate address detection (the
/// old master may still hold it for a moment).
pub const IFA_F_NODAD: u8 = 0x02;

fn build_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("rtnetlink message: {e}"))
}

/// Builds an RTM_NEWADDR / RTM_DELADDR request (neli's `Nlmsghdr<Rtm, Ifaddrmsg>`).
pub fn addr_message(
    ty: u16,
    flags: u16,
    seq: u32,
    ifindex: u32,
    a: &VirtualAddress,
) -> io::Result<Vec<u8>> {
    let (family, bytes, ifa_flags): (u8, Vec<u8>, u8) = match a.address {
        IpAddr::V4(v) => (libc::AF_INET as u8, v.octets().to_vec(), 0),
        IpAddr::V6(v) => (libc::AF_INET6 as u8, v.octets().to_vec(), IFA_F_NODAD),
    };
    let mut attrs = RtBuffer::new();
    for t in [IFA_LOCAL, IFA_ADDRESS] {
        attrs.push(
            RtattrBuilder::default()
                .rta_type(Ifa::from(t))
                .rta_payload(Buffer::from(&bytes[..]))
                .build()
                .map_err(build_err)?,
        );
    }
    let ifa = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::from(family))
        .ifa_prefixlen(a.prefix_len)
        .ifa_flags(IfaF::from(ifa_flags))
        .ifa_scope(RtScope::from(RT_SCOPE_UNIVERSE))
        .ifa_index(ifindex)
        .rtattrs(attrs)
        .build()
        .map_err(build_err)?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(Rtm::from(ty))
        .nl_flags(NlmF::from(flags | NLM_F_REQUEST | NLM_F_ACK))
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(ifa))
        .build()
        .map_err(build_err)?;
    let mut out = Cursor::new(Vec::with_capacity(64));
    msg.to_bytes(&mut out).map_err(build_err)?;
    Ok(out.into_inner())
}

/// Adds and removes addresses; one request at a time, each acknowledged.
pub struct AddressSocket {
    sock: NetlinkSocket,
    seq: u32,
}

impl AddressSocket {
    pub fn open() -> io::Result<AddressSocket> {
        let sock = NetlinkSocket::open(libc::NETLINK_ROUTE)?;
        // Errors carry the kernel's explanation where it has one; acks only the header.
        let _ = sock.cap_ack();
        let _ = sock.ext_ack();
        Ok(AddressSocket { sock, seq: 0 })
    }

    /// Adds `a` to interface `ifindex`. `Ok(false)`: it was already there.
    pub fn add(&mut self, ifindex: u32, a: &VirtualAddress) -> Result<bool, Refusal> {
        match self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `a` from interface `ifindex`. `Ok(false)`: it was not there.
    pub fn del(&mut self, ifindex: u32, a: &VirtualAddress) -> Result<bool, Refusal> {
        match self.request(RTM_DELADDR, 0, ifindex, a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn request(
        &mut self,
        ty: u16,
        flags: u16,
        ifindex: u32,
        a: &VirtualAddress,
    ) -> Result<(), Refusal> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.sock.send(&addr_message(ty, flags, seq, ifindex, a)?)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = self.sock.recv(&mut buf)?;
            if let Some(ack) = ack(&buf[..n], seq) {
                return match ack.refusal() {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
            }
        }
    }
}

/// The ack (NLMSG_ERROR) with sequence `seq` in `data`, if there is one: its code and the
/// extended ack's text. The walk stops at a malformed message.
pub fn ack(data: &[u8], seq: u32) -> Option<Ack> {
    for m in messages(data) {
        let m = m.ok()?;
        if m.ty == NLMSG_ERROR && m.seq == seq {
            if let Ok(a) = parse_ack(m.flags, m.body) {
                return Some(a);
            }
        }
    }
    None
}

/// A socket that becomes readable whenever a link changes (RTNLGRP_LINK); the reader drains it
/// and re-reads the interfaces it cares about.
///
/// neli's socket, not socket2's: it is bound and joins the group (`NlSocket::connect`), which
/// socket2 cannot express without a hand-built `sockaddr_nl`.
pub struct LinkMonitor {
    sock: NlSocket,
}

impl LinkMonitor {
    pub fn open() -> io::Result<LinkMonitor> {
        let sock = NlSocket::connect(NlFamily::Route, None, Groups::new_groups(&[RTNLGRP_LINK]))?;
        sock.nonblock()?;
        Ok(LinkMonitor { sock })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Reads everything queued; true when anything was.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            match self.sock.recv(&mut buf[..], Msg::empty()) {
                Ok((0, _)) => return any,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ENOBUFS: the kernel dropped notifications; the reader re-reads anyway.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(_) => return any,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request for `ip addr add 192.168.10.100/32 dev <ifindex 3>`, field by field as
    /// `linux/netlink.h` and `linux/if_addr.h` lay it out; the netns tests check the kernel
    /// accepts it.
    #[test]
    fn newaddr_is_framed_like_iproute2() {
        let a: VirtualAddress = "192.168.10.100/32".parse().unwrap();
        let m = addr_message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 7, 3, &a).unwrap();
        assert_eq!(m.len(), 40);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWADDR);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), 0x605);
        assert_eq!(&m[16..24], &[2, 32, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&m[24..32], &[8, 0, 2, 0, 192, 168, 10, 100]);
        assert_eq!(&m[32..40], &[8, 0, 1, 0, 192, 168, 10, 100]);
    }

    #[test]
    fn ack_codes_are_found_by_sequence() {
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&0u16.to_ne_bytes());
        ack.extend_from_slice(&9u32.to_ne_bytes());
        ack.extend_from_slice(&0u32.to_ne_bytes());
        ack.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
        ack.extend_from_slice(&[0u8; 16]);
        let code = |d: &[u8], seq| super::ack(d, seq).map(|a| a.code);
        assert_eq!(code(&ack, 9), Some(-libc::EEXIST));
        assert_eq!(code(&ack, 8), None);
        assert_eq!(code(&ack[..10], 9), None);
    }

    /// IPv6: 16-byte address attributes and IFA_F_NODAD.
    #[test]
    fn newaddr_v6_asks_for_no_dad() {
        let a: VirtualAddress = "2001:db8::10/64".parse().unwrap();
        let m = addr_message(RTM_DELADDR, 0, 1, 2, &a).unwrap();
        assert_eq!(m.len(), 16 + 8 + 2 * 20);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(&m[16..24], &[10, 64, IFA_F_NODAD, 0, 2, 0, 0, 0]);
        assert_eq!(&m[24..28], &[20, 0, 2, 0]);
        assert_eq!(&m[44..48], &[20, 0, 1, 0]);
    }

    /// The monitor is neli's socket: bound (the kernel gave it a port id) and in the link group,
    /// with nothing queued yet.
    #[test]
    fn link_monitor_is_bound_and_drains() {
        let m = LinkMonitor::open().unwrap();
        assert_ne!(m.sock.pid().unwrap(), 0);
        let groups = m.sock.list_mcast_membership().unwrap();
        assert!(
            groups.is_set(RTNLGRP_LINK as usize),
            "{:?}",
            groups.to_vec()
        );
        assert!(!m.drain());
    }
}
