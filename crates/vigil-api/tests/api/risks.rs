//! The risk register over HTTP: create, read, list with filters and cursors, update, delete.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, both, ids, items};

both!(
    create_returns_score_and_timestamps,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let risk = app.risk(&key, json!({"title": "Exposed RDP", "impact": 4, "probability": 3, "tags": ["net"], "tlp": "tlp:red"})).await;
        assert_eq!(risk["score"], 12);
        assert_eq!(risk["status"], "open");
        assert_eq!(risk["tlp"], "RED");
        assert!(risk["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(risk["created_at"], risk["updated_at"]);
        let read = app
            .get(
                &format!("/api/v1/risks/{}", risk["id"].as_str().unwrap()),
                &key,
            )
            .await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body, risk);
    }
);

both!(
    invalid_fields_are_422_naming_the_field,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let cases = [
            (
                json!({"title": "x", "impact": 6, "probability": 1}),
                "impact",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 0}),
                "probability",
            ),
            (
                json!({"title": "  ", "impact": 1, "probability": 1}),
                "title",
            ),
            (json!({"impact": 1, "probability": 1}), "title"),
            (
                json!({"title": "x", "impact": "high", "probability": 1}),
                "impact",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 1, "status": "done"}),
                "status",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 1, "tlp": "PURPLE"}),
                "tlp",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 1, "external_id": "42"}),
                "external_id",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 1, "tags": [""]}),
                "tags",
            ),
            (
                json!({"title": "x", "impact": 1, "probability": 1, "tenant_id": "someone-else"}),
                "tenant_id",
            ),
        ];
        for (body, field) in cases {
            let response = app.post("/api/v1/risks", &key, body.clone()).await;
            assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(response.headers["content-type"], "application/problem+json");
            assert_eq!(
                response.body["errors"][0]["field"], field,
                "{body} -> {}",
                response.body
            );
        }
        let listed = app.get("/api/v1/risks", &key).await;
        assert!(items(&listed).is_empty(), "nothing invalid was stored");
    }
);

both!(
    duplicate_external_id_is_a_conflict,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let body = json!({"title": "Case 7", "impact": 2, "probability": 2, "source": "jira", "external_id": "~7"});
        app.risk(&key, body.clone()).await;
        let again = app.post("/api/v1/risks", &key, body).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
        let other_source = json!({"title": "Case 7", "impact": 2, "probability": 2, "source": "servicenow", "external_id": "~7"});
        app.risk(&key, other_source).await;
    }
);

both!(synced_sources_cannot_be_forged, |app: TestApp| async move {
    let (_, key) = app.tenant("acme").await;
    for source in ["thehive", "opencti", "openrmf", "taxii", "TheHive"] {
        let risk = json!({"title": "Forged", "impact": 2, "probability": 2, "source": source, "external_id": "~7"});
        let refused = app.post("/api/v1/risks", &key, risk).await;
        assert_eq!(
            (refused.status, refused.body["errors"][0]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("source")),
            "{source}: {:?}",
            refused.body
        );
    }
    let finding = json!({"title": "Forged", "severity": "high", "source": "opencti"});
    let refused = app.post("/api/v1/findings", &key, finding).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    let indicator = json!({"type": "ipv4", "value": "192.0.2.5", "source": "taxii"});
    let refused = app.post("/api/v1/indicators", &key, indicator).await;
    assert_eq!(
        refused.body["errors"][0]["field"], "source",
        "{:?}",
        refused.body
    );
    let csv = "type,value,source\nipv4,192.0.2.6,taxii\nipv4,192.0.2.7,feed-a\n";
    let import = app
        .send("/api/v1/indicators/import", &key, "text/csv", csv)
        .await;
    assert_eq!(import.status, StatusCode::OK, "{:?}", import.body);
    assert_eq!(
        (
            import.body["accepted"].clone(),
            import.body["rejected"][0]["index"].clone()
        ),
        (json!(1), json!(2)),
        "{:?}",
        import.body
    );
    let titled = json!({"title": "Invoice\u{202e}fdp.exe", "impact": 2, "probability": 2});
    let hidden = app.post("/api/v1/risks", &key, titled).await;
    assert_eq!(
        (hidden.status, hidden.body["errors"][0]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("title"))
    );
    let tagged = json!({"title": "ok", "impact": 2, "probability": 2, "tags": ["a\u{200b}b"]});
    let hidden = app.post("/api/v1/risks", &key, tagged).await;
    assert_eq!(
        hidden.body["errors"][0]["field"], "tags",
        "{:?}",
        hidden.body
    );
});

both!(list_filters_and_pages, |app: TestApp| async move {
    let (_, key) = app.tenant("acme").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let tags = if i % 2 == 0 {
            json!(["pci"])
        } else {
            json!([])
        };
        let body = json!({"title": format!("Risk {i}"), "impact": i + 1, "probability": 4, "tags": tags, "source": "manual",
                          "description": if i == 3 { "Old Fortinet appliance" } else { "n/a" }});
        created.push(
            app.risk(&key, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.call(
        Method::PATCH,
        &format!("/api/v1/risks/{}", created[1]),
        Some(&key),
        Some(json!({"status": "accepted"})),
    )
    .await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(ids(&app.get("/api/v1/risks", &key).await), newest_first);
    assert_eq!(
        ids(&app.get("/api/v1/risks?status=accepted", &key).await),
        [created[1].clone()]
    );
    assert_eq!(
        ids(&app.get("/api/v1/risks?min_score=16", &key).await),
        [created[4].clone(), created[3].clone()]
    );
    assert_eq!(
        ids(&app.get("/api/v1/risks?tag=pci", &key).await),
        [created[4].clone(), created[2].clone(), created[0].clone()]
    );
    assert_eq!(
        ids(&app.get("/api/v1/risks?q=FORTINET", &key).await),
        [created[3].clone()]
    );
    assert_eq!(
        ids(&app.get("/api/v1/risks?source=thehive", &key).await),
        Vec::<String>::new()
    );

    let first = app.get("/api/v1/risks?limit=2", &key).await;
    assert_eq!(ids(&first), newest_first[..2]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/risks?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(ids(&second), newest_first[2..4]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = app
        .get(&format!("/api/v1/risks?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(ids(&last), newest_first[4..]);
    assert!(last.body["next_cursor"].is_null());

    let whole = app.get("/api/v1/risks?limit=500", &key).await;
    assert_eq!(items(&whole).len(), 5);
    let long_q = format!("q={}", "x".repeat(201));
    for bad in [
        long_q.as_str(),
        "limit=-1",
        "limit=0",
        "limit=501",
        "cursor=page2",
        "min_score=26",
        "status=done",
        "nope=1",
    ] {
        let response = app.get(&format!("/api/v1/risks?{bad}"), &key).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {:?}",
            response.body
        );
    }
});

both!(
    patch_changes_named_fields_and_null_clears,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let risk = app.risk(&key, json!({"title": "t", "impact": 2, "probability": 2, "owner": "Bea", "description": "d"})).await;
        let path = format!("/api/v1/risks/{}", risk["id"].as_str().unwrap());
        let patched = app
            .call(
                Method::PATCH,
                &path,
                Some(&key),
                Some(json!({"impact": 5, "owner": null})),
            )
            .await;
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        assert_eq!(patched.body["score"], 10);
        assert!(patched.body["owner"].is_null());
        assert_eq!(patched.body["description"], "d");
        let empty = app
            .call(Method::PATCH, &path, Some(&key), Some(json!({})))
            .await;
        assert_eq!(
            (empty.status, empty.body.clone()),
            (StatusCode::OK, patched.body.clone()),
            "nothing to change answers the risk as it is"
        );
        let bad = app
            .call(
                Method::PATCH,
                &path,
                Some(&key),
                Some(json!({"status": "gone"})),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            app.get(&path, &key).await.body,
            patched.body,
            "a refused patch changes nothing"
        );
    }
);

both!(
    delete_removes_and_unknown_ids_are_404,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let risk = app
            .risk(&key, json!({"title": "t", "impact": 2, "probability": 2}))
            .await;
        let path = format!("/api/v1/risks/{}", risk["id"].as_str().unwrap());
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&key), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.get(&path, &key).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&key), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get("/api/v1/risks/not-a-uuid", &key).await.status,
            StatusCode::NOT_FOUND
        );
    }
);

both!(viewer_reads_but_cannot_write, |app: TestApp| async move {
    let (tenant, key) = app.tenant("acme").await;
    let risk = app
        .risk(&key, json!({"title": "t", "impact": 2, "probability": 2}))
        .await;
    let viewer = app.key_in(&tenant, "viewer").await;
    assert_eq!(
        app.get("/api/v1/risks", &viewer).await.status,
        StatusCode::OK
    );
    let denied = app
        .post(
            "/api/v1/risks",
            &viewer,
            json!({"title": "t", "impact": 1, "probability": 1}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let garbage = app
        .post("/api/v1/risks", &viewer, json!({"title": 5}))
        .await;
    assert_eq!(
        garbage.status,
        StatusCode::FORBIDDEN,
        "the role is checked before the body"
    );
    let path = format!("/api/v1/risks/{}", risk["id"].as_str().unwrap());
    assert_eq!(
        app.call(Method::DELETE, &path, Some(&viewer), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ingest = app.key_in(&tenant, "ingest").await;
    assert_eq!(
        app.get("/api/v1/risks", &ingest).await.status,
        StatusCode::FORBIDDEN,
        "ingest reads nothing"
    );
    assert_eq!(
        app.get("/api/v1/risks", &app.admin_key).await.status,
        StatusCode::FORBIDDEN,
        "platform admins read no tenant data"
    );
});
