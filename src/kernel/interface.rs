//! What lbd reads about a network interface: index, MAC, whether it is up, its IPv4 addresses.
//! All through calls that answer for the caller's network namespace (ioctl, getifaddrs), never
//! through `/sys`, which shows the namespace it was mounted in.

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub index: u32,
    pub mac: [u8; 6],
    /// Administratively up and with carrier (IFF_UP and IFF_RUNNING).
    pub up: bool,
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not an interface name"),
        ));
    }
    // SAFETY: ifreq is plain old data; all zero is valid.
    let mut r: libc::ifreq = unsafe { mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(r)
}

/// A socket to ask the SIOCGIF* ioctls on (any socket of the namespace answers them).
fn dgram_socket() -> io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::DGRAM, None)
}

/// Hand-written: socket2 (like std) has no interface ioctls.
fn ioctl(sock: &Socket, req: libc::c_ulong, r: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: the socket is open for the call (borrowed); r is a valid ifreq, as these
    // SIOCGIF* requests read and write.
    if unsafe { libc::ioctl(sock.as_raw_fd(), req, r as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The index of `name` alone (one call; what address changes need on the takeover path).
pub fn index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is a NUL-terminated string that lives for the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(not_found(name, io::Error::last_os_error())),
        i => Ok(i),
    }
}

/// Index, MAC and state of `name`; `NotFound` when there is no such interface.
pub fn info(name: &str) -> io::Result<InterfaceInfo> {
    let fd = dgram_socket()?;
    let mut r = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFINDEX, &mut r).map_err(|e| not_found(name, e))?;
    // SAFETY: SIOCGIFINDEX filled the ifindex member.
    let index = unsafe { r.ifr_ifru.ifru_ifindex } as u32;
    let mut r = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFHWADDR, &mut r)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
    let hw = unsafe { r.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *d = *s as u8;
    }
    let mut r = ifreq(name)?;
    ioctl(&fd, libc::SIOCGIFFLAGS, &mut r)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = i32::from(unsafe { r.ifr_ifru.ifru_flags });
    Ok(InterfaceInfo {
        index,
        mac,
        up: flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0,
    })
}

fn not_found(name: &str, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ENODEV) {
        io::Error::new(io::ErrorKind::NotFound, format!("no interface `{name}`"))
    } else {
        e
    }
}

/// The IPv4 addresses on `name`, in the kernel's order (the primary address first).
pub fn ipv4_addresses(name: &str) -> io::Result<Vec<Ipv4Addr>> {
    let want = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills head; freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned and is non-null.
        let ifa = unsafe { &*p };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let n = unsafe { CStr::from_ptr(ifa.ifa_name) };
        if n == want.as_c_str() && !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null; its family says how to read it.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET means a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
        }
        p = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_read() {
        let lo = info("lo").unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(index("lo").unwrap(), 1);
        assert_eq!(lo.mac, [0; 6]);
        assert!(ipv4_addresses("lo").unwrap().contains(&Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn missing_interfaces_and_bad_names_are_errors() {
        let e = info("lbd-nonexistent").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(
            index("lbd-nonexistent").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(info("").is_err());
        assert!(info("a-name-far-too-long-for-linux").is_err());
        assert!(ipv4_addresses("lbd-nonexistent").unwrap().is_empty());
    }
}
