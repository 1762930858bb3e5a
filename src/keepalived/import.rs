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
//! | MISC_CHECK, SSL_GET, SMTP_CHECK, DNS_CHECK, ... (checks lbd cannot run) | the import fails; `--allow-unchecked` imports the server unchecked, with a warning |
//! | `url` without `status_code` accepts 200-299 | the same |
//! | fwmark (or group) service without `ip_family` takes its real servers' family | the same |
//! | `virtual_server group NAME` creates one service per group entry | one virtual server per entry, with a warning |
//! | a real server of a fwmark service without a port has port 0 | the same |
//! | `quorum_up`/`quorum_down SCRIPT USER [GROUP]` runs the script as USER | not imported (lbd runs quorum commands as itself): reported as unsupported |
//! | `global_defs { lvs_timeouts tcp N tcpfin N udp N }`, any subset (up to 31 days) | `ipvs_timeouts`, the rest 0 (left as the kernel has them); more than 2,147,483 s (the kernel's INT_MAX / HZ) fails on its line |
//! | `track_interface { eth1 weight -20 }` | `track_interfaces_weighted` (weight 0 or none: `track_interfaces`); `weight reverse` is reported as unsupported |
//! | `vrrp_script NAME { script interval timeout weight rise fall }` (global) + `track_script { NAME [weight N] }` | copied into each instance that tracks it (`track_scripts`, the instance's `weight` winning), run without a shell as keepalived does; `user` and `init_fail` are reported as unsupported; a script no instance tracks is a warning |
//! | `notify_master`/`_backup`/`_fault`/`_stop`/`notify "CMD"` | `notify`; lbd kills a notify command after `notify.timeout_ms` (10 s), keepalived lets it run: a warning; `notify CMD USER` is reported as unsupported |
//! | `use_vmac [[name] NAME]`, `vmac_xmit_base` | `use_vmac`, `vmac_name`, `vmac_xmit_base` (IPv4 and IPv6 groups); with unicast peers and no `vmac_xmit_base`, keepalived sets it: so does the import, with a warning; a MAC of one's own (`use_vmac 02:...`, `use_vmac_addr`) and `group` are reported as unsupported, `netlink_notify_msg` is a warning |
//! | BFD, `track_file`, `track_process`, ... | not imported: reported as unsupported |
//! | `vrrp_sync_group NAME { group { VI_1 VI_2 } notify_* }` | `vrrp_settings.sync_groups`; a member the file does not define, or already in another sync group, is left out with a warning (keepalived ignores it); other keywords (`smtp_alert`, `track_*` of the sync group, ...) are reported as unsupported |
//! | `global_defs { vrrp_strict }`: keepalived resets authentication, `preempt_delay` and a `state MASTER` of a non-owner with an error, refuses unicast, and adds iptables/nftables rules dropping traffic to a non-owner's virtual addresses | `vrrp_settings.strict`: the import resets the same with warnings and fails on unicast peers; lbd then refuses such writes (rule `vrrp_strict`) and adds no firewall rules (a warning says so) |
//! | `global_defs { vrrp_garp_interval S vrrp_gna_interval S }`, `garp_group { garp_interval S gna_interval S interface IF \| interfaces { ... } }`: delays between gratuitous ARPs / NAs on an interface | `garp.interval_ms` / `garp.na_interval_ms` of each group (global: every group's default; a garp_group: the groups on its interfaces); lbd spaces each group's own packets on the interface by its group's interval |
//! | `global_defs { lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR] }`: keepalived runs the kernel's master sync daemon while INSTANCE is master and the backup daemon otherwise, switching on transitions; `id` defaults to INSTANCE's virtual_router_id | `connection_sync`: lbd runs both daemons on every director all the time (so the connections survive failback too), with a warning saying so; INSTANCE is kept as `vrrp_group` (informational); an INSTANCE the file does not define needs `id` (warned), otherwise the import fails on its line |

use std::net::IpAddr;

use super::parser::Node;
use crate::model::{
    CheckKind, Config, ConnectionSync, Family, Forwarding, GarpSettings, HealthCheck, InitialState,
    IpvsTimeouts, Notify, Priority, Protocol, RealServer, Scheduler, SchedulerFlag, SorryServer,
    TimeoutSecs, TrackScript, TrackedInterface, UrlCheck, VirtualAddress, VirtualRoute,
    VirtualRule, VirtualServer, Vrid, VrrpGroup, VrrpNode, Weight,
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
    /// Where each value came from: `ENTITY/FIELD` (entity as in the diff's keys, `group NAME`
    /// for VRRP groups; field as in the diff's field paths; `ENTITY/` is the block) -> file:line.
    /// Lets a disagreement with the stored configuration name the line that says otherwise.
    pub lines: std::collections::HashMap<String, String>,
}

/// How an import treats what is already there (see [`merge`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Where this file disagrees with what another director's file set, take this file's value
    /// instead of failing.
    pub prefer_file: bool,
    /// Remove the virtual servers and VRRP groups the file does not name.
    pub replace: bool,
    /// A real server whose only check lbd cannot run is imported without a check (warned)
    /// instead of failing the import.
    pub allow_unchecked: bool,
    /// Any unsupported keyword fails the import.
    pub strict: bool,
}

impl Imported {
    /// The line that set `field` of `entity`, or failing that its nearest enclosing value, or the
    /// entity's block.
    pub fn line_of(&self, entity: &str, field: &str) -> Option<&str> {
        let mut f = field;
        loop {
            if let Some(at) = self.lines.get(&format!("{entity}/{f}")) {
                return Some(at);
            }
            if f.is_empty() {
                return None;
            }
            f = match f.rfind(['.', '[']) {
                Some(i) => &f[..i],
                None => "",
            };
        }
    }
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

/// `lvs_timeouts [tcp N] [tcpfin N] [udp N]` (global_defs; keepalived's lvs_timeouts handler):
/// any of the three, in any order; one not given stays as the kernel has it (0).
/// `lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR]`
/// (global_defs; keepalived's lvs_syncd_handler). The sync id is `None` when not given: it is
/// then the instance's VRID, known once the instances are read.
fn lvs_sync_daemon(n: &Node) -> Result<(ConnectionSync, Option<u8>), ImportError> {
    let (Some(interface), Some(instance)) = (n.args.first(), n.args.get(1)) else {
        return Err(bad(
            n,
            "`lvs_sync_daemon` needs an interface and a vrrp_instance name",
        ));
    };
    let mut cs = ConnectionSync {
        interface: interface.clone(),
        sync_id: 0,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
        vrrp_group: Some(instance.clone()),
        failback_hold_ms: crate::model::limits::SYNC_FAILBACK_HOLD_DEFAULT_MS,
    };
    let mut id = None;
    let mut it = n.args.iter().skip(2);
    while let Some(opt) = it.next() {
        let v = it
            .next()
            .ok_or_else(|| bad(n, format!("`lvs_sync_daemon {opt}` needs a value")))?;
        let number = |lo: u64, hi: u64| -> Result<u64, ImportError> {
            v.parse::<u64>()
                .ok()
                .filter(|x| (lo..=hi).contains(x))
                .ok_or_else(|| {
                    bad(
                        n,
                        format!("`lvs_sync_daemon {opt}`: `{v}` is not a number in {lo}..={hi}"),
                    )
                })
        };
        match opt.as_str() {
            "id" => id = Some(number(0, 255)? as u8),
            "maxlen" => cs.maxlen = Some(number(1, 65507)? as u16),
            "port" => cs.port = Some(number(1, 65535)? as u16),
            "ttl" => cs.ttl = Some(number(1, 255)? as u8),
            "group" => {
                let g: IpAddr = v.parse().map_err(|_| {
                    bad(
                        n,
                        format!("`lvs_sync_daemon group`: `{v}` is not an address"),
                    )
                })?;
                cs.group = Some(g);
            }
            other => {
                return Err(bad(
                    n,
                    format!(
                        "`lvs_sync_daemon`: unknown option `{other}` (id, maxlen, port, ttl, group)"
                    ),
                ))
            }
        }
    }
    crate::model::validate::connection_sync(&cs)
        .map_err(|e| bad(n, format!("`lvs_sync_daemon`: {}: {}", e.field, e.message)))?;
    Ok((cs, id))
}

fn lvs_timeouts(n: &Node) -> Result<IpvsTimeouts, ImportError> {
    if n.args.is_empty() {
        return Err(bad(
            n,
            "`lvs_timeouts` needs at least one of tcp, tcpfin, udp",
        ));
    }
    let mut t = IpvsTimeouts::default();
    let mut it = n.args.iter();
    while let Some(which) = it.next() {
        let v = it.next().ok_or_else(|| {
            bad(
                n,
                format!("`lvs_timeouts {which}` needs a number of seconds"),
            )
        })?;
        let secs = v
            .parse::<u64>()
            .map_err(|_| format!("`{v}` is not a number of seconds"))
            .and_then(|s| {
                // keepalived takes up to 31 days, the kernel refuses more than INT_MAX / HZ.
                TimeoutSecs::new(s).map_err(|e| format!("{e} (the kernel refuses more)"))
            })
            .map_err(|e| bad(n, format!("`lvs_timeouts {which}`: {e}")))?;
        match which.as_str() {
            "tcp" => t.tcp_secs = secs,
            "tcpfin" => t.tcp_fin_secs = secs,
            "udp" => t.udp_secs = secs,
            other => {
                return Err(bad(
                    n,
                    format!("`lvs_timeouts`: unknown option `{other}` (tcp, tcpfin, udp)"),
                ))
            }
        }
    }
    Ok(t)
}

struct Ctx<'a> {
    out: &'a mut Imported,
    node_name: &'a str,
    default_version: u8,
    /// Whether global_defs names `vrrp_version` (else an IPv6 instance runs version 3).
    version_given: bool,
    opts: ImportOptions,
    /// `virtual_server_group NAME` blocks, by name (a `virtual_server group` may come first).
    vs_groups: std::collections::HashMap<&'a str, &'a Node>,
    /// `vrrp_script NAME` blocks, by name, and the names an instance tracks.
    vrrp_scripts: std::collections::HashMap<&'a str, &'a Node>,
    tracked_scripts: std::collections::HashSet<String>,
    /// global_defs `vrrp_garp_interval` / `vrrp_gna_interval` (ms): every instance's default.
    garp_interval_ms: u32,
    gna_interval_ms: u32,
    /// The priority keepalived gives the next IPv4 / IPv6 rule without one (16384 down).
    next_rule_priority: [u32; 2],
}

/// The model field each keyword of a block sets (for [`Imported::lines`]).
fn field_of(block: &str, key: &str) -> Option<&'static str> {
    Some(match (block, key) {
        ("vrrp_instance", k) => match k {
            "virtual_router_id" => "vrid",
            "version" => "version",
            "advert_int" => "advert_interval_ms",
            "authentication" => "auth_pass",
            "virtual_ipaddress" => "virtual_addresses",
            "virtual_routes" => "virtual_routes",
            "virtual_rules" => "virtual_rules",
            "nopreempt" | "preempt" => "preempt",
            "preempt_delay" => "preempt_delay_ms",
            "unicast_peer" => "unicast_peers",
            "track_interface" => "track_interfaces",
            "track_script" => "track_scripts",
            "notify_master" => "notify.master",
            "notify_backup" => "notify.backup",
            "notify_fault" => "notify.fault",
            "notify_stop" => "notify.stop",
            "notify" => "notify.any",
            "garp_master_delay" => "garp.repeat_delay_ms",
            "garp_master_repeat" => "garp.count",
            "garp_master_refresh" => "garp.refresh_interval_ms",
            "use_vmac" => "use_vmac",
            "vmac_xmit_base" => "vmac_xmit_base",
            _ => return None,
        },
        ("virtual_server", k) => match k {
            "delay_loop" => "delay_loop_ms",
            "lb_algo" | "lvs_sched" => "scheduler",
            "lb_kind" | "lvs_method" => "forwarding",
            "protocol" => "protocol",
            "persistence_timeout" => "persistence_timeout_secs",
            "persistence_granularity" => "persistence_granularity",
            "sorry_server" => "sorry_server",
            "quorum" => "quorum",
            "ip_family" | "family" => "family",
            "ops" => "one_packet",
            "hysteresis" => "hysteresis",
            "quorum_up" => "quorum_up",
            "quorum_down" => "quorum_down",
            "alpha" => "alpha",
            "omega" => "omega",
            _ => return None,
        },
        ("real_server", k) => match k {
            "weight" => "weight",
            "inhibit_on_failure" => "inhibit_on_failure",
            "lb_kind" | "lvs_method" => "forwarding",
            "uthreshold" => "upper_threshold",
            "lthreshold" => "lower_threshold",
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "SMTP_CHECK" | "DNS_CHECK" => {
                "health_check"
            }
            _ => return None,
        },
        _ => return None,
    })
}

impl Ctx<'_> {
    /// Records where the block `n` (of entity `entity`) and each of its keywords are.
    fn lines(&mut self, entity: &str, n: &Node, block: &str) {
        self.out.lines.insert(format!("{entity}/"), n.at());
        for c in n.children() {
            if let Some(f) = field_of(block, &c.key) {
                self.out.lines.insert(format!("{entity}/{f}"), c.at());
            }
        }
    }

    fn warn(&mut self, n: &Node, m: impl Into<String>) {
        self.out.warnings.push(Warning {
            at: n.at(),
            message: m.into(),
        });
    }

    /// One argument of a keyword lbd otherwise imports.
    fn unsupported_arg(&mut self, n: &Node, what: &str) {
        self.out.unsupported.push(Warning {
            at: n.at(),
            message: format!("`{what}` is not supported by lbd; not imported"),
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
    convert_with(nodes, node_name, ImportOptions::default())
}

/// [`convert`] with options (`allow_unchecked`, `strict`; the rest are [`merge`]'s).
pub fn convert_with(
    nodes: &[Node],
    node_name: &str,
    opts: ImportOptions,
) -> Result<Imported, ImportError> {
    let mut out = Imported::default();
    let mut cx = Ctx {
        out: &mut out,
        node_name,
        default_version: 2,
        version_given: false,
        opts,
        vs_groups: nodes
            .iter()
            .filter(|n| n.key == "virtual_server_group")
            .filter_map(|n| n.args.first().map(|a| (a.as_str(), n)))
            .collect(),
        next_rule_priority: [16384, 16384],
        vrrp_scripts: nodes
            .iter()
            .filter(|n| n.key == "vrrp_script")
            .filter_map(|n| n.args.first().map(|a| (a.as_str(), n)))
            .collect(),
        tracked_scripts: std::collections::HashSet::new(),
        garp_interval_ms: 0,
        gna_interval_ms: 0,
    };
    // global_defs first: vrrp_version changes how instances read.
    let mut ipvs_timeouts = None;
    let mut sync_daemon = None;
    let mut vrrp_strict = None;
    for n in nodes.iter().filter(|n| n.key == "global_defs") {
        for c in n.children() {
            match c.key.as_str() {
                "vrrp_version" => {
                    cx.default_version = num(c)?;
                    cx.version_given = true;
                }
                "lvs_timeouts" => {
                    ipvs_timeouts = Some(lvs_timeouts(c)?);
                    let entity = crate::model::diff::IPVS_TIMEOUTS_KEY;
                    cx.out.lines.insert(format!("{entity}/"), c.at());
                }
                "lvs_sync_daemon" => {
                    sync_daemon = Some((lvs_sync_daemon(c)?, c));
                    let entity = crate::model::diff::CONNECTION_SYNC_KEY;
                    cx.out.lines.insert(format!("{entity}/"), c.at());
                }
                "vrrp_strict" => {
                    vrrp_strict = Some(c);
                    cx.out.lines.insert(
                        format!("{}/strict", crate::model::diff::VRRP_SETTINGS_KEY),
                        c.at(),
                    );
                    cx.warn(
                        c,
                        "vrrp_strict: lbd refuses (rule vrrp_strict) what keepalived resets, and adds no iptables/nftables rules: the virtual addresses of a master that does not own them still accept traffic (keepalived drops it unless accept mode)",
                    );
                }
                "vrrp_garp_interval" => cx.garp_interval_ms = secs_ms(c)?,
                "vrrp_gna_interval" => cx.gna_interval_ms = secs_ms(c)?,
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
            "virtual_server" => vss.extend(virtual_server(&mut cx, n)?),
            "virtual_server_group" | "vrrp_script" | "vrrp_sync_group" | "garp_group" => {}
            _ => cx.unsupported(n, "the top level"),
        }
    }
    for n in nodes.iter().filter(|n| n.key == "garp_group") {
        garp_group(&mut cx, n, &mut groups)?;
    }
    let mut sync_groups: Vec<crate::model::VrrpSyncGroup> = Vec::new();
    for n in nodes.iter().filter(|n| n.key == "vrrp_sync_group") {
        if let Some(sg) = vrrp_sync_group(&mut cx, n, &groups, &sync_groups)? {
            sync_groups.push(sg);
        }
    }
    if vrrp_strict.is_some() {
        for g in &mut groups {
            strict_instance(&mut cx, g)?;
        }
    }
    for n in nodes.iter().filter(|n| n.key == "vrrp_script") {
        let name = n.args.first().map(String::as_str).unwrap_or("");
        if !cx.tracked_scripts.contains(name) {
            cx.warn(
                n,
                format!("vrrp_script {name} is tracked by no vrrp_instance: not imported (lbd defines scripts in the groups that track them)"),
            );
        }
    }
    let connection_sync = match sync_daemon {
        None => None,
        Some(((mut cs, id), n)) => {
            let instance = cs.vrrp_group.clone().unwrap_or_default();
            let vrid = groups
                .iter()
                .find(|g| g.name == instance)
                .map(|g| g.vrid.get());
            cs.sync_id = match (id, vrid) {
                (Some(id), Some(_)) => id,
                (Some(id), None) => {
                    cx.warn(
                        n,
                        format!("lvs_sync_daemon: no vrrp_instance {instance} in this file (kept as vrrp_group, informational)"),
                    );
                    id
                }
                (None, Some(vrid)) => vrid,
                (None, None) => {
                    return Err(bad(
                        n,
                        format!("`lvs_sync_daemon`: no vrrp_instance {instance} in this file to take the sync id from; give `id N`"),
                    ))
                }
            };
            cx.warn(
                n,
                format!(
                    "lvs_sync_daemon: keepalived runs the master sync daemon while {instance} is \
                     master and the backup daemon otherwise; lbd runs both on every director all \
                     the time (connections survive failback too), and a returning director preempts \
                     only once its backup daemon has received the connections (failback_hold_ms \
                     {} ms of quiet stream)",
                    cs.failback_hold_ms
                ),
            );
            Some(cs)
        }
    };
    out.config = Config {
        virtual_servers: vss.into_iter().map(std::sync::Arc::new).collect(),
        vrrp_groups: groups,
        ipvs_timeouts: ipvs_timeouts.filter(|t| !t.is_unmanaged()),
        connection_sync,
        vrrp_settings: crate::model::VrrpSettings {
            strict: vrrp_strict.is_some(),
            sync_groups,
        },
    };
    if opts.strict {
        if let Some(u) = out.unsupported.first() {
            return Err(ImportError {
                at: u.at.clone(),
                message: format!(
                    "{} (--strict: every unsupported keyword is an error; {} in all)",
                    u.message,
                    out.unsupported.len()
                ),
            });
        }
    }
    Ok(out)
}

fn vrrp_instance(cx: &mut Ctx<'_>, n: &Node) -> Result<VrrpGroup, ImportError> {
    let name = arg(n, 0)?.to_string();
    let (mut vrid, mut priority, mut interface) = (None, 100u64, None);
    let mut state = InitialState::Backup;
    let mut unicast_src = None;
    let mut version_given = cx.version_given;
    let mut g = VrrpGroup {
        id: 0,
        name,
        vrid: Vrid::new(1).map_err(|m| bad(n, m))?,
        version: cx.default_version,
        advert_interval_ms: 1000,
        auth_pass: None,
        virtual_addresses: Vec::new(),
        virtual_routes: Vec::new(),
        virtual_rules: Vec::new(),
        preempt: true,
        preempt_delay_ms: 0,
        unicast_peers: Vec::new(),
        garp: GarpSettings {
            interval_ms: cx.garp_interval_ms,
            na_interval_ms: cx.gna_interval_ms,
            ..GarpSettings::default()
        },
        track_interfaces: Vec::new(),
        track_interfaces_weighted: Vec::new(),
        track_virtual_servers: Vec::new(),
        track_scripts: Vec::new(),
        notify: Notify::default(),
        nodes: Vec::new(),
        use_vmac: false,
        vmac_name: None,
        vmac_xmit_base: false,
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
            "version" => {
                g.version = num(c)?;
                version_given = true;
            }
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
                    let (mut va, ignored) =
                        VirtualAddress::parse_keepalived(&words(a)).map_err(|m| bad(a, m))?;
                    if !ignored.is_empty() {
                        cx.warn(a, format!("`{}` is not carried out by lbd; the address is imported without it", ignored.join(" ")));
                    }
                    // keepalived (alloc_ipaddress) ignores a scope or label on an IPv6 address.
                    if va.address.is_ipv6() && (va.scope.is_some() || va.label.is_some()) {
                        cx.warn(a, "keepalived ignores scope and label on an IPv6 address; so does the import");
                        va.scope = None;
                        va.label = None;
                    }
                    // keepalived (vip_is_duplicate) ignores a second VIP with the same address,
                    // whatever its options.
                    if g.virtual_addresses.iter().any(|v| v.address == va.address) {
                        cx.warn(a, format!("{} is listed twice: keepalived ignores the second one (\"VIP duplicates a VIP\"), and so does the import", va.address));
                        continue;
                    }
                    g.virtual_addresses.push(va);
                }
            }
            "virtual_routes" => {
                for a in c.children() {
                    let (r, ignored) =
                        VirtualRoute::parse_keepalived(&words(a)).map_err(|m| bad(a, m))?;
                    if !ignored.is_empty() {
                        cx.warn(
                            a,
                            format!(
                                "`{}` is not carried out by lbd; the route is imported without it",
                                ignored.join(" ")
                            ),
                        );
                    }
                    g.virtual_routes.push(r);
                }
            }
            "virtual_rules" => {
                for a in c.children() {
                    let (mut r, ignored) =
                        VirtualRule::parse_keepalived(&words(a)).map_err(|m| bad(a, m))?;
                    if !ignored.is_empty() {
                        cx.warn(
                            a,
                            format!(
                                "`{}` is not carried out by lbd; the rule is imported without it",
                                ignored.join(" ")
                            ),
                        );
                    }
                    if r.priority.is_none() {
                        // keepalived (alloc_rule) numbers such rules down from 16384, per family.
                        let slot = &mut cx.next_rule_priority
                            [usize::from(r.family() == crate::model::Family::Ipv6)];
                        r.priority = Some(*slot);
                        *slot = slot.saturating_sub(1);
                        cx.warn(a, format!("the rule has no priority: keepalived gives it {}, and so does the import", r.priority.unwrap_or(0)));
                    }
                    g.virtual_rules.push(r);
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
                    match a.args.as_slice() {
                        [] => g.track_interfaces.push(a.key.clone()),
                        [w, v, rest @ ..] if w == "weight" => {
                            let weight = track_weight(a, v)?;
                            if !rest.is_empty() {
                                cx.unsupported(a, "track_interface (`reverse`)");
                            } else if weight == 0 {
                                g.track_interfaces.push(a.key.clone());
                            } else {
                                g.track_interfaces_weighted.push(TrackedInterface {
                                    interface: a.key.clone(),
                                    weight,
                                });
                            }
                        }
                        _ => cx.unsupported(a, "track_interface (only `weight N`)"),
                    }
                }
            }
            "track_script" => {
                for a in c.children() {
                    if let Some(s) = track_script(cx, a)? {
                        g.track_scripts.push(s);
                    }
                }
            }
            k @ ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify") => {
                let cmd = arg(c, 0)?.to_string();
                if c.args.len() > 1 {
                    cx.out.unsupported.push(Warning {
                        at: c.at(),
                        message: format!(
                            "`{k}` as user {}: lbd runs notify commands as its own user; not imported (quote the command if the words after it are its arguments)",
                            c.args[1..].join(" ")
                        ),
                    });
                    continue;
                }
                cx.warn(
                    c,
                    format!("`{k}`: lbd kills a notify command still running after notify.timeout_ms ({} s); keepalived lets it run", crate::model::vrrp_group::default_notify_timeout_ms() / 1000),
                );
                let slot = match k {
                    "notify_master" => &mut g.notify.master,
                    "notify_backup" => &mut g.notify.backup,
                    "notify_fault" => &mut g.notify.fault,
                    "notify_stop" => &mut g.notify.stop,
                    _ => &mut g.notify.any,
                };
                *slot = Some(cmd);
            }
            "garp_master_delay" => g.garp.repeat_delay_ms = secs_ms(c)?,
            "garp_master_repeat" => g.garp.count = num(c)?,
            "garp_master_refresh" => {
                let ms = secs_ms(c)?;
                g.garp.refresh_interval_ms = (ms > 0).then_some(ms);
            }
            "use_vmac" => use_vmac(cx, c, &mut g),
            "vmac_xmit_base" => g.vmac_xmit_base = true,
            _ => cx.unsupported(c, "vrrp_instance"),
        }
    }
    // keepalived (vrrp_end_handler): unicast adverts with a virtual MAC need vmac_xmit_base,
    // which it then sets itself.
    if g.use_vmac && !g.unicast_peers.is_empty() && !g.vmac_xmit_base {
        g.vmac_xmit_base = true;
        cx.warn(
            n,
            "use_vmac with unicast peers needs vmac_xmit_base: set, as keepalived does",
        );
    }
    // keepalived runs an IPv6 instance whose version nobody named as VRRPv3 (vrrp.c,
    // vrrp_complete_instance); a named version 2 stays, and validation refuses it.
    if !version_given && g.family() == Some(crate::model::Family::Ipv6) {
        g.version = 3;
    }
    g.vrid = vrid.ok_or_else(|| bad(n, "vrrp_instance needs virtual_router_id"))?;
    cx.lines(&format!("group {}", g.name), n, "vrrp_instance");
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

/// `garp_group { garp_interval S gna_interval S interface IF | interfaces { IF ... } }`:
/// keepalived spaces the gratuitous ARPs / NAs sent on those interfaces; lbd sets the
/// intervals of every group whose interface (this node's) is one of them.
fn garp_group(cx: &mut Ctx<'_>, n: &Node, groups: &mut [VrrpGroup]) -> Result<(), ImportError> {
    let (mut garp, mut gna) = (None, None);
    let mut ifaces: Vec<String> = Vec::new();
    for c in n.children() {
        match c.key.as_str() {
            "garp_interval" => garp = Some(secs_ms(c)?),
            "gna_interval" => gna = Some(secs_ms(c)?),
            "interface" => ifaces.push(arg(c, 0)?.to_string()),
            "interfaces" => ifaces.extend(c.children().iter().map(|a| a.key.clone())),
            _ => cx.unsupported(c, "garp_group"),
        }
    }
    let node = cx.node_name.to_string();
    let mut used = false;
    for g in groups.iter_mut() {
        if g.node(&node).is_some_and(|e| ifaces.contains(&e.interface)) {
            used = true;
            if let Some(ms) = garp {
                g.garp.interval_ms = ms;
            }
            if let Some(ms) = gna {
                g.garp.na_interval_ms = ms;
            }
        }
    }
    if !used {
        cx.warn(
            n,
            format!(
                "garp_group: no vrrp_instance of this node runs on {}; nothing to set",
                ifaces.join(", ")
            ),
        );
    }
    Ok(())
}

/// `vrrp_sync_group NAME { group { VI_1 VI_2 } notify_master ... }`. Members the file does
/// not define, or that an earlier sync group has, are left out with a warning (keepalived
/// ignores them too); a sync group left with no member is not imported (warned).
fn vrrp_sync_group(
    cx: &mut Ctx<'_>,
    n: &Node,
    groups: &[VrrpGroup],
    earlier: &[crate::model::VrrpSyncGroup],
) -> Result<Option<crate::model::VrrpSyncGroup>, ImportError> {
    let name = arg(n, 0)?.to_string();
    let mut sg = crate::model::VrrpSyncGroup {
        name: name.clone(),
        groups: Vec::new(),
        notify: Notify::default(),
    };
    for c in n.children() {
        match c.key.as_str() {
            "group" => {
                for a in c.children() {
                    let m = a.key.clone();
                    let other = earlier
                        .iter()
                        .find(|e| e.groups.contains(&m))
                        .map(|e| e.name.clone());
                    if !groups.iter().any(|g| g.name == m) {
                        cx.warn(a, format!("vrrp_sync_group {name}: no vrrp_instance {m} in this file; left out (keepalived ignores it too)"));
                    } else if let Some(o) = other {
                        cx.warn(a, format!("vrrp_sync_group {name}: {m} is already in sync group {o}; left out (keepalived ignores it too)"));
                    } else if sg.groups.contains(&m) {
                        cx.warn(a, format!("vrrp_sync_group {name}: {m} is listed twice"));
                    } else {
                        sg.groups.push(m);
                    }
                }
            }
            k @ ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify") => {
                if c.args.len() > 1 {
                    cx.out.unsupported.push(Warning {
                        at: c.at(),
                        message: format!(
                            "`{k}` as user {}: lbd runs notify commands as its own user; not imported",
                            c.args[1..].join(" ")
                        ),
                    });
                    continue;
                }
                let cmd = arg(c, 0)?.to_string();
                let slot = match k {
                    "notify_master" => &mut sg.notify.master,
                    "notify_backup" => &mut sg.notify.backup,
                    "notify_fault" => &mut sg.notify.fault,
                    "notify_stop" => &mut sg.notify.stop,
                    _ => &mut sg.notify.any,
                };
                *slot = Some(cmd);
            }
            _ => cx.unsupported(c, "vrrp_sync_group"),
        }
    }
    if sg.groups.is_empty() {
        cx.warn(
            n,
            format!("vrrp_sync_group {name} has no member this file defines: not imported"),
        );
        return Ok(None);
    }
    if sg.groups.len() == 1 {
        cx.warn(
            n,
            format!("vrrp_sync_group {name} has one member only (keepalived warns too)"),
        );
    }
    Ok(Some(sg))
}

/// keepalived's `vrrp_strict` on one instance: what keepalived resets with an error message
/// is reset here with a warning (authentication, preempt_delay, a `state MASTER` that is not
/// the address owner); unicast peers, which keepalived refuses, fail the import.
fn strict_instance(cx: &mut Ctx<'_>, g: &mut VrrpGroup) -> Result<(), ImportError> {
    let at = cx
        .out
        .lines
        .get(&format!("group {}/", g.name))
        .cloned()
        .unwrap_or_default();
    let warn = |cx: &mut Ctx<'_>, m: String| {
        cx.out.warnings.push(Warning {
            at: at.clone(),
            message: m,
        })
    };
    if !g.unicast_peers.is_empty() {
        return Err(ImportError {
            at: at.clone(),
            message: format!(
                "vrrp_instance {}: unicast peers are not allowed with vrrp_strict (keepalived refuses the instance too)",
                g.name
            ),
        });
    }
    if g.auth_pass.take().is_some() {
        warn(cx, format!("vrrp_instance {}: vrrp_strict allows no authentication; dropped (as keepalived does)", g.name));
    }
    if g.preempt_delay_ms != 0 {
        g.preempt_delay_ms = 0;
        warn(cx, format!("vrrp_instance {}: preempt_delay is incompatible with vrrp_strict; reset to 0 (as keepalived does)", g.name));
    }
    for n in &mut g.nodes {
        let owner = n.priority.get() == crate::model::limits::PRIORITY_OWNER;
        let want = if owner {
            InitialState::Master
        } else {
            InitialState::Backup
        };
        if n.initial_state != want {
            n.initial_state = want;
            warn(cx, format!("vrrp_instance {}: with vrrp_strict, state MASTER must match being the address owner (priority 255); state set to {:?} (as keepalived does)", g.name, want));
        }
    }
    Ok(())
}

/// A line's words: its key and its arguments.
fn words(n: &Node) -> Vec<String> {
    std::iter::once(n.key.clone())
        .chain(n.args.iter().cloned())
        .collect()
}

/// A tracked object's `weight N` (keepalived: -253..=253).
fn track_weight(n: &Node, v: &str) -> Result<i32, ImportError> {
    match v.parse::<i32>() {
        Ok(w) if (-253..=253).contains(&w) => Ok(w),
        _ => Err(bad(n, format!("weight `{v}` must be -253..=253"))),
    }
}

/// One `track_script` entry (`NAME [weight N]`), with the global `vrrp_script NAME` block it
/// names copied in; `None` when it was reported as unsupported.
fn track_script(cx: &mut Ctx<'_>, a: &Node) -> Result<Option<TrackScript>, ImportError> {
    let name = a.key.clone();
    let Some(def) = cx.vrrp_scripts.get(name.as_str()).copied() else {
        return Err(bad(
            a,
            format!("track_script {name}: no vrrp_script {name} block"),
        ));
    };
    cx.tracked_scripts.insert(name.clone());
    let mut s = TrackScript {
        name,
        command: String::new(),
        interval_ms: 1_000,
        timeout_ms: None,
        weight: 0,
        rise: 1,
        fall: 1,
    };
    for c in def.children() {
        match c.key.as_str() {
            "script" => {
                s.command = arg(c, 0)?.to_string();
                if c.args.len() > 1 {
                    return Err(bad(
                        c,
                        "`script` takes one (quoted) command; quote the command and its arguments",
                    ));
                }
            }
            "interval" => s.interval_ms = secs_ms(c)?,
            "timeout" => s.timeout_ms = Some(secs_ms(c)?),
            "weight" => {
                s.weight = track_weight(c, arg(c, 0)?)?;
                if c.args.len() > 1 {
                    cx.unsupported(c, "vrrp_script (`weight N reverse`)");
                }
            }
            "rise" => s.rise = num(c)?,
            "fall" => s.fall = num(c)?,
            _ => cx.unsupported(c, "vrrp_script"),
        }
    }
    if s.command.is_empty() {
        return Err(bad(def, "vrrp_script needs `script`"));
    }
    match a.args.as_slice() {
        [] => {}
        [w, v] if w == "weight" => s.weight = track_weight(a, v)?,
        _ => {
            cx.unsupported(a, "track_script (only `weight N`)");
            return Ok(None);
        }
    }
    Ok(Some(s))
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

/// keepalived's `virtual_server_group` entries: `ADDR[-LAST] PORT` (an address range in the last
/// octet, or the last group of an IPv6 address) or `fwmark N`.
enum GroupEntry {
    Addr(IpAddr, u16),
    Fwmark(u32),
}

fn group_entries(g: &Node) -> Result<Vec<GroupEntry>, ImportError> {
    let mut out = Vec::new();
    for e in g.children() {
        if e.key == "fwmark" {
            let m = arg(e, 0)?;
            out.push(GroupEntry::Fwmark(
                m.parse()
                    .map_err(|_| bad(e, format!("`{m}` is not a fwmark")))?,
            ));
            continue;
        }
        let port: u16 = match e.args.first() {
            Some(p) => p
                .parse()
                .map_err(|_| bad(e, format!("`{p}` is not a port")))?,
            None => return Err(bad(e, format!("`{}` needs a port", e.key))),
        };
        let (first, last) = match e.key.rsplit_once('-') {
            Some((a, l)) => (a, Some(l)),
            None => (e.key.as_str(), None),
        };
        let first = addr(e, first)?;
        let Some(last) = last else {
            out.push(GroupEntry::Addr(first, port));
            continue;
        };
        let range_err = || {
            bad(
                e,
                format!(
                    "`{}`: the range end must be at least the start's last part",
                    e.key
                ),
            )
        };
        match first {
            IpAddr::V4(a) => {
                let o = a.octets();
                let end: u8 = last.parse().map_err(|_| range_err())?;
                if end < o[3] {
                    return Err(range_err());
                }
                for x in o[3]..=end {
                    out.push(GroupEntry::Addr(
                        std::net::Ipv4Addr::new(o[0], o[1], o[2], x).into(),
                        port,
                    ));
                }
            }
            IpAddr::V6(a) => {
                let mut seg = a.segments();
                let end = u16::from_str_radix(last, 16).map_err(|_| range_err())?;
                if end < seg[7] {
                    return Err(range_err());
                }
                for x in seg[7]..=end {
                    seg[7] = x;
                    out.push(GroupEntry::Addr(std::net::Ipv6Addr::from(seg).into(), port));
                }
            }
        }
        if out.len() > 65_536 {
            return Err(bad(
                e,
                "a virtual_server_group may expand to at most 65536 services",
            ));
        }
    }
    Ok(out)
}

/// Why a `virtual_server` keyword lbd does not model is not imported.
fn vs_unsupported_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "ha_suspend" => "lbd checks real servers whatever the VRRP state",
        "retry" | "delay_before_retry" | "connect_timeout" | "warmup" => "set it in each check",
        "notify_up" | "notify_down" => "lbd runs no scripts; health changes are events",
        "smtp_alert" => "lbd sends no mail",
        "hashed" | "flag-1" | "flag-2" | "flag-3" => {
            "lbd sets only the sh/mh scheduler flags by name"
        }
        _ => return None,
    })
}

fn virtual_server(cx: &mut Ctx<'_>, n: &Node) -> Result<Vec<VirtualServer>, ImportError> {
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
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        alpha: false,
        omega: false,
        one_packet: false,
        scheduler_flags: Vec::new(),
        real_servers: Vec::new(),
    };
    let mut group = None;
    match (n.args.first().map(String::as_str), n.args.get(1)) {
        (Some("fwmark"), Some(m)) => {
            vs.fwmark = Some(
                m.parse()
                    .map_err(|_| bad(n, format!("`{m}` is not a fwmark")))?,
            );
        }
        (Some("group"), Some(g)) => {
            let node = cx.vs_groups.get(g.as_str()).copied().ok_or_else(|| {
                bad(
                    n,
                    format!("virtual_server_group {g} is not defined (before or after)"),
                )
            })?;
            group = Some((g.clone(), group_entries(node)?));
        }
        (Some(a), Some(p)) => {
            vs.address = Some(addr(n, a)?);
            vs.port = Some(
                p.parse()
                    .map_err(|_| bad(n, format!("`{p}` is not a port")))?,
            );
        }
        _ => {
            return Err(bad(
                n,
                "virtual_server needs ADDRESS PORT, fwmark N or group NAME",
            ))
        }
    }
    let mut rs_nodes = Vec::new();
    let mut has_protocol = false;
    let mut ops = None;
    let mut vhost: Option<String> = None;
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
            "hysteresis" => vs.hysteresis = num(c)?,
            // `quorum_up SCRIPT [username [groupname]]`: the command is one (quoted) word that
            // keepalived splits into argv itself; words after it name the user to run it as.
            k @ ("quorum_up" | "quorum_down") => {
                let cmd = arg(c, 0)?.to_string();
                if c.args.len() > 1 {
                    cx.out.unsupported.push(Warning {
                        at: c.at(),
                        message: format!(
                            "`{k}` as user {}: lbd runs quorum commands as its own user; not imported (quote the command if the words after it are its arguments)",
                            c.args[1..].join(" ")
                        ),
                    });
                } else if k == "quorum_up" {
                    vs.quorum_up = Some(cmd);
                } else {
                    vs.quorum_down = Some(cmd);
                }
            }
            "alpha" => vs.alpha = true,
            "omega" => vs.omega = true,
            "ip_family" | "family" => {
                vs.family = Some(match arg(c, 0)? {
                    "inet" => Family::Ipv4,
                    "inet6" => Family::Ipv6,
                    v => return Err(bad(c, format!("family must be inet or inet6, not {v}"))),
                })
            }
            "ops" => ops = Some(c),
            "virtualhost" => vhost = Some(arg(c, 0)?.to_string()),
            k @ ("sh-port" | "sh-fallback" | "mh-port" | "mh-fallback") => {
                let f = SchedulerFlag::ALL
                    .into_iter()
                    .find(|f| f.name() == k)
                    .ok_or_else(|| bad(c, "unknown scheduler flag"))?;
                vs.scheduler_flags.push(f);
            }
            "real_server" => rs_nodes.push(c),
            k => match vs_unsupported_reason(k) {
                Some(why) => cx.out.unsupported.push(Warning {
                    at: c.at(),
                    message: format!(
                        "`{k}` in virtual_server is not supported by lbd ({why}); not imported"
                    ),
                }),
                None => cx.unsupported(c, "virtual_server"),
            },
        }
    }
    for (i, f) in vs.scheduler_flags.iter().enumerate() {
        if f.scheduler() != vs.scheduler {
            let at = n
                .children()
                .iter()
                .filter(|c| c.key.starts_with("sh-") || c.key.starts_with("mh-"))
                .nth(i)
                .unwrap_or(n);
            return Err(bad(
                at,
                format!(
                    "{} is a flag of the {} scheduler; this service uses {}",
                    f.name(),
                    f.scheduler().kernel_name(),
                    vs.scheduler.kernel_name()
                ),
            ));
        }
    }
    if vs.fwmark.is_some() {
        vs.protocol = None;
    } else if !has_protocol {
        vs.protocol = Some(Protocol::Udp);
        cx.warn(n, "no `protocol`: keepalived defaults to UDP, and so does this import; add `protocol TCP` if you meant TCP");
    }
    if let Some(c) = ops {
        if vs.protocol.is_some_and(|p| p != Protocol::Udp) {
            cx.warn(
                c,
                "`ops` is dropped: one-packet scheduling is for UDP (keepalived drops it too)",
            );
        } else {
            vs.one_packet = true;
        }
    }
    if vs.persistence_granularity.is_some() && vs.persistence_timeout_secs.is_none() {
        vs.persistence_timeout_secs = Some(360);
        cx.warn(
            n,
            "persistence_granularity without persistence_timeout: 360 s, as keepalived does",
        );
    }
    let mut rs_list = Vec::new();
    for r in &rs_nodes {
        let addr = addr(r, arg(r, 0)?)?;
        rs_list.push((r, addr));
    }
    if vs.address.is_none() && vs.family.is_none() {
        // keepalived programs a fwmark (or group) service in the family of its real servers.
        let fams: std::collections::BTreeSet<_> = rs_list
            .iter()
            .map(|(_, a)| Family::of(a) == Family::Ipv6)
            .collect();
        if fams.len() > 1 {
            return Err(bad(
                n,
                "real servers of both address families: add `family inet` or `family inet6`",
            ));
        }
        vs.family = Some(if fams.contains(&true) {
            Family::Ipv6
        } else {
            Family::Ipv4
        });
    }
    let Some((gname, entries)) = group else {
        if let Some(a) = vs.address {
            vs.family = Some(Family::of(&a));
        }
        finish_vs(cx, n, &mut vs, &rs_nodes, vhost.as_ref())?;
        return Ok(vec![vs]);
    };
    // One service per group entry, as keepalived programs a `virtual_server group`.
    let mut out = Vec::new();
    let group_family = vs.family;
    for e in &entries {
        let mut v = vs.clone();
        match *e {
            GroupEntry::Addr(a, p) => {
                v.address = Some(a);
                v.port = Some(p);
                v.family = Some(Family::of(&a));
                if v.protocol.is_none() {
                    v.protocol = Some(Protocol::Udp);
                }
            }
            GroupEntry::Fwmark(m) => {
                v.fwmark = Some(m);
                v.protocol = None;
                v.family = group_family;
                v.one_packet = vs.one_packet;
            }
        }
        finish_vs(cx, n, &mut v, &rs_nodes, vhost.as_ref())?;
        out.push(v);
    }
    cx.warn(
        n,
        format!(
            "virtual_server group {gname}: {} service(s), one per group entry as keepalived programs them; lbd keeps them as separate virtual servers",
            out.len()
        ),
    );
    Ok(out)
}

/// Adds the real servers to a service whose identity is complete, and records its lines.
fn finish_vs(
    cx: &mut Ctx<'_>,
    n: &Node,
    vs: &mut VirtualServer,
    rs_nodes: &[&Node],
    vs_virtualhost: Option<&String>,
) -> Result<(), ImportError> {
    if vs.fwmark.is_some() && vs.one_packet && vs.family.is_none() {
        vs.family = Some(Family::Ipv4);
    }
    vs.normalize();
    let label = crate::model::diff::vs_label(vs);
    cx.lines(&label, n, "virtual_server");
    for r in rs_nodes {
        let mut rs = real_server(cx, vs, r)?;
        // keepalived: the service's `virtualhost` is the Host of its HTTP checks that name none.
        if let (Some(v), Some(hc)) = (vs_virtualhost, &mut rs.health_check) {
            if matches!(hc.kind, CheckKind::Http | CheckKind::Https) {
                hc.virtualhost.get_or_insert_with(|| v.clone());
            }
        }
        let rlabel = crate::model::diff::rs_label(vs, &rs);
        cx.lines(&rlabel, r, "real_server");
        vs.real_servers.push(rs);
    }
    if vs.real_servers.is_empty() {
        cx.warn(
            n,
            "no real servers: keepalived would not create this service; lbd does",
        );
    }
    Ok(())
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
    let mut first_check: Option<String> = None;
    for c in n.children() {
        match c.key.as_str() {
            "weight" => rs.weight = Weight::new(num(c)?).map_err(|m| bad(c, m))?,
            "inhibit_on_failure" => rs.inhibit_on_failure = true,
            "lb_kind" | "lvs_method" => rs.forwarding = Some(forwarding(c)?),
            "uthreshold" => rs.upper_threshold = Some(num(c)?),
            "lthreshold" => rs.lower_threshold = Some(num(c)?),
            k @ ("TCP_CHECK" | "HTTP_GET" | "MISC_CHECK" | "SSL_GET") => {
                if let Some(first) = &first_check {
                    return Err(bad(
                        c,
                        format!("a second check (`{k}`; the first is at {first}): lbd runs one check per real server"),
                    ));
                }
                first_check = Some(c.at());
                let kind = match k {
                    "TCP_CHECK" => CheckKind::Tcp,
                    "HTTP_GET" => CheckKind::Http,
                    "SSL_GET" => CheckKind::Https,
                    _ => CheckKind::Misc,
                };
                rs.health_check = Some(check(cx, c, kind)?);
            }
            k @ ("SMTP_CHECK" | "DNS_CHECK" | "BFD_CHECK" | "UDP_CHECK" | "PING_CHECK"
            | "FILE_CHECK") => {
                let msg = format!("`{k}` cannot be imported: lbd does not run this check");
                if !cx.opts.allow_unchecked {
                    return Err(bad(
                        c,
                        format!("{msg}; without it this real server would take traffic unchecked (--allow-unchecked imports it so, with a warning)"),
                    ));
                }
                cx.warn(c, format!("{msg}; --allow-unchecked: imported without it"));
            }
            _ => cx.unsupported(c, "real_server"),
        }
    }
    if rs.port.is_none() && vs.fwmark.is_some() {
        // keepalived: a real server without a port has port 0, which IPVS reads as "the
        // packet's own port".
        rs.port = Some(0);
    }
    let fwd = rs.forwarding.unwrap_or(vs.forwarding);
    if fwd != Forwarding::Nat {
        if vs.fwmark.is_some() {
            if let Some(p) = rs.port.take().filter(|p| *p != 0) {
                cx.warn(n, "a dr/tun real server of a fwmark service has no port (keepalived sets it to 0)");
                // keepalived's checks still connect to the port the file gives.
                if let Some(hc) = &mut rs.health_check {
                    hc.connect_port.get_or_insert(p);
                }
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
        urls: Vec::new(),
        misc_path: None,
        misc_timeout_ms: None,
        misc_dynamic: false,
        user: None,
        tls_ca_file: None,
        tls_server_name: None,
        virtualhost: None,
    };
    let mut urls: Vec<UrlCheck> = Vec::new();
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
            "misc_path" if kind == CheckKind::Misc => {
                hc.misc_path = Some(c.args.join(" "));
                arg(c, 0)?;
            }
            "misc_timeout" if kind == CheckKind::Misc => hc.misc_timeout_ms = Some(secs_ms(c)?),
            "misc_dynamic" if kind == CheckKind::Misc => hc.misc_dynamic = true,
            "user" if kind == CheckKind::Misc => {
                hc.user = Some(arg(c, 0)?.to_string());
                if c.args.len() > 1 {
                    cx.warn(c, "the group after the user is ignored: lbd runs the command with the user's own group");
                }
            }
            "virtualhost" if matches!(kind, CheckKind::Http | CheckKind::Https) => {
                hc.virtualhost = Some(arg(c, 0)?.to_string())
            }
            "url" if matches!(kind, CheckKind::Http | CheckKind::Https) => {
                let mut url = UrlCheck {
                    path: String::new(),
                    status_codes: Vec::new(),
                    digest: None,
                };
                for u in c.children() {
                    match u.key.as_str() {
                        "path" => url.path = arg(u, 0)?.to_string(),
                        "status_code" => {
                            arg(u, 0)?;
                            for a in &u.args {
                                let r: crate::model::StatusRange =
                                    a.parse().map_err(|m: String| bad(u, m))?;
                                if r.from > r.to {
                                    return Err(bad(u, format!("`{a}`: the range is empty")));
                                }
                                url.status_codes.push(r);
                            }
                        }
                        "digest" => {
                            let d = arg(u, 0)?;
                            if d.len() != 32 || !d.chars().all(|x| x.is_ascii_hexdigit()) {
                                return Err(bad(
                                    u,
                                    format!("`digest {d}` is not an MD5 digest (32 hex digits)"),
                                ));
                            }
                            url.digest = Some(d.to_ascii_lowercase());
                        }
                        _ => cx.unsupported(u, "url"),
                    }
                }
                if url.path.is_empty() {
                    return Err(bad(c, "`url` needs a `path`"));
                }
                urls.push(url);
            }
            _ => cx.unsupported(c, &n.key),
        }
    }
    if matches!(kind, CheckKind::Http | CheckKind::Https) {
        match urls.as_slice() {
            // One url with one status code: lbd's simple form (what lbd stores for it).
            [u] if u.digest.is_none()
                && u.status_codes.len() == 1
                && u.status_codes[0].from == u.status_codes[0].to =>
            {
                hc.path = Some(u.path.clone());
                hc.expected_status = Some(u.status_codes[0].from);
            }
            [] => {
                hc.path = Some("/".to_string());
                hc.expected_status = Some(200);
            }
            _ => hc.urls = urls,
        }
    }
    Ok(hc)
}

/// One shared value the file and the stored configuration disagree on.
struct Disagreement {
    at: String,
    what: String,
    file: serde_json::Value,
    stored: serde_json::Value,
}

fn plain_vs(v: &VirtualServer) -> VirtualServer {
    let mut x = v.clone();
    x.id = 0;
    x.normalize();
    for r in &mut x.real_servers {
        r.id = 0;
    }
    x
}

/// The shared fields of two versions of one virtual server that differ, real servers included
/// (matched by address and port), as `(entity label, field path, file value, stored value)`.
fn vs_differences(
    stored: &VirtualServer,
    file: &VirtualServer,
) -> Vec<(String, String, serde_json::Value, serde_json::Value)> {
    use crate::model::diff::{fields_of, rs_label, vs_label};
    let (a, b) = (plain_vs(stored), plain_vs(file));
    let mut out = Vec::new();
    let label = vs_label(&b);
    let mut own_a = a.clone();
    let mut own_b = b.clone();
    own_a.real_servers.clear();
    own_b.real_servers.clear();
    own_a.name = None;
    own_b.name = None;
    for f in fields_of(&own_a, &own_b, &["real_servers"]) {
        out.push((label.clone(), f.field, f.to, f.from));
    }
    for rb in &b.real_servers {
        let ra = a
            .real_servers
            .iter()
            .find(|r| (r.address, r.port) == (rb.address, rb.port));
        let rl = rs_label(&b, rb);
        match ra {
            None => out.push((rl, String::new(), "present".into(), "absent".into())),
            Some(ra) => {
                for f in fields_of(ra, rb, &[]) {
                    out.push((rl.clone(), f.field, f.to, f.from));
                }
            }
        }
    }
    for ra in &a.real_servers {
        if !b
            .real_servers
            .iter()
            .any(|r| (r.address, r.port) == (ra.address, ra.port))
        {
            out.push((
                rs_label(&a, ra),
                String::new(),
                "absent".into(),
                "present".into(),
            ));
        }
    }
    out
}

/// What the import of `node`'s file makes of `existing` ("make lbd match this file"):
///
/// - a VRRP group or virtual server the file names gets every shared field from the file, and
///   the group gets `node`'s entry from it (the other nodes' entries stay);
/// - when another director's file shaped the configuration (a group the file names, or any
///   group if it names none, has an entry for another node), a shared value that differs is an
///   error naming this file's line and the stored value, unless `prefer_file`;
/// - what the file does not name stays, unless `replace`;
/// - lbd-only values the file cannot carry (a virtual server's `name`, a check's rise, fall and
///   body_contains) are kept.
pub fn merge_with(
    existing: &Config,
    new: Imported,
    node: &str,
    opts: ImportOptions,
) -> Result<Imported, ImportError> {
    let mut cfg = existing.clone();
    let named_groups: Vec<&VrrpGroup> = existing
        .vrrp_groups
        .iter()
        .filter(|g| new.config.vrrp_groups.iter().any(|n| n.name == g.name))
        .collect();
    let pool: Vec<&VrrpGroup> = if new.config.vrrp_groups.is_empty() {
        existing.vrrp_groups.iter().collect()
    } else {
        named_groups
    };
    let mut others: Vec<&str> = pool
        .iter()
        .flat_map(|g| g.nodes.iter().map(|n| n.node.as_str()))
        .filter(|n| *n != node)
        .collect();
    others.sort();
    others.dedup();
    let guard = !others.is_empty() && !opts.prefer_file;
    let mut disagreements = Vec::new();

    for g in &new.config.vrrp_groups {
        match cfg.vrrp_groups.iter_mut().find(|e| e.name == g.name) {
            None => cfg.vrrp_groups.push(g.clone()),
            Some(e) => {
                if guard {
                    let (mut a, mut b) = (e.clone(), g.clone());
                    a.nodes.clear();
                    b.nodes.clear();
                    a.id = 0;
                    b.id = 0;
                    let entity = format!("group {}", g.name);
                    for f in crate::model::diff::fields_of(&a, &b, &[]) {
                        disagreements.push(Disagreement {
                            at: new
                                .line_of(&entity, &f.field)
                                .unwrap_or(&g.name)
                                .to_string(),
                            what: format!("{entity} {}", f.field),
                            file: f.to,
                            stored: f.from,
                        });
                    }
                }
                let mut nodes = e.nodes.clone();
                for n in &g.nodes {
                    match nodes.iter_mut().find(|x| x.node == n.node) {
                        Some(x) => *x = n.clone(),
                        None => nodes.push(n.clone()),
                    }
                }
                let id = e.id;
                *e = g.clone();
                e.id = id;
                e.nodes = nodes;
            }
        }
    }
    for v in &new.config.virtual_servers {
        let mut v = v.clone();
        std::sync::Arc::make_mut(&mut v).normalize();
        let key = v.key();
        match cfg.virtual_servers.iter_mut().find(|e| e.key() == key) {
            None => cfg.virtual_servers.push(v),
            Some(e) => {
                if guard {
                    for (entity, field, file, stored) in vs_differences(e, &v) {
                        disagreements.push(Disagreement {
                            at: new.line_of(&entity, &field).unwrap_or(&entity).to_string(),
                            what: if field.is_empty() {
                                entity
                            } else {
                                format!("{entity} {field}")
                            },
                            file,
                            stored,
                        });
                    }
                }
                let mut nv = (*v).clone();
                nv.id = e.id;
                if nv.name.is_none() {
                    nv.name = e.name.clone();
                }
                for r in &mut nv.real_servers {
                    let old = e
                        .real_servers
                        .iter()
                        .find(|o| (o.address, o.port) == (r.address, r.port));
                    if let Some(o) = old {
                        r.id = o.id;
                        if let (Some(h), Some(oh)) = (&mut r.health_check, &o.health_check) {
                            if h.kind == oh.kind {
                                h.rise = h.rise.or(oh.rise);
                                h.fall = h.fall.or(oh.fall);
                                if h.body_contains.is_none() {
                                    h.body_contains = oh.body_contains.clone();
                                }
                            }
                        }
                    }
                }
                *e = std::sync::Arc::new(nv);
            }
        }
    }
    if let Some(t) = new.config.ipvs_timeouts {
        let entity = crate::model::diff::IPVS_TIMEOUTS_KEY;
        if let (true, Some(stored)) = (guard, cfg.ipvs_timeouts) {
            for f in crate::model::diff::fields_of(&stored, &t, &[]) {
                disagreements.push(Disagreement {
                    at: new.line_of(entity, &f.field).unwrap_or(entity).to_string(),
                    what: format!("{entity} {}", f.field),
                    file: f.to,
                    stored: f.from,
                });
            }
        }
        cfg.ipvs_timeouts = Some(t);
    } else if opts.replace {
        cfg.ipvs_timeouts = None;
    }
    if let Some(mut cs) = new.config.connection_sync.clone() {
        let entity = crate::model::diff::CONNECTION_SYNC_KEY;
        if let Some(stored) = &cfg.connection_sync {
            // keepalived.conf cannot say the hold: a stored one is kept.
            cs.failback_hold_ms = stored.failback_hold_ms;
            if guard {
                for f in crate::model::diff::fields_of(stored, &cs, &[]) {
                    disagreements.push(Disagreement {
                        at: new.line_of(entity, &f.field).unwrap_or(entity).to_string(),
                        what: format!("{entity} {}", f.field),
                        file: f.to,
                        stored: f.from,
                    });
                }
            }
        }
        cfg.connection_sync = Some(cs);
    } else if opts.replace {
        cfg.connection_sync = None;
    }
    merge_vrrp_settings(
        &mut cfg.vrrp_settings,
        &new.config.vrrp_settings,
        opts.replace,
    );
    if !disagreements.is_empty() {
        let first = disagreements[0].at.clone();
        let list = disagreements
            .iter()
            .map(|d| {
                format!(
                    "{}: {}: this file has {}, lbd has {} (stored)",
                    d.at, d.what, d.file, d.stored
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ImportError {
            at: first,
            message: format!(
                "this file disagrees with the configuration the other director's file ({}) made, on {} shared value(s): {list}. Make the files agree, or take this file's values with --prefer-file (prefer_file=true)",
                others.join(", "),
                disagreements.len()
            ),
        });
    }
    if opts.replace {
        let vs_keys: Vec<_> = new
            .config
            .virtual_servers
            .iter()
            .map(|v| plain_vs(v).key())
            .collect();
        cfg.virtual_servers.retain(|v| vs_keys.contains(&v.key()));
        cfg.vrrp_groups
            .retain(|g| new.config.vrrp_groups.iter().any(|n| n.name == g.name));
    }
    Ok(Imported {
        config: cfg,
        warnings: new.warnings,
        unsupported: new.unsupported,
        lines: new.lines,
    })
}

/// [`merge_with`] with the default options, for the node named in the file's groups.
pub fn merge(existing: &Config, new: Imported) -> Result<Imported, ImportError> {
    let node = new
        .config
        .vrrp_groups
        .iter()
        .flat_map(|g| g.nodes.iter())
        .map(|n| n.node.clone())
        .next()
        .unwrap_or_default();
    merge_with(existing, new, &node, ImportOptions::default())
}

/// The file's VRRP settings into the stored ones: with `replace` the file's as they are;
/// otherwise the file's sync groups replace stored ones of the same name (and take their
/// members from any other stored sync group; one left empty goes), and strict mode is on
/// when either has it.
fn merge_vrrp_settings(
    stored: &mut crate::model::VrrpSettings,
    file: &crate::model::VrrpSettings,
    replace: bool,
) {
    if replace {
        *stored = file.clone();
        return;
    }
    stored.strict |= file.strict;
    for sg in &file.sync_groups {
        for other in stored.sync_groups.iter_mut().filter(|o| o.name != sg.name) {
            other.groups.retain(|m| !sg.groups.contains(m));
        }
        match stored.sync_groups.iter_mut().find(|o| o.name == sg.name) {
            Some(o) => *o = sg.clone(),
            None => stored.sync_groups.push(sg.clone()),
        }
    }
    stored.sync_groups.retain(|o| !o.groups.is_empty());
}

/// `use_vmac [[name] NAME] [MAC] [netlink_notify_msg] [group GROUP]` (keepalived's
/// vrrp_vmac_handler): the name is kept; a MAC of one's own and a group are reported as
/// unsupported, `netlink_notify_msg` (a workaround for listeners of a bridge's promiscuity)
/// as a warning.
fn use_vmac(cx: &mut Ctx<'_>, c: &Node, g: &mut VrrpGroup) {
    g.use_vmac = true;
    let mut args = c.args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            // An interface name never holds a ':'.
            m if m.contains(':') => {
                cx.unsupported_arg(c, &format!("use_vmac {m} (a MAC address of one's own)"))
            }
            "netlink_notify_msg" => cx.warn(
                c,
                "use_vmac netlink_notify_msg is not needed by lbd; ignored",
            ),
            "group" => {
                let grp = args.next().map(String::as_str).unwrap_or("");
                cx.unsupported_arg(c, &format!("use_vmac group {grp}"));
            }
            "name" => {
                if let Some(v) = args.next() {
                    g.vmac_name = Some(v.clone());
                }
            }
            v => g.vmac_name = Some(v.to_string()),
        }
    }
}
