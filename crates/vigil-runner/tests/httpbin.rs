//! Task runs against httpbin, a real HTTP API nobody here wrote: outputs read from its JSON,
//! headers and statuses, `/delay` for timeouts, `/status/429` and `/status/503` for retries,
//! `/redirect-to` for the outbound policy, a two-step chain, secrets kept out of every answer.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Harness, both, httpbin};
use serde_json::{Value, json};

const SECRET: &str = "hb-s3cret-api-key-0042";

/// App `lookup` (one secret, one config field) with an instance on httpbin.
async fn lookup(h: &Harness, base: &str) -> String {
    h.app(
        "lookup",
        json!({"type": "object", "properties": {
            "api_key": {"type": "string", "writeOnly": true},
            "region": {"type": "string"}}}),
    )
    .await;
    h.instance(json!({"app": "lookup", "name": "httpbin", "base_url": base,
        "config": {"region": "eu"}, "secrets": {"api_key": SECRET}}))
        .await
}

fn check_ip() -> Value {
    json!({
        "input_schema": {"type": "object", "required": ["ip"],
            "properties": {"ip": {"type": "string", "format": "ipv4"}, "n": {"type": "integer"}}},
        "request": {"method": "GET", "path": "/anything/check",
            "query": {"ipAddress": "{{ input.ip }}", "region": "{{ config.region }}", "key": "{{ secrets.api_key }}"},
            "headers": {"Key": "{{ secrets.api_key }}", "Accept": "application/json"}},
        "outputs": [
            {"name": "ip", "path": "$.args.ipAddress", "kind": "scalar", "type": "string"},
            {"name": "echoed_key", "path": "$.headers.Key", "kind": "scalar", "type": "string"},
            {"name": "method", "path": "$.method", "kind": "scalar", "type": "string"}],
        "timeout_ms": 5000,
    })
}

fn report() -> Value {
    json!({
        "input_schema": {"type": "object"},
        "request": {"method": "POST", "path": "/anything/report",
            "body": {"ip": "{{ deps.check_ip.ip }}", "n": "{{ input.n }}", "note": "ip {{ deps.check_ip.ip }}",
                "echo": "{{ deps.check_ip.echoed_key }}"}},
        "outputs": [
            {"name": "n", "path": "$.json.n", "kind": "scalar", "type": "integer"},
            {"name": "note", "path": "$.json.note", "kind": "scalar", "type": "string"}],
        "depends_on": ["check_ip"],
        "timeout_ms": 5000,
    })
}

both!(
    a_chain_runs_in_order_and_its_history_shows_every_step,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        h.task("lookup", "check_ip", check_ip()).await;
        h.task("lookup", "report", report()).await;
        let run = h
            .run(
                "lookup",
                "report",
                &instance,
                json!({"ip": "192.0.2.7", "n": 3}),
            )
            .await;
        let done = h.finished(&run, Duration::from_secs(20)).await;
        assert_eq!(done.body["status"], "succeeded", "{}", done.text);
        assert_eq!(done.body["trigger"], "manual");
        let steps = done.body["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0]["task"], "lookup/check_ip", "dependencies first");
        assert_eq!(steps[1]["task"], "lookup/report");
        assert_eq!(steps[0]["outputs"]["ip"], "192.0.2.7");
        assert_eq!(steps[0]["outputs"]["method"], "GET");
        assert_eq!(
            steps[0]["outputs"]["echoed_key"], "********",
            "a secret the other side echoes is masked in the history"
        );
        assert_eq!(
            steps[1]["outputs"]["n"], 3,
            "a whole-value expression keeps its JSON type"
        );
        assert_eq!(steps[1]["outputs"]["note"], "ip 192.0.2.7");
        let attempt = &steps[0]["attempts"][0];
        assert_eq!(attempt["status_code"], 200);
        assert_eq!(attempt["request"]["headers"]["Key"], "********");
        let url = attempt["request"]["url"].as_str().unwrap();
        assert!(
            url.ends_with("/anything/check?ipAddress=192.0.2.7&key=********&region=eu"),
            "a secret in the query is masked in the recorded URL: {url}"
        );
        assert_eq!(
            steps[1]["attempts"][0]["request"]["body"]["echo"], "********",
            "a secret echoed into a dependency's output is masked in the next request"
        );
        assert_eq!(steps[1]["attempts"][0]["request"]["body"]["n"], 3);
        assert!(
            !done.text.contains(SECRET),
            "the secret is in the run: {}",
            done.text
        );

        let listed = h
            .get(&format!(
                "/api/v1/runs?task=lookup/report&instance={instance}"
            ))
            .await;
        assert_eq!(listed.body["items"][0]["id"], run.as_str());
        assert_eq!(listed.body["items"][0]["steps"], json!([]));
        let trail = h.get("/api/v1/audit?limit=500").await;
        assert!(!trail.text.contains(SECRET));
        assert!(trail.text.contains("run.create"));
    }
);

both!(
    timeouts_statuses_and_retries_follow_the_task,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        let task = |method: &str, path: &str, timeout_ms: u32, attempts: u32| {
            json!({"input_schema": {"type": "object"},
            "request": {"method": method, "path": path},
            "retry": {"max_attempts": attempts, "initial_backoff_ms": 10, "max_backoff_ms": 50},
            "timeout_ms": timeout_ms})
        };
        h.task("lookup", "slow", task("GET", "/delay/3", 300, 2))
            .await;
        h.task("lookup", "limited", task("GET", "/status/429", 5000, 3))
            .await;
        h.task(
            "lookup",
            "broken_post",
            task("POST", "/status/503", 5000, 3),
        )
        .await;
        h.task("lookup", "broken_get", task("GET", "/status/503", 5000, 2))
            .await;
        h.task("lookup", "missing", task("GET", "/status/404", 5000, 3))
            .await;

        let attempts = |run: &Value| -> Vec<(Value, Value)> {
            run["steps"][0]["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["status_code"].clone(), a["error"].clone()))
                .collect()
        };
        let slow = h.run("lookup", "slow", &instance, json!({})).await;
        let slow = h.finished(&slow, Duration::from_secs(20)).await.body;
        assert_eq!(slow["status"], "failed");
        assert_eq!(
            attempts(&slow),
            vec![(Value::Null, json!("timed out")); 2],
            "{slow}"
        );
        assert!(slow["steps"][0]["attempts"][0]["retry_in_ms"].is_u64());

        let limited = h.run("lookup", "limited", &instance, json!({})).await;
        let limited = h.finished(&limited, Duration::from_secs(20)).await.body;
        assert_eq!(attempts(&limited), vec![(json!(429), json!("HTTP 429")); 3]);
        assert!(
            limited["error"].as_str().unwrap().contains("HTTP 429"),
            "{limited}"
        );

        let post = h.run("lookup", "broken_post", &instance, json!({})).await;
        let post = h.finished(&post, Duration::from_secs(20)).await.body;
        assert_eq!(
            attempts(&post),
            vec![(json!(503), json!("HTTP 503"))],
            "a 5xx of a POST is not retried: it may have been processed"
        );
        let get = h.run("lookup", "broken_get", &instance, json!({})).await;
        let get = h.finished(&get, Duration::from_secs(20)).await.body;
        assert_eq!(attempts(&get).len(), 2, "a 5xx of a GET is");
        let missing = h.run("lookup", "missing", &instance, json!({})).await;
        let missing = h.finished(&missing, Duration::from_secs(20)).await.body;
        assert_eq!(attempts(&missing), vec![(json!(404), json!("HTTP 404"))]);
    }
);

both!(
    redirects_stay_on_the_host_and_the_policy_holds,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        let task = |url: &str| {
            json!({"input_schema": {"type": "object"},
            "request": {"method": "GET", "path": "/redirect-to", "query": {"url": url}},
            "outputs": [{"name": "url", "path": "$.url", "kind": "scalar", "type": "string"}],
            "timeout_ms": 5000})
        };
        h.task("lookup", "same_host", task("/get")).await;
        h.task(
            "lookup",
            "metadata",
            task("http://169.254.169.254/latest/meta-data/"),
        )
        .await;
        let same = h.run("lookup", "same_host", &instance, json!({})).await;
        let same = h.finished(&same, Duration::from_secs(20)).await.body;
        assert_eq!(same["status"], "succeeded", "{same}");
        assert!(
            same["steps"][0]["outputs"]["url"]
                .as_str()
                .unwrap()
                .ends_with("/get")
        );
        let away = h.run("lookup", "metadata", &instance, json!({})).await;
        let away = h.finished(&away, Duration::from_secs(20)).await.body;
        assert_eq!(away["status"], "failed");
        let error = away["steps"][0]["attempts"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("redirect not followed"), "{error}");
        assert_eq!(away["steps"][0]["attempts"].as_array().unwrap().len(), 1);
    }
);

both!(
    bad_input_is_refused_before_anything_runs,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        h.task("lookup", "check_ip", check_ip()).await;
        let path = "/api/v1/apps/lookup/tasks/check_ip/runs";
        let bad = h
            .post(path, json!({"instance": instance, "input": {"ip": 7}}))
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert!(
            bad.body["detail"].as_str().unwrap().contains("input/ip"),
            "{}",
            bad.text
        );
        let nobody = h
            .post(
                path,
                json!({"instance": uuid::Uuid::now_v7().to_string(), "input": {"ip": "192.0.2.1"}}),
            )
            .await;
        assert_eq!(
            nobody.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            nobody.text
        );
        let none = h
            .post(
                "/api/v1/apps/lookup/tasks/nope/runs",
                json!({"instance": instance}),
            )
            .await;
        assert_eq!(none.status, StatusCode::NOT_FOUND, "{}", none.text);
        let runs = h.get("/api/v1/runs").await;
        assert_eq!(runs.body["items"], json!([]), "nothing was queued");
    }
);

both!(
    a_canceled_run_stops_and_a_rerun_runs_again,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        h.task(
            "lookup",
            "slow",
            json!({"input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/delay/{{ input.s }}"}, "timeout_ms": 10000}),
        )
        .await;
        let run = h.run("lookup", "slow", &instance, json!({"s": 5})).await;
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while h.get(&format!("/api/v1/runs/{run}")).await.body["status"] != "running" {
            assert!(tokio::time::Instant::now() < until, "the run never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let canceled = h
            .post(&format!("/api/v1/runs/{run}/cancel"), json!({}))
            .await;
        assert_eq!(canceled.status, StatusCode::OK, "{}", canceled.text);
        assert_eq!(canceled.body["status"], "canceled");
        assert_eq!(canceled.body["steps"][0]["status"], "canceled");
        let again = h
            .post(&format!("/api/v1/runs/{run}/cancel"), json!({}))
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read = h.get(&format!("/api/v1/runs/{run}")).await;
        assert_eq!(
            read.body["status"], "canceled",
            "the runner's end does not overwrite it"
        );

        let rerun = h
            .post(&format!("/api/v1/runs/{run}/rerun"), json!({}))
            .await;
        assert_eq!(rerun.status, StatusCode::ACCEPTED, "{}", rerun.text);
        assert_eq!(rerun.body["rerun_of"], run.as_str());
        assert_eq!(rerun.body["trigger"], "rerun");
        assert_eq!(rerun.body["input"], json!({"s": 5}));
    }
);

both!(
    an_instance_test_stores_its_health,
    |h: Harness| async move {
        let Some(bin) = httpbin().await else { return };
        let instance = lookup(&h, &bin.url).await;
        let tested = h
            .post(&format!("/api/v1/instances/{instance}/test"), json!({}))
            .await;
        assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
        assert_eq!(tested.body["health"]["ok"], true, "{}", tested.text);

        // With a health task, the test is a run of it.
        h.task(
            "lookup",
            "health",
            json!({"input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/status/401"}, "timeout_ms": 5000}),
        )
        .await;
        let app = h.get("/api/v1/apps/lookup").await.body;
        let mut definition = json!({"version": "1.0.1", "config_schema": app["config_schema"],
        "health_task": "health"});
        h.put("/api/v1/apps/lookup", definition.take()).await;
        let tested = h
            .post(&format!("/api/v1/instances/{instance}/test"), json!({}))
            .await;
        let health = &tested.body["health"];
        assert_eq!(health["ok"], false, "{}", tested.text);
        assert!(
            health["error"].as_str().unwrap().contains("HTTP 401"),
            "{}",
            tested.text
        );
        assert!(
            health["last_ok_at"].is_string(),
            "the last good check is kept"
        );
        let runs = h.get("/api/v1/runs?task=lookup/health").await;
        assert_eq!(runs.body["items"][0]["trigger"], "test");

        // Nothing listens: the instance is down.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let down = h
            .instance(json!({"app": "lookup", "name": "down",
        "base_url": format!("http://127.0.0.1:{port}"), "secrets": {"api_key": SECRET}}))
            .await;
        h.put(
            "/api/v1/apps/lookup",
            json!({"version": "1.0.2", "config_schema": app["config_schema"]}),
        )
        .await;
        let tested = h
            .post(&format!("/api/v1/instances/{down}/test"), json!({}))
            .await;
        assert_eq!(tested.body["health"]["ok"], false, "{}", tested.text);
        assert_eq!(tested.body["health"]["error"], "could not connect");
    }
);
