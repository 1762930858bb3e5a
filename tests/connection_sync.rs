//! IPVS connection sync as configuration (#24), against a running lbd whose data plane has the
//! in-memory kernel: `/api/v1/connection-sync` and the config document, gRPC, the keepalived
//! `lvs_sync_daemon` import and export; the actor running a master and a backup daemon,
//! repairing drift, leaving them running when lbd stops and stopping them when the setting is
//! deleted; the status per daemon. (The netlink side and real sync traffic: the guest,
//! tests/guest_connsync.rs.)

#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use lbd::grpc::pb;
use lbd::ipvs::table::{SyncDaemon, SyncRole};
use lbd::kernel::memory::MemoryKernel;
use pb::lbd_client::LbdClient;
use serde_json::{json, Value};
use tonic::Code;

async fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut rb = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn daemons(k: &MemoryKernel) -> Vec<SyncDaemon> {
    k.with(|s| s.sync_daemons.values().cloned().collect())
}

/// Waits until the in-memory kernel runs exactly `want` (roles, interface, sync id).
async fn wait_daemons(k: &MemoryKernel, want: &[(SyncRole, &str, u8)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let have: Vec<(SyncRole, String, u8)> = daemons(k)
            .into_iter()
            .map(|d| (d.role, d.interface, d.sync_id))
            .collect();
        let want: Vec<(SyncRole, String, u8)> = want
            .iter()
            .map(|(r, i, s)| (*r, i.to_string(), *s))
            .collect();
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kernel runs {have:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_until(base: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, s) = call("GET", &format!("{base}/api/v1/status"), None).await;
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never got there: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const BOTH_42: &[(SyncRole, &str, u8)] = &[
    (SyncRole::Master, "lbdtest0", 42),
    (SyncRole::Backup, "lbdtest0", 42),
];

#[tokio::test]
async fn the_setting_runs_both_daemons_repairs_drift_and_outlives_lbd() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let kernel = MemoryKernel::default();
    let mut cfg = support::config(&db);
    cfg.resync_interval = Duration::from_millis(100);
    let running = lbd::daemon::start_with_kernel(cfg.clone(), Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let url = format!("{base}/api/v1/connection-sync");

    // Not configured: 404, and lbd leaves a daemon someone else runs alone.
    let (st, v) = call("GET", &url, None).await;
    assert_eq!(st, 404, "{v}");
    kernel.with(|s| {
        s.sync_daemons.insert(
            SyncRole::Backup,
            SyncDaemon {
                role: SyncRole::Backup,
                interface: "other0".into(),
                sync_id: 9,
                maxlen: Some(1472),
                group: Some("224.0.0.81".parse().unwrap()),
                port: Some(8848),
                ttl: Some(1),
            },
        )
    });
    let s = status_until(&base, |s| {
        s["dataplane"]["connection_sync"]["daemons"][1]["state"] == "running"
    })
    .await;
    let cs = &s["dataplane"]["connection_sync"];
    assert_eq!(cs["managed"], false, "{cs}");
    assert_eq!(cs["daemons"][1]["reason"], "not_configured", "{cs}");
    assert_eq!(cs["daemons"][0]["state"], "stopped", "{cs}");
    assert!(kernel.with(|s| s.sync_started.is_empty()));

    // Errors name the field.
    let (st, v) = call(
        "PUT",
        &url,
        Some(json!({"interface": "lbdtest0", "sync_id": 42, "group": "192.168.10.1"})),
    )
    .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["field"], "group", "{v}");
    assert_eq!(v["error"]["rule"], "multicast_group", "{v}");
    let (st, v) = call(
        "PUT",
        &url,
        Some(json!({"interface": "lbdtest0", "sync_id": 300})),
    )
    .await;
    assert!((400..500).contains(&st), "{st} {v}");
    assert!(v.to_string().contains("sync_id"), "{v}");

    // Configured: the foreign backup is replaced, both daemons run with the setting.
    let (st, v) = call(
        "PUT",
        &url,
        Some(json!({"interface": "lbdtest0", "sync_id": 42, "vrrp_group": "VI_1"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"interface": "lbdtest0", "sync_id": 42, "vrrp_group": "VI_1"})
    );
    wait_daemons(&kernel, BOTH_42).await;
    let s = status_until(&base, |s| {
        s["dataplane"]["connection_sync"]["daemons"]
            .as_array()
            .is_some_and(|d| {
                d.iter()
                    .all(|d| d["state"] == "running" && d["reason"].is_null())
            })
    })
    .await;
    let cs = &s["dataplane"]["connection_sync"];
    assert_eq!(cs["managed"], true);
    assert_eq!(cs["daemons"][0]["role"], "master");
    assert_eq!(cs["daemons"][0]["interface"], "lbdtest0");
    assert_eq!(cs["daemons"][0]["sync_id"], 42);
    // The kernel's choices, read back.
    assert_eq!(cs["daemons"][0]["port"], 8848);
    assert_eq!(cs["daemons"][1]["group"], "224.0.0.81");
    let (_, doc) = call("GET", &format!("{base}/api/v1/config"), None).await;
    assert_eq!(doc["connection_sync"]["sync_id"], 42, "{doc}");

    // `ipvsadm --stop-daemon master` behind lbd's back: restarted, counted as drift.
    let before = s["dataplane"]["drift_repairs"].as_u64().unwrap();
    kernel.with(|s| s.sync_daemons.remove(&SyncRole::Master));
    wait_daemons(&kernel, BOTH_42).await;
    status_until(&base, |s| {
        s["dataplane"]["drift_repairs"].as_u64().unwrap() > before
    })
    .await;
    // A daemon restarted with other settings is replaced.
    kernel.with(|s| {
        if let Some(d) = s.sync_daemons.get_mut(&SyncRole::Backup) {
            d.port = Some(9999);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while kernel.with(|s| s.sync_daemons[&SyncRole::Backup].port) != Some(8848) {
        assert!(Instant::now() < deadline, "{:?}", daemons(&kernel));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(kernel.with(|s| s.sync_stopped.contains(&SyncRole::Backup)));

    // lbd stops: the daemons keep running (a restart is hitless); the restart adopts them.
    running.shutdown().await.unwrap();
    wait_daemons(&kernel, BOTH_42).await;
    let started = kernel.with(|s| s.sync_started.len());
    let running = lbd::daemon::start_with_kernel(cfg, Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let url = format!("{base}/api/v1/connection-sync");
    status_until(&base, |s| {
        s["dataplane"]["connection_sync"]["managed"] == true
    })
    .await;
    assert_eq!(
        kernel.with(|s| s.sync_started.len()),
        started,
        "a restart must not restart matching daemons"
    );

    // A change of setting replaces both; the delete stops lbd's daemons.
    let (st, v) = call(
        "PUT",
        &url,
        Some(
            json!({"interface": "lbdtest0", "sync_id": 43, "port": 9000, "ttl": 2,
                    "group": "239.1.1.1", "maxlen": 1400}),
        ),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    wait_daemons(
        &kernel,
        &[
            (SyncRole::Master, "lbdtest0", 43),
            (SyncRole::Backup, "lbdtest0", 43),
        ],
    )
    .await;
    let d = &daemons(&kernel)[0];
    assert_eq!(
        (d.port, d.ttl, d.maxlen, d.group),
        (
            Some(9000),
            Some(2),
            Some(1400),
            Some("239.1.1.1".parse().unwrap())
        )
    );
    let (st, v) = call("DELETE", &url, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["changes"][0]["kind"], "connection_sync", "{v}");
    wait_daemons(&kernel, &[]).await;
    let (st, _) = call("GET", &url, None).await;
    assert_eq!(st, 404);
    let (st, _) = call("DELETE", &url, None).await;
    assert_eq!(st, 404);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_refused_start_is_an_error_in_the_status_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = MemoryKernel::default();
    kernel.with(|s| s.sync_refuse = Some("No such device (os error 19)".into()));
    let mut cfg = support::config(&dir.path().join("lbd.db"));
    cfg.resync_interval = Duration::from_millis(100);
    let running = lbd::daemon::start_with_kernel(cfg, Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let (st, v) = call(
        "PUT",
        &format!("{base}/api/v1/connection-sync"),
        Some(json!({"interface": "lbdtest0", "sync_id": 42})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let s = status_until(&base, |s| {
        s["dataplane"]["connection_sync"]["daemons"][0]["state"] == "error"
    })
    .await;
    let d = &s["dataplane"]["connection_sync"]["daemons"][0];
    assert_eq!(d["reason"], "start_refused", "{d}");
    assert!(
        d["detail"].as_str().unwrap().contains("No such device"),
        "{d}"
    );
    // The IPVS table is not held back by it.
    assert_eq!(s["dataplane"]["state"], "running", "{s}");
    // The interface appears: the next pass starts them.
    kernel.with(|s| s.sync_refuse = None);
    wait_daemons(&kernel, BOTH_42).await;

    // `lbd ctl status` says it in words.
    let url = base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args(["ctl", "--url", &url, "status"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("connection sync: master running on lbdtest0 sync id 42"),
        "{text}"
    );
    assert!(
        text.contains("connection sync: backup running on lbdtest0 sync id 42"),
        "{text}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_sync_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = MemoryKernel::default();
    let running = lbd::daemon::start_with_kernel(
        support::config(&dir.path().join("lbd.db")),
        Box::new(kernel.clone()),
    )
    .await
    .unwrap();
    let mut c = LbdClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .unwrap();
    let g = c
        .get_connection_sync(pb::GetConnectionSyncRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.connection_sync, None);
    let bad = c
        .set_connection_sync(pb::SetConnectionSyncRequest {
            connection_sync: Some(pb::ConnectionSync {
                interface: "lbdtest0".into(),
                sync_id: 42,
                group: Some("10.0.0.1".into()),
                ..Default::default()
            }),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("connection_sync.group"),
        "{}",
        bad.message()
    );
    let bad = c
        .set_connection_sync(pb::SetConnectionSyncRequest {
            connection_sync: Some(pb::ConnectionSync {
                interface: "lbdtest0".into(),
                sync_id: 256,
                ..Default::default()
            }),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("connection_sync.sync_id"),
        "{}",
        bad.message()
    );
    let w = c
        .set_connection_sync(pb::SetConnectionSyncRequest {
            connection_sync: Some(pb::ConnectionSync {
                interface: "lbdtest0".into(),
                sync_id: 42,
                failback_hold_ms: Some(5000),
                ..Default::default()
            }),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.changes[0].kind, pb::EntityKind::ConnectionSync as i32);
    wait_daemons(&kernel, BOTH_42).await;
    let g = c
        .get_connection_sync(pb::GetConnectionSyncRequest {})
        .await
        .unwrap()
        .into_inner();
    let got = g.connection_sync.unwrap();
    assert_eq!((got.sync_id, got.failback_hold_ms), (42, Some(5000)));
    let cfg = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        cfg.config.unwrap().connection_sync.map(|c| c.interface),
        Some("lbdtest0".to_string())
    );
    // The status carries both daemons with their states as enums.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = c
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        let cs = s.dataplane.unwrap().connection_sync.unwrap();
        if cs.managed
            && cs.daemons.len() == 2
            && cs
                .daemons
                .iter()
                .all(|d| d.state == pb::SyncDaemonState::Running as i32)
        {
            assert_eq!(cs.daemons[0].role, pb::SyncRole::Master as i32);
            assert_eq!(cs.daemons[1].role, pb::SyncRole::Backup as i32);
            assert_eq!(cs.daemons[1].sync_id, Some(42));
            break;
        }
        assert!(Instant::now() < deadline, "{cs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Absent removes it.
    c.set_connection_sync(pb::SetConnectionSyncRequest {
        connection_sync: None,
        options: None,
    })
    .await
    .unwrap();
    wait_daemons(&kernel, &[]).await;
    running.shutdown().await.unwrap();
}

const CONF: &str = "global_defs {
    router_id lk01
    lvs_sync_daemon eth0 VI_1 maxlen 1400 port 8849 ttl 2 group 239.0.0.81
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.168.10.100/24
    }
}
";

fn import(text: &str) -> Result<lbd::keepalived::Imported, String> {
    lbd::keepalived::import_into(
        &lbd::model::Config::default(),
        text,
        std::path::Path::new("keepalived.conf"),
        "lk01",
        &lbd::keepalived::parser::NoIncludes,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn keepalived_lvs_sync_daemon_imports_with_a_warning_and_exports_back() {
    let imp = import(CONF).unwrap();
    let cs = imp.config.connection_sync.clone().unwrap();
    // The sync id defaults to the instance's virtual_router_id, as in keepalived.
    assert_eq!(
        (cs.interface.as_str(), cs.sync_id, cs.vrrp_group.as_deref()),
        ("eth0", 51, Some("VI_1"))
    );
    assert_eq!(
        (cs.maxlen, cs.port, cs.ttl, cs.group),
        (
            Some(1400),
            Some(8849),
            Some(2),
            Some("239.0.0.81".parse().unwrap())
        )
    );
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.message.contains("lbd runs both") && w.at.ends_with(":3")),
        "{:?}",
        imp.warnings
    );
    let out = lbd::keepalived::export::export(&imp.config, "lk01");
    assert!(
        out.contains(
            "lvs_sync_daemon eth0 VI_1 id 51 maxlen 1400 port 8849 ttl 2 group 239.0.0.81"
        ),
        "{out}"
    );
    let again = import(&out).unwrap();
    assert_eq!(again.config.connection_sync, Some(cs));

    // An instance the file does not have needs an id; a bad group fails on its line.
    let e = import(&CONF.replace("eth0 VI_1 maxlen", "eth0 VI_9 maxlen")).unwrap_err();
    assert!(e.contains(":3") && e.contains("give `id N`"), "{e}");
    let imp = import(&CONF.replace("eth0 VI_1 maxlen", "eth0 VI_9 id 7 maxlen")).unwrap();
    assert_eq!(imp.config.connection_sync.unwrap().sync_id, 7);
    assert!(imp
        .warnings
        .iter()
        .any(|w| w.message.contains("no vrrp_instance VI_9")));
    let e = import(&CONF.replace("group 239.0.0.81", "group 10.0.0.81")).unwrap_err();
    assert!(e.contains(":3") && e.contains("multicast"), "{e}");
}
