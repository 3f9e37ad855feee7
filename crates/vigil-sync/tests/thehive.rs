//! The TheHive connector against a local server that speaks the Query API as documented
//! (`listCase`, `_gte` filters, `_fields` sort, `page` from/to, Bearer + X-Organisation).

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{Setup, config, cycle, risks_of, wired};
use serde_json::{Value, json};
use vigil_domain::{ConnectorKind, PageRequest, RiskStatus, Severity, SourceState};
use vigil_service::{ConnectorRequest, Credentials, Principal};
use vigil_sync::THEHIVE_PAGE_SIZE;

const API_KEY: &str = "hive-key-Zk81";

#[derive(Default)]
struct Fake {
    cases: Vec<Value>,
    /// Statuses (and Retry-After seconds) to answer instead of data, first come first used.
    failures: VecDeque<(u16, Option<u64>)>,
    requests: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn op<'a>(query: &'a [Value], name: &str) -> Option<&'a Value> {
    query.iter().find(|step| step["_name"] == name)
}

async fn query(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {API_KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"type": "AuthenticationError", "message": "bad key"})),
        )
            .into_response();
    }
    assert_eq!(
        headers.get("x-organisation").unwrap(),
        "acme-org",
        "organisation on every request"
    );
    if let Some((status, after)) = fake.failures.pop_front() {
        return common::failure(status, after);
    }
    let steps = body["query"].as_array().unwrap();
    assert_eq!(steps[0]["_name"], "listCase");
    let mut cases: Vec<Value> = fake.cases.clone();
    if let Some(filter) = op(steps, "filter") {
        let gte = &filter["_gte"];
        let field = gte["_field"].as_str().unwrap();
        let since = gte["_value"].as_i64().unwrap();
        cases.retain(|c| c[field].as_i64().is_some_and(|v| v >= since));
    }
    if let Some(sort) = op(steps, "sort") {
        let field = sort["_fields"][0]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        cases.sort_by_key(|c| (c[&field].as_i64(), c["_id"].as_str().unwrap().to_owned()));
    }
    let page = op(steps, "page").unwrap();
    let from = page["from"].as_u64().unwrap() as usize;
    let to = page["to"].as_u64().unwrap() as usize;
    let slice: Vec<Value> = cases.into_iter().skip(from).take(to - from).collect();
    Json(Value::Array(slice)).into_response()
}

async fn serve(fake: Shared) -> String {
    common::serve(
        axum::Router::new()
            .route("/api/v1/query", axum::routing::post(query))
            .with_state(fake),
    )
    .await
}

fn case(n: usize, severity: i64, stage: &str, created: i64, updated: Option<i64>) -> Value {
    let mut case = json!({
        "_id": format!("~{n}"), "_type": "Case", "number": n, "title": format!("Case {n}"),
        "description": "seen on the proxy", "severity": severity, "stage": stage, "status": stage,
        "tlp": 2, "_createdAt": created,
    });
    if let Some(updated) = updated {
        case["_updatedAt"] = json!(updated);
    }
    case
}

async fn setup(url: &str) -> Setup {
    common::setup(
        ConnectorKind::TheHive,
        url,
        Severity::Medium,
        &[("organisation", "acme-org")],
        &[("api_key", API_KEY)],
    )
    .await
}

async fn risks(setup: &Setup) -> Vec<vigil_domain::Risk> {
    risks_of(setup, "thehive").await
}

#[tokio::test]
async fn a_backlog_of_many_pages_syncs_once_and_then_only_what_changed() {
    let fake: Shared = Arc::default();
    let n = THEHIVE_PAGE_SIZE * 2 + 37;
    {
        let mut f = fake.lock().unwrap();
        // Many share one timestamp across the page boundaries; a third were never updated.
        f.cases = (0..n)
            .map(|i| {
                case(
                    i,
                    3,
                    "New",
                    1_000 + (i / 7) as i64,
                    (i % 3 != 0).then_some(5_000 + (i / 300) as i64),
                )
            })
            .collect();
        f.cases.push(case(n, 1, "New", 1_000, None)); // LOW: below the threshold
    }
    let setup = setup(&serve(fake.clone()).await).await;
    let first = cycle(&setup).await;
    assert!(!first.failed(), "{first:?}");
    assert_eq!(first.created as usize, n, "{first:?}");
    assert_eq!(
        first.skipped, 1,
        "the LOW case (never updated: read by creation only)"
    );
    assert_eq!(risks(&setup).await.len(), n, "nothing duplicated");

    let again = cycle(&setup).await;
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");

    {
        let mut f = fake.lock().unwrap();
        f.cases[5]["stage"] = json!("Closed");
        f.cases[5]["_updatedAt"] = json!(9_000);
        f.cases[9]["_updatedAt"] = json!(9_000);
        f.cases[9]["title"] = json!("Renamed");
        f.cases.push(case(n + 1, 4, "New", 9_500, None));
    }
    let third = cycle(&setup).await;
    assert_eq!((third.created, third.updated), (1, 2), "{third:?}");
    let all = risks(&setup).await;
    let closed = all
        .iter()
        .find(|r| r.external_id.as_ref().unwrap().as_str() == "~5")
        .unwrap();
    assert_eq!(
        closed.status,
        RiskStatus::Closed,
        "closed upstream closes the risk"
    );
    assert!(all.iter().any(|r| r.title.as_str() == "[INCIDENT] Renamed"));
    // Only the cases sharing the cursors' timestamps are read again (about 91 share the last
    // `_updatedAt` here), not the backlog of over a thousand.
    assert!(third.unchanged < 150, "{third:?}");
}

#[tokio::test]
async fn deleted_or_merged_cases_close_their_risks() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().cases = (0..5)
        .map(|i| case(i, 3, "New", 100 + i as i64, None))
        .collect();
    let setup = setup(&serve(fake.clone()).await).await;
    assert_eq!(cycle(&setup).await.created, 5);
    fake.lock().unwrap().cases.retain(|c| c["_id"] != "~2");
    let report = cycle(&setup).await;
    assert_eq!(report.deleted_upstream, 1, "{report:?}");
    let gone = risks(&setup)
        .await
        .into_iter()
        .find(|r| r.external_id.as_ref().unwrap().as_str() == "~2")
        .unwrap();
    assert_eq!(
        (gone.status, gone.source_state),
        (RiskStatus::Closed, Some(SourceState::Deleted))
    );
    assert_eq!(risks(&setup).await.len(), 5, "never hard-deleted");
}

#[tokio::test]
async fn a_case_that_drops_below_the_threshold_closes_its_risk() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().cases = vec![case(1, 3, "New", 100, Some(100))];
    let setup = setup(&serve(fake.clone()).await).await;
    assert_eq!(cycle(&setup).await.created, 1);
    {
        let mut f = fake.lock().unwrap();
        f.cases[0]["severity"] = json!(1);
        f.cases[0]["_updatedAt"] = json!(200);
    }
    let report = cycle(&setup).await;
    assert_eq!(report.below_threshold, 1, "{report:?}");
    let risk = &risks(&setup).await[0];
    assert_eq!(
        (risk.status, risk.source_state),
        (RiskStatus::Closed, Some(SourceState::BelowThreshold))
    );
    // A low case Vigil never tracked is skipped, not created.
    fake.lock()
        .unwrap()
        .cases
        .push(case(2, 1, "New", 300, Some(300)));
    let report = cycle(&setup).await;
    assert_eq!(
        (report.created, report.below_threshold),
        (0, 0),
        "{report:?}"
    );
    assert!(report.skipped >= 1, "{report:?}");
    {
        let mut f = fake.lock().unwrap();
        f.cases[0]["severity"] = json!(4);
        f.cases[0]["_updatedAt"] = json!(400);
    }
    let report = cycle(&setup).await;
    assert_eq!(report.updated, 1, "{report:?}");
    let risk = &risks(&setup).await[0];
    assert_eq!(
        (risk.status, risk.source_state),
        (RiskStatus::Open, Some(SourceState::Present)),
        "back above the threshold, it opens again"
    );
}

#[tokio::test]
async fn a_listing_too_short_to_trust_closes_nothing() {
    let fake: Shared = Arc::default();
    let tracked = vigil_sync::SHORT_LISTING_TRACKED_MIN + 2;
    fake.lock().unwrap().cases = (0..tracked)
        .map(|i| case(i, 3, "New", 100 + i as i64, None))
        .collect();
    let setup = setup(&serve(fake.clone()).await).await;
    assert_eq!(cycle(&setup).await.created, tracked as u64);
    let all = fake.lock().unwrap().cases.clone();
    for keep in [0, tracked / 2 - 1] {
        fake.lock().unwrap().cases = all[..keep].to_vec();
        let report = cycle(&setup).await;
        assert_eq!(report.deleted_upstream, 0, "{keep} listed: {report:?}");
        assert!(!report.failed(), "{report:?}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("nothing was closed")),
            "{report:?}"
        );
    }
    fake.lock().unwrap().cases = all[1..].to_vec();
    let report = cycle(&setup).await;
    assert_eq!(report.deleted_upstream, 1, "{report:?}");
    assert!(report.warnings.is_empty(), "{report:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_refusals_are_not() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().cases = vec![case(1, 3, "New", 100, None)];
    fake.lock().unwrap().failures = VecDeque::from([(500, None), (429, Some(0))]);
    let setup = setup(&serve(fake.clone()).await).await;
    let report = cycle(&setup).await;
    assert!(
        !report.failed(),
        "two failures, then the third attempt answers: {report:?}"
    );
    assert_eq!(report.created, 1);

    fake.lock().unwrap().failures = VecDeque::from([(500, None), (500, None), (500, None)]);
    let down = cycle(&setup).await;
    assert!(
        down.failed(),
        "a source that stays down fails the cycle: {down:?}"
    );
    assert!(
        down.errors[0].contains("unavailable after 3 attempts"),
        "{down:?}"
    );
    assert_eq!(risks(&setup).await.len(), 1, "no fallback data");

    let before = fake.lock().unwrap().requests;
    let wrong = &setup.connector;
    let bad_key = ConnectorRequest {
        name: wrong.name.clone(),
        kind: ConnectorKind::TheHive,
        url: wrong.url.clone(),
        enabled: true,
        interval: None,
        threshold: None,
        options: wrong.options.clone(),
        credentials: Some(Credentials::new(
            [("api_key".to_owned(), "wrong".to_owned())].into(),
        )),
    };
    setup
        .services
        .put_connector(&Principal::cli_in(wrong.tenant_id), bad_key)
        .await
        .unwrap();
    let refused = cycle(&setup).await;
    assert!(
        refused.failed() && refused.errors[0].contains("401"),
        "{refused:?}"
    );
    assert_eq!(
        fake.lock().unwrap().requests - before,
        1,
        "wrong credentials: no retry storm"
    );
    assert!(
        !refused.errors[0].contains(API_KEY) && !refused.errors[0].contains("wrong"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_engine_runs_each_connector_at_once_and_stops_when_told() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().cases = (0..3)
        .map(|i| case(i, 3, "New", 100 + i as i64, None))
        .collect();
    let setup = setup(&serve(fake.clone()).await).await;
    let status = Arc::new(vigil_sync::SyncStatus::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = tokio::spawn(vigil_sync::run_engine(
        setup.services.clone(),
        Arc::clone(&status),
        config(),
        stopped,
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = status.of_tenant(setup.connector.tenant_id);
        if seen.first().is_some_and(|s| s.cycles_total >= 1) || std::time::Instant::now() > deadline
        {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].cycles_succeeded, seen[0].items_created),
        (1, 3),
        "{seen:?}"
    );
    assert_eq!(seen[0].breaker, vigil_service::BreakerState::Closed);
    let metrics = status.openmetrics();
    let created = format!(
        "vigil_sync_items_total{{outcome=\"created\",tenant=\"{}\",connector=\"thehive\"}} 3",
        setup.connector.tenant_id
    );
    assert!(metrics.contains(&created), "{metrics}");
    assert!(
        metrics.contains("# TYPE vigil_sync_breaker_open gauge"),
        "{metrics}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), engine)
        .await
        .expect("the engine stops")
        .unwrap();
    assert_eq!(risks(&setup).await.len(), 3);
}

#[tokio::test]
async fn a_crash_between_page_commit_and_cursor_save_neither_duplicates_nor_loses() {
    let fake: Shared = Arc::default();
    let n = THEHIVE_PAGE_SIZE + 10;
    fake.lock().unwrap().cases = (0..n)
        .map(|i| case(i, 3, "New", 100 + i as i64, Some(200 + i as i64)))
        .collect();
    let setup = setup(&serve(fake.clone()).await).await;
    assert_eq!(cycle(&setup).await.created as usize, n);
    // The pages committed but the cursor saves were lost: the next cycle starts from zero.
    let store = &setup.store;
    store
        .set_sync_cursor(
            setup.connector.tenant_id,
            &setup.connector.name,
            "updated:0,created:0",
        )
        .await
        .unwrap();
    fake.lock().unwrap().cases[3]["_updatedAt"] = json!(10_000);
    fake.lock().unwrap().cases[3]["title"] = json!("Changed meanwhile");
    let rerun = cycle(&setup).await;
    assert_eq!((rerun.created, rerun.updated), (0, 1), "{rerun:?}");
    assert_eq!(risks(&setup).await.len(), n, "no duplicate");
}

#[tokio::test]
async fn a_case_that_does_not_map_is_dead_lettered_and_the_page_goes_on() {
    let fake: Shared = Arc::default();
    {
        let mut f = fake.lock().unwrap();
        f.cases = (0..4)
            .map(|i| case(i, 3, "New", 100 + i as i64, None))
            .collect();
        f.cases[1]["severity"] = json!(9);
        f.cases[2]["stage"] = json!(17);
    }
    let setup = setup(&serve(fake.clone()).await).await;
    let report = cycle(&setup).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!((report.created, report.dead_lettered), (2, 2), "{report:?}");
    let store = &setup.store;
    let tenant = setup.connector.tenant_id;
    let letters = store
        .list_dead_letters(tenant, PageRequest::first(10))
        .await
        .unwrap();
    let mut ids: Vec<&str> = letters
        .items
        .iter()
        .map(|l| l.external_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["~1", "~2"]);
    let nine = letters
        .items
        .iter()
        .find(|l| l.external_id == "~1")
        .unwrap();
    assert!(nine.error.contains("severity"), "{nine:?}");
    assert!(
        nine.payload.contains("\"severity\":9"),
        "the payload is kept for replay"
    );

    let principal = Principal::cli_in(tenant);
    let still = wired(&setup).replay_dead_letter(&principal, nine.id).await;
    assert!(still.is_err(), "the payload still does not map");
    let again = store.get_dead_letter(tenant, nine.id).await.unwrap();
    assert_eq!(again.attempts, 2);

    // Fixed upstream: the next cycle stores it and its letter goes.
    {
        let mut f = fake.lock().unwrap();
        f.cases[2]["stage"] = json!("New");
        f.cases[2]["_updatedAt"] = json!(1_000);
    }
    let fixed = cycle(&setup).await;
    assert_eq!(fixed.created, 1, "{fixed:?}");
    let left = store
        .list_dead_letters(tenant, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1, "only ~1 is still dead-lettered");

    replay_a_kept_record(&setup).await;
}

/// A record kept after a failure that was not the record's fault replays into the register.
async fn replay_a_kept_record(setup: &Setup) {
    let store = &setup.store;
    let tenant = setup.connector.tenant_id;
    let principal = Principal::cli_in(tenant);
    let fine = vigil_domain::DeadLetter::new(
        tenant,
        setup.connector.name.clone(),
        "~77".into(),
        "store unavailable",
        case(77, 4, "InProgress", 500, None).to_string(),
        vigil_domain::Timestamp::now(),
    );
    let fine = store.record_dead_letter(tenant, fine).await.unwrap();
    let replayed = wired(setup)
        .replay_dead_letter(&principal, fine.id)
        .await
        .unwrap();
    assert_eq!(replayed, vigil_service::Replayed::Created);
    assert!(
        store.get_dead_letter(tenant, fine.id).await.is_err(),
        "a replayed letter is gone"
    );
    assert!(
        risks(setup)
            .await
            .iter()
            .any(|r| r.external_id.as_ref().unwrap().as_str() == "~77")
    );
}
