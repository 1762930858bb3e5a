//! Tokens and roles over HTTP and gRPC, the `Host`/`Origin` checks (CSRF, DNS rebinding), the
//! token file's reloads, the refusal to run open beyond loopback, and `lbd ctl` with a token.

#[path = "support/server.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use serde_json::{json, Value};
use support::{seed_virtual_server, ChildServer};
use tonic::transport::Channel;
use tonic::Code;

const READ: &str = "reader-token-0000000001";
const OPERATE: &str = "operator-token-00000002";
const ADMIN: &str = "admin-token-000000000003";

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The operator's token is in the file only as its hash.
fn write_tokens(path: &Path) {
    std::fs::write(
        path,
        format!(
            "# lbd API tokens\n{READ} read\nsha256:{} operate\n{ADMIN} admin\n",
            sha256_hex(OPERATE)
        ),
    )
    .unwrap();
}

struct Rig {
    _dir: tempfile::TempDir,
    running: Option<lbd::daemon::Running>,
    base: String,
    tokens: std::path::PathBuf,
}

impl Rig {
    async fn start() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        write_tokens(&tokens);
        let mut cfg = support::config(&dir.path().join("lbd.db"));
        cfg.auth = lbd::control::auth::AuthConfig {
            token_file: Some(tokens.clone()),
            allowed_hosts: vec!["lb.example".into()],
            cors_origins: vec!["https://ops.example".into()],
        };
        let running = lbd::daemon::start(cfg).await.expect("start");
        let base = format!("http://{}", running.http_addr);
        Rig {
            _dir: dir,
            running: Some(running),
            base,
            tokens,
        }
    }

    async fn grpc(&self) -> LbdClient<Channel> {
        let addr = self.running.as_ref().unwrap().grpc_addr;
        LbdClient::connect(format!("http://{addr}")).await.unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.running.take());
    }
}

async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, h, v)
}

/// (virtual server id, real server id), made by the admin.
async fn seed(r: &Rig) -> (i64, i64) {
    let (st, _, vs) = call(
        "POST",
        &format!("{}/api/v1/virtual-servers", r.base),
        Some(ADMIN),
        &[],
        Some(seed_virtual_server()),
    )
    .await;
    assert_eq!(st, 201, "{vs}");
    (
        vs["id"].as_i64().unwrap(),
        vs["real_servers"][0]["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn http_roles_on_every_route_class() {
    let r = Rig::start().await;
    let (vs, rs) = seed(&r).await;
    let rs_url = format!("{}/api/v1/virtual-servers/{vs}/real-servers/{rs}", r.base);
    let cfg_url = format!("{}/api/v1/config", r.base);
    // (method, url, body, the weakest role allowed)
    let cases: Vec<(&str, String, Option<Value>, usize)> = vec![
        ("GET", format!("{}/api/v1/status", r.base), None, 0),
        ("GET", format!("{}/api/v1/virtual-servers", r.base), None, 0),
        ("PATCH", rs_url.clone(), Some(json!({"weight": 0})), 1),
        (
            "PATCH",
            rs_url.clone(),
            Some(json!({"weight": 2, "port": 80})),
            2,
        ),
        ("PUT", cfg_url.clone(), None, 2),
        (
            "GET",
            format!("{}/api/v1/export/keepalived?node_name=lk01", r.base),
            None,
            2,
        ),
        (
            "POST",
            format!(
                "{}/api/v1/import/keepalived?node_name=lk01&dry_run=true",
                r.base
            ),
            None,
            2,
        ),
        ("DELETE", format!("{rs_url}?dry_run=true"), None, 2),
    ];
    let roles = [READ, OPERATE, ADMIN];
    for (method, url, body, weakest) in &cases {
        // No token, or one the file does not hold: 401 with the challenge.
        for token in [None, Some("not-a-token-of-this-file")] {
            let (st, h, v) = call(method, url, token, &[], body.clone()).await;
            assert_eq!(st, 401, "{method} {url} {token:?}: {v}");
            assert_eq!(v["error"]["code"], "unauthenticated", "{v}");
            assert_eq!(v["error"]["field"], "Authorization", "{v}");
            assert_eq!(h["www-authenticate"], "Bearer realm=\"lbd\"");
        }
        for (i, token) in roles.iter().enumerate() {
            let (st, _, v) = call(method, url, Some(token), &[], body.clone()).await;
            if i < *weakest {
                assert_eq!(st, 403, "{method} {url} as {token}: {v}");
                assert_eq!(v["error"]["code"], "permission_denied", "{v}");
            } else {
                // Allowed: whatever the handler then says, it is not the gate's refusal.
                assert!(
                    st != 401 && st != 403,
                    "{method} {url} as {token}: {st} {v}"
                );
            }
        }
    }
    // The operator drained the server; the refused patch changed nothing.
    let (_, _, v) = call("GET", &rs_url, Some(READ), &[], None).await;
    assert_eq!(
        (v["weight"].clone(), v["port"].clone()),
        (json!(2), json!(80)),
        "{v}"
    );
    // What an operator's refusal names: the field beyond the weight.
    let (st, _, v) = call(
        "PATCH",
        &rs_url,
        Some(OPERATE),
        &[],
        Some(json!({"weight": 1, "health_check": null})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["field"].clone()),
        (403, json!("health_check")),
        "{v}"
    );
    // Public: the liveness probe, the dashboard, the spec.
    for path in ["/healthz", "/", "/api-docs/openapi.json"] {
        let (st, _, _) = call("GET", &format!("{}{path}", r.base), None, &[], None).await;
        assert_eq!(st, 200, "{path}");
    }
    // The status says tokens are asked for, and how many the file holds.
    let (_, _, v) = call(
        "GET",
        &format!("{}/api/v1/status", r.base),
        Some(READ),
        &[],
        None,
    )
    .await;
    assert_eq!(v["auth"], json!({"mode": "tokens", "tokens": 3}));
}

#[tokio::test]
async fn foreign_origin_and_host_are_refused() {
    let r = Rig::start().await;
    let vs_url = format!("{}/api/v1/virtual-servers", r.base);
    let host = r.base.trim_start_matches("http://").to_string();
    let same = format!("http://{host}");
    // A page elsewhere cannot make the operator's browser write (CSRF), even with a token
    // (the dashboard's cookie).
    let cookie = format!("lbd_token={ADMIN}");
    for (headers, want) in [
        (
            vec![
                ("Origin", "http://evil.example"),
                ("Cookie", cookie.as_str()),
            ],
            403,
        ),
        (vec![("Origin", "null"), ("Cookie", cookie.as_str())], 403),
        (
            vec![("Origin", same.as_str()), ("Cookie", cookie.as_str())],
            201,
        ),
    ] {
        let mut vs = seed_virtual_server();
        vs["address"] = json!(format!("192.168.10.{}", want - 190));
        let (st, _, v) = call("POST", &vs_url, None, &headers, Some(vs)).await;
        assert_eq!(st, want, "{headers:?}: {v}");
        if want == 403 {
            assert_eq!(
                (v["error"]["code"].clone(), v["error"]["field"].clone()),
                (json!("forbidden_origin"), json!("Origin")),
                "{v}"
            );
        }
    }
    // A name someone else's DNS points here (rebinding) is refused; IPs, localhost and the
    // allowed name are not.
    for (h, want) in [
        ("evil.example", 403),
        ("localhost", 200),
        ("lb.example:8080", 200),
        (host.as_str(), 200),
    ] {
        let (st, _, v) = call("GET", &vs_url, Some(READ), &[("Host", h)], None).await;
        assert_eq!(st, want, "Host {h}: {v}");
    }
    // CORS only for the configured origin: its preflight is answered, its reads carry the
    // allow header.
    let (st, h, _) = call(
        "OPTIONS",
        &vs_url,
        None,
        &[
            ("Origin", "https://ops.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(h["access-control-allow-origin"], "https://ops.example");
    let (st, h, _) = call(
        "GET",
        &vs_url,
        Some(READ),
        &[("Origin", "https://ops.example")],
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(h["access-control-allow-origin"], "https://ops.example");
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

#[tokio::test]
async fn grpc_roles() {
    let r = Rig::start().await;
    let (vs, rs) = seed(&r).await;
    let mut c = r.grpc().await;
    let weight = |paths: &[&str], token: Option<&str>| {
        with_token(
            pb::UpdateRealServerRequest {
                virtual_server_id: vs,
                id: rs,
                real_server: Some(pb::RealServer {
                    weight: Some(0),
                    port: Some(80),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
                options: None,
            },
            token,
        )
    };
    // No token / a bad one: UNAUTHENTICATED.
    for t in [None, Some("not-a-token-of-this-file")] {
        let e = c
            .get_status(with_token(pb::GetStatusRequest {}, t))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{t:?}: {e:?}");
    }
    let st = c
        .get_status(with_token(pb::GetStatusRequest {}, Some(READ)))
        .await
        .unwrap()
        .into_inner();
    let auth = st.auth.unwrap();
    assert_eq!((auth.mode, auth.tokens), (pb::AuthMode::Tokens as i32, 3));
    // Weights: operate, not read; the port too: admin only.
    let e = c
        .update_real_server(weight(&["weight"], Some(READ)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    c.update_real_server(weight(&["weight"], Some(OPERATE)))
        .await
        .unwrap();
    let e = c
        .update_real_server(weight(&["weight", "port"], Some(OPERATE)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("port"), "{e:?}");
    c.update_real_server(weight(&["weight", "port"], Some(ADMIN)))
        .await
        .unwrap();
    // The whole configuration: admin only.
    let cfg = c
        .get_config(with_token(pb::GetConfigRequest::default(), Some(READ)))
        .await
        .unwrap()
        .into_inner();
    for (t, code) in [
        (READ, Some(Code::PermissionDenied)),
        (OPERATE, Some(Code::PermissionDenied)),
        (ADMIN, None),
    ] {
        let req = pb::ReplaceConfigRequest {
            config: cfg.config.clone(),
            options: Some(pb::WriteOptions {
                dry_run: true,
                ..Default::default()
            }),
        };
        let got = c
            .replace_config(with_token(req, Some(t)))
            .await
            .err()
            .map(|e| e.code());
        assert_eq!(got, code, "{t}");
    }
    // gRPC health needs no token.
    let addr = r.running.as_ref().unwrap().grpc_addr;
    let ch = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_token_file_is_reloaded_when_it_changes_and_a_broken_one_is_not_taken() {
    let r = Rig::start().await;
    let url = format!("{}/api/v1/status", r.base);
    const NEW: &str = "a-token-added-later-0004";
    let wait_for = |token: &'static str, want: u16| {
        let url = url.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (st, _, _) = call("GET", &url, Some(token), &[], None).await;
                if st == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{token}: still {st}, want {want}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    std::fs::write(&r.tokens, format!("{NEW} read\n")).unwrap();
    wait_for(NEW, 200).await;
    wait_for(READ, 401).await;
    // A file that does not parse keeps the tokens in force.
    std::fs::write(&r.tokens, "tiny read\n").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_for(NEW, 200).await;
}

fn token_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("tokens");
    write_tokens(&p);
    p
}

#[test]
fn sighup_reloads_and_ctl_sends_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = token_file(dir.path());
    let mut lbd = ChildServer::spawn_with(
        &dir.path().join("lbd.db"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let url = format!("http://{}", lbd.http_addr);
    let ctl = |token: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"));
        c.args(["ctl", "--url", &url, "status"])
            .env_remove("LBD_TOKEN");
        if let Some(t) = token {
            c.env("LBD_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = ctl(None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bearer token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl(Some(READ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Same size and second: only SIGHUP tells lbd to read it again.
    const NEW: &str = "b-token-added-later-0005";
    let meta = std::fs::metadata(&tokens).unwrap();
    let before = meta.modified().unwrap();
    let mut text = format!("{NEW} read\n#");
    while text.len() + 1 < meta.len() as usize {
        text.push('#');
    }
    text.push('\n');
    assert_eq!(text.len() as u64, meta.len());
    std::fs::write(&tokens, text).unwrap();
    let f = std::fs::File::options().write(true).open(&tokens).unwrap();
    f.set_modified(before).unwrap();
    drop(f);
    let pid = lbd.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ctl(Some(NEW)).status.success() {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the tokens"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still running after the signal.
    assert!(lbd.child.try_wait().unwrap().is_none());
    lbd.terminate();
}

#[test]
fn sighup_without_a_token_file_does_not_end_lbd() {
    let dir = tempfile::tempdir().unwrap();
    let mut lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let pid = lbd.child.id().to_string();
    for _ in 0..3 {
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lbd.child.try_wait().unwrap().is_none(), "SIGHUP ended lbd");
    assert!(lbd.terminate().success());
}

#[test]
fn open_api_beyond_loopback_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "serve",
            "--http-listen",
            "0.0.0.0:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(&db)
        .env_remove("LBD_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("beyond loopback") && err.contains("--token-file"),
        "{err}"
    );
    assert!(!db.exists(), "a refused start left a database behind");
}

/// Commands (track scripts, notify) come only from configuration writes, which need `admin`:
/// a `read` or `operate` token cannot add one, by POST, PATCH or the whole configuration.
#[tokio::test]
async fn only_admin_can_configure_a_command() {
    let r = Rig::start().await;
    let group = json!({
        "name": "VI_1", "vrid": 1, "virtual_addresses": ["192.168.10.100"],
        "nodes": [{"node": "lk01", "priority": 100, "interface": "lbdtest0"}],
        "track_scripts": [{"name": "chk", "command": "/bin/true", "weight": -10}],
        "notify": {"master": "/bin/true"}
    });
    let groups = format!("{}/api/v1/vrrp-groups", r.base);
    for token in [READ, OPERATE] {
        let (st, _, v) = call("POST", &groups, Some(token), &[], Some(group.clone())).await;
        assert_eq!(st, 403, "{v}");
        let whole = json!({"virtual_servers": [], "vrrp_groups": [group.clone()]});
        let (st, _, v) = call(
            "PUT",
            &format!("{}/api/v1/config", r.base),
            Some(token),
            &[],
            Some(whole),
        )
        .await;
        assert_eq!(st, 403, "{v}");
    }
    let (st, _, v) = call("POST", &groups, Some(ADMIN), &[], Some(group.clone())).await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    let url = format!("{groups}/{id}");
    for token in [READ, OPERATE] {
        let patch = json!({"notify": {"master": "/usr/bin/id"}});
        let (st, _, v) = call("PATCH", &url, Some(token), &[], Some(patch)).await;
        assert_eq!(st, 403, "{v}");
    }
    // Readers see what is configured; nothing they did changed it.
    let (st, _, v) = call("GET", &url, Some(READ), &[], None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["notify"]["master"], "/bin/true");
    assert_eq!(v["track_scripts"][0]["command"], "/bin/true");
}
