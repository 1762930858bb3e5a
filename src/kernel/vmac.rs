//! VRRP virtual-MAC interfaces (keepalived's `use_vmac`): a macvlan in private mode over the
//! group's interface whose MAC is the RFC 5798 section 7.3 virtual MAC, created, read and
//! removed over rtnetlink, and the sysctls that make it answer ARP for the virtual addresses.
//!
//! ```text
//!  RTM_NEWLINK (NLM_F_CREATE | NLM_F_EXCL), `ip link add link eth0 name vrrp.51
//!  address 00:00:5e:00:01:33 type macvlan mode private`:
//!  struct nlmsghdr (16) | struct ifinfomsg (16): family 0, index 0 |
//!    IFLA_IFNAME "vrrp.51\0" | IFLA_LINK u32 (parent index) | IFLA_ADDRESS (6 bytes) |
//!    IFLA_LINKINFO { IFLA_INFO_KIND "macvlan\0", IFLA_INFO_DATA { IFLA_MACVLAN_MODE u32 1 } }
//! ```
//! (`linux/if_link.h`: `IFLA_MACVLAN_MODE` = 1, `MACVLAN_MODE_PRIVATE` = 1.)
//!
//! Private mode matters: a macvlan in the default VEPA mode drops multicast frames whose source
//! MAC is its own, and the peer's adverts carry the same virtual MAC; in private mode the kernel
//! hands them to the macvlan whose MAC they carry (`macvlan_handle_frame`).
//!
//! The sysctls of an IPv4 group's macvlan, as keepalived sets them (its `vrrp_if_config.c`):
//! - on the macvlan: `arp_ignore=1` (answer ARP only for its own addresses, the virtual ones),
//!   `accept_local=1`, `rp_filter=0` (it receives for addresses whose route back is the parent);
//!   and IPv6 off (`disable_ipv6=1`, set while it is still down): a link-local address made from
//!   the virtual MAC would be the same on every director, and its neighbour discovery would
//!   teach switches the virtual MAC from the backups too.
//! - on the parent: `arp_ignore=1` and `arp_filter=1`, so the parent never answers ARP for the
//!   virtual addresses with its own MAC; and (lbd's own, keepalived leaves it) `arp_announce=2`:
//!   the replies to a client leave from the parent, and without it the parent's ARP request for
//!   the client names a virtual address as its sender, which makes the client file that address
//!   under the parent's MAC (`arp_process` learns the sender of a request for itself).
//!
//! # IPv6 (keepalived 2.2.7's `use_vmac` on an IPv6 instance)
//!
//! The MAC is 00:00:5e:00:02:VRID (RFC 5798 section 7.3). The macvlan needs IPv6 (its socket
//! receives the adverts, its Neighbor Advertisements answer for the virtual addresses) but no
//! address the kernel would make from the virtual MAC: that one would be the same on every
//! director. So, as keepalived does ([`ensure_v6`]):
//! - `IFLA_INET6_ADDR_GEN_MODE` = `IN6_ADDR_GEN_MODE_NONE` while the link is down
//!   (`ip link set dev vrrp.51 addrgenmode none`), then `disable_ipv6=0` and up;
//! - the address adverts come from, which RFC 5798 section 5.1.2.1 wants link-local and which
//!   the kernel sends from only when the sending interface holds it: the group's `unicast_src`
//!   if set, else the parent's own link-local address (keepalived's choice; lbd's resolved
//!   primary address is the same), added to the macvlan as `/64` with `IFA_F_NODAD` and
//!   deprecated (preferred lifetime 0, [`source_address_message`]). It is the parent's
//!   address, so it differs between the directors (no duplicate), and the parent has already
//!   defended it. With `vmac_xmit_base` adverts leave from the parent and the macvlan gets no
//!   address of its own.
//!
//! ```text
//!  RTM_NEWLINK, `ip link set dev vrrp.51 addrgenmode none`:
//!  struct nlmsghdr (16) | struct ifinfomsg (16): family 0, index N |
//!    IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE u8 1 } }
//! ```
//!
//! lbd's own, beyond keepalived: `accept_ra=0` and `router_solicitations=0` on the macvlan
//! (keepalived drops the solicitations with its optional nftables/iptables rules instead), so
//! no router solicitation leaves it from the virtual MAC and no router advertisement installs
//! a default route through it. What lbd does not stop: the kernel's MLD reports (RFC 3810) for
//! the groups the macvlan joins (ff02::12, the solicited-node groups of its addresses), sent
//! when an address comes or goes and in answer to a querier, leave from the virtual MAC on a
//! backup too, and teach a switch that MAC on the backup's port until the master's next frame
//! from it (keepalived's optional nftables rules send them out of the parent instead; without
//! that option keepalived behaves as lbd).
//!
//! Ownership: an interface of the name is adopted only when it is a private macvlan over the
//! same parent with the same MAC (what lbd would create); anything else is refused, never
//! changed or removed. [`delete`] removes only such a macvlan.

use std::io::{self, Cursor};
use std::net::{IpAddr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, Iff, Ifla, IflaInfo, RtAddrFamily, RtScope, Rtm};
use neli::rtnl::{IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, Rtattr, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use neli::{FromBytesWithInput, ToBytes};

use crate::kernel::interface;
use crate::kernel::nlsocket::{NetlinkSocket, Refusal};
use crate::kernel::rtnl::{
    ack, build_err, frame, AddressSocket, IFA_F_NODAD, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
    RTM_NEWADDR,
};
use crate::model::vrrp_group::VirtualAddress;

pub const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
pub const RTM_DELLINK: u16 = libc::RTM_DELLINK;
/// `IFLA_MACVLAN_MODE`, in `IFLA_INFO_DATA` of a macvlan.
pub const IFLA_MACVLAN_MODE: u16 = 1;
/// `MACVLAN_MODE_PRIVATE`.
pub const MACVLAN_MODE_PRIVATE: u32 = 1;
pub const MACVLAN_KIND: &str = "macvlan";
/// `AF_INET6`: the attribute of `IFLA_AF_SPEC` that carries IPv6's link settings.
pub const AF_INET6: u16 = libc::AF_INET6 as u16;
/// `IFLA_INET6_ADDR_GEN_MODE` (`linux/if_link.h`), a u8 inside `IFLA_AF_SPEC { AF_INET6 }`.
pub const IFLA_INET6_ADDR_GEN_MODE: u16 = 8;
/// `IN6_ADDR_GEN_MODE_NONE`: the kernel makes no link-local address for the link.
pub const IN6_ADDR_GEN_MODE_NONE: u8 = 1;
/// The prefix length of a link-local address (fe80::/64, RFC 4291 section 2.5.6).
pub const LINK_LOCAL_PREFIX_LEN: u8 = 64;
/// `INFINITY_LIFE_TIME` (`include/net/addrconf.h`): a lifetime that never ends.
pub const INFINITY_LIFE_TIME: u32 = 0xffff_ffff;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`: flag bits an attribute type may carry.
const NLA_TYPE_MASK: u16 = 0x3fff;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("rtnetlink: {e}"))
}

fn attr<T: neli::consts::rtnl::RtaType, P: neli::Size + ToBytes>(
    t: T,
    p: P,
) -> io::Result<Rtattr<T, Buffer>> {
    RtattrBuilder::default()
        .rta_type(t)
        .rta_payload(p)
        .build()
        .map_err(build_err)
}

/// The RTM_NEWLINK that creates macvlan `name` (mode private) over interface `parent` with
/// address `mac`, refused if `name` exists (NLM_F_EXCL). The link starts down.
pub fn newlink_message(seq: u32, name: &str, parent: u32, mac: [u8; 6]) -> io::Result<Vec<u8>> {
    let data = attr(IflaInfo::Data, Buffer::new())?
        .nest(&attr(IFLA_MACVLAN_MODE, MACVLAN_MODE_PRIVATE)?)
        .map_err(build_err)?;
    let linkinfo = attr(Ifla::Linkinfo, Buffer::new())?
        .nest(&attr(IflaInfo::Kind, MACVLAN_KIND)?)
        .map_err(build_err)?
        .nest(&data)
        .map_err(build_err)?;
    let mut attrs = RtBuffer::new();
    attrs.push(attr(Ifla::Ifname, name)?);
    attrs.push(attr(Ifla::Link, parent)?);
    attrs.push(attr(Ifla::Address, Buffer::from(&mac[..]))?);
    attrs.push(linkinfo);
    let link = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .rtattrs(attrs)
        .build()
        .map_err(build_err)?;
    frame(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, seq, link)
}

/// The RTM_NEWLINK that sets link `index` up (`ip link set dev X up`).
pub fn up_message(seq: u32, index: u32) -> io::Result<Vec<u8>> {
    let link = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(i32::try_from(index).map_err(build_err)?)
        .up()
        .build()
        .map_err(build_err)?;
    frame(RTM_NEWLINK, 0, seq, link)
}

/// The RTM_DELLINK that removes link `index`.
pub fn dellink_message(seq: u32, index: u32) -> io::Result<Vec<u8>> {
    let link = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(i32::try_from(index).map_err(build_err)?)
        .build()
        .map_err(build_err)?;
    frame(RTM_DELLINK, 0, seq, link)
}

/// What lbd reads of a link to tell whether it is a group's virtual-MAC interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDetail {
    pub index: u32,
    pub mac: [u8; 6],
    /// IFF_UP.
    pub admin_up: bool,
    /// IFLA_LINK: the parent's index, for a stacked link.
    pub parent: Option<u32>,
    /// IFLA_INFO_KIND ("macvlan", "veth", ...); `None` for a physical interface.
    pub kind: Option<String>,
    /// IFLA_MACVLAN_MODE, for a macvlan.
    pub macvlan_mode: Option<u32>,
}

impl LinkDetail {
    /// A private macvlan over `parent` with `mac`: what [`ensure`] creates.
    pub fn is_vmac(&self, parent: u32, mac: [u8; 6]) -> bool {
        self.kind.as_deref() == Some(MACVLAN_KIND)
            && self.macvlan_mode == Some(MACVLAN_MODE_PRIVATE)
            && self.parent == Some(parent)
            && self.mac == mac
    }
}

fn u32_of(b: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(b.get(..4)?)
        .ok()
        .map(u32::from_ne_bytes)
}

/// Reads the body of the kernel's RTM_NEWLINK (the answer to RTM_GETLINK): index, MAC, IFF_UP,
/// IFLA_LINK and, inside IFLA_LINKINFO, the kind and the macvlan mode. Fuzzed
/// (fuzz/fuzz_targets/rtnetlink.rs).
pub fn parse_link_detail(body: &[u8]) -> io::Result<LinkDetail> {
    let link =
        Ifinfomsg::from_bytes_with_input(&mut Cursor::new(body), body.len()).map_err(invalid)?;
    let mut d = LinkDetail {
        index: link.ifi_index().unsigned_abs(),
        mac: [0; 6],
        admin_up: link.ifi_flags().contains(Iff::UP),
        parent: None,
        kind: None,
        macvlan_mode: None,
    };
    for a in link.rtattrs().iter() {
        let payload = a.rta_payload().as_ref();
        match *a.rta_type() {
            Ifla::Address => {
                for (to, from) in d.mac.iter_mut().zip(payload) {
                    *to = *from;
                }
            }
            Ifla::Link => d.parent = u32_of(payload),
            Ifla::Linkinfo => {
                let info = a.get_attr_handle::<u16>().map_err(invalid)?;
                for i in info.iter() {
                    let p = i.rta_payload().as_ref();
                    match *i.rta_type() & NLA_TYPE_MASK {
                        t if t == u16::from(IflaInfo::Kind) => {
                            let s = p.strip_suffix(&[0]).unwrap_or(p);
                            d.kind = Some(String::from_utf8_lossy(s).into_owned());
                        }
                        t if t == u16::from(IflaInfo::Data) => {
                            let data = i.get_attr_handle::<u16>().map_err(invalid)?;
                            d.macvlan_mode = data
                                .iter()
                                .find(|x| *x.rta_type() & NLA_TYPE_MASK == IFLA_MACVLAN_MODE)
                                .and_then(|x| u32_of(x.rta_payload().as_ref()));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    // The mode belongs to a macvlan only.
    if d.kind.as_deref() != Some(MACVLAN_KIND) {
        d.macvlan_mode = None;
    }
    Ok(d)
}

/// The link named `name`; `NotFound` when there is none.
pub fn link_detail(name: &str) -> io::Result<LinkDetail> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{name}` is not an interface name"),
        ));
    }
    let mut attrs = RtBuffer::new();
    attrs.push(attr(Ifla::Ifname, name)?);
    let req = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .rtattrs(attrs)
        .build()
        .map_err(build_err)?;
    let mut out = None;
    interface::exchange(
        Rtm::Getlink,
        NlmF::empty(),
        req,
        RTM_NEWLINK,
        true,
        |body| {
            out = Some(parse_link_detail(body)?);
            Ok(())
        },
    )
    .map_err(|e| {
        if e.raw_os_error() == Some(libc::ENODEV) {
            io::Error::new(io::ErrorKind::NotFound, format!("no interface `{name}`"))
        } else {
            e
        }
    })?;
    out.ok_or_else(|| invalid("no answer to RTM_GETLINK"))
}

/// Sends one request on a fresh socket and waits for its ack.
fn request(msg: &[u8], seq: u32) -> Result<(), Refusal> {
    let sock = NetlinkSocket::open(libc::NETLINK_ROUTE)?;
    let _ = sock.cap_ack();
    let _ = sock.ext_ack();
    sock.send(msg)?;
    let mut buf = [0u8; 8192];
    loop {
        let n = sock.recv(&mut buf)?;
        if let Some(a) = ack(&buf[..n], seq) {
            return match a.refusal() {
                None => Ok(()),
                Some(r) => Err(r),
            };
        }
    }
}

fn refused(what: String, r: Refusal) -> io::Error {
    io::Error::new(r.errno.kind(), format!("{what}: {r}"))
}

/// Writes `value` to `/proc/sys/net/<dir>/conf/<ifname>/<key>` (the caller's network namespace:
/// `/proc/sys/net` shows the opener's).
pub fn set_sysctl(dir: &str, ifname: &str, key: &str, value: u32) -> io::Result<()> {
    let path = format!("/proc/sys/net/{dir}/conf/{ifname}/{key}");
    std::fs::write(&path, format!("{value}\n"))
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))
}

/// Reads `/proc/sys/net/<dir>/conf/<ifname>/<key>`.
pub fn get_sysctl(dir: &str, ifname: &str, key: &str) -> io::Result<u32> {
    let path = format!("/proc/sys/net/{dir}/conf/{ifname}/{key}");
    std::fs::read_to_string(&path)?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))
}

/// The macvlan `name` over `parent` with `mac`: created now (`true`, still down) or adopted
/// (`false`: a restart of lbd, or an earlier call). An interface of that name that is anything
/// else is refused (`AlreadyExists`) and left alone.
fn create_or_adopt(name: &str, parent: &str, mac: [u8; 6]) -> io::Result<(LinkDetail, bool)> {
    let p = link_detail(parent).map_err(|e| io::Error::new(e.kind(), format!("{parent}: {e}")))?;
    match link_detail(name) {
        Ok(d) if d.is_vmac(p.index, mac) => Ok((d, false)),
        Ok(d) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "interface {name} exists and is not a private macvlan over {parent} with MAC {} ({}); lbd leaves it alone",
                mac_text(mac),
                d.kind.as_deref().unwrap_or("not a virtual link")
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            request(&newlink_message(1, name, p.index, mac)?, 1)
                .map_err(|r| refused(format!("create macvlan {name} on {parent}"), r))?;
            Ok((link_detail(name)?, true))
        }
        Err(e) => Err(e),
    }
}

fn set_up(name: &str, detail: &LinkDetail) -> io::Result<()> {
    if !detail.admin_up {
        request(&up_message(2, detail.index)?, 2)
            .map_err(|r| refused(format!("set {name} up"), r))?;
    }
    Ok(())
}

/// Makes sure macvlan `name` over `parent` with `mac` exists, has the sysctls of the module
/// documentation and is up: an IPv4 group's. `Ok(true)`: it was created now; `Ok(false)`: it
/// was there (a restart of lbd, or an earlier call), adopted. An interface of that name that is
/// anything else is refused (`AlreadyExists`) and left alone.
pub fn ensure(name: &str, parent: &str, mac: [u8; 6]) -> io::Result<bool> {
    let (detail, created) = create_or_adopt(name, parent, mac)?;
    // Before it is up: no IPv6 link-local address (nor its DAD and MLD) from the virtual MAC.
    // A kernel without IPv6 has no such file.
    match set_sysctl("ipv6", name, "disable_ipv6", 1) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for (key, value) in [("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0)] {
        set_sysctl("ipv4", name, key, value)?;
    }
    for (key, value) in [("arp_ignore", 1), ("arp_filter", 1), ("arp_announce", 2)] {
        set_sysctl("ipv4", parent, key, value)?;
    }
    if get_sysctl("ipv4", "all", "rp_filter").ok() == Some(1) {
        tracing::warn!(interface = name, "net.ipv4.conf.all.rp_filter is 1 (strict): it overrides the virtual-MAC interface's 0, and traffic to its addresses may be dropped; use 0 or 2");
    }
    set_up(name, &detail)?;
    Ok(created)
}

/// An IPv6 group's macvlan `name` over `parent` with `mac` (00:00:5e:00:02:VRID): created or
/// adopted as by [`ensure`], then set up as the IPv6 section of the module documentation says:
/// IPv6 on, no address of its own making (`IN6_ADDR_GEN_MODE_NONE`, before it is up; any
/// other link-local address found on an adopted one is removed: the EUI-64 one of the virtual
/// MAC, an earlier source), no router
/// solicitations and no router advertisements taken, up, and `source` (the address the
/// group's adverts come from, RFC 5798 section 5.1.2.1; `None` with `vmac_xmit_base`) added
/// as `source/64` without duplicate address detection, deprecated ([`source_address_message`]). The parent is not touched (IPv6 needs
/// none of the IPv4 ARP sysctls: the kernel answers a Neighbor Solicitation only on the
/// interface holding the target).
pub fn ensure_v6(
    name: &str,
    parent: &str,
    mac: [u8; 6],
    source: Option<Ipv6Addr>,
) -> io::Result<bool> {
    let (detail, created) = create_or_adopt(name, parent, mac)?;
    if let Err(r) = request(
        &addr_gen_mode_message(4, detail.index, IN6_ADDR_GEN_MODE_NONE)?,
        4,
    ) {
        // keepalived goes on too: the address the kernel makes is removed below.
        tracing::warn!(interface = name, error = %r, "cannot set addr_gen_mode none on the virtual-MAC interface; its EUI-64 link-local address is removed instead");
    }
    for (key, value) in [
        ("disable_ipv6", 0),
        ("accept_ra", 0),
        ("router_solicitations", 0),
    ] {
        set_sysctl("ipv6", name, key, value)?;
    }
    set_up(name, &detail)?;
    let mut sock = AddressSocket::open()?;
    // The kernel's own (from the virtual MAC, if addr_gen_mode came late) and any earlier
    // source (another unicast_src, or now vmac_xmit_base) go.
    let mut stale = interface::ipv6_link_locals(detail.index)?;
    stale.push(eui64_link_local(mac));
    stale.sort();
    stale.dedup();
    for a in stale.into_iter().filter(|a| Some(*a) != source) {
        let a = VirtualAddress::plain(IpAddr::V6(a), LINK_LOCAL_PREFIX_LEN);
        sock.del(detail.index, &a)
            .map_err(|r| refused(format!("remove {a} from {name}"), r))?;
    }
    if let Some(src) = source {
        request(&source_address_message(5, detail.index, src)?, 5)
            .map_err(|r| refused(format!("add {src}/64 to {name}"), r))?;
    }
    Ok(created)
}

/// The RTM_NEWADDR that puts the advert source `addr` on link `index` as keepalived 2.2.7 does
/// (`ip -6 addr replace fe80::…/64 dev vrrp.51 nodad preferred_lft 0`): `/64`, `IFA_F_NODAD`
/// (the parent holds the same address and has defended it; DAD on the macvlan would only
/// delay the first advert), and deprecated (`IFA_CACHEINFO` preferred 0, valid forever, RFC
/// 4862 section 5.5.4: the kernel never picks it as the source of its own traffic, and the
/// parent's copy serves that). `NLM_F_REPLACE`: an adopted macvlan's address is brought to
/// this state, not refused.
pub fn source_address_message(seq: u32, index: u32, addr: Ipv6Addr) -> io::Result<Vec<u8>> {
    let mut cacheinfo = Vec::with_capacity(16);
    for v in [0, INFINITY_LIFE_TIME, 0, 0] {
        cacheinfo.extend_from_slice(&u32::to_ne_bytes(v));
    }
    let mut attrs = RtBuffer::new();
    for (t, payload) in [
        (Ifa::Local, addr.octets().to_vec()),
        (Ifa::Address, addr.octets().to_vec()),
        (Ifa::Cacheinfo, cacheinfo),
    ] {
        attrs.push(attr(t, Buffer::from(payload))?);
    }
    let msg = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::Inet6)
        .ifa_prefixlen(LINK_LOCAL_PREFIX_LEN)
        .ifa_flags(IfaF::from(IFA_F_NODAD))
        .ifa_scope(RtScope::Link)
        .ifa_index(index)
        .rtattrs(attrs)
        .build()
        .map_err(build_err)?;
    frame(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, seq, msg)
}

/// The RTM_NEWLINK that sets link `index`'s IPv6 address generation mode (`ip link set dev X
/// addrgenmode none`): `IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE u8 } }`. The kernel
/// takes it on an existing link only, not in the message that creates one.
pub fn addr_gen_mode_message(seq: u32, index: u32, mode: u8) -> io::Result<Vec<u8>> {
    let inet6 = attr(AF_INET6, Buffer::new())?
        .nest(&attr(IFLA_INET6_ADDR_GEN_MODE, mode)?)
        .map_err(build_err)?;
    let spec = attr(Ifla::AfSpec, Buffer::new())?
        .nest(&inet6)
        .map_err(build_err)?;
    let mut attrs = RtBuffer::new();
    attrs.push(spec);
    let link = IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .ifi_index(i32::try_from(index).map_err(build_err)?)
        .rtattrs(attrs)
        .build()
        .map_err(build_err)?;
    frame(RTM_NEWLINK, 0, seq, link)
}

/// The link-local address the kernel would make from `mac` (modified EUI-64, RFC 4291
/// appendix A and RFC 2464 section 5: the universal/local bit flipped, ff:fe in the middle).
pub fn eui64_link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// Removes macvlan `name` if it is a virtual-MAC interface with `mac` (any parent). `Ok(false)`:
/// there was none; an interface of that name that is anything else is refused and left.
pub fn delete(name: &str, mac: [u8; 6]) -> io::Result<bool> {
    let d = match link_detail(name) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !d.parent.is_some_and(|p| d.is_vmac(p, mac)) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "interface {name} is not a private macvlan with MAC {}; lbd leaves it alone",
                mac_text(mac)
            ),
        ));
    }
    match request(&dellink_message(3, d.index)?, 3) {
        Ok(()) => Ok(true),
        Err(r) if r.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(r) => Err(refused(format!("remove {name}"), r)),
    }
}

/// `00:00:5e:00:01:33`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::rtnl::{NLM_F_ACK, NLM_F_REQUEST};

    fn u16_at(m: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([m[at], m[at + 1]])
    }

    /// The request of `ip link add link <3> name vrrp.51 address 00:00:5e:00:01:33 type
    /// macvlan mode private`, field by field as `linux/rtnetlink.h` and `linux/if_link.h` lay it
    /// out; tests/vrrp_vmac.rs shows the kernel takes it.
    #[test]
    fn newlink_is_framed_like_iproute2() {
        let mac = [0, 0, 0x5e, 0, 1, 51];
        let m = newlink_message(7, "vrrp.51", 3, mac).unwrap();
        // Header: length, type, flags REQUEST|ACK|EXCL|CREATE, seq.
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16_at(&m, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&m, 6), 0x605);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        // ifinfomsg: family 0, type 0, index 0, flags 0, change 0.
        assert_eq!(&m[16..32], &[0u8; 16]);
        // IFLA_IFNAME "vrrp.51\0" (3): len 12.
        assert_eq!(&m[32..36], &[12, 0, 3, 0]);
        assert_eq!(&m[36..44], b"vrrp.51\0");
        // IFLA_LINK (5) u32 3.
        assert_eq!(&m[44..48], &[8, 0, 5, 0]);
        assert_eq!(u32::from_ne_bytes(m[48..52].try_into().unwrap()), 3);
        // IFLA_ADDRESS (1), 6 bytes, padded to 4.
        assert_eq!(&m[52..56], &[10, 0, 1, 0]);
        assert_eq!(&m[56..62], &mac);
        assert_eq!(&m[62..64], &[0, 0]);
        // IFLA_LINKINFO (18) { IFLA_INFO_KIND (1) "macvlan\0", IFLA_INFO_DATA (2)
        //   { IFLA_MACVLAN_MODE (1) u32 1 } }: 4 + 12 + (4 + 8) = 28.
        assert_eq!(&m[64..68], &[28, 0, 18, 0]);
        assert_eq!(&m[68..72], &[12, 0, 1, 0]);
        assert_eq!(&m[72..80], b"macvlan\0");
        assert_eq!(&m[80..84], &[12, 0, 2, 0]);
        assert_eq!(&m[84..88], &[8, 0, 1, 0]);
        assert_eq!(u32::from_ne_bytes(m[88..92].try_into().unwrap()), 1);
        assert_eq!(m.len(), 92);
    }

    #[test]
    fn up_and_dellink_name_the_index() {
        let m = up_message(2, 9).unwrap();
        assert_eq!(m.len(), 32);
        assert_eq!(u16_at(&m, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&m, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 9);
        // ifi_flags and ifi_change: IFF_UP.
        assert_eq!(
            u32::from_ne_bytes(m[24..28].try_into().unwrap()),
            libc::IFF_UP as u32
        );
        assert_eq!(
            u32::from_ne_bytes(m[28..32].try_into().unwrap()),
            libc::IFF_UP as u32
        );
        let d = dellink_message(3, 9).unwrap();
        assert_eq!((d.len(), u16_at(&d, 4)), (32, RTM_DELLINK));
        assert_eq!(i32::from_ne_bytes(d[20..24].try_into().unwrap()), 9);
        assert_eq!(u32::from_ne_bytes(d[24..28].try_into().unwrap()), 0);
    }

    /// `ip link set dev <9> addrgenmode none`, as iproute2 frames it: IFLA_AF_SPEC (26) {
    /// AF_INET6 (10) { IFLA_INET6_ADDR_GEN_MODE (8) u8 1, padded to 4 } }.
    #[test]
    fn addr_gen_mode_is_framed_like_iproute2() {
        let m = addr_gen_mode_message(4, 9, IN6_ADDR_GEN_MODE_NONE).unwrap();
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16_at(&m, 4), RTM_NEWLINK);
        assert_eq!(u16_at(&m, 6), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 4);
        // ifinfomsg: family 0, index 9, flags and change 0 (the link's state is not touched).
        assert_eq!(m[16], 0);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 9);
        assert_eq!(&m[24..32], &[0u8; 8]);
        // IFLA_AF_SPEC: 4 + AF_INET6 (4 + (4 + 1, padded to 8)) = 16.
        assert_eq!(&m[32..36], &[16, 0, 26, 0]);
        assert_eq!(&m[36..40], &[12, 0, 10, 0]);
        assert_eq!(&m[40..44], &[5, 0, 8, 0]);
        assert_eq!(m[44], 1);
        assert_eq!(m.len(), 48);
    }

    /// `ip -6 addr replace fe80::ff:fe00:1/64 dev <9> nodad preferred_lft 0`, as keepalived
    /// leaves its macvlan's address: ifaddrmsg { AF_INET6, 64, IFA_F_NODAD, RT_SCOPE_LINK, 9 },
    /// IFA_LOCAL, IFA_ADDRESS, IFA_CACHEINFO { preferred 0, valid forever, 0, 0 }.
    #[test]
    fn the_source_address_is_framed_like_iproute2() {
        let ll: Ipv6Addr = "fe80::ff:fe00:1".parse().unwrap();
        let m = source_address_message(5, 9, ll).unwrap();
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(u16_at(&m, 4), RTM_NEWADDR);
        // REQUEST | ACK | REPLACE | CREATE.
        assert_eq!(u16_at(&m, 6), 0x505);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 5);
        assert_eq!(&m[16..20], &[libc::AF_INET6 as u8, 64, IFA_F_NODAD, 253]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 9);
        // IFA_LOCAL (2) and IFA_ADDRESS (1): 4 + 16 each.
        assert_eq!(&m[24..28], &[20, 0, 2, 0]);
        assert_eq!(&m[28..44], &ll.octets());
        assert_eq!(&m[44..48], &[20, 0, 1, 0]);
        assert_eq!(&m[48..64], &ll.octets());
        // IFA_CACHEINFO (6): struct ifa_cacheinfo, 16 bytes.
        assert_eq!(&m[64..68], &[20, 0, 6, 0]);
        assert_eq!(u32::from_ne_bytes(m[68..72].try_into().unwrap()), 0);
        assert_eq!(
            u32::from_ne_bytes(m[72..76].try_into().unwrap()),
            INFINITY_LIFE_TIME
        );
        assert_eq!(&m[76..84], &[0u8; 8]);
        assert_eq!(m.len(), 84);
    }

    /// The kernel's link-local address for a MAC (the hosts of tests/vrrp_v6.rs: 02:..:01 is
    /// fe80::ff:fe00:1); for the IPv6 virtual MAC of VRID 1, what an adopted macvlan may carry.
    #[test]
    fn eui64_flips_the_universal_bit() {
        assert_eq!(
            eui64_link_local([2, 0, 0, 0, 0, 1]).to_string(),
            "fe80::ff:fe00:1"
        );
        assert_eq!(
            eui64_link_local([0, 0, 0x5e, 0, 2, 1]).to_string(),
            "fe80::200:5eff:fe00:201"
        );
    }

    /// An attribute as the kernel writes it: header, payload, padding to 4.
    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// The body of the kernel's answer for a macvlan, as `rtnl_fill_ifinfo` writes it: the
    /// ifinfomsg, some attributes lbd does not read, IFLA_LINK, IFLA_ADDRESS and IFLA_LINKINFO
    /// (whose IFLA_INFO_DATA carries NLA_F_NESTED here, as newer kernels may write).
    fn macvlan_body(mode: u32, kind: &str) -> Vec<u8> {
        let mut b = vec![0u8, 0];
        b.extend_from_slice(&1u16.to_ne_bytes()); // ARPHRD_ETHER
        b.extend_from_slice(&12i32.to_ne_bytes());
        b.extend_from_slice(&((libc::IFF_UP | libc::IFF_BROADCAST) as u32).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend(nla(libc::IFLA_IFNAME, b"vrrp.51\0"));
        b.extend(nla(libc::IFLA_MTU, &1500u32.to_ne_bytes()));
        b.extend(nla(libc::IFLA_LINK, &4u32.to_ne_bytes()));
        b.extend(nla(libc::IFLA_ADDRESS, &[0, 0, 0x5e, 0, 1, 51]));
        let mut kind_z = kind.as_bytes().to_vec();
        kind_z.push(0);
        let mut info = nla(1, &kind_z);
        info.extend(nla(
            2 | 0x8000,
            &[nla(1, &mode.to_ne_bytes()), nla(3, &0u16.to_ne_bytes())].concat(),
        ));
        b.extend(nla(libc::IFLA_LINKINFO, &info));
        b
    }

    #[test]
    fn the_kernels_answer_for_a_macvlan_is_read() {
        let d = parse_link_detail(&macvlan_body(MACVLAN_MODE_PRIVATE, "macvlan")).unwrap();
        assert_eq!(
            d,
            LinkDetail {
                index: 12,
                mac: [0, 0, 0x5e, 0, 1, 51],
                admin_up: true,
                parent: Some(4),
                kind: Some("macvlan".into()),
                macvlan_mode: Some(MACVLAN_MODE_PRIVATE),
            }
        );
        assert!(d.is_vmac(4, [0, 0, 0x5e, 0, 1, 51]));
        assert!(!d.is_vmac(5, [0, 0, 0x5e, 0, 1, 51]));
        assert!(!d.is_vmac(4, [0, 0, 0x5e, 0, 1, 52]));
        // Bridge mode (4) is not what lbd creates.
        let bridge = parse_link_detail(&macvlan_body(4, "macvlan")).unwrap();
        assert!(!bridge.is_vmac(4, [0, 0, 0x5e, 0, 1, 51]));
        // Another kind's data is not a macvlan mode.
        let veth = parse_link_detail(&macvlan_body(1, "veth")).unwrap();
        assert_eq!(
            (veth.kind.as_deref(), veth.macvlan_mode),
            (Some("veth"), None)
        );
        // Cut short anywhere: an error or a partial read, never a panic.
        let full = macvlan_body(1, "macvlan");
        for cut in 0..full.len() {
            let _ = parse_link_detail(&full[..cut]);
        }
        assert!(parse_link_detail(&full[..8]).is_err());
    }

    /// Reading a real link of the test's own namespace (the loopback: no kind, no parent).
    #[test]
    fn loopback_is_no_vmac() {
        let lo = link_detail("lo").unwrap();
        assert_eq!((lo.index, lo.parent, lo.kind.as_deref()), (1, None, None));
        assert!(!lo.is_vmac(1, [0; 6]));
        assert_eq!(
            link_detail("lbd-nonexistent").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(mac_text([0, 0, 0x5e, 0, 1, 0x33]), "00:00:5e:00:01:33");
    }
}
