use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;

/// The process is up. Says nothing about the store.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to serve: the store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.services.store();
    match store.ping().await {
        Ok(()) => {
            // A source behind its schedule is reported, not made a reason to take the node
            // out of rotation: the API keeps serving.
            let stale: Vec<_> = state
                .sync_status
                .stale(vigil_domain::Timestamp::now())
                .into_iter()
                .map(|(tenant, connector, last_success)| {
                    json!({"tenant": tenant.to_string(), "connector": connector, "last_success_at": last_success})
                })
                .collect();
            Json(json!({"status": "ready", "store": store.backend(), "stale_sources": stale}))
                .into_response()
        }
        Err(err) => {
            tracing::warn!(component = "health", error = %err, "store is not ready");
            let body = json!({"status": "unavailable", "store": store.backend(), "detail": "store unreachable"});
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render(state.services.store().pool_stats());
    // The sync engine's families go before the exposition's closing `# EOF`.
    let body_end = text.rfind("# EOF").unwrap_or(text.len());
    text.insert_str(body_end, &state.sync_status.openmetrics());
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
