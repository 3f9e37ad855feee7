//! The sync engine's reports and health on the wire.

use serde::Serialize;
use vigil_service::{ConnectorHealth, CycleReport};

/// What one cycle of one connector did (`POST /api/v1/sync/{name}/run`, `vigil sync run`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CycleReport)]
pub struct CycleReportOut {
    pub tenant: String,
    pub connector: String,
    pub kind: &'static str,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub dead_lettered: u64,
    pub deleted_upstream: u64,
    pub below_threshold: u64,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl From<CycleReport> for CycleReportOut {
    fn from(r: CycleReport) -> Self {
        Self {
            tenant: r.tenant.to_string(),
            connector: r.connector.to_string(),
            kind: r.kind.as_str(),
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            skipped: r.skipped,
            dead_lettered: r.dead_lettered,
            deleted_upstream: r.deleted_upstream,
            below_threshold: r.below_threshold,
            warnings: r.warnings,
            errors: r.errors,
        }
    }
}

/// One connector as the engine sees it (`GET /api/v1/sync/status`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectorHealthOut {
    connector: String,
    kind: &'static str,
    cycles_total: u64,
    cycles_succeeded: u64,
    cycles_failed: u64,
    items_created: u64,
    items_updated: u64,
    items_skipped: u64,
    items_dead_lettered: u64,
    last_success_at: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    last_cycle_ms: Option<u64>,
    #[schema(schema_with = crate::schema::breaker)]
    breaker: &'static str,
    interval_s: u32,
}

impl From<ConnectorHealth> for ConnectorHealthOut {
    fn from(h: ConnectorHealth) -> Self {
        Self {
            connector: h.connector.to_string(),
            kind: h.kind.as_str(),
            cycles_total: h.cycles_total,
            cycles_succeeded: h.cycles_succeeded,
            cycles_failed: h.cycles_failed,
            items_created: h.items_created,
            items_updated: h.items_updated,
            items_skipped: h.items_skipped,
            items_dead_lettered: h.items_dead_lettered,
            last_success_at: h.last_success_at.map(|t| t.to_string()),
            last_error: h.last_error,
            last_error_at: h.last_error_at.map(|t| t.to_string()),
            last_cycle_ms: h.last_cycle_ms,
            breaker: h.breaker.as_str(),
            interval_s: h.interval_s,
        }
    }
}
