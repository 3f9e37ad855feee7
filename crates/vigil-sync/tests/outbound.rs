//! Every connector call goes through the outbound policy and its caps: a source on a refused
//! address is never reached, a too-large answer or an endless listing fails the cycle with a
//! clear error, the cursor stays at the last committed page, and no error repeats what the
//! source wrote.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::{config, cursor_of, cycle_with, fast_retries, serve, setup};
use serde_json::{Value, json};
use vigil_domain::{ConnectorKind, Severity};
use vigil_outbound::{Outbound, OutboundLimits, OutboundPolicy};
use vigil_sync::{SyncConfig, THEHIVE_PAGE_SIZE};

const API_KEY: &str = "hive-key-Ou71";

/// How the fake answers its n-th request.
type Answer = fn(u64) -> axum::response::Response;

/// A TheHive that counts requests and answers `answer(request number)`.
async fn hive(answer: Answer) -> (String, Arc<AtomicU64>) {
    let requests = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/api/v1/query",
            axum::routing::post(
                |State((requests, answer)): State<(Arc<AtomicU64>, Answer)>| async move {
                    answer(requests.fetch_add(1, Ordering::SeqCst))
                },
            ),
        )
        .with_state((Arc::clone(&requests), answer));
    (serve(app).await, requests)
}

async fn hive_setup(url: &str) -> common::Setup {
    setup(
        ConnectorKind::TheHive,
        url,
        Severity::Low,
        &[("organisation", "acme")],
        &[("api_key", API_KEY)],
    )
    .await
}

fn default_policy() -> SyncConfig {
    SyncConfig {
        retry: fast_retries(),
        ..SyncConfig::new(Outbound::new(
            OutboundPolicy::new("").unwrap(),
            OutboundLimits::default(),
        ))
    }
}

/// A full page of distinct cases, all updated at `n`.
fn full_page(n: u64) -> axum::response::Response {
    let cases: Vec<Value> = (0..THEHIVE_PAGE_SIZE as u64)
        .map(|i| {
            json!({"_id": format!("~{n}-{i}"), "title": "Endless", "severity": 3,
                   "stage": "New", "tlp": 2, "_createdAt": 1, "_updatedAt": 1_000 + n})
        })
        .collect();
    Json(Value::Array(cases)).into_response()
}

#[tokio::test]
async fn a_source_on_a_refused_address_is_never_reached() {
    let (url, requests) = hive(full_page).await;
    let port = url.rsplit(':').next().unwrap().to_owned();
    for url in [url.clone(), format!("http://localhost:{port}")] {
        let setup = hive_setup(&url).await;
        let report = cycle_with(&setup, &default_policy()).await;
        assert!(report.failed(), "{report:?}");
        assert!(
            report.errors[0].contains("refused by the outbound policy: a loopback address"),
            "{:?}",
            report.errors
        );
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
}

#[tokio::test]
async fn an_answer_past_the_cap_fails_the_cycle_without_moving_the_cursor() {
    let (url, _) = hive(full_page).await;
    let setup = hive_setup(&url).await;
    let small = SyncConfig {
        retry: fast_retries(),
        ..SyncConfig::new(Outbound::new(
            OutboundPolicy::new("127.0.0.0/8").unwrap(),
            OutboundLimits {
                response_bytes_max: 16 * 1024,
                ..OutboundLimits::default()
            },
        ))
    };
    let report = cycle_with(&setup, &small).await;
    assert!(
        report.failed() && report.errors[0].contains("larger than 16384 bytes"),
        "{report:?}"
    );
    assert_eq!(report.created, 0);
    let cursor = cursor_of(&setup).await;
    assert_eq!(cursor, None, "nothing committed, the cursor did not move");
}

#[tokio::test]
async fn an_endless_listing_stops_at_the_page_budget_after_committing_what_it_read() {
    let (url, requests) = hive(full_page).await;
    let setup = hive_setup(&url).await;
    let budget = SyncConfig {
        pages_per_cycle_max: 3,
        ..config()
    };
    let report = cycle_with(&setup, &budget).await;
    assert!(
        report.failed() && report.errors[0].contains("more than 3 requests in one cycle"),
        "{report:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        report.created,
        3 * THEHIVE_PAGE_SIZE as u64,
        "three pages committed"
    );
    let cursor = cursor_of(&setup)
        .await
        .expect("saved after each committed page");
    assert!(
        cursor.contains("1002"),
        "at the last committed page: {cursor}"
    );
}

#[tokio::test]
async fn errors_carry_the_status_never_the_answer() {
    fn banner(_: u64) -> axum::response::Response {
        (
            StatusCode::FORBIDDEN,
            "SSH-2.0-OpenSSH_9.2 internal-banner-Xq",
        )
            .into_response()
    }
    let (url, requests) = hive(banner).await;
    let setup = hive_setup(&url).await;
    let report = cycle_with(&setup, &config()).await;
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "a refusal is not retried"
    );
    assert_eq!(
        report.errors,
        vec!["thehive answered 403: Forbidden".to_owned()],
        "the status and its reason only"
    );
}
