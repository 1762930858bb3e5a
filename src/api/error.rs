//! JSON errors: `{"error": {"code", "message", "field"?}}` with the HTTP status that fits.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::service::ServiceError;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request` (400), `invalid_argument` (422),
    /// `not_found` (404), `already_exists` (409), `failed_precondition` (412),
    /// `method_not_allowed` (405), `request_timeout` (408), `payload_too_large` (413),
    /// `unavailable` (503), `internal` (500), `unauthenticated` (401: no valid bearer token),
    /// `permission_denied` (403: the token's role is not enough), `forbidden_origin` (403: a
    /// foreign `Host` or `Origin`).
    pub code: String,
    pub message: String,
    /// The offending field as a path into the request body, e.g. `real_servers[0].weight`;
    /// `body`, `query`, `path` or a header name when the error is about one of those.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On a 422 that broke a rule between fields (or beyond what the request schema can say),
    /// the rule's code; see the description of this schema's `rule` values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// On a 500 only: the id under which the server logged what went wrong (the response never
    /// carries internal details).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<&'static str>,
    pub error_id: Option<String>,
}

/// A fresh id for an internal error: the log line and the response both carry it.
pub fn error_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    // A per-process sequence mixed with the clock: unique within a run, and unlikely to repeat
    // across restarts, which is all a log search needs.
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    format!("{:012x}-{seq:04x}", now & 0xffff_ffff_ffff)
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            rule: None,
            error_id: None,
        }
    }

    /// A 500 that names an id, logged with the real cause, instead of the cause itself.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, error = %cause, "request failed");
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error; the server's log has the details under error id {id}"),
        );
        e.error_id = Some(id);
        e
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty()).then_some(f);
        self
    }

    /// Names the rule (`model::validate::rule`) a 422 is about.
    pub fn with_rule(mut self, rule: Option<&'static str>) -> Self {
        self.rule = rule;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::Invalid {
                field,
                message,
                rule,
            } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_argument",
                message,
            )
            .with_field(field)
            .with_rule(rule),
            ServiceError::Conflict { field, message } => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", message).with_field(field)
            }
            ServiceError::NotFound(_) => ApiError::not_found(message),
            ServiceError::RevisionMismatch { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "failed_precondition",
                message,
            )
            .with_field("If-Match"),
            ServiceError::Store(_) | ServiceError::Internal(_) => ApiError::internal(&message),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad_request(format!("bad path parameter: {}", e.body_text())).with_field("path")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request(format!("bad query string: {}", e.body_text())).with_field("query")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                rule: self.rule.map(str::to_string),
                error_id: self.error_id,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
