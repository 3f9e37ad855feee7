//! vigil-store: the repository traits every storage backend implements, the records they
//! return and the one error type they fail with. Knows nothing of SQL dialects or HTTP; the
//! backends (`vigil-store-sqlite`, `vigil-store-postgres`) live in their own crates and are
//! held to the same behaviour by the `conformance` story.
//!
//! Every method that touches tenant data takes the tenant (or `Scope`) first. Every mutation
//! writes its audit event in the same transaction, which is why mutations take a `Change`.

mod audit;
mod automation;
mod error;
mod ioc_rows;
mod model;
mod plans;
mod rows;
mod runs;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
mod conformance_automation;
#[cfg(feature = "conformance")]
mod conformance_ioc;
#[cfg(feature = "conformance")]
mod conformance_plans;
#[cfg(feature = "conformance")]
mod conformance_runs;

use async_trait::async_trait;
use vigil_domain::{
    ApiKeyId, AuditEvent, ChainHead, Connector, ConnectorName, Email, EventId, ExternalId, Finding,
    FindingFilter, FindingId, FindingPatch, FindingStatus, Indicator, IndicatorFilter, IndicatorId,
    IndicatorPatch, IocMatch, MatchFilter, NewEvent, NewFinding, NewIndicator, NewMatch, NewRisk,
    NewSuppression, PageRequest, ReopenCause, Risk, RiskFilter, RiskId, RiskPatch, SessionId,
    Sha256Hex, Slug, Source, Suppression, SuppressionId, SyncedRisk, TelemetryEvent, Tenant,
    TenantId, TenantName, Timestamp, UserId,
};

pub use audit::{ACCESS_ENTITY_TYPES, AuditDraft, AuditFilter, Change, seal};
pub use automation::{App, AppImport, AutomationRepo, Task, cycle_in, cycle_with};
pub use error::{StoreError, StoreResult};
pub use ioc_rows::{
    ConnectorRow, DeadLetterRow, EventRow, FindingRow, IndicatorRow, MatchRow, SuppressionRow,
    options_json,
};
pub use model::{
    ApiKey, CatalogueSnapshot, ImportCounts, NewApiKey, NewSession, NewUser, Page, PoolStats,
    Scope, Session, StoredEvent, User, UserEdit,
};
pub use plans::PlanRepo;
pub use rows::{
    ApiKeyRow, AuditRow, RiskRow, SessionRow, TenantRow, UserRow, contains_pattern, tags_json,
};
pub use runs::{RunRepo, attempts_from, attempts_text, corrupt as runs_corrupt, outputs_from};

#[async_trait]
pub trait TenantRepo: Send + Sync {
    /// Fails with `Conflict` when the slug is taken.
    async fn create_tenant(
        &self,
        change: &Change,
        slug: &Slug,
        name: &TenantName,
    ) -> StoreResult<Tenant>;
    async fn list_tenants(&self, page: PageRequest) -> StoreResult<Page<Tenant>>;
    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant>;
    async fn find_tenant_by_slug(&self, slug: &Slug) -> StoreResult<Option<Tenant>>;
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync {
    async fn create_api_key(
        &self,
        scope: Scope,
        change: &Change,
        key: NewApiKey,
    ) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<ApiKey>>;
    /// Revoking twice is allowed and keeps the first revocation time.
    async fn revoke_api_key(
        &self,
        scope: Scope,
        change: &Change,
        id: ApiKeyId,
    ) -> StoreResult<ApiKey>;
    /// Looks a presented key up by its hash across all tenants: authentication is the one
    /// place that learns the tenant from the row instead of bringing it.
    async fn unchecked_find_api_key_by_hash(&self, hash: &Sha256Hex)
    -> StoreResult<Option<ApiKey>>;
    /// Platform-admin keys that are neither revoked nor expired at `now`.
    async fn count_usable_platform_keys(&self, now: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Fails with `Conflict` when the e-mail is taken within the scope.
    async fn create_user(&self, scope: Scope, change: &Change, user: NewUser) -> StoreResult<User>;
    async fn list_users(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<User>>;
    async fn find_user_by_email(&self, scope: Scope, email: &Email) -> StoreResult<Option<User>>;
    async fn get_user(&self, scope: Scope, id: UserId) -> StoreResult<User>;
    /// Applies `edit` to the user and, unless it is `Enable`, revokes its live sessions, in
    /// one audited transaction. Answers the user after the edit (as it was, for `Delete`).
    async fn edit_user(
        &self,
        scope: Scope,
        change: &Change,
        id: UserId,
        edit: UserEdit,
    ) -> StoreResult<User>;
}

#[async_trait]
pub trait SessionRepo: Send + Sync {
    async fn create_session(
        &self,
        scope: Scope,
        change: &Change,
        session: NewSession,
    ) -> StoreResult<Session>;
    async fn get_session(&self, scope: Scope, id: SessionId) -> StoreResult<Session>;
    /// A refresh token names its session but not its tenant, so refreshing starts here.
    async fn unchecked_get_session(&self, id: SessionId) -> StoreResult<Option<Session>>;
    async fn list_sessions(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<Session>>;
    /// Replaces the refresh hash if it still equals `expected`; `Conflict` otherwise (the
    /// old token was already used — the caller treats that as theft).
    async fn rotate_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        expected: &Sha256Hex,
        next: &Sha256Hex,
    ) -> StoreResult<Session>;
    async fn revoke_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
    ) -> StoreResult<Session>;
    async fn set_session_expiry(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        expires_at: Timestamp,
    ) -> StoreResult<Session>;
}

#[async_trait]
pub trait RiskRepo: Send + Sync {
    /// Fails with `Conflict` when (source, external id) is already in the tenant's register.
    async fn create_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        risk: NewRisk,
    ) -> StoreResult<Risk>;
    async fn get_risk(&self, tenant: TenantId, id: RiskId) -> StoreResult<Risk>;
    /// Newest first.
    async fn list_risks(
        &self,
        tenant: TenantId,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Risk>>;
    async fn update_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        id: RiskId,
        patch: RiskPatch,
    ) -> StoreResult<Risk>;
    async fn delete_risk(&self, tenant: TenantId, change: &Change, id: RiskId) -> StoreResult<()>;
}

#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Newest first. `chain` is a tenant id, or `TenantId::PLATFORM_CHAIN`.
    async fn list_audit(
        &self,
        chain: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEvent>>;
    /// Up to `limit` events with `seq > after_seq`, in sequence order: what verification reads.
    async fn audit_chain_after(
        &self,
        chain: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The head recorded by the last append, if the chain has any event.
    async fn audit_head(&self, chain: TenantId) -> StoreResult<Option<ChainHead>>;
    /// Appends an event that goes with no stored change (a login throttled, say).
    async fn append_event(
        &self,
        chain: TenantId,
        change: &Change,
        draft: AuditDraft,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait FindingRepo: Send + Sync {
    /// Fails with `Conflict` when (source, external id) is already taken in the tenant.
    async fn create_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        finding: NewFinding,
    ) -> StoreResult<Finding>;
    async fn get_finding(&self, tenant: TenantId, id: FindingId) -> StoreResult<Finding>;
    /// Newest first.
    async fn list_findings(
        &self,
        tenant: TenantId,
        filter: &FindingFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Finding>>;
    async fn update_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        patch: FindingPatch,
    ) -> StoreResult<Finding>;
    /// Moves the finding to `to`; `Invalid` when the lifecycle does not allow it from the
    /// status the finding has when the transaction reads it.
    async fn transition_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        to: FindingStatus,
    ) -> StoreResult<Finding>;
    /// The correlator's reopen: a closed finding becomes in progress, atomically, with an
    /// audit event naming `cause`, and the answer is `true`. Any other status: nothing
    /// changes, nothing is audited, `false`.
    async fn reopen_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool>;
}

/// The indicator catalogue and the suppression list. Every change bumps the tenant's
/// catalogue version in its transaction.
#[async_trait]
pub trait CatalogueRepo: Send + Sync {
    /// `Conflict` when the tenant already has this (type, value); `Invalid` when
    /// `finding_id` names no finding of the tenant.
    async fn create_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        indicator: NewIndicator,
    ) -> StoreResult<Indicator>;
    /// Adds or refreshes `indicators` in one transaction, keyed by (type, value): new ones
    /// are created, changed ones updated, identical ones left alone. `label` names the
    /// import in its one audit event. The caller removes duplicates within the batch.
    /// Creates or refreshes each indicator, in one transaction. `OverLimit`, and nothing
    /// written, when it would create more than `created_max`.
    async fn import_indicators(
        &self,
        tenant: TenantId,
        change: &Change,
        indicators: Vec<NewIndicator>,
        label: &str,
        created_max: Option<u64>,
    ) -> StoreResult<ImportCounts>;
    async fn get_indicator(&self, tenant: TenantId, id: IndicatorId) -> StoreResult<Indicator>;
    /// Newest first.
    async fn list_indicators(
        &self,
        tenant: TenantId,
        filter: &IndicatorFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Indicator>>;
    async fn update_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
        patch: IndicatorPatch,
    ) -> StoreResult<Indicator>;
    async fn delete_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
    ) -> StoreResult<()>;
    /// `Conflict` when the tenant already suppresses this (type, value).
    async fn create_suppression(
        &self,
        tenant: TenantId,
        change: &Change,
        suppression: NewSuppression,
    ) -> StoreResult<Suppression>;
    /// Newest first.
    async fn list_suppressions(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Suppression>>;
    async fn delete_suppression(
        &self,
        tenant: TenantId,
        change: &Change,
        id: SuppressionId,
    ) -> StoreResult<()>;
    /// The tenant's catalogue version: 0 before its first change.
    async fn catalogue_version(&self, tenant: TenantId) -> StoreResult<i64>;
    /// The active indicators and all suppressions, read in one transaction together with
    /// the version they belong to.
    async fn catalogue_snapshot(&self, tenant: TenantId) -> StoreResult<CatalogueSnapshot>;
}

#[async_trait]
pub trait TelemetryRepo: Send + Sync {
    /// Stores `events` in one transaction and answers in the same order. An event whose
    /// client id the tenant already has is not stored again: its answer names the stored
    /// event and says `duplicate`.
    async fn insert_events(
        &self,
        tenant: TenantId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<StoredEvent>>;
    async fn get_event(&self, tenant: TenantId, id: EventId) -> StoreResult<TelemetryEvent>;
    /// Stores `matches` in one transaction.
    async fn record_matches(
        &self,
        tenant: TenantId,
        matches: Vec<NewMatch>,
    ) -> StoreResult<Vec<IocMatch>>;
    /// Newest first.
    async fn list_matches(
        &self,
        tenant: TenantId,
        filter: &MatchFilter,
        page: PageRequest,
    ) -> StoreResult<Page<IocMatch>>;
}

/// Sync connectors. Credentials arrive sealed and leave sealed: only the service opens them.
#[async_trait]
pub trait ConnectorRepo: Send + Sync {
    /// Creates the connector or replaces its configuration. `sealed` `None` keeps the stored
    /// credentials (`Invalid` when a new connector comes without). Answers the stored
    /// connector and whether it was created.
    async fn put_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        connector: Connector,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<(Connector, bool)>;
    async fn get_connector(&self, tenant: TenantId, name: &ConnectorName)
    -> StoreResult<Connector>;
    /// By name.
    async fn list_connectors(&self, tenant: TenantId) -> StoreResult<Vec<Connector>>;
    async fn delete_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &ConnectorName,
    ) -> StoreResult<()>;
    /// The sealed credentials, for the sync engine.
    async fn connector_credentials(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
    ) -> StoreResult<Vec<u8>>;
}

/// What syncing one upstream record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Created,
    Updated,
    Unchanged,
    /// Closed upstream and not in the register: nothing is created for it.
    NotTracked,
}

/// What the sync engine writes: risks keyed by (tenant, source, external id), and cursors.
#[async_trait]
pub trait SyncRepo: Send + Sync {
    /// Upserts a page of upstream records in one transaction, in order: created when new,
    /// updated (and audited) when changed, untouched when equal.
    async fn sync_risks(
        &self,
        tenant: TenantId,
        change: &Change,
        risks: Vec<SyncedRisk>,
    ) -> StoreResult<Vec<SyncOutcome>>;
    /// External ids of the source's risks whose upstream record is still there (present or
    /// below the threshold: not deleted).
    async fn present_external_ids(
        &self,
        tenant: TenantId,
        source: &Source,
    ) -> StoreResult<Vec<ExternalId>>;
    /// Closes these risks and marks them `state` upstream (`Deleted`, `BelowThreshold`);
    /// answers how many changed. Ids Vigil does not track are left alone.
    async fn close_upstream(
        &self,
        tenant: TenantId,
        change: &Change,
        source: &Source,
        external_ids: Vec<ExternalId>,
        state: vigil_domain::SourceState,
    ) -> StoreResult<u64>;
    async fn sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
    ) -> StoreResult<Option<String>>;
    async fn set_sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        cursor: &str,
    ) -> StoreResult<()>;
    /// Keeps `letter`; a letter for the same (connector, external id) is replaced and counts
    /// another attempt. Answers the stored letter.
    async fn record_dead_letter(
        &self,
        tenant: TenantId,
        letter: vigil_domain::DeadLetter,
    ) -> StoreResult<vigil_domain::DeadLetter>;
    /// Newest first.
    async fn list_dead_letters(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<vigil_domain::DeadLetter>>;
    async fn get_dead_letter(
        &self,
        tenant: TenantId,
        id: vigil_domain::DeadLetterId,
    ) -> StoreResult<vigil_domain::DeadLetter>;
    /// Removes the connector's letters for these records, which have since been stored.
    /// Answers how many went.
    async fn clear_dead_letters(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        external_ids: Vec<String>,
    ) -> StoreResult<u64>;
    /// Removes a letter whose record has since been stored.
    async fn delete_dead_letter(
        &self,
        tenant: TenantId,
        id: vigil_domain::DeadLetterId,
    ) -> StoreResult<()>;
}

/// A storage backend: every repository plus health.
#[async_trait]
pub trait Store:
    TenantRepo
    + ApiKeyRepo
    + UserRepo
    + SessionRepo
    + RiskRepo
    + AuditRepo
    + FindingRepo
    + CatalogueRepo
    + TelemetryRepo
    + ConnectorRepo
    + SyncRepo
    + AutomationRepo
    + RunRepo
    + PlanRepo
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Round-trips a trivial query: what `/readyz` asks.
    async fn ping(&self) -> StoreResult<()>;
    fn pool_stats(&self) -> PoolStats;
}
