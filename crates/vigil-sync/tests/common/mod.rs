//! What every connector test needs: a tenant on a fresh SQLite store, one connector, quick
//! retries, and listings of what a cycle stored.
#![allow(dead_code)] // each test binary uses its own subset

pub(crate) mod edge;

use std::sync::Arc;
use std::time::Duration;

use vigil_domain::{
    Connector, ConnectorKind, ConnectorName, ConnectorOptions, Indicator, IndicatorFilter,
    PageRequest, Risk, RiskFilter, Severity, Slug, Source, SourceUrl, SyncInterval, TenantName,
};
use vigil_service::CycleReport;
use vigil_service::{ConnectorRequest, Credentials, JwtKey, MasterKey, Principal, Services};
use vigil_store::{Change, Store};
use vigil_sync::{Outbound, Reconcile, RetryPolicy, SyncConfig, run_cycle};

pub(crate) struct Setup {
    pub(crate) services: Services,
    /// The store under the services, for what a test reads or changes behind their back.
    pub(crate) store: Arc<dyn Store>,
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) connector: Connector,
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A tenant `acme` with one connector named after its kind.
pub(crate) async fn setup(
    kind: ConnectorKind,
    url: &str,
    threshold: Severity,
    options: &[(&str, &str)],
    credentials: &[(&str, &str)],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = vigil_store_sqlite::SqliteStore::open(&dir.path().join("vigil.db"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let tenant = store
        .create_tenant(
            &Change::by("test"),
            &Slug::parse("acme").unwrap(),
            &TenantName::parse("Acme").unwrap(),
        )
        .await
        .unwrap();
    let services = Services::new(Arc::clone(&store), JwtKey::generate())
        .with_master_key(MasterKey::generate().unwrap());
    let request = ConnectorRequest {
        name: ConnectorName::parse(kind.as_str()).unwrap(),
        kind,
        url: SourceUrl::parse(url).unwrap(),
        enabled: true,
        interval: Some(SyncInterval::parse(60).unwrap()),
        threshold: Some(threshold),
        options: ConnectorOptions::parse(pairs(options)).unwrap(),
        credentials: Some(Credentials::new(pairs(credentials).into_iter().collect())),
    };
    let (connector, _) = services
        .put_connector(&Principal::cli_in(tenant.id), request)
        .await
        .unwrap();
    Setup {
        services,
        store,
        _dir: dir,
        connector,
    }
}

pub(crate) fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 3,
        initial: Duration::from_millis(5),
        cap: Duration::from_millis(50),
    }
}

/// The outbound policy tests run under: the default, plus loopback, where the fake sources
/// listen (as an operator would set `VIGIL_OUTBOUND_ALLOW=127.0.0.0/8`).
pub(crate) fn loopback_allowed() -> Outbound {
    let policy = vigil_outbound::OutboundPolicy::new("127.0.0.0/8").unwrap();
    Outbound::new(policy, vigil_outbound::OutboundLimits::default())
}

/// Quick retries over `loopback_allowed`.
pub(crate) fn config() -> SyncConfig {
    SyncConfig {
        retry: fast_retries(),
        ..SyncConfig::new(loopback_allowed())
    }
}

/// The setup's services reaching a sync engine (for run-now and replay), as the binary
/// wires them.
pub(crate) fn wired(setup: &Setup) -> Services {
    let engine = vigil_sync::Engine::new(setup.services.clone(), config(), Arc::default());
    setup.services.clone().with_sync_engine(Arc::new(engine))
}

/// One full cycle, deletion reconciliation included.
pub(crate) async fn cycle(setup: &Setup) -> CycleReport {
    cycle_with(setup, &config()).await
}

/// One full cycle under `config`.
pub(crate) async fn cycle_with(setup: &Setup, config: &SyncConfig) -> CycleReport {
    run_cycle(&setup.services, &setup.connector, config, Reconcile::Yes).await
}

/// Serves `app` on a free local port; answers its base URL.
pub(crate) async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// A bare failure answer, with `Retry-After` seconds when given.
pub(crate) fn failure(status: u16, retry_after: Option<u64>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        "try again later",
    )
        .into_response();
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", after.to_string().parse().unwrap());
    }
    response
}

/// Every item of a paged listing.
async fn all_pages<T>(mut list: impl AsyncFnMut(PageRequest) -> vigil_store::Page<T>) -> Vec<T> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let listed = list(page).await;
        all.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page = PageRequest::new(Some(500), Some(cursor)),
            None => return all,
        }
    }
}

/// Every risk of `source`.
pub(crate) async fn risks_of(setup: &Setup, source: &str) -> Vec<Risk> {
    let filter = RiskFilter {
        source: Some(Source::parse(source).unwrap()),
        ..RiskFilter::default()
    };
    let store = &setup.store;
    let tenant = setup.connector.tenant_id;
    all_pages(async |page| store.list_risks(tenant, &filter, page).await.unwrap()).await
}

/// The connector's stored cursor, as the engine left it.
pub(crate) async fn cursor_of(setup: &Setup) -> Option<String> {
    setup
        .store
        .sync_cursor(setup.connector.tenant_id, &setup.connector.name)
        .await
        .unwrap()
}

/// Every indicator of the catalogue.
pub(crate) async fn indicators(setup: &Setup) -> Vec<Indicator> {
    let store = &setup.store;
    let tenant = setup.connector.tenant_id;
    let filter = IndicatorFilter::default();
    all_pages(async |page| store.list_indicators(tenant, &filter, page).await.unwrap()).await
}

/// The risk synced from `external_id`.
pub(crate) fn by_external<'a>(risks: &'a [Risk], external_id: &str) -> &'a Risk {
    risks
        .iter()
        .find(|r| r.external_id.as_ref().map(|id| id.as_str()) == Some(external_id))
        .unwrap_or_else(|| panic!("no risk from {external_id}"))
}

/// The external ids of the connector's dead letters.
pub(crate) async fn dead_letter_ids(setup: &Setup) -> Vec<String> {
    setup
        .store
        .list_dead_letters(setup.connector.tenant_id, PageRequest::first(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|letter| letter.external_id)
        .collect()
}
