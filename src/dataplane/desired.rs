//! From a configuration snapshot (and health state) to the IPVS table lbd wants.

use std::collections::{BTreeMap, HashSet};

use super::table::{
    DestKey, DestSpec, IpvsTable, Service, ServiceKey, ServiceSpec, IP_VS_SVC_F_PERSISTENT,
};
use crate::model::{Config, Family, Id, VirtualServer, VsKey};

/// Which real servers health checks currently consider down (by real-server id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub down: HashSet<Id>,
    /// Weights health checks set (MISC_CHECK `misc_dynamic`), instead of the configured one.
    pub weights: std::collections::HashMap<Id, u32>,
}

pub fn service_key(vs: &VirtualServer) -> Option<ServiceKey> {
    Some(match vs.key()? {
        VsKey::Addr {
            address,
            port,
            protocol,
        } => ServiceKey::Addr {
            protocol: protocol.into(),
            address,
            port,
        },
        VsKey::Fwmark { mark, family } => ServiceKey::Fwmark {
            family: family.into(),
            mark,
        },
    })
}

/// The table for `cfg`: one service per virtual server; a real server that is down is left out,
/// or kept at weight 0 with `inhibit_on_failure` (its connections drain). A virtual server is up
/// while the weights of its healthy real servers add up to its `quorum` (default 1, keepalived's);
/// below that the sorry server, if any, is added and takes the new connections.
pub fn desired_table(cfg: &Config, health: &Health) -> IpvsTable {
    let services = cfg
        .virtual_servers
        .iter()
        .filter_map(|vs| desired_service(vs, health))
        .collect();
    IpvsTable {
        services,
        ..IpvsTable::default()
    }
}

/// The service one virtual server asks for (see [`desired_table`]).
pub fn desired_service(vs: &VirtualServer, health: &Health) -> Option<(ServiceKey, Service)> {
    // (quorum: keepalived's "minimum total weight of all live servers")
    let key = service_key(vs)?;
    let family = vs.family().unwrap_or(Family::Ipv4);
    let spec = ServiceSpec {
        scheduler: vs.scheduler.kernel_name().to_string(),
        flags: vs.extra_flags()
            | if vs.persistence_timeout_secs.is_some() {
                IP_VS_SVC_F_PERSISTENT
            } else {
                0
            },
        timeout: vs.persistence_timeout_secs.unwrap_or(0),
        netmask_prefix: vs
            .persistence_granularity
            .unwrap_or(family.max_prefix_len()),
    };
    let mut dests = BTreeMap::new();
    let mut alive_weight: u64 = 0;
    for rs in &vs.real_servers {
        let up = !health.down.contains(&rs.id);
        if !up && !rs.inhibit_on_failure {
            continue;
        }
        let weight = health
            .weights
            .get(&rs.id)
            .copied()
            .unwrap_or(rs.weight.get());
        if up {
            alive_weight += u64::from(weight);
        }
        let dkey = DestKey {
            address: rs.address,
            port: rs.port.or(vs.port).unwrap_or(0),
        };
        dests.insert(
            dkey,
            DestSpec {
                forwarding: rs.forwarding.unwrap_or(vs.forwarding),
                weight: if up { weight } else { 0 },
                upper_threshold: rs.upper_threshold.unwrap_or(0),
                lower_threshold: rs.lower_threshold.unwrap_or(0),
            },
        );
    }
    if alive_weight < u64::from(vs.quorum.unwrap_or(1)) {
        if let Some(sorry) = &vs.sorry_server {
            dests.insert(
                DestKey {
                    address: sorry.address,
                    port: sorry.port.or(vs.port).unwrap_or(0),
                },
                DestSpec {
                    forwarding: vs.forwarding,
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                },
            );
        }
    }
    Some((key, Service { spec, dests }))
}
