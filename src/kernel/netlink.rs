//! The real kernel: IPVS over generic netlink (`crate::ipvs`), converted to and from the data
//! plane's domain types.
//!
//! The socket is opened lazily and re-opened after an error, so a kernel that gains IPVS later
//! (module loaded by hand) is picked up on the actor's next retry.

use std::net::IpAddr;

use super::garp::{garp_frame, PacketSocket};
use super::interface;
use super::ndisc;
use super::rtnl::AddressSocket;
use super::{ApplyReport, Kernel, KernelError};
use crate::ipvs::table::{
    DestKey, DestSpec, FamilyKey, IpvsOp, IpvsService, IpvsTable, ProtocolKey, ServiceKey,
    ServiceSpec, SyncDaemon, SyncRole, Timeouts,
};
use crate::ipvs::uapi::*;
use crate::ipvs::wire::DaemonAttrs;
use crate::ipvs::{DestAttrs, IpvsError, IpvsSocket, SvcAttrs};
use crate::model::Forwarding;
use crate::model::{VirtualAddress, VirtualRoute, VirtualRule};

#[derive(Default)]
pub struct NetlinkKernel {
    sock: Option<IpvsSocket>,
    addr: Option<AddressSocket>,
    packet: Option<PacketSocket>,
}

impl NetlinkKernel {
    pub fn new() -> Self {
        NetlinkKernel::default()
    }

    /// Runs `f` on the socket; an I/O failure drops it, so the next call opens a fresh one.
    fn with_sock<T>(
        &mut self,
        f: impl FnOnce(&mut IpvsSocket) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        let r = self.sock().and_then(f);
        if matches!(r, Err(KernelError::Io(_))) {
            self.sock = None;
        }
        r
    }

    fn sock(&mut self) -> Result<&mut IpvsSocket, KernelError> {
        if self.sock.is_none() {
            self.sock = Some(IpvsSocket::open().map_err(kernel_error)?);
        }
        self.sock
            .as_mut()
            .ok_or_else(|| KernelError::Io("no socket".into()))
    }
}

fn kernel_error(e: IpvsError) -> KernelError {
    match e {
        IpvsError::Unavailable(m) => KernelError::Unavailable(m),
        IpvsError::Refused { op, source } => {
            if source.raw_os_error() == Some(libc::EPERM) {
                KernelError::Unavailable(format!("{op}: {source} (lbd needs CAP_NET_ADMIN)"))
            } else {
                KernelError::Refused {
                    op: op.to_string(),
                    message: source.to_string(),
                }
            }
        }
        other => KernelError::Io(other.to_string()),
    }
}

fn af(f: FamilyKey) -> u16 {
    match f {
        FamilyKey::Ipv4 => AF_INET,
        FamilyKey::Ipv6 => AF_INET6,
    }
}

fn key_family(k: &ServiceKey) -> FamilyKey {
    match k {
        ServiceKey::Addr { address, .. } => match address {
            IpAddr::V4(_) => FamilyKey::Ipv4,
            IpAddr::V6(_) => FamilyKey::Ipv6,
        },
        ServiceKey::Fwmark { family, .. } => *family,
    }
}

/// The wire form of a service key (and, with `spec`, its settings).
pub fn svc_attrs(k: &ServiceKey, spec: Option<&ServiceSpec>) -> SvcAttrs {
    let family = key_family(k);
    let (protocol, addr, port, fwmark) = match *k {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => (
            match protocol {
                ProtocolKey::Tcp => IPPROTO_TCP,
                ProtocolKey::Udp => IPPROTO_UDP,
                ProtocolKey::Sctp => IPPROTO_SCTP,
            },
            Some(address),
            port,
            0,
        ),
        ServiceKey::Fwmark { mark, .. } => (0, None, 0, mark),
    };
    let netmask = match (family, spec) {
        // IPv4 carries a mask, IPv6 a prefix length (ip_vs_ctl.c).
        (FamilyKey::Ipv4, Some(s)) => prefix_to_mask(s.netmask_prefix),
        (FamilyKey::Ipv6, Some(s)) => u32::from(s.netmask_prefix),
        (FamilyKey::Ipv4, None) => u32::MAX,
        (FamilyKey::Ipv6, None) => 128,
    };
    SvcAttrs {
        af: af(family),
        protocol,
        addr,
        port,
        fwmark,
        sched_name: spec.map(|s| s.scheduler.clone()).unwrap_or_default(),
        flags: spec.map_or(0, |s| s.flags),
        timeout: spec.map_or(0, |s| s.timeout),
        netmask,
        stats: None,
    }
}

fn prefix_to_mask(p: u8) -> u32 {
    if p == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(p.min(32)))
    }
}

fn fwd_method(f: Forwarding) -> u32 {
    match f {
        Forwarding::Dr => IP_VS_CONN_F_DROUTE,
        Forwarding::Nat => IP_VS_CONN_F_MASQ,
        Forwarding::Tun => IP_VS_CONN_F_TUNNEL,
    }
}

fn dest_attrs(k: &DestKey, spec: Option<&DestSpec>) -> DestAttrs {
    DestAttrs {
        addr: k.address,
        port: k.port,
        fwd_method: spec.map_or(IP_VS_CONN_F_DROUTE, |s| fwd_method(s.forwarding)),
        weight: spec.map_or(0, |s| s.weight),
        u_thresh: spec.map_or(0, |s| s.upper_threshold),
        l_thresh: spec.map_or(0, |s| s.lower_threshold),
        ..DestAttrs::default()
    }
}

/// A dumped service as the domain sees it; `None` for one lbd cannot represent (it is then
/// foreign by construction and left alone).
pub fn from_wire(s: &SvcAttrs) -> Option<(ServiceKey, ServiceSpec)> {
    let family = match s.af {
        AF_INET => FamilyKey::Ipv4,
        AF_INET6 => FamilyKey::Ipv6,
        _ => return None,
    };
    let key = if s.fwmark != 0 {
        ServiceKey::Fwmark {
            family,
            mark: s.fwmark,
        }
    } else {
        ServiceKey::Addr {
            protocol: match s.protocol {
                IPPROTO_TCP => ProtocolKey::Tcp,
                IPPROTO_UDP => ProtocolKey::Udp,
                IPPROTO_SCTP => ProtocolKey::Sctp,
                _ => return None,
            },
            address: s.addr?,
            port: s.port,
        }
    };
    let netmask_prefix = match family {
        FamilyKey::Ipv4 => s.netmask.count_ones() as u8,
        FamilyKey::Ipv6 => s.netmask.min(128) as u8,
    };
    Some((
        key,
        ServiceSpec {
            scheduler: s.sched_name.clone(),
            // The kernel reports its own HASHED bit; it is not a setting.
            flags: s.flags & !IP_VS_SVC_F_HASHED,
            timeout: s.timeout,
            netmask_prefix,
        },
    ))
}

fn sync_state(r: SyncRole) -> u32 {
    match r {
        SyncRole::Master => IP_VS_STATE_MASTER,
        SyncRole::Backup => IP_VS_STATE_BACKUP,
    }
}

/// A sync daemon in wire terms, for IPVS_CMD_NEW_DAEMON (options left `None` are left out).
pub fn daemon_attrs(d: &SyncDaemon) -> DaemonAttrs {
    DaemonAttrs {
        state: sync_state(d.role),
        mcast_ifn: d.interface.clone(),
        sync_id: u32::from(d.sync_id),
        sync_maxlen: d.maxlen.unwrap_or(0),
        mcast_group: d.group,
        mcast_port: d.port.unwrap_or(0),
        mcast_ttl: d.ttl.unwrap_or(0),
    }
}

/// A dumped daemon in lbd's terms; `None` for a state that is neither master nor backup or a
/// sync id out of the protocol's byte.
pub fn daemon_from_wire(d: &DaemonAttrs) -> Option<SyncDaemon> {
    let role = match d.state {
        IP_VS_STATE_MASTER => SyncRole::Master,
        IP_VS_STATE_BACKUP => SyncRole::Backup,
        _ => return None,
    };
    Some(SyncDaemon {
        role,
        interface: d.mcast_ifn.clone(),
        sync_id: u8::try_from(d.sync_id).ok()?,
        maxlen: (d.sync_maxlen != 0).then_some(d.sync_maxlen),
        group: d.mcast_group,
        port: (d.mcast_port != 0).then_some(d.mcast_port),
        ttl: (d.mcast_ttl != 0).then_some(d.mcast_ttl),
    })
}

fn forwarding(m: u32) -> Forwarding {
    match m & IP_VS_CONN_F_FWD_MASK {
        IP_VS_CONN_F_MASQ => Forwarding::Nat,
        IP_VS_CONN_F_TUNNEL => Forwarding::Tun,
        _ => Forwarding::Dr,
    }
}

fn io_error(what: &str, e: std::io::Error) -> KernelError {
    os_error(what, e.raw_os_error(), e.to_string())
}

/// An error with its errno (which says whether lbd lacks a capability) and its text (with the
/// kernel's extended ack, for a refusal).
fn os_error(what: &str, errno: Option<i32>, e: String) -> KernelError {
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => KernelError::Unavailable(format!(
            "{what}: {e} (lbd needs CAP_NET_ADMIN and CAP_NET_RAW)"
        )),
        _ => KernelError::Refused {
            op: what.to_string(),
            message: e,
        },
    }
}

/// A refusal (the kernel's, or an interface lbd will not touch) or an I/O failure.
fn vmac_error(what: &str, e: std::io::Error) -> KernelError {
    match e.kind() {
        std::io::ErrorKind::AlreadyExists
        | std::io::ErrorKind::NotFound
        | std::io::ErrorKind::PermissionDenied
        | std::io::ErrorKind::InvalidInput => KernelError::Refused {
            op: what.to_string(),
            message: e.to_string(),
        },
        _ => KernelError::Io(format!("{what}: {e}")),
    }
}

impl NetlinkKernel {
    fn address(
        &mut self,
        add: bool,
        ifname: &str,
        a: &VirtualAddress,
    ) -> Result<bool, KernelError> {
        let what = if add { "add address" } else { "remove address" };
        let index = interface::index(ifname)
            .map_err(|e| io_error(&format!("{what} {a} on {ifname}"), e))?;
        if self.addr.is_none() {
            self.addr = Some(AddressSocket::open().map_err(|e| io_error("rtnetlink socket", e))?);
        }
        let Some(sock) = self.addr.as_mut() else {
            return Err(KernelError::Io("no rtnetlink socket".into()));
        };
        let r = if add {
            sock.add(index, a)
        } else {
            sock.del(index, a)
        };
        r.map_err(|e| {
            // A socket error leaves the socket in doubt: open a new one next time.
            self.addr = None;
            os_error(
                &format!("{what} {a} on {ifname}"),
                e.raw_os_error(),
                e.to_string(),
            )
        })
    }
}

impl NetlinkKernel {
    /// The rtnetlink socket, opened on first use; an error closes it (the next call opens a
    /// new one).
    fn rtnl<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut AddressSocket) -> Result<T, crate::kernel::nlsocket::Refusal>,
    ) -> Result<T, KernelError> {
        if self.addr.is_none() {
            self.addr = Some(AddressSocket::open().map_err(|e| io_error("rtnetlink socket", e))?);
        }
        let Some(sock) = self.addr.as_mut() else {
            return Err(KernelError::Io("no rtnetlink socket".into()));
        };
        f(sock).map_err(|e| {
            self.addr = None;
            os_error(what, e.raw_os_error(), e.to_string())
        })
    }
}

impl Kernel for NetlinkKernel {
    fn route(&mut self, add: bool, r: &VirtualRoute) -> Result<bool, KernelError> {
        let what = format!("{} route {r}", if add { "add" } else { "remove" });
        let oif = match &r.dev {
            Some(d) => Some(interface::index(d).map_err(|e| io_error(&what, e))?),
            None => None,
        };
        self.rtnl(&what, |s| s.route(add, r, oif))
    }

    fn rule(&mut self, add: bool, r: &VirtualRule) -> Result<bool, KernelError> {
        let what = format!("{} rule {r}", if add { "add" } else { "remove" });
        self.rtnl(&what, |s| s.rule(add, r))
    }

    fn address_add(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError> {
        self.address(true, ifname, addr)
    }

    fn address_del(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError> {
        self.address(false, ifname, addr)
    }

    fn garp(
        &mut self,
        ifname: &str,
        addr: &VirtualAddress,
        count: u32,
    ) -> Result<u32, KernelError> {
        let what = match addr.address {
            IpAddr::V4(_) => format!("gratuitous ARP for {addr} on {ifname}"),
            IpAddr::V6(_) => format!("unsolicited neighbour advertisement for {addr} on {ifname}"),
        };
        let info = interface::info(ifname).map_err(|e| io_error(&what, e))?;
        if self.packet.is_none() {
            self.packet = Some(PacketSocket::open().map_err(|e| io_error("packet socket", e))?);
        }
        let Some(sock) = self.packet.as_ref() else {
            return Err(KernelError::Io("no packet socket".into()));
        };
        match addr.address {
            IpAddr::V4(v4) => {
                let frame = garp_frame(info.mac, v4);
                for _ in 0..count {
                    sock.send(info.index, &frame)
                        .map_err(|e| io_error(&what, e))?;
                }
            }
            IpAddr::V6(v6) => {
                let frame = ndisc::na_frame(info.mac, v6, ndisc::forwarding(ifname));
                for _ in 0..count {
                    sock.send_to(info.index, ndisc::ETH_P_IPV6, ndisc::ALL_NODES_MAC, &frame)
                        .map_err(|e| io_error(&what, e))?;
                }
            }
        }
        Ok(count)
    }

    fn sibling(&self) -> Box<dyn Kernel> {
        Box::new(NetlinkKernel::new())
    }

    fn vmac_ensure(&mut self, name: &str, parent: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        super::vmac::ensure(name, parent, mac)
            .map_err(|e| vmac_error(&format!("virtual-MAC interface {name} on {parent}"), e))
    }

    fn vmac_ensure_v6(
        &mut self,
        name: &str,
        parent: &str,
        mac: [u8; 6],
        source: Option<std::net::Ipv6Addr>,
    ) -> Result<bool, KernelError> {
        super::vmac::ensure_v6(name, parent, mac, source)
            .map_err(|e| vmac_error(&format!("virtual-MAC interface {name} on {parent}"), e))
    }

    fn vmac_delete(&mut self, name: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        super::vmac::delete(name, mac)
            .map_err(|e| vmac_error(&format!("remove virtual-MAC interface {name}"), e))
    }

    fn ipvs_zero(&mut self, service: Option<&ServiceKey>) -> Result<(), KernelError> {
        let attrs = service.map(|k| svc_attrs(k, None));
        self.with_sock(|sock| {
            sock.zero(attrs.as_ref()).map_err(|e| match (&e, service) {
                (IpvsError::Refused { source, .. }, Some(k))
                    if source.raw_os_error() == Some(libc::ESRCH) =>
                {
                    KernelError::NoSuchService(k.to_string())
                }
                _ => kernel_error(e),
            })
        })
    }

    fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        self.with_sock(|sock| sock.daemons().map_err(kernel_error))
            .map(|ds| ds.iter().filter_map(daemon_from_wire).collect())
    }

    fn sync_daemon_start(&mut self, d: &SyncDaemon) -> Result<(), KernelError> {
        let attrs = daemon_attrs(d);
        self.with_sock(|sock| sock.new_daemon(&attrs).map_err(kernel_error))
    }

    fn sync_daemon_stop(&mut self, role: SyncRole) -> Result<bool, KernelError> {
        self.with_sock(|sock| match sock.del_daemon(sync_state(role)) {
            Ok(()) => Ok(true),
            Err(IpvsError::Refused { source, .. })
                if source.raw_os_error() == Some(libc::ESRCH) =>
            {
                Ok(false)
            }
            Err(e) => Err(kernel_error(e)),
        })
    }

    fn ipvs_set_timeouts(&mut self, t: &Timeouts) -> Result<(), KernelError> {
        self.with_sock(|sock| {
            sock.set_timeouts(t.tcp_secs, t.tcp_fin_secs, t.udp_secs)
                .map_err(kernel_error)
        })
    }

    fn ipvs_dump(&mut self) -> Result<IpvsTable, KernelError> {
        let r = (|| {
            let sock = self.sock()?;
            let mut table = IpvsTable::default();
            for s in sock.services().map_err(kernel_error)? {
                let Some((key, spec)) = from_wire(&s) else {
                    continue;
                };
                let mut dests = std::collections::BTreeMap::new();
                let mut counters = crate::ipvs::table::ServiceCounters {
                    stats: s.stats.unwrap_or_default(),
                    dests: std::collections::BTreeMap::new(),
                };
                for d in sock.dests(&s).map_err(kernel_error)? {
                    let dk = DestKey {
                        address: d.addr,
                        port: d.port,
                    };
                    counters.dests.insert(
                        dk,
                        crate::ipvs::table::DestCounters {
                            active_conns: d.active_conns,
                            inactive_conns: d.inact_conns,
                            persistent_conns: d.persist_conns,
                            stats: d.stats.unwrap_or_default(),
                        },
                    );
                    dests.insert(
                        dk,
                        DestSpec {
                            forwarding: forwarding(d.fwd_method),
                            weight: d.weight,
                            upper_threshold: d.u_thresh,
                            lower_threshold: d.l_thresh,
                        },
                    );
                }
                table.services.insert(key, IpvsService { spec, dests });
                table.counters.insert(key, counters);
            }
            table.timeouts =
                sock.timeouts()
                    .ok()
                    .map(|(tcp, fin, udp)| crate::ipvs::table::Timeouts {
                        tcp_secs: tcp,
                        tcp_fin_secs: fin,
                        udp_secs: udp,
                    });
            Ok(table)
        })();
        if r.is_err() {
            self.sock = None;
        }
        r
    }

    fn ipvs_apply(&mut self, ops: &[IpvsOp]) -> Result<ApplyReport, KernelError> {
        use crate::ipvs::socket::Command;
        // Domain to wire: the command itself is chosen in one place, `Command`.
        let reqs: Vec<Command> = ops
            .iter()
            .map(|op| match op {
                IpvsOp::AddService(k, s) => Command::NewService(svc_attrs(k, Some(s))),
                IpvsOp::EditService(k, s) => Command::SetService(svc_attrs(k, Some(s))),
                IpvsOp::DelService(k) => Command::DelService(svc_attrs(k, None)),
                IpvsOp::AddDest(k, d, s) => {
                    Command::NewDest(svc_attrs(k, None), dest_attrs(d, Some(s)))
                }
                IpvsOp::EditDest(k, d, s) => {
                    Command::SetDest(svc_attrs(k, None), dest_attrs(d, Some(s)))
                }
                IpvsOp::DelDest(k, d) => Command::DelDest(svc_attrs(k, None), dest_attrs(d, None)),
            })
            .collect();
        let r = self
            .sock()
            .and_then(|sock| sock.batch(reqs).map_err(kernel_error));
        match r {
            Ok((outcomes, sends)) => {
                let mut report = ApplyReport {
                    round_trips: sends,
                    ..ApplyReport::default()
                };
                for (op, o) in ops.iter().zip(outcomes) {
                    match o {
                        None => report.applied += 1,
                        Some(e) if e.raw_os_error() == Some(libc::EPERM) => {
                            return Err(KernelError::Unavailable(format!(
                                "{e} (lbd needs CAP_NET_ADMIN)"
                            )));
                        }
                        Some(e) => report.refused.push(format!("{}: {e}", describe(op))),
                    }
                }

                Ok(report)
            }
            Err(e) => {
                self.sock = None;
                Err(e)
            }
        }
    }
}

/// The service (and destination) an operation is about, for error messages.
fn describe(op: &IpvsOp) -> String {
    match op {
        IpvsOp::AddService(k, s) | IpvsOp::EditService(k, s) => format!("{k} ({})", s.scheduler),
        IpvsOp::DelService(k) => k.to_string(),
        IpvsOp::AddDest(k, d, _) | IpvsOp::EditDest(k, d, _) | IpvsOp::DelDest(k, d) => {
            format!("{k} -> {}:{}", d.address, d.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_key_and_spec_survive_the_wire_form() {
        let k = ServiceKey::Addr {
            protocol: ProtocolKey::Udp,
            address: "192.168.10.100".parse().unwrap(),
            port: 53,
        };
        let spec = ServiceSpec {
            scheduler: "wlc".into(),
            flags: 1,
            timeout: 300,
            netmask_prefix: 24,
        };
        let w = svc_attrs(&k, Some(&spec));
        assert_eq!(w.netmask, 0xffff_ff00);
        let mut dumped = w.clone();
        dumped.flags |= IP_VS_SVC_F_HASHED;
        assert_eq!(from_wire(&dumped), Some((k, spec)));
        let k6 = ServiceKey::Fwmark {
            family: FamilyKey::Ipv6,
            mark: 7,
        };
        let spec6 = ServiceSpec {
            scheduler: "sh".into(),
            flags: 0,
            timeout: 0,
            netmask_prefix: 64,
        };
        assert_eq!(from_wire(&svc_attrs(&k6, Some(&spec6))), Some((k6, spec6)));
        assert_eq!(prefix_to_mask(0), 0);
        assert_eq!(prefix_to_mask(32), u32::MAX);
    }

    #[test]
    fn a_sync_daemon_survives_the_wire_form() {
        let d = SyncDaemon {
            role: SyncRole::Backup,
            interface: "eth1".into(),
            sync_id: 200,
            maxlen: Some(1400),
            group: Some("ff02::81".parse().unwrap()),
            port: Some(9000),
            ttl: None,
        };
        let w = daemon_attrs(&d);
        assert_eq!(
            (w.state, w.sync_id, w.mcast_ttl),
            (IP_VS_STATE_BACKUP, 200, 0)
        );
        assert_eq!(daemon_from_wire(&w), Some(d));
        // A state lbd cannot name, or a sync id beyond a byte, is not a daemon of lbd's terms.
        let odd = DaemonAttrs {
            state: 3,
            ..w.clone()
        };
        assert_eq!(daemon_from_wire(&odd), None);
        let wide = DaemonAttrs { sync_id: 256, ..w };
        assert_eq!(daemon_from_wire(&wide), None);
    }
}
