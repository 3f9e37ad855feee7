//! Prometheus metrics: requests by method, route and status; latency by route; the store's
//! connection pool, read when scraped.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vigil_store::PoolStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_size: Gauge<i64, std::sync::atomic::AtomicI64>,
    pool_idle: Gauge<i64, std::sync::atomic::AtomicI64>,
    pool_max: Gauge<i64, std::sync::atomic::AtomicI64>,
    telemetry: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let requests = Family::<RequestLabels, Counter<u64, AtomicU64>>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        // 0.25 ms … ~8 s in 16 doubling steps.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        registry.register(
            "store_pool_connections",
            "Open store connections",
            pool_size.clone(),
        );
        registry.register(
            "store_pool_idle_connections",
            "Idle store connections",
            pool_idle.clone(),
        );
        registry.register(
            "store_pool_max_connections",
            "Store connection limit",
            pool_max.clone(),
        );
        let telemetry = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "telemetry",
            "Telemetry ingest by outcome: events accepted, duplicate or rejected, matches \
             recorded, findings reopened, correlation errors",
            telemetry.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            pool_size,
            pool_idle,
            pool_max,
            telemetry,
        }
    }

    /// Counts what one ingest batch did.
    pub fn ingested(&self, report: &vigil_service::IngestReport) {
        let reopened = report.matches.iter().filter(|(_, m)| m.reopened).count();
        for (outcome, n) in [
            ("accepted", report.accepted()),
            ("duplicate", report.duplicates()),
            ("rejected", report.rejected.len()),
            ("matched", report.matches.len()),
            ("reopened", reopened),
            ("error", report.errors.len()),
        ] {
            self.telemetry
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n as u64);
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// The text exposition, with the pool read at this moment.
    pub fn render(&self, pool: PoolStats) -> String {
        self.pool_size.set(i64::from(pool.size));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
