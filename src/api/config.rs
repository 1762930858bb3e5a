//! `/api/v1/config`: the whole configuration at once.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{Write, WriteQuery};
use super::patch::{body_as, put_body, strip_config_read_only, Body, PublicGroup};
use super::{etag, write_response, WriteSummary};
use crate::control::service::Service;
use crate::model::{Config, ConnectionSync, IpvsTimeouts, VirtualServer, VrrpGroup, VrrpSettings};

const TAG: &str = "config";

/// The whole configuration and its revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigDocument {
    pub revision: u64,
    #[schema(value_type = Vec<VirtualServer>)]
    pub virtual_servers: Vec<std::sync::Arc<VirtualServer>>,
    /// `auth_pass` is never shown; `auth_pass_set` says whether one is stored.
    #[schema(value_type = Vec<VrrpGroup>)]
    pub vrrp_groups: Vec<PublicGroup>,
    /// IPVS's connection timeouts when lbd manages them (also `/api/v1/ipvs/timeouts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipvs_timeouts: Option<IpvsTimeouts>,
    /// IPVS connection sync when lbd manages it (also `/api/v1/connection-sync`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_sync: Option<ConnectionSync>,
    /// VRRP sync groups and strict mode (also `/api/v1/vrrp-settings`); absent: the defaults.
    #[serde(skip_serializing_if = "VrrpSettings::is_default")]
    pub vrrp_settings: VrrpSettings,
}

/// Get the whole configuration with its revision.
#[utoipa::path(get, path = "/api/v1/config", tag = TAG,
    responses((status = 200, body = ConfigDocument)))]
pub async fn get(State(svc): State<Service>) -> Response {
    let snap = svc.snapshot();
    let doc = ConfigDocument {
        revision: snap.revision,
        virtual_servers: snap.config.virtual_servers.clone(),
        vrrp_groups: snap
            .config
            .vrrp_groups
            .iter()
            .map(|g| PublicGroup(g.clone()))
            .collect(),
        ipvs_timeouts: snap.config.ipvs_timeouts,
        connection_sync: snap.config.connection_sync.clone(),
        vrrp_settings: snap.config.vrrp_settings.clone(),
    };
    etag(snap.revision, Json(doc))
}

/// Replace the whole configuration (a full replacement: what the body leaves out is removed).
/// Entities are matched to existing ones by identity (address/port/protocol or fwmark; real
/// server address and port; group name) and keep their ids. A GET's output is a valid body: ids
/// and `auth_pass_set` are ignored, a group without `auth_pass` keeps its stored one (`""`
/// clears it), and `revision` must be the current one, as `If-Match` (412 otherwise). With
/// `?dry_run=true` nothing is committed and the diff is returned.
#[utoipa::path(put, path = "/api/v1/config", tag = TAG, params(WriteQuery),
    request_body = Config,
    responses(
        (status = 200, body = WriteSummary, description = "committed (or, with dry_run, would commit) these changes"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (mut m, opts) = put_body(&body, opts, &svc)?;
    strip_config_read_only(&mut m);
    let cfg: Config = body_as(m)?;
    let r = svc.replace_config(cfg, opts).await?;
    Ok(write_response(r.map_value(|_| ())))
}
