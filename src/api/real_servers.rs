//! `/api/v1/virtual-servers/{id}/real-servers[/{rs_id}]`

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, Write, WriteQuery};
use super::{created, etag, write_response, WriteSummary};
use crate::model::{Id, RealServer};
use crate::service::Service;

const TAG: &str = "real-servers";

/// List the real servers of a virtual server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}/real-servers", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RealServer>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
) -> Result<Response, ApiError> {
    let (rev, vs) = svc.get_virtual_server(id)?;
    Ok(etag(rev, Json(vs.real_servers)))
}

/// Add a real server to a virtual server.
#[utoipa::path(post, path = "/api/v1/virtual-servers/{id}/real-servers", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = RealServer,
    responses(
        (status = 201, body = RealServer, description = "created"),
        (status = 200, body = WriteSummary, description = "dry run"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(svc): State<Service>,
    ApiPath(id): ApiPath<Id>,
    Write(opts): Write,
    ApiJson(rs): ApiJson<RealServer>,
) -> Result<Response, ApiError> {
    let r = svc.create_real_server(id, rs, opts).await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    let location = format!("/api/v1/virtual-servers/{id}/real-servers/{}", r.value.id);
    Ok(created(r.revision, &location, r.value))
}

/// Get one real server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path)),
    responses((status = 200, body = RealServer), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(Id, Id)>,
) -> Result<Response, ApiError> {
    let (rev, rs) = svc.get_real_server(id, rs_id)?;
    Ok(etag(rev, Json(rs)))
}

/// Replace a real server (e.g. change its weight; weight 0 drains it).
#[utoipa::path(put, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path), WriteQuery), request_body = RealServer,
    responses(
        (status = 200, body = RealServer, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(Id, Id)>,
    Write(opts): Write,
    ApiJson(rs): ApiJson<RealServer>,
) -> Result<Response, ApiError> {
    let r = svc.replace_real_server(id, rs_id, rs, opts).await?;
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    Ok(etag(r.revision, Json(r.value)))
}

/// Remove a real server.
#[utoipa::path(delete, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(Id, Id)>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    Ok(write_response(
        svc.delete_real_server(id, rs_id, opts).await?,
    ))
}
