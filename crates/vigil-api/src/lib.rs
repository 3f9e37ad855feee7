//! vigil-api: Vigil's HTTP edge — the axum router, the extractors that prove who is calling,
//! the wire DTOs, problem+json errors, the OpenAPI document, health and metrics. The only
//! crate that knows HTTP; every decision about data is made in `vigil-service`.

mod client_limits;
pub mod dto;
mod error;
mod extract;
mod handlers;
mod ioc_dto;
mod metrics;
mod middleware;
mod openapi;
mod routes;
mod schema;
mod sync_dto;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::Semaphore;
use vigil_service::Services;

pub use error::ApiError;
pub use handlers::bundles::import_report_json;
pub use metrics::Metrics;
pub use routes::documented_routes;
pub use sync_dto::CycleReportOut;

/// Largest request body accepted, in bytes.
pub const BODY_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Largest telemetry batch body, in bytes (`POST /api/v1/telemetry/events`); past it, 413.
pub const TELEMETRY_BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest indicator import body, in bytes (`POST /api/v1/indicators/import`); past it, 413.
pub const IMPORT_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Longest a request may take, queueing included, before it is answered 503.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Requests handled at once; more wait for a slot until their timeout.
pub const CONCURRENCY_MAX_DEFAULT: usize = 512;
/// Longest a request body may take to arrive in full; past it, 408. A slow client holds a
/// request slot at most this long.
pub const BODY_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// The body-read timeout of `POST /api/v1/indicators/import` (up to `IMPORT_BYTES_MAX`).
pub const IMPORT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(120);

pub use client_limits::{
    CLIENT_ADDRESSES_MAX, UNAUTHENTICATED_IN_FLIGHT_PER_ADDRESS_MAX,
    UNAUTHENTICATED_REQUEST_REFILL, UNAUTHENTICATED_REQUESTS_PER_ADDRESS_BURST,
};

/// The HTTP limits, each defaulting to the constant of the same name.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub body_bytes_max: usize,
    pub request_timeout: Duration,
    pub concurrency_max: usize,
    pub body_read_timeout: Duration,
    /// Requests without a credential one client address may have in flight.
    pub unauthenticated_in_flight_per_address: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            concurrency_max: CONCURRENCY_MAX_DEFAULT,
            body_read_timeout: BODY_READ_TIMEOUT_DEFAULT,
            unauthenticated_in_flight_per_address: UNAUTHENTICATED_IN_FLIGHT_PER_ADDRESS_MAX,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub metrics: Arc<Metrics>,
    /// The bearer token `/metrics` needs on the API's listener (`VIGIL_METRICS_TOKEN`);
    /// without one it is closed there.
    pub metrics_token: Option<Arc<secrecy::SecretString>>,
    limits: HttpLimits,
    slots: Arc<Semaphore>,
    clients: Arc<client_limits::ClientLimits>,
}

impl AppState {
    pub fn new(services: Services, limits: HttpLimits) -> Self {
        Self {
            services,
            metrics: Arc::new(Metrics::new()),
            metrics_token: None,
            limits,
            slots: Arc::new(Semaphore::new(limits.concurrency_max)),
            clients: Arc::new(client_limits::ClientLimits::new(
                limits.unauthenticated_in_flight_per_address,
            )),
        }
    }
}

/// The whole HTTP surface, with its middleware.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves only `/metrics`, without a token, on a listener of the operator's own
/// (`VIGIL_METRICS_LISTEN`), reachable from the metrics network only.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> std::io::Result<()> {
    axum::serve(listener, routes::metrics_router(state)).await
}

/// Serves `state` on `listener` until `shutdown` completes, then waits for in-flight
/// requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
