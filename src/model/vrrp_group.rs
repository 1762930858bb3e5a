//! VRRP groups (keepalived's `vrrp_instance`): which directors share which virtual addresses.
//!
//! A group is the same on every director; what differs per director (priority, interface,
//! initial state, source address) lives in [`VrrpNode`] entries keyed by node name, like
//! keepalived's `@node` conditional lines. `lbd serve --node-name` picks this node's entry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::units::{Priority, Vrid};
use super::virtual_server::{Family, Id};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VrrpGroup {
    #[serde(default)]
    #[schema(read_only)]
    pub id: Id,
    /// Unique name (keepalived `vrrp_instance NAME`).
    pub name: String,
    pub vrid: Vrid,
    /// 2 (RFC 3768) or 3 (RFC 5798). Defaults to 2, keepalived's default.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Advertisement interval in milliseconds: whole seconds (1-255 s) for v2, a multiple of
    /// 10 ms (10 ms - 40.95 s) for v3.
    #[serde(default = "default_advert_interval_ms")]
    pub advert_interval_ms: u32,
    /// Simple password authentication (RFC 2338 type 1), v2 only, at most 8 bytes. A secret:
    /// write-only (reads show `auth_pass_set`); a write without it keeps the stored one, `""`
    /// clears it. Only the keepalived export contains it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(write_only)]
    pub auth_pass: Option<String>,
    /// The virtual addresses this group moves between directors ("addr" or "addr/prefix").
    #[schema(value_type = Vec<String>, example = json!(["192.168.10.100/32"]))]
    pub virtual_addresses: Vec<VirtualAddress>,
    /// A higher-priority backup takes over from a lower-priority master (keepalived default).
    #[serde(default = "default_true")]
    pub preempt: bool,
    #[serde(default)]
    pub preempt_delay_ms: u32,
    /// Unicast peers instead of multicast to 224.0.0.18.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub unicast_peers: Vec<IpAddr>,
    #[serde(default)]
    pub garp: GarpSettings,
    /// Interfaces whose loss puts this group in Fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interfaces: Vec<String>,
    /// Interfaces tracked with a weight (keepalived `track_interface { eth1 weight -20 }`):
    /// see [`TrackWeight`]. Weight 0 is the same as listing the interface in
    /// `track_interfaces`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    pub track_interfaces_weighted: Vec<TrackedInterface>,
    /// Virtual servers whose health moves this group (lbd's own; keepalived has no
    /// equivalent): one counts as failing while none of its real servers is healthy (with
    /// `quorum`, while its quorum is lost).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    pub track_virtual_servers: Vec<TrackedVirtualServer>,
    /// Commands run periodically whose result moves this group (keepalived `vrrp_script` and
    /// `track_script`, defined here rather than globally).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    pub track_scripts: Vec<TrackScript>,
    /// Commands run on state changes (keepalived `notify_master` and friends).
    #[serde(
        default,
        skip_serializing_if = "Notify::is_empty",
        deserialize_with = "object"
    )]
    pub notify: Notify,
    /// Per-director values, one entry per node name.
    #[serde(default)]
    pub nodes: Vec<VrrpNode>,
    /// keepalived `use_vmac`: the virtual addresses live on a macvlan interface (mode private)
    /// over each node's interface whose MAC is the VRRP virtual MAC, 00:00:5e:00:01:VRID (RFC
    /// 5798 section 7.3), so hosts' neighbour entries for them never change on a failover.
    /// lbd creates the interface (named `vmac_name`) and removes it with the group; a stop or
    /// restart of lbd leaves it. IPv4 groups only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_vmac: bool,
    /// The macvlan's name (keepalived `use_vmac NAME`); default `vrrp.VRID`. At most 15 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "vrrp.51")]
    pub vmac_name: Option<String>,
    /// keepalived `vmac_xmit_base`: adverts are sent and received on the node's interface (its
    /// own MAC) rather than on the macvlan; the addresses and gratuitous ARPs stay on the
    /// macvlan. Required with `unicast_peers`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub vmac_xmit_base: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The VRRP virtual MAC of `vrid` for `family` (RFC 5798 section 7.3): 00-00-5E-00-01-{VRID}
/// for IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub fn virtual_mac(family: Family, vrid: u8) -> [u8; 6] {
    let f = match family {
        Family::Ipv4 => 0x01,
        Family::Ipv6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, f, vrid]
}

/// Gratuitous ARP after becoming master: a burst, a repeat burst after a delay, then a periodic
/// refresh (keepalived's garp_master_repeat / garp_master_delay / garp_master_refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GarpSettings {
    /// GARPs per burst.
    #[serde(default = "default_garp_count")]
    pub count: u32,
    /// Delay before the second burst (0: no second burst).
    #[serde(default = "default_garp_repeat_delay_ms")]
    pub repeat_delay_ms: u32,
    /// Periodic refresh while master (absent or 0: off). On by default: switches forget.
    #[serde(default = "default_garp_refresh_interval_ms")]
    pub refresh_interval_ms: Option<u32>,
    /// Delay between two gratuitous ARPs of this group sent on its interface (keepalived
    /// `vrrp_garp_interval` in `global_defs`, or `garp_interval` of a `garp_group` naming the
    /// interface); 0: back to back. The VRRP thread schedules them; it never sleeps.
    #[serde(default)]
    pub interval_ms: u32,
    /// The same for unsolicited IPv6 neighbour advertisements (keepalived
    /// `vrrp_gna_interval`, a `garp_group`'s `gna_interval`).
    #[serde(default)]
    pub na_interval_ms: u32,
}

impl Default for GarpSettings {
    fn default() -> Self {
        GarpSettings {
            count: default_garp_count(),
            repeat_delay_ms: default_garp_repeat_delay_ms(),
            refresh_interval_ms: default_garp_refresh_interval_ms(),
            interval_ms: 0,
            na_interval_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum InitialState {
    Master,
    #[default]
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VrrpNode {
    /// The director's node name (`lbd serve --node-name`).
    pub node: String,
    pub priority: Priority,
    /// The interface VRRP runs on and the virtual addresses are added to.
    pub interface: String,
    #[serde(default)]
    pub initial_state: InitialState,
    /// Source address for adverts (keepalived `unicast_src_ip`); also the node's own address,
    /// which makes it the address owner when it is one of the virtual addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub unicast_src: Option<IpAddr>,
}

/// A tracked object's weight (keepalived semantics, -253..=253): 0 puts the group in Fault
/// while the object fails; a negative weight lowers the priority by its size while the object
/// fails; a positive one raises it while the object is up. The resulting priority is clamped
/// to 1..=254; an address owner (priority 255) ignores weights.
pub type TrackWeight = i32;

/// An interface tracked with a weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackedInterface {
    pub interface: String,
    /// See [`TrackWeight`]: 0 (the default) means Fault while the link is down.
    #[serde(default)]
    pub weight: TrackWeight,
}

/// A virtual server tracked by a VRRP group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackedVirtualServer {
    /// The virtual server's identity as lbd prints it: `"tcp 192.0.2.1:80"`,
    /// `"udp [2001:db8::1]:53"` or `"fwmark 7 ipv4"`. One that is not configured is unknown: it
    /// counts neither way.
    #[schema(example = "tcp 192.0.2.1:80")]
    pub virtual_server: String,
    /// See [`TrackWeight`]: e.g. -50 lowers the priority by 50 while every real server of the
    /// virtual server is down.
    #[serde(default)]
    pub weight: TrackWeight,
}

/// A periodic check command (keepalived `vrrp_script` + `track_script`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackScript {
    /// Unique in the group; names the script in status and events.
    pub name: String,
    /// An absolute program path and its arguments, split as keepalived splits them (quotes
    /// group), run without a shell, in a process group of its own. Exit 0 is success.
    pub command: String,
    /// How often it runs (keepalived `interval`, default 1 s).
    #[serde(default = "default_script_interval_ms")]
    pub interval_ms: u32,
    /// It is killed (its process group) after this long, which counts as a failure
    /// (keepalived `timeout`; default: the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    /// See [`TrackWeight`].
    #[serde(default)]
    pub weight: TrackWeight,
    /// Successes in a row that make a failing script up (keepalived `rise`, default 1).
    #[serde(default = "default_one")]
    pub rise: u32,
    /// Failures in a row that make an up script failing (keepalived `fall`, default 1).
    #[serde(default = "default_one")]
    pub fall: u32,
}

/// Commands run on this group's state changes, each without a shell, killed at `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Run on becoming master (keepalived `notify_master`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Run on becoming backup (keepalived `notify_backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Run on entering Fault (keepalived `notify_fault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Run when the group stops (keepalived `notify_stop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Run on every change with keepalived's four arguments appended: `INSTANCE`, the group
    /// name, the new state (MASTER, BACKUP, FAULT, STOP) and the priority (keepalived
    /// `notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<String>,
    /// Each command is killed after this long (default 10 s).
    #[serde(default = "default_notify_timeout_ms")]
    pub timeout_ms: u32,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            master: None,
            backup: None,
            fault: None,
            stop: None,
            any: None,
            timeout_ms: default_notify_timeout_ms(),
        }
    }
}

impl Notify {
    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.any.is_none()
            && self.timeout_ms == default_notify_timeout_ms()
    }
}

impl TrackScript {
    /// Whether `other` runs the same way (the weight aside): the same command, interval,
    /// timeout, rise and fall.
    pub fn runs_like(&self, other: &TrackScript) -> bool {
        self.command == other.command
            && self.interval_ms == other.interval_ms
            && self.timeout() == other.timeout()
            && self.rise == other.rise
            && self.fall == other.fall
    }

    /// The timeout in effect: the configured one, or the interval.
    pub fn timeout(&self) -> u32 {
        self.timeout_ms.unwrap_or(self.interval_ms)
    }
}

/// A struct read from a JSON object only: serde's derive also reads a struct from an array of
/// its fields' values, which the schema (an object) does not allow.
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(MapOnly)
    }
}

pub(super) fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    MapOnly::<T>::deserialize(d).map(|m| m.0)
}

fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<MapOnly<T>>::deserialize(d).map(|v| v.into_iter().map(|m| m.0).collect())
}

fn default_script_interval_ms() -> u32 {
    1_000
}
fn default_one() -> u32 {
    1
}
pub fn default_notify_timeout_ms() -> u32 {
    10_000
}

fn default_version() -> u8 {
    2
}
fn default_advert_interval_ms() -> u32 {
    1_000
}
fn default_true() -> bool {
    true
}
fn default_garp_count() -> u32 {
    5
}
fn default_garp_repeat_delay_ms() -> u32 {
    5_000
}
fn default_garp_refresh_interval_ms() -> Option<u32> {
    Some(60_000)
}

impl VrrpGroup {
    pub fn node(&self, name: &str) -> Option<&VrrpNode> {
        self.nodes.iter().find(|n| n.node == name)
    }

    pub fn family(&self) -> Option<Family> {
        self.virtual_addresses
            .first()
            .map(|v| Family::of(&v.address))
    }

    /// The name of the group's virtual-MAC interface when it uses one: `vmac_name`, else
    /// keepalived's default `vrrp.VRID`.
    pub fn vmac_ifname(&self) -> Option<String> {
        self.use_vmac.then(|| {
            self.vmac_name
                .clone()
                .unwrap_or_else(|| format!("vrrp.{}", self.vrid.get()))
        })
    }

    /// The group's virtual MAC (see [`virtual_mac`]).
    pub fn virtual_mac(&self) -> [u8; 6] {
        virtual_mac(self.family().unwrap_or(Family::Ipv4), self.vrid.get())
    }
}

/// An address with its prefix length, written "192.168.10.100/24" (prefix defaults to a host
/// route: /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtualAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl fmt::Display for VirtualAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for VirtualAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let address: IpAddr = addr.trim().parse().map_err(|_| {
            format!("`{s}` is not an IP address (expected \"addr\" or \"addr/prefix\")")
        })?;
        let max = Family::of(&address).max_prefix_len();
        let prefix_len = match len {
            None => max,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: prefix length must be 0..={max}")),
            },
        };
        Ok(VirtualAddress {
            address,
            prefix_len,
        })
    }
}

impl Serialize for VirtualAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VirtualAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_is_read_from_objects_only() {
        let base =
            serde_json::json!({"name": "VI_1", "vrid": 1, "virtual_addresses": ["192.0.2.1"]});
        let with = |k: &str, v: serde_json::Value| {
            let mut g = base.clone();
            g[k] = v;
            serde_json::from_value::<VrrpGroup>(g)
        };
        assert!(with("notify", serde_json::json!([null, null])).is_err());
        assert!(with("track_scripts", serde_json::json!([["chk", "/bin/true"]])).is_err());
        assert!(with(
            "track_interfaces_weighted",
            serde_json::json!([["eth1", 1]])
        )
        .is_err());
        let g = with(
            "track_interfaces_weighted",
            serde_json::json!([{"interface": "eth1", "weight": -20}]),
        )
        .unwrap();
        assert_eq!(g.track_interfaces_weighted[0].weight, -20);
        let g = with("notify", serde_json::json!({"master": "/bin/true"})).unwrap();
        assert_eq!(g.notify.timeout_ms, 10_000);
        assert!(with("notify", serde_json::json!({"mastr": "/bin/true"})).is_err());
        // Absent: the defaults.
        let g: VrrpGroup = serde_json::from_value(base).unwrap();
        assert!(g.notify.is_empty() && g.track_scripts.is_empty());
    }

    #[test]
    fn vmac_fields_default_off_and_name_defaults_to_vrrp_vrid() {
        let base =
            serde_json::json!({"name": "VI_1", "vrid": 51, "virtual_addresses": ["192.0.2.1"]});
        let g: VrrpGroup = serde_json::from_value(base.clone()).unwrap();
        assert!(!g.use_vmac && !g.vmac_xmit_base && g.vmac_name.is_none());
        assert_eq!(g.vmac_ifname(), None);
        // Off fields are not written: a group without a vmac reads as before.
        let out = serde_json::to_value(&g).unwrap();
        assert!(out.get("use_vmac").is_none() && out.get("vmac_xmit_base").is_none());
        let mut on = base.clone();
        on["use_vmac"] = serde_json::json!(true);
        let g: VrrpGroup = serde_json::from_value(on.clone()).unwrap();
        assert_eq!(g.vmac_ifname().as_deref(), Some("vrrp.51"));
        assert_eq!(g.virtual_mac(), [0, 0, 0x5e, 0, 1, 51]);
        on["vmac_name"] = serde_json::json!("vmac51");
        on["vmac_xmit_base"] = serde_json::json!(true);
        let g: VrrpGroup = serde_json::from_value(on).unwrap();
        assert_eq!(g.vmac_ifname().as_deref(), Some("vmac51"));
        assert!(g.vmac_xmit_base);
        let out = serde_json::to_value(&g).unwrap();
        assert_eq!(out["use_vmac"], true);
        assert_eq!(out["vmac_name"], "vmac51");
        assert_eq!(virtual_mac(Family::Ipv6, 255), [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn virtual_address_parses_and_prints() {
        let v: VirtualAddress = "192.168.10.100".parse().unwrap();
        assert_eq!(v.to_string(), "192.168.10.100/32");
        let v: VirtualAddress = "2001:db8::1/64".parse().unwrap();
        assert_eq!(v.prefix_len, 64);
        assert!("192.168.10.100/33".parse::<VirtualAddress>().is_err());
        assert!("nonsense".parse::<VirtualAddress>().is_err());
    }
}
