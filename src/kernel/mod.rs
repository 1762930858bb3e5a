//! The privileged boundary: every kernel operation lbd performs goes through [`Kernel`].
//!
//! One implementation talks netlink to the real kernel; [`memory::MemoryKernel`] keeps a table in
//! memory for the actor's tests. Only the data-plane actor holds a `Kernel`.
//!
//! - [`netlink`]: `NetlinkKernel`, the real implementation (IPVS over generic netlink through
//!   [`crate::ipvs`], virtual addresses over rtnetlink through [`rtnl`], gratuitous ARP).
//! - [`memory`]: `MemoryKernel`, a table in memory for tests.
//! - [`nlsocket`]: the netlink socket both protocols share, and the reading of acks and errors.
//! - [`rtnl`]: rtnetlink address, route and rule add/del, and link events.
//! - [`interface`]: interface reads (index, MAC, up, IPv4 addresses) over rtnetlink.
//! - [`garp`]: gratuitous ARP on an AF_PACKET socket.
//! - [`ndisc`]: unsolicited IPv6 Neighbor Advertisements, on the same socket.
//! - [`vmac`]: VRRP virtual-MAC interfaces (macvlan, keepalived's `use_vmac`).

pub mod garp;
pub mod interface;
pub mod memory;
pub mod ndisc;
pub mod netlink;
pub mod nlsocket;
pub mod rtnl;
pub mod vmac;

use crate::ipvs::table::{IpvsOp, IpvsTable, ServiceKey, SyncDaemon, SyncRole, Timeouts};
use crate::model::{VirtualAddress, VirtualRoute, VirtualRule};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// IPVS is not there at all (no ip_vs in this kernel, no CAP_NET_ADMIN): lbd runs degraded.
    #[error("IPVS is unavailable: {0}")]
    Unavailable(String),
    /// The kernel refused one operation.
    #[error("the kernel refused {op}: {message}")]
    Refused { op: String, message: String },
    /// The kernel has no such service (ESRCH), for a command that names one.
    #[error("the kernel's IPVS table has no service {0}")]
    NoSuchService(String),
    /// Talking to the kernel failed (socket error, malformed reply).
    #[error("netlink: {0}")]
    Io(String),
}

/// What one `ipvs_apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Operations the kernel accepted.
    pub applied: usize,
    /// sendmsg calls it took.
    pub round_trips: usize,
    /// Operations the kernel refused (e.g. a scheduler this kernel lacks), with its reason. One
    /// refused service does not hold back the others.
    pub refused: Vec<String>,
}

pub trait Kernel: Send + 'static {
    /// The whole IPVS table as the kernel has it.
    fn ipvs_dump(&mut self) -> Result<IpvsTable, KernelError>;

    /// Applies `ops` in order. An operation the kernel refuses is reported in
    /// [`ApplyReport::refused`] and the rest still applied; an `Err` means the kernel could not be
    /// talked to at all midway (the caller re-dumps and reconciles again, so a partial apply
    /// converges on the next pass).
    fn ipvs_apply(&mut self, ops: &[IpvsOp]) -> Result<ApplyReport, KernelError>;

    /// Zeroes the traffic counters (`ipvsadm -Z`, IPVS_CMD_ZERO) of every service (`None`) or of
    /// one; [`KernelError::NoSuchService`] when the kernel does not have it.
    fn ipvs_zero(&mut self, service: Option<&ServiceKey>) -> Result<(), KernelError>;

    /// Sets the connection timeouts (`ipvsadm --set`, IPVS_CMD_SET_CONFIG); a timeout of 0 is
    /// left as the kernel has it.
    fn ipvs_set_timeouts(&mut self, t: &Timeouts) -> Result<(), KernelError>;

    /// The connection-sync daemons the kernel runs in this network namespace (IPVS_CMD_GET_DAEMON,
    /// `ipvsadm -L --daemon`): at most one per role.
    fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError>;

    /// Starts a connection-sync daemon (IPVS_CMD_NEW_DAEMON, `ipvsadm --start-daemon`); refused
    /// when one of that role runs already.
    fn sync_daemon_start(&mut self, d: &SyncDaemon) -> Result<(), KernelError>;

    /// Stops the connection-sync daemon of `role` (IPVS_CMD_DEL_DAEMON, `ipvsadm --stop-daemon`).
    /// `Ok(false)`: none was running.
    fn sync_daemon_stop(&mut self, role: SyncRole) -> Result<bool, KernelError>;

    /// Adds a virtual address to `ifname`. `Ok(false)`: it was there already.
    fn address_add(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError>;

    /// Removes a virtual address from `ifname`. `Ok(false)`: it was not there.
    fn address_del(&mut self, ifname: &str, addr: &VirtualAddress) -> Result<bool, KernelError>;

    /// Adds (`add`) or removes a virtual route (keepalived `virtual_routes`). `Ok(false)`: it
    /// was already there, or was not.
    fn route(&mut self, add: bool, r: &VirtualRoute) -> Result<bool, KernelError>;

    /// Adds (`add`) or removes a policy rule (keepalived `virtual_rules`). `Ok(false)`: it was
    /// already there, or was not.
    fn rule(&mut self, add: bool, r: &VirtualRule) -> Result<bool, KernelError>;

    /// Sends `count` gratuitous ARPs for `addr` out of `ifname`, back to back; for an IPv6
    /// address, `count` unsolicited Neighbor Advertisements ([`ndisc`]).
    fn garp(&mut self, ifname: &str, addr: &VirtualAddress, count: u32)
        -> Result<u32, KernelError>;

    /// Another handle onto the same kernel, with its own sockets: the VRRP thread holds one so
    /// that a takeover never waits behind a large IPVS apply.
    fn sibling(&self) -> Box<dyn Kernel>;

    /// Makes sure the VRRP virtual-MAC interface `name` (a private macvlan over `parent` with
    /// address `mac`, [`vmac`]) exists, is set up for VRRP and is up. `Ok(true)`: created now;
    /// `Ok(false)`: there already (adopted). An interface of that name that is something else
    /// is refused and left alone.
    fn vmac_ensure(&mut self, name: &str, parent: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        let _ = (name, parent, mac);
        Err(KernelError::Unavailable(
            "this kernel handle has no virtual-MAC interfaces".into(),
        ))
    }

    /// An IPv6 group's virtual-MAC interface (as [`Kernel::vmac_ensure`], set up for IPv6,
    /// [`vmac::ensure_v6`]): `source`, the link-local address the group's adverts come from,
    /// is added to it (`None`: adverts leave from `parent`, `vmac_xmit_base`).
    fn vmac_ensure_v6(
        &mut self,
        name: &str,
        parent: &str,
        mac: [u8; 6],
        source: Option<std::net::Ipv6Addr>,
    ) -> Result<bool, KernelError> {
        let _ = (name, parent, mac, source);
        Err(KernelError::Unavailable(
            "this kernel handle has no virtual-MAC interfaces".into(),
        ))
    }

    /// Removes the virtual-MAC interface `name` if it is one with `mac`. `Ok(false)`: there was
    /// none.
    fn vmac_delete(&mut self, name: &str, mac: [u8; 6]) -> Result<bool, KernelError> {
        let _ = (name, mac);
        Err(KernelError::Unavailable(
            "this kernel handle has no virtual-MAC interfaces".into(),
        ))
    }
}
