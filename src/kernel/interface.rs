//! What lbd reads about a network interface: index, MAC, whether it is up, its IPv4 addresses
//! and its IPv6 link-local address.
//! All over rtnetlink (RTM_GETLINK by name, an RTM_GETADDR dump), framed and read with neli's
//! types: a netlink socket answers for the network namespace it was opened in, the caller's,
//! never through `/sys`, which shows the namespace it was mounted in.

use std::io::{self, Cursor};
use std::net::{Ipv4Addr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, Iff, Ifla, RtAddrFamily, RtScope, Rtm};
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
pub(crate) fn exchange<P: Size + ToBytes>(
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
    let mut out = Vec::new();
    dump_addresses(RtAddrFamily::Inet, |body| {
        out.extend(parse_ipv4_address(body, index, name)?);
        Ok(())
    })?;
    Ok(out)
}

/// Reads the body of an RTM_NEWADDR (by neli): the IPv6 address when it is a usable
/// link-local address of interface `index` (scope link, neither tentative nor failed
/// duplicate address detection: the kernel refuses to send from those). Fuzzed
/// (fuzz/fuzz_targets/rtnetlink.rs).
pub fn parse_ipv6_link_local(body: &[u8], index: u32) -> io::Result<Option<Ipv6Addr>> {
    let a =
        Ifaddrmsg::from_bytes_with_input(&mut Cursor::new(body), body.len()).map_err(invalid)?;
    if *a.ifa_index() != index
        || *a.ifa_family() != RtAddrFamily::Inet6
        || *a.ifa_scope() != RtScope::Link
        || a.ifa_flags().contains(IfaF::TENTATIVE)
        || a.ifa_flags().contains(IfaF::DADFAILED)
    {
        return Ok(None);
    }
    // An IFA_FLAGS attribute (u32) carries the same flags and more; it wins when present.
    let flags = a
        .rtattrs()
        .iter()
        .find(|x| *x.rta_type() == Ifa::Flags)
        .and_then(|x| <[u8; 4]>::try_from(x.rta_payload().as_ref()).ok())
        .map(u32::from_ne_bytes);
    if flags.is_some_and(|f| f & (libc::IFA_F_TENTATIVE | libc::IFA_F_DADFAILED) != 0) {
        return Ok(None);
    }
    Ok(a.rtattrs()
        .iter()
        .find(|x| *x.rta_type() == Ifa::Address)
        .and_then(|x| <[u8; 16]>::try_from(x.rta_payload().as_ref()).ok())
        .map(Ipv6Addr::from)
        .filter(Ipv6Addr::is_unicast_link_local))
}

/// The IPv6 link-local address of `name` (the first usable one, see
/// [`parse_ipv6_link_local`]): where VRRPv3 adverts over IPv6 come from (RFC 5798 section
/// 5.1.2.1). `None` when there is none yet (duplicate address detection still running) or no
/// such interface.
pub fn ipv6_link_local(name: &str) -> io::Result<Option<Ipv6Addr>> {
    let index = match index(name) {
        Ok(i) => i,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(ipv6_link_locals(index)?.into_iter().next())
}

/// The usable IPv6 link-local addresses of link `index` (see [`parse_ipv6_link_local`]), in
/// the kernel's order.
pub fn ipv6_link_locals(index: u32) -> io::Result<Vec<Ipv6Addr>> {
    let mut out = Vec::new();
    dump_addresses(RtAddrFamily::Inet6, |body| {
        out.extend(parse_ipv6_link_local(body, index)?);
        Ok(())
    })?;
    Ok(out)
}

/// Dumps the kernel's addresses of `family` (RTM_GETADDR), handing each RTM_NEWADDR body to
/// `each`.
fn dump_addresses(
    family: RtAddrFamily,
    each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let req = IfaddrmsgBuilder::default()
        .ifa_family(family)
        .ifa_prefixlen(0)
        .ifa_scope(0.into())
        .ifa_index(0)
        .build()
        .map_err(invalid)?;
    exchange(Rtm::Getaddr, NlmF::DUMP, req, RTM_NEWADDR, false, each)
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
        assert_eq!(ipv6_link_local("lbd-nonexistent").unwrap(), None);
    }

    /// An RTM_NEWADDR body by hand: `struct ifaddrmsg` then one IFA_ADDRESS attribute.
    fn addr_body(family: u8, flags: u8, scope: u8, index: u32, addr: &[u8]) -> Vec<u8> {
        let mut b = vec![family, 64, flags, scope];
        b.extend_from_slice(&index.to_ne_bytes());
        b.extend_from_slice(&((4 + addr.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&(libc::IFA_ADDRESS).to_ne_bytes());
        b.extend_from_slice(addr);
        b
    }

    #[test]
    fn only_a_settled_link_local_address_of_the_interface_is_taken() {
        let inet6 = libc::AF_INET6 as u8;
        let ll: Ipv6Addr = "fe80::200:ff:fe00:1".parse().unwrap();
        let link = libc::RT_SCOPE_LINK;
        let ok = addr_body(inet6, 0, link, 7, &ll.octets());
        assert_eq!(parse_ipv6_link_local(&ok, 7).unwrap(), Some(ll));
        assert_eq!(parse_ipv6_link_local(&ok, 8).unwrap(), None);
        let tentative = addr_body(inet6, libc::IFA_F_TENTATIVE as u8, link, 7, &ll.octets());
        assert_eq!(parse_ipv6_link_local(&tentative, 7).unwrap(), None);
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let universe = addr_body(inet6, 0, libc::RT_SCOPE_UNIVERSE, 7, &global.octets());
        assert_eq!(parse_ipv6_link_local(&universe, 7).unwrap(), None);
        let v4 = addr_body(libc::AF_INET as u8, 0, link, 7, &[169, 254, 0, 1]);
        assert_eq!(parse_ipv6_link_local(&v4, 7).unwrap(), None);
        assert!(parse_ipv6_link_local(&ok[..3], 7).is_err());
        // The loopback interface has ::1, of host scope: no link-local address.
        assert_eq!(ipv6_link_local("lo").unwrap(), None);
    }
}
