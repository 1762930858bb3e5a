//! `/api/v1/virtual-servers[/{id}]`

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{parse_json, ApiJson, ApiPath, Write, WriteQuery};
use super::{created, etag, write_response, WriteSummary};
use crate::model::{Id, VirtualServer};
use crate::service::Service;

const TAG: &str = "virtual-servers";

/// List virtual servers with their real servers.
#[utoipa::path(get, path = "/api/v1/virtual-servers", tag = TAG,
    responses((status = 200, body = Vec<VirtualServer>, headers(("ETag" = String, description = "config revision")))))]
pub async fn list(State(svc): State<Service>) -> Response {
    let snap = svc.snapshot();
    etag(snap.revision, Json(&snap.config.virtual_servers))
}

/// Create a virtual server (optionally with its real servers).
#[utoipa::path(post, path = "/api/v1/virtual-servers", tag = TAG, params(WriteQuery),
    request_body = VirtualServer,
    responses(
        (status = 201, body = VirtualServer, description = "created"),
        (status = 200, body = WriteSummary, description = "dry run: what would change"),
        (status = 409, body = ErrorBody, description = "a virtual server with this address/port/protocol or fwmark exists"),
        (status = 412, body = ErrorBody, description = "If-Match revision is stale"),
        (status = 422, body = ErrorBody, description = "invalid field")))]
pub async fn create(
    State(svc): State<Service>,
    Write(opts): Write,
    ApiJson(vs): ApiJson<VirtualServer>,
) -> Result<Response, ApiError> {
    let r = svc.create_virtual_server(vs, opts).await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    let location = format!("/api/v1/virtual-servers/{}", r.value.id);
    Ok(created(r.revision, &location, r.value))
}

/// Get one virtual server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = VirtualServer), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
) -> Result<Response, ApiError> {
    let (rev, vs) = svc.get_virtual_server(id)?;
    Ok(etag(rev, Json(vs)))
}

/// Replace a virtual server. Its real servers are kept when the body has no `real_servers`
/// field, and replaced by the given list when it has one.
#[utoipa::path(put, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = VirtualServer,
    responses(
        (status = 200, body = VirtualServer, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
    Write(opts): Write,
    body: Bytes,
) -> Result<Response, ApiError> {
    let vs: VirtualServer = parse_json(&body)?;
    let has_real_servers = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v.get("real_servers").is_some());
    let r = svc
        .replace_virtual_server(id, vs, has_real_servers, opts)
        .await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    Ok(etag(r.revision, Json(r.value)))
}

/// Delete a virtual server and its real servers.
#[utoipa::path(delete, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    Ok(write_response(svc.delete_virtual_server(id, opts).await?))
}
