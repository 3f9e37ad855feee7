//! The runs part of the conformance story: a run's life (queued → running → over), its steps
//! and attempts read back as written, the first terminal status winning, the reaper, the
//! list's filters and pages, and tenant isolation.

use serde_json::json;
use vigil_automation::{
    AppName, Attempt, Run, RunFilter, RunStatus, RunTrigger, Step, TaskDefinition, TaskName,
    TaskRef,
};
use vigil_domain::{PageRequest, TenantId, Timestamp};

use crate::{AuditFilter, Change, Store, StoreError};

fn change() -> Change {
    Change::by("conformance").because(Some("runs".into()))
}

fn task(raw: &str) -> TaskRef {
    let (app, task) = raw.split_once('/').unwrap();
    TaskRef::new(AppName::parse(app).unwrap(), TaskName::parse(task).unwrap())
}

fn definition() -> TaskDefinition {
    serde_json::from_value(json!({
        "input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/x"},
        "timeout_ms": 1000,
    }))
    .unwrap()
}

fn run(raw: &str, instance: uuid::Uuid) -> Run {
    let definition = definition();
    Run::queued(
        task(raw),
        instance,
        json!({"ip": "192.0.2.1", "nested": {"n": 1}}),
        RunTrigger::Manual,
        "conformance".into(),
        &[&definition],
    )
}

fn step(seq: u32, raw: &str, status: RunStatus) -> Step {
    let at = Timestamp::from_unix_micros(1_780_000_000_000_001);
    Step {
        seq,
        task: task(raw),
        status,
        started_at: at,
        finished_at: status.is_terminal().then_some(at),
        attempts: vec![Attempt {
            n: 1,
            started_at: at,
            duration_ms: 12,
            request: json!({"method": "GET", "path": "/x", "headers": {"Key": "********"}}),
            status_code: Some(503),
            error: Some("HTTP 503".into()),
            retry_in_ms: Some(250),
        }],
        outputs: (status == RunStatus::Succeeded).then(|| {
            let mut outputs = serde_json::Map::new();
            outputs.insert("score".into(), json!(97));
            outputs
        }),
        error: None,
    }
}

pub(crate) async fn story(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let instance = uuid::Uuid::now_v7();
    life(store, acme, globex, instance).await;
    first_end_wins(store, acme, instance).await;
    reaper(store, acme, globex, instance).await;
    lists(store, acme, instance).await;
}

async fn life(store: &dyn Store, acme: TenantId, globex: TenantId, instance: uuid::Uuid) {
    let queued = run("lookup/ip", instance);
    store.create_run(acme, &change(), &queued).await.unwrap();
    let read = store.get_run(acme, queued.id).await.unwrap();
    assert_eq!(read, queued, "a new run reads back as written");
    assert!(matches!(
        store.get_run(globex, queued.id).await,
        Err(StoreError::NotFound)
    ));
    let audit = store
        .list_audit(
            acme,
            &AuditFilter {
                entity_type: Some("run".into()),
                ..AuditFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    let created = audit
        .items
        .iter()
        .find(|e| e.fields.entity_id == queued.id.to_string());
    let created = &created.expect("run.create audited").fields;
    assert_eq!(created.action, "run.create");
    let after = created.after.as_deref().unwrap_or_default();
    assert!(!after.contains("192.0.2.1"), "the input is not audited");

    steps(store, acme, globex, queued.id).await;
}

async fn steps(store: &dyn Store, acme: TenantId, globex: TenantId, id: uuid::Uuid) {
    let queued = store.get_run(acme, id).await.unwrap();
    let at = Timestamp::now();
    let first = step(0, "lookup/dep", RunStatus::Running);
    assert!(
        !store
            .start_run(globex, queued.id, "node-a", at, &first)
            .await
            .unwrap()
    );
    assert!(
        store
            .start_run(acme, queued.id, "node-a", at, &first)
            .await
            .unwrap()
    );
    assert!(
        !store
            .start_run(acme, queued.id, "node-b", at, &first)
            .await
            .unwrap(),
        "a run starts once"
    );
    let done = step(0, "lookup/dep", RunStatus::Succeeded);
    assert!(store.save_step(acme, queued.id, &done).await.unwrap());
    let second = step(1, "lookup/ip", RunStatus::Running);
    assert!(store.save_step(acme, queued.id, &second).await.unwrap());
    let running = store.get_run(acme, queued.id).await.unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert_eq!(running.runner.as_deref(), Some("node-a"));
    assert_eq!(running.started_at, Some(at));
    assert_eq!(running.steps, vec![done.clone(), second]);

    let last = step(1, "lookup/ip", RunStatus::Succeeded);
    let end = Timestamp::now();
    assert!(
        store
            .finish_run(
                acme,
                queued.id,
                RunStatus::Succeeded,
                None,
                end,
                Some(&last)
            )
            .await
            .unwrap()
    );
    let over = store.get_run(acme, queued.id).await.unwrap();
    assert_eq!(over.status, RunStatus::Succeeded);
    assert_eq!(over.finished_at, Some(end));
    assert_eq!(over.steps, vec![done, last]);
    let late = step(2, "lookup/ip", RunStatus::Running);
    assert!(
        !store.save_step(acme, queued.id, &late).await.unwrap(),
        "no step is written to a run that is over"
    );
    assert_eq!(store.get_run(acme, queued.id).await.unwrap().steps.len(), 2);
    assert!(matches!(
        store.cancel_run(acme, &change(), queued.id, end).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn first_end_wins(store: &dyn Store, acme: TenantId, instance: uuid::Uuid) {
    // Canceled while running: the runner's later success changes nothing, and the step
    // that was running ends canceled.
    let r = run("lookup/ip", instance);
    store.create_run(acme, &change(), &r).await.unwrap();
    let at = Timestamp::now();
    let first = step(0, "lookup/ip", RunStatus::Running);
    assert!(
        store
            .start_run(acme, r.id, "node-a", at, &first)
            .await
            .unwrap()
    );
    let canceled = store.cancel_run(acme, &change(), r.id, at).await.unwrap();
    assert_eq!(canceled.status, RunStatus::Canceled);
    assert_eq!(canceled.steps[0].status, RunStatus::Canceled);
    let done = step(0, "lookup/ip", RunStatus::Succeeded);
    assert!(
        !store
            .finish_run(acme, r.id, RunStatus::Succeeded, None, at, Some(&done))
            .await
            .unwrap()
    );
    let read = store.get_run(acme, r.id).await.unwrap();
    assert_eq!(read.status, RunStatus::Canceled);
    assert_eq!(
        read.steps[0].status,
        RunStatus::Canceled,
        "the late step was not written"
    );

    // Canceled while queued: it never starts.
    let q = run("lookup/ip", instance);
    store.create_run(acme, &change(), &q).await.unwrap();
    store.cancel_run(acme, &change(), q.id, at).await.unwrap();
    assert!(
        !store
            .start_run(acme, q.id, "node-a", at, &first)
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .cancel_run(acme, &change(), uuid::Uuid::now_v7(), at)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn reaper(store: &dyn Store, acme: TenantId, globex: TenantId, instance: uuid::Uuid) {
    let now = Timestamp::now();
    let mine = run("lookup/ip", instance);
    let theirs = run("lookup/ip", instance);
    let mut expired = run("lookup/ip", instance);
    expired.deadline = now.plus_seconds(-1);
    for r in [&mine, &theirs, &expired] {
        store.create_run(acme, &change(), r).await.unwrap();
    }
    let first = step(0, "lookup/ip", RunStatus::Running);
    assert!(
        store
            .start_run(acme, mine.id, "node-a", now, &first)
            .await
            .unwrap()
    );
    assert!(
        store
            .start_run(acme, theirs.id, "node-b", now, &first)
            .await
            .unwrap()
    );
    assert_eq!(
        store.reap_runs(globex, Some("node-a"), now).await.unwrap(),
        0
    );
    assert_eq!(store.reap_runs(acme, Some("node-a"), now).await.unwrap(), 2);
    let mine = store.get_run(acme, mine.id).await.unwrap();
    assert_eq!(mine.status, RunStatus::Failed);
    assert_eq!(mine.error.as_deref(), Some(vigil_automation::INTERRUPTED));
    assert_eq!(mine.steps[0].status, RunStatus::Failed);
    let expired = store.get_run(acme, expired.id).await.unwrap();
    assert_eq!(expired.status, RunStatus::TimedOut);
    assert_eq!(
        expired.error.as_deref(),
        Some(vigil_automation::DEADLINE_PASSED)
    );
    let theirs_now = store.get_run(acme, theirs.id).await.unwrap();
    assert_eq!(
        theirs_now.status,
        RunStatus::Running,
        "another node's run is left alone"
    );
    let later = theirs.deadline.plus_seconds(1);
    assert_eq!(store.reap_runs(acme, None, later).await.unwrap(), 1);
    assert_eq!(
        store.get_run(acme, theirs.id).await.unwrap().status,
        RunStatus::TimedOut,
        "past its deadline, any node's run ends"
    );
}

async fn lists(store: &dyn Store, acme: TenantId, instance: uuid::Uuid) {
    let other = uuid::Uuid::now_v7();
    let mut made = Vec::new();
    for (i, raw) in ["list/a", "list/b", "list/a", "list/a"]
        .into_iter()
        .enumerate()
    {
        let r = run(raw, if i == 1 { other } else { instance });
        store.create_run(acme, &change(), &r).await.unwrap();
        made.push(r);
    }
    let queued = store.queued_runs(acme, 100).await.unwrap();
    let ours: Vec<_> = queued
        .iter()
        .filter(|id| made.iter().any(|r| r.id == **id))
        .collect();
    assert_eq!(
        ours,
        made.iter().map(|r| &r.id).collect::<Vec<_>>(),
        "oldest first"
    );
    store
        .cancel_run(acme, &change(), made[3].id, Timestamp::now())
        .await
        .unwrap();
    filters(store, acme, &made, other).await;
}

async fn filters(store: &dyn Store, acme: TenantId, made: &[Run], other: uuid::Uuid) {
    let filter = RunFilter {
        task: Some(task("list/a")),
        ..RunFilter::default()
    };
    let first = store
        .list_runs(acme, &filter, PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [made[3].id, made[2].id]
    );
    assert!(
        first.items.iter().all(|r| r.steps.is_empty()),
        "lists leave steps out"
    );
    let cursor = first.next_cursor.expect("a second page");
    let second = store
        .list_runs(acme, &filter, PageRequest::new(Some(2), Some(cursor)))
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [made[0].id]
    );
    assert!(second.next_cursor.is_none());

    let canceled = RunFilter {
        status: Some(RunStatus::Canceled),
        task: Some(task("list/a")),
        ..RunFilter::default()
    };
    let page = store
        .list_runs(acme, &canceled, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [made[3].id]
    );
    let by_instance = RunFilter {
        instance: Some(other),
        ..RunFilter::default()
    };
    let page = store
        .list_runs(acme, &by_instance, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        [made[1].id]
    );
    for r in &page.items {
        assert!(by_instance.matches(r));
    }
}
