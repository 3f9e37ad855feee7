//! Per-request cross-cutting work in one place: the request id (accepted from
//! `X-Request-Id` when sane, else generated, and echoed back), the request span that carries
//! it and the tenant into every log line, the JSON access log, metrics, the concurrency
//! limit, the request timeout and the security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::PROBLEM_JSON;
use crate::{ApiError, AppState};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id kept; longer or odd ones are replaced.
const REQUEST_ID_LEN_MAX: usize = 128;
/// Largest problem body the middleware rewrites; ours are a few hundred bytes.
const PROBLEM_BYTES_MAX: usize = 64 * 1024;

fn request_id(req: &Request) -> String {
    let supplied = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok());
    let sane = |id: &&str| {
        !id.is_empty()
            && id.len() <= REQUEST_ID_LEN_MAX
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    };
    supplied
        .filter(sane)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

pub(crate) async fn around_request(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        tenant = tracing::field::Empty,
        role = tracing::field::Empty,
    );
    let mut response = handle(&state, req, next).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    state
        .metrics
        .observe(method_label(&method), &route, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            component = "http",
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1_000.0,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    secure_headers(&mut response);
    with_request_id(response, &id).await
}

/// Adds `request_id` to a problem+json body, so a caller reporting an error (a 5xx says
/// nothing else) can quote the id the logs are keyed by.
async fn with_request_id(response: Response, id: &str) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == PROBLEM_JSON.as_bytes());
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, PROBLEM_BYTES_MAX).await else {
        return ApiError::internal("unreadable problem body").into_response();
    };
    let mut problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if let Some(fields) = problem.as_object_mut() {
        fields.insert(
            "request_id".to_owned(),
            serde_json::Value::String(id.to_owned()),
        );
    }
    let bytes = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// How long the handler may take to read the body (see `BODY_READ_TIMEOUT_DEFAULT`); a route
/// may set its own with a layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyReadTimeout(pub(crate) std::time::Duration);

async fn handle(state: &AppState, mut req: Request, next: Next) -> Response {
    let limits = state.limits;
    req.extensions_mut()
        .insert(BodyReadTimeout(limits.body_read_timeout));
    // Without a credential, a client address gets a bounded share of the slots.
    let _place = if req.headers().contains_key(header::AUTHORIZATION) {
        None
    } else {
        match crate::extract::client_addr(req.extensions().get()) {
            Some(address) => match state.clients.admit(address) {
                Ok(place) => Some(place),
                Err(refused) => return too_many(refused),
            },
            None => None,
        }
    };
    let work = async {
        let Ok(_slot) = state.slots.acquire().await else {
            return ApiError::internal("concurrency semaphore closed").into_response();
        };
        next.run(req).await
    };
    match tokio::time::timeout(limits.request_timeout, work).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retry later",
        )
        .into_response(),
    }
}

fn too_many(refused: crate::client_limits::Refused) -> Response {
    use crate::client_limits::Refused;
    let (detail, wait) = match refused {
        Refused::InFlight => (
            "too many requests without a credential in flight from this address",
            1,
        ),
        Refused::Rate(wait) => (
            "too many requests without a credential from this address",
            wait.as_secs().max(1),
        ),
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
        .retry_after(wait)
        .into_response()
}

/// Clients may send any method token; only the standard ones become metric labels, so the
/// number of series stays bounded.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    let set = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}
