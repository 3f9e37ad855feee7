//! What every runner test needs: a fresh store (SQLite, or PostgreSQL on
//! `VIGIL_TEST_PG_URL`), the services wired to a running task runner as the binary wires
//! them, the real router on top, a tenant with a key, and httpbin — the `httpbin` PyPI
//! package that `scripts/test` installs into `target/test-venv` and names in
//! `VIGIL_TEST_HTTPBIN` (its Python) — started on a free port per test.
#![allow(dead_code)] // each test binary uses its own subset

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_api::{AppState, HttpLimits};
use vigil_domain::Role;
use vigil_service::{JwtKey, KeyOwner, MasterKey, NewApiKeyRequest, Principal, Services};
use vigil_store::Store;

/// Runs an async test body once per backend: `both!(name, body)` makes `name::sqlite` and
/// `name::postgres`.
#[allow(unused_macros)] // the logs binary runs on SQLite only
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let h = $crate::common::Harness::sqlite().await;
                ($body)(h).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(h) = $crate::common::Harness::postgres().await else {
                    return;
                };
                ($body)(h).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both;

pub(crate) struct Harness {
    pub(crate) state: AppState,
    pub(crate) store: Arc<dyn Store>,
    /// A tenant admin's key in tenant `acme`.
    pub(crate) key: String,
    pub(crate) tenant: vigil_domain::TenantId,
    pub(crate) stop: tokio::sync::watch::Sender<bool>,
    /// The runner's pool, until `stop` is sent.
    pub(crate) runner: tokio::task::JoinHandle<()>,
    /// The runner itself (its port), for what a test hands it directly.
    pub(crate) handle: vigil_runner::Runner,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    /// The body as sent, for checks that a text appears nowhere in it.
    pub(crate) text: String,
}

/// The outbound policy tests run under: the default, plus loopback, where httpbin and the
/// local servers listen (as an operator would set `VIGIL_OUTBOUND_ALLOW=127.0.0.0/8`).
pub(crate) fn loopback_allowed() -> vigil_outbound::OutboundPolicy {
    vigil_outbound::OutboundPolicy::new("127.0.0.0/8").unwrap()
}

impl Harness {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = vigil_store_sqlite::SqliteStore::open(&dir.path().join("vigil.db"))
            .await
            .unwrap();
        Self::with_store(
            Arc::new(store),
            Some(dir),
            vigil_runner::RUN_WORKERS_DEFAULT,
        )
        .await
    }

    /// `sqlite` with a pool of `workers` runs at once.
    pub(crate) async fn sqlite_with_workers(workers: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = vigil_store_sqlite::SqliteStore::open(&dir.path().join("vigil.db"))
            .await
            .unwrap();
        Self::with_store(Arc::new(store), Some(dir), workers).await
    }

    /// A fresh schema on `VIGIL_TEST_PG_URL`, or `None` (and a note) when it is not set; CI
    /// must set it.
    pub(crate) async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("VIGIL_TEST_PG_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must set VIGIL_TEST_PG_URL"
            );
            eprintln!("skipped: VIGIL_TEST_PG_URL not set");
            return None;
        };
        let schema = format!("vigil_runner_{}", uuid::Uuid::now_v7().simple());
        let base = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&base)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let options = base.options([("search_path", schema.as_str())]);
        let store = vigil_store_postgres::PostgresStore::connect_with(options)
            .await
            .unwrap();
        Some(Self::with_store(Arc::new(store), None, vigil_runner::RUN_WORKERS_DEFAULT).await)
    }

    pub(crate) async fn with_store(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        workers: usize,
    ) -> Self {
        let services = Services::new(Arc::clone(&store), JwtKey::generate())
            .with_master_key(MasterKey::generate().unwrap());
        let mut config = vigil_runner::RunnerConfig::new(loopback_allowed(), "node-test".into());
        config.workers = workers;
        let runner = vigil_runner::Runner::new(services.clone(), config);
        let wired = services.with_task_runner(Arc::new(runner.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let handle = runner.clone();
        let runner = tokio::spawn(runner.run(stopped));
        let admin = wired
            .create_api_key(
                &Principal::system(),
                KeyOwner::Own,
                NewApiKeyRequest {
                    name: "root".into(),
                    role: Role::PlatformAdmin,
                    expires_at: None,
                },
            )
            .await
            .unwrap();
        let mut harness = Self {
            state: AppState::new(wired, HttpLimits::default()),
            store,
            key: String::new(),
            tenant: vigil_domain::TenantId::PLATFORM_CHAIN,
            stop,
            runner,
            handle,
            _dir: dir,
        };
        let admin = admin.secret.expose().to_owned();
        let tenant = harness
            .call(
                Method::POST,
                "/api/v1/tenants",
                &admin,
                Some(json!({"slug": "acme"})),
            )
            .await;
        assert_eq!(tenant.status, StatusCode::CREATED, "{}", tenant.text);
        let id = tenant.body["id"].as_str().unwrap();
        harness.tenant = vigil_domain::TenantId::from_uuid(uuid::Uuid::try_parse(id).unwrap());
        let key = harness
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{id}/api-keys"),
                &admin,
                Some(json!({"name": "admin", "role": "tenant-admin"})),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
        harness.key = key.body["key"].as_str().unwrap().to_owned();
        harness
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"));
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = vigil_api::app(self.state.clone())
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, &self.key, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, &self.key, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, &self.key, Some(body)).await
    }

    /// Saves `app` with the config schema given, asserting success.
    pub(crate) async fn app(&self, name: &str, config_schema: Value) {
        let saved = self
            .put(
                &format!("/api/v1/apps/{name}"),
                json!({"version": "1.0.0", "config_schema": config_schema}),
            )
            .await;
        assert!(saved.status.is_success(), "{}", saved.text);
    }

    /// Saves `app/task`, asserting success.
    pub(crate) async fn task(&self, app: &str, task: &str, definition: Value) {
        let saved = self
            .put(&format!("/api/v1/apps/{app}/tasks/{task}"), definition)
            .await;
        assert!(saved.status.is_success(), "{}", saved.text);
    }

    /// Creates an instance; answers its id.
    pub(crate) async fn instance(&self, body: Value) -> String {
        let made = self.post("/api/v1/instances", body).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
        made.body["id"].as_str().unwrap().to_owned()
    }

    /// Starts a run; answers its id.
    pub(crate) async fn run(&self, app: &str, task: &str, instance: &str, input: Value) -> String {
        let started = self
            .post(
                &format!("/api/v1/apps/{app}/tasks/{task}/runs"),
                json!({"instance": instance, "input": input}),
            )
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
        assert_eq!(started.body["status"], "queued");
        started.body["id"].as_str().unwrap().to_owned()
    }

    /// Reads the run until it is over (at most `within`); answers it.
    pub(crate) async fn finished(&self, run: &str, within: Duration) -> Answer {
        let until = tokio::time::Instant::now() + within;
        loop {
            let read = self.get(&format!("/api/v1/runs/{run}")).await;
            assert_eq!(read.status, StatusCode::OK, "{}", read.text);
            let status = read.body["status"].as_str().unwrap_or_default();
            if !matches!(status, "queued" | "running") {
                return read;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the run is still {status}: {}",
                read.text
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A server that accepts connections and never answers.
pub(crate) async fn hanging() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

/// httpbin on a free local port, stopped when dropped.
pub(crate) struct Httpbin {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts httpbin, or answers `None` (and a note) when `VIGIL_TEST_HTTPBIN` is not set; CI
/// must set it (`scripts/test` does).
pub(crate) async fn httpbin() -> Option<Httpbin> {
    let Ok(python) = std::env::var("VIGIL_TEST_HTTPBIN") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "VIGIL_TEST_HTTPBIN is not set; scripts/test installs httpbin"
        );
        eprintln!("skipped: VIGIL_TEST_HTTPBIN not set");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(python)
        .args(["-m", "httpbin.core", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start httpbin");
    let url = format!("http://127.0.0.1:{port}");
    let server = Httpbin { child, url };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("httpbin did not start on port {port}");
}
