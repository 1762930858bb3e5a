//! `ipvsadm -Z` and `ipvsadm --set` the lbd way, against a running lbd whose data plane has the
//! in-memory kernel: `POST /api/v1/ipvs/zero`, gRPC `ZeroIpvs` and `lbd ctl zero`; the IPVS
//! timeouts as configuration (`/api/v1/ipvs/timeouts`, the config document, gRPC, `lbd ctl
//! timeouts --set`), applied by the actor and repaired when they drift. (The netlink side is
//! tested in the guest: tests/guest_lbd.rs.)

#[path = "support/server.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use lbd::daemon::Running;
use lbd::grpc::pb;
use lbd::ipvs::table::{DestKey, ProtocolKey, ServiceCounters, ServiceKey, Stats, Timeouts};
use lbd::kernel::memory::MemoryKernel;
use pb::lbd_client::LbdClient;
use serde_json::{json, Value};
use tonic::Code;

struct Rig {
    _dir: tempfile::TempDir,
    running: Running,
    kernel: MemoryKernel,
    base: String,
}

async fn start() -> Rig {
    start_with(Duration::from_secs(10)).await
}

async fn start_with(resync: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let kernel = MemoryKernel::default();
    let mut cfg = support::config(&dir.path().join("lbd.db"));
    cfg.resync_interval = resync;
    let running = lbd::daemon::start_with_kernel(cfg, Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    Rig {
        _dir: dir,
        running,
        kernel,
        base,
    }
}

impl Rig {
    async fn grpc(&self) -> LbdClient<tonic::transport::Channel> {
        LbdClient::connect(format!("http://{}", self.running.grpc_addr))
            .await
            .unwrap()
    }

    /// `lbd ctl ARGS` against this lbd: (success, stdout, stderr).
    async fn ctl(&self, args: &[&str]) -> (bool, String, String) {
        let url = self.base.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
                .args(["ctl", "--url", &url])
                .args(&args)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    }
}

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

async fn wait_applied(base: &str, revision: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, s) = call("GET", &format!("{base}/api/v1/status"), None).await;
        if s["dataplane"]["applied_revision"] == revision && s["dataplane"]["state"] == "running" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "revision {revision} not applied: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn tcp(address: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: ProtocolKey::Tcp,
        address: address.parse().unwrap(),
        port,
    }
}

fn traffic(conns: u64) -> Stats {
    Stats {
        conns,
        inpkts: conns * 3,
        outpkts: conns * 2,
        inbytes: conns * 100,
        outbytes: conns * 50,
        ..Stats::default()
    }
}

/// Puts traffic on every service of the in-memory table (and its destinations).
fn add_traffic(k: &MemoryKernel) {
    k.with(|s| {
        let keys: Vec<(ServiceKey, Vec<DestKey>)> = s
            .table
            .services
            .iter()
            .map(|(k, v)| (*k, v.dests.keys().copied().collect()))
            .collect();
        for (key, dests) in keys {
            let c = s
                .table
                .counters
                .entry(key)
                .or_insert_with(ServiceCounters::default);
            c.stats = traffic(6);
            for d in dests {
                c.dests.entry(d).or_default().stats = traffic(3);
            }
        }
    });
}

fn conns_of(k: &MemoryKernel, key: &ServiceKey) -> u64 {
    k.with(|s| s.table.counters.get(key).map_or(0, |c| c.stats.conns))
}

/// Two services with traffic, at revision 1.
async fn two_services(r: &Rig) {
    let (st, v) = call(
        "PUT",
        &format!("{}/api/v1/config", r.base),
        Some(json!({"virtual_servers": [
            {"address": "192.168.10.100", "port": 80,
             "real_servers": [{"address": "192.168.10.103"}]},
            {"address": "192.168.10.100", "port": 53, "protocol": "udp",
             "real_servers": [{"address": "192.168.10.104"}]},
            {"fwmark": 7, "family": "ipv6", "real_servers": [{"address": "2001:db8::7"}]}]})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    wait_applied(&r.base, 1).await;
    add_traffic(&r.kernel);
}

#[tokio::test]
async fn zero_over_http_one_service_then_all() {
    let r = start().await;
    two_services(&r).await;
    let udp = ServiceKey::Addr {
        protocol: ProtocolKey::Udp,
        address: "192.168.10.100".parse().unwrap(),
        port: 53,
    };
    let (_, t) = call("GET", &format!("{}/api/v1/ipvs", r.base), None).await;
    assert_eq!(t["services"][0]["stats"]["conns"], 6, "{t}");

    // One service: the others keep their counters.
    let (st, v) = call(
        "POST",
        &format!("{}/api/v1/ipvs/zero?address=192.168.10.100&port=80", r.base),
        None,
    )
    .await;
    assert_eq!(
        (st, v.clone()),
        (200, json!({"zeroed": "tcp 192.168.10.100:80"}))
    );
    assert_eq!(conns_of(&r.kernel, &tcp("192.168.10.100", 80)), 0);
    assert_eq!(conns_of(&r.kernel, &udp), 6);
    let (_, t) = call("GET", &format!("{}/api/v1/ipvs", r.base), None).await;
    let svc = t["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["port"] == 80)
        .unwrap()
        .clone();
    assert_eq!(svc["stats"]["inbytes"], 0, "{svc}");
    assert_eq!(svc["destinations"][0]["stats"]["conns"], 0, "{svc}");

    // By protocol, and the IPv6 fwmark service by family.
    let (st, v) = call(
        "POST",
        &format!(
            "{}/api/v1/ipvs/zero?protocol=udp&address=192.168.10.100&port=53",
            r.base
        ),
        None,
    )
    .await;
    assert_eq!(
        (st, v["zeroed"].clone()),
        (200, json!("udp 192.168.10.100:53"))
    );
    assert_eq!(conns_of(&r.kernel, &udp), 0);

    // A service the kernel does not have: 404; half a service: 422 naming the field; a bad
    // value: 400.
    let (st, v) = call(
        "POST",
        &format!("{}/api/v1/ipvs/zero?address=192.168.10.100&port=81", r.base),
        None,
    )
    .await;
    assert_eq!(st, 404, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no service"),
        "{v}"
    );
    let (st, v) = call(
        "POST",
        &format!("{}/api/v1/ipvs/zero?address=192.168.10.100", r.base),
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["field"].clone(), v["error"]["rule"].clone()),
        (422, json!("port"), json!("identity")),
        "{v}"
    );
    let (st, v) = call(
        "POST",
        &format!(
            "{}/api/v1/ipvs/zero?fwmark=7&address=10.0.0.1&port=1",
            r.base
        ),
        None,
    )
    .await;
    assert_eq!(
        (st, v["error"]["field"].clone(), v["error"]["rule"].clone()),
        (422, json!("fwmark"), json!("identity")),
        "{v}"
    );
    let (st, v) = call(
        "POST",
        &format!("{}/api/v1/ipvs/zero?port=http", r.base),
        None,
    )
    .await;
    assert_eq!(st, 400, "{v}");

    // Everything.
    add_traffic(&r.kernel);
    let (st, v) = call("POST", &format!("{}/api/v1/ipvs/zero", r.base), None).await;
    assert_eq!((st, v), (200, json!({"zeroed": "all"})));
    r.kernel.with(|s| {
        assert!(s
            .table
            .counters
            .values()
            .all(|c| c.stats == Stats::default()
                && c.dests.values().all(|d| d.stats == Stats::default())));
        assert_eq!(s.zeroed.last(), Some(&None));
    });
    // Zeroing touches neither the configuration nor the table.
    let (_, st) = call("GET", &format!("{}/api/v1/status", r.base), None).await;
    assert_eq!(st["revision"], 1);

    // No IPVS: 503, as GET /api/v1/ipvs.
    r.kernel
        .with(|s| s.unavailable = Some("no ip_vs here".into()));
    let (st, v) = call("POST", &format!("{}/api/v1/ipvs/zero", r.base), None).await;
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no ip_vs here"),
        "{v}"
    );
}

#[tokio::test]
async fn zero_over_grpc() {
    let r = start().await;
    two_services(&r).await;
    let mut c = r.grpc().await;
    let z = c
        .zero_ipvs(pb::ZeroIpvsRequest {
            service: Some(pb::IpvsServiceRef {
                fwmark: Some(7),
                family: pb::Family::Ipv6 as i32,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(z.zeroed, "fwmark 7 ipv6");
    let fwm = ServiceKey::Fwmark {
        family: lbd::ipvs::table::FamilyKey::Ipv6,
        mark: 7,
    };
    assert_eq!(conns_of(&r.kernel, &fwm), 0);
    assert_eq!(conns_of(&r.kernel, &tcp("192.168.10.100", 80)), 6);

    let e = c
        .zero_ipvs(pb::ZeroIpvsRequest {
            service: Some(pb::IpvsServiceRef {
                address: Some("192.168.10.100".into()),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("service.port: "), "{}", e.message());
    let e = c
        .zero_ipvs(pb::ZeroIpvsRequest {
            service: Some(pb::IpvsServiceRef {
                fwmark: Some(8),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());

    let z = c
        .zero_ipvs(pb::ZeroIpvsRequest { service: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(z.zeroed, "all");
    assert_eq!(conns_of(&r.kernel, &tcp("192.168.10.100", 80)), 0);
}

#[tokio::test]
async fn ctl_zero_names_services_as_ipvsadm_does() {
    let r = start().await;
    two_services(&r).await;
    let udp = ServiceKey::Addr {
        protocol: ProtocolKey::Udp,
        address: "192.168.10.100".parse().unwrap(),
        port: 53,
    };
    let (ok, out, err) = r.ctl(&["zero", "-u", "192.168.10.100:53"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "zeroed the counters of udp 192.168.10.100:53\n");
    assert_eq!(conns_of(&r.kernel, &udp), 0);
    assert_eq!(conns_of(&r.kernel, &tcp("192.168.10.100", 80)), 6);
    // By the configured id (1 is the TCP service).
    let (ok, out, err) = r.ctl(&["zero", "1"]).await;
    assert!(ok && out.contains("tcp 192.168.10.100:80"), "{out} {err}");
    assert_eq!(conns_of(&r.kernel, &tcp("192.168.10.100", 80)), 0);
    let (ok, out, err) = r.ctl(&["zero", "-f", "7", "-6"]).await;
    assert!(ok && out.contains("fwmark 7 ipv6"), "{out} {err}");
    // Not in the kernel: the API's 404.
    let (ok, _, err) = r.ctl(&["zero", "192.168.10.100:81"]).await;
    assert!(
        !ok && err.contains("404") && err.contains("no service"),
        "{err}"
    );
    let (ok, _, err) = r.ctl(&["zero", "-u"]).await;
    assert!(!ok && err.contains("name the service"), "{err}");
    // All, and --json.
    add_traffic(&r.kernel);
    let (ok, out, err) = r.ctl(&["zero"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "zeroed the counters of every service\n");
    assert_eq!(conns_of(&r.kernel, &udp), 0);
    let (ok, out, _) = r.ctl(&["--json", "zero"]).await;
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"zeroed": "all"})
    );
}

fn kernel_timeouts(k: &MemoryKernel) -> Option<Timeouts> {
    k.with(|s| s.table.timeouts)
}

async fn wait_timeouts(k: &MemoryKernel, want: Timeouts) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while kernel_timeouts(k) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "the kernel's timeouts are {:?}, not {want:?}",
            kernel_timeouts(k)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const T: fn(u32, u32, u32) -> Timeouts = |tcp_secs, tcp_fin_secs, udp_secs| Timeouts {
    tcp_secs,
    tcp_fin_secs,
    udp_secs,
};

#[tokio::test]
async fn timeouts_over_http_are_configuration_the_data_plane_applies() {
    let r = start().await;
    let url = format!("{}/api/v1/ipvs/timeouts", r.base);
    // Not managed: all 0, and the kernel is left alone.
    let (st, v) = call("GET", &url, None).await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"tcp_secs": 0, "tcp_fin_secs": 0, "udp_secs": 0})
        )
    );
    let (_, cfg) = call("GET", &format!("{}/api/v1/config", r.base), None).await;
    assert!(cfg.get("ipvs_timeouts").is_none(), "{cfg}");
    assert!(r.kernel.with(|s| s.timeouts_set.is_empty()));

    // A dry run commits nothing.
    let (st, v) = call(
        "PUT",
        &format!("{url}?dry_run=true"),
        Some(json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200})),
    )
    .await;
    assert_eq!(
        (st, v["dry_run"].clone(), v["revision"].clone()),
        (200, json!(true), json!(0)),
        "{v}"
    );
    assert_eq!(v["changes"][0]["kind"], "ipvs_timeouts", "{v}");
    assert_eq!(v["changes"][0]["op"], "add", "{v}");

    let (st, v) = call(
        "PUT",
        &url,
        Some(json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200})),
    )
    .await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200})
        )
    );
    wait_timeouts(&r.kernel, T(1000, 100, 200)).await;
    // What the kernel has now is in GET /api/v1/ipvs, as `ctl timeouts` shows it.
    wait_applied(&r.base, 1).await;
    let (_, t) = call("GET", &format!("{}/api/v1/ipvs", r.base), None).await;
    assert_eq!(
        t["timeouts"],
        json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200})
    );
    let (ok, out, err) = r.ctl(&["timeouts"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "Timeout (tcp tcpfin udp): 1000 100 200\n");

    // In the config document; GET -> PUT of it changes nothing.
    let (_, cfg) = call("GET", &format!("{}/api/v1/config", r.base), None).await;
    assert_eq!(
        cfg["ipvs_timeouts"],
        json!({"tcp_secs": 1000, "tcp_fin_secs": 100, "udp_secs": 200})
    );
    let (st, v) = call("PUT", &format!("{}/api/v1/config", r.base), Some(cfg)).await;
    assert_eq!((st, v["changes"].clone()), (200, json!([])), "{v}");

    // PATCH one; a 0 leaves the kernel's value; a stale If-Match is 412.
    let (st, v) = call("PATCH", &url, Some(json!({"udp_secs": 60, "tcp_secs": 0}))).await;
    assert_eq!(
        (st, v),
        (
            200,
            json!({"tcp_secs": 0, "tcp_fin_secs": 100, "udp_secs": 60})
        )
    );
    wait_timeouts(&r.kernel, T(1000, 100, 60)).await;
    let stale = reqwest::Client::new()
        .patch(&url)
        .header("If-Match", "\"1\"")
        .body(json!({"udp_secs": 61}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);

    // Validation names the field, an unknown one included, in a PUT and in a PATCH.
    for method in ["PUT", "PATCH"] {
        for (body, field, says) in [
            (
                json!({"tcp_secs": 2147484}),
                "tcp_secs",
                "must be in 0..=2147483",
            ),
            (
                json!({"udp_secs": -1}),
                "udp_secs",
                "must be in 0..=2147483",
            ),
            (json!({"udp": 5}), "udp", "unknown field `udp`"),
            // A null for an unknown field changes nothing, and is still refused.
            (json!({"udp": null}), "udp", "unknown field `udp`"),
        ] {
            let (st, v) = call(method, &url, Some(body.clone())).await;
            assert_eq!(st, 422, "{method} {body}: {v}");
            assert_eq!(v["error"]["field"], field, "{method} {body}: {v}");
            assert!(
                v["error"]["message"].as_str().unwrap().contains(says),
                "{method} {body}: {v}"
            );
        }
    }

    // All 0: no longer managed (stored as absent); the kernel keeps what it has.
    let (st, _) = call(
        "PUT",
        &url,
        Some(json!({"tcp_secs": 0, "tcp_fin_secs": 0, "udp_secs": 0})),
    )
    .await;
    assert_eq!(st, 200);
    let (_, cfg) = call("GET", &format!("{}/api/v1/config", r.base), None).await;
    assert!(cfg.get("ipvs_timeouts").is_none(), "{cfg}");
    assert_eq!(kernel_timeouts(&r.kernel), Some(T(1000, 100, 60)));
}

#[tokio::test]
async fn timeouts_survive_a_restart_and_drift_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let kernel = MemoryKernel::default();
    let mut cfg = support::config(&db);
    cfg.resync_interval = Duration::from_millis(100);
    let running = lbd::daemon::start_with_kernel(cfg.clone(), Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let (st, _) = call(
        "PUT",
        &format!("{base}/api/v1/ipvs/timeouts"),
        Some(json!({"tcp_secs": 3600, "udp_secs": 30})),
    )
    .await;
    assert_eq!(st, 200);
    // The first set starts from the kernel's defaults (900 120 300); 0 is left alone.
    wait_timeouts(&kernel, T(3600, 120, 30)).await;

    // Someone runs `ipvsadm --set 900 120 300`: the periodic pass puts them back.
    let (_, before) = call("GET", &format!("{base}/api/v1/status"), None).await;
    kernel.with(|s| s.table.timeouts = Some(T(900, 120, 300)));
    wait_timeouts(&kernel, T(3600, 120, 30)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, st) = call("GET", &format!("{base}/api/v1/status"), None).await;
        if st["dataplane"]["drift_repairs"].as_u64() > before["dataplane"]["drift_repairs"].as_u64()
        {
            break;
        }
        assert!(Instant::now() < deadline, "no drift repair counted: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await.unwrap();

    // A restart reads them from the database and keeps the kernel on them.
    let kernel = MemoryKernel::default();
    let running = lbd::daemon::start_with_kernel(cfg, Box::new(kernel.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);
    let (_, v) = call("GET", &format!("{base}/api/v1/ipvs/timeouts"), None).await;
    assert_eq!(
        v,
        json!({"tcp_secs": 3600, "tcp_fin_secs": 0, "udp_secs": 30})
    );
    wait_timeouts(&kernel, T(3600, 120, 30)).await;
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn timeouts_over_grpc() {
    let r = start().await;
    let mut c = r.grpc().await;
    let g = c
        .get_ipvs_timeouts(pb::GetIpvsTimeoutsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.timeouts, Some(pb::IpvsTimeouts::default()));
    let w = c
        .set_ipvs_timeouts(pb::SetIpvsTimeoutsRequest {
            timeouts: Some(pb::IpvsTimeouts {
                tcp_secs: 1000,
                tcp_fin_secs: 100,
                udp_secs: 200,
            }),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.revision, 1);
    assert_eq!(w.changes[0].kind, pb::EntityKind::IpvsTimeouts as i32);
    wait_timeouts(&r.kernel, T(1000, 100, 200)).await;
    // In GetConfig, and ReplaceConfig of it changes nothing.
    let cfg = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let got = cfg.config.clone().unwrap().ipvs_timeouts;
    assert_eq!(
        got,
        Some(pb::IpvsTimeouts {
            tcp_secs: 1000,
            tcp_fin_secs: 100,
            udp_secs: 200
        })
    );
    let w = c
        .replace_config(pb::ReplaceConfigRequest {
            config: cfg.config,
            options: Some(pb::WriteOptions {
                expected_revision: Some(cfg.revision),
                dry_run: false,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(w.changes.is_empty(), "{:?}", w.changes);

    let e = c
        .set_ipvs_timeouts(pb::SetIpvsTimeoutsRequest {
            timeouts: Some(pb::IpvsTimeouts {
                tcp_secs: 1,
                tcp_fin_secs: 1,
                udp_secs: 3_000_000,
            }),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("timeouts.udp_secs: "),
        "{}",
        e.message()
    );
    let e = c
        .set_ipvs_timeouts(pb::SetIpvsTimeoutsRequest {
            timeouts: Some(pb::IpvsTimeouts::default()),
            options: Some(pb::WriteOptions {
                expected_revision: Some(0),
                dry_run: false,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn ctl_timeouts_set_in_ipvsadm_order() {
    let r = start().await;
    let (ok, out, err) = r
        .ctl(&["timeouts", "--set", "1000", "100", "200", "--dry-run"])
        .await;
    assert!(ok && out.starts_with("dry run: 1 change(s)"), "{out} {err}");
    assert!(r.kernel.with(|s| s.timeouts_set.is_empty()));
    let (ok, out, err) = r.ctl(&["timeouts", "--set", "1000", "100", "200"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Timeout (tcp tcpfin udp) configured: 1000 100 200 (0: left as the kernel has it)\n"
    );
    wait_timeouts(&r.kernel, T(1000, 100, 200)).await;
    let (ok, out, _) = r.ctl(&["timeouts"]).await;
    assert!(ok);
    assert_eq!(out, "Timeout (tcp tcpfin udp): 1000 100 200\n");
    // The API's validation message, naming the field.
    let (ok, _, err) = r.ctl(&["timeouts", "--set", "1", "2147484", "3"]).await;
    assert!(
        !ok && err.contains("422")
            && err.contains("tcp_fin_secs: timeout (seconds) must be in 0..=2147483"),
        "{err}"
    );
    let (ok, _, err) = r.ctl(&["timeouts", "--set", "1", "2"]).await;
    assert!(!ok && err.contains("TCPFIN"), "{err}");
    let (ok, out, err) = r.ctl(&["timeouts", "--set", "0", "0", "0"]).await;
    assert!(ok && out.contains("no longer manages"), "{out} {err}");
    let (_, v) = call("GET", &format!("{}/api/v1/config", r.base), None).await;
    assert!(v.get("ipvs_timeouts").is_none(), "{v}");
}
