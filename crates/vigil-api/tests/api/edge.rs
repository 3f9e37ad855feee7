//! The HTTP edge itself: the OpenAPI document against the real routes, health, metrics,
//! request ids, security headers, limits and error shapes.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use vigil_api::HttpLimits;

use crate::support::{Backend, TestApp};

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let app = TestApp::new(Backend::Sqlite).await;
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = vigil_api::documented_routes().into_iter().collect();
    assert_eq!(documented, served);

    // And the table is the truth: each listed method is routed, every other one is 405.
    let all = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    let paths: BTreeSet<&String> = served.iter().map(|(path, _)| path).collect();
    for path in paths {
        let concrete = path.replace("{id}", "0190b3a4-0000-7000-8000-000000000000");
        for method in &all {
            let response = app.call(method.clone(), &concrete, None, None).await;
            let listed = served.contains(&(path.clone(), method.as_str().to_owned()));
            let routed = response.status != StatusCode::METHOD_NOT_ALLOWED
                && response.body["detail"] != "no such route";
            assert_eq!(
                routed, listed,
                "{method} {path} answered {}",
                response.status
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::new(Backend::Sqlite).await;
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.body["status"],
        "ok"
    );
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.body,
        json!({"status": "ready", "store": "sqlite", "stale_connectors": 0}),
        "ready or not, and no tenant or connector named"
    );
    app.call(Method::GET, "/api/v1/risks", None, None).await;
    let closed = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(closed.status, StatusCode::UNAUTHORIZED);
    assert!(
        closed.body["detail"].as_str().is_some_and(
            |d| d.contains("VIGIL_METRICS_TOKEN") && d.contains("VIGIL_METRICS_LISTEN")
        ),
        "{:?}",
        closed.body
    );
    let mut app = app;
    let token = "metrics-token-0123456789";
    app.state.metrics_token = Some(std::sync::Arc::new(token.to_owned().into()));
    for wrong in [
        None,
        Some("metrics-token-0123456780"),
        Some(app.admin_key.as_str()),
    ] {
        let refused = app.call(Method::GET, "/metrics", wrong, None).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
    }
    let metrics = app.call(Method::GET, "/metrics", Some(token), None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"vigil_http_requests_total{method="GET",route="/api/v1/risks",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("vigil_http_request_duration_seconds_bucket"));
    assert!(text.contains("vigil_store_pool_max_connections"));
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_headers_are_safe() {
    let app = TestApp::new(Backend::Sqlite).await;
    let given = app
        .request(
            Request::get("/healthz")
                .header("x-request-id", "trace-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "trace-123");
    let made = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(made.headers["x-request-id"].len(), 36);
    let hostile = app
        .request(
            Request::get("/healthz")
                .header("x-request-id", "a\"b c")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(
        hostile.headers["x-request-id"], "a\"b c",
        "odd ids are replaced, not logged"
    );
    for header in [
        "x-content-type-options",
        "x-frame-options",
        "content-security-policy",
        "referrer-policy",
        "cache-control",
    ] {
        assert!(made.headers.contains_key(header), "{header}");
    }
}

#[tokio::test]
async fn bodies_are_bounded_typed_and_well_formed() {
    let limits = HttpLimits {
        body_bytes_max: 1_024,
        ..HttpLimits::default()
    };
    let app = TestApp::sqlite_with_limits(limits).await;
    let (_, key) = app.tenant("acme").await;
    let big = json!({"title": "x".repeat(2_000), "impact": 1, "probability": 1});
    let response = app.post("/api/v1/risks", &key, big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers["content-type"], "application/problem+json");

    let malformed = app
        .request(
            Request::post("/api/v1/risks")
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(Body::from("{\"title\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let text = app
        .request(
            Request::post("/api/v1/risks")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from("title=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let unknown = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["type"], "urn:vigil:problem:not-found");
    assert_eq!(
        unknown.body["request_id"].as_str(),
        unknown.headers["x-request-id"].to_str().ok(),
        "a problem quotes its request id"
    );
    assert_eq!(
        app.get("/api/v1/risks", &key).await.body["items"],
        json!([]),
        "no rejected body was stored"
    );
}

#[tokio::test]
async fn a_real_socket_serves_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_api::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: vigil\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ready\""));
    stop.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "the server stops after the signal"
    );
}

/// Sends a request head that announces a body of `length` bytes, then only `sent` bytes of
/// it; answers what the server says, and how long it took.
async fn slow_body(
    address: std::net::SocketAddr,
    length: usize,
    sent: usize,
) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: vigil\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&b"{".repeat(sent)).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    (
        String::from_utf8_lossy(&answer[..n]).into_owned(),
        started.elapsed(),
    )
}

/// A slow client cannot hold a request slot: its body must arrive within the body-read
/// timeout (408 after it), and one address gets a bounded number of slots without a
/// credential (429 past it, at once).
#[tokio::test]
async fn slow_clients_cannot_hold_request_slots() {
    let limits = HttpLimits {
        body_read_timeout: std::time::Duration::from_millis(300),
        unauthenticated_in_flight_per_address: 3,
        ..HttpLimits::default()
    };
    let app = TestApp::sqlite_with_limits(limits).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(vigil_api::serve(
        listener,
        app.state.clone(),
        std::future::pending(),
    ));
    let (answer, took) = slow_body(address, 100, 10).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < std::time::Duration::from_secs(3), "{took:?}");

    let mut holders = Vec::new();
    for _ in 0..3 {
        holders.push(tokio::spawn(slow_body(address, 100, 1)));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (answer, took) = slow_body(address, 100, 1).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(
        took < std::time::Duration::from_millis(250),
        "refused at once: {took:?}"
    );
    for holder in holders {
        let (answer, _) = holder.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "the places were given back");
}
