//! The command-line client side: talks to a running lbd over its HTTP API.

use std::path::Path;

use serde_json::Value;

use crate::cli::ipvsadm::{self, ServiceRef};
use crate::keepalived::parser::FsIncludes;
use crate::model::{Config, Protocol, VirtualServer};

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("cannot reach lbd at {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("lbd answered {status}: {body}")]
    Api { status: u16, body: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keepalived(#[from] crate::keepalived::KeepalivedError),
    #[error("unexpected answer from lbd: {0}")]
    Decode(String),
    /// The command line names something that does not exist or does not parse.
    #[error("{0}")]
    Usage(String),
    #[error("no VRRP group has an entry for node {node} (nodes: {known})")]
    UnknownNode { node: String, known: String },
    #[error(transparent)]
    Tls(#[from] crate::control::tls::TlsError),
}

impl From<crate::cli::ipvsadm::WordError> for CtlError {
    fn from(e: crate::cli::ipvsadm::WordError) -> Self {
        CtlError::Usage(e.0)
    }
}

async fn get_config(client: &reqwest::Client, url: &Api) -> Result<(Config, String), CtlError> {
    let u = format!("{url}/api/v1/config");
    let r = client
        .get(&u)
        .send()
        .await
        .map_err(|source| CtlError::Http {
            url: u.clone(),
            source,
        })?;
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*")
        .to_string();
    let doc: Value = r
        .json()
        .await
        .map_err(|e| CtlError::Decode(e.to_string()))?;
    let mut groups = doc["vrrp_groups"].clone();
    // Read-only: readers see whether a password is stored, never the password itself.
    for g in groups.as_array_mut().into_iter().flatten() {
        if let Some(m) = g.as_object_mut() {
            m.remove("auth_pass_set");
        }
    }
    let mut m = serde_json::Map::new();
    m.insert("virtual_servers".into(), doc["virtual_servers"].clone());
    m.insert("vrrp_groups".into(), groups);
    if !doc["ipvs_timeouts"].is_null() {
        m.insert("ipvs_timeouts".into(), doc["ipvs_timeouts"].clone());
    }
    let cfg =
        serde_json::from_value(Value::Object(m)).map_err(|e| CtlError::Decode(e.to_string()))?;
    Ok((cfg, etag))
}

/// `lbd import-keepalived`: reads FILE (with its includes) here, merges it into the running
/// lbd's configuration and replaces it (guarded by If-Match), or shows the diff with `dry_run`.
/// Returns the report to print.
pub async fn import_keepalived(
    url: &Api,
    file: &Path,
    node: &str,
    dry_run: bool,
    opts: crate::keepalived::ImportOptions,
) -> Result<String, CtlError> {
    let text = read(file)?;
    let client = &url.client;
    let (mut current, etag) = get_config(client, url).await?;
    stored_passwords(url, &mut current).await?;
    let imported =
        crate::keepalived::import_into_with(&current, &text, file, node, &FsIncludes, opts)?;
    let mut out = notes(&imported);
    let u = format!(
        "{url}/api/v1/config{}",
        if dry_run { "?dry_run=true" } else { "" }
    );
    let r = client
        .put(&u)
        .header("If-Match", etag)
        .json(&imported.config)
        .send()
        .await
        .map_err(|source| CtlError::Http {
            url: u.clone(),
            source,
        })?;
    let status = r.status().as_u16();
    let body: Value = r
        .json()
        .await
        .map_err(|e| CtlError::Decode(e.to_string()))?;
    if status >= 400 {
        return Err(CtlError::Api {
            status,
            body: body.to_string(),
        });
    }
    let changes = body["changes"].as_array().cloned().unwrap_or_default();
    for c in &changes {
        out.push_str(&format!(
            "{} {} {}\n",
            c["op"].as_str().unwrap_or("?"),
            c["kind"].as_str().unwrap_or("?"),
            c["key"].as_str().unwrap_or("?")
        ));
        for f in c["fields"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "    {}: {} -> {}\n",
                f["field"].as_str().unwrap_or("?"),
                f["from"],
                f["to"]
            ));
        }
    }
    out.push_str(&format!(
        "{} {} change(s); revision {}\n",
        if dry_run { "dry run:" } else { "applied:" },
        changes.len(),
        body["revision"]
    ));
    Ok(out)
}

fn read(file: &Path) -> Result<String, CtlError> {
    std::fs::read_to_string(file).map_err(|source| CtlError::Read {
        path: file.display().to_string(),
        source,
    })
}

/// The import's unsupported keywords and warnings, one per line with file:line.
fn notes(imported: &crate::keepalived::Imported) -> String {
    let mut out = String::new();
    for w in &imported.unsupported {
        out.push_str(&format!("{}: unsupported: {}\n", w.at, w.message));
    }
    for w in &imported.warnings {
        out.push_str(&format!("{}: warning: {}\n", w.at, w.message));
    }
    out
}

/// `lbd check-keepalived FILE`: the import's report for one file, with no daemon; an error for
/// anything the import would refuse.
pub fn check_keepalived(
    file: &Path,
    node: &str,
    opts: crate::keepalived::ImportOptions,
) -> Result<String, CtlError> {
    let text = read(file)?;
    let imported = crate::keepalived::check(&text, file, node, &FsIncludes, opts)?;
    let mut out = notes(&imported);
    out.push_str(&format!(
        "{}: ok: {} virtual server(s), {} real server(s), {} VRRP group(s); {} warning(s), {} unsupported\n",
        file.display(),
        imported.config.virtual_servers.len(),
        imported.config.real_server_count(),
        imported.config.vrrp_groups.len(),
        imported.warnings.len(),
        imported.unsupported.len()
    ));
    Ok(out)
}

/// Fills in the VRRP passwords `cfg` (read from the API) lacks: JSON reads never return them,
/// and the import compares the file's password with the stored one like any shared value. The
/// keepalived export is the one read that carries them, one node's groups at a time.
async fn stored_passwords(url: &Api, cfg: &mut Config) -> Result<(), CtlError> {
    let mut nodes: Vec<String> = cfg
        .vrrp_groups
        .iter()
        .flat_map(|g| g.nodes.iter().map(|n| n.node.clone()))
        .collect();
    nodes.sort();
    nodes.dedup();
    for node in nodes {
        if cfg.vrrp_groups.iter().all(|g| g.auth_pass.is_some()) {
            break;
        }
        let text = export_keepalived(url, &node).await?;
        let parsed = crate::keepalived::parser::parse(
            &text,
            Path::new("export"),
            &crate::keepalived::parser::NoIncludes,
        )
        .map_err(|e| CtlError::Decode(format!("the export does not parse: {e}")))?;
        for inst in parsed.iter().filter(|n| n.key == "vrrp_instance") {
            let pass = inst
                .children()
                .iter()
                .filter(|c| c.key == "authentication")
                .flat_map(|c| c.children())
                .find(|c| c.key == "auth_pass")
                .and_then(|c| c.args.first());
            let group = cfg
                .vrrp_groups
                .iter_mut()
                .find(|g| inst.args.first() == Some(&g.name));
            if let (Some(p), Some(g)) = (pass, group) {
                g.auth_pass = Some(p.clone());
            }
        }
    }
    Ok(())
}

/// `lbd export-keepalived`: the running lbd's configuration as keepalived.conf for `node`.
/// It is the API's export (the one read that includes the VRRP passwords).
pub async fn export_keepalived(url: &Api, node: &str) -> Result<String, CtlError> {
    let u = reqwest::Url::parse_with_params(
        &format!("{url}/api/v1/export/keepalived"),
        &[("node_name", node)],
    )
    .map_err(|e| CtlError::Decode(format!("bad --url {url}: {e}")))?;
    let (_, text) = call_text(url, reqwest::Method::GET, u.as_str(), None).await?;
    Ok(text)
}

/// What `lbd ctl` prints: the API's JSON as is (`--json`), or a table for people.
pub struct Output {
    pub json: bool,
    /// `list --stats`: traffic totals instead of connection counts (ipvsadm's --stats layout).
    pub stats: bool,
}

/// A GET of `path` (from `/api/v1/...`) on the API.
async fn get(api: &Api, path: &str) -> Result<(Value, String), CtlError> {
    call(api, reqwest::Method::GET, &format!("{api}{path}"), None).await
}

async fn call(
    api: &Api,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<(Value, String), CtlError> {
    let (_, text) = call_text(api, method, url, body).await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((v, text))
}

/// One request; an error status becomes the API's own message, with the field it names.
async fn call_text(
    api: &Api,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<(u16, String), CtlError> {
    let mut rb = api.client.request(method, url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.map_err(|source| CtlError::Http {
        url: url.to_string(),
        source,
    })?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|source| CtlError::Http {
        url: url.to_string(),
        source,
    })?;
    if status >= 400 {
        // The API's own message, with the field it names.
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let msg = match (v["error"]["field"].as_str(), v["error"]["message"].as_str()) {
            (Some(f), Some(m)) => format!("{f}: {m}"),
            (None, Some(m)) => m.to_string(),
            _ => text.clone(),
        };
        return Err(CtlError::Api { status, body: msg });
    }
    Ok((status, text))
}

fn hostport(addr: &str, port: &Value) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The scheduler flags as ipvsadm names them (`sh-fallback,sh-port`; flag-N for other
/// schedulers), or `None` without any.
fn sched_flags(sched: &str, flags: u32) -> Option<String> {
    // IP_VS_SVC_F_SCHED1/2/3
    let names: [&str; 3] = match sched {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    let set: Vec<&str> = [0x08, 0x10, 0x20]
        .iter()
        .zip(names)
        .filter(|(bit, _)| flags & **bit != 0)
        .map(|(_, n)| n)
        .collect();
    (!set.is_empty()).then(|| set.join(","))
}

/// `lbd ctl list`: the kernel's IPVS table as lbd reads it, in `ipvsadm -Ln`'s layout.
pub async fn list(url: &Api, out: &Output) -> Result<String, CtlError> {
    let (v, text) = get(url, "/api/v1/ipvs").await?;
    if out.json {
        return Ok(text + "\n");
    }
    let mut s = if out.stats {
        String::from("Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n")
    } else {
        String::from("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
    };
    let stats = |v: &Value| {
        format!(
            "{:>8} {:>8} {:>8} {:>8} {:>8}",
            v["conns"], v["inpkts"], v["outpkts"], v["inbytes"], v["outbytes"]
        )
    };
    for svc in v["services"].as_array().into_iter().flatten() {
        let head = match svc["fwmark"].as_u64() {
            Some(m) => format!(
                "FWM  {m}{}",
                if svc["family"] == "ipv6" { " IPv6" } else { "" }
            ),
            None => format!(
                "{:<4} {}",
                svc["protocol"].as_str().unwrap_or("?").to_uppercase(),
                hostport(svc["address"].as_str().unwrap_or("?"), &svc["port"])
            ),
        };
        if out.stats {
            s.push_str(&format!("{head:<34} {}\n", stats(&svc["stats"])));
            for d in svc["destinations"].as_array().into_iter().flatten() {
                let dest = format!(
                    "  -> {}",
                    hostport(d["address"].as_str().unwrap_or("?"), &d["port"])
                );
                s.push_str(&format!("{dest:<34} {}\n", stats(&d["stats"])));
            }
            continue;
        }
        let sched = svc["scheduler"].as_str().unwrap_or("?");
        let mut line = format!("{head} {sched}");
        let flags = svc["flags"].as_u64().unwrap_or(0) as u32;
        if let Some(f) = sched_flags(sched, flags) {
            line.push_str(&format!(" ({f})"));
        }
        if svc["timeout_secs"].as_u64().unwrap_or(0) > 0 {
            line.push_str(&format!(" persistent {}", svc["timeout_secs"]));
            let p = svc["netmask_prefix"].as_u64().unwrap_or(0) as u32;
            if svc["family"] == "ipv6" && p < 128 {
                line.push_str(&format!(" mask {p}"));
            } else if svc["family"] == "ipv4" && p < 32 {
                let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                line.push_str(&format!(" mask {}", std::net::Ipv4Addr::from(m)));
            }
        }
        if flags & 0x0004 != 0 {
            // IP_VS_SVC_F_ONEPACKET
            line.push_str(" ops");
        }
        s.push_str(&line);
        s.push('\n');
        for d in svc["destinations"].as_array().into_iter().flatten() {
            let fwd = match d["forwarding"].as_str() {
                Some("dr") => "Route",
                Some("nat") => "Masq",
                Some("tun") => "Tunnel",
                _ => "?",
            };
            s.push_str(&format!(
                "  -> {:<28} {:<7} {:<6} {:<10} {}\n",
                hostport(d["address"].as_str().unwrap_or("?"), &d["port"]),
                fwd,
                d["weight"],
                d["active_conns"],
                d["inactive_conns"]
            ));
        }
    }
    Ok(s)
}

/// The peer-sync lines of `lbd ctl status`: one per peer, plus conflicts.
fn sync_lines(sync: &Value, now: u64) -> String {
    let peers = sync["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        return "sync: alone (no --peer)\n".to_string();
    }
    let mut s = format!(
        "sync: {}{}\n",
        sync["mode"].as_str().unwrap_or("?").replace('_', " "),
        if sync["catching_up"].as_bool() == Some(true) {
            "  (catching up: the data plane waits for the peers)"
        } else {
            ""
        }
    );
    for p in &peers {
        let state = if !p["reachable"].as_bool().unwrap_or(false) {
            "UNREACHABLE"
        } else if p["in_sync"].as_bool().unwrap_or(false) {
            "in sync"
        } else {
            "OUT OF SYNC"
        };
        let contact = p["last_contact_unix_ms"]
            .as_u64()
            .map(|t| format!("  last contact {}", ago(t, now)))
            .unwrap_or_default();
        s.push_str(&format!(
            "sync: peer {}{}: {state}  authenticated {}  revision local {} peer {}{}{}{}\n",
            p["address"].as_str().unwrap_or("?"),
            p["node"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            if p["authenticated"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
            p["local_revision"].as_u64().unwrap_or(0),
            p["peer_revision"]
                .as_u64()
                .map_or("-".to_string(), |r| r.to_string()),
            if p["master"].as_bool().unwrap_or(false) {
                "  MASTER"
            } else {
                ""
            },
            contact,
            if p["following_us"].as_bool().unwrap_or(false) {
                "  follows us"
            } else {
                ""
            },
        ));
        if let Some(e) = p["error"].as_str() {
            s.push_str(&format!(
                "sync: peer {}: {e}\n",
                p["address"].as_str().unwrap_or("?")
            ));
        }
        if let Some(e) = p["refused"].as_str() {
            s.push_str(&format!(
                "sync: peer {}: we refused it: {e}\n",
                p["address"].as_str().unwrap_or("?")
            ));
        }
        for d in p["health_disagreements"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "sync: real server {} of virtual server {}: {} here, {} on the peer\n",
                d["real_server_id"].as_i64().unwrap_or(0),
                d["virtual_server_id"].as_i64().unwrap_or(0),
                if d["local_up"].as_bool().unwrap_or(false) {
                    "up"
                } else {
                    "down"
                },
                if d["peer_up"].as_bool().unwrap_or(false) {
                    "up"
                } else {
                    "down"
                },
            ));
        }
    }
    let conflicts = sync["conflicts"].as_u64().unwrap_or(0);
    if conflicts > 0 {
        s.push_str(&format!(
            "sync: {conflicts} conflict record(s): GET /api/v1/conflicts, then apply or dismiss\n"
        ));
    }
    s
}

/// `lbd ctl status`: node, revision, data plane and health, for people: no nulls, times as
/// "12 s ago", real servers by address next to their ids.
pub async fn status(url: &Api, out: &Output) -> Result<String, CtlError> {
    let (v, text) = get(url, "/api/v1/status").await?;
    if out.json {
        return Ok(text + "\n");
    }
    // Ids alone say little; the configuration gives their addresses.
    let vss = virtual_servers(url).await.unwrap_or_default();
    let now = crate::control::events::now_unix_ms();
    let d = &v["dataplane"];
    let n = |x: &Value| x.as_u64().unwrap_or(0);
    let mut s = format!(
        "node {}  revision {}  up {}\nconfig: {} virtual servers, {} real servers, {} VRRP groups\n",
        v["node"].as_str().unwrap_or("?"),
        n(&v["revision"]),
        duration(n(&v["uptime_secs"])),
        n(&v["virtual_servers"]),
        n(&v["real_servers"]),
        n(&v["vrrp_groups"])
    );
    let applied = match d["applied_revision"].as_u64() {
        Some(r) => format!("applied revision {r}"),
        None => "no revision applied yet".to_string(),
    };
    s.push_str(&format!(
        "data plane: {}{}  ({applied}, {} services, {} destinations, {} ops, {} drift repairs)\n",
        d["state"].as_str().unwrap_or("?"),
        d["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default(),
        n(&d["services"]),
        n(&d["destinations"]),
        n(&d["ops_applied"]),
        n(&d["drift_repairs"])
    ));
    if let Some(e) = d["last_error"].as_str() {
        s.push_str(&format!("data plane: last error: {e}\n"));
    }
    s.push_str(&connection_sync_lines(&d["connection_sync"]));
    let vr = &v["vrrp"];
    let groups = vr["groups"].as_array().cloned().unwrap_or_default();
    if !groups.is_empty() {
        s.push_str(&format!(
            "vrrp: thread {}\n",
            vr["scheduling"].as_str().unwrap_or("?")
        ));
    }
    for g in &groups {
        let c = &g["counters"];
        let master = match (g["master_address"].as_str(), g["master_priority"].as_u64()) {
            (Some(a), Some(p)) => format!("  master {a} (priority {p})"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "vrrp: {} vrid {} v{}: {}{}  [{} priority {}]{}  sent {} received {} auth errors {} checksum errors {}\n",
            g["name"].as_str().unwrap_or("?"),
            n(&g["vrid"]),
            n(&g["version"]),
            g["state"].as_str().unwrap_or("?").to_uppercase(),
            g["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default(),
            g["interface"].as_str().unwrap_or("-"),
            match (g["priority"].as_u64(), g["configured_priority"].as_u64()) {
                (Some(p), Some(c)) if p != c => format!("{p} (configured {c})"),
                (Some(p), _) => p.to_string(),
                _ => "-".to_string(),
            },
            master,
            n(&c["adverts_sent"]),
            n(&c["adverts_received"]),
            n(&c["auth_errors"]),
            n(&c["checksum_errors"]),
        ));
        if let Some(sg) = g["sync_group"].as_str() {
            s.push_str(&format!(
                "vrrp: {}   in sync group {sg}\n",
                g["name"].as_str().unwrap_or("?")
            ));
        }
        if let Some(w) = g["sync_waiting"].as_str() {
            s.push_str(&format!(
                "vrrp: {}   held in backup by its sync group ({w})\n",
                g["name"].as_str().unwrap_or("?")
            ));
        }
        for t in g["tracked"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "vrrp: {}   tracks {} weight {}: {}{}\n",
                g["name"].as_str().unwrap_or("?"),
                t["object"].as_str().unwrap_or("?"),
                t["weight"].as_i64().unwrap_or(0),
                t["state"].as_str().unwrap_or("?"),
                t["detail"]
                    .as_str()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
            ));
        }
        if let Some(t) = g["transitions"].as_array().and_then(|t| t.last()) {
            s.push_str(&format!(
                "vrrp: {}   last transition {} -> {} {}: {}\n",
                g["name"].as_str().unwrap_or("?"),
                t["from"].as_str().unwrap_or("?"),
                t["to"].as_str().unwrap_or("?"),
                ago(n(&t["time_unix_ms"]), now),
                transition_reason(t),
            ));
        }
    }
    s.push_str(&sync_lines(&v["sync"], now));
    for h in v["health"].as_array().into_iter().flatten() {
        let (vs_id, rs_id) = (
            h["virtual_server_id"].as_i64().unwrap_or(0),
            h["real_server_id"].as_i64().unwrap_or(0),
        );
        let (rs, vs) = match vss.iter().find(|v| v.id == vs_id) {
            Some(vs) => (rs_addr(vs, rs_id), vs_addr(vs)),
            None => (format!("#{rs_id}"), format!("virtual server {vs_id}")),
        };
        s.push_str(&format!(
            "health: {rs} (real server {rs_id}) of {vs} (id {vs_id}): {} since {}{}\n",
            h["state"].as_str().unwrap_or("?"),
            ago(n(&h["since_unix_ms"]), now),
            h["last_error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    Ok(s)
}

/// The sync daemons, one line each (`connection sync: master running on eth0 sync id 42 ...`),
/// and the connections that came by sync; nothing when lbd does not manage them and none runs.
fn connection_sync_lines(c: &Value) -> String {
    let managed = c["managed"].as_bool().unwrap_or(false);
    let daemons = c["daemons"].as_array().cloned().unwrap_or_default();
    if !managed && daemons.iter().all(|d| d["state"] != "running") {
        return String::new();
    }
    let mut s = String::new();
    for d in &daemons {
        let mut line = format!(
            "connection sync: {} {}",
            d["role"].as_str().unwrap_or("?"),
            d["state"].as_str().unwrap_or("?")
        );
        if let Some(i) = d["interface"].as_str() {
            line.push_str(&format!(
                " on {i} sync id {}",
                d["sync_id"].as_u64().unwrap_or(0)
            ));
        }
        for k in ["maxlen", "group", "port", "ttl"] {
            match &d[k] {
                Value::Null => {}
                Value::String(v) => line.push_str(&format!(" {k} {v}")),
                v => line.push_str(&format!(" {k} {v}")),
            }
        }
        if let Some(r) = d["reason"].as_str() {
            line.push_str(&format!(" ({}", r.replace('_', " ")));
            if let Some(m) = d["detail"].as_str() {
                line.push_str(&format!(": {m}"));
            }
            line.push(')');
        }
        s.push_str(&line);
        s.push('\n');
    }
    if let Some(n) = c["connections"].as_object() {
        s.push_str(&format!(
            "connection sync: {} connections, {} of them by sync\n",
            n.get("total").and_then(Value::as_u64).unwrap_or(0),
            n.get("synced").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    if let Some(f) = c["failback"].as_object() {
        let num = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0);
        s.push_str(&match f.get("reason").and_then(Value::as_str) {
            Some(r) => format!(
                "connection sync: failback gate open after {} ms ({}, {} connections by sync)\n",
                num("waited_ms"),
                r.replace('_', " "),
                num("synced")
            ),
            None => format!(
                "connection sync: failback gate waiting for the sync stream ({} of {} ms, {} connections by sync)\n",
                num("waited_ms"),
                num("bound_ms"),
                num("synced")
            ),
        });
    }
    s
}

/// A VRRP transition's reason in words: the status names it (`master_down`, with a `detail`
/// for some); the words are the ones the VRRP log line uses.
fn transition_reason(t: &Value) -> String {
    match serde_json::from_value::<crate::control::events::VrrpReason>(t["reason"].clone()) {
        Ok(r) => r.describe(t["detail"].as_str()),
        Err(_) => t["reason"].as_str().unwrap_or("?").to_string(),
    }
}

/// "42 s", "5 min", "3 h 12 min", "2 d 4 h".
fn duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// `lbd ctl delete VS [RS]`.
pub async fn delete(url: &Api, vs: i64, rs: Option<i64>, out: &Output) -> Result<String, CtlError> {
    let u = match rs {
        Some(r) => format!("{url}/api/v1/virtual-servers/{vs}/real-servers/{r}"),
        None => format!("{url}/api/v1/virtual-servers/{vs}"),
    };
    let (v, text) = call(url, reqwest::Method::DELETE, &u, None).await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!("deleted; revision {}\n", v["revision"])
    })
}

/// `lbd ctl create VIP:PORT [--scheduler] [--forwarding] [--protocol]`.
pub async fn create(url: &Api, body: Value, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(
        url,
        reqwest::Method::POST,
        &format!("{url}/api/v1/virtual-servers"),
        Some(body),
    )
    .await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!("created virtual server {}\n", v["id"])
    })
}

/// `lbd ctl add-real VS ADDR [--port] [--weight]`.
pub async fn add_real(url: &Api, vs: i64, body: Value, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(
        url,
        reqwest::Method::POST,
        &format!("{url}/api/v1/virtual-servers/{vs}/real-servers"),
        Some(body),
    )
    .await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!("added real server {}\n", v["id"])
    })
}

/// `lbd ctl connections`: the connection table in `ipvsadm -Lnc`'s layout.
pub async fn connections(url: &Api, out: &Output) -> Result<String, CtlError> {
    let (v, text) = get(url, "/api/v1/ipvs/connections").await?;
    if out.json {
        return Ok(text + "\n");
    }
    let mut s = String::from("IPVS connection entries\npro expire state       source                virtual               destination\n");
    for c in v.as_array().into_iter().flatten() {
        let e = c["expires_secs"].as_u64().unwrap_or(0);
        s.push_str(&format!(
            "{:<3} {:02}:{:02}  {:<11} {:<21} {:<21} {}\n",
            c["protocol"].as_str().unwrap_or("?"),
            e / 60,
            e % 60,
            c["state"].as_str().unwrap_or("?"),
            hostport(c["client"].as_str().unwrap_or("?"), &c["client_port"]),
            hostport(
                c["virtual_address"].as_str().unwrap_or("?"),
                &c["virtual_port"]
            ),
            hostport(
                c["destination"].as_str().unwrap_or("?"),
                &c["destination_port"]
            ),
        ));
    }
    Ok(s)
}

/// `--url`: a base URL, or just `host:port` (http is assumed).
pub fn base_url(url: &str) -> String {
    let u = url.trim().trim_end_matches('/');
    if u.contains("://") {
        u.to_string()
    } else {
        format!("http://{u}")
    }
}

/// The API a command talks to: its base URL, and the client that carries the bearer token
/// (`--token`, `LBD_TOKEN`) on every request. Displays as the base URL.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

/// How `lbd ctl` talks to an `https://` API: the CA to trust (`--ca`) and, for mutual TLS, the
/// client's certificate and key (`--cert`, `--key`). Without a CA an https URL is refused:
/// lbd's certificates come from the operator's CA, not a public one.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca: Option<std::path::PathBuf>,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

impl ClientTls {
    /// The rustls configuration, or `None` without a CA.
    fn config(&self) -> Result<Option<rustls::ClientConfig>, CtlError> {
        use crate::control::tls;
        let identity = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                Some((tls::load_certs("client certificate", c)?, tls::load_key(k)?))
            }
            (None, None) => None,
            _ => {
                return Err(CtlError::Usage(
                    "--cert and --key go together: give both for mutual TLS, or neither".into(),
                ))
            }
        };
        let Some(ca) = &self.ca else {
            if identity.is_some() {
                return Err(CtlError::Usage(
                    "--cert and --key need --ca (the CA of lbd's certificate)".into(),
                ));
            }
            return Ok(None);
        };
        // HTTP/1.1 only: the client is built without HTTP/2.
        let cfg = tls::client_config(tls::load_roots(ca)?, identity, &[b"http/1.1"]);
        Ok(Some(cfg.map_err(|e| match (&self.cert, &self.key) {
            (Some(c), Some(k)) => e.naming(c, k),
            _ => e,
        })?))
    }
}

impl Api {
    /// `url` with `token`, and for an `https://` URL the CA of `tls`.
    pub fn new(url: &str, token: Option<&str>, tls: &ClientTls) -> Result<Api, CtlError> {
        let base = base_url(url);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut v =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    CtlError::Usage("the token has characters a header cannot carry".into())
                })?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut builder = reqwest::Client::builder().default_headers(headers);
        match tls.config()? {
            Some(cfg) => builder = builder.use_preconfigured_tls(cfg),
            None if base.starts_with("https://") => {
                return Err(CtlError::Usage(
                    "an https URL needs --ca (or LBD_CA): the CA that signed lbd's certificate"
                        .into(),
                ))
            }
            None => {}
        }
        let client = builder
            .build()
            .map_err(|e| CtlError::Usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Api { base, client })
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

/// How the command line names a virtual server and (for some commands) one of its real
/// servers: `SERVICE [REAL]` where SERVICE is `VIP:PORT` (`-u` UDP, `--sctp` SCTP, TCP by
/// default) or an id, and REAL is `ADDR[:PORT]` or an id; with `-f MARK` the service is the
/// firewall-mark one and only REAL is given.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub protocol: Option<Protocol>,
    pub fwmark: Option<u32>,
    pub words: Vec<String>,
}

/// Whether a command needs a real server after the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Service,
    Real,
    ServiceOrReal,
}

enum Service {
    Id(i64),
    Ref(ServiceRef),
}

impl Target {
    fn split(&self, need: Need) -> Result<(Service, Option<String>), CtlError> {
        let mut words = self.words.iter();
        let service = match self.fwmark {
            Some(m) => Service::Ref(ServiceRef::Fwmark(m)),
            None => {
                let w = words.next().ok_or_else(|| {
                    CtlError::Usage(
                        "name the virtual server: VIP:PORT (or its id, or -f MARK)".into(),
                    )
                })?;
                match w.parse::<i64>() {
                    Ok(id) => Service::Id(id),
                    Err(_) => {
                        let (address, port) = ipvsadm::host_port(w)?;
                        let port = port.ok_or_else(|| {
                            CtlError::Usage(format!("{w}: a service is VIP:PORT (or its id)"))
                        })?;
                        Service::Ref(ServiceRef::Addr {
                            address,
                            port,
                            protocol: self.protocol.unwrap_or(Protocol::Tcp),
                        })
                    }
                }
            }
        };
        let real = words.next().cloned();
        if let Some(extra) = words.next() {
            return Err(CtlError::Usage(format!("unexpected argument {extra:?}")));
        }
        match (need, &real) {
            (Need::Real, None) => Err(CtlError::Usage(
                "name the real server: ADDR[:PORT] or its id".into(),
            )),
            (Need::Service, Some(r)) => Err(CtlError::Usage(format!("unexpected argument {r:?}"))),
            _ => Ok((service, real)),
        }
    }
}

async fn virtual_servers(url: &Api) -> Result<Vec<VirtualServer>, CtlError> {
    let (v, _) = get(url, "/api/v1/virtual-servers").await?;
    serde_json::from_value(v).map_err(|e| CtlError::Decode(e.to_string()))
}

fn describe(s: &Service) -> String {
    match s {
        Service::Id(id) => format!("virtual server {id}"),
        Service::Ref(ServiceRef::Fwmark(m)) => format!("fwmark {m}"),
        Service::Ref(ServiceRef::Addr {
            address,
            port,
            protocol,
        }) => format!(
            "{} {}",
            match protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            },
            std::net::SocketAddr::new(*address, *port)
        ),
    }
}

/// Finds the virtual server (and real server) a target names.
async fn resolve(
    url: &Api,
    t: &Target,
    need: Need,
) -> Result<(VirtualServer, Option<i64>), CtlError> {
    let (svc, real) = t.split(need)?;
    let vss = virtual_servers(url).await?;
    let vs = vss
        .into_iter()
        .find(|v| match &svc {
            Service::Id(id) => v.id == *id,
            Service::Ref(r) => r.matches(v),
        })
        .ok_or_else(|| {
            CtlError::Usage(format!(
                "no configured {} (lbd ctl list --config shows them)",
                describe(&svc)
            ))
        })?;
    let rs = match real {
        None => None,
        Some(w) => Some(match w.parse::<i64>() {
            // An id goes to the API as it is (a wrong one is its 404).
            Ok(id) => id,
            Err(_) => {
                let (address, port) = ipvsadm::host_port(&w).map_err(|_| {
                    CtlError::Usage(format!(
                        "{w:?} is not a real server of {}: give ADDR[:PORT] or its id",
                        describe(&svc)
                    ))
                })?;
                let port = port.or(vs.port);
                vs.real_servers
                    .iter()
                    .find(|r| r.address == address && r.port.or(vs.port) == port)
                    .map(|r| r.id)
                    .ok_or_else(|| {
                        CtlError::Usage(format!(
                            "{w} is not a real server of {} (lbd ctl list --config shows them)",
                            describe(&svc)
                        ))
                    })?
            }
        }),
    };
    Ok((vs, rs))
}

fn rs_addr(vs: &VirtualServer, id: i64) -> String {
    vs.real_server(id)
        .map(|r| {
            let port = r.port.or(vs.port).unwrap_or(0);
            std::net::SocketAddr::new(r.address, port).to_string()
        })
        .unwrap_or_else(|| format!("#{id}"))
}

fn vs_addr(vs: &VirtualServer) -> String {
    match vs.key() {
        Some(k) => k.to_string(),
        None => format!("virtual server {}", vs.id),
    }
}

/// `lbd ctl edit-real SERVICE REAL [--weight] [--forwarding]` (ipvsadm -e): a PATCH of the
/// named fields only, so the health check and its state stay.
pub async fn edit_real(
    url: &Api,
    t: &Target,
    patch: Value,
    out: &Output,
) -> Result<String, CtlError> {
    let (vs, rs) = resolve(url, t, Need::Real).await?;
    let rs = rs.ok_or_else(|| CtlError::Usage("name the real server".into()))?;
    if patch.as_object().is_none_or(|m| m.is_empty()) {
        return Err(CtlError::Usage(
            "nothing to change: give --weight and/or --forwarding".into(),
        ));
    }
    let u = format!("{url}/api/v1/virtual-servers/{}/real-servers/{rs}", vs.id);
    let (v, text) = call(url, reqwest::Method::PATCH, &u, Some(patch)).await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!(
            "real server {rs} ({}) of {}: weight {}, forwarding {}\n",
            rs_addr(&vs, rs),
            vs_addr(&vs),
            v["weight"],
            v["forwarding"].as_str().unwrap_or(match vs.forwarding {
                crate::model::Forwarding::Dr => "dr",
                crate::model::Forwarding::Nat => "nat",
                crate::model::Forwarding::Tun => "tun",
            })
        )
    })
}

/// `lbd ctl drain SERVICE REAL`: weight 0 (existing connections finish, no new ones). lbd keeps
/// no memory of the weight before; `undrain` sets the one it is given (default 1).
pub async fn drain(url: &Api, t: &Target, out: &Output) -> Result<String, CtlError> {
    set_weight(url, t, 0, "drained", out).await
}

/// `lbd ctl undrain SERVICE REAL [--weight N]`: back in rotation with weight N (default 1).
pub async fn undrain(url: &Api, t: &Target, weight: u32, out: &Output) -> Result<String, CtlError> {
    set_weight(url, t, weight, "undrained", out).await
}

async fn set_weight(
    url: &Api,
    t: &Target,
    weight: u32,
    what: &str,
    out: &Output,
) -> Result<String, CtlError> {
    let (vs, rs) = resolve(url, t, Need::Real).await?;
    let rs = rs.ok_or_else(|| CtlError::Usage("name the real server".into()))?;
    let u = format!("{url}/api/v1/virtual-servers/{}/real-servers/{rs}", vs.id);
    let (_, text) = call(
        url,
        reqwest::Method::PATCH,
        &u,
        Some(serde_json::json!({ "weight": weight })),
    )
    .await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!(
            "{what} real server {rs} ({}) of {} (weight {weight})\n",
            rs_addr(&vs, rs),
            vs_addr(&vs)
        )
    })
}

/// `lbd ctl delete SERVICE [REAL]`.
pub async fn delete_target(url: &Api, t: &Target, out: &Output) -> Result<String, CtlError> {
    let (vs, rs) = resolve(url, t, Need::ServiceOrReal).await?;
    delete(url, vs.id, rs, out).await
}

/// `lbd ctl add-real SERVICE ADDR[:PORT] [--weight] [--forwarding]`.
pub async fn add_real_to(
    url: &Api,
    t: &Target,
    mut body: Value,
    out: &Output,
) -> Result<String, CtlError> {
    let (_, real) = t.split(Need::Real)?;
    let real = real.ok_or_else(|| CtlError::Usage("name the real server".into()))?;
    let (address, port) = ipvsadm::host_port(&real)?;
    body["address"] = address.to_string().into();
    if let Some(p) = port {
        body["port"] = p.into();
    }
    let only = Target {
        words: t
            .words
            .iter()
            .take(usize::from(t.fwmark.is_none()))
            .cloned()
            .collect(),
        ..t.clone()
    };
    let (vs, _) = resolve(url, &only, Need::Service).await?;
    add_real(url, vs.id, body, out).await
}

/// `lbd ctl list --config`: the configured services with their ids, real servers with ids,
/// weights and health (what lbd wants; `list` shows what the kernel has).
pub async fn list_config(url: &Api, out: &Output) -> Result<String, CtlError> {
    let (cfg, text) = get(url, "/api/v1/config").await?;
    if out.json {
        return Ok(text + "\n");
    }
    let (st, _) = get(url, "/api/v1/status").await?;
    let health = |rs: i64| -> String {
        st["health"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["real_server_id"] == rs)
            .and_then(|h| h["state"].as_str())
            .unwrap_or("-")
            .to_string()
    };
    let vss: Vec<VirtualServer> = serde_json::from_value(cfg["virtual_servers"].clone())
        .map_err(|e| CtlError::Decode(e.to_string()))?;
    let mut s = format!(
        "revision {}\n{:<5} {:<34} {:<9} {}\n  {:<5} {:<32} {:<7} {:<7} {}\n",
        cfg["revision"],
        "Id",
        "Service",
        "Sched",
        "Forward",
        "Id",
        "RemoteAddress:Port",
        "Weight",
        "Forward",
        "Health"
    );
    let fwd = |f: crate::model::Forwarding| match f {
        crate::model::Forwarding::Dr => "dr",
        crate::model::Forwarding::Nat => "nat",
        crate::model::Forwarding::Tun => "tun",
    };
    for vs in &vss {
        let mut name = vs_addr(vs);
        if let Some(n) = &vs.name {
            name.push_str(&format!(" ({n})"));
        }
        s.push_str(&format!(
            "{:<5} {:<34} {:<9} {}\n",
            vs.id,
            name,
            vs.scheduler.kernel_name(),
            fwd(vs.forwarding)
        ));
        for rs in &vs.real_servers {
            let check = if rs.health_check.is_some() {
                health(rs.id)
            } else {
                "no check".into()
            };
            s.push_str(&format!(
                "  {:<5} {:<32} {:<7} {:<7} {}\n",
                rs.id,
                rs_addr(vs, rs.id),
                rs.weight,
                fwd(rs.forwarding.unwrap_or(vs.forwarding)),
                check
            ));
        }
    }
    Ok(s)
}

/// `lbd ctl save` (ipvsadm -S -n): the configured services and real servers as ipvsadm rules.
pub async fn save(url: &Api) -> Result<String, CtlError> {
    Ok(ipvsadm::save(&virtual_servers(url).await?))
}

/// `lbd ctl restore` (ipvsadm -R): applies ipvsadm rules to lbd's configuration in one
/// whole-config write guarded by its revision: `-A`/`-E` add or edit a service, `-a`/`-e` a
/// real server, `-D`/`-d` delete, `-C` clears the services. What the rules do not mention
/// (health checks, other services, VRRP groups) stays.
pub async fn restore(
    url: &Api,
    rules: &str,
    dry_run: bool,
    out: &Output,
) -> Result<String, CtlError> {
    use crate::cli::ipvsadm::Rule;
    let rules = ipvsadm::parse_rules(rules)?;
    let (mut doc, _) = get(url, "/api/v1/config").await?;
    let mut vss: Vec<VirtualServer> = serde_json::from_value(doc["virtual_servers"].take())
        .map_err(|e| CtlError::Decode(e.to_string()))?;
    let find = |vss: &mut Vec<VirtualServer>, r: &ServiceRef| vss.iter().position(|v| r.matches(v));
    let missing =
        |r: &ServiceRef| CtlError::Usage(format!("no service {}", describe(&Service::Ref(*r))));
    for rule in rules {
        match rule {
            Rule::Clear => vss.clear(),
            Rule::Service {
                edit,
                service,
                scheduler,
                persistence_timeout_secs,
                persistence_granularity,
                ipv6,
            } => {
                let i = match (find(&mut vss, &service), edit) {
                    (Some(i), _) => i,
                    (None, true) => return Err(missing(&service)),
                    (None, false) => {
                        let mut v = serde_json::json!({"real_servers": []});
                        match service {
                            ServiceRef::Fwmark(m) => {
                                v["fwmark"] = m.into();
                                v["family"] = if ipv6 { "ipv6" } else { "ipv4" }.into();
                            }
                            ServiceRef::Addr {
                                address,
                                port,
                                protocol,
                            } => {
                                v["address"] = address.to_string().into();
                                v["port"] = port.into();
                                v["protocol"] = serde_json::to_value(protocol).unwrap_or_default();
                            }
                        }
                        vss.push(
                            serde_json::from_value(v)
                                .map_err(|e| CtlError::Decode(e.to_string()))?,
                        );
                        vss.len() - 1
                    }
                };
                let v = &mut vss[i];
                v.scheduler = scheduler.unwrap_or(if edit {
                    v.scheduler
                } else {
                    Default::default()
                });
                if persistence_timeout_secs.is_some() || !edit {
                    v.persistence_timeout_secs = persistence_timeout_secs;
                }
                if let Some(m) = persistence_granularity {
                    v.persistence_granularity = Some(ipvsadm::mask_prefix(&m)?);
                }
            }
            Rule::DeleteService(service) => {
                let i = find(&mut vss, &service).ok_or_else(|| missing(&service))?;
                vss.remove(i);
            }
            Rule::Real {
                edit,
                service,
                address,
                port,
                forwarding,
                weight,
                upper_threshold,
                lower_threshold,
            } => {
                let i = find(&mut vss, &service).ok_or_else(|| missing(&service))?;
                let v = &mut vss[i];
                let port = port.or(v.port);
                let j = v
                    .real_servers
                    .iter()
                    .position(|r| r.address == address && r.port.or(v.port) == port);
                let j = match (j, edit) {
                    (Some(j), _) => j,
                    (None, true) => {
                        return Err(CtlError::Usage(format!(
                            "no real server {address} in {}",
                            describe(&Service::Ref(service))
                        )))
                    }
                    (None, false) => {
                        let mut r = serde_json::json!({"address": address.to_string()});
                        if let Some(p) = port {
                            r["port"] = p.into();
                        }
                        v.real_servers.push(
                            serde_json::from_value(r)
                                .map_err(|e| CtlError::Decode(e.to_string()))?,
                        );
                        v.real_servers.len() - 1
                    }
                };
                let r = &mut v.real_servers[j];
                if let Some(w) = weight {
                    r.weight = crate::model::Weight::new(u64::from(w)).map_err(CtlError::Usage)?;
                }
                if let Some(f) = forwarding {
                    if r.forwarding.unwrap_or(v.forwarding) != f {
                        r.forwarding = Some(f);
                    }
                }
                if upper_threshold.is_some() {
                    r.upper_threshold = upper_threshold;
                }
                if lower_threshold.is_some() {
                    r.lower_threshold = lower_threshold;
                }
            }
            Rule::DeleteReal {
                service,
                address,
                port,
            } => {
                let i = find(&mut vss, &service).ok_or_else(|| missing(&service))?;
                let v = &mut vss[i];
                let port = port.or(v.port);
                let before = v.real_servers.len();
                v.real_servers
                    .retain(|r| !(r.address == address && r.port.or(v.port) == port));
                if v.real_servers.len() == before {
                    return Err(CtlError::Usage(format!(
                        "no real server {address} in {}",
                        describe(&Service::Ref(service))
                    )));
                }
            }
        }
    }
    doc["virtual_servers"] =
        serde_json::to_value(&vss).map_err(|e| CtlError::Decode(e.to_string()))?;
    // The document carries its revision: a change made meanwhile is a 412, not a lost update.
    let u = format!(
        "{url}/api/v1/config{}",
        if dry_run { "?dry_run=true" } else { "" }
    );
    let (v, text) = call(url, reqwest::Method::PUT, &u, Some(doc)).await?;
    if out.json {
        return Ok(text + "\n");
    }
    let mut s = String::new();
    for c in v["changes"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "{} {} {}\n",
            c["op"].as_str().unwrap_or("?"),
            c["kind"].as_str().unwrap_or("?"),
            c["key"].as_str().unwrap_or("?")
        ));
    }
    s.push_str(&format!(
        "{} {} change(s); revision {}\n",
        if dry_run { "dry run:" } else { "applied:" },
        v["changes"].as_array().map_or(0, |c| c.len()),
        v["revision"]
    ));
    Ok(s)
}

/// `lbd ctl zero [SERVICE]` (ipvsadm -Z): zeroes the kernel's traffic counters of every
/// service, or of one (VIP:PORT, -u/--sctp, -f MARK with `ipv6` for -6, or a configured
/// service's id). The service need not be lbd's: ipvsadm -Z -t takes any.
pub async fn zero(url: &Api, t: &Target, ipv6: bool, out: &Output) -> Result<String, CtlError> {
    let mut u = reqwest::Url::parse(&format!("{url}/api/v1/ipvs/zero"))
        .map_err(|e| CtlError::Decode(format!("bad --url {url}: {e}")))?;
    if t.fwmark.is_some() || !t.words.is_empty() {
        let (svc, _) = t.split(Need::Service)?;
        let key = match svc {
            Service::Id(_) => resolve(url, t, Need::Service)
                .await?
                .0
                .key()
                .ok_or_else(|| CtlError::Usage("that virtual server has no identity".into()))?,
            Service::Ref(ServiceRef::Fwmark(mark)) => crate::model::VsKey::Fwmark {
                mark,
                family: if ipv6 {
                    crate::model::Family::Ipv6
                } else {
                    crate::model::Family::Ipv4
                },
            },
            Service::Ref(ServiceRef::Addr {
                address,
                port,
                protocol,
            }) => crate::model::VsKey::Addr {
                address,
                port,
                protocol,
            },
        };
        let mut q = u.query_pairs_mut();
        match key {
            crate::model::VsKey::Fwmark { mark, family } => {
                q.append_pair("fwmark", &mark.to_string());
                q.append_pair(
                    "family",
                    match family {
                        crate::model::Family::Ipv4 => "ipv4",
                        crate::model::Family::Ipv6 => "ipv6",
                    },
                );
            }
            crate::model::VsKey::Addr {
                address,
                port,
                protocol,
            } => {
                q.append_pair(
                    "protocol",
                    match protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                        Protocol::Sctp => "sctp",
                    },
                );
                q.append_pair("address", &address.to_string());
                q.append_pair("port", &port.to_string());
            }
        }
    }
    let (v, text) = call(url, reqwest::Method::POST, u.as_str(), None).await?;
    Ok(if out.json {
        text + "\n"
    } else {
        match v["zeroed"].as_str() {
            Some("all") | None => "zeroed the counters of every service\n".to_string(),
            Some(k) => format!("zeroed the counters of {k}\n"),
        }
    })
}

/// `lbd ctl timeouts --set TCP TCPFIN UDP` (ipvsadm --set): makes them lbd's configuration
/// (`PUT /api/v1/ipvs/timeouts`), which the data plane sets in the kernel and keeps there. A 0
/// leaves that one as the kernel has it; `0 0 0` stops managing them.
pub async fn set_timeouts(
    url: &Api,
    tcp: u32,
    tcp_fin: u32,
    udp: u32,
    dry_run: bool,
    out: &Output,
) -> Result<String, CtlError> {
    let u = format!(
        "{url}/api/v1/ipvs/timeouts{}",
        if dry_run { "?dry_run=true" } else { "" }
    );
    let body = serde_json::json!({"tcp_secs": tcp, "tcp_fin_secs": tcp_fin, "udp_secs": udp});
    let (v, text) = call(url, reqwest::Method::PUT, &u, Some(body)).await?;
    if out.json {
        return Ok(text + "\n");
    }
    if dry_run {
        let n = v["changes"].as_array().map_or(0, |c| c.len());
        return Ok(format!(
            "dry run: {n} change(s); revision {}\n",
            v["revision"]
        ));
    }
    Ok(if (tcp, tcp_fin, udp) == (0, 0, 0) {
        "lbd no longer manages the IPVS timeouts (the kernel keeps its own)\n".to_string()
    } else {
        format!(
            "Timeout (tcp tcpfin udp) configured: {} {} {} (0: left as the kernel has it)\n",
            v["tcp_secs"], v["tcp_fin_secs"], v["udp_secs"]
        )
    })
}

/// `lbd ctl timeouts` (ipvsadm -L --timeout): the kernel's, as ipvsadm shows them.
pub async fn timeouts(url: &Api, out: &Output) -> Result<String, CtlError> {
    let (v, text) = get(url, "/api/v1/ipvs").await?;
    if out.json {
        return Ok(text + "\n");
    }
    let t = &v["timeouts"];
    if t.is_null() {
        return Ok("the kernel did not report its timeouts\n".into());
    }
    Ok(format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t["tcp_secs"], t["tcp_fin_secs"], t["udp_secs"]
    ))
}

/// "12 s ago", "3 min ago", "2 h ago", "4 d ago".
pub fn ago(unix_ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(unix_ms) / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_reasons_print_the_words_they_always_did() {
        let t = serde_json::json!({"reason": "higher_priority_master",
            "detail": "192.168.10.101 (priority 200)"});
        assert_eq!(
            transition_reason(&t),
            "higher-priority master 192.168.10.101 (priority 200)"
        );
        let t = serde_json::json!({"reason": "master_stopped"});
        assert_eq!(transition_reason(&t), "the master sent priority 0");
        // An older lbd sent the words themselves.
        let t = serde_json::json!({"reason": "the master sent priority 0"});
        assert_eq!(transition_reason(&t), "the master sent priority 0");
    }
}
