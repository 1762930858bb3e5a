//! Directors in network namespaces for the VRRP tests and benchmark: lbd (configured by
//! importing a keepalived.conf over its API) and keepalived itself (Debian's package), both
//! built from the same [`Conf`]. Needs `support/netns.rs` in the same crate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::netns::Topology;

pub const VIP: &str = "192.168.10.100";
pub const LBD: &str = env!("CARGO_BIN_EXE_lbd");

/// One director's VRRP settings, rendered as keepalived.conf.
#[derive(Debug, Clone)]
pub struct Conf {
    pub router_id: String,
    pub master: bool,
    pub priority: u8,
    pub version: u8,
    /// Seconds, as keepalived writes it (0.01 .. 255).
    pub advert_int: f64,
    pub auth_pass: Option<String>,
    pub preempt: bool,
    /// garp_master_repeat / garp_master_delay / garp_master_refresh.
    pub garp: Option<(u32, u32, u32)>,
    /// unicast_src_ip and the one unicast_peer, instead of multicast.
    pub unicast: Option<(String, String)>,
    /// The one virtual address ([`VIP`] unless changed; an IPv6 one needs version 3).
    pub vip: String,
    /// More lines of the instance, written before `virtual_ipaddress` (e.g. `"    use_vmac\n"`).
    pub extra: String,
}

impl Conf {
    pub fn new(router_id: &str, priority: u8, version: u8, advert_int: f64) -> Conf {
        Conf {
            router_id: router_id.into(),
            master: false,
            priority,
            version,
            advert_int,
            auth_pass: None,
            preempt: true,
            garp: None,
            unicast: None,
            vip: VIP.into(),
            extra: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "global_defs {{\n    router_id {}\n    vrrp_version {}\n}}\n\nvrrp_instance VI_1 {{\n    state {}\n    interface eth0\n    virtual_router_id 1\n    priority {}\n    advert_int {}\n",
            self.router_id,
            self.version,
            if self.master { "MASTER" } else { "BACKUP" },
            self.priority,
            self.advert_int
        );
        if !self.preempt {
            s.push_str("    nopreempt\n");
        }
        if let Some(p) = &self.auth_pass {
            s.push_str(&format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n"
            ));
        }
        if let Some((repeat, delay, refresh)) = self.garp {
            s.push_str(&format!(
                "    garp_master_repeat {repeat}\n    garp_master_delay {delay}\n    garp_master_refresh {refresh}\n"
            ));
        }
        if let Some((src, peer)) = &self.unicast {
            s.push_str(&format!(
                "    unicast_src_ip {src}\n    unicast_peer {{\n        {peer}\n    }}\n"
            ));
        }
        s.push_str(&self.extra);
        s.push_str(&format!(
            "    virtual_ipaddress {{\n        {}\n    }}\n}}\n",
            self.vip
        ));
        s
    }

    /// Master_Down_Interval of a backup with this configuration (RFC 5798 section 6.1; v2
    /// skew of RFC 3768 section 6.1).
    pub fn master_down(&self) -> Duration {
        let adv = self.advert_int;
        let skew = if self.version == 3 {
            (256.0 - f64::from(self.priority)) * adv / 256.0
        } else {
            (256.0 - f64::from(self.priority)) / 256.0
        };
        Duration::from_secs_f64(3.0 * adv + skew)
    }
}

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `limit` with `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `host`'s eth0 holds the VIP now.
pub fn holds_vip(t: &Topology, host: &str) -> bool {
    let out = t.exec(host, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/32"))
}

fn spawn_logged(t: &Topology, host: &str, args: &[&str], log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let err = file.try_clone().expect("log file");
    Command::new("ip")
        .args(["netns", "exec", &t.ns(host)])
        .args(args)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn in namespace")
}

fn signal(child: &Child, sig: i32) {
    // `ip netns exec` execs the command, so the child's pid is the director's.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// An lbd director in a namespace; its API listens on the namespace's own loopback.
pub struct Director {
    pub host: String,
    pub node: String,
    dir: PathBuf,
    child: Option<Child>,
    /// `None`: lbd runs as root. `Some(caps)`: as user nobody holding only `caps` (setpriv's
    /// list, e.g. `net_admin,net_raw,sys_nice`), as the systemd unit runs it.
    caps: Option<&'static str>,
    /// More `lbd serve` arguments (peer sync's).
    pub extra: Vec<String>,
}

impl Director {
    /// Starts lbd in `host` as node `node` with `extra` serve arguments and no configuration.
    pub fn start_bare(
        t: &Topology,
        host: &str,
        dir: &Path,
        node: &str,
        extra: &[&str],
    ) -> Director {
        let mut d = Director {
            host: host.into(),
            node: node.into(),
            dir: dir.to_path_buf(),
            child: None,
            caps: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        d.spawn(t);
        d
    }

    /// Imports `conf` into this director as node `conf.router_id` (any director's file can go
    /// in through one director).
    pub fn import(&self, t: &Topology, conf: &Conf) {
        let path = self.dir.join(format!("{}.conf", conf.router_id));
        std::fs::write(&path, conf.render()).expect("write conf");
        let out = self.ctl_raw(
            t,
            &[
                "import-keepalived",
                path.to_str().unwrap_or_default(),
                "--node-name",
                &conf.router_id,
            ],
        );
        assert!(
            out.status.success(),
            "import into {}: {}",
            self.host,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts lbd in `host` and imports `conf` as node `conf.router_id`.
    pub fn start(t: &Topology, host: &str, dir: &Path, conf: &Conf) -> Director {
        Self::start_with(t, host, dir, conf, None)
    }

    /// Like [`Director::start`], with lbd as user nobody holding only `caps` (see `caps`).
    pub fn start_with(
        t: &Topology,
        host: &str,
        dir: &Path,
        conf: &Conf,
        caps: Option<&'static str>,
    ) -> Director {
        let mut d = Director {
            host: host.into(),
            node: conf.router_id.clone(),
            dir: dir.to_path_buf(),
            child: None,
            caps,
            extra: Vec::new(),
        };
        d.spawn(t);
        d.import(t, conf);
        d
    }

    /// (Re)starts the lbd process on the existing database.
    pub fn spawn(&mut self, t: &Topology) {
        let db = self.dir.join(format!("{}.db", self.node));
        let log = self
            .dir
            .join(format!("{}-{}.log", self.node, now_unix_ms()));
        let mut args: Vec<String> = Vec::new();
        let mut lbd = LBD.to_string();
        if let Some(caps) = self.caps {
            use std::os::unix::fs::PermissionsExt;
            // nobody must reach the binary and write the database: a copy in the test's own
            // directory (the build's may sit under a 0700 home), in a directory open to it.
            let copy = self.dir.join("lbd-unprivileged");
            if !copy.exists() {
                std::fs::copy(LBD, &copy).expect("copy lbd");
            }
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o777))
                .expect("chmod test dir");
            lbd = copy.to_string_lossy().into_owned();
            let set = format!(
                "-all,{}",
                caps.split(',')
                    .map(|c| format!("+{c}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            args.extend([
                "setpriv".to_string(),
                "--reuid=65534".into(),
                "--regid=65534".into(),
                "--clear-groups".into(),
                format!("--inh-caps={set}"),
                format!("--ambient-caps={set}"),
                format!("--bounding-set={set}"),
                "--".into(),
            ]);
        }
        args.push(lbd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = spawn_logged(
            t,
            &self.host,
            &[
                &args[..],
                &[
                    "serve",
                    "--db",
                    db.to_str().unwrap_or_default(),
                    "--node-name",
                    &self.node,
                    "--http-listen",
                    "127.0.0.1:8080",
                    "--grpc-listen",
                    "127.0.0.1:8081",
                ],
                &self.extra.iter().map(String::as_str).collect::<Vec<_>>()[..],
            ]
            .concat(),
            &log,
        );
        self.child = Some(child);
        wait_for("lbd to answer", Duration::from_secs(20), || {
            self.ctl_raw(t, &["ctl", "status", "--json"])
                .status
                .success()
                .then_some(())
        });
    }

    /// `/proc/<pid>/status` of the running lbd (user, capabilities).
    pub fn proc_status(&self) -> String {
        let pid = self.child.as_ref().map(|c| c.id()).unwrap_or(0);
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
    }

    /// `lbd ctl status` as an operator reads it.
    pub fn status_text(&self, t: &Topology) -> String {
        let out = self.ctl_raw(t, &["ctl", "status"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An HTTP request to this director's API from inside its namespace (curl): the body.
    pub fn http(&self, t: &Topology, method: &str, path: &str, body: Option<&str>) -> String {
        let url = format!("http://127.0.0.1:8080{path}");
        let mut a = vec!["curl", "-sS", "-f", "-X", method, &url];
        if let Some(b) = body {
            a.extend(["-H", "content-type: application/json", "--data", b]);
        }
        let out = t.exec(&self.host, &a);
        assert!(
            out.status.success(),
            "{method} {path} on {}: {}{}",
            self.host,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ctl_raw(&self, t: &Topology, args: &[&str]) -> std::process::Output {
        let mut a = vec![LBD];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--url", "http://127.0.0.1:8080"]);
        t.exec(&self.host, &a)
    }

    /// One request to the HTTP API (from inside the namespace): the status code and the JSON
    /// body (`Null` when empty). A PATCH body goes as a JSON merge patch.
    pub fn api(
        &self,
        t: &Topology,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let req = {
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let ctype = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let raw = t.in_host(&self.host, move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:8080").expect("connect to lbd");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("SO_RCVTIMEO");
            s.write_all(req.as_bytes()).expect("send request");
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).expect("read response");
            raw
        });
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, mut body) = text
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_string(), b.to_string()))
            .unwrap_or((text.clone(), String::new()));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            // size CRLF data CRLF ... 0 CRLF CRLF
            let mut out = String::new();
            let mut rest = body.as_str();
            while let Some((size, after)) = rest.split_once("\r\n") {
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 || after.len() < n {
                    break;
                }
                out.push_str(&after[..n]);
                rest = after[n..].trim_start_matches("\r\n");
            }
            body = out;
        }
        let v = if body.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))
        };
        (status, v)
    }

    /// The id of the first VRRP group.
    pub fn group_id(&self, t: &Topology) -> i64 {
        let (code, v) = self.api(t, "GET", "/api/v1/vrrp-groups", None);
        assert_eq!(code, 200, "{v}");
        v[0]["id"].as_i64().expect("a VRRP group")
    }

    /// PATCHes this director's entry of the first VRRP group (e.g. `{"priority": 50}`).
    pub fn patch_node(&self, t: &Topology, patch: serde_json::Value) {
        let id = self.group_id(t);
        let path = format!("/api/v1/vrrp-groups/{id}/nodes/{}", self.node);
        let (code, v) = self.api(t, "PATCH", &path, Some(patch));
        assert_eq!(code, 200, "PATCH {path}: {v}");
    }

    /// PATCHes the first VRRP group (e.g. `{"virtual_addresses": [...]}`).
    pub fn patch_group(&self, t: &Topology, patch: serde_json::Value) {
        let id = self.group_id(t);
        let path = format!("/api/v1/vrrp-groups/{id}");
        let (code, v) = self.api(t, "PATCH", &path, Some(patch));
        assert_eq!(code, 200, "PATCH {path}: {v}");
    }

    /// The events of this director, oldest first.
    pub fn events(&self, t: &Topology) -> Vec<serde_json::Value> {
        let (code, v) = self.api(t, "GET", "/api/v1/events", None);
        assert_eq!(code, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// `/api/v1/status` as JSON.
    pub fn status(&self, t: &Topology) -> serde_json::Value {
        let out = self.ctl_raw(t, &["ctl", "status", "--json"]);
        assert!(
            out.status.success(),
            "status of {}: {}",
            self.host,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// The first VRRP group's status.
    pub fn group(&self, t: &Topology) -> serde_json::Value {
        self.status(t)["vrrp"]["groups"][0].clone()
    }

    pub fn state(&self, t: &Topology) -> String {
        self.group(t)["state"].as_str().unwrap_or("?").to_string()
    }

    /// Waits until the group is in `state`; returns its status then.
    pub fn wait_state(&self, t: &Topology, state: &str, limit: Duration) -> serde_json::Value {
        wait_for(&format!("{} to be {state}", self.host), limit, || {
            let g = self.group(t);
            (g["state"] == state).then_some(g)
        })
    }

    pub fn term(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, libc::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, libc::SIGKILL);
            let _ = c.wait();
        }
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        self.kill();
    }
}

/// keepalived (`--vrrp --dont-fork`) in a namespace, with its own pid files.
pub struct Keepalived {
    pub host: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Keepalived {
    pub fn start(t: &Topology, host: &str, dir: &Path, conf: &Conf) -> Keepalived {
        Self::start_text(t, host, dir, &conf.router_id, &conf.render())
    }

    /// Starts keepalived in `host` with the keepalived.conf `text` (files named after `name`).
    pub fn start_text(t: &Topology, host: &str, dir: &Path, name: &str, text: &str) -> Keepalived {
        let path = dir.join(format!("keepalived-{name}.conf"));
        std::fs::write(&path, text).expect("write conf");
        let p = |s: &str| {
            dir.join(format!("{name}-{s}"))
                .to_string_lossy()
                .into_owned()
        };
        let log = dir.join(format!("keepalived-{name}.log"));
        let child = spawn_logged(
            t,
            host,
            &[
                "keepalived",
                "--vrrp",
                "--dont-fork",
                "--log-console",
                "--no-syslog",
                "--use-file",
                path.to_str().unwrap_or_default(),
                "--pid",
                &p("keepalived.pid"),
                "--vrrp_pid",
                &p("vrrp.pid"),
            ],
            &log,
        );
        Keepalived {
            host: host.into(),
            log,
            child: Some(child),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn term(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, libc::SIGTERM);
            let _ = c.wait();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // keepalived --vrrp runs a parent and a VRRP child: kill both. The parent is
            // stopped first so that it can neither respawn the child nor, by dying first, make
            // the child shut down gracefully (its parent-death signal is SIGTERM).
            signal(&c, libc::SIGSTOP);
            let out = Command::new("pkill")
                .args(["-KILL", "-P", &c.id().to_string()])
                .output();
            drop(out);
            signal(&c, libc::SIGKILL);
            let _ = c.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.kill();
    }
}

/// keepalived is needed by the interop tests; CI installs it. Without it the test skips (or
/// fails where LBD_REQUIRE_PRIVILEGED=1).
pub fn keepalived_available(test: &str) -> bool {
    let ok = Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("LBD_REQUIRE_PRIVILEGED").is_none(),
            "{test} needs keepalived (apt-get install keepalived)"
        );
        eprintln!("SKIP {test}: keepalived is not installed");
    }
    ok
}
