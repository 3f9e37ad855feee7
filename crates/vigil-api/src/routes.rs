//! Every route. Routes migrated to `utoipa` are declared once, on their handler
//! (`#[utoipa::path]`), and registered with `routes!` — the router and the OpenAPI document
//! come from that one declaration. The others still go through a table that records (path,
//! method), and the OpenAPI test compares that record with the hand-written part of the
//! document, so no route can exist undocumented.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::handlers::{
    audit, auth, connectors, findings, health, indicators, keys, risks, telemetry, tenants,
};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::{ApiError, AppState, middleware, openapi};

struct Table {
    router: Router<AppState>,
    routes: Vec<(&'static str, Method)>,
}

impl Table {
    fn add(
        mut self,
        path: &'static str,
        methods: &[Method],
        handlers: MethodRouter<AppState>,
    ) -> Self {
        self.routes
            .extend(methods.iter().map(|method| (path, method.clone())));
        self.router = self.router.route(path, handlers);
        self
    }
}

fn table() -> Table {
    let table = Table {
        router: Router::new(),
        routes: Vec::new(),
    };
    sync_routes(table)
}

/// Connectors and the sync engine.
fn sync_routes(table: Table) -> Table {
    use Method as M;
    table
        .add("/api/v1/connectors", &[M::GET], get(connectors::list))
        .add(
            "/api/v1/connectors/{name}",
            &[M::GET, M::PUT, M::DELETE],
            get(connectors::get)
                .put(connectors::put)
                .delete(connectors::delete),
        )
        .add("/api/v1/sync/status", &[M::GET], get(connectors::status))
        .add(
            "/api/v1/sync/dead-letters",
            &[M::GET],
            get(connectors::dead_letters),
        )
        .add(
            "/api/v1/sync/dead-letters/{id}/replay",
            &[M::POST],
            post(connectors::replay),
        )
        .add("/api/v1/sync/{name}/run", &[M::POST], post(connectors::run))
}

/// The routes declared on their handlers, with their part of the OpenAPI document.
fn derived() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::serve))
        .routes(routes!(risks::list, risks::create))
        .routes(routes!(risks::get, risks::update, risks::delete))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::list_keys, tenants::create_key))
        .routes(routes!(tenants::revoke_key))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::list_users, auth::create_user))
        .routes(routes!(
            auth::get_user,
            auth::set_user_disabled,
            auth::delete_user
        ))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::list_sessions))
        .routes(routes!(auth::set_expiry, auth::revoke_session))
        .routes(routes!(findings::list, findings::create))
        .routes(routes!(findings::get, findings::update))
        .routes(routes!(findings::transition))
        .routes(routes!(findings::reopens))
        .routes(routes!(indicators::list, indicators::create))
        .routes(
            routes!(indicators::import)
                .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                    crate::IMPORT_BYTES_MAX,
                ))
                .layer::<_, std::convert::Infallible>(axum::Extension(
                    crate::middleware::BodyReadTimeout(crate::IMPORT_BODY_READ_TIMEOUT),
                )),
        )
        .routes(routes!(
            indicators::get,
            indicators::update,
            indicators::delete
        ))
        .routes(routes!(
            indicators::list_suppressions,
            indicators::create_suppression
        ))
        .routes(routes!(indicators::delete_suppression))
        .routes(
            routes!(telemetry::ingest).layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                crate::TELEMETRY_BATCH_BYTES_MAX,
            )),
        )
        .routes(routes!(telemetry::list_matches))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
}

/// The derived part of the OpenAPI document.
pub(crate) fn derived_document() -> utoipa::openapi::OpenApi {
    derived().split_for_parts().1
}

/// Every (path, method) the router serves, e.g. `("/api/v1/risks/{id}", "PATCH")`.
pub fn documented_routes() -> Vec<(String, String)> {
    let mut routes: Vec<(String, String)> = table()
        .routes
        .into_iter()
        .map(|(path, method)| (path.to_owned(), method.as_str().to_owned()))
        .collect();
    let derived = serde_json::to_value(derived_document()).unwrap_or_default();
    if let Some(paths) = derived["paths"].as_object() {
        for (path, item) in paths {
            for method in item.as_object().into_iter().flat_map(|ops| ops.keys()) {
                routes.push((path.clone(), method.to_uppercase()));
            }
        }
    }
    routes
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not accept that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> axum::response::Response {
    ApiError::internal("handler panicked").into_response()
}

pub(crate) fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics_open))
        .fallback(not_found)
        .with_state(state)
}

pub(crate) fn router(state: AppState) -> Router {
    let limits = state.limits;
    let (derived, _) = derived().split_for_parts();
    table()
        .router
        .merge(derived)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes_max))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::around_request,
        ))
        .with_state(state)
}
