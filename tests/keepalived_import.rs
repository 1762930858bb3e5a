//! Importing keepalived.conf: the seed's two directors exactly, a file with every supported
//! keyword, merging, export round trips, and file:line errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use lbd::keepalived::parser::{FsIncludes, NoIncludes};
use lbd::keepalived::{export::export, import_into, KeepalivedError};
use lbd::model::{
    validate, CheckKind, Config, Family, Forwarding, InitialState, Protocol, Scheduler,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keepalived")
        .join(name)
}

fn import(existing: &Config, file: &str, node: &str) -> lbd::keepalived::Imported {
    let path = data(file);
    let text = std::fs::read_to_string(&path).unwrap();
    import_into(existing, &text, &path, node, &FsIncludes).unwrap()
}

fn strip_ids(mut c: Config) -> Config {
    for v in &mut c.virtual_servers {
        let v = std::sync::Arc::make_mut(v);
        v.id = 0;
        for r in &mut v.real_servers {
            r.id = 0;
        }
    }
    for g in &mut c.vrrp_groups {
        g.id = 0;
    }
    c
}

#[test]
fn the_seed_directors_import_exactly() {
    let a = import(&Config::default(), "lk01.conf", "lk01");
    assert!(a.unsupported.is_empty(), "{:?}", a.unsupported);
    // nb_get_retry is noted (keepalived 2.2.7 ignores it), router_id too.
    assert!(
        a.warnings
            .iter()
            .any(|w| w.message.contains("nb_get_retry") && w.at.ends_with("lk01.conf:33")),
        "{:?}",
        a.warnings
    );
    let b = import(&a.config, "lk02.conf", "lk02");
    let cfg = b.config;
    validate::config(&cfg, None).unwrap();

    assert_eq!(cfg.virtual_servers.len(), 1);
    let vs = &cfg.virtual_servers[0];
    assert_eq!(vs.address, Some("192.168.10.100".parse().unwrap()));
    assert_eq!(
        (vs.port, vs.protocol, vs.family),
        (Some(80), Some(Protocol::Tcp), Some(Family::Ipv4))
    );
    assert_eq!(
        (vs.scheduler, vs.forwarding, vs.delay_loop_ms),
        (Scheduler::Rr, Forwarding::Dr, 15_000)
    );
    assert_eq!(
        (
            vs.persistence_timeout_secs,
            vs.sorry_server.clone(),
            vs.quorum
        ),
        (None, None, None)
    );
    assert_eq!(vs.real_servers.len(), 2);
    for (rs, addr) in vs
        .real_servers
        .iter()
        .zip(["192.168.10.103", "192.168.10.104"])
    {
        assert_eq!(rs.address, addr.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(
            (
                rs.port,
                rs.weight.get(),
                rs.forwarding,
                rs.inhibit_on_failure
            ),
            (Some(80), 1, None, false)
        );
        let hc = rs.health_check.as_ref().unwrap();
        assert_eq!(hc.kind, CheckKind::Tcp);
        assert_eq!(
            (
                hc.connect_port,
                hc.connect_timeout_ms,
                hc.retry,
                hc.delay_before_retry_ms
            ),
            (Some(80), 3000, 3, 4000)
        );
        assert_eq!((hc.rise, hc.fall, hc.path.clone()), (None, None, None));
    }

    assert_eq!(cfg.vrrp_groups.len(), 1);
    let g = &cfg.vrrp_groups[0];
    assert_eq!(
        (
            g.name.as_str(),
            g.vrid.get(),
            g.version,
            g.advert_interval_ms
        ),
        ("VI_1", 1, 2, 1000)
    );
    assert_eq!(g.auth_pass.as_deref(), Some("1234567"));
    assert_eq!(
        g.virtual_addresses
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        vec!["192.168.10.100/32"]
    );
    assert!(g.preempt);
    assert_eq!(g.nodes.len(), 2);
    let n1 = g.node("lk01").unwrap();
    let n2 = g.node("lk02").unwrap();
    assert_eq!(
        (n1.priority.get(), n1.interface.as_str(), n1.initial_state),
        (100, "eth0", InitialState::Master)
    );
    assert_eq!(
        (n2.priority.get(), n2.interface.as_str(), n2.initial_state),
        (90, "eth0", InitialState::Backup)
    );
}

#[test]
fn every_supported_keyword_and_the_reported_rest() {
    let r = import(&Config::default(), "full.conf", "lb-a");
    let cfg = &r.config;
    let mut normalized = cfg.clone();
    for v in &mut normalized.virtual_servers {
        std::sync::Arc::make_mut(v).normalize();
    }
    validate::config(&normalized, None).unwrap();

    let g = &cfg.vrrp_groups[0];
    assert_eq!(
        (
            g.name.as_str(),
            g.vrid.get(),
            g.version,
            g.advert_interval_ms
        ),
        ("VI_6", 51, 3, 100)
    );
    assert!(!g.preempt);
    assert_eq!(g.preempt_delay_ms, 3000);
    assert_eq!(
        g.unicast_peers,
        vec!["10.1.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(g.track_interfaces, vec!["eth2"]);
    assert_eq!(
        (
            g.garp.repeat_delay_ms,
            g.garp.count,
            g.garp.refresh_interval_ms
        ),
        (2000, 3, Some(30_000))
    );
    assert_eq!(
        g.virtual_addresses
            .iter()
            .map(|v| v.keepalived())
            .collect::<Vec<_>>(),
        vec!["10.1.0.100/24 dev eth1 label eth1:1", "10.1.0.101/32"]
    );
    let n = g.node("lb-a").unwrap();
    assert_eq!(
        (n.priority.get(), n.interface.as_str(), n.unicast_src),
        (150, "eth1", Some("10.1.0.1".parse().unwrap()))
    );

    // The included file comes where the include stands: first.
    let keys: Vec<String> = cfg
        .virtual_servers
        .iter()
        .map(|v| lbd::model::diff::vs_label(v))
        .collect();
    assert_eq!(
        keys,
        vec![
            "sctp 10.1.0.100:8080",
            "tcp 10.1.0.100:443",
            "fwmark 7 ipv4",
            "udp 10.1.0.100:53"
        ]
    );
    let https = &cfg.virtual_servers[1];
    assert_eq!(
        (https.scheduler, https.forwarding, https.delay_loop_ms),
        (Scheduler::Wlc, Forwarding::Nat, 5000)
    );
    assert_eq!(
        (
            https.persistence_timeout_secs,
            https.persistence_granularity,
            https.quorum
        ),
        (Some(600), Some(24), Some(2))
    );
    let sorry = https.sorry_server.as_ref().unwrap();
    assert_eq!(
        (sorry.address.to_string(), sorry.port),
        ("10.1.0.99".into(), Some(8443))
    );
    let r0 = &https.real_servers[0];
    assert_eq!(
        (
            r0.port,
            r0.weight.get(),
            r0.inhibit_on_failure,
            r0.upper_threshold,
            r0.lower_threshold
        ),
        (Some(8443), 3, true, Some(1000), Some(100))
    );
    let hc = r0.health_check.as_ref().unwrap();
    assert_eq!(
        (
            hc.kind,
            hc.path.as_deref(),
            hc.expected_status,
            hc.connect_port
        ),
        (CheckKind::Http, Some("/healthz"), Some(204), Some(8080))
    );
    assert_eq!(
        (hc.connect_timeout_ms, hc.retry, hc.delay_before_retry_ms),
        (2000, 2, 1000)
    );
    let r1 = &https.real_servers[1];
    assert_eq!(
        (r1.forwarding, r1.port, r1.health_check.is_none()),
        (Some(Forwarding::Tun), Some(443), true),
        "tun cannot change the port"
    );
    let fwm = &cfg.virtual_servers[2];
    assert_eq!((fwm.fwmark, fwm.real_servers[0].port), (Some(7), None));
    let dns = &cfg.virtual_servers[3];
    assert_eq!(
        (
            dns.protocol,
            dns.persistence_timeout_secs,
            dns.real_servers[0].port
        ),
        (Some(Protocol::Udp), Some(360), Some(53))
    );

    let msgs = |v: &[lbd::keepalived::Warning]| {
        v.iter()
            .map(|w| format!("{} {}", w.at.rsplit('/').next().unwrap(), w.message))
            .collect::<Vec<_>>()
    };
    let unsupported = msgs(&r.unsupported);
    for want in [
        "full.conf:5 `notification_email`",
        "full.conf:63 `notify_up`",
    ] {
        assert!(
            unsupported.iter().any(|u| u.starts_with(want)),
            "{want} not reported: {unsupported:#?}"
        );
    }
    let warnings = msgs(&r.warnings);
    for want in [
        "full.conf:60 dr/tun cannot change the port: 8443 becomes the service's 443",
        "extra.conf:2 no real servers",
        "full.conf:78 no `protocol`: keepalived defaults to UDP",
        "full.conf:78 persistence_granularity without persistence_timeout",
        "full.conf:82 dr/tun cannot change the port: 5353 becomes the service's 53",
        "full.conf:73 a dr/tun real server of a fwmark service has no port",
        "extra.conf:7 `ops` is dropped",
        "full.conf:32 `notify_master`: lbd kills a notify command",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(want)),
            "{want:?} not warned: {warnings:#?}"
        );
    }
}

#[test]
fn export_then_import_is_stable() {
    for (file, node) in [("lk01.conf", "lk01"), ("full.conf", "lb-a")] {
        let first = import(&Config::default(), file, node).config;
        let text = export(&first, node);
        let again = import_into(
            &Config::default(),
            &text,
            Path::new("exported.conf"),
            node,
            &NoIncludes,
        )
        .unwrap();
        let mut a = strip_ids(first);
        let mut b = strip_ids(again.config);
        for v in a
            .virtual_servers
            .iter_mut()
            .chain(b.virtual_servers.iter_mut())
        {
            std::sync::Arc::make_mut(v).normalize();
        }
        assert_eq!(
            a, b,
            "{file}: export -> import changed the config; exported:\n{text}"
        );
    }
}

#[test]
fn merging_a_disagreeing_director_and_bad_files_are_errors_with_file_and_line() {
    let a = import(&Config::default(), "lk01.conf", "lk01");
    let other = std::fs::read_to_string(data("lk02.conf"))
        .unwrap()
        .replace("virtual_router_id 1", "virtual_router_id 2");
    let e = import_into(
        &a.config,
        &other,
        Path::new("lk02.conf"),
        "lk02",
        &NoIncludes,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "lk02.conf:10: this file disagrees with the configuration the other director's file (lk01) made, on 1 shared value(s): lk02.conf:10: group VI_1 vrid: this file has 2, lbd has 1 (stored)"
        ),
        "{e}"
    );

    let cases = [
        (
            "vrrp_instance X {\n  state MASTER\n",
            "bad.conf:1: block `vrrp_instance` is not closed",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  delay_loop soon\n}\n",
            "bad.conf:2: `delay_loop`: `soon` is not a number of seconds",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 70000\n  }\n}\n",
            "bad.conf:3: weight must be in 0..=65535, got 70000",
        ),
        (
            "include missing/*.conf\n",
            "bad.conf:1: include missing/*.conf:",
        ),
        (
            "vrrp_instance X {\n  interface eth0\n}\n",
            "bad.conf:1: vrrp_instance needs virtual_router_id",
        ),
        (
            "virtual_server 10.0.0.1 80 {\n  lb_kind FAST\n}\n",
            "bad.conf:2: lb_kind must be DR, NAT or TUN, not FAST",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.conf");
    for (text, want) in cases {
        std::fs::write(&path, text).unwrap();
        let e: KeepalivedError =
            import_into(&Config::default(), text, &path, "n", &FsIncludes).unwrap_err();
        let msg = e
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "");
        assert!(
            msg.starts_with(want),
            "{text:?}: got {msg:?}, want {want:?}"
        );
    }
    // An include cycle is refused.
    std::fs::write(dir.path().join("a.conf"), "include b.conf\n").unwrap();
    std::fs::write(dir.path().join("b.conf"), "include a.conf\n").unwrap();
    let p = dir.path().join("a.conf");
    let e = import_into(&Config::default(), "include b.conf\n", &p, "n", &FsIncludes).unwrap_err();
    assert!(e.to_string().contains("includes itself"), "{e}");
}

/// keepalived itself (Debian's package, `keepalived -t`: a configuration check that starts
/// nothing) reads the test files and lbd's exports without an unknown keyword, but for
/// nb_get_retry, which 2.2.7 no longer knows.
#[test]
fn keepalived_accepts_the_files_and_the_exports() {
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("LBD_REQUIRE_PRIVILEGED").is_none(),
            "keepalived is not installed (.ci/run installs it)"
        );
        eprintln!("SKIP keepalived_accepts_the_files_and_the_exports: keepalived is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![data("lk01.conf"), data("full.conf")];
    for (file, node) in [("lk01.conf", "lk01"), ("full.conf", "lb-a")] {
        let p = dir.path().join(format!("export-{file}"));
        std::fs::write(
            &p,
            export(&import(&Config::default(), file, node).config, node),
        )
        .unwrap();
        files.push(p);
    }
    for f in files {
        let out = Command::new("keepalived")
            .arg("-t")
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        let unknown: Vec<_> = text
            .lines()
            .filter(|l| l.contains("Unknown keyword") && !l.contains("nb_get_retry"))
            .collect();
        assert!(unknown.is_empty(), "{}: {unknown:#?}", f.display());
        assert!(
            !text.contains("Configuration file") || !text.contains("error"),
            "{}: {text}",
            f.display()
        );
    }
}

/// keepalived's `global_defs { lvs_timeouts ... }` (ipvsadm --set) becomes
/// `Config::ipvs_timeouts`: any of tcp/tcpfin/udp in any order (the others stay the kernel's),
/// exported back the same, merged like any shared value, and bad values fail on their line.
#[test]
fn lvs_timeouts_are_imported_exported_and_merged() {
    let text = "global_defs {\n    router_id lk01\n    lvs_timeouts udp 60 tcp 7200\n}\n\
                virtual_server 10.0.0.1 80 {\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n";
    let p = Path::new("t.conf");
    let a = import_into(&Config::default(), text, p, "lk01", &NoIncludes).unwrap();
    assert!(a.unsupported.is_empty(), "{:?}", a.unsupported);
    let t = a.config.ipvs_timeouts.expect("imported");
    assert_eq!(
        (t.tcp_secs.get(), t.tcp_fin_secs.get(), t.udp_secs.get()),
        (7200, 0, 60)
    );
    let exported = export(&a.config, "lk01");
    assert!(
        exported.contains("global_defs {\n    router_id lk01\n    lvs_timeouts tcp 7200 udp 60\n}"),
        "{exported}"
    );
    let again = import_into(&Config::default(), &exported, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(again.config.ipvs_timeouts, Some(t));
    // A file without them keeps the stored ones (unless --replace).
    let plain = text.replace("    lvs_timeouts udp 60 tcp 7200\n", "");
    let b = import_into(&a.config, &plain, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(b.config.ipvs_timeouts, Some(t));
    assert!(!export(&Config::default(), "x").contains("lvs_timeouts"));

    // Another director's file that disagrees is refused like any shared value.
    let vrrp = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 1\n  priority 90\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n";
    let one = import_into(
        &Config::default(),
        &format!("{text}{vrrp}"),
        p,
        "lk01",
        &NoIncludes,
    )
    .unwrap();
    let other = format!("{}{vrrp}", text.replace("udp 60", "udp 90"));
    let e = import_into(
        &one.config,
        &other,
        Path::new("lk02.conf"),
        "lk02",
        &NoIncludes,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("lk02.conf:3: ipvs timeouts udp_secs: this file has 90, lbd has 60"),
        "{e}"
    );

    for (line, want) in [
        (
            "lvs_timeouts",
            "t.conf:2: `lvs_timeouts` needs at least one of tcp, tcpfin, udp",
        ),
        (
            "lvs_timeouts tcp",
            "t.conf:2: `lvs_timeouts tcp` needs a number of seconds",
        ),
        (
            "lvs_timeouts tcp soon",
            "t.conf:2: `lvs_timeouts tcp`: `soon` is not a number of seconds",
        ),
        (
            "lvs_timeouts sctp 5",
            "t.conf:2: `lvs_timeouts`: unknown option `sctp`",
        ),
        (
            "lvs_timeouts udp 2678400",
            "t.conf:2: `lvs_timeouts udp`: timeout (seconds) must be in 0..=2147483, got 2678400",
        ),
    ] {
        let text = format!("global_defs {{\n    {line}\n}}\n");
        let e = import_into(&Config::default(), &text, p, "n", &NoIncludes)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(want), "{line}: {e}");
    }

    // keepalived itself reads the export (when it is installed).
    if Command::new("keepalived").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.conf");
        std::fs::write(&f, &exported).unwrap();
        let out = Command::new("keepalived")
            .arg("-t")
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Unknown keyword"), "{text}");
        assert!(!text.contains("lvs_timeout"), "{text}");
    }
}

#[test]
fn tracking_scripts_and_notify_import_with_every_difference_reported() {
    let r = import(&Config::default(), "tracking.conf", "lb-a");
    validate::config(&r.config, None).unwrap();
    let g = &r.config.vrrp_groups[0];
    // Weight 0 or none: FAULT, as before; a weight: the weighted list.
    assert_eq!(g.track_interfaces, vec!["eth2", "eth3"]);
    let weighted: Vec<(&str, i32)> = g
        .track_interfaces_weighted
        .iter()
        .map(|t| (t.interface.as_str(), t.weight))
        .collect();
    assert_eq!(weighted, vec![("eth1", -20)]);
    // The global script is copied into the group; the instance's weight wins.
    let s: Vec<_> = g
        .track_scripts
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.command.as_str(),
                s.interval_ms,
                s.timeout_ms,
                s.weight,
                s.rise,
                s.fall,
            )
        })
        .collect();
    assert_eq!(
        s,
        vec![
            (
                "chk_api",
                "/usr/local/bin/check 'api server'",
                2000,
                Some(1000),
                -30,
                3,
                2
            ),
            ("chk_user", "/bin/true", 1000, None, 5, 1, 1),
        ]
    );
    assert_eq!(
        g.notify.master.as_deref(),
        Some("/usr/local/bin/notify master")
    );
    assert_eq!(
        g.notify.backup.as_deref(),
        Some("/usr/local/bin/notify-backup")
    );
    assert_eq!(g.notify.any.as_deref(), Some("/usr/local/bin/notify-any"));
    assert_eq!(g.notify.fault, None, "as a user: reported, not imported");

    let msgs = |v: &[lbd::keepalived::Warning]| {
        v.iter()
            .map(|w| format!("{} {}", w.at.rsplit('/').next().unwrap(), w.message))
            .collect::<Vec<_>>()
    };
    let unsupported = msgs(&r.unsupported);
    for want in [
        "tracking.conf:17 `user` in vrrp_script",
        "tracking.conf:30 `eth4` in track_interface (`reverse`)",
        "tracking.conf:39 `notify_fault` as user root",
    ] {
        assert!(
            unsupported.iter().any(|u| u.starts_with(want)),
            "{want} not reported: {unsupported:#?}"
        );
    }
    let warnings = msgs(&r.warnings);
    for want in [
        "tracking.conf:11 vrrp_script chk_unused is tracked by no vrrp_instance",
        "tracking.conf:36 `notify_master`: lbd kills",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(want)),
            "{want:?} not warned: {warnings:#?}"
        );
    }

    // Export and import again: the same tracking.
    let text = export(&r.config, "lb-a");
    assert!(text.contains("        eth1 weight -20"), "{text}");
    assert!(text.contains("vrrp_script chk_api {"), "{text}");
    assert!(text.contains("        chk_api weight -30"), "{text}");
    assert!(
        text.contains("    notify \"/usr/local/bin/notify-any\""),
        "{text}"
    );
    let again = import_into(
        &Config::default(),
        &text,
        Path::new("exported.conf"),
        "lb-a",
        &NoIncludes,
    )
    .unwrap();
    let g2 = &again.config.vrrp_groups[0];
    assert_eq!(g2.track_interfaces_weighted, g.track_interfaces_weighted);
    assert_eq!(g2.track_scripts[0].command, g.track_scripts[0].command);
    assert_eq!(g2.track_scripts[0].weight, -30);
    assert_eq!(g2.notify.master, g.notify.master);
}

#[test]
fn an_ipv6_instance_without_a_version_is_vrrpv3_as_in_keepalived() {
    let inst = "vrrp_instance VI_6 {\n    interface eth0\n    virtual_router_id 1\n    priority 100\n    virtual_ipaddress {\n        2001:db8:10::100/64\n    }\n}\n";
    let p = Path::new("t.conf");
    let a = import_into(&Config::default(), inst, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(a.config.vrrp_groups[0].version, 3);
    assert_eq!(a.config.vrrp_groups[0].family(), Some(Family::Ipv6));
    // An IPv4 instance keeps keepalived's default, version 2.
    let v4 = inst.replace("2001:db8:10::100/64", "192.168.10.100");
    let b = import_into(&Config::default(), &v4, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(b.config.vrrp_groups[0].version, 2);
    // A version named for IPv6 is what the file says: 2 stays, and validation refuses it.
    let named = format!("global_defs {{\n    vrrp_version 2\n}}\n{inst}");
    let c = import_into(&Config::default(), &named, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(c.config.vrrp_groups[0].version, 2);
    let e = validate::vrrp_group(&c.config.vrrp_groups[0]).unwrap_err();
    assert!(
        format!("{e:?}").contains("VRRPv2 carries IPv4 addresses only"),
        "{e:?}"
    );
}

/// keepalived's `vrrp_sync_group`, `vrrp_strict` and the GARP/NA intervals (global and per
/// instance): imported, validated, exported and imported back the same; keepalived's strict
/// resets are warnings, unicast peers fail, a member the file lacks is left out with a warning.
#[test]
fn sync_groups_strict_and_garp_intervals_round_trip() {
    let text = r#"global_defs {
    router_id lk01
    vrrp_strict
    vrrp_garp_interval 0.25
    vrrp_gna_interval 0.5
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 1
    priority 100
    preempt_delay 5
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        192.168.10.100
    }
}
vrrp_instance VI_2 {
    state MASTER
    interface eth1
    virtual_router_id 2
    priority 100
    virtual_ipaddress {
        192.168.20.100
    }
}
garp_group {
    garp_interval 0.1
    interface eth1
}
vrrp_sync_group VG_1 {
    group {
        VI_1
        VI_2
        VI_9
    }
    notify_master "/usr/local/bin/vg master"
    notify "/usr/local/bin/vg-any"
}
"#;
    let p = Path::new("sync.conf");
    let a = import_into(&Config::default(), text, p, "lk01", &NoIncludes).unwrap();
    let c = &a.config;
    assert!(c.vrrp_settings.strict);
    let sg = &c.vrrp_settings.sync_groups;
    assert_eq!(sg.len(), 1);
    assert_eq!(sg[0].name, "VG_1");
    assert_eq!(sg[0].groups, ["VI_1", "VI_2"]);
    assert_eq!(
        sg[0].notify.master.as_deref(),
        Some("/usr/local/bin/vg master")
    );
    assert_eq!(sg[0].notify.any.as_deref(), Some("/usr/local/bin/vg-any"));
    let (g1, g2) = (&c.vrrp_groups[0], &c.vrrp_groups[1]);
    // The global interval is every instance's default; a garp_group's wins on its interfaces.
    assert_eq!((g1.garp.interval_ms, g1.garp.na_interval_ms), (250, 500));
    assert_eq!((g2.garp.interval_ms, g2.garp.na_interval_ms), (100, 500));
    // keepalived's strict resets, each warned.
    assert_eq!(g1.auth_pass, None);
    assert_eq!(g1.preempt_delay_ms, 0);
    assert_eq!(g2.nodes[0].initial_state, InitialState::Backup);
    let warned = |s: &str| a.warnings.iter().any(|w| w.message.contains(s));
    assert!(warned("allows no authentication"), "{:#?}", a.warnings);
    assert!(warned("preempt_delay is incompatible"), "{:#?}", a.warnings);
    assert!(warned("state MASTER must match"), "{:#?}", a.warnings);
    assert!(warned("adds no iptables"), "{:#?}", a.warnings);
    assert!(warned("no vrrp_instance VI_9"), "{:#?}", a.warnings);
    assert!(a.unsupported.is_empty(), "{:#?}", a.unsupported);
    validate::config(c, None).unwrap();

    // Export -> import: the same configuration.
    let out = export(c, "lk01");
    assert!(out.contains("    vrrp_strict\n"), "{out}");
    assert!(out.contains("vrrp_sync_group VG_1 {"), "{out}");
    assert!(
        out.contains(
            "garp_group {\n    garp_interval 0.25\n    gna_interval 0.5\n    interface eth0\n}"
        ),
        "{out}"
    );
    assert!(out.contains("    interface eth1\n}"), "{out}");
    let b = import_into(&Config::default(), &out, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(
        strip_ids(b.config),
        strip_ids(c.clone()),
        "exported:\n{out}"
    );

    // Unicast peers with vrrp_strict: keepalived refuses the instance, the import fails.
    let uni = text.replace(
        "    virtual_router_id 2\n",
        "    virtual_router_id 2\n    unicast_peer {\n        192.168.20.2\n    }\n",
    );
    let e = import_into(&Config::default(), &uni, p, "lk01", &NoIncludes).unwrap_err();
    assert!(
        format!("{e}").contains("unicast peers are not allowed"),
        "{e}"
    );
    // Without vrrp_strict nothing is reset.
    let loose = text.replace("    vrrp_strict\n", "");
    let l = import_into(&Config::default(), &loose, p, "lk01", &NoIncludes).unwrap();
    assert!(!l.config.vrrp_settings.strict);
    assert_eq!(l.config.vrrp_groups[0].auth_pass.as_deref(), Some("secret"));
    assert_eq!(l.config.vrrp_groups[0].preempt_delay_ms, 5000);

    // Validation: strict refuses what keepalived resets, naming the field and the rule.
    let mut bad = c.clone();
    bad.vrrp_groups[0].preempt_delay_ms = 1000;
    let e = validate::config(&bad, None).unwrap_err();
    assert_eq!(e.field, "vrrp_groups[0].preempt_delay_ms");
    assert_eq!(e.rule, Some("vrrp_strict"));
    let mut bad = c.clone();
    bad.vrrp_settings.sync_groups[0].groups.push("VI_7".into());
    let e = validate::config(&bad, None).unwrap_err();
    assert_eq!(e.field, "vrrp_settings.sync_groups[0].groups[2]");
    assert_eq!(e.rule, Some("sync_group_member"));
    let mut bad = c.clone();
    bad.vrrp_settings
        .sync_groups
        .push(lbd::model::VrrpSyncGroup {
            name: "VG_2".into(),
            groups: vec!["VI_2".into()],
            notify: Default::default(),
        });
    let e = validate::config(&bad, None).unwrap_err();
    assert_eq!(e.field, "vrrp_settings.sync_groups[1].groups[0]");
    assert!(e.message.contains("already in sync group VG_1"), "{e:?}");
    // keepalived reads the export (garp_group, vrrp_strict, the sync group) without complaint.
    if Command::new("keepalived").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sync.conf");
        std::fs::write(&f, &out).unwrap();
        let r = Command::new("keepalived")
            .args(["-t", "-f"])
            .arg(&f)
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&r.stderr).to_string() + &String::from_utf8_lossy(&r.stdout);
        assert!(!text.contains("Unknown keyword"), "{text}\n{out}");
        assert!(!text.contains("sync group"), "{text}\n{out}");
    }
    // All groups alike: global_defs.
    let mut same = c.clone();
    for g in &mut same.vrrp_groups {
        g.garp.interval_ms = 20;
        g.garp.na_interval_ms = 0;
    }
    let out2 = export(&same, "lk01");
    assert!(out2.contains("    vrrp_garp_interval 0.02\n"), "{out2}");
    assert!(!out2.contains("garp_group"), "{out2}");
    let again = import_into(&Config::default(), &out2, p, "lk01", &NoIncludes).unwrap();
    assert_eq!(again.config.vrrp_groups[1].garp.interval_ms, 20);

    let mut bad = c.clone();
    bad.vrrp_groups[1].garp.interval_ms = 60_001;
    let e = validate::config(&bad, None).unwrap_err();
    assert_eq!(e.field, "vrrp_groups[1].garp.interval_ms");
}

/// keepalived's `use_vmac [[name] NAME]` and `vmac_xmit_base`: imported, validated, exported
/// back the same (and accepted by keepalived), with its forced `vmac_xmit_base` for unicast and
/// the arguments lbd does not take reported.
#[test]
fn use_vmac_and_vmac_xmit_base_import_export_and_round_trip() {
    let inst = |extra: &str| {
        format!("vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    priority 100\n{extra}    virtual_ipaddress {{\n        192.168.10.100\n    }}\n}}\n")
    };
    let p = Path::new("t.conf");
    let one = |extra: &str| {
        import_into(&Config::default(), &inst(extra), p, "lk01", &NoIncludes).unwrap()
    };
    // Bare: the default name vrrp.VRID.
    let a = one("    use_vmac\n");
    let g = &a.config.vrrp_groups[0];
    assert!(g.use_vmac && !g.vmac_xmit_base && g.vmac_name.is_none());
    assert_eq!(g.vmac_ifname().as_deref(), Some("vrrp.51"));
    assert!(
        a.unsupported.is_empty() && a.warnings.is_empty(),
        "{:?} {:?}",
        a.unsupported,
        a.warnings
    );
    validate::vrrp_group(g).unwrap();
    // A name, in both spellings, and vmac_xmit_base.
    for line in ["    use_vmac vmac51\n", "    use_vmac name vmac51\n"] {
        let b = one(&format!("{line}    vmac_xmit_base\n"));
        let g = &b.config.vrrp_groups[0];
        assert_eq!(g.vmac_name.as_deref(), Some("vmac51"), "{line}");
        assert!(g.vmac_xmit_base);
    }
    // A MAC of one's own and a group are reported, never dropped silently; the name stays.
    let c = one("    use_vmac vmac51 02:00:00:00:00:01 group 5\n");
    assert_eq!(c.config.vrrp_groups[0].vmac_name.as_deref(), Some("vmac51"));
    assert_eq!(c.unsupported.len(), 2, "{:?}", c.unsupported);
    assert!(c.unsupported[0].message.contains("02:00:00:00:00:01"));
    assert!(c.unsupported[1].message.contains("group 5"));
    // Unicast without vmac_xmit_base: keepalived sets it, and so does the import, saying so.
    let d = one("    use_vmac\n    unicast_src_ip 192.168.10.101\n    unicast_peer {\n        192.168.10.102\n    }\n");
    let g = &d.config.vrrp_groups[0];
    assert!(g.vmac_xmit_base);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.message.contains("vmac_xmit_base")),
        "{:?}",
        d.warnings
    );
    validate::vrrp_group(g).unwrap();
    // Export writes it back, and importing the export gives the same group.
    for cfg in [
        one("    use_vmac\n").config,
        one("    use_vmac vmac51\n    vmac_xmit_base\n").config,
        d.config,
    ] {
        let text = export(&cfg, "lk01");
        assert!(text.contains("    use_vmac"), "{text}");
        let again = import_into(
            &Config::default(),
            &text,
            Path::new("exported.conf"),
            "lk01",
            &NoIncludes,
        )
        .unwrap();
        assert_eq!(strip_ids(cfg), strip_ids(again.config), "{text}");
    }
    let text = export(
        &one("    use_vmac vmac51\n    vmac_xmit_base\n").config,
        "lk01",
    );
    assert!(
        text.contains("    use_vmac vmac51\n    vmac_xmit_base\n"),
        "{text}"
    );
    // Validation: a bad name and the fields without use_vmac are refused.
    let mut g = one("    use_vmac\n").config.vrrp_groups[0].clone();
    g.vmac_name = Some("a-name-far-too-long".into());
    assert_eq!(validate::vrrp_group(&g).unwrap_err().field, "vmac_name");
    g.vmac_name = Some("bad/name".into());
    assert_eq!(validate::vrrp_group(&g).unwrap_err().field, "vmac_name");
    g.vmac_name = Some("eth0".into());
    assert_eq!(
        validate::vrrp_group(&g).unwrap_err().field,
        "nodes[0].interface"
    );
    g.vmac_name = None;
    g.use_vmac = false;
    g.vmac_xmit_base = true;
    assert_eq!(
        validate::vrrp_group(&g).unwrap_err().field,
        "vmac_xmit_base"
    );
    let six = import_into(
        &Config::default(),
        &inst("    use_vmac\n").replace("192.168.10.100", "2001:db8::100"),
        p,
        "lk01",
        &NoIncludes,
    )
    .unwrap();
    // An IPv6 group takes it as keepalived does (the virtual MAC 00:00:5e:00:02:VRID), with
    // nothing reported; the export writes it back.
    let g6 = &six.config.vrrp_groups[0];
    assert!(g6.use_vmac, "{g6:?}");
    assert!(
        six.unsupported.is_empty() && six.warnings.is_empty(),
        "{:?} {:?}",
        six.unsupported,
        six.warnings
    );
    validate::vrrp_group(g6).unwrap();
    assert_eq!(g6.virtual_mac(), [0, 0, 0x5e, 0, 2, 51]);
    let text6 = export(&six.config, "lk01");
    assert!(text6.contains("    use_vmac\n"), "{text6}");
    // keepalived takes the export (when installed).
    if Command::new("keepalived").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        for (name, conf) in [("vmac.conf", &text), ("vmac6.conf", &text6)] {
            let f = dir.path().join(name);
            std::fs::write(&f, conf).unwrap();
            let out = Command::new("keepalived")
                .arg("-t")
                .arg("-f")
                .arg(&f)
                .output()
                .unwrap();
            let all = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(!all.contains("Unknown keyword"), "{name}: {all}");
            assert!(out.status.success(), "{name}: {all}\n{conf}");
        }
    }
}

/// Two groups on one director cannot share a virtual-MAC interface name.
#[test]
fn two_groups_cannot_share_a_vmac_name() {
    let text = "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    use_vmac vm\n    virtual_ipaddress {\n        192.0.2.1\n    }\n}\nvrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    use_vmac vm\n    virtual_ipaddress {\n        192.0.2.2\n    }\n}\n";
    let a = import_into(
        &Config::default(),
        text,
        Path::new("t.conf"),
        "lk01",
        &NoIncludes,
    )
    .unwrap();
    let e = validate::config(&a.config, None).unwrap_err();
    assert!(e.field.ends_with("vmac_name"), "{e:?}");
}

/// `virtual_ipaddress` options, `virtual_routes` and `virtual_rules`: what lbd carries out is
/// imported, the rest reported, a duplicate address skipped as keepalived skips it, a rule
/// without priority numbered as keepalived numbers it; the export reads back the same and
/// keepalived accepts it.
#[test]
fn vip_options_routes_and_rules_import_and_export() {
    let r = import(&Config::default(), "vip_routes.conf", "lb-a");
    validate::config(&r.config, None).unwrap();
    let g = &r.config.vrrp_groups[0];
    let vips: Vec<String> = g.virtual_addresses.iter().map(|v| v.keepalived()).collect();
    assert_eq!(
        vips,
        vec![
            "192.0.2.10/24 brd 192.0.2.255 dev eth0 scope link label eth0:vip",
            "192.0.2.11/24 dev eth1 label eth1:web no_track",
            "192.0.2.12/32",
        ]
    );
    let routes: Vec<String> = g.virtual_routes.iter().map(ToString::to_string).collect();
    assert_eq!(
        routes,
        vec![
            "10.1.0.0/16 via 192.0.2.1 dev eth0 src 192.0.2.10 table 100 metric 5",
            "blackhole 10.2.0.0/16 table 100 no_track",
            "10.3.0.0/16 dev eth1 scope link protocol 4",
        ]
    );
    let rules: Vec<String> = g.virtual_rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        rules,
        vec![
            "from 192.0.2.0/24 priority 100 table 100 no_track",
            "iif eth0 fwmark 0x10/0xff priority 16384 table 100",
            "to 10.9.0.0/16 priority 16383 unreachable",
        ]
    );
    let warnings: Vec<String> = r
        .warnings
        .iter()
        .map(|w| format!("{} {}", w.at.rsplit('/').next().unwrap(), w.message))
        .collect();
    for want in [
        "vip_routes.conf:11 192.0.2.10 is listed twice: keepalived ignores the second one",
        "vip_routes.conf:12 `home preferred_lft 0` is not carried out by lbd",
        "vip_routes.conf:17 `mtu 1400` is not carried out by lbd",
        "vip_routes.conf:21 the rule has no priority: keepalived gives it 16384",
        "vip_routes.conf:22 `sport 80` is not carried out by lbd",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(want)),
            "{want:?} not warned: {warnings:#?}"
        );
    }

    // `no_track` is carried out (keepalived's tracking, #25): no warning.
    assert!(
        !warnings.iter().any(|w| w.contains("no_track")),
        "{warnings:#?}"
    );
    assert!(g.virtual_addresses[1].no_track && !g.virtual_addresses[0].no_track);
    assert!(g.virtual_routes[1].no_track && g.virtual_rules[0].no_track);

    // Export and import again: the same addresses, routes and rules.
    let text = export(&r.config, "lb-a");
    assert!(
        text.contains("        192.0.2.11/24 dev eth1 label eth1:web no_track\n"),
        "{text}"
    );
    assert!(
        text.contains("    virtual_routes {\n        10.1.0.0/16 via"),
        "{text}"
    );
    assert!(
        text.contains("    virtual_rules {\n        from 192.0.2.0/24"),
        "{text}"
    );
    let again = import_into(
        &Config::default(),
        &text,
        Path::new("exported.conf"),
        "lb-a",
        &NoIncludes,
    )
    .unwrap();
    assert_eq!(strip_ids(again.config), strip_ids(r.config.clone()));

    // keepalived reads the export without a word against the new blocks.
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("export.conf");
    std::fs::write(&p, &text).unwrap();
    let out = Command::new("keepalived")
        .arg("-t")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    for bad in ["Unknown", "Invalid", "invalid", "ignoring"] {
        assert!(
            !said.lines().any(|l| l.contains(bad) && !l.contains("eth1")),
            "{bad}: {said}"
        );
    }
}
