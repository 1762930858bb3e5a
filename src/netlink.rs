//! A netlink socket to the kernel: open (with multicast groups), send a request, receive.
//! Message framing stays with each protocol (`ipvs` for generic netlink, `kernel::rtnl` for
//! rtnetlink); this is only the socket they share.

use std::io::{self, Read};
use std::mem;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

/// `NETLINK_CAP_ACK` from `linux/netlink.h` (the `libc` crate has it for Android only).
const NETLINK_CAP_ACK: libc::c_int = 10;

/// The error an NLMSG_ERROR message carries (`struct nlmsgerr`, `linux/netlink.h`): 0 is an
/// ack (`None`), a negative errno the kernel's refusal. Any other value comes from a corrupt or
/// hostile message, not from the kernel, and is EPROTO (i32::MIN has no negation: negating it
/// would overflow).
pub fn ack_error(code: i32) -> Option<io::Error> {
    match code {
        0 => None,
        c if c < 0 && c != i32::MIN => Some(io::Error::from_raw_os_error(-c)),
        _ => Some(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}

/// A `struct sockaddr_nl` to bind to: `nl_pid` 0 (the kernel picks our port id) and the
/// multicast `groups`.
///
/// Hand-written: socket2 builds IPv4, IPv6 and Unix addresses only, and the `SockAddr` of any
/// other family comes from its storage and length, which the caller must vouch for.
fn netlink_addr(groups: u32) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_nl is one of this platform's sockaddr types and smaller than the storage
    // (view_as's condition); the storage then holds an AF_NETLINK address of exactly
    // size_of::<sockaddr_nl>() bytes, the family and length SockAddr::new is told.
    unsafe {
        let nl = storage.view_as::<libc::sockaddr_nl>();
        nl.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        nl.nl_groups = groups;
        SockAddr::new(
            storage,
            mem::size_of::<libc::sockaddr_nl>() as socket2::socklen_t,
        )
    }
}

/// Sets an integer socket option socket2 has no setter for (`NETLINK_CAP_ACK`,
/// `SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`).
fn set_int_opt(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the socket is open for the call (we borrow it); the option value points to a
    // local int whose size is the length passed.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub struct NetlinkSocket {
    sock: Socket,
}

impl NetlinkSocket {
    /// A socket of netlink `protocol` (`NETLINK_GENERIC`, `NETLINK_ROUTE`), member of the
    /// multicast `groups` (0: none).
    pub fn open(protocol: libc::c_int, groups: u32) -> io::Result<NetlinkSocket> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(protocol)),
        )?;
        if groups != 0 {
            sock.bind(&netlink_addr(groups))?;
        }
        Ok(NetlinkSocket { sock })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Makes `recv` return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        self.sock.set_nonblocking(true)
    }

    /// Acks carry only the request's header (`NETLINK_CAP_ACK`), not the whole request back.
    pub fn cap_ack(&self) -> io::Result<()> {
        set_int_opt(&self.sock, libc::SOL_NETLINK, NETLINK_CAP_ACK, 1)
    }

    /// Send and receive buffers of `bytes` each: past the `wmem_max`/`rmem_max` sysctls with
    /// `SO_SNDBUFFORCE`/`SO_RCVBUFFORCE` (CAP_NET_ADMIN), else as large as those sysctls allow
    /// (socket2's setters: the kernel caps them). True when both were forced.
    pub fn set_buffers(&self, bytes: usize) -> bool {
        let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        let mut forced = true;
        if set_int_opt(&self.sock, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).is_err() {
            forced = false;
            let _ = self.sock.set_send_buffer_size(bytes);
        }
        if set_int_opt(&self.sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
            forced = false;
            let _ = self.sock.set_recv_buffer_size(bytes);
        }
        forced
    }

    /// Sends `msg` (one or more netlink messages) to the kernel. No address: an unconnected
    /// netlink socket sends to `nl_pid` 0, the kernel.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        self.sock.send(msg)?;
        Ok(())
    }

    /// Receives one datagram into `buf` (retrying on EINTR).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.sock).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTM_GETLINK with an ack for interface index `i32::MAX` (there is none: ENODEV), 32 bytes.
    fn getlink_absent(seq: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        // struct ifinfomsg: family, pad, type, index, flags, change.
        m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        m.extend_from_slice(&i32::MAX.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m
    }

    /// The length and error code of the reply to `getlink_absent`.
    fn refusal(s: &NetlinkSocket) -> (usize, i32) {
        s.send(&getlink_absent(7)).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).unwrap();
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        assert_eq!((n, ty), (len, libc::NLMSG_ERROR as u16));
        (len, i32::from_ne_bytes(buf[16..20].try_into().unwrap()))
    }

    /// NETLINK_CAP_ACK is set by hand (socket2 has no setter for it): it must change what the
    /// kernel sends back, an error that carries the request's header only (16 + 4 + 16 bytes)
    /// instead of the whole request (16 + 4 + 32).
    #[test]
    fn cap_ack_drops_the_echoed_request() {
        let plain = NetlinkSocket::open(libc::NETLINK_ROUTE, 0).unwrap();
        assert_eq!(refusal(&plain), (52, -libc::ENODEV));
        let capped = NetlinkSocket::open(libc::NETLINK_ROUTE, 0).unwrap();
        capped.cap_ack().unwrap();
        assert_eq!(refusal(&capped), (36, -libc::ENODEV));
    }

    /// The bind to multicast groups goes through a hand-built sockaddr_nl (socket2 builds no
    /// netlink address); the socket it binds is a netlink socket with a port id.
    #[test]
    fn groups_are_bound_with_a_netlink_address() {
        let s = NetlinkSocket::open(libc::NETLINK_ROUTE, libc::RTMGRP_LINK as u32).unwrap();
        let local = s.sock.local_addr().unwrap();
        assert_eq!(i32::from(local.family()), libc::AF_NETLINK);
        assert_eq!(local.len() as usize, mem::size_of::<libc::sockaddr_nl>());
        s.set_nonblocking().unwrap();
        let mut buf = [0u8; 64];
        let e = s.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    /// SO_RCVBUFFORCE is set by hand: socket2's `set_recv_buffer_size` is SO_RCVBUF, which the
    /// kernel caps at `net.core.rmem_max`. Forced (as root), the buffer is what was asked for
    /// (the kernel doubles it for its bookkeeping) whatever that sysctl says.
    #[test]
    fn forced_buffers_pass_the_sysctl_cap() {
        let s = NetlinkSocket::open(libc::NETLINK_ROUTE, 0).unwrap();
        let want = 4 << 20;
        let forced = s.set_buffers(want);
        let got = s.sock.recv_buffer_size().unwrap();
        if forced {
            assert!(got >= want, "{got}");
        } else {
            let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!(got <= 2 * max.max(want), "{got}");
        }
    }

    #[test]
    fn ack_codes_become_errors() {
        assert!(ack_error(0).is_none());
        let e = ack_error(-libc::EEXIST).expect("a refusal");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        // No negative errno: found by fuzz/fuzz_targets/ipvs_reply.rs (i32::MIN overflowed).
        for bad in [i32::MIN, 1, i32::MAX] {
            assert_eq!(
                ack_error(bad).and_then(|e| e.raw_os_error()),
                Some(libc::EPROTO)
            );
        }
    }
}
