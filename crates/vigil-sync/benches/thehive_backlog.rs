//! A TheHive backlog (100,000 cases by default, `CASES=n`) served by a local paged Query API
//! server in this process, synced into a fresh SQLite store: the time to a full sync, the
//! process's peak memory, and the cost of a no-op incremental cycle.
//!
//!   cargo bench -p vigil-sync --bench thehive_backlog
//!
//! The server keeps the cases sorted by `_updatedAt` and by `_createdAt` and answers a page
//! with a binary search and a slice, so the figures are Vigil's, not the fake's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use vigil_domain::{
    ConnectorKind, ConnectorName, ConnectorOptions, Severity, Slug, SourceUrl, SyncInterval,
    TenantName,
};
use vigil_service::{ConnectorRequest, Credentials, JwtKey, MasterKey, Principal, Services};
use vigil_store::{Change, Store};
use vigil_sync::{Outbound, Reconcile, SyncConfig, run_cycle};

struct Backlog {
    by_updated: Vec<(i64, Value)>,
    by_created: Vec<(i64, Value)>,
}

async fn query(State(backlog): State<Arc<Backlog>>, Json(body): Json<Value>) -> Json<Value> {
    let steps = body["query"].as_array().expect("a query");
    let find = |name: &str| steps.iter().find(|s| s["_name"] == name);
    let field = find("sort")
        .and_then(|s| s["_fields"][0].as_object())
        .and_then(|f| f.keys().next().cloned())
        .unwrap_or_else(|| "_createdAt".into());
    let sorted = if field == "_updatedAt" {
        &backlog.by_updated
    } else {
        &backlog.by_created
    };
    let since = find("filter").map_or(i64::MIN, |f| f["_gte"]["_value"].as_i64().unwrap_or(0));
    let start = sorted.partition_point(|(key, _)| *key < since);
    let page = find("page").expect("a page");
    let from = usize::try_from(page["from"].as_u64().unwrap_or(0)).unwrap_or(0);
    let to = usize::try_from(page["to"].as_u64().unwrap_or(0)).unwrap_or(0);
    let items: Vec<Value> = sorted
        .iter()
        .skip(start + from)
        .take(to.saturating_sub(from))
        .map(|(_, case)| case.clone())
        .collect();
    Json(Value::Array(items))
}

fn backlog(n: usize) -> Backlog {
    let cases: Vec<Value> = (0..n)
        .map(|i| {
            let created = 1_700_000_000_000_i64 + i as i64 * 10;
            let stage = ["New", "InProgress", "Closed"][i % 3];
            let mut case = json!({
                "_id": format!("~{i}"), "_type": "Case", "number": i,
                "title": format!("Suspicious activity on host-{}", i % 5000),
                "description": "Detected by the EDR; see the attached observables.",
                "severity": 3 + (i % 2) as i64, "stage": stage,
                "tlp": 2, "_createdAt": created,
            });
            if i % 4 != 0 {
                case["_updatedAt"] = json!(created + 5_000_000);
            }
            case
        })
        .collect();
    let mut by_updated: Vec<(i64, Value)> = cases
        .iter()
        .filter_map(|c| Some((c["_updatedAt"].as_i64()?, c.clone())))
        .collect();
    by_updated.sort_by_key(|(key, _)| *key);
    let mut by_created: Vec<(i64, Value)> = cases
        .into_iter()
        .map(|c| (c["_createdAt"].as_i64().unwrap_or(0), c))
        .collect();
    by_created.sort_by_key(|(key, _)| *key);
    Backlog {
        by_updated,
        by_created,
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn services(dir: &std::path::Path, url: &str) -> (Services, vigil_domain::Connector) {
    let store = vigil_store_sqlite::SqliteStore::open(&dir.join("vigil.db"))
        .await
        .expect("open the store");
    let store: Arc<dyn Store> = Arc::new(store);
    let tenant = store
        .create_tenant(
            &Change::by("bench"),
            &Slug::parse("bench").expect("slug"),
            &TenantName::parse("Bench").expect("name"),
        )
        .await
        .expect("tenant");
    let services = Services::new(store, JwtKey::generate())
        .with_master_key(MasterKey::generate().expect("key"));
    let request = ConnectorRequest {
        name: ConnectorName::parse("hive").expect("name"),
        kind: ConnectorKind::TheHive,
        url: SourceUrl::parse(url).expect("url"),
        enabled: true,
        interval: Some(SyncInterval::parse(60).expect("interval")),
        threshold: Some(Severity::Low),
        options: ConnectorOptions::parse([("organisation".to_owned(), "bench".to_owned())])
            .expect("options"),
        credentials: Some(Credentials::new(
            [("api_key".to_owned(), "bench-key".to_owned())].into(),
        )),
    };
    let (connector, _) = services
        .put_connector(&Principal::cli_in(tenant.id), request)
        .await
        .expect("connector");
    (services, connector)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    let backlog = Arc::new(backlog(n));
    println!(
        "backlog: {n} cases generated in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let app = axum::Router::new()
        .route("/api/v1/query", axum::routing::post(query))
        .with_state(backlog);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let dir = tempfile::tempdir().expect("temporary directory");
    let (services, connector) = services(dir.path(), &format!("http://{address}")).await;
    let rss_before = peak_rss_mib();

    // The fake listens on loopback, which the default policy refuses.
    let policy = vigil_outbound::OutboundPolicy::new("127.0.0.0/8").expect("policy");
    let config = SyncConfig::new(Outbound::new(
        policy,
        vigil_outbound::OutboundLimits::default(),
    ));
    let retry = &config;
    let started = Instant::now();
    let full = run_cycle(&services, &connector, retry, Reconcile::Yes).await;
    let full_time = started.elapsed();
    assert!(!full.failed(), "{full:?}");
    println!(
        "full sync: {:.2} s ({} created, {} unchanged re-reads, {} skipped); peak RSS {:.0} MiB (was {:.0} MiB with the fake's backlog loaded)",
        full_time.as_secs_f64(),
        full.created,
        full.unchanged,
        full.skipped,
        peak_rss_mib(),
        rss_before
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let noop = run_cycle(&services, &connector, retry, Reconcile::No).await;
        times.push(started.elapsed());
        assert_eq!((noop.created, noop.updated), (0, 0), "{noop:?}");
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!(
        "no-op incremental cycle: median {:.1} ms (min {:.1}, max {:.1}) over {} runs",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    let started = Instant::now();
    let reconcile = run_cycle(&services, &connector, retry, Reconcile::Yes).await;
    println!(
        "cycle with deletion reconciliation (all {n} ids listed): {:.2} s, {} closed",
        started.elapsed().as_secs_f64(),
        reconcile.deleted_upstream
    );
}
