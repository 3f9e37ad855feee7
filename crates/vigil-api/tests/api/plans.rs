//! Plans over HTTP: counts refused past their limit (403), daily quotas refused until the
//! next UTC day (429), a trial past its end leaves the tenant read-only, usage readable by the
//! tenant and the platform, and no tenant sees another's.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, both};

async fn set_plan(app: &TestApp, tenant: &str, plan: Value) {
    let path = format!("/api/v1/tenants/{tenant}/plan");
    let set = app
        .call(Method::PUT, &path, Some(&app.admin_key), Some(plan))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
}

fn events(n: usize) -> Value {
    let one = json!({"client_id": "c-1", "type": "dns", "timestamp": "2026-11-23T10:00:00Z",
        "properties": {"dns.question.name": "quota.example"}});
    Value::Array(vec![one; n])
}

both!(
    a_plan_limits_what_a_tenant_keeps,
    |app: TestApp| async move {
        let (id, key) = app.tenant("acme").await;
        set_plan(&app, &id, json!({"api_keys_max": 2, "users_max": 1})).await;
        let path = "/api/v1/api-keys";
        let second = app
            .post(path, &key, json!({"name": "second", "role": "analyst"}))
            .await;
        assert_eq!(second.status, StatusCode::CREATED, "{:?}", second.body);
        let third = app
            .post(path, &key, json!({"name": "third", "role": "analyst"}))
            .await;
        assert_eq!(third.status, StatusCode::FORBIDDEN, "{:?}", third.body);
        assert_eq!(third.body["type"], "urn:vigil:problem:plan-limit");
        assert_eq!(third.body["limit"], "api_keys_max");
        assert_eq!(third.body["max"], 2);
        let user = json!({"email": "a@acme.example", "password": "correct horse battery", "role": "viewer"});
        assert_eq!(
            app.post("/api/v1/users", &key, user).await.status,
            StatusCode::CREATED
        );
        let user = json!({"email": "b@acme.example", "password": "correct horse battery", "role": "viewer"});
        let refused = app.post("/api/v1/users", &key, user).await;
        assert_eq!(refused.body["limit"], "users_max", "{:?}", refused.body);
        let (_, other) = app.tenant("globex").await;
        let theirs = app
            .post(path, &other, json!({"name": "x", "role": "analyst"}))
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::CREATED,
            "another tenant's plan does not apply"
        );
    }
);

both!(
    an_import_past_the_indicator_limit_keeps_nothing,
    |app: TestApp| async move {
        let (id, key) = app.tenant("acme").await;
        set_plan(&app, &id, json!({"indicators_max": 2})).await;
        let path = "/api/v1/indicators/import";
        let three = "type,value\ndomain,a.example\ndomain,b.example\ndomain,c.example\n";
        let refused = app.send(path, &key, "text/csv", three).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        assert_eq!(refused.body["limit"], "indicators_max");
        let listed = app.get("/api/v1/indicators", &key).await;
        assert_eq!(
            listed.body["items"],
            json!([]),
            "the refused import kept nothing"
        );
        let two = "type,value\ndomain,a.example\ndomain,b.example\n";
        assert_eq!(
            app.send(path, &key, "text/csv", two).await.status,
            StatusCode::OK
        );
        let again = app.send(path, &key, "text/csv", two).await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "refreshing at the limit needs no room: {:?}",
            again.body
        );
        let one = json!({"type": "domain", "value": "d.example"});
        let over = app.post("/api/v1/indicators", &key, one).await;
        assert_eq!(over.status, StatusCode::FORBIDDEN);
    }
);

both!(
    a_daily_quota_refuses_until_the_next_day,
    |mut app: TestApp| async move {
        let (id, key) = app.tenant("acme").await;
        set_plan(&app, &id, json!({"events_per_day": 3})).await;
        let ingest = app.key_in(&id, "ingest").await;
        let path = "/api/v1/telemetry/events";
        let first = app.post(path, &ingest, events(2)).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        let over = app.post(path, &ingest, events(2)).await;
        assert_eq!(
            over.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:?}",
            over.body
        );
        assert_eq!(over.body["limit"], "events_per_day");
        let wait: u64 = over.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=86_400).contains(&wait), "{wait}");
        let last = app.post(path, &ingest, events(1)).await;
        assert_eq!(
            last.status,
            StatusCode::OK,
            "the refused batch took nothing"
        );
        let usage = app.get("/api/v1/usage", &key).await;
        assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
        assert_eq!(usage.body["days"].as_array().unwrap().len(), 1);
        assert_eq!(usage.body["days"][0]["events"], 3);
        assert_eq!(usage.body["plan"]["events_per_day"], 3);
        assert_eq!(usage.body["counts"]["api_keys"], 2);
        let token = "usage-metrics-token-0123456789abcdef";
        app.state.metrics_token = Some(std::sync::Arc::new(token.to_owned().into()));
        let metrics = app.call(Method::GET, "/metrics", Some(token), None).await;
        let text = metrics.body.as_str().unwrap_or_default().to_owned();
        assert!(
            text.contains("vigil_usage_today{meter=\"events\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("vigil_usage_today{meter=\"runs\"} 0"),
            "{text}"
        );
        assert!(!text.contains(&id), "no tenant id in the metrics");
        assert!(text.trim_end().ends_with("# EOF"));
    }
);

both!(
    a_trial_past_its_end_leaves_the_tenant_read_only,
    |app: TestApp| async move {
        let (id, key) = app.tenant("acme").await;
        let risk = json!({"title": "kept", "impact": 2, "probability": 2});
        let created = app.post("/api/v1/risks", &key, risk.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED);
        set_plan(&app, &id, json!({"trial_ends_at": "2026-01-01T00:00:00Z"})).await;
        let refused = app.post("/api/v1/risks", &key, risk).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        assert_eq!(refused.body["type"], "urn:vigil:problem:read-only");
        assert_eq!(refused.body["limit"], "trial_ends_at");
        let kept = app.get("/api/v1/risks", &key).await;
        assert_eq!(kept.status, StatusCode::OK, "reads still work");
        assert_eq!(
            kept.body["items"][0]["title"], "kept",
            "and nothing was deleted"
        );
        let usage = app.get("/api/v1/usage", &key).await;
        assert_eq!(usage.body["read_only"], true);
        set_plan(&app, &id, json!({})).await;
        let risk = json!({"title": "again", "impact": 2, "probability": 2});
        assert_eq!(
            app.post("/api/v1/risks", &key, risk).await.status,
            StatusCode::CREATED
        );
    }
);

both!(
    usage_is_the_tenants_own_and_the_platforms,
    |app: TestApp| async move {
        let (id, key) = app.tenant("acme").await;
        let (other_id, other) = app.tenant("globex").await;
        let platform = app
            .get(
                &format!("/api/v1/tenants/{id}/usage?days=7"),
                &app.admin_key,
            )
            .await;
        assert_eq!(platform.status, StatusCode::OK, "{:?}", platform.body);
        assert_eq!(platform.body["tenant_id"], id.as_str());
        let mine = app.get("/api/v1/usage", &other).await;
        assert_eq!(mine.body["tenant_id"], other_id.as_str());
        let theirs = app
            .get(&format!("/api/v1/tenants/{id}/usage"), &other)
            .await;
        assert_eq!(theirs.status, StatusCode::FORBIDDEN);
        let set = app
            .call(
                Method::PUT,
                &format!("/api/v1/tenants/{id}/plan"),
                Some(&key),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            set.status,
            StatusCode::FORBIDDEN,
            "a tenant does not set its own plan"
        );
        let nobody = uuid::Uuid::now_v7();
        let missing = app
            .get(&format!("/api/v1/tenants/{nobody}/usage"), &app.admin_key)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let path = format!("/api/v1/tenants/{id}/plan");
        let whole = app
            .call(
                Method::PUT,
                &path,
                Some(&app.admin_key),
                Some(json!({"runs_per_day": 5.0})),
            )
            .await;
        assert_eq!(whole.body["runs_per_day"], 5, "{:?}", whole.body);
        for bad in [
            json!({"runs_per_day": 5.5}),
            json!({"users_max": -1}),
            json!({"users_max": 10_000_000_000_000_u64}),
        ] {
            let refused = app
                .call(Method::PUT, &path, Some(&app.admin_key), Some(bad.clone()))
                .await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}: {:?}",
                refused.body
            );
        }
        let bad = app.get("/api/v1/usage?days=0", &key).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let trail = app.get("/api/v1/audit?entity_type=plan", &key).await;
        assert_eq!(trail.status, StatusCode::OK);
    }
);
