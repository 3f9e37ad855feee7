use async_trait::async_trait;
use rusqlite::{Connection, Row, params};
use vigil_automation::{AppDefinition, AppName, TaskDefinition, TaskName, TaskRef};
use vigil_domain::{Cursor, PageRequest, ParseError, TenantId, Timestamp};
use vigil_store::{
    App, AppImport, AuditDraft, AutomationRepo, Change, Page, StoreError, StoreResult, Task,
    cycle_with,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{exec, map_err};

const APP_COLUMNS: &str = "id, name, definition, logo_type, created_at, updated_at";
const TASK_COLUMNS: &str = "app, name, definition, created_at, updated_at";

fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        source: ParseError::new("definition", reason.to_string()),
    }
}

fn app_row(row: &Row<'_>) -> StoreResult<App> {
    let get = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
    let id = uuid::Uuid::try_parse(&get(0)?).map_err(|err| corrupt("apps", err))?;
    let name = AppName::parse(&get(1)?).map_err(|err| corrupt("apps", err))?;
    let definition: AppDefinition =
        serde_json::from_str(&get(2)?).map_err(|err| corrupt("apps", err))?;
    Ok(App {
        id,
        name,
        definition,
        logo_type: row.get(3).map_err(map_err)?,
        created_at: Timestamp::from_unix_micros(row.get(4).map_err(map_err)?),
        updated_at: Timestamp::from_unix_micros(row.get(5).map_err(map_err)?),
    })
}

fn apps(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<App>> {
    let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = statement.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        out.push(app_row(row)?);
    }
    Ok(out)
}

fn app_in(conn: &Connection, tenant: TenantId, name: &AppName) -> StoreResult<Option<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = ?1 AND name = ?2");
    Ok(
        apps(conn, &sql, params![tenant.to_string(), name.as_str()])?
            .into_iter()
            .next(),
    )
}

fn deps_of(conn: &Connection, tenant: TenantId, task: &TaskRef) -> StoreResult<Vec<TaskRef>> {
    refs(
        conn,
        "SELECT dep_app, dep_task FROM task_deps WHERE tenant_id = ?1 AND app = ?2 AND task = ?3
         ORDER BY dep_app, dep_task",
        params![tenant.to_string(), task.app.as_str(), task.task.as_str()],
    )
}

fn refs(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<Vec<TaskRef>> {
    let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = statement.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let app: String = row.get(0).map_err(map_err)?;
        let task: String = row.get(1).map_err(map_err)?;
        out.push(TaskRef::new(
            AppName::parse(&app).map_err(|err| corrupt("task_deps", err))?,
            TaskName::parse(&task).map_err(|err| corrupt("task_deps", err))?,
        ));
    }
    Ok(out)
}

fn tasks(
    conn: &Connection,
    tenant: TenantId,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Task>> {
    let mut found = Vec::new();
    {
        let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
        let mut rows = statement.query(params).map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            let get = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
            let app = AppName::parse(&get(0)?).map_err(|err| corrupt("tasks", err))?;
            let name = TaskName::parse(&get(1)?).map_err(|err| corrupt("tasks", err))?;
            let definition: TaskDefinition =
                serde_json::from_str(&get(2)?).map_err(|err| corrupt("tasks", err))?;
            found.push(Task {
                app,
                name,
                definition,
                depends_on: Vec::new(),
                created_at: Timestamp::from_unix_micros(row.get(3).map_err(map_err)?),
                updated_at: Timestamp::from_unix_micros(row.get(4).map_err(map_err)?),
            });
        }
    }
    for task in &mut found {
        task.depends_on = deps_of(conn, tenant, &task.task_ref())?;
    }
    Ok(found)
}

fn task_in(conn: &Connection, tenant: TenantId, task: &TaskRef) -> StoreResult<Option<Task>> {
    let sql =
        format!("SELECT {TASK_COLUMNS} FROM tasks WHERE tenant_id = ?1 AND app = ?2 AND name = ?3");
    Ok(tasks(
        conn,
        tenant,
        &sql,
        params![tenant.to_string(), task.app.as_str(), task.task.as_str()],
    )?
    .into_iter()
    .next())
}

fn dependants(conn: &Connection, tenant: TenantId, task: &TaskRef) -> StoreResult<Vec<TaskRef>> {
    refs(
        conn,
        "SELECT app, task FROM task_deps WHERE tenant_id = ?1 AND dep_app = ?2 AND dep_task = ?3
         ORDER BY app, task",
        params![tenant.to_string(), task.app.as_str(), task.task.as_str()],
    )
}

fn edges(conn: &Connection, tenant: TenantId) -> StoreResult<Vec<(TaskRef, TaskRef)>> {
    let mut statement = conn
        .prepare_cached("SELECT app, task, dep_app, dep_task FROM task_deps WHERE tenant_id = ?1")
        .map_err(map_err)?;
    let mut rows = statement
        .query(params![tenant.to_string()])
        .map_err(map_err)?;
    let mut out = Vec::new();
    let name = |raw: String| AppName::parse(&raw).map_err(|err| corrupt("task_deps", err));
    let task = |raw: String| TaskName::parse(&raw).map_err(|err| corrupt("task_deps", err));
    while let Some(row) = rows.next().map_err(map_err)? {
        let get = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
        out.push((
            TaskRef::new(name(get(0)?)?, task(get(1)?)?),
            TaskRef::new(name(get(2)?)?, task(get(3)?)?),
        ));
    }
    Ok(out)
}

fn in_use(what: String, by: Vec<TaskRef>) -> StoreError {
    StoreError::InUse {
        what,
        dependants: by.iter().map(ToString::to_string).collect(),
    }
}

/// Writes the task's row and replaces its dependency links.
fn write_task(tx: &Connection, tenant: TenantId, stored: &Task) -> StoreResult<()> {
    let me = stored.task_ref();
    let depends_on = &stored.depends_on;
    let now = stored.updated_at;
    let text = serde_json::to_string(&stored.definition)
        .map_err(|err| StoreError::Backend(err.to_string()))?;
    exec(
        tx,
        "INSERT INTO tasks (tenant_id, app, name, definition, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, app, name) DO UPDATE SET definition = excluded.definition,
                updated_at = excluded.updated_at",
        params![
            tenant.to_string(),
            me.app.as_str(),
            me.task.as_str(),
            text,
            stored.created_at.unix_micros(),
            now.unix_micros(),
        ],
    )?;
    exec(
        tx,
        "DELETE FROM task_deps WHERE tenant_id = ?1 AND app = ?2 AND task = ?3",
        params![tenant.to_string(), me.app.as_str(), me.task.as_str()],
    )?;
    for dep in depends_on {
        exec(
            tx,
            "INSERT INTO task_deps (tenant_id, app, task, dep_app, dep_task)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                tenant.to_string(),
                me.app.as_str(),
                me.task.as_str(),
                dep.app.as_str(),
                dep.task.as_str()
            ],
        )?;
    }
    Ok(())
}

/// Removes the task and its links, audited; `InUse` while another task depends on it.
fn remove_task(
    tx: &Connection,
    tenant: TenantId,
    change: &Change,
    task: &TaskRef,
    now: Timestamp,
) -> StoreResult<()> {
    let before = task_in(tx, tenant, task)?.ok_or(StoreError::NotFound)?;
    let by: Vec<TaskRef> = dependants(tx, tenant, task)?
        .into_iter()
        .filter(|d| *d != *task)
        .collect();
    if !by.is_empty() {
        return Err(in_use(format!("task {task}"), by));
    }
    exec(
        tx,
        "DELETE FROM task_deps WHERE tenant_id = ?1 AND app = ?2 AND task = ?3",
        params![tenant.to_string(), task.app.as_str(), task.task.as_str()],
    )?;
    exec(
        tx,
        "DELETE FROM tasks WHERE tenant_id = ?1 AND app = ?2 AND name = ?3",
        params![tenant.to_string(), task.app.as_str(), task.task.as_str()],
    )?;
    append(
        tx,
        tenant,
        change,
        AuditDraft::task("task.delete", Some(&before), None),
        now,
    )
}

/// Creates the task or replaces it, with its dependency links, audited.
fn save_task(
    tx: &Connection,
    tenant: TenantId,
    change: &Change,
    me: &TaskRef,
    definition: TaskDefinition,
    depends_on: Vec<TaskRef>,
    now: Timestamp,
) -> StoreResult<(Task, bool)> {
    let before = task_in(tx, tenant, me)?;
    let stored = Task {
        app: me.app.clone(),
        name: me.task.clone(),
        definition,
        depends_on: depends_on.clone(),
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    write_task(tx, tenant, &stored)?;
    let action = if before.is_some() {
        "task.update"
    } else {
        "task.create"
    };
    append(
        tx,
        tenant,
        change,
        AuditDraft::task(action, before.as_ref(), Some(&stored)),
        now,
    )?;
    Ok((stored, before.is_none()))
}

/// Creates the app or replaces its definition (and its logo when one comes), audited.
fn write_app(
    tx: &Connection,
    tenant: TenantId,
    change: &Change,
    name: &AppName,
    definition: AppDefinition,
    logo: Option<&vigil_automation::AppLogo>,
    now: Timestamp,
) -> StoreResult<(App, bool)> {
    let before = app_in(tx, tenant, name)?;
    let stored = App {
        id: before.as_ref().map_or_else(uuid::Uuid::now_v7, |b| b.id),
        name: name.clone(),
        definition,
        logo_type: logo.map_or_else(
            || before.as_ref().and_then(|b| b.logo_type.clone()),
            |l| Some(l.media_type.to_owned()),
        ),
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    let text = serde_json::to_string(&stored.definition)
        .map_err(|err| StoreError::Backend(err.to_string()))?;
    exec(
        tx,
        "INSERT INTO apps (tenant_id, id, name, definition, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant_id, name) DO UPDATE SET definition = excluded.definition,
            updated_at = excluded.updated_at",
        params![
            tenant.to_string(),
            stored.id.to_string(),
            name.as_str(),
            text,
            stored.created_at.unix_micros(),
            now.unix_micros(),
        ],
    )?;
    if let Some(logo) = logo {
        exec(
            tx,
            "UPDATE apps SET logo = ?3, logo_type = ?4 WHERE tenant_id = ?1 AND name = ?2",
            params![
                tenant.to_string(),
                name.as_str(),
                logo.bytes,
                logo.media_type
            ],
        )?;
    }
    let action = if before.is_some() {
        "app.update"
    } else {
        "app.create"
    };
    append(
        tx,
        tenant,
        change,
        AuditDraft::app(action, before.as_ref(), Some(&stored)),
        now,
    )?;
    Ok((stored, before.is_none()))
}

/// The whole import in the caller's transaction (see `AutomationRepo::import_apps`).
fn import_in(
    tx: &Connection,
    tenant: TenantId,
    change: &Change,
    import: AppImport,
    now: Timestamp,
) -> StoreResult<()> {
    for (name, definition, logo) in import.apps {
        write_app(tx, tenant, change, &name, definition, logo.as_ref(), now)?;
    }
    for (me, definition, depends_on) in import.tasks {
        for dep in &depends_on {
            if *dep != me && task_in(tx, tenant, dep)?.is_none() {
                return Err(StoreError::Invalid(ParseError::new(
                    "depends_on",
                    format!("{me}: {dep} does not exist"),
                )));
            }
        }
        save_task(tx, tenant, change, &me, definition, depends_on, now)?;
    }
    for task in &import.removed {
        remove_task(tx, tenant, change, task, now)?;
    }
    if let Some(cycle) = vigil_store::cycle_in(edges(tx, tenant)?) {
        return Err(StoreError::Invalid(ParseError::new(
            "depends_on",
            format!("would close a dependency cycle: {cycle}"),
        )));
    }
    Ok(())
}

#[async_trait]
impl AutomationRepo for SqliteStore {
    async fn import_apps(
        &self,
        tenant: TenantId,
        change: &Change,
        import: AppImport,
    ) -> StoreResult<()> {
        let change = change.clone();
        let now = Timestamp::now();
        self.write(move |tx| import_in(tx, tenant, &change, import, now))
            .await
    }

    async fn put_app(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &AppName,
        definition: AppDefinition,
        logo: Option<vigil_automation::AppLogo>,
    ) -> StoreResult<(App, bool)> {
        let now = Timestamp::now();
        let change = change.clone();
        let name = name.clone();
        self.write(move |tx| write_app(tx, tenant, &change, &name, definition, logo.as_ref(), now))
            .await
    }

    async fn app_logo(
        &self,
        tenant: TenantId,
        name: &AppName,
    ) -> StoreResult<Option<vigil_automation::AppLogo>> {
        let name = name.clone();
        self.read(move |conn| {
            app_in(conn, tenant, &name)?.ok_or(StoreError::NotFound)?;
            let (kind, bytes): (Option<String>, Option<Vec<u8>>) = conn
                .query_row(
                    "SELECT logo_type, logo FROM apps WHERE tenant_id = ?1 AND name = ?2",
                    params![tenant.to_string(), name.as_str()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(map_err)?;
            match (kind, bytes) {
                (Some(kind), Some(bytes)) => vigil_automation::AppLogo::stored(&kind, bytes)
                    .map(Some)
                    .ok_or_else(|| corrupt("apps", "unknown logo type")),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn get_app(&self, tenant: TenantId, name: &AppName) -> StoreResult<App> {
        let name = name.clone();
        self.read(move |conn| app_in(conn, tenant, &name)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_apps(&self, tenant: TenantId, page: PageRequest) -> StoreResult<Page<App>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3"
            );
            let cursor = page.cursor().map(|c| c.id().to_string());
            let rows = apps(
                conn,
                &sql,
                params![tenant.to_string(), cursor, i64::from(page.limit()) + 1],
            )?;
            Ok(Page::from_overfetch(rows, page.limit(), |a: &App| {
                Cursor::after(a.id)
            }))
        })
        .await
    }

    async fn delete_app(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &AppName,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        let name = name.clone();
        self.write(move |tx| {
            let before = app_in(tx, tenant, &name)?.ok_or(StoreError::NotFound)?;
            let outside = refs(
                tx,
                "SELECT app, task FROM task_deps
                 WHERE tenant_id = ?1 AND dep_app = ?2 AND app <> ?2 ORDER BY app, task",
                params![tenant.to_string(), name.as_str()],
            )?;
            if !outside.is_empty() {
                return Err(in_use(format!("app {name}"), outside));
            }
            exec(
                tx,
                "DELETE FROM task_deps WHERE tenant_id = ?1 AND app = ?2",
                params![tenant.to_string(), name.as_str()],
            )?;
            exec(
                tx,
                "DELETE FROM apps WHERE tenant_id = ?1 AND name = ?2",
                params![tenant.to_string(), name.as_str()],
            )?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::app("app.delete", Some(&before), None),
                now,
            )
        })
        .await
    }

    async fn put_task(
        &self,
        tenant: TenantId,
        change: &Change,
        app: &AppName,
        name: &TaskName,
        definition: TaskDefinition,
        depends_on: Vec<TaskRef>,
    ) -> StoreResult<(Task, bool)> {
        let now = Timestamp::now();
        let change = change.clone();
        let me = TaskRef::new(app.clone(), name.clone());
        self.write(move |tx| {
            app_in(tx, tenant, &me.app)?.ok_or(StoreError::NotFound)?;
            for dep in &depends_on {
                if *dep != me && task_in(tx, tenant, dep)?.is_none() {
                    return Err(StoreError::Invalid(ParseError::new(
                        "depends_on",
                        format!("{dep} does not exist"),
                    )));
                }
            }
            if let Some(cycle) = cycle_with(edges(tx, tenant)?, &me, &depends_on) {
                return Err(StoreError::Invalid(ParseError::new(
                    "depends_on",
                    format!("would close a dependency cycle: {cycle}"),
                )));
            }
            save_task(tx, tenant, &change, &me, definition, depends_on, now)
        })
        .await
    }

    async fn get_task(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Task> {
        let task = task.clone();
        self.read(move |conn| task_in(conn, tenant, &task)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_tasks(&self, tenant: TenantId, app: &AppName) -> StoreResult<Vec<Task>> {
        let app = app.clone();
        self.read(move |conn| {
            app_in(conn, tenant, &app)?.ok_or(StoreError::NotFound)?;
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE tenant_id = ?1 AND app = ?2 ORDER BY name"
            );
            tasks(
                conn,
                tenant,
                &sql,
                params![tenant.to_string(), app.as_str()],
            )
        })
        .await
    }

    async fn delete_task(
        &self,
        tenant: TenantId,
        change: &Change,
        task: &TaskRef,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        let task = task.clone();
        self.write(move |tx| remove_task(tx, tenant, &change, &task, now))
            .await
    }

    async fn task_dependants(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Vec<TaskRef>> {
        let task = task.clone();
        self.read(move |conn| {
            task_in(conn, tenant, &task)?.ok_or(StoreError::NotFound)?;
            dependants(conn, tenant, &task)
        })
        .await
    }

    async fn task_edges(&self, tenant: TenantId) -> StoreResult<Vec<(TaskRef, TaskRef)>> {
        self.read(move |conn| edges(conn, tenant)).await
    }

    async fn create_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: vigil_automation::Instance,
        sealed: std::collections::BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<vigil_automation::Instance> {
        self.create_instance_in(tenant, change, instance, sealed)
            .await
    }

    async fn get_instance(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<vigil_automation::Instance> {
        self.get_instance_in(tenant, id).await
    }

    async fn list_instances(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<vigil_automation::Instance>> {
        self.list_instances_in(tenant, page).await
    }

    async fn update_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: vigil_automation::Instance,
        sealed: Option<std::collections::BTreeMap<String, Vec<u8>>>,
    ) -> StoreResult<vigil_automation::Instance> {
        self.update_instance_in(tenant, change, instance, sealed)
            .await
    }

    async fn delete_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
    ) -> StoreResult<()> {
        self.delete_instance_in(tenant, change, id).await
    }

    async fn instance_secrets(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<std::collections::BTreeMap<String, Vec<u8>>> {
        self.instance_secrets_in(tenant, id).await
    }

    async fn set_instance_health(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        health: vigil_automation::Health,
    ) -> StoreResult<()> {
        self.set_instance_health_in(tenant, id, health).await
    }
}
