//! An in-memory kernel for the actor's unit tests: a table, a log of what was applied, and
//! switches to make it fail. It never replaces the real-kernel tests of the netlink code.

use std::sync::{Arc, Mutex};

use super::{ApplyReport, Kernel, KernelError};
use crate::ipvs::table::{IpvsOp, IpvsTable, ServiceKey, SyncDaemon, SyncRole, Timeouts};
use crate::model::{VirtualAddress, VirtualRoute, VirtualRule};

#[derive(Debug, Default)]
pub struct MemoryState {
    pub table: IpvsTable,
    /// Every operation applied, in order.
    pub log: Vec<IpvsOp>,
    pub dumps: usize,
    /// When set, every call fails with `Unavailable(reason)`.
    pub unavailable: Option<String>,
    /// Schedulers this "kernel" lacks (adding a service with one is refused, as ENOENT).
    pub missing_schedulers: Vec<String>,
    /// Addresses per interface.
    pub addresses: std::collections::BTreeMap<String, Vec<VirtualAddress>>,
    /// Virtual routes and rules in place, in the order added.
    pub routes: Vec<VirtualRoute>,
    pub rules: Vec<VirtualRule>,
    /// Gratuitous ARPs sent: (interface, address, count).
    pub garps: Vec<(String, VirtualAddress, u32)>,
    /// Counter zeroings asked for (`None`: all services), in order.
    pub zeroed: Vec<Option<ServiceKey>>,
    /// Timeouts set (as asked, zeros included), in order. The table's `timeouts` holds the
    /// result; it starts as the kernel's defaults on the first set.
    pub timeouts_set: Vec<Timeouts>,
    /// The connection-sync daemons running, as a dump reports them (the kernel's defaults
    /// filled in).
    pub sync_daemons: std::collections::BTreeMap<SyncRole, SyncDaemon>,
    /// Daemons started (as asked) and roles stopped, in order.
    pub sync_started: Vec<SyncDaemon>,
    pub sync_stopped: Vec<SyncRole>,
    /// When set, starting a daemon is refused with this reason (as the kernel refuses one on an
    /// interface it does not have, ENODEV).
    pub sync_refuse: Option<String>,
    /// Virtual-MAC interfaces: name -> (parent, MAC). An entry with a parent of `""` stands for
    /// an interface of that name that is no virtual-MAC interface (refused, left alone).
    pub vmacs: std::collections::BTreeMap<String, (String, [u8; 6])>,
    /// Virtual-MAC interfaces created and removed, in order.
    pub vmacs_created: Vec<String>,
    pub vmacs_deleted: Vec<String>,
    /// An IPv6 virtual-MAC interface's advert source ([`Kernel::vmac_ensure_v6`]).
    pub vmac_sources: std::collections::BTreeMap<String, Option<std::net::Ipv6Addr>>,
}

/// The kernel's default connection timeouts (TCP established 15 min, FIN_WAIT 2 min, UDP 5 min:
/// tcp_timeouts / udp_timeouts in net/netfilter/ipvs), what `ipvsadm -L --timeout` shows first.
pub const DEFAULT_TIMEOUTS: Timeouts = Timeouts {
    tcp_secs: 900,
    tcp_fin_secs: 120,
    udp_secs: 300,
};

/// The sync max length the kernel picks on an interface with a 1500-byte MTU (what
/// `ipvsadm -L --daemon` shows as maxlen=1472).
pub const DEFAULT_SYNC_MAXLEN: u16 = 1472;

/// Cloneable: a test keeps one clone to inspect and poke the table the actor owns.
#[derive(Debug, Clone, Default)]
pub struct MemoryKernel {
    pub state: Arc<Mutex<MemoryState>>,
}

impl MemoryKernel {
    pub fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }
}

/// One operation, with the errors the kernel gives; a scheduler in `missing` is refused as
/// the kernel refuses one it lacks.
fn apply_one(table: &mut IpvsTable, missing: &[String], op: &IpvsOp) -> Result<(), String> {
    if let IpvsOp::AddService(_, spec) = op {
        if missing.contains(&spec.scheduler) && !table.services.contains_key(&key_of(op)) {
            return Err("no such scheduler".into());
        }
    }
    table.apply(op).map_err(String::from)
}

fn key_of(op: &IpvsOp) -> crate::ipvs::table::ServiceKey {
    match op {
        IpvsOp::AddService(k, _)
        | IpvsOp::EditService(k, _)
        | IpvsOp::DelService(k)
        | IpvsOp::AddDest(k, _, _)
        | IpvsOp::EditDest(k, _, _)
        | IpvsOp::DelDest(k, _) => *k,
    }
}

impl Kernel for MemoryKernel {
    fn ipvs_dump(&mut self) -> Result<IpvsTable, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            s.dumps += 1;
            Ok(s.table.clone())
        })
    }

    fn ipvs_apply(&mut self, ops: &[IpvsOp]) -> Result<ApplyReport, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            let mut report = ApplyReport {
                round_trips: 1,
                ..ApplyReport::default()
            };
            for op in ops {
                match apply_one(&mut s.table, &s.missing_schedulers, op) {
                    Ok(()) => {
                        s.log.push(op.clone());
                        report.applied += 1;
                    }
                    Err(m) => report.refused.push(format!("{op:?}: {m}")),
                }
            }
            Ok(report)
        })
    }

    fn ipvs_zero(&mut self, service: Option<&ServiceKey>) -> Result<(), KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            match service {
                None => {
                    for c in s.table.counters.values_mut() {
                        c.stats = Default::default();
                        for d in c.dests.values_mut() {
                            d.stats = Default::default();
                        }
                    }
                }
                Some(k) => {
                    if !s.table.services.contains_key(k) {
                        return Err(KernelError::NoSuchService(k.to_string()));
                    }
                    if let Some(c) = s.table.counters.get_mut(k) {
                        c.stats = Default::default();
                        for d in c.dests.values_mut() {
                            d.stats = Default::default();
                        }
                    }
                }
            }
            s.zeroed.push(service.copied());
            Ok(())
        })
    }

    fn ipvs_set_timeouts(&mut self, t: &Timeouts) -> Result<(), KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            // As ip_vs_set_timeout: 0 leaves that timeout as it is.
            let mut now = s.table.timeouts.unwrap_or(DEFAULT_TIMEOUTS);
            for (to, v) in [
                (&mut now.tcp_secs, t.tcp_secs),
                (&mut now.tcp_fin_secs, t.tcp_fin_secs),
                (&mut now.udp_secs, t.udp_secs),
            ] {
                if v != 0 {
                    *to = v;
                }
            }
            s.table.timeouts = Some(now);
            s.timeouts_set.push(*t);
            Ok(())
        })
    }

    fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            Ok(s.sync_daemons.values().cloned().collect())
        })
    }

    fn sync_daemon_start(&mut self, d: &SyncDaemon) -> Result<(), KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            let refused = |message: String| KernelError::Refused {
                op: "IPVS_CMD_NEW_DAEMON".into(),
                message,
            };
            if let Some(r) = &s.sync_refuse {
                return Err(refused(r.clone()));
            }
            if s.sync_daemons.contains_key(&d.role) {
                return Err(refused("File exists (os error 17)".into()));
            }
            // start_sync_thread's defaults (a 1500-byte MTU's max length).
            let running = SyncDaemon {
                maxlen: Some(d.maxlen.unwrap_or(DEFAULT_SYNC_MAXLEN)),
                group: Some(
                    d.group
                        .unwrap_or(std::net::IpAddr::from(crate::ipvs::uapi::IP_VS_SYNC_GROUP)),
                ),
                port: Some(d.port.unwrap_or(crate::ipvs::uapi::IP_VS_SYNC_PORT)),
                ttl: Some(d.ttl.unwrap_or(crate::ipvs::uapi::IP_VS_SYNC_TTL)),
                ..d.clone()
            };
            s.sync_daemons.insert(d.role, running);
            s.sync_started.push(d.clone());
            Ok(())
        })
    }

    fn sync_daemon_stop(&mut self, role: SyncRole) -> Result<bool, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            s.sync_stopped.push(role);
            Ok(s.sync_daemons.remove(&role).is_some())
        })
    }

    fn address_add(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError> {
        self.with(|s| {
            let list = s.addresses.entry(ifname.to_string()).or_default();
            // As the kernel: the same address and prefix on an interface is there already,
            // whatever its label or scope.
            if list
                .iter()
                .any(|a| a.address == addr.address && a.prefix_len == addr.prefix_len)
            {
                return Ok(false);
            }
            list.push(addr.clone());
            Ok(true)
        })
    }

    fn address_del(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError> {
        self.with(|s| {
            let list = s.addresses.entry(ifname.to_string()).or_default();
            let before = list.len();
            // As the kernel: a label in the request must match too.
            list.retain(|a| {
                !(a.address == addr.address
                    && a.prefix_len == addr.prefix_len
                    && addr
                        .label
                        .as_ref()
                        .is_none_or(|l| a.label.as_ref() == Some(l)))
            });
            Ok(list.len() != before)
        })
    }

    fn route(&mut self, add: bool, r: &VirtualRoute) -> Result<bool, KernelError> {
        self.with(|s| {
            // As the kernel: a route is the same one by destination, table and metric.
            let same = |x: &VirtualRoute| {
                x.to == r.to
                    && x.table.unwrap_or(254) == r.table.unwrap_or(254)
                    && x.metric.unwrap_or(0) == r.metric.unwrap_or(0)
            };
            let there = s.routes.iter().any(same);
            if add && !there {
                s.routes.push(r.clone());
            } else if !add {
                s.routes.retain(|x| !same(x));
            }
            Ok(add != there)
        })
    }

    fn rule(&mut self, add: bool, r: &VirtualRule) -> Result<bool, KernelError> {
        self.with(|s| {
            let there = s.rules.contains(r);
            if add && !there {
                s.rules.push(r.clone());
            } else if !add {
                s.rules.retain(|x| x != r);
            }
            Ok(add != there)
        })
    }

    fn garp(
        &mut self,
        ifname: &str,
        addr: &VirtualAddress,
        count: u32,
    ) -> Result<u32, KernelError> {
        self.with(|s| {
            s.garps.push((ifname.to_string(), addr.clone(), count));
            Ok(count)
        })
    }

    fn sibling(&self) -> Box<dyn Kernel> {
        Box::new(self.clone())
    }

    fn vmac_ensure(&mut self, name: &str, parent: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        self.with(|s| match s.vmacs.get(name) {
            Some((p, m)) if p == parent && *m == mac => Ok(false),
            Some(_) => Err(KernelError::Refused {
                op: format!("virtual-MAC interface {name} on {parent}"),
                message: format!(
                    "interface {name} exists and is not a private macvlan over {parent}"
                ),
            }),
            None => {
                s.vmacs.insert(name.to_string(), (parent.to_string(), mac));
                s.vmacs_created.push(name.to_string());
                Ok(true)
            }
        })
    }

    fn vmac_ensure_v6(
        &mut self,
        name: &str,
        parent: &str,
        mac: [u8; 6],
        source: Option<std::net::Ipv6Addr>,
    ) -> Result<bool, KernelError> {
        let created = self.vmac_ensure(name, parent, mac)?;
        self.with(|s| {
            s.vmac_sources.insert(name.to_string(), source);
            Ok(created)
        })
    }

    fn vmac_delete(&mut self, name: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        self.with(|s| match s.vmacs.get(name) {
            None => Ok(false),
            Some((p, m)) if p.is_empty() || *m != mac => Err(KernelError::Refused {
                op: format!("remove virtual-MAC interface {name}"),
                message: format!("interface {name} is not a private macvlan"),
            }),
            Some(_) => {
                s.vmacs.remove(name);
                // The kernel removes a link's addresses with it.
                s.addresses.remove(name);
                s.vmacs_deleted.push(name.to_string());
                Ok(true)
            }
        })
    }
}

#[cfg(test)]
mod vmac_tests {
    use super::*;

    /// The in-memory kernel models virtual-MAC interfaces as the real one: creation is
    /// idempotent for the same parent and MAC, anything else of the name is refused, and removal
    /// takes the interface's addresses with it.
    #[test]
    fn virtual_mac_interfaces_are_idempotent_and_owned() {
        let mut k = MemoryKernel::default();
        let mac = [0, 0, 0x5e, 0, 1, 51];
        assert_eq!(k.vmac_ensure("vrrp.51", "eth0", mac), Ok(true));
        assert_eq!(k.vmac_ensure("vrrp.51", "eth0", mac), Ok(false));
        assert!(matches!(
            k.vmac_ensure("vrrp.51", "eth1", mac),
            Err(KernelError::Refused { .. })
        ));
        let vip: VirtualAddress = "192.0.2.1/32".parse().unwrap();
        assert_eq!(k.address_add("vrrp.51", &vip), Ok(true));
        assert!(matches!(
            k.vmac_delete("vrrp.51", [0, 0, 0x5e, 0, 1, 52]),
            Err(KernelError::Refused { .. })
        ));
        assert_eq!(k.vmac_delete("vrrp.51", mac), Ok(true));
        assert_eq!(k.vmac_delete("vrrp.51", mac), Ok(false));
        k.with(|s| {
            assert!(!s.addresses.contains_key("vrrp.51"));
            assert_eq!(s.vmacs_created, ["vrrp.51"]);
            assert_eq!(s.vmacs_deleted, ["vrrp.51"]);
            // A foreign interface of a name (no parent) is never removed.
            s.vmacs.insert("eth9".into(), (String::new(), mac));
        });
        assert!(k.vmac_delete("eth9", mac).is_err());
    }
}
