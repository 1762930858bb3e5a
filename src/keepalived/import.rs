//! keepalived.conf -> lbd's model. What lbd does with keepalived's quirks (each also reported as a
//! warning where it applies):
//!
//! | keepalived | lbd import |
//! |---|---|
//! | `virtual_server` without `protocol` is UDP ("defaulting to UDP") | kept: UDP, with a warning |
//! | DR/TUN real server port different from the service's is reset to it | reset, with a warning |
//! | fwmark DR/TUN real server port becomes 0 | the port is dropped, with a warning |
//! | `virtual_server` with no real servers is not created | imported (lbd creates it), with a warning |
//! | `persistence_granularity` without `persistence_timeout` gives 360 s | 360 s, with a warning |
//! | `nb_get_retry` is unknown to 2.2.7 (runs with retry 1) | honoured as `retry`, with a note |
//! | `ops` on a TCP service is dropped | dropped, with a warning |
//! | scripts, MISC_CHECK, SSL_GET, SMTP_CHECK, DNS_CHECK, BFD, ... | not imported: reported as unsupported |

use std::net::IpAddr;

use super::parser::Node;
use crate::model::{
    CheckKind, Config, Family, Forwarding, GarpSettings, HealthCheck, InitialState, Priority,
    Protocol, RealServer, Scheduler, SorryServer, VirtualAddress, VirtualServer, Vrid, VrrpGroup,
    VrrpNode, Weight,
};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// file:line
    pub at: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ImportError {
    pub at: String,
    pub message: String,
}

/// The configuration a file describes, and what did not map.
#[derive(Debug, Default)]
pub struct Imported {
    pub config: Config,
    pub warnings: Vec<Warning>,
    /// Keywords lbd does not support, with where they are; never silently dropped.
    pub unsupported: Vec<Warning>,
}

fn bad(n: &Node, message: impl Into<String>) -> ImportError {
    ImportError {
        at: n.at(),
        message: message.into(),
    }
}

fn arg(n: &Node, i: usize) -> Result<&str, ImportError> {
    n.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| bad(n, format!("`{}` needs a value", n.key)))
}

fn num<T: std::str::FromStr>(n: &Node) -> Result<T, ImportError> {
    let v = arg(n, 0)?;
    v.parse()
        .map_err(|_| bad(n, format!("`{}`: `{v}` is not a valid number", n.key)))
}

/// Seconds (possibly fractional) as milliseconds.
fn secs_ms(n: &Node) -> Result<u32, ImportError> {
    let v = arg(n, 0)?;
    let f: f64 = v
        .parse()
        .map_err(|_| bad(n, format!("`{}`: `{v}` is not a number of seconds", n.key)))?;
    if !(0.0..=4_000_000.0).contains(&f) {
        return Err(bad(n, format!("`{}`: {v} s is out of range", n.key)));
    }
    Ok((f * 1000.0).round() as u32)
}

fn addr(n: &Node, v: &str) -> Result<IpAddr, ImportError> {
    v.parse()
        .map_err(|_| bad(n, format!("`{v}` is not an IP address")))
}

/// A dotted netmask ("255.255.255.0") or a prefix length, as a prefix length.
fn prefix(n: &Node) -> Result<u8, ImportError> {
    let v = arg(n, 0)?;
    if let Ok(p) = v.parse::<u8>() {
        return Ok(p);
    }
    let m: std::net::Ipv4Addr = v
        .parse()
        .map_err(|_| bad(n, format!("`{v}` is not a netmask")))?;
    let bits = u32::from(m);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(bad(n, format!("`{v}` is not a contiguous netmask")));
    }
    Ok(bits.count_ones() as u8)
}

struct Ctx<'a> {
    out: &'a mut Imported,
    node_name: &'a str,
    default_version: u8,
}

impl Ctx<'_> {
    fn warn(&mut self, n: &Node, m: impl Into<String>) {
        self.out.warnings.push(Warning {
            at: n.at(),
            message: m.into(),
        });
    }

    fn unsupported(&mut self, n: &Node, within: &str) {
        self.out.unsupported.push(Warning {
            at: n.at(),
            message: format!(
                "`{}` in {within} is not supported by lbd; not imported",
                n.key
            ),
        });
    }
}

/// Converts parsed nodes. `node_name` receives the per-node VRRP values (state, priority,
/// interface, unicast_src_ip).
pub fn convert(nodes: &[Node], node_name: &str) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let mut cx = Ctx {
        out: &mut out,
        node_name,
        default_version: 2,
    };
    // global_defs first: vrrp_version changes how instances read.
    for n in nodes.iter().filter(|n| n.key == "global_defs") {
        for c in n.children() {
            match c.key.as_str() {
                "vrrp_version" => cx.default_version = num(c)?,
                "router_id" => cx.warn(
                    c,
                    "router_id is not used: lbd names the node with --node-name",
                ),
                _ => cx.unsupported(c, "global_defs"),
            }
        }
    }
    let mut groups = Vec::new();
    let mut vss = Vec::new();
    for n in nodes {
        match n.key.as_str() {
            "global_defs" => {}
            "vrrp_instance" => groups.push(vrrp_instance(&mut cx, n)?),
            "virtual_server" => vss.push(virtual_server(&mut cx, n)?),
            _ => cx.unsupported(n, "the top level"),
        }
    }
    out.config = Config {
        virtual_servers: vss.into_iter().map(std::sync::Arc::new).collect(),
        vrrp_groups: groups,
    };
    Ok(out)
}

fn vrrp_instance(cx: &mut Ctx<'_>, n: &Node) -> Result<VrrpGroup, ImportError> {
    let name = arg(n, 0)?.to_string();
    let (mut vrid, mut priority, mut interface) = (None, 100u64, None);
    let mut state = InitialState::Backup;
    let mut unicast_src = None;
    let mut g = VrrpGroup {
        id: 0,
        name,
        vrid: Vrid::new(1).map_err(|m| bad(n, m))?,
        version: cx.default_version,
        advert_interval_ms: 1000,
        auth_pass: None,
        virtual_addresses: Vec::new(),
        preempt: true,
        preempt_delay_ms: 0,
        unicast_peers: Vec::new(),
        garp: GarpSettings::default(),
        track_interfaces: Vec::new(),
        nodes: Vec::new(),
    };
    for c in n.children() {
        match c.key.as_str() {
            "state" => {
                state = match arg(c, 0)? {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    v => return Err(bad(c, format!("state must be MASTER or BACKUP, not {v}"))),
                }
            }
            "interface" => interface = Some(arg(c, 0)?.to_string()),
            "virtual_router_id" => vrid = Some(Vrid::new(num(c)?).map_err(|m| bad(c, m))?),
            "priority" => priority = num(c)?,
            "advert_int" => g.advert_interval_ms = secs_ms(c)?,
            "version" => g.version = num(c)?,
            "nopreempt" => g.preempt = false,
            "preempt" => g.preempt = true,
            "preempt_delay" => g.preempt_delay_ms = secs_ms(c)?,
            "authentication" => {
                for a in c.children() {
                    match a.key.as_str() {
                        "auth_type" if arg(a, 0)? == "PASS" => {}
                        "auth_type" => cx.unsupported(a, "authentication (only PASS)"),
                        "auth_pass" => g.auth_pass = Some(arg(a, 0)?.to_string()),
                        _ => cx.unsupported(a, "authentication"),
                    }
                }
            }
            "virtual_ipaddress" => {
                for a in c.children() {
                    let va: VirtualAddress = a.key.parse().map_err(|m: String| bad(a, m))?;
                    if !a.args.is_empty() {
                        cx.warn(a, format!("`{}` after the address is ignored: lbd puts virtual addresses on the group's interface", a.args.join(" ")));
                    }
                    g.virtual_addresses.push(va);
                }
            }
            "unicast_src_ip" => unicast_src = Some(addr(c, arg(c, 0)?)?),
            "unicast_peer" => {
                for a in c.children() {
                    g.unicast_peers.push(addr(a, &a.key)?);
                }
            }
            "track_interface" => {
                for a in c.children() {
                    g.track_interfaces.push(a.key.clone());
                }
            }
            "garp_master_delay" => g.garp.repeat_delay_ms = secs_ms(c)?,
            "garp_master_repeat" => g.garp.count = num(c)?,
            "garp_master_refresh" => {
                let ms = secs_ms(c)?;
                g.garp.refresh_interval_ms = (ms > 0).then_some(ms);
            }
            _ => cx.unsupported(c, "vrrp_instance"),
        }
    }
    g.vrid = vrid.ok_or_else(|| bad(n, "vrrp_instance needs virtual_router_id"))?;
    let interface = interface.ok_or_else(|| bad(n, "vrrp_instance needs interface"))?;
    g.nodes.push(VrrpNode {
        node: cx.node_name.to_string(),
        priority: Priority::new(priority).map_err(|m| bad(n, m))?,
        interface,
        initial_state: state,
        unicast_src,
    });
    Ok(g)
}

fn scheduler(c: &Node) -> Result<Scheduler, ImportError> {
    let v = arg(c, 0)?;
    serde_json::from_value(serde_json::Value::String(v.to_lowercase()))
        .map_err(|_| bad(c, format!("unknown scheduler `{v}`")))
}

fn forwarding(c: &Node) -> Result<Forwarding, ImportError> {
    match arg(c, 0)? {
        "DR" => Ok(Forwarding::Dr),
        "NAT" => Ok(Forwarding::Nat),
        "TUN" => Ok(Forwarding::Tun),
        v => Err(bad(c, format!("lb_kind must be DR, NAT or TUN, not {v}"))),
    }
}

fn virtual_server(cx: &mut Ctx<'_>, n: &Node) -> Result<VirtualServer, ImportError> {
    let mut vs = VirtualServer {
        id: 0,
        name: None,
        address: None,
        port: None,
        protocol: None,
        fwmark: None,
        family: None,
        scheduler: Scheduler::Rr,
        forwarding: Forwarding::Nat, // keepalived's default lb_kind
        persistence_timeout_secs: None,
        persistence_granularity: None,
        delay_loop_ms: 60_000,
        sorry_server: None,
        quorum: None,
        real_servers: Vec::new(),
    };
    match (n.args.first().map(String::as_str), n.args.get(1)) {
        (Some("fwmark"), Some(m)) => {
            vs.fwmark = Some(
                m.parse()
                    .map_err(|_| bad(n, format!("`{m}` is not a fwmark")))?,
            );
            vs.family = Some(Family::Ipv4);
        }
        (Some(a), Some(p)) => {
            vs.address = Some(addr(n, a)?);
            vs.port = Some(
                p.parse()
                    .map_err(|_| bad(n, format!("`{p}` is not a port")))?,
            );
        }
        _ => return Err(bad(n, "virtual_server needs ADDRESS PORT or fwmark N")),
    }
    let mut rs_nodes = Vec::new();
    let mut has_protocol = false;
    for c in n.children() {
        match c.key.as_str() {
            "delay_loop" => vs.delay_loop_ms = secs_ms(c)?,
            "lb_algo" | "lvs_sched" => vs.scheduler = scheduler(c)?,
            "lb_kind" | "lvs_method" => vs.forwarding = forwarding(c)?,
            "protocol" => {
                has_protocol = true;
                vs.protocol = Some(match arg(c, 0)? {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    v => {
                        return Err(bad(
                            c,
                            format!("protocol must be TCP, UDP or SCTP, not {v}"),
                        ))
                    }
                })
            }
            "persistence_timeout" => vs.persistence_timeout_secs = Some(num(c)?),
            "persistence_granularity" => vs.persistence_granularity = Some(prefix(c)?),
            "sorry_server" => {
                vs.sorry_server = Some(SorryServer {
                    address: addr(c, arg(c, 0)?)?,
                    port: c.args.get(1).and_then(|p| p.parse().ok()),
                })
            }
            "quorum" => vs.quorum = Some(num(c)?),
            "family" => {
                vs.family = Some(match arg(c, 0)? {
                    "inet" => Family::Ipv4,
                    "inet6" => Family::Ipv6,
                    v => return Err(bad(c, format!("family must be inet or inet6, not {v}"))),
                })
            }
            "ops" => cx.warn(
                c,
                "`ops` is dropped (keepalived drops it on TCP services too)",
            ),
            "real_server" => rs_nodes.push(c),
            _ => cx.unsupported(c, "virtual_server"),
        }
    }
    if vs.fwmark.is_some() {
        vs.protocol = None;
    } else if !has_protocol {
        vs.protocol = Some(Protocol::Udp);
        cx.warn(n, "no `protocol`: keepalived defaults to UDP, and so does this import; add `protocol TCP` if you meant TCP");
    }
    if let Some(a) = vs.address {
        vs.family = Some(Family::of(&a));
    }
    if vs.persistence_granularity.is_some() && vs.persistence_timeout_secs.is_none() {
        vs.persistence_timeout_secs = Some(360);
        cx.warn(
            n,
            "persistence_granularity without persistence_timeout: 360 s, as keepalived does",
        );
    }
    for r in rs_nodes {
        let rs = real_server(cx, &vs, r)?;
        vs.real_servers.push(rs);
    }
    if vs.real_servers.is_empty() {
        cx.warn(
            n,
            "no real servers: keepalived would not create this service; lbd does",
        );
    }
    Ok(vs)
}

fn real_server(cx: &mut Ctx<'_>, vs: &VirtualServer, n: &Node) -> Result<RealServer, ImportError> {
    let mut rs = RealServer {
        id: 0,
        address: addr(n, arg(n, 0)?)?,
        port: n
            .args
            .get(1)
            .map(|p| p.parse())
            .transpose()
            .map_err(|_| bad(n, "bad port"))?,
        weight: Weight::new(1).map_err(|m| bad(n, m))?,
        forwarding: None,
        inhibit_on_failure: false,
        upper_threshold: None,
        lower_threshold: None,
        health_check: None,
    };
    for c in n.children() {
        match c.key.as_str() {
            "weight" => rs.weight = Weight::new(num(c)?).map_err(|m| bad(c, m))?,
            "inhibit_on_failure" => rs.inhibit_on_failure = true,
            "lb_kind" | "lvs_method" => rs.forwarding = Some(forwarding(c)?),
            "uthreshold" => rs.upper_threshold = Some(num(c)?),
            "lthreshold" => rs.lower_threshold = Some(num(c)?),
            "TCP_CHECK" => rs.health_check = Some(check(cx, c, CheckKind::Tcp)?),
            "HTTP_GET" => rs.health_check = Some(check(cx, c, CheckKind::Http)?),
            _ => cx.unsupported(c, "real_server"),
        }
    }
    let fwd = rs.forwarding.unwrap_or(vs.forwarding);
    if fwd != Forwarding::Nat {
        if vs.fwmark.is_some() {
            if rs.port.take().is_some_and(|p| p != 0) {
                cx.warn(n, "a dr/tun real server of a fwmark service has no port (keepalived sets it to 0)");
            }
        } else if rs.port.is_some() && rs.port != vs.port {
            cx.warn(
                n,
                format!(
                    "dr/tun cannot change the port: {} becomes the service's {}",
                    rs.port.unwrap_or(0),
                    vs.port.unwrap_or(0)
                ),
            );
            rs.port = vs.port;
        }
    }
    Ok(rs)
}

fn check(cx: &mut Ctx<'_>, n: &Node, kind: CheckKind) -> Result<HealthCheck, ImportError> {
    let mut hc = HealthCheck {
        kind,
        connect_port: None,
        connect_timeout_ms: 5000,
        retry: 1,
        delay_before_retry_ms: 1000,
        rise: None,
        fall: None,
        path: None,
        expected_status: None,
        body_contains: None,
    };
    for c in n.children() {
        match c.key.as_str() {
            "connect_port" => hc.connect_port = Some(num(c)?),
            "connect_timeout" => hc.connect_timeout_ms = secs_ms(c)?,
            "retry" => hc.retry = num(c)?,
            "nb_get_retry" => {
                hc.retry = num(c)?;
                cx.warn(c, "`nb_get_retry` is the old name of `retry` (keepalived 2.2.7 ignores it and retries once); lbd honours it");
            }
            "delay_before_retry" => hc.delay_before_retry_ms = secs_ms(c)?,
            "url" if kind == CheckKind::Http => {
                for u in c.children() {
                    match u.key.as_str() {
                        "path" => hc.path = Some(arg(u, 0)?.to_string()),
                        "status_code" => hc.expected_status = Some(num(u)?),
                        _ => cx.unsupported(u, "url"),
                    }
                }
            }
            _ => cx.unsupported(c, &n.key),
        }
    }
    Ok(hc)
}

/// Adds what `new` (one director's file) says to `existing`: groups are matched by name and get
/// this node's entry (their VRID and addresses must agree); virtual servers are matched by
/// identity; one that differs from the existing one is reported and the existing one kept.
pub fn merge(existing: &Config, new: Imported) -> Result<Imported, ImportError> {
    let mut cfg = existing.clone();
    let mut out = Imported {
        config: Config::default(),
        warnings: new.warnings,
        unsupported: new.unsupported,
    };
    for g in new.config.vrrp_groups {
        match cfg.vrrp_groups.iter_mut().find(|e| e.name == g.name) {
            None => cfg.vrrp_groups.push(g),
            Some(e) => {
                if e.vrid != g.vrid || e.virtual_addresses != g.virtual_addresses {
                    return Err(ImportError {
                        at: g.name.clone(),
                        message: format!(
                            "group {} exists with vrid {} and addresses {:?}; this file has vrid {} and {:?}",
                            g.name,
                            e.vrid,
                            e.virtual_addresses.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                            g.vrid,
                            g.virtual_addresses.iter().map(|v| v.to_string()).collect::<Vec<_>>()
                        ),
                    });
                }
                for n in g.nodes {
                    e.nodes.retain(|x| x.node != n.node);
                    e.nodes.push(n);
                }
            }
        }
    }
    for mut v in new.config.virtual_servers {
        std::sync::Arc::make_mut(&mut v).normalize();
        let key = v.key();
        match cfg.virtual_servers.iter().find(|e| e.key() == key) {
            None => cfg.virtual_servers.push(v),
            Some(e) => {
                let strip = |x: &VirtualServer| {
                    let mut x = x.clone();
                    x.id = 0;
                    for r in &mut x.real_servers {
                        r.id = 0;
                    }
                    x
                };
                if strip(e) != strip(&v) {
                    out.warnings.push(Warning {
                        at: key.map(|k| k.to_string()).unwrap_or_default(),
                        message: "this file's virtual server differs from the one lbd has; lbd's is kept (the configuration is shared by both directors)".into(),
                    });
                }
            }
        }
    }
    out.config = cfg;
    Ok(out)
}
