//! Who may make an HTTP request (see [`crate::control::auth`]): the `Host` and `Origin` checks, CORS
//! when configured, and the bearer token's role against what the route needs.
//!
//! | route | role |
//! |---|---|
//! | `/healthz`, the dashboard's files, `/docs`, the spec | none |
//! | `GET` under `/api/v1/` (but the keepalived export), `/metrics` | `read` |
//! | `POST /api/v1/ipvs/zero`; `PATCH` of a real server that names only `weight` | `operate` |
//! | every other write, and the keepalived export (it holds VRRP passwords) | `admin` |

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::control::auth::{bearer, Auth, Denied, Role};

/// The cookie the dashboard keeps its token in (a browser's `EventSource` cannot send an
/// `Authorization` header). It is read only on requests that passed the `Origin` check.
pub const TOKEN_COOKIE: &str = "lbd_token";

/// The role a request needs, `None` for what is public.
pub fn needs(method: &Method, path: &str) -> Option<Role> {
    if !path.starts_with("/api/v1/") && path != "/metrics" {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(if path == "/api/v1/export/keepalived" {
            Role::Admin
        } else {
            Role::Read
        });
    }
    if method == Method::OPTIONS {
        return None;
    }
    if *method == Method::POST && path == "/api/v1/ipvs/zero" {
        return Some(Role::Operate);
    }
    if *method == Method::PATCH && is_real_server(path) {
        // The handler holds `operate` to a patch of `weight` alone (drain, undrain, weights).
        return Some(Role::Operate);
    }
    Some(Role::Admin)
}

/// `/api/v1/virtual-servers/{id}/real-servers/{rs_id}`.
fn is_real_server(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["", "api", "v1", "virtual-servers", _, "real-servers", _]
    )
}

fn host_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        // HTTP/2 carries it as `:authority`, which ends up in the URI.
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// The token of the `Authorization` header, or of the dashboard's cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        return v.to_str().ok().and_then(bearer);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn refused(field: &'static str, message: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden_origin", message)
        .with_field(field)
        .into_response()
}

/// The middleware (outside the body gate: a refused request's body is never read).
pub async fn gate(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    let host = host_of(&req);
    if let Some(h) = &host {
        if !auth.host_allowed(h) {
            return refused(
                "Host",
                format!("Host {h:?} is not this server's (an IP address, localhost, or an --allowed-host)"),
            );
        }
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    if let Some(o) = &origin {
        if !auth.origin_allowed(o, host.as_deref()) {
            return refused(
                "Origin",
                format!("a page of {o:?} may not call this API (see --cors-origin)"),
            );
        }
    }
    let cors = origin.filter(|o| auth.cors_allowed(o));
    if req.method() == Method::OPTIONS {
        if let Some(o) = &cors {
            return with_cors(StatusCode::NO_CONTENT.into_response(), o, true);
        }
    }
    if let Some(need) = needs(req.method(), req.uri().path()) {
        match auth.check(presented(req.headers()), need) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
            }
            Err(d) => return denied(&d),
        }
    }
    let resp = next.run(req).await;
    match &cors {
        Some(o) => with_cors(resp, o, false),
        None => resp,
    }
}

/// 401 or 403 in the documented error shape.
pub fn denied(d: &Denied) -> Response {
    match d {
        Denied::Unauthenticated(_) => {
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", d.to_string())
                .with_field("Authorization")
                .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lbd\""),
            );
            r
        }
        Denied::Forbidden { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "permission_denied", d.to_string())
                .with_field("Authorization")
                .into_response()
        }
    }
}

fn with_cors(mut resp: Response, origin: &str, preflight: bool) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, Location"),
    );
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, If-Match"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    resp
}

/// What an `operate` caller's patch of a real server may name.
pub fn operate_may_patch(field: &str) -> bool {
    field == "weight"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_roles() {
        let rs = "/api/v1/virtual-servers/3/real-servers/4";
        for (m, p, want) in [
            (Method::GET, "/healthz", None),
            (Method::GET, "/", None),
            (Method::GET, "/api-docs/openapi.json", None),
            (Method::GET, "/api/v1/status", Some(Role::Read)),
            (Method::GET, "/api/v1/events/stream", Some(Role::Read)),
            (Method::GET, "/metrics", Some(Role::Read)),
            (Method::GET, "/api/v1/export/keepalived", Some(Role::Admin)),
            (Method::POST, "/api/v1/ipvs/zero", Some(Role::Operate)),
            (Method::PATCH, rs, Some(Role::Operate)),
            (Method::PUT, rs, Some(Role::Admin)),
            (Method::DELETE, rs, Some(Role::Admin)),
            (
                Method::PATCH,
                "/api/v1/virtual-servers/3",
                Some(Role::Admin),
            ),
            (Method::POST, "/api/v1/import/keepalived", Some(Role::Admin)),
            (Method::PUT, "/api/v1/config", Some(Role::Admin)),
        ] {
            assert_eq!(needs(&m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn tokens_from_header_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; lbd_token=t0k; c=d"),
        );
        assert_eq!(presented(&h), Some("t0k"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hdr"),
        );
        assert_eq!(presented(&h), Some("hdr"));
    }
}
