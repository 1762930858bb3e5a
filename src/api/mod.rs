//! The HTTP API (axum), documented by an OpenAPI 3.1 spec that utoipa derives from the handlers.
//!
//! One file per resource. Every response carries `ETag: "<revision>"`; writes take `If-Match`
//! and `?dry_run=true`; errors are JSON (see [`error`]).

pub mod access;
pub mod config;
pub mod conflicts;
pub mod connection_sync;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod extract;
pub mod import;
pub mod ipvs;
pub mod limits;
pub mod metrics;
pub mod patch;
pub mod real_servers;
pub mod schema;
pub mod system;
pub mod timeouts;
pub mod virtual_servers;
pub mod vrrp_groups;
pub mod vrrp_settings;

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

use crate::control::service::{Service, WriteResult};
use crate::dataplane::actor::DataplaneHandle;
use crate::model::Change;
use error::ApiError;

/// What the handlers reach: the service (configuration, status, events), the data plane's
/// handle (the kernel's table) and the gRPC server's call counters (for `/metrics`).
/// `daemon::start` builds them and hands them in; a handler takes the one it needs
/// (`State<Service>` or `State<DataplaneHandle>`).
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub service: Service,
    pub dataplane: DataplaneHandle,
    /// What the gRPC server counts of its calls (shown by `/metrics`).
    pub grpc_calls: crate::grpc::metrics::GrpcMetrics,
}

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

fn api_router() -> OpenApiRouter<AppState> {
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
        .routes(routes!(conflicts::list))
        .routes(routes!(conflicts::apply))
        .routes(routes!(conflicts::dismiss))
        .routes(routes!(system::status))
        .routes(routes!(system::events))
        .routes(routes!(system::stream))
        .routes(routes!(system::healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(ipvs::table))
        .routes(routes!(ipvs::connections))
        .routes(routes!(ipvs::zero))
        .routes(routes!(timeouts::get, timeouts::replace, timeouts::patch))
        .routes(routes!(
            connection_sync::get,
            connection_sync::replace,
            connection_sync::delete
        ))
        .routes(routes!(vrrp_settings::get, vrrp_settings::replace))
        .routes(routes!(import::keepalived))
        .routes(routes!(export::keepalived))
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_spec().1
}

/// The routes and their spec, with what the derives cannot say added to the spec: the one
/// place both the served document and `lbd openapi` come from.
fn routes_and_spec() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut spec) = api_router().split_for_parts();
    document_secrets(&mut spec);
    schema::document_limits(&mut spec);
    document_common_errors(&mut spec);
    document_security(&mut spec);
    (router, spec)
}

/// An error answer in the documented shape ([`error::ErrorBody`]).
fn error(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// The operations of a path.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The bearer-token scheme (see [`access`]): every `/api/v1` operation takes a token, which
/// lbd asks for when started with `--token-file` (open on loopback without one, hence the
/// empty alternative); it can answer 401 (no valid token) and 403 (a role short of the
/// operation's, or a foreign `Host`/`Origin`). `/healthz` is public.
fn document_security(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
    };
    let components = spec.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token of lbd's --token-file. Roles: read (GETs), operate (also drain/undrain and weights: a real server PATCH of `weight` alone; POST /api/v1/ipvs/zero), admin (everything; the keepalived export too).",
                ))
                .build(),
        ),
    );
    for (path, item) in spec.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") && path != "/metrics" {
            continue;
        }
        for op in operations(item) {
            op.security = Some(vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
            op.responses
                .responses
                .entry("401".into())
                .or_insert_with(|| {
                    error("no valid bearer token (lbd runs with --token-file)").into()
                });
            op.responses.responses.entry("403".into()).or_insert_with(|| {
                error("the token's role is short of this operation's, or the request's Host or Origin is foreign").into()
            });
        }
    }
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

/// Adds the errors any operation can answer, where its own annotation does not list them
/// already, so the spec names every status a client can get:
/// 400 (a malformed path, query or body), 500 (with an error id), 412 for writes (`If-Match`),
/// 409 for writes with a body (a clash with another entity),
/// and, for operations that take a body, 408 (it did not arrive in time), 413 (over the route's
/// limit) and 422 (a bad value).
fn document_common_errors(spec: &mut utoipa::openapi::OpenApi) {
    for (path, item) in spec.paths.paths.iter_mut() {
        for op in operations(item) {
            let has_body = op.request_body.is_some();
            // Writes take `If-Match` (and `?dry_run`).
            let write = op.parameters.iter().flatten().any(|p| p.name == "dry_run");
            if write {
                dry_run_answer(op);
            }
            let mut add = |code: &str, description: &str| {
                op.responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| error(description).into());
            };
            add(
                "400",
                "a malformed request: path, query string, headers or JSON syntax (`field` says which)",
            );
            if path.contains('{') {
                add("404", "no such resource");
            }
            if write {
                add(
                    "412",
                    "`If-Match` (or a body's `revision`) is not the current revision",
                );
            }
            if has_body && write {
                add(
                    "409",
                    "the result clashes with another entity (its identity, name, virtual addresses or VRID); `field` names it",
                );
            }
            if has_body {
                add(
                    "408",
                    "the request body did not arrive within the body timeout",
                );
                add("413", "the request body is larger than this route's limit");
                add("422", "a value is not valid (`field` names it)");
            }
            add(
                "500",
                "an internal error; the body carries an `error_id` that the server's log also has",
            );
        }
    }
}

/// A write's 200 answer is the entity, or with `?dry_run=true` a [`WriteSummary`]: the schema
/// says either.
fn dry_run_answer(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    use utoipa::openapi::{Ref, RefOr};
    let Some(RefOr::T(resp)) = op.responses.responses.get_mut("200") else {
        return;
    };
    let Some(content) = resp.content.get_mut("application/json") else {
        return;
    };
    let summary = Ref::from_schema_name("WriteSummary");
    match &content.schema {
        Some(RefOr::Ref(r))
            if ["VirtualServer", "RealServer", "VrrpGroup", "VrrpNode"]
                .iter()
                .any(|e| *r == Ref::from_schema_name(*e)) =>
        {
            let either = OneOfBuilder::new().item(r.clone()).item(summary).build();
            content.schema = Some(RefOr::T(Schema::OneOf(either)));
        }
        _ => {}
    }
}

/// The whole HTTP application, with the default [`limits::HttpLimits`].
pub fn router(state: AppState) -> Router {
    router_with(state, limits::HttpLimits::default())
}

/// The whole HTTP application: routes, docs, then (outermost last) the body gate, the default
/// ETag and request tracing.
pub fn router_with(state: AppState, limits: limits::HttpLimits) -> Router {
    router_with_auth(state, limits, crate::control::auth::Auth::open())
}

/// [`router_with`], with `auth` deciding who may call what (see [`access`]).
pub fn router_with_auth(
    state: AppState,
    limits: limits::HttpLimits,
    auth: crate::control::auth::Auth,
) -> Router {
    let (router, spec) = routes_and_spec();
    let api_metrics = metrics::ApiMetrics::default();
    router
        // Requests by route: a route layer, so the route is known (and unmatched paths, which
        // could be anything, are not counted by path).
        .route_layer(middleware::from_fn_with_state(
            api_metrics.clone(),
            metrics::count,
        ))
        .layer(axum::Extension(api_metrics))
        .merge(SwaggerUi::new("/docs").url(OPENAPI_PATH, spec))
        .merge(dashboard::router())
        .fallback(|| async { ApiError::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this resource does not support that method",
            )
        })
        // The gate has read and bounded every body already.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            limits::BodyGate::new(limits),
            limits::gate,
        ))
        .layer(middleware::from_fn_with_state(
            state.service.clone(),
            default_etag,
        ))
        // Outside the body gate: a caller without the role never gets a body read.
        .layer(middleware::from_fn_with_state(auth.clone(), access::gate))
        .layer(axum::Extension(auth))
        // An error answer is the client's business (a 503 from /ipvs where the kernel has no
        // IPVS is expected): it is logged at debug. Real failures log themselves, with the
        // error id their 500 carries (`ApiError::internal`).
        .layer(
            TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
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

/// The answer to a PUT or PATCH: the entity as stored (with its revision as ETag), or with
/// `dry_run` the [`WriteSummary`] of what would change.
pub fn written<T: Serialize>(r: WriteResult<T>) -> Response {
    if r.dry_run {
        return write_response(r.map_value(|_| ()));
    }
    etag(r.revision, Json(r.value))
}

/// The answer to a POST: 201 Created at `location(entity)`, or with `dry_run` the
/// [`WriteSummary`].
pub fn created_or_summary<T: Serialize>(
    r: WriteResult<T>,
    location: impl FnOnce(&T) -> String,
) -> Response {
    if r.dry_run {
        return write_response(r.map_value(|_| ()));
    }
    let at = location(&r.value);
    created(r.revision, &at, r.value)
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
