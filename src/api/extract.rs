//! Request extractors whose failures are JSON errors naming the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::control::service::WriteOptions;

/// A JSON body. Any content type is accepted (curl's `-d` sends form encoding by default).
/// Malformed JSON is 400; well-formed JSON with a bad value is 422 with the value's path.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                e.status(),
                "bad_request",
                format!("cannot read the body: {}", e.body_text()),
            )
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a request body in two steps, so that each kind of error is reported as what it is:
/// 1. the bytes must be one JSON document and nothing after it (trailing data, or a second
///    document, is 400 "malformed JSON"); serde_json bounds its nesting at 128 levels, so no
///    body recurses deeper than that;
/// 2. the document must fit `T`. Every error here is about a value (a number where an enum's
///    name belongs is one, though serde_json reading bytes straight into `T` calls it a syntax
///    error), so it is 422 with the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")).with_field("body"))?;
    whole_numbers_as_integers(&mut doc);
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            strip_position(&e.into_inner().to_string()),
        )
        .with_field(field)
    })
}

/// JSON has one number type, and JSON Schema counts `2.0` as an integer, as the OpenAPI
/// document's `"type": "integer"` does: a whole number written with a fraction or an exponent
/// is read as the integer it is (serde would refuse it for an integer field).
fn whole_numbers_as_integers(v: &mut serde_json::Value) {
    use serde_json::{Number, Value};
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            // Only where an f64 holds every integer exactly (|n| < 2^53): a longer number read
            // as f64 was rounded, and stays a (refused) fraction.
            if let Some(f) = n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(53))
            {
                *n = Number::from(f as i64);
            }
        }
        // serde_json bounds the nesting at 128 levels, and so this recursion.
        Value::Array(a) => a.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(m) => m.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A path parameter; a malformed one is a JSON 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// An id in a path. The spec calls it an integer, and JSON Schema counts `204.0` as one: a whole
/// number written as a decimal is read as the integer it is (as in bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId(pub crate::model::Id);

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if let Ok(n) = s.parse::<i64>() {
            return Ok(PathId(n));
        }
        match s.parse::<f64>() {
            // Only where an f64 holds every integer exactly.
            Ok(f) if f.fract() == 0.0 && f.abs() < 2f64.powi(53) => Ok(PathId(f as i64)),
            _ => Err(serde::de::Error::custom(format!(
                "Cannot parse `{s}` to a `i64`"
            ))),
        }
    }
}

/// `?dry_run=true` on any write.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WriteQuery {
    /// Validate and return the diff without committing (true/false/1/0).
    #[serde(default, deserialize_with = "query_bool")]
    pub dry_run: bool,
}

/// A boolean query parameter: `true`/`false`/`1`/`0` (any case), as people write them.
pub fn query_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(serde::de::Error::custom(format!(
            "expected true, false, 1 or 0, got {s:?}"
        ))),
    }
}

/// The write options of a request: `If-Match: "<revision>"` and `?dry_run=true`.
pub struct Write(pub WriteOptions);

impl<S: Send + Sync> FromRequestParts<S> for Write {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(q) =
            axum::extract::Query::<WriteQuery>::from_request_parts(parts, state).await?;
        let expected_revision = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => parse_if_match(v.to_str().unwrap_or(""))?,
        };
        Ok(Write(WriteOptions {
            expected_revision,
            dry_run: q.dry_run,
        }))
    }
}

/// `"7"`, `W/"7"` or `7` → Some(7); `*` → None (any revision).
fn parse_if_match(v: &str) -> Result<Option<u64>, ApiError> {
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    let t = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    t.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "If-Match must be a revision ETag such as \"7\" (from a previous response), got {v}"
        ))
        .with_field("If-Match")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers() {
        let v: serde_json::Value =
            parse_json(br#"{"a": 1.0, "b": [2e3, 2.5, -0.0], "c": 1.8e19}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": [2000, 2.5, 0], "c": 1.8e19})
        );
        let n: u16 = parse_json(b"80.0").unwrap();
        assert_eq!(n, 80);
        assert!(parse_json::<u16>(b"80.5").is_err());
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(parse_if_match("\"7\"").unwrap(), Some(7));
        assert_eq!(parse_if_match("W/\"7\"").unwrap(), Some(7));
        assert_eq!(parse_if_match("7").unwrap(), Some(7));
        assert_eq!(parse_if_match("*").unwrap(), None);
        assert!(parse_if_match("abc").is_err());
    }
}
