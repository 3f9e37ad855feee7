//! The background engine: one task per (tenant, connector), each with its own schedule and
//! circuit breaker, so one slow or broken source never delays another. A task runs a cycle
//! at once, then every interval; it re-reads its configuration before each cycle and ends
//! when the connector is deleted or disabled. Stopping abandons a cycle in flight: the
//! cursor only ever covers committed pages, so nothing is skipped when it runs again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use vigil_domain::{ConnectorKind, ConnectorName, PAGE_SIZE_MAX, PageRequest, TenantId, Timestamp};
use vigil_service::{
    BreakerState, ConnectorHealth, CycleReport, Principal, ServiceError, Services,
};

use crate::{Reconcile, SyncConfig, run_cycle};

/// How often the engine looks for connectors added or enabled since.
pub const ENGINE_RESCAN_INTERVAL: Duration = Duration::from_secs(30);
/// Failed cycles in a row that open a connector's breaker.
pub const BREAKER_FAILURES_MAX: u32 = 5;
/// How long an open breaker skips cycles before one probe cycle (half-open).
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(300);
/// Every how many cycles a connector also reconciles deletions (a full id listing); the
/// first cycle always does.
pub const RECONCILE_EVERY_CYCLES: u64 = 12;

/// Counts a finished cycle into its connector's health; opens the breaker after
/// `BREAKER_FAILURES_MAX` failures in a row, or when a half-open probe fails.
fn record(status: &mut ConnectorHealth, report: &CycleReport, elapsed: Duration) {
    let now = Timestamp::now();
    status.cycles_total += 1;
    status.items_created += report.created;
    status.items_updated += report.updated;
    status.items_skipped += report.skipped;
    status.items_dead_lettered += report.dead_lettered;
    status.last_cycle_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    if report.failed() {
        status.cycles_failed += 1;
        status.failures_in_row += 1;
        status.last_error = report.errors.first().cloned();
        status.last_error_at = Some(now);
        if status.failures_in_row >= BREAKER_FAILURES_MAX
            || status.breaker == BreakerState::HalfOpen
        {
            status.breaker = BreakerState::Open;
        }
    } else {
        status.cycles_succeeded += 1;
        status.failures_in_row = 0;
        status.last_success_at = Some(now);
        status.breaker = BreakerState::Closed;
    }
}

/// Every connector's status, by tenant.
#[derive(Debug, Default)]
pub struct SyncStatus {
    sources: Mutex<HashMap<(TenantId, ConnectorName), ConnectorHealth>>,
}

impl SyncStatus {
    /// The tenant's connectors, by name.
    pub fn of_tenant(&self, tenant: TenantId) -> Vec<ConnectorHealth> {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<ConnectorHealth> = sources
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|(_, status)| status.clone())
            .collect();
        out.sort_by(|a, b| a.connector.cmp(&b.connector));
        out
    }

    /// How many connectors are behind.
    pub fn stale_count(&self, now: Timestamp) -> usize {
        self.all().iter().filter(|(_, s)| s.is_stale(now)).count()
    }

    /// Every connector the engine runs, with its tenant.
    pub fn all(&self) -> Vec<(TenantId, ConnectorHealth)> {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(TenantId, ConnectorHealth)> = sources
            .iter()
            .map(|((tenant, _), status)| (*tenant, status.clone()))
            .collect();
        out.sort_by(|a, b| (a.0, &a.1.connector).cmp(&(b.0, &b.1.connector)));
        out
    }

    /// The engine's counters in OpenMetrics text (without `# EOF`), labelled by tenant and
    /// connector: a `prometheus-client` registry filled from the statuses at each scrape.
    #[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
    pub fn openmetrics(&self) -> String {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::gauge::Gauge;
        let mut registry = prometheus_client::registry::Registry::with_prefix("vigil_sync");
        let cycles = Family::<OutcomeLabels, Counter>::default();
        let items = Family::<OutcomeLabels, Counter>::default();
        let breaker = Family::<SourceLabels, Gauge>::default();
        let last_cycle =
            Family::<SourceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("cycles", "Sync cycles by outcome", cycles.clone());
        registry.register(
            "items",
            "Upstream records by what the sync did with them",
            items.clone(),
        );
        registry.register(
            "breaker_open",
            "1 when the breaker is open or half-open",
            breaker.clone(),
        );
        registry.register(
            "last_cycle_seconds",
            "Duration of the last cycle",
            last_cycle.clone(),
        );
        for (tenant, s) in self.all() {
            let source = SourceLabels {
                tenant: tenant.to_string(),
                connector: s.connector.to_string(),
            };
            let outcome = |outcome: &'static str| OutcomeLabels {
                outcome,
                tenant: source.tenant.clone(),
                connector: source.connector.clone(),
            };
            cycles
                .get_or_create(&outcome("succeeded"))
                .inc_by(s.cycles_succeeded);
            cycles
                .get_or_create(&outcome("failed"))
                .inc_by(s.cycles_failed);
            for (name, n) in [
                ("created", s.items_created),
                ("updated", s.items_updated),
                ("skipped", s.items_skipped),
                ("dead_lettered", s.items_dead_lettered),
            ] {
                items.get_or_create(&outcome(name)).inc_by(n);
            }
            breaker
                .get_or_create(&source)
                .set(i64::from(s.breaker != BreakerState::Closed));
            last_cycle
                .get_or_create(&source)
                .set(s.last_cycle_ms.unwrap_or(0) as f64 / 1000.0);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            return String::new();
        }
        // The API's exposition ends with its own `# EOF`.
        let body = out.trim_end().trim_end_matches("# EOF").trim_end();
        if body.is_empty() {
            String::new()
        } else {
            format!("{body}\n")
        }
    }

    fn update(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
        kind: ConnectorKind,
        f: impl FnOnce(&mut ConnectorHealth),
    ) {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = sources
            .entry((tenant, name.clone()))
            .or_insert_with(|| ConnectorHealth::new(name.clone(), kind));
        f(status);
    }

    fn breaker(&self, tenant: TenantId, name: &ConnectorName) -> BreakerState {
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sources
            .get(&(tenant, name.clone()))
            .map_or(BreakerState::Closed, |s| s.breaker)
    }

    fn remove(&self, tenant: TenantId, name: &ConnectorName) {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sources.remove(&(tenant, name.clone()));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    tenant: String,
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct SourceLabels {
    tenant: String,
    connector: String,
}

/// Runs every enabled connector on its schedule until `stop` turns true.
pub async fn run_engine(
    services: Services,
    status: Arc<SyncStatus>,
    config: SyncConfig,
    mut stop: watch::Receiver<bool>,
) {
    let running: Arc<Mutex<HashSet<(TenantId, ConnectorName)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        match enabled_connectors(&services).await {
            Ok(connectors) => {
                for (tenant, name) in connectors {
                    let key = (tenant, name.clone());
                    let mut guard = running
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let is_new = guard.insert(key);
                    drop(guard);
                    if !is_new {
                        continue;
                    }
                    let task = ConnectorTask {
                        services: services.clone(),
                        status: Arc::clone(&status),
                        running: Arc::clone(&running),
                        config: config.clone(),
                        tenant,
                        name,
                    };
                    tasks.spawn(task.run(stop.clone()));
                }
            }
            Err(err) => {
                tracing::error!(component = "sync", error = %err, "listing connectors failed")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(ENGINE_RESCAN_INTERVAL) => {}
            _ = stop.changed() => break,
        }
    }
    tasks.shutdown().await;
}

async fn enabled_connectors(
    services: &Services,
) -> Result<Vec<(TenantId, ConnectorName)>, ServiceError> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PAGE_SIZE_MAX);
    loop {
        let tenants = services.list_tenants(&Principal::system(), page).await?;
        for tenant in &tenants.items {
            let connectors = services
                .list_connectors(&Principal::system_in(tenant.id))
                .await?;
            out.extend(
                connectors
                    .into_iter()
                    .filter(|c| c.enabled)
                    .map(|c| (tenant.id, c.name)),
            );
        }
        let Some(cursor) = tenants.next_cursor else {
            return Ok(out);
        };
        page = PageRequest::new(Some(PAGE_SIZE_MAX), Some(cursor));
    }
}

struct ConnectorTask {
    services: Services,
    status: Arc<SyncStatus>,
    running: Arc<Mutex<HashSet<(TenantId, ConnectorName)>>>,
    config: SyncConfig,
    tenant: TenantId,
    name: ConnectorName,
}

impl ConnectorTask {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut n_cycles: u64 = 0;
        loop {
            let principal = Principal::system_in(self.tenant);
            let connector = match self.services.get_connector(&principal, &self.name).await {
                Ok(c) if c.enabled => c,
                _ => break, // deleted or disabled: the task ends; a rescan restarts it
            };
            let kind = connector.kind;
            let breaker = self.status.breaker(self.tenant, &self.name);
            let mut wait = Duration::from_secs(u64::from(connector.interval.seconds()));
            if breaker == BreakerState::Open {
                self.status.update(self.tenant, &self.name, kind, |s| {
                    s.breaker = BreakerState::HalfOpen;
                });
                wait = BREAKER_COOLDOWN;
                tracing::warn!(component = "sync", connector = %self.name, "breaker open; next cycle is a probe");
            } else {
                let started = std::time::Instant::now();
                let reconcile = if n_cycles % RECONCILE_EVERY_CYCLES == 0 {
                    Reconcile::Yes
                } else {
                    Reconcile::No
                };
                n_cycles += 1;
                let report = tokio::select! {
                    report = run_cycle(&self.services, &connector, &self.config, reconcile) => report,
                    _ = stop.changed() => break,
                };
                self.status.update(self.tenant, &self.name, kind, |s| {
                    s.interval_s = connector.interval.seconds();
                    record(s, &report, started.elapsed());
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(self.tenant, self.name.clone()));
        if !*stop.borrow() {
            self.status.remove(self.tenant, &self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hive() -> ConnectorName {
        ConnectorName::parse("hive").unwrap()
    }

    fn report(failed: bool) -> CycleReport {
        let connector = vigil_domain::Connector {
            tenant_id: TenantId::generate(),
            name: hive(),
            kind: ConnectorKind::TheHive,
            url: vigil_domain::SourceUrl::parse("https://hive.example").unwrap(),
            enabled: true,
            interval: vigil_domain::SyncInterval::parse(60).unwrap(),
            threshold: vigil_domain::Severity::High,
            options: vigil_domain::ConnectorOptions::default(),
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        };
        let mut report = CycleReport::new(&connector);
        report.created = 2;
        if failed {
            report.errors.push("thehive answered 500".into());
        }
        report
    }

    #[test]
    fn the_breaker_opens_after_failures_and_a_probe_decides() {
        let mut status = ConnectorHealth::new(hive(), ConnectorKind::TheHive);
        for _ in 0..BREAKER_FAILURES_MAX - 1 {
            record(&mut status, &report(true), Duration::from_millis(3));
        }
        assert_eq!(status.breaker, BreakerState::Closed);
        record(&mut status, &report(true), Duration::from_millis(3));
        assert_eq!(status.breaker, BreakerState::Open);
        status.breaker = BreakerState::HalfOpen;
        record(&mut status, &report(true), Duration::from_millis(3));
        assert_eq!(
            status.breaker,
            BreakerState::Open,
            "a failed probe opens it again"
        );
        status.breaker = BreakerState::HalfOpen;
        record(&mut status, &report(false), Duration::from_millis(3));
        assert_eq!(status.breaker, BreakerState::Closed);
        assert_eq!(
            (
                status.cycles_total,
                status.cycles_failed,
                status.cycles_succeeded
            ),
            (7, 6, 1)
        );
        assert_eq!(status.items_created, 14);
        assert!(status.last_success_at.is_some() && status.last_error.is_some());
        status.interval_s = 60;
        assert!(!status.is_stale(Timestamp::now()));
        assert!(
            status.is_stale(Timestamp::now().plus_seconds(181)),
            "3 intervals behind"
        );
        let never = ConnectorHealth::new(hive(), ConnectorKind::TheHive);
        assert!(
            !never.is_stale(Timestamp::now()),
            "not run yet is not stale"
        );
    }
}
