//! App bundles over HTTP: export → import elsewhere → export gives the same apps, on both
//! backends and across them; conflict modes and dry runs; every refusal changes nothing.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_automation::canonical_json;

use crate::support::{TestApp, both, items};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-bundle-logo";

/// Apps `lookup` (a secret, a logo, two tasks) and `report` (a task depending on lookup's).
async fn seed(app: &TestApp, key: &str) {
    let put = |path: &str, body: Value| {
        let path = path.to_owned();
        async move {
            let saved = app.call(Method::PUT, &path, Some(key), Some(body)).await;
            assert!(saved.status.is_success(), "{path}: {:?}", saved.body);
        }
    };
    put(
        "/api/v1/apps/lookup",
        json!({"version": "1.2.0", "category": "intel",
        "config_schema": {"type": "object", "properties": {
            "api_key": {"type": "string", "writeOnly": true}, "region": {"type": "string"}}}}),
    )
    .await;
    let definition = json!({"version": "1.2.0", "category": "intel",
        "config_schema": {"type": "object", "properties": {
            "api_key": {"type": "string", "writeOnly": true}, "region": {"type": "string"}}}});
    let form = crate::apps::form(&definition, Some(("l.png", PNG)));
    let logo = crate::apps::put_form(app, key, "/api/v1/apps/lookup", form).await;
    assert!(logo.status.is_success(), "{:?}", logo.body);
    put("/api/v1/apps/lookup/tasks/ip", json!({"input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/ip/{{ input.ip }}", "headers": {"Key": "{{ secrets.api_key }}"}},
        "outputs": [{"name": "score", "path": "$.score", "kind": "scalar", "type": "integer"}],
        "timeout_ms": 1000}))
        .await;
    put(
        "/api/v1/apps/lookup/tasks/enrich",
        json!({"input_schema": {"type": "object"},
        "request": {"method": "POST", "path": "/enrich", "body": {"score": "{{ deps.ip.score }}"}},
        "depends_on": ["ip"], "timeout_ms": 1000}),
    )
    .await;
    put("/api/v1/apps/report", json!({"version": "0.1.0"})).await;
    put(
        "/api/v1/apps/report/tasks/file",
        json!({"input_schema": {"type": "object"},
        "request": {"method": "POST", "path": "/file", "body": {"s": "{{ deps.ip.score }}"}},
        "depends_on": ["lookup/ip"], "timeout_ms": 1000}),
    )
    .await;
}

async fn export(app: &TestApp, key: &str, names: &[&str]) -> Value {
    let answer = app
        .post("/api/v1/apps/export", key, json!({"apps": names}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

async fn import(app: &TestApp, key: &str, query: &str, bundle: &Value) -> crate::support::Response {
    app.send(
        &format!("/api/v1/apps/import{query}"),
        key,
        "application/json",
        bundle.to_string(),
    )
    .await
}

/// The bundle's text without its export time: what must be identical between exports.
fn apps_text(bundle: &Value) -> String {
    let mut bundle = bundle.clone();
    bundle.as_object_mut().unwrap().remove("exported_at");
    canonical_json(&bundle)
}

fn changes(report: &Value) -> Vec<(String, String, String)> {
    report["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["imported_as"].as_str().unwrap().to_owned(),
                a["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

both!(
    an_export_imports_elsewhere_and_exports_the_same,
    |app: TestApp| async move {
        let (_, acme) = app.tenant("acme").await;
        let (_, globex) = app.tenant("globex").await;
        seed(&app, &acme).await;
        let bundle = export(&app, &acme, &["report", "lookup"]).await;
        assert_eq!(bundle["format"], "vigil.apps/v1");
        let text = bundle.to_string();
        assert!(!text.contains("\"id\""), "no internal id: {text}");
        assert_eq!(bundle["apps"][0]["name"], "lookup", "apps by name");
        assert_eq!(bundle["apps"][0]["secret_fields"], json!(["api_key"]));
        assert_eq!(bundle["apps"][0]["logo"]["media_type"], "image/png");
        assert_eq!(bundle["apps"][0]["tasks"][0]["name"], "enrich");
        assert_eq!(
            bundle["apps"][0]["tasks"][0]["definition"]["depends_on"],
            json!(["lookup/ip"])
        );
        assert_eq!(
            apps_text(&export(&app, &acme, &["lookup", "report"]).await),
            apps_text(&bundle)
        );

        let dry = import(&app, &globex, "?dry_run=true", &bundle).await;
        assert_eq!(dry.status, StatusCode::OK, "{:?}", dry.body);
        assert_eq!(dry.body["applied"], false);
        assert_eq!(
            items(&app.get("/api/v1/apps", &globex).await).len(),
            0,
            "a dry run writes nothing"
        );
        let done = import(&app, &globex, "", &bundle).await;
        assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
        assert_eq!(done.body["applied"], true);
        assert_eq!(
            changes(&done.body),
            [
                ("lookup".into(), "lookup".into(), "create".into()),
                ("report".into(), "report".into(), "create".into())
            ]
        );
        let again = export(&app, &globex, &["lookup", "report"]).await;
        assert_eq!(
            apps_text(&again),
            apps_text(&bundle),
            "export → import → export is identical"
        );
        let logo = app.get("/api/v1/apps/lookup/logo", &globex).await;
        assert_eq!(logo.status, StatusCode::OK);

        let same = import(&app, &globex, "", &bundle).await;
        assert_eq!(same.status, StatusCode::OK, "{:?}", same.body);
        assert!(changes(&same.body).iter().all(|(_, _, c)| c == "unchanged"));
    }
);

both!(conflicts_follow_the_mode, |app: TestApp| async move {
    let (_, acme) = app.tenant("acme").await;
    let (_, globex) = app.tenant("globex").await;
    seed(&app, &acme).await;
    let bundle = export(&app, &acme, &["lookup", "report"]).await;
    import(&app, &globex, "", &bundle).await;
    let changed = json!({"version": "9.9.9"});
    app.call(
        Method::PUT,
        "/api/v1/apps/report",
        Some(&globex),
        Some(changed),
    )
    .await;

    let refused = import(&app, &globex, "?mode=fail", &bundle).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["diagnostics"][0]["type"], "conflict");
    assert_eq!(refused.body["diagnostics"][0]["app"], "report");
    assert_eq!(
        app.get("/api/v1/apps/report", &globex).await.body["version"],
        "9.9.9"
    );

    let skipped = import(&app, &globex, "?mode=skip", &bundle).await;
    assert_eq!(skipped.status, StatusCode::OK, "{:?}", skipped.body);
    assert!(changes(&skipped.body).contains(&("report".into(), "report".into(), "skip".into())));
    assert_eq!(
        app.get("/api/v1/apps/report", &globex).await.body["version"],
        "9.9.9"
    );

    let renamed = import(&app, &globex, "?mode=rename", &bundle).await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(
        changes(&renamed.body),
        [
            ("lookup".into(), "lookup-2".into(), "create".into()),
            ("report".into(), "report-2".into(), "create".into())
        ]
    );
    let file = app.get("/api/v1/apps/report-2/tasks/file", &globex).await;
    assert_eq!(
        file.body["depends_on"],
        json!(["lookup-2/ip"]),
        "references follow the rename"
    );

    // Overwriting with an app that dropped two tasks, one depending on the other.
    let (_, initech) = app.tenant("initech").await;
    let mut lookup = export(&app, &acme, &["lookup"]).await;
    assert_eq!(
        import(&app, &initech, "", &lookup).await.status,
        StatusCode::OK
    );
    lookup["apps"][0]["tasks"] = json!([]);
    lookup["digest"] = json!(vigil_automation::digest(
        &serde_json::from_value::<Vec<vigil_automation::BundleApp>>(lookup["apps"].clone())
            .unwrap()
    ));
    let dropped = import(&app, &initech, "?mode=overwrite", &lookup).await;
    assert_eq!(dropped.status, StatusCode::OK, "{:?}", dropped.body);
    let left = app.get("/api/v1/apps/lookup/tasks", &initech).await;
    assert_eq!(items(&left).len(), 0, "{:?}", left.body);

    let overwritten = import(&app, &globex, "?mode=overwrite", &bundle).await;
    assert_eq!(overwritten.status, StatusCode::OK, "{:?}", overwritten.body);
    assert!(changes(&overwritten.body).contains(&(
        "report".into(),
        "report".into(),
        "update".into()
    )));
    assert_eq!(
        app.get("/api/v1/apps/report", &globex).await.body["version"],
        "0.1.0"
    );
});

both!(
    a_bad_bundle_is_refused_and_changes_nothing,
    |app: TestApp| async move {
        let (_, acme) = app.tenant("acme").await;
        let (_, globex) = app.tenant("globex").await;
        seed(&app, &acme).await;
        let bundle = export(&app, &acme, &["lookup", "report"]).await;
        let only_report = export(&app, &acme, &["report"]).await;
        let mut tampered = bundle.clone();
        tampered["apps"][0]["definition"]["version"] = json!("6.6.6");
        let mut future = bundle.clone();
        future["format"] = json!("vigil.apps/v2");
        let mut twice = bundle.clone();
        let first = twice["apps"][0].clone();
        twice["apps"].as_array_mut().unwrap().push(first);
        twice["digest"] = json!(vigil_automation::digest(
            &serde_json::from_value::<Vec<vigil_automation::BundleApp>>(twice["apps"].clone())
                .unwrap()
        ));
        let cases: [(&str, Value, &str); 5] = [
            ("tampered", tampered, "parse"),
            ("missing dependency", only_report, "dependency"),
            ("twice", twice, "validation"),
            ("not json", json!("{"), "parse"),
            (
                "not a bundle",
                json!({"format": "vigil.apps/v1", "apps": 7}),
                "parse",
            ),
        ];
        for (name, body, kind) in cases {
            let body_text = if name == "not json" {
                "{".to_owned()
            } else {
                body.to_string()
            };
            let refused = app
                .send(
                    "/api/v1/apps/import",
                    &globex,
                    "application/json",
                    body_text,
                )
                .await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{name}: {:?}",
                refused.body
            );
            assert_eq!(
                refused.body["diagnostics"][0]["type"], kind,
                "{name}: {:?}",
                refused.body
            );
            assert_eq!(refused.body["applied"], false);
        }
        let future = import(&app, &globex, "", &future).await;
        assert_eq!(
            future.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            future.body
        );
        assert_eq!(future.body["errors"][0]["field"], "format");
        assert_eq!(
            items(&app.get("/api/v1/apps", &globex).await).len(),
            0,
            "nothing was written"
        );

        // A cycle across the bundle and the target: globex's lookup/ip depends on report/file.
        import(&app, &globex, "", &bundle).await;
        let mut bundle_b = export(&app, &acme, &["lookup"]).await;
        bundle_b["apps"][0]["tasks"][1]["definition"]["depends_on"] = json!(["report/file"]);
        bundle_b["digest"] = json!(vigil_automation::digest(
            &serde_json::from_value::<Vec<vigil_automation::BundleApp>>(bundle_b["apps"].clone())
                .unwrap()
        ));
        let cycle = import(&app, &globex, "?mode=overwrite", &bundle_b).await;
        assert_eq!(
            cycle.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            cycle.body
        );
        let message = cycle.body["diagnostics"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("cycle"), "{:?}", cycle.body);
        let ip = app.get("/api/v1/apps/lookup/tasks/ip", &globex).await;
        assert_eq!(
            ip.body["depends_on"],
            json!([]),
            "the target stays as it was"
        );
    }
);

both!(
    roles_and_tenants_hold_for_bundles,
    |app: TestApp| async move {
        let (acme_id, acme) = app.tenant("acme").await;
        let (_, globex) = app.tenant("globex").await;
        seed(&app, &acme).await;
        let theirs = app
            .post("/api/v1/apps/export", &globex, json!({"apps": ["lookup"]}))
            .await;
        assert_eq!(
            theirs.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            theirs.body
        );
        let viewer = app.key_in(&acme_id, "viewer").await;
        let bundle = export(&app, &viewer, &["lookup"]).await;
        let refused = import(&app, &viewer, "", &bundle).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        let ingest = app.key_in(&acme_id, "ingest").await;
        let refused = app
            .post("/api/v1/apps/export", &ingest, json!({"apps": []}))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
);

/// SQLite → PostgreSQL: a bundle exported from one backend imports into the other and
/// exports the same.
#[tokio::test]
async fn a_bundle_moves_from_sqlite_to_postgres() {
    let Some((pg, cleanup)) = TestApp::postgres().await else {
        return;
    };
    let lite = TestApp::new(crate::support::Backend::Sqlite).await;
    let (_, from) = lite.tenant("acme").await;
    seed(&lite, &from).await;
    let bundle = export(&lite, &from, &[]).await;
    let (_, to) = pg.tenant("acme").await;
    let done = import(&pg, &to, "", &bundle).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(apps_text(&export(&pg, &to, &[]).await), apps_text(&bundle));
    cleanup.run().await;
}
