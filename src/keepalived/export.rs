//! lbd's model -> keepalived.conf, for one node (its priority, state and interface).

use std::fmt::Write;
use std::net::IpAddr;

use crate::model::{
    CheckKind, Config, Family, Forwarding, InitialState, Protocol, TrackScript, VirtualServer,
};

fn secs(ms: u32) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}", f64::from(ms) / 1000.0)
    }
}

fn kind(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Dr => "DR",
        Forwarding::Nat => "NAT",
        Forwarding::Tun => "TUN",
    }
}

fn mask(prefix: u8, family: Family) -> String {
    match family {
        Family::Ipv4 => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            std::net::Ipv4Addr::from(m).to_string()
        }
        Family::Ipv6 => prefix.to_string(),
    }
}

/// The `vrrp_script` name of each group's track scripts: the script's own name, unless another
/// group has a different script of that name (then `GROUP_NAME`).
fn script_names(cfg: &Config) -> std::collections::HashMap<(String, String), String> {
    let mut by_name: std::collections::HashMap<&str, Vec<(&str, &TrackScript)>> =
        std::collections::HashMap::new();
    for g in &cfg.vrrp_groups {
        for s in &g.track_scripts {
            by_name
                .entry(s.name.as_str())
                .or_default()
                .push((g.name.as_str(), s));
        }
    }
    let mut out = std::collections::HashMap::new();
    for (name, uses) in by_name {
        let shared = uses.iter().all(|(_, s)| s.runs_like(uses[0].1));
        for (g, _) in &uses {
            let exported = if shared {
                name.to_string()
            } else {
                format!("{g}_{name}")
            };
            out.insert((g.to_string(), name.to_string()), exported);
        }
    }
    out
}

/// The keepalived.conf for `node`. Groups without an entry for `node` are left out (a comment
/// says so); lbd settings keepalived cannot express are written as comments.
pub fn export(cfg: &Config, node: &str) -> String {
    let mut o = String::new();
    let names = script_names(cfg);
    let _ = writeln!(o, "! keepalived.conf exported by lbd for node {node}");
    let _ = writeln!(o, "global_defs {{\n    router_id {node}");
    if let Some(t) = &cfg.ipvs_timeouts {
        // A 0 is not managed: left out, as keepalived leaves an option it was not given.
        let parts: Vec<String> = [
            ("tcp", t.tcp_secs),
            ("tcpfin", t.tcp_fin_secs),
            ("udp", t.udp_secs),
        ]
        .iter()
        .filter(|(_, v)| v.get() != 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
        if !parts.is_empty() {
            let _ = writeln!(o, "    lvs_timeouts {}", parts.join(" "));
        }
    }
    if let Some(cs) = &cfg.connection_sync {
        // keepalived needs an instance to follow; lbd runs both daemons whatever the state.
        let instance = cs
            .vrrp_group
            .clone()
            .or_else(|| cfg.vrrp_groups.first().map(|g| g.name.clone()));
        match instance {
            Some(instance) => {
                let mut line = format!(
                    "    lvs_sync_daemon {} {instance} id {}",
                    cs.interface, cs.sync_id
                );
                for (k, v) in [
                    ("maxlen", cs.maxlen.map(|v| v.to_string())),
                    ("port", cs.port.map(|v| v.to_string())),
                    ("ttl", cs.ttl.map(|v| v.to_string())),
                    ("group", cs.group.map(|v| v.to_string())),
                ] {
                    if let Some(v) = v {
                        line.push_str(&format!(" {k} {v}"));
                    }
                }
                let _ = writeln!(
                    o,
                    "    ! lbd runs both sync daemons on every director; keepalived runs the one \
                     {instance}'s state says (failback_hold_ms {} is lbd's alone)",
                    cs.failback_hold_ms
                );
                let _ = writeln!(o, "{line}");
            }
            None => {
                let _ = writeln!(
                    o,
                    "    ! lbd: connection sync on {} (sync id {}) is not exported: keepalived's \
                     lvs_sync_daemon needs a vrrp_instance and this configuration has none",
                    cs.interface, cs.sync_id
                );
            }
        }
    }
    let spacing = garp_spacing(cfg, node);
    if let Spacing::Global(garp, gna) = spacing {
        if garp > 0 {
            let _ = writeln!(o, "    vrrp_garp_interval {}", secs(garp));
        }
        if gna > 0 {
            let _ = writeln!(o, "    vrrp_gna_interval {}", secs(gna));
        }
    }
    if cfg.vrrp_settings.strict {
        let _ = writeln!(
            o,
            "    ! lbd refuses what vrrp_strict forbids and adds no iptables/nftables rules\n    vrrp_strict"
        );
    }
    let _ = writeln!(o, "}}\n");
    let mut written = std::collections::HashSet::new();
    for g in &cfg.vrrp_groups {
        for s in &g.track_scripts {
            let name = names
                .get(&(g.name.clone(), s.name.clone()))
                .cloned()
                .unwrap_or_else(|| s.name.clone());
            if !written.insert(name.clone()) {
                continue;
            }
            // The weight is the instance's (track_script NAME weight N).
            let _ = writeln!(
                o,
                "vrrp_script {name} {{\n    script \"{}\"\n    interval {}\n    timeout {}\n    rise {}\n    fall {}\n}}\n",
                s.command,
                secs(s.interval_ms),
                secs(s.timeout()),
                s.rise,
                s.fall
            );
        }
    }
    for g in &cfg.vrrp_groups {
        let Some(n) = g.node(node) else {
            let _ = writeln!(
                o,
                "! vrrp_instance {} has no entry for node {node}; not exported\n",
                g.name
            );
            continue;
        };
        let _ = writeln!(o, "vrrp_instance {} {{", g.name);
        let state = if n.initial_state == InitialState::Master {
            "MASTER"
        } else {
            "BACKUP"
        };
        let _ = writeln!(
            o,
            "    state {state}\n    interface {}\n    virtual_router_id {}\n    priority {}",
            n.interface, g.vrid, n.priority
        );
        let _ = writeln!(o, "    advert_int {}", secs(g.advert_interval_ms));
        if g.version != 2 {
            let _ = writeln!(o, "    version {}", g.version);
        }
        if !g.preempt {
            let _ = writeln!(o, "    nopreempt");
        }
        if g.preempt_delay_ms > 0 {
            let _ = writeln!(o, "    preempt_delay {}", secs(g.preempt_delay_ms));
        }
        if let Some(p) = &g.auth_pass {
            let _ = writeln!(
                o,
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}"
            );
        }
        if g.use_vmac {
            match &g.vmac_name {
                Some(name) => {
                    let _ = writeln!(o, "    use_vmac {name}");
                }
                None => {
                    let _ = writeln!(o, "    use_vmac");
                }
            }
            if g.vmac_xmit_base {
                let _ = writeln!(o, "    vmac_xmit_base");
            }
        }
        if let Some(src) = n.unicast_src {
            let _ = writeln!(o, "    unicast_src_ip {src}");
        }
        if !g.unicast_peers.is_empty() {
            let _ = writeln!(o, "    unicast_peer {{");
            for p in &g.unicast_peers {
                let _ = writeln!(o, "        {p}");
            }
            let _ = writeln!(o, "    }}");
        }
        if !g.track_interfaces.is_empty() || !g.track_interfaces_weighted.is_empty() {
            let _ = writeln!(o, "    track_interface {{");
            for t in &g.track_interfaces {
                let _ = writeln!(o, "        {t}");
            }
            for t in &g.track_interfaces_weighted {
                let _ = writeln!(o, "        {} weight {}", t.interface, t.weight);
            }
            let _ = writeln!(o, "    }}");
        }
        if !g.track_scripts.is_empty() {
            let _ = writeln!(o, "    track_script {{");
            for s in &g.track_scripts {
                let name = names
                    .get(&(g.name.clone(), s.name.clone()))
                    .map_or(s.name.as_str(), String::as_str);
                let _ = writeln!(o, "        {name} weight {}", s.weight);
            }
            let _ = writeln!(o, "    }}");
        }
        for t in &g.track_virtual_servers {
            let _ = writeln!(
                o,
                "    ! lbd tracks virtual server {} weight {}: keepalived has no equivalent; not exported",
                t.virtual_server, t.weight
            );
        }
        let nt = &g.notify;
        for (k, c) in [
            ("notify_master", &nt.master),
            ("notify_backup", &nt.backup),
            ("notify_fault", &nt.fault),
            ("notify_stop", &nt.stop),
            ("notify", &nt.any),
        ] {
            if let Some(c) = c {
                let _ = writeln!(o, "    {k} \"{c}\"");
            }
        }
        if !nt.is_empty() {
            let _ = writeln!(
                o,
                "    ! lbd kills a notify command after {} ms; keepalived lets it run",
                nt.timeout_ms
            );
        }
        let _ = writeln!(
            o,
            "    garp_master_delay {}\n    garp_master_repeat {}",
            secs(g.garp.repeat_delay_ms),
            g.garp.count
        );
        let _ = writeln!(
            o,
            "    garp_master_refresh {}",
            secs(g.garp.refresh_interval_ms.unwrap_or(0))
        );
        let _ = writeln!(o, "    virtual_ipaddress {{");
        for v in &g.virtual_addresses {
            let _ = writeln!(o, "        {}", v.keepalived());
        }
        let _ = writeln!(o, "    }}");
        if !g.virtual_routes.is_empty() {
            let _ = writeln!(o, "    virtual_routes {{");
            for r in &g.virtual_routes {
                let _ = writeln!(o, "        {r}");
            }
            let _ = writeln!(o, "    }}");
        }
        if !g.virtual_rules.is_empty() {
            let _ = writeln!(o, "    virtual_rules {{");
            for r in &g.virtual_rules {
                let _ = writeln!(o, "        {r}");
            }
            let _ = writeln!(o, "    }}");
        }
        let _ = writeln!(o, "}}\n");
    }
    if let Spacing::PerInterface(list) = spacing {
        for (ifname, garp, gna) in list {
            let _ = writeln!(
                o,
                "garp_group {{\n    garp_interval {}\n    gna_interval {}\n    interface {ifname}\n}}\n",
                secs(garp),
                secs(gna)
            );
        }
    }
    sync_groups(&mut o, cfg, node);
    for vs in &cfg.virtual_servers {
        virtual_server(&mut o, vs);
    }
    o
}

/// How the groups' `garp.interval_ms` / `na_interval_ms` are written for `node`.
enum Spacing {
    /// Every exported group has these: `global_defs { vrrp_garp_interval vrrp_gna_interval }`.
    Global(u32, u32),
    /// `garp_group` blocks, one per interface (keepalived spaces per interface; groups of one
    /// interface that disagree are written with the largest values).
    PerInterface(Vec<(String, u32, u32)>),
}

fn garp_spacing(cfg: &Config, node: &str) -> Spacing {
    let mine: Vec<(&str, u32, u32)> = cfg
        .vrrp_groups
        .iter()
        .filter_map(|g| {
            g.node(node).map(|n| {
                (
                    n.interface.as_str(),
                    g.garp.interval_ms,
                    g.garp.na_interval_ms,
                )
            })
        })
        .collect();
    match mine.first() {
        None => Spacing::Global(0, 0),
        Some(&(_, a, b)) if mine.iter().all(|&(_, x, y)| (x, y) == (a, b)) => Spacing::Global(a, b),
        Some(_) => {
            let mut per: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
            for (i, a, b) in mine {
                let e = per.entry(i).or_default();
                *e = (e.0.max(a), e.1.max(b));
            }
            Spacing::PerInterface(
                per.into_iter()
                    .map(|(i, (a, b))| (i.to_string(), a, b))
                    .collect(),
            )
        }
    }
}

/// `vrrp_sync_group` blocks, with the members exported for `node` (keepalived ignores a
/// member it does not know).
fn sync_groups(o: &mut String, cfg: &Config, node: &str) {
    for sg in &cfg.vrrp_settings.sync_groups {
        let members: Vec<&String> = sg
            .groups
            .iter()
            .filter(|m| {
                cfg.vrrp_groups
                    .iter()
                    .any(|g| &&g.name == m && g.node(node).is_some())
            })
            .collect();
        if members.is_empty() {
            let _ = writeln!(
                o,
                "! lbd: sync group {} left out: none of its groups has an entry for {node}\n",
                sg.name
            );
            continue;
        }
        let _ = writeln!(o, "vrrp_sync_group {} {{\n    group {{", sg.name);
        for m in members {
            let _ = writeln!(o, "        {m}");
        }
        let _ = writeln!(o, "    }}");
        let nt = &sg.notify;
        for (k, c) in [
            ("notify_master", &nt.master),
            ("notify_backup", &nt.backup),
            ("notify_fault", &nt.fault),
            ("notify_stop", &nt.stop),
            ("notify", &nt.any),
        ] {
            if let Some(c) = c {
                let _ = writeln!(o, "    {k} \"{c}\"");
            }
        }
        let _ = writeln!(o, "}}\n");
    }
}

fn virtual_server(o: &mut String, vs: &VirtualServer) {
    let family = vs.family().unwrap_or(Family::Ipv4);
    match (vs.address, vs.fwmark) {
        (Some(a), _) => {
            let _ = writeln!(o, "virtual_server {a} {} {{", vs.port.unwrap_or(0));
        }
        (None, Some(m)) => {
            let _ = writeln!(o, "virtual_server fwmark {m} {{");
            if family == Family::Ipv6 {
                let _ = writeln!(o, "    ip_family inet6");
            }
        }
        _ => return,
    }
    if let Some(name) = &vs.name {
        let _ = writeln!(o, "    ! lbd name: {name}");
    }
    let _ = writeln!(
        o,
        "    delay_loop {}\n    lb_algo {}\n    lb_kind {}",
        secs(vs.delay_loop_ms),
        vs.scheduler.kernel_name(),
        kind(vs.forwarding)
    );
    if let Some(p) = vs.protocol {
        let _ = writeln!(
            o,
            "    protocol {}",
            match p {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            }
        );
    }
    if let Some(t) = vs.persistence_timeout_secs {
        let _ = writeln!(o, "    persistence_timeout {t}");
    }
    if let Some(g) = vs.persistence_granularity {
        let _ = writeln!(o, "    persistence_granularity {}", mask(g, family));
    }
    if let Some(s) = &vs.sorry_server {
        let port = s.port.or(vs.port).unwrap_or(0);
        let _ = writeln!(o, "    sorry_server {} {port}", s.address);
    }
    if let Some(q) = vs.quorum {
        let _ = writeln!(o, "    quorum {q}");
    }
    if vs.hysteresis > 0 {
        let _ = writeln!(o, "    hysteresis {}", vs.hysteresis);
    }
    // Quoted as one word; keepalived splits it into argv (validation keeps `"` out of it).
    if let Some(c) = &vs.quorum_up {
        let _ = writeln!(o, "    quorum_up \"{c}\"");
    }
    if let Some(c) = &vs.quorum_down {
        let _ = writeln!(o, "    quorum_down \"{c}\"");
    }
    if vs.alpha {
        let _ = writeln!(o, "    alpha");
    }
    if vs.omega {
        let _ = writeln!(o, "    omega");
    }
    if vs.one_packet {
        let _ = writeln!(o, "    ops");
    }
    for f in &vs.scheduler_flags {
        let _ = writeln!(o, "    {}", f.name());
    }
    for rs in &vs.real_servers {
        let addr = match rs.address {
            IpAddr::V6(a) => a.to_string(),
            a => a.to_string(),
        };
        match rs.port {
            // Port 0 ("the packet's port") is what keepalived makes of no port.
            Some(p) if p != 0 => {
                let _ = writeln!(o, "    real_server {addr} {p} {{");
            }
            _ => {
                let _ = writeln!(o, "    real_server {addr} {{");
            }
        }
        let _ = writeln!(o, "        weight {}", rs.weight);
        if rs.inhibit_on_failure {
            let _ = writeln!(o, "        inhibit_on_failure");
        }
        if let Some(f) = rs.forwarding {
            let _ = writeln!(o, "        lvs_method {}", kind(f));
        }
        if let Some(u) = rs.upper_threshold {
            let _ = writeln!(o, "        uthreshold {u}");
        }
        if let Some(l) = rs.lower_threshold {
            let _ = writeln!(o, "        lthreshold {l}");
        }
        if let Some(hc) = &rs.health_check {
            let name = match hc.kind {
                CheckKind::Tcp => "TCP_CHECK",
                CheckKind::Http => "HTTP_GET",
                CheckKind::Misc => "MISC_CHECK",
                CheckKind::Https => "SSL_GET",
            };
            let _ = writeln!(o, "        {name} {{");
            if let Some(v) = &hc.virtualhost {
                let _ = writeln!(o, "            virtualhost {v}");
            }
            if let Some(p) = &hc.misc_path {
                let _ = writeln!(o, "            misc_path \"{p}\"");
            }
            if let Some(t) = hc.misc_timeout_ms {
                let _ = writeln!(o, "            misc_timeout {}", secs(t));
            }
            if hc.misc_dynamic {
                let _ = writeln!(o, "            misc_dynamic");
            }
            if let Some(u) = &hc.user {
                let _ = writeln!(o, "            user {u}");
            }
            for u in &hc.urls {
                let _ = writeln!(o, "            url {{\n                path {}", u.path);
                if !u.status_codes.is_empty() {
                    let codes: Vec<String> = u.status_codes.iter().map(|c| c.to_string()).collect();
                    let _ = writeln!(o, "                status_code {}", codes.join(" "));
                }
                if let Some(d) = &u.digest {
                    let _ = writeln!(o, "                digest {d}");
                }
                let _ = writeln!(o, "            }}");
            }
            if matches!(hc.kind, CheckKind::Http | CheckKind::Https) && hc.urls.is_empty() {
                let _ = writeln!(
                    o,
                    "            url {{\n                path {}",
                    hc.path.as_deref().unwrap_or("/")
                );
                let _ = writeln!(
                    o,
                    "                status_code {}\n            }}",
                    hc.expected_status.unwrap_or(200)
                );
            }
            if let Some(p) = hc.connect_port {
                let _ = writeln!(o, "            connect_port {p}");
            }
            if hc.kind != CheckKind::Misc {
                let _ = writeln!(
                    o,
                    "            connect_timeout {}",
                    secs(hc.connect_timeout_ms)
                );
            }
            let _ = writeln!(
                o,
                "            retry {}\n            delay_before_retry {}",
                hc.retry,
                secs(hc.delay_before_retry_ms)
            );
            for (what, v) in [("rise", hc.rise), ("fall", hc.fall)] {
                if let Some(v) = v {
                    let _ = writeln!(o, "            ! lbd {what} {v} (no keepalived equivalent)");
                }
            }
            for (what, v) in [
                ("tls_ca_file", &hc.tls_ca_file),
                ("tls_server_name", &hc.tls_server_name),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(
                        o,
                        "            ! lbd {what} {v:?} (keepalived: global ssl block)"
                    );
                }
            }
            if let Some(b) = &hc.body_contains {
                let _ = writeln!(
                    o,
                    "            ! lbd body_contains {b:?} (no keepalived equivalent)"
                );
            }
            let _ = writeln!(o, "        }}");
        }
        let _ = writeln!(o, "    }}");
    }
    let _ = writeln!(o, "}}\n");
}
