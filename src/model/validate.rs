//! Validation with messages that name the field and say what would be accepted.
//!
//! Entity checks report fields relative to the entity (`real_servers[0].weight`); the whole-config
//! check prefixes them with the entity's place (`virtual_servers[2].real_servers[0].weight`).
//! Uniqueness problems are `Conflict` (HTTP 409, gRPC AlreadyExists), the rest `Invalid`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::config::Config;
use super::connection_sync::ConnectionSync;
use super::limits::*;
use super::real_server::{CheckKind, HealthCheck, RealServer};
use super::units::Centiseconds;
use super::virtual_server::{Family, Forwarding, Id, VirtualServer, VsKey};
use super::vrrp_group::VrrpGroup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub kind: ErrorKind,
    pub field: String,
    pub message: String,
    /// Which rule between fields (or beyond what a JSON Schema says) was broken: one of
    /// [`rule`]'s codes; `None` for a field's own limits, which the OpenAPI spec states.
    pub rule: Option<&'static str>,
}

/// The codes of the rules that involve more than one field's own value (the API's error body
/// carries them as `rule`). The OpenAPI spec expresses most of them in its schemas (variants
/// with `oneOf`/`anyOf`); [`rule::UNEXPRESSED`] lists those it can only describe.
pub mod rule {
    /// Address + port (+ protocol) or fwmark + family identify a virtual server, never both.
    pub const IDENTITY: &str = "identity";
    /// The addresses of one entity (virtual and real servers, sorry server; a group's virtual
    /// addresses, peers and source addresses) share one address family.
    pub const ADDRESS_FAMILY: &str = "address_family";
    /// Port 0 (all ports) only on a persistent virtual server.
    pub const PORT_ZERO: &str = "port_zero";
    /// `persistence_granularity` needs `persistence_timeout_secs` and is a prefix length of the
    /// address family.
    pub const PERSISTENCE: &str = "persistence";
    /// `one_packet` only on UDP or fwmark services.
    pub const ONE_PACKET: &str = "one_packet";
    /// `scheduler_flags` belong to the scheduler (`sh-*` to sh, `mh-*` to mh).
    pub const SCHEDULER_FLAG: &str = "scheduler_flag";
    /// `hysteresis` is less than the quorum (1 without one).
    pub const HYSTERESIS: &str = "hysteresis";
    /// A real server's port with its forwarding: dr and tun keep the virtual server's port, a
    /// nat real server does not listen on port 0, a nat real server of a fwmark service names
    /// its port.
    pub const REAL_SERVER_PORT: &str = "real_server_port";
    /// `lower_threshold` does not exceed a non-zero `upper_threshold`.
    pub const THRESHOLDS: &str = "thresholds";
    /// A health check's fields belong to its `type`; `urls` replaces `path` and
    /// `expected_status`.
    pub const CHECK_FIELDS: &str = "check_fields";
    /// A tcp or http check of a real server without a port (or with port 0) names its
    /// `connect_port`.
    pub const CHECK_PORT: &str = "check_port";
    /// The advertisement interval, `auth_pass` and IPv6 depend on the VRRP version.
    pub const VRRP_VERSION: &str = "vrrp_version";
    /// A virtual address is listed once (whatever its prefix length).
    pub const DUPLICATE_ADDRESS: &str = "duplicate_address";
    /// Priority 255 only for the address owner: the node's `unicast_src` is one of the
    /// group's virtual addresses.
    pub const ADDRESS_OWNER: &str = "address_owner";
    /// A value in the body must be the one the path names.
    pub const PATH_MISMATCH: &str = "path_mismatch";
    /// A status range (`"300-399"`) does not run backwards.
    pub const STATUS_RANGE: &str = "status_range";
    /// Text over its limit in bytes of UTF-8 (the spec's `maxLength` counts characters).
    pub const MAX_BYTES: &str = "max_bytes";
    /// An imported keepalived.conf is not valid (its syntax or values, with file:line).
    pub const KEEPALIVED_CONF: &str = "keepalived_conf";
    /// A VRRP group tracks the same interface, virtual server or script name twice.
    pub const DUPLICATE_TRACKER: &str = "duplicate_tracker";
    /// `connection_sync.group` is a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8).
    pub const MULTICAST_GROUP: &str = "multicast_group";
    /// A virtual address's `label` is its interface's name, or starts with it and a colon
    /// (the interface: its `dev`, else each node's).
    pub const VIP_LABEL: &str = "vip_label";
    /// A virtual route's or rule's fields agree: no bits beyond a prefix's length, `via` and
    /// `src` of the destination's family, `from` and `to` of one family, a unicast route with
    /// `via` or `dev` and another type with neither, a rule with `table` or `type`, `fwmask`
    /// with `fwmark`, each listed once.
    pub const VIRTUAL_ROUTE: &str = "virtual_route";
    /// A virtual MAC's settings agree (keepalived `use_vmac`): `vmac_name` and
    /// `vmac_xmit_base` only with `use_vmac`, a valid interface name that is none of the nodes'
    /// own, and `unicast_peers` only with `vmac_xmit_base`.
    pub const VMAC: &str = "vmac";

    /// A sync group names VRRP groups that exist, each in one sync group only.
    pub const SYNC_GROUP_MEMBER: &str = "sync_group_member";
    /// `vrrp_settings.strict` (keepalived `vrrp_strict`): no `auth_pass`, no
    /// `unicast_peers`, no `preempt_delay_ms`, and `initial_state` master exactly for the
    /// address owner (priority 255).
    pub const VRRP_STRICT: &str = "vrrp_strict";

    /// Every code, with what it means.
    pub const ALL: &[&str] = &[
        IDENTITY,
        ADDRESS_FAMILY,
        PORT_ZERO,
        PERSISTENCE,
        ONE_PACKET,
        SCHEDULER_FLAG,
        HYSTERESIS,
        REAL_SERVER_PORT,
        THRESHOLDS,
        CHECK_FIELDS,
        CHECK_PORT,
        VRRP_VERSION,
        DUPLICATE_ADDRESS,
        ADDRESS_OWNER,
        PATH_MISMATCH,
        STATUS_RANGE,
        MAX_BYTES,
        KEEPALIVED_CONF,
        DUPLICATE_TRACKER,
        MULTICAST_GROUP,
        SYNC_GROUP_MEMBER,
        VRRP_STRICT,
        VIP_LABEL,
        VIRTUAL_ROUTE,
        VMAC,
    ];

    /// The rules a request schema cannot state (wholly or in part): a schema-valid body can
    /// still break them. (`address_family` between a real server sent alone and its virtual
    /// server, known only from the path; `hysteresis` below a given quorum.)
    pub const UNEXPRESSED: &[&str] = &[
        ADDRESS_FAMILY,
        HYSTERESIS,
        REAL_SERVER_PORT,
        THRESHOLDS,
        CHECK_PORT,
        DUPLICATE_ADDRESS,
        ADDRESS_OWNER,
        PATH_MISMATCH,
        STATUS_RANGE,
        MAX_BYTES,
        KEEPALIVED_CONF,
        DUPLICATE_TRACKER,
        MULTICAST_GROUP,
        SYNC_GROUP_MEMBER,
        VRRP_STRICT,
        VIP_LABEL,
        VIRTUAL_ROUTE,
        VMAC,
    ];
}

impl ValidationError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            kind: ErrorKind::Invalid,
            field: field.into(),
            message: message.into(),
            rule: None,
        }
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            kind: ErrorKind::Conflict,
            field: field.into(),
            message: message.into(),
            rule: None,
        }
    }

    /// Names the rule (one of [`rule`]'s codes) that was broken.
    pub fn rule(mut self, code: &'static str) -> Self {
        self.rule = Some(code);
        self
    }

    /// Places a relative field under `prefix` (`prefix.field`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

type Result<T = ()> = std::result::Result<T, ValidationError>;

fn ensure(ok: bool, field: &str, message: impl FnOnce() -> String) -> Result {
    if ok {
        Ok(())
    } else {
        Err(ValidationError::invalid(field, message()))
    }
}

/// [`ensure`] for a rule between fields: the error names the rule.
fn ensure_rule(
    code: &'static str,
    ok: bool,
    field: &str,
    message: impl FnOnce() -> String,
) -> Result {
    ensure(ok, field, message).map_err(|e| e.rule(code))
}

/// Text of at most `max` bytes; over it, the error says whether the spec's `maxLength` (which
/// counts characters) let it through.
fn ensure_bytes(s: &str, max: usize, field: &str, message: impl FnOnce() -> String) -> Result {
    if s.len() <= max {
        Ok(())
    } else if s.chars().count() <= max {
        Err(ValidationError::invalid(field, message()).rule(rule::MAX_BYTES))
    } else {
        Err(ValidationError::invalid(field, message()))
    }
}

/// Linux interface names: 1-15 bytes (IFNAMSIZ - 1), no '/', ':' or white space.
/// Why `addr` cannot be a service or server address, if it cannot: no host owns it.
pub fn special_address(addr: &IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        return Some("is the unspecified address");
    }
    if addr.is_multicast() {
        return Some("is a multicast address");
    }
    match addr {
        IpAddr::V4(a) if a.is_broadcast() => Some("is the limited broadcast address"),
        // 0.0.0.0/8 means "this host on this network" (RFC 1122 3.2.1.3); no host is reached at it.
        IpAddr::V4(a) if a.octets()[0] == 0 => Some("is in 0.0.0.0/8 (\"this network\")"),
        _ => None,
    }
}

fn check_ifname(field: &str, name: &str) -> Result {
    let message = || {
        format!(
            "`{name}` is not a valid interface name (1-{IFNAME_MAX_BYTES} characters, no '/', ':' or spaces)"
        )
    };
    ensure(
        !name.is_empty()
            && !name
                .chars()
                .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control()),
        field,
        message,
    )?;
    ensure_bytes(name, IFNAME_MAX_BYTES, field, message)
}

fn check_label(field: &str, s: &str, max: usize) -> Result {
    let message = || format!("must be 1-{max} characters without control characters");
    ensure(
        !s.is_empty() && !s.chars().any(|c| c.is_control()),
        field,
        message,
    )?;
    ensure_bytes(s, max, field, message)
}

/// Checks one virtual server and its real servers, without looking at the rest of the config.
pub fn virtual_server(vs: &VirtualServer) -> Result {
    if let Some(name) = &vs.name {
        check_label("name", name, VS_NAME_MAX_BYTES)?;
    }
    match (vs.address, vs.fwmark) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::invalid(
                "fwmark",
                "give either address (with port and protocol) or fwmark, not both",
            )
            .rule(rule::IDENTITY))
        }
        (None, None) => {
            return Err(ValidationError::invalid(
                "address",
                "a virtual server needs an address and port, or a fwmark",
            )
            .rule(rule::IDENTITY))
        }
        (Some(addr), None) => {
            let Some(port) = vs.port else {
                return Err(ValidationError::invalid(
                    "port",
                    "port is required with address (0 only for a persistent all-ports service)",
                )
                .rule(rule::IDENTITY));
            };
            ensure_rule(
                rule::PORT_ZERO,
                port != 0 || vs.persistence_timeout_secs.is_some(),
                "port",
                || {
                    "port 0 (all ports) is only allowed on a persistent service: set persistence_timeout_secs"
                    .into()
                },
            )?;
            if let Some(f) = vs.family {
                ensure_rule(
                    rule::ADDRESS_FAMILY,
                    f == Family::of(&addr),
                    "family",
                    || format!("family {f:?} does not match address {addr}").to_lowercase(),
                )?;
            }
            if let Some(why) = special_address(&addr) {
                return Err(ValidationError::invalid(
                    "address",
                    format!("{addr} cannot be a virtual server address: it {why}"),
                ));
            }
        }
        (None, Some(mark)) => {
            ensure(mark != 0, "fwmark", || {
                "fwmark must be 1..=4294967295".into()
            })?;
            ensure_rule(rule::IDENTITY, vs.family.is_some(), "family", || {
                "family (ipv4 or ipv6) is required with fwmark".into()
            })?;
            ensure_rule(rule::IDENTITY, vs.port.is_none(), "port", || {
                "a fwmark service has no port: the mark selects the traffic".into()
            })?;
            ensure_rule(rule::IDENTITY, vs.protocol.is_none(), "protocol", || {
                "a fwmark service has no protocol: the mark selects the traffic".into()
            })?;
        }
    }
    let family = vs.family().unwrap_or(Family::Ipv4);
    if let Some(t) = vs.persistence_timeout_secs {
        ensure(
            t >= PERSISTENCE_TIMEOUT_MIN_SECS,
            "persistence_timeout_secs",
            || "must be at least 1 second (omit it for a non-persistent service)".into(),
        )?;
    }
    if let Some(g) = vs.persistence_granularity {
        ensure_rule(
            rule::PERSISTENCE,
            vs.persistence_timeout_secs.is_some(),
            "persistence_granularity",
            || "needs persistence_timeout_secs".into(),
        )?;
        let max = family.max_prefix_len();
        ensure(g <= max, "persistence_granularity", || {
            format!("is a prefix length: 0..={max} for {family:?}").to_lowercase()
        })
        // Within IPv6's range, the limit is the family's.
        .map_err(|e| {
            if g <= Family::Ipv6.max_prefix_len() {
                e.rule(rule::PERSISTENCE)
            } else {
                e
            }
        })?;
    }
    ensure(
        vs.delay_loop_ms >= DELAY_LOOP_MIN_MS,
        "delay_loop_ms",
        || format!("must be at least {DELAY_LOOP_MIN_MS} ms"),
    )?;
    if let Some(s) = &vs.sorry_server {
        ensure_rule(
            rule::ADDRESS_FAMILY,
            Family::of(&s.address) == family,
            "sorry_server.address",
            || {
                format!(
                    "{} is not of the virtual server's address family",
                    s.address
                )
            },
        )?;
    }
    ensure_rule(
        rule::ONE_PACKET,
        !vs.one_packet
            || vs.fwmark.is_some()
            || vs.protocol == Some(super::virtual_server::Protocol::Udp),
        "one_packet",
        || "one-packet scheduling is for UDP (or fwmark) services only".into(),
    )?;
    for (i, f) in vs.scheduler_flags.iter().enumerate() {
        ensure_rule(
            rule::SCHEDULER_FLAG,
            f.scheduler() == vs.scheduler,
            &format!("scheduler_flags[{i}]"),
            || {
                format!(
                    "{} is a flag of the {} scheduler, not of {}",
                    f.name(),
                    f.scheduler().kernel_name(),
                    vs.scheduler.kernel_name()
                )
            },
        )?;
    }
    if let Some(q) = vs.quorum {
        ensure(q >= 1, "quorum", || {
            "must be at least 1 (omit it for no quorum)".into()
        })?;
    }
    let quorum = vs.quorum.unwrap_or(1);
    // Below the quorum: at `quorum - hysteresis` = 0 the quorum could never be lost.
    ensure_rule(
        rule::HYSTERESIS,
        vs.hysteresis < quorum,
        "hysteresis",
        || format!("must be less than the quorum ({quorum})"),
    )?;
    for (field, cmd) in [
        ("quorum_up", &vs.quorum_up),
        ("quorum_down", &vs.quorum_down),
    ] {
        if let Some(c) = cmd {
            quorum_command(field, c)?;
        }
    }
    let mut seen: HashMap<(IpAddr, Option<u16>), usize> = HashMap::new();
    for (i, rs) in vs.real_servers.iter().enumerate() {
        let prefix = format!("real_servers[{i}]");
        real_server(vs, rs).map_err(|e| e.under(&prefix))?;
        if let Some(j) = seen.insert((rs.address, rs.port), i) {
            return Err(ValidationError::conflict(
                format!("{prefix}.address"),
                format!(
                    "real server {} is listed twice (also real_servers[{j}])",
                    rs_label(rs)
                ),
            ));
        }
    }
    Ok(())
}

fn rs_label(rs: &RealServer) -> String {
    match (rs.address, rs.port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Checks a real server in the context of its virtual server.
pub fn real_server(vs: &VirtualServer, rs: &RealServer) -> Result {
    let family = vs.family().unwrap_or(Family::Ipv4);
    ensure_rule(
        rule::ADDRESS_FAMILY,
        Family::of(&rs.address) == family,
        "address",
        || {
            format!(
                "{} is not of the virtual server's address family ({})",
                rs.address,
                if family == Family::Ipv4 {
                    "ipv4"
                } else {
                    "ipv6"
                }
            )
        },
    )?;
    if let Some(why) = special_address(&rs.address) {
        return Err(ValidationError::invalid(
            "address",
            format!("{} cannot be a real server address: it {why}", rs.address),
        ));
    }
    let fwd = rs.forwarding.unwrap_or(vs.forwarding);
    match (vs.port, rs.port, fwd) {
        (Some(vport), Some(0), Forwarding::Nat) if vport != 0 => {
            return Err(ValidationError::invalid(
                "port",
                format!(
                    "a nat real server cannot listen on port 0: give its port (or omit it to use {vport})"
                ),
            )
            .rule(rule::REAL_SERVER_PORT))
        }
        (Some(vport), Some(rport), Forwarding::Dr | Forwarding::Tun) if vport != rport => {
            return Err(ValidationError::invalid(
                "port",
                format!(
                    "{} forwarding cannot change the port: use {vport} (the virtual server's) or omit it",
                    if fwd == Forwarding::Dr { "dr" } else { "tun" }
                ),
            )
            .rule(rule::REAL_SERVER_PORT))
        }
        (None, None, Forwarding::Nat) => {
            return Err(ValidationError::invalid(
                "port",
                "a nat real server of a fwmark service needs a port",
            )
            .rule(rule::REAL_SERVER_PORT))
        }
        _ => {}
    }
    if let (Some(u), Some(l)) = (rs.upper_threshold, rs.lower_threshold) {
        ensure_rule(
            rule::THRESHOLDS,
            u == 0 || l <= u,
            "lower_threshold",
            || format!("must not exceed upper_threshold ({u})"),
        )?;
    }
    if let Some(hc) = &rs.health_check {
        health_check(rs, hc).map_err(|e| e.under("health_check"))?;
    }
    Ok(())
}

/// The misc-only fields must be absent on other checks.
fn misc_absent(hc: &HealthCheck) -> Result {
    if let Some(v) = &hc.virtualhost {
        let message =
            || format!("must be a host name (1-{VIRTUALHOST_MAX_BYTES} characters, no spaces)");
        ensure(
            !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control()),
            "virtualhost",
            message,
        )?;
        ensure_bytes(v, VIRTUALHOST_MAX_BYTES, "virtualhost", message)?;
    }
    if hc.kind != CheckKind::Https {
        for (field, present) in [
            ("tls_ca_file", hc.tls_ca_file.is_some()),
            ("tls_server_name", hc.tls_server_name.is_some()),
        ] {
            ensure_rule(rule::CHECK_FIELDS, !present, field, || {
                format!("{field} is only for https checks")
            })?;
        }
    }
    for (field, present) in [
        ("misc_path", hc.misc_path.is_some()),
        ("misc_timeout_ms", hc.misc_timeout_ms.is_some()),
        ("misc_dynamic", hc.misc_dynamic),
        ("user", hc.user.is_some()),
    ] {
        ensure_rule(rule::CHECK_FIELDS, !present, field, || {
            format!("{field} is only for misc checks")
        })?;
    }
    Ok(())
}

/// A quorum command: an absolute program path and its arguments, run without a shell.
fn quorum_command(field: &str, cmd: &str) -> Result {
    ensure_bytes(cmd, COMMAND_MAX_BYTES, field, || {
        format!("must be at most {COMMAND_MAX_BYTES} bytes")
    })?;
    // keepalived.conf holds it as one double-quoted word (see the export).
    ensure(
        !cmd.chars().any(|c| c == '"' || c.is_control()),
        field,
        || "must not contain `\"` or control characters (quote arguments with ')".into(),
    )?;
    let argv = super::real_server::split_command(cmd);
    ensure(
        argv.first().is_some_and(|p| p.starts_with('/')),
        field,
        || "must be an absolute command path and its arguments".into(),
    )
}

fn track_weight(field: &str, w: i32) -> Result {
    ensure(
        (-TRACK_WEIGHT_MAX..=TRACK_WEIGHT_MAX).contains(&w),
        field,
        || format!("must be -{TRACK_WEIGHT_MAX}..={TRACK_WEIGHT_MAX}"),
    )
}

/// A VRRP group's tracked objects and notify commands.
fn tracking(g: &VrrpGroup) -> Result {
    let lists = [
        (
            "track_interfaces_weighted",
            g.track_interfaces_weighted.len(),
        ),
        ("track_virtual_servers", g.track_virtual_servers.len()),
        ("track_scripts", g.track_scripts.len()),
    ];
    for (field, n) in lists {
        ensure(n <= TRACKED_MAX, field, || {
            format!("at most {TRACKED_MAX} entries")
        })?;
    }
    let mut seen = HashSet::new();
    for (i, t) in g.track_interfaces_weighted.iter().enumerate() {
        let p = format!("track_interfaces_weighted[{i}]");
        check_ifname(&format!("{p}.interface"), &t.interface)?;
        track_weight(&format!("{p}.weight"), t.weight)?;
        ensure_rule(
            rule::DUPLICATE_TRACKER,
            seen.insert(t.interface.as_str()),
            &format!("{p}.interface"),
            || format!("interface {} is listed twice", t.interface),
        )?;
    }
    let mut seen = HashSet::new();
    for (i, t) in g.track_virtual_servers.iter().enumerate() {
        let p = format!("track_virtual_servers[{i}]");
        let field = format!("{p}.virtual_server");
        let key = VsKey::parse(&t.virtual_server);
        ensure(key.is_some(), &field, || {
            format!(
                "`{}` is not a virtual server as lbd writes it (\"tcp 192.0.2.1:80\", \"udp [2001:db8::1]:53\", \"fwmark 7 ipv4\")",
                t.virtual_server
            )
        })?;
        track_weight(&format!("{p}.weight"), t.weight)?;
        ensure_rule(rule::DUPLICATE_TRACKER, seen.insert(key), &field, || {
            format!("virtual server {} is listed twice", t.virtual_server)
        })?;
    }
    let mut seen = HashSet::new();
    for (i, t) in g.track_scripts.iter().enumerate() {
        let p = format!("track_scripts[{i}]");
        check_label(&format!("{p}.name"), &t.name, SCRIPT_NAME_MAX_BYTES)?;
        ensure_rule(
            rule::DUPLICATE_TRACKER,
            seen.insert(t.name.as_str()),
            &format!("{p}.name"),
            || format!("script {} is listed twice", t.name),
        )?;
        quorum_command(&format!("{p}.command"), &t.command)?;
        ensure(
            (SCRIPT_INTERVAL_MIN_MS..=SCRIPT_INTERVAL_MAX_MS).contains(&t.interval_ms),
            &format!("{p}.interval_ms"),
            || format!("must be {SCRIPT_INTERVAL_MIN_MS}..={SCRIPT_INTERVAL_MAX_MS} ms"),
        )?;
        if let Some(ms) = t.timeout_ms {
            ensure(
                (SCRIPT_TIMEOUT_MIN_MS..=SCRIPT_INTERVAL_MAX_MS).contains(&ms),
                &format!("{p}.timeout_ms"),
                || format!("must be {SCRIPT_TIMEOUT_MIN_MS}..={SCRIPT_INTERVAL_MAX_MS} ms"),
            )?;
        }
        track_weight(&format!("{p}.weight"), t.weight)?;
        for (name, v) in [("rise", t.rise), ("fall", t.fall)] {
            ensure(
                (1..=SCRIPT_RISE_FALL_MAX).contains(&v),
                &format!("{p}.{name}"),
                || format!("must be 1..={SCRIPT_RISE_FALL_MAX}"),
            )?;
        }
    }
    notify(&g.notify)
}

/// A group's or a sync group's notify commands (fields under `notify.`).
fn notify(n: &super::vrrp_group::Notify) -> Result {
    for (name, cmd) in [
        ("master", &n.master),
        ("backup", &n.backup),
        ("fault", &n.fault),
        ("stop", &n.stop),
        ("any", &n.any),
    ] {
        if let Some(c) = cmd {
            quorum_command(&format!("notify.{name}"), c)?;
        }
    }
    ensure(
        (SCRIPT_TIMEOUT_MIN_MS..=SCRIPT_INTERVAL_MAX_MS).contains(&n.timeout_ms),
        "notify.timeout_ms",
        || format!("must be {SCRIPT_TIMEOUT_MIN_MS}..={SCRIPT_INTERVAL_MAX_MS} ms"),
    )
}

fn health_check(rs: &RealServer, hc: &HealthCheck) -> Result {
    if hc.connect_port == Some(0) {
        return Err(ValidationError::invalid(
            "connect_port",
            "must be 1..=65535",
        ));
    }
    ensure_rule(
        rule::CHECK_PORT,
        hc.kind == CheckKind::Misc || hc.connect_port.is_some() || rs.port.is_some_and(|p| p != 0),
        "connect_port",
        || "required when the real server has no port".into(),
    )?;
    ensure(hc.connect_timeout_ms >= 1, "connect_timeout_ms", || {
        "must be at least 1 ms".into()
    })?;
    ensure(hc.retry <= RETRY_MAX, "retry", || {
        format!("must be 0..={RETRY_MAX}")
    })?;
    ensure(hc.rise != Some(0), "rise", || "must be at least 1".into())?;
    ensure(hc.fall != Some(0), "fall", || "must be at least 1".into())?;
    match hc.kind {
        CheckKind::Tcp => {
            for (field, present) in [
                ("path", hc.path.is_some()),
                ("expected_status", hc.expected_status.is_some()),
                ("body_contains", hc.body_contains.is_some()),
                ("urls", !hc.urls.is_empty()),
                ("virtualhost", hc.virtualhost.is_some()),
            ] {
                ensure_rule(rule::CHECK_FIELDS, !present, field, || {
                    format!("{field} is only for http checks")
                })?;
            }
            misc_absent(hc)?;
        }
        CheckKind::Misc => {
            let argv = super::real_server::split_command(hc.misc_path.as_deref().unwrap_or(""));
            ensure_rule(
                rule::CHECK_FIELDS,
                hc.misc_path.is_some(),
                "misc_path",
                || "a misc check needs misc_path".into(),
            )?;
            ensure(
                argv.first().is_some_and(|p| p.starts_with('/')),
                "misc_path",
                || {
                    "a misc check needs misc_path: an absolute command path and its arguments"
                        .into()
                },
            )?;
            if let Some(t) = hc.misc_timeout_ms {
                ensure(t >= 1, "misc_timeout_ms", || "must be at least 1 ms".into())?;
            }
            if let Some(u) = &hc.user {
                check_label("user", u, USER_MAX_BYTES)?;
            }
            for (field, present) in [
                ("tls_ca_file", hc.tls_ca_file.is_some()),
                ("tls_server_name", hc.tls_server_name.is_some()),
                ("virtualhost", hc.virtualhost.is_some()),
            ] {
                ensure_rule(rule::CHECK_FIELDS, !present, field, || {
                    format!("{field} is only for http/https checks")
                })?;
            }
            for (field, present) in [
                ("path", hc.path.is_some()),
                ("expected_status", hc.expected_status.is_some()),
                ("body_contains", hc.body_contains.is_some()),
                ("urls", !hc.urls.is_empty()),
            ] {
                ensure_rule(rule::CHECK_FIELDS, !present, field, || {
                    format!("{field} is only for http checks")
                })?;
            }
        }
        CheckKind::Http | CheckKind::Https => {
            if let Some(p) = &hc.path {
                ensure(
                    p.starts_with('/') && !p.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "path",
                    || "must start with '/' and contain no spaces".into(),
                )?;
            }
            if let Some(s) = hc.expected_status {
                ensure(
                    (HTTP_STATUS_MIN..=HTTP_STATUS_MAX).contains(&s),
                    "expected_status",
                    || format!("must be an HTTP status {HTTP_STATUS_MIN}..={HTTP_STATUS_MAX}"),
                )?;
            }
            if !hc.urls.is_empty() {
                for (field, present) in [
                    ("path", hc.path.is_some()),
                    ("expected_status", hc.expected_status.is_some()),
                ] {
                    ensure_rule(rule::CHECK_FIELDS, !present, field, || {
                        format!("give either {field} or urls, not both")
                    })?;
                }
                ensure(hc.urls.len() <= URLS_MAX, "urls", || {
                    format!("at most {URLS_MAX} urls")
                })?;
            }
            misc_absent(hc)?;
            for (i, u) in hc.urls.iter().enumerate() {
                ensure(
                    u.path.starts_with('/')
                        && !u.path.chars().any(|c| c.is_whitespace() || c.is_control()),
                    &format!("urls[{i}].path"),
                    || "must start with '/' and contain no spaces".into(),
                )?;
                for (j, s) in u.status_codes.iter().enumerate() {
                    ensure_rule(
                        rule::STATUS_RANGE,
                        s.from <= s.to,
                        &format!("urls[{i}].status_codes[{j}]"),
                        || format!("`{}-{}`: the range is empty", s.from, s.to),
                    )?;
                }
                if let Some(d) = &u.digest {
                    ensure(
                        d.len() == DIGEST_HEX_LEN && d.chars().all(|c| c.is_ascii_hexdigit()),
                        &format!("urls[{i}].digest"),
                        || "must be an MD5 digest: 32 hex digits".into(),
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// Whether `ms` is an advertisement interval of some VRRP version (the spec's own limits on
/// the field); which version's it must be is the rule `vrrp_version`.
fn any_advert_interval(ms: u32) -> bool {
    (V3_ADVERT_MIN_MS..=V2_ADVERT_MAX_MS).contains(&ms) && ms.is_multiple_of(V3_ADVERT_STEP_MS)
}

/// Checks one VRRP group alone.
pub fn vrrp_group(g: &VrrpGroup) -> Result {
    check_label("name", &g.name, GROUP_NAME_MAX_BYTES)?;
    ensure(!g.name.chars().any(char::is_whitespace), "name", || {
        "must not contain white space".into()
    })?;
    let version_rule = |e: ValidationError| {
        if any_advert_interval(g.advert_interval_ms) {
            e.rule(rule::VRRP_VERSION)
        } else {
            e
        }
    };
    match g.version {
        2 => {
            ensure(
                g.advert_interval_ms.is_multiple_of(V2_ADVERT_STEP_MS)
                    && (V2_ADVERT_MIN_MS..=V2_ADVERT_MAX_MS).contains(&g.advert_interval_ms),
                "advert_interval_ms",
                || {
                    format!(
                        "VRRPv2 advertises whole seconds, 1-255 s (RFC 3768 5.3.7); {} ms is not; use version 3 for sub-second intervals",
                        g.advert_interval_ms
                    )
                },
            )
            .map_err(version_rule)?;
            if let Some(p) = &g.auth_pass {
                let message = || {
                    format!("must be 1-{AUTH_PASS_MAX_BYTES} bytes (RFC 2338 simple text password)")
                };
                ensure(!p.is_empty(), "auth_pass", message)?;
                ensure_bytes(p, AUTH_PASS_MAX_BYTES, "auth_pass", message)?;
            }
        }
        3 => {
            ensure(
                Centiseconds::from_millis(g.advert_interval_ms)
                    .is_some_and(|c| (1..=4095).contains(&c.0)),
                "advert_interval_ms",
                || {
                    format!(
                        "VRRPv3 advertises centiseconds, 10-40950 ms in steps of 10 (RFC 5798 5.2.7); {} ms is not",
                        g.advert_interval_ms
                    )
                },
            )
            .map_err(version_rule)?;
            ensure_rule(
                rule::VRRP_VERSION,
                g.auth_pass.is_none(),
                "auth_pass",
                || {
                    "VRRPv3 has no authentication (RFC 5798 section 9): remove auth_pass or use version 2"
                    .into()
                },
            )?;
        }
        v => {
            return Err(ValidationError::invalid(
                "version",
                format!("VRRP version must be 2 or 3, got {v}"),
            ))
        }
    }
    ensure(!g.virtual_addresses.is_empty(), "virtual_addresses", || {
        "at least one virtual address is required".into()
    })?;
    ensure(
        g.virtual_addresses.len() <= VIRTUAL_ADDRESSES_MAX,
        "virtual_addresses",
        || format!("at most {VIRTUAL_ADDRESSES_MAX} (the advert's count field is one byte)"),
    )?;
    let family = g.family().unwrap_or(Family::Ipv4);
    let mut seen = HashSet::new();
    for (i, va) in g.virtual_addresses.iter().enumerate() {
        let field = format!("virtual_addresses[{i}]");
        ensure_rule(
            rule::ADDRESS_FAMILY,
            Family::of(&va.address) == family,
            &field,
            || {
                format!(
                    "one VRRP group carries one address family, as in keepalived: {} is not of the first address's family; put the IPv4 and the IPv6 addresses in two groups",
                    va.address
                )
            },
        )?;
        ensure_rule(
            rule::VRRP_VERSION,
            g.version == 3 || family == Family::Ipv4,
            &field,
            || "VRRPv2 carries IPv4 addresses only; use version 3 for IPv6".into(),
        )?;
        if let Some(why) = special_address(&va.address) {
            return Err(ValidationError::invalid(
                field,
                format!("{} cannot be a virtual address: it {why}", va.address),
            ));
        }
        ensure(!va.address.is_loopback(), &field, || {
            format!(
                "{} cannot be a virtual address: it is a loopback address",
                va.address
            )
        })?;
        ensure_rule(
            rule::DUPLICATE_ADDRESS,
            seen.insert(va.address),
            &field,
            || {
                format!("{} is listed twice (keepalived ignores a second VIP with the same address, whatever its options)", va.address)
            },
        )?;
        vip_options(g, va, &field)?;
    }
    virtual_routes(g)?;
    for (i, p) in g.unicast_peers.iter().enumerate() {
        ensure_rule(
            rule::ADDRESS_FAMILY,
            Family::of(p) == family,
            &format!("unicast_peers[{i}]"),
            || format!("{p} is not of the virtual addresses' family"),
        )?;
    }
    ensure(
        g.preempt_delay_ms <= PREEMPT_DELAY_MAX_MS,
        "preempt_delay_ms",
        || format!("must be at most {} s", PREEMPT_DELAY_MAX_MS / 1000),
    )?;
    ensure(g.garp.count <= GARP_COUNT_MAX, "garp.count", || {
        format!("must be 0..={GARP_COUNT_MAX}")
    })?;
    for (field, v) in [
        ("garp.interval_ms", g.garp.interval_ms),
        ("garp.na_interval_ms", g.garp.na_interval_ms),
    ] {
        ensure(v <= GARP_INTERVAL_MAX_MS, field, || {
            format!("must be 0..={GARP_INTERVAL_MAX_MS} ms")
        })?;
    }
    if let Some(r) = g.garp.refresh_interval_ms {
        ensure(
            r == 0 || r >= GARP_REFRESH_MIN_MS,
            "garp.refresh_interval_ms",
            || format!("must be at least {GARP_REFRESH_MIN_MS} ms (or 0/null for no refresh)"),
        )?;
    }
    for (i, t) in g.track_interfaces.iter().enumerate() {
        check_ifname(&format!("track_interfaces[{i}]"), t)?;
    }
    tracking(g)?;
    vmac(g)?;
    let mut names = HashSet::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let prefix = format!("nodes[{i}]");
        check_label(&format!("{prefix}.node"), &n.node, NODE_NAME_MAX_BYTES)?;
        if !names.insert(n.node.as_str()) {
            return Err(ValidationError::conflict(
                format!("{prefix}.node"),
                format!("node {} has two entries in this group", n.node),
            ));
        }
        check_ifname(&format!("{prefix}.interface"), &n.interface)?;
        if let Some(src) = n.unicast_src {
            ensure_rule(
                rule::ADDRESS_FAMILY,
                Family::of(&src) == family,
                &format!("{prefix}.unicast_src"),
                || format!("{src} is not of the virtual addresses' family"),
            )?;
        }
        if n.priority.get() == PRIORITY_OWNER {
            let owner = n
                .unicast_src
                .is_some_and(|src| g.virtual_addresses.iter().any(|v| v.address == src));
            ensure_rule(
                rule::ADDRESS_OWNER,
                owner,
                &format!("{prefix}.priority"),
                || {
                    "priority 255 is reserved for the address owner (RFC 5798 5.2.4): the node's unicast_src must be one of the virtual addresses; use 1-254".into()
                },
            )?;
        }
    }
    Ok(())
}

/// Checks the whole configuration: every entity, then what must be unique across entities.
///
/// When two entities clash, the error is reported on `focus` (the entity a request is about) if
/// it is one of them, otherwise on the later one.
pub fn config(cfg: &Config, focus: Option<Id>) -> Result {
    let all: Vec<usize> = (0..cfg.virtual_servers.len()).collect();
    config_changed(cfg, focus, &all)
}

/// Like [`config`], checking only the virtual servers at `changed` (the others were valid
/// already, shared with the last committed snapshot): a change to one virtual server checks
/// that one, and its key against the others, not the whole table again.
pub fn config_changed(cfg: &Config, focus: Option<Id>, changed: &[usize]) -> Result {
    if changed.len() * 8 < cfg.virtual_servers.len() {
        // Two unchanged virtual servers cannot clash (they were valid together before), so a
        // clash involves a changed one: compare each changed key with every other.
        for &i in changed {
            let vs = &cfg.virtual_servers[i];
            virtual_server(vs).map_err(|e| e.under(&format!("virtual_servers[{i}]")))?;
        }
        for &i in changed {
            let Some(key) = cfg.virtual_servers[i].key() else {
                continue;
            };
            let other = cfg
                .virtual_servers
                .iter()
                .enumerate()
                .find(|(j, o)| *j != i && o.key() == Some(key));
            if let Some((j, _)) = other {
                // Reported on the focus if it is one of the two, otherwise on the later one.
                let on_j = if focus.is_some() && focus == Some(cfg.virtual_servers[j].id) {
                    true
                } else if focus.is_some() && focus == Some(cfg.virtual_servers[i].id) {
                    false
                } else {
                    j > i
                };
                let (at, other) = if on_j { (j, i) } else { (i, j) };
                let vs = &cfg.virtual_servers[at];
                return Err(duplicate_vs(vs, key, &format!("virtual_servers[{other}]"))
                    .under(&format!("virtual_servers[{at}]")));
            }
        }
        return groups(cfg, focus);
    }
    let mut keys: HashMap<VsKey, usize> = HashMap::new();
    for (i, vs) in cfg.virtual_servers.iter().enumerate() {
        let prefix = format!("virtual_servers[{i}]");
        virtual_server(vs).map_err(|e| e.under(&prefix))?;
        if let Some(key) = vs.key() {
            if let Some(j) = keys.insert(key, i) {
                let (at, other) = if focus.is_some() && focus == Some(cfg.virtual_servers[j].id) {
                    (j, i)
                } else {
                    (i, j)
                };
                let vs = &cfg.virtual_servers[at];
                return Err(duplicate_vs(vs, key, &format!("virtual_servers[{other}]"))
                    .under(&format!("virtual_servers[{at}]")));
            }
        }
    }
    groups(cfg, focus)
}

/// Checks the connection-sync setting (fields relative to it).
pub fn connection_sync(cs: &ConnectionSync) -> Result {
    check_ifname("interface", &cs.interface)?;
    if let Some(m) = cs.maxlen {
        ensure(
            (SYNC_MAXLEN_MIN..=SYNC_MAXLEN_MAX).contains(&m),
            "maxlen",
            || format!("must be in {SYNC_MAXLEN_MIN}..={SYNC_MAXLEN_MAX}, got {m}"),
        )?;
    }
    ensure(cs.port != Some(0), "port", || {
        "must be in 1..=65535 (leave it out for the kernel's 8848)".into()
    })?;
    ensure(cs.ttl != Some(0), "ttl", || {
        "must be in 1..=255 (leave it out for the kernel's 1)".into()
    })?;
    if let Some(g) = cs.group {
        ensure_rule(rule::MULTICAST_GROUP, g.is_multicast(), "group", || {
            format!("`{g}` is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)")
        })?;
    }
    if let Some(n) = &cs.vrrp_group {
        check_label("vrrp_group", n, GROUP_NAME_MAX_BYTES)?;
    }
    ensure(
        cs.failback_hold_ms <= SYNC_FAILBACK_HOLD_MAX_MS,
        "failback_hold_ms",
        || {
            format!(
                "must be in 0..={SYNC_FAILBACK_HOLD_MAX_MS}, got {}",
                cs.failback_hold_ms
            )
        },
    )
}

/// Checks the VRRP settings against the groups of `cfg` (fields relative to
/// `vrrp_settings`): sync groups name existing VRRP groups, each in one sync group.
pub fn vrrp_settings(cfg: &Config) -> Result {
    let vs = &cfg.vrrp_settings;
    ensure(
        vs.sync_groups.len() <= SYNC_GROUPS_MAX,
        "sync_groups",
        || format!("at most {SYNC_GROUPS_MAX} sync groups"),
    )?;
    let mut names = HashSet::new();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for (i, sg) in vs.sync_groups.iter().enumerate() {
        let p = format!("sync_groups[{i}]");
        check_label(&format!("{p}.name"), &sg.name, GROUP_NAME_MAX_BYTES)?;
        if !names.insert(sg.name.as_str()) {
            return Err(ValidationError::conflict(
                format!("{p}.name"),
                format!("a sync group named {} already exists", sg.name),
            ));
        }
        ensure(!sg.groups.is_empty(), &format!("{p}.groups"), || {
            "names at least one VRRP group".into()
        })?;
        for (j, m) in sg.groups.iter().enumerate() {
            let field = format!("{p}.groups[{j}]");
            ensure_rule(
                rule::SYNC_GROUP_MEMBER,
                cfg.vrrp_groups.iter().any(|g| &g.name == m),
                &field,
                || format!("there is no VRRP group named `{m}`"),
            )?;
            if let Some(other) = member_of.insert(m.as_str(), sg.name.as_str()) {
                return Err(ValidationError::conflict(
                    field,
                    if other == sg.name {
                        format!("VRRP group {m} is listed twice")
                    } else {
                        format!("VRRP group {m} is already in sync group {other}; a group is in at most one")
                    },
                )
                .rule(rule::SYNC_GROUP_MEMBER));
            }
        }
        notify(&sg.notify).map_err(|e| e.under(&p))?;
    }
    Ok(())
}

/// keepalived's `vrrp_strict` checks for one group (fields relative to it).
pub fn vrrp_strict(g: &VrrpGroup) -> Result {
    let why = "vrrp_settings.strict (keepalived vrrp_strict)";
    ensure_rule(
        rule::VRRP_STRICT,
        g.auth_pass.is_none(),
        "auth_pass",
        || format!("{why} allows no authentication (RFC 5798 has none)"),
    )?;
    ensure_rule(
        rule::VRRP_STRICT,
        g.unicast_peers.is_empty(),
        "unicast_peers",
        || format!("{why} allows no unicast peers: adverts go to the VRRP multicast group"),
    )?;
    ensure_rule(
        rule::VRRP_STRICT,
        g.preempt_delay_ms == 0,
        "preempt_delay_ms",
        || format!("{why} allows no preempt delay"),
    )?;
    for (i, n) in g.nodes.iter().enumerate() {
        let owner = n.priority.get() == PRIORITY_OWNER;
        let master = n.initial_state == super::vrrp_group::InitialState::Master;
        ensure_rule(
            rule::VRRP_STRICT,
            owner == master,
            &format!("nodes[{i}].initial_state"),
            || format!("{why}: initial_state master exactly for the address owner (priority 255)"),
        )?;
    }
    Ok(())
}

fn groups(cfg: &Config, focus: Option<Id>) -> Result {
    if let Some(cs) = &cfg.connection_sync {
        connection_sync(cs).map_err(|e| e.under("connection_sync"))?;
    }
    for (i, g) in cfg.vrrp_groups.iter().enumerate() {
        vrrp_group(g).map_err(|e| e.under(&format!("vrrp_groups[{i}]")))?;
        if cfg.vrrp_settings.strict {
            vrrp_strict(g).map_err(|e| e.under(&format!("vrrp_groups[{i}]")))?;
        }
    }
    vrrp_settings(cfg).map_err(|e| e.under("vrrp_settings"))?;
    for (j, b) in cfg.vrrp_groups.iter().enumerate() {
        for (i, a) in cfg.vrrp_groups.iter().enumerate().take(j) {
            let (at, this, other) = if focus.is_some() && focus == Some(a.id) {
                (i, a, b)
            } else {
                (j, b, a)
            };
            if let Some(e) = groups_conflict(this, other) {
                return Err(e.under(&format!("vrrp_groups[{at}]")));
            }
        }
    }
    Ok(())
}

/// The error for a virtual server whose key another one (`other`) already has.
pub fn duplicate_vs(vs: &VirtualServer, key: VsKey, other: &str) -> ValidationError {
    ValidationError::conflict(
        if vs.fwmark.is_some() {
            "fwmark"
        } else {
            "address"
        },
        format!("virtual server {key} already exists ({other})"),
    )
}

/// A virtual address's keepalived options: `dev` an interface name, `scope`, `label` and
/// `broadcast` IPv4 only (keepalived ignores the first two on IPv6, refuses the third), the
/// label the interface's name or that and a colon (as iproute2 requires), at most 15 bytes.
fn vip_options(g: &VrrpGroup, va: &crate::model::VirtualAddress, field: &str) -> Result {
    if let Some(d) = &va.dev {
        check_ifname(&format!("{field}.dev"), d)?;
    }
    let v6 = va.address.is_ipv6();
    for (set, name) in [
        (va.scope.is_some(), "scope"),
        (va.label.is_some(), "label"),
        (va.broadcast.is_some(), "broadcast"),
    ] {
        ensure_rule(
            rule::ADDRESS_FAMILY,
            !(set && v6),
            &format!("{field}.{name}"),
            || format!("an IPv6 address has no {name} (keepalived ignores it)"),
        )?;
    }
    if let Some(l) = &va.label {
        let lf = format!("{field}.label");
        ensure_bytes(l, IFNAME_MAX_BYTES, &lf, || {
            format!("at most {IFNAME_MAX_BYTES} bytes (IFNAMSIZ)")
        })?;
        ensure(
            !l.chars().any(|c| c.is_whitespace() || c.is_control()),
            &lf,
            || "no spaces or control characters".into(),
        )?;
        let devs: Vec<&str> = match &va.dev {
            Some(d) => vec![d.as_str()],
            None => g.nodes.iter().map(|n| n.interface.as_str()).collect(),
        };
        for d in devs {
            let ok = l == d || l.strip_prefix(d).is_some_and(|rest| rest.starts_with(':'));
            ensure_rule(rule::VIP_LABEL, ok, &lf, || {
                format!("`{l}` must be the interface's name `{d}` or start with `{d}:`")
            })?;
        }
    }
    Ok(())
}

/// The group's virtual routes and rules.
fn virtual_routes(g: &VrrpGroup) -> Result {
    use crate::model::RouteType;
    ensure_rule(
        rule::VIRTUAL_ROUTE,
        g.virtual_routes.len() <= TRACKED_MAX,
        "virtual_routes",
        || format!("at most {TRACKED_MAX}"),
    )?;
    ensure_rule(
        rule::VIRTUAL_ROUTE,
        g.virtual_rules.len() <= TRACKED_MAX,
        "virtual_rules",
        || format!("at most {TRACKED_MAX}"),
    )?;
    let prefix = |f: &str, p: &crate::model::Prefix| {
        ensure_rule(rule::VIRTUAL_ROUTE, !p.has_host_bits(), f, || {
            format!("{p} has bits set beyond its length (the kernel refuses it)")
        })
    };
    for (i, r) in g.virtual_routes.iter().enumerate() {
        let f = format!("virtual_routes[{i}]");
        prefix(&format!("{f}.to"), &r.to)?;
        let family = Family::of(&r.to.address);
        for (a, name) in [(r.via, "via"), (r.src, "src")] {
            if let Some(a) = a {
                ensure_rule(
                    rule::VIRTUAL_ROUTE,
                    Family::of(&a) == family,
                    &format!("{f}.{name}"),
                    || format!("{a} is not of the destination's family"),
                )?;
            }
        }
        if let Some(d) = &r.dev {
            check_ifname(&format!("{f}.dev"), d)?;
        }
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.table != Some(0),
            &format!("{f}.table"),
            || "table 0 is not a table (1-4294967295)".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.kind == RouteType::Unicast || (r.via.is_none() && r.dev.is_none()),
            &format!("{f}.type"),
            || format!("a {} route has no via or dev", r.kind.name()),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.kind != RouteType::Unicast || r.via.is_some() || r.dev.is_some(),
            &format!("{f}.dev"),
            || "a unicast route needs via or dev".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            !g.virtual_routes[..i].contains(r),
            &f,
            || format!("route {r} is listed twice"),
        )?;
    }
    for (i, r) in g.virtual_rules.iter().enumerate() {
        let f = format!("virtual_rules[{i}]");
        if let Some(p) = &r.from {
            prefix(&format!("{f}.from"), p)?;
        }
        if let Some(p) = &r.to {
            prefix(&format!("{f}.to"), p)?;
            if let Some(fr) = &r.from {
                ensure_rule(
                    rule::VIRTUAL_ROUTE,
                    Family::of(&fr.address) == Family::of(&p.address),
                    &format!("{f}.to"),
                    || "from and to must be of one family".into(),
                )?;
            }
        }
        for (n, name) in [(&r.iif, "iif"), (&r.oif, "oif")] {
            if let Some(n) = n {
                check_ifname(&format!("{f}.{name}"), n)?;
            }
        }
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.table.is_some() != r.kind.is_some(),
            &format!("{f}.table"),
            || "a rule needs exactly one of table and type".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.table != Some(0),
            &format!("{f}.table"),
            || "table 0 is not a table (1-4294967295)".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.kind != Some(RouteType::Unicast),
            &format!("{f}.type"),
            || "a rule's type is blackhole, unreachable or prohibit".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            r.fwmask.is_none() || r.fwmark.is_some(),
            &format!("{f}.fwmask"),
            || "fwmask needs fwmark".into(),
        )?;
        ensure_rule(
            rule::VIRTUAL_ROUTE,
            !g.virtual_rules[..i].contains(r),
            &f,
            || format!("rule {r} is listed twice"),
        )?;
    }
    Ok(())
}

/// What makes group `g` clash with `other`, reported on `g`: the same name, a shared virtual
/// address, or the same VRID on the same node and interface (RFC 5798 5.2.3: a VRID is unique per
/// LAN).
pub fn groups_conflict(g: &VrrpGroup, other: &VrrpGroup) -> Option<ValidationError> {
    if other.name == g.name {
        return Some(ValidationError::conflict(
            "name",
            format!("a VRRP group named {} already exists", g.name),
        ));
    }
    if let Some(va) = g.virtual_addresses.iter().find(|va| {
        other
            .virtual_addresses
            .iter()
            .any(|o| o.address == va.address)
    }) {
        return Some(ValidationError::conflict(
            "virtual_addresses",
            format!(
                "{} is already a virtual address of group {}",
                va.address, other.name
            ),
        ));
    }
    if other.vrid == g.vrid && other.family() == g.family() {
        for n in &g.nodes {
            if let Some(o) = other.node(&n.node) {
                if o.interface == n.interface {
                    return Some(ValidationError::conflict(
                        "vrid",
                        format!(
                            "vrid {} is already used by group {} on node {} interface {}",
                            g.vrid, other.name, n.node, n.interface
                        ),
                    ));
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (g.vmac_ifname(), other.vmac_ifname()) {
        let shared = g.nodes.iter().any(|n| other.node(&n.node).is_some());
        if a == b && shared {
            return Some(ValidationError::conflict(
                "vmac_name",
                format!(
                    "the virtual-MAC interface {a} is already group {}'s; name one (vmac_name)",
                    other.name
                ),
            ));
        }
    }
    None
}

/// keepalived's `use_vmac` and `vmac_xmit_base`: a valid macvlan name that is none of the
/// nodes' own interfaces, and with unicast peers only alongside `vmac_xmit_base`
/// (keepalived forces it on: unicast adverts to a peer whose macvlan has the same MAC would
/// never leave the sender).
fn vmac(g: &VrrpGroup) -> Result {
    // Every one of these is between fields or beyond the schema (an interface name's
    // characters): a schema-valid body can break it.
    vmac_fields(g).map_err(|e| match e.rule {
        Some(_) => e,
        None => e.rule(rule::VMAC),
    })
}

fn vmac_fields(g: &VrrpGroup) -> Result {
    if !g.use_vmac {
        ensure(g.vmac_name.is_none(), "vmac_name", || {
            "needs use_vmac: true".into()
        })?;
        return ensure(!g.vmac_xmit_base, "vmac_xmit_base", || {
            "needs use_vmac: true".into()
        });
    }
    if let Some(name) = &g.vmac_name {
        check_ifname("vmac_name", name)?;
        ensure(name != "." && name != "..", "vmac_name", || {
            format!("`{name}` is not a valid interface name")
        })?;
    }
    ensure(
        g.unicast_peers.is_empty() || g.vmac_xmit_base,
        "vmac_xmit_base",
        || "unicast_peers with use_vmac need vmac_xmit_base: true (as keepalived sets it)".into(),
    )?;
    let name = g.vmac_ifname().unwrap_or_default();
    for (i, n) in g.nodes.iter().enumerate() {
        ensure(
            n.interface != name,
            &format!("nodes[{i}].interface"),
            || {
                format!("`{name}` is the group's virtual-MAC interface (vmac_name), not a base interface")
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod fidelity_tests {
    use super::*;

    #[test]
    fn scheduler_flags_belong_to_their_scheduler_and_ops_to_udp() {
        let vs = |j: serde_json::Value| -> VirtualServer { serde_json::from_value(j).unwrap() };
        let e = virtual_server(&vs(serde_json::json!({"address": "10.0.0.1", "port": 80,
            "scheduler": "rr", "scheduler_flags": ["sh-port"]})))
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "scheduler_flags[0]",
                "sh-port is a flag of the sh scheduler, not of rr"
            )
        );
        let e = virtual_server(&vs(serde_json::json!({"address": "10.0.0.1", "port": 80,
            "protocol": "tcp", "one_packet": true})))
        .unwrap_err();
        assert_eq!(e.field, "one_packet");
        virtual_server(&vs(serde_json::json!({"address": "10.0.0.1", "port": 53,
            "protocol": "udp", "one_packet": true, "scheduler": "mh",
            "scheduler_flags": ["mh-port"]})))
        .unwrap();
        assert!(
            serde_json::from_value::<VirtualServer>(serde_json::json!({"address": "10.0.0.1",
            "port": 80, "scheduler_flags": ["bogus"]}))
            .is_err()
        );
    }

    #[test]
    fn connection_sync_errors_name_the_field() {
        let ok = crate::model::ConnectionSync {
            interface: "eth0".into(),
            sync_id: 42,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
            vrrp_group: Some("VI_1".into()),
            failback_hold_ms: 3000,
        };
        assert_eq!(connection_sync(&ok), Ok(()));
        let bad = |f: &dyn Fn(&mut crate::model::ConnectionSync)| {
            let mut c = ok.clone();
            f(&mut c);
            let cfg = Config {
                connection_sync: Some(c),
                ..Config::default()
            };
            config(&cfg, None).unwrap_err()
        };
        let e = bad(&|c| c.interface = "eth 0".into());
        assert_eq!(e.field, "connection_sync.interface");
        let e = bad(&|c| c.group = Some("192.168.10.1".parse().unwrap()));
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("connection_sync.group", Some(rule::MULTICAST_GROUP))
        );
        assert_eq!(bad(&|c| c.port = Some(0)).field, "connection_sync.port");
        assert_eq!(bad(&|c| c.ttl = Some(0)).field, "connection_sync.ttl");
        assert_eq!(bad(&|c| c.maxlen = Some(0)).field, "connection_sync.maxlen");
        assert_eq!(
            bad(&|c| c.failback_hold_ms = 600_001).field,
            "connection_sync.failback_hold_ms"
        );
        let mut v6 = ok.clone();
        v6.group = Some("ff02::81".parse().unwrap());
        assert_eq!(connection_sync(&v6), Ok(()));
    }
}
