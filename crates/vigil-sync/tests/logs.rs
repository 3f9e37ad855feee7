//! A connector credential stays out of the logs and the report, even when the source refuses
//! it (the key goes out in a header, the refusal comes back). Its own test binary: it installs
//! the process's global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use common::edge::Edge;
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

#[tokio::test]
async fn a_refused_connector_key_reaches_neither_logs_nor_report() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let connector_key = "connector-key-Hq2Wv8";
    let refusing = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({"type": "AuthenticationError", "message": "Authentication failure"}),
                ),
            )
        }),
    );
    let url = common::serve(refusing).await;
    let edge = Edge::new().await;
    let (_, admin) = edge.tenant("acme").await;
    let connector = json!({"kind": "thehive", "url": url,
        "credentials": {"api_key": connector_key}, "options": {"organisation": "acme"}});
    let (status, _) = edge
        .call(
            Method::PUT,
            "/api/v1/connectors/hive",
            &admin,
            Some(connector),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, report) = edge.post("/api/v1/sync/hive/run", &admin).await;
    assert_eq!(
        report["errors"],
        json!(["thehive answered 401: Unauthorized"]),
        "the status, not the source's text"
    );
    assert!(!report.to_string().contains(connector_key));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("cycle failed"), "the capture works");
    assert!(
        !logs.contains(connector_key),
        "a connector credential reached the logs"
    );
    assert!(
        !logs.contains("Authentication failure"),
        "nor the source's text"
    );
}
