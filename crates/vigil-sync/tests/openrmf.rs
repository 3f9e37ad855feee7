//! The OpenRMF connector against a local server that speaks OpenRMF's read and report APIs
//! (camelCase JSON, whole lists, no paging) behind a Keycloak-style token endpoint
//! (password grant, form-encoded).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{Setup, by_external, cycle, risks_of};
use serde_json::{Value, json};
use vigil_domain::{ConnectorKind, RiskStatus, Severity, SourceState};

const PASSWORD: &str = "rmf-pass-Qz71";

#[derive(Default)]
struct Fake {
    /// System id → its report rows.
    systems: Vec<(String, Vec<Value>)>,
    /// Tokens handed out; only the newest is accepted.
    issued: u64,
    logins: u64,
    requests: u64,
    /// At this request count the token in use expires.
    expire_at: Option<u64>,
}

type Shared = Arc<Mutex<Fake>>;

/// An `application/x-www-form-urlencoded` body whose values need no decoding.
fn form(body: &str) -> HashMap<String, String> {
    assert!(!body.contains('%') && !body.contains('+'), "{body}");
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn token(State(fake): State<Shared>, headers: HeaderMap, body: String) -> Response {
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let form = form(&body);
    let mut fake = fake.lock().unwrap();
    fake.logins += 1;
    assert_eq!(form.get("grant_type").map(String::as_str), Some("password"));
    assert_eq!(form.get("client_id").map(String::as_str), Some("openrmf"));
    if form.get("username").map(String::as_str) != Some("sync-reader")
        || form.get("password").map(String::as_str) != Some(PASSWORD)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": "invalid_grant", "error_description": "Invalid user credentials"}),
            ),
        )
            .into_response();
    }
    fake.issued += 1;
    Json(json!({"access_token": format!("jwt-{}", fake.issued), "expires_in": 300, "token_type": "Bearer"}))
        .into_response()
}

/// What OpenRMF answers to a token it does not accept.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "The JWT validation with the server did not return correctly",
    )
        .into_response()
}

fn authorized(fake: &mut Fake, headers: &HeaderMap) -> bool {
    fake.requests += 1;
    if fake.expire_at == Some(fake.requests) {
        fake.expire_at = None;
        fake.issued += 1;
    }
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer jwt-{}", fake.issued))
}

async fn systems(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    let mut fake = fake.lock().unwrap();
    if !authorized(&mut fake, &headers) {
        return unauthorized();
    }
    let list: Vec<Value> = fake
        .systems
        .iter()
        .map(|(id, _)| json!({"internalIdString": id, "title": format!("System {id}"), "numberOfChecklists": 1}))
        .collect();
    Json(list).into_response()
}

async fn report(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = fake.lock().unwrap();
    if !authorized(&mut fake, &headers) {
        return unauthorized();
    }
    match fake.systems.iter().find(|(system, _)| *system == id) {
        Some((_, rows)) => Json(rows.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve(fake: Shared) -> String {
    common::serve(
        axum::Router::new()
            .route(
                "/auth/realms/openrmf/protocol/openid-connect/token",
                axum::routing::post(token),
            )
            .route("/api/read/artifact/systems", axum::routing::get(systems))
            .route("/api/report/system/{id}", axum::routing::get(report))
            .with_state(fake),
    )
    .await
}

fn row(artifact: &str, vulnid: &str, severity: &str, status: &str) -> Value {
    json!({
        "artifactId": artifact, "systemGroupId": "sys", "vulnid": vulnid, "hostname": "web01",
        "checklistType": "Apache 2.4", "ruleTitle": format!("Rule {vulnid}"), "severity": severity,
        "severityCategory": 3, "status": status, "details": "found in httpd.conf",
        "fixText": "set ServerTokens Prod", "severityOverride": "", "comments": "",
    })
}

async fn setup(url: &str, password: &str) -> Setup {
    let token_url = format!("{url}/auth/realms/openrmf/protocol/openid-connect/token");
    common::setup(
        ConnectorKind::OpenRmf,
        url,
        Severity::Medium,
        &[],
        &[
            ("token_url", &token_url),
            ("client_id", "openrmf"),
            ("username", "sync-reader"),
            ("password", password),
        ],
    )
    .await
}

/// One system with a CAT I, a passed check, a CAT III raised to CAT I, a CAT III and a row
/// with no known severity; another with 1,200 open CAT II.
fn two_systems() -> Vec<(String, Vec<Value>)> {
    let mut overridden = row("a1", "V-3", "low", "Open");
    overridden["severityOverride"] = json!("high");
    let many: Vec<Value> = (0..1_200)
        .map(|i| row("a2", &format!("V-{}", 1000 + i), "medium", "Open"))
        .collect();
    vec![
        (
            "64f0c0ffee".into(),
            vec![
                row("a1", "V-1", "high", "Open"),
                row("a1", "V-2", "medium", "NotAFinding"), // passed: never created
                overridden,
                row("a1", "V-4", "low", "Open"), // CAT III, below MEDIUM: skipped
                row("a1", "V-5", "urgent", "Open"), // not a severity: dead letter
            ],
        ),
        ("64f0beef".into(), many),
    ]
}

#[tokio::test]
async fn open_vulnerabilities_become_risks_and_the_diff_by_key_closes_the_rest() {
    let fake: Shared = Arc::new(Mutex::new(Fake {
        systems: two_systems(),
        ..Fake::default()
    }));
    let setup = setup(&serve(fake.clone()).await, PASSWORD).await;
    let first = cycle(&setup).await;
    assert!(!first.failed(), "{first:?}");
    assert_eq!(first.created, 1_202, "{first:?}");
    assert_eq!((first.skipped, first.dead_lettered), (2, 1), "{first:?}");
    assert_eq!(fake.lock().unwrap().logins, 1, "one token per cycle");
    let risks = risks_of(&setup, "openrmf").await;
    assert_eq!(risks.len(), 1_202);
    let cat1 = by_external(&risks, "a1:V-1");
    assert_eq!(
        cat1.title.as_str(),
        "[VULNERABILITY] V-1 on web01: Rule V-1"
    );
    assert_eq!(cat1.impact.get(), 4);
    assert!(cat1.tags.iter().any(|t| t == "CAT I"), "{:?}", cat1.tags);
    let raised = by_external(&risks, "a1:V-3");
    assert!(
        raised.tags.iter().any(|t| t == "CAT I"),
        "the override wins"
    );

    let again = cycle(&setup).await;
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 1_202),
        "{again:?}"
    );

    {
        let mut f = fake.lock().unwrap();
        f.systems[0].1[0]["status"] = json!("NotAFinding"); // fixed
        f.systems[1].1.truncate(1_000); // 200 rows gone: checklist removed
        // The token expires at the first report request: refused once, a new login follows.
        f.expire_at = Some(f.requests + 2);
    }
    let logins = fake.lock().unwrap().logins;
    let third = cycle(&setup).await;
    assert!(!third.failed(), "{third:?}");
    assert_eq!(
        fake.lock().unwrap().logins,
        logins + 2,
        "one login more after the 401"
    );
    assert_eq!(
        (third.updated, third.deleted_upstream),
        (1, 200),
        "{third:?}"
    );
    let risks = risks_of(&setup, "openrmf").await;
    let fixed = by_external(&risks, "a1:V-1");
    assert_eq!(
        (fixed.status, fixed.source_state),
        (RiskStatus::Closed, Some(SourceState::Present))
    );
    let removed = by_external(&risks, "a2:V-2100");
    assert_eq!(
        (removed.status, removed.source_state),
        (RiskStatus::Closed, Some(SourceState::Deleted))
    );
    assert_eq!(risks.len(), 1_202, "never hard-deleted");
}

#[tokio::test]
async fn wrong_credentials_are_refused_once_and_never_echoed() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().systems = vec![("s1".into(), vec![row("a", "V-1", "high", "Open")])];
    let url = serve(fake.clone()).await;
    let wrong = setup(&url, "wrong-pass-Lk02").await;
    let report = cycle(&wrong).await;
    assert!(report.failed());
    let counts = {
        let f = fake.lock().unwrap();
        (f.logins, f.requests)
    };
    assert_eq!(counts, (1, 0), "no retry storm");
    let error = &report.errors[0];
    assert!(
        error.contains("401 (Unauthorized)") || error.contains("401: Unauthorized"),
        "{error}"
    );
    assert!(
        !error.contains("invalid_grant"),
        "no text of the server's: {error}"
    );
    assert!(!error.contains("wrong-pass-Lk02"), "{error}");
    assert!(risks_of(&wrong, "openrmf").await.is_empty());

    // Keys are the checklist and the rule: a system listed under another id keeps its risks.
    let setup = setup(&url, PASSWORD).await;
    assert_eq!(cycle(&setup).await.created, 1);
    fake.lock().unwrap().systems[0].0 = "s2".into();
    let moved = cycle(&setup).await;
    assert_eq!(
        (moved.deleted_upstream, moved.unchanged),
        (0, 1),
        "{moved:?}"
    );
}

#[tokio::test]
async fn a_system_id_that_would_leave_the_report_path_fails_the_cycle() {
    let fake: Shared = Arc::default();
    fake.lock().unwrap().systems = vec![("../admin".into(), vec![row("a", "V-1", "high", "Open")])];
    let url = serve(fake.clone()).await;
    let setup = setup(&url, PASSWORD).await;
    let report = cycle(&setup).await;
    assert!(report.failed(), "{report:?}");
    let error = &report.errors[0];
    assert!(
        error.contains("answered something unexpected") && error.contains("not an id"),
        "{error}"
    );
    assert!(risks_of(&setup, "openrmf").await.is_empty());
}
