//! What lbd reads about a network interface: index, MAC, whether it is up, its IPv4 addresses.
//! All over rtnetlink (RTM_GETLINK by name, an RTM_GETADDR dump), framed and read with neli's
//! types: a netlink socket answers for the network namespace it was opened in, the caller's,
//! never through `/sys`, which shows the namespace it was mounted in.

use std::io::{self, Cursor};
use std::net::Ipv4Addr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, Iff, Ifla, RtAddrFamily, Rtm};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::types::RtBuffer;
use neli::{FromBytesWithInput, Size, ToBytes};

use crate::kernel::nlsocket::{messages, parse_ack, NetlinkSocket};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub index: u32,
    pub mac: [u8; 6],
    /// Administratively up and with carrier (IFF_UP and IFF_RUNNING).
    pub up: bool,
}

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("rtnetlink: {e}"))
}

fn check_name(name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not an interface name"),
        ));
    }
    Ok(())
}

/// Sends one request on a fresh rtnetlink socket and hands each answer's body (of type `want`)
/// to `each`, until the ack, the end of the dump, or (`single`) the first answer. A refusal is
/// the kernel's errno.
fn exchange<P: Size + ToBytes>(
    ty: Rtm,
    flags: NlmF,
    payload: P,
    want: u16,
    single: bool,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let sock = NetlinkSocket::open(libc::NETLINK_ROUTE)?;
    let _ = sock.cap_ack();
    let msg = NlmsghdrBuilder::default()
        .nl_type(ty)
        .nl_flags(flags | NlmF::REQUEST)
        .nl_seq(1)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(invalid)?;
    let mut out = Cursor::new(Vec::with_capacity(64));
    msg.to_bytes(&mut out).map_err(invalid)?;
    sock.send(out.get_ref())?;
    // A link's answer (with its statistics) is about 1.5 KiB; a dump part up to a page.
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let n = sock.recv(&mut buf)?;
        for m in messages(&buf[..n]) {
            let m = m.map_err(invalid)?;
            if m.seq != 1 {
                continue;
            }
            match m.ty {
                NLMSG_ERROR => {
                    return match parse_ack(m.flags, m.body).map_err(invalid)?.refusal() {
                        None => Ok(()),
                        Some(r) => Err(r.errno),
                    };
                }
                NLMSG_DONE => return Ok(()),
                t if t == want => {
                    each(m.body)?;
                    if single {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }
}

/// The link named `name` as the kernel answers RTM_GETLINK (by IFLA_IFNAME).
fn get_link(name: &str) -> io::Result<InterfaceInfo> {
    check_name(name)?;
    let mut attrs = RtBuffer::new();
    attrs.push(
        RtattrBuilder::default()
            .rta_type(Ifla::Ifname)
            .rta_payload(name)
            .build()
            .map_err(invalid)?,
    );
    let req = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .rtattrs(attrs)
        .build()
        .map_err(invalid)?;
    let mut link = None;
    exchange(
        Rtm::Getlink,
        NlmF::empty(),
        req,
        RTM_NEWLINK,
        true,
        |body| {
            link = Some(parse_link(body)?);
            Ok(())
        },
    )
    .map_err(|e| not_found(name, e))?;
    link.ok_or_else(|| invalid("no answer to RTM_GETLINK"))
}

/// Reads the body of an RTM_NEWLINK (`struct ifinfomsg` and its attributes, by neli): index,
/// IFLA_ADDRESS (zeros when the link has none) and IFF_UP with IFF_RUNNING. Fuzzed
/// (fuzz/fuzz_targets/rtnetlink.rs).
pub fn parse_link(body: &[u8]) -> io::Result<InterfaceInfo> {
    let link =
        Ifinfomsg::from_bytes_with_input(&mut Cursor::new(body), body.len()).map_err(invalid)?;
    let mut mac = [0u8; 6];
    if let Some(a) = link
        .rtattrs()
        .iter()
        .find(|a| *a.rta_type() == Ifla::Address)
    {
        for (d, s) in mac.iter_mut().zip(a.rta_payload().as_ref()) {
            *d = *s;
        }
    }
    let flags = *link.ifi_flags();
    Ok(InterfaceInfo {
        index: link.ifi_index().unsigned_abs(),
        mac,
        up: flags.contains(Iff::UP) && flags.contains(Iff::RUNNING),
    })
}

/// The index of `name` alone (what address changes need on the takeover path).
pub fn index(name: &str) -> io::Result<u32> {
    Ok(get_link(name)?.index)
}

/// Index, MAC and state of `name`; `NotFound` when there is no such interface.
pub fn info(name: &str) -> io::Result<InterfaceInfo> {
    get_link(name)
}

/// Reads the body of an RTM_NEWADDR (`struct ifaddrmsg` and its attributes, by neli): the
/// IPv4 address (IFA_LOCAL, else IFA_ADDRESS) when it is on interface `index` under the label
/// `name`. Fuzzed (fuzz/fuzz_targets/rtnetlink.rs).
pub fn parse_ipv4_address(body: &[u8], index: u32, name: &str) -> io::Result<Option<Ipv4Addr>> {
    let a =
        Ifaddrmsg::from_bytes_with_input(&mut Cursor::new(body), body.len()).map_err(invalid)?;
    if *a.ifa_index() != index {
        return Ok(None);
    }
    let attr = |t: Ifa| {
        a.rtattrs()
            .iter()
            .find(|x| *x.rta_type() == t)
            .map(|x| x.rta_payload().as_ref())
    };
    if let Some(label) = attr(Ifa::Label) {
        if label.strip_suffix(&[0]).unwrap_or(label) != name.as_bytes() {
            return Ok(None);
        }
    }
    let addr = attr(Ifa::Local).or_else(|| attr(Ifa::Address));
    Ok(addr
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(Ipv4Addr::from))
}

fn not_found(name: &str, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ENODEV) {
        io::Error::new(io::ErrorKind::NotFound, format!("no interface `{name}`"))
    } else {
        e
    }
}

/// The IPv4 addresses on `name`, in the kernel's order (the primary address first): those of
/// its index whose label is the interface's name (as getifaddrs names them: an address added
/// with a label such as `eth0:1` is not listed). None for an interface that does not exist.
pub fn ipv4_addresses(name: &str) -> io::Result<Vec<Ipv4Addr>> {
    let index = match index(name) {
        Ok(i) => i,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let req = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::Inet)
        .ifa_prefixlen(0)
        .ifa_scope(0.into())
        .ifa_index(0)
        .build()
        .map_err(invalid)?;
    let mut out = Vec::new();
    exchange(Rtm::Getaddr, NlmF::DUMP, req, RTM_NEWADDR, false, |body| {
        out.extend(parse_ipv4_address(body, index, name)?);
        Ok(())
    })?;
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
