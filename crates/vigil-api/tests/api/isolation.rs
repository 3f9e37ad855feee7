//! Tenant isolation: for every endpoint, tenant B's credentials see nothing of tenant A —
//! 404 on A's ids (never 403, never the data) and none of A's rows in any list.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Response, TestApp, both};

/// What tenant A owns, made through the API.
struct World {
    a_admin: String,
    a_risk: String,
    a_key: String,
    a_session: String,
    a_tenant: String,
    b_admin: String,
    b_analyst: String,
    b_access: String,
}

async fn world(app: &TestApp) -> World {
    let (a_tenant, a_admin) = app.tenant("acme").await;
    let (b_tenant, b_admin) = app.tenant("globex").await;
    let a_risk = app.risk(&a_admin, json!({"title": "A's secret risk", "impact": 5, "probability": 5, "source": "jira", "external_id": "~1"})).await;
    let a_key_response = app
        .post(
            "/api/v1/api-keys",
            &a_admin,
            json!({"name": "a-bot", "role": "analyst"}),
        )
        .await;
    let user =
        json!({"email": "ana@example.com", "password": "correct horse battery", "role": "analyst"});
    assert_eq!(
        app.post("/api/v1/users", &a_admin, user.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post("/api/v1/users", &b_admin, user).await.status,
        StatusCode::CREATED,
        "same e-mail, other tenant"
    );
    let login = |tenant: &'static str| json!({"tenant": tenant, "email": "ana@example.com", "password": "correct horse battery"});
    let a_login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(login("acme")),
        )
        .await;
    let b_login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(login("globex")),
        )
        .await;
    World {
        a_risk: a_risk["id"].as_str().unwrap().to_owned(),
        a_key: a_key_response.body["id"].as_str().unwrap().to_owned(),
        a_session: a_login.body["session"]["id"].as_str().unwrap().to_owned(),
        a_tenant,
        a_admin,
        b_analyst: app.key_in(&b_tenant, "analyst").await,
        b_access: b_login.body["access_token"].as_str().unwrap().to_owned(),
        b_admin,
    }
}

fn assert_not_found(response: &Response, what: &str) {
    assert_eq!(
        response.status,
        StatusCode::NOT_FOUND,
        "{what}: {:?}",
        response.body
    );
    assert!(
        !response.body.to_string().contains("A's secret"),
        "{what} leaks data"
    );
}

/// Every id and every marker of tenant A that must never appear in B's answers.
fn leaks(body: &Value, world: &World) -> Vec<String> {
    let text = body.to_string();
    [
        &world.a_risk,
        &world.a_key,
        &world.a_session,
        &world.a_tenant,
    ]
    .into_iter()
    .chain(std::iter::once(&"A's secret risk".to_owned()))
    .filter(|marker| text.contains(marker.as_str()))
    .cloned()
    .collect()
}

both!(
    tenant_b_sees_nothing_of_tenant_a,
    |app: TestApp| async move {
        let w = world(&app).await;
        let risk = format!("/api/v1/risks/{}", w.a_risk);
        for bearer in [&w.b_admin, &w.b_analyst, &w.b_access] {
            assert_not_found(&app.get(&risk, bearer).await, "GET risk");
            assert_not_found(
                &app.call(
                    Method::PATCH,
                    &risk,
                    Some(bearer),
                    Some(json!({"title": "pwned"})),
                )
                .await,
                "PATCH risk",
            );
            assert_not_found(
                &app.call(Method::DELETE, &risk, Some(bearer), None).await,
                "DELETE risk",
            );
        }
        for (path, bearer) in [
            ("/api/v1/risks", &w.b_admin),
            ("/api/v1/risks?q=secret", &w.b_analyst),
            ("/api/v1/risks?source=thehive", &w.b_access),
            ("/api/v1/api-keys", &w.b_admin),
            ("/api/v1/users", &w.b_admin),
            ("/api/v1/sessions", &w.b_admin),
            ("/api/v1/audit", &w.b_admin),
            ("/api/v1/audit?limit=500", &w.b_analyst),
            ("/api/v1/audit/verify", &w.b_admin),
        ] {
            let response = app.get(path, bearer).await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{path}: {:?}",
                response.body
            );
            assert_eq!(
                leaks(&response.body, &w),
                Vec::<String>::new(),
                "{path} shows tenant A's data"
            );
        }
        let a_entity = app
            .get(&format!("/api/v1/audit?entity_id={}", w.a_risk), &w.b_admin)
            .await;
        assert_eq!(
            a_entity.body["items"],
            json!([]),
            "A's audit events are not B's"
        );

        assert_not_found(
            &app.call(
                Method::DELETE,
                &format!("/api/v1/api-keys/{}", w.a_key),
                Some(&w.b_admin),
                None,
            )
            .await,
            "revoke A's key",
        );
        let session = format!("/api/v1/sessions/{}", w.a_session);
        assert_not_found(
            &app.call(
                Method::PATCH,
                &session,
                Some(&w.b_admin),
                Some(json!({"expires_at": "2020-01-01T00:00:00Z"})),
            )
            .await,
            "expire A's session",
        );
        assert_not_found(
            &app.call(Method::DELETE, &session, Some(&w.b_admin), None)
                .await,
            "revoke A's session",
        );
        let mint = app
            .post(
                &format!("/api/v1/tenants/{}/api-keys", w.a_tenant),
                &w.b_admin,
                json!({"name": "x", "role": "tenant-admin"}),
            )
            .await;
        assert_eq!(
            mint.status,
            StatusCode::FORBIDDEN,
            "only platform admins mint keys in other tenants"
        );
        assert_eq!(
            app.get("/api/v1/tenants", &w.b_admin).await.status,
            StatusCode::FORBIDDEN
        );

        // Nothing B tried changed anything of A's.
        let a_view = app.get(&risk, &w.a_admin).await;
        assert_eq!(a_view.body["title"], "A's secret risk");
        let a_keys = app.get("/api/v1/api-keys", &w.a_admin).await;
        assert!(
            a_keys.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|key| key["revoked_at"].is_null())
        );
        let a_verify = app.get("/api/v1/audit/verify", &w.a_admin).await;
        assert_eq!(a_verify.body["ok"], true);
        // B's writes land in B's register only.
        let b_risk = app.risk(&w.b_analyst, json!({"title": "B's", "impact": 1, "probability": 1, "source": "jira", "external_id": "~1"})).await;
        let a_list = app.get("/api/v1/risks", &w.a_admin).await;
        assert!(
            !a_list
                .body
                .to_string()
                .contains(b_risk["id"].as_str().unwrap())
        );
    }
);

both!(
    platform_admin_reaches_tenants_only_through_tenant_routes,
    |app: TestApp| async move {
        let w = world(&app).await;
        let audit = app.get("/api/v1/audit?limit=500", &app.admin_key).await;
        let actions: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"tenant.create"));
        assert!(
            !actions.contains(&"risk.create"),
            "the platform chain holds no tenant data"
        );
        assert_eq!(
            app.get(&format!("/api/v1/risks/{}", w.a_risk), &app.admin_key)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let keys = app.get("/api/v1/api-keys", &app.admin_key).await;
        assert_eq!(
            leaks(&keys.body, &w),
            Vec::<String>::new(),
            "platform key list holds only platform keys"
        );
    }
);
