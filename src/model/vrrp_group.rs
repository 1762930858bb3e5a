//! VRRP groups (keepalived's `vrrp_instance`): which directors share which virtual addresses.
//!
//! A group is the same on every director; what differs per director (priority, interface,
//! initial state, source address) lives in [`VrrpNode`] entries keyed by node name, like
//! keepalived's `@node` conditional lines. `lbd serve --node-name` picks this node's entry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::units::{Priority, Vrid};
use super::virtual_server::{Family, Id};
use super::vrrp_routes::{Scope, VirtualRoute, VirtualRule};

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
    /// The virtual addresses this group moves between directors: "addr" or "addr/prefix", or
    /// an object with keepalived's options (`dev`, `scope`, `label`, `broadcast`).
    #[schema(value_type = Vec<String>, example = json!(["192.168.10.100/32"]))]
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Routes added while this director is master (keepalived `virtual_routes`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    pub virtual_routes: Vec<VirtualRoute>,
    /// Policy rules added while this director is master (keepalived `virtual_rules`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "objects"
    )]
    pub virtual_rules: Vec<VirtualRule>,
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
    /// over each node's interface whose MAC is the VRRP virtual MAC, 00:00:5e:00:01:VRID for
    /// IPv4 and 00:00:5e:00:02:VRID for IPv6 (RFC 5798 section 7.3), so hosts' neighbour
    /// entries for them never change on a failover. lbd creates the interface (named
    /// `vmac_name`) and removes it with the group; a stop or restart of lbd leaves it.
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
/// route: /32 or /128), and keepalived's options for it (`dev`, `scope`, `label`, `brd`).
///
/// In JSON an address without options is that string, one with options an object
/// (`{"address": "192.0.2.10/24", "dev": "eth1", "scope": "link", "label": "eth1:vip"}`); the
/// keepalived import and export, gRPC and the SQLite file use keepalived's line
/// (`192.0.2.10/24 dev eth1 scope link label eth1:vip`, [`VirtualAddress::keepalived`]).
/// `Display` prints the address and prefix only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// The interface it goes on (default: the group's interface on each node).
    pub dev: Option<String>,
    /// `ifa_scope` (default global); IPv4 only, as in keepalived.
    pub scope: Option<Scope>,
    /// `ifa_label`, e.g. `eth1:vip` (starts with the interface's name and a colon, at most 15
    /// bytes); IPv4 only.
    pub label: Option<String>,
    /// The broadcast address (IPv4 only).
    pub broadcast: Option<Ipv4Addr>,
    /// keepalived's `no_track`: deleting it from the kernel while master does not make the
    /// group leave master; it is not put back until the group next becomes master. Without
    /// it, a deletion makes the master leave master as keepalived does (see
    /// `crate::dataplane::vrrp::watch`).
    pub no_track: bool,
}

impl VirtualAddress {
    /// Just an address and its prefix length.
    pub fn plain(address: IpAddr, prefix_len: u8) -> VirtualAddress {
        VirtualAddress {
            address,
            prefix_len,
            dev: None,
            scope: None,
            label: None,
            broadcast: None,
            no_track: false,
        }
    }

    pub fn has_options(&self) -> bool {
        self.dev.is_some()
            || self.scope.is_some()
            || self.label.is_some()
            || self.broadcast.is_some()
            || self.no_track
    }

    /// The same address in the kernel: equal but for `no_track`, which only says what lbd
    /// does when it disappears (an edit of `no_track` alone leaves the address in place).
    pub fn same_object(&self, other: &VirtualAddress) -> bool {
        self.address == other.address
            && self.prefix_len == other.prefix_len
            && self.dev == other.dev
            && self.scope == other.scope
            && self.label == other.label
            && self.broadcast == other.broadcast
    }

    /// The interface the address goes on: its `dev`, else `group_interface`.
    pub fn interface<'a>(&'a self, group_interface: &'a str) -> &'a str {
        self.dev.as_deref().unwrap_or(group_interface)
    }

    /// keepalived's line: `192.0.2.10/24 brd 192.0.2.255 dev eth1 scope link label eth1:vip`.
    pub fn keepalived(&self) -> String {
        let mut s = self.to_string();
        if let Some(b) = self.broadcast {
            s.push_str(&format!(" brd {b}"));
        }
        if let Some(d) = &self.dev {
            s.push_str(&format!(" dev {d}"));
        }
        if let Some(sc) = self.scope {
            s.push_str(&format!(" scope {sc}"));
        }
        if let Some(l) = &self.label {
            s.push_str(&format!(" label {l}"));
        }
        if self.no_track {
            s.push_str(" no_track");
        }
        s
    }

    /// Reads keepalived's `virtual_ipaddress` line (split in words). The options lbd does not
    /// carry out (`home`, `-nodad`, `preferred_lft 0`, ...) come back in the second
    /// value, skipped. `brd +` / `brd -` become the address they stand for.
    pub fn parse_keepalived(words: &[String]) -> Result<(VirtualAddress, Vec<String>), String> {
        let first = words.first().ok_or("an address is needed")?;
        let mut va: VirtualAddress = first.parse()?;
        let mut ignored = Vec::new();
        let mut i = 1;
        let arg = |i: &mut usize, k: &str| -> Result<String, String> {
            *i += 1;
            words
                .get(*i - 1)
                .cloned()
                .ok_or_else(|| format!("`{k}` needs a value"))
        };
        while i < words.len() {
            let k = words[i].as_str();
            i += 1;
            match k {
                "dev" => va.dev = Some(arg(&mut i, k)?),
                "scope" => va.scope = Some(arg(&mut i, k)?.parse()?),
                "label" => va.label = Some(arg(&mut i, k)?),
                "brd" | "broadcast" => {
                    let b = arg(&mut i, k)?;
                    let IpAddr::V4(a) = va.address else {
                        return Err(format!("`{k} {b}`: a broadcast address is for IPv4 only"));
                    };
                    let host = u32::MAX.checked_shr(u32::from(va.prefix_len)).unwrap_or(0);
                    va.broadcast = Some(match b.as_str() {
                        "+" | "-" if va.prefix_len > 30 => {
                            return Err(format!(
                                "`{k} {b}`: prefix length {} is too long for a broadcast address",
                                va.prefix_len
                            ))
                        }
                        "+" => Ipv4Addr::from(u32::from(a) | host),
                        "-" => Ipv4Addr::from(u32::from(a) & !host),
                        _ => b
                            .parse()
                            .map_err(|_| format!("`{k} {b}`: `{b}` is not an IPv4 address"))?,
                    });
                }
                "no_track" => va.no_track = true,
                "home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" | "use_vmac" => {
                    ignored.push(k.to_string())
                }
                "peer" | "preferred_lft" | "track_group" => {
                    let v = arg(&mut i, k)?;
                    ignored.push(format!("{k} {v}"));
                }
                _ => return Err(format!("`{k}` is not a virtual_ipaddress option lbd knows")),
            }
        }
        Ok((va, ignored))
    }
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
        Ok(VirtualAddress::plain(address, prefix_len))
    }
}

/// The object form of a [`VirtualAddress`] with options.
/// (The OpenAPI document's `VirtualAddressWithOptions`, written in `api::schema`.)
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualAddressObject {
    /// "addr" or "addr/prefix".
    pub address: String,
    /// The interface (default: the group's interface on each node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// host, link, site, global, nowhere or a number 0-255 (IPv4 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The address label, the interface's name, a colon and more, at most 15 bytes (IPv4
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The broadcast address (IPv4 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// keepalived's `no_track`: a deletion from the kernel does not make the master leave
    /// master; the address comes back only when the group next becomes master.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_track: bool,
}

impl Serialize for VirtualAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.has_options() {
            return s.collect_str(self);
        }
        VirtualAddressObject {
            address: self.to_string(),
            dev: self.dev.clone(),
            scope: self.scope.map(|x| x.to_string()),
            label: self.label.clone(),
            broadcast: self.broadcast.map(|b| b.to_string()),
            no_track: self.no_track,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for VirtualAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = VirtualAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"addr/prefix\" or an object {address, dev, scope, label, broadcast, no_track}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VirtualAddress, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<VirtualAddress, A::Error> {
                let o =
                    VirtualAddressObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let mut va: VirtualAddress = o.address.parse().map_err(de::Error::custom)?;
                va.dev = o.dev;
                va.scope = o
                    .scope
                    .map(|s| s.parse::<Scope>())
                    .transpose()
                    .map_err(de::Error::custom)?;
                va.label = o.label;
                va.broadcast = o
                    .broadcast
                    .map(|b| {
                        b.parse::<Ipv4Addr>()
                            .map_err(|_| format!("broadcast: `{b}` is not an IPv4 address"))
                    })
                    .transpose()
                    .map_err(de::Error::custom)?;
                va.no_track = o.no_track;
                Ok(va)
            }
        }
        d.deserialize_any(V)
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

    /// `no_track` on an address: keepalived's word, the object form's boolean.
    #[test]
    fn virtual_address_no_track() {
        let w: Vec<String> = "192.0.2.10/24 dev eth1 no_track"
            .split(' ')
            .map(String::from)
            .collect();
        let (va, ig) = VirtualAddress::parse_keepalived(&w).unwrap();
        assert!(va.no_track && ig.is_empty());
        assert_eq!(va.keepalived(), "192.0.2.10/24 dev eth1 no_track");
        let j = serde_json::to_value(&va).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"address": "192.0.2.10/24", "dev": "eth1", "no_track": true})
        );
        assert_eq!(serde_json::from_value::<VirtualAddress>(j).unwrap(), va);
        let only: VirtualAddress = serde_json::from_value(
            serde_json::json!({"address": "192.0.2.10/24", "no_track": true}),
        )
        .unwrap();
        assert!(only.has_options());
        let plain: VirtualAddress = "192.0.2.10/24".parse().unwrap();
        assert!(plain.same_object(&only) && plain != only);
    }

    /// No options: the string, as before; options: the object; keepalived's line both ways.
    #[test]
    fn virtual_address_options_json_and_keepalived() {
        let plain: VirtualAddress =
            serde_json::from_value(serde_json::json!("192.0.2.10/24")).unwrap();
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!("192.0.2.10/24")
        );
        let o = serde_json::json!({"address": "192.0.2.10/24", "dev": "eth1", "scope": "link", "label": "eth1:vip", "broadcast": "192.0.2.255"});
        let va: VirtualAddress = serde_json::from_value(o.clone()).unwrap();
        assert_eq!(va.scope, Some(Scope(253)));
        assert_eq!(va.interface("eth0"), "eth1");
        assert_eq!(serde_json::to_value(&va).unwrap(), o);
        assert_eq!(
            va.keepalived(),
            "192.0.2.10/24 brd 192.0.2.255 dev eth1 scope link label eth1:vip"
        );
        let words: Vec<String> = va.keepalived().split(' ').map(String::from).collect();
        assert_eq!(
            VirtualAddress::parse_keepalived(&words).unwrap(),
            (va, vec![])
        );
        for bad in [
            serde_json::json!({"address": "192.0.2.10/24", "lable": "x"}),
            serde_json::json!({"address": "192.0.2.10/24", "scope": "galaxy"}),
            serde_json::json!({"address": "192.0.2.10/24", "broadcast": "2001:db8::1"}),
            serde_json::json!({"dev": "eth1"}),
            serde_json::json!(7),
        ] {
            assert!(
                serde_json::from_value::<VirtualAddress>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let (a, ig) =
            VirtualAddress::parse_keepalived(&w("10.0.0.1/8 brd - home preferred_lft 0")).unwrap();
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(10, 0, 0, 0)));
        assert_eq!(ig, vec!["home".to_string(), "preferred_lft 0".to_string()]);
        assert!(VirtualAddress::parse_keepalived(&w("10.0.0.1/31 brd +")).is_err());
        assert!(VirtualAddress::parse_keepalived(&w("2001:db8::1 brd +")).is_err());
        assert!(VirtualAddress::parse_keepalived(&w("10.0.0.1 label")).is_err());
        assert!(VirtualAddress::parse_keepalived(&w("10.0.0.1 frob x")).is_err());
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
