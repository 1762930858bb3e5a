//! The HTTP API (axum), documented by an OpenAPI 3.1 spec that utoipa derives from the handlers.
//!
//! One file per resource. Every response carries `ETag: "<revision>"`; writes take `If-Match`
//! and `?dry_run=true`; errors are JSON (see [`error`]).

pub mod config;
pub mod error;
pub mod export;
pub mod extract;
pub mod import;
pub mod ipvs;
pub mod patch;
pub mod real_servers;
pub mod system;
pub mod virtual_servers;
pub mod vrrp_groups;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tower_http::trace::TraceLayer;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::model::Change;
use crate::service::{Service, WriteResult};
use error::ApiError;

/// Where the spec is served; `openapi/openapi.json` in the repository is a copy of it.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "lbd",
        description = "Load-balancer director: virtual servers, real servers, health checks and VRRP groups.\n\nEvery response carries `ETag: \"<revision>\"`; writes honour `If-Match` (412 when the revision moved) and `?dry_run=true`.\n\nPUT replaces a resource whole (omitted fields get their defaults); PATCH changes the fields a JSON Merge Patch (RFC 7396, `application/merge-patch+json`) names. A GET's output is a valid PUT body (a `revision` in it is checked like `If-Match`). `auth_pass` is write-only: reads show `auth_pass_set`; only the keepalived export contains it.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "virtual-servers", description = "IPVS services"),
        (name = "real-servers", description = "Backends of a virtual server"),
        (name = "vrrp-groups", description = "Which directors share which virtual addresses"),
        (name = "config", description = "The whole configuration at once"),
        (name = "status", description = "Node, revision and data-plane state")
    )
)]
struct ApiDoc;

/// What a write changed (or, with `dry_run`, would change).
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteSummary {
    /// The revision after the write (unchanged for a dry run or a no-op).
    pub revision: u64,
    pub dry_run: bool,
    pub changes: Vec<Change>,
}

fn api_router() -> OpenApiRouter<Service> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(virtual_servers::list, virtual_servers::create))
        .routes(routes!(
            virtual_servers::get,
            virtual_servers::replace,
            virtual_servers::patch,
            virtual_servers::delete
        ))
        .routes(routes!(real_servers::list, real_servers::create))
        .routes(routes!(
            real_servers::get,
            real_servers::replace,
            real_servers::patch,
            real_servers::delete
        ))
        .routes(routes!(vrrp_groups::list, vrrp_groups::create))
        .routes(routes!(
            vrrp_groups::get,
            vrrp_groups::replace,
            vrrp_groups::patch,
            vrrp_groups::delete
        ))
        .routes(routes!(
            vrrp_groups::get_node,
            vrrp_groups::replace_node,
            vrrp_groups::patch_node,
            vrrp_groups::delete_node
        ))
        .routes(routes!(config::get, config::replace))
        .routes(routes!(system::status))
        .routes(routes!(system::events))
        .routes(routes!(system::healthz))
        .routes(routes!(ipvs::table))
        .routes(routes!(ipvs::connections))
        .routes(routes!(import::keepalived))
        .routes(routes!(export::keepalived))
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut spec = api_router().split_for_parts().1;
    document_secrets(&mut spec);
    spec
}

/// `auth_pass` is write-only; readers get `auth_pass_set` instead (see
/// [`patch::PublicGroup`]). The derive cannot say that about a field the model does not have.
fn document_secrets(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{Object, Schema, Type};
    use utoipa::openapi::RefOr;
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut("VrrpGroup") {
        let set = Object::builder()
            .schema_type(Type::Boolean)
            .read_only(Some(true))
            .description(Some(
                "Whether an `auth_pass` is stored (read-only: the password itself is never returned).",
            ))
            .build();
        o.properties
            .insert("auth_pass_set".into(), RefOr::T(Schema::Object(set)));
    }
}

/// The whole HTTP application.
pub fn router(service: Service) -> Router {
    let (router, mut spec) = api_router().split_for_parts();
    document_secrets(&mut spec);
    router
        .merge(SwaggerUi::new("/docs").url(OPENAPI_PATH, spec))
        .fallback(|| async { ApiError::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this resource does not support that method",
            )
        })
        .layer(config::body_limit())
        .layer(middleware::from_fn_with_state(
            service.clone(),
            default_etag,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(service)
}

/// A response with `ETag: "<revision>"`.
pub fn etag(revision: u64, body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// 201 Created with `Location` and the entity as stored.
pub fn created<T: Serialize>(revision: u64, location: &str, value: T) -> Response {
    let mut resp = etag(revision, (StatusCode::CREATED, Json(value)));
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub fn write_response(r: WriteResult<()>) -> Response {
    etag(
        r.revision,
        Json(WriteSummary {
            revision: r.revision,
            dry_run: r.dry_run,
            changes: r.changes,
        }),
    )
}

/// Responses that did not set an ETag (errors, docs) get the current revision.
async fn default_etag(State(svc): State<Service>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key(header::ETAG) {
        let rev = svc.snapshot().revision;
        if let Ok(v) = HeaderValue::from_str(&format!("\"{rev}\"")) {
            resp.headers_mut().insert(header::ETAG, v);
        }
    }
    resp
}
