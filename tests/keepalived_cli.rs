//! `lbd import-keepalived` / `export-keepalived` against a running lbd, and the HTTP import
//! endpoint.

#[path = "support/server.rs"]
mod support;

use std::process::Command;

use serde_json::Value;
use support::ChildServer;

fn lbd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn data(name: &str) -> String {
    format!(
        "{}/tests/data/keepalived/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test]
async fn import_both_directors_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}", server.http_addr);

    let (ok, out, err) = lbd(&[
        "import-keepalived",
        &data("lk01.conf"),
        "--node-name",
        "lk01",
        "--dry-run",
        "--url",
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("add virtual_server tcp 192.168.10.100:80")
            && out.contains("add vrrp_group VI_1"),
        "{out}"
    );
    assert!(
        out.contains("lk01.conf:33: warning: `nb_get_retry`"),
        "{out}"
    );
    assert!(out.contains("dry run: 2 change(s); revision 0"), "{out}");

    let (ok, out, err) = lbd(&[
        "import-keepalived",
        &data("lk01.conf"),
        "--node-name",
        "lk01",
        "--url",
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("applied: 2 change(s); revision 1"), "{out}");
    let (ok, out, err) = lbd(&[
        "import-keepalived",
        &data("lk02.conf"),
        "--node-name",
        "lk02",
        "--url",
        &url,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("update vrrp_group VI_1") && out.contains("revision 2"),
        "{out}"
    );

    let cfg: Value = reqwest::get(format!("{url}/api/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nodes: Vec<_> = cfg["vrrp_groups"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].clone(), n["priority"].clone()))
        .collect();
    assert_eq!(
        nodes,
        vec![("lk01".into(), 100.into()), ("lk02".into(), 90.into())]
    );
    assert_eq!(cfg["virtual_servers"].as_array().unwrap().len(), 1);

    let (ok, out, _) = lbd(&["export-keepalived", "--node-name", "lk02", "--url", &url]);
    assert!(ok);
    for want in [
        "state BACKUP",
        "priority 90",
        "auth_pass 1234567",
        "virtual_server 192.168.10.100 80 {",
        "retry 3",
        "delay_before_retry 4",
    ] {
        assert!(out.contains(want), "export lacks {want:?}:\n{out}");
    }

    let (ok, _, err) = lbd(&[
        "import-keepalived",
        "/nonexistent.conf",
        "--node-name",
        "x",
        "--url",
        &url,
    ]);
    assert!(
        !ok && err.contains("cannot read /nonexistent.conf"),
        "{err}"
    );
}

#[tokio::test]
async fn http_import_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}", server.http_addr);
    let c = reqwest::Client::new();
    let text = std::fs::read_to_string(data("lk01.conf")).unwrap();
    let r = c
        .post(format!(
            "{url}/api/v1/import/keepalived?node_name=lk01&dry_run=true"
        ))
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["dry_run"].as_bool(), body["revision"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(body["changes"].as_array().unwrap().len(), 2);
    assert!(
        body["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["at"] == "keepalived.conf:33"),
        "{body}"
    );
    let r = c
        .post(format!("{url}/api/v1/import/keepalived?node_name=lk01"))
        .body(text)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["revision"], 1);

    let r = c
        .post(format!("{url}/api/v1/import/keepalived?node_name=lk01"))
        .body("include /etc/passwd\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("keepalived.conf:1: include /etc/passwd: includes are not read here"),
        "{body}"
    );
    let r = c
        .post(format!("{url}/api/v1/import/keepalived"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "node_name is required");
}
