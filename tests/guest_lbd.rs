//! lbd programming a real kernel's IPVS table: runs inside the guest (see tests/README.md).
//! Every scheduler, DR/NAT/TUN, TCP/UDP/SCTP, IPv4/IPv6, fwmark and persistence, read back with
//! `ipvsadm -Ln`; SIGKILL and restart send nothing; manual changes are repaired; services made by
//! hand are left alone; one weight edit in a table of 1,000 services is one kernel operation;
//! timeouts set through lbd as `ipvsadm -L --timeout` shows them; `lbd ctl zero` on real traffic.

#[path = "support/server.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
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

/// `ipvsadm -Ln` without its header, whitespace-normalized and without the connection counters.
fn table() -> Vec<String> {
    ipvsadm(&["-Ln"])
        .lines()
        .skip(3)
        .map(|l| {
            let w: Vec<_> = l.split_whitespace().collect();
            if w.first() == Some(&"->") {
                w[..4.min(w.len())].join(" ")
            } else {
                w.join(" ")
            }
        })
        .collect()
}

async fn status(base: &str) -> Value {
    reqwest::get(format!("{base}/api/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_applied(base: &str, revision: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(base).await;
        if s["dataplane"]["applied_revision"] == revision && s["dataplane"]["state"] == "running" {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "revision {revision} not applied: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put_config(base: &str, cfg: &Value) -> u64 {
    let r = reqwest::Client::new()
        .put(format!("{base}/api/v1/config"))
        .body(cfg.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["revision"]
        .as_u64()
        .unwrap()
}

/// The IPVS schedulers this kernel has (twos arrived in Linux 6.2; Debian 12's kernel is 6.1).
fn kernel_schedulers() -> Vec<&'static str> {
    [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
        "twos",
    ]
    .into_iter()
    .filter(|s| {
        // `modprobe -n`: would the module load (or is it built in)?
        Command::new("modprobe")
            .args(["-n", "-q", &format!("ip_vs_{s}")])
            .status()
            .is_ok_and(|st| st.success())
    })
    .collect()
}

fn every_kind(schedulers: &[&str]) -> Value {
    let mut vss: Vec<Value> = schedulers
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"address": "192.168.10.100", "port": 8000 + i, "scheduler": s,
            "real_servers": [{"address": "192.168.10.103", "weight": 1}, {"address": "192.168.10.104", "weight": 2}]}))
        .collect();
    vss.push(
        json!({"address": "192.168.10.100", "port": 80, "protocol": "udp", "forwarding": "nat",
        "real_servers": [{"address": "10.0.0.3", "port": 8080, "weight": 3}]}),
    );
    vss.push(
        json!({"address": "192.168.10.100", "port": 81, "protocol": "sctp", "forwarding": "tun",
        "real_servers": [{"address": "10.0.0.4", "weight": 4}]}),
    );
    vss.push(json!({"address": "2001:db8::100", "port": 443, "scheduler": "wlc", "persistence_timeout_secs": 600,
        "persistence_granularity": 64, "real_servers": [{"address": "2001:db8::10", "weight": 5}]}));
    vss.push(json!({"address": "192.168.10.100", "port": 0, "persistence_timeout_secs": 300, "persistence_granularity": 24,
        "real_servers": [{"address": "192.168.10.105", "port": 0}]}));
    vss.push(json!({"fwmark": 7, "family": "ipv4", "scheduler": "sh",
        "real_servers": [{"address": "192.168.10.106", "forwarding": "nat", "port": 80}]}));
    json!({"virtual_servers": vss})
}

#[tokio::test]
async fn the_table_follows_the_config_and_survives_restarts() {
    if !in_guest("the_table_follows_the_config_and_survives_restarts") {
        return;
    }
    // A service made by hand before lbd starts: lbd must leave it alone.
    ipvsadm(&["-A", "-t", "10.9.9.9:22", "-s", "rr"]);
    ipvsadm(&["-a", "-t", "10.9.9.9:22", "-r", "10.9.9.10:22", "-m"]);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let mut lbd = ChildServer::spawn_with(&db, &["--resync-interval-ms", "300"]);
    let base = format!("http://{}", lbd.http_addr);
    let schedulers = kernel_schedulers();
    assert!(schedulers.len() >= 13, "{schedulers:?}");
    let rev = put_config(&base, &every_kind(&schedulers)).await;
    let s = wait_applied(&base, rev).await;
    let n = schedulers.len() + 5;
    assert_eq!(s["dataplane"]["services"], n);

    let t = table();
    for (i, sched) in schedulers.iter().enumerate() {
        let want = format!("TCP 192.168.10.100:{} {sched}", 8000 + i);
        assert!(
            t.contains(&want),
            "ipvsadm -Ln lacks {want:?}:\n{}",
            t.join("\n")
        );
    }
    for want in [
        "-> 192.168.10.103:8000 Route 1",
        "-> 192.168.10.104:8000 Route 2",
        "UDP 192.168.10.100:80 rr",
        "-> 10.0.0.3:8080 Masq 3",
        "SCTP 192.168.10.100:81 rr",
        "-> 10.0.0.4:81 Tunnel 4",
        "TCP [2001:db8::100]:443 wlc persistent 600 mask 64",
        "-> [2001:db8::10]:443 Route 5",
        "TCP 192.168.10.100:0 rr persistent 300 mask 255.255.255.0",
        "FWM 7 sh",
        "-> 192.168.10.106:80 Masq 1",
        "TCP 10.9.9.9:22 rr",
        "-> 10.9.9.10:22 Masq 1",
    ] {
        assert!(
            t.iter().any(|l| l == want),
            "ipvsadm -Ln lacks {want:?}:\n{}",
            t.join("\n")
        );
    }
    // The API reads the same kernel table.
    let api: Value = reqwest::get(format!("{base}/api/v1/ipvs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        api["services"].as_array().unwrap().len(),
        n + 1,
        "lbd's + 1 foreign"
    );

    // `lbd ctl list` prints the same table as `ipvsadm -Ln`, and --stats the same as --stats.
    for (ours_args, theirs_args, skip) in [
        (vec!["list"], vec!["-Ln"], 3),
        (vec!["list", "--stats"], vec!["-Ln", "--stats"], 3),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args(["ctl", "--url", &base])
            .args(&ours_args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let norm = |text: &str, skip: usize| -> Vec<String> {
            let mut v: Vec<String> = text
                .lines()
                .skip(skip)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            v.sort();
            v
        };
        let ours = norm(&String::from_utf8_lossy(&out.stdout), 2);
        let theirs = norm(&ipvsadm(&theirs_args), skip);
        assert_eq!(
            ours, theirs,
            "lbd ctl {ours_args:?} differs from ipvsadm {theirs_args:?}"
        );
    }

    // gRPC reads the same kernel table.
    let mut g = lbd::grpc::pb::lbd_client::LbdClient::connect(format!("http://{}", lbd.grpc_addr))
        .await
        .unwrap();
    let ipvs = g
        .get_ipvs(lbd::grpc::pb::GetIpvsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ipvs.services.len(), n + 1);
    let web = ipvs.services.iter().find(|s| s.port == Some(8000)).unwrap();
    assert_eq!(
        (web.scheduler.as_str(), web.destinations.len()),
        (schedulers[0], 2)
    );
    assert!(g
        .list_connections(lbd::grpc::pb::ListConnectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .connections
        .is_empty());

    // The connection table is readable (empty: no client traffic in this test).
    let conns: Value = reqwest::get(format!("{base}/api/v1/ipvs/connections"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conns, serde_json::json!([]));

    // SIGKILL: the table stays exactly as it was.
    let before = table();
    lbd.kill9();
    assert_eq!(table(), before, "the table is untouched while lbd is down");
    // Restart: nothing to do, nothing sent.
    let mut lbd = ChildServer::spawn_with(&db, &["--resync-interval-ms", "300"]);
    let base = format!("http://{}", lbd.http_addr);
    let s = wait_applied(&base, rev).await;
    assert_eq!(
        s["dataplane"]["ops_applied"], 0,
        "a restart with nothing changed sends no operation"
    );
    assert_eq!(table(), before);

    // Someone deletes a real server and edits a weight by hand: lbd repairs both.
    ipvsadm(&[
        "-d",
        "-t",
        "192.168.10.100:8000",
        "-r",
        "192.168.10.104:8000",
    ]);
    ipvsadm(&[
        "-e",
        "-t",
        "192.168.10.100:8001",
        "-r",
        "192.168.10.103:8001",
        "-g",
        "-w",
        "9",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while table() != before {
        assert!(
            Instant::now() < deadline,
            "drift not repaired:\n{}",
            table().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = status(&base).await;
    assert_eq!(s["dataplane"]["drift_repairs"], 2, "{s}");

    // SIGTERM: a clean stop also leaves the table whole.
    assert!(lbd.terminate().success());
    assert_eq!(table(), before);
    ipvsadm(&["-C"]);
}

#[tokio::test]
async fn one_weight_edit_in_a_thousand_services_is_one_operation() {
    if !in_guest("one_weight_edit_in_a_thousand_services_is_one_operation") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn_with(
        &dir.path().join("lbd.db"),
        &["--resync-interval-ms", "3600000"],
    );
    let base = format!("http://{}", lbd.http_addr);
    let vss: Vec<Value> = (0..1000u32)
        .map(|i| {
            json!({"address": format!("10.{}.{}.1", 100 + i / 250, i % 250), "port": 80,
            "real_servers": [{"address": "10.200.0.1"}, {"address": "10.200.0.2"}]})
        })
        .collect();
    let mut cfg = json!({"virtual_servers": vss});
    let rev = put_config(&base, &cfg).await;
    let s = wait_applied(&base, rev).await;
    let ops_before = s["dataplane"]["ops_applied"].as_u64().unwrap();
    assert_eq!(ops_before, 3000, "1000 services + 2000 destinations");

    cfg["virtual_servers"][500]["real_servers"][1]["weight"] = json!(7);
    let rev = put_config(&base, &cfg).await;
    let s = wait_applied(&base, rev).await;
    assert_eq!(
        s["dataplane"]["ops_applied"].as_u64().unwrap() - ops_before,
        1,
        "exactly one netlink change"
    );
    let line = ipvsadm(&["-Ln", "-t", "10.102.0.1:80"]);
    assert!(
        line.contains("10.200.0.2:80") && line.split_whitespace().any(|w| w == "7"),
        "{line}"
    );
    drop(lbd);
    ipvsadm(&["-C"]);
}

/// Real client traffic through an IPVS service lbd programmed: the counters and the connection
/// table lbd reports are not zero, and agree with `ipvsadm`. The client, the director and the
/// real server are this one guest: IPVS schedules locally generated connections (its LOCAL_OUT
/// hook), and a real server whose address is local is served by this host's own stack
/// (IP_VS_CONN_F_LOCALNODE). Also: the kernel's timeouts, set with `ipvsadm --set`, read back.
#[tokio::test]
async fn traffic_through_ipvs_shows_in_counters_and_connections() {
    use std::io::{Read, Write};
    if !in_guest("traffic_through_ipvs_shows_in_counters_and_connections") {
        return;
    }
    for a in ["10.99.0.1/32", "10.99.0.2/32"] {
        let out = Command::new("ip")
            .args(["addr", "replace", a, "dev", "lo"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ipvsadm(&["--set", "1000", "100", "200"]);
    let listener = std::net::TcpListener::bind("0.0.0.0:80").unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn_with(&dir.path().join("lbd.db"), &[]);
    let base = format!("http://{}", lbd.http_addr);
    let cfg = json!({"virtual_servers": [{"address": "10.99.0.1", "port": 80, "scheduler": "rr",
        "forwarding": "dr", "real_servers": [{"address": "10.99.0.2", "weight": 1}]}]});
    let rev = put_config(&base, &cfg).await;
    wait_applied(&base, rev).await;

    // Five short connections and one left open.
    let conns = tokio::task::spawn_blocking(|| {
        let talk = |s: &mut std::net::TcpStream| {
            s.write_all(b"hello through ipvs").unwrap();
            let mut buf = [0u8; 18];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello through ipvs");
        };
        for _ in 0..5 {
            let mut s = std::net::TcpStream::connect("10.99.0.1:80").unwrap();
            talk(&mut s);
        }
        let mut open = std::net::TcpStream::connect("10.99.0.1:80").unwrap();
        talk(&mut open);
        open
    })
    .await
    .unwrap();

    // The kernel sums its per-CPU counters into what netlink reports every 2 s (the rate
    // estimator's timer), so the totals show up within a few seconds, for ipvsadm as for lbd.
    let deadline = Instant::now() + Duration::from_secs(15);
    let v: Value = loop {
        let v: Value = reqwest::get(format!("{base}/api/v1/ipvs"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let conns = v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["address"] == "10.99.0.1")
            .map(|s| s["stats"]["conns"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        if conns >= 6 || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        v["timeouts"],
        json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200}),
        "{v}"
    );
    let svc = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"] == "10.99.0.1")
        .cloned()
        .unwrap();
    assert_eq!(svc["stats"]["conns"], 6, "{svc}");
    assert!(svc["stats"]["inpkts"].as_u64().unwrap() >= 18, "{svc}");
    assert!(svc["stats"]["inbytes"].as_u64().unwrap() > 6 * 18, "{svc}");
    let d = &svc["destinations"][0];
    let (act, inact) = (
        d["active_conns"].as_u64().unwrap(),
        d["inactive_conns"].as_u64().unwrap(),
    );
    assert!(act >= 1 && act + inact == 6, "{d}");
    // ipvsadm agrees: its --stats line for the service counts the same 6 connections.
    let stats = ipvsadm(&["-Ln", "--stats", "-t", "10.99.0.1:80"]);
    let line = stats
        .lines()
        .find(|l| l.contains("10.99.0.1:80"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(line[2], "6", "{stats}");

    let c: Value = reqwest::get(format!("{base}/api/v1/ipvs/connections"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours: Vec<&Value> = c
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.to_string().contains("10.99.0.1"))
        .collect();
    assert_eq!(ours.len(), 6, "{c}");
    assert!(ours.iter().any(|e| e["state"] == "ESTABLISHED"), "{c}");
    let theirs = ipvsadm(&["-Lnc"]);
    assert_eq!(
        theirs
            .lines()
            .filter(|l| l.contains("10.99.0.1:80"))
            .count(),
        6,
        "{theirs}"
    );
    drop(conns);
    drop(lbd);
    ipvsadm(&["--set", "900", "120", "300"]);
    ipvsadm(&["-C"]);
}

/// `lbd ctl edit-real`, `drain` and `undrain` change the kernel's table as ipvsadm's own `-e`
/// does: the same edits on a hand-made twin service read back the same in `ipvsadm -Ln`.
#[tokio::test]
async fn ctl_edit_real_and_drain_match_ipvsadm_e() {
    if !in_guest("ctl_edit_real_and_drain_match_ipvsadm_e") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let base = format!("http://{}", lbd.http_addr);
    let rev = put_config(
        &base,
        &json!({"virtual_servers": [{"address": "192.168.20.100", "port": 80,
            "real_servers": [{"address": "192.168.20.103", "weight": 1},
                             {"address": "192.168.20.104", "weight": 1}]}]}),
    )
    .await;
    wait_applied(&base, rev).await;
    // The twin, made by hand (lbd leaves foreign services alone).
    ipvsadm(&["-A", "-t", "192.168.20.200:80", "-s", "rr"]);
    for rs in ["192.168.20.103:80", "192.168.20.104:80"] {
        ipvsadm(&["-a", "-t", "192.168.20.200:80", "-r", rs, "-g", "-w", "1"]);
    }
    // The destination line of RS in a service, without its address.
    let dest = |svc: &str, rs: &str| -> String {
        ipvsadm(&["-Ln", "-t", svc])
            .lines()
            .find(|l| l.contains(rs))
            .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("{rs} not in {svc}"))
    };
    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args(["ctl", "--url", &lbd.http_addr.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lbd ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let steps: [(&[&str], &[&str]); 4] = [
        (
            &[
                "edit-real",
                "192.168.20.100:80",
                "192.168.20.104",
                "-w",
                "3",
                "-m",
            ],
            &[
                "-e",
                "-t",
                "192.168.20.200:80",
                "-r",
                "192.168.20.104:80",
                "-m",
                "-w",
                "3",
            ],
        ),
        (
            &["drain", "192.168.20.100:80", "192.168.20.103"],
            &[
                "-e",
                "-t",
                "192.168.20.200:80",
                "-r",
                "192.168.20.103:80",
                "-g",
                "-w",
                "0",
            ],
        ),
        (
            &["undrain", "192.168.20.100:80", "192.168.20.103", "-w", "5"],
            &[
                "-e",
                "-t",
                "192.168.20.200:80",
                "-r",
                "192.168.20.103:80",
                "-g",
                "-w",
                "5",
            ],
        ),
        (
            &[
                "edit-real",
                "192.168.20.100:80",
                "192.168.20.104:80",
                "--forwarding",
                "GATEWAYING",
            ],
            &[
                "-e",
                "-t",
                "192.168.20.200:80",
                "-r",
                "192.168.20.104:80",
                "-g",
                "-w",
                "3",
            ],
        ),
    ];
    for (ours, theirs) in steps {
        let rev = status(&base).await["revision"].as_u64().unwrap();
        ctl(ours);
        wait_applied(&base, rev + 1).await;
        ipvsadm(theirs);
        for rs in ["192.168.20.103:80", "192.168.20.104:80"] {
            assert_eq!(
                dest("192.168.20.100:80", rs),
                dest("192.168.20.200:80", rs),
                "after lbd ctl {ours:?} / ipvsadm {theirs:?}: {rs}"
            );
        }
    }
    assert_eq!(
        dest("192.168.20.100:80", "192.168.20.104:80"),
        "Route 3 0 0"
    );
    drop(lbd);
    ipvsadm(&["-C"]);
}

/// `ipvsadm -L --timeout` in this kernel, as (tcp, tcpfin, udp).
fn kernel_timeouts() -> (u32, u32, u32) {
    let out = ipvsadm(&["-L", "--timeout"]);
    let v: Vec<u32> = out
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(v.len(), 3, "{out}");
    (v[0], v[1], v[2])
}

fn wait_kernel_timeouts(want: (u32, u32, u32)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = kernel_timeouts();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ipvsadm -L --timeout: {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lbd ctl ARGS` against `lbd`; panics with its stderr on failure, returns stdout.
fn ctl_ok(lbd: &ChildServer, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["ctl", "--url", &lbd.http_addr.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lbd ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `lbd ctl timeouts --set` (ipvsadm --set as configuration): `ipvsadm -L --timeout` shows
/// them; a change behind lbd's back is repaired at the next resync; a 0 is left as the kernel
/// has it; `--set 0 0 0` hands them back to whoever sets them. Runs after the tests whose names
/// sort before it (one guest CPU: one test at a time) and leaves the kernel's defaults.
#[tokio::test]
async fn timeouts_set_through_lbd_read_by_ipvsadm_and_kept() {
    if !in_guest("timeouts_set_through_lbd_read_by_ipvsadm_and_kept") {
        return;
    }
    ipvsadm(&["--set", "900", "120", "300"]);
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn_with(&dir.path().join("lbd.db"), &["--resync-interval-ms", "300"]);
    let base = format!("http://{}", lbd.http_addr);
    let out = ctl_ok(&lbd, &["timeouts", "--set", "1000", "100", "200"]);
    assert!(out.contains("configured: 1000 100 200"), "{out}");
    wait_kernel_timeouts((1000, 100, 200));
    assert_eq!(
        ctl_ok(&lbd, &["timeouts"]),
        "Timeout (tcp tcpfin udp): 1000 100 200\n"
    );

    // Drift: someone runs ipvsadm --set; lbd puts its values back and counts a repair.
    let before = status(&base).await["dataplane"]["drift_repairs"]
        .as_u64()
        .unwrap();
    ipvsadm(&["--set", "900", "120", "300"]);
    wait_kernel_timeouts((1000, 100, 200));
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&base).await["dataplane"]["drift_repairs"]
        .as_u64()
        .unwrap()
        <= before
    {
        assert!(Instant::now() < deadline, "no drift repair counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A 0 leaves that timeout as the kernel has it.
    ctl_ok(&lbd, &["timeouts", "--set", "3600", "0", "0"]);
    wait_kernel_timeouts((3600, 100, 200));

    // 0 0 0: no longer lbd's; ipvsadm's change stays.
    ctl_ok(&lbd, &["timeouts", "--set", "0", "0", "0"]);
    let rev = status(&base).await["revision"].as_u64().unwrap();
    wait_applied(&base, rev).await;
    ipvsadm(&["--set", "900", "120", "300"]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(kernel_timeouts(), (900, 120, 300));
    drop(lbd);
}

/// `lbd ctl zero` (ipvsadm -Z) against real traffic: the counters `ipvsadm -Ln --stats` shows
/// go to 0, for one service and for all. Named to run last (one guest CPU: one test at a time):
/// its connections linger in the connection table; its addresses (10.98.0.0/24, port 8098)
/// are none the other tests look for (ports 8098 and 8099).
#[tokio::test]
async fn zero_counters_through_lbd_read_by_ipvsadm() {
    use std::io::{Read, Write};
    if !in_guest("zero_counters_through_lbd_read_by_ipvsadm") {
        return;
    }
    for a in ["10.98.0.1/32", "10.98.0.2/32"] {
        let out = Command::new("ip")
            .args(["addr", "replace", a, "dev", "lo"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Direct routing keeps the port: an echo server on each service's port.
    for port in [8098, 8099] {
        let listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let base = format!("http://{}", lbd.http_addr);
    let rev = put_config(
        &base,
        &json!({"virtual_servers": [{"address": "10.98.0.1", "port": 8098, "scheduler": "rr",
            "forwarding": "dr", "real_servers": [{"address": "10.98.0.2", "weight": 1}]}]}),
    )
    .await;
    wait_applied(&base, rev).await;
    // A foreign service too, for "all".
    ipvsadm(&["-A", "-t", "10.98.0.1:8099", "-s", "rr"]);
    ipvsadm(&["-a", "-t", "10.98.0.1:8099", "-r", "10.98.0.2:8099", "-g"]);

    let traffic = |port: u16, n: usize| {
        for _ in 0..n {
            let mut s = std::net::TcpStream::connect(("10.98.0.1", port)).unwrap();
            s.write_all(b"count me").unwrap();
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).unwrap();
        }
    };
    // The --stats numbers of a service's line: Conns InPkts OutPkts InBytes OutBytes.
    let stats = |svc: &str| -> Vec<u64> {
        let out = ipvsadm(&["-Ln", "--stats", "-t", svc]);
        out.lines()
            .find(|l| l.contains(svc))
            .unwrap_or_else(|| panic!("{svc} not in {out}"))
            .split_whitespace()
            .skip(2)
            .map(|w| w.parse().unwrap())
            .collect()
    };
    // The kernel folds its per-CPU counters into what it reports every 2 s.
    let wait_conns = |svc: &str, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = stats(svc);
            if s[0] >= n {
                return s;
            }
            assert!(Instant::now() < deadline, "{svc}: {s:?}, want {n} conns");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // Zeroing takes the counters as last folded as its baseline: zero only once a fold has
    // seen every packet (the teardown of a connection goes on after it is counted), or the
    // packets folded later show up as counted after the zero.
    let settled = |svc: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = stats(svc);
        loop {
            std::thread::sleep(Duration::from_millis(2200));
            let now = stats(svc);
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "{svc}: still moving: {now:?}");
            last = now;
        }
    };
    tokio::task::spawn_blocking(move || traffic(8098, 3))
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || traffic(8099, 2))
        .await
        .unwrap();
    let s = wait_conns("10.98.0.1:8098", 3);
    assert!(s[1] > 0 && s[3] > 0, "{s:?}");
    wait_conns("10.98.0.1:8099", 2);
    settled("10.98.0.1:8098");

    // One service: its counters go to 0, the other's stay.
    let out = ctl_ok(&lbd, &["zero", "10.98.0.1:8098"]);
    assert_eq!(out, "zeroed the counters of tcp 10.98.0.1:8098\n");
    // Still 0 after the next fold of per-CPU counters.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stats("10.98.0.1:8098"), vec![0; 5]);
    assert_eq!(stats("10.98.0.1:8099")[0], 2);
    let v: Value = reqwest::get(format!("{base}/api/v1/ipvs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == 8098)
        .unwrap();
    assert_eq!(ours["stats"]["conns"], 0, "{ours}");
    assert_eq!(ours["destinations"][0]["stats"]["inpkts"], 0, "{ours}");

    // All of them (ipvsadm -Z), the foreign one included.
    tokio::task::spawn_blocking(move || traffic(8098, 1))
        .await
        .unwrap();
    wait_conns("10.98.0.1:8098", 1);
    settled("10.98.0.1:8098");
    settled("10.98.0.1:8099");
    assert_eq!(
        ctl_ok(&lbd, &["zero"]),
        "zeroed the counters of every service\n"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(stats("10.98.0.1:8098"), vec![0; 5]);
    assert_eq!(stats("10.98.0.1:8099"), vec![0; 5]);
    let all = ipvsadm(&["-Ln", "--stats"]);
    for l in all.lines().filter(|l| l.contains("10.98.0.")) {
        assert!(l.split_whitespace().skip(2).all(|w| w == "0"), "{all}");
    }
    // A service the kernel does not have: lbd says so.
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "ctl",
            "--url",
            &lbd.http_addr.to_string(),
            "zero",
            "10.98.0.1:1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("404"), "{err}");
    drop(lbd);
    ipvsadm(&["-C"]);
}
