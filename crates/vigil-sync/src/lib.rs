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
mod http;
mod opencti;
mod openrmf;
mod taxii;
mod thehive;

use serde::Serialize;
use serde_json::Value;
use vigil_domain::{Connector, ConnectorKind, DeadLetter, DeadLetterId, Timestamp};
use vigil_service::{Credentials, Principal, Services};
use vigil_store::SyncOutcome;

pub use engine::{
    BREAKER_COOLDOWN, BREAKER_FAILURES_MAX, BreakerState, ENGINE_RESCAN_INTERVAL,
    RECONCILE_EVERY_CYCLES, STALE_AFTER_INTERVALS, SourceStatus, SyncStatus, run_engine,
};
pub use http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, RETRY_ATTEMPTS_MAX_DEFAULT, RETRY_CAP_DEFAULT,
    RETRY_INITIAL_DEFAULT, RetryPolicy, SourceError,
};
pub use opencti::OPENCTI_PAGE_SIZE;
pub use openrmf::OPENRMF_PAGE_SIZE;
pub use taxii::TAXII_PAGE_SIZE;
pub use thehive::{Case, THEHIVE_PAGE_SIZE, transform};

use apply::{Mapped, change};

/// What one cycle of one connector did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    pub tenant: String,
    pub connector: String,
    pub kind: &'static str,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Below the connector's threshold, closed upstream and never tracked, or not kept
    /// (another pattern language, a STIX object that is not an indicator).
    pub skipped: u64,
    /// Upstream records that do not map, each kept as a dead letter.
    pub dead_lettered: u64,
    /// Risks closed because their upstream record is gone.
    pub deleted_upstream: u64,
    pub errors: Vec<String>,
}

impl CycleReport {
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    fn count(&mut self, outcome: SyncOutcome) {
        match outcome {
            SyncOutcome::Created => self.created += 1,
            SyncOutcome::Updated => self.updated += 1,
            SyncOutcome::Unchanged => self.unchanged += 1,
            SyncOutcome::NotTracked => self.skipped += 1,
        }
    }
}

/// What a connector's cycle works with.
pub(crate) struct Ctx<'a> {
    pub(crate) services: &'a Services,
    pub(crate) connector: &'a Connector,
    pub(crate) retry: RetryPolicy,
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
    retry: RetryPolicy,
    reconcile: Reconcile,
) -> CycleReport {
    let mut report = CycleReport {
        tenant: connector.tenant_id.to_string(),
        connector: connector.name.to_string(),
        kind: connector.kind.as_str(),
        ..CycleReport::default()
    };
    let started = std::time::Instant::now();
    tracing::info!(component = "sync", connector = %connector.name, kind = connector.kind.as_str(), "cycle started");
    if let Err(err) = cycle(services, connector, retry, reconcile, &mut report).await {
        tracing::error!(component = "sync", connector = %connector.name, error = %err, "cycle failed");
        report.errors.push(err);
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
    retry: RetryPolicy,
    reconcile: Reconcile,
    report: &mut CycleReport,
) -> Result<(), String> {
    let credentials = services
        .connector_credentials(connector.tenant_id, &connector.name)
        .await
        .map_err(|err| err.to_string())?;
    let ctx = Ctx {
        services,
        connector,
        retry,
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
fn map_record(connector: &Connector, raw: &Value) -> Result<Mapped, String> {
    match connector.kind {
        ConnectorKind::TheHive => thehive::map(connector, raw),
        ConnectorKind::OpenCti => opencti::map(connector, raw),
        ConnectorKind::OpenRmf => openrmf::map(connector, raw),
        ConnectorKind::Taxii => taxii::map(raw),
    }
}

/// What replaying a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replayed {
    Created,
    Updated,
    Unchanged,
    /// Below the connector's threshold now, or nothing Vigil keeps: the letter is gone.
    Skipped,
}

/// Maps a dead letter's payload again with its connector's current settings and stores it.
/// On success the letter is removed; on failure it counts another attempt and the reason is
/// returned.
pub async fn replay_dead_letter(
    services: &Services,
    principal: &Principal,
    id: DeadLetterId,
) -> Result<Replayed, vigil_service::ServiceError> {
    use vigil_service::ServiceError;
    let tenant = principal.require_tenant(vigil_domain::Permission::ManageTenantAccess)?;
    let letter = services.store().get_dead_letter(tenant, id).await?;
    let connector = services.get_connector(principal, &letter.connector).await?;
    let raw: Value = serde_json::from_str(&letter.payload)
        .map_err(|_| ServiceError::Internal("a dead letter's payload is not JSON".into()))?;
    let mapped = match map_record(&connector, &raw) {
        Ok(mapped) => mapped,
        Err(reason) => {
            let again = DeadLetter::new(
                tenant,
                letter.connector,
                letter.external_id,
                &reason,
                letter.payload,
                Timestamp::now(),
            );
            services.store().record_dead_letter(tenant, again).await?;
            return Err(ServiceError::invalid("payload", reason));
        }
    };
    let outcome = match mapped {
        Mapped::Skipped => Replayed::Skipped,
        Mapped::Risk(risk) => {
            let outcomes = services
                .store()
                .sync_risks(tenant, &change(), vec![risk])
                .await?;
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
                .store()
                .import_indicators(
                    tenant,
                    &change(),
                    vigil_service::dedupe_indicators(found),
                    &label,
                )
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
    services.store().delete_dead_letter(tenant, id).await?;
    Ok(outcome)
}
