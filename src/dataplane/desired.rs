//! From a configuration snapshot (and health state) to the IPVS table lbd wants.

use std::collections::{BTreeMap, HashSet};

use crate::ipvs::table::{
    DestKey, DestSpec, IpvsService, IpvsTable, ServiceKey, ServiceSpec, IP_VS_SVC_F_PERSISTENT,
};
use crate::model::{Config, Family, Id, VirtualServer, VsKey};

/// Which real servers health checks currently consider down (by real-server id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub down: HashSet<Id>,
    /// Weights health checks set (MISC_CHECK `misc_dynamic`), instead of the configured one.
    pub weights: std::collections::HashMap<Id, u32>,
    /// Whether each virtual server has its quorum, as the actor's hysteresis decided (see
    /// [`quorum_next`]); a virtual server not in it is judged by its quorum alone.
    pub quorum_up: std::collections::HashMap<Id, bool>,
}

/// The total weight of `vs`'s healthy real servers (keepalived's "weight sum of live servers").
pub fn alive_weight(vs: &VirtualServer, health: &Health) -> u64 {
    vs.real_servers
        .iter()
        .filter(|rs| !health.down.contains(&rs.id))
        .map(|rs| {
            u64::from(
                health
                    .weights
                    .get(&rs.id)
                    .copied()
                    .unwrap_or(rs.weight.get()),
            )
        })
        .sum()
}

/// keepalived's quorum with hysteresis (check/ipwrapper.c): the quorum is gained when the
/// healthy weight reaches `quorum + hysteresis` and lost when it falls below
/// `quorum - hysteresis`; in between the state stays as it was. `was` is `None` the first time
/// a virtual server is judged: then the quorum alone decides.
pub fn quorum_next(was: Option<bool>, alive: u64, quorum: u32, hysteresis: u32) -> bool {
    let q = u64::from(quorum);
    let h = u64::from(hysteresis);
    match was {
        None => alive >= q,
        Some(true) => alive >= q.saturating_sub(h),
        Some(false) => alive >= q + h,
    }
}

pub fn service_key(vs: &VirtualServer) -> Option<ServiceKey> {
    vs.key().map(kernel_key)
}

/// The kernel's key of a service the model names by `k`.
pub fn kernel_key(k: VsKey) -> ServiceKey {
    match k {
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
    }
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
pub fn desired_service(vs: &VirtualServer, health: &Health) -> Option<(ServiceKey, IpvsService)> {
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
    let has_quorum = match health.quorum_up.get(&vs.id) {
        Some(up) => *up,
        None => alive_weight >= u64::from(vs.quorum.unwrap_or(1)),
    };
    if !has_quorum {
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
    Some((key, IpvsService { spec, dests }))
}

#[cfg(test)]
mod tests {
    use super::quorum_next;

    #[test]
    fn quorum_without_hysteresis_is_the_threshold() {
        assert!(quorum_next(None, 3, 3, 0));
        assert!(!quorum_next(None, 2, 3, 0));
        assert!(!quorum_next(Some(true), 2, 3, 0));
        assert!(quorum_next(Some(false), 3, 3, 0));
    }

    #[test]
    fn hysteresis_gains_at_quorum_plus_and_loses_below_quorum_minus() {
        // quorum 5, hysteresis 2: gained at 7, lost below 3.
        let (q, h) = (5, 2);
        let mut up = quorum_next(None, 5, q, h);
        assert!(up, "the first judgement is the quorum alone");
        for (alive, want) in [
            (4, true),  // below the quorum, not below quorum - hysteresis
            (3, true),  // at quorum - hysteresis: still up
            (2, false), // below it: lost
            (5, false), // back at the quorum: not yet
            (6, false),
            (7, true), // quorum + hysteresis: gained
            (3, true),
            (8, true),
        ] {
            up = quorum_next(Some(up), alive, q, h);
            assert_eq!(up, want, "alive weight {alive}");
        }
    }

    #[test]
    fn first_judgement_below_quorum_is_down() {
        assert!(!quorum_next(None, 4, 5, 2));
        assert!(!quorum_next(Some(false), 6, 5, 2));
        assert!(quorum_next(Some(false), 7, 5, 2));
    }
}
