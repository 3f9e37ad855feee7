//! Secrets stay out of logs: every key, password and token a test just used is searched for
//! in everything the process logged, at the most verbose level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{Backend, TestApp};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_current_span(true)
        .with_writer(captured.clone())
        .finish();
    // Global, not thread-local: tracing caches callsite interest per process, and a
    // thread-local subscriber races with the other tests' threads under `cargo test`.
    tracing::subscriber::set_global_default(subscriber)
        .expect("only this test installs a subscriber");

    let app = TestApp::new(Backend::Sqlite).await;
    let (_, key) = app.tenant("acme").await;
    let password = "correct horse battery staple";
    let user = json!({"email": "ana@acme.example", "password": password, "role": "analyst"});
    assert_eq!(
        app.post("/api/v1/users", &key, user).await.status,
        StatusCode::CREATED
    );
    let login = json!({"tenant": "acme", "email": "ana@acme.example", "password": password});
    let tokens = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(login))
        .await
        .body;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    app.get("/api/v1/risks", access).await;
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    app.call(
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    app.get("/api/v1/risks", &key).await;
    app.get("/api/v1/risks", &format!("{key}x")).await;
    app.post(
        "/api/v1/risks",
        &key,
        json!({"title": "t", "impact": 1, "probability": 1}),
    )
    .await;

    let connector_key = put_a_connector(&app, &key).await;
    let instance_secret = put_an_instance(&app, &key).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        !logs.contains(connector_key),
        "a connector credential reached the logs"
    );
    assert!(
        !logs.contains(instance_secret),
        "an instance secret reached the logs"
    );
    assert!(
        logs.contains("\"request_id\""),
        "the capture works and carries request ids: {}",
        &logs[..logs.len().min(3000)]
    );
    assert!(logs.contains("\"tenant\""), "lines carry the tenant");
    for secret in [key.as_str(), &app.admin_key, password, access, refresh] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    let secret_part = &refresh[refresh.find('.').unwrap() + 1..];
    assert!(!logs.contains(secret_part));
}

/// An app with a secret field and an instance of it, created, refused once (a secret that
/// does not fit) and moved with its secret sent again; answers the secret.
async fn put_an_instance(app: &TestApp, key: &str) -> &'static str {
    let secret = "instance-secret-Zp4Kq7Lm";
    let definition = json!({"version": "1.0.0", "config_schema": {"type": "object", "properties": {
        "api_key": {"type": "string", "writeOnly": true, "maxLength": 10}}}});
    let put = app
        .call(
            Method::PUT,
            "/api/v1/apps/abuse",
            Some(key),
            Some(definition),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let too_long = json!({"app": "abuse", "name": "a", "base_url": "https://a.example",
        "secrets": {"api_key": secret}});
    let refused = app.post("/api/v1/instances", key, too_long).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !refused.body.to_string().contains(secret),
        "{:?}",
        refused.body
    );
    let fits = json!({"app": "abuse", "name": "a", "base_url": "https://a.example",
        "secrets": {"api_key": &secret[..10]}});
    let created = app.post("/api/v1/instances", key, fits).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    &secret[..10]
}

#[test]
fn debug_output_redacts_secrets() {
    let secret = vigil_service::ApiKeySecret::generate();
    assert!(!format!("{secret:?}").contains(secret.expose()));
    let jwt = vigil_service::JwtKey::generate();
    assert_eq!(format!("{jwt:?}"), "JwtKey([REDACTED])");
    let secrets = serde_json::json!({"api_key": "instance-secret-in-debug"});
    let request = vigil_service::InstanceRequest {
        app: vigil_automation::AppName::parse("a").unwrap(),
        name: vigil_automation::InstanceName::parse("b").unwrap(),
        base_url: None,
        config: serde_json::Map::new(),
        secrets: secrets.as_object().unwrap().clone(),
        rate_limit_per_minute: None,
        concurrency_max: None,
        enabled: None,
    };
    let shown = format!("{request:?}");
    assert!(
        shown.contains("api_key") && !shown.contains("instance-secret-in-debug"),
        "{shown}"
    );
}

/// Configures a connector; answers its credential. Credentials on their way in are covered
/// here, a cycle that sends them by the sync crate's `logs` test.
async fn put_a_connector(app: &TestApp, key: &str) -> &'static str {
    let connector_key = "connector-key-Hq2Wv8";
    let connector = json!({"kind": "thehive", "url": "https://hive.example",
        "credentials": {"api_key": connector_key}, "options": {"organisation": "acme"}});
    let put = app
        .call(
            Method::PUT,
            "/api/v1/connectors/hive",
            Some(key),
            Some(connector),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    connector_key
}
