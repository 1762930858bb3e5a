//! `/api/v1/config`: the whole configuration at once.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, Write, WriteQuery};
use super::{etag, write_response, WriteSummary};
use crate::model::{Config, VirtualServer, VrrpGroup};
use crate::service::Service;

const TAG: &str = "config";

/// The whole configuration and its revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigDocument {
    pub revision: u64,
    #[schema(value_type = Vec<VirtualServer>)]
    pub virtual_servers: Vec<std::sync::Arc<VirtualServer>>,
    pub vrrp_groups: Vec<VrrpGroup>,
}

/// Get the whole configuration with its revision.
#[utoipa::path(get, path = "/api/v1/config", tag = TAG,
    responses((status = 200, body = ConfigDocument)))]
pub async fn get(State(svc): State<Service>) -> Response {
    let snap = svc.snapshot();
    let doc = ConfigDocument {
        revision: snap.revision,
        virtual_servers: snap.config.virtual_servers.clone(),
        vrrp_groups: snap.config.vrrp_groups.clone(),
    };
    etag(snap.revision, Json(doc))
}

/// Replace the whole configuration. Entities are matched to existing ones by identity
/// (address/port/protocol or fwmark; real server address and port; group name) and keep their
/// ids. With `?dry_run=true` nothing is committed and the diff is returned.
#[utoipa::path(put, path = "/api/v1/config", tag = TAG, params(WriteQuery),
    request_body = Config,
    responses(
        (status = 200, body = WriteSummary, description = "committed (or, with dry_run, would commit) these changes"),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    Write(opts): Write,
    ApiJson(cfg): ApiJson<Config>,
) -> Result<Response, ApiError> {
    let r = svc.replace_config(cfg, opts).await?;
    Ok(write_response(r.map_value(|_| ())))
}
