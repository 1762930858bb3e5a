//! `POST /api/v1/import/keepalived`: one director's keepalived.conf in, merged into the config.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::etag;
use super::extract::Write;
use crate::control::service::Service;
use crate::control::service::ServiceError;
use crate::keepalived::Warning;
use crate::model::validate::rule::KEEPALIVED_CONF;
use crate::model::Change;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The director this file belongs to: its state, priority and interface become this node's
    /// entries of the VRRP groups.
    #[param(
        min_length = 1,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub node_name: String,
    /// Validate and return the diff without committing (true/false/1/0).
    #[serde(default, deserialize_with = "super::extract::query_bool")]
    pub dry_run: bool,
    /// Where this file disagrees with what the other director's file set on a shared value
    /// (advert_int, auth, virtual addresses, a virtual server's settings, ...), take this file's
    /// value instead of failing.
    #[serde(default)]
    pub prefer_file: bool,
    /// Remove the virtual servers and VRRP groups the file does not name.
    #[serde(default)]
    pub replace: bool,
    /// Import a real server whose check lbd cannot run (SSL_GET, MISC_CHECK, SMTP_CHECK,
    /// DNS_CHECK, ...) without a check, with a warning, instead of failing.
    #[serde(default)]
    pub allow_unchecked: bool,
    /// Fail on any keyword lbd does not support.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub revision: u64,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Where lbd's reading differs from keepalived's, or something was adjusted.
    pub warnings: Vec<Warning>,
    /// Keywords lbd does not support; they were not imported.
    pub unsupported: Vec<Warning>,
}

/// Import a keepalived.conf (the request body, plain text; with curl use `--data-binary @FILE`,
/// `-d` joins the lines). The entities the file names are made to match it; where it disagrees
/// with the other director's file on a shared value the import fails (422, naming the line and
/// the stored value) unless `prefer_file=true`. `include` is refused here: import files with
/// includes with `lbd import-keepalived FILE`.
#[utoipa::path(post, path = "/api/v1/import/keepalived", tag = "config", params(ImportQuery),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 200, body = ImportResult),
        (status = 400, body = ErrorBody, description = "not text, or a file whose lines were joined (use curl --data-binary)"),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody, description = "a syntax or value error, with file:line")))]
pub async fn keepalived(
    State(svc): State<Service>,
    q: Result<Query<ImportQuery>, QueryRejection>,
    Write(mut opts): Write,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    if q.node_name.trim().is_empty() {
        return Err(ApiError::bad_request("node_name must name the director").with_field("query"));
    }
    opts.dry_run = q.dry_run;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text").with_field("body"))?;
    if text.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            "the body is empty: send the keepalived.conf itself (curl --data-binary @keepalived.conf)",
        )
        .with_field("body")
        .with_rule(Some(KEEPALIVED_CONF)));
    }
    if crate::keepalived::looks_squashed(text) {
        return Err(ApiError::bad_request(crate::keepalived::SQUASHED).with_field("body"));
    }
    let iopts = crate::keepalived::ImportOptions {
        prefer_file: q.prefer_file,
        replace: q.replace,
        allow_unchecked: q.allow_unchecked,
        strict: q.strict,
    };
    let imported = crate::keepalived::convert_body(text, &q.node_name, iopts).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            e.to_string(),
        )
        .with_field("body")
        .with_rule(Some(KEEPALIVED_CONF))
    })?;
    // Whatever is wrong with what the file configures is a fault of the file.
    let r = svc
        .import_keepalived(imported, &q.node_name, iopts, opts)
        .await
        .map_err(|e| match e {
            ServiceError::Invalid {
                field,
                message,
                rule: _,
            } => ServiceError::Invalid {
                field,
                message,
                rule: Some(KEEPALIVED_CONF),
            },
            e => e,
        })?;
    let res = ImportResult {
        revision: r.revision,
        dry_run: r.dry_run,
        changes: r.changes,
        warnings: r.value.warnings,
        unsupported: r.value.unsupported,
    };
    Ok(etag(res.revision, Json(res)))
}
