//! The kernel's IPVS table and connections as lbd's APIs show them: one typed read that the
//! HTTP handlers serialize as JSON and the gRPC service converts to protobuf (see
//! [`super::actor::DataplaneHandle::ipvs_view`] and [`super::actor::DataplaneHandle::connections`]).

use std::net::IpAddr;

use serde::Serialize;
use utoipa::ToSchema;

use crate::ipvs::table::{FamilyKey, IpvsTable, ProtocolKey, ServiceKey, Stats, Timeouts};
use crate::model::{Family, Forwarding, Protocol};

pub use crate::ipvs::conn::Connection;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IpvsTableView {
    /// The kernel's connection timeouts (`ipvsadm -L --timeout`), when it reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    pub services: Vec<IpvsServiceView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IpvsServiceView {
    /// tcp, udp, sctp; absent for a fwmark service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub address: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    pub family: Family,
    pub scheduler: String,
    pub flags: u32,
    /// Persistence timeout in seconds (0: not persistent).
    pub timeout_secs: u32,
    pub netmask_prefix: u8,
    /// Totals and rates, as `ipvsadm -Ln --stats` / `--rate` show them.
    pub stats: Stats,
    pub destinations: Vec<IpvsDestView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IpvsDestView {
    #[schema(value_type = String)]
    pub address: IpAddr,
    pub port: u16,
    pub forwarding: Forwarding,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: Stats,
}

/// The view of a table as the kernel reported it (services lbd does not manage included).
pub fn view(t: &IpvsTable) -> IpvsTableView {
    let services = t
        .services
        .iter()
        .map(|(k, s)| {
            let counters = t.counters.get(k).cloned().unwrap_or_default();
            let (protocol, address, port, fwmark, family) = match k {
                ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                } => (
                    Some(match protocol {
                        ProtocolKey::Tcp => Protocol::Tcp,
                        ProtocolKey::Udp => Protocol::Udp,
                        ProtocolKey::Sctp => Protocol::Sctp,
                    }),
                    Some(*address),
                    Some(*port),
                    None,
                    Family::of(address),
                ),
                ServiceKey::Fwmark { family, mark } => (
                    None,
                    None,
                    None,
                    Some(*mark),
                    match family {
                        FamilyKey::Ipv4 => Family::Ipv4,
                        FamilyKey::Ipv6 => Family::Ipv6,
                    },
                ),
            };
            IpvsServiceView {
                protocol,
                address,
                port,
                fwmark,
                family,
                scheduler: s.spec.scheduler.clone(),
                flags: s.spec.flags,
                timeout_secs: s.spec.timeout,
                netmask_prefix: s.spec.netmask_prefix,
                stats: counters.stats,
                destinations: s
                    .dests
                    .iter()
                    .map(|(dk, ds)| {
                        let c = counters.dests.get(dk).copied().unwrap_or_default();
                        IpvsDestView {
                            address: dk.address,
                            port: dk.port,
                            forwarding: ds.forwarding,
                            weight: ds.weight,
                            upper_threshold: ds.upper_threshold,
                            lower_threshold: ds.lower_threshold,
                            active_conns: c.active_conns,
                            inactive_conns: c.inactive_conns,
                            persistent_conns: c.persistent_conns,
                            stats: c.stats,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    IpvsTableView {
        timeouts: t.timeouts,
        services,
    }
}
