//! What a VRRP master adds besides its addresses: the virtual addresses' options (keepalived's
//! `dev`, `scope`, `label`, `brd` in `virtual_ipaddress`), and the routes and policy rules
//! (keepalived's `virtual_routes` and `virtual_rules`), added on becoming master and removed on
//! leaving it.
//!
//! Each has the keepalived line syntax ([`VirtualRoute::parse_keepalived`], `Display`), which
//! the keepalived import and export, the SQLite file and gRPC use, and a JSON object form the
//! REST API uses.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::virtual_server::Family;

/// An address scope (`ifa_scope`, `rtm_scope`): keepalived's (and iproute2's) names `global`
/// (0, also `universe`), `site` (200), `link` (253), `host` (254), `nowhere` (255), or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(pub u8);

const SCOPES: [(&str, u8); 6] = [
    ("global", 0),
    ("universe", 0),
    ("site", 200),
    ("link", 253),
    ("host", 254),
    ("nowhere", 255),
];

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match SCOPES.iter().find(|(_, v)| *v == self.0) {
            Some((n, _)) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((_, v)) = SCOPES.iter().find(|(n, _)| *n == s) {
            return Ok(Scope(*v));
        }
        digits(s)
            .and_then(|n| u8::try_from(n).ok())
            .map(Scope)
            .ok_or_else(|| {
                format!("`{s}` is not a scope (host, link, site, global, nowhere or 0-255)")
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// A decimal number as the OpenAPI patterns say it: digits only, no leading zero, at most
/// three digits.
fn digits(s: &str) -> Option<u32> {
    let ok = !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

/// A destination or source prefix, "10.1.0.0/16" (no length: a host, /32 or /128); keepalived's
/// `default` is 0.0.0.0/0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub address: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// Whether bits are set beyond the length (`ip route` refuses 10.1.2.3/16).
    pub fn has_host_bits(&self) -> bool {
        match self.address {
            IpAddr::V4(a) => {
                let v = u32::from(a);
                self.len < 32 && v & (u32::MAX >> self.len) != 0
            }
            IpAddr::V6(a) => {
                let v = u128::from(a);
                self.len < 128 && v & (u128::MAX >> self.len) != 0
            }
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "default" {
            return Ok(Prefix {
                address: IpAddr::from([0, 0, 0, 0]),
                len: 0,
            });
        }
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let address: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not a prefix (\"addr\" or \"addr/len\")"))?;
        let max = Family::of(&address).max_prefix_len();
        let len = match l {
            None => max,
            Some(l) => match digits(l) {
                Some(n) if n <= u32::from(max) => n as u8,
                _ => return Err(format!("`{s}`: prefix length must be 0..={max}")),
            },
        };
        Ok(Prefix { address, len })
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// A route's type (`rtm_type`); a rule's action other than a table lookup uses the last three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteType {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouteType {
    pub fn name(self) -> &'static str {
        match self {
            RouteType::Unicast => "unicast",
            RouteType::Blackhole => "blackhole",
            RouteType::Unreachable => "unreachable",
            RouteType::Prohibit => "prohibit",
        }
    }
    fn parse(s: &str) -> Option<RouteType> {
        [
            RouteType::Unicast,
            RouteType::Blackhole,
            RouteType::Unreachable,
            RouteType::Prohibit,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
    fn is_unicast(&self) -> bool {
        *self == RouteType::Unicast
    }
}

/// `RTPROT_KEEPALIVED`: keepalived marks its routes and rules with it unless told otherwise;
/// lbd does the same, so `ip route show proto keepalived` lists both daemons' routes.
pub const RTPROT_KEEPALIVED: u8 = 18;

/// A route a master adds (keepalived `virtual_routes`):
/// `[TYPE] [to] PREFIX [via ADDR] [dev IF] [src ADDR] [table N] [metric N] [scope S] [proto P]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualRoute {
    /// The destination, "10.1.0.0/16" (no bits beyond the length).
    #[schema(value_type = String, example = "10.1.0.0/16")]
    pub to: Prefix,
    /// unicast (the default), blackhole, unreachable or prohibit.
    #[serde(
        default,
        rename = "type",
        skip_serializing_if = "RouteType::is_unicast"
    )]
    pub kind: RouteType,
    /// The gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub via: Option<IpAddr>,
    /// The output interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// The preferred source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub src: Option<IpAddr>,
    /// The routing table (default: main, 254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// The metric (keepalived's `metric`, `preference` or `priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// The route's scope (default as the kernel picks: link for a route without gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "link")]
    pub scope: Option<Scope>,
    /// The routing protocol number (default 18, keepalived's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// keepalived's `no_track`: deleting the route while master does not make the group
    /// leave master; it comes back only when the group next becomes master.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_track: bool,
}

/// A policy rule a master adds (keepalived `virtual_rules`):
/// `[from PREFIX] [to PREFIX] [iif IF] [oif IF] [fwmark N[/MASK]] [priority N] (table N | TYPE)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VirtualRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "192.0.2.0/24")]
    pub from: Option<Prefix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub to: Option<Prefix>,
    /// The table to look up; exactly one of `table` and `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// blackhole, unreachable or prohibit instead of a table lookup.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<RouteType>,
    /// The rule's priority (`ip rule` preference). keepalived numbers rules without one from
    /// 16384 down; lbd leaves it to the kernel (just before the first existing rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The input interface (keepalived `iif` or `dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// The fwmark's mask (default all ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmask: Option<u32>,
    /// Whether the rule is IPv6 when it has neither `from` nor `to` (keepalived `inet6`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inet6: bool,
    /// keepalived's `no_track`: deleting the rule while master does not make the group leave
    /// master; it comes back only when the group next becomes master.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_track: bool,
}

impl VirtualRoute {
    /// The same route in the kernel: equal but for `no_track` (an edit of `no_track` alone
    /// leaves the route in place).
    pub fn same_object(&self, other: &VirtualRoute) -> bool {
        VirtualRoute {
            no_track: other.no_track,
            ..self.clone()
        } == *other
    }
}

impl VirtualRule {
    /// The same rule in the kernel: equal but for `no_track`.
    pub fn same_object(&self, other: &VirtualRule) -> bool {
        VirtualRule {
            no_track: other.no_track,
            ..self.clone()
        } == *other
    }

    pub fn family(&self) -> Family {
        match self.from.or(self.to) {
            Some(p) => Family::of(&p.address),
            None if self.inet6 => Family::Ipv6,
            None => Family::Ipv4,
        }
    }
}

fn table(s: &str) -> Result<u32, String> {
    match s {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        _ => s.parse().map_err(|_| {
            format!("`{s}` is not a routing table (a number, main, local or default)")
        }),
    }
}

fn protocol(s: &str) -> Result<u8, String> {
    match s {
        "redirect" => Ok(1),
        "kernel" => Ok(2),
        "boot" => Ok(3),
        "static" => Ok(4),
        "keepalived" => Ok(RTPROT_KEEPALIVED),
        _ => s
            .parse()
            .map_err(|_| format!("`{s}` is not a routing protocol (a number or a name)")),
    }
}

fn num<T: FromStr>(key: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("`{key} {s}`: `{s}` is not a number"))
}

fn ip(key: &str, s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("`{key} {s}`: `{s}` is not an IP address"))
}

/// Words and what they take, as keepalived reads a route or a rule: the options lbd does not
/// carry out are skipped with their argument and reported.
struct Words<'a> {
    w: &'a [String],
    i: usize,
    ignored: Vec<String>,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let s = self.w.get(self.i)?;
        self.i += 1;
        Some(s)
    }
    fn arg(&mut self, key: &str) -> Result<&'a str, String> {
        self.next().ok_or_else(|| format!("`{key}` needs a value"))
    }
    fn ignore(&mut self, key: &str, takes: usize) {
        let mut s = key.to_string();
        for _ in 0..takes {
            if let Some(a) = self.next() {
                s.push(' ');
                s.push_str(a);
            }
        }
        self.ignored.push(s);
    }
}

/// Options keepalived accepts on a route that lbd does not carry out, with how many arguments
/// each takes.
const ROUTE_IGNORED: [(&str, usize); 21] = [
    ("onlink", 0),
    ("mtu", 1),
    ("advmss", 1),
    ("rtt", 1),
    ("rttvar", 1),
    ("reordering", 1),
    ("window", 1),
    ("cwnd", 1),
    ("ssthresh", 1),
    ("realms", 1),
    ("rto_min", 1),
    ("initcwnd", 1),
    ("initrwnd", 1),
    ("features", 1),
    ("quickack", 1),
    ("congctl", 1),
    ("pref", 1),
    ("tos", 1),
    ("dsfield", 1),
    ("expires", 1),
    ("hoplimit", 1),
];

const RULE_IGNORED: [(&str, usize); 11] = [
    ("tos", 1),
    ("dsfield", 1),
    ("realms", 1),
    ("suppress_prefixlength", 1),
    ("sup_pl", 1),
    ("suppress_ifgroup", 1),
    ("sup_group", 1),
    ("uidrange", 1),
    ("ipproto", 1),
    ("sport", 1),
    ("dport", 1),
];

impl VirtualRoute {
    /// Reads a keepalived `virtual_routes` line (already split in words). The options lbd does
    /// not carry out (`mtu 1400`, `onlink`, ...) come back in the second value, skipped.
    pub fn parse_keepalived(words: &[String]) -> Result<(VirtualRoute, Vec<String>), String> {
        let mut w = Words {
            w: words,
            i: 0,
            ignored: Vec::new(),
        };
        let mut r = VirtualRoute {
            to: Prefix {
                address: IpAddr::from([0, 0, 0, 0]),
                len: 0,
            },
            kind: RouteType::Unicast,
            via: None,
            dev: None,
            src: None,
            table: None,
            metric: None,
            scope: None,
            protocol: None,
            no_track: false,
        };
        let mut to = None;
        let mut inet6 = false;
        while let Some(k) = w.next() {
            match k {
                "inet6" => inet6 = true,
                "inet" | "add" | "prepend" | "append" => {}
                "to" => to = Some(w.arg(k)?.parse::<Prefix>()?),
                "via" | "gw" => {
                    let mut a = w.arg(k)?;
                    if a == "inet" || a == "inet6" {
                        a = w.arg(k)?;
                    }
                    r.via = Some(ip(k, a)?);
                }
                "dev" | "oif" => r.dev = Some(w.arg(k)?.to_string()),
                "src" => r.src = Some(ip(k, w.arg(k)?)?),
                "table" => r.table = Some(table(w.arg(k)?)?),
                "metric" | "preference" | "priority" => r.metric = Some(num(k, w.arg(k)?)?),
                "scope" => r.scope = Some(w.arg(k)?.parse()?),
                "protocol" | "proto" => r.protocol = Some(protocol(w.arg(k)?)?),
                "no_track" => r.no_track = true,
                _ => {
                    if let Some(t) = RouteType::parse(k) {
                        r.kind = t;
                    } else if let Some((_, n)) = ROUTE_IGNORED.iter().find(|(n, _)| *n == k) {
                        w.ignore(k, *n);
                    } else if to.is_none() && (k.contains('.') || k.contains(':') || k == "default")
                    {
                        to = Some(k.parse::<Prefix>()?);
                    } else {
                        return Err(format!("`{k}` is not a route option lbd knows"));
                    }
                }
            }
        }
        r.to = to.ok_or("a route needs a destination")?;
        // `default` of an IPv6 route (`inet6`, or an IPv6 gateway) is ::/0.
        let v6 = inet6 || r.via.is_some_and(|v| v.is_ipv6()) || r.src.is_some_and(|v| v.is_ipv6());
        if r.to.len == 0 && r.to.address.is_unspecified() && v6 {
            r.to.address = IpAddr::from([0u16; 8]);
        }
        Ok((r, w.ignored))
    }
}

impl fmt::Display for VirtualRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.kind.is_unicast() {
            write!(f, "{} ", self.kind.name())?;
        }
        write!(f, "{}", self.to)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        if let Some(t) = self.table {
            write!(f, " table {t}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(s) = self.scope {
            write!(f, " scope {s}")?;
        }
        if let Some(p) = self.protocol {
            write!(f, " protocol {p}")?;
        }
        if self.no_track {
            write!(f, " no_track")?;
        }
        Ok(())
    }
}

/// The strict form (the SQLite file, gRPC): every option must be one lbd carries out.
impl FromStr for VirtualRoute {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        match VirtualRoute::parse_keepalived(&words)? {
            (r, ig) if ig.is_empty() => Ok(r),
            (_, ig) => Err(format!("lbd does not carry out `{}`", ig.join(" "))),
        }
    }
}

impl VirtualRule {
    /// Reads a keepalived `virtual_rules` line; as [`VirtualRoute::parse_keepalived`].
    pub fn parse_keepalived(words: &[String]) -> Result<(VirtualRule, Vec<String>), String> {
        let mut w = Words {
            w: words,
            i: 0,
            ignored: Vec::new(),
        };
        let mut r = VirtualRule {
            from: None,
            to: None,
            table: None,
            kind: None,
            priority: None,
            iif: None,
            oif: None,
            fwmark: None,
            fwmask: None,
            inet6: false,
            no_track: false,
        };
        while let Some(k) = w.next() {
            match k {
                "inet" => {}
                "inet6" => r.inet6 = true,
                "from" => r.from = Some(w.arg(k)?.parse()?),
                "to" => r.to = Some(w.arg(k)?.parse()?),
                "table" | "lookup" => r.table = Some(table(w.arg(k)?)?),
                "preference" | "order" | "priority" => r.priority = Some(num(k, w.arg(k)?)?),
                "dev" | "iif" => r.iif = Some(w.arg(k)?.to_string()),
                "oif" => r.oif = Some(w.arg(k)?.to_string()),
                "no_track" => r.no_track = true,
                "fwmark" => {
                    let a = w.arg(k)?;
                    let (m, mask) = match a.split_once('/') {
                        Some((m, mask)) => (m, Some(mask)),
                        None => (a, None),
                    };
                    let n = |s: &str| {
                        match s.strip_prefix("0x") {
                            Some(h) => u32::from_str_radix(h, 16),
                            None => s.parse(),
                        }
                        .map_err(|_| format!("`fwmark {a}` is not a mark (N or N/MASK)"))
                    };
                    r.fwmark = Some(n(m)?);
                    r.fwmask = mask.map(n).transpose()?;
                }
                "type" => {
                    let t = w.arg(k)?;
                    r.kind = Some(
                        RouteType::parse(t)
                            .filter(|t| !t.is_unicast())
                            .ok_or_else(|| format!("`{t}` is not a rule action lbd knows"))?,
                    );
                }
                "protocol" => w.ignore(k, 1),
                _ => {
                    if let Some(t) = RouteType::parse(k).filter(|t| !t.is_unicast()) {
                        r.kind = Some(t);
                    } else if let Some((_, n)) = RULE_IGNORED.iter().find(|(n, _)| *n == k) {
                        w.ignore(k, *n);
                    } else {
                        return Err(format!("`{k}` is not a rule option lbd knows"));
                    }
                }
            }
        }
        Ok((r, w.ignored))
    }
}

impl fmt::Display for VirtualRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.inet6 && self.from.is_none() && self.to.is_none() {
            parts.push("inet6".into());
        }
        if let Some(p) = self.from {
            parts.push(format!("from {p}"));
        }
        if let Some(p) = self.to {
            parts.push(format!("to {p}"));
        }
        if let Some(i) = &self.iif {
            parts.push(format!("iif {i}"));
        }
        if let Some(i) = &self.oif {
            parts.push(format!("oif {i}"));
        }
        if let Some(m) = self.fwmark {
            match self.fwmask {
                Some(k) => parts.push(format!("fwmark {m:#x}/{k:#x}")),
                None => parts.push(format!("fwmark {m:#x}")),
            }
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority {p}"));
        }
        if let Some(t) = self.table {
            parts.push(format!("table {t}"));
        }
        if let Some(k) = self.kind {
            parts.push(k.name().to_string());
        }
        if self.no_track {
            parts.push("no_track".into());
        }
        f.write_str(&parts.join(" "))
    }
}

impl FromStr for VirtualRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        match VirtualRule::parse_keepalived(&words)? {
            (r, ig) if ig.is_empty() => Ok(r),
            (_, ig) => Err(format!("lbd does not carry out `{}`", ig.join(" "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn routes_read_keepalived_syntax_and_print_back() {
        let (r, ig) = VirtualRoute::parse_keepalived(&words(
            "10.1.0.0/16 via 192.0.2.1 dev eth1 table 100 metric 5 src 192.0.2.10 mtu 1400 onlink",
        ))
        .unwrap();
        assert_eq!(r.to.to_string(), "10.1.0.0/16");
        assert_eq!(r.via, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth1"));
        assert_eq!((r.table, r.metric), (Some(100), Some(5)));
        assert_eq!(ig, vec!["mtu 1400".to_string(), "onlink".to_string()]);
        assert_eq!(
            r.to_string(),
            "10.1.0.0/16 via 192.0.2.1 dev eth1 src 192.0.2.10 table 100 metric 5"
        );
        assert_eq!(r.to_string().parse::<VirtualRoute>().unwrap(), r);
        let b: VirtualRoute = "blackhole 10.2.0.0/16 table main".parse().unwrap();
        assert_eq!((b.kind, b.table), (RouteType::Blackhole, Some(254)));
        assert_eq!(b.to_string().parse::<VirtualRoute>().unwrap(), b);
        let d: VirtualRoute = "default via 2001:db8::1 dev eth1".parse().unwrap();
        assert_eq!(d.to.to_string(), "::/0");
        let d: VirtualRoute = "default via 192.0.2.1".parse().unwrap();
        assert_eq!(d.to.to_string(), "0.0.0.0/0");
        let s: VirtualRoute = "to 10.3.0.0/16 dev eth1 scope link proto static"
            .parse()
            .unwrap();
        assert_eq!((s.scope, s.protocol), (Some(Scope(253)), Some(4)));
        // Strict form: an option lbd drops is an error, a word it does not know too.
        assert!("10.1.0.0/16 dev eth1 mtu 1400"
            .parse::<VirtualRoute>()
            .is_err());
        assert!("10.1.0.0/16 frobnicate".parse::<VirtualRoute>().is_err());
        assert!("via 192.0.2.1".parse::<VirtualRoute>().is_err());
        assert!("10.1.0.0/33".parse::<VirtualRoute>().is_err());
    }

    #[test]
    fn rules_read_keepalived_syntax_and_print_back() {
        let r: VirtualRule = "from 192.0.2.0/24 table 100 priority 100".parse().unwrap();
        assert_eq!(r.from.unwrap().to_string(), "192.0.2.0/24");
        assert_eq!((r.table, r.priority), (Some(100), Some(100)));
        assert_eq!(r.family(), Family::Ipv4);
        assert_eq!(r.to_string(), "from 192.0.2.0/24 priority 100 table 100");
        assert_eq!(r.to_string().parse::<VirtualRule>().unwrap(), r);
        let m: VirtualRule = "fwmark 0x10/0xff iif eth1 lookup 7 preference 9"
            .parse()
            .unwrap();
        assert_eq!(
            (m.fwmark, m.fwmask, m.iif.as_deref()),
            (Some(16), Some(255), Some("eth1"))
        );
        assert_eq!(m.to_string().parse::<VirtualRule>().unwrap(), m);
        let u: VirtualRule = "inet6 oif eth2 unreachable".parse().unwrap();
        assert_eq!(
            (u.kind, u.family()),
            (Some(RouteType::Unreachable), Family::Ipv6)
        );
        assert_eq!(u.to_string().parse::<VirtualRule>().unwrap(), u);
        let (_, ig) =
            VirtualRule::parse_keepalived(&words("from 10.0.0.0/8 table 5 sport 80")).unwrap();
        assert_eq!(ig, vec!["sport 80".to_string()]);
        assert!("from 10.0.0.0/8 table 5 sport 80"
            .parse::<VirtualRule>()
            .is_err());
        assert!("from nowhere table 5".parse::<VirtualRule>().is_err());
    }

    /// keepalived's `no_track` is carried out now: read, printed back, in JSON only when set,
    /// and ignored by `same_object`.
    #[test]
    fn no_track_is_kept() {
        let (r, ig) =
            VirtualRoute::parse_keepalived(&words("10.1.0.0/16 dev eth1 no_track")).unwrap();
        assert!(r.no_track && ig.is_empty());
        assert_eq!(r.to_string(), "10.1.0.0/16 dev eth1 no_track");
        assert_eq!(r.to_string().parse::<VirtualRoute>().unwrap(), r);
        assert_eq!(serde_json::to_value(&r).unwrap()["no_track"], true);
        let plain: VirtualRoute = "10.1.0.0/16 dev eth1".parse().unwrap();
        assert!(serde_json::to_value(&plain)
            .unwrap()
            .get("no_track")
            .is_none());
        assert!(plain.same_object(&r) && plain != r);
        let u: VirtualRule = "from 10.0.0.0/8 table 5 no_track".parse().unwrap();
        assert!(u.no_track);
        assert_eq!(u.to_string(), "from 10.0.0.0/8 table 5 no_track");
        assert_eq!(u.to_string().parse::<VirtualRule>().unwrap(), u);
        let v: VirtualRule = serde_json::from_value(serde_json::json!(
            {"from": "10.0.0.0/8", "table": 5, "no_track": true}
        ))
        .unwrap();
        assert_eq!(v, u);
    }

    #[test]
    fn json_forms() {
        let r: VirtualRoute = serde_json::from_value(serde_json::json!(
            {"to": "10.1.0.0/16", "via": "192.0.2.1", "table": 100, "scope": "link"}
        ))
        .unwrap();
        assert_eq!(r.scope, Some(Scope(253)));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["scope"], "link");
        assert!(back.get("type").is_none());
        assert!(serde_json::from_value::<VirtualRoute>(
            serde_json::json!({"to": "10.1.0.0/16", "metrc": 1})
        )
        .is_err());
        assert!(serde_json::from_value::<VirtualRoute>(
            serde_json::json!({"to": "10.1.0.0/16", "scope": "galaxy"})
        )
        .is_err());
        let p: Prefix = "10.1.2.0/16".parse().unwrap();
        assert!(p.has_host_bits());
        assert!(!"10.1.0.0/16".parse::<Prefix>().unwrap().has_host_bits());
        assert!(!"::/0".parse::<Prefix>().unwrap().has_host_bits());
        // As the OpenAPI patterns: no sign, no leading zero.
        for bad in [
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
        assert!("+5".parse::<Scope>().is_err() && "05".parse::<Scope>().is_err());
        assert_eq!("0".parse::<Scope>(), Ok(Scope(0)));
        assert!("256".parse::<Scope>().is_err());
    }
}
