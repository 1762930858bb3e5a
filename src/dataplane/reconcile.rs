//! The difference between the table lbd wants and the table the kernel has, as kernel operations.
//!
//! Only services lbd owns are touched: a service in the kernel that lbd never created (someone's
//! hand-made `ipvsadm -A`) is left alone. Nothing is flushed: a restart that finds the kernel
//! already right sends no operation at all, so traffic keeps flowing.

use std::collections::BTreeSet;

use crate::ipvs::table::{IpvsOp, IpvsService, IpvsTable, ServiceKey};

/// The operations that turn `kernel` into `desired`, touching only `desired`'s services and the
/// `owned` ones (services lbd created earlier and may now have to delete). Deletions come first
/// so that a destination moving between services never exists twice.
pub fn reconcile(
    desired: &IpvsTable,
    kernel: &IpvsTable,
    owned: &BTreeSet<ServiceKey>,
) -> Vec<IpvsOp> {
    let mut dels = Vec::new();
    let mut rest = Vec::new();
    for key in owned {
        if !desired.services.contains_key(key) && kernel.services.contains_key(key) {
            dels.push(IpvsOp::DelService(*key));
        }
    }
    for (key, want) in &desired.services {
        service_ops(
            *key,
            Some(want),
            kernel.services.get(key),
            false,
            &mut dels,
            &mut rest,
        );
    }
    dels.extend(rest);
    dels
}

/// Like [`reconcile`], for the services `keys` only: what one configuration or health change
/// touched. The caller knows the other services are already as desired.
pub fn reconcile_keys(
    desired: &IpvsTable,
    kernel: &IpvsTable,
    owned: &BTreeSet<ServiceKey>,
    keys: &BTreeSet<ServiceKey>,
) -> Vec<IpvsOp> {
    let mut dels = Vec::new();
    let mut rest = Vec::new();
    for key in keys {
        service_ops(
            *key,
            desired.services.get(key),
            kernel.services.get(key),
            owned.contains(key),
            &mut dels,
            &mut rest,
        );
    }
    dels.extend(rest);
    dels
}

/// The operations for one service: deletions into `dels`, the rest into `rest`. A service lbd
/// does not want is deleted only when it is `owned`.
fn service_ops(
    key: ServiceKey,
    want: Option<&IpvsService>,
    have: Option<&IpvsService>,
    owned: bool,
    dels: &mut Vec<IpvsOp>,
    rest: &mut Vec<IpvsOp>,
) {
    let Some(want) = want else {
        if owned && have.is_some() {
            dels.push(IpvsOp::DelService(key));
        }
        return;
    };
    match have {
        None => {
            rest.push(IpvsOp::AddService(key, want.spec.clone()));
            for (dk, ds) in &want.dests {
                rest.push(IpvsOp::AddDest(key, *dk, *ds));
            }
        }
        Some(have) => {
            if have.spec != want.spec {
                rest.push(IpvsOp::EditService(key, want.spec.clone()));
            }
            for dk in have.dests.keys() {
                if !want.dests.contains_key(dk) {
                    dels.push(IpvsOp::DelDest(key, *dk));
                }
            }
            for (dk, ds) in &want.dests {
                match have.dests.get(dk) {
                    None => rest.push(IpvsOp::AddDest(key, *dk, *ds)),
                    // The kernel cannot change a destination's forwarding method in place
                    // for every method; an edit sets all fields, which it does support.
                    Some(h) if h != ds => rest.push(IpvsOp::EditDest(key, *dk, *ds)),
                    Some(_) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::desired::{desired_table, Health};
    use crate::ipvs::table::{DestKey, ProtocolKey};
    use crate::model::{Config, VirtualServer};

    fn vs(id: i64, port: u16, rss: &[(&str, u32)]) -> VirtualServer {
        let mut v: VirtualServer = serde_json::from_value(serde_json::json!({
            "address": "192.168.10.100", "port": port,
            "real_servers": rss.iter().enumerate().map(|(i, (a, w))| serde_json::json!({
                "id": id * 100 + i as i64, "address": a, "weight": w})).collect::<Vec<_>>()
        }))
        .unwrap();
        v.id = id;
        v.normalize();
        v
    }

    fn cfg(vss: Vec<VirtualServer>) -> Config {
        Config {
            virtual_servers: vss.into_iter().map(std::sync::Arc::new).collect(),
            vrrp_groups: vec![],
            ipvs_timeouts: None,
            connection_sync: None,
            vrrp_settings: Default::default(),
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: ProtocolKey::Tcp,
            address: "192.168.10.100".parse().unwrap(),
            port,
        }
    }

    #[test]
    fn converged_table_needs_no_operation() {
        let c = cfg(vec![vs(1, 80, &[("10.0.0.1", 1), ("10.0.0.2", 1)])]);
        let t = desired_table(&c, &Health::default());
        let owned = t.services.keys().copied().collect();
        assert_eq!(reconcile(&t, &t, &owned), vec![]);
    }

    #[test]
    fn one_weight_change_is_one_edit() {
        let many: Vec<_> = (1..=1000)
            .map(|i| vs(i, i as u16, &[("10.0.0.1", 1), ("10.0.0.2", 1)]))
            .collect();
        let before = desired_table(&cfg(many.clone()), &Health::default());
        let mut after_cfg = cfg(many);
        std::sync::Arc::make_mut(&mut after_cfg.virtual_servers[500]).real_servers[1].weight =
            crate::model::Weight::new(7).unwrap();
        let after = desired_table(&after_cfg, &Health::default());
        let owned = before.services.keys().copied().collect();
        let ops = reconcile(&after, &before, &owned);
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert!(
            matches!(&ops[0], IpvsOp::EditDest(k, d, s) if *k == key(501) && d.address.to_string() == "10.0.0.2" && s.weight == 7)
        );
    }

    #[test]
    fn foreign_services_are_left_alone_and_owned_ones_removed() {
        let desired = desired_table(
            &cfg(vec![vs(1, 80, &[("10.0.0.1", 1)])]),
            &Health::default(),
        );
        let mut kernel = desired.clone();
        let foreign = desired_table(
            &cfg(vec![vs(2, 9999, &[("10.0.0.9", 1)])]),
            &Health::default(),
        );
        kernel.services.extend(foreign.services.clone());
        let stale = desired_table(
            &cfg(vec![vs(3, 443, &[("10.0.0.3", 1)])]),
            &Health::default(),
        );
        kernel.services.extend(stale.services.clone());
        let owned = [key(80), key(443)].into_iter().collect();
        assert_eq!(
            reconcile(&desired, &kernel, &owned),
            vec![IpvsOp::DelService(key(443))]
        );
    }

    #[test]
    fn drift_is_repaired() {
        let desired = desired_table(
            &cfg(vec![vs(1, 80, &[("10.0.0.1", 1), ("10.0.0.2", 1)])]),
            &Health::default(),
        );
        let mut kernel = desired.clone();
        let d2 = DestKey {
            address: "10.0.0.2".parse().unwrap(),
            port: 80,
        };
        // someone ran `ipvsadm -d` on one destination and `ipvsadm -E -s wlc`
        let spec = kernel.services.get_mut(&key(80)).unwrap();
        let removed = spec.dests.remove(&d2).unwrap();
        spec.spec.scheduler = "wlc".into();
        let owned = [key(80)].into_iter().collect();
        let ops = reconcile(&desired, &kernel, &owned);
        assert_eq!(
            ops,
            vec![
                IpvsOp::EditService(key(80), desired.services[&key(80)].spec.clone()),
                IpvsOp::AddDest(key(80), d2, removed),
            ]
        );
    }

    #[test]
    fn quorum_decides_when_the_sorry_server_joins() {
        let mut v = vs(1, 80, &[("10.0.0.1", 3), ("10.0.0.2", 3), ("10.0.0.3", 3)]);
        v.quorum = Some(5);
        v.sorry_server = Some(crate::model::SorryServer {
            address: "10.0.0.99".parse().unwrap(),
            port: Some(8080),
        });
        let c = cfg(vec![v]);
        let addrs = |h: &Health| -> Vec<String> {
            desired_table(&c, h).services[&key(80)]
                .dests
                .keys()
                .map(|k| format!("{}:{}", k.address, k.port))
                .collect()
        };
        let mut h = Health::default();
        assert_eq!(addrs(&h), vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        h.down.insert(100);
        assert_eq!(
            addrs(&h),
            vec!["10.0.0.2:80", "10.0.0.3:80"],
            "weight 6 >= quorum 5"
        );
        h.down.insert(101);
        assert_eq!(
            addrs(&h),
            vec!["10.0.0.3:80", "10.0.0.99:8080"],
            "weight 3 < quorum 5: sorry server joins"
        );
    }

    #[test]
    fn health_removes_or_inhibits_and_sorry_server_takes_over() {
        let mut v = vs(1, 80, &[("10.0.0.1", 5), ("10.0.0.2", 5)]);
        v.real_servers[1].inhibit_on_failure = true;
        v.sorry_server = Some(crate::model::SorryServer {
            address: "10.0.0.99".parse().unwrap(),
            port: None,
        });
        let c = cfg(vec![v]);
        let mut h = Health::default();
        h.down.insert(100);
        let t = desired_table(&c, &h);
        let dests: Vec<_> = t.services[&key(80)]
            .dests
            .iter()
            .map(|(k, s)| (k.address.to_string(), s.weight))
            .collect();
        assert_eq!(dests, vec![("10.0.0.2".to_string(), 5)]);
        h.down.insert(101);
        let t = desired_table(&c, &h);
        let dests: Vec<_> = t.services[&key(80)]
            .dests
            .iter()
            .map(|(k, s)| (k.address.to_string(), s.weight))
            .collect();
        assert_eq!(
            dests,
            vec![("10.0.0.2".to_string(), 0), ("10.0.0.99".to_string(), 1)]
        );
    }
}
