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
//!
//! ## Why these attributes are not neli's
//!
//! lbd uses neli for netlink elsewhere (message walk, acks and errors with the extended ack,
//! the family lookup, rtnetlink), but IPVS attributes are framed and read here, zero-copy,
//! because neli's `Nlattr` owns a copy of its payload (`Buffer`, a `Vec<u8>`): building one
//! allocates per attribute and per nest, and parsing allocates and copies per attribute (neli
//! 0.7.5 has no borrowed attribute parse; `neli_copies_every_attribute_payload` below shows
//! it). A cold load of 2,277 services / 37,205 destinations is about 40,000 messages of ten
//! attributes out and as many dump replies back: with neli's types for them, measured in the
//! qemu guest (benches/ipvs.rs), programming went from 0.80 s to 1.20 s and reading the table
//! back from 0.51 s to 1.50 s, against a 10% budget. neli checks this framing instead: the
//! tests below parse lbd's bytes with neli's `Nlmsghdr`/`Genlmsghdr`/`Nlattr` and find the
//! same messages and attributes.
//!
//! The reader is flat: [`attrs`] walks one level, and a nest stays bytes until a decoder names
//! it (stats, two levels at most), so no input makes decoding recurse.

use std::net::IpAddr;

use super::uapi::*;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Builds one netlink message with a generic-netlink header and attributes.
pub struct MsgBuilder {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl MsgBuilder {
    pub fn new(family: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&family.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[cmd, version, 0, 0]);
        MsgBuilder {
            buf,
            nests: Vec::new(),
        }
    }

    pub fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub fn u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    pub fn begin_nest(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nest(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Iterates the attributes in `buf` as (type without flags, payload). Stops at a malformed one.
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + 4 > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]) & NLA_TYPE_MASK;
        if len < 4 || off + len > buf.len() {
            return None;
        }
        let payload = &buf[off + 4..off + len];
        off += align4(len);
        Some((ty, payload))
    })
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
        for (ty, v) in attrs(p) {
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
    pub fn encode(&self, m: &mut MsgBuilder, full: bool) {
        m.begin_nest(IPVS_CMD_ATTR_SERVICE);
        m.u16(IPVS_SVC_ATTR_AF, self.af);
        if self.fwmark != 0 {
            m.u32(IPVS_SVC_ATTR_FWMARK, self.fwmark);
        } else {
            m.u16(IPVS_SVC_ATTR_PROTOCOL, self.protocol);
            if let Some(a) = &self.addr {
                m.attr(IPVS_SVC_ATTR_ADDR, &addr_bytes(a));
            }
            m.attr(IPVS_SVC_ATTR_PORT, &self.port.to_be_bytes());
        }
        if full {
            m.str(IPVS_SVC_ATTR_SCHED_NAME, &self.sched_name);
            // struct ip_vs_flags { __u32 flags; __u32 mask; }
            let mut f = self.flags.to_ne_bytes().to_vec();
            f.extend_from_slice(&u32::MAX.to_ne_bytes());
            m.attr(IPVS_SVC_ATTR_FLAGS, &f);
            m.u32(IPVS_SVC_ATTR_TIMEOUT, self.timeout);
            if self.af == AF_INET {
                m.attr(IPVS_SVC_ATTR_NETMASK, &self.netmask.to_be_bytes());
            } else {
                m.u32(IPVS_SVC_ATTR_NETMASK, self.netmask);
            }
        }
        m.end_nest();
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
        for (ty, v) in attrs(p) {
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
    pub fn encode(&self, m: &mut MsgBuilder, full: bool) {
        m.begin_nest(IPVS_CMD_ATTR_DEST);
        m.attr(IPVS_DEST_ATTR_ADDR, &addr_bytes(&self.addr));
        m.attr(IPVS_DEST_ATTR_PORT, &self.port.to_be_bytes());
        m.u16(
            IPVS_DEST_ATTR_ADDR_FAMILY,
            if self.addr.is_ipv4() {
                AF_INET
            } else {
                AF_INET6
            },
        );
        if full {
            m.u32(IPVS_DEST_ATTR_FWD_METHOD, self.fwd_method);
            m.u32(IPVS_DEST_ATTR_WEIGHT, self.weight);
            m.u32(IPVS_DEST_ATTR_U_THRESH, self.u_thresh);
            m.u32(IPVS_DEST_ATTR_L_THRESH, self.l_thresh);
        }
        m.end_nest();
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
        for (ty, v) in attrs(p) {
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

/// A connection-sync daemon as the IPVS netlink interface carries it (`IPVS_DAEMON_ATTR_*`,
/// nested in `IPVS_CMD_ATTR_DAEMON`): what IPVS_CMD_NEW_DAEMON takes and each reply of an
/// IPVS_CMD_GET_DAEMON dump holds. A 0 (or `None`) here is an attribute left out: the kernel
/// then chooses (start_sync_thread), and a dump reports the value it chose; the group is in a
/// dump only when the kernel has one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonAttrs {
    /// IP_VS_STATE_MASTER or IP_VS_STATE_BACKUP.
    pub state: u32,
    pub mcast_ifn: String,
    pub sync_id: u32,
    pub sync_maxlen: u16,
    /// IPv4 in IPVS_DAEMON_ATTR_MCAST_GROUP, IPv6 in _MCAST_GROUP6.
    pub mcast_group: Option<IpAddr>,
    /// Host order on the wire (nla_get_u16).
    pub mcast_port: u16,
    pub mcast_ttl: u8,
}

impl DaemonAttrs {
    /// The nested attribute. `full` for NEW_DAEMON; DEL_DAEMON needs the state alone.
    pub fn encode(&self, m: &mut MsgBuilder, full: bool) {
        m.begin_nest(IPVS_CMD_ATTR_DAEMON);
        m.u32(IPVS_DAEMON_ATTR_STATE, self.state);
        if full {
            m.str(IPVS_DAEMON_ATTR_MCAST_IFN, &self.mcast_ifn);
            m.u32(IPVS_DAEMON_ATTR_SYNC_ID, self.sync_id);
            if self.sync_maxlen != 0 {
                m.u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, self.sync_maxlen);
            }
            match self.mcast_group {
                Some(IpAddr::V4(a)) => {
                    m.attr(IPVS_DAEMON_ATTR_MCAST_GROUP, &a.octets());
                }
                Some(IpAddr::V6(a)) => {
                    m.attr(IPVS_DAEMON_ATTR_MCAST_GROUP6, &a.octets());
                }
                None => {}
            }
            if self.mcast_port != 0 {
                m.u16(IPVS_DAEMON_ATTR_MCAST_PORT, self.mcast_port);
            }
            if self.mcast_ttl != 0 {
                m.attr(IPVS_DAEMON_ATTR_MCAST_TTL, &[self.mcast_ttl]);
            }
        }
        m.end_nest();
    }

    /// Decodes the nested attribute; the state, interface and sync id are required (as the
    /// kernel requires them of NEW_DAEMON), unknown attributes are skipped.
    pub fn decode(p: &[u8]) -> Option<DaemonAttrs> {
        let (mut state, mut ifn, mut id) = (None, None, None);
        let mut d = DaemonAttrs::default();
        for (ty, v) in attrs(p) {
            match ty {
                IPVS_DAEMON_ATTR_STATE => state = Some(get_u32(v)?),
                IPVS_DAEMON_ATTR_MCAST_IFN => {
                    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
                    ifn = Some(String::from_utf8_lossy(&v[..end]).into_owned());
                }
                IPVS_DAEMON_ATTR_SYNC_ID => id = Some(get_u32(v)?),
                IPVS_DAEMON_ATTR_SYNC_MAXLEN => d.sync_maxlen = get_u16(v)?,
                IPVS_DAEMON_ATTR_MCAST_GROUP => d.mcast_group = Some(parse_addr(AF_INET, v)?),
                IPVS_DAEMON_ATTR_MCAST_GROUP6 => d.mcast_group = Some(parse_addr(AF_INET6, v)?),
                IPVS_DAEMON_ATTR_MCAST_PORT => d.mcast_port = get_u16(v)?,
                IPVS_DAEMON_ATTR_MCAST_TTL => d.mcast_ttl = *v.first()?,
                _ => {}
            }
        }
        d.state = state?;
        d.mcast_ifn = ifn?;
        d.sync_id = id?;
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let bytes = m.finish();
        assert_eq!(
            u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        // The port travels in network order.
        let nested: Vec<_> = attrs(&bytes[20..]).collect();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].0, IPVS_CMD_ATTR_SERVICE);
        let port = attrs(nested[0].1)
            .find(|(t, _)| *t == IPVS_SVC_ATTR_PORT)
            .unwrap()
            .1;
        assert_eq!(port, &[0, 80]);
        // So does an IPv4 netmask: 255.255.255.0.
        let mask = attrs(nested[0].1)
            .find(|(t, _)| *t == IPVS_SVC_ATTR_NETMASK)
            .unwrap()
            .1;
        assert_eq!(mask, &[255, 255, 255, 0]);
        assert_eq!(SvcAttrs::decode(nested[0].1).unwrap(), s);
    }

    #[test]
    fn unknown_and_truncated_attributes_are_tolerated() {
        let mut m = MsgBuilder::new(0x20, 0, 0, 0, 0);
        m.begin_nest(IPVS_CMD_ATTR_DEST);
        m.attr(
            IPVS_DEST_ATTR_ADDR,
            &addr_bytes(&"10.0.0.2".parse().unwrap()),
        );
        m.attr(IPVS_DEST_ATTR_PORT, &80u16.to_be_bytes());
        m.u32(99, 7); // an attribute from a newer kernel
        m.u32(IPVS_DEST_ATTR_WEIGHT, 3);
        m.end_nest();
        let bytes = m.finish();
        let (_, p) = attrs(&bytes[20..]).next().unwrap();
        let d = DestAttrs::decode(p, AF_INET).unwrap();
        assert_eq!(
            (d.addr.to_string(), d.port, d.weight),
            ("10.0.0.2".into(), 80, 3)
        );
        // A truncated buffer ends the iteration instead of panicking.
        assert_eq!(attrs(&bytes[20..bytes.len() - 3]).count(), 0);
    }

    #[test]
    fn stats64_and_connection_counts_are_read() {
        let mut m = MsgBuilder::new(0x20, 0, 0, 0, 0);
        m.begin_nest(IPVS_CMD_ATTR_DEST);
        m.attr(
            IPVS_DEST_ATTR_ADDR,
            &addr_bytes(&"10.0.0.2".parse().unwrap()),
        );
        m.u32(IPVS_DEST_ATTR_ACTIVE_CONNS, 4);
        m.u32(IPVS_DEST_ATTR_INACT_CONNS, 9);
        m.begin_nest(IPVS_DEST_ATTR_STATS64);
        m.attr(IPVS_STATS_ATTR_CONNS, &13u64.to_ne_bytes());
        m.attr(IPVS_STATS_ATTR_INBYTES, &(5u64 << 33).to_ne_bytes());
        m.attr(IPVS_STATS_ATTR_CPS, &2u64.to_ne_bytes());
        m.end_nest();
        m.end_nest();
        let bytes = m.finish();
        let (_, p) = attrs(&bytes[20..]).next().unwrap();
        let d = DestAttrs::decode(p, AF_INET).unwrap();
        assert_eq!((d.active_conns, d.inact_conns), (4, 9));
        let st = d.stats.unwrap();
        assert_eq!(
            (st.conns, st.inbytes, st.cps, st.outpkts),
            (13, 5 << 33, 2, 0)
        );
    }

    /// neli reads lbd's framing as lbd means it: the message header, the genl header, the
    /// nests (with NLA_F_NESTED) and the attributes inside them.
    #[test]
    fn neli_reads_lbds_framing() {
        use neli::genl::{Genlmsghdr, Nlattr};
        use neli::nl::Nlmsghdr;
        use neli::types::{Buffer, GenlBuffer};
        use neli::{FromBytes, FromBytesWithInput};
        use std::io::Cursor;

        let svc = SvcAttrs {
            af: AF_INET,
            protocol: IPPROTO_TCP,
            addr: Some("192.168.10.100".parse().unwrap()),
            port: 80,
            sched_name: "wlc".into(),
            netmask: u32::MAX,
            ..SvcAttrs::default()
        };
        let dest = DestAttrs {
            addr: "10.0.0.2".parse().unwrap(),
            port: 8080,
            fwd_method: IP_VS_CONN_F_DROUTE,
            weight: 5,
            ..DestAttrs::default()
        };
        let mut batch = Vec::new();
        for (seq, cmd) in [(7u32, IPVS_CMD_NEW_SERVICE), (8, IPVS_CMD_NEW_DEST)] {
            let mut m = MsgBuilder::new(0x1d, NLM_F_REQUEST, seq, cmd, IPVS_GENL_VERSION);
            svc.encode(&mut m, cmd == IPVS_CMD_NEW_SERVICE);
            if cmd == IPVS_CMD_NEW_DEST {
                dest.encode(&mut m, true);
            }
            batch.extend(m.finish());
        }
        // Two messages in one buffer, as a batch sends them.
        let mut c = Cursor::new(&batch[..]);
        for (seq, cmd, nests) in [
            (7u32, IPVS_CMD_NEW_SERVICE, vec![IPVS_CMD_ATTR_SERVICE]),
            (
                8,
                IPVS_CMD_NEW_DEST,
                vec![IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_DEST],
            ),
        ] {
            let m = Nlmsghdr::<u16, Genlmsghdr<u8, u16>>::from_bytes(&mut c).unwrap();
            assert_eq!((*m.nl_type(), *m.nl_seq()), (0x1d, seq));
            let g = m.get_payload().unwrap();
            assert_eq!((*g.cmd(), *g.version()), (cmd, IPVS_GENL_VERSION));
            let got: Vec<u16> = g.attrs().iter().map(|a| *a.nla_type().nla_type()).collect();
            assert_eq!(got, nests);
            assert!(g.attrs().iter().all(|a| *a.nla_type().nla_nested()));
            for a in g.attrs().iter() {
                let p = a.nla_payload().as_ref();
                let inner =
                    GenlBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(p), p.len())
                        .unwrap();
                let by_neli: Vec<(u16, Vec<u8>)> = inner
                    .iter()
                    .map(|x: &Nlattr<u16, Buffer>| {
                        (*x.nla_type().nla_type(), x.nla_payload().as_ref().to_vec())
                    })
                    .collect();
                let by_lbd: Vec<(u16, Vec<u8>)> = attrs(p).map(|(t, v)| (t, v.to_vec())).collect();
                assert_eq!(by_neli, by_lbd);
            }
        }
        assert_eq!(c.position() as usize, batch.len());
    }

    /// The gap that keeps these attributes hand-framed: neli parses each attribute into an
    /// owned copy (its payload is not a view of the received bytes), where [`attrs`] lends
    /// slices of the datagram.
    #[test]
    fn neli_copies_every_attribute_payload() {
        use neli::types::{Buffer, GenlBuffer};
        use neli::FromBytesWithInput;
        use std::io::Cursor;

        let mut m = MsgBuilder::new(0x1d, 0, 0, 0, 0);
        m.u32(IPVS_DEST_ATTR_WEIGHT, 3)
            .u32(IPVS_DEST_ATTR_U_THRESH, 9);
        let bytes = m.finish();
        let body = &bytes[20..];
        let range = body.as_ptr_range();
        let by_neli =
            GenlBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(body), body.len())
                .unwrap();
        for a in by_neli.iter() {
            assert!(!range.contains(&a.nla_payload().as_ref().as_ptr()));
        }
        for (_, v) in attrs(body) {
            assert!(range.contains(&v.as_ptr()));
        }
    }

    /// A nest a thousand deep is one attribute to the walk; nothing descends into it unless a
    /// decoder names it.
    #[test]
    fn deep_nests_are_not_walked() {
        let mut m = MsgBuilder::new(0x1d, 0, 0, 0, 0);
        for _ in 0..1000 {
            m.begin_nest(IPVS_SVC_ATTR_STATS64);
        }
        m.u32(IPVS_STATS_ATTR_CONNS, 1);
        for _ in 0..1000 {
            m.end_nest();
        }
        let bytes = m.finish();
        assert_eq!(attrs(&bytes[20..]).count(), 1);
        let s = SvcAttrs::decode(&bytes[20..]).unwrap();
        assert_eq!(s.stats, Some(Stats::default()));
    }
    #[test]
    fn daemon_attrs_round_trip_with_the_uapi_byte_orders() {
        let d = DaemonAttrs {
            state: IP_VS_STATE_BACKUP,
            mcast_ifn: "eth0".into(),
            sync_id: 42,
            sync_maxlen: 1472,
            mcast_group: Some("239.1.2.3".parse().unwrap()),
            mcast_port: 8848,
            mcast_ttl: 2,
        };
        let mut m = MsgBuilder::new(0x20, NLM_F_REQUEST, 1, IPVS_CMD_NEW_DAEMON, 1);
        d.encode(&mut m, true);
        let bytes = m.finish();
        let nested: Vec<_> = attrs(&bytes[20..]).collect();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].0, IPVS_CMD_ATTR_DAEMON);
        let get = |t: u16| {
            attrs(nested[0].1)
                .find(|(ty, _)| *ty == t)
                .map(|(_, v)| v.to_vec())
                .unwrap()
        };
        // The port is host order (nla_get_u16), the group network order (an in_addr).
        assert_eq!(get(IPVS_DAEMON_ATTR_MCAST_PORT), 8848u16.to_ne_bytes());
        assert_eq!(get(IPVS_DAEMON_ATTR_MCAST_GROUP), [239, 1, 2, 3]);
        assert_eq!(get(IPVS_DAEMON_ATTR_MCAST_IFN), b"eth0\0");
        assert_eq!(get(IPVS_DAEMON_ATTR_MCAST_TTL), [2]);
        assert_eq!(
            get(IPVS_DAEMON_ATTR_STATE),
            IP_VS_STATE_BACKUP.to_ne_bytes()
        );
        assert_eq!(DaemonAttrs::decode(nested[0].1).unwrap(), d);

        // An IPv6 group travels in its own attribute; options left out are not sent.
        let v6 = DaemonAttrs {
            state: IP_VS_STATE_MASTER,
            mcast_ifn: "br0".into(),
            sync_id: 7,
            mcast_group: Some("ff02::81".parse().unwrap()),
            ..DaemonAttrs::default()
        };
        let mut m = MsgBuilder::new(0x20, 0, 1, IPVS_CMD_NEW_DAEMON, 1);
        v6.encode(&mut m, true);
        let bytes = m.finish();
        let (_, p) = attrs(&bytes[20..]).next().unwrap();
        let types: Vec<u16> = attrs(p).map(|(t, _)| t).collect();
        assert_eq!(
            types,
            [
                IPVS_DAEMON_ATTR_STATE,
                IPVS_DAEMON_ATTR_MCAST_IFN,
                IPVS_DAEMON_ATTR_SYNC_ID,
                IPVS_DAEMON_ATTR_MCAST_GROUP6
            ]
        );
        assert_eq!(DaemonAttrs::decode(p).unwrap(), v6);

        // DEL_DAEMON carries the state alone.
        let mut m = MsgBuilder::new(0x20, 0, 1, IPVS_CMD_DEL_DAEMON, 1);
        v6.encode(&mut m, false);
        let bytes = m.finish();
        let (_, p) = attrs(&bytes[20..]).next().unwrap();
        assert_eq!(attrs(p).count(), 1);
    }

    #[test]
    fn a_daemon_reply_decodes_as_the_kernel_fills_it() {
        // ip_vs_genl_fill_daemon: state, ifn, syncid, maxlen, port, ttl, then the group, plus an
        // attribute from a newer kernel; a reply without the sync id is malformed.
        let mut m = MsgBuilder::new(0x20, 0, 0, 0, 0);
        m.u32(IPVS_DAEMON_ATTR_STATE, IP_VS_STATE_MASTER)
            .str(IPVS_DAEMON_ATTR_MCAST_IFN, "eth0")
            .u32(IPVS_DAEMON_ATTR_SYNC_ID, 42)
            .u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, 1472)
            .u16(IPVS_DAEMON_ATTR_MCAST_PORT, 8848)
            .attr(IPVS_DAEMON_ATTR_MCAST_TTL, &[1])
            .attr(IPVS_DAEMON_ATTR_MCAST_GROUP, &[224, 0, 0, 81])
            .u32(99, 1);
        let bytes = m.finish();
        let d = DaemonAttrs::decode(&bytes[20..]).unwrap();
        assert_eq!(
            d,
            DaemonAttrs {
                state: IP_VS_STATE_MASTER,
                mcast_ifn: "eth0".into(),
                sync_id: 42,
                sync_maxlen: 1472,
                mcast_group: Some("224.0.0.81".parse().unwrap()),
                mcast_port: 8848,
                mcast_ttl: 1,
            }
        );
        let mut m = MsgBuilder::new(0x20, 0, 0, 0, 0);
        m.u32(IPVS_DAEMON_ATTR_STATE, IP_VS_STATE_MASTER)
            .str(IPVS_DAEMON_ATTR_MCAST_IFN, "eth0");
        assert!(DaemonAttrs::decode(&m.finish()[20..]).is_none());
    }
}
