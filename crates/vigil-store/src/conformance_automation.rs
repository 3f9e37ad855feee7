//! The automation part of the conformance story: apps and tasks by name, the dependency
//! graph the store guards, tenant isolation, and the audit trail of each change.

use serde_json::json;
use vigil_automation::{AppDefinition, AppName, TaskDefinition, TaskName, TaskRef};
use vigil_domain::{PageRequest, TenantId};

use crate::{AuditFilter, Change, Store, StoreError};

fn change() -> Change {
    Change::by("conformance").because(Some("automation".into()))
}

fn app_definition(version: &str) -> AppDefinition {
    AppDefinition {
        version: version.into(),
        description: Some("lookups".into()),
        category: Some("intel".into()),
        config_schema: json!({"type": "object", "properties": {"key": {"type": "string", "writeOnly": true}}}),
        base_url_required: true,
        health_task: None,
    }
}

fn task_definition() -> TaskDefinition {
    serde_json::from_value(json!({
        "input_schema": {"type": "object"},
        "request": {"method": "GET", "path": "/x"},
        "outputs": [{"name": "v", "path": "$.v", "kind": "scalar", "type": "any"}],
        "timeout_ms": 1000,
    }))
    .unwrap()
}

fn r(raw: &str) -> TaskRef {
    let (app, task) = raw.split_once('/').unwrap();
    TaskRef::new(AppName::parse(app).unwrap(), TaskName::parse(task).unwrap())
}

async fn put(
    store: &dyn Store,
    tenant: TenantId,
    task: &str,
    deps: &[&str],
) -> Result<(), StoreError> {
    let task = r(task);
    store
        .put_task(
            tenant,
            &change(),
            &task.app,
            &task.task,
            task_definition(),
            deps.iter().map(|d| r(d)).collect(),
        )
        .await
        .map(drop)
}

pub(crate) async fn story(store: &dyn Store, acme: TenantId, globex: TenantId) {
    apps(store, acme, globex).await;
    instances(store, acme, globex).await;
    graph(store, acme, globex).await;
    deletes(store, acme).await;
    trail(store, acme).await;
    imports(store, acme, globex).await;
}

/// A logo comes with a definition, and stays when the next one comes without.
async fn logos(store: &dyn Store, acme: TenantId, globex: TenantId, dns: &AppName) {
    assert_eq!(store.app_logo(acme, dns).await.unwrap(), None);
    let png = b"\x89PNG\r\n\x1a\n-logo".to_vec();
    let logo = vigil_automation::AppLogo::sniff(png).unwrap();
    let (with_logo, _) = store
        .put_app(
            acme,
            &change(),
            dns,
            app_definition("2.0.1"),
            Some(logo.clone()),
        )
        .await
        .unwrap();
    assert_eq!(with_logo.logo_type.as_deref(), Some("image/png"));
    store
        .put_app(acme, &change(), dns, app_definition("2.0.2"), None)
        .await
        .unwrap();
    assert_eq!(store.app_logo(acme, dns).await.unwrap(), Some(logo), "kept");
    assert!(matches!(
        store.app_logo(globex, dns).await,
        Err(StoreError::NotFound)
    ));
}

async fn apps(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let abuse = AppName::parse("abuse").unwrap();
    let dns = AppName::parse("dns").unwrap();
    let (created, new) = store
        .put_app(acme, &change(), &abuse, app_definition("1.0.0"), None)
        .await
        .unwrap();
    assert!(new, "a new app is created");
    let (updated, new) = store
        .put_app(acme, &change(), &abuse, app_definition("1.1.0"), None)
        .await
        .unwrap();
    assert!(!new, "the same name updates");
    assert_eq!(
        (updated.id, updated.created_at),
        (created.id, created.created_at)
    );
    assert_eq!(updated.definition.version, "1.1.0");
    assert_eq!(store.get_app(acme, &abuse).await.unwrap(), updated);
    assert!(
        matches!(
            store.get_app(globex, &abuse).await,
            Err(StoreError::NotFound)
        ),
        "another tenant's app is not found"
    );
    store
        .put_app(acme, &change(), &dns, app_definition("2.0.0"), None)
        .await
        .unwrap();
    logos(store, acme, globex, &dns).await;
    let first = store.list_apps(acme, PageRequest::first(1)).await.unwrap();
    assert_eq!(first.items[0].name, dns, "newest first");
    let rest = store
        .list_apps(acme, PageRequest::new(Some(1), first.next_cursor))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].name, abuse);
    assert_eq!(rest.next_cursor, None);
    assert!(
        store
            .list_apps(globex, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn instance(app: &AppName, name: &str) -> vigil_automation::Instance {
    let now = vigil_domain::Timestamp::now();
    vigil_automation::Instance {
        id: uuid::Uuid::now_v7(),
        app: app.clone(),
        name: vigil_automation::InstanceName::parse(name).unwrap(),
        base_url: Some(vigil_domain::SourceUrl::parse("https://api.example.com").unwrap()),
        config: json!({"region": "eu"}).as_object().unwrap().clone(),
        secret_fields: std::collections::BTreeSet::new(),
        rate_limit_per_minute: Some(60),
        concurrency_max: 2,
        enabled: true,
        health: None,
        created_at: now,
        updated_at: now,
    }
}

/// Instances: several per app, secrets sealed elsewhere and kept as bytes, per tenant.
async fn instances(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let abuse = AppName::parse("abuse").unwrap();
    let sealed = std::collections::BTreeMap::from([("key".to_owned(), vec![1u8, 2, 3])]);
    let first = store
        .create_instance(
            acme,
            &change(),
            instance(&abuse, "client-a"),
            sealed.clone(),
        )
        .await
        .unwrap();
    assert_eq!(first.secret_fields.iter().collect::<Vec<_>>(), ["key"]);
    let second = store
        .create_instance(
            acme,
            &change(),
            instance(&abuse, "client-b"),
            Default::default(),
        )
        .await
        .unwrap();
    let twice = store
        .create_instance(
            acme,
            &change(),
            instance(&abuse, "client-a"),
            Default::default(),
        )
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let read = store.get_instance(acme, first.id).await.unwrap();
    assert_eq!(read, first);
    assert!(matches!(
        store.get_instance(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.instance_secrets(acme, first.id).await.unwrap(),
        sealed
    );
    assert!(matches!(
        store.instance_secrets(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
    let page = store
        .list_instances(acme, PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(page.items[0].id, second.id, "newest first");
    assert!(page.next_cursor.is_some());
    assert!(
        store
            .list_instances(globex, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    instance_updates(store, acme, globex, first, second).await;
}

/// Updates keep or replace the secrets; health is recorded; deletes are per tenant.
async fn instance_updates(
    store: &dyn Store,
    acme: TenantId,
    globex: TenantId,
    first: vigil_automation::Instance,
    second: vigil_automation::Instance,
) {
    let sealed = store.instance_secrets(acme, first.id).await.unwrap();
    let mut changed = first.clone();
    changed.enabled = false;
    let kept = store
        .update_instance(acme, &change(), changed.clone(), None)
        .await
        .unwrap();
    assert!(!kept.enabled);
    assert_eq!(
        store.instance_secrets(acme, first.id).await.unwrap(),
        sealed,
        "kept"
    );
    let none = std::collections::BTreeMap::new();
    let cleared = store
        .update_instance(acme, &change(), changed, Some(none))
        .await
        .unwrap();
    assert!(cleared.secret_fields.is_empty());
    assert!(
        store
            .instance_secrets(acme, first.id)
            .await
            .unwrap()
            .is_empty()
    );
    let health = vigil_automation::Health {
        ok: false,
        checked_at: vigil_domain::Timestamp::now(),
        last_ok_at: None,
        error: Some("HTTP 503".into()),
    };
    store
        .set_instance_health(acme, first.id, health.clone())
        .await
        .unwrap();
    let checked = store.get_instance(acme, first.id).await.unwrap();
    assert_eq!(checked.health.and_then(|h| h.error), health.error.clone());
    assert!(matches!(
        store.set_instance_health(globex, first.id, health).await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_instance(acme, &change(), second.id)
        .await
        .unwrap();
    assert!(matches!(
        store.get_instance(acme, second.id).await,
        Err(StoreError::NotFound)
    ));
    // `first` goes with its app (in `deletes`).
}

/// Tasks and the graph: dns/resolve ← abuse/lookup ← abuse/report.
async fn graph(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let abuse = AppName::parse("abuse").unwrap();
    put(store, acme, "dns/resolve", &[]).await.unwrap();
    put(store, acme, "abuse/lookup", &["dns/resolve"])
        .await
        .unwrap();
    put(store, acme, "abuse/report", &["abuse/lookup"])
        .await
        .unwrap();
    let missing = put(store, acme, "abuse/other", &["dns/nope"]).await;
    assert!(
        matches!(&missing, Err(StoreError::Invalid(e)) if e.what() == "depends_on"),
        "a missing dependency is refused: {missing:?}"
    );
    let cycle = put(store, acme, "dns/resolve", &["abuse/report"]).await;
    match &cycle {
        Err(StoreError::Invalid(e)) => assert!(
            e.reason()
                .contains("dns/resolve → abuse/report → abuse/lookup → dns/resolve"),
            "the cycle is named in order: {e}"
        ),
        other => panic!("a cycle is refused: {other:?}"),
    }
    let unknown_app = put(store, acme, "nope/x", &[]).await;
    assert!(
        matches!(unknown_app, Err(StoreError::NotFound)),
        "{unknown_app:?}"
    );
    assert!(
        matches!(
            put(store, globex, "dns/resolve", &[]).await,
            Err(StoreError::NotFound)
        ),
        "another tenant's app takes no task"
    );
    let lookup = store.get_task(acme, &r("abuse/lookup")).await.unwrap();
    assert_eq!(lookup.depends_on, [r("dns/resolve")]);
    assert_eq!(lookup.definition, task_definition());
    let listed = store.list_tasks(acme, &abuse).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["lookup", "report"]);
    assert_eq!(
        store
            .task_dependants(acme, &r("dns/resolve"))
            .await
            .unwrap(),
        [r("abuse/lookup")]
    );
    let mut edges = store.task_edges(acme).await.unwrap();
    edges.sort();
    assert_eq!(edges.len(), 2);
    assert!(store.task_edges(globex).await.unwrap().is_empty());
}

/// Deletes that would leave a dependant dangling are refused with the dependants.
async fn deletes(store: &dyn Store, acme: TenantId) {
    let abuse = AppName::parse("abuse").unwrap();
    let dns = AppName::parse("dns").unwrap();
    match store.delete_task(acme, &change(), &r("abuse/lookup")).await {
        Err(StoreError::InUse { dependants, .. }) => assert_eq!(dependants, ["abuse/report"]),
        other => panic!("a task others depend on stays: {other:?}"),
    }
    match store.delete_app(acme, &change(), &dns).await {
        Err(StoreError::InUse { dependants, .. }) => assert_eq!(dependants, ["abuse/lookup"]),
        other => panic!("an app another app depends on stays: {other:?}"),
    }
    // An app's own internal links do not hold it: abuse goes with both its tasks.
    let left = store
        .list_instances(acme, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    store.delete_app(acme, &change(), &abuse).await.unwrap();
    assert!(matches!(
        store.get_app(acme, &abuse).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .list_instances(acme, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "an app's instances go with it"
    );
    assert!(matches!(
        store.get_task(acme, &r("abuse/lookup")).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store
            .task_dependants(acme, &r("dns/resolve"))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .delete_task(acme, &change(), &r("dns/resolve"))
        .await
        .unwrap();
    store.delete_app(acme, &change(), &dns).await.unwrap();
}

async fn trail(store: &dyn Store, acme: TenantId) {
    let trail = store
        .list_audit(acme, &AuditFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    let actions: Vec<&str> = trail
        .items
        .iter()
        .filter(|e| matches!(e.fields.entity_type.as_str(), "app" | "task"))
        .map(|e| e.fields.action.as_str())
        .collect();
    for expected in [
        "app.create",
        "app.update",
        "task.create",
        "task.delete",
        "app.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} is audited: {actions:?}"
        );
    }
}

type ImportedApp = (AppName, AppDefinition, Option<vigil_automation::AppLogo>);
type ImportedTask = (TaskRef, TaskDefinition, Vec<TaskRef>);

fn imported_app(name: &str) -> ImportedApp {
    (AppName::parse(name).unwrap(), app_definition("2.0.0"), None)
}

fn imported_task(raw: &str, deps: &[&str]) -> ImportedTask {
    (
        r(raw),
        task_definition(),
        deps.iter().map(|d| r(d)).collect(),
    )
}

/// One import writes everything or nothing.
async fn imports(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let (app, task) = (imported_app, imported_task);
    let import = crate::AppImport {
        apps: vec![app("imp-a"), app("imp-b")],
        // Dependencies first: imp-b/y depends on imp-a/x, written in the same import.
        tasks: vec![task("imp-a/x", &[]), task("imp-b/y", &["imp-a/x"])],
        removed: vec![],
    };
    store.import_apps(acme, &change(), import).await.unwrap();
    let y = store.get_task(acme, &r("imp-b/y")).await.unwrap();
    assert_eq!(y.depends_on, vec![r("imp-a/x")]);
    assert!(matches!(
        store
            .get_app(globex, &AppName::parse("imp-a").unwrap())
            .await,
        Err(StoreError::NotFound)
    ));

    // A missing dependency, a cycle, a removed task still depended on: nothing is written.
    let refused = [
        crate::AppImport {
            apps: vec![app("imp-c")],
            tasks: vec![task("imp-c/z", &["imp-a/nope"])],
            removed: vec![],
        },
        crate::AppImport {
            apps: vec![app("imp-c")],
            tasks: vec![task("imp-c/z", &["imp-b/y"]), task("imp-a/x", &["imp-c/z"])],
            removed: vec![],
        },
        crate::AppImport {
            apps: vec![app("imp-c")],
            tasks: vec![],
            removed: vec![r("imp-a/x")],
        },
    ];
    for (i, import) in refused.into_iter().enumerate() {
        let err = store
            .import_apps(acme, &change(), import)
            .await
            .unwrap_err();
        match i {
            0 => assert!(
                matches!(&err, StoreError::Invalid(e) if e.reason().contains("does not exist")),
                "{err:?}"
            ),
            1 => assert!(
                matches!(&err, StoreError::Invalid(e) if e.reason().contains("cycle")),
                "{err:?}"
            ),
            _ => assert!(matches!(&err, StoreError::InUse { .. }), "{err:?}"),
        }
        assert!(
            matches!(
                store.get_app(acme, &AppName::parse("imp-c").unwrap()).await,
                Err(StoreError::NotFound)
            ),
            "import {i} left its app behind"
        );
        let x = store.get_task(acme, &r("imp-a/x")).await.unwrap();
        assert!(x.depends_on.is_empty(), "import {i} changed imp-a/x");
    }
}
