//! Credentials: API keys, logins, refresh rotation, logout, session expiry, roles.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{TestApp, both, ids, items};

async fn assert_401(app: &TestApp, bearer: Option<&str>, why: &str) {
    let response = app.call(Method::GET, "/api/v1/risks", bearer, None).await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{why}: {:?}",
        response.body
    );
    assert_eq!(response.headers["www-authenticate"], "Bearer");
    assert_eq!(response.headers["content-type"], "application/problem+json");
}

both!(bad_api_keys_are_401, |app: TestApp| async move {
    let (tenant, key) = app.tenant("acme").await;
    assert_401(&app, None, "missing").await;
    assert_401(&app, Some("vgl_not-a-real-key"), "unknown").await;
    let raw = app.call(Method::GET, "/api/v1/risks", None, None).await;
    assert_eq!(raw.status, StatusCode::UNAUTHORIZED);
    let basic = app
        .request(
            axum::http::Request::get("/api/v1/risks")
                .header("authorization", format!("Basic {key}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED, "malformed scheme");

    let listed = app.get("/api/v1/api-keys", &key).await;
    let own_id = listed.body["items"][0]["id"].as_str().unwrap().to_owned();
    let second = app.key_in(&tenant, "analyst").await;
    let second_id = ids(&app.get("/api/v1/api-keys", &key).await)
        .into_iter()
        .find(|id| *id != own_id)
        .unwrap();
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{second_id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body["revoked_at"].is_string());
    assert_401(&app, Some(&second), "revoked").await;

    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiring = app
        .post(
            "/api/v1/api-keys",
            &key,
            json!({"name": "short", "role": "viewer", "expires_at": soon}),
        )
        .await;
    assert_eq!(expiring.status, StatusCode::CREATED, "{:?}", expiring.body);
    let expiring = expiring.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/risks", &expiring).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_401(&app, Some(&expiring), "expired").await;
});

both!(
    keys_are_shown_once_and_roles_are_enforced,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let created = app
            .post(
                "/api/v1/api-keys",
                &admin,
                json!({"name": "bot", "role": "analyst"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        let key = created.body["key"].as_str().unwrap();
        assert!(key.starts_with("vgl_"));
        let listed = app.get("/api/v1/api-keys", &admin).await;
        assert!(
            !listed.body.to_string().contains(key),
            "lists never carry keys"
        );
        assert!(
            listed.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|item| item.get("key").is_none())
        );

        let analyst = app.key_in(&tenant, "analyst").await;
        let denied = app
            .post(
                "/api/v1/api-keys",
                &analyst,
                json!({"name": "x", "role": "analyst"}),
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        let escalate = app
            .post(
                "/api/v1/api-keys",
                &admin,
                json!({"name": "x", "role": "platform-admin"}),
            )
            .await;
        assert_eq!(
            escalate.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a tenant admin cannot mint platform keys"
        );
        assert_eq!(escalate.body["errors"][0]["field"], "role");
        let tenants = app
            .post("/api/v1/tenants", &admin, json!({"slug": "evil"}))
            .await;
        assert_eq!(tenants.status, StatusCode::FORBIDDEN);
        let past = app
            .post(
                "/api/v1/api-keys",
                &admin,
                json!({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(past.body["errors"][0]["field"], "expires_at");
        let dup = app
            .post("/api/v1/tenants", &app.admin_key, json!({"slug": "acme"}))
            .await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        let bad_slug = app
            .post(
                "/api/v1/tenants",
                &app.admin_key,
                json!({"slug": "Not Valid"}),
            )
            .await;
        assert_eq!(bad_slug.body["errors"][0]["field"], "slug");
        let platform = app
            .post(
                "/api/v1/api-keys",
                &app.admin_key,
                json!({"name": "second-root", "role": "platform-admin"}),
            )
            .await;
        assert_eq!(platform.status, StatusCode::CREATED);
        assert!(platform.body["tenant_id"].is_null());
    }
);

async fn login(
    app: &TestApp,
    tenant: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, Value) {
    let body = json!({"tenant": tenant, "email": email, "password": password});
    let response = app
        .call(Method::POST, "/api/v1/auth/login", None, Some(body))
        .await;
    (response.status, response.body)
}

async fn user(app: &TestApp, admin: &str) {
    let body = json!({"email": "Ana@Acme.example", "password": "correct horse battery", "role": "analyst"});
    let created = app.post("/api/v1/users", admin, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["email"], "ana@acme.example");
    assert!(
        !created.body.to_string().contains("argon2"),
        "no password hash on the wire"
    );
}

both!(
    login_refresh_rotates_and_logout_revokes,
    |app: TestApp| async move {
        let (_, admin) = app.tenant("acme").await;
        user(&app, &admin).await;
        let (status, wrong) = login(
            &app,
            Some("acme"),
            "ana@acme.example",
            "wrong horse battery",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, unknown) = login(
            &app,
            Some("acme"),
            "bob@acme.example",
            "correct horse battery",
        )
        .await;
        assert_eq!(
            wrong["detail"], unknown["detail"],
            "the answer does not reveal which e-mails exist"
        );
        assert_eq!(
            login(
                &app,
                Some("globex"),
                "ana@acme.example",
                "correct horse battery"
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );

        let (status, tokens) = login(
            &app,
            Some("acme"),
            "ANA@acme.example",
            "correct horse battery",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{tokens:?}");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get("/api/v1/risks", &access).await.status,
            StatusCode::OK
        );
        assert_eq!(
            app.post(
                "/api/v1/risks",
                &access,
                json!({"title": "t", "impact": 1, "probability": 1})
            )
            .await
            .status,
            StatusCode::CREATED
        );

        let refreshed = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        assert_eq!(refreshed.status, StatusCode::OK);
        let access2 = refreshed.body["access_token"].as_str().unwrap().to_owned();
        assert_ne!(refreshed.body["refresh_token"].as_str().unwrap(), refresh);
        assert_eq!(
            app.get("/api/v1/risks", &access2).await.status,
            StatusCode::OK
        );

        let guessed = format!("{}.{}", refresh.split('.').next().unwrap(), "A".repeat(43));
        let guess = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({ "refresh_token": guessed })),
            )
            .await;
        assert_eq!(guess.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.get("/api/v1/risks", &access2).await.status,
            StatusCode::OK,
            "a guessed secret for a known session id logs nobody out"
        );

        let reused = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        assert_eq!(
            reused.status,
            StatusCode::UNAUTHORIZED,
            "a refresh token works once"
        );
        assert_401(&app, Some(&access2), "reuse revokes the whole session").await;

        let (_, tokens) = login(
            &app,
            Some("acme"),
            "ana@acme.example",
            "correct horse battery",
        )
        .await;
        let access3 = tokens["access_token"].as_str().unwrap().to_owned();
        let logout = app
            .call(Method::POST, "/api/v1/auth/logout", Some(&access3), None)
            .await;
        assert_eq!(logout.status, StatusCode::NO_CONTENT);
        assert_401(&app, Some(&access3), "logged out").await;
        let refresh3 = tokens["refresh_token"].as_str().unwrap();
        let after = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                None,
                Some(json!({"refresh_token": refresh3})),
            )
            .await;
        assert_eq!(
            after.status,
            StatusCode::UNAUTHORIZED,
            "logout ends refresh too"
        );
    }
);

both!(admin_changes_a_session_expiry, |app: TestApp| async move {
    let (_, admin) = app.tenant("acme").await;
    user(&app, &admin).await;
    let (_, tokens) = login(
        &app,
        Some("acme"),
        "ana@acme.example",
        "correct horse battery",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let session = tokens["session"]["id"].as_str().unwrap();
    assert!(ids(&app.get("/api/v1/sessions", &admin).await).contains(&session.to_owned()));
    let path = format!("/api/v1/sessions/{session}");
    let too_far = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"expires_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(too_far.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ended = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"expires_at": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert_eq!(ended.body["expires_at"], "2020-01-01T00:00:00.000000Z");
    assert_401(
        &app,
        Some(access),
        "an expired session's access token stops working",
    )
    .await;
    let analyst_tokens = login(
        &app,
        Some("acme"),
        "ana@acme.example",
        "correct horse battery",
    )
    .await
    .1;
    let analyst = analyst_tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/sessions", analyst).await.status,
        StatusCode::FORBIDDEN
    );
    let revoke = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/sessions/{}",
                analyst_tokens["session"]["id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_401(&app, Some(analyst), "revoked by an admin").await;
});

both!(forged_tokens_are_401, |app: TestApp| async move {
    let (_, admin) = app.tenant("acme").await;
    user(&app, &admin).await;
    let (_, tokens) = login(
        &app,
        Some("acme"),
        "ana@acme.example",
        "correct horse battery",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_401(
        &app,
        Some(&format!("{none_header}.{}.", parts[1])),
        "alg none",
    )
    .await;
    let other_key = vigil_service::JwtKey::generate();
    let claims_typed: vigil_service::AccessClaims = serde_json::from_value(claims.clone()).unwrap();
    assert_401(
        &app,
        Some(&other_key.sign(&claims_typed)),
        "signed with another key",
    )
    .await;
    claims["role"] = json!("tenant-admin");
    let elevated = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_401(
        &app,
        Some(&format!("{}.{elevated}.{}", parts[0], parts[2])),
        "tampered claims",
    )
    .await;
    assert_401(&app, Some("a.b"), "garbage").await;
});

both!(
    a_key_revoked_on_another_node_stops_within_the_cache_ttl,
    |app: TestApp| async move {
        let (tenant, _) = app.tenant("acme").await;
        let key = app.key_in(&tenant, "analyst").await;
        assert_eq!(
            app.get("/api/v1/risks", &key).await.status,
            StatusCode::OK,
            "now cached"
        );
        // Revoke straight in the store, as another node or the CLI would: this process's
        // cache is not told.
        let hash = vigil_domain::Sha256Hex::digest(key.as_bytes());
        let store = &app.store;
        let record = store
            .unchecked_find_api_key_by_hash(&hash)
            .await
            .unwrap()
            .unwrap();
        let scope = vigil_store::Scope::Tenant(record.tenant_id.unwrap());
        store
            .revoke_api_key(scope, &vigil_store::Change::by("elsewhere"), record.id)
            .await
            .unwrap();
        tokio::time::sleep(vigil_service::API_KEY_CACHE_TTL + std::time::Duration::from_millis(50))
            .await;
        assert_401(&app, Some(&key), "revoked elsewhere, after the cache TTL").await;
    }
);

both!(
    platform_admin_lists_and_revokes_a_tenants_keys,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let analyst = app.key_in(&tenant, "analyst").await;
        let path = format!("/api/v1/tenants/{tenant}/api-keys");
        let listed = app.get(&path, &app.admin_key).await;
        assert_eq!(ids(&listed).len(), 2);
        assert!(
            !listed.body.to_string().contains(&analyst),
            "lists never carry keys"
        );
        let analyst_id = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == "analyst")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.get(&path, &admin).await.status,
            StatusCode::FORBIDDEN,
            "tenant admins use /api/v1/api-keys"
        );
        let revoke = format!("{path}/{analyst_id}");
        assert_eq!(
            app.call(Method::DELETE, &revoke, Some(&admin), None)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::DELETE, &revoke, Some(&app.admin_key), None)
                .await
                .status,
            StatusCode::OK
        );
        assert_401(&app, Some(&analyst), "revoked by the platform admin").await;
        let (other, _) = app.tenant("globex").await;
        let elsewhere = format!("/api/v1/tenants/{other}/api-keys/{analyst_id}");
        assert_eq!(
            app.call(Method::DELETE, &elsewhere, Some(&app.admin_key), None)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "a key is revoked only under its own tenant"
        );
        assert_eq!(
            app.get(
                "/api/v1/tenants/0190b3a4-0000-7000-8000-000000000000/api-keys",
                &app.admin_key
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
    }
);

async fn log_in(app: &TestApp, email: &str, password: &str) -> crate::support::Response {
    let body = json!({"tenant": "acme", "email": email, "password": password});
    app.call(Method::POST, "/api/v1/auth/login", None, Some(body))
        .await
}

both!(
    users_are_disabled_enabled_reset_and_deleted,
    |app: TestApp| async move {
        let (tenant, admin) = app.tenant("acme").await;
        let (old, new) = ("first password 1234", "second password 5678");
        let created = app
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": "ana@acme.example", "password": old, "role": "analyst"}),
            )
            .await;
        let path = format!("/api/v1/users/{}", created.body["id"].as_str().unwrap());
        let tokens = log_in(&app, "ana@acme.example", old).await.body;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get("/api/v1/risks", &access).await.status,
            StatusCode::OK
        );

        let off = json!({"disabled": true});
        let disabled = app
            .call(Method::PATCH, &path, Some(&admin), Some(off))
            .await;
        assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
        assert!(disabled.body["disabled_at"].is_string());
        assert_eq!(
            app.get("/api/v1/risks", &access).await.status,
            StatusCode::UNAUTHORIZED,
            "its session ended"
        );
        let refresh = json!({"refresh_token": tokens["refresh_token"]});
        let refreshed = app
            .call(Method::POST, "/api/v1/auth/refresh", None, Some(refresh))
            .await;
        assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
        let refused = log_in(&app, "ana@acme.example", old).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            refused.body["detail"],
            log_in(&app, "ana@acme.example", "wrong password 000")
                .await
                .body["detail"],
            "no hint that the account exists"
        );

        let on = json!({"disabled": false});
        app.call(Method::PATCH, &path, Some(&admin), Some(on)).await;
        let again = log_in(&app, "ana@acme.example", old).await.body;
        let access = again["access_token"].as_str().unwrap().to_owned();
        let reset = app
            .post(
                &format!("{path}/password"),
                &admin,
                json!({"password": new}),
            )
            .await;
        assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
        assert!(!reset.body.to_string().contains(new));
        assert_eq!(
            app.get("/api/v1/risks", &access).await.status,
            StatusCode::UNAUTHORIZED,
            "a reset ends sessions"
        );
        assert_eq!(
            log_in(&app, "ana@acme.example", old).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            log_in(&app, "ana@acme.example", new).await.status,
            StatusCode::OK
        );
        let short = app
            .post(
                &format!("{path}/password"),
                &admin,
                json!({"password": "short"}),
            )
            .await;
        assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);

        let viewer = app.key_in(&tenant, "viewer").await;
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&viewer), None)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let (_, other) = app.tenant("globex").await;
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&other), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&admin), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.get(&path, &admin).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            log_in(&app, "ana@acme.example", new).await.status,
            StatusCode::UNAUTHORIZED
        );
        let id = created.body["id"].as_str().unwrap();
        let trail = app
            .get(
                &format!("/api/v1/audit?entity_type=user&entity_id={id}"),
                &admin,
            )
            .await;
        let actions: Vec<&str> = items(&trail)
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "user.delete",
                "user.password_reset",
                "user.enable",
                "user.disable",
                "user.create"
            ]
        );
    }
);

both!(an_admin_cannot_lock_itself_out, |app: TestApp| async move {
    let (_, admin) = app.tenant("acme").await;
    let password = "admin password 12345";
    let created = app
        .post(
            "/api/v1/users",
            &admin,
            json!({"email": "root@acme.example", "password": password, "role": "tenant-admin"}),
        )
        .await;
    let me = log_in(&app, "root@acme.example", password).await.body;
    let access = me["access_token"].as_str().unwrap();
    let path = format!("/api/v1/users/{}", created.body["id"].as_str().unwrap());
    let own = app
        .call(
            Method::PATCH,
            &path,
            Some(access),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        own.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        own.body
    );
    assert_eq!(
        app.call(Method::DELETE, &path, Some(access), None)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
});
