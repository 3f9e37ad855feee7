//! Apps and tasks over HTTP: upserts, the builder's reads, precise refusals of bad
//! definitions, the dependency graph's guards, dry runs, roles and tenant isolation.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, both, items};

fn abuse_app() -> Value {
    json!({"version": "1.0.0", "description": "IP reputation", "category": "intel",
        "config_schema": {"type": "object", "properties": {
            "region": {"type": "string"},
            "api_key": {"type": "string", "writeOnly": true, "minLength": 8}},
            "required": ["api_key"]}})
}

fn lookup_task() -> Value {
    json!({
        "input_schema": {"type": "object", "properties": {"ip": {"type": "string", "format": "ipv4"},
            "days": {"type": "integer"}}, "required": ["ip"]},
        "request": {"method": "GET", "path": "/api/v2/check",
            "query": {"ipAddress": "{{ input.ip }}", "maxAgeInDays": "{{ input.days }}"},
            "headers": {"Key": "{{ secrets.api_key }}", "Accept": "application/json"}},
        "outputs": [{"name": "score", "path": "$.data.abuseConfidenceScore", "kind": "scalar", "type": "integer"},
                    {"name": "reports", "path": "$.data.reports[*].comment", "kind": "array", "type": "string"}],
        "retry": {"max_attempts": 3},
        "timeout_ms": 5000,
    })
}

async fn put(app: &TestApp, key: &str, path: &str, body: Value) -> crate::support::Response {
    app.call(Method::PUT, path, Some(key), Some(body)).await
}

both!(
    an_app_is_created_replaced_read_and_listed_by_name,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let created = put(&app, &key, "/api/v1/apps/abuseipdb", abuse_app()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.body["secret_fields"], json!(["api_key"]));
        assert_eq!(created.body["base_url_required"], true);
        let mut next = abuse_app();
        next["version"] = json!("1.1.0");
        let replaced = put(&app, &key, "/api/v1/apps/abuseipdb", next).await;
        assert_eq!(replaced.status, StatusCode::OK);
        assert_eq!(replaced.body["created_at"], created.body["created_at"]);
        let read = app.get("/api/v1/apps/abuseipdb", &key).await;
        assert_eq!(read.body["version"], "1.1.0");
        put(&app, &key, "/api/v1/apps/okta", json!({"version": "0.1.0"})).await;
        let listed = app.get("/api/v1/apps", &key).await;
        assert_eq!(items(&listed).len(), 2);
        assert_eq!(items(&listed)[0]["name"], "okta", "newest first");
        let names = app.get("/api/v1/apps?fields=name&limit=1", &key).await;
        assert_eq!(names.body["items"], json!(["okta"]));
        let cursor = names.body["next_cursor"].as_str().unwrap().to_owned();
        let rest = app
            .get(&format!("/api/v1/apps?fields=name&cursor={cursor}"), &key)
            .await;
        assert_eq!(rest.body["items"], json!(["abuseipdb"]));
        for bad in ["version", ""] {
            let refused = app.get(&format!("/api/v1/apps?fields={bad}"), &key).await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "fields={bad}"
            );
        }
    }
);

both!(
    a_bad_app_is_refused_naming_the_field_and_the_stored_one_stays,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        put(&app, &key, "/api/v1/apps/abuseipdb", abuse_app()).await;
        let cases = [
            (json!({"version": "1.0"}), "version"),
            (
                json!({"version": "1.0.0", "config_schema": {"type": "strnig"}}),
                "config_schema/type",
            ),
            (
                json!({"version": "1.0.0", "config_schema": {"$ref": "https://example.com/s.json"}}),
                "config_schema",
            ),
            (
                json!({"version": "1.0.0", "description": "a\u{202e}b"}),
                "description",
            ),
        ];
        for (body, field) in cases {
            let refused = put(&app, &key, "/api/v1/apps/abuseipdb", body.clone()).await;
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
        }
        let kept = app.get("/api/v1/apps/abuseipdb", &key).await;
        assert_eq!(
            kept.body["version"], "1.0.0",
            "nothing already saved changed"
        );
        let bad_name = put(&app, &key, "/api/v1/apps/Bad%20Name", abuse_app()).await;
        assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
);

both!(
    a_task_is_checked_whole_before_it_is_saved,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        put(&app, &key, "/api/v1/apps/abuseipdb", abuse_app()).await;
        let path = "/api/v1/apps/abuseipdb/tasks/lookup";
        let saved = put(&app, &key, path, lookup_task()).await;
        assert_eq!(saved.status, StatusCode::CREATED, "{:?}", saved.body);
        assert_eq!(saved.body["retry"]["max_attempts"], 3);
        let with = |pointer: &str, value: Value| {
            let mut task = lookup_task();
            *task.pointer_mut(pointer).unwrap() = value;
            task
        };
        let cases = [
            (
                with("/request/headers/Key", json!("{{ secrets.password }}")),
                "request.headers.Key",
                "not a writeOnly field",
            ),
            (
                with("/request/headers/Key", json!("{{ config.api_key }}")),
                "request.headers.Key",
                "is a secret",
            ),
            (
                with("/request/query/ipAddress", json!("{{ input.host }}")),
                "request.query.ipAddress",
                "not a property of input_schema",
            ),
            (
                with(
                    "/request/query/ipAddress",
                    json!("{% for x in input %}{{x}}{% endfor %}"),
                ),
                "request.query.ipAddress",
                "only {{ expression }}",
            ),
            (
                with("/outputs/0/path", json!("$.data[")),
                "outputs/0/path",
                "JSONPath",
            ),
            (
                with("/input_schema", json!({"type": "object", "required": "ip"})),
                "input_schema/required",
                "JSON Schema",
            ),
            (
                with("/request/method", json!("TRACE")),
                "request.method",
                "allowed values",
            ),
            (with("/timeout_ms", json!(0)), "timeout_ms", "1 to"),
        ];
        for (body, field, reason) in cases {
            let refused = put(&app, &key, path, body).await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field}: {:?}",
                refused.body
            );
            assert_eq!(
                refused.body["errors"][0]["field"], field,
                "{:?}",
                refused.body
            );
            let text = refused.body["errors"][0]["reason"].as_str().unwrap();
            assert!(text.contains(reason), "{field}: {text}");
        }
        let kept = app.get(path, &key).await;
        assert_eq!(
            kept.body["request"], saved.body["request"],
            "the saved task stayed"
        );
        let schema = app.get(&format!("{path}/input-schema"), &key).await;
        assert_eq!(schema.body["required"], json!(["ip"]));
        let arrays = app.get(&format!("{path}/outputs?kind=array"), &key).await;
        assert_eq!(items(&arrays).len(), 1);
        assert_eq!(items(&arrays)[0]["name"], "reports");
        let unknown_app = put(&app, &key, "/api/v1/apps/nope/tasks/lookup", lookup_task()).await;
        assert_eq!(unknown_app.status, StatusCode::NOT_FOUND);
    }
);

fn task_on(deps: &[&str], reads: &str) -> Value {
    json!({"request": {"method": "GET", "path": format!("/x/{reads}")},
        "depends_on": deps,
        "outputs": [{"name": "v", "path": "$.v", "kind": "scalar", "type": "any"}]})
}

both!(
    dependencies_form_a_dag_and_deletes_do_not_break_dependants,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        put(&app, &key, "/api/v1/apps/dns", json!({"version": "1.0.0"})).await;
        put(
            &app,
            &key,
            "/api/v1/apps/abuse",
            json!({"version": "1.0.0"}),
        )
        .await;
        let resolve = put(
            &app,
            &key,
            "/api/v1/apps/dns/tasks/resolve",
            task_on(&[], "r"),
        )
        .await;
        assert_eq!(resolve.status, StatusCode::CREATED, "{:?}", resolve.body);
        let lookup = put(
            &app,
            &key,
            "/api/v1/apps/abuse/tasks/lookup",
            task_on(&["dns/resolve"], "{{ deps.resolve.v }}"),
        )
        .await;
        assert_eq!(lookup.status, StatusCode::CREATED, "{:?}", lookup.body);
        assert_eq!(lookup.body["depends_on"], json!(["dns/resolve"]));
        let report = put(
            &app,
            &key,
            "/api/v1/apps/abuse/tasks/report",
            task_on(&["lookup"], "{{ deps.lookup.v }}"),
        )
        .await;
        assert_eq!(
            report.body["depends_on"],
            json!(["abuse/lookup"]),
            "same app by default"
        );

        let unknown_output = put(
            &app,
            &key,
            "/api/v1/apps/abuse/tasks/other",
            task_on(&["lookup"], "{{ deps.lookup.nope }}"),
        )
        .await;
        assert_eq!(unknown_output.status, StatusCode::UNPROCESSABLE_ENTITY);
        let missing = put(
            &app,
            &key,
            "/api/v1/apps/abuse/tasks/other",
            task_on(&["dns/gone"], "x"),
        )
        .await;
        assert_eq!(
            missing.body["errors"][0]["field"], "depends_on/0",
            "{:?}",
            missing.body
        );
        let cycle = put(
            &app,
            &key,
            "/api/v1/apps/dns/tasks/resolve",
            task_on(&["abuse/report"], "x"),
        )
        .await;
        assert_eq!(
            cycle.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            cycle.body
        );
        let reason = cycle.body["errors"][0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("dns/resolve → abuse/report → abuse/lookup → dns/resolve"),
            "the cycle is named in order: {reason}"
        );
        let own = put(
            &app,
            &key,
            "/api/v1/apps/dns/tasks/resolve",
            task_on(&["resolve"], "x"),
        )
        .await;
        assert_eq!(
            own.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            own.body
        );

        let dependants = app
            .get("/api/v1/apps/dns/tasks/resolve/dependants", &key)
            .await;
        assert_eq!(dependants.body["items"], json!(["abuse/lookup"]));
        let refused = app
            .call(
                Method::DELETE,
                "/api/v1/apps/abuse/tasks/lookup",
                Some(&key),
                None,
            )
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert_eq!(refused.body["dependants"], json!(["abuse/report"]));
        assert!(
            refused.headers["content-type"]
                .to_str()
                .unwrap()
                .contains("problem+json")
        );
        let app_refused = app
            .call(Method::DELETE, "/api/v1/apps/dns", Some(&key), None)
            .await;
        assert_eq!(app_refused.status, StatusCode::CONFLICT);
        assert_eq!(app_refused.body["dependants"], json!(["abuse/lookup"]));
        let gone = app
            .call(Method::DELETE, "/api/v1/apps/abuse", Some(&key), None)
            .await;
        assert_eq!(
            gone.status,
            StatusCode::NO_CONTENT,
            "its own links do not hold it"
        );
        assert_eq!(
            app.get("/api/v1/apps/abuse/tasks/lookup", &key)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let free = app
            .call(Method::DELETE, "/api/v1/apps/dns", Some(&key), None)
            .await;
        assert_eq!(free.status, StatusCode::NO_CONTENT);
        let trail = app.get("/api/v1/audit?entity_type=app", &key).await;
        let actions: Vec<&str> = items(&trail)
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(actions.contains(&"app.delete"), "{actions:?}");
    }
);

both!(
    a_dry_run_renders_the_request_with_secrets_masked,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        put(&app, &key, "/api/v1/apps/abuseipdb", abuse_app()).await;
        let verify = |input: Value| json!({"app": "abuseipdb", "name": "lookup", "definition": lookup_task(), "input": input});
        let ok = app
            .post(
                "/api/v1/tasks/verify",
                &key,
                verify(json!({"ip": "192.0.2.7", "days": 30})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
        assert_eq!(ok.body["valid"], true);
        let request = &ok.body["request"];
        assert_eq!(request["path"], "/api/v2/check");
        assert_eq!(request["query"]["ipAddress"], "192.0.2.7");
        assert_eq!(request["query"]["maxAgeInDays"], "30");
        assert_eq!(request["headers"]["Key"], vigil_service::SECRET_MASK);
        let bad_input = app
            .post(
                "/api/v1/tasks/verify",
                &key,
                verify(json!({"ip": "not-an-ip"})),
            )
            .await;
        assert_eq!(bad_input.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad_input.body["errors"][0]["field"], "input/ip");
        assert_eq!(
            app.get("/api/v1/apps/abuseipdb/tasks/lookup", &key)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "a dry run saves nothing"
        );
    }
);

both!(roles_and_tenants_hold_for_apps, |app: TestApp| async move {
    let (acme, key) = app.tenant("acme").await;
    put(&app, &key, "/api/v1/apps/abuseipdb", abuse_app()).await;
    let viewer = app.key_in(&acme, "viewer").await;
    assert_eq!(
        app.get("/api/v1/apps/abuseipdb", &viewer).await.status,
        StatusCode::OK
    );
    let write = put(&app, &viewer, "/api/v1/apps/abuseipdb", abuse_app()).await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    let analyst = app.key_in(&acme, "analyst").await;
    let by_analyst = put(
        &app,
        &analyst,
        "/api/v1/apps/abuseipdb/tasks/lookup",
        lookup_task(),
    )
    .await;
    assert_eq!(
        by_analyst.status,
        StatusCode::CREATED,
        "{:?}",
        by_analyst.body
    );
    let (_, other) = app.tenant("globex").await;
    assert_eq!(
        app.get("/api/v1/apps/abuseipdb", &other).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/apps/abuseipdb/tasks/lookup", &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(items(&app.get("/api/v1/apps", &other).await).is_empty());
    let theirs = put(
        &app,
        &other,
        "/api/v1/apps/abuseipdb",
        json!({"version": "9.0.0"}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED, "names are per tenant");
    assert_eq!(
        app.get("/api/v1/apps/abuseipdb", &key).await.body["version"],
        "1.0.0"
    );
});

/// A `multipart/form-data` body with a JSON `definition` part and, when given, a `logo` file
/// part under `file_name`.
pub(crate) fn form(definition: &Value, logo: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "vigil-test-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"definition\"\r\nContent-Type: application/json\r\n\r\n{definition}\r\n"
    )
    .into_bytes();
    if let Some((file_name, bytes)) = logo {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"{file_name}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn put_form(
    app: &TestApp,
    key: &str,
    path: &str,
    form: (String, Vec<u8>),
) -> crate::support::Response {
    let request = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", form.0)
        .body(axum::body::Body::from(form.1))
        .unwrap();
    app.request(request).await
}

async fn raw_logo(
    app: &TestApp,
    key: &str,
    path: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = vigil_api::app(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

both!(
    a_logo_is_typed_by_its_bytes_and_an_svg_is_served_sandboxed,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let path = "/api/v1/apps/abuseipdb";
        let logo_path = "/api/v1/apps/abuseipdb/logo";
        put(&app, &key, path, abuse_app()).await;
        assert_eq!(
            raw_logo(&app, &key, logo_path).await.0,
            StatusCode::NOT_FOUND,
            "no logo yet"
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-pixels".to_vec();
        let saved = put_form(
            &app,
            &key,
            path,
            form(&abuse_app(), Some(("logo.svg", &png))),
        )
        .await;
        assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
        assert_eq!(saved.body["has_logo"], true);
        let (status, headers, bytes) = raw_logo(&app, &key, logo_path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["content-type"], "image/png",
            "the bytes decide, not the name"
        );
        assert_eq!(bytes, png);

        let html = b"<html><script>alert(1)</script></html>".to_vec();
        let refused = put_form(
            &app,
            &key,
            path,
            form(&abuse_app(), Some(("logo.png", &html))),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.body["errors"][0]["field"], "logo");
        let huge = [png.clone(), vec![0; vigil_automation::APP_LOGO_BYTES_MAX]].concat();
        let too_big = put_form(
            &app,
            &key,
            path,
            form(&abuse_app(), Some(("logo.png", &huge))),
        )
        .await;
        assert_eq!(
            too_big.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{:?}",
            too_big.body
        );
        assert_eq!(
            raw_logo(&app, &key, logo_path).await.2,
            png,
            "the stored logo stayed"
        );

        let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        let as_svg = put_form(&app, &key, path, form(&abuse_app(), Some(("x.png", svg)))).await;
        assert_eq!(as_svg.status, StatusCode::OK, "{:?}", as_svg.body);
        let (_, headers, _) = raw_logo(&app, &key, logo_path).await;
        assert_eq!(headers["content-type"], "image/svg+xml");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{csp}"
        );

        let no_logo = put_form(&app, &key, path, form(&abuse_app(), None)).await;
        assert_eq!(no_logo.status, StatusCode::OK);
        assert_eq!(
            raw_logo(&app, &key, logo_path).await.1["content-type"],
            "image/svg+xml",
            "kept"
        );
        let no_definition = put_form(
            &app,
            &key,
            path,
            (
                "multipart/form-data; boundary=b".into(),
                b"--b--\r\n".to_vec(),
            ),
        )
        .await;
        assert_eq!(
            no_definition.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            no_definition.body
        );
        let (_, other) = app.tenant("globex").await;
        assert_eq!(
            raw_logo(&app, &other, logo_path).await.0,
            StatusCode::NOT_FOUND
        );
    }
);
