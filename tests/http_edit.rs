//! The edit path over HTTP: PATCH (JSON Merge Patch) on every resource, GET output that PUT
//! takes back with no changes, write-only `auth_pass`, and boolean query strings.

#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{seed_virtual_server, seed_vrrp_group, TestServer};

struct Resp {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn send(method: Method, url: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
    let client = reqwest::Client::new();
    let mut rb = client.request(method, url);
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp { status, etag, body }
}

async fn get(s: &TestServer, path: &str) -> Resp {
    send(Method::GET, &s.url(path), None, &[]).await
}
async fn post(s: &TestServer, path: &str, body: Value) -> Resp {
    send(Method::POST, &s.url(path), Some(body), &[]).await
}
async fn put(s: &TestServer, path: &str, body: Value) -> Resp {
    send(Method::PUT, &s.url(path), Some(body), &[]).await
}
async fn patch(s: &TestServer, path: &str, body: Value) -> Resp {
    send(
        Method::PATCH,
        &s.url(path),
        Some(body),
        &[("Content-Type", "application/merge-patch+json")],
    )
    .await
}

fn assert_error(r: &Resp, status: u16, code: &str, field: Option<&str>, msg_part: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    assert_eq!(r.body["error"]["code"], code, "body: {}", r.body);
    match field {
        Some(f) => assert_eq!(r.body["error"]["field"], f, "body: {}", r.body),
        None => assert!(r.body["error"].get("field").is_none(), "body: {}", r.body),
    }
    let m = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(msg_part), "message {m:?} lacks {msg_part:?}");
}

fn changes(r: &Resp) -> usize {
    r.body["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {}", r.body))
        .len()
}

async fn health_of(s: &TestServer, rs_id: i64) -> Option<Value> {
    let st = get(s, "/api/v1/status").await.body;
    st["health"]
        .as_array()?
        .iter()
        .find(|h| h["real_server_id"] == rs_id)
        .cloned()
}

/// The first complaint: a weight change must not delete the health check, nor reset
/// what the checker has learnt.
#[tokio::test]
async fn patch_weight_keeps_the_health_check_and_its_state() {
    let s = TestServer::start().await;
    // A port nothing listens on: the check fails and the server goes down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "127.0.0.1", "port": port, "forwarding": "nat", "delay_loop_ms": 100,
               "real_servers": [{"address": "127.0.0.1", "weight": 3,
                   "health_check": {"type": "tcp", "connect_timeout_ms": 100, "retry": 0,
                                    "delay_before_retry_ms": 10}}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (vs, rs) = (
        r.body["id"].as_i64().unwrap(),
        r.body["real_servers"][0]["id"].as_i64().unwrap(),
    );
    let check = r.body["real_servers"][0]["health_check"].clone();

    let deadline = Instant::now() + Duration::from_secs(10);
    let before = loop {
        if let Some(h) = health_of(&s, rs).await {
            if h["state"] == "down" {
                break h;
            }
        }
        assert!(Instant::now() < deadline, "the check never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let path = format!("/api/v1/virtual-servers/{vs}/real-servers/{rs}");
    let r = patch(&s, &path, json!({"weight": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["weight"], 7);
    assert_eq!(r.body["health_check"], check, "the check is kept as it was");
    let stored = get(&s, &path).await.body;
    assert_eq!(
        (stored["weight"].clone(), stored["health_check"].clone()),
        (json!(7), check)
    );

    // Several check rounds later the checker still reports the state it had: the same
    // transition, not a restart from "up".
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = health_of(&s, rs).await.expect("still checked");
    assert_eq!(after["state"], "down");
    assert_eq!(
        after["since_unix_ms"], before["since_unix_ms"],
        "{before} vs {after}"
    );
    assert_eq!(after["transitions"], before["transitions"]);
    assert!(
        after["checks"].as_u64() > before["checks"].as_u64(),
        "still checking"
    );

    // PUT is a full replacement: the same body without the check removes it.
    let r = put(&s, &path, json!({"address": "127.0.0.1", "weight": 7})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("health_check").is_none(), "{}", r.body);
}

#[tokio::test]
async fn patch_virtual_server_changes_only_what_it_names() {
    let s = TestServer::start().await;
    let vs = post(&s, "/api/v1/virtual-servers", seed_virtual_server())
        .await
        .body;
    let id = vs["id"].as_i64().unwrap();
    let path = format!("/api/v1/virtual-servers/{id}");

    // Dry run (with a 1 for true): the diff names exactly the one field.
    let r = patch(
        &s,
        &format!("{path}?dry_run=1"),
        json!({"scheduler": "wlc"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(
        r.body["changes"],
        json!([{"op": "update", "kind": "virtual_server", "id": id,
                "key": "tcp 192.168.10.100:80",
                "fields": [{"field": "scheduler", "from": "rr", "to": "wlc"}]}])
    );
    assert_eq!(get(&s, &path).await.body, vs, "a dry run commits nothing");

    let r = patch(
        &s,
        &path,
        json!({"scheduler": "wlc", "persistence_timeout_secs": 300}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut want = vs.clone();
    want["scheduler"] = "wlc".into();
    want["persistence_timeout_secs"] = 300.into();
    assert_eq!(
        r.body, want,
        "everything else, real servers included, is as it was"
    );
    assert_eq!(r.etag.as_deref(), Some("\"2\""));

    // null resets a field to its default.
    let r = patch(
        &s,
        &path,
        json!({"persistence_timeout_secs": null, "delay_loop_ms": null}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("persistence_timeout_secs").is_none());
    assert_eq!(r.body["delay_loop_ms"], 60000);

    // real_servers in a patch replaces the list (RFC 7396: arrays are replaced whole); the
    // server with the same address and port keeps its id.
    let rs0 = vs["real_servers"][0].clone();
    let r = patch(&s, &path, json!({"real_servers": [rs0.clone()]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["real_servers"], json!([rs0]));

    // Plain JSON is read the same way as merge-patch+json.
    let r = send(
        Method::PATCH,
        &s.url(&path),
        Some(json!({"name": "web"})),
        &[("Content-Type", "application/json")],
    )
    .await;
    assert_eq!(
        (r.status, r.body["name"].clone()),
        (StatusCode::OK, json!("web"))
    );

    // Same validation, preconditions and error shape as PUT.
    let r = patch(&s, &path, json!({"scheduler": "fastest"})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("scheduler"),
        "unknown variant `fastest`",
    );
    let r = patch(&s, &path, json!({"persistence_granularity": 40})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("persistence_granularity"),
        "",
    );
    let r = send(
        Method::PATCH,
        &s.url(&path),
        Some(json!({"name": "x"})),
        &[("If-Match", "\"1\"")],
    )
    .await;
    assert_error(&r, 412, "failed_precondition", Some("If-Match"), "not 1");
    let r = patch(&s, &path, json!({"name": "x", "revision": 1})).await;
    assert_error(&r, 412, "failed_precondition", Some("If-Match"), "not 1");
    let r = patch(&s, &path, json!([{"op": "replace"}])).await;
    assert_error(&r, 422, "invalid_argument", None, "must be a JSON object");
    let r = send(
        Method::PATCH,
        &s.url(&path),
        Some(json!([{"op": "replace", "path": "/name", "value": "x"}])),
        &[("Content-Type", "application/json-patch+json")],
    )
    .await;
    assert_error(
        &r,
        415,
        "unsupported_media_type",
        Some("Content-Type"),
        "RFC 7396",
    );
    let r = send(Method::PATCH, &s.url(&path), None, &[]).await;
    assert_error(&r, 400, "bad_request", Some("body"), "malformed JSON");
    let r = patch(&s, "/api/v1/virtual-servers/999", json!({"name": "x"})).await;
    assert_error(&r, 404, "not_found", None, "virtual server 999");
    // Another service's identity: 409, and nothing changed.
    let other = post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "192.168.10.100", "port": 443}),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED);
    let other_path = format!("/api/v1/virtual-servers/{}", other.body["id"]);
    let r = patch(&s, &other_path, json!({"port": 80})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(get(&s, &other_path).await.body, other.body);
}

#[tokio::test]
async fn patch_real_server_and_its_errors() {
    let s = TestServer::start().await;
    let vs = post(&s, "/api/v1/virtual-servers", seed_virtual_server())
        .await
        .body;
    let id = vs["id"].as_i64().unwrap();
    let rs = vs["real_servers"][1].clone();
    let path = format!("/api/v1/virtual-servers/{id}/real-servers/{}", rs["id"]);

    let r = patch(&s, &path, json!({"health_check": {"retry": 5, "rise": 2}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut want = rs.clone();
    want["health_check"]["retry"] = 5.into();
    want["health_check"]["rise"] = 2.into();
    assert_eq!(r.body, want, "nested objects merge member by member");

    let r = patch(&s, &path, json!({"weight": 70000})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("weight"),
        "weight must be in 0..=65535, got 70000",
    );
    let r = patch(&s, &path, json!({"address": "2001:db8::1"})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("address"),
        "address family",
    );
    let r = patch(
        &s,
        &format!("/api/v1/virtual-servers/{id}/real-servers/999"),
        json!({}),
    )
    .await;
    assert_error(&r, 404, "not_found", None, "real server 999");
    let r = patch(&s, &format!("{path}?dry_run=maybe"), json!({})).await;
    assert_error(
        &r,
        400,
        "bad_request",
        Some("query"),
        "expected true, false, 1 or 0",
    );

    // The health check goes away only when asked to.
    let r = patch(&s, &path, json!({"health_check": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.get("health_check").is_none());
    // The other real server was never touched.
    let r = get(&s, &format!("/api/v1/virtual-servers/{id}")).await;
    assert_eq!(r.body["real_servers"][0], vs["real_servers"][0]);
}

#[tokio::test]
async fn patch_vrrp_group_and_one_node_entry() {
    let s = TestServer::start().await;
    let g = post(&s, "/api/v1/vrrp-groups", seed_vrrp_group())
        .await
        .body;
    let id = g["id"].as_i64().unwrap();
    let path = format!("/api/v1/vrrp-groups/{id}");

    let r = patch(&s, &path, json!({"preempt": false, "garp": {"count": 2}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut want = g.clone();
    want["preempt"] = false.into();
    want["garp"]["count"] = 2.into();
    assert_eq!(r.body, want);

    // One director's entry.
    let node = format!("{path}/nodes/lk02");
    let r = get(&s, &node).await;
    assert_eq!(r.body, g["nodes"][1]);
    let r = patch(&s, &format!("{node}?dry_run=true"), json!({"priority": 50})).await;
    assert_eq!(
        r.body["changes"][0]["fields"],
        json!([{"field": "nodes", "from": g["nodes"], "to": [g["nodes"][0],
            {"node": "lk02", "priority": 50, "interface": "eth0", "initial_state": "backup"}]}])
    );
    let r = patch(&s, &node, json!({"priority": 50})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["priority"], 50);
    let r = get(&s, &path).await;
    assert_eq!(
        r.body["nodes"][0], g["nodes"][0],
        "lk01's entry is untouched"
    );
    assert_eq!(r.body["nodes"][1]["priority"], 50);
    let r = patch(&s, &node, json!({"priority": 0})).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("priority"),
        "priority must be in 1..=255",
    );
    let r = patch(&s, &format!("{path}/nodes/lk09"), json!({"priority": 5})).await;
    assert_error(&r, 404, "not_found", None, "node \"lk09\"");

    // PUT adds or replaces an entry; the name in the body must be the path's.
    let r = put(
        &s,
        &format!("{path}/nodes/lk03"),
        json!({"priority": 80, "interface": "eth1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"node": "lk03", "priority": 80, "interface": "eth1", "initial_state": "backup"})
    );
    let r = put(
        &s,
        &format!("{path}/nodes/lk03"),
        json!({"node": "lk04", "priority": 80, "interface": "eth1"}),
    )
    .await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("node"),
        "must be the node name of the path",
    );
    let r = send(
        Method::DELETE,
        &s.url(&format!("{path}/nodes/lk03")),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        get(&s, &path).await.body["nodes"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn auth_pass_is_write_only() {
    let s = TestServer::start().await;
    let r = post(&s, "/api/v1/vrrp-groups", seed_vrrp_group()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/vrrp-groups/{id}");
    for (what, v) in [
        ("create", r.body.clone()),
        ("get", get(&s, &path).await.body),
        ("list", get(&s, "/api/v1/vrrp-groups").await.body[0].clone()),
        (
            "config",
            get(&s, "/api/v1/config").await.body["vrrp_groups"][0].clone(),
        ),
    ] {
        assert!(v.get("auth_pass").is_none(), "{what}: {v}");
        assert_eq!(v["auth_pass_set"], true, "{what}: {v}");
    }
    let export = |s: &TestServer| {
        let u = s.url("/api/v1/export/keepalived?node_name=lk01");
        async move { reqwest::get(u).await.unwrap().text().await.unwrap() }
    };
    assert!(
        export(&s).await.contains("auth_pass 1234567"),
        "the export has it"
    );

    // GET -> PUT keeps it (the body has auth_pass_set, not auth_pass): no change at all.
    let g = get(&s, &path).await.body;
    let r = put(&s, &path, g.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"1\""), "a no-op");
    assert!(export(&s).await.contains("auth_pass 1234567"));

    // A change says that it changed, never what it was.
    let r = patch(
        &s,
        &format!("{path}?dry_run=true"),
        json!({"auth_pass": "secret2"}),
    )
    .await;
    assert_eq!(
        r.body["changes"][0]["fields"],
        json!([{"field": "auth_pass", "from": "(secret)", "to": "(secret)"}])
    );
    assert!(!r.body.to_string().contains("1234567"), "{}", r.body);

    // PATCH null clears it; so does PUT with "".
    let r = patch(&s, &path, json!({"auth_pass": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["auth_pass_set"], false);
    assert!(!export(&s).await.contains("auth_pass"));
    let r = patch(&s, &path, json!({"auth_pass": "abc"})).await;
    assert_eq!(r.body["auth_pass_set"], true);
    let mut g = get(&s, &path).await.body;
    g["auth_pass"] = "".into();
    let r = put(&s, &path, g).await;
    assert_eq!(r.body["auth_pass_set"], false, "{}", r.body);

    // The spec says so.
    let spec = get(&s, "/api-docs/openapi.json").await.body;
    let props = &spec["components"]["schemas"]["VrrpGroup"]["properties"];
    assert_eq!(
        props["auth_pass"]["writeOnly"], true,
        "{}",
        props["auth_pass"]
    );
    assert_eq!(props["auth_pass_set"]["readOnly"], true);
    let export_doc = spec["paths"]["/api/v1/export/keepalived"]["get"].to_string();
    assert!(export_doc.contains("secret"), "{export_doc}");
}

#[tokio::test]
async fn every_get_is_a_put_body_that_changes_nothing() {
    let s = TestServer::start().await;
    let vs = post(&s, "/api/v1/virtual-servers", seed_virtual_server())
        .await
        .body;
    post(&s, "/api/v1/vrrp-groups", seed_vrrp_group()).await;
    let vs_path = format!("/api/v1/virtual-servers/{}", vs["id"]);
    let rs_path = format!("{vs_path}/real-servers/{}", vs["real_servers"][0]["id"]);
    let g_path = "/api/v1/vrrp-groups";

    let cfg = get(&s, "/api/v1/config").await.body;
    assert_eq!(cfg["revision"], 2);
    let r = put(&s, "/api/v1/config", cfg.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((changes(&r), r.body["revision"].clone()), (0, json!(2)));

    for path in [vs_path.clone(), rs_path.clone()] {
        let body = get(&s, &path).await.body;
        let r = put(&s, &path, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert_eq!(r.body, body, "{path}");
        assert_eq!(
            r.etag.as_deref(),
            Some("\"2\""),
            "{path}: no change, no new revision"
        );
    }
    let g = get(&s, g_path).await.body[0].clone();
    let r = put(&s, &format!("{g_path}/{}", g["id"]), g.clone()).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, g));
    assert_eq!(r.etag.as_deref(), Some("\"2\""));

    // A stale revision in the body is a 412, exactly like a stale If-Match.
    post(
        &s,
        "/api/v1/virtual-servers",
        json!({"address": "10.0.0.1", "port": 53, "protocol": "udp"}),
    )
    .await;
    let r = put(&s, "/api/v1/config?dry_run=true", cfg.clone()).await;
    assert_error(
        &r,
        412,
        "failed_precondition",
        Some("If-Match"),
        "revision 3, not 2",
    );
    let r = send(
        Method::PUT,
        &s.url("/api/v1/config"),
        Some(cfg.clone()),
        &[("If-Match", "\"3\"")],
    )
    .await;
    assert_error(
        &r,
        412,
        "failed_precondition",
        Some("If-Match"),
        "revision 3, not 2",
    );
    let mut bad = cfg.clone();
    bad["revision"] = "two".into();
    let r = put(&s, "/api/v1/config", bad).await;
    assert_error(
        &r,
        422,
        "invalid_argument",
        Some("revision"),
        "unsigned integer",
    );
    // Without a revision it is a plain replacement (the new service goes).
    let mut plain = cfg.clone();
    plain.as_object_mut().unwrap().remove("revision");
    let r = put(&s, "/api/v1/config?dry_run=1", plain).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["changes"][0]["op"], "remove");
}

/// A small deterministic PRNG (xorshift64*), so a failure names its seed and repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn random_health_check(r: &mut Rng) -> Value {
    let mut hc = json!({"type": r.pick(&["tcp", "http"])});
    if r.chance() {
        hc["connect_port"] = (1 + r.below(65535)).into();
    }
    if r.chance() {
        hc["connect_timeout_ms"] = (1 + r.below(10_000)).into();
    }
    if r.chance() {
        hc["retry"] = r.below(5).into();
    }
    if r.chance() {
        hc["rise"] = (1 + r.below(5)).into();
    }
    if hc["type"] == "http" && r.chance() {
        hc["path"] = "/health".into();
        hc["expected_status"] = 204.into();
    }
    hc
}

fn random_config(r: &mut Rng) -> Value {
    let mut vss = Vec::new();
    let nvs = r.below(4);
    for i in 0..nvs {
        let v6 = r.chance();
        let mut vs = if r.below(4) == 0 {
            json!({"fwmark": 100 + i, "family": if v6 { "ipv6" } else { "ipv4" }})
        } else {
            let address = if v6 {
                format!("2001:db8::{}", i + 1)
            } else {
                format!("10.1.0.{}", i + 1)
            };
            json!({"address": address, "port": 1 + r.below(65535),
                   "protocol": r.pick(&["tcp", "udp", "sctp"])})
        };
        let fwd = r.pick(&["dr", "nat", "tun"]);
        vs["scheduler"] = r
            .pick(&["rr", "wrr", "lc", "wlc", "sh", "mh", "twos"])
            .into();
        vs["forwarding"] = fwd.into();
        if r.chance() {
            vs["name"] = format!("svc-{i}").into();
        }
        if r.chance() {
            vs["persistence_timeout_secs"] = (1 + r.below(3600)).into();
        }
        if r.chance() {
            vs["delay_loop_ms"] = (10 + r.below(100_000)).into();
        }
        if r.chance() {
            vs["quorum"] = r.below(10).into();
        }
        let mut rss = Vec::new();
        for j in 0..r.below(4) {
            let address = if v6 {
                format!("2001:db8:1::{}", j + 1)
            } else {
                format!("10.2.{i}.{}", j + 1)
            };
            let mut rs = json!({"address": address, "weight": r.below(65536)});
            // dr/tun cannot change the port; nat may.
            if fwd == "nat" && vs.get("port").is_some() && r.chance() {
                rs["port"] = (1 + r.below(65535)).into();
            }
            if r.chance() {
                rs["inhibit_on_failure"] = true.into();
            }
            if r.chance() {
                rs["upper_threshold"] = r.below(1000).into();
            }
            if r.chance() {
                rs["health_check"] = random_health_check(r);
            }
            rss.push(rs);
        }
        vs["real_servers"] = Value::Array(rss);
        vss.push(vs);
    }
    let mut groups = Vec::new();
    for i in 0..r.below(3) {
        let v3 = r.chance();
        let mut g = json!({"name": format!("VI_{i}"), "vrid": i + 1, "version": if v3 { 3 } else { 2 },
            "virtual_addresses": [format!("192.168.{i}.100/24")],
            "nodes": [{"node": "lk01", "priority": 1 + r.below(254), "interface": "eth0",
                       "initial_state": r.pick(&["master", "backup"])}]});
        if !v3 && r.chance() {
            g["auth_pass"] = format!("pw{}", r.below(1000)).into();
        }
        if r.chance() {
            g["preempt"] = false.into();
        }
        if r.chance() {
            g["garp"] = json!({"count": r.below(10)});
        }
        groups.push(g);
    }
    json!({"virtual_servers": vss, "vrrp_groups": groups})
}

/// Property: for random configurations, PUT it, then GET /config and PUT that back: zero
/// changes, the same revision, and the same document.
#[tokio::test]
async fn config_round_trip_property() {
    let s = TestServer::start().await;
    let mut rng = Rng(0x5eed_1bd0_0000_0018);
    let mut applied = 0;
    for case in 0..40 {
        let seed = rng.next();
        let mut r = Rng(seed | 1);
        let cfg = random_config(&mut r);
        let w = put(&s, "/api/v1/config", cfg.clone()).await;
        if w.status != StatusCode::OK {
            // The generator may combine values validation refuses (that is a 422 naming the
            // field, never a 5xx); those cases say nothing about the round trip.
            assert_eq!(
                w.status.as_u16(),
                422,
                "case {case} seed {seed:#x}: {} for {cfg}",
                w.body
            );
            continue;
        }
        applied += 1;
        let got = get(&s, "/api/v1/config").await.body;
        let back = put(&s, "/api/v1/config", got.clone()).await;
        assert_eq!(
            back.status,
            StatusCode::OK,
            "case {case} seed {seed:#x}: {}",
            back.body
        );
        assert_eq!(
            changes(&back),
            0,
            "case {case} seed {seed:#x}: {} for {got}",
            back.body
        );
        assert_eq!(back.body["revision"], got["revision"]);
        assert_eq!(
            get(&s, "/api/v1/config").await.body,
            got,
            "case {case} seed {seed:#x}"
        );
    }
    eprintln!("{applied} of 40 random configurations round-tripped");
    assert!(
        applied >= 20,
        "only {applied} of 40 random configs were valid: the generator is off"
    );
}

/// The spec lists the error answers of every write (the documented shape, ErrorBody), so a
/// client generated from it knows them.
#[tokio::test]
async fn every_write_documents_its_errors() {
    let s = TestServer::start().await;
    let spec = get(&s, "/api-docs/openapi.json").await.body;
    let mut writes = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let takes_dry_run = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "dry_run");
            if !takes_dry_run || path.contains("import") {
                continue;
            }
            writes += 1;
            for code in ["400", "412"] {
                let r = &op["responses"][code];
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} does not document {code}"
                );
            }
            if method != "delete" {
                assert!(op["responses"].get("422").is_some(), "{method} {path}: 422");
            }
            if method == "patch" {
                assert!(op["responses"].get("415").is_some(), "{method} {path}: 415");
            }
        }
    }
    // POST/PUT/PATCH/DELETE of the resources, the node entries, the config, the IPVS
    // timeouts (PUT, PATCH), the connection sync (PUT, DELETE), the VRRP settings (PUT) and
    // re-applying a conflict record.
    assert_eq!(writes, 22);
}
