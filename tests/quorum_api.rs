//! The quorum fields of a virtual server (`hysteresis`, `quorum_up`, `quorum_down`, `alpha`,
//! `omega`) through the HTTP API (with its refusals), SQLite across a restart, and gRPC
//! (Get, and Update with a FieldMask naming them).

#[path = "support/server.rs"]
mod support;

use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use prost_types::FieldMask;
use serde_json::{json, Value};
use support::{seed_virtual_server, TestServer};

async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(s: &TestServer, path: &str) -> Value {
    reqwest::get(s.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn with_quorum() -> Value {
    let mut vs = seed_virtual_server();
    let o = vs.as_object_mut().unwrap();
    o.insert("quorum".into(), json!(2));
    o.insert("hysteresis".into(), json!(1));
    o.insert(
        "quorum_up".into(),
        json!("/usr/local/bin/notify 'pool web' up"),
    );
    o.insert("quorum_down".into(), json!("/usr/local/bin/notify down"));
    o.insert("alpha".into(), json!(true));
    o.insert("omega".into(), json!(true));
    vs
}

#[tokio::test]
async fn quorum_fields_round_trip_over_http_and_survive_a_restart() {
    let mut s = TestServer::start().await;
    let (st, vs) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/virtual-servers",
        with_quorum(),
    )
    .await;
    assert_eq!(st, 201, "{vs}");
    for (k, v) in [
        ("hysteresis", json!(1)),
        ("quorum_up", json!("/usr/local/bin/notify 'pool web' up")),
        ("quorum_down", json!("/usr/local/bin/notify down")),
        ("alpha", json!(true)),
        ("omega", json!(true)),
    ] {
        assert_eq!(vs[k], v, "{k} in {vs}");
    }
    let id = vs["id"].as_i64().unwrap();
    let before = get(&s, &format!("/api/v1/virtual-servers/{id}")).await;
    assert_eq!(before, vs);
    s.restart().await;
    assert_eq!(
        get(&s, &format!("/api/v1/virtual-servers/{id}")).await,
        before
    );

    // Defaults are left out of the document.
    let (st, plain) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/virtual-servers",
        json!({"address": "10.9.9.9", "port": 1}),
    )
    .await;
    assert_eq!(st, 201);
    for k in ["hysteresis", "quorum_up", "quorum_down", "alpha", "omega"] {
        assert!(plain.get(k).is_none(), "{k} in {plain}");
    }
}

#[tokio::test]
async fn bad_quorum_fields_are_refused_naming_the_field_and_nothing_is_written() {
    let s = TestServer::start().await;
    let bad = [
        ("hysteresis", json!(2), "must be less than the quorum (2)"),
        (
            "quorum_up",
            json!("notify up"),
            "must be an absolute command path",
        ),
        ("quorum_down", json!(""), "must be an absolute command path"),
        (
            "quorum_up",
            json!("/bin/echo \"x\""),
            "must not contain `\"`",
        ),
        (
            "quorum_down",
            json!("/bin/echo\nx"),
            "must not contain `\"` or control",
        ),
    ];
    for (field, value, message) in bad {
        let mut vs = with_quorum();
        vs[field] = value;
        let (st, body) = send(&s, reqwest::Method::POST, "/api/v1/virtual-servers", vs).await;
        assert_eq!(st, 422, "{field}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    let (st, body) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/virtual-servers",
        json!({"address": "10.9.9.9", "port": 1, "alpha": "yes"}),
    )
    .await;
    assert!(st == 400 || st == 422, "{st} {body}");
    let cfg = get(&s, "/api/v1/config").await;
    assert_eq!(cfg["virtual_servers"], json!([]), "{cfg}");
}

#[tokio::test]
async fn grpc_get_and_update_with_a_mask_of_the_quorum_fields() {
    let s = TestServer::start().await;
    let (st, vs) = send(
        &s,
        reqwest::Method::POST,
        "/api/v1/virtual-servers",
        with_quorum(),
    )
    .await;
    assert_eq!(st, 201, "{vs}");
    let id = vs["id"].as_i64().unwrap();
    let addr = s.running.as_ref().unwrap().grpc_addr;
    let mut c = LbdClient::connect(format!("http://{addr}")).await.unwrap();
    let got = c
        .get_virtual_server(pb::GetVirtualServerRequest { id })
        .await
        .unwrap()
        .into_inner()
        .virtual_server
        .unwrap();
    assert_eq!(got.hysteresis, 1);
    assert_eq!(
        got.quorum_up.as_deref(),
        Some("/usr/local/bin/notify 'pool web' up")
    );
    assert_eq!(
        got.quorum_down.as_deref(),
        Some("/usr/local/bin/notify down")
    );
    assert!(got.alpha && got.omega);

    // The mask names them: alpha and omega off, hysteresis 0, quorum_up replaced,
    // quorum_down removed; everything else kept.
    let w = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id,
            virtual_server: Some(pb::VirtualServer {
                quorum_up: Some("/usr/bin/logger up".into()),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: ["alpha", "omega", "hysteresis", "quorum_up", "quorum_down"]
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            }),
            options: None,
        })
        .await
        .unwrap()
        .into_inner()
        .virtual_server
        .unwrap();
    let mut want = got.clone();
    want.alpha = false;
    want.omega = false;
    want.hysteresis = 0;
    want.quorum_up = Some("/usr/bin/logger up".into());
    want.quorum_down = None;
    assert_eq!(w, want);

    // And set again through the mask.
    let w = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id,
            virtual_server: Some(pb::VirtualServer {
                alpha: true,
                hysteresis: 1,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["alpha".into(), "hysteresis".into()],
            }),
            options: None,
        })
        .await
        .unwrap()
        .into_inner()
        .virtual_server
        .unwrap();
    assert!(w.alpha && w.hysteresis == 1 && !w.omega);
    let http = get(&s, &format!("/api/v1/virtual-servers/{id}")).await;
    assert_eq!(
        (&http["alpha"], &http["hysteresis"]),
        (&json!(true), &json!(1))
    );

    // A bad value is InvalidArgument naming the field.
    let e = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id,
            virtual_server: Some(pb::VirtualServer {
                quorum_down: Some("relative/path".into()),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["quorum_down".into()],
            }),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("quorum_down"), "{}", e.message());
}

/// `omega` through the server: a graceful stop runs quorum_down of the virtual servers that
/// have their quorum (and waits for it); one without omega runs nothing.
#[tokio::test]
async fn a_graceful_stop_runs_quorum_down_of_omega_virtual_servers() {
    let mut s = TestServer::start().await;
    let marker = s.dir.path().join("omega-ran");
    let other = s.dir.path().join("not-omega");
    for (addr, omega, file) in [("10.1.0.1", true, &marker), ("10.1.0.2", false, &other)] {
        let (st, body) = send(
            &s,
            reqwest::Method::POST,
            "/api/v1/virtual-servers",
            json!({"address": addr, "port": 80, "omega": omega,
                   "quorum_down": format!("/usr/bin/touch {}", file.display()),
                   "real_servers": [{"address": "10.1.0.10", "weight": 1}]}),
        )
        .await;
        assert_eq!(st, 201, "{body}");
    }
    assert!(!marker.exists());
    s.running.take().unwrap().shutdown().await.unwrap();
    assert!(marker.exists(), "quorum_down ran before the stop ended");
    assert!(!other.exists());
}
