//! Task runs end to end on SQLite, history persisted: single-step runs of a task against a
//! local HTTP server (axum, on loopback, through the outbound policy), asked for through the
//! `request_run` use case — what `POST …/runs` calls before it answers 202 — and executed by
//! the runner's pool. Figures come from the runs' own records: `created_at` (accepted) to
//! `finished_at` (the terminal status written).
//!
//!   cargo bench -p vigil-runner --bench runs
//!   RUNS=5000 CLIENTS=8 RATE=100 STEADY_SECONDS=10 cargo bench -p vigil-runner --bench runs
//!
//! Goal (issue 10): at least 500 runs/s; p99 at most 50 ms at a steady 100 runs/s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vigil_automation::{
    AppDefinition, AppName, InstanceName, RunFilter, RunStatus, TaskName, TaskRef,
};
use vigil_domain::{PageRequest, Slug, SourceUrl, TenantName};
use vigil_service::{InstanceRequest, JwtKey, MasterKey, Principal, Services};
use vigil_store::{Change, Store};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn target() -> String {
    let app = axum::Router::new().route(
        "/api/v2/check",
        axum::routing::get(|| async { axum::Json(json!({"data": {"abuseConfidenceScore": 42}})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

struct Bench {
    services: Services,
    principal: Principal,
    task: TaskRef,
    instance: uuid::Uuid,
}

/// The AbuseIPDB-like app and its lookup task.
async fn define(services: &Services, principal: &Principal) -> TaskRef {
    let app = AppName::parse("abuseipdb").unwrap();
    let definition = AppDefinition {
        version: "1.0.0".into(),
        description: None,
        category: None,
        config_schema: json!({"type": "object", "properties": {"api_key": {"type": "string", "writeOnly": true}}}),
        base_url_required: true,
        health_task: None,
    };
    services
        .put_app(principal, app.clone(), definition, None)
        .await
        .unwrap();
    let task = TaskRef::new(app.clone(), TaskName::parse("check-ip").unwrap());
    let definition = serde_json::from_value(json!({
        "input_schema": {"type": "object", "required": ["ip"], "properties": {"ip": {"type": "string"}}},
        "request": {"method": "GET", "path": "/api/v2/check", "query": {"ipAddress": "{{ input.ip }}"},
            "headers": {"Key": "{{ secrets.api_key }}"}},
        "outputs": [{"name": "score", "path": "$.data.abuseConfidenceScore", "kind": "scalar", "type": "integer"}],
        "timeout_ms": 5000}))
    .unwrap();
    services
        .put_task(principal, task.clone(), definition)
        .await
        .unwrap();
    task
}

async fn setup(dir: &std::path::Path) -> Bench {
    let store = vigil_store_sqlite::SqliteStore::open(&dir.join("vigil.db"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let tenant = store
        .create_tenant(
            &Change::by("bench"),
            &Slug::parse("bench").unwrap(),
            &TenantName::parse("Bench").unwrap(),
        )
        .await
        .unwrap();
    let services = Services::new(Arc::clone(&store), JwtKey::generate())
        .with_master_key(MasterKey::generate().unwrap());
    let policy = vigil_outbound::OutboundPolicy::new("127.0.0.0/8").unwrap();
    let runner = vigil_runner::Runner::new(
        services.clone(),
        vigil_runner::RunnerConfig::new(policy, "bench".into()),
    );
    let services = services.with_task_runner(Arc::new(runner.clone()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    tokio::spawn(runner.run(stopped));
    let principal = Principal::cli_in(tenant.id);
    let task = define(&services, &principal).await;
    let mut secrets = serde_json::Map::new();
    secrets.insert("api_key".into(), json!("bench-key"));
    let instance = services
        .create_instance(
            &principal,
            InstanceRequest {
                app: task.app.clone(),
                name: InstanceName::parse("local").unwrap(),
                base_url: Some(SourceUrl::parse(&target().await).unwrap()),
                config: serde_json::Map::new(),
                secrets,
                rate_limit_per_minute: None,
                concurrency_max: Some(vigil_automation::INSTANCE_CONCURRENCY_MAX),
                enabled: Some(true),
            },
        )
        .await
        .unwrap();
    Bench {
        services,
        principal,
        task,
        instance: instance.id,
    }
}

impl Bench {
    async fn submit(&self, n: u64, pace: Option<Duration>) -> Vec<uuid::Uuid> {
        let start = Instant::now();
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            if let Some(pace) = pace {
                let due = start + pace * u32::try_from(i).unwrap();
                tokio::time::sleep_until(due.into()).await;
            }
            let input = json!({"ip": format!("192.0.2.{}", i % 250)});
            let run = self
                .services
                .request_run(&self.principal, &self.task, self.instance, input)
                .await
                .unwrap();
            ids.push(run.id);
        }
        ids
    }

    /// Waits until nothing is queued or running, then reads the runs.
    async fn report(&self, name: &str, ids: &[uuid::Uuid]) {
        for status in [RunStatus::Queued, RunStatus::Running] {
            loop {
                let filter = RunFilter {
                    status: Some(status),
                    ..RunFilter::default()
                };
                let page = self
                    .services
                    .list_runs(&self.principal, filter, PageRequest::first(1))
                    .await
                    .unwrap();
                if page.items.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let mut latencies = Vec::with_capacity(ids.len());
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for id in ids {
            let run = self.services.get_run(&self.principal, *id).await.unwrap();
            assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
            let finished = run.finished_at.unwrap().unix_micros();
            first = first.min(run.created_at.unix_micros());
            last = last.max(finished);
            latencies.push(finished - run.created_at.unix_micros());
        }
        latencies.sort_unstable();
        let pick = |q: f64| {
            latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)] as f64
                / 1000.0
        };
        let rate = ids.len() as f64 / ((last - first) as f64 / 1e6);
        println!(
            "{name}: {} runs, {rate:.0} runs/s (first accepted → last finished), accepted → finished p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ids.len(),
            pick(0.5),
            pick(0.99),
            pick(1.0)
        );
    }
}

fn main() {
    let runs = setting("RUNS", 5_000);
    let clients = setting("CLIENTS", 8);
    let rate = setting("RATE", 100);
    let seconds = setting("STEADY_SECONDS", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let bench = Arc::new(setup(dir.path()).await);
        let warm = bench.submit(200, None).await;
        bench.report("warm-up", &warm).await;

        let mut clients_done = Vec::new();
        for _ in 0..clients {
            let bench = Arc::clone(&bench);
            clients_done.push(tokio::spawn(async move {
                bench.submit(runs / clients, None).await
            }));
        }
        let mut ids = Vec::new();
        for client in clients_done {
            ids.extend(client.await.unwrap());
        }
        bench
            .report(&format!("throughput, {clients} clients"), &ids)
            .await;

        let pace = Duration::from_secs(1) / u32::try_from(rate).unwrap();
        let ids = bench.submit(rate * seconds, Some(pace)).await;
        bench
            .report(&format!("steady {rate} runs/s for {seconds} s"), &ids)
            .await;
        println!("goal: >= 500 runs/s; p99 <= 50 ms at 100 runs/s");
    });
}
