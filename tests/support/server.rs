//! Starting a real lbd (in-process or as a child process) on 127.0.0.1 ephemeral ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lbd::daemon::{Running, ServerConfig};

pub fn config(db: &Path) -> ServerConfig {
    ServerConfig {
        peer: None,
        db: db.to_path_buf(),
        http_listen: "127.0.0.1:0".parse().expect("addr"),
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        node_name: "lk01".into(),
        resync_interval: std::time::Duration::from_secs(10),
        limits: Default::default(),
        notifier: None,
        tls: None,
        auth: Default::default(),
    }
}

/// An in-process server over a fresh database in its own temporary directory.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub running: Option<Running>,
    pub base: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = lbd::daemon::start(config(&dir.path().join("lbd.db")))
            .await
            .expect("start lbd");
        let base = format!("http://{}", running.http_addr);
        TestServer {
            dir,
            running: Some(running),
            base,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("lbd.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Shuts down and starts again on the same database file.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
        let running = lbd::daemon::start(config(&self.db()))
            .await
            .expect("restart lbd");
        self.base = format!("http://{}", running.http_addr);
        self.running = Some(running);
    }
}

/// The `lbd` binary as a child process; killed on drop.
pub struct ChildServer {
    pub child: Child,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
}

impl ChildServer {
    pub fn spawn(db: &Path) -> ChildServer {
        Self::spawn_with(db, &[])
    }

    pub fn spawn_with(db: &Path, extra: &[&str]) -> ChildServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lbd"))
            .args([
                "serve",
                "--http-listen",
                "127.0.0.1:0",
                "--grpc-listen",
                "127.0.0.1:0",
            ])
            .arg("--db")
            .arg(db)
            .args(["--node-name", "lk01"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("LBD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lbd");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut http, mut grpc) = (None, None);
        while http.is_none() || grpc.is_none() {
            assert!(
                Instant::now() < deadline,
                "lbd did not report its addresses"
            );
            let line = match lines.next() {
                Some(Ok(l)) => strip_ansi(&l),
                _ => panic!("lbd exited before serving"),
            };
            http = http.or_else(|| field(&line, "http_addr="));
            grpc = grpc.or_else(|| field(&line, "grpc_addr="));
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildServer {
            child,
            http_addr: http.expect("http"),
            grpc_addr: grpc.expect("grpc"),
        }
    }

    pub fn kill9(&mut self) {
        // SIGKILL: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        self.child.wait().expect("wait")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    let i = line.find(key)?;
    line[i + key.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The seed setup's virtual server (keepalived.conf of lk01/lk02), as API JSON.
pub fn seed_virtual_server() -> serde_json::Value {
    serde_json::json!({
        "address": "192.168.10.100", "port": 80, "protocol": "tcp",
        "scheduler": "rr", "forwarding": "dr", "delay_loop_ms": 15000,
        "real_servers": [
            {"address": "192.168.10.103", "port": 80, "weight": 1,
             "health_check": {"type": "tcp", "connect_port": 80, "connect_timeout_ms": 3000,
                              "retry": 3, "delay_before_retry_ms": 4000}},
            {"address": "192.168.10.104", "port": 80, "weight": 1,
             "health_check": {"type": "tcp", "connect_port": 80, "connect_timeout_ms": 3000,
                              "retry": 3, "delay_before_retry_ms": 4000}}
        ]
    })
}

pub fn seed_vrrp_group() -> serde_json::Value {
    serde_json::json!({
        "name": "VI_1", "vrid": 1, "version": 2, "advert_interval_ms": 1000,
        "auth_pass": "1234567", "virtual_addresses": ["192.168.10.100"],
        "nodes": [
            {"node": "lk01", "priority": 100, "interface": "eth0", "initial_state": "master"},
            {"node": "lk02", "priority": 90, "interface": "eth0", "initial_state": "backup"}
        ]
    })
}
