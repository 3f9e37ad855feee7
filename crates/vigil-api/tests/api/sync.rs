//! Sync connectors over HTTP: configuration, validation, and credentials that never come back.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, both, items};

const SECRET: &str = "thehive-api-key-7Qx9";

fn hive(url: &str) -> serde_json::Value {
    json!({
        "kind": "thehive", "url": url, "interval_s": 60, "threshold": "HIGH",
        "credentials": {"api_key": SECRET}, "options": {"organisation": "acme"},
    })
}

both!(
    connectors_are_configured_and_never_show_credentials,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let path = "/api/v1/connectors/hive-prod";
        let created = app
            .call(
                Method::PUT,
                path,
                Some(&admin),
                Some(hive("https://hive.example/")),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["url"], "https://hive.example");
        assert!(
            created.body.get("credentials").is_none(),
            "{:?}",
            created.body
        );
        let mut moved = hive("https://hive2.example");
        moved.as_object_mut().unwrap().remove("credentials");
        let replaced = app.call(Method::PUT, path, Some(&admin), Some(moved)).await;
        assert_eq!(replaced.status, StatusCode::OK, "{:?}", replaced.body);
        assert_eq!(replaced.body["interval_s"], 60);
        for response in [
            created,
            replaced,
            app.get(path, &admin).await,
            app.get("/api/v1/connectors", &admin).await,
            app.get("/api/v1/audit?entity_type=connector", &admin).await,
        ] {
            assert!(
                !response.body.to_string().contains(SECRET),
                "{:?}",
                response.body
            );
        }
        assert_eq!(items(&app.get("/api/v1/connectors", &admin).await).len(), 1);
        let stored = app.raw_bytes("SELECT credentials FROM connectors").await;
        assert_eq!(stored.len(), 1);
        assert!(
            !stored[0]
                .windows(SECRET.len())
                .any(|w| w == SECRET.as_bytes()),
            "sealed at rest"
        );
        let credentials = app
            .state
            .services
            .connector_credentials(
                vigil_domain::TenantId::parse(&tenant).unwrap(),
                &vigil_domain::ConnectorName::parse("hive-prod").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            credentials.get("api_key"),
            Some(SECRET),
            "the engine can open them"
        );
        assert_eq!(
            app.call(Method::DELETE, path, Some(&admin), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.get(path, &admin).await.status, StatusCode::NOT_FOUND);
    }
);

both!(
    bad_connectors_get_precise_answers,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let path = "/api/v1/connectors/hive";
        let mut no_credentials = hive("https://hive.example");
        no_credentials
            .as_object_mut()
            .unwrap()
            .remove("credentials");
        let cases = [
            (no_credentials, "credentials"),
            (
                json!({"kind": "thehive", "url": "https://h.example", "credentials": {"api_key": "k"}}),
                "options",
            ),
            (
                json!({"kind": "thehive", "url": "https://h.example", "credentials": {"token": "k"}, "options": {"organisation": "o"}}),
                "credentials",
            ),
            (json!({"kind": "misp", "url": "https://h.example"}), "kind"),
            (
                json!({"kind": "opencti", "url": "https://u:p@h.example", "credentials": {"token": "k"}}),
                "url",
            ),
            (
                json!({"kind": "opencti", "url": "https://h.example", "interval_s": 1, "credentials": {"token": "k"}}),
                "interval_s",
            ),
            (
                json!({"kind": "opencti", "url": "https://h.example", "threshold": "SEVERE", "credentials": {"token": "k"}}),
                "threshold",
            ),
        ];
        for (body, field) in cases {
            let refused = app
                .call(Method::PUT, path, Some(&admin), Some(body.clone()))
                .await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {:?}",
                refused.body
            );
            assert_eq!(
                refused.body["errors"][0]["field"], field,
                "{body}: {:?}",
                refused.body
            );
        }
        app.call(
            Method::PUT,
            path,
            Some(&admin),
            Some(hive("https://h.example")),
        )
        .await;
        let twin = app
            .call(
                Method::PUT,
                "/api/v1/connectors/hive-two",
                Some(&admin),
                Some(hive("https://h2.example")),
            )
            .await;
        assert_eq!(
            twin.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "one per kind: {:?}",
            twin.body
        );
        assert_eq!(twin.body["errors"][0]["field"], "kind");
        app.call(Method::DELETE, path, Some(&admin), None).await;
        let bad_name = app
            .call(
                Method::PUT,
                "/api/v1/connectors/Bad%20Name",
                Some(&admin),
                Some(hive("https://h.example")),
            )
            .await;
        assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
        let analyst = app.key_in(&tenant, "analyst").await;
        let forbidden = app
            .call(
                Method::PUT,
                path,
                Some(&analyst),
                Some(hive("https://h.example")),
            )
            .await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.get("/api/v1/connectors", &analyst).await.status,
            StatusCode::FORBIDDEN
        );
        let (_, other) = app.tenant("globex").await;
        app.call(
            Method::PUT,
            path,
            Some(&admin),
            Some(hive("https://h.example")),
        )
        .await;
        assert_eq!(
            app.get(path, &other).await.status,
            StatusCode::NOT_FOUND,
            "tenants never see each other's"
        );
        assert!(items(&app.get("/api/v1/connectors", &other).await).is_empty());
    }
);

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

both!(a_connector_runs_on_demand, |app: TestApp| async move {
    let (_, admin) = app.tenant("acme").await;
    let url = one_case_hive().await;
    let put = app
        .call(
            Method::PUT,
            "/api/v1/connectors/hive",
            Some(&admin),
            Some(hive(&url)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    let report = app.post("/api/v1/sync/hive/run", &admin, json!({})).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    assert_eq!(
        (
            report.body["created"].clone(),
            report.body["errors"].clone()
        ),
        (json!(1), json!([]))
    );
    let risks = app.get("/api/v1/risks?source=thehive", &admin).await;
    let risk = &items(&risks)[0];
    assert_eq!(risk["title"], "[INCIDENT] Ransomware note");
    assert_eq!(
        (risk["external_id"].clone(), risk["source_state"].clone()),
        (json!("~7"), json!("present"))
    );
    let again = app.post("/api/v1/sync/hive/run", &admin, json!({})).await;
    assert_eq!(
        (
            again.body["created"].clone(),
            again.body["unchanged"].clone()
        ),
        (json!(0), json!(1))
    );
    assert_eq!(
        app.post("/api/v1/sync/nope/run", &admin, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
});

both!(
    dead_letters_are_listed_and_replayable_per_tenant,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let url = one_case_hive().await;
        app.call(
            Method::PUT,
            "/api/v1/connectors/hive",
            Some(&admin),
            Some(hive(&url)),
        )
        .await;
        let tenant_id = vigil_domain::TenantId::parse(&tenant).unwrap();
        let payload = json!({"_id": "~8", "title": "Kept", "severity": 4, "stage": "New", "tlp": 2, "_createdAt": 1});
        let letter = vigil_domain::DeadLetter::new(
            tenant_id,
            vigil_domain::ConnectorName::parse("hive").unwrap(),
            "~8".into(),
            "store unavailable",
            payload.to_string(),
            vigil_domain::Timestamp::now(),
        );
        let letter = app
            .state
            .services
            .store()
            .record_dead_letter(tenant_id, letter)
            .await
            .unwrap();
        let listed = app.get("/api/v1/sync/dead-letters", &admin).await;
        assert_eq!(items(&listed).len(), 1);
        assert_eq!(items(&listed)[0]["attempts"], 1);
        let (_, other) = app.tenant("globex").await;
        assert!(items(&app.get("/api/v1/sync/dead-letters", &other).await).is_empty());
        let path = format!("/api/v1/sync/dead-letters/{}/replay", letter.id);
        assert_eq!(
            app.post(&path, &other, json!({})).await.status,
            StatusCode::NOT_FOUND
        );
        let replayed = app.post(&path, &admin, json!({})).await;
        assert_eq!(replayed.status, StatusCode::OK, "{:?}", replayed.body);
        assert_eq!(replayed.body["outcome"], "created");
        assert!(items(&app.get("/api/v1/sync/dead-letters", &admin).await).is_empty());
        assert_eq!(
            app.post(&path, &admin, json!({})).await.status,
            StatusCode::NOT_FOUND
        );
    }
);
