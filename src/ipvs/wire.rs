//! Netlink and generic-netlink framing, and the IPVS service/destination attribute sets.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        nlmsg_len (u32)                        |
//! |          nlmsg_type (u16)     |        nlmsg_flags (u16)      |
//! |                        nlmsg_seq (u32)                        |
//! |                        nlmsg_pid (u32)                        |
//! |  genl cmd (u8) | version (u8) |          reserved             |
//! |   nla_len (u16) | nla_type (u16) |  payload, padded to 4 ...  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Host byte order throughout, except ports (network order, as the kernel keeps them).
//! Wire types here are apart from the data plane's domain types; unknown attributes are skipped.

use std::io::Cursor;
use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::types::{Buffer, GenlBuffer};
use neli::{FromBytesWithInput, Size, ToBytes};

use super::uapi::*;

/// One generic-netlink attribute as neli holds it: the type is the UAPI number (`u16`, so that
/// the constants keep their kernel names in [`super::uapi`]); the payload is bytes, a nest's
/// included (neli parses a nest only when asked: decoding never recurses on its own).
pub type Attr = Nlattr<u16, Buffer>;
/// The attributes of a message or of a nest.
pub type Attrs = GenlBuffer<u16, Buffer>;
/// A generic-netlink message body: command, version, attributes (`struct genlmsghdr`).
pub type Genl = Genlmsghdr<u8, u16>;
/// A whole generic-netlink request: `struct nlmsghdr` with the family id as its type.
pub type GenlMsg = Nlmsghdr<u16, Genl>;

/// Building a message failed in neli (a missing builder field or a failed write into memory:
/// neither happens for the messages lbd builds, but neither is unwrapped).
#[derive(Debug, thiserror::Error)]
#[error("netlink message: {0}")]
pub struct WireError(pub String);

fn wire_err(e: impl std::fmt::Display) -> WireError {
    WireError(e.to_string())
}

fn attr_of<P: Size + ToBytes>(ty: u16, nested: bool, payload: P) -> Result<Attr, WireError> {
    let ty = AttrTypeBuilder::default()
        .nla_type(ty)
        .nla_nested(nested)
        .build()
        .map_err(wire_err)?;
    NlattrBuilder::default()
        .nla_type(ty)
        .nla_payload(payload)
        .build()
        .map_err(wire_err)
}

/// An attribute with these payload bytes (neli pads it to 4 bytes on the wire).
pub fn attr(ty: u16, payload: &[u8]) -> Result<Attr, WireError> {
    attr_of(ty, false, Buffer::from(payload))
}

/// A u16 in host order.
pub fn u16_attr(ty: u16, v: u16) -> Result<Attr, WireError> {
    attr_of(ty, false, v)
}

/// A u32 in host order.
pub fn u32_attr(ty: u16, v: u32) -> Result<Attr, WireError> {
    attr_of(ty, false, v)
}

/// A NUL-terminated string.
pub fn str_attr(ty: u16, s: &str) -> Result<Attr, WireError> {
    attr_of(ty, false, s)
}

/// A nest (`NLA_F_NESTED` set) holding `children` in order.
pub fn nest(ty: u16, children: &[Attr]) -> Result<Attr, WireError> {
    let size = children.iter().map(|c| c.padded_size()).sum();
    let mut payload = Cursor::new(Vec::with_capacity(size));
    for c in children {
        c.to_bytes(&mut payload).map_err(wire_err)?;
    }
    attr_of(ty, true, Buffer::from(payload.into_inner()))
}

/// The attributes in `payload` (a message's after its genl header, or a nest's), by neli. The
/// walk is flat: a nest stays bytes until its own decoder asks for it. Unknown types are kept
/// (and skipped by the decoders); a malformed attribute (length past the end) fails the whole
/// set.
pub fn parse_attrs(payload: &[u8]) -> Option<Attrs> {
    Attrs::from_bytes_with_input(&mut Cursor::new(payload), payload.len()).ok()
}

/// An attribute's type without the nested and byte-order flags, and its payload.
pub fn ty_payload(a: &Attr) -> (u16, &[u8]) {
    (*a.nla_type().nla_type(), a.nla_payload().as_ref())
}

/// Builds one generic-netlink request. The `encode` methods below add attributes to it; a
/// neli error is kept and returned by [`MsgBuilder::message`] (so that encoders stay
/// infallible closures in a batch).
pub struct MsgBuilder {
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: Attrs,
    err: Option<WireError>,
}

impl MsgBuilder {
    pub fn new(family: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> Self {
        MsgBuilder {
            family,
            flags,
            seq,
            cmd,
            version,
            attrs: Attrs::new(),
            err: None,
        }
    }

    /// Appends a top-level attribute (or keeps the first error).
    pub fn push(&mut self, a: Result<Attr, WireError>) -> &mut Self {
        match a {
            Ok(a) => self.attrs.push(a),
            Err(e) => {
                self.err.get_or_insert(e);
            }
        }
        self
    }

    /// The neli message.
    pub fn message(self) -> Result<GenlMsg, WireError> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let genl = GenlmsghdrBuilder::default()
            .cmd(self.cmd)
            .version(self.version)
            .attrs(self.attrs)
            .build()
            .map_err(wire_err)?;
        NlmsghdrBuilder::default()
            .nl_type(self.family)
            .nl_flags(NlmF::from(self.flags))
            .nl_seq(self.seq)
            .nl_pid(0)
            .nl_payload(NlPayload::Payload(genl))
            .build()
            .map_err(wire_err)
    }

    /// Serializes the message at the end of `out`: a batch is many of these in one buffer.
    pub fn write(self, out: &mut Cursor<Vec<u8>>) -> Result<(), WireError> {
        self.message()?.to_bytes(out).map_err(wire_err)
    }

    /// The message's bytes.
    pub fn finish(self) -> Result<Vec<u8>, WireError> {
        let mut out = Cursor::new(Vec::with_capacity(128));
        self.write(&mut out)?;
        Ok(out.into_inner())
    }
}

pub fn get_u16(p: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(p.get(..2)?.try_into().ok()?))
}

pub fn get_u32(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

/// An address attribute (`union nf_inet_addr`, 16 bytes; IPv4 in the first 4).
pub fn addr_bytes(a: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.copy_from_slice(&v6.octets()),
    }
    b
}

pub fn parse_addr(af: u16, p: &[u8]) -> Option<IpAddr> {
    match af {
        AF_INET => {
            let o: [u8; 4] = p.get(..4)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        AF_INET6 => {
            let o: [u8; 16] = p.get(..16)?.try_into().ok()?;
            Some(IpAddr::from(o))
        }
        _ => None,
    }
}

/// Traffic counters and rates (`IPVS_STATS_ATTR_*`): totals since the service or destination
/// was created, rates per second as the kernel estimates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

impl Stats {
    /// Decodes a nested stats attribute; `wide` for *_STATS64 (all u64), else the older form (u32
    /// but bytes u64).
    pub fn decode(p: &[u8], wide: bool) -> Stats {
        let mut s = Stats::default();
        let Some(attrs) = parse_attrs(p) else {
            return s;
        };
        for (ty, v) in attrs.iter().map(ty_payload) {
            let n = if wide || ty == IPVS_STATS_ATTR_INBYTES || ty == IPVS_STATS_ATTR_OUTBYTES {
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_ne_bytes)
            } else {
                get_u32(v).map(u64::from)
            };
            let Some(n) = n else { continue };
            match ty {
                IPVS_STATS_ATTR_CONNS => s.conns = n,
                IPVS_STATS_ATTR_INPKTS => s.inpkts = n,
                IPVS_STATS_ATTR_OUTPKTS => s.outpkts = n,
                IPVS_STATS_ATTR_INBYTES => s.inbytes = n,
                IPVS_STATS_ATTR_OUTBYTES => s.outbytes = n,
                IPVS_STATS_ATTR_CPS => s.cps = n,
                IPVS_STATS_ATTR_INPPS => s.inpps = n,
                IPVS_STATS_ATTR_OUTPPS => s.outpps = n,
                IPVS_STATS_ATTR_INBPS => s.inbps = n,
                IPVS_STATS_ATTR_OUTBPS => s.outbps = n,
                _ => {}
            }
        }
        s
    }
}

/// A service as the IPVS netlink interface carries it (`IPVS_SVC_ATTR_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SvcAttrs {
    pub af: u16,
    pub protocol: u16,
    pub addr: Option<IpAddr>,
    /// Host order here; network order on the wire.
    pub port: u16,
    pub fwmark: u32,
    pub sched_name: String,
    pub flags: u32,
    pub timeout: u32,
    /// IPv4: the mask as a number (0xffffff00 is /24), network order on the wire; IPv6: a
    /// prefix length, host order on the wire (as ipvsadm sends them).
    pub netmask: u32,
    /// Only in dumps.
    pub stats: Option<Stats>,
}

impl SvcAttrs {
    /// The nested `IPVS_CMD_ATTR_SERVICE`. `full` adds the settings NEW/SET_SERVICE need; the key
    /// alone identifies a service for DEL_SERVICE and destination commands.
    pub fn nlattr(&self, full: bool) -> Result<Attr, WireError> {
        let mut a = Vec::with_capacity(9);
        a.push(u16_attr(IPVS_SVC_ATTR_AF, self.af)?);
        if self.fwmark != 0 {
            a.push(u32_attr(IPVS_SVC_ATTR_FWMARK, self.fwmark)?);
        } else {
            a.push(u16_attr(IPVS_SVC_ATTR_PROTOCOL, self.protocol)?);
            if let Some(addr) = &self.addr {
                a.push(attr(IPVS_SVC_ATTR_ADDR, &addr_bytes(addr))?);
            }
            a.push(attr(IPVS_SVC_ATTR_PORT, &self.port.to_be_bytes())?);
        }
        if full {
            a.push(str_attr(IPVS_SVC_ATTR_SCHED_NAME, &self.sched_name)?);
            // struct ip_vs_flags { __u32 flags; __u32 mask; }
            let mut f = [0u8; 8];
            f[..4].copy_from_slice(&self.flags.to_ne_bytes());
            f[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
            a.push(attr(IPVS_SVC_ATTR_FLAGS, &f)?);
            a.push(u32_attr(IPVS_SVC_ATTR_TIMEOUT, self.timeout)?);
            if self.af == AF_INET {
                a.push(attr(IPVS_SVC_ATTR_NETMASK, &self.netmask.to_be_bytes())?);
            } else {
                a.push(u32_attr(IPVS_SVC_ATTR_NETMASK, self.netmask)?);
            }
        }
        nest(IPVS_CMD_ATTR_SERVICE, &a)
    }

    /// Adds [`SvcAttrs::nlattr`] to `m`.
    pub fn encode(&self, m: &mut MsgBuilder, full: bool) {
        m.push(self.nlattr(full));
    }

    /// Decodes the payload of a nested `IPVS_CMD_ATTR_SERVICE`.
    pub fn decode(p: &[u8]) -> Option<SvcAttrs> {
        let mut s = SvcAttrs {
            af: 0,
            protocol: 0,
            addr: None,
            port: 0,
            fwmark: 0,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0,
            stats: None,
        };
        let mut raw_addr = None;
        let mut netmask = None;
        let attrs = parse_attrs(p)?;
        for (ty, v) in attrs.iter().map(ty_payload) {
            match ty {
                IPVS_SVC_ATTR_AF => s.af = get_u16(v)?,
                IPVS_SVC_ATTR_PROTOCOL => s.protocol = get_u16(v)?,
                IPVS_SVC_ATTR_ADDR => raw_addr = Some(v),
                IPVS_SVC_ATTR_PORT => s.port = u16::from_be_bytes(v.get(..2)?.try_into().ok()?),
                IPVS_SVC_ATTR_FWMARK => s.fwmark = get_u32(v)?,
                IPVS_SVC_ATTR_SCHED_NAME => {
                    s.sched_name = String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                }
                IPVS_SVC_ATTR_FLAGS => s.flags = get_u32(v)?,
                IPVS_SVC_ATTR_TIMEOUT => s.timeout = get_u32(v)?,
                IPVS_SVC_ATTR_NETMASK => netmask = Some(v),
                IPVS_SVC_ATTR_STATS64 => s.stats = Some(Stats::decode(v, true)),
                IPVS_SVC_ATTR_STATS if s.stats.is_none() => s.stats = Some(Stats::decode(v, false)),
                _ => {} // stats and newer attributes: tolerated
            }
        }
        if s.fwmark == 0 {
            s.addr = raw_addr.and_then(|r| parse_addr(s.af, r));
        }
        if let Some(v) = netmask {
            let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
            s.netmask = if s.af == AF_INET {
                u32::from_be_bytes(b)
            } else {
                u32::from_ne_bytes(b)
            };
        }
        Some(s)
    }
}

/// A destination (`IPVS_DEST_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestAttrs {
    pub addr: IpAddr,
    pub port: u16,
    pub fwd_method: u32,
    pub weight: u32,
    pub u_thresh: u32,
    pub l_thresh: u32,
    /// Only in dumps: connection counts and traffic.
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    pub stats: Option<Stats>,
}

impl Default for DestAttrs {
    fn default() -> Self {
        DestAttrs {
            addr: IpAddr::from([0u8, 0, 0, 0]),
            port: 0,
            fwd_method: 0,
            weight: 0,
            u_thresh: 0,
            l_thresh: 0,
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: None,
        }
    }
}

impl DestAttrs {
    /// The nested `IPVS_CMD_ATTR_DEST`; `full` adds the settings NEW/SET_DEST need.
    pub fn nlattr(&self, full: bool) -> Result<Attr, WireError> {
        let mut a = Vec::with_capacity(7);
        a.push(attr(IPVS_DEST_ATTR_ADDR, &addr_bytes(&self.addr))?);
        a.push(attr(IPVS_DEST_ATTR_PORT, &self.port.to_be_bytes())?);
        a.push(u16_attr(
            IPVS_DEST_ATTR_ADDR_FAMILY,
            if self.addr.is_ipv4() {
                AF_INET
            } else {
                AF_INET6
            },
        )?);
        if full {
            a.push(u32_attr(IPVS_DEST_ATTR_FWD_METHOD, self.fwd_method)?);
            a.push(u32_attr(IPVS_DEST_ATTR_WEIGHT, self.weight)?);
            a.push(u32_attr(IPVS_DEST_ATTR_U_THRESH, self.u_thresh)?);
            a.push(u32_attr(IPVS_DEST_ATTR_L_THRESH, self.l_thresh)?);
        }
        nest(IPVS_CMD_ATTR_DEST, &a)
    }

    /// Adds [`DestAttrs::nlattr`] to `m`.
    pub fn encode(&self, m: &mut MsgBuilder, full: bool) {
        m.push(self.nlattr(full));
    }

    pub fn decode(p: &[u8], svc_af: u16) -> Option<DestAttrs> {
        let (mut af, mut raw) = (svc_af, None);
        let mut d = DestAttrs {
            addr: IpAddr::from([0u8, 0, 0, 0]),
            port: 0,
            fwd_method: 0,
            weight: 0,
            u_thresh: 0,
            l_thresh: 0,
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: None,
        };
        let attrs = parse_attrs(p)?;
        for (ty, v) in attrs.iter().map(ty_payload) {
            match ty {
                IPVS_DEST_ATTR_ADDR => raw = Some(v),
                IPVS_DEST_ATTR_PORT => d.port = u16::from_be_bytes(v.get(..2)?.try_into().ok()?),
                IPVS_DEST_ATTR_FWD_METHOD => d.fwd_method = get_u32(v)? & IP_VS_CONN_F_FWD_MASK,
                IPVS_DEST_ATTR_WEIGHT => d.weight = get_u32(v)?,
                IPVS_DEST_ATTR_U_THRESH => d.u_thresh = get_u32(v)?,
                IPVS_DEST_ATTR_L_THRESH => d.l_thresh = get_u32(v)?,
                IPVS_DEST_ATTR_ADDR_FAMILY => af = get_u16(v)?,
                IPVS_DEST_ATTR_ACTIVE_CONNS => d.active_conns = get_u32(v)?,
                IPVS_DEST_ATTR_INACT_CONNS => d.inact_conns = get_u32(v)?,
                IPVS_DEST_ATTR_PERSIST_CONNS => d.persist_conns = get_u32(v)?,
                IPVS_DEST_ATTR_STATS64 => d.stats = Some(Stats::decode(v, true)),
                IPVS_DEST_ATTR_STATS if d.stats.is_none() => {
                    d.stats = Some(Stats::decode(v, false))
                }
                _ => {}
            }
        }
        d.addr = parse_addr(af, raw?)?;
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The top-level attributes of a message's bytes (after nlmsghdr and genlmsghdr).
    fn top(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        parse_attrs(&bytes[20..])
            .unwrap()
            .iter()
            .map(|a| (*a.nla_type().nla_type(), a.nla_payload().as_ref().to_vec()))
            .collect()
    }

    fn find(payload: &[u8], ty: u16) -> Vec<u8> {
        let attrs = parse_attrs(payload).unwrap();
        let a = attrs
            .iter()
            .find(|a| *a.nla_type().nla_type() == ty)
            .unwrap();
        a.nla_payload().as_ref().to_vec()
    }

    #[test]
    fn service_attrs_round_trip() {
        let s = SvcAttrs {
            af: AF_INET,
            protocol: IPPROTO_TCP,
            addr: Some("192.168.10.100".parse().unwrap()),
            port: 80,
            fwmark: 0,
            sched_name: "wlc".into(),
            flags: IP_VS_SVC_F_PERSISTENT,
            timeout: 300,
            netmask: 0xffff_ff00,
            stats: None,
        };
        let mut m = MsgBuilder::new(
            0x20,
            NLM_F_REQUEST,
            1,
            IPVS_CMD_NEW_SERVICE,
            IPVS_GENL_VERSION,
        );
        s.encode(&mut m, true);
        let bytes = m.finish().unwrap();
        assert_eq!(
            u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        // The nest carries NLA_F_NESTED on the wire.
        assert_eq!(
            u16::from_ne_bytes([bytes[22], bytes[23]]),
            IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
        );
        let nested = top(&bytes);
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].0, IPVS_CMD_ATTR_SERVICE);
        // The port travels in network order.
        assert_eq!(find(&nested[0].1, IPVS_SVC_ATTR_PORT), [0, 80]);
        // So does an IPv4 netmask: 255.255.255.0.
        assert_eq!(
            find(&nested[0].1, IPVS_SVC_ATTR_NETMASK),
            [255, 255, 255, 0]
        );
        assert_eq!(SvcAttrs::decode(&nested[0].1).unwrap(), s);
    }

    #[test]
    fn unknown_and_truncated_attributes_are_tolerated() {
        let d = nest(
            IPVS_CMD_ATTR_DEST,
            &[
                attr(
                    IPVS_DEST_ATTR_ADDR,
                    &addr_bytes(&"10.0.0.2".parse().unwrap()),
                )
                .unwrap(),
                attr(IPVS_DEST_ATTR_PORT, &80u16.to_be_bytes()).unwrap(),
                u32_attr(99, 7).unwrap(), // an attribute from a newer kernel
                u32_attr(IPVS_DEST_ATTR_WEIGHT, 3).unwrap(),
            ],
        )
        .unwrap();
        let p = d.nla_payload().as_ref();
        let got = DestAttrs::decode(p, AF_INET).unwrap();
        assert_eq!(
            (got.addr.to_string(), got.port, got.weight),
            ("10.0.0.2".into(), 80, 3)
        );
        // A truncated buffer is refused instead of panicking.
        assert!(parse_attrs(&p[..p.len() - 3]).is_none());
        assert!(DestAttrs::decode(&p[..p.len() - 3], AF_INET).is_none());
        // An attribute length below its own header, or past the end, too.
        assert!(parse_attrs(&[2, 0, 1, 0]).is_none());
        assert!(parse_attrs(&[200, 0, 1, 0, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn stats64_and_connection_counts_are_read() {
        let stats = nest(
            IPVS_DEST_ATTR_STATS64,
            &[
                attr(IPVS_STATS_ATTR_CONNS, &13u64.to_ne_bytes()).unwrap(),
                attr(IPVS_STATS_ATTR_INBYTES, &(5u64 << 33).to_ne_bytes()).unwrap(),
                attr(IPVS_STATS_ATTR_CPS, &2u64.to_ne_bytes()).unwrap(),
            ],
        )
        .unwrap();
        let d = nest(
            IPVS_CMD_ATTR_DEST,
            &[
                attr(
                    IPVS_DEST_ATTR_ADDR,
                    &addr_bytes(&"10.0.0.2".parse().unwrap()),
                )
                .unwrap(),
                u32_attr(IPVS_DEST_ATTR_ACTIVE_CONNS, 4).unwrap(),
                u32_attr(IPVS_DEST_ATTR_INACT_CONNS, 9).unwrap(),
                stats,
            ],
        )
        .unwrap();
        let d = DestAttrs::decode(d.nla_payload().as_ref(), AF_INET).unwrap();
        assert_eq!((d.active_conns, d.inact_conns), (4, 9));
        let st = d.stats.unwrap();
        assert_eq!(
            (st.conns, st.inbytes, st.cps, st.outpkts),
            (13, 5 << 33, 2, 0)
        );
    }

    /// Decoding is flat: a nest a thousand deep is one attribute whose payload stays bytes;
    /// nothing descends into it unless a decoder names it (stats, two levels at most).
    #[test]
    fn deep_nests_are_not_walked() {
        let mut a = u32_attr(IPVS_STATS_ATTR_CONNS, 1).unwrap();
        for _ in 0..1000 {
            a = nest(IPVS_SVC_ATTR_STATS64, &[a]).unwrap();
            if a.nla_payload().len() > 60_000 {
                break;
            }
        }
        let mut c = Cursor::new(Vec::new());
        a.to_bytes(&mut c).unwrap();
        let bytes = c.into_inner();
        assert_eq!(parse_attrs(&bytes).unwrap().len(), 1);
        let s = SvcAttrs::decode(&bytes).unwrap();
        assert_eq!(s.stats, Some(Stats::default()));
    }
}
