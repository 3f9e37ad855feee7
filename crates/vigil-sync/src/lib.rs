//! vigil-sync: keeps a tenant's register in step with the tools it already runs. One cycle of
//! one connector reads what changed upstream since its cursor, upserts it page by page
//! (idempotent by tenant, source and external id: created, updated and audited, or left
//! alone), saves the cursor only after the page it covers committed, and then reconciles
//! deletions by comparing every upstream id with the register.
//!
//! `run_engine` runs every enabled connector on its own schedule with a circuit breaker.
//! This crate holds TheHive 5 so far; OpenCTI, OpenRMF and TAXII connectors and stored dead
//! letters are not built yet.

mod engine;
mod http;
mod thehive;

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use vigil_domain::{
    Connector, ConnectorKind, DeadLetter, DeadLetterId, ExternalId, Source, SyncedRisk, TenantId,
    Timestamp,
};
use vigil_service::{Principal, Services};
use vigil_store::{Change, SyncOutcome};

pub use engine::{
    BREAKER_COOLDOWN, BREAKER_FAILURES_MAX, BreakerState, ENGINE_RESCAN_INTERVAL,
    RECONCILE_EVERY_CYCLES, STALE_AFTER_INTERVALS, SourceStatus, SyncStatus, run_engine,
};
pub use http::{
    CONNECT_TIMEOUT, REQUEST_TIMEOUT, RETRY_ATTEMPTS_MAX_DEFAULT, RETRY_CAP_DEFAULT,
    RETRY_INITIAL_DEFAULT, RetryPolicy, SourceError,
};
pub use thehive::{Case, THEHIVE_PAGE_SIZE, transform};

use thehive::{Order, TheHive};

/// What one cycle of one connector did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    pub tenant: String,
    pub connector: String,
    pub kind: &'static str,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Below the connector's threshold.
    pub skipped: u64,
    /// Upstream records that do not map (reported, not stored; dead-letter storage is to come).
    pub dead_lettered: u64,
    /// Risks closed because their upstream record is gone.
    pub deleted_upstream: u64,
    pub errors: Vec<String>,
}

impl CycleReport {
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }
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
    reconcile_ids: Reconcile,
    report: &mut CycleReport,
) -> Result<(), String> {
    if connector.kind != ConnectorKind::TheHive {
        return Err(format!(
            "{} connectors are not supported yet; only thehive is",
            connector.kind
        ));
    }
    let credentials = services
        .connector_credentials(connector.tenant_id, &connector.name)
        .await
        .map_err(|err| err.to_string())?;
    let hive = TheHive {
        http: http::client(),
        base: connector.url.as_str().to_owned(),
        api_key: credentials.get("api_key").unwrap_or_default().to_owned(),
        organisation: connector
            .options
            .get("organisation")
            .unwrap_or_default()
            .to_owned(),
        retry,
    };
    for order in [Order::Updated, Order::Created] {
        read_pass(services, connector, &hive, order, report).await?;
    }
    if reconcile_ids == Reconcile::Yes {
        reconcile(services, connector, &hive, report).await?;
    }
    Ok(())
}

fn change() -> Change {
    Principal::system().change(Some("sync".into()))
}

/// The cursor is one timestamp (epoch ms) per read order, stored as `updated:<ms>,created:<ms>`.
fn cursor_of(stored: Option<&str>, order: Order) -> i64 {
    let key = match order {
        Order::Updated => "updated:",
        Order::Created => "created:",
    };
    stored
        .into_iter()
        .flat_map(|text| text.split(','))
        .find_map(|part| part.strip_prefix(key)?.parse().ok())
        .unwrap_or(0)
}

fn with_cursor(stored: Option<&str>, order: Order, at: i64) -> String {
    let (updated, created) = match order {
        Order::Updated => (at, cursor_of(stored, Order::Created)),
        Order::Created => (cursor_of(stored, Order::Updated), at),
    };
    format!("updated:{updated},created:{created}")
}

/// Reads every case at or after the cursor in `order`, a page at a time: upsert the page,
/// then move the cursor to the page's last timestamp. Cases sharing that timestamp are read
/// again on the next page (or the next cycle) and come back unchanged, so ties across a page
/// boundary and a crash between the commit and the cursor save neither skip nor duplicate.
async fn read_pass(
    services: &Services,
    connector: &Connector,
    hive: &TheHive,
    order: Order,
    report: &mut CycleReport,
) -> Result<(), String> {
    let store = services.store();
    let tenant = connector.tenant_id;
    // Both orders' cursors in one value; this pass changes only its own.
    let mut stored = store
        .sync_cursor(tenant, &connector.name)
        .await
        .map_err(|err| err.to_string())?;
    let mut since = cursor_of(stored.as_deref(), order);
    // Cases at `since` already read in this pass; skipped by offset when a whole page shares
    // one timestamp.
    let mut offset = 0;
    loop {
        let page = hive
            .cases(order, since, offset, THEHIVE_PAGE_SIZE)
            .await
            .map_err(|err| err.to_string())?;
        let full = page.len() == THEHIVE_PAGE_SIZE;
        let in_order: Vec<&Value> = page.iter().filter(|c| order.key(c).is_some()).collect();
        upsert_page(services, connector, &in_order, report).await?;
        let last = in_order.iter().filter_map(|c| order.key(c)).max();
        match last {
            Some(last) if last > since => {
                offset = in_order
                    .iter()
                    .filter(|c| order.key(c) == Some(last))
                    .count();
                since = last;
            }
            _ => offset += page.len(),
        }
        let next = with_cursor(stored.as_deref(), order, since);
        store
            .set_sync_cursor(tenant, &connector.name, &next)
            .await
            .map_err(|err| err.to_string())?;
        stored = Some(next);
        if !full {
            return Ok(());
        }
    }
}

/// A raw case as the risk it maps to: `Ok(None)` below the threshold, `Err` (with the case's
/// id) when it does not map.
fn map_case(connector: &Connector, raw: &Value) -> Result<Option<SyncedRisk>, (String, String)> {
    let id = raw
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or("(no _id)")
        .to_owned();
    let case: Case = serde_json::from_value(raw.clone())
        .map_err(|err| (id.clone(), format!("not a case: {err}")))?;
    let legacy_tlp = connector.options.get("tlp_numbering") == Some("legacy");
    transform(&case, connector.threshold, legacy_tlp).map_err(|reason| (id, reason))
}

async fn upsert_page(
    services: &Services,
    connector: &Connector,
    cases: &[&Value],
    report: &mut CycleReport,
) -> Result<(), String> {
    let mut risks = Vec::with_capacity(cases.len());
    for raw in cases {
        match map_case(connector, raw) {
            Ok(Some(risk)) => risks.push(risk),
            Ok(None) => report.skipped += 1,
            Err((id, reason)) => {
                tracing::warn!(component = "sync", connector = %connector.name, case = %id, %reason, "case does not map; dead-lettered");
                let letter = DeadLetter::new(
                    connector.tenant_id,
                    connector.name.clone(),
                    id,
                    &reason,
                    raw.to_string(),
                    Timestamp::now(),
                );
                services
                    .store()
                    .record_dead_letter(connector.tenant_id, letter)
                    .await
                    .map_err(|err| err.to_string())?;
                report.dead_lettered += 1;
            }
        }
    }
    if risks.is_empty() {
        return Ok(());
    }
    let stored_ids: Vec<String> = risks
        .iter()
        .map(|r| r.external_id.as_str().to_owned())
        .collect();
    let outcomes = services
        .store()
        .sync_risks(connector.tenant_id, &change(), risks)
        .await
        .map_err(|err| err.to_string())?;
    // A record that maps and stores now needs no dead letter from an earlier failure.
    services
        .store()
        .clear_dead_letters(connector.tenant_id, &connector.name, stored_ids)
        .await
        .map_err(|err| err.to_string())?;
    for outcome in outcomes {
        match outcome {
            SyncOutcome::Created => report.created += 1,
            SyncOutcome::Updated => report.updated += 1,
            SyncOutcome::Unchanged => report.unchanged += 1,
        }
    }
    Ok(())
}

/// What replaying a dead letter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Replayed {
    Created,
    Updated,
    Unchanged,
    /// Below the connector's threshold now: nothing to store, the letter is gone.
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
    let outcome = match map_case(&connector, &raw) {
        Ok(None) => Replayed::Skipped,
        Ok(Some(risk)) => {
            let outcomes = services
                .store()
                .sync_risks(tenant, &change(), vec![risk])
                .await?;
            match outcomes.first() {
                Some(SyncOutcome::Created) => Replayed::Created,
                Some(SyncOutcome::Updated) => Replayed::Updated,
                _ => Replayed::Unchanged,
            }
        }
        Err((_, reason)) => {
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
    services.store().delete_dead_letter(tenant, id).await?;
    Ok(outcome)
}

/// Closes (and marks `deleted`) every synced risk whose case is no longer listed: TheHive's
/// `listCase` has no tombstones, and a merge deletes its source cases.
async fn reconcile(
    services: &Services,
    connector: &Connector,
    hive: &TheHive,
    report: &mut CycleReport,
) -> Result<(), String> {
    let upstream: HashSet<String> = hive
        .all_ids(THEHIVE_PAGE_SIZE)
        .await
        .map_err(|err| err.to_string())?
        .into_iter()
        .collect();
    let source = Source::parse(connector.kind.as_str()).map_err(|err| err.to_string())?;
    let tenant: TenantId = connector.tenant_id;
    let present = services
        .store()
        .present_external_ids(tenant, &source)
        .await
        .map_err(|err| err.to_string())?;
    let gone: Vec<ExternalId> = present
        .into_iter()
        .filter(|id| !upstream.contains(id.as_str()))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    report.deleted_upstream = services
        .store()
        .mark_deleted_upstream(tenant, &change(), &source, gone)
        .await
        .map_err(|err| err.to_string())?;
    Ok(())
}
