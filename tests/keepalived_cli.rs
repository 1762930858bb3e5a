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

/// Issue #17 end to end: a re-import applies the file's edits and the same file twice is 0
/// changes; the other director's disagreement is refused (422 over HTTP, InvalidArgument over
/// gRPC, an error from the command) until prefer_file; a squashed body is named as such; export
/// for an unknown node is an error.
#[tokio::test]
async fn reimport_conflicts_prefer_file_grpc_and_export_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::spawn(&dir.path().join("lbd.db"));
    let url = format!("http://{}", server.http_addr);
    let import = |file: &str, node: &str, extra: &[&str]| {
        let mut args = vec![
            "import-keepalived",
            file,
            "--node-name",
            node,
            "--url",
            &url,
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = lbd(&args);
        (ok, out, err)
    };
    let (ok, _, err) = import(&data("lk01.conf"), "lk01", &[]);
    assert!(ok, "{err}");
    let (ok, out, err) = import(&data("lk01.conf"), "lk01", &[]);
    assert!(ok, "{err}");
    assert!(out.contains("applied: 0 change(s); revision 1"), "{out}");

    // An edited lk01 file: the edit is applied, with its fields in the report.
    let edited = dir.path().join("lk01.conf");
    std::fs::write(
        &edited,
        std::fs::read_to_string(data("lk01.conf"))
            .unwrap()
            .replace("advert_int 1", "advert_int 2"),
    )
    .unwrap();
    let e = edited.display().to_string();
    let (ok, out, err) = import(&e, "lk01", &["--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("update vrrp_group VI_1\n    advert_interval_ms: 1000 -> 2000\n")
            && out.contains("dry run: 1 change(s)"),
        "{out}"
    );
    let (ok, _, err) = import(&e, "lk01", &[]);
    assert!(ok, "{err}");

    // lk02's file says advert_int 1: it disagrees with what lk01's file set.
    let (ok, _, err) = import(&data("lk02.conf"), "lk02", &[]);
    assert!(!ok);
    assert!(
        err.contains("lk02.conf:12: group VI_1 advert_interval_ms: this file has 1000, lbd has 2000 (stored)"),
        "{err}"
    );
    let c = reqwest::Client::new();
    let lk02 = std::fs::read_to_string(data("lk02.conf")).unwrap();
    let r = c
        .post(format!("{url}/api/v1/import/keepalived?node_name=lk02"))
        .body(lk02.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "keepalived.conf:12", "{body}");

    // gRPC: the same refusal, then prefer_file takes lk02's value.
    let mut g =
        lbd::grpc::pb::lbd_client::LbdClient::connect(format!("http://{}", server.grpc_addr))
            .await
            .unwrap();
    let req = |prefer_file: bool| lbd::grpc::pb::ImportKeepalivedRequest {
        text: lk02.clone(),
        node_name: "lk02".into(),
        prefer_file,
        ..Default::default()
    };
    let st = g.import_keepalived(req(false)).await.unwrap_err();
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert!(st.message().contains("advert_interval_ms"), "{st:?}");
    let r = g.import_keepalived(req(true)).await.unwrap().into_inner();
    let w = r.result.unwrap();
    assert_eq!(w.changes.len(), 1, "{w:?}");
    let fields: Vec<_> = w.changes[0]
        .fields
        .iter()
        .map(|f| f.field.as_str())
        .collect();
    assert_eq!(fields, vec!["advert_interval_ms", "nodes"]);
    assert!(r
        .warnings
        .iter()
        .any(|n| n.at == "keepalived.conf:33" && n.message.contains("nb_get_retry")));
    // And lk02 again: 0 changes over HTTP.
    let r = c
        .post(format!("{url}/api/v1/import/keepalived?node_name=lk02"))
        .body(lk02.clone())
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["changes"], serde_json::json!([]), "{body}");

    // curl -d joins the lines: named as such.
    let r = c
        .post(format!("{url}/api/v1/import/keepalived?node_name=lk02"))
        .body(lk02.replace('\n', ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--data-binary"),
        "{body}"
    );

    let (ok, _, err) = lbd(&["export-keepalived", "--node-name", "lk03", "--url", &url]);
    assert!(!ok);
    assert!(
        err.contains("no VRRP group has an entry for node lk03 (nodes: lk01, lk02)"),
        "{err}"
    );
}
