use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::{ApiError, AppState};

/// `/healthz` and `/readyz`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StatusOut {
    /// `ok` (healthz), `ready` or `unavailable` (readyz).
    status: &'static str,
    /// The store backend (readyz).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    /// Connectors more than 3 intervals behind their last successful cycle (readyz): a
    /// count, never which tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_connectors: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// Liveness: the process is up. Says nothing about the store.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "up", body = StatusOut)))]
pub(crate) async fn healthz() -> Json<StatusOut> {
    Json(StatusOut {
        status: "ok",
        store: None,
        stale_connectors: None,
        detail: None,
    })
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "ready", body = StatusOut),
        (status = 503, description = "the store does not answer", body = StatusOut),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.services.store_answers().await {
        Ok(()) => {
            // A source behind its schedule is counted, not made a reason to take the node out
            // of rotation: the API keeps serving. Which tenant's connector it is stays in the
            // authenticated `/api/v1/sync/status`.
            Json(StatusOut {
                status: "ready",
                store: Some(state.services.backend()),
                stale_connectors: Some(state.services.stale_connectors()),
                detail: None,
            })
            .into_response()
        }
        Err(err) => {
            tracing::warn!(component = "health", error = %err, "store is not ready");
            let body = StatusOut {
                status: "unavailable",
                store: Some(state.services.backend()),
                stale_connectors: None,
                detail: Some("store unreachable"),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Prometheus metrics (OpenMetrics text): only with `Authorization: Bearer
/// <VIGIL_METRICS_TOKEN>`, since the labels name tenants and connectors.
#[utoipa::path(get, path = "/metrics", tag = "health",
    security(("metrics_token" = [])),
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (state.metrics_token.as_ref(), presented) {
        (Some(token), Some(presented)) if same_secret(token.expose_secret(), presented) => {
            metrics_text(&state).await
        }
        (Some(_), _) => ApiError::unauthenticated("/metrics needs the bearer token VIGIL_METRICS_TOKEN").into_response(),
        (None, _) => ApiError::unauthenticated(
            "/metrics is closed on this listener: set VIGIL_METRICS_TOKEN, or serve it on VIGIL_METRICS_LISTEN",
        )
        .into_response(),
    }
}

/// Prometheus metrics without a token, for the operator's own metrics listener.
pub(crate) async fn metrics_open(State(state): State<AppState>) -> Response {
    metrics_text(&state).await
}

/// Compares in time that depends only on the lengths.
fn same_secret(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn metrics_text(state: &AppState) -> Response {
    let mut text = state.metrics.render(state.services.pool_stats());
    // The sync engine's and the usage families go before the exposition's closing `# EOF`.
    let body_end = text.rfind("# EOF").unwrap_or(text.len());
    let extra = state.services.sync_openmetrics() + &state.services.usage_openmetrics().await;
    text.insert_str(body_end, &extra);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
