//! vigil-sync: keeps a tenant's register and catalogue in step with the tools it already
//! runs. One cycle of one connector reads what changed upstream since its cursor, stores it
//! page by page (idempotent by tenant, source and external id: created, updated and audited,
//! or left alone), saves the cursor only after the page it covers committed, and reconciles
//! deletions by comparing every upstream id with the register.
//!
//! | kind | reads | into | cursor | deletions |
//! |---|---|---|---|---|
//! | `thehive` | cases, Query API | risks | `_updatedAt` and `_createdAt` (ms) | full id listing |
//! | `opencti` | incidents, case-incidents, indicators, GraphQL | risks, catalogue | `updated_at` per entity | full id listing (incidents) |
//! | `openrmf` | checklist vulnerabilities, reports API | risks | none (whole lists) | diff by key, every cycle |
//! | `taxii` | a TAXII 2.1 collection | catalogue | `X-TAXII-Date-Added-Last` | none (feeds revoke) |
//!
//! `run_engine` runs every enabled connector on its own schedule with a circuit breaker.

mod apply;
mod engine;
mod error;
mod http;
mod opencti;
mod openrmf;
mod taxii;
mod thehive;

use error::CycleError;

use std::sync::Arc;

use serde_json::Value;
use vigil_domain::{Connector, ConnectorKind, DeadLetter, TenantId, Timestamp};
use vigil_service::{
    ConnectorHealth, Credentials, CycleReport, Replayed, ServiceError, ServiceResult, Services,
};
use vigil_store::SyncOutcome;

pub use apply::{SHORT_LISTING_FRACTION, SHORT_LISTING_TRACKED_MIN};
pub use engine::{
    BREAKER_COOLDOWN, BREAKER_FAILURES_MAX, ENGINE_RESCAN_INTERVAL, RECONCILE_EVERY_CYCLES,
    SyncStatus, run_engine,
};
pub use error::MapError;
pub use http::{
    PAGES_PER_CYCLE_MAX_DEFAULT, RETRY_ATTEMPTS_MAX_DEFAULT, RETRY_CAP_DEFAULT,
    RETRY_INITIAL_DEFAULT, RetryPolicy, SourceError,
};
pub use opencti::OPENCTI_PAGE_SIZE;
pub use openrmf::OPENRMF_PAGE_SIZE;
pub use taxii::TAXII_PAGE_SIZE;
pub use thehive::{Case, THEHIVE_PAGE_SIZE, transform};
pub use vigil_outbound::Outbound;

use apply::Mapped;

/// How every cycle talks to its source: the outbound client (policy and caps), the retries
/// and the request budget.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub outbound: Outbound,
    pub retry: RetryPolicy,
    /// Most requests one cycle makes (default `PAGES_PER_CYCLE_MAX_DEFAULT`).
    pub pages_per_cycle_max: u32,
}

impl SyncConfig {
    /// The default retries and budget over `outbound`.
    pub fn new(outbound: Outbound) -> Self {
        Self {
            outbound,
            retry: RetryPolicy::default(),
            pages_per_cycle_max: PAGES_PER_CYCLE_MAX_DEFAULT,
        }
    }
}

/// What a connector's cycle works with.
pub(crate) struct Ctx<'a> {
    pub(crate) services: &'a Services,
    pub(crate) connector: &'a Connector,
    pub(crate) http: http::Http,
    pub(crate) credentials: Credentials,
}

/// Whether a cycle also runs the deletion reconciliation (a full listing of upstream ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    Yes,
    No,
}

/// Runs one cycle of `connector`: incremental reading, then (when asked) deletion
/// reconciliation.
pub async fn run_cycle(
    services: &Services,
    connector: &Connector,
    config: &SyncConfig,
    reconcile: Reconcile,
) -> CycleReport {
    let mut report = CycleReport::new(connector);
    let started = std::time::Instant::now();
    tracing::info!(component = "sync", connector = %connector.name, kind = connector.kind.as_str(), "cycle started");
    if let Err(err) = cycle(services, connector, config, reconcile, &mut report).await {
        tracing::error!(component = "sync", connector = %connector.name, error = %err, "cycle failed");
        report.errors.push(err.to_string());
    }
    tracing::info!(
        component = "sync", connector = %connector.name,
        duration_ms = started.elapsed().as_millis() as u64,
        created = report.created, updated = report.updated, unchanged = report.unchanged,
        skipped = report.skipped, deleted_upstream = report.deleted_upstream,
        "cycle ended"
    );
    report
}

async fn cycle(
    services: &Services,
    connector: &Connector,
    config: &SyncConfig,
    reconcile: Reconcile,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let credentials = services.connector_credentials(connector).await?;
    let ctx = Ctx {
        services,
        connector,
        http: http::Http::new(
            config.outbound.clone(),
            config.retry,
            config.pages_per_cycle_max,
        ),
        credentials,
    };
    match connector.kind {
        ConnectorKind::TheHive => thehive::cycle(&ctx, reconcile, report).await,
        ConnectorKind::OpenCti => opencti::cycle(&ctx, reconcile, report).await,
        ConnectorKind::OpenRmf => openrmf::cycle(&ctx, report).await,
        ConnectorKind::Taxii => taxii::cycle(&ctx, report).await,
    }
}

/// What a raw upstream record (a dead letter's payload) maps to with `connector`'s settings.
fn map_record(connector: &Connector, raw: &Value) -> Result<Mapped, MapError> {
    match connector.kind {
        ConnectorKind::TheHive => thehive::map(connector, raw),
        ConnectorKind::OpenCti => opencti::map(connector, raw),
        ConnectorKind::OpenRmf => openrmf::map(connector, raw),
        ConnectorKind::Taxii => taxii::map(raw),
    }
}

/// Maps a dead letter's payload again with its connector's current settings and stores it.
/// On success the letter is removed; on failure it counts another attempt and the reason is
/// returned.
async fn replay_dead_letter(
    services: &Services,
    connector: &Connector,
    letter: DeadLetter,
) -> ServiceResult<Replayed> {
    let engine = apply::engine(connector);
    let raw: Value = serde_json::from_str(&letter.payload)
        .map_err(|_| ServiceError::Internal("a dead letter's payload is not JSON".into()))?;
    let mapped = match map_record(connector, &raw) {
        Ok(mapped) => mapped,
        Err(error) => {
            let reason = error.to_string();
            services
                .record_dead_letter(
                    &engine,
                    &letter.connector,
                    letter.external_id,
                    &reason,
                    letter.payload,
                )
                .await?;
            return Err(ServiceError::invalid("payload", reason));
        }
    };
    let outcome = match mapped {
        Mapped::Skipped => Replayed::Skipped,
        Mapped::BelowThreshold(id) => {
            let source = vigil_domain::Source::parse(connector.kind.as_str())?;
            let state = vigil_domain::SourceState::BelowThreshold;
            services
                .close_synced(&engine, &source, vec![id], state)
                .await?;
            Replayed::Skipped
        }
        Mapped::Risk(risk) => {
            let outcomes = services.store_synced_risks(&engine, vec![risk]).await?;
            match outcomes.first() {
                Some(SyncOutcome::Created) => Replayed::Created,
                Some(SyncOutcome::Updated) => Replayed::Updated,
                Some(SyncOutcome::NotTracked) => Replayed::Skipped,
                _ => Replayed::Unchanged,
            }
        }
        Mapped::Indicators(found) => {
            let label = format!("{} connector {} (replay)", connector.kind, connector.name);
            let counts = services
                .store_synced_indicators(&engine, found, &label)
                .await?;
            if counts.created > 0 {
                Replayed::Created
            } else if counts.updated > 0 {
                Replayed::Updated
            } else {
                Replayed::Unchanged
            }
        }
    };
    services.delete_dead_letter(&engine, letter.id).await?;
    Ok(outcome)
}

/// The engine as the service layer's `SyncEngine` port: cycles run with `config`, health
/// comes from `status` (which `run_engine` fills).
pub struct Engine {
    services: Services,
    config: SyncConfig,
    status: Arc<SyncStatus>,
}

impl Engine {
    /// `services` must not itself hold this engine (wire it into a clone).
    pub fn new(services: Services, config: SyncConfig, status: Arc<SyncStatus>) -> Self {
        Self {
            services,
            config,
            status,
        }
    }
}

#[async_trait::async_trait]
impl vigil_service::SyncEngine for Engine {
    async fn run_now(&self, connector: &Connector) -> CycleReport {
        run_cycle(&self.services, connector, &self.config, Reconcile::Yes).await
    }

    async fn replay(&self, connector: &Connector, letter: DeadLetter) -> ServiceResult<Replayed> {
        replay_dead_letter(&self.services, connector, letter).await
    }

    async fn check_connector(
        &self,
        connector: &Connector,
        credentials: &Credentials,
    ) -> ServiceResult<()> {
        if connector.kind != ConnectorKind::Taxii {
            return Ok(());
        }
        let ctx = Ctx {
            services: &self.services,
            connector,
            http: http::Http::new(
                self.config.outbound.clone(),
                RetryPolicy {
                    attempts_max: 1,
                    ..self.config.retry
                },
                self.config.pages_per_cycle_max,
            ),
            credentials: credentials.clone(),
        };
        taxii::check(&ctx).await
    }

    fn health(&self, tenant: TenantId) -> Vec<ConnectorHealth> {
        self.status.of_tenant(tenant)
    }

    fn stale_count(&self, now: Timestamp) -> usize {
        self.status.stale_count(now)
    }

    fn openmetrics(&self) -> String {
        self.status.openmetrics()
    }
}
