//! Acknowledged writes are never lost: kill -9 the daemon right after a 2xx and read the file.

#[path = "support/server.rs"]
mod support;

use serde_json::json;
use support::ChildServer;

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lbd.db");
    let mut lbd = ChildServer::spawn(&db);
    let client = reqwest::Client::new();
    let base = format!("http://{}", lbd.http_addr);

    let mut acked = Vec::new();
    let mut last_etag = String::new();
    for i in 0..25u16 {
        let r = client
            .post(format!("{base}/api/v1/virtual-servers"))
            .body(
                json!({"address": "192.168.10.100", "port": 1000 + i,
                         "real_servers": [{"address": "192.168.10.103"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        last_etag = r.headers()["etag"].to_str().unwrap().to_string();
        acked.push(1000 + i);
    }
    // The last request is acknowledged; kill at once, no shutdown code runs.
    lbd.kill9();

    let store = lbd::control::store::Store::open(&db).await.unwrap();
    let loaded = store.load().await.unwrap();
    let ports: Vec<u16> = loaded
        .snapshot
        .config
        .virtual_servers
        .iter()
        .map(|v| v.port.unwrap())
        .collect();
    assert_eq!(ports, acked);
    assert_eq!(format!("\"{}\"", loaded.snapshot.revision), last_etag);
    assert_eq!(loaded.snapshot.config.real_server_count(), 25);
    store.close().await;

    // And the daemon itself comes back with the same state.
    let lbd2 = ChildServer::spawn(&db);
    let r = reqwest::get(format!("http://{}/api/v1/config", lbd2.http_addr))
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), last_etag);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["virtual_servers"].as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut lbd = ChildServer::spawn(&dir.path().join("lbd.db"));
    let r = reqwest::get(format!("http://{}/healthz", lbd.http_addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let status = lbd.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        std::net::TcpStream::connect(lbd.http_addr).is_err(),
        "port closed after exit"
    );
}
