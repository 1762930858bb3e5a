//! rtnetlink (`NETLINK_ROUTE`): adding and removing the virtual addresses, routes and rules
//! (one framing helper, `frame`), a socket that hears link changes (for VRRP's Fault state),
//! and one that hears their deletions ([`RouteWatch`], [`parse_deletions`]: keepalived's
//! tracking, `crate::dataplane::vrrp::watch`).
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
use neli::consts::rtnl::{Ifa, IfaF, RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot};
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::rtnl::{IfaddrmsgBuilder, RtattrBuilder, RtmsgBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;
use neli::ToBytes;

use crate::kernel::nlsocket::{messages, parse_ack, Ack, NetlinkSocket, Refusal};
use crate::model::vrrp_routes::RTPROT_KEEPALIVED;
use crate::model::{Family, RouteType, VirtualAddress, VirtualRoute, VirtualRule};

pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const NLMSG_ERROR: u16 = 2;
pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLM_F_REPLACE`: a request that may change an existing object.
pub const NLM_F_REPLACE: u16 = 0x100;
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_LABEL: u16 = 3;
pub const IFA_BROADCAST: u16 = 4;
/// `RTNLGRP_LINK`: multicast group of link changes (`RTMGRP_LINK` is its bit, 1).
pub const RTNLGRP_LINK: u32 = 1;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `IFA_F_NODAD`: an IPv6 virtual address must not wait for duplicate address detection (the
/// old master may still hold it for a moment).
pub const IFA_F_NODAD: u8 = 0x02;

pub(crate) fn build_err(e: impl std::fmt::Display) -> io::Error {
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
    let mut attrs: Vec<(u16, Vec<u8>)> = [IFA_LOCAL, IFA_ADDRESS]
        .into_iter()
        .map(|t| (t, bytes.clone()))
        .collect();
    // keepalived's options: the broadcast address and the label (NUL-terminated, as
    // iproute2 sends it); the scope is in the header.
    if let Some(b) = a.broadcast {
        attrs.push((IFA_BROADCAST, b.octets().to_vec()));
    }
    if let Some(l) = &a.label {
        attrs.push((IFA_LABEL, name_attr(l)));
    }
    let ifa = IfaddrmsgBuilder::default()
        .ifa_family(RtAddrFamily::from(family))
        .ifa_prefixlen(a.prefix_len)
        .ifa_flags(IfaF::from(ifa_flags))
        .ifa_scope(RtScope::from(a.scope.map_or(RT_SCOPE_UNIVERSE, |s| s.0)))
        .ifa_index(ifindex)
        .rtattrs(attributes::<Ifa>(attrs)?)
        .build()
        .map_err(build_err)?;
    frame(ty, flags, seq, ifa)
}

/// Attributes (`struct rtattr`: length, type, payload padded to 4 bytes) in order, of the
/// attribute type `T` of the header they follow.
fn attributes<T>(attrs: Vec<(u16, Vec<u8>)>) -> io::Result<RtBuffer<T, Buffer>>
where
    T: neli::consts::rtnl::RtaType + From<u16>,
{
    let mut buf = RtBuffer::new();
    for (t, payload) in attrs {
        buf.push(
            RtattrBuilder::default()
                .rta_type(T::from(t))
                .rta_payload(Buffer::from(payload))
                .build()
                .map_err(build_err)?,
        );
    }
    Ok(buf)
}

/// One request as the kernel reads it: `struct nlmsghdr` (length, type `ty`, `flags` with
/// NLM_F_REQUEST and NLM_F_ACK, sequence `seq`, port 0: the kernel) around `payload` (a
/// neli header struct with its attributes), padded to 4 bytes. Every request of this module
/// (addresses, routes, rules) is framed here.
pub(crate) fn frame<P>(ty: u16, flags: u16, seq: u32, payload: P) -> io::Result<Vec<u8>>
where
    P: neli::Size + ToBytes,
{
    let msg = NlmsghdrBuilder::default()
        .nl_type(Rtm::from(ty))
        .nl_flags(NlmF::from(flags | NLM_F_REQUEST | NLM_F_ACK))
        .nl_seq(seq)
        .nl_pid(0)
        .nl_payload(NlPayload::Payload(payload))
        .build()
        .map_err(build_err)?;
    let mut out = Cursor::new(Vec::with_capacity(128));
    msg.to_bytes(&mut out).map_err(build_err)?;
    Ok(out.into_inner())
}

pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_TABLE: u16 = 15;
pub const FRA_DST: u16 = 1;
pub const FRA_SRC: u16 = 2;
pub const FRA_IIFNAME: u16 = 3;
pub const FRA_PRIORITY: u16 = 6;
pub const FRA_FWMARK: u16 = 10;
pub const FRA_TABLE: u16 = 15;
pub const FRA_FWMASK: u16 = 16;
pub const FRA_OIFNAME: u16 = 17;
pub const FRA_PROTOCOL: u16 = 21;
pub const FR_ACT_TO_TBL: u8 = 1;
pub const FR_ACT_BLACKHOLE: u8 = 6;
pub const FR_ACT_UNREACHABLE: u8 = 7;
pub const FR_ACT_PROHIBIT: u8 = 8;
pub const RT_SCOPE_LINK: u8 = 253;
pub const RT_SCOPE_NOWHERE: u8 = 255;

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family_of(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// The `struct rtmsg` fields and attributes of one request; routes and rules share the
/// layout (`struct fib_rule_hdr` is `rtmsg` with `res1`, `res2`, `action` where `rtmsg` has
/// protocol, scope and type).
struct RtHeader {
    family: u8,
    dst_len: u8,
    src_len: u8,
    table: u8,
    protocol: u8,
    scope: u8,
    ty: u8,
}

fn rt_message(
    ty: u16,
    flags: u16,
    seq: u32,
    h: RtHeader,
    attrs: Vec<(u16, Vec<u8>)>,
) -> io::Result<Vec<u8>> {
    let rtm = RtmsgBuilder::default()
        .rtm_family(RtAddrFamily::from(h.family))
        .rtm_dst_len(h.dst_len)
        .rtm_src_len(h.src_len)
        .rtm_tos(0)
        .rtm_table(RtTable::from(h.table))
        .rtm_protocol(Rtprot::from(h.protocol))
        .rtm_scope(RtScope::from(h.scope))
        .rtm_type(Rtn::from(h.ty))
        .rtattrs(attributes::<Rta>(attrs)?)
        .build()
        .map_err(build_err)?;
    frame(ty, flags, seq, rtm)
}

/// A table in the header when it fits in a byte, else RT_TABLE_UNSPEC there and the number in
/// an attribute (as iproute2 does).
fn table_split(table: u32) -> (u8, Option<u32>) {
    match u8::try_from(table) {
        Ok(t) => (t, None),
        Err(_) => (0, Some(table)),
    }
}

fn rtn(kind: RouteType) -> u8 {
    match kind {
        RouteType::Unicast => libc::RTN_UNICAST,
        RouteType::Blackhole => libc::RTN_BLACKHOLE,
        RouteType::Unreachable => libc::RTN_UNREACHABLE,
        RouteType::Prohibit => libc::RTN_PROHIBIT,
    }
}

/// Builds an RTM_NEWROUTE / RTM_DELROUTE request for `r`, `oif` its `dev`'s index. As
/// iproute2: a unicast route without a gateway is link scope, a removal without a scope
/// matches any (RT_SCOPE_NOWHERE); as keepalived, the protocol is RTPROT_KEEPALIVED unless
/// given.
pub fn route_message(
    ty: u16,
    flags: u16,
    seq: u32,
    r: &VirtualRoute,
    oif: Option<u32>,
) -> io::Result<Vec<u8>> {
    let table = r.table.unwrap_or(u32::from(libc::RT_TABLE_MAIN));
    let (t8, t32) = table_split(table);
    let scope = match r.scope {
        Some(s) => s.0,
        None if ty == RTM_DELROUTE => RT_SCOPE_NOWHERE,
        None if r.kind == RouteType::Unicast && r.via.is_none() => RT_SCOPE_LINK,
        None => RT_SCOPE_UNIVERSE,
    };
    let mut attrs = vec![(RTA_DST, ip_bytes(&r.to.address))];
    if let Some(t) = t32 {
        attrs.push((RTA_TABLE, t.to_ne_bytes().to_vec()));
    }
    if let Some(v) = &r.via {
        attrs.push((RTA_GATEWAY, ip_bytes(v)));
    }
    if let Some(i) = oif {
        attrs.push((RTA_OIF, i.to_ne_bytes().to_vec()));
    }
    if let Some(s) = &r.src {
        attrs.push((RTA_PREFSRC, ip_bytes(s)));
    }
    if let Some(m) = r.metric {
        attrs.push((RTA_PRIORITY, m.to_ne_bytes().to_vec()));
    }
    rt_message(
        ty,
        flags,
        seq,
        RtHeader {
            family: family_of(&r.to.address),
            dst_len: r.to.len,
            src_len: 0,
            table: t8,
            protocol: r.protocol.unwrap_or(RTPROT_KEEPALIVED),
            scope,
            ty: rtn(r.kind),
        },
        attrs,
    )
}

fn name_attr(n: &str) -> Vec<u8> {
    let mut z = n.as_bytes().to_vec();
    z.push(0);
    z
}

/// Builds an RTM_NEWRULE / RTM_DELRULE request (`struct fib_rule_hdr` and FRA_
/// attributes), protocol RTPROT_KEEPALIVED as keepalived marks its rules.
pub fn rule_message(ty: u16, flags: u16, seq: u32, r: &VirtualRule) -> io::Result<Vec<u8>> {
    let family = match r.family() {
        Family::Ipv4 => libc::AF_INET as u8,
        Family::Ipv6 => libc::AF_INET6 as u8,
    };
    let (t8, t32) = table_split(r.table.unwrap_or(0));
    let action = match r.kind {
        None | Some(RouteType::Unicast) => FR_ACT_TO_TBL,
        Some(RouteType::Blackhole) => FR_ACT_BLACKHOLE,
        Some(RouteType::Unreachable) => FR_ACT_UNREACHABLE,
        Some(RouteType::Prohibit) => FR_ACT_PROHIBIT,
    };
    let mut attrs = Vec::new();
    if let Some(p) = &r.to {
        attrs.push((FRA_DST, ip_bytes(&p.address)));
    }
    if let Some(p) = &r.from {
        attrs.push((FRA_SRC, ip_bytes(&p.address)));
    }
    if let Some(i) = &r.iif {
        attrs.push((FRA_IIFNAME, name_attr(i)));
    }
    if let Some(p) = r.priority {
        attrs.push((FRA_PRIORITY, p.to_ne_bytes().to_vec()));
    }
    if let Some(m) = r.fwmark {
        attrs.push((FRA_FWMARK, m.to_ne_bytes().to_vec()));
    }
    if let Some(t) = t32 {
        attrs.push((FRA_TABLE, t.to_ne_bytes().to_vec()));
    }
    if let Some(m) = r.fwmask {
        attrs.push((FRA_FWMASK, m.to_ne_bytes().to_vec()));
    }
    if let Some(o) = &r.oif {
        attrs.push((FRA_OIFNAME, name_attr(o)));
    }
    attrs.push((FRA_PROTOCOL, vec![RTPROT_KEEPALIVED]));
    rt_message(
        ty,
        flags,
        seq,
        RtHeader {
            family,
            dst_len: r.to.map_or(0, |p| p.len),
            src_len: r.from.map_or(0, |p| p.len),
            table: t8,
            protocol: 0,
            scope: 0,
            ty: action,
        },
        attrs,
    )
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

    /// Adds (`add`) or removes route `r` (`oif`: its `dev`'s index). `Ok(false)`: it was
    /// already there (EEXIST) or was not (ESRCH).
    pub fn route(
        &mut self,
        add: bool,
        r: &VirtualRoute,
        oif: Option<u32>,
    ) -> Result<bool, Refusal> {
        let (ty, flags, absent) = if add {
            (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, libc::EEXIST)
        } else {
            (RTM_DELROUTE, 0, libc::ESRCH)
        };
        self.seq = self.seq.wrapping_add(1);
        let m = route_message(ty, flags, self.seq, r, oif)?;
        match self.exchange(&m) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(absent) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds (`add`) or removes rule `r`. `Ok(false)`: it was already there (EEXIST) or was
    /// not (ENOENT).
    pub fn rule(&mut self, add: bool, r: &VirtualRule) -> Result<bool, Refusal> {
        let (ty, flags, absent) = if add {
            (RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, libc::EEXIST)
        } else {
            (RTM_DELRULE, 0, libc::ENOENT)
        };
        self.seq = self.seq.wrapping_add(1);
        let m = rule_message(ty, flags, self.seq, r)?;
        match self.exchange(&m) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(absent) => Ok(false),
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
        let m = addr_message(ty, flags, seq, ifindex, a)?;
        self.exchange(&m)
    }

    /// Sends one request (its sequence number is `self.seq`) and waits for its ack.
    fn exchange(&mut self, m: &[u8]) -> Result<(), Refusal> {
        let seq = self.seq;
        self.sock.send(m)?;
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

    /// Reads what is queued (at most [`WATCH_READS`] datagrams); true when anything was.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        // Bounded as RouteWatch::read: a socket still readable is drained at the next poll.
        for _ in 0..WATCH_READS {
            match self.sock.recv(&mut buf[..], Msg::empty()) {
                Ok((0, _)) => return any,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ENOBUFS: the kernel dropped notifications; the reader re-reads anyway.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => any = true,
                Err(_) => return any,
            }
        }
        any
    }
}

/// `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV4_ROUTE`, `RTNLGRP_IPV4_RULE`, `RTNLGRP_IPV6_IFADDR`,
/// `RTNLGRP_IPV6_ROUTE`, `RTNLGRP_IPV6_RULE` (`linux/rtnetlink.h`).
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub const RTNLGRP_IPV4_RULE: u32 = 8;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
pub const RTNLGRP_IPV6_ROUTE: u32 = 11;
pub const RTNLGRP_IPV6_RULE: u32 = 19;
pub const FRA_IFNAME: u16 = FRA_IIFNAME;
/// IPv6 routes added without a metric get this one (`IP6_RT_PRIO_USER`).
pub const IP6_RT_PRIO_USER: u32 = 1024;

/// A route the kernel says was deleted (RTM_DELROUTE): what [`RouteGone::is`] compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteGone {
    pub family: u8,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub table: u32,
    pub protocol: u8,
    pub kind: u8,
    pub metric: u32,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
}

/// A rule the kernel says was deleted (RTM_DELRULE): what [`RuleGone::is`] compares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleGone {
    pub family: u8,
    pub src: Option<IpAddr>,
    pub src_len: u8,
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub table: u32,
    pub action: u8,
    pub priority: Option<u32>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub protocol: Option<u8>,
}

/// What the watch hears: an address, a route or a rule deleted from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// RTM_DELADDR: the address (IFA_LOCAL, else IFA_ADDRESS) on interface `ifindex`.
    Address {
        ifindex: u32,
        address: IpAddr,
        prefix_len: u8,
    },
    Route(RouteGone),
    Rule(RuleGone),
}

/// The attributes after a fixed header: (type without the nested/byte-order flags, payload).
/// Unknown types are kept (the readers skip them); a length below 4 or past the end stops the
/// walk, as the kernel's `nla_ok` does.
fn rtattrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        let ty = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

fn ip_of(family: u8, b: &[u8]) -> Option<IpAddr> {
    match (i32::from(family), b.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        (libc::AF_INET6, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn name_of(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end]).ok().map(str::to_string)
}

/// The deletions in a datagram from the route multicast groups, in order: RTM_DELADDR,
/// RTM_DELROUTE and RTM_DELRULE of IPv4 and IPv6 (everything else, and a body too short for
/// its header, is skipped; unknown attributes are ignored). Fuzzed
/// (fuzz/fuzz_targets/rtnetlink.rs).
pub fn parse_deletions(data: &[u8]) -> Vec<Deletion> {
    let mut out = Vec::new();
    for m in messages(data) {
        let Ok(m) = m else { break };
        let b = m.body;
        let family = b.first().copied().unwrap_or(0);
        if i32::from(family) != libc::AF_INET && i32::from(family) != libc::AF_INET6 {
            continue;
        }
        match m.ty {
            // struct ifaddrmsg: family, prefixlen, flags, scope, index (u32).
            RTM_DELADDR if b.len() >= 8 => {
                let attrs = rtattrs(&b[8..]);
                let find = |t| attrs.iter().find(|(ty, _)| *ty == t).map(|(_, p)| *p);
                let addr = find(IFA_LOCAL)
                    .or_else(|| find(IFA_ADDRESS))
                    .and_then(|p| ip_of(family, p));
                if let (Some(address), Some(ifindex)) = (addr, u32_of(&b[4..8])) {
                    out.push(Deletion::Address {
                        ifindex,
                        address,
                        prefix_len: b[1],
                    });
                }
            }
            // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
            RTM_DELROUTE if b.len() >= 12 => {
                let mut r = RouteGone {
                    family,
                    dst: None,
                    dst_len: b[1],
                    table: u32::from(b[4]),
                    protocol: b[5],
                    kind: b[7],
                    metric: 0,
                    oif: None,
                    gateway: None,
                };
                for (t, p) in rtattrs(&b[12..]) {
                    match t {
                        RTA_DST => r.dst = ip_of(family, p),
                        RTA_TABLE => r.table = u32_of(p).unwrap_or(r.table),
                        RTA_PRIORITY => r.metric = u32_of(p).unwrap_or(0),
                        RTA_OIF => r.oif = u32_of(p),
                        RTA_GATEWAY => r.gateway = ip_of(family, p),
                        _ => {}
                    }
                }
                out.push(Deletion::Route(r));
            }
            // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action,
            // flags.
            RTM_DELRULE if b.len() >= 12 => {
                let mut r = RuleGone {
                    family,
                    dst_len: b[1],
                    src_len: b[2],
                    table: u32::from(b[4]),
                    action: b[7],
                    ..RuleGone::default()
                };
                for (t, p) in rtattrs(&b[12..]) {
                    match t {
                        FRA_DST => r.dst = ip_of(family, p),
                        FRA_SRC => r.src = ip_of(family, p),
                        FRA_IFNAME => r.iif = name_of(p),
                        FRA_OIFNAME => r.oif = name_of(p),
                        FRA_PRIORITY => r.priority = u32_of(p),
                        FRA_FWMARK => r.fwmark = u32_of(p),
                        FRA_FWMASK => r.fwmask = u32_of(p),
                        FRA_TABLE => r.table = u32_of(p).unwrap_or(r.table),
                        FRA_PROTOCOL => r.protocol = p.first().copied(),
                        _ => {}
                    }
                }
                out.push(Deletion::Rule(r));
            }
            _ => {}
        }
    }
    out
}

impl RouteGone {
    /// Whether this is virtual route `r` (`oif`: its `dev`'s index, looked up only when
    /// everything else matches), as keepalived's `route_is_ours` decides: family, destination
    /// and its length, table, metric, protocol, type, and the output interface when `r` names
    /// one.
    pub fn is(&self, r: &VirtualRoute, oif: impl FnOnce() -> Option<u32>) -> bool {
        let family = family_of(&r.to.address);
        let metric = r.metric.unwrap_or(if family == libc::AF_INET6 as u8 {
            IP6_RT_PRIO_USER
        } else {
            0
        });
        let dst = self.dst.unwrap_or(if family == libc::AF_INET6 as u8 {
            IpAddr::from([0u16; 8])
        } else {
            IpAddr::from([0u8; 4])
        });
        self.family == family
            && self.dst_len == r.to.len
            && dst == r.to.address
            && self.table == r.table.unwrap_or(u32::from(libc::RT_TABLE_MAIN))
            && self.metric == metric
            && self.protocol == r.protocol.unwrap_or(RTPROT_KEEPALIVED)
            && self.kind == rtn(r.kind)
            && (r.dev.is_none() || {
                let oif = oif();
                oif.is_some() && self.oif == oif
            })
    }
}

impl RuleGone {
    /// Whether this is virtual rule `r`, as keepalived's `compare_rule` decides: family,
    /// action, table, source and destination with their lengths, interfaces, fwmark and mask,
    /// priority when `r` has one; a rule marked with another protocol is not lbd's.
    pub fn is(&self, r: &VirtualRule) -> bool {
        let family = match r.family() {
            Family::Ipv4 => libc::AF_INET as u8,
            Family::Ipv6 => libc::AF_INET6 as u8,
        };
        let action = match r.kind {
            None | Some(RouteType::Unicast) => FR_ACT_TO_TBL,
            Some(RouteType::Blackhole) => FR_ACT_BLACKHOLE,
            Some(RouteType::Unreachable) => FR_ACT_UNREACHABLE,
            Some(RouteType::Prohibit) => FR_ACT_PROHIBIT,
        };
        // The kernel reports a mark's mask as all ones when none was given.
        let fwmask = match (r.fwmark, r.fwmask) {
            (Some(_), None) => Some(u32::MAX),
            (_, m) => m,
        };
        let seen_mask = match (self.fwmark, self.fwmask) {
            (Some(_), None) => Some(u32::MAX),
            (_, m) => m,
        };
        self.family == family
            && self.action == action
            && self.table == r.table.unwrap_or(0)
            && self.protocol.is_none_or(|p| p == RTPROT_KEEPALIVED)
            && (self.src, self.src_len) == r.from.map_or((None, 0), |p| (Some(p.address), p.len))
            && (self.dst, self.dst_len) == r.to.map_or((None, 0), |p| (Some(p.address), p.len))
            && self.iif == r.iif
            && self.oif == r.oif
            && self.fwmark == r.fwmark
            && seen_mask == fwmask
            && r.priority.is_none_or(|p| self.priority == Some(p))
    }
}

/// A socket in the address, route and rule multicast groups of both families: the VRRP
/// engine hears there the deletions of what its masters added ([`parse_deletions`]). The
/// route and rule groups are joined only while a group has routes or rules
/// ([`RouteWatch::follow_routes`]), as keepalived does: on a router with a full table they
/// are busy.
pub struct RouteWatch {
    sock: NlSocket,
    routes: bool,
}

/// Datagrams [`RouteWatch::read`] takes per call.
pub const WATCH_READS: usize = 64;

const ROUTE_GROUPS: [u32; 4] = [
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_IPV4_RULE,
    RTNLGRP_IPV6_RULE,
];

impl RouteWatch {
    pub fn open() -> io::Result<RouteWatch> {
        let sock = NlSocket::connect(
            NlFamily::Route,
            None,
            Groups::new_groups(&[RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]),
        )?;
        sock.nonblock()?;
        // Room for a burst (a flushed table): 1 MiB, forced past rmem_max when allowed.
        let v: libc::c_int = 1 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: setsockopt on our own socket with a live c_int of the given size.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
        Ok(RouteWatch {
            sock,
            routes: false,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Joins (`on`) or leaves the route and rule groups.
    pub fn follow_routes(&mut self, on: bool) -> io::Result<()> {
        if on == self.routes {
            return Ok(());
        }
        let groups = Groups::new_groups(&ROUTE_GROUPS);
        if on {
            self.sock.add_mcast_membership(groups)?;
        } else {
            self.sock.drop_mcast_membership(groups)?;
        }
        self.routes = on;
        Ok(())
    }

    /// The deletions queued, oldest first, and whether the kernel dropped some
    /// (ENOBUFS: the queue overflowed; a deletion may have been missed). At most
    /// [`WATCH_READS`] datagrams per call: under a flood of route changes the caller (the
    /// VRRP thread) gets back to its timers, and the socket, still readable, is read again at
    /// its next poll.
    pub fn read(&self) -> (Vec<Deletion>, bool) {
        let mut buf = vec![0u8; 32 * 1024];
        let mut out = Vec::new();
        let mut lost = false;
        for _ in 0..WATCH_READS {
            match self.sock.recv(&mut buf[..], Msg::empty()) {
                Ok((0, _)) => break,
                Ok((n, _)) => out.extend(parse_deletions(&buf[..n.min(buf.len())])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => lost = true,
                Err(_) => break,
            }
        }
        (out, lost)
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

    /// Reads a request back with neli: the header fields and the attributes by type.
    /// (type, flags, the eight header bytes, the attributes).
    type Decoded = (u16, u16, [u8; 8], Vec<(u16, Vec<u8>)>);

    fn decode(m: &[u8]) -> Decoded {
        use neli::nl::Nlmsghdr;
        use neli::rtnl::Rtmsg;
        use neli::FromBytes;
        let h: Nlmsghdr<Rtm, Rtmsg> = Nlmsghdr::from_bytes(&mut Cursor::new(m)).unwrap();
        let ty = u16::from(*h.nl_type());
        let flags = u16::from_ne_bytes([m[6], m[7]]);
        let NlPayload::Payload(p) = h.nl_payload() else {
            panic!("no payload")
        };
        let head = [
            u8::from(*p.rtm_family()),
            *p.rtm_dst_len(),
            *p.rtm_src_len(),
            *p.rtm_tos(),
            u8::from(*p.rtm_table()),
            u8::from(*p.rtm_protocol()),
            u8::from(*p.rtm_scope()),
            u8::from(*p.rtm_type()),
        ];
        let attrs = p
            .rtattrs()
            .iter()
            .map(|a| (u16::from(*a.rta_type()), a.rta_payload().as_ref().to_vec()))
            .collect();
        (ty, flags, head, attrs)
    }

    /// `ip route add 10.1.0.0/16 via 192.0.2.1 dev <3> table 100 metric 5 src 192.0.2.10
    /// proto keepalived`, as iproute2 frames it; and read back.
    #[test]
    fn newroute_carries_every_field() {
        let r: VirtualRoute =
            "10.1.0.0/16 via 192.0.2.1 dev eth1 table 100 metric 5 src 192.0.2.10"
                .parse()
                .unwrap();
        let m = route_message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, 4, &r, Some(3)).unwrap();
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(
            &m[16..28],
            &[2, 16, 0, 0, 100, RTPROT_KEEPALIVED, 0, 1, 0, 0, 0, 0]
        );
        let (ty, flags, head, attrs) = decode(&m);
        assert_eq!((ty, flags), (RTM_NEWROUTE, 0x605));
        assert_eq!(
            head,
            [2, 16, 0, 0, 100, 18, RT_SCOPE_UNIVERSE, libc::RTN_UNICAST]
        );
        assert_eq!(
            attrs,
            vec![
                (RTA_DST, vec![10, 1, 0, 0]),
                (RTA_GATEWAY, vec![192, 0, 2, 1]),
                (RTA_OIF, 3u32.to_ne_bytes().to_vec()),
                (RTA_PREFSRC, vec![192, 0, 2, 10]),
                (RTA_PRIORITY, 5u32.to_ne_bytes().to_vec()),
            ]
        );
    }

    /// A device route is link scope; a removal matches any scope; a table past 255 goes in
    /// RTA_TABLE; a blackhole route has its type.
    #[test]
    fn route_scope_table_and_type() {
        let r: VirtualRoute = "10.9.0.0/16 dev eth1 table 1000".parse().unwrap();
        let (_, _, head, attrs) = decode(&route_message(RTM_NEWROUTE, 0, 1, &r, Some(2)).unwrap());
        assert_eq!((head[4], head[6]), (0, RT_SCOPE_LINK));
        assert!(attrs.contains(&(RTA_TABLE, 1000u32.to_ne_bytes().to_vec())));
        let (ty, flags, head, _) = decode(&route_message(RTM_DELROUTE, 0, 1, &r, Some(2)).unwrap());
        assert_eq!(
            (ty, flags, head[6]),
            (RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, RT_SCOPE_NOWHERE)
        );
        let b: VirtualRoute = "blackhole 2001:db8:9::/48".parse().unwrap();
        let (_, _, head, attrs) = decode(&route_message(RTM_NEWROUTE, 0, 1, &b, None).unwrap());
        assert_eq!(head, [10, 48, 0, 0, 254, 18, 0, libc::RTN_BLACKHOLE]);
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].1.len(), 16);
    }

    /// `ip rule add from 192.0.2.0/24 table 100 priority 100`: `struct fib_rule_hdr` (the
    /// action where `rtmsg` has its type) and FRA_ attributes.
    #[test]
    fn newrule_is_a_fib_rule_hdr() {
        let r: VirtualRule = "from 192.0.2.0/24 table 100 priority 100 iif eth1 fwmark 7/0xff"
            .parse()
            .unwrap();
        let m = rule_message(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, 2, &r).unwrap();
        let (ty, _, head, attrs) = decode(&m);
        assert_eq!(ty, RTM_NEWRULE);
        assert_eq!(head, [2, 0, 24, 0, 100, 0, 0, FR_ACT_TO_TBL]);
        assert_eq!(
            attrs,
            vec![
                (FRA_SRC, vec![192, 0, 2, 0]),
                (FRA_IIFNAME, b"eth1\0".to_vec()),
                (FRA_PRIORITY, 100u32.to_ne_bytes().to_vec()),
                (FRA_FWMARK, 7u32.to_ne_bytes().to_vec()),
                (FRA_FWMASK, 255u32.to_ne_bytes().to_vec()),
                (FRA_PROTOCOL, vec![RTPROT_KEEPALIVED]),
            ]
        );
        let u: VirtualRule = "inet6 to 2001:db8::/32 unreachable".parse().unwrap();
        let (_, _, head, _) = decode(&rule_message(RTM_DELRULE, 0, 2, &u).unwrap());
        assert_eq!(head, [10, 32, 0, 0, 0, 0, 0, FR_ACT_UNREACHABLE]);
    }

    /// keepalived's options on an address: scope in the header, IFA_BROADCAST, IFA_LABEL.
    #[test]
    fn newaddr_carries_scope_label_and_broadcast() {
        let words: Vec<String> = "192.0.2.10/24 dev eth1 scope link label eth1:vip brd +"
            .split(' ')
            .map(String::from)
            .collect();
        let (a, _) = VirtualAddress::parse_keepalived(&words).unwrap();
        let m = addr_message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 7, 3, &a).unwrap();
        assert_eq!(&m[16..24], &[2, 24, 0, 253, 3, 0, 0, 0]);
        assert_eq!(&m[40..48], &[8, 0, IFA_BROADCAST as u8, 0, 192, 0, 2, 255]);
        assert_eq!(&m[48..52], &[13, 0, IFA_LABEL as u8, 0]);
        assert_eq!(&m[52..61], b"eth1:vip\0");
        assert_eq!(m.len(), 64);
    }

    /// Appends an attribute of a type no reader knows to a message, fixing its length.
    fn with_unknown_attr(mut m: Vec<u8>) -> Vec<u8> {
        m.extend_from_slice(&[8, 0, 0xe7, 0x03, 1, 2, 3, 4]);
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    /// Deletions read back: what the kernel announces has the layout of the requests (an
    /// RTM_DELADDR / RTM_DELROUTE / RTM_DELRULE, header and attributes); unknown attributes
    /// are skipped, other messages ignored, and each is recognised as the object it deletes.
    #[test]
    fn deletions_are_decoded_and_recognised() {
        let a: VirtualAddress = "192.168.10.100/32".parse().unwrap();
        let r: VirtualRoute = "10.1.0.0/16 via 192.168.10.1 dev eth0 table 1000 metric 5"
            .parse()
            .unwrap();
        let u: VirtualRule = "from 192.168.10.100/32 fwmark 7 table 100 priority 100"
            .parse()
            .unwrap();
        let mut dgram = with_unknown_attr(addr_message(RTM_DELADDR, 0, 1, 3, &a).unwrap());
        // Not a deletion: skipped.
        dgram.extend(addr_message(RTM_NEWADDR, 0, 2, 3, &a).unwrap());
        dgram.extend(with_unknown_attr(
            route_message(RTM_DELROUTE, 0, 3, &r, Some(3)).unwrap(),
        ));
        dgram.extend(with_unknown_attr(
            rule_message(RTM_DELRULE, 0, 4, &u).unwrap(),
        ));
        let d = parse_deletions(&dgram);
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!(
            d[0],
            Deletion::Address {
                ifindex: 3,
                address: a.address,
                prefix_len: 32
            }
        );
        let Deletion::Route(g) = &d[1] else {
            panic!("{d:?}")
        };
        assert_eq!((g.table, g.metric, g.oif), (1000, 5, Some(3)));
        assert!(g.is(&r, || Some(3)));
        assert!(!g.is(&r, || Some(4)));
        let other: VirtualRoute = "10.1.0.0/16 via 192.168.10.1 dev eth0 table 1000"
            .parse()
            .unwrap();
        assert!(!g.is(&other, || Some(3)), "another metric");
        let Deletion::Rule(g) = &d[2] else {
            panic!("{d:?}")
        };
        assert!(g.is(&u));
        let other: VirtualRule = "from 192.168.10.100/32 table 100 priority 100"
            .parse()
            .unwrap();
        assert!(!g.is(&other), "no fwmark");
        // A rule marked with another protocol is not lbd's.
        let mut foreign = g.clone();
        foreign.protocol = Some(4);
        assert!(!foreign.is(&u));
        // Truncated anywhere: no panic, at most what is whole.
        for n in 0..dgram.len() {
            assert!(parse_deletions(&dgram[..n]).len() <= 3);
        }
    }

    /// The fuzz seed of kernel announcements (written byte by byte as `linux/rtnetlink.h`
    /// lays them out, with attributes lbd does not read: IFA_LABEL, IFA_CACHEINFO, RTA_PREF)
    /// decodes to its four deletions.
    #[test]
    fn the_fuzz_seed_of_deletions_decodes() {
        let seed = include_bytes!("../../fuzz/seeds/rtnetlink/deletions");
        let d = parse_deletions(&seed[4..]);
        assert_eq!(d.len(), 4, "{d:?}");
        let r: VirtualRoute = "10.1.0.0/16 via 192.168.10.1 dev eth0 table 100 metric 5"
            .parse()
            .unwrap();
        assert!(matches!(&d[1], Deletion::Route(g) if g.is(&r, || Some(2))));
        let b: VirtualRoute = "blackhole ::/48".parse().unwrap();
        assert!(
            matches!(&d[2], Deletion::Route(g) if g.is(&b, || None)),
            "{d:?}"
        );
        let u: VirtualRule = "from 192.168.10.100 iif eth0 fwmark 7 table 100 priority 100"
            .parse()
            .unwrap();
        assert!(matches!(&d[3], Deletion::Rule(g) if g.is(&u)), "{d:?}");
    }

    /// The watch socket is in both address groups, and joins and leaves the route and rule
    /// groups on demand.
    #[test]
    fn route_watch_joins_groups() {
        let mut w = RouteWatch::open().unwrap();
        let groups = |w: &RouteWatch| w.sock.list_mcast_membership().unwrap();
        assert!(groups(&w).is_set(RTNLGRP_IPV4_IFADDR as usize));
        assert!(groups(&w).is_set(RTNLGRP_IPV6_IFADDR as usize));
        assert!(!groups(&w).is_set(RTNLGRP_IPV4_ROUTE as usize));
        w.follow_routes(true).unwrap();
        for g in ROUTE_GROUPS {
            assert!(groups(&w).is_set(g as usize), "{g}");
        }
        w.follow_routes(false).unwrap();
        assert!(!groups(&w).is_set(RTNLGRP_IPV6_RULE as usize));
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
