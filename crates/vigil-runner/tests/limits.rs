//! An instance's rate limit and concurrency hold across every run that uses it, against a
//! local server that records when each request arrived and how many were in flight.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, both};
use serde_json::json;

#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    most: AtomicUsize,
    arrivals: std::sync::Mutex<Vec<Instant>>,
}

/// Serves `GET /work`: holds each request `hold`, counting how many are in flight.
async fn server(hold: Duration) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/work",
        axum::routing::get(move || {
            let seen = Arc::clone(&state);
            async move {
                seen.arrivals.lock().unwrap().push(Instant::now());
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(hold).await;
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                axum::Json(json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), seen)
}

async fn work_app(h: &Harness) {
    h.app("local", json!({"type": "object"})).await;
    h.task(
        "local",
        "work",
        json!({"input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/work"},
        "outputs": [{"name": "ok", "path": "$.ok", "kind": "scalar", "type": "boolean"}],
        "timeout_ms": 5000}),
    )
    .await;
}

both!(concurrency_holds_across_runs, |h: Harness| async move {
    let (base, seen) = server(Duration::from_millis(150)).await;
    work_app(&h).await;
    let instance = h
        .instance(json!({"app": "local", "name": "two", "base_url": base, "concurrency_max": 2}))
        .await;
    let mut runs = Vec::new();
    for _ in 0..6 {
        runs.push(h.run("local", "work", &instance, json!({})).await);
    }
    for run in &runs {
        let done = h.finished(run, Duration::from_secs(20)).await;
        assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    }
    assert_eq!(seen.arrivals.lock().unwrap().len(), 6);
    assert_eq!(
        seen.most.load(Ordering::SeqCst),
        2,
        "six runs at once, never more than two requests in flight"
    );
});

both!(
    the_rate_limit_spaces_requests_across_runs,
    |h: Harness| async move {
        let (base, seen) = server(Duration::ZERO).await;
        work_app(&h).await;
        // 600 a minute: one request every 100 ms.
        let instance = h
            .instance(json!({"app": "local", "name": "slow", "base_url": base,
            "rate_limit_per_minute": 600, "concurrency_max": 8}))
            .await;
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(h.run("local", "work", &instance, json!({})).await);
        }
        for run in &runs {
            let done = h.finished(run, Duration::from_secs(20)).await;
            assert_eq!(done.body["status"], "succeeded", "{}", done.text);
        }
        let mut arrivals = seen.arrivals.lock().unwrap().clone();
        arrivals.sort();
        assert_eq!(arrivals.len(), 5);
        for pair in arrivals.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= Duration::from_millis(90), "requests {gap:?} apart");
        }
    }
);

both!(
    a_retry_waits_as_long_as_retry_after_says,
    |h: Harness| async move {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let app = axum::Router::new().route(
            "/work",
            axum::routing::post(move || {
                let calls = Arc::clone(&counted);
                async move {
                    use axum::response::IntoResponse;
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        let mut busy = axum::http::StatusCode::TOO_MANY_REQUESTS.into_response();
                        busy.headers_mut()
                            .insert("retry-after", "1".parse().unwrap());
                        busy
                    } else {
                        axum::Json(json!({"ok": true})).into_response()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        h.app("local", json!({"type": "object"})).await;
        h.task(
            "local",
            "work",
            json!({"input_schema": {"type": "object"},
        "request": {"method": "POST", "path": "/work"},
        "retry": {"max_attempts": 3, "initial_backoff_ms": 1, "max_backoff_ms": 5000},
        "timeout_ms": 5000}),
        )
        .await;
        let instance = h
            .instance(json!({"app": "local", "name": "busy", "base_url": base}))
            .await;
        let started = Instant::now();
        let run = h.run("local", "work", &instance, json!({})).await;
        let done = h.finished(&run, Duration::from_secs(20)).await;
        assert_eq!(done.body["status"], "succeeded", "{}", done.text);
        let attempts = done.body["steps"][0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "a 429 is retried, even for a POST");
        assert_eq!(attempts[0]["status_code"], 429);
        assert_eq!(attempts[0]["retry_in_ms"], 1000, "as Retry-After asked");
        assert!(started.elapsed() >= Duration::from_secs(1));
    }
);

/// The pool bounds runs across instances: two workers, two instances that would each take
/// eight at once, six runs — never more than two requests in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_bounds_runs_whatever_their_instances_allow() {
    let h = Harness::sqlite_with_workers(2).await;
    let (base, seen) = server(Duration::from_millis(150)).await;
    work_app(&h).await;
    let mut runs = Vec::new();
    for name in ["one", "two"] {
        let instance = h
            .instance(json!({"app": "local", "name": name, "base_url": base, "concurrency_max": 8}))
            .await;
        for _ in 0..3 {
            runs.push(h.run("local", "work", &instance, json!({})).await);
        }
    }
    for run in &runs {
        let done = h.finished(run, Duration::from_secs(20)).await;
        assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    }
    assert_eq!(seen.most.load(Ordering::SeqCst), 2);
}

/// Serves `/big` (an answer past the step's cap) and `/missing` (a 404 with a JSON body).
async fn odd_server() -> String {
    let app = axum::Router::new()
        .route(
            "/big",
            axum::routing::get(|| async { vec![b'x'; vigil_runner::STEP_RESPONSE_BYTES_MAX + 1] }),
        )
        .route(
            "/missing",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(json!({"gone": true})),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

both!(
    answers_are_capped_and_success_is_what_the_task_says,
    |h: Harness| async move {
        let base = odd_server().await;
        h.app("odd", json!({"type": "object"})).await;
        let task = |path: &str, success: serde_json::Value| {
            json!({"input_schema": {"type": "object"}, "request": {"method": "GET", "path": path},
            "outputs": [{"name": "gone", "path": "$.gone", "kind": "scalar", "type": "boolean"}],
            "success_status": success, "timeout_ms": 5000})
        };
        h.task("odd", "big", task("/big", json!([]))).await;
        h.task("odd", "expected_404", task("/missing", json!([404])))
            .await;
        h.task("odd", "any_2xx", task("/missing", json!([]))).await;
        let instance = h
            .instance(json!({"app": "odd", "name": "o", "base_url": base}))
            .await;

        let big = h.run("odd", "big", &instance, json!({})).await;
        let big = h.finished(&big, Duration::from_secs(20)).await.body;
        assert_eq!(big["status"], "failed", "{big}");
        let error = big["steps"][0]["attempts"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("the answer is larger than"), "{error}");

        let expected = h.run("odd", "expected_404", &instance, json!({})).await;
        let expected = h.finished(&expected, Duration::from_secs(20)).await.body;
        assert_eq!(expected["status"], "succeeded", "{expected}");
        assert_eq!(expected["steps"][0]["outputs"]["gone"], true);
        let default = h.run("odd", "any_2xx", &instance, json!({})).await;
        let default = h.finished(&default, Duration::from_secs(20)).await.body;
        assert_eq!(
            default["status"], "failed",
            "without success_status, a 404 fails: {default}"
        );
    }
);
