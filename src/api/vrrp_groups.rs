//! `/api/v1/vrrp-groups[/{id}]`

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Write, WriteQuery};
use super::{created, etag, write_response, WriteSummary};
use crate::model::{Id, VrrpGroup};
use crate::service::Service;

const TAG: &str = "vrrp-groups";

/// List VRRP groups.
#[utoipa::path(get, path = "/api/v1/vrrp-groups", tag = TAG,
    responses((status = 200, body = Vec<VrrpGroup>)))]
pub async fn list(State(svc): State<Service>) -> Response {
    let snap = svc.snapshot();
    etag(snap.revision, Json(&snap.config.vrrp_groups))
}

/// Create a VRRP group.
#[utoipa::path(post, path = "/api/v1/vrrp-groups", tag = TAG, params(WriteQuery),
    request_body = VrrpGroup,
    responses(
        (status = 201, body = VrrpGroup, description = "created"),
        (status = 200, body = WriteSummary, description = "dry run"),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(svc): State<Service>,
    Write(opts): Write,
    ApiJson(g): ApiJson<VrrpGroup>,
) -> Result<Response, ApiError> {
    let r = svc.create_vrrp_group(g, opts).await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    let location = format!("/api/v1/vrrp-groups/{}", r.value.id);
    Ok(created(r.revision, &location, r.value))
}

/// Get one VRRP group.
#[utoipa::path(get, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = VrrpGroup), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
) -> Result<Response, ApiError> {
    let (rev, g) = svc.get_vrrp_group(id)?;
    Ok(etag(rev, Json(g)))
}

/// Replace a VRRP group.
#[utoipa::path(put, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = VrrpGroup,
    responses(
        (status = 200, body = VrrpGroup, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
    Write(opts): Write,
    ApiJson(g): ApiJson<VrrpGroup>,
) -> Result<Response, ApiError> {
    let r = svc.replace_vrrp_group(id, g, opts).await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    Ok(etag(r.revision, Json(r.value)))
}

/// Delete a VRRP group.
#[utoipa::path(delete, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    Ok(write_response(svc.delete_vrrp_group(id, opts).await?))
}
