//! The HTTP API end to end: a real server on 127.0.0.1, a real HTTP client, a real SQLite file.

#[path = "support/server.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{seed_virtual_server, seed_vrrp_group, TestServer};

struct Resp {
    status: StatusCode,
    etag: Option<String>,
    location: Option<String>,
    body: Value,
}

async fn call(method: Method, url: &str, body: Option<Value>, if_match: Option<&str>) -> Resp {
    let client = reqwest::Client::new();
    let mut rb = client.request(method, url);
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    if let Some(m) = if_match {
        rb = rb.header("If-Match", m);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        etag,
        location,
        body,
    }
}

async fn get(s: &TestServer, path: &str) -> Resp {
    call(Method::GET, &s.url(path), None, None).await
}
async fn post(s: &TestServer, path: &str, body: Value) -> Resp {
    call(Method::POST, &s.url(path), Some(body), None).await
}
async fn put(s: &TestServer, path: &str, body: Value) -> Resp {
    call(Method::PUT, &s.url(path), Some(body), None).await
}
async fn delete(s: &TestServer, path: &str) -> Resp {
    call(Method::DELETE, &s.url(path), None, None).await
}

/// Asserts an error response: status, code, and the field it names.
fn assert_error(r: &Resp, status: u16, code: &str, field: Option<&str>, msg_part: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    assert_eq!(r.body["error"]["code"], code, "body: {}", r.body);
    match field {
        Some(f) => assert_eq!(r.body["error"]["field"], f, "body: {}", r.body),
        None => assert!(r.body["error"].get("field").is_none(), "body: {}", r.body),
    }
    let m = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(msg_part), "message {m:?} lacks {msg_part:?}");
    assert!(r.etag.is_some(), "errors carry an ETag too");
}

#[tokio::test]
async fn seed_setup_walkthrough() {
    let s = TestServer::start().await;
    let r = get(&s, "/api/v1/virtual-servers").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.etag.as_deref(), Some("\"0\""));
    assert_eq!(r.body, json!([]));

    let r = post(&s, "/api/v1/virtual-servers", seed_virtual_server()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"1\""));
    let vs_id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.location.as_deref(),
        Some(&*format!("/api/v1/virtual-servers/{vs_id}"))
    );
    assert_eq!(r.body["real_servers"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["real_servers"][0]["health_check"]["retry"], 3);

    let r = post(&s, "/api/v1/vrrp-groups", seed_vrrp_group()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
    let g = r.body.clone();
    assert_eq!(g["virtual_addresses"], json!(["192.168.10.100/32"]));
    assert_eq!(g["nodes"][1]["priority"], 90);
    assert_eq!(g["garp"]["count"], 5, "defaults are filled in");

    let r = get(&s, &format!("/api/v1/virtual-servers/{vs_id}")).await;
    assert_eq!(r.body["scheduler"], "rr");
    assert_eq!(r.body["forwarding"], "dr");
    assert_eq!(r.body["delay_loop_ms"], 15000);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));

    let r = get(&s, "/api/v1/config").await;
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["virtual_servers"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["vrrp_groups"][0]["name"], "VI_1");

    let r = get(&s, "/api/v1/status").await;
    assert_eq!(r.body["node"], "lk01");
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["real_servers"], 2);
    // This kernel has no IPVS: the data plane says so instead of failing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut st = r.body.clone();
    while st["dataplane"]["state"] != "degraded" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        st = get(&s, "/api/v1/status").await.body;
    }
    if std::env::var_os("LBD_IN_GUEST").is_none() {
        assert_eq!(st["dataplane"]["state"], "degraded", "{st}");
        assert!(
            st["dataplane"]["reason"].as_str().unwrap().contains("IPVS"),
            "{st}"
        );
        let r = get(&s, "/api/v1/ipvs").await;
        assert_error(&r, 503, "unavailable", None, "IPVS");
    }

    let r = get(&s, "/api/v1/events").await;
    let commits: Vec<_> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "config_committed")
        .cloned()
        .collect();
    let revs: Vec<_> = commits.iter().map(|e| e["revision"].clone()).collect();
    assert_eq!(revs, vec![json!(1), json!(2)]);
    let since = commits[0]["seq"].as_u64().unwrap();
    let r = get(&s, &format!("/api/v1/events?since={since}")).await;
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["seq"].as_u64().unwrap() > since));
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["revision"] == 2));

    let r = get(&s, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn real_server_crud_and_cascade() {
    let s = TestServer::start().await;
    let vs = post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "10.1.0.1", "port": 443}),
    )
    .await;
    let vs_id = vs.body["id"].as_i64().unwrap();
    assert_eq!(vs.body["protocol"], "tcp", "protocol defaults to tcp");
    let base = format!("/api/v1/virtual-servers/{vs_id}/real-servers");

    let r = post(&s, &base, json!({"address": "10.1.0.10", "weight": 5})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["port"], 443, "port defaults to the virtual server's");
    let rs_id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.location.as_deref(), Some(&*format!("{base}/{rs_id}")));

    let r = put(
        &s,
        &format!("{base}/{rs_id}"),
        json!({"address": "10.1.0.10", "weight": 0}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["weight"], 0);
    assert_eq!(r.body["id"], rs_id);

    let r = get(&s, &base).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["weight"], 0);

    let r = delete(&s, &format!("{base}/{rs_id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["changes"][0]["op"], "remove");
    assert_eq!(r.body["changes"][0]["kind"], "real_server");
    let r = get(&s, &format!("{base}/{rs_id}")).await;
    assert_error(&r, 404, "not_found", None, "real server");

    post(&s, &base, json!({"address": "10.1.0.11"})).await;
    let r = delete(&s, &format!("/api/v1/virtual-servers/{vs_id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&s, &base).await;
    assert_error(&r, 404, "not_found", None, "virtual server");
    assert_eq!(get(&s, "/api/v1/status").await.body["real_servers"], 0);
}

#[tokio::test]
async fn put_virtual_server_keeps_or_replaces_real_servers() {
    let s = TestServer::start().await;
    let vs = post(&s, "/api/v1/virtual-servers", seed_virtual_server())
        .await
        .body;
    let id = vs["id"].as_i64().unwrap();
    let path = format!("/api/v1/virtual-servers/{id}");
    let rs_ids: Vec<i64> = vs["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();

    // No real_servers field: scheduler changes, real servers stay.
    let r = put(&s, &path, json!({"address": "192.168.10.100", "port": 80, "scheduler": "wlc", "delay_loop_ms": 15000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["scheduler"], "wlc");
    assert_eq!(r.body["real_servers"].as_array().unwrap().len(), 2);

    // With real_servers: .103 is kept (same id), .104 removed, .105 added.
    let r = put(&s, &path, json!({"address": "192.168.10.100", "port": 80, "scheduler": "wlc", "delay_loop_ms": 15000,
        "real_servers": [{"address": "192.168.10.103", "weight": 3}, {"address": "192.168.10.105"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rss = r.body["real_servers"].as_array().unwrap();
    assert_eq!(rss.len(), 2);
    assert_eq!(rss[0]["id"], rs_ids[0]);
    assert_eq!(rss[0]["weight"], 3);
    assert_eq!(rss[1]["address"], "192.168.10.105");
    assert!(!rs_ids.contains(&rss[1]["id"].as_i64().unwrap()));
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_naming_the_field() {
    let s = TestServer::start().await;
    let vs_path = "/api/v1/virtual-servers";

    let r = call(Method::POST, &s.url(vs_path), None, None).await;
    assert_error(&r, 400, "bad_request", Some("body"), "malformed JSON");
    let r = call(
        Method::POST,
        &s.url(vs_path),
        Some(Value::String("{\"address\":".into())),
        None,
    )
    .await;
    assert_error(&r, 422, "invalid_argument", None, "invalid type");
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "colour": "red"}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("colour"),
        "unknown field `colour`",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.300", "port": 80}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("address"),
        "invalid IP address",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 70000}),
    )
    .await;
    assert_error(&r, 422, "invalid_argument", Some("port"), "u16");
    let r = post(&s, vs_path, json!({"address": "192.168.10.100"})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("port"),
        "port is required",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "fwmark": 3}),
    )
    .await;
    assert_error(&r, 422, "invalid_argument", Some("fwmark"), "not both");
    let r = post(&s, vs_path, json!({"fwmark": 3})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("family"),
        "required with fwmark",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "scheduler": "fastest"}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("scheduler"),
        "unknown variant `fastest`",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "protocol": "icmp"}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("protocol"),
        "unknown variant",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80,
        "real_servers": [{"address": "10.0.0.1", "weight": 65536}]}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("real_servers[0].weight"),
        "weight must be in 0..=65535",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80,
        "real_servers": [{"address": "10.0.0.1"}, {"address": "2001:db8::1"}]}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("real_servers[1].address"),
        "address family",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80,
        "real_servers": [{"address": "10.0.0.1", "port": 8080}]}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("real_servers[0].port"),
        "dr forwarding cannot change the port",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80,
        "real_servers": [{"address": "10.0.0.1"}, {"address": "10.0.0.1"}]}),
    )
    .await;
    assert_error(
        &r,
        409,
        "already_exists",
        Some("real_servers[1].address"),
        "listed twice",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80,
        "real_servers": [{"address": "10.0.0.1", "health_check": {"type": "tcp", "path": "/"}}]}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("real_servers[0].health_check.path"),
        "only for http",
    );
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "persistence_granularity": 24}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("persistence_granularity"),
        "needs persistence_timeout_secs",
    );

    // Nothing above was half-written.
    let r = get(&s, vs_path).await;
    assert_eq!(r.body, json!([]));
    assert_eq!(r.etag.as_deref(), Some("\"0\""));

    let ok = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let r = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "protocol": "tcp"}),
    )
    .await;
    assert_error(
        &r,
        409,
        "already_exists",
        Some("address"),
        "tcp 192.168.10.100:80 already exists",
    );
    let udp = post(
        &s,
        vs_path,
        json!({"address": "192.168.10.100", "port": 80, "protocol": "udp"}),
    )
    .await;
    assert_eq!(
        udp.status,
        StatusCode::CREATED,
        "same address and port over udp is another service"
    );

    // Updating one virtual server onto another's identity is a conflict reported on it.
    let udp_id = udp.body["id"].as_i64().unwrap();
    let r = put(
        &s,
        &format!("{vs_path}/{udp_id}"),
        json!({"address": "192.168.10.100", "port": 80}),
    )
    .await;
    assert_error(&r, 409, "already_exists", Some("address"), "already exists");

    let g = "/api/v1/vrrp-groups";
    let mut v2 = seed_vrrp_group();
    v2["advert_interval_ms"] = json!(100);
    assert_error(
        &post(&s, g, v2).await,
        422,
        "invalid_argument",
        Some("advert_interval_ms"),
        "VRRPv2 advertises whole seconds",
    );
    let mut v3 = seed_vrrp_group();
    v3["version"] = json!(3);
    assert_error(
        &post(&s, g, v3).await,
        422,
        "invalid_argument",
        Some("auth_pass"),
        "VRRPv3 has no authentication",
    );
    let mut v = seed_vrrp_group();
    v["vrid"] = json!(256);
    assert_error(
        &post(&s, g, v).await,
        422,
        "invalid_argument",
        Some("vrid"),
        "vrid must be in 1..=255, got 256",
    );
    let mut v = seed_vrrp_group();
    v["nodes"][0]["priority"] = json!(255);
    assert_error(
        &post(&s, g, v).await,
        422,
        "invalid_argument",
        Some("nodes[0].priority"),
        "reserved for the address owner",
    );
    let mut v = seed_vrrp_group();
    v["nodes"][0]["priority"] = json!(255);
    v["nodes"][0]["unicast_src"] = json!("192.168.10.100");
    assert_eq!(
        post(&s, g, v).await.status,
        StatusCode::CREATED,
        "the address owner may have 255"
    );
    let mut v = seed_vrrp_group();
    v["name"] = json!("VI_2");
    v["virtual_addresses"] = json!(["192.168.10.200"]);
    assert_error(
        &post(&s, g, v).await,
        409,
        "already_exists",
        Some("vrid"),
        "vrid 1 is already used by group VI_1",
    );
    let mut v = seed_vrrp_group();
    v["auth_pass"] = json!("123456789");
    v["name"] = json!("VI_3");
    assert_error(
        &post(&s, g, v).await,
        422,
        "invalid_argument",
        Some("auth_pass"),
        "1-8 bytes",
    );
    let mut v = seed_vrrp_group();
    v["virtual_addresses"] = json!(["2001:db8::10"]);
    v["name"] = json!("VI_4");
    assert_error(
        &post(&s, g, v).await,
        422,
        "invalid_argument",
        Some("virtual_addresses[0]"),
        "IPv4 addresses only",
    );
    let mut v = seed_vrrp_group();
    v["version"] = json!(3);
    v["advert_interval_ms"] = json!(1000);
    v.as_object_mut().unwrap().remove("auth_pass");
    v["virtual_addresses"] = json!(["192.168.10.201", "2001:db8::10"]);
    v["name"] = json!("VI_5");
    assert_error(
        &post(&s, g, v).await,
        422,
        "invalid_argument",
        Some("virtual_addresses[1]"),
        "one VRRP group carries one address family",
    );

    assert_error(
        &get(&s, "/api/v1/virtual-servers/abc").await,
        400,
        "bad_request",
        Some("path"),
        "bad path parameter",
    );
    assert_error(
        &get(&s, "/api/v1/virtual-servers/999").await,
        404,
        "not_found",
        None,
        "virtual server 999",
    );
    assert_error(
        &get(&s, "/api/v1/nothing").await,
        404,
        "not_found",
        None,
        "no such resource",
    );
    assert_error(
        &call(Method::PATCH, &s.url("/api/v1/config"), None, None).await,
        405,
        "method_not_allowed",
        None,
        "method",
    );
    assert_error(
        &call(
            Method::POST,
            &s.url("/api/v1/virtual-servers?dry_run=maybe"),
            Some(json!({})),
            None,
        )
        .await,
        400,
        "bad_request",
        Some("query"),
        "dry_run",
    );
}

/// The tracking fields' 4xx name the field (and the rule a schema cannot state).
#[tokio::test]
async fn bad_tracking_is_a_4xx_naming_the_field() {
    let s = TestServer::start().await;
    let group = |extra: Value| {
        let mut g = json!({"name": "VI_1", "vrid": 1, "virtual_addresses": ["192.168.10.100"],
            "nodes": [{"node": "lk01", "priority": 100, "interface": "eth0"}]});
        if let (Some(g), Value::Object(e)) = (g.as_object_mut(), extra) {
            g.extend(e);
        }
        g
    };
    let cases = [
        (
            json!({"track_interfaces_weighted": [{"interface": "eth1", "weight": 254}]}),
            "track_interfaces_weighted[0].weight",
            "-253..=253",
            None,
        ),
        (
            json!({"track_interfaces_weighted": [{"interface": "eth1", "weight": -1}, {"interface": "eth1", "weight": -2}]}),
            "track_interfaces_weighted[1].interface",
            "listed twice",
            Some("duplicate_tracker"),
        ),
        (
            json!({"track_virtual_servers": [{"virtual_server": "192.0.2.1:80", "weight": -1}]}),
            "track_virtual_servers[0].virtual_server",
            "tcp 192.0.2.1:80",
            None,
        ),
        (
            json!({"track_scripts": [{"name": "chk", "command": "check.sh"}]}),
            "track_scripts[0].command",
            "absolute",
            None,
        ),
        (
            json!({"track_scripts": [{"name": "chk", "command": "/bin/true", "fall": 0}]}),
            "track_scripts[0].fall",
            "1..=",
            None,
        ),
        (
            json!({"track_scripts": [{"name": "chk", "command": "/bin/true", "interval_ms": 5}]}),
            "track_scripts[0].interval_ms",
            "ms",
            None,
        ),
        (
            json!({"notify": {"fault": "/bin/x \"y\""}}),
            "notify.fault",
            "`\"`",
            None,
        ),
        (
            json!({"notify": {"timeout_ms": 0}}),
            "notify.timeout_ms",
            "ms",
            None,
        ),
    ];
    for (extra, field, msg, rule) in cases {
        let r = post(&s, "/api/v1/vrrp-groups", group(extra.clone())).await;
        assert_eq!(r.status.as_u16(), 422, "{extra}: {}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{extra}: {}", r.body);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(msg),
            "{extra}: {}",
            r.body
        );
        if let Some(rule) = rule {
            assert_eq!(r.body["error"]["rule"], rule, "{}", r.body);
        }
    }
    // Unknown fields inside are refused too (a typo is not silently dropped).
    let r = post(
        &s,
        "/api/v1/vrrp-groups",
        group(json!({"notify": {"mastr": "/bin/true"}})),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.body);
}

/// keepalived's options on a virtual address (the object form; a plain address stays a
/// string), virtual routes and rules: stored and read back as sent; bad ones are 422s naming
/// the field.
#[tokio::test]
async fn vip_options_routes_and_rules_round_trip_and_bad_ones_name_the_field() {
    let s = TestServer::start().await;
    let g = "/api/v1/vrrp-groups";
    let mut v = seed_vrrp_group();
    let opts = json!({"address": "192.168.10.101/24", "dev": "eth1", "scope": "link", "label": "eth1:vip", "broadcast": "192.168.10.255"});
    v["virtual_addresses"] = json!(["192.168.10.100/32", opts]);
    v["virtual_routes"] = json!([
        {"to": "10.1.0.0/16", "via": "192.168.10.1", "dev": "eth1", "table": 100, "metric": 5},
        {"to": "10.2.0.0/16", "type": "blackhole"}
    ]);
    v["virtual_rules"] = json!([{"from": "192.168.10.0/24", "table": 100, "priority": 100}]);
    let r = post(&s, g, v.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let r = get(&s, &format!("{g}/{id}")).await;
    assert_eq!(r.body["virtual_addresses"], v["virtual_addresses"]);
    assert_eq!(r.body["virtual_routes"], v["virtual_routes"]);
    assert_eq!(r.body["virtual_rules"], v["virtual_rules"]);

    // Another group (its own name, VRID and address) with `key` set to `value`.
    let bad = |key: &str, value: Value| {
        let mut b = seed_vrrp_group();
        b["name"] = json!("VI_9");
        b["vrid"] = json!(9);
        b["virtual_addresses"] = json!(["192.168.10.150"]);
        b[key] = value;
        b
    };
    for (key, value, field, msg) in [
        (
            "virtual_addresses",
            json!([{"address": "192.168.10.150", "label": "eth1:vip"}]),
            "virtual_addresses[0].label",
            "must be the interface's name `eth0` or start with `eth0:`",
        ),
        (
            "virtual_addresses",
            json!([{"address": "192.168.10.150", "label": "eth0:abcdefghijk"}]),
            "virtual_addresses[0].label",
            "at most 15 bytes",
        ),
        (
            "virtual_addresses",
            json!([{"address": "192.168.10.150", "dev": "eth/1"}]),
            "virtual_addresses[0].dev",
            "not a valid interface name",
        ),
        (
            "virtual_routes",
            json!([{"to": "10.1.2.0/16", "dev": "eth0"}]),
            "virtual_routes[0].to",
            "bits set beyond its length",
        ),
        (
            "virtual_routes",
            json!([{"to": "10.1.0.0/16", "via": "2001:db8::1"}]),
            "virtual_routes[0].via",
            "not of the destination's family",
        ),
        (
            "virtual_rules",
            json!([{"from": "10.1.0.0/16", "table": 5, "type": "blackhole"}]),
            "virtual_rules[0].table",
            "exactly one of table and type",
        ),
    ] {
        assert_error(
            &post(&s, g, bad(key, value)).await,
            422,
            "invalid_argument",
            Some(field),
            msg,
        );
    }
    // Not an option at all, or a scope keepalived does not know: the field, from the JSON.
    let r = post(
        &s,
        g,
        bad(
            "virtual_addresses",
            json!([{"address": "192.168.10.150", "scope": "galaxy"}]),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert!(
        r.body["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("virtual_addresses[0]"),
        "{}",
        r.body
    );
    assert!(r.body.to_string().contains("galaxy"), "{}", r.body);
    let r = post(
        &s,
        g,
        bad(
            "virtual_routes",
            json!([{"to": "10.1.0.0/16", "gateway": "10.0.0.1"}]),
        ),
    )
    .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert!(r.body.to_string().contains("gateway"), "{}", r.body);
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let s = TestServer::start().await;
    let r = post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "10.0.0.1", "port": 80}),
    )
    .await;
    let id = r.body["id"].as_i64().unwrap();
    let etag = r.etag.unwrap();
    assert_eq!(etag, "\"1\"");
    let path = s.url(&format!("/api/v1/virtual-servers/{id}"));

    let body = json!({"address": "10.0.0.1", "port": 80, "scheduler": "wrr"});
    let r = call(Method::PUT, &path, Some(body.clone()), Some(&etag)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));

    // The same precondition again is stale now.
    let r = call(
        Method::PUT,
        &path,
        Some(json!({"address": "10.0.0.1", "port": 80, "scheduler": "lc"})),
        Some(&etag),
    )
    .await;
    assert_error(
        &r,
        412,
        "failed_precondition",
        Some("If-Match"),
        "revision 2, not 1",
    );
    assert_eq!(
        get(&s, &format!("/api/v1/virtual-servers/{id}")).await.body["scheduler"],
        "wrr"
    );

    let r = call(Method::DELETE, &path, None, Some("\"1\"")).await;
    assert_eq!(r.status.as_u16(), 412);
    let r = call(Method::PUT, &path, Some(body.clone()), Some("banana")).await;
    assert_error(&r, 400, "bad_request", Some("If-Match"), "revision ETag");
    let r = call(
        Method::PUT,
        &path,
        Some(json!({"address": "10.0.0.1", "port": 80, "scheduler": "sh"})),
        Some("*"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(Method::DELETE, &path, None, Some("W/\"3\"")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn dry_run_shows_the_diff_and_commits_nothing() {
    let s = TestServer::start().await;
    let r = post(
        &s,
        "/api/v1/virtual-servers?dry_run=true",
        seed_virtual_server(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["revision"], 0);
    assert_eq!(r.body["changes"][0]["op"], "add");
    assert_eq!(r.body["changes"][0]["key"], "tcp 192.168.10.100:80");
    assert_eq!(get(&s, "/api/v1/virtual-servers").await.body, json!([]));

    // A whole config: dry run, then for real; both report the same changes.
    let cfg =
        json!({"virtual_servers": [seed_virtual_server()], "vrrp_groups": [seed_vrrp_group()]});
    let dry = call(
        Method::PUT,
        &s.url("/api/v1/config?dry_run=true"),
        Some(cfg.clone()),
        None,
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    let kinds: Vec<_> = dry.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["op"].clone(), c["kind"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (json!("add"), json!("virtual_server")),
            (json!("add"), json!("vrrp_group"))
        ]
    );
    assert_eq!(get(&s, "/api/v1/config").await.body["revision"], 0);
    let real = put(&s, "/api/v1/config", cfg.clone()).await;
    assert_eq!(real.body["revision"], 1);
    assert_eq!(real.body["dry_run"], false);
    assert_eq!(real.body["changes"], dry.body["changes"]);
    let before = get(&s, "/api/v1/config").await.body;

    // The same config again is a no-op: no new revision.
    let again = put(&s, "/api/v1/config", cfg.clone()).await;
    assert_eq!(again.body["revision"], 1);
    assert_eq!(again.body["changes"], json!([]));

    // An edit: ids survive, the diff names the fields.
    let mut edited = cfg.clone();
    edited["virtual_servers"][0]["scheduler"] = json!("wlc");
    edited["virtual_servers"][0]["real_servers"][1]["weight"] = json!(0);
    edited["vrrp_groups"][0]["nodes"][1]["priority"] = json!(80);
    let dry = call(
        Method::PUT,
        &s.url("/api/v1/config?dry_run=true"),
        Some(edited.clone()),
        None,
    )
    .await;
    let changes = dry.body["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "{}", dry.body);
    assert_eq!(changes[0]["kind"], "virtual_server");
    assert_eq!(
        changes[0]["fields"],
        json!([{"field": "scheduler", "from": "rr", "to": "wlc"}])
    );
    assert_eq!(changes[1]["kind"], "real_server");
    assert_eq!(
        changes[1]["key"],
        "tcp 192.168.10.100:80 -> 192.168.10.104:80"
    );
    assert_eq!(
        changes[1]["fields"],
        json!([{"field": "weight", "from": 1, "to": 0}])
    );
    assert_eq!(changes[2]["fields"][0]["field"], "nodes");
    let after_dry = get(&s, "/api/v1/config").await.body;
    assert_eq!(after_dry, before);
    let r = put(&s, "/api/v1/config", edited).await;
    assert_eq!(r.body["revision"], 2);
    let after = get(&s, "/api/v1/config").await.body;
    assert_eq!(
        after["virtual_servers"][0]["id"],
        before["virtual_servers"][0]["id"]
    );
    assert_eq!(
        after["virtual_servers"][0]["real_servers"][1]["id"],
        before["virtual_servers"][0]["real_servers"][1]["id"]
    );
    assert_eq!(
        after["vrrp_groups"][0]["id"],
        before["vrrp_groups"][0]["id"]
    );

    // An invalid whole config names the entity's place.
    let mut bad = cfg.clone();
    bad["virtual_servers"][0]["real_servers"][0]["address"] = json!("2001:db8::1");
    let r = put(&s, "/api/v1/config", bad).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("virtual_servers[0].real_servers[0].address"),
        "family",
    );
    let mut dup = cfg.clone();
    dup["virtual_servers"] = json!([seed_virtual_server(), seed_virtual_server()]);
    let r = put(&s, "/api/v1/config", dup).await;
    assert_error(
        &r,
        409,
        "already_exists",
        Some("virtual_servers[1].address"),
        "already exists",
    );
    assert_eq!(get(&s, "/api/v1/config").await.body["revision"], 2);

    // Dry-run delete.
    let id = after["virtual_servers"][0]["id"].as_i64().unwrap();
    let r = call(
        Method::DELETE,
        &s.url(&format!("/api/v1/virtual-servers/{id}?dry_run=true")),
        None,
        None,
    )
    .await;
    assert_eq!(r.body["changes"][0]["op"], "remove");
    assert_eq!(
        get(&s, &format!("/api/v1/virtual-servers/{id}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn config_survives_a_restart_exactly() {
    let mut s = TestServer::start().await;
    put(&s, "/api/v1/config", json!({"virtual_servers": [seed_virtual_server(),
        {"fwmark": 7, "family": "ipv6", "scheduler": "sh", "persistence_timeout_secs": 300, "persistence_granularity": 64,
         "one_packet": true, "scheduler_flags": ["sh-port", "sh-fallback"],
         "sorry_server": {"address": "2001:db8::99", "port": 8080}, "quorum": 2,
         "real_servers": [{"address": "2001:db8::10", "forwarding": "nat", "port": 8080, "inhibit_on_failure": true,
                           "upper_threshold": 100, "lower_threshold": 50,
                           "health_check": {"type": "http", "path": "/health", "expected_status": 204,
                                            "body_contains": "ok", "rise": 2, "fall": 3}},
                          {"address": "2001:db8::11", "forwarding": "nat", "port": 8080,
                           "health_check": {"type": "https", "tls_server_name": "www.example.org",
                                            "tls_ca_file": "/etc/ssl/certs/ca.pem",
                                            "urls": [{"path": "/a", "status_codes": ["200-299", "304"]},
                                            {"path": "/b", "digest": "9e107d9d372bb6826bd81d3542a419d6"}]}}]}],
        "vrrp_groups": [{"name": "VI_6", "vrid": 51, "version": 3, "advert_interval_ms": 10,
            "virtual_addresses": ["2001:db8::100/64", "2001:db8::101"], "preempt": false, "preempt_delay_ms": 3000,
            "unicast_peers": ["2001:db8::2"], "garp": {"count": 3, "repeat_delay_ms": 0, "refresh_interval_ms": null},
            "track_interfaces": ["eth1"],
            "track_interfaces_weighted": [{"interface": "eth2", "weight": -20}, {"interface": "eth3", "weight": 5}],
            "track_virtual_servers": [{"virtual_server": "tcp 192.168.10.100:80", "weight": -50}],
            "track_scripts": [{"name": "chk", "command": "/usr/local/bin/check 'a b'", "interval_ms": 2000,
                               "timeout_ms": 500, "weight": -30, "rise": 3, "fall": 2}],
            "notify": {"master": "/usr/local/bin/n master", "any": "/usr/local/bin/n", "timeout_ms": 3000},
            "nodes": [{"node": "lk01", "priority": 200, "interface": "eth1", "unicast_src": "2001:db8::1"}]}]})).await;
    let before = get(&s, "/api/v1/config").await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(before.body["revision"], 1, "{}", before.body);
    let g = &before.body["vrrp_groups"][0];
    assert_eq!(
        g["track_interfaces_weighted"][1],
        json!({"interface": "eth3", "weight": 5})
    );
    assert_eq!(g["track_virtual_servers"][0]["weight"], -50);
    assert_eq!(g["track_scripts"][0]["timeout_ms"], 500);
    assert_eq!(g["notify"]["timeout_ms"], 3000);
    assert_eq!(
        before.body["vrrp_groups"][0]["garp"]["refresh_interval_ms"],
        Value::Null
    );
    assert_eq!(
        (
            &before.body["virtual_servers"][1]["one_packet"],
            &before.body["virtual_servers"][1]["scheduler_flags"]
        ),
        (&json!(true), &json!(["sh-fallback", "sh-port"]))
    );
    assert_eq!(
        before.body["virtual_servers"][1]["real_servers"][1]["health_check"]["urls"][0],
        json!({"path": "/a", "status_codes": ["200-299", "304"]})
    );
    assert_eq!(
        before.body["virtual_servers"][1]["real_servers"][1]["health_check"]["tls_server_name"],
        "www.example.org"
    );
    s.restart().await;
    let after = get(&s, "/api/v1/config").await;
    assert_eq!(after.body, before.body);
    assert_eq!(after.etag, before.etag);
    // Ids continue after the restart instead of being reused.
    let r = post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "10.9.9.9", "port": 1}),
    )
    .await;
    let max_before = before.body["vrrp_groups"][0]["id"].as_i64().unwrap();
    assert!(r.body["id"].as_i64().unwrap() > max_before);
}

#[tokio::test]
async fn openapi_spec_is_served_and_checked_in() {
    let s = TestServer::start().await;
    let served = get(&s, "/api-docs/openapi.json").await.body;
    assert_eq!(served["openapi"], "3.1.0");
    for p in [
        "/api/v1/virtual-servers",
        "/api/v1/virtual-servers/{id}/real-servers/{rs_id}",
        "/api/v1/vrrp-groups/{id}",
        "/api/v1/config",
        "/api/v1/status",
        "/healthz",
    ] {
        assert!(served["paths"].get(p).is_some(), "spec lacks {p}");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let checked_in: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("openapi/openapi.json"))
            .expect("openapi/openapi.json is JSON");
    assert!(
        served == checked_in,
        "openapi/openapi.json differs from the served spec: run `cargo run -- openapi > openapi/openapi.json`"
    );

    // Swagger UI works offline (vendored assets).
    let r = reqwest::get(s.url("/docs/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("swagger-ui"));
    let r = reqwest::get(s.url("/docs/swagger-ui-bundle.js"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `/api/v1/vrrp-settings`: sync groups and strict mode are set, validated with errors naming
/// the field, survive a restart (the SQLite file), appear in the config document, and a
/// deleted VRRP group leaves its sync group; `garp.interval_ms` is stored with its group.
#[tokio::test]
async fn vrrp_settings_sync_groups_and_strict_mode() {
    let mut s = TestServer::start().await;
    let group = |name: &str, vrid: u64, vip: &str| {
        json!({"name": name, "vrid": vrid, "virtual_addresses": [vip],
            "garp": {"interval_ms": 20, "na_interval_ms": 30},
            "nodes": [{"node": "lk01", "priority": 100, "interface": "eth0"}]})
    };
    for (n, v, a) in [
        ("VI_1", 1, "192.168.10.100"),
        ("VI_2", 2, "192.168.10.101"),
        ("VI_3", 3, "192.168.10.102"),
    ] {
        let r = post(&s, "/api/v1/vrrp-groups", group(n, v, a)).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    }
    let r = get(&s, "/api/v1/vrrp-settings").await;
    assert_eq!(r.body, json!({"strict": false}));
    // A member that does not exist, one in two sync groups, a duplicate name.
    let r = put(
        &s,
        "/api/v1/vrrp-settings",
        json!({"sync_groups": [{"name": "VG_1", "groups": ["VI_1", "VI_9"]}]}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("sync_groups[0].groups[1]"),
        "no VRRP group named `VI_9`",
    );
    assert_eq!(r.body["error"]["rule"], "sync_group_member");
    let r = put(&s, "/api/v1/vrrp-settings", json!({"sync_groups": [
        {"name": "VG_1", "groups": ["VI_1", "VI_2"]}, {"name": "VG_2", "groups": ["VI_2", "VI_3"]}]})).await;
    assert_error(
        &r,
        409,
        "already_exists",
        Some("sync_groups[1].groups[0]"),
        "already in sync group VG_1",
    );
    let r = put(
        &s,
        "/api/v1/vrrp-settings",
        json!({"sync_groups": [{"name": "VG_1", "groups": []}]}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    let r = put(&s, "/api/v1/vrrp-settings", json!({"strict": true, "sync_groups": [
        {"name": "VG_1", "groups": ["VI_1", "VI_2"], "notify": {"master": "/usr/local/bin/vg master"}}]})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.body["sync_groups"][0]["groups"], json!(["VI_1", "VI_2"]));
    // Strict mode now refuses what keepalived's vrrp_strict forbids, naming the field.
    let r = post(&s, "/api/v1/vrrp-groups", {
        let mut g = group("VI_4", 4, "192.168.10.103");
        g["auth_pass"] = json!("secret");
        g
    })
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("auth_pass"),
        "vrrp_strict",
    );
    assert_eq!(r.body["error"]["rule"], "vrrp_strict");
    let r = post(&s, "/api/v1/vrrp-groups", {
        let mut g = group("VI_4", 4, "192.168.10.103");
        g["preempt_delay_ms"] = json!(1000);
        g
    })
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("preempt_delay_ms"),
        "preempt delay",
    );
    // A group that breaks it already: turning strict on is refused, naming the group's field.
    let r = put(&s, "/api/v1/vrrp-settings", json!({"strict": false})).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = post(&s, "/api/v1/vrrp-groups", {
        let mut g = group("VI_4", 4, "192.168.10.103");
        g["unicast_peers"] = json!(["192.168.10.2"]);
        g
    })
    .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    let r = put(&s, "/api/v1/vrrp-settings", json!({"strict": true})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("vrrp_groups[3].unicast_peers"),
        "unicast",
    );
    let r = put(
        &s,
        "/api/v1/vrrp-settings",
        json!({"strict": false, "sync_groups": [
        {"name": "VG_1", "groups": ["VI_1", "VI_2"]}]}),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);

    let before = get(&s, "/api/v1/config").await;
    assert_eq!(
        before.body["vrrp_settings"]["sync_groups"][0]["name"],
        "VG_1"
    );
    assert_eq!(before.body["vrrp_groups"][0]["garp"]["interval_ms"], 20);
    assert_eq!(before.body["vrrp_groups"][0]["garp"]["na_interval_ms"], 30);
    s.restart().await;
    let after = get(&s, "/api/v1/config").await;
    assert_eq!(after.body, before.body);

    // Deleting VI_2 takes it out of VG_1.
    let id = after.body["vrrp_groups"][1]["id"].as_i64().unwrap();
    let r = delete(&s, &format!("/api/v1/vrrp-groups/{id}")).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let r = get(&s, "/api/v1/vrrp-settings").await;
    assert_eq!(r.body["sync_groups"][0]["groups"], json!(["VI_1"]));
}

/// keepalived's `use_vmac` over HTTP: written, read back, kept across a restart; a bad name
/// or a field without `use_vmac` is a 422 naming the field; the spec states the name's limits.
#[tokio::test]
async fn vrrp_virtual_mac_fields_round_trip_and_are_validated() {
    let mut s = TestServer::start().await;
    let group = |extra: Value| {
        let mut g = json!({"name": "VI_1", "vrid": 51, "virtual_addresses": ["192.168.10.100"],
            "nodes": [{"node": "lk01", "priority": 100, "interface": "eth0"}]});
        if let (Some(g), Value::Object(e)) = (g.as_object_mut(), extra) {
            g.extend(e);
        }
        g
    };
    let r = post(
        &s,
        "/api/v1/vrrp-groups",
        group(json!({"use_vmac": true, "vmac_name": "vmac51", "vmac_xmit_base": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/vrrp-groups/{id}");
    let g = get(&s, &path).await.body;
    assert_eq!(
        (&g["use_vmac"], &g["vmac_name"], &g["vmac_xmit_base"]),
        (&json!(true), &json!("vmac51"), &json!(true))
    );
    s.restart().await;
    assert_eq!(get(&s, &path).await.body, g);
    for (extra, field, msg) in [
        (
            json!({"use_vmac": true, "vmac_name": "a-name-far-too-long"}),
            "vmac_name",
            "interface name",
        ),
        (
            json!({"use_vmac": true, "vmac_name": "bad/name"}),
            "vmac_name",
            "interface name",
        ),
        (json!({"vmac_name": "vm"}), "vmac_name", "use_vmac"),
        (
            json!({"vmac_xmit_base": true}),
            "vmac_xmit_base",
            "use_vmac",
        ),
        (
            json!({"use_vmac": true, "vmac_name": "eth0"}),
            "nodes[0].interface",
            "vmac_name",
        ),
        (
            json!({"use_vmac": true, "unicast_peers": ["192.168.10.102"]}),
            "vmac_xmit_base",
            "unicast",
        ),
    ] {
        let mut g = group(extra);
        g["name"] = json!("VI_2");
        g["vrid"] = json!(52);
        g["virtual_addresses"] = json!(["192.168.10.200"]);
        let r = post(&s, "/api/v1/vrrp-groups", g).await;
        assert_error(&r, 422, "invalid_argument", Some(field), msg);
    }
    // An IPv6 group takes a virtual MAC too (00:00:5e:00:02:VRID); its default name vrrp.53.
    let mut g = group(json!({"use_vmac": true}));
    g["name"] = json!("VI_6");
    g["vrid"] = json!(53);
    g["version"] = json!(3);
    g["virtual_addresses"] = json!(["2001:db8:10::100/64"]);
    let r = post(&s, "/api/v1/vrrp-groups", g).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Two groups cannot share one macvlan: an IPv4 group of VRID 53 needs a name of its own
    // (a conflict with the other group, 409).
    let mut g = group(json!({"use_vmac": true}));
    g["name"] = json!("VI_4");
    g["vrid"] = json!(53);
    g["virtual_addresses"] = json!(["192.168.10.201"]);
    let r = post(&s, "/api/v1/vrrp-groups", g).await;
    assert_error(&r, 409, "already_exists", Some("vmac_name"), "vrrp.53");
    let spec = get(&s, "/api-docs/openapi.json").await.body;
    let p = &spec["components"]["schemas"]["VrrpGroup"]["properties"];
    assert_eq!(p["vmac_name"]["maxLength"], 15, "{}", p["vmac_name"]);
    assert_eq!(p["use_vmac"]["type"], "boolean", "{}", p["use_vmac"]);
}
