//! `/api/v1/status`, `/api/v1/events` and `/healthz`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::etag;
use crate::events::Event;
use crate::service::Service;
use crate::status::Status;

const TAG: &str = "status";

/// This node, the committed revision, and what the data plane reports.
#[utoipa::path(get, path = "/api/v1/status", tag = TAG, responses((status = 200, body = Status)))]
pub async fn status(State(svc): State<Service>) -> Response {
    let s = svc.status();
    etag(s.revision, Json(s))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a larger sequence number.
    #[serde(default)]
    #[param(minimum = 0)]
    pub since: i64,
}

/// Recent events (the last 256), oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = TAG, params(EventsQuery),
    responses((status = 200, body = Vec<Event>)))]
pub async fn events(
    State(svc): State<Service>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Vec<Event>>, ApiError> {
    let Query(q) = q?;
    let since = u64::try_from(q.since)
        .map_err(|_| ApiError::bad_request("since must be 0 or more").with_field("query"))?;
    Ok(Json(svc.events().recent(since)))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = TAG, responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}
