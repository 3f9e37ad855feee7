//! The harness: a fresh store per test, the router on top, and one `call` helper.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use vigil_api::{AppState, HttpLimits};
use vigil_domain::Role;
use vigil_service::{JwtKey, KeyOwner, NewApiKeyRequest, Principal, Services};
use vigil_store::Store;

/// Runs an async test body once per backend: `both!(name, body)` makes `name::sqlite` and
/// `name::postgres`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let app = $crate::support::TestApp::new($crate::support::Backend::Sqlite).await;
                ($body)(app).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some((app, cleanup)) = $crate::support::TestApp::postgres().await else {
                    return;
                };
                ($body)(app).await;
                cleanup.run().await;
            }
        }
    };
}
pub(crate) use both;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
}

pub(crate) enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(Box<sqlx::postgres::PgConnectOptions>),
}

pub(crate) struct TestApp {
    pub(crate) state: AppState,
    /// The store under the services, for what a test sets up or changes behind their back
    /// (as another node or the CLI would).
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin_key: String,
    pub(crate) raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

/// Drops a test's PostgreSQL schema after the test, so CI's database does not fill up. The
/// pool is closed first: an idle connection could otherwise hold a lock the drop waits on.
pub(crate) struct Cleanup {
    store: vigil_store_postgres::PostgresStore,
    base: sqlx::postgres::PgConnectOptions,
    schema: String,
}

impl Cleanup {
    pub(crate) async fn run(self) {
        self.store.close().await;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&self.base)
            .await
            .unwrap();
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl TestApp {
    pub(crate) async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite_with_limits(HttpLimits::default()).await,
        }
    }

    /// A fresh schema on `VIGIL_TEST_PG_URL`, or `None` (and a note) when it is not set. In
    /// CI the variable must be set, so there a missing one fails the test.
    pub(crate) async fn postgres() -> Option<(Self, Cleanup)> {
        let Ok(url) = std::env::var("VIGIL_TEST_PG_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must set VIGIL_TEST_PG_URL"
            );
            eprintln!("skipped: VIGIL_TEST_PG_URL not set");
            return None;
        };
        let schema = format!("vigil_api_{}", uuid::Uuid::now_v7().simple());
        let base = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(&base)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let options = base.clone().options([("search_path", schema.as_str())]);
        let store = vigil_store_postgres::PostgresStore::connect_with(options.clone())
            .await
            .unwrap();
        let cleanup = Cleanup {
            store: store.clone(),
            base,
            schema,
        };
        let raw = Raw::Postgres(Box::new(options));
        let app = Self::with_store(Arc::new(store), raw, None, HttpLimits::default()).await;
        Some((app, cleanup))
    }

    pub(crate) async fn with_store(
        store: Arc<dyn Store>,
        raw: Raw,
        dir: Option<tempfile::TempDir>,
        limits: HttpLimits,
    ) -> Self {
        let services = Services::new(Arc::clone(&store), JwtKey::generate())
            .with_master_key(vigil_service::MasterKey::generate().unwrap());
        let request = NewApiKeyRequest {
            name: "root".into(),
            role: Role::PlatformAdmin,
            expires_at: None,
        };
        let created = services
            .create_api_key(&Principal::system(), KeyOwner::Own, request)
            .await
            .unwrap();
        let admin_key = created.secret.expose().to_owned();
        Self {
            state: AppState::new(services, limits),
            store,
            admin_key,
            raw,
            _dir: dir,
        }
    }

    pub(crate) async fn sqlite_with_limits(limits: HttpLimits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = vigil_store_sqlite::SqliteStore::open(&path).await.unwrap();
        Self::with_store(Arc::new(store), Raw::Sqlite(path), Some(dir), limits).await
    }

    pub(crate) async fn request(&self, request: Request<Body>) -> Response {
        let response = vigil_api::app(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// One JSON call with an optional bearer credential.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(bearer) = bearer {
            builder = builder.header("authorization", format!("Bearer {bearer}"));
        }
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.request(builder.body(body).unwrap()).await
    }

    /// A POST with a raw body of the given media type.
    pub(crate) async fn send(
        &self,
        path: &str,
        bearer: &str,
        content_type: &str,
        body: impl Into<String>,
    ) -> Response {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", content_type)
            .body(Body::from(body.into()))
            .unwrap();
        self.request(request).await
    }

    /// The same app with another reopener behind the correlator.
    pub(crate) fn with_reopener(mut self, reopener: Arc<dyn vigil_service::Reopener>) -> Self {
        let services = self.state.services.clone().with_reopener(reopener);
        self.state = AppState::new(services, HttpLimits::default());
        self
    }

    pub(crate) async fn get(&self, path: &str, bearer: &str) -> Response {
        self.call(Method::GET, path, Some(bearer), None).await
    }

    pub(crate) async fn post(&self, path: &str, bearer: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(bearer), Some(body))
            .await
    }

    /// Creates a tenant and a key with `role` in it; returns (tenant id, key).
    pub(crate) async fn tenant(&self, slug: &str) -> (String, String) {
        let tenant = self
            .post(
                "/api/v1/tenants",
                &self.admin_key,
                serde_json::json!({"slug": slug}),
            )
            .await;
        assert_eq!(tenant.status, StatusCode::CREATED, "{:?}", tenant.body);
        let id = tenant.body["id"].as_str().unwrap().to_owned();
        let key = self.key_in(&id, "tenant-admin").await;
        (id, key)
    }

    pub(crate) async fn key_in(&self, tenant: &str, role: &str) -> String {
        let path = format!("/api/v1/tenants/{tenant}/api-keys");
        let key = self
            .post(
                &path,
                &self.admin_key,
                serde_json::json!({"name": role, "role": role}),
            )
            .await;
        assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
        key.body["key"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn risk(&self, key: &str, body: Value) -> Value {
        let risk = self.post("/api/v1/risks", key, body).await;
        assert_eq!(risk.status, StatusCode::CREATED, "{:?}", risk.body);
        risk.body
    }

    /// Runs one SQL statement directly against the store, bypassing Vigil: how tests
    /// tamper with the audit trail.
    pub(crate) async fn raw_sql(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute(sql, []).unwrap();
            }
            Raw::Postgres(options) => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(options)
                    .await
                    .unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
}

impl TestApp {
    /// The first column of every row `sql` returns, as bytes: how tests look at what the
    /// store really holds.
    pub(crate) async fn raw_bytes(&self, sql: &str) -> Vec<Vec<u8>> {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut statement = conn.prepare(sql).unwrap();
                statement
                    .query_map([], |row| row.get::<_, Vec<u8>>(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Raw::Postgres(options) => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect_with(options)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }
}

/// Items of a list response.
pub(crate) fn items(response: &Response) -> &Vec<Value> {
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body["items"].as_array().expect("a list response")
}

pub(crate) fn ids(response: &Response) -> Vec<String> {
    items(response)
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}
