//! PATCH bodies (JSON Merge Patch, RFC 7396) and the read-only fields a client may send back.
//!
//! A merge patch is applied to the stored entity's JSON, and the result is parsed by the same
//! deserializer as a PUT body, inside the service's write lock (so the read and the write see
//! the same revision). What a GET shows and a PUT cannot take (`revision`, `auth_pass_set`) is
//! accepted and checked here, so any GET output is a valid PUT body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::parse_json;
use crate::control::service::{Service, ServiceError, WriteOptions};
use crate::model::VrrpGroup;

/// A request body as bytes, whose failures (too large, cut off) are JSON errors like every other.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    "bad_request",
                    format!("cannot read the body: {}", e.body_text()),
                )
            })
    }
}

/// The media type of RFC 7396; plain `application/json` (or anything else that is not a JSON
/// Patch) is read the same way.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A PATCH body: a JSON object. JSON Patch (RFC 6902, `application/json-patch+json`) is a
/// different format, refused with 415 rather than misread as a merge patch.
pub fn parse_patch(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json-patch+json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("PATCH takes a JSON Merge Patch (RFC 7396, {MERGE_PATCH}), not a JSON Patch"),
        )
        .with_field("Content-Type"));
    }
    match parse_json::<Value>(body)? {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            format!(
                "a merge patch of this resource must be a JSON object of the fields to change, got {}",
                kind_of(&other)
            ),
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// RFC 7396 section 2 (MergePatch), without recursion: each nested object of the patch is a
/// work item addressed by its path from the root.
pub fn merge_patch(target: &mut Value, patch: Map<String, Value>) {
    let mut work: Vec<(Vec<String>, Map<String, Value>)> = vec![(Vec::new(), patch)];
    while let Some((path, patch)) = work.pop() {
        // Every step was created (as an object member) before its work item was queued.
        let Some(t) = path.iter().try_fold(&mut *target, |t, k| t.get_mut(k)) else {
            continue;
        };
        if !t.is_object() {
            *t = Value::Object(Map::new());
        }
        let Value::Object(map) = t else { continue };
        for (k, v) in patch {
            match v {
                Value::Null => {
                    map.remove(&k);
                }
                Value::Object(inner) => {
                    map.entry(k.clone()).or_insert(Value::Null);
                    let mut p = path.clone();
                    p.push(k);
                    work.push((p, inner));
                }
                v => {
                    map.insert(k, v);
                }
            }
        }
    }
}

/// `cur` with a merge patch applied, parsed back as its type: a 422 names a bad field. A `null`
/// for a field the type does not have is refused like any unknown field, although merging it
/// would change nothing (RFC 7396 removes what is not there).
pub fn patched<T: Serialize + DeserializeOwned>(
    cur: &T,
    patch: Map<String, Value>,
) -> Result<T, ServiceError> {
    let mut v = to_value(cur)?;
    refuse_unknown_nulls::<T>(&v, &patch)?;
    merge_patch(&mut v, patch);
    from_value(v)
}

/// The unknown fields among a patch's top-level `null`s: the entity with those fields set to
/// `null` is parsed, and only an "unknown field" error counts (a `null` for a known optional
/// field that is absent is a no-op, not an error).
pub fn refuse_unknown_nulls<T: DeserializeOwned>(
    entity: &Value,
    patch: &Map<String, Value>,
) -> Result<(), ServiceError> {
    let Value::Object(current) = entity else {
        return Ok(());
    };
    let mut probe = current.clone();
    let mut any = false;
    for (k, v) in patch {
        if v.is_null() && !current.contains_key(k) {
            probe.insert(k.clone(), Value::Null);
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    match from_value::<T>(Value::Object(probe)) {
        Err(e @ ServiceError::Invalid { .. }) if e.to_string().contains("unknown field") => Err(e),
        _ => Ok(()),
    }
}

/// A merged entity parsed as the model's type; a bad value is 422 naming its field.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ServiceError::Invalid {
            field: if path == "." { String::new() } else { path },
            message,
            rule: None,
        }
    })
}

pub fn to_value<T: Serialize>(v: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(v).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Takes a `revision` (as a GET of the config shows it) out of a body: it must be the current
/// revision, exactly as an `If-Match` header must (412 otherwise). Both may be given.
pub fn take_revision(
    body: &mut Map<String, Value>,
    mut opts: WriteOptions,
    svc: &Service,
) -> Result<WriteOptions, ApiError> {
    let Some(v) = body.remove("revision") else {
        return Ok(opts);
    };
    let rev = v.as_u64().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_argument",
            format!("revision must be the revision this body was read at (an unsigned integer), got {v}"),
        )
        .with_field("revision")
    })?;
    match opts.expected_revision {
        Some(e) if e != rev => {
            // Two different preconditions: at most one of them is current.
            let current = svc.snapshot().revision;
            return Err(ServiceError::RevisionMismatch {
                expected: if rev == current { e } else { rev },
                current,
            }
            .into());
        }
        _ => opts.expected_revision = Some(rev),
    }
    Ok(opts)
}

/// A PUT body as a JSON object, with its `revision` (if any) checked like `If-Match`. A body
/// that is not an object goes to the model's parser as it is, which says what it expected.
pub fn put_body(
    body: &[u8],
    opts: WriteOptions,
    svc: &Service,
) -> Result<(Map<String, Value>, WriteOptions), ApiError> {
    match parse_json::<Value>(body)? {
        Value::Object(mut m) => {
            let opts = take_revision(&mut m, opts, svc)?;
            Ok((m, opts))
        }
        other => Err(from_value::<Map<String, Value>>(other)
            .map(|_| ())
            .err()
            .map_or_else(
                || ApiError::bad_request("the body must be a JSON object"),
                Into::into,
            )),
    }
}

/// Parses a body (after [`put_body`]) as the model's type: 422 naming the field.
pub fn body_as<T: DeserializeOwned>(m: Map<String, Value>) -> Result<T, ApiError> {
    from_value(Value::Object(m)).map_err(Into::into)
}

/// Removes what readers of a VRRP group see but writers do not send (`auth_pass_set`).
pub fn strip_group_read_only(g: &mut Value) {
    if let Value::Object(m) = g {
        m.remove("auth_pass_set");
    }
}

/// Removes the read-only fields of every VRRP group of a whole-config body.
pub fn strip_config_read_only(cfg: &mut Map<String, Value>) {
    if let Some(Value::Array(gs)) = cfg.get_mut("vrrp_groups") {
        gs.iter_mut().for_each(strip_group_read_only);
    }
}

/// A VRRP group as every reader sees it: `auth_pass` is write-only, shown as `auth_pass_set`.
/// (The keepalived export is the one place the secret leaves lbd.)
#[derive(Debug, Clone)]
pub struct PublicGroup(pub VrrpGroup);

impl Serialize for PublicGroup {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        if let Value::Object(m) = &mut v {
            let set = m.remove("auth_pass").is_some();
            m.insert("auth_pass_set".into(), set.into());
        }
        v.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// The examples of RFC 7396 appendix A (those whose patch is an object).
    #[test]
    fn rfc7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut t = target.clone();
            merge_patch(&mut t, obj(patch.clone()));
            assert_eq!(t, want, "{target} + {patch}");
        }
    }

    #[test]
    fn deep_patches_do_not_recurse() {
        // Deeper than serde_json would parse (128), applied without recursion.
        let mut patch = json!(1);
        for _ in 0..5_000 {
            // (Not json!: it would copy `patch` recursively.)
            let mut m = Map::new();
            m.insert("a".into(), patch);
            patch = Value::Object(m);
        }
        let mut t = json!({});
        merge_patch(&mut t, obj(patch));
        let mut depth = 0;
        let mut cur = &t;
        while let Some(n) = cur.get("a") {
            depth += 1;
            cur = n;
        }
        assert_eq!((depth, cur), (5_000, &json!(1)));
        // Dropping a deep Value recurses in serde_json itself; unwind it by hand.
        let mut cur = t;
        while let Some(n) = cur.get_mut("a").map(Value::take) {
            cur = n;
        }
    }
}
