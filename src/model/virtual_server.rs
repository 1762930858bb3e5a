//! Virtual servers (keepalived's `virtual_server` block): one IPVS service and its real servers.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::real_server::RealServer;

/// Identifier the store assigns; read-only in the API (a value sent by a client is ignored).
pub type Id = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    pub fn max_prefix_len(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }
}

/// Every scheduler the Linux IPVS code ships (net/netfilter/ipvs/ip_vs_*.c), by its kernel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    #[default]
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Mh,
    Fo,
    Ovf,
    Twos,
}

impl Scheduler {
    pub fn kernel_name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Mh => "mh",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Twos => "twos",
        }
    }
}

/// Scheduler flags (IPVS `IP_VS_SVC_F_SCHED1`/`SCHED2`, include/uapi/linux/ip_vs.h; keepalived
/// and ipvsadm name them by scheduler): `sh-fallback`/`mh-fallback` (SCHED1) pick another real
/// server when the hashed one is unavailable, `sh-port`/`mh-port` (SCHED2) hash the source port
/// too. Each belongs to its scheduler.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerFlag {
    ShFallback,
    ShPort,
    MhFallback,
    MhPort,
}

impl SchedulerFlag {
    pub const ALL: [SchedulerFlag; 4] = [
        SchedulerFlag::ShFallback,
        SchedulerFlag::ShPort,
        SchedulerFlag::MhFallback,
        SchedulerFlag::MhPort,
    ];

    /// keepalived's and ipvsadm's name.
    pub fn name(self) -> &'static str {
        match self {
            SchedulerFlag::ShFallback => "sh-fallback",
            SchedulerFlag::ShPort => "sh-port",
            SchedulerFlag::MhFallback => "mh-fallback",
            SchedulerFlag::MhPort => "mh-port",
        }
    }

    pub fn scheduler(self) -> Scheduler {
        match self {
            SchedulerFlag::ShFallback | SchedulerFlag::ShPort => Scheduler::Sh,
            SchedulerFlag::MhFallback | SchedulerFlag::MhPort => Scheduler::Mh,
        }
    }

    /// The kernel's service flag bit.
    pub fn bit(self) -> u32 {
        match self {
            SchedulerFlag::ShFallback | SchedulerFlag::MhFallback => 0x0008, // IP_VS_SVC_F_SCHED1
            SchedulerFlag::ShPort | SchedulerFlag::MhPort => 0x0010,         // IP_VS_SVC_F_SCHED2
        }
    }
}

/// Packet forwarding method (ipvsadm -g / -m / -i; keepalived `lb_kind DR|NAT|TUN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    #[default]
    Dr,
    Nat,
    Tun,
}

/// Where traffic goes when every real server is down (keepalived `sorry_server`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SorryServer {
    #[schema(value_type = String)]
    pub address: IpAddr,
    /// Defaults to the virtual server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// One IPVS service. It is identified either by address + port + protocol or by a firewall mark
/// (with its address family), never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    #[serde(default)]
    #[schema(read_only)]
    pub id: Id,
    /// Free-form label shown by the CLI and dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "192.168.10.100")]
    pub address: Option<IpAddr>,
    /// 0 only for a persistent "all ports" service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Defaults to tcp when `address` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Firewall mark (`virtual_server fwmark N`), instead of address/port/protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// Address family; required with `fwmark`, derived from `address` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    #[serde(default)]
    pub scheduler: Scheduler,
    #[serde(default)]
    pub forwarding: Forwarding,
    /// IPVS persistence timeout in seconds (the kernel's unit); absent = not persistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_timeout_secs: Option<u32>,
    /// Persistence granularity as a prefix length (keepalived's dotted netmask, converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_granularity: Option<u8>,
    /// Health-check interval (keepalived `delay_loop`), in milliseconds.
    #[serde(default = "default_delay_loop_ms")]
    pub delay_loop_ms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<SorryServer>,
    /// Minimum total weight of healthy real servers for the service to count as up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// keepalived `hysteresis`: the quorum is gained at `quorum + hysteresis` and lost below
    /// `quorum - hysteresis`, so a weight hovering at the quorum does not flap. Less than the
    /// quorum (default 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hysteresis: u32,
    /// keepalived `quorum_up`: a command (absolute path and arguments, quoted as keepalived
    /// splits them, no shell) run when the quorum is gained. It runs with `delay_loop_ms` as
    /// its timeout and is killed (its process group) at the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_up: Option<String>,
    /// keepalived `quorum_down`: as `quorum_up`, run when the quorum is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_down: Option<String>,
    /// keepalived `alpha`: checked real servers start as down and join after their first
    /// successful check round (otherwise they start as up).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alpha: bool,
    /// keepalived `omega`: when the virtual server is removed or lbd stops, `quorum_down` runs
    /// if the quorum was up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omega: bool,
    /// One-packet scheduling (ipvsadm `-o`, keepalived `ops`, IP_VS_SVC_F_ONEPACKET): every
    /// datagram is scheduled on its own. UDP services only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_packet: bool,
    /// Flags of the `sh` or `mh` scheduler (ipvsadm `-b`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduler_flags: Vec<SchedulerFlag>,
    #[serde(default)]
    pub real_servers: Vec<RealServer>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// keepalived's default `delay_loop` (60 s).
pub fn default_delay_loop_ms() -> u32 {
    60_000
}

/// The identity of a virtual server: what makes two of them the same IPVS service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VsKey {
    Addr {
        address: IpAddr,
        port: u16,
        protocol: Protocol,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

impl fmt::Display for VsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsKey::Addr {
                address: IpAddr::V6(a),
                port,
                protocol,
            } => write!(f, "{} [{a}]:{port}", protocol_name(*protocol)),
            VsKey::Addr {
                address,
                port,
                protocol,
            } => write!(f, "{} {address}:{port}", protocol_name(*protocol)),
            VsKey::Fwmark { mark, family } => write!(
                f,
                "fwmark {mark} {}",
                match family {
                    Family::Ipv4 => "ipv4",
                    Family::Ipv6 => "ipv6",
                }
            ),
        }
    }
}

impl VsKey {
    /// Reads a key as [`VsKey`]'s `Display` writes it: `"tcp 192.0.2.1:80"`,
    /// `"udp [2001:db8::1]:53"`, `"fwmark 7 ipv4"`.
    pub fn parse(s: &str) -> Option<VsKey> {
        let mut words = s.split_whitespace();
        let first = words.next()?;
        let second = words.next()?;
        let third = words.next();
        if words.next().is_some() {
            return None;
        }
        if first == "fwmark" {
            let family = match third? {
                "ipv4" => Family::Ipv4,
                "ipv6" => Family::Ipv6,
                _ => return None,
            };
            return Some(VsKey::Fwmark {
                mark: second.parse().ok()?,
                family,
            });
        }
        if third.is_some() {
            return None;
        }
        let protocol = match first {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return None,
        };
        let sa: std::net::SocketAddr = second.parse().ok()?;
        Some(VsKey::Addr {
            address: sa.ip(),
            port: sa.port(),
            protocol,
        })
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

impl VirtualServer {
    /// The key after defaults; `None` when the identifying fields are incomplete (validation
    /// reports which).
    pub fn key(&self) -> Option<VsKey> {
        match (self.fwmark, self.address) {
            (Some(mark), None) => Some(VsKey::Fwmark {
                mark,
                family: self.family?,
            }),
            (None, Some(address)) => Some(VsKey::Addr {
                address,
                port: self.port?,
                protocol: self.protocol.unwrap_or(Protocol::Tcp),
            }),
            _ => None,
        }
    }

    pub fn family(&self) -> Option<Family> {
        match self.address {
            Some(a) => Some(Family::of(&a)),
            None => self.family,
        }
    }

    /// Fills the defaults that depend on other fields, so stored and served values are explicit.
    pub fn normalize(&mut self) {
        if self.address.is_some() {
            if self.protocol.is_none() {
                self.protocol = Some(Protocol::Tcp);
            }
            self.family = self.address.as_ref().map(Family::of);
        }
        self.scheduler_flags.sort();
        self.scheduler_flags.dedup();
        for rs in &mut self.real_servers {
            if rs.port.is_none() {
                rs.port = self.port;
            }
        }
    }

    /// The IPVS service flags besides persistence: one-packet and the scheduler flags.
    pub fn extra_flags(&self) -> u32 {
        let ops = if self.one_packet { 0x0004 } else { 0 }; // IP_VS_SVC_F_ONEPACKET
        self.scheduler_flags.iter().fold(ops, |f, s| f | s.bit())
    }

    pub fn real_server(&self, id: Id) -> Option<&RealServer> {
        self.real_servers.iter().find(|r| r.id == id)
    }
}
