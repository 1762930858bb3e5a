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

use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

use crate::model::VirtualAddress;
use crate::netlink::{ack_error, NetlinkSocket};

pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const NLMSG_ERROR: u16 = 2;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
/// `RTMGRP_LINK`: multicast group of link changes.
pub const RTMGRP_LINK: u32 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `IFA_F_NODAD`: an IPv6 virtual address must not wait for duplicate address detection (the
/// old master may still hold it for a moment).
pub const IFA_F_NODAD: u8 = 0x02;

/// Builds an RTM_NEWADDR / RTM_DELADDR request.
pub fn addr_message(ty: u16, flags: u16, seq: u32, ifindex: u32, a: &VirtualAddress) -> Vec<u8> {
    let (family, bytes, ifa_flags): (u8, Vec<u8>, u8) = match a.address {
        IpAddr::V4(v) => (libc::AF_INET as u8, v.octets().to_vec(), 0),
        IpAddr::V6(v) => (libc::AF_INET6 as u8, v.octets().to_vec(), IFA_F_NODAD),
    };
    let attr_len = 4 + bytes.len(); // both 4-aligned (4 or 16 bytes of address)
    let len = 16 + 8 + 2 * attr_len;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, a.prefix_len, ifa_flags, RT_SCOPE_UNIVERSE]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    for t in [IFA_LOCAL, IFA_ADDRESS] {
        m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(&bytes);
    }
    m
}

/// Adds and removes addresses; one request at a time, each acknowledged.
pub struct AddressSocket {
    sock: NetlinkSocket,
    seq: u32,
}

impl AddressSocket {
    pub fn open() -> io::Result<AddressSocket> {
        Ok(AddressSocket {
            sock: NetlinkSocket::open(libc::NETLINK_ROUTE, 0)?,
            seq: 0,
        })
    }

    /// Adds `a` to interface `ifindex`. `Ok(false)`: it was already there.
    pub fn add(&mut self, ifindex: u32, a: &VirtualAddress) -> io::Result<bool> {
        match self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `a` from interface `ifindex`. `Ok(false)`: it was not there.
    pub fn del(&mut self, ifindex: u32, a: &VirtualAddress) -> io::Result<bool> {
        match self.request(RTM_DELADDR, 0, ifindex, a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn request(&mut self, ty: u16, flags: u16, ifindex: u32, a: &VirtualAddress) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.sock.send(&addr_message(ty, flags, seq, ifindex, a))?;
        let mut buf = [0u8; 4096];
        loop {
            let n = self.sock.recv(&mut buf)?;
            if let Some(code) = ack_code(&buf[..n], seq) {
                return match ack_error(code) {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
            }
        }
    }
}

/// The error code of the NLMSG_ERROR (ack) with sequence `seq` in `data`, if there is one.
pub fn ack_code(data: &[u8], seq: u32) -> Option<i32> {
    let mut off = 0;
    while off + 16 <= data.len() {
        let len = u32::from_ne_bytes(data[off..off + 4].try_into().ok()?) as usize;
        if len < 16 || off + len > data.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([data[off + 4], data[off + 5]]);
        let mseq = u32::from_ne_bytes(data[off + 8..off + 12].try_into().ok()?);
        if ty == NLMSG_ERROR && mseq == seq && len >= 20 {
            return Some(i32::from_ne_bytes(
                data[off + 16..off + 20].try_into().ok()?,
            ));
        }
        off += (len + 3) & !3;
    }
    None
}

/// A socket that becomes readable whenever a link changes (RTMGRP_LINK); the reader drains it
/// and re-reads the interfaces it cares about.
pub struct LinkMonitor {
    sock: NetlinkSocket,
}

impl LinkMonitor {
    pub fn open() -> io::Result<LinkMonitor> {
        let sock = NetlinkSocket::open(libc::NETLINK_ROUTE, RTMGRP_LINK)?;
        sock.set_nonblocking()?;
        Ok(LinkMonitor { sock })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.raw_fd()
    }

    /// Reads everything queued; true when anything was.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            match self.sock.recv(&mut buf) {
                Ok(0) => return any,
                Ok(_) => any = true,
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
        let m = addr_message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 7, 3, &a);
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
        assert_eq!(ack_code(&ack, 9), Some(-libc::EEXIST));
        assert_eq!(ack_code(&ack, 8), None);
        assert_eq!(ack_code(&ack[..10], 9), None);
    }
}
