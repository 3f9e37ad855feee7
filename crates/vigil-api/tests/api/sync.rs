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
        // Stored credentials never follow a URL to another origin.
        for elsewhere in [
            "https://attacker.example",
            "http://hive.example",
            "https://hive.example:8443",
        ] {
            let mut moved = hive(elsewhere);
            moved.as_object_mut().unwrap().remove("credentials");
            let refused = app.call(Method::PUT, path, Some(&admin), Some(moved)).await;
            assert_eq!(
                (refused.status, refused.body["errors"][0]["field"].clone()),
                (StatusCode::UNPROCESSABLE_ENTITY, json!("credentials")),
                "{elsewhere}: {:?}",
                refused.body
            );
        }
        let mut same_origin = hive("https://hive.example:443/thehive");
        same_origin.as_object_mut().unwrap().remove("credentials");
        let replaced = app
            .call(Method::PUT, path, Some(&admin), Some(same_origin))
            .await;
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
        let principal =
            vigil_service::Principal::cli_in(vigil_domain::TenantId::parse(&tenant).unwrap());
        let services = &app.state.services;
        let connector = services
            .get_connector(
                &principal,
                &vigil_domain::ConnectorName::parse("hive-prod").unwrap(),
            )
            .await
            .unwrap();
        let credentials = services.connector_credentials(&connector).await.unwrap();
        assert_eq!(
            credentials.get("api_key"),
            Some(SECRET),
            "the engine can open them"
        );
        // The sealing binds the origin too: a row moved to another host behind Vigil's back
        // no longer opens.
        app.raw_sql("UPDATE connectors SET url = 'https://attacker.example'")
            .await;
        let moved = services
            .get_connector(&principal, &connector.name)
            .await
            .unwrap();
        assert!(services.connector_credentials(&moved).await.is_err());
        app.raw_sql("UPDATE connectors SET url = 'https://hive.example/thehive'")
            .await;
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
        let nothing_to_keep = app
            .call(Method::PUT, path, Some(&admin), Some(no_credentials))
            .await;
        assert_eq!(
            nothing_to_keep.status,
            StatusCode::CONFLICT,
            "a new connector has no credentials to keep: {:?}",
            nothing_to_keep.body
        );
        let cases = [
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
                json!({"kind": "opencti", "url": "https://h.example/?x=1", "credentials": {"token": "k"}}),
                "url",
            ),
            (
                json!({"kind": "openrmf", "url": "https://h.example", "credentials": {"token_url": "https://kc.example/token#", "client_id": "c", "username": "u", "password": "p"}}),
                "credentials",
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
            StatusCode::CONFLICT,
            "one per kind: {:?}",
            twin.body
        );
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

both!(
    without_an_engine_run_now_and_replay_say_so,
    |app: TestApp| async move {
        let (_, admin) = app.tenant("acme").await;
        app.call(
            Method::PUT,
            "/api/v1/connectors/hive",
            Some(&admin),
            Some(hive("https://hive.example")),
        )
        .await;
        let run = app.post("/api/v1/sync/hive/run", &admin, json!({})).await;
        assert_eq!(
            run.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{:?}",
            run.body
        );
        let status = app.get("/api/v1/sync/status", &admin).await;
        assert!(items(&status).is_empty());
    }
);
