//! The VRRP advertisement codec: wire types only, no I/O, no state.
//!
//! VRRPv2 (RFC 3768 section 5.1), IPv4 only:
//!
//! ```text
//!     0                   1                   2                   3
//!     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |   Auth Type   |   Adver Int   |          Checksum             |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                         IP Address (1)                        |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                            .                                  |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                         IP Address (n)                        |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                     Authentication Data (1)                   |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                     Authentication Data (2)                   |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VRRPv3 (RFC 5798 section 5.1), IPv4 or IPv6 (the address size follows the IP header's
//! family):
//!
//! ```text
//!     0                   1                   2                   3
//!     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |(rsvd) |     Max Adver Int     |          Checksum             |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                                                               |
//!    +                                                               +
//!    |                       IPvX Address(es)                        |
//!    +                                                               +
//!    |                                                               |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`decode`] takes the VRRP message (the IP payload) plus the IP source and destination,
//! which the v3 checksum covers (RFC 5798 section 5.2.8) and which fix the address size.
//! [`VrrpPacket::encode`] computes the checksum. [`validate_ip_header`] checks the IP-level
//! fields the socket layer reads from the IP header (TTL/hop limit, protocol, destination).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use thiserror::Error;

use super::checksum::{internet_checksum, pseudo_header_checksum};
use crate::model::{Centiseconds, Vrid};

/// IP protocol number of VRRP (RFC 5798 section 5.1.1.4, RFC 3768 section 5.2.4).
pub const IP_PROTOCOL_VRRP: u8 = 112;
/// The only TTL / hop limit a VRRP packet may carry (RFC 5798 sections 5.1.1.3 and 5.1.2.3,
/// RFC 3768 section 5.2.3): it proves the sender is on the link.
pub const VRRP_TTL: u8 = 255;
/// The IPv4 multicast group for VRRP (RFC 5798 section 5.1.1.2, RFC 3768 section 5.2.2).
pub const VRRP_MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group for VRRP (RFC 5798 section 5.1.2.2).
pub const VRRP_MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Length of the fixed VRRP header (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data (RFC 3768 section 5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// The largest VRRPv3 Max Adver Int: the field has 12 bits (RFC 5798 section 5.2.7).
pub const MAX_V3_ADVER_INT: u16 = 0x0fff;

/// The VRRP multicast group of `addr`'s family.
pub fn multicast_group(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => IpAddr::V4(VRRP_MULTICAST_V4),
        IpAddr::V6(_) => IpAddr::V6(VRRP_MULTICAST_V6),
    }
}

/// The packet type field (RFC 5798 section 5.2.2, RFC 3768 section 5.3.2): only
/// ADVERTISEMENT (1) is defined; any other type is rejected by [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Advertisement,
}

impl PacketKind {
    pub const ADVERTISEMENT: u8 = 1;
}

/// VRRPv2 authentication type (RFC 3768 section 5.3.6, values from RFC 2338 section 5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0: no authentication.
    None,
    /// 1: simple text password (RFC 2338 section 5.3.6.1), keepalived `auth_type PASS`.
    SimplePassword,
    /// 2: IP Authentication Header (RFC 2338 section 5.3.6.2), keepalived `auth_type AH`.
    /// Decoded so it can be counted as an authentication mismatch; not implemented.
    IpAh,
}

impl AuthType {
    pub fn to_wire(self) -> u8 {
        match self {
            AuthType::None => 0,
            AuthType::SimplePassword => 1,
            AuthType::IpAh => 2,
        }
    }

    pub fn from_wire(v: u8) -> Option<Self> {
        match v {
            0 => Some(AuthType::None),
            1 => Some(AuthType::SimplePassword),
            2 => Some(AuthType::IpAh),
            _ => None,
        }
    }
}

/// The version-specific fields of an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2 (RFC 3768).
    V2 {
        /// Auth Type (RFC 3768 section 5.3.6).
        auth_type: AuthType,
        /// Adver Int in whole seconds (RFC 3768 section 5.3.7).
        adver_int: u8,
        /// Authentication Data (RFC 3768 section 5.3.10): the NUL-padded password for
        /// [`AuthType::SimplePassword`], zero otherwise.
        auth_data: [u8; AUTH_DATA_LEN],
    },
    /// VRRPv3 (RFC 5798). The 4 reserved bits are ignored on receipt and sent as zero
    /// (RFC 5798 section 5.2.6).
    V3 {
        /// Max Adver Int in centiseconds, 12 bits (RFC 5798 section 5.2.7).
        max_adver_int: Centiseconds,
    },
}

impl Version {
    /// The version number on the wire: 2 or 3.
    pub fn number(&self) -> u8 {
        match self {
            Version::V2 { .. } => 2,
            Version::V3 { .. } => 3,
        }
    }
}

/// A decoded VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VrrpPacket {
    /// Version and the fields that depend on it.
    pub version: Version,
    pub kind: PacketKind,
    /// Virtual Rtr ID (RFC 5798 section 5.2.3): 1-255.
    pub vrid: Vrid,
    /// Priority (RFC 5798 section 5.2.4): 0 means the master is stopping, 255 the address
    /// owner. A wire value, so 0 is allowed (unlike the configured [`crate::model::Priority`]).
    pub priority: u8,
    /// Count IPvX Addr (RFC 5798 section 5.2.5). [`decode`] guarantees it equals
    /// `addresses.len()`; [`VrrpPacket::encode`] checks it.
    pub count_ip: u8,
    /// The checksum as received; [`VrrpPacket::encode`] ignores it and computes a fresh one.
    pub checksum: u16,
    /// The virtual addresses (RFC 5798 section 5.2.9), all of the IP header's family.
    pub addresses: Vec<IpAddr>,
}

/// Why a VRRP message was rejected. Each variant is a separate counter in the instance.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("packet too short: {len} bytes, the VRRP header alone is {HEADER_LEN}")]
    TooShort { len: usize },
    #[error("unsupported VRRP version {0} (expected 2 or 3)")]
    BadVersion(u8),
    #[error("unsupported VRRP packet type {0} (only 1, ADVERTISEMENT, is defined)")]
    BadType(u8),
    #[error("virtual router id 0 is invalid (1-255)")]
    BadVrid,
    #[error("IP source {src} and destination {dst} do not suit VRRPv{version}")]
    FamilyMismatch {
        version: u8,
        src: IpAddr,
        dst: IpAddr,
    },
    #[error("length {actual} does not match count_ip {count_ip} (expected {expected} bytes)")]
    LengthMismatch {
        count_ip: u8,
        expected: usize,
        actual: usize,
    },
    #[error("bad checksum: received {received:#06x}, computed {computed:#06x}")]
    BadChecksum { received: u16, computed: u16 },
    #[error("unknown VRRPv2 authentication type {0}")]
    UnknownAuthType(u8),
    #[error("advertisement interval 0 is invalid")]
    ZeroInterval,
}

/// Why [`VrrpPacket::encode`] refused a packet that cannot be put on the wire as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("count_ip {count_ip} but {addresses} addresses")]
    CountMismatch { count_ip: u8, addresses: usize },
    #[error(
        "address {addr} does not match the VRRPv{version} packet's family (src {src}, dst {dst})"
    )]
    FamilyMismatch {
        version: u8,
        addr: IpAddr,
        src: IpAddr,
        dst: IpAddr,
    },
    #[error("advertisement interval {0} is outside the field's range")]
    IntervalOutOfRange(u16),
}

/// The size of one address in a VRRPv`version` message sent from `src` to `dst`, or `None`
/// when that combination is not valid (VRRPv2 is IPv4 only, RFC 3768 section 5.2).
fn address_len(version: u8, src: IpAddr, dst: IpAddr) -> Option<usize> {
    match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => Some(4),
        (IpAddr::V6(_), IpAddr::V6(_)) if version == 3 => Some(16),
        _ => None,
    }
}

/// The VRID of a VRRP message, read without validating anything else: for the socket layer
/// to route a datagram to its instance before the instance decodes (and counts errors).
pub fn peek_vrid(bytes: &[u8]) -> Option<Vrid> {
    bytes.get(1).and_then(|&v| Vrid::new(u64::from(v)).ok())
}

/// Decodes one VRRP message (the IP payload) received from `src` for `dst`.
///
/// Checks, in order: the header length, version (2 or 3), type (ADVERTISEMENT only), VRID,
/// the address family against the version, the exact length implied by Count IPvX Addr
/// (RFC 5798 section 7.1, RFC 3768 section 7.1), the checksum (v2: RFC 3768 section 5.3.8,
/// v3: RFC 5798 section 5.2.8), then the v2 auth type and a non-zero interval.
pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<VrrpPacket, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::TooShort { len: bytes.len() });
    }
    let version = bytes[0] >> 4;
    if version != 2 && version != 3 {
        return Err(DecodeError::BadVersion(version));
    }
    let kind = bytes[0] & 0x0f;
    if kind != PacketKind::ADVERTISEMENT {
        return Err(DecodeError::BadType(kind));
    }
    let vrid = Vrid::new(u64::from(bytes[1])).map_err(|_| DecodeError::BadVrid)?;
    let priority = bytes[2];
    let count_ip = bytes[3];
    let alen =
        address_len(version, src, dst).ok_or(DecodeError::FamilyMismatch { version, src, dst })?;
    let auth_len = if version == 2 { AUTH_DATA_LEN } else { 0 };
    let expected = HEADER_LEN + usize::from(count_ip) * alen + auth_len;
    if bytes.len() != expected {
        return Err(DecodeError::LengthMismatch {
            count_ip,
            expected,
            actual: bytes.len(),
        });
    }

    let received = u16::from_be_bytes([bytes[6], bytes[7]]);
    let mut zeroed = bytes.to_vec();
    zeroed[6] = 0;
    zeroed[7] = 0;
    let computed = if version == 2 {
        internet_checksum(&zeroed)
    } else {
        pseudo_header_checksum(src, dst, &zeroed).ok_or(DecodeError::FamilyMismatch {
            version,
            src,
            dst,
        })?
    };
    if computed != received {
        return Err(DecodeError::BadChecksum { received, computed });
    }

    let addr_bytes = &bytes[HEADER_LEN..HEADER_LEN + usize::from(count_ip) * alen];
    let addresses = addr_bytes
        .chunks_exact(alen)
        .map(|c| match <[u8; 16]>::try_from(c) {
            Ok(a) => IpAddr::V6(Ipv6Addr::from(a)),
            Err(_) => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
        })
        .collect();

    let version = if version == 2 {
        let auth_type =
            AuthType::from_wire(bytes[4]).ok_or(DecodeError::UnknownAuthType(bytes[4]))?;
        let adver_int = bytes[5];
        if adver_int == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        let mut auth_data = [0u8; AUTH_DATA_LEN];
        auth_data.copy_from_slice(&bytes[expected - AUTH_DATA_LEN..]);
        Version::V2 {
            auth_type,
            adver_int,
            auth_data,
        }
    } else {
        let max_adver_int = u16::from_be_bytes([bytes[4] & 0x0f, bytes[5]]);
        if max_adver_int == 0 {
            return Err(DecodeError::ZeroInterval);
        }
        Version::V3 {
            max_adver_int: Centiseconds(max_adver_int),
        }
    };

    Ok(VrrpPacket {
        version,
        kind: PacketKind::Advertisement,
        vrid,
        priority,
        count_ip,
        checksum: received,
        addresses,
    })
}

impl VrrpPacket {
    /// The advertisement interval the packet carries: Adver Int seconds (v2, RFC 3768
    /// section 5.3.7) or Max Adver Int centiseconds (v3, RFC 5798 section 5.2.7).
    pub fn advert_interval(&self) -> Duration {
        match self.version {
            Version::V2 { adver_int, .. } => Duration::from_secs(u64::from(adver_int)),
            Version::V3 { max_adver_int } => max_adver_int.as_duration(),
        }
    }

    /// Encodes the message to send from `src` to `dst`, with a freshly computed checksum (v2:
    /// over the message, RFC 3768 section 5.3.8; v3: with the pseudo-header, RFC 5798 section
    /// 5.2.8). `self.checksum` is ignored.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let version = self.version.number();
        if usize::from(self.count_ip) != self.addresses.len() {
            return Err(EncodeError::CountMismatch {
                count_ip: self.count_ip,
                addresses: self.addresses.len(),
            });
        }
        let family_error = |addr| EncodeError::FamilyMismatch {
            version,
            addr,
            src,
            dst,
        };
        let alen = address_len(version, src, dst).ok_or(family_error(src))?;

        let mut out = Vec::with_capacity(HEADER_LEN + self.addresses.len() * alen + AUTH_DATA_LEN);
        out.push((version << 4) | PacketKind::ADVERTISEMENT);
        out.push(self.vrid.get());
        out.push(self.priority);
        out.push(self.count_ip);
        match self.version {
            Version::V2 {
                auth_type,
                adver_int,
                ..
            } => {
                if adver_int == 0 {
                    return Err(EncodeError::IntervalOutOfRange(0));
                }
                out.push(auth_type.to_wire());
                out.push(adver_int);
            }
            Version::V3 { max_adver_int } => {
                let v = max_adver_int.0;
                if v == 0 || v > MAX_V3_ADVER_INT {
                    return Err(EncodeError::IntervalOutOfRange(v));
                }
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
        for &addr in &self.addresses {
            match (addr, alen) {
                (IpAddr::V4(a), 4) => out.extend_from_slice(&a.octets()),
                (IpAddr::V6(a), 16) => out.extend_from_slice(&a.octets()),
                _ => return Err(family_error(addr)),
            }
        }
        let checksum = match self.version {
            Version::V2 { auth_data, .. } => {
                out.extend_from_slice(&auth_data);
                internet_checksum(&out)
            }
            Version::V3 { .. } => {
                pseudo_header_checksum(src, dst, &out).ok_or(family_error(src))?
            }
        };
        out[6..8].copy_from_slice(&checksum.to_be_bytes());
        Ok(out)
    }
}

/// A VRRPv2 simple password (RFC 2338 section 5.3.6.1): up to 8 bytes, NUL-padded on the
/// wire, as keepalived's `auth_type PASS` / `auth_pass`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthPass([u8; AUTH_DATA_LEN]);

impl std::fmt::Debug for AuthPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthPass(..)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("VRRP auth_pass is {0} bytes, at most 8 fit (RFC 2338 section 5.3.6.1)")]
pub struct AuthPassTooLong(pub usize);

impl AuthPass {
    pub fn new(pass: &str) -> Result<Self, AuthPassTooLong> {
        let b = pass.as_bytes();
        if b.len() > AUTH_DATA_LEN {
            return Err(AuthPassTooLong(b.len()));
        }
        let mut data = [0u8; AUTH_DATA_LEN];
        data[..b.len()].copy_from_slice(b);
        Ok(AuthPass(data))
    }

    /// The 8 bytes of Authentication Data.
    pub fn wire(&self) -> [u8; AUTH_DATA_LEN] {
        self.0
    }

    /// Whether received Authentication Data carries this password.
    pub fn matches(&self, auth_data: &[u8; AUTH_DATA_LEN]) -> bool {
        // The password crosses the link in clear text, so a timing-safe compare buys nothing.
        self.0 == *auth_data
    }
}

/// Why the IP header of a received VRRP packet disqualifies it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IpHeaderError {
    #[error("TTL/hop limit {0}, VRRP requires 255")]
    BadTtl(u8),
    #[error("IP protocol {0}, VRRP is 112")]
    BadProtocol(u8),
    #[error("destination {0} is neither the VRRP multicast group nor our unicast address")]
    BadDestination(IpAddr),
}

/// Checks the IP-level fields of a received VRRP packet: TTL / hop limit 255 (RFC 5798
/// sections 5.1.1.3, 5.1.2.3 and 7.1; RFC 3768 section 7.1), protocol 112 (RFC 5798 section
/// 5.1.1.4), destination the VRRP multicast group (RFC 5798 sections 5.1.1.2, 5.1.2.2) or, in
/// unicast mode, `local_unicast` (our own address the peers send to).
pub fn validate_ip_header(
    ttl: u8,
    protocol: u8,
    dst: IpAddr,
    local_unicast: Option<IpAddr>,
) -> Result<(), IpHeaderError> {
    if ttl != VRRP_TTL {
        return Err(IpHeaderError::BadTtl(ttl));
    }
    if protocol != IP_PROTOCOL_VRRP {
        return Err(IpHeaderError::BadProtocol(protocol));
    }
    if dst == multicast_group(dst) || Some(dst) == local_unicast {
        Ok(())
    } else {
        Err(IpHeaderError::BadDestination(dst))
    }
}
