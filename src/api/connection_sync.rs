//! `/api/v1/connection-sync`: IPVS connection synchronisation as configuration (the kernel's
//! sync daemons, `ipvsadm --start-daemon`, keepalived's `lvs_sync_daemon`). The data plane runs
//! a master and a backup daemon with these settings and repairs drift; what runs is in
//! `GET /api/v1/status` (`connection_sync`).

use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{Write, WriteQuery};
use super::patch::{body_as, put_body, Body};
use super::{etag, write_response, WriteSummary};
use crate::control::service::{Service, ServiceError, WriteResult};
use crate::model::ConnectionSync;

const TAG: &str = "config";

fn not_configured() -> ServiceError {
    ServiceError::NotFound(
        "connection sync (not configured: lbd leaves the kernel's sync daemons alone)".into(),
    )
}

/// What a PUT answers: the setting now configured, or with `dry_run` what would change.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum SyncWritten {
    Set(ConnectionSync),
    DryRun(WriteSummary),
}

/// The configured connection sync; 404 when lbd does not manage the kernel's sync daemons.
#[utoipa::path(get, path = "/api/v1/connection-sync", tag = TAG,
    responses((status = 200, body = ConnectionSync), (status = 404, body = ErrorBody)))]
pub async fn get(State(svc): State<Service>) -> Result<Response, ApiError> {
    match svc.get_connection_sync() {
        (rev, Some(c)) => Ok(etag(rev, Json(c))),
        (_, None) => Err(not_configured().into()),
    }
}

/// Set the connection sync (a full replacement): lbd runs a master and a backup sync daemon on
/// this interface with this sync id (both on every director, so established connections
/// survive failover and failback); a returning director preempts only once its backup daemon
/// has received the master's connections (the failback gate, see `failback_hold_ms`). `group` is a multicast address (422 with rule `multicast_group` otherwise). With
/// `?dry_run=true` nothing is committed and the diff is returned.
#[utoipa::path(put, path = "/api/v1/connection-sync", tag = TAG, params(WriteQuery),
    request_body = ConnectionSync,
    responses(
        (status = 200, body = SyncWritten, description = "set (or, with dry_run, a WriteSummary)"),
        (status = 400, body = ErrorBody, description = "malformed JSON or query"),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(svc): State<Service>,
    Write(opts): Write,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let (m, opts) = put_body(&body, opts, &svc)?;
    let c: ConnectionSync = body_as(m)?;
    let r = svc.set_connection_sync(opts, Some(c)).await?;
    sync_response(r)
}

/// Stop managing connection sync: lbd stops the sync daemons it runs and then leaves the
/// kernel's alone. 404 when not configured.
#[utoipa::path(delete, path = "/api/v1/connection-sync", tag = TAG, params(WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn delete(State(svc): State<Service>, Write(opts): Write) -> Result<Response, ApiError> {
    if svc.get_connection_sync().1.is_none() {
        return Err(not_configured().into());
    }
    let r = svc.set_connection_sync(opts, None).await?;
    Ok(write_response(r.map_value(|_| ())))
}

fn sync_response(r: WriteResult<Option<ConnectionSync>>) -> Result<Response, ApiError> {
    if r.dry_run {
        return Ok(write_response(r.map_value(|_| ())));
    }
    let rev = r.revision;
    match r.value {
        Some(c) => Ok(etag(rev, Json(c))),
        None => Err(not_configured().into()),
    }
}
