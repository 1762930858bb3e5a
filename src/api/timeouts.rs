//! `/api/v1/ipvs/timeouts`: IPVS's connection timeouts as configuration (`ipvsadm --set TCP
//! TCPFIN UDP`, keepalived's `lvs_timeouts`). The data plane sets them in the kernel and repairs
//! drift; what the kernel has now is in `GET /api/v1/ipvs` (`timeouts`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{Write, WriteQuery};
use super::patch::{body_as, parse_patch, patched, put_body, take_revision, Body};
use super::{etag, written, WriteSummary};
use crate::control::service::Service;
use crate::model::IpvsTimeouts;

const TAG: &str = "config";

/// What a PUT or PATCH answers: the timeouts now configured, or with `dry_run` what would
/// change. Only for the spec: `IpvsTimeouts` refuses unknown fields, so the two shapes need a
/// `oneOf` rather than one schema with a note.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TimeoutsWritten {
    Set(IpvsTimeouts),
    DryRun(WriteSummary),
}

/// The configured IPVS timeouts. All 0: lbd does not manage them (the kernel keeps its own).
#[utoipa::path(get, path = "/api/v1/ipvs/timeouts", tag = TAG,
    responses((status = 200, body = IpvsTimeouts)))]
pub async fn get(State(svc): State<Service>) -> Response {
    let (rev, t) = svc.get_ipvs_timeouts();
    etag(rev, Json(t))
}

/// Set the IPVS timeouts (`ipvsadm --set TCP TCPFIN UDP`): a full replacement, so an omitted
/// timeout is 0. A timeout of 0 is left as the kernel has it; all three 0 stops managing them
/// (the kernel keeps what it has). Each at most 2147483 s (the kernel's INT_MAX / HZ). With
/// `?dry_run=true` nothing is committed and the diff is returned.
#[utoipa::path(put, path = "/api/v1/ipvs/timeouts", tag = TAG, params(WriteQuery),
    request_body = IpvsTimeouts,
    responses(
        (status = 200, body = TimeoutsWritten, description = "set (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (m, opts) = put_body(&body, opts, &svc)?;
    let t: IpvsTimeouts = body_as(m)?;
    let r = svc.update_ipvs_timeouts(opts, |_| Ok(t)).await?;
    Ok(written(r))
}

/// Change some of the IPVS timeouts (JSON Merge Patch, e.g. `{"udp_secs": 60}`); `null` sets
/// one to 0 (not managed). Same validation, `If-Match` and `dry_run` as PUT.
#[utoipa::path(patch, path = "/api/v1/ipvs/timeouts", tag = TAG, params(WriteQuery),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "the timeouts to change, e.g. {\"udp_secs\": 60}"),
    responses(
        (status = 200, body = TimeoutsWritten, description = "patched (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 412, body = ErrorBody),
        (status = 415, body = ErrorBody, description = "a JSON Patch (RFC 6902) instead of a merge patch"),
        (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(svc): State<Service>,
    Write(opts): Write,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let mut p = parse_patch(&headers, &body)?;
    let opts = take_revision(&mut p, opts, &svc)?;
    let r = svc
        .update_ipvs_timeouts(opts, |cur| patched(cur, p))
        .await?;
    Ok(written(r))
}
