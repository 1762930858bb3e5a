//! The IPVS table as lbd reasons about it: kernel-neutral domain types.
//!
//! The same types describe what the configuration wants (`dataplane::desired`) and what
//! the kernel reports (a dump), so converging is a diff of two values
//! (`dataplane::reconcile`). They live here, below both the data plane and the kernel
//! adapter (`crate::kernel`), so the kernel never imports the data plane. Netlink wire types live
//! apart, in [`super::wire`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::model::{Family, Forwarding, Protocol};

/// What identifies an IPVS service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    Addr {
        protocol: ProtocolKey,
        address: IpAddr,
        port: u16,
    },
    Fwmark {
        family: FamilyKey,
        mark: u32,
    },
}

/// `Protocol` with an order, so tables sort deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolKey {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FamilyKey {
    Ipv4,
    Ipv6,
}

impl From<Protocol> for ProtocolKey {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => ProtocolKey::Tcp,
            Protocol::Udp => ProtocolKey::Udp,
            Protocol::Sctp => ProtocolKey::Sctp,
        }
    }
}

impl From<Family> for FamilyKey {
    fn from(f: Family) -> Self {
        match f {
            Family::Ipv4 => FamilyKey::Ipv4,
            Family::Ipv6 => FamilyKey::Ipv6,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                address: IpAddr::V6(a),
                port,
            } => write!(f, "{protocol:?} [{a}]:{port}"),
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => write!(f, "{protocol:?} {address}:{port}"),
            ServiceKey::Fwmark { family, mark } => write!(f, "FWM {mark} {family:?}"),
        }
    }
}

impl ServiceKey {
    /// A stable text form for the store: `tcp|192.168.10.100|80`, `fwm|ipv4|7`.
    pub fn to_token(&self) -> String {
        match self {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => {
                let p = match protocol {
                    ProtocolKey::Tcp => "tcp",
                    ProtocolKey::Udp => "udp",
                    ProtocolKey::Sctp => "sctp",
                };
                format!("{p}|{address}|{port}")
            }
            ServiceKey::Fwmark { family, mark } => {
                let f = if *family == FamilyKey::Ipv4 {
                    "ipv4"
                } else {
                    "ipv6"
                };
                format!("fwm|{f}|{mark}")
            }
        }
    }

    pub fn from_token(s: &str) -> Option<ServiceKey> {
        let mut it = s.split('|');
        let (a, b, c) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        Some(match a {
            "fwm" => ServiceKey::Fwmark {
                family: match b {
                    "ipv4" => FamilyKey::Ipv4,
                    "ipv6" => FamilyKey::Ipv6,
                    _ => return None,
                },
                mark: c.parse().ok()?,
            },
            p => ServiceKey::Addr {
                protocol: match p {
                    "tcp" => ProtocolKey::Tcp,
                    "udp" => ProtocolKey::Udp,
                    "sctp" => ProtocolKey::Sctp,
                    _ => return None,
                },
                address: b.parse().ok()?,
                port: c.parse().ok()?,
            },
        })
    }
}

/// IPVS service flags (include/uapi/linux/ip_vs.h `IP_VS_SVC_F_*`).
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;

/// A service's settings (everything but its key and destinations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Kernel scheduler name ("rr", "wlc", ...).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout in seconds (0: not persistent).
    pub timeout: u32,
    /// Persistence netmask as a prefix length (the wire carries a mask for IPv4, a length for
    /// IPv6; the netlink layer converts).
    pub netmask_prefix: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestKey {
    pub address: IpAddr,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestSpec {
    pub forwarding: Forwarding,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

/// One IPVS service with its destinations (not [`crate::control::service::Service`], the
/// control plane's service layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsService {
    pub spec: ServiceSpec,
    pub dests: BTreeMap<DestKey, DestSpec>,
}

/// A whole IPVS table (or the part of it lbd manages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsTable {
    pub services: BTreeMap<ServiceKey, IpvsService>,
    /// What a kernel dump reports besides the settings: connections and traffic. Never part of
    /// what lbd wants, so never diffed.
    pub counters: BTreeMap<ServiceKey, ServiceCounters>,
    /// The kernel's connection timeouts, when the dump read them. Never diffed.
    pub timeouts: Option<Timeouts>,
}

/// IPVS connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Timeouts {
    pub tcp_secs: u32,
    pub tcp_fin_secs: u32,
    pub udp_secs: u32,
}

/// The role of a connection-sync daemon: the kernel runs at most one of each per network
/// namespace. The master multicasts the connections this director schedules; the backup
/// receives a peer master's and adds them to this director's connection table.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SyncRole {
    Master,
    Backup,
}

impl SyncRole {
    pub const BOTH: [SyncRole; 2] = [SyncRole::Master, SyncRole::Backup];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

impl fmt::Display for SyncRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection-sync daemon (`ipvsadm --start-daemon`): as lbd wants it started, or as the
/// kernel reports it running. `None` options are the kernel's choice when starting; a dump
/// reports what the kernel chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncDaemon {
    pub role: SyncRole,
    /// The interface the sync messages go out of (master) or are received on (backup).
    pub interface: String,
    /// Sync messages carry it; a backup ignores messages of another id.
    pub sync_id: u8,
    /// The UDP payload size of sync messages.
    pub maxlen: Option<u16>,
    /// The multicast group (the kernel's default 224.0.0.81).
    pub group: Option<IpAddr>,
    /// The UDP port (the kernel's default 8848).
    pub port: Option<u16>,
    /// The multicast TTL (the kernel's default 1).
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    pub stats: Stats,
    pub dests: BTreeMap<DestKey, DestCounters>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestCounters {
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

pub use crate::ipvs::wire::Stats;

impl IpvsTable {
    pub fn dest_count(&self) -> usize {
        self.services.values().map(|s| s.dests.len()).sum()
    }

    /// Applies one operation as the kernel would, with the kernel's refusals (EEXIST,
    /// ESRCH/ENOENT). The actor keeps its picture of the kernel up to date with this between
    /// dumps; the in-memory kernel is built on it.
    pub fn apply(&mut self, op: &IpvsOp) -> Result<(), &'static str> {
        let t = &mut self.services;
        match op {
            IpvsOp::AddService(k, spec) => {
                if t.contains_key(k) {
                    return Err("service exists");
                }
                t.insert(
                    *k,
                    IpvsService {
                        spec: spec.clone(),
                        dests: BTreeMap::new(),
                    },
                );
            }
            IpvsOp::EditService(k, spec) => {
                t.get_mut(k).ok_or("no such service")?.spec = spec.clone()
            }
            IpvsOp::DelService(k) => {
                t.remove(k).ok_or("no such service")?;
            }
            IpvsOp::AddDest(k, d, spec) => {
                let svc = t.get_mut(k).ok_or("no such service")?;
                if svc.dests.contains_key(d) {
                    return Err("destination exists");
                }
                svc.dests.insert(*d, *spec);
            }
            IpvsOp::EditDest(k, d, spec) => {
                let svc = t.get_mut(k).ok_or("no such service")?;
                *svc.dests.get_mut(d).ok_or("no such destination")? = *spec;
            }
            IpvsOp::DelDest(k, d) => {
                let svc = t.get_mut(k).ok_or("no such service")?;
                svc.dests.remove(d).ok_or("no such destination")?;
            }
        }
        Ok(())
    }
}

/// One change to the kernel's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsOp {
    AddService(ServiceKey, ServiceSpec),
    EditService(ServiceKey, ServiceSpec),
    DelService(ServiceKey),
    AddDest(ServiceKey, DestKey, DestSpec),
    EditDest(ServiceKey, DestKey, DestSpec),
    DelDest(ServiceKey, DestKey),
}
