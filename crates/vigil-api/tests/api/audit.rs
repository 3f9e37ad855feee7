//! The audit trail over HTTP: every mutation leaves an event with actor, before/after and
//! reason; verification names the event that was edited, deleted or moved.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::support::{TestApp, both, items};

both!(
    mutations_are_audited_with_actor_and_reason,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let created = app
            .request(
                Request::post("/api/v1/risks")
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .header("x-audit-reason", "quarterly review")
                    .body(Body::from(
                        json!({"title": "t", "impact": 2, "probability": 3}).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/risks/{id}");
        app.call(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"status": "mitigating"})),
        )
        .await;
        app.call(Method::DELETE, &path, Some(&key), None).await;

        let events = app
            .get(
                &format!("/api/v1/audit?entity_type=risk&entity_id={id}"),
                &key,
            )
            .await;
        let events = items(&events);
        let actions: Vec<&str> = events
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["risk.delete", "risk.update", "risk.create"]);
        let create = &events[2];
        assert!(create["actor"].as_str().unwrap().starts_with("apikey:"));
        assert_eq!(create["reason"], "quarterly review");
        assert!(create["before"].is_null());
        assert_eq!(create["after"]["score"], 6);
        assert_eq!(events[1]["before"]["status"], "open");
        assert_eq!(events[1]["after"]["status"], "mitigating");
        assert!(events[0]["after"].is_null());
        assert_eq!(
            events[0]["prev_hash"], events[1]["hash"],
            "each event links to the one before"
        );

        let page = app.get("/api/v1/audit?limit=2", &key).await;
        assert_eq!(items(&page).len(), 2);
        let cursor = page.body["next_cursor"].as_str().unwrap();
        let rest = app
            .get(&format!("/api/v1/audit?limit=500&cursor={cursor}"), &key)
            .await;
        assert!(
            items(&rest)
                .iter()
                .all(|e| e["seq"].as_i64() < page.body["items"][1]["seq"].as_i64())
        );
    }
);

/// A tenant with five audit events, and that tenant's admin key.
async fn chain_of_five(app: &TestApp) -> (String, String) {
    let (tenant, key) = app.tenant("acme").await;
    for i in 0..4 {
        app.risk(
            &key,
            json!({"title": format!("r{i}"), "impact": 1, "probability": 1}),
        )
        .await;
    }
    let verify = app.get("/api/v1/audit/verify", &key).await;
    assert_eq!(verify.body["ok"], true, "{:?}", verify.body);
    assert_eq!(verify.body["n_events"], 5);
    (tenant, key)
}

both!(verify_names_an_edited_event, |app: TestApp| async move {
    let (tenant, key) = chain_of_five(&app).await;
    app.raw_sql(&format!(
        "UPDATE audit_events SET actor = 'someone-else' WHERE tenant_id = '{tenant}' AND seq = 3"
    ))
    .await;
    let verify = app.get("/api/v1/audit/verify", &key).await;
    assert_eq!(verify.body["ok"], false);
    let breaks = verify.body["breaks"].as_array().unwrap();
    assert_eq!(
        breaks.len(),
        1,
        "only the edited event is reported: {breaks:?}"
    );
    assert_eq!(breaks[0]["kind"], "edited");
    assert_eq!(breaks[0]["seq"], 3);
    // The named event is the one stored at seq 3, read back independently.
    let events = app.get("/api/v1/audit?limit=500", &key).await;
    let third = items(&events)
        .iter()
        .find(|event| event["seq"] == 3)
        .unwrap();
    assert_eq!(breaks[0]["event_id"], third["id"]);
    assert_eq!(third["actor"], "someone-else");
});

both!(verify_names_a_deleted_event, |app: TestApp| async move {
    let (tenant, key) = chain_of_five(&app).await;
    app.raw_sql(&format!(
        "DELETE FROM audit_events WHERE tenant_id = '{tenant}' AND seq = 2"
    ))
    .await;
    let verify = app.get("/api/v1/audit/verify", &key).await;
    assert_eq!(verify.body["ok"], false);
    assert_eq!(verify.body["breaks"][0]["kind"], "missing");
    assert_eq!(
        verify.body["breaks"][0]["seq"], 3,
        "the event after the gap is named"
    );
});

both!(verify_names_reordered_events, |app: TestApp| async move {
    let (tenant, key) = chain_of_five(&app).await;
    let swap = |from: i64, to: i64| {
        format!("UPDATE audit_events SET seq = {to} WHERE tenant_id = '{tenant}' AND seq = {from}")
    };
    app.raw_sql(&swap(2, 100)).await;
    app.raw_sql(&swap(3, 2)).await;
    app.raw_sql(&swap(100, 3)).await;
    let verify = app.get("/api/v1/audit/verify", &key).await;
    assert_eq!(verify.body["ok"], false);
    let kinds: Vec<&str> = verify.body["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|kind| *kind == "reordered"),
        "{kinds:?}"
    );
});

both!(verify_notices_a_deleted_tail, |app: TestApp| async move {
    let (tenant, key) = chain_of_five(&app).await;
    app.raw_sql(&format!(
        "DELETE FROM audit_events WHERE tenant_id = '{tenant}' AND seq = 5"
    ))
    .await;
    let verify = app.get("/api/v1/audit/verify", &key).await;
    assert_eq!(verify.body["ok"], false);
    assert_eq!(verify.body["breaks"][0]["kind"], "truncated");
    let status = app.get("/api/v1/audit", &key).await.status;
    assert_eq!(status, StatusCode::OK);
});

both!(
    every_mutation_records_the_stated_reason,
    |app: TestApp| async move {
        let (_, admin) = app.tenant("acme").await;
        let created = app
            .post(
                "/api/v1/api-keys",
                &admin,
                json!({"name": "bot", "role": "viewer"}),
            )
            .await;
        let id = created.body["id"].as_str().unwrap();
        let revoke = Request::delete(format!("/api/v1/api-keys/{id}"))
            .header("authorization", format!("Bearer {admin}"))
            .header("x-audit-reason", "key pasted in a ticket")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.request(revoke).await.status, StatusCode::OK);
        let events = app
            .get(
                &format!("/api/v1/audit?entity_type=api_key&entity_id={id}"),
                &admin,
            )
            .await;
        let events = items(&events);
        assert_eq!(events[0]["action"], "api_key.revoke");
        assert_eq!(events[0]["reason"], "key pasted in a ticket");
        assert!(
            events[1]["reason"].is_null(),
            "no reason stated, none recorded"
        );
    }
);

both!(
    readers_cannot_read_through_the_trail_what_they_cannot_read_directly,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let user = json!({"email": "ana@acme.example", "password": "correct horse battery", "role": "analyst"});
        assert_eq!(
            app.post("/api/v1/users", &admin, user).await.status,
            StatusCode::CREATED
        );
        let connector =
            json!({"kind": "opencti", "url": "https://cti.example", "credentials": {"token": "t"}});
        app.call(
            Method::PUT,
            "/api/v1/connectors/cti",
            Some(&admin),
            Some(connector),
        )
        .await;
        app.risk(
            &admin,
            json!({"title": "Visible", "impact": 1, "probability": 1}),
        )
        .await;
        let types = |response: &crate::support::Response| -> Vec<String> {
            items(response)
                .iter()
                .map(|e| e["entity_type"].as_str().unwrap().to_owned())
                .collect()
        };
        let everything = types(&app.get("/api/v1/audit?limit=500", &admin).await);
        for kind in ["api_key", "user", "connector", "risk"] {
            assert!(
                everything.iter().any(|t| t == kind),
                "the admin sees {kind}: {everything:?}"
            );
        }
        for role in ["viewer", "analyst"] {
            let reader = app.key_in(&tenant, role).await;
            assert_eq!(
                app.get("/api/v1/users", &reader).await.status,
                StatusCode::FORBIDDEN
            );
            let seen = types(&app.get("/api/v1/audit?limit=500", &reader).await);
            assert_eq!(seen, ["risk"], "{role} sees only data events");
            for hidden in ["user", "api_key", "session", "connector", "tenant"] {
                let path = format!("/api/v1/audit?entity_type={hidden}");
                assert!(
                    items(&app.get(&path, &reader).await).is_empty(),
                    "{role}: {hidden}"
                );
            }
        }
        let listed = app.get("/api/v1/audit?limit=500", &admin).await;
        assert!(!listed.body.to_string().contains("correct horse battery"));
    }
);
