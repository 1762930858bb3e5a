//! proto <-> model.
//!
//! Inbound, a proto message is turned into the model's JSON shape and parsed by the model's own
//! deserializer, so gRPC and HTTP accept exactly the same values and report bad ones with the same
//! message and field path. Outbound, model values are copied into proto messages.

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use tonic::Status;

use super::pb;
use crate::control::service::WriteResult;
use crate::model::{
    Change, ChangeOp, CheckKind, Config, EntityKind, Family, Forwarding, HealthCheck, InitialState,
    Protocol, RealServer, Scheduler, VirtualServer, VrrpGroup, VrrpNode,
};

/// An InvalidArgument whose message starts with the field path; the path also goes in the
/// `lbd-field` metadata.
pub fn invalid(field: &str, message: &str) -> Status {
    let text = if field.is_empty() {
        message.to_string()
    } else {
        format!("{field}: {message}")
    };
    let mut s = Status::invalid_argument(text);
    if let Ok(v) = field.parse() {
        s.metadata_mut().insert("lbd-field", v);
    }
    s
}

fn parse<T: DeserializeOwned>(v: Value, prefix: &str) -> Result<T, Status> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix.is_empty(), path == ".") {
            (true, true) => String::new(),
            (true, false) => path,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{path}"),
        };
        let msg = e.into_inner().to_string();
        invalid(&field, &msg)
    })
}

fn put<T: Into<Value>>(m: &mut Map<String, Value>, k: &str, v: Option<T>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v.into());
    }
}

/// A proto enum value as the model's JSON name; `None` for UNSPECIFIED (the default applies).
fn enum_name(
    field: &str,
    value: i32,
    names: &[&'static str],
) -> Result<Option<&'static str>, Status> {
    match value {
        0 => Ok(None),
        v if v > 0 && (v as usize) <= names.len() => Ok(Some(names[v as usize - 1])),
        v => Err(invalid(field, &format!("unknown enum value {v}"))),
    }
}

const PROTOCOLS: &[&str] = &["tcp", "udp", "sctp"];
const FAMILIES: &[&str] = &["ipv4", "ipv6"];
const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];
const FORWARDINGS: &[&str] = &["dr", "nat", "tun"];
/// In the proto enum's order, from 1.
const SCHEDULER_FLAGS: &[&str] = &["sh-fallback", "sh-port", "mh-fallback", "mh-port"];
const CHECKS: &[&str] = &["tcp", "http", "misc", "https"];
const STATES: &[&str] = &["master", "backup"];

fn vs_json(v: &pb::VirtualServer, path: &str) -> Result<Value, Status> {
    let f = |n: &str| {
        if path.is_empty() {
            n.to_string()
        } else {
            format!("{path}.{n}")
        }
    };
    let mut m = Map::new();
    put(&mut m, "name", v.name.clone());
    put(&mut m, "address", v.address.clone());
    put(&mut m, "port", v.port);
    put(
        &mut m,
        "protocol",
        enum_name(&f("protocol"), v.protocol, PROTOCOLS)?,
    );
    put(&mut m, "fwmark", v.fwmark);
    put(
        &mut m,
        "family",
        enum_name(&f("family"), v.family, FAMILIES)?,
    );
    put(
        &mut m,
        "scheduler",
        enum_name(&f("scheduler"), v.scheduler, SCHEDULERS)?,
    );
    put(
        &mut m,
        "forwarding",
        enum_name(&f("forwarding"), v.forwarding, FORWARDINGS)?,
    );
    put(
        &mut m,
        "persistence_timeout_secs",
        v.persistence_timeout_secs,
    );
    put(&mut m, "persistence_granularity", v.persistence_granularity);
    put(&mut m, "delay_loop_ms", v.delay_loop_ms);
    if let Some(s) = &v.sorry_server {
        let mut sm = Map::new();
        sm.insert("address".into(), s.address.clone().into());
        put(&mut sm, "port", s.port);
        m.insert("sorry_server".into(), Value::Object(sm));
    }
    put(&mut m, "quorum", v.quorum);
    if v.hysteresis != 0 {
        m.insert("hysteresis".into(), v.hysteresis.into());
    }
    put(&mut m, "quorum_up", v.quorum_up.clone());
    put(&mut m, "quorum_down", v.quorum_down.clone());
    if v.alpha {
        m.insert("alpha".into(), true.into());
    }
    if v.omega {
        m.insert("omega".into(), true.into());
    }
    if v.one_packet {
        m.insert("one_packet".into(), true.into());
    }
    let flags = v
        .scheduler_flags
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let field = f(&format!("scheduler_flags[{i}]"));
            enum_name(&field, *x, SCHEDULER_FLAGS)?
                .map(Value::from)
                .ok_or_else(|| invalid(&field, "a scheduler flag must be given"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !flags.is_empty() {
        m.insert("scheduler_flags".into(), Value::Array(flags));
    }
    let rss = v
        .real_servers
        .iter()
        .enumerate()
        .map(|(i, r)| rs_json(r, &f(&format!("real_servers[{i}]")), false))
        .collect::<Result<Vec<_>, _>>()?;
    m.insert("real_servers".into(), Value::Array(rss));
    Ok(Value::Object(m))
}

/// `partial`: the message of an Update, where a health check may carry only the masked fields
/// (the merged result is checked by the model's parser all the same).
fn rs_json(r: &pb::RealServer, path: &str, partial: bool) -> Result<Value, Status> {
    let f = |n: &str| {
        if path.is_empty() {
            n.to_string()
        } else {
            format!("{path}.{n}")
        }
    };
    let mut m = Map::new();
    m.insert("address".into(), r.address.clone().into());
    put(&mut m, "port", r.port);
    put(&mut m, "weight", r.weight);
    put(
        &mut m,
        "forwarding",
        enum_name(&f("forwarding"), r.forwarding, FORWARDINGS)?,
    );
    m.insert("inhibit_on_failure".into(), r.inhibit_on_failure.into());
    put(&mut m, "upper_threshold", r.upper_threshold);
    put(&mut m, "lower_threshold", r.lower_threshold);
    if let Some(h) = &r.health_check {
        let hp = f("health_check");
        let mut hm = Map::new();
        match enum_name(&format!("{hp}.type"), h.r#type, CHECKS)? {
            Some(t) => hm.insert("type".into(), t.into()),
            None if partial => None,
            None => {
                return Err(invalid(
                    &format!("{hp}.type"),
                    "a health check needs a type (tcp, http, misc or https)",
                ))
            }
        };
        put(&mut hm, "connect_port", h.connect_port);
        put(&mut hm, "connect_timeout_ms", h.connect_timeout_ms);
        put(&mut hm, "retry", h.retry);
        put(&mut hm, "delay_before_retry_ms", h.delay_before_retry_ms);
        put(&mut hm, "rise", h.rise);
        put(&mut hm, "fall", h.fall);
        put(&mut hm, "path", h.path.clone());
        put(&mut hm, "expected_status", h.expected_status);
        put(&mut hm, "body_contains", h.body_contains.clone());
        if !h.urls.is_empty() {
            let urls = h
                .urls
                .iter()
                .map(|u| {
                    let mut um = Map::new();
                    um.insert("path".into(), u.path.clone().into());
                    if !u.status_codes.is_empty() {
                        um.insert("status_codes".into(), u.status_codes.clone().into());
                    }
                    put(&mut um, "digest", u.digest.clone());
                    Value::Object(um)
                })
                .collect();
            hm.insert("urls".into(), Value::Array(urls));
        }
        put(&mut hm, "misc_path", h.misc_path.clone());
        put(&mut hm, "misc_timeout_ms", h.misc_timeout_ms);
        if h.misc_dynamic {
            hm.insert("misc_dynamic".into(), true.into());
        }
        put(&mut hm, "user", h.user.clone());
        put(&mut hm, "tls_ca_file", h.tls_ca_file.clone());
        put(&mut hm, "tls_server_name", h.tls_server_name.clone());
        put(&mut hm, "virtualhost", h.virtualhost.clone());
        m.insert("health_check".into(), Value::Object(hm));
    }
    Ok(Value::Object(m))
}

fn group_json(g: &pb::VrrpGroup, path: &str) -> Result<Value, Status> {
    let f = |n: &str| {
        if path.is_empty() {
            n.to_string()
        } else {
            format!("{path}.{n}")
        }
    };
    let mut m = Map::new();
    m.insert("name".into(), g.name.clone().into());
    m.insert("vrid".into(), g.vrid.into());
    put(&mut m, "version", g.version);
    put(&mut m, "advert_interval_ms", g.advert_interval_ms);
    put(&mut m, "auth_pass", g.auth_pass.clone());
    // A plain "addr/prefix" goes as it is; one with keepalived's options
    // ("192.0.2.10/24 dev eth1 label eth1:vip") becomes the REST API's object form.
    let mut vips = Vec::new();
    for (i, v) in g.virtual_addresses.iter().enumerate() {
        let words: Vec<String> = v.split_whitespace().map(str::to_string).collect();
        if words.len() <= 1 {
            vips.push(Value::from(v.clone()));
            continue;
        }
        let field = f(&format!("virtual_addresses[{i}]"));
        match crate::model::VirtualAddress::parse_keepalived(&words) {
            Ok((va, ig)) if ig.is_empty() => {
                vips.push(serde_json::to_value(&va).map_err(|e| invalid(&field, &e.to_string()))?)
            }
            Ok((_, ig)) => {
                return Err(invalid(
                    &field,
                    &format!("lbd does not carry out `{}`", ig.join(" ")),
                ))
            }
            Err(e) => return Err(invalid(&field, &e)),
        }
    }
    m.insert("virtual_addresses".into(), Value::Array(vips));
    // Routes and rules in keepalived's syntax, to the REST API's objects.
    let mut routes = Vec::new();
    for (i, r) in g.virtual_routes.iter().enumerate() {
        let field = f(&format!("virtual_routes[{i}]"));
        let r: crate::model::VirtualRoute = r.parse().map_err(|e: String| invalid(&field, &e))?;
        routes.push(serde_json::to_value(&r).map_err(|e| invalid(&field, &e.to_string()))?);
    }
    m.insert("virtual_routes".into(), Value::Array(routes));
    let mut rules = Vec::new();
    for (i, r) in g.virtual_rules.iter().enumerate() {
        let field = f(&format!("virtual_rules[{i}]"));
        let r: crate::model::VirtualRule = r.parse().map_err(|e: String| invalid(&field, &e))?;
        rules.push(serde_json::to_value(&r).map_err(|e| invalid(&field, &e.to_string()))?);
    }
    m.insert("virtual_rules".into(), Value::Array(rules));
    put(&mut m, "preempt", g.preempt);
    put(&mut m, "preempt_delay_ms", g.preempt_delay_ms);
    m.insert("unicast_peers".into(), json!(g.unicast_peers));
    if let Some(gs) = &g.garp {
        let mut gm = Map::new();
        put(&mut gm, "count", gs.count);
        put(&mut gm, "repeat_delay_ms", gs.repeat_delay_ms);
        put(&mut gm, "refresh_interval_ms", gs.refresh_interval_ms);
        put(&mut gm, "interval_ms", gs.interval_ms);
        put(&mut gm, "na_interval_ms", gs.na_interval_ms);
        m.insert("garp".into(), Value::Object(gm));
    }
    m.insert("track_interfaces".into(), json!(g.track_interfaces));
    let weighted: Vec<Value> = g
        .track_interfaces_weighted
        .iter()
        .map(|t| json!({"interface": t.interface, "weight": t.weight}))
        .collect();
    m.insert("track_interfaces_weighted".into(), Value::Array(weighted));
    let vss: Vec<Value> = g
        .track_virtual_servers
        .iter()
        .map(|t| json!({"virtual_server": t.virtual_server, "weight": t.weight}))
        .collect();
    m.insert("track_virtual_servers".into(), Value::Array(vss));
    let scripts: Vec<Value> = g
        .track_scripts
        .iter()
        .map(|t| {
            let mut sm = Map::new();
            sm.insert("name".into(), t.name.clone().into());
            sm.insert("command".into(), t.command.clone().into());
            put(&mut sm, "interval_ms", t.interval_ms);
            put(&mut sm, "timeout_ms", t.timeout_ms);
            sm.insert("weight".into(), t.weight.into());
            put(&mut sm, "rise", t.rise);
            put(&mut sm, "fall", t.fall);
            Value::Object(sm)
        })
        .collect();
    m.insert("track_scripts".into(), Value::Array(scripts));
    if let Some(n) = &g.notify {
        m.insert("notify".into(), notify_json(n));
    }
    put(&mut m, "use_vmac", g.use_vmac);
    put(&mut m, "vmac_name", g.vmac_name.clone());
    put(&mut m, "vmac_xmit_base", g.vmac_xmit_base);
    let nodes = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| node_json(n, &f(&format!("nodes[{i}]"))))
        .collect::<Result<Vec<_>, Status>>()?;
    m.insert("nodes".into(), Value::Array(nodes));
    Ok(Value::Object(m))
}

fn node_json(n: &pb::VrrpNode, path: &str) -> Result<Value, Status> {
    let f = |x: &str| {
        if path.is_empty() {
            x.to_string()
        } else {
            format!("{path}.{x}")
        }
    };
    let mut nm = Map::new();
    nm.insert("node".into(), n.node.clone().into());
    nm.insert("priority".into(), n.priority.into());
    nm.insert("interface".into(), n.interface.clone().into());
    put(
        &mut nm,
        "initial_state",
        enum_name(&f("initial_state"), n.initial_state, STATES)?,
    );
    put(&mut nm, "unicast_src", n.unicast_src.clone());
    Ok(Value::Object(nm))
}

/// The model JSON of a message an Update carries (an absent message is an empty one: every
/// field the mask names is reset).
pub fn virtual_server_json(v: Option<pb::VirtualServer>) -> Result<Value, Status> {
    vs_json(&v.unwrap_or_default(), "")
}

pub fn real_server_json(r: Option<pb::RealServer>) -> Result<Value, Status> {
    rs_json(&r.unwrap_or_default(), "", true)
}

pub fn vrrp_group_json(g: Option<pb::VrrpGroup>) -> Result<Value, Status> {
    group_json(&g.unwrap_or_default(), "")
}

pub fn vrrp_node_json(n: Option<pb::VrrpNode>) -> Result<Value, Status> {
    node_json(&n.unwrap_or_default(), "")
}

pub fn virtual_server_in(v: Option<pb::VirtualServer>) -> Result<VirtualServer, Status> {
    let v = v.ok_or_else(|| invalid("virtual_server", "is required"))?;
    parse(vs_json(&v, "")?, "")
}

pub fn real_server_in(r: Option<pb::RealServer>) -> Result<RealServer, Status> {
    let r = r.ok_or_else(|| invalid("real_server", "is required"))?;
    parse(rs_json(&r, "", false)?, "")
}

pub fn vrrp_group_in(g: Option<pb::VrrpGroup>) -> Result<VrrpGroup, Status> {
    let g = g.ok_or_else(|| invalid("vrrp_group", "is required"))?;
    parse(group_json(&g, "")?, "")
}

pub fn config_in(c: Option<pb::Config>) -> Result<Config, Status> {
    let c = c.unwrap_or_default();
    let vss = c
        .virtual_servers
        .iter()
        .enumerate()
        .map(|(i, v)| vs_json(v, &format!("virtual_servers[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let gs = c
        .vrrp_groups
        .iter()
        .enumerate()
        .map(|(i, g)| group_json(g, &format!("vrrp_groups[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut m = Map::new();
    m.insert("virtual_servers".into(), vss.into());
    m.insert("vrrp_groups".into(), gs.into());
    put(
        &mut m,
        "ipvs_timeouts",
        c.ipvs_timeouts.as_ref().map(timeouts_json),
    );
    put(
        &mut m,
        "connection_sync",
        c.connection_sync.as_ref().map(connection_sync_json),
    );
    put(
        &mut m,
        "vrrp_settings",
        c.vrrp_settings.as_ref().map(vrrp_settings_json),
    );
    parse(Value::Object(m), "")
}

fn notify_json(n: &pb::Notify) -> Value {
    let mut nm = Map::new();
    put(&mut nm, "master", n.master.clone());
    put(&mut nm, "backup", n.backup.clone());
    put(&mut nm, "fault", n.fault.clone());
    put(&mut nm, "stop", n.stop.clone());
    put(&mut nm, "any", n.any.clone());
    put(&mut nm, "timeout_ms", n.timeout_ms);
    Value::Object(nm)
}

fn notify_out(n: &crate::model::Notify) -> Option<pb::Notify> {
    (!n.is_empty()).then(|| pb::Notify {
        master: n.master.clone(),
        backup: n.backup.clone(),
        fault: n.fault.clone(),
        stop: n.stop.clone(),
        any: n.any.clone(),
        timeout_ms: Some(n.timeout_ms),
    })
}

fn vrrp_settings_json(v: &pb::VrrpSettings) -> Value {
    let groups: Vec<Value> = v
        .sync_groups
        .iter()
        .map(|sg| {
            let mut m = Map::new();
            m.insert("name".into(), sg.name.clone().into());
            m.insert("groups".into(), json!(sg.groups));
            if let Some(n) = &sg.notify {
                m.insert("notify".into(), notify_json(n));
            }
            Value::Object(m)
        })
        .collect();
    json!({"strict": v.strict, "sync_groups": groups})
}

/// The VRRP settings of a request (absent: the defaults). Errors name
/// `vrrp_settings.FIELD`.
pub fn vrrp_settings_in(v: Option<pb::VrrpSettings>) -> Result<crate::model::VrrpSettings, Status> {
    match v {
        None => Ok(crate::model::VrrpSettings::default()),
        Some(v) => parse(vrrp_settings_json(&v), "vrrp_settings"),
    }
}

pub fn vrrp_settings_out(v: &crate::model::VrrpSettings) -> pb::VrrpSettings {
    pb::VrrpSettings {
        strict: v.strict,
        sync_groups: v
            .sync_groups
            .iter()
            .map(|sg| pb::VrrpSyncGroup {
                name: sg.name.clone(),
                groups: sg.groups.clone(),
                notify: notify_out(&sg.notify),
            })
            .collect(),
    }
}

fn connection_sync_json(c: &pb::ConnectionSync) -> Value {
    let mut m = Map::new();
    m.insert("interface".into(), c.interface.clone().into());
    m.insert("sync_id".into(), c.sync_id.into());
    put(&mut m, "maxlen", c.maxlen);
    put(&mut m, "port", c.port);
    put(&mut m, "ttl", c.ttl);
    put(&mut m, "group", c.group.clone());
    put(&mut m, "vrrp_group", c.vrrp_group.clone());
    put(&mut m, "failback_hold_ms", c.failback_hold_ms);
    Value::Object(m)
}

/// The connection-sync setting of a request (`None`: remove it). Errors name
/// `connection_sync.FIELD`.
pub fn connection_sync_in(
    c: Option<pb::ConnectionSync>,
) -> Result<Option<crate::model::ConnectionSync>, Status> {
    c.map(|c| {
        // Validated by the service's write, whose error names `connection_sync.FIELD`.
        parse(connection_sync_json(&c), "connection_sync")
    })
    .transpose()
}

pub fn connection_sync_out(c: &crate::model::ConnectionSync) -> pb::ConnectionSync {
    pb::ConnectionSync {
        interface: c.interface.clone(),
        sync_id: u32::from(c.sync_id),
        maxlen: c.maxlen.map(u32::from),
        port: c.port.map(u32::from),
        ttl: c.ttl.map(u32::from),
        group: c.group.map(|g| g.to_string()),
        vrrp_group: c.vrrp_group.clone(),
        failback_hold_ms: Some(c.failback_hold_ms),
    }
}

fn timeouts_json(t: &pb::IpvsTimeouts) -> Value {
    json!({"tcp_secs": t.tcp_secs, "tcp_fin_secs": t.tcp_fin_secs, "udp_secs": t.udp_secs})
}

/// IPVS timeouts from a request; an unset message is all 0 (not managed).
pub fn timeouts_in(t: Option<pb::IpvsTimeouts>) -> Result<crate::model::IpvsTimeouts, Status> {
    parse(timeouts_json(&t.unwrap_or_default()), "timeouts")
}

pub fn timeouts_out(t: &crate::model::IpvsTimeouts) -> pb::IpvsTimeouts {
    pb::IpvsTimeouts {
        tcp_secs: t.tcp_secs.get(),
        tcp_fin_secs: t.tcp_fin_secs.get(),
        udp_secs: t.udp_secs.get(),
    }
}

/// The service a request names in the kernel's table, as the HTTP query names it.
pub fn service_ref_in(
    r: Option<pb::IpvsServiceRef>,
) -> Result<crate::api::ipvs::ServiceQuery, Status> {
    let Some(r) = r else {
        return Ok(crate::api::ipvs::ServiceQuery::default());
    };
    let mut m = Map::new();
    put(
        &mut m,
        "protocol",
        enum_name("service.protocol", r.protocol, PROTOCOLS)?,
    );
    put(&mut m, "address", r.address);
    put(&mut m, "port", r.port);
    put(&mut m, "fwmark", r.fwmark);
    put(
        &mut m,
        "family",
        enum_name("service.family", r.family, FAMILIES)?,
    );
    parse(Value::Object(m), "service")
}

// ---- outbound -----------------------------------------------------------------------------------

fn protocol(p: Protocol) -> i32 {
    match p {
        Protocol::Tcp => pb::Protocol::Tcp as i32,
        Protocol::Udp => pb::Protocol::Udp as i32,
        Protocol::Sctp => pb::Protocol::Sctp as i32,
    }
}

fn family(f: Family) -> i32 {
    match f {
        Family::Ipv4 => pb::Family::Ipv4 as i32,
        Family::Ipv6 => pb::Family::Ipv6 as i32,
    }
}

fn scheduler(s: Scheduler) -> i32 {
    // The proto enum lists the schedulers in the model's order, from 1.
    SCHEDULERS
        .iter()
        .position(|n| *n == s.kernel_name())
        .map_or(0, |i| i as i32 + 1)
}

fn forwarding(f: Forwarding) -> i32 {
    match f {
        Forwarding::Dr => pb::Forwarding::Dr as i32,
        Forwarding::Nat => pb::Forwarding::Nat as i32,
        Forwarding::Tun => pb::Forwarding::Tun as i32,
    }
}

/// The kernel's table as `GetIpvs` answers it.
pub fn ipvs_out(revision: u64, v: &crate::dataplane::view::IpvsTableView) -> pb::GetIpvsResponse {
    let stats = |s: &crate::ipvs::table::Stats| pb::IpvsStats {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
        cps: s.cps,
        inpps: s.inpps,
        outpps: s.outpps,
        inbps: s.inbps,
        outbps: s.outbps,
    };
    let services = v
        .services
        .iter()
        .map(|s| pb::IpvsService {
            protocol: s.protocol.map_or(0, protocol),
            address: s.address.map(|a| a.to_string()),
            port: s.port.map(u32::from),
            fwmark: s.fwmark,
            family: family(s.family),
            scheduler: s.scheduler.clone(),
            flags: s.flags,
            timeout_secs: s.timeout_secs,
            netmask_prefix: u32::from(s.netmask_prefix),
            stats: Some(stats(&s.stats)),
            destinations: s
                .destinations
                .iter()
                .map(|d| pb::IpvsDestination {
                    address: d.address.to_string(),
                    port: u32::from(d.port),
                    forwarding: forwarding(d.forwarding),
                    weight: d.weight,
                    upper_threshold: d.upper_threshold,
                    lower_threshold: d.lower_threshold,
                    active_conns: d.active_conns,
                    inactive_conns: d.inactive_conns,
                    persistent_conns: d.persistent_conns,
                    stats: Some(stats(&d.stats)),
                })
                .collect(),
        })
        .collect();
    pb::GetIpvsResponse {
        revision,
        services,
        timeouts: v.timeouts.map(|t| pb::IpvsTimeouts {
            tcp_secs: t.tcp_secs,
            tcp_fin_secs: t.tcp_fin_secs,
            udp_secs: t.udp_secs,
        }),
    }
}

pub fn connection_out(c: &crate::dataplane::view::Connection) -> pb::IpvsConnection {
    pb::IpvsConnection {
        protocol: c.protocol.clone(),
        client: c.client.to_string(),
        client_port: u32::from(c.client_port),
        virtual_address: c.virtual_address.to_string(),
        virtual_port: u32::from(c.virtual_port),
        destination: c.destination.to_string(),
        destination_port: u32::from(c.destination_port),
        state: c.state.clone(),
        expires_secs: c.expires_secs,
    }
}

fn health_check(h: &HealthCheck) -> pb::HealthCheck {
    pb::HealthCheck {
        r#type: match h.kind {
            CheckKind::Tcp => pb::CheckKind::Tcp as i32,
            CheckKind::Http => pb::CheckKind::Http as i32,
            CheckKind::Misc => pb::CheckKind::Misc as i32,
            CheckKind::Https => pb::CheckKind::Https as i32,
        },
        connect_port: h.connect_port.map(u32::from),
        connect_timeout_ms: Some(h.connect_timeout_ms),
        retry: Some(h.retry),
        delay_before_retry_ms: Some(h.delay_before_retry_ms),
        rise: h.rise,
        fall: h.fall,
        path: h.path.clone(),
        expected_status: h.expected_status.map(u32::from),
        body_contains: h.body_contains.clone(),
        urls: h
            .urls
            .iter()
            .map(|u| pb::UrlCheck {
                path: u.path.clone(),
                status_codes: u.status_codes.iter().map(|c| c.to_string()).collect(),
                digest: u.digest.clone(),
            })
            .collect(),
        misc_path: h.misc_path.clone(),
        misc_timeout_ms: h.misc_timeout_ms,
        misc_dynamic: h.misc_dynamic,
        user: h.user.clone(),
        tls_ca_file: h.tls_ca_file.clone(),
        tls_server_name: h.tls_server_name.clone(),
        virtualhost: h.virtualhost.clone(),
    }
}

pub fn real_server_out(r: &RealServer) -> pb::RealServer {
    pb::RealServer {
        id: r.id,
        address: r.address.to_string(),
        port: r.port.map(u32::from),
        weight: Some(r.weight.get()),
        forwarding: r.forwarding.map_or(0, forwarding),
        inhibit_on_failure: r.inhibit_on_failure,
        upper_threshold: r.upper_threshold,
        lower_threshold: r.lower_threshold,
        health_check: r.health_check.as_ref().map(health_check),
    }
}

pub fn virtual_server_out(v: &VirtualServer) -> pb::VirtualServer {
    pb::VirtualServer {
        id: v.id,
        name: v.name.clone(),
        address: v.address.map(|a| a.to_string()),
        port: v.port.map(u32::from),
        protocol: v.protocol.map_or(0, protocol),
        fwmark: v.fwmark,
        family: v.family.map_or(0, family),
        scheduler: scheduler(v.scheduler),
        forwarding: forwarding(v.forwarding),
        persistence_timeout_secs: v.persistence_timeout_secs,
        persistence_granularity: v.persistence_granularity.map(u32::from),
        delay_loop_ms: Some(v.delay_loop_ms),
        sorry_server: v.sorry_server.as_ref().map(|s| pb::SorryServer {
            address: s.address.to_string(),
            port: s.port.map(u32::from),
        }),
        quorum: v.quorum,
        hysteresis: v.hysteresis,
        quorum_up: v.quorum_up.clone(),
        quorum_down: v.quorum_down.clone(),
        alpha: v.alpha,
        omega: v.omega,
        real_servers: v.real_servers.iter().map(real_server_out).collect(),
        one_packet: v.one_packet,
        scheduler_flags: v
            .scheduler_flags
            .iter()
            .map(|x| {
                SCHEDULER_FLAGS
                    .iter()
                    .position(|n| *n == x.name())
                    .map_or(0, |i| i as i32 + 1)
            })
            .collect(),
    }
}

pub fn vrrp_group_out(g: &VrrpGroup) -> pb::VrrpGroup {
    pb::VrrpGroup {
        id: g.id,
        name: g.name.clone(),
        vrid: u32::from(g.vrid.get()),
        version: Some(u32::from(g.version)),
        advert_interval_ms: Some(g.advert_interval_ms),
        // Write-only (see the proto): readers learn whether one is stored.
        auth_pass: None,
        auth_pass_set: g.auth_pass.is_some(),
        virtual_addresses: g.virtual_addresses.iter().map(|v| v.keepalived()).collect(),
        virtual_routes: g.virtual_routes.iter().map(|r| r.to_string()).collect(),
        virtual_rules: g.virtual_rules.iter().map(|r| r.to_string()).collect(),
        preempt: Some(g.preempt),
        preempt_delay_ms: Some(g.preempt_delay_ms),
        unicast_peers: g.unicast_peers.iter().map(|p| p.to_string()).collect(),
        garp: Some(pb::GarpSettings {
            count: Some(g.garp.count),
            repeat_delay_ms: Some(g.garp.repeat_delay_ms),
            refresh_interval_ms: Some(g.garp.refresh_interval_ms.unwrap_or(0)),
            interval_ms: Some(g.garp.interval_ms),
            na_interval_ms: Some(g.garp.na_interval_ms),
        }),
        track_interfaces: g.track_interfaces.clone(),
        nodes: g.nodes.iter().map(vrrp_node_out).collect(),
        track_interfaces_weighted: g
            .track_interfaces_weighted
            .iter()
            .map(|t| pb::TrackedInterface {
                interface: t.interface.clone(),
                weight: t.weight,
            })
            .collect(),
        track_virtual_servers: g
            .track_virtual_servers
            .iter()
            .map(|t| pb::TrackedVirtualServer {
                virtual_server: t.virtual_server.clone(),
                weight: t.weight,
            })
            .collect(),
        track_scripts: g
            .track_scripts
            .iter()
            .map(|t| pb::TrackScript {
                name: t.name.clone(),
                command: t.command.clone(),
                interval_ms: Some(t.interval_ms),
                timeout_ms: t.timeout_ms,
                weight: t.weight,
                rise: Some(t.rise),
                fall: Some(t.fall),
            })
            .collect(),
        notify: notify_out(&g.notify),
        use_vmac: Some(g.use_vmac),
        vmac_name: g.vmac_name.clone(),
        vmac_xmit_base: Some(g.vmac_xmit_base),
    }
}

pub fn vrrp_node_out(n: &VrrpNode) -> pb::VrrpNode {
    pb::VrrpNode {
        node: n.node.clone(),
        priority: u32::from(n.priority.get()),
        interface: n.interface.clone(),
        initial_state: match n.initial_state {
            InitialState::Master => pb::InitialState::Master as i32,
            InitialState::Backup => pb::InitialState::Backup as i32,
        },
        unicast_src: n.unicast_src.map(|s| s.to_string()),
    }
}

pub fn config_out(c: &Config) -> pb::Config {
    pb::Config {
        virtual_servers: c
            .virtual_servers
            .iter()
            .map(|v| virtual_server_out(v))
            .collect(),
        vrrp_groups: c.vrrp_groups.iter().map(vrrp_group_out).collect(),
        ipvs_timeouts: c.ipvs_timeouts.as_ref().map(timeouts_out),
        connection_sync: c.connection_sync.as_ref().map(connection_sync_out),
        vrrp_settings: (!c.vrrp_settings.is_default()).then(|| vrrp_settings_out(&c.vrrp_settings)),
    }
}

pub fn change_out(c: &Change) -> pb::Change {
    pb::Change {
        op: match c.op {
            ChangeOp::Add => pb::ChangeOp::Add as i32,
            ChangeOp::Remove => pb::ChangeOp::Remove as i32,
            ChangeOp::Update => pb::ChangeOp::Update as i32,
        },
        kind: match c.kind {
            EntityKind::VirtualServer => pb::EntityKind::VirtualServer as i32,
            EntityKind::RealServer => pb::EntityKind::RealServer as i32,
            EntityKind::VrrpGroup => pb::EntityKind::VrrpGroup as i32,
            EntityKind::IpvsTimeouts => pb::EntityKind::IpvsTimeouts as i32,
            EntityKind::ConnectionSync => pb::EntityKind::ConnectionSync as i32,
            EntityKind::VrrpSettings => pb::EntityKind::VrrpSettings as i32,
        },
        id: c.id,
        parent_id: c.parent_id,
        key: c.key.clone(),
        fields: c
            .fields
            .iter()
            .map(|f| pb::FieldChange {
                field: f.field.clone(),
                from_json: f.from.to_string(),
                to_json: f.to.to_string(),
            })
            .collect(),
    }
}

pub fn result_out<T>(r: &WriteResult<T>) -> pb::WriteResult {
    pb::WriteResult {
        revision: r.revision,
        dry_run: r.dry_run,
        changes: r.changes.iter().map(change_out).collect(),
    }
}

pub fn connection_sync_status_out(
    c: &crate::control::status::ConnectionSyncStatus,
) -> pb::ConnectionSyncStatus {
    use crate::control::status::{SyncDaemonReason as R, SyncDaemonState as S};
    use crate::ipvs::table::SyncRole;
    pb::ConnectionSyncStatus {
        managed: c.managed,
        daemons: c
            .daemons
            .iter()
            .map(|d| pb::SyncDaemonStatus {
                role: match d.role {
                    SyncRole::Master => pb::SyncRole::Master,
                    SyncRole::Backup => pb::SyncRole::Backup,
                } as i32,
                state: match d.state {
                    S::Running => pb::SyncDaemonState::Running,
                    S::Stopped => pb::SyncDaemonState::Stopped,
                    S::Error => pb::SyncDaemonState::Error,
                } as i32,
                reason: match d.reason {
                    None => pb::SyncDaemonReason::Unspecified,
                    Some(R::NotConfigured) => pb::SyncDaemonReason::NotConfigured,
                    Some(R::OtherSettings) => pb::SyncDaemonReason::OtherSettings,
                    Some(R::StartRefused) => pb::SyncDaemonReason::StartRefused,
                    Some(R::KernelUnavailable) => pb::SyncDaemonReason::KernelUnavailable,
                } as i32,
                detail: d.detail.clone(),
                interface: d.interface.clone(),
                sync_id: d.sync_id.map(u32::from),
                maxlen: d.maxlen.map(u32::from),
                group: d.group.map(|g| g.to_string()),
                port: d.port.map(u32::from),
                ttl: d.ttl.map(u32::from),
            })
            .collect(),
        connections: c.connections.map(|n| n.total),
        connections_synced: c.connections.map(|n| n.synced),
        failback: c.failback.map(|f| {
            use crate::control::status::FailbackState as FS;
            pb::FailbackStatus {
                state: match f.state {
                    FS::Waiting => pb::FailbackState::Waiting,
                    FS::Open => pb::FailbackState::Open,
                } as i32,
                reason: f
                    .reason
                    .map_or(pb::FailbackReason::Unspecified, failback_reason)
                    as i32,
                synced: f.synced,
                waited_ms: f.waited_ms,
                bound_ms: f.bound_ms,
            }
        }),
    }
}

pub(super) fn failback_reason(r: crate::control::status::FailbackReason) -> pb::FailbackReason {
    use crate::control::status::FailbackReason as FR;
    match r {
        FR::StreamReceived => pb::FailbackReason::StreamReceived,
        FR::Bound => pb::FailbackReason::Bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// model -> proto -> model is the identity for a fully populated configuration (but for the
    /// write-only auth_pass).
    #[test]
    fn round_trip_is_identity() {
        let mut cfg: Config = serde_json::from_value(json!({
            "virtual_servers": [
                {"name": "web", "address": "192.168.10.100", "port": 80, "protocol": "sctp", "family": "ipv4",
                 "scheduler": "twos", "forwarding": "tun", "persistence_timeout_secs": 300,
                 "persistence_granularity": 24, "delay_loop_ms": 15000,
                 "sorry_server": {"address": "192.168.10.99", "port": 80}, "quorum": 2,
                 "real_servers": [{"address": "192.168.10.103", "port": 80, "weight": 7, "forwarding": "dr",
                     "inhibit_on_failure": true, "upper_threshold": 10, "lower_threshold": 5,
                     "health_check": {"type": "http", "connect_port": 8080, "connect_timeout_ms": 3000,
                        "retry": 3, "delay_before_retry_ms": 4000, "rise": 2, "fall": 3,
                        "path": "/h", "expected_status": 204, "body_contains": "ok"}},
                    {"address": "192.168.10.104", "health_check": {"type": "http", "urls": [
                        {"path": "/a", "status_codes": ["200-299", "304"],
                         "digest": "9e107d9d372bb6826bd81d3542a419d6"}, {"path": "/b"}]}}]},
                {"fwmark": 9, "family": "ipv6", "scheduler": "mh", "one_packet": true,
                 "scheduler_flags": ["mh-fallback", "mh-port"], "real_servers": []}],
            "vrrp_groups": [{"name": "VI_1", "vrid": 1, "version": 2, "advert_interval_ms": 1000,
                "auth_pass": "1234567", "virtual_addresses": ["192.168.10.100/24"], "preempt": false,
                "preempt_delay_ms": 300, "unicast_peers": ["192.168.10.102"],
                "garp": {"count": 3, "repeat_delay_ms": 100, "refresh_interval_ms": 2000},
                "track_interfaces": ["eth1"],
                "nodes": [{"node": "lk01", "priority": 100, "interface": "eth0", "initial_state": "master",
                           "unicast_src": "192.168.10.101"}]}]
        }))
        .unwrap();
        let v0 = std::sync::Arc::make_mut(&mut cfg.virtual_servers[0]);
        v0.id = 4;
        v0.real_servers[0].id = 5;
        let out = config_out(&cfg);
        // The one exception: auth_pass is write-only (a write without it keeps the stored one).
        assert!(out.vrrp_groups[0].auth_pass.is_none() && out.vrrp_groups[0].auth_pass_set);
        let back = config_in(Some(out)).unwrap();
        let strip = |mut c: Config| {
            for v in &mut c.virtual_servers {
                let v = std::sync::Arc::make_mut(v);
                v.id = 0;
                for r in &mut v.real_servers {
                    r.id = 0;
                }
            }
            for g in &mut c.vrrp_groups {
                g.auth_pass = None;
            }
            c
        };
        assert_eq!(back, strip(cfg));
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut v = virtual_server_out(
            &serde_json::from_value(json!({"address": "10.0.0.1", "port": 80})).unwrap(),
        );
        v.real_servers.push(pb::RealServer {
            address: "10.0.0.2".into(),
            weight: Some(70000),
            ..Default::default()
        });
        let e = virtual_server_in(Some(v.clone())).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "real_servers[0].weight: weight must be in 0..=65535, got 70000"
        );
        assert_eq!(
            e.metadata().get("lbd-field").unwrap(),
            "real_servers[0].weight"
        );
        v.real_servers.clear();
        v.scheduler = 99;
        let e = virtual_server_in(Some(v)).unwrap_err();
        assert_eq!(e.message(), "scheduler: unknown enum value 99");
    }
}
