//! The HTTP edge with the engine wired in, as `vigil serve` wires it: for the routes that
//! reach the engine (run now, replay, status) end to end.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_api::{AppState, HttpLimits};
use vigil_domain::Role;
use vigil_service::{JwtKey, KeyOwner, MasterKey, NewApiKeyRequest, Principal, Services};

pub(crate) struct Edge {
    pub(crate) state: AppState,
    /// The services without the engine port, as the engine itself holds them.
    pub(crate) services: Services,
    admin_key: String,
    _dir: tempfile::TempDir,
}

impl Edge {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = vigil_store_sqlite::SqliteStore::open(&dir.path().join("vigil.db"))
            .await
            .unwrap();
        let services = Services::new(Arc::new(store), JwtKey::generate())
            .with_master_key(MasterKey::generate().unwrap());
        let engine = vigil_sync::Engine::new(services.clone(), super::config(), Arc::default());
        let wired = services.clone().with_sync_engine(Arc::new(engine));
        let request = NewApiKeyRequest {
            name: "root".into(),
            role: Role::PlatformAdmin,
            expires_at: None,
        };
        let created = wired
            .create_api_key(&Principal::system(), KeyOwner::Own, request)
            .await
            .unwrap();
        Self {
            state: AppState::new(wired, HttpLimits::default()),
            services,
            admin_key: created.secret.expose().to_owned(),
            _dir: dir,
        }
    }

    /// One JSON call: (status, body).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", "application/json");
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = vigil_api::app(self.state.clone())
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, bearer, None).await
    }

    pub(crate) async fn post(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, bearer, Some(json!({}))).await
    }

    /// A tenant and a tenant-admin key in it: (tenant id, key).
    pub(crate) async fn tenant(&self, slug: &str) -> (String, String) {
        let (status, tenant) = self
            .call(
                Method::POST,
                "/api/v1/tenants",
                &self.admin_key,
                Some(json!({"slug": slug})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{tenant:?}");
        let id = tenant["id"].as_str().unwrap().to_owned();
        let (status, key) = self
            .call(
                Method::POST,
                &format!("/api/v1/tenants/{id}/api-keys"),
                &self.admin_key,
                Some(json!({"name": "admin", "role": "tenant-admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key:?}");
        (id, key["key"].as_str().unwrap().to_owned())
    }
}
