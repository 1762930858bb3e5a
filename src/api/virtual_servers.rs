//! `/api/v1/virtual-servers[/{id}]`

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, PathId, Write, WriteQuery};
use super::patch::{
    body_as, from_value, merge_patch, parse_patch, put_body, refuse_unknown_nulls, take_revision,
    to_value, Body,
};
use super::{created_or_summary, etag, write_response, written, WriteSummary};
use crate::control::service::Service;
use crate::model::VirtualServer;

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
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
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
    Ok(created_or_summary(r, |vs| {
        format!("/api/v1/virtual-servers/{}", vs.id)
    }))
}

/// Get one virtual server.
#[utoipa::path(get, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),(status = 200, body = VirtualServer), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> Result<Response, ApiError> {
    let (rev, vs) = svc.get_virtual_server(id)?;
    Ok(etag(rev, Json(vs)))
}

/// Replace a virtual server: a full replacement of its own fields (an omitted field gets its
/// default, as on create; to change some fields and keep the rest, use PATCH). Its real servers
/// are kept when the body has no `real_servers` field, and replaced by the given list when it
/// has one (same address and port keep their ids and health state). A GET's output is a valid
/// body: `id` is ignored, and a `revision` must be the current one, as `If-Match`.
#[utoipa::path(put, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = VirtualServer,
    responses(
        (status = 200, body = VirtualServer, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (m, opts) = put_body(&body, opts, &svc)?;
    let has_real_servers = m.contains_key("real_servers");
    let vs: VirtualServer = body_as(m)?;
    let r = svc
        .replace_virtual_server(id, vs, has_real_servers, opts)
        .await?;
    Ok(written(r))
}

/// Change some fields of a virtual server: a JSON Merge Patch (RFC 7396,
/// `application/merge-patch+json`; plain JSON is read the same way). Fields the patch does not
/// name keep their values, `null` resets a field to its default. `real_servers`, when present,
/// replaces the list (an array is replaced whole; same address and port keep their ids and
/// health state); edit one real server with PATCH on it instead. Same validation, `If-Match`,
/// `dry_run` and diff as PUT.
#[utoipa::path(patch, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "the fields to change, e.g. {\"scheduler\": \"wlc\"}"),
    responses(
        (status = 200, body = VirtualServer, description = "patched (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 415, body = ErrorBody, description = "a JSON Patch (RFC 6902) instead of a merge patch"),
        (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let mut p = parse_patch(&headers, &body)?;
    let opts = take_revision(&mut p, opts, &svc)?;
    let replace_real_servers = p.contains_key("real_servers");
    let r = svc
        .update_virtual_server(id, opts, |cur| {
            let mut v = to_value(cur)?;
            if let (false, Value::Object(m)) = (replace_real_servers, &mut v) {
                // Kept by the service as they are; no need to parse them again.
                m.remove("real_servers");
            }
            refuse_unknown_nulls::<crate::model::VirtualServer>(&v, &p)?;
            merge_patch(&mut v, p);
            Ok((from_value(v)?, replace_real_servers))
        })
        .await?;
    Ok(written(r))
}

/// Delete a virtual server and its real servers.
#[utoipa::path(delete, path = "/api/v1/virtual-servers/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    responses(
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),(status = 200, body = WriteSummary), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    Ok(write_response(svc.delete_virtual_server(id, opts).await?))
}
