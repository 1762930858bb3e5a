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
        !ok && err.contains("scheduler: unknown variant `fastest`"),
        "{err}"
    );

    let (ok, out, _) = ctl(&url, &["drain", "1", "2"]);
    assert!(ok);
    assert_eq!(out.trim(), "drained real server 2 (weight 0)");
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
