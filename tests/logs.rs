//! What lbd writes to its log when the log is a file: plain text (no terminal colour codes), or
//! one JSON object per line with `--log-format json`; an expected 503 is not an ERROR.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs lbd with its log going to a file, calls `/api/v1/ipvs` (503 where the kernel has no
/// IPVS, as on the test machines; 200 where it has), stops it with SIGTERM and returns the log.
async fn log_of(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("lbd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--db")
        .arg(dir.path().join("lbd.db"))
        .args(extra)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "lbd did not start");
        let text = std::fs::read_to_string(&log_path).unwrap();
        let found = text.lines().find_map(|l| {
            let i = l.find("http_addr")?;
            let rest: String = l[i + "http_addr".len()..]
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            rest.parse::<std::net::SocketAddr>().ok()
        });
        if let Some(a) = found {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = reqwest::get(format!("http://{addr}/api/v1/ipvs"))
        .await
        .unwrap();
    assert!([200, 503].contains(&r.status().as_u16()));
    // A real server whose check fails (nothing listens on port 1), then a drain: a health line
    // and two commits to read.
    let c = reqwest::Client::new();
    let vs: serde_json::Value = c
        .post(format!("http://{addr}/api/v1/virtual-servers"))
        .json(
            &serde_json::json!({"address": "192.168.10.100", "port": 80, "forwarding": "nat",
            "delay_loop_ms": 200,
            "real_servers": [{"address": "127.0.0.1", "port": 1,
                              "health_check": {"type": "tcp", "retry": 0}}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rs = format!(
        "http://{addr}/api/v1/virtual-servers/{}/real-servers/{}",
        vs["id"], vs["real_servers"][0]["id"]
    );
    let r = c
        .patch(rs)
        .json(&serde_json::json!({"weight": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("health changed")
    {
        assert!(Instant::now() < deadline, "no health line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(&log_path).unwrap()
}

#[tokio::test]
async fn a_log_file_has_no_colour_codes_and_no_error_for_an_expected_503() {
    let text = log_of(&[]).await;
    assert!(text.contains("lbd serving"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file:\n{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    // Readable fields: words, not Debug forms; a commit says what it changed.
    assert!(!text.contains("Some("), "{text}");
    let health = text.lines().find(|l| l.contains("health changed")).unwrap();
    assert!(
        health.contains("real_server=127.0.0.1:1")
            && health.contains("state=down")
            && health.contains("error=connect failed"),
        "{health}"
    );
    assert!(
        text.contains("changed: add virtual server tcp 192.168.10.100:80"),
        "{text}"
    );
    assert!(
        text.contains(
            "changed: update real server tcp 192.168.10.100:80 -> 127.0.0.1:1: weight 1→0"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn log_format_json_writes_one_object_per_line() {
    let text = log_of(&["--log-format", "json"]).await;
    let mut lines = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        assert_ne!(v["level"], "ERROR", "{line}");
        lines += 1;
    }
    assert!(lines >= 2, "{text}");
    assert!(text.contains("\"lbd serving\""), "{text}");
}
