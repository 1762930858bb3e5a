//! `lbd ctl` against a running lbd: create, add, drain, delete, status, with the API's
//! validation messages; `list` says why when the kernel has no IPVS (the guest test reads it).

#[path = "support/server.rs"]
mod support;

use std::process::Command;

use support::ChildServer;

fn ctl(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--url", url])
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
fn create_add_drain_delete_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}", server.http_addr);

    let (ok, out, err) = ctl(&url, &["create", "192.168.10.100:80"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "created virtual server 1");
    let (ok, out, _) = ctl(&url, &["add-real", "1", "192.168.10.103", "--weight", "3"]);
    assert!(ok);
    assert_eq!(out.trim(), "added real server 2");
    // The API's validation message comes through, naming the field.
    let (ok, _, err) = ctl(&url, &["add-real", "1", "2001:db8::1"]);
    assert!(!ok);
    assert!(
        err.contains("422")
            && err.contains("address: 2001:db8::1 is not of the virtual server's address family"),
        "{err}"
    );
    let (ok, _, err) = ctl(
        &url,
        &["create", "192.168.10.100:80", "--scheduler", "fastest"],
    );
    assert!(
        !ok && err.contains("unknown scheduler \"fastest\": one of rr, wrr"),
        "{err}"
    );

    let (ok, out, _) = ctl(&url, &["drain", "1", "2"]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        "drained real server 2 (192.168.10.103:80) of tcp 192.168.10.100:80 (weight 0)"
    );
    let (ok, out, _) = ctl(&url, &["--json", "status"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["revision"].as_u64(), v["real_servers"].as_u64()),
        (Some(3), Some(1))
    );
    let (ok, out, _) = ctl(&url, &["status"]);
    assert!(
        ok && out.contains("node lk01  revision 3") && out.contains("data plane: "),
        "{out}"
    );

    if std::env::var_os("LBD_IN_GUEST").is_none() {
        let (ok, _, err) = ctl(&url, &["list"]);
        assert!(
            !ok && err.contains("503") && err.contains("IPVS is unavailable"),
            "{err}"
        );
    }
    let (ok, out, _) = ctl(&url, &["delete", "1", "2"]);
    assert!(ok && out.contains("revision 4"), "{out}");
    let (ok, _, err) = ctl(&url, &["delete", "1", "2"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, out, _) = ctl(&url, &["delete", "1"]);
    assert!(ok && out.contains("revision 5"), "{out}");
}

fn api(method: &str, url: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut rb = c.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            rb = rb.body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        assert!(r.status().is_success(), "{method} {url}: {}", r.status());
        r.json().await.unwrap()
    })
}

/// The ipvsadm way: services by VIP:PORT (-u, -f), real servers by ADDR[:PORT], ids shown by
/// `list --config`, edit-real/drain/undrain as PATCHes that keep the health check, save and
/// restore in ipvsadm's rule syntax, and `--url host:port`.
#[test]
fn ipvsadm_style_addressing_and_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::spawn(&dir.path().join("lbd.db"));
    // No scheme: http is assumed.
    let url = server.http_addr.to_string();
    let base = format!("http://{url}");

    let (ok, out, err) = ctl(
        &url,
        &[
            "create",
            "192.168.10.100:80",
            "-s",
            "WLC",
            "--forwarding",
            "masq",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "created virtual server 1");
    let (ok, _, err) = ctl(
        &url,
        &["create", "-u", "192.168.10.100:53", "-s", "rr", "-g"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&url, &["create", "-f", "7", "-s", "sh"]);
    assert!(ok, "{err}");
    let vs = api("GET", &format!("{base}/api/v1/virtual-servers/1"), None);
    assert_eq!(
        (vs["scheduler"].as_str(), vs["forwarding"].as_str()),
        (Some("wlc"), Some("nat"))
    );

    // Real servers by ADDR:PORT, to services by VIP:PORT.
    let (ok, out, err) = ctl(
        &url,
        &[
            "add-real",
            "192.168.10.100:80",
            "192.168.10.103:8080",
            "-w",
            "2",
        ],
    );
    assert!(ok && out.trim() == "added real server 4", "{out} {err}");
    let (ok, _, err) = ctl(
        &url,
        &["add-real", "-u", "192.168.10.100:53", "192.168.10.104"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&url, &["add-real", "-f", "7", "192.168.10.105:443", "-g"]);
    assert!(ok, "{err}");
    // A TCP service at :53 does not exist: said so, with what to run.
    let (ok, _, err) = ctl(&url, &["add-real", "192.168.10.100:53", "192.168.10.104"]);
    assert!(
        !ok && err.contains("no configured tcp 192.168.10.100:53"),
        "{err}"
    );
    let (ok, _, err) = ctl(&url, &["create", "10.0.0.1:80", "--forwarding", "bridge"]);
    assert!(
        !ok && err.contains("one of dr (route, gatewaying, g)"),
        "{err}"
    );

    // A health check (set over the API), so there is health state to keep.
    let rs = format!("{base}/api/v1/virtual-servers/1/real-servers/4");
    api(
        "PATCH",
        &rs,
        Some(serde_json::json!({"health_check": {"type": "tcp", "connect_timeout_ms": 100}})),
    );

    let (ok, out, err) = ctl(&url, &["list", "--config"]);
    assert!(ok, "{err}");
    assert!(out.contains("1     tcp 192.168.10.100:80"), "{out}");
    assert!(out.contains("  4     192.168.10.103:8080"), "{out}");
    assert!(out.contains("fwmark 7 ipv4"), "{out}");
    assert!(out.contains("no check"), "{out}");

    // ipvsadm -e: weight and forwarding; the check stays.
    let (ok, out, err) = ctl(
        &url,
        &[
            "edit-real",
            "192.168.10.100:80",
            "192.168.10.103:8080",
            "-w",
            "5",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "real server 4 (192.168.10.103:8080) of tcp 192.168.10.100:80: weight 5, forwarding nat"
    );
    let r = api("GET", &rs, None);
    assert_eq!(r["weight"], 5);
    assert_eq!(r["health_check"]["connect_timeout_ms"], 100);
    let (ok, _, err) = ctl(&url, &["edit-real", "1", "4"]);
    assert!(!ok && err.contains("nothing to change"), "{err}");
    let (ok, _, err) = ctl(&url, &["edit-real", "1", "192.168.10.99", "-w", "1"]);
    assert!(
        !ok && err.contains("192.168.10.99 is not a real server of virtual server 1"),
        "{err}"
    );

    // drain / undrain, by address (the example) and by id.
    let (ok, out, err) = ctl(
        &url,
        &["drain", "-u", "192.168.10.100:53", "192.168.10.104"],
    );
    assert!(ok && out.contains("(weight 0)"), "{out} {err}");
    let (ok, out, err) = ctl(&url, &["drain", "192.168.10.100:80", "192.168.10.103:8080"]);
    assert!(ok && out.contains("(weight 0)"), "{out} {err}");
    assert_eq!(api("GET", &rs, None)["weight"], 0);
    let (ok, _, err) = ctl(&url, &["undrain", "1", "4"]);
    assert!(ok, "{err}");
    assert_eq!(api("GET", &rs, None)["weight"], 1, "the default weight");
    let (ok, _, err) = ctl(
        &url,
        &[
            "undrain",
            "192.168.10.100:80",
            "192.168.10.103:8080",
            "-w",
            "5",
        ],
    );
    assert!(ok, "{err}");
    let r = api("GET", &rs, None);
    assert_eq!(
        (r["weight"].clone(), r["health_check"]["type"].clone()),
        (5.into(), "tcp".into())
    );

    // ipvsadm -S.
    let (ok, saved, err) = ctl(&url, &["save"]);
    assert!(ok, "{err}");
    assert_eq!(
        saved,
        "-A -t 192.168.10.100:80 -s wlc\n\
         -a -t 192.168.10.100:80 -r 192.168.10.103:8080 -m -w 5\n\
         -A -u 192.168.10.100:53 -s rr\n\
         -a -u 192.168.10.100:53 -r 192.168.10.104:53 -g -w 0\n\
         -A -f 7 -s sh\n\
         -a -f 7 -r 192.168.10.105:443 -g -w 1\n"
    );
    // ipvsadm -R of its own output: nothing to do.
    let file = dir.path().join("rules");
    std::fs::write(&file, &saved).unwrap();
    let (ok, out, err) = ctl(&url, &["restore", file.to_str().unwrap()]);
    assert!(ok && out.contains("applied: 0 change(s)"), "{out} {err}");
    // Edits: a weight, a new real server, a removed service; the health check stays.
    std::fs::write(
        &file,
        "-e -t 192.168.10.100:80 -r 192.168.10.103:8080 -w 9\n\
         -a -t 192.168.10.100:80 -r 192.168.10.106:8080 -m -w 1\n\
         -D -f 7\n",
    )
    .unwrap();
    let (ok, out, err) = ctl(&url, &["restore", "--dry-run", file.to_str().unwrap()]);
    assert!(ok && out.contains("dry run: 3 change(s)"), "{out} {err}");
    assert_eq!(
        api("GET", &rs, None)["weight"],
        5,
        "a dry run changes nothing"
    );
    let (ok, out, err) = ctl(&url, &["restore", file.to_str().unwrap()]);
    assert!(ok && out.contains("applied: 3 change(s)"), "{out} {err}");
    let r = api("GET", &rs, None);
    assert_eq!(
        (r["weight"].clone(), r["health_check"]["type"].clone()),
        (9.into(), "tcp".into())
    );
    std::fs::write(&file, "-a -t 192.168.10.100:80 -r 192.168.10.107 -w lots\n").unwrap();
    let (ok, _, err) = ctl(&url, &["restore", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("line 1:") && err.contains("-w takes a number"),
        "{err}"
    );

    // status: readable, no nulls, addresses next to ids, times as "ago".
    let (ok, out, err) = ctl(&url, &["status"]);
    assert!(ok, "{err}");
    assert!(!out.contains("null"), "{out}");
    assert!(
        out.contains("192.168.10.103:8080 (real server 4) of tcp 192.168.10.100:80 (id 1)"),
        "{out}"
    );
    assert!(out.contains(" s ago"), "{out}");

    // Timeouts are shown from the kernel; without IPVS lbd says so.
    if std::env::var_os("LBD_IN_GUEST").is_none() {
        let (ok, _, err) = ctl(&url, &["timeouts"]);
        assert!(!ok && err.contains("503"), "{err}");
        // ipvsadm -Z needs the kernel too.
        let (ok, _, err) = ctl(&url, &["zero", "192.168.10.100:80"]);
        assert!(
            !ok && err.contains("503") && err.contains("IPVS is unavailable"),
            "{err}"
        );
    }
    // Setting them is configuration: stored whether or not the kernel has IPVS.
    let (ok, out, err) = ctl(&url, &["timeouts", "--set", "7200", "0", "60"]);
    assert!(ok && out.contains("configured: 7200 0 60"), "{out} {err}");
    let cfg = api("GET", &format!("{base}/api/v1/config"), None);
    assert_eq!(
        cfg["ipvs_timeouts"],
        serde_json::json!({"tcp_secs": 7200, "tcp_fin_secs": 0, "udp_secs": 60})
    );
    // Delete by address.
    let (ok, _, err) = ctl(
        &url,
        &["delete", "-u", "192.168.10.100:53", "192.168.10.104"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = ctl(&url, &["delete", "-u", "192.168.10.100:53"]);
    assert!(ok, "{err}");
    let (ok, out, _) = ctl(&url, &["list", "--config"]);
    assert!(ok && !out.contains(":53"), "{out}");
}
