//! `GET /api/v1/export/keepalived`: the configuration as one director's keepalived.conf.
//!
//! The one read that contains the VRRP `auth_pass` (keepalived needs it in the file); every
//! other read shows `auth_pass_set` only.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::etag;
use crate::control::service::Service;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The director the file is for: its entries of the VRRP groups become the state, priority
    /// and interface of each `vrrp_instance`.
    pub node_name: String,
}

/// The configuration as keepalived.conf for one director. **Contains secrets**: the VRRP
/// `auth_pass` of every group, in clear (keepalived reads it from the file), unlike every other
/// read of the API.
#[utoipa::path(get, path = "/api/v1/export/keepalived", tag = "config", params(ExportQuery),
    responses(
        (status = 200, body = String, content_type = "text/plain",
            description = "keepalived.conf, including each VRRP group's auth_pass (a secret)"),
        (status = 400, body = ErrorBody, description = "node_name is missing"),
        (status = 404, body = ErrorBody, description = "no VRRP group has an entry for node_name")))]
pub async fn keepalived(
    State(svc): State<Service>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    // The snapshot, not the public view: the export is the one place the secret goes.
    let snap = svc.snapshot();
    // A typo in the node name would otherwise export a file without any vrrp_instance.
    let groups = &snap.config.vrrp_groups;
    if !groups.is_empty() && !groups.iter().any(|g| g.node(&q.node_name).is_some()) {
        let mut known: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.nodes.iter().map(|n| n.node.as_str()))
            .collect();
        known.sort();
        known.dedup();
        return Err(ApiError::not_found(format!(
            "no VRRP group has an entry for node {} (nodes: {})",
            q.node_name,
            known.join(", ")
        ))
        .with_field("node_name"));
    }
    let text = crate::keepalived::export::export(&snap.config, &q.node_name);
    Ok(etag(
        snap.revision,
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
    ))
}
