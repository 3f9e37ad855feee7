//! The OpenCTI connector against a local server that speaks the GraphQL shapes OpenCTI
//! documents: `POST /graphql`, Bearer token, Relay pages (`first`/`after`,
//! `pageInfo { endCursor hasNextPage }`), `FilterGroup` filters on `updated_at`, and errors
//! inside an HTTP 200.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use common::{Setup, by_external, cursor_of, cycle, dead_letter_ids, indicators, risks_of};
use serde_json::{Value, json};
use vigil_domain::{ConnectorKind, RiskStatus, Severity, SourceState, Timestamp};
use vigil_sync::OPENCTI_PAGE_SIZE;

const TOKEN: &str = "cti-token-7Hq2";

enum Failure {
    Status(u16, Option<u64>),
    /// An HTTP 200 whose body is a GraphQL error.
    GraphQl,
    /// An HTTP 200 whose body is not a GraphQL answer.
    Garbage,
}

#[derive(Default)]
struct Fake {
    incidents: Vec<Value>,
    case_incidents: Vec<Value>,
    indicators: Vec<Value>,
    failures: VecDeque<Failure>,
    requests: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn at(raw: &str) -> i64 {
    Timestamp::parse(raw).unwrap().unix_micros()
}

fn graphql_error(message: &str, code: &str) -> Response {
    Json(json!({"errors": [{"message": message, "extensions": {"code": code}}], "data": null}))
        .into_response()
}

async fn graphql(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = fake.lock().unwrap();
    fake.requests += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        // What OpenCTI answers to a wrong token: a 200 with an error.
        return graphql_error("You must be logged in to do this.", "AUTH_REQUIRED");
    }
    match fake.failures.pop_front() {
        Some(Failure::Status(status, after)) => return common::failure(status, after),
        Some(Failure::GraphQl) => return graphql_error("Elasticsearch timeout", "DATABASE_ERROR"),
        Some(Failure::Garbage) => return Json(json!({"hello": "world"})).into_response(),
        None => {}
    }
    let query = body["query"].as_str().unwrap();
    let variables = &body["variables"];
    let (root, nodes) = if query.contains("caseIncidents(") {
        ("caseIncidents", &fake.case_incidents)
    } else if query.contains("incidents(") {
        ("incidents", &fake.incidents)
    } else if query.contains("indicators(") {
        ("indicators", &fake.indicators)
    } else {
        return graphql_error("Unknown query", "GRAPHQL_VALIDATION_FAILED");
    };
    assert!(
        query.contains("orderBy: updated_at, orderMode: asc"),
        "{query}"
    );
    let mut nodes: Vec<Value> = nodes.clone();
    if let Some(filter) = variables["filters"]["filters"]
        .as_array()
        .and_then(|f| f.first())
    {
        assert_eq!(
            (filter["key"].as_str(), filter["operator"].as_str()),
            (Some("updated_at"), Some("gte"))
        );
        let since = at(filter["values"][0].as_str().unwrap());
        nodes.retain(|n| at(n["updated_at"].as_str().unwrap()) >= since);
    }
    nodes.sort_by_key(|n| {
        (
            at(n["updated_at"].as_str().unwrap()),
            n["id"].as_str().unwrap().to_owned(),
        )
    });
    // The cursor is opaque to clients; here it is the position after the page.
    let from: usize = variables["after"]
        .as_str()
        .map_or(0, |c| c.strip_prefix("pos:").unwrap().parse().unwrap());
    let first = variables["first"].as_u64().unwrap() as usize;
    let page: Vec<Value> = nodes.iter().skip(from).take(first).cloned().collect();
    let end = from + page.len();
    let edges: Vec<Value> = page.into_iter().map(|node| json!({"node": node})).collect();
    Json(json!({"data": {root: {
        "edges": edges,
        "pageInfo": {"endCursor": format!("pos:{end}"), "hasNextPage": end < nodes.len()}
    }}}))
    .into_response()
}

async fn serve(fake: Shared) -> String {
    common::serve(
        axum::Router::new()
            .route("/graphql", axum::routing::post(graphql))
            .with_state(fake),
    )
    .await
}

fn iso(second: i64) -> String {
    Timestamp::from_unix_micros(1_735_689_600_000_000 + second * 1_000_000)
        .to_string()
        .replace(".000000Z", ".000Z")
}

fn incident(n: usize, entity_type: &str, severity: &str, updated: i64) -> Value {
    let prefix = if entity_type == "Incident" {
        "incident"
    } else {
        "case-incident"
    };
    json!({
        "id": format!("{n:08}-internal"), "standard_id": format!("{prefix}--{n:08}"),
        "entity_type": entity_type, "name": format!("Intrusion {n}"), "description": "beaconing",
        "severity": severity, "revoked": false, "created_at": iso(0), "updated_at": iso(updated),
        "status": {"template": {"name": "NEW"}}, "objectMarking": [{"definition": "TLP:AMBER"}],
    })
}

fn indicator(n: usize, updated: i64) -> Value {
    json!({
        "id": format!("{n:08}-ind"), "standard_id": format!("indicator--{n:08}"),
        "entity_type": "Indicator", "name": format!("ip {n}"),
        "pattern": format!("[ipv4-addr:value = '10.1.{}.{}']", n / 250, n % 250),
        "pattern_type": "stix", "valid_from": iso(0), "valid_until": "2099-01-01T00:00:00.000Z",
        "x_opencti_score": 70, "confidence": 40, "revoked": false,
        "created_at": iso(0), "updated_at": iso(updated), "objectMarking": [],
    })
}

async fn setup(url: &str, token: &str) -> Setup {
    common::setup(
        ConnectorKind::OpenCti,
        url,
        Severity::High,
        &[],
        &[("token", token)],
    )
    .await
}

/// `n` HIGH incidents, one LOW, one with an unknown severity, 30 CRITICAL case-incidents and
/// 700 indicators (one sigma, one with a pattern Vigil cannot match, one revoked).
fn backlog(n: usize) -> Fake {
    // Many share one `updated_at`, across the page boundaries too.
    let mut incidents: Vec<Value> = (0..n)
        .map(|i| incident(i, "Incident", "high", (i / 9) as i64))
        .collect();
    incidents.push(incident(n, "Incident", "low", 1));
    incidents.push(incident(n + 1, "Incident", "sev-9", 1));
    let mut f = Fake {
        incidents,
        case_incidents: (0..30)
            .map(|i| incident(10_000 + i, "Case-Incident", "critical", 50))
            .collect(),
        indicators: (0..700).map(|i| indicator(i, (i / 100) as i64)).collect(),
        ..Fake::default()
    };
    f.indicators[3]["pattern_type"] = json!("sigma");
    f.indicators[4]["pattern"] = json!("[file:name = 'a.exe' AND file:size = 3]");
    f.indicators[5]["revoked"] = json!(true);
    f
}

/// One incident closed, one renamed, one deleted; one indicator revoked, the unmatchable one
/// fixed.
fn change_upstream(fake: &Shared) {
    let mut f = fake.lock().unwrap();
    f.incidents[7]["status"] = json!({"template": {"name": "CLOSED"}});
    f.incidents[7]["updated_at"] = json!(iso(900));
    f.incidents[8]["name"] = json!("Renamed");
    f.incidents[8]["updated_at"] = json!(iso(900));
    f.incidents.remove(9); // deleted in OpenCTI
    f.indicators[6]["revoked"] = json!(true);
    f.indicators[6]["updated_at"] = json!(iso(900));
    f.indicators[4]["pattern"] = json!("[file:name = 'a.exe']"); // fixed upstream
    f.indicators[4]["updated_at"] = json!(iso(900));
}

#[tokio::test]
async fn incidents_cases_and_indicators_sync_across_pages_then_only_what_changed() {
    let n = OPENCTI_PAGE_SIZE * 2 + 21;
    let fake: Shared = Arc::new(Mutex::new(backlog(n)));
    let setup = setup(&serve(fake.clone()).await, TOKEN).await;
    let first = cycle(&setup).await;
    assert!(!first.failed(), "{first:?}");
    assert_eq!(first.created as usize, n + 30 + 698, "{first:?}");
    assert_eq!((first.skipped, first.dead_lettered), (2, 2), "{first:?}");
    let risks = risks_of(&setup, "opencti").await;
    assert_eq!(risks.len(), n + 30, "nothing duplicated");
    let case = by_external(&risks, "case-incident--00010000");
    assert_eq!(case.title.as_str(), "[INCIDENT] Intrusion 10000");
    assert_eq!((case.impact.get(), case.tlp), (5, vigil_domain::Tlp::Amber));
    let catalogue = indicators(&setup).await;
    assert_eq!(catalogue.len(), 698);
    let revoked = catalogue
        .iter()
        .find(|i| i.value.as_str() == "10.1.0.5")
        .unwrap();
    assert!(!revoked.active, "revoked upstream: inactive");
    assert_eq!(
        revoked.confidence.map(|c| c.get()),
        Some(70),
        "the OpenCTI score"
    );
    let ids = dead_letter_ids(&setup).await;
    assert!(
        ids.contains(&"indicator--00000004".to_owned())
            && ids.contains(&format!("incident--{:08}", n + 1)),
        "{ids:?}"
    );

    let again = cycle(&setup).await;
    assert_eq!((again.created, again.updated), (0, 0), "{again:?}");
    assert!(
        again.unchanged < 150,
        "only the last timestamps are read again: {again:?}"
    );

    change_upstream(&fake);
    let third = cycle(&setup).await;
    assert!(!third.failed(), "{third:?}");
    assert_eq!(
        (third.created, third.updated, third.deleted_upstream),
        (1, 3, 1),
        "{third:?}"
    );
    let risks = risks_of(&setup, "opencti").await;
    assert_eq!(
        by_external(&risks, "incident--00000007").status,
        RiskStatus::Closed
    );
    assert_eq!(
        by_external(&risks, "incident--00000008").title.as_str(),
        "[INCIDENT] Renamed"
    );
    let gone = by_external(&risks, "incident--00000009");
    assert_eq!(
        (gone.status, gone.source_state),
        (RiskStatus::Closed, Some(SourceState::Deleted))
    );
    assert_eq!(
        dead_letter_ids(&setup).await.len(),
        1,
        "the fixed indicator's letter is cleared"
    );
}

#[tokio::test]
async fn graphql_errors_in_a_200_fail_the_cycle_and_a_wrong_token_is_asked_once() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().incidents = vec![incident(1, "Incident", "high", 1)];
    let url = serve(fake.clone()).await;

    let wrong = setup(&url, "not-the-token-9Xv").await;
    let refused = cycle(&wrong).await;
    assert!(refused.failed());
    assert_eq!(fake.lock().unwrap().requests, 1, "a refusal is not retried");
    let error = &refused.errors[0];
    assert!(
        error.contains("GraphQL error AUTH_REQUIRED") && !error.contains("You must be logged in"),
        "the code, never the server's text: {error}"
    );
    assert!(
        !error.contains("not-the-token-9Xv"),
        "no credential in errors"
    );

    let setup = setup(&url, TOKEN).await;
    fake.lock().unwrap().failures.push_back(Failure::GraphQl);
    let failed = cycle(&setup).await;
    assert!(
        failed.failed()
            && failed.errors[0].contains("GraphQL error")
            && !failed.errors[0].contains("Elasticsearch timeout"),
        "{failed:?}"
    );
    assert!(
        risks_of(&setup, "opencti").await.is_empty(),
        "no data from a failed answer"
    );
    let cursor = cursor_of(&setup).await;
    assert_eq!(cursor, None, "the cursor does not move");

    fake.lock().unwrap().failures.push_back(Failure::Garbage);
    let garbage = cycle(&setup).await;
    assert!(
        garbage.failed() && garbage.errors[0].contains("unexpected"),
        "{garbage:?}"
    );

    // Rate limited, then answered: retried after Retry-After.
    fake.lock()
        .unwrap()
        .failures
        .extend([Failure::Status(429, Some(0)), Failure::Status(502, None)]);
    let recovered = cycle(&setup).await;
    assert!(!recovered.failed(), "{recovered:?}");
    assert_eq!(recovered.created, 1);
}
