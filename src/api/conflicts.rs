//! `/api/v1/conflicts`: split edits that lost on this director (peer sync, see
//! `control::replication`), kept whole until an operator re-applies or dismisses them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, PathId, Write, WriteQuery};
use super::{write_response, WriteSummary};
use crate::control::service::{Conflict, Service};

const TAG: &str = "config";

/// List the kept conflict records, oldest first, each with what re-applying it would change.
#[utoipa::path(get, path = "/api/v1/conflicts", tag = TAG,
    responses((status = 200, body = Vec<Conflict>)))]
pub async fn list(State(svc): State<Service>) -> Result<Json<Vec<Conflict>>, ApiError> {
    Ok(Json(svc.conflicts().await?))
}

/// Re-apply a conflict record: its configuration replaces the current one (like
/// `PUT /api/v1/config`, so it reaches the peers and wins by revision), and the record is
/// dropped. With `?dry_run=true` nothing changes and the diff is returned.
#[utoipa::path(post, path = "/api/v1/conflicts/{id}/apply", tag = TAG,
    params(("id" = i64, Path), WriteQuery),
    responses((status = 200, body = WriteSummary), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
    Write(opts): Write,
) -> Result<Response, ApiError> {
    let r = svc.apply_conflict(id, opts).await?;
    Ok(write_response(r.map_value(|_| ())))
}

/// Dismiss a conflict record: it is dropped and the configuration stays as it is.
#[utoipa::path(delete, path = "/api/v1/conflicts/{id}", tag = TAG,
    params(("id" = i64, Path)),
    responses((status = 204, description = "dropped"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn dismiss(
    State(svc): State<Service>,
    ApiPath(PathId(id)): ApiPath<PathId>,
) -> Result<Response, ApiError> {
    svc.dismiss_conflict(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
