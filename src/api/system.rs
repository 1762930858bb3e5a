//! `/api/v1/status`, `/api/v1/events`, `/api/v1/events/stream` and `/healthz`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::etag;
use crate::control::events::{Event, Watched};
use crate::control::service::Service;
use crate::control::status::Status;

const TAG: &str = "status";

/// This node, the committed revision, and what the data plane reports.
#[utoipa::path(get, path = "/api/v1/status", tag = TAG, responses((status = 200, body = Status)))]
pub async fn status(
    State(svc): State<Service>,
    auth: Option<axum::Extension<crate::control::auth::Auth>>,
) -> Response {
    let mut s = svc.status_with_connections().await;
    s.auth = auth.map(|a| a.status());
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

/// Recent events (the last 10,000, kept across restarts), oldest first.
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay the events with a larger sequence number first (without it, and without
    /// `Last-Event-ID`, the stream starts with the next event).
    #[param(minimum = 0)]
    pub since: Option<i64>,
}

/// How often an idle stream carries a comment, so proxies and clients see it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `data` of the `lagged` event that ends a stream whose reader fell behind.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lagged {
    /// How many events the reader missed when it was dropped.
    pub missed: u64,
    /// The last event it was sent: reconnect with `Last-Event-ID` (or `?since=`) set to it.
    pub last_seq: u64,
    pub message: String,
}

/// Live events as Server-Sent Events: each is a `message` whose `id` is its `seq` and whose
/// `data` is the event as `GET /api/v1/events` shows it. Events after `Last-Event-ID` (or
/// `?since=`) are replayed from the history first; without either, the stream starts with the
/// next event. A reader that falls more than 1,024 events
/// behind gets one `lagged` event and the end of the stream; it may reconnect from there. An
/// idle stream carries a comment every 15 s.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = TAG, params(StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "`id: <seq>` and `data: <Event JSON>` per event; `event: lagged` with `data: <Lagged JSON>` before the end when the reader fell behind")))]
pub async fn stream(
    State(svc): State<Service>,
    headers: HeaderMap,
    q: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let mut since = match q.since {
        Some(s) => u64::try_from(s)
            .map_err(|_| ApiError::bad_request("since must be 0 or more").with_field("query"))?,
        // Neither `since` nor `Last-Event-ID`: only what happens from now on.
        None => svc.events().last_seq(),
    };
    if let Some(v) = headers.get("last-event-id") {
        since = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID must be an event's seq (0 or more)")
                    .with_field("last-event-id")
            })?;
    }
    Ok(Sse::new(sse_events(svc.events().watch(since)))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

fn sse_events(
    w: impl Stream<Item = Watched> + Send + 'static,
) -> impl Stream<Item = Result<axum::response::sse::Event, Infallible>> + Send + 'static {
    use axum::response::sse::Event as Sse;
    w.map(|item| {
        Ok(match item {
            Watched::Event(e) => Sse::default()
                .id(e.seq.to_string())
                .json_data(&e)
                .unwrap_or_else(|_| Sse::default().comment("unserializable event")),
            Watched::Lagged { missed, last_seq } => {
                let body = Lagged {
                    missed,
                    last_seq,
                    message: format!(
                        "lagged: this reader fell {missed} events behind and was dropped; reconnect with Last-Event-ID: {last_seq}"
                    ),
                };
                Sse::default()
                    .event("lagged")
                    .json_data(&body)
                    .unwrap_or_else(|_| Sse::default().event("lagged"))
            }
        })
    })
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = TAG, responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok\n"
}
