//! The routes that reach the engine, through the real router with the engine wired as
//! `vigil serve` wires it: run now, status, dead letters and their replay, per tenant.

mod common;

use axum::http::{Method, StatusCode};
use common::edge::Edge;
use serde_json::{Value, json};

fn hive(url: &str) -> Value {
    json!({
        "kind": "thehive", "url": url, "interval_s": 60, "threshold": "HIGH",
        "credentials": {"api_key": "edge-key-4Rt"}, "options": {"organisation": "acme"},
    })
}

/// A TheHive that lists one case, whatever it is asked.
async fn one_case_hive() -> String {
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::post(|| async {
            axum::Json(json!([{
                "_id": "~7", "title": "Ransomware note", "severity": 4, "stage": "New", "tlp": 2,
                "_createdAt": 1_700_000_000_000_i64,
            }]))
        }),
    );
    common::serve(app).await
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("a list")
}

#[tokio::test]
async fn a_connector_runs_on_demand_even_when_disabled() {
    let edge = Edge::new().await;
    let (_, admin) = edge.tenant("acme").await;
    let mut disabled = hive(&one_case_hive().await);
    disabled["enabled"] = json!(false);
    let (status, put) = edge
        .call(
            Method::PUT,
            "/api/v1/connectors/hive",
            &admin,
            Some(disabled),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{put:?}");
    let (status, report) = edge.post("/api/v1/sync/hive/run", &admin).await;
    assert_eq!(status, StatusCode::OK, "{report:?}");
    assert_eq!(
        (report["created"].clone(), report["errors"].clone()),
        (json!(1), json!([]))
    );
    let (_, risks) = edge.get("/api/v1/risks?source=thehive", &admin).await;
    let risk = &items(&risks)[0];
    assert_eq!(risk["title"], "[INCIDENT] Ransomware note");
    assert_eq!(
        (risk["external_id"].clone(), risk["source_state"].clone()),
        (json!("~7"), json!("present"))
    );
    let (_, again) = edge.post("/api/v1/sync/hive/run", &admin).await;
    assert_eq!(
        (again["created"].clone(), again["unchanged"].clone()),
        (json!(0), json!(1))
    );
    let (status, _) = edge.post("/api/v1/sync/nope/run", &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, other) = edge.tenant("globex").await;
    let (status, _) = edge.post("/api/v1/sync/hive/run", &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's connector");
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayable_per_tenant() {
    let edge = Edge::new().await;
    let (tenant, admin) = edge.tenant("acme").await;
    let url = one_case_hive().await;
    edge.call(
        Method::PUT,
        "/api/v1/connectors/hive",
        &admin,
        Some(hive(&url)),
    )
    .await;
    let tenant_id = vigil_domain::TenantId::parse(&tenant).unwrap();
    let payload = json!({"_id": "~8", "title": "Kept", "severity": 4, "stage": "New", "tlp": 2, "_createdAt": 1});
    let letter = edge
        .services
        .record_dead_letter(
            &vigil_service::Principal::system_in(tenant_id),
            &vigil_domain::ConnectorName::parse("hive").unwrap(),
            "~8".into(),
            "store unavailable",
            payload.to_string(),
        )
        .await
        .unwrap();
    let (_, listed) = edge.get("/api/v1/sync/dead-letters", &admin).await;
    assert_eq!(items(&listed).len(), 1);
    assert_eq!(items(&listed)[0]["attempts"], 1);
    let (_, other) = edge.tenant("globex").await;
    let (_, theirs) = edge.get("/api/v1/sync/dead-letters", &other).await;
    assert!(items(&theirs).is_empty());
    let path = format!("/api/v1/sync/dead-letters/{}/replay", letter.id);
    assert_eq!(edge.post(&path, &other).await.0, StatusCode::NOT_FOUND);
    let (status, replayed) = edge.post(&path, &admin).await;
    assert_eq!(status, StatusCode::OK, "{replayed:?}");
    assert_eq!(replayed["outcome"], "created");
    let (_, left) = edge.get("/api/v1/sync/dead-letters", &admin).await;
    assert!(items(&left).is_empty());
    assert_eq!(edge.post(&path, &admin).await.0, StatusCode::NOT_FOUND);
}
