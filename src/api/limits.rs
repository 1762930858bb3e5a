//! The body gate: every request body is checked and read here, before any handler sees it.
//!
//! - A `Content-Length` over the route's limit is refused at once with 413, before a byte of the
//!   body is read (and the connection is closed, so the client cannot keep sending).
//! - A body without a length (chunked) is read up to the limit, then refused with 413.
//! - The whole body must arrive within [`HttpLimits::body_timeout`]: a stalled one gets 408.
//! - Bodies over 64 KiB share one memory budget ([`HttpLimits::body_memory_bytes`]), reserved
//!   whole when their first bytes arrive: a client that announces a large body and sends
//!   nothing holds nothing, and many large bodies at once wait for each other instead of
//!   growing the process.
//! - Handlers run at most [`HttpLimits::max_requests`] at once; the rest wait their turn.
//!   Requests without a body (`/healthz`, reads) are never held up by slow bodies, since a
//!   body is read before the request takes its turn.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Request limits of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Body of any route not named below (one virtual server, real server or group).
    pub body_bytes: usize,
    /// Body of `PUT /api/v1/config`: the whole table (2,277 virtual servers with 37,205 real
    /// servers and their checks is about 9 MiB of JSON).
    pub config_body_bytes: usize,
    /// Body of `POST /api/v1/import/keepalived`.
    pub import_body_bytes: usize,
    /// Bytes of request bodies held in memory at once, over all requests.
    pub body_memory_bytes: usize,
    /// Time to receive a whole body.
    pub body_timeout: Duration,
    /// Handlers running at once.
    pub max_requests: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            body_bytes: 1024 * 1024,
            config_body_bytes: 32 * 1024 * 1024,
            import_body_bytes: 8 * 1024 * 1024,
            body_memory_bytes: 96 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            max_requests: 256,
        }
    }
}

/// The shared state of the gate.
pub struct BodyGate {
    limits: HttpLimits,
    /// One permit per KiB of body held.
    memory: Arc<Semaphore>,
    turns: Arc<Semaphore>,
}

const KIB: usize = 1024;

impl BodyGate {
    pub fn new(limits: HttpLimits) -> Arc<BodyGate> {
        // The budget holds at least the largest single body, or that body could never be read.
        let budget = limits
            .body_memory_bytes
            .max(limits.body_bytes)
            .max(limits.config_body_bytes)
            .max(limits.import_body_bytes);
        let memory_kib = (budget / KIB).clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(BodyGate {
            limits,
            memory: Arc::new(Semaphore::new(memory_kib)),
            turns: Arc::new(Semaphore::new(limits.max_requests.max(1))),
        })
    }

    /// The body limit of a route.
    pub fn limit_for(&self, method: &Method, path: &str) -> usize {
        let path = path.trim_end_matches('/');
        if method == Method::PUT && path == "/api/v1/config" {
            self.limits.config_body_bytes
        } else if path == "/api/v1/import/keepalived" {
            self.limits.import_body_bytes
        } else {
            self.limits.body_bytes
        }
    }

    /// Permits for `bytes` of body; waits while the budget is spent.
    async fn hold(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes.div_ceil(KIB)).ok()?;
        self.memory.clone().acquire_many_owned(kib).await.ok()
    }
}

fn too_large(limit: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than this route's limit of {limit} bytes"),
    )
    .with_field("body")
    .into_response();
    // The body was not (all) read: the connection cannot carry another request.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Middleware: see the module documentation.
pub async fn gate(State(gate): State<Arc<BodyGate>>, req: Request, next: Next) -> Response {
    let limit = gate.limit_for(req.method(), req.uri().path());
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => {
                return ApiError::bad_request("Content-Length is not a number")
                    .with_field("Content-Length")
                    .into_response()
            }
        },
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let has_body = match declared {
        Some(n) => n > 0,
        None => req.headers().contains_key(header::TRANSFER_ENCODING),
    };
    let mut held = Vec::new();
    let req = if has_body {
        let (parts, body) = req.into_parts();
        match tokio::time::timeout(
            gate.limits.body_timeout,
            read_body(&gate, body, declared, limit, &mut held),
        )
        .await
        {
            Err(_) => {
                let mut r = ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        gate.limits.body_timeout.as_secs()
                    ),
                )
                .with_field("body")
                .into_response();
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
            Ok(Err(r)) => return *r,
            Ok(Ok(bytes)) => Request::from_parts(parts, Body::from(bytes)),
        }
    } else {
        req
    };
    let Ok(_turn) = gate.turns.clone().acquire_owned().await else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
        .into_response();
    };
    let resp = next.run(req).await;
    drop(held);
    resp
}

/// Bodies up to this size are read without the shared budget: what they can hold is bounded
/// by the connection cap, and a small write must never wait behind large uploads.
const SMALL_BODY: usize = 64 * KIB;

/// Reads `body` whole. A body that turns out larger than [`SMALL_BODY`] first reserves its
/// whole size (its `Content-Length`, or the route's limit when it has none) from the shared
/// budget in one step, so no request ever waits while holding part of the budget (eight large
/// bodies that each hold a part and wait for more would wait for ever). The reservation is made
/// when the first bytes arrive: a client that announces a body and sends nothing holds nothing.
async fn read_body(
    gate: &BodyGate,
    mut body: Body,
    declared: Option<u64>,
    limit: usize,
    held: &mut Vec<OwnedSemaphorePermit>,
) -> Result<Bytes, Box<Response>> {
    let mut buf: Vec<u8> = Vec::new();
    let size = declared.map_or(limit, |n| (n as usize).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Box::new(
                ApiError::bad_request(format!("cannot read the body: {e}"))
                    .with_field("body")
                    .into_response(),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = buf.len() + data.len();
        if len > limit {
            return Err(Box::new(too_large(limit)));
        }
        if held.is_empty() && (size > SMALL_BODY && !data.is_empty() || len > SMALL_BODY) {
            if let Some(p) = gate.hold(size).await {
                held.push(p);
            }
            if declared.is_some() {
                buf.reserve_exact(size.saturating_sub(buf.len()));
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_have_their_own_limits() {
        let g = BodyGate::new(HttpLimits::default());
        assert_eq!(
            g.limit_for(&Method::PUT, "/api/v1/config"),
            32 * 1024 * 1024
        );
        assert_eq!(
            g.limit_for(&Method::POST, "/api/v1/import/keepalived"),
            8 * 1024 * 1024
        );
        assert_eq!(
            g.limit_for(&Method::POST, "/api/v1/virtual-servers"),
            1024 * 1024
        );
        assert_eq!(g.limit_for(&Method::GET, "/api/v1/config"), 1024 * 1024);
    }
}
