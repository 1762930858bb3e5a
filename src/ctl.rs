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
) -> Result<String, CtlError> {
    let text = std::fs::read_to_string(file).map_err(|source| CtlError::Read {
        path: file.display().to_string(),
        source,
    })?;
    let client = reqwest::Client::new();
    let (current, etag) = get_config(&client, url).await?;
    let imported = crate::keepalived::import_into(&current, &text, file, node, &FsIncludes)?;
    let mut out = String::new();
    for w in &imported.unsupported {
        out.push_str(&format!("{}: unsupported: {}\n", w.at, w.message));
    }
    for w in &imported.warnings {
        out.push_str(&format!("{}: warning: {}\n", w.at, w.message));
    }
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

/// `lbd export-keepalived`: the running lbd's configuration as keepalived.conf for `node`.
pub async fn export_keepalived(url: &str, node: &str) -> Result<String, CtlError> {
    let (cfg, _) = get_config(&reqwest::Client::new(), url).await?;
    Ok(crate::keepalived::export::export(&cfg, node))
}
