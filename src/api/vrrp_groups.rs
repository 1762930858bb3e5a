//! `/api/v1/vrrp-groups[/{id}[/nodes/{node}]]`
//!
//! `auth_pass` is write-only: every read shows `auth_pass_set` instead (see
//! [`PublicGroup`]); a write without `auth_pass` keeps the stored one, `"auth_pass": ""` (or
//! `null` in a PATCH) clears it.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, PathId, Write, WriteQuery};
use super::patch::{
    body_as, parse_patch, patched, put_body, strip_group_read_only, take_revision, Body,
    PublicGroup,
};
use super::{created_or_summary, etag, write_response, written, WriteSummary};
use crate::control::service::{Service, ServiceError, WriteResult};
use crate::model::{Id, VrrpGroup, VrrpNode};

const TAG: &str = "vrrp-groups";

/// List VRRP groups (`auth_pass` is never shown: `auth_pass_set` says whether one is stored).
#[utoipa::path(get, path = "/api/v1/vrrp-groups", tag = TAG,
    responses((status = 200, body = Vec<VrrpGroup>)))]
pub async fn list(State(svc): State<Service>) -> Response {
    let snap = svc.snapshot();
    let groups: Vec<PublicGroup> = snap
        .config
        .vrrp_groups
        .iter()
        .map(|g| PublicGroup(g.clone()))
        .collect();
    etag(snap.revision, Json(groups))
}

/// A group body: the read-only fields a GET shows are accepted and dropped.
fn group_body(
    body: &[u8],
    opts: crate::control::service::WriteOptions,
    svc: &Service,
) -> Result<(VrrpGroup, crate::control::service::WriteOptions), ApiError> {
    let (m, opts) = put_body(body, opts, svc)?;
    let mut v = Value::Object(m);
    strip_group_read_only(&mut v);
    let Value::Object(m) = v else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    Ok((body_as(m)?, opts))
}

fn group_response(r: WriteResult<VrrpGroup>) -> Response {
    written(r.map_value(PublicGroup))
}

/// Create a VRRP group.
#[utoipa::path(post, path = "/api/v1/vrrp-groups", tag = TAG, params(WriteQuery),
    request_body = VrrpGroup,
    responses(
        (status = 201, body = VrrpGroup, description = "created"),
        (status = 200, body = WriteSummary, description = "dry run"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 409, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(svc): State<Service>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (g, opts) = group_body(&body, opts, &svc)?;
    let r = svc.create_vrrp_group(g, opts).await?;
    Ok(created_or_summary(r.map_value(PublicGroup), |g| {
        format!("/api/v1/vrrp-groups/{}", g.0.id)
    }))
}

/// Get one VRRP group.
#[utoipa::path(get, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 200, body = VrrpGroup), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> Result<Response, ApiError> {
    let (rev, g) = svc.get_vrrp_group(id)?;
    Ok(etag(rev, Json(PublicGroup(g))))
}

/// Replace a VRRP group: a full replacement (an omitted field gets its default, except
/// `auth_pass`, which is kept when omitted and cleared by `""`; to change some fields, use
/// PATCH). A GET's output is a valid body (`id` and `auth_pass_set` are ignored; a `revision`
/// must be the current one, as `If-Match`).
#[utoipa::path(put, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery), request_body = VrrpGroup,
    responses(
        (status = 200, body = VrrpGroup, description = "replaced (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (g, opts) = group_body(&body, opts, &svc)?;
    Ok(group_response(svc.replace_vrrp_group(id, g, opts).await?))
}

/// Applies a merge patch to a group inside the write lock. `"auth_pass": null` clears the
/// password (the service keeps an absent one).
fn patch_group(cur: &VrrpGroup, mut p: Map<String, Value>) -> Result<VrrpGroup, ServiceError> {
    p.remove("auth_pass_set");
    let clear_pass = matches!(p.get("auth_pass"), Some(Value::Null));
    let mut g: VrrpGroup = patched(cur, p)?;
    if clear_pass {
        g.auth_pass = Some(String::new());
    }
    Ok(g)
}

/// Change some fields of a VRRP group: a JSON Merge Patch (RFC 7396,
/// `application/merge-patch+json`; plain JSON is read the same way). Fields the patch does not
/// name keep their values; `null` resets a field to its default (`"auth_pass": null` removes the
/// password). `nodes`, when present, replaces the list; edit one node's entry with PATCH on
/// `/nodes/{node}` instead. Same validation, `If-Match`, `dry_run` and diff as PUT.
#[utoipa::path(patch, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "the fields to change, e.g. {\"preempt\": false}"),
    responses(
        (status = 200, body = VrrpGroup, description = "patched (or, with dry_run, a WriteSummary)"),
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
    let r = svc
        .update_vrrp_group(id, opts, |cur| patch_group(cur, p))
        .await?;
    Ok(group_response(r))
}

/// Delete a VRRP group.
#[utoipa::path(delete, path = "/api/v1/vrrp-groups/{id}", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    Ok(write_response(svc.delete_vrrp_group(id, opts).await?))
}

// ---- one director's entry of a group ------------------------------------------------------------

fn node_not_found(id: Id, node: &str) -> ServiceError {
    ServiceError::NotFound(format!("node {node:?} of VRRP group {id}"))
}

/// Get one director's entry of a group (priority, interface, initial state, source address).
#[utoipa::path(get, path = "/api/v1/vrrp-groups/{id}/nodes/{node}", tag = TAG,
    params(("id" = i64, Path), ("node" = String, Path, description = "the node name")),
    responses((status = 200, body = VrrpNode), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_node(
    State(svc): State<Service>,
    ApiPath((id, node)): ApiPath<(PathId, String)>,
) -> Result<Response, ApiError> {
    let id = id.0;
    let (rev, g) = svc.get_vrrp_group(id)?;
    let n = g.node(&node).ok_or_else(|| node_not_found(id, &node))?;
    Ok(etag(rev, Json(n)))
}

fn node_response(r: WriteResult<VrrpGroup>, node: &str) -> Result<Response, ApiError> {
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    let n = r
        .value
        .node(node)
        .cloned()
        .ok_or_else(|| node_not_found(r.value.id, node))?;
    Ok(etag(r.revision, Json(n)))
}

/// Put one director's entry: a full replacement of it, or a new entry when the group has none
/// for this node. `node` in the body may be left out; when given it must be the path's.
#[utoipa::path(put, path = "/api/v1/vrrp-groups/{id}/nodes/{node}", tag = TAG,
    params(("id" = i64, Path), ("node" = String, Path, description = "the node name"), WriteQuery),
    request_body = VrrpNode,
    responses(
        (status = 200, body = VrrpNode, description = "replaced or added (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn replace_node(
    State(svc): State<Service>,
    ApiPath((id, node)): ApiPath<(PathId, String)>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = id.0;
    let (mut m, opts) = put_body(&body, opts, &svc)?;
    match m.get("node") {
        None => {
            m.insert("node".into(), node.clone().into());
        }
        Some(Value::String(n)) if *n == node => {}
        Some(other) => {
            return Err(ServiceError::Invalid {
                field: "node".into(),
                message: format!("must be the node name of the path ({node:?}), got {other}"),
                rule: Some(crate::model::validate::rule::PATH_MISMATCH),
            }
            .into())
        }
    }
    let n: VrrpNode = body_as(m)?;
    let r = svc
        .update_vrrp_group(id, opts, |cur| {
            let mut g = cur.clone();
            match g.nodes.iter_mut().find(|x| x.node == node) {
                Some(x) => *x = n,
                None => g.nodes.push(n),
            }
            Ok(g)
        })
        .await?;
    node_response(r, &node)
}

/// Change some fields of one director's entry (e.g. `{"priority": 50}`): a JSON Merge Patch
/// (RFC 7396). Same validation, `If-Match`, `dry_run` and diff as PUT.
#[utoipa::path(patch, path = "/api/v1/vrrp-groups/{id}/nodes/{node}", tag = TAG,
    params(("id" = i64, Path), ("node" = String, Path, description = "the node name"), WriteQuery),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "the fields to change, e.g. {\"priority\": 50}"),
    responses(
        (status = 200, body = VrrpNode, description = "patched (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON, path or query"),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 415, body = ErrorBody, description = "a JSON Patch (RFC 6902) instead of a merge patch"),
        (status = 422, body = ErrorBody)))]
pub async fn patch_node(
    State(svc): State<Service>,
    ApiPath((id, node)): ApiPath<(PathId, String)>,
    Write(opts): Write,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let id = id.0;
    let mut p = parse_patch(&headers, &body)?;
    let opts = take_revision(&mut p, opts, &svc)?;
    // A rename through the patch is followed, so the answer shows the entry under its new name.
    let new_name = match p.get("node") {
        Some(Value::String(n)) => n.clone(),
        _ => node.clone(),
    };
    let r = svc
        .update_vrrp_group(id, opts, |cur| {
            let mut g = cur.clone();
            let i = g
                .nodes
                .iter()
                .position(|x| x.node == node)
                .ok_or_else(|| node_not_found(id, &node))?;
            g.nodes[i] = patched(&g.nodes[i], p)?;
            Ok(g)
        })
        .await?;
    node_response(r, &new_name)
}

/// Remove one director's entry from a group.
#[utoipa::path(delete, path = "/api/v1/vrrp-groups/{id}/nodes/{node}", tag = TAG,
    params(("id" = i64, Path), ("node" = String, Path, description = "the node name"), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn delete_node(
    State(svc): State<Service>,
    ApiPath((id, node)): ApiPath<(PathId, String)>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    let id = id.0;
    let r = svc
        .update_vrrp_group(id, opts, |cur| {
            let mut g = cur.clone();
            let before = g.nodes.len();
            g.nodes.retain(|x| x.node != node);
            if g.nodes.len() == before {
                return Err(node_not_found(id, &node));
            }
            Ok(g)
        })
        .await?;
    Ok(write_response(r.map_value(|_| ())))
}
