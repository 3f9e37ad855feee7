use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// The process is up. Says nothing about the store.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to serve: the store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.services.store();
    match store.ping().await {
        Ok(()) => {
            // A source behind its schedule is counted, not made a reason to take the node out
            // of rotation: the API keeps serving. Which tenant's connector it is stays in the
            // authenticated `/api/v1/sync/status`.
            let stale = state.services.stale_connectors();
            Json(json!({"status": "ready", "store": store.backend(), "stale_connectors": stale}))
                .into_response()
        }
        Err(err) => {
            tracing::warn!(component = "health", error = %err, "store is not ready");
            let body = json!({"status": "unavailable", "store": store.backend(), "detail": "store unreachable"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// Prometheus metrics on the API's listener: only with `Authorization: Bearer
/// <VIGIL_METRICS_TOKEN>`, since the labels name tenants and connectors.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (state.metrics_token.as_ref(), presented) {
        (Some(token), Some(presented)) if same_secret(token.expose_secret(), presented) => {
            metrics_text(&state)
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
    metrics_text(&state)
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

fn metrics_text(state: &AppState) -> Response {
    let mut text = state.metrics.render(state.services.store().pool_stats());
    // The sync engine's families go before the exposition's closing `# EOF`.
    let body_end = text.rfind("# EOF").unwrap_or(text.len());
    text.insert_str(body_end, &state.services.sync_openmetrics());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
