//! The IPVS table keepalived 2.2.7 programs from a file equals the one lbd programs from the same
//! file (virtual_server_group with a range and a fwmark entry, an IPv6 fwmark service without
//! `ip_family`, `ops`, sh and mh flags, a NAT fwmark real server without a port): keepalived's
//! checker process runs in the guest, `ipvsadm -Ln` is read, keepalived stops (and removes its
//! services), then lbd imports the same file and `ipvsadm -Ln` is read again. `lbd ctl list`
//! prints lbd's table as ipvsadm does. Runs inside the guest (see tests/README.md).

#[path = "support/server.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::ChildServer;

fn in_guest(test: &str) -> bool {
    if std::env::var_os("LBD_IN_GUEST").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("LBD_REQUIRE_GUEST").is_none(),
        "{test} needs the guest kernel"
    );
    eprintln!("SKIP {test}: needs a kernel with IPVS (run tests/run-all)");
    false
}

fn ipvsadm(args: &[&str]) -> String {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .expect("ipvsadm");
    assert!(
        out.status.success(),
        "ipvsadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ipvsadm -Ln`-style text (header of `skip` lines) as one line per service with its
/// destinations (sorted), services sorted; white space normalized, connection counters left out.
fn norm(text: &str, skip: usize) -> Vec<String> {
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for l in text.lines().skip(skip) {
        let w: Vec<_> = l.split_whitespace().collect();
        if w.first() == Some(&"->") {
            if let Some(b) = blocks.last_mut() {
                b.1.push(w[..4.min(w.len())].join(" "));
            }
        } else if !w.is_empty() {
            blocks.push((w.join(" "), Vec::new()));
        }
    }
    let mut v: Vec<String> = blocks
        .into_iter()
        .map(|(s, mut d)| {
            d.sort();
            std::iter::once(s).chain(d).collect::<Vec<_>>().join(" ")
        })
        .collect();
    v.sort();
    v
}

fn services() -> usize {
    ipvsadm(&["-Ln"])
        .lines()
        .skip(3)
        .filter(|l| !l.trim_start().starts_with("->"))
        .count()
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn keepalived_and_lbd_program_the_same_table() {
    if !in_guest("keepalived_and_lbd_program_the_same_table") {
        return;
    }
    if Command::new("keepalived")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("LBD_REQUIRE_PRIVILEGED").is_none(),
            "keepalived is not installed"
        );
        eprintln!("SKIP: keepalived is not installed");
        return;
    }
    // The test file without its TCP_CHECK: no check may pull a real server while the tables
    // are read (there is nothing listening in the guest).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keepalived/fidelity.conf"
    ))
    .unwrap()
    .replace(
        "        TCP_CHECK {\n            connect_timeout 2\n        }\n",
        "",
    );
    assert!(!text.contains("CHECK"));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(&conf, &text).unwrap();
    let want = 8;

    ipvsadm(&["-C"]);
    let mut k = Command::new("keepalived")
        .args(["--dont-fork", "--log-console", "--check"])
        .arg("--use-file")
        .arg(&conf)
        .arg("--pid")
        .arg(dir.path().join("k.pid"))
        .arg("--checkers_pid")
        .arg(dir.path().join("c.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("keepalived");
    wait_for("keepalived's services", || services() == want);
    // keepalived adds the real servers right after the services.
    std::thread::sleep(Duration::from_millis(500));
    let theirs = norm(&ipvsadm(&["-Ln"]), 3);
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(k.id() as i32, libc::SIGTERM);
    }
    let _ = k.wait();
    wait_for("keepalived's services to go", || services() == 0);

    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let base = format!("http://{}", lbd.http_addr);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/import/keepalived?node_name=lk01"))
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rev = r.json::<Value>().await.unwrap()["revision"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s: Value = reqwest::get(format!("{base}/api/v1/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["dataplane"]["applied_revision"] == rev && s["dataplane"]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "not applied: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ours = norm(&ipvsadm(&["-Ln"]), 3);
    eprintln!("keepalived's table:\n{}", theirs.join("\n"));
    assert_eq!(
        ours, theirs,
        "lbd's table (left) differs from keepalived's (right)"
    );
    for line in [
        "FWM 6 IPv6 rr -> [2001:db8::10]:8080 Masq 1 -> [2001:db8::11]:0 Masq 1",
        "UDP 10.2.0.53:53 sh (sh-fallback,sh-port) ops -> 10.2.0.102:53 Route 1",
        "TCP 10.2.0.80:8080 mh (mh-port) -> 10.2.0.103:80 Masq 1",
        "TCP 10.2.0.3:80 wrr -> 10.2.0.101:80 Route 2",
        "FWM 20 wrr -> 10.2.0.101:0 Route 2",
    ] {
        assert!(ours.iter().any(|l| l == line), "{line:?} not in {ours:#?}");
    }

    // `lbd ctl list` prints what ipvsadm prints.
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--url", &base, "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(norm(&String::from_utf8_lossy(&out.stdout), 2), ours);
    ipvsadm(&["-C"]);
}
