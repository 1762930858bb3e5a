//! `POST /api/v1/import/keepalived`: one director's keepalived.conf in, merged into the config.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::etag;
use super::extract::Write;
use crate::keepalived::parser::NoIncludes;
use crate::keepalived::Warning;
use crate::model::Change;
use crate::service::Service;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The director this file belongs to: its state, priority and interface become this node's
    /// entries of the VRRP groups.
    #[param(min_length = 1)]
    pub node_name: String,
    /// Validate and return the diff without committing (true/false/1/0).
    #[serde(default, deserialize_with = "super::extract::query_bool")]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub revision: u64,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Where lbd's reading differs from keepalived's, or something was adjusted.
    pub warnings: Vec<Warning>,
    /// Keywords lbd does not support; they were not imported.
    pub unsupported: Vec<Warning>,
}

/// Import a keepalived.conf (the request body, plain text). `include` is refused here: import
/// files with includes with `lbd import-keepalived FILE`.
#[utoipa::path(post, path = "/api/v1/import/keepalived", tag = "config", params(ImportQuery),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 200, body = ImportResult),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody, description = "a syntax or value error, with file:line")))]
pub async fn keepalived(
    State(svc): State<Service>,
    q: Result<Query<ImportQuery>, QueryRejection>,
    Write(mut opts): Write,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    if q.node_name.trim().is_empty() {
        return Err(ApiError::bad_request("node_name must name the director").with_field("query"));
    }
    opts.dry_run = q.dry_run;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text").with_field("body"))?;
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            "the body is empty: send the keepalived.conf itself (curl --data-binary @keepalived.conf)",
        )
        .with_field("body"));
    }
    let nodes = crate::keepalived::parser::parse(
        text,
        std::path::Path::new("keepalived.conf"),
        &NoIncludes,
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            e.to_string(),
        )
        .with_field("body")
    })?;
    let imported = crate::keepalived::import::convert(&nodes, &q.node_name).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            e.to_string(),
        )
        .with_field("body")
    })?;
    let r = svc.import_keepalived(imported, opts).await?;
    let res = ImportResult {
        revision: r.revision,
        dry_run: r.dry_run,
        changes: r.changes,
        warnings: r.value.warnings,
        unsupported: r.value.unsupported,
    };
    Ok(etag(res.revision, Json(res)))
}
