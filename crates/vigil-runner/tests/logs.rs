//! An instance secret stays out of the logs, the history and every answer, even when the
//! other side echoes it back in a success and in a failure. Its own test binary: it installs
//! the process's global subscriber (everything, TRACE included).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::Harness;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

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

/// Echoes the `Key` header: in a 200 (`/echo`) and in a 500 (`/fail`).
async fn echoing() -> String {
    let echo = |headers: HeaderMap| async move {
        let key = headers
            .get("key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        axum::Json(json!({"key": key, "note": format!("you sent {key}")}))
    };
    let fail = |headers: HeaderMap| async move {
        let key = headers
            .get("key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (StatusCode::INTERNAL_SERVER_ERROR, format!("bad key {key}"))
    };
    let app = axum::Router::new()
        .route("/echo", axum::routing::get(echo))
        .route("/fail", axum::routing::get(fail));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_secret_reaches_neither_logs_nor_history() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let secret = "inst-secret-Zq81Lw";
    let h = Harness::sqlite().await;
    h.app(
        "echo",
        json!({"type": "object", "properties": {
        "key": {"type": "string", "writeOnly": true}}}),
    )
    .await;
    let task = |path: &str| {
        json!({"input_schema": {"type": "object"},
            "request": {"method": "GET", "path": path, "headers": {"Key": "{{ secrets.key }}"}},
            "outputs": [{"name": "key", "path": "$.key", "kind": "scalar", "type": "string"},
                        {"name": "note", "path": "$.note", "kind": "scalar", "type": "string"}],
            "retry": {"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 5},
            "timeout_ms": 5000})
    };
    h.task("echo", "ok", task("/echo")).await;
    h.task("echo", "bad", task("/fail")).await;
    let instance = h
        .instance(
            json!({"app": "echo", "name": "e", "base_url": echoing().await,
            "secrets": {"key": secret}}),
        )
        .await;
    let ok = h.run("echo", "ok", &instance, json!({})).await;
    let ok = h.finished(&ok, Duration::from_secs(10)).await;
    assert_eq!(ok.body["status"], "succeeded", "{}", ok.text);
    assert_eq!(ok.body["steps"][0]["outputs"]["note"], "you sent ********");
    let bad = h.run("echo", "bad", &instance, json!({})).await;
    let bad = h.finished(&bad, Duration::from_secs(10)).await;
    assert_eq!(bad.body["status"], "failed", "{}", bad.text);
    for answer in [
        &ok,
        &bad,
        &h.get("/api/v1/runs").await,
        &h.get("/api/v1/audit?limit=500").await,
    ] {
        assert!(!answer.text.contains(secret), "{}", answer.text);
    }
    let instance = h.get(&format!("/api/v1/instances/{instance}")).await;
    assert!(!instance.text.contains(secret));

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.is_empty(), "the subscriber captured the run's logs");
    assert!(!logs.contains(secret), "a log line holds the secret");
}
