//! `GET /metrics` against a running lbd whose data plane has the in-memory kernel: the
//! exposition parses as OpenMetrics with the Prometheus project's own parser
//! (`tests/metrics/parse`), follows the naming conventions, and its numbers are the status's and
//! the kernel table's, the health checks' that ran (against listeners of the test's) and the gRPC
//! calls the test made.

#[path = "support/server.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbd::grpc::pb;
use lbd::ipvs::table::{ServiceCounters, Stats};
use lbd::kernel::memory::MemoryKernel;
use serde_json::{json, Value};

/// The value of the sample written exactly as `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_parse_and_agree_with_the_status_and_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = MemoryKernel::default();
    let running = lbd::daemon::start_with_kernel(
        support::config(&dir.path().join("lbd.db")),
        Box::new(kernel.clone()),
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.http_addr);
    let c = reqwest::Client::new();
    // A real server whose check passes (a listener of the test's), one that fails (nothing
    // listens on its check port), and a VRRP group (not run on this test's node).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = listener.local_addr().unwrap().port();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let check = json!({"type": "tcp", "connect_timeout_ms": 500, "retry": 0,
                       "delay_before_retry_ms": 100});
    let r = c
        .post(format!("{base}/api/v1/virtual-servers"))
        .json(
            &json!({"address": "192.168.10.100", "port": 80, "forwarding": "nat",
            "delay_loop_ms": 200,
            "real_servers": [
                {"address": "127.0.0.1", "port": up_port, "health_check": check},
                {"address": "127.0.0.1", "port": closed_port, "health_check": check}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let vs: Value = r.json().await.unwrap();
    let vs_id = vs["id"].as_i64().unwrap();
    let (rs_up, rs_down) = (
        vs["real_servers"][0]["id"].as_i64().unwrap(),
        vs["real_servers"][1]["id"].as_i64().unwrap(),
    );
    let st = c
        .post(format!("{base}/api/v1/vrrp-groups"))
        .json(&support::seed_vrrp_group())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(st, 201);

    // Wait for both verdicts and the kernel table, then put traffic on the service.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s: Value = c
            .get(format!("{base}/api/v1/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let states: Vec<&str> = s["health"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["state"].as_str())
            .collect();
        if states.len() == 2 && states.contains(&"up") && states.contains(&"down") {
            break;
        }
        assert!(Instant::now() < deadline, "no verdicts: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kernel.with(|s| {
        let keys: Vec<_> = s.table.services.keys().copied().collect();
        for k in keys {
            s.table
                .counters
                .entry(k)
                .or_insert_with(ServiceCounters::default)
                .stats = Stats {
                conns: 7,
                inbytes: 700,
                outbytes: 350,
                ..Stats::default()
            };
        }
    });

    // gRPC calls: one that answers, one refused (NOT_FOUND), one of a method lbd does not serve.
    let mut g = pb::lbd_client::LbdClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .unwrap();
    g.get_status(pb::GetStatusRequest {}).await.unwrap();
    let e = g
        .get_virtual_server(pb::GetVirtualServerRequest { id: 9999 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let mut raw = tonic::client::Grpc::new(
        tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    raw.ready().await.unwrap();
    let e = raw
        .unary::<_, pb::GetIpvsResponse, _>(
            tonic::Request::new(pb::GetStatusRequest {}),
            "/lbd.v1.Lbd/NoSuchMethod".parse().unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);

    let r = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers()
    );
    let text = r.text().await.unwrap();

    // The Prometheus project's parser reads it, and the names follow the conventions.
    let mut p = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/parse"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tests/metrics/parse");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let families = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the parser refused it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    for family in [
        "gauge lbd_config_revision",
        "counter lbd_ipvs_ops_applied",
        "gauge lbd_vrrp_state",
        "counter lbd_vrrp_adverts_sent",
        "counter lbd_vrrp_errors",
        "gauge lbd_real_server_up",
        "counter lbd_health_checks",
        "gauge lbd_health_state_age_seconds",
        "gauge lbd_health_check_latency_seconds",
        "counter lbd_ipvs_connections",
        "counter lbd_ipvs_in_bytes",
        "gauge lbd_ipvs_destination_active_connections",
        "counter lbd_health_check_attempts",
        "histogram lbd_health_check_duration_seconds",
        "counter lbd_http_requests",
        "histogram lbd_http_request_duration_seconds",
        "counter lbd_grpc_requests",
        "histogram lbd_grpc_request_duration_seconds",
        "counter process_cpu_seconds",
        "gauge process_resident_memory_bytes",
        "gauge process_open_fds",
    ] {
        assert!(
            families
                .lines()
                .any(|l| l.starts_with(&format!("{family} "))),
            "{family} missing:\n{families}"
        );
    }

    // The numbers are the status's and the kernel's.
    assert_eq!(sample(&text, "lbd_config_revision"), Some(2.0));
    assert_eq!(sample(&text, "lbd_dataplane_up"), Some(1.0));
    let rs = |id: i64| format!("{{virtual_server_id=\"{vs_id}\",real_server_id=\"{id}\"}}");
    assert_eq!(
        sample(&text, &format!("lbd_real_server_up{}", rs(rs_up))),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("lbd_real_server_up{}", rs(rs_down))),
        Some(0.0)
    );
    let svc = "{service=\"tcp 192.168.10.100:80\"}";
    assert_eq!(
        sample(&text, &format!("lbd_ipvs_connections_total{svc}")),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, &format!("lbd_ipvs_in_bytes_total{svc}")),
        Some(700.0)
    );
    assert_eq!(
        sample(
            &text,
            "lbd_http_requests_total{method=\"POST\",route=\"/api/v1/virtual-servers\",status=\"201\"}"
        ),
        Some(1.0)
    );
    // The checks that ran: successes against the listener, failures against the closed port
    // (refused: a failure, not a timeout), each timed.
    let ok = "{kind=\"tcp\",result=\"success\"}";
    let failed = "{kind=\"tcp\",result=\"failure\"}";
    let attempts_ok = sample(&text, &format!("lbd_health_check_attempts_total{ok}")).unwrap();
    let attempts_failed =
        sample(&text, &format!("lbd_health_check_attempts_total{failed}")).unwrap();
    assert!(attempts_ok >= 1.0 && attempts_failed >= 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("lbd_health_check_duration_seconds_count{ok}")
        ),
        Some(attempts_ok)
    );
    let took = sample(&text, &format!("lbd_health_check_duration_seconds_sum{ok}")).unwrap();
    // A connect on loopback: more than nothing, well under the 500 ms timeout each.
    assert!(took > 0.0 && took < 0.5 * attempts_ok, "{took}\n{text}");
    assert_eq!(
        sample(
            &text,
            "lbd_health_check_duration_seconds_bucket{le=\"+Inf\",kind=\"tcp\",result=\"success\"}"
        ),
        Some(attempts_ok)
    );
    // The per-real-server state and its age.
    let age = sample(
        &text,
        &format!("lbd_health_state_age_seconds{}", rs(rs_down)),
    )
    .unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");

    // The gRPC calls, by method and code, and their latency.
    for (method, code) in [
        ("lbd.v1.Lbd/GetStatus", "OK"),
        ("lbd.v1.Lbd/GetVirtualServer", "NOT_FOUND"),
        ("other", "UNIMPLEMENTED"),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("lbd_grpc_requests_total{{method=\"{method}\",code=\"{code}\"}}")
            ),
            Some(1.0),
            "{method} {code}\n{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("lbd_grpc_request_duration_seconds_count{{method=\"{method}\"}}")
            ),
            Some(1.0),
            "{method}\n{text}"
        );
        let s = sample(
            &text,
            &format!("lbd_grpc_request_duration_seconds_sum{{method=\"{method}\"}}"),
        )
        .unwrap();
        assert!(s > 0.0 && s < 5.0, "{method}: {s}");
    }

    // One state of the group is 1, the others 0.
    let states: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("lbd_vrrp_state{group=\"VI_1\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(states.len(), 5, "{text}");
    assert_eq!(states.iter().sum::<f64>(), 1.0, "{text}");
    drop(listener);
    running.shutdown().await.unwrap();
}
