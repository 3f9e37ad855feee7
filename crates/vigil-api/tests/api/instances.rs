//! Instances over HTTP: several per app, config and secrets checked against the app's schema,
//! secrets sealed and never answered or audited, an origin change needs them again.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, both, items};

const SECRET: &str = "k-SuperSecret-0123456789";

async fn app_with_schema(app: &TestApp, key: &str) {
    let body = json!({"version": "1.0.0", "config_schema": {"type": "object", "required": ["api_key"],
        "properties": {"region": {"type": "string", "enum": ["eu", "us"]},
                       "api_key": {"type": "string", "writeOnly": true, "minLength": 12}}}});
    let put = app
        .call(Method::PUT, "/api/v1/apps/abuseipdb", Some(key), Some(body))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
}

fn instance(name: &str) -> Value {
    json!({"app": "abuseipdb", "name": name, "base_url": "https://api.abuseipdb.example",
        "config": {"region": "eu"}, "secrets": {"api_key": SECRET},
        "rate_limit_per_minute": 60, "concurrency_max": 2})
}

both!(
    instances_keep_their_secrets_sealed_and_never_show_them,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        app_with_schema(&app, &key).await;
        let created = app
            .post("/api/v1/instances", &key, instance("client-a"))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["secret_fields"], json!(["api_key"]));
        assert_eq!(created.body["concurrency_max"], 2);
        let second = app
            .post("/api/v1/instances", &key, instance("client-b"))
            .await;
        assert_eq!(
            second.status,
            StatusCode::CREATED,
            "several instances of one app"
        );
        let id = created.body["id"].as_str().unwrap().to_owned();
        let read = app.get(&format!("/api/v1/instances/{id}"), &key).await;
        let listed = app.get("/api/v1/instances", &key).await;
        assert_eq!(items(&listed).len(), 2);
        let trail = app.get("/api/v1/audit?entity_type=instance", &key).await;
        assert_eq!(items(&trail).len(), 2);
        for answer in [&created.body, &read.body, &listed.body, &trail.body] {
            assert!(
                !answer.to_string().contains(SECRET),
                "no secret in {answer}"
            );
        }
        let twice = app
            .post("/api/v1/instances", &key, instance("client-a"))
            .await;
        assert_eq!(twice.status, StatusCode::CONFLICT);
    }
);

both!(
    bad_instances_are_refused_naming_the_field,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        app_with_schema(&app, &key).await;
        let with = |pointer: &str, value: Value| {
            let mut body = instance("x");
            match pointer {
                "-base_url" => {
                    body.as_object_mut().unwrap().remove("base_url");
                }
                _ => *body.pointer_mut(pointer).unwrap() = value,
            }
            body
        };
        let cases = [
            (
                with("/config", json!({"region": "eu", "api_key": SECRET})),
                "config/api_key",
            ),
            (
                with("/secrets", json!({"api_key": "short"})),
                "secrets/api_key",
            ),
            (
                with("/secrets", json!({"region": "eu", "api_key": SECRET})),
                "secrets/region",
            ),
            (with("/config", json!({"region": "mars"})), "config/region"),
            (with("/secrets", json!({})), "config"),
            (with("-base_url", Value::Null), "base_url"),
            (
                with("/base_url", json!("https://h.example/?x=1")),
                "base_url",
            ),
            (with("/app", json!("nope")), "app"),
            (with("/concurrency_max", json!(0)), "concurrency_max"),
        ];
        for (body, field) in cases {
            let refused = app.post("/api/v1/instances", &key, body.clone()).await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {:?}",
                refused.body
            );
            assert_eq!(
                refused.body["errors"][0]["field"], field,
                "{:?}",
                refused.body
            );
            assert!(
                !refused.body.to_string().contains("short\""),
                "{:?}",
                refused.body
            );
        }
        assert!(
            items(&app.get("/api/v1/instances", &key).await).is_empty(),
            "nothing was kept"
        );
    }
);

both!(
    a_secret_does_not_follow_its_base_url_to_another_origin,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        app_with_schema(&app, &key).await;
        let created = app
            .post("/api/v1/instances", &key, instance("client-a"))
            .await;
        let path = format!("/api/v1/instances/{}", created.body["id"].as_str().unwrap());
        let patch = |body: Value| app.call(Method::PATCH, &path, Some(&key), Some(body));
        let moved = patch(json!({"base_url": "https://attacker.example"})).await;
        assert_eq!(
            moved.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            moved.body
        );
        assert_eq!(moved.body["errors"][0]["field"], "secrets");
        let same_origin =
            patch(json!({"base_url": "https://api.abuseipdb.example/v2", "enabled": false})).await;
        assert_eq!(same_origin.status, StatusCode::OK, "{:?}", same_origin.body);
        assert_eq!(same_origin.body["enabled"], false);
        let bad_config = patch(json!({"config": {"region": "mars"}})).await;
        assert_eq!(
            bad_config.body["errors"][0]["field"], "config/region",
            "checked with the stored secrets"
        );
        let resent =
            patch(json!({"base_url": "https://other.example", "secrets": {"api_key": SECRET}}))
                .await;
        assert_eq!(resent.status, StatusCode::OK, "{:?}", resent.body);
        assert_eq!(resent.body["base_url"], "https://other.example");
        let trail = app.get("/api/v1/audit?entity_type=instance", &key).await;
        assert!(!trail.body.to_string().contains(SECRET));
        assert!(
            items(&trail)
                .iter()
                .any(|e| e["after"]["secrets_changed"] == true),
            "{:?}",
            trail.body
        );
    }
);

both!(
    roles_tenants_and_app_deletes_hold_for_instances,
    |app: TestApp| async move {
        let (acme, key) = app.tenant("acme").await;
        app_with_schema(&app, &key).await;
        let created = app
            .post("/api/v1/instances", &key, instance("client-a"))
            .await;
        let path = format!("/api/v1/instances/{}", created.body["id"].as_str().unwrap());
        let analyst = app.key_in(&acme, "analyst").await;
        assert_eq!(app.get(&path, &analyst).await.status, StatusCode::OK);
        let by_analyst = app
            .post("/api/v1/instances", &analyst, instance("client-b"))
            .await;
        assert_eq!(by_analyst.status, StatusCode::FORBIDDEN);
        let (_, other) = app.tenant("globex").await;
        assert_eq!(app.get(&path, &other).await.status, StatusCode::NOT_FOUND);
        let theirs = app.call(Method::DELETE, &path, Some(&other), None).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        let gone = app
            .call(Method::DELETE, "/api/v1/apps/abuseipdb", Some(&key), None)
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get(&path, &key).await.status,
            StatusCode::NOT_FOUND,
            "an app's instances go with it"
        );
        assert_eq!(
            app.get("/api/v1/instances/not-a-uuid", &key).await.status,
            StatusCode::NOT_FOUND
        );
    }
);
