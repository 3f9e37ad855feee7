//! The sync engine as the edge sees it: run a connector now, replay a dead letter, report
//! each connector's health. `SyncEngine` is the port; `vigil-sync` implements it and the
//! binary wires it with `Services::with_sync_engine`, so neither the HTTP edge nor the CLI
//! depends on the engine.

use std::sync::Arc;

use async_trait::async_trait;
use vigil_domain::{
    Connector, ConnectorKind, ConnectorName, DeadLetter, DeadLetterId, Permission, TenantId,
    Timestamp,
};
use vigil_store::SyncOutcome;

use crate::{Principal, ServiceError, ServiceResult, Services};

/// A connector is stale when its last successful cycle is older than this many of its
/// intervals, or it has failed without ever succeeding.
pub const STALE_AFTER_INTERVALS: i64 = 3;

/// What one cycle of one connector did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub tenant: TenantId,
    pub connector: ConnectorName,
    pub kind: ConnectorKind,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Below the connector's threshold (never tracked, or already closed for it), closed
    /// upstream and never tracked, or not kept (another pattern language, a STIX object
    /// that is not an indicator).
    pub skipped: u64,
    /// Upstream records that do not map, each kept as a dead letter.
    pub dead_lettered: u64,
    /// Risks closed because their upstream record is gone.
    pub deleted_upstream: u64,
    /// Risks closed because their record dropped below the connector's threshold.
    pub below_threshold: u64,
    /// Warnings that did not fail the cycle (a listing too short to trust, say).
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl CycleReport {
    pub fn new(connector: &Connector) -> Self {
        Self {
            tenant: connector.tenant_id,
            connector: connector.name.clone(),
            kind: connector.kind,
            created: 0,
            updated: 0,
            unchanged: 0,
            skipped: 0,
            dead_lettered: 0,
            deleted_upstream: 0,
            below_threshold: 0,
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn count(&mut self, outcome: SyncOutcome) {
        match outcome {
            SyncOutcome::Created => self.created += 1,
            SyncOutcome::Updated => self.updated += 1,
            SyncOutcome::Unchanged => self.unchanged += 1,
            SyncOutcome::NotTracked => self.skipped += 1,
        }
    }
}

/// What replaying a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    Created,
    Updated,
    Unchanged,
    /// Below the connector's threshold now, or nothing Vigil keeps: the letter is gone.
    Skipped,
}

impl Replayed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// What the engine knows of one connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorHealth {
    pub connector: ConnectorName,
    pub kind: ConnectorKind,
    pub cycles_total: u64,
    pub cycles_succeeded: u64,
    pub cycles_failed: u64,
    pub items_created: u64,
    pub items_updated: u64,
    pub items_skipped: u64,
    pub items_dead_lettered: u64,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_cycle_ms: Option<u64>,
    pub breaker: BreakerState,
    pub interval_s: u32,
    /// Failed cycles in a row.
    pub failures_in_row: u32,
}

impl ConnectorHealth {
    pub fn new(connector: ConnectorName, kind: ConnectorKind) -> Self {
        Self {
            connector,
            kind,
            cycles_total: 0,
            cycles_succeeded: 0,
            cycles_failed: 0,
            items_created: 0,
            items_updated: 0,
            items_skipped: 0,
            items_dead_lettered: 0,
            last_success_at: None,
            last_error: None,
            last_error_at: None,
            last_cycle_ms: None,
            breaker: BreakerState::Closed,
            interval_s: 0,
            failures_in_row: 0,
        }
    }

    /// Whether the source is behind (see `STALE_AFTER_INTERVALS`).
    pub fn is_stale(&self, now: Timestamp) -> bool {
        match self.last_success_at {
            Some(at) => {
                now.unix_micros() - at.unix_micros()
                    > STALE_AFTER_INTERVALS * i64::from(self.interval_s.max(1)) * 1_000_000
            }
            None => self.cycles_failed > 0,
        }
    }
}

/// The engine, as the use cases reach it.
#[async_trait]
pub trait SyncEngine: Send + Sync {
    /// One cycle of `connector` now, deletion reconciliation included.
    async fn run_now(&self, connector: &Connector) -> CycleReport;
    /// Maps `letter` again with `connector`'s current settings and stores it; on success the
    /// letter is removed, on failure it counts another attempt.
    async fn replay(&self, connector: &Connector, letter: DeadLetter) -> ServiceResult<Replayed>;
    /// Checks a connector's configuration against its server when the server answers (a
    /// TAXII discovery URL, API root and collection): `Invalid` naming what is wrong and
    /// what the server offers; `Ok` when it matches or cannot be asked.
    async fn check_connector(
        &self,
        connector: &Connector,
        credentials: &crate::Credentials,
    ) -> ServiceResult<()>;
    /// The tenant's connectors the engine runs, by name.
    fn health(&self, tenant: TenantId) -> Vec<ConnectorHealth>;
    /// How many connectors (of every tenant) are behind their schedule.
    fn stale_count(&self, now: Timestamp) -> usize;
    /// The engine's counters in OpenMetrics text (without `# EOF`).
    fn openmetrics(&self) -> String;
}

impl Services {
    /// The same services reaching `engine` for run-now, replay and status.
    pub fn with_sync_engine(mut self, engine: Arc<dyn SyncEngine>) -> Self {
        self.sync_engine = Some(engine);
        self
    }

    fn sync_engine(&self) -> ServiceResult<&dyn SyncEngine> {
        self.sync_engine.as_deref().ok_or_else(|| {
            ServiceError::Unavailable("the sync engine does not run in this process".into())
        })
    }

    /// Runs one cycle of the tenant's connector now (tenant admins); a disabled connector
    /// runs too (disabled means not scheduled).
    pub async fn run_connector_now(
        &self,
        principal: &Principal,
        name: &ConnectorName,
    ) -> ServiceResult<CycleReport> {
        let connector = self.get_connector(principal, name).await?;
        Ok(self.sync_engine()?.run_now(&connector).await)
    }

    /// Replays one dead letter of the tenant (tenant admins).
    pub async fn replay_dead_letter(
        &self,
        principal: &Principal,
        id: DeadLetterId,
    ) -> ServiceResult<Replayed> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        let engine = self.sync_engine()?;
        let letter = self.store().get_dead_letter(tenant, id).await?;
        let connector = self.get_connector(principal, &letter.connector).await?;
        engine.replay(&connector, letter).await
    }

    /// The engine's view of the tenant's connectors (tenant admins); empty when the engine
    /// does not run in this process.
    pub fn sync_health(&self, principal: &Principal) -> ServiceResult<Vec<ConnectorHealth>> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        Ok(self
            .sync_engine
            .as_deref()
            .map(|engine| engine.health(tenant))
            .unwrap_or_default())
    }

    /// How many connectors are behind, over every tenant (for `/readyz`: a count, no names).
    pub fn stale_connectors(&self) -> usize {
        self.sync_engine
            .as_deref()
            .map_or(0, |engine| engine.stale_count(Timestamp::now()))
    }

    /// The engine's metric families, empty without an engine.
    pub fn sync_openmetrics(&self) -> String {
        self.sync_engine
            .as_deref()
            .map(SyncEngine::openmetrics)
            .unwrap_or_default()
    }
}
