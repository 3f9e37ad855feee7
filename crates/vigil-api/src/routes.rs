//! Every route, declared once on its handler (`#[utoipa::path]`) and registered with
//! `routes!`: the router and the OpenAPI document come from that one declaration, so no route
//! can exist undocumented. Layers a route needs of its own (a larger body limit, a longer
//! read deadline) sit on its `routes!`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;

use crate::handlers::{
    apps, audit, auth, bundles, connectors, findings, health, indicators, instances, keys, plans,
    risks, runs, telemetry, tenants,
};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::{ApiError, AppState, middleware, openapi};

/// The routes declared on their handlers, with their part of the OpenAPI document.
fn derived() -> OpenApiRouter<AppState> {
    core().merge(automation())
}

/// Apps and tasks.
fn automation() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(apps::list_apps))
        .routes(routes!(bundles::export))
        .routes(
            routes!(bundles::import).layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                vigil_automation::BUNDLE_BYTES_MAX,
            )),
        )
        .routes(routes!(apps::get_app, apps::put_app, apps::delete_app))
        .routes(routes!(apps::logo))
        .routes(routes!(apps::list_tasks))
        .routes(routes!(apps::get_task, apps::put_task, apps::delete_task))
        .routes(routes!(apps::input_schema))
        .routes(routes!(apps::outputs))
        .routes(routes!(apps::dependants))
        .routes(routes!(apps::verify))
        .routes(routes!(instances::list, instances::create))
        .routes(routes!(
            instances::get,
            instances::update,
            instances::delete
        ))
        .routes(routes!(instances::test))
        .routes(routes!(plans::set))
        .routes(routes!(plans::tenant_usage))
        .routes(routes!(plans::usage))
        .routes(routes!(runs::start))
        .routes(routes!(runs::list))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::rerun))
}

/// The foundation, the catalogue, sync and audit.
fn core() -> OpenApiRouter<AppState> {
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
        .routes(routes!(connectors::list))
        .routes(routes!(
            connectors::get,
            connectors::put,
            connectors::delete
        ))
        .routes(routes!(connectors::status))
        .routes(routes!(connectors::dead_letters))
        .routes(routes!(connectors::replay))
        .routes(routes!(connectors::run))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
}

/// The derived part of the OpenAPI document.
pub(crate) fn derived_document() -> utoipa::openapi::OpenApi {
    derived().split_for_parts().1
}

/// Every (path, method) the router serves, e.g. `("/api/v1/risks/{id}", "PATCH")`.
pub fn documented_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
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
    derived
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
