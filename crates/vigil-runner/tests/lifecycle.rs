//! Every way a run ends writes a terminal status: its deadline passing, and the runner
//! stopping (as on SIGTERM) while it executes.

mod common;

use std::time::Duration;

use common::{Harness, both, hanging};
use serde_json::json;
use vigil_service::TaskRunner;

async fn hanging_task(h: &Harness) -> String {
    h.app("slow", json!({"type": "object"})).await;
    h.task(
        "slow",
        "hang",
        json!({"input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/hang"}, "timeout_ms": 60000}),
    )
    .await;
    h.instance(json!({"app": "slow", "name": "hang", "base_url": hanging().await}))
        .await
}

both!(
    a_run_past_its_deadline_is_timed_out,
    |h: Harness| async move {
        let instance = hanging_task(&h).await;
        // A run stored with its deadline already behind it (as one that waited too long in a
        // queue would be): the runner ends it at once instead of sending anything.
        let mut late = vigil_automation::Run::queued(
            vigil_automation::TaskRef::new(
                vigil_automation::AppName::parse("slow").unwrap(),
                vigil_automation::TaskName::parse("hang").unwrap(),
            ),
            uuid::Uuid::try_parse(&instance).unwrap(),
            json!({}),
            vigil_automation::RunTrigger::Manual,
            "test".into(),
            &[],
        );
        late.deadline = late.created_at.plus_seconds(-1);
        h.store
            .create_run(h.tenant, &vigil_store::Change::by("test"), &late)
            .await
            .unwrap();
        h.handle.submit(h.tenant, late.id).unwrap();
        let done = h
            .finished(&late.id.to_string(), Duration::from_secs(10))
            .await;
        assert_eq!(done.body["status"], "timed_out", "{}", done.text);
        assert_eq!(done.body["error"], vigil_automation::DEADLINE_PASSED);
        assert_eq!(done.body["steps"][0]["status"], "timed_out");
    }
);

both!(
    a_stopping_runner_ends_what_it_was_running,
    |mut h: Harness| async move {
        let instance = hanging_task(&h).await;
        let run = h.run("slow", "hang", &instance, json!({})).await;
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        while h.get(&format!("/api/v1/runs/{run}")).await.body["status"] != "running" {
            assert!(tokio::time::Instant::now() < until, "the run never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        h.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), &mut h.runner)
            .await
            .expect("the runner stops at once")
            .unwrap();
        let read = h.get(&format!("/api/v1/runs/{run}")).await;
        assert_eq!(read.body["status"], "failed", "{}", read.text);
        assert_eq!(read.body["error"], vigil_automation::INTERRUPTED);
        assert_eq!(read.body["steps"][0]["status"], "failed");
    }
);

both!(
    runs_past_the_daily_quota_are_refused,
    |h: Harness| async move {
        let instance = hanging_task(&h).await;
        let plan = vigil_domain::Plan {
            runs_per_day: Some(1),
            ..vigil_domain::Plan::default()
        };
        h.state
            .services
            .set_plan(&vigil_service::Principal::system(), h.tenant, plan)
            .await
            .unwrap();
        h.run("slow", "hang", &instance, json!({})).await;
        let path = "/api/v1/apps/slow/tasks/hang/runs";
        let over = h.post(path, json!({"instance": instance})).await;
        assert_eq!(
            over.status,
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "{}",
            over.text
        );
        assert_eq!(over.body["limit"], "runs_per_day");
        let runs = h.get("/api/v1/runs").await;
        assert_eq!(
            runs.body["items"].as_array().unwrap().len(),
            1,
            "the refused run was not stored"
        );
    }
);
