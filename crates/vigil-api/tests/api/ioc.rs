//! IOC correlation over HTTP: findings and their lifecycle, the catalogue and its imports,
//! suppressions, telemetry ingest, matches and reopens — and what goes wrong on bad input.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use vigil_domain::{FindingId, ReopenCause, TenantId};
use vigil_store::{Change, StoreError, StoreResult};

use crate::support::{TestApp, both, items};

async fn finding(app: &TestApp, key: &str, title: &str) -> String {
    let created = app
        .post(
            "/api/v1/findings",
            key,
            json!({"title": title, "severity": "high", "asset": "web-01"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_owned()
}

async fn transition(app: &TestApp, key: &str, id: &str, to: &str) -> crate::support::Response {
    let path = format!("/api/v1/findings/{id}/transition");
    app.post(&path, key, json!({"to": to, "reason": "triage"}))
        .await
}

async fn indicator(app: &TestApp, key: &str, body: Value) -> Value {
    let created = app.post("/api/v1/indicators", key, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body
}

async fn ingest(app: &TestApp, key: &str, events: Value) -> Value {
    let response = app.post("/api/v1/telemetry/events", key, events).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

fn connection(client_id: &str, properties: Value) -> Value {
    json!({"client_id": client_id, "type": "network_connection", "timestamp": "2026-11-23T10:00:00Z", "properties": properties})
}

both!(
    findings_follow_the_written_lifecycle,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let id = finding(&app, &key, "Beaconing").await;
        let read = app.get(&format!("/api/v1/findings/{id}"), &key).await;
        assert_eq!(read.body["status"], "open");
        assert_eq!(
            read.body["allowed_transitions"],
            json!(["in_progress", "resolved", "closed"])
        );
        assert_eq!(
            transition(&app, &key, &id, "closed").await.status,
            StatusCode::OK
        );
        let illegal = transition(&app, &key, &id, "resolved").await;
        assert_eq!(
            illegal.status,
            StatusCode::CONFLICT,
            "a move the current status does not allow: {:?}",
            illegal.body
        );
        assert!(
            illegal.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("it may become in_progress")),
            "names the allowed moves: {:?}",
            illegal.body
        );
        let unknown = transition(&app, &key, &id, "reopened").await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        let back = transition(&app, &key, &id, "in_progress").await;
        assert_eq!(
            (
                back.body["status"].clone(),
                back.body["reopen_count"].clone()
            ),
            (json!("in_progress"), json!(1))
        );
        let trail = app
            .get(
                &format!("/api/v1/audit?entity_type=finding&entity_id={id}"),
                &key,
            )
            .await;
        let actions: Vec<&str> = items(&trail)
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["finding.transition", "finding.transition", "finding.create"]
        );
        assert_eq!(items(&trail)[0]["reason"], "triage");
    }
);

both!(
    indicators_are_normalized_unique_and_checked,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let created = indicator(&app, &key, json!({"type": "domain", "value": "Evil.Example.", "match_subdomains": true, "confidence": 70})).await;
        assert_eq!(created["value"], "evil.example");
        let again = app
            .post(
                "/api/v1/indicators",
                &key,
                json!({"type": "domain", "value": "evil.example"}),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        for (body, field) in [
            (json!({"type": "ipv4", "value": "999.1.1.1"}), "value"),
            (json!({"type": "sha256", "value": "a".repeat(31)}), "value"),
            (json!({"type": "domain", "value": ""}), "value"),
            (json!({"type": "hash", "value": "abc"}), "type"),
            (
                json!({"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "confidence": 101}),
                "confidence",
            ),
            (
                json!({"type": "ipv4", "value": "192.0.2.1", "match_subdomains": true}),
                "match_subdomains",
            ),
            (
                json!({"type": "ipv4", "value": "192.0.2.1", "finding_id": FindingId::generate().to_string()}),
                "finding_id",
            ),
        ] {
            let refused = app.post("/api/v1/indicators", &key, body.clone()).await;
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
        let found = app
            .get("/api/v1/indicators?type=domain&value=EVIL.example.", &key)
            .await;
        assert_eq!(items(&found).len(), 1);
        let path = format!("/api/v1/indicators/{}", created["id"].as_str().unwrap());
        let patched = app
            .call(
                Method::PATCH,
                &path,
                Some(&key),
                Some(json!({"active": false})),
            )
            .await;
        assert_eq!(patched.body["active"], false);
        assert_eq!(
            app.call(Method::DELETE, &path, Some(&key), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(app.get(&path, &key).await.status, StatusCode::NOT_FOUND);
    }
);

both!(
    csv_and_stix_imports_count_and_explain,
    |app: TestApp| async move {
        let (_, key) = app.tenant("acme").await;
        let csv = "type,value,confidence\nipv4,203.0.113.7,80\ndomain,Bad.Example,\nipv4,999.1.1.1,\nsha256,abc,\n";
        let first = app
            .send("/api/v1/indicators/import", &key, "text/csv", csv)
            .await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        assert_eq!(
            (
                first.body["accepted"].clone(),
                first.body["updated"].clone()
            ),
            (json!(2), json!(0))
        );
        let rejected = first.body["rejected"].as_array().unwrap();
        assert_eq!(
            rejected
                .iter()
                .map(|r| r["index"].clone())
                .collect::<Vec<_>>(),
            [json!(4), json!(5)]
        );
        let csv2 = "type,value,confidence\nipv4,203.0.113.7,90\ndomain,bad.example,\n";
        let second = app
            .send(
                "/api/v1/indicators/import",
                &key,
                "text/csv; charset=utf-8",
                csv2,
            )
            .await;
        assert_eq!(
            (
                second.body["accepted"].clone(),
                second.body["updated"].clone(),
                second.body["unchanged"].clone()
            ),
            (json!(0), json!(1), json!(1))
        );
        let listed = app.get("/api/v1/indicators?limit=10", &key).await;
        assert_eq!(items(&listed).len(), 2, "a second import never duplicates");

        let bundle = include_str!("../../../vigil-matcher/tests/fixtures/stix2_bundle.json");
        let stix = app
            .send(
                "/api/v1/indicators/import",
                &key,
                "application/json",
                bundle,
            )
            .await;
        assert_eq!(stix.status, StatusCode::OK, "{:?}", stix.body);
        assert!(
            stix.body["accepted"].as_u64().unwrap() > 0,
            "{:?}",
            stix.body
        );
        assert!(
            stix.body["rejected"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["id"].is_string() && r["reason"].is_string())
        );
        let stix_ids = app.get("/api/v1/indicators?limit=500", &key).await;
        assert!(items(&stix_ids).iter().any(|i| i["source"] == "stix"
            && i["source_ref"].as_str().unwrap().starts_with("indicator--")));

        let not_bundle = app
            .send(
                "/api/v1/indicators/import",
                &key,
                "application/json",
                r#"{"type":"identity"}"#,
            )
            .await;
        assert_eq!(
            not_bundle.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            not_bundle.body
        );
        let no_header = app
            .send("/api/v1/indicators/import", &key, "text/csv", "ipv4\n")
            .await;
        assert_eq!(no_header.status, StatusCode::UNPROCESSABLE_ENTITY);
        let xml = app
            .send("/api/v1/indicators/import", &key, "application/xml", "<x/>")
            .await;
        assert_eq!(xml.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
);

both!(
    a_match_reopens_its_closed_finding_and_says_why,
    |app: TestApp| async move {
        let (tenant, key) = app.tenant("acme").await;
        let sensor = app.key_in(&tenant, "ingest").await;
        let id = finding(&app, &key, "C2 beacon").await;
        transition(&app, &key, &id, "closed").await;
        let ioc = indicator(
            &app,
            &key,
            json!({"type": "ipv4", "value": "203.0.113.7", "finding_id": id}),
        )
        .await;
        indicator(
            &app,
            &key,
            json!({"type": "domain", "value": "evil.example", "match_subdomains": true}),
        )
        .await;
        let report = ingest(&app, &sensor, json!([
        connection("e-1", json!({"destination": {"ip": "203.0.113.7", "port": 443}})),
        connection("e-2", json!({"dst_ip": "203.0.113.7"})),
        connection("e-3", json!({"message": "analyst note: 203.0.113.7 seen", "dns": {"question": {"name": "cdn.example"}}})),
        connection("e-4", json!({"dns.question.name": "a.b.evil.example"})),
        {"type": "network_connection"},
        {"type": "x", "properties": {}, "severity": 3},
    ])).await;
        assert_eq!(
            (report["accepted"].clone(), report["duplicates"].clone()),
            (json!(4), json!(0))
        );
        let rejected: Vec<i64> = report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_i64().unwrap())
            .collect();
        assert_eq!(rejected, [4, 5], "{report}");
        assert!(
            report["rejected"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("properties")
        );
        assert_eq!(report["matches"], 3, "a count: what matched is for readers");
        for leak in [
            "indicator_id",
            "finding_id",
            "reopened",
            ioc["id"].as_str().unwrap(),
        ] {
            assert!(!report.to_string().contains(leak), "{leak} in {report}");
        }
        let seen = matches_by_index(&app, &key, &report).await;
        assert_eq!(
            seen,
            [
                (0, "destination.ip".to_owned(), true),
                (1, "dst_ip".to_owned(), false),
                (3, "dns.question.name".to_owned(), false)
            ],
            "{report}"
        );
        assert_eq!(report["errors"], json!([]));

        let read = app.get(&format!("/api/v1/findings/{id}"), &key).await;
        assert_eq!(
            (
                read.body["status"].clone(),
                read.body["reopen_count"].clone()
            ),
            (json!("in_progress"), json!(1))
        );
        let why = app
            .get(&format!("/api/v1/findings/{id}/reopens"), &key)
            .await;
        let why = items(&why);
        assert_eq!(why.len(), 1);
        assert_eq!(
            (
                why[0]["indicator_id"].clone(),
                why[0]["field"].clone(),
                why[0]["value"].clone()
            ),
            (
                ioc["id"].clone(),
                json!("destination.ip"),
                json!("203.0.113.7")
            )
        );
        assert_eq!(why[0]["event_id"], report["events"][0]["id"]);
        let trail = app
            .get(
                &format!("/api/v1/audit?entity_type=finding&entity_id={id}"),
                &key,
            )
            .await;
        let reopen = &items(&trail)[0];
        assert_eq!(reopen["action"], "finding.reopen");
        assert_eq!(reopen["after"]["reopened_by"]["value"], "203.0.113.7");
        assert_eq!(
            reopen["after"]["reopened_by"]["event_id"],
            report["events"][0]["id"]
        );

        let again = ingest(
            &app,
            &sensor,
            json!([connection("e-1", json!({"dst_ip": "203.0.113.7"}))]),
        )
        .await;
        assert_eq!(
            (
                again["accepted"].clone(),
                again["duplicates"].clone(),
                again["matches"].clone()
            ),
            (json!(0), json!(1), json!(0))
        );
        let by_event = app
            .get(
                &format!(
                    "/api/v1/ioc-matches?event_id={}",
                    report["events"][1]["id"].as_str().unwrap()
                ),
                &key,
            )
            .await;
        assert_eq!(items(&by_event).len(), 1);
    }
);

both!(
    catalogue_changes_and_suppressions_reach_the_next_batch,
    |app: TestApp| async move {
        let (tenant, key) = app.tenant("acme").await;
        let sensor = app.key_in(&tenant, "ingest").await;
        let event = |n: u32| {
            json!([connection(
                &format!("c-{n}"),
                json!({"destination.ip": "8.8.8.8", "url": {"domain": "www.example.com"}})
            )])
        };
        assert_eq!(ingest(&app, &sensor, event(1)).await["matches"], json!(0));
        let ioc = indicator(&app, &key, json!({"type": "ipv4", "value": "8.8.8.8"})).await;
        assert_eq!(ingest(&app, &sensor, event(2)).await["matches"], json!(1));
        let suppressed = app
            .post(
                "/api/v1/suppressions",
                &key,
                json!({"type": "cidr", "value": "8.8.8.0/24", "reason": "public resolver"}),
            )
            .await;
        assert_eq!(
            suppressed.status,
            StatusCode::CREATED,
            "{:?}",
            suppressed.body
        );
        assert_eq!(
            ingest(&app, &sensor, event(3)).await["matches"],
            json!(0),
            "suppressed"
        );
        let path = format!(
            "/api/v1/suppressions/{}",
            suppressed.body["id"].as_str().unwrap()
        );
        app.call(Method::DELETE, &path, Some(&key), None).await;
        let path = format!("/api/v1/indicators/{}", ioc["id"].as_str().unwrap());
        let expired =
            json!({"valid_from": "2020-01-01T00:00:00Z", "valid_until": "2021-01-01T00:00:00Z"});
        assert_eq!(
            app.call(Method::PATCH, &path, Some(&key), Some(expired))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            ingest(&app, &sensor, event(4)).await["matches"],
            json!(0),
            "an expired indicator never matches"
        );
        indicator(
            &app,
            &key,
            json!({"type": "domain", "value": "example.com", "match_subdomains": true}),
        )
        .await;
        app.post(
            "/api/v1/suppressions",
            &key,
            json!({"type": "domain", "value": "www.example.com"}),
        )
        .await;
        assert_eq!(
            ingest(&app, &sensor, event(5)).await["matches"],
            json!(0),
            "suppressed domain"
        );
    }
);

both!(
    the_ingest_role_ingests_and_nothing_else,
    |app: TestApp| async move {
        let (tenant, key) = app.tenant("acme").await;
        let sensor = app.key_in(&tenant, "ingest").await;
        let analyst = app.key_in(&tenant, "analyst").await;
        assert_eq!(
            app.get("/api/v1/findings", &sensor).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.get("/api/v1/ioc-matches", &sensor).await.status,
            StatusCode::FORBIDDEN
        );
        let body = json!({"type": "ipv4", "value": "192.0.2.1"});
        assert_eq!(
            app.post("/api/v1/indicators", &sensor, body).await.status,
            StatusCode::FORBIDDEN
        );
        let events = json!([connection("x", json!({"dst_ip": "192.0.2.1"}))]);
        assert_eq!(
            app.post("/api/v1/telemetry/events", &analyst, events.clone())
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.post("/api/v1/telemetry/events", &key, events)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
);

both!(
    bad_batches_get_precise_answers_and_lose_nothing,
    |app: TestApp| async move {
        let (tenant, _) = app.tenant("acme").await;
        let sensor = app.key_in(&tenant, "ingest").await;
        let path = "/api/v1/telemetry/events";
        let malformed = app
            .send(path, &sensor, "application/json", "[{\"type\":")
            .await;
        assert_eq!(
            malformed.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            malformed.body
        );
        let not_array = app.send(path, &sensor, "application/json", "{}").await;
        assert_eq!(not_array.status, StatusCode::UNPROCESSABLE_ENTITY);
        let ndjson = "{\"type\":\"dns\",\"client_id\":\"n-1\",\"properties\":{\"dns.question.name\":\"x.example\"}}\nnot json\n{\"type\":\"dns\",\"properties\":{}}\n";
        let mixed = app
            .send(path, &sensor, "application/x-ndjson", ndjson)
            .await;
        assert_eq!(mixed.status, StatusCode::OK, "{:?}", mixed.body);
        assert_eq!(mixed.body["accepted"], 2);
        assert_eq!(mixed.body["rejected"][0]["index"], 1);
        let many: Vec<Value> = (0..=vigil_service::TELEMETRY_BATCH_EVENTS_MAX)
            .map(|_| json!({"type": "t", "properties": {}}))
            .collect();
        let too_many = app.post(path, &sensor, Value::Array(many)).await;
        assert_eq!(
            too_many.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{:?}",
            too_many.body
        );
        let huge = format!(
            "[{{\"type\":\"t\",\"properties\":{{\"message\":\"{}\"}}}}]",
            "x".repeat(vigil_api::TELEMETRY_BATCH_BYTES_MAX)
        );
        assert_eq!(
            app.send(path, &sensor, "application/json", huge)
                .await
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            app.send(path, &sensor, "text/plain", "[]").await.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            app.send(path, &sensor, "application/json", "[]")
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let replay = app
            .send(path, &sensor, "application/x-ndjson", ndjson)
            .await;
        assert_eq!(
            replay.body["duplicates"], 1,
            "the accepted event of the first batch was kept"
        );
    }
);

both!(
    tenants_never_match_or_see_each_other,
    |app: TestApp| async move {
        let (a, a_key) = app.tenant("acme").await;
        let (b, b_key) = app.tenant("globex").await;
        let a_sensor = app.key_in(&a, "ingest").await;
        let b_sensor = app.key_in(&b, "ingest").await;
        let b_finding = finding(&app, &b_key, "B's finding").await;
        transition(&app, &b_key, &b_finding, "closed").await;
        indicator(
            &app,
            &b_key,
            json!({"type": "ipv4", "value": "198.51.100.9", "finding_id": b_finding}),
        )
        .await;
        let a_report = ingest(
            &app,
            &a_sensor,
            json!([connection("same", json!({"dst_ip": "198.51.100.9"}))]),
        )
        .await;
        assert_eq!(
            a_report["matches"],
            json!(0),
            "B's indicators never match A's events"
        );
        let b_report = ingest(
            &app,
            &b_sensor,
            json!([connection("same", json!({"dst_ip": "198.51.100.9"}))]),
        )
        .await;
        assert_eq!(b_report["accepted"], 1, "client ids are per tenant");
        assert_eq!(b_report["matches"], 1);
        assert!(
            items(&app.get("/api/v1/ioc-matches", &a_key).await).is_empty(),
            "A never sees B's matches"
        );
        assert_eq!(
            app.get(&format!("/api/v1/findings/{b_finding}"), &a_key)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.get(&format!("/api/v1/findings/{b_finding}/reopens"), &a_key)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let foreign = app
            .post(
                "/api/v1/indicators",
                &a_key,
                json!({"type": "ipv4", "value": "192.0.2.1", "finding_id": b_finding}),
            )
            .await;
        assert_eq!(
            foreign.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "A cannot point at B's finding"
        );
    }
);

/// The matches of a batch's events as a reader sees them: (batch index, field, reopened),
/// by index.
async fn matches_by_index(app: &TestApp, reader: &str, report: &Value) -> Vec<(i64, String, bool)> {
    let mut seen = Vec::new();
    for event in report["events"].as_array().unwrap() {
        let path = format!(
            "/api/v1/ioc-matches?event_id={}",
            event["id"].as_str().unwrap()
        );
        for m in items(&app.get(&path, reader).await) {
            seen.push((
                event["index"].as_i64().unwrap(),
                m["field"].as_str().unwrap().to_owned(),
                m["reopened"].as_bool().unwrap(),
            ));
        }
    }
    seen.sort();
    seen
}

/// Fails for one finding, reopens the others through the store.
struct FailingFor {
    finding: FindingId,
    store: Arc<dyn vigil_store::Store>,
}

#[async_trait::async_trait]
impl vigil_service::Reopener for FailingFor {
    async fn reopen(
        &self,
        tenant: TenantId,
        change: &Change,
        finding: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool> {
        if finding == self.finding {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        self.store
            .reopen_finding(tenant, change, finding, cause)
            .await
    }
}

both!(
    a_failing_reopen_blocks_nothing_else_and_loses_no_telemetry,
    |app: TestApp| async move {
        let (tenant, key) = app.tenant("acme").await;
        let sensor = app.key_in(&tenant, "ingest").await;
        let broken = finding(&app, &key, "broken").await;
        let fine = finding(&app, &key, "fine").await;
        for id in [&broken, &fine] {
            transition(&app, &key, id, "closed").await;
        }
        indicator(
            &app,
            &key,
            json!({"type": "ipv4", "value": "192.0.2.66", "finding_id": broken}),
        )
        .await;
        indicator(
            &app,
            &key,
            json!({"type": "ipv4", "value": "192.0.2.77", "finding_id": fine}),
        )
        .await;
        let store = Arc::clone(&app.store);
        let app = app.with_reopener(Arc::new(FailingFor {
            finding: FindingId::parse(&broken).unwrap(),
            store,
        }));
        let report = ingest(
            &app,
            &sensor,
            json!([
                connection("f-1", json!({"dst_ip": "192.0.2.66"})),
                connection("f-2", json!({"dst_ip": "192.0.2.77"})),
            ]),
        )
        .await;
        assert_eq!(report["accepted"], 2, "both events are stored");
        assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
        assert_eq!(report["errors"][0]["index"], 0);
        assert!(
            !report["errors"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("injected"),
            "internals stay in the log"
        );
        let reopened: Vec<(i64, bool)> = matches_by_index(&app, &key, &report)
            .await
            .into_iter()
            .map(|(index, _, reopened)| (index, reopened))
            .collect();
        assert_eq!(reopened, [(0, false), (1, true)], "{report}");
        assert_eq!(
            app.get(&format!("/api/v1/findings/{fine}"), &key)
                .await
                .body["status"],
            "in_progress"
        );
        assert_eq!(
            app.get(&format!("/api/v1/findings/{broken}"), &key)
                .await
                .body["status"],
            "closed"
        );
        assert_eq!(
            items(&app.get("/api/v1/ioc-matches", &key).await).len(),
            2,
            "both matches are recorded"
        );
    }
);
