//! The command-line client side: talks to a running lbd over its HTTP API.

use std::path::Path;

use serde_json::Value;

use crate::keepalived::parser::FsIncludes;
use crate::model::Config;

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
    #[error("no VRRP group has an entry for node {node} (nodes: {known})")]
    UnknownNode { node: String, known: String },
}

async fn get_config(client: &reqwest::Client, url: &str) -> Result<(Config, String), CtlError> {
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
    let cfg = serde_json::from_value(serde_json::json!({
        "virtual_servers": doc["virtual_servers"], "vrrp_groups": doc["vrrp_groups"]}))
    .map_err(|e| CtlError::Decode(e.to_string()))?;
    Ok((cfg, etag))
}

/// `lbd import-keepalived`: reads FILE (with its includes) here, merges it into the running
/// lbd's configuration and replaces it (guarded by If-Match), or shows the diff with `dry_run`.
/// Returns the report to print.
pub async fn import_keepalived(
    url: &str,
    file: &Path,
    node: &str,
    dry_run: bool,
    opts: crate::keepalived::ImportOptions,
) -> Result<String, CtlError> {
    let text = read(file)?;
    let client = reqwest::Client::new();
    let (current, etag) = get_config(&client, url).await?;
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

/// `lbd export-keepalived`: the running lbd's configuration as keepalived.conf for `node`; an
/// error when no VRRP group has an entry for `node` (a typo would otherwise export a file
/// without any vrrp_instance).
pub async fn export_keepalived(url: &str, node: &str) -> Result<String, CtlError> {
    let (cfg, _) = get_config(&reqwest::Client::new(), url).await?;
    if !cfg.vrrp_groups.is_empty() && !cfg.vrrp_groups.iter().any(|g| g.node(node).is_some()) {
        let mut known: Vec<&str> = cfg
            .vrrp_groups
            .iter()
            .flat_map(|g| g.nodes.iter().map(|n| n.node.as_str()))
            .collect();
        known.sort();
        known.dedup();
        return Err(CtlError::UnknownNode {
            node: node.to_string(),
            known: known.join(", "),
        });
    }
    Ok(crate::keepalived::export::export(&cfg, node))
}

/// What `lbd ctl` prints: the API's JSON as is (`--json`), or a table for people.
pub struct Output {
    pub json: bool,
    /// `list --stats`: traffic totals instead of connection counts (ipvsadm's --stats layout).
    pub stats: bool,
}

async fn call(
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<(Value, String), CtlError> {
    let client = reqwest::Client::new();
    let mut rb = client.request(method, url);
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
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((v, text))
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
pub async fn list(url: &str, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(reqwest::Method::GET, &format!("{url}/api/v1/ipvs"), None).await?;
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

/// `lbd ctl status`: node, revision, data plane and health.
pub async fn status(url: &str, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(reqwest::Method::GET, &format!("{url}/api/v1/status"), None).await?;
    if out.json {
        return Ok(text + "\n");
    }
    let d = &v["dataplane"];
    let mut s = format!(
        "node {}  revision {}  up {} s\nconfig: {} virtual servers, {} real servers, {} VRRP groups\n",
        v["node"].as_str().unwrap_or("?"),
        v["revision"],
        v["uptime_secs"],
        v["virtual_servers"],
        v["real_servers"],
        v["vrrp_groups"]
    );
    s.push_str(&format!(
        "data plane: {}{}  (applied revision {}, {} services, {} destinations, {} ops, {} drift repairs)\n",
        d["state"].as_str().unwrap_or("?"),
        d["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default(),
        d["applied_revision"],
        d["services"],
        d["destinations"],
        d["ops_applied"],
        d["drift_repairs"]
    ));
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
            g["vrid"],
            g["version"],
            g["state"].as_str().unwrap_or("?").to_uppercase(),
            g["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default(),
            g["interface"].as_str().unwrap_or("-"),
            g["priority"].as_u64().map_or("-".to_string(), |p| p.to_string()),
            master,
            c["adverts_sent"],
            c["adverts_received"],
            c["auth_errors"],
            c["checksum_errors"],
        ));
        if let Some(t) = g["transitions"].as_array().and_then(|t| t.last()) {
            s.push_str(&format!(
                "vrrp: {}   last transition {} -> {} at {} ms: {}\n",
                g["name"].as_str().unwrap_or("?"),
                t["from"].as_str().unwrap_or("?"),
                t["to"].as_str().unwrap_or("?"),
                t["time_unix_ms"],
                t["reason"].as_str().unwrap_or("?"),
            ));
        }
    }
    s.push_str("sync: no peer sync configured (single director)\n");
    for h in v["health"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "health: real server {} of virtual server {}: {}{}\n",
            h["real_server_id"],
            h["virtual_server_id"],
            h["state"].as_str().unwrap_or("?"),
            h["last_error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    Ok(s)
}

/// `lbd ctl drain VS RS`: weight 0 (existing connections finish, no new ones).
pub async fn drain(url: &str, vs: i64, rs: i64, out: &Output) -> Result<String, CtlError> {
    let u = format!("{url}/api/v1/virtual-servers/{vs}/real-servers/{rs}");
    let (mut cur, _) = call(reqwest::Method::GET, &u, None).await?;
    cur["weight"] = 0.into();
    let (v, text) = call(reqwest::Method::PUT, &u, Some(cur)).await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!("drained real server {} (weight 0)\n", v["id"])
    })
}

/// `lbd ctl delete VS [RS]`.
pub async fn delete(url: &str, vs: i64, rs: Option<i64>, out: &Output) -> Result<String, CtlError> {
    let u = match rs {
        Some(r) => format!("{url}/api/v1/virtual-servers/{vs}/real-servers/{r}"),
        None => format!("{url}/api/v1/virtual-servers/{vs}"),
    };
    let (v, text) = call(reqwest::Method::DELETE, &u, None).await?;
    Ok(if out.json {
        text + "\n"
    } else {
        format!("deleted; revision {}\n", v["revision"])
    })
}

/// `lbd ctl create VIP:PORT [--scheduler] [--forwarding] [--protocol]`.
pub async fn create(url: &str, body: Value, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(
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
pub async fn add_real(url: &str, vs: i64, body: Value, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(
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
pub async fn connections(url: &str, out: &Output) -> Result<String, CtlError> {
    let (v, text) = call(
        reqwest::Method::GET,
        &format!("{url}/api/v1/ipvs/connections"),
        None,
    )
    .await?;
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
