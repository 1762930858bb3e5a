//! A netlink socket to the kernel: open (with multicast groups), send a request, receive.
//! Message framing stays with each protocol (`ipvs` for generic netlink, `kernel::rtnl` for
//! rtnetlink); this is only the socket they share.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

pub struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    /// A socket of netlink `protocol` (`NETLINK_GENERIC`, `NETLINK_ROUTE`), member of the
    /// multicast `groups` (0: none).
    pub fn open(protocol: libc::c_int, groups: u32) -> io::Result<NetlinkSocket> {
        // SAFETY: plain socket(2); owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = NetlinkSocket {
            // SAFETY: a fresh descriptor nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        };
        if groups != 0 {
            // SAFETY: sockaddr_nl is plain old data.
            let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
            sa.nl_family = libc::AF_NETLINK as u16;
            sa.nl_groups = groups;
            // SAFETY: binding our socket to a valid sockaddr_nl.
            let r = unsafe {
                libc::bind(
                    s.fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_nl).cast(),
                    mem::size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(s)
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sets an integer socket option; false when the kernel refused it.
    pub fn set_opt(&self, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> bool {
        // SAFETY: setsockopt with a pointer to a local int.
        unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&v as *const libc::c_int).cast(),
                mem::size_of::<libc::c_int>() as u32,
            ) == 0
        }
    }

    /// Sends `msg` (one or more netlink messages) to the kernel.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain old data; nl_pid 0 is the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: our buffer and address outlive the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram into `buf` (retrying on EINTR); `flags` as for recv(2), e.g.
    /// `MSG_DONTWAIT`.
    pub fn recv(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        loop {
            // SAFETY: receiving into our own buffer.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
