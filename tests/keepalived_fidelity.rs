//! keepalived fidelity (issue #17): an import makes lbd match the file (re-imports apply edits,
//! a second director's disagreement is an error naming the line), the IPVS table keepalived
//! would program (groups, IPv6 fwmark, ops, sh/mh flags), checks lbd cannot run fail the import,
//! and `lbd check-keepalived` works offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use lbd::dataplane::desired::{desired_table, Health};
use lbd::keepalived::parser::NoIncludes;
use lbd::keepalived::{export::export, import_into_with, ImportOptions, Imported};
use lbd::model::diff::{diff, vs_label};
use lbd::model::{validate, Config, Family, Forwarding, SchedulerFlag};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/keepalived")
        .join(name)
}

fn import_text(
    existing: &Config,
    text: &str,
    file: &str,
    node: &str,
    opts: ImportOptions,
) -> Result<Imported, String> {
    import_into_with(existing, text, Path::new(file), node, &NoIncludes, opts)
        .map_err(|e| e.to_string())
}

/// What the store would hold: ids assigned as the service does (new ones counting up).
fn committed(before: &Config, mut after: Config) -> Config {
    let mut next = before.max_id() + 1;
    for v in &mut after.virtual_servers {
        let v = std::sync::Arc::make_mut(v);
        v.normalize();
        if v.id == 0 {
            v.id = next;
            next += 1;
        }
        for r in &mut v.real_servers {
            if r.id == 0 {
                r.id = next;
                next += 1;
            }
        }
    }
    for g in &mut after.vrrp_groups {
        if g.id == 0 {
            g.id = next;
            next += 1;
        }
    }
    validate::config(&after, None).unwrap();
    after
}

fn lk(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

#[test]
fn a_reimport_applies_every_edit_and_the_same_file_twice_changes_nothing() {
    let o = ImportOptions::default();
    let a = committed(
        &Config::default(),
        import_text(&Config::default(), &lk("lk01.conf"), "lk01.conf", "lk01", o)
            .unwrap()
            .config,
    );
    // The same file again: nothing changes.
    let again = import_text(&a, &lk("lk01.conf"), "lk01.conf", "lk01", o).unwrap();
    assert_eq!(diff(&a, &committed(&a, again.config)), vec![]);

    // The director's file is edited: every shared field follows it.
    let edited = lk("lk01.conf")
        .replace("advert_int 1", "advert_int 2")
        .replace("auth_pass 1234567", "auth_pass secret")
        .replace(
            "192.168.10.100\n    }",
            "192.168.10.100\n        192.168.10.101\n    }",
        )
        .replace("priority 100", "priority 110")
        .replace("delay_loop 15", "delay_loop 20")
        .replace("lb_algo rr", "lb_algo wrr")
        .replace(
            "real_server 192.168.10.104 80 {\n        weight 1",
            "real_server 192.168.10.104 80 {\n        weight 5",
        )
        .replace("connect_timeout 3", "connect_timeout 4");
    let b = committed(
        &a,
        import_text(&a, &edited, "lk01.conf", "lk01", o)
            .unwrap()
            .config,
    );
    let changes = diff(&a, &b);
    let fields: Vec<String> = changes
        .iter()
        .flat_map(|c| {
            c.fields
                .iter()
                .map(move |f| format!("{} {} {}->{}", c.key, f.field, f.from, f.to))
        })
        .collect();
    for want in [
        "VI_1 advert_interval_ms 1000->2000",
        // The password changed; diffs never show it.
        "VI_1 auth_pass \"(secret)\"->\"(secret)\"",
        "VI_1 virtual_addresses [\"192.168.10.100/32\"]->[\"192.168.10.100/32\",\"192.168.10.101/32\"]",
        "VI_1 nodes [",
        "tcp 192.168.10.100:80 delay_loop_ms 15000->20000",
        "tcp 192.168.10.100:80 scheduler \"rr\"->\"wrr\"",
        "tcp 192.168.10.100:80 -> 192.168.10.104:80 weight 1->5",
        "tcp 192.168.10.100:80 -> 192.168.10.103:80 health_check.connect_timeout_ms 3000->4000",
    ] {
        assert!(
            fields.iter().any(|f| f.starts_with(want)),
            "{want} missing from {fields:#?}"
        );
    }
    // Ids are kept: updates, no remove/add.
    assert!(changes.iter().all(|c| c.op == lbd::model::ChangeOp::Update));
    // And the edited file again: nothing.
    let again = import_text(&b, &edited, "lk01.conf", "lk01", o).unwrap();
    assert_eq!(diff(&b, &committed(&b, again.config)), vec![]);

    // VRRP version 3 (no auth in v3): applied too.
    let v3 = edited
        .replace("advert_int 2", "advert_int 2\n    version 3")
        .replace(
            "    authentication {\n        auth_type PASS\n        auth_pass secret\n    }\n",
            "",
        );
    let c = committed(
        &b,
        import_text(&b, &v3, "lk01.conf", "lk01", o).unwrap().config,
    );
    assert_eq!(
        (c.vrrp_groups[0].version, c.vrrp_groups[0].auth_pass.clone()),
        (3, None)
    );
}

#[test]
fn the_second_director_merges_and_a_disagreement_names_the_line_and_the_stored_value() {
    let o = ImportOptions::default();
    let a = committed(
        &Config::default(),
        import_text(&Config::default(), &lk("lk01.conf"), "lk01.conf", "lk01", o)
            .unwrap()
            .config,
    );
    let b = committed(
        &a,
        import_text(&a, &lk("lk02.conf"), "lk02.conf", "lk02", o)
            .unwrap()
            .config,
    );
    let changes = diff(&a, &b);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].fields[0].field, "nodes");
    // lk02 again: nothing.
    let again = import_text(&b, &lk("lk02.conf"), "lk02.conf", "lk02", o).unwrap();
    assert_eq!(diff(&b, &committed(&b, again.config)), vec![]);

    // lk02's file says advert_int 3 and another weight: refused, naming both values.
    let other = lk("lk02.conf")
        .replace("advert_int 1", "advert_int 3")
        .replace(
            "real_server 192.168.10.104 80 {\n        weight 1",
            "real_server 192.168.10.104 80 {\n        weight 7",
        );
    let e = import_text(&b, &other, "lk02.conf", "lk02", o).unwrap_err();
    let line = |needle: &str| {
        other
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    assert!(
        e.contains(&format!(
            "lk02.conf:{}: group VI_1 advert_interval_ms: this file has 3000, lbd has 1000 (stored)",
            line("advert_int")
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "lk02.conf:{}: tcp 192.168.10.100:80 -> 192.168.10.104:80 weight: this file has 7, lbd has 1 (stored)",
            line("weight 7")
        )),
        "{e}"
    );
    assert!(e.contains("the other director's file (lk01)"), "{e}");
    assert!(e.contains("--prefer-file"), "{e}");

    // --prefer-file takes this file's values.
    let p = ImportOptions {
        prefer_file: true,
        ..o
    };
    let c = committed(
        &b,
        import_text(&b, &other, "lk02.conf", "lk02", p)
            .unwrap()
            .config,
    );
    assert_eq!(c.vrrp_groups[0].advert_interval_ms, 3000);
    assert_eq!(c.vrrp_groups[0].nodes.len(), 2);
    assert_eq!(c.virtual_servers[0].real_servers[1].weight.get(), 7);
}

#[test]
fn entities_the_file_does_not_name_stay_unless_replace() {
    let o = ImportOptions::default();
    let a = committed(
        &Config::default(),
        import_text(&Config::default(), &lk("lk01.conf"), "lk01.conf", "lk01", o)
            .unwrap()
            .config,
    );
    let other = "virtual_server 192.168.10.200 443 {\n  protocol TCP\n  lb_kind DR\n  real_server 192.168.10.103 443 {\n    weight 1\n  }\n}\n";
    let b = committed(
        &a,
        import_text(&a, other, "other.conf", "lk01", o)
            .unwrap()
            .config,
    );
    assert_eq!((b.virtual_servers.len(), b.vrrp_groups.len()), (2, 1));
    let r = ImportOptions { replace: true, ..o };
    let c = committed(
        &b,
        import_text(&b, other, "other.conf", "lk01", r)
            .unwrap()
            .config,
    );
    assert_eq!((c.virtual_servers.len(), c.vrrp_groups.len()), (1, 0));
    assert_eq!(vs_label(&c.virtual_servers[0]), "tcp 192.168.10.200:443");
    let ops: Vec<_> = diff(&b, &c).iter().map(|c| (c.op, c.key.clone())).collect();
    assert_eq!(
        ops,
        vec![
            (
                lbd::model::ChangeOp::Remove,
                "tcp 192.168.10.100:80".to_string()
            ),
            (lbd::model::ChangeOp::Remove, "VI_1".to_string())
        ]
    );
}

/// The IPVS table lbd programs from fidelity.conf, in `ipvsadm -Ln` terms.
fn table_lines(cfg: &Config) -> Vec<String> {
    let t = desired_table(cfg, &Health::default());
    t.services
        .iter()
        .map(|(k, s)| {
            let dests: Vec<String> = s
                .dests
                .iter()
                .map(|(d, x)| format!("{}:{} {:?} {}", d.address, d.port, x.forwarding, x.weight))
                .collect();
            format!(
                "{k} {} flags={:#x} [{}]",
                s.spec.scheduler,
                s.spec.flags,
                dests.join(", ")
            )
        })
        .collect()
}

#[test]
fn groups_ipv6_fwmark_ops_and_scheduler_flags_make_keepalived_s_table() {
    let text = lk("fidelity.conf");
    let r = import_text(
        &Config::default(),
        &text,
        "fidelity.conf",
        "n",
        ImportOptions::default(),
    )
    .unwrap();
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    let cfg = committed(&Config::default(), r.config);
    let labels: Vec<String> = cfg.virtual_servers.iter().map(|v| vs_label(v)).collect();
    assert_eq!(
        labels,
        vec![
            "tcp 10.2.0.1:80",
            "tcp 10.2.0.2:80",
            "tcp 10.2.0.3:80",
            "tcp 10.2.0.10:80",
            "fwmark 20 ipv4",
            "fwmark 6 ipv6",
            "udp 10.2.0.53:53",
            "tcp 10.2.0.80:8080",
        ]
    );
    let fw6 = &cfg.virtual_servers[5];
    assert_eq!(fw6.family, Some(Family::Ipv6));
    assert_eq!(fw6.forwarding, Forwarding::Nat);
    assert_eq!(
        fw6.real_servers.iter().map(|r| r.port).collect::<Vec<_>>(),
        vec![Some(8080), Some(0)],
        "a NAT real server of a fwmark service without a port has port 0"
    );
    let dns = &cfg.virtual_servers[6];
    assert!(dns.one_packet);
    assert_eq!(
        dns.scheduler_flags,
        vec![SchedulerFlag::ShFallback, SchedulerFlag::ShPort]
    );
    assert_eq!(
        cfg.virtual_servers[7].scheduler_flags,
        vec![SchedulerFlag::MhPort]
    );
    assert_eq!(
        table_lines(&cfg),
        vec![
            "Tcp 10.2.0.1:80 wrr flags=0x0 [10.2.0.101:80 Dr 2]",
            "Tcp 10.2.0.2:80 wrr flags=0x0 [10.2.0.101:80 Dr 2]",
            "Tcp 10.2.0.3:80 wrr flags=0x0 [10.2.0.101:80 Dr 2]",
            "Tcp 10.2.0.10:80 wrr flags=0x0 [10.2.0.101:80 Dr 2]",
            "Tcp 10.2.0.80:8080 mh flags=0x10 [10.2.0.103:80 Nat 1]",
            "Udp 10.2.0.53:53 sh flags=0x1c [10.2.0.102:53 Dr 1]",
            "FWM 20 Ipv4 wrr flags=0x0 [10.2.0.101:0 Dr 2]",
            "FWM 6 Ipv6 rr flags=0x0 [2001:db8::10:8080 Nat 1, 2001:db8::11:0 Nat 1]",
        ]
    );

    // Export, keepalived reads it, and importing the export changes nothing.
    let exported = export(&cfg, "n");
    for want in [
        "    ops\n",
        "    sh-fallback\n    sh-port\n",
        "    mh-port\n",
        "virtual_server fwmark 6 {\n    ip_family inet6\n",
    ] {
        assert!(exported.contains(want), "{want:?} not in\n{exported}");
    }
    let back = import_text(
        &cfg,
        &exported,
        "exported.conf",
        "n",
        ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(diff(&cfg, &committed(&cfg, back.config)), vec![]);
    keepalived_accepts(&exported);
    keepalived_accepts(&text);
    // And the source again: nothing.
    let again = import_text(&cfg, &text, "fidelity.conf", "n", ImportOptions::default()).unwrap();
    assert_eq!(diff(&cfg, &committed(&cfg, again.config)), vec![]);
}

/// `keepalived -t` (a configuration check that starts nothing) reads `text` without an unknown
/// keyword or error; skipped when keepalived is not installed.
fn keepalived_accepts(text: &str) {
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("LBD_REQUIRE_PRIVILEGED").is_none(),
            "keepalived is not installed"
        );
        eprintln!("SKIP keepalived -t: keepalived is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.conf");
    std::fs::write(&p, text).unwrap();
    let out = Command::new("keepalived")
        .arg("-t")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    let msg =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !msg.contains("Unknown keyword") && !msg.to_lowercase().contains("error"),
        "{msg}\n{text}"
    );
}

#[test]
fn fwmark_family_follows_the_real_servers_and_mixed_families_are_an_error() {
    let o = ImportOptions::default();
    let mixed = "virtual_server fwmark 3 {\n  lb_kind DR\n  real_server 10.0.0.1 {\n  }\n  real_server 2001:db8::1 {\n  }\n}\n";
    let e = import_text(&Config::default(), mixed, "m.conf", "n", o).unwrap_err();
    assert!(
        e.starts_with("m.conf:1: real servers of both address families"),
        "{e}"
    );
    let ops_tcp = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  ops\n  real_server 10.0.0.2 80 {\n  }\n}\n";
    let r = import_text(&Config::default(), ops_tcp, "o.conf", "n", o).unwrap();
    assert!(!r.config.virtual_servers[0].one_packet);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.at == "o.conf:3" && w.message.starts_with("`ops` is dropped")));
    let bad_flag = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  lb_algo rr\n  sh-port\n}\n";
    let e = import_text(&Config::default(), bad_flag, "f.conf", "n", o).unwrap_err();
    assert_eq!(
        e,
        "f.conf:4: sh-port is a flag of the sh scheduler; this service uses rr"
    );
    let range = "virtual_server_group G {\n  10.0.0.9-3 80\n}\nvirtual_server group G {\n  protocol TCP\n}\n";
    let e = import_text(&Config::default(), range, "g.conf", "n", o).unwrap_err();
    assert!(
        e.starts_with("g.conf:2: `10.0.0.9-3`: the range end"),
        "{e}"
    );
    let missing = "virtual_server group NOPE {\n  protocol TCP\n}\n";
    let e = import_text(&Config::default(), missing, "g.conf", "n", o).unwrap_err();
    assert!(
        e.starts_with("g.conf:1: virtual_server_group NOPE is not defined"),
        "{e}"
    );
}

#[test]
fn checks_lbd_cannot_run_fail_the_import_unless_allowed_unchecked() {
    let o = ImportOptions::default();
    for check in ["SMTP_CHECK", "DNS_CHECK"] {
        let text = format!(
            "virtual_server 10.0.0.1 80 {{\n  protocol TCP\n  real_server 10.0.0.2 80 {{\n    {check} {{\n      connect_timeout 3\n    }}\n  }}\n}}\n"
        );
        let e = import_text(&Config::default(), &text, "c.conf", "n", o).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "c.conf:4: `{check}` cannot be imported: lbd does not run this check"
            )),
            "{e}"
        );
        let r = import_text(
            &Config::default(),
            &text,
            "c.conf",
            "n",
            ImportOptions {
                allow_unchecked: true,
                ..o
            },
        )
        .unwrap();
        assert!(r.config.virtual_servers[0].real_servers[0]
            .health_check
            .is_none());
        assert!(
            r.warnings
                .iter()
                .any(|w| w.at == "c.conf:4" && w.message.contains("--allow-unchecked")),
            "{:?}",
            r.warnings
        );
    }
    // Several urls, status code lists and ranges, a digest: imported as keepalived reads them,
    // exported back, and keepalived accepts the export.
    let urls = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  virtualhost www.example.org\n  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      url {\n        path /a\n        status_code 200 301-302\n      }\n      url {\n        path /b\n        digest 9E107D9D372BB6826BD81D3542A419D6\n      }\n    }\n  }\n}\n";
    let r = import_text(&Config::default(), urls, "u.conf", "n", o).unwrap();
    let cfg = committed(&Config::default(), r.config);
    let hc = cfg.virtual_servers[0].real_servers[0]
        .health_check
        .clone()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&hc.urls).unwrap(),
        serde_json::json!([{"path": "/a", "status_codes": ["200", "301-302"]},
            {"path": "/b", "digest": "9e107d9d372bb6826bd81d3542a419d6"}])
    );
    assert_eq!((hc.path, hc.expected_status), (None, None));
    // The service's virtualhost is the Host of its HTTP checks, as keepalived sends it.
    assert_eq!(hc.virtualhost.as_deref(), Some("www.example.org"));
    assert!(matches!(&lbd::dataplane::health::specs(&cfg)[0].probe,
        lbd::dataplane::health::Probe::Http { host, .. } if host == "www.example.org"));
    let exported = export(&cfg, "n");
    assert!(
        exported.contains("status_code 200 301-302")
            && exported.contains("digest 9e107d9d372bb6826bd81d3542a419d6")
            && exported.contains("virtualhost www.example.org"),
        "{exported}"
    );
    keepalived_accepts(&exported);
    let back = import_text(&cfg, &exported, "e.conf", "n", o).unwrap();
    assert_eq!(diff(&cfg, &committed(&cfg, back.config)), vec![]);
    // MISC_CHECK: command, timeout, dynamic weight, user; back out and in unchanged.
    let misc = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  delay_loop 10\n  real_server 10.0.0.2 80 {\n    MISC_CHECK {\n      misc_path \"/usr/local/bin/check --port 80\"\n      misc_timeout 3\n      misc_dynamic\n      user nobody\n    }\n  }\n}\n";
    let r = import_text(&Config::default(), misc, "m.conf", "n", o).unwrap();
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    let cfg = committed(&Config::default(), r.config);
    let hc = cfg.virtual_servers[0].real_servers[0]
        .health_check
        .clone()
        .unwrap();
    assert_eq!(
        serde_json::to_value(&hc).unwrap(),
        serde_json::json!({"type": "misc", "connect_timeout_ms": 5000, "retry": 1,
            "delay_before_retry_ms": 1000, "misc_path": "/usr/local/bin/check --port 80",
            "misc_timeout_ms": 3000, "misc_dynamic": true, "user": "nobody"})
    );
    let exported = export(&cfg, "n");
    assert!(
        exported.contains("MISC_CHECK {\n            misc_path \"/usr/local/bin/check --port 80\"\n            misc_timeout 3\n            misc_dynamic\n            user nobody\n"),
        "{exported}"
    );
    keepalived_accepts(&exported);
    let back = import_text(&cfg, &exported, "e.conf", "n", o).unwrap();
    assert_eq!(diff(&cfg, &committed(&cfg, back.config)), vec![]);

    let bad = urls.replace("301-302", "302-301");
    let e = import_text(&Config::default(), &bad, "s.conf", "n", o).unwrap_err();
    assert_eq!(e, "s.conf:8: `302-301`: the range is empty");
}

#[test]
fn strict_fails_on_any_unsupported_keyword_and_reasons_are_given() {
    let text = "virtual_server 10.0.0.1 80 {\n  protocol TCP\n  ha_suspend\n  smtp_alert\n  real_server 10.0.0.2 80 {\n  }\n}\n";
    let r = import_text(
        &Config::default(),
        text,
        "s.conf",
        "n",
        ImportOptions::default(),
    )
    .unwrap();
    let u: Vec<String> = r
        .unsupported
        .iter()
        .map(|w| format!("{} {}", w.at, w.message))
        .collect();
    assert!(
        u[0].starts_with("s.conf:3 `ha_suspend` in virtual_server is not supported by lbd (lbd checks real servers whatever the VRRP state"),
        "{u:?}"
    );
    assert!(u[1].starts_with("s.conf:4 `smtp_alert`"), "{u:?}");
    let e = import_text(
        &Config::default(),
        text,
        "s.conf",
        "n",
        ImportOptions {
            strict: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.starts_with("s.conf:3: `ha_suspend`") && e.contains("--strict") && e.contains("2 in all"),
        "{e}"
    );
}

fn lbd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_keepalived_works_offline() {
    let p = |f: &str| data(f).display().to_string();
    let (ok, out, err) = lbd(&[
        "check-keepalived",
        &p("lk01.conf"),
        &p("fidelity.conf"),
        "--node-name",
        "lk01",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("lk01.conf:33: warning: `nb_get_retry`")
            && out
                .contains("lk01.conf: ok: 1 virtual server(s), 2 real server(s), 1 VRRP group(s)")
            && out.contains("fidelity.conf: ok: 8 virtual server(s)"),
        "{out}"
    );
    // full.conf has unsupported keywords: fine, but not with --strict.
    let (ok, _, err) = lbd(&["check-keepalived", &p("full.conf")]);
    assert!(ok, "{err}");
    let (ok, _, err) = lbd(&["check-keepalived", "--strict", &p("full.conf")]);
    assert!(!ok);
    assert!(err.contains("full.conf:5: `notification_email`"), "{err}");
    // A value lbd's validation refuses is an error with the entity's line.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        "vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  advert_int 0.5\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n",
    )
    .unwrap();
    let (ok, _, err) = lbd(&["check-keepalived", &bad.display().to_string()]);
    assert!(!ok);
    assert!(
        err.contains(
            "bad.conf:1: vrrp_groups[0].advert_interval_ms: VRRPv2 advertises whole seconds"
        ),
        "{err}"
    );
}

/// `alpha`, `omega`, `hysteresis`, `quorum_up` and `quorum_down` are imported (nothing
/// unsupported), exported so that `keepalived -t` reads them, and the export imports back with
/// no change; a command with a user after it is not imported (lbd runs it as itself).
#[test]
fn alpha_omega_hysteresis_and_quorum_commands_import_export_round_trip() {
    let text = r#"virtual_server 10.0.0.1 80 {
  protocol TCP
  delay_loop 5
  quorum 3
  hysteresis 1
  quorum_up "/bin/echo 'web pool' up"
  quorum_down /bin/true
  alpha
  omega
  real_server 10.0.0.2 80 {
    weight 2
    TCP_CHECK {
      connect_timeout 3
    }
  }
  real_server 10.0.0.3 80 {
    weight 2
  }
}
"#;
    let o = ImportOptions {
        strict: true,
        ..Default::default()
    };
    let r = import_text(&Config::default(), text, "q.conf", "n", o).unwrap();
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    let cfg = committed(&Config::default(), r.config);
    let vs = &cfg.virtual_servers[0];
    assert_eq!(vs.quorum, Some(3));
    assert_eq!(vs.hysteresis, 1);
    assert_eq!(vs.quorum_up.as_deref(), Some("/bin/echo 'web pool' up"));
    assert_eq!(vs.quorum_down.as_deref(), Some("/bin/true"));
    assert!(vs.alpha && vs.omega);
    assert_eq!(
        lbd::model::real_server::split_command(vs.quorum_up.as_deref().unwrap()),
        vec!["/bin/echo", "web pool", "up"],
        "split as keepalived splits it: single quotes keep a space"
    );

    let exported = export(&cfg, "n");
    for want in [
        "    quorum 3\n    hysteresis 1\n",
        "    quorum_up \"/bin/echo 'web pool' up\"\n",
        "    quorum_down \"/bin/true\"\n",
        "    alpha\n    omega\n",
    ] {
        assert!(exported.contains(want), "{want:?} not in\n{exported}");
    }
    keepalived_accepts(&exported);
    keepalived_accepts(text);
    let back = import_text(&cfg, &exported, "exported.conf", "n", o).unwrap();
    assert!(back.unsupported.is_empty(), "{:?}", back.unsupported);
    assert_eq!(diff(&cfg, &committed(&cfg, back.config)), vec![]);
    let again = import_text(&cfg, text, "q.conf", "n", o).unwrap();
    assert_eq!(diff(&cfg, &committed(&cfg, again.config)), vec![]);

    // `quorum_up SCRIPT USER`: keepalived would run it as USER; lbd does not import it.
    let as_user = text.replace("quorum_down /bin/true", "quorum_down /bin/true nobody");
    let r = import_text(
        &Config::default(),
        &as_user,
        "q.conf",
        "n",
        ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(r.config.virtual_servers[0].quorum_down, None);
    assert_eq!(r.unsupported.len(), 1, "{:?}", r.unsupported);
    assert_eq!(r.unsupported[0].at, "q.conf:7");
    assert!(
        r.unsupported[0]
            .message
            .starts_with("`quorum_down` as user nobody: lbd runs quorum commands as its own user"),
        "{}",
        r.unsupported[0].message
    );
}
