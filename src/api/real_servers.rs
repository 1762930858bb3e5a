//! `/api/v1/virtual-servers/{id}/real-servers[/{rs_id}]`

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;

use super::access;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, PathId, Write, WriteQuery};
use super::patch::{body_as, parse_patch, patched, put_body, take_revision, Body};
use super::{created_or_summary, etag, write_response, written, WriteSummary};
use crate::control::auth::{Caller, Role};
use crate::control::service::Service;
use crate::model::RealServer;

const TAG: &str = "real-servers";

/// List the real servers of a virtual server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}/real-servers", tag = TAG,
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),(status = 200, body = Vec<RealServer>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> Result<Response, ApiError> {
    let (rev, vs) = svc.get_virtual_server(id)?;
    Ok(etag(rev, Json(vs.real_servers)))
}

/// Add a real server to a virtual server.
#[utoipa::path(post, path = "/api/v1/virtual-servers/{id}/real-servers", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = RealServer,
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 201, body = RealServer, description = "created"),
        (status = 200, body = WriteSummary, description = "dry run"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
    ApiJson(rs): ApiJson<RealServer>,
) -> Result<Response, ApiError> {
    let r = svc.create_real_server(id, rs, opts).await?;
    Ok(created_or_summary(r, |rs| {
        format!("/api/v1/virtual-servers/{id}/real-servers/{}", rs.id)
    }))
}

/// Get one real server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),(status = 200, body = RealServer), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(PathId, PathId)>,
) -> Result<Response, ApiError> {
    let (id, rs_id) = (id.0, rs_id.0);
    let (rev, rs) = svc.get_real_server(id, rs_id)?;
    Ok(etag(rev, Json(rs)))
}

/// Replace a real server: a full replacement (an omitted field gets its default, so a body
/// without `health_check` removes the check; to change the weight and keep the rest, use
/// PATCH). A GET's output is a valid body (`id` is ignored; a `revision` must be the current
/// one, as `If-Match`).
#[utoipa::path(put, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path), WriteQuery), request_body = RealServer,
    responses(
        (status = 200, body = RealServer, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(PathId, PathId)>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (id, rs_id) = (id.0, rs_id.0);
    let (m, opts) = put_body(&body, opts, &svc)?;
    let rs: RealServer = body_as(m)?;
    let r = svc.replace_real_server(id, rs_id, rs, opts).await?;
    Ok(written(r))
}

/// Change some fields of a real server (e.g. `{"weight": 0}` drains it): a JSON Merge Patch
/// (RFC 7396, `application/merge-patch+json`; plain JSON is read the same way). Fields the
/// patch does not name keep their values, so the health check and its state stay; `null`
/// resets a field to its default (`"health_check": null` removes the check). Same validation,
/// `If-Match`, `dry_run` and diff as PUT.
#[utoipa::path(patch, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path), WriteQuery),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "the fields to change, e.g. {\"weight\": 0}"),
    responses(
        (status = 200, body = RealServer, description = "patched (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 415, body = ErrorBody, description = "a JSON Patch (RFC 6902) instead of a merge patch"),
        (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(PathId, PathId)>,
    Write(opts): Write,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (id, rs_id) = (id.0, rs_id.0);
    let mut p = parse_patch(&headers, &body)?;
    let opts = take_revision(&mut p, opts, &svc)?;
    // `operate` drains, undrains and weighs; anything else a patch names needs `admin`.
    if let Some(axum::Extension(Caller(role))) = caller {
        if role < Role::Admin {
            if let Some(field) = p.keys().find(|k| !access::operate_may_patch(k)) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "permission_denied",
                    format!(
                        "this token's role is {}: it may change weight only; {field} needs admin",
                        role.as_str()
                    ),
                )
                .with_field(field.clone()));
            }
        }
    }
    let r = svc
        .update_real_server(id, rs_id, opts, |cur| patched(cur, p))
        .await?;
    Ok(written(r))
}

/// Remove a real server.
#[utoipa::path(delete, path = "/api/v1/virtual-servers/{id}/real-servers/{rs_id}", tag = TAG,
    params(("id" = i64, Path), ("rs_id" = i64, Path), WriteQuery),
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),(status = 200, body = WriteSummary), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath((id, rs_id)): ApiPath<(PathId, PathId)>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    let (id, rs_id) = (id.0, rs_id.0);
    Ok(write_response(
        svc.delete_real_server(id, rs_id, opts).await?,
    ))
}
