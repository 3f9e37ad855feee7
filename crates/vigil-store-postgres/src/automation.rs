use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use vigil_automation::{AppDefinition, AppName, TaskDefinition, TaskName, TaskRef};
use vigil_domain::{PageRequest, ParseError, TenantId, Timestamp};
use vigil_store::{
    App, AppImport, AuditDraft, AutomationRepo, Change, Page, StoreError, StoreResult, Task,
    cycle_with,
};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::map_err;

const APP_COLUMNS: &str =
    "id, name, definition::text AS definition_text, logo_type, created_at, updated_at";
const TASK_COLUMNS: &str = "app, name, definition::text AS definition_text, created_at, updated_at";

/// A stored row that no longer reads as what it should be.
pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        source: ParseError::new("row", reason.to_string()),
    }
}

pub(crate) fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> StoreResult<T> {
    row.try_get(column).map_err(map_err)
}

fn app_row(row: &PgRow) -> StoreResult<App> {
    let definition: AppDefinition = serde_json::from_str(&get::<String>(row, "definition_text")?)
        .map_err(|err| corrupt("apps", err))?;
    Ok(App {
        id: get(row, "id")?,
        name: AppName::parse(&get::<String>(row, "name")?).map_err(|err| corrupt("apps", err))?,
        definition,
        logo_type: get(row, "logo_type")?,
        created_at: Timestamp::from_datetime(get(row, "created_at")?),
        updated_at: Timestamp::from_datetime(get(row, "updated_at")?),
    })
}

fn task_ref(row: &PgRow, app: &str, task: &str) -> StoreResult<TaskRef> {
    Ok(TaskRef::new(
        AppName::parse(&get::<String>(row, app)?).map_err(|err| corrupt("task_deps", err))?,
        TaskName::parse(&get::<String>(row, task)?).map_err(|err| corrupt("task_deps", err))?,
    ))
}

/// Serializes the writes that change a tenant's dependency graph, so that two concurrent
/// saves cannot each close half of a cycle.
async fn lock_graph(conn: &mut PgConnection, tenant: TenantId) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(crate::LOCK_CLASS_TASK_GRAPH)
        .bind(tenant.to_string())
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn app_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &AppName,
) -> StoreResult<Option<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 AND name = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.as_uuid())
        .bind(name.as_str())
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
    row.as_ref().map(app_row).transpose()
}

/// Which way a task's dependency links are read.
#[derive(Clone, Copy)]
enum Links {
    /// What the task depends on.
    DependsOn,
    /// What depends on the task.
    Dependants,
}

async fn links(
    conn: &mut PgConnection,
    tenant: TenantId,
    task: &TaskRef,
    which: Links,
) -> StoreResult<Vec<TaskRef>> {
    let sql = match which {
        Links::DependsOn => {
            "SELECT dep_app AS a, dep_task AS t FROM task_deps
             WHERE tenant_id = $1 AND app = $2 AND task = $3 ORDER BY 1, 2"
        }
        Links::Dependants => {
            "SELECT app AS a, task AS t FROM task_deps
             WHERE tenant_id = $1 AND dep_app = $2 AND dep_task = $3 ORDER BY 1, 2"
        }
    };
    let rows = sqlx::query(sql)
        .bind(tenant.as_uuid())
        .bind(task.app.as_str())
        .bind(task.task.as_str())
        .fetch_all(conn)
        .await
        .map_err(map_err)?;
    rows.iter().map(|r| task_ref(r, "a", "t")).collect()
}

async fn tasks_where(
    conn: &mut PgConnection,
    tenant: TenantId,
    app: &AppName,
    name: Option<&TaskName>,
) -> StoreResult<Vec<Task>> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE tenant_id = $1 AND app = $2
         AND ($3::text IS NULL OR name = $3) ORDER BY name"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant.as_uuid())
        .bind(app.as_str())
        .bind(name.map(TaskName::as_str))
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let definition: TaskDefinition =
            serde_json::from_str(&get::<String>(row, "definition_text")?)
                .map_err(|err| corrupt("tasks", err))?;
        let mut task = Task {
            app: app.clone(),
            name: TaskName::parse(&get::<String>(row, "name")?)
                .map_err(|err| corrupt("tasks", err))?,
            definition,
            depends_on: Vec::new(),
            created_at: Timestamp::from_datetime(get(row, "created_at")?),
            updated_at: Timestamp::from_datetime(get(row, "updated_at")?),
        };
        task.depends_on = links(conn, tenant, &task.task_ref(), Links::DependsOn).await?;
        out.push(task);
    }
    Ok(out)
}

async fn task_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    task: &TaskRef,
) -> StoreResult<Option<Task>> {
    Ok(tasks_where(conn, tenant, &task.app, Some(&task.task))
        .await?
        .into_iter()
        .next())
}

async fn edges(conn: &mut PgConnection, tenant: TenantId) -> StoreResult<Vec<(TaskRef, TaskRef)>> {
    let rows =
        sqlx::query("SELECT app, task, dep_app, dep_task FROM task_deps WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_all(conn)
            .await
            .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                task_ref(r, "app", "task")?,
                task_ref(r, "dep_app", "dep_task")?,
            ))
        })
        .collect()
}

fn in_use(what: String, by: &[TaskRef]) -> StoreError {
    StoreError::InUse {
        what,
        dependants: by.iter().map(ToString::to_string).collect(),
    }
}

fn json_text(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|err| StoreError::Backend(err.to_string()))
}

/// Writes the task's row and replaces its dependency links.
async fn write_task(conn: &mut PgConnection, tenant: TenantId, stored: &Task) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tasks (tenant_id, app, name, definition, created_at, updated_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6)
         ON CONFLICT (tenant_id, app, name) DO UPDATE SET definition = excluded.definition,
            updated_at = excluded.updated_at",
    )
    .bind(tenant.as_uuid())
    .bind(stored.app.as_str())
    .bind(stored.name.as_str())
    .bind(json_text(&stored.definition)?)
    .bind(stored.created_at.to_datetime())
    .bind(stored.updated_at.to_datetime())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    sqlx::query("DELETE FROM task_deps WHERE tenant_id = $1 AND app = $2 AND task = $3")
        .bind(tenant.as_uuid())
        .bind(stored.app.as_str())
        .bind(stored.name.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    for dep in &stored.depends_on {
        sqlx::query(
            "INSERT INTO task_deps (tenant_id, app, task, dep_app, dep_task)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.as_uuid())
        .bind(stored.app.as_str())
        .bind(stored.name.as_str())
        .bind(dep.app.as_str())
        .bind(dep.task.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Removes the task and its links, audited; `InUse` while another task depends on it.
async fn remove_task(
    conn: &mut PgConnection,
    tenant: TenantId,
    change: &Change,
    task: &TaskRef,
    now: Timestamp,
) -> StoreResult<()> {
    let before = task_in(&mut *conn, tenant, task)
        .await?
        .ok_or(StoreError::NotFound)?;
    let by: Vec<TaskRef> = links(&mut *conn, tenant, task, Links::Dependants)
        .await?
        .into_iter()
        .filter(|d| d != task)
        .collect();
    if !by.is_empty() {
        return Err(in_use(format!("task {task}"), &by));
    }
    sqlx::query("DELETE FROM task_deps WHERE tenant_id = $1 AND app = $2 AND task = $3")
        .bind(tenant.as_uuid())
        .bind(task.app.as_str())
        .bind(task.task.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    sqlx::query("DELETE FROM tasks WHERE tenant_id = $1 AND app = $2 AND name = $3")
        .bind(tenant.as_uuid())
        .bind(task.app.as_str())
        .bind(task.task.as_str())
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    let draft = AuditDraft::task("task.delete", Some(&before), None);
    append(&mut *conn, tenant, change, draft, now).await?;
    Ok(())
}

/// Creates the task or replaces it, with its dependency links, audited.
async fn save_task(
    conn: &mut PgConnection,
    tenant: TenantId,
    change: &Change,
    me: &TaskRef,
    definition: TaskDefinition,
    depends_on: Vec<TaskRef>,
    now: Timestamp,
) -> StoreResult<(Task, bool)> {
    let before = task_in(&mut *conn, tenant, me).await?;
    let stored = Task {
        app: me.app.clone(),
        name: me.task.clone(),
        definition,
        depends_on: depends_on.clone(),
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    write_task(&mut *conn, tenant, &stored).await?;
    let action = if before.is_some() {
        "task.update"
    } else {
        "task.create"
    };
    let draft = AuditDraft::task(action, before.as_ref(), Some(&stored));
    append(&mut *conn, tenant, change, draft, now).await?;
    Ok((stored, before.is_none()))
}

/// Creates the app or replaces its definition (and its logo when one comes), audited.
async fn write_app(
    conn: &mut PgConnection,
    tenant: TenantId,
    change: &Change,
    name: &AppName,
    definition: AppDefinition,
    logo: Option<&vigil_automation::AppLogo>,
    now: Timestamp,
) -> StoreResult<(App, bool)> {
    // The row lock (or, for a new name, the primary key) serializes two saves of one app.
    let sql =
        format!("SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 AND name = $2 FOR UPDATE");
    let before = sqlx::query(&sql)
        .bind(tenant.as_uuid())
        .bind(name.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(app_row)
        .transpose()?;
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
    sqlx::query(
        "INSERT INTO apps (tenant_id, id, name, definition, created_at, updated_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6)
         ON CONFLICT (tenant_id, name) DO UPDATE SET definition = excluded.definition,
            updated_at = excluded.updated_at",
    )
    .bind(tenant.as_uuid())
    .bind(stored.id)
    .bind(name.as_str())
    .bind(json_text(&stored.definition)?)
    .bind(stored.created_at.to_datetime())
    .bind(now.to_datetime())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if let Some(logo) = logo {
        sqlx::query("UPDATE apps SET logo = $3, logo_type = $4 WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.as_uuid())
            .bind(name.as_str())
            .bind(&logo.bytes)
            .bind(logo.media_type)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    let action = if before.is_some() {
        "app.update"
    } else {
        "app.create"
    };
    let draft = AuditDraft::app(action, before.as_ref(), Some(&stored));
    append(&mut *conn, tenant, change, draft, now).await?;
    Ok((stored, before.is_none()))
}

/// The whole import in the caller's transaction (see `AutomationRepo::import_apps`).
async fn import_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    change: &Change,
    import: AppImport,
    now: Timestamp,
) -> StoreResult<()> {
    lock_graph(&mut *conn, tenant).await?;
    for (name, definition, logo) in import.apps {
        write_app(
            &mut *conn,
            tenant,
            change,
            &name,
            definition,
            logo.as_ref(),
            now,
        )
        .await?;
    }
    for (me, definition, depends_on) in import.tasks {
        for dep in &depends_on {
            if *dep != me && task_in(&mut *conn, tenant, dep).await?.is_none() {
                return Err(StoreError::Invalid(ParseError::new(
                    "depends_on",
                    format!("{me}: {dep} does not exist"),
                )));
            }
        }
        save_task(&mut *conn, tenant, change, &me, definition, depends_on, now).await?;
    }
    for task in &import.removed {
        remove_task(&mut *conn, tenant, change, task, now).await?;
    }
    if let Some(cycle) = vigil_store::cycle_in(edges(&mut *conn, tenant).await?) {
        return Err(StoreError::Invalid(ParseError::new(
            "depends_on",
            format!("would close a dependency cycle: {cycle}"),
        )));
    }
    Ok(())
}

#[async_trait]
impl AutomationRepo for PostgresStore {
    async fn import_apps(
        &self,
        tenant: TenantId,
        change: &Change,
        import: AppImport,
    ) -> StoreResult<()> {
        let mut tx = self.begin_scoped(tenant).await?;
        import_in(&mut tx, tenant, change, import, Timestamp::now()).await?;
        tx.commit().await.map_err(map_err)
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
        let mut tx = self.begin_scoped(tenant).await?;
        let (stored, created) = write_app(
            &mut tx,
            tenant,
            change,
            name,
            definition,
            logo.as_ref(),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok((stored, created))
    }

    async fn app_logo(
        &self,
        tenant: TenantId,
        name: &AppName,
    ) -> StoreResult<Option<vigil_automation::AppLogo>> {
        let row =
            sqlx::query("SELECT logo_type, logo FROM apps WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.as_uuid())
                .bind(name.as_str());
        let row = self
            .fetch_optional_scoped(tenant, row)
            .await?
            .ok_or(StoreError::NotFound)?;
        let kind: Option<String> = get(&row, "logo_type")?;
        let bytes: Option<Vec<u8>> = get(&row, "logo")?;
        match (kind, bytes) {
            (Some(kind), Some(bytes)) => vigil_automation::AppLogo::stored(&kind, bytes)
                .map(Some)
                .ok_or_else(|| corrupt("apps", "unknown logo type")),
            _ => Ok(None),
        }
    }

    async fn get_app(&self, tenant: TenantId, name: &AppName) -> StoreResult<App> {
        let mut tx = self.begin_scoped(tenant).await?;
        let app = app_in(&mut tx, tenant, name).await?;
        tx.commit().await.map_err(map_err)?;
        app.ok_or(StoreError::NotFound)
    }

    async fn list_apps(&self, tenant: TenantId, page: PageRequest) -> StoreResult<Page<App>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM apps WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        );
        let query = sqlx::query(&sql)
            .bind(tenant.as_uuid())
            .bind(page.cursor().map(|cursor| cursor.id()))
            .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let items = rows
            .iter()
            .map(app_row)
            .collect::<StoreResult<Vec<App>>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |a| {
            vigil_domain::Cursor::after(a.id)
        }))
    }

    async fn delete_app(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &AppName,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        lock_graph(&mut tx, tenant).await?;
        let before = app_in(&mut tx, tenant, name)
            .await?
            .ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT app, task FROM task_deps
             WHERE tenant_id = $1 AND dep_app = $2 AND app <> $2 ORDER BY app, task",
        )
        .bind(tenant.as_uuid())
        .bind(name.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let outside = rows
            .iter()
            .map(|r| task_ref(r, "app", "task"))
            .collect::<StoreResult<Vec<_>>>()?;
        if !outside.is_empty() {
            return Err(in_use(format!("app {name}"), &outside));
        }
        // The app's own links go first: PostgreSQL checks the dependency side's NO ACTION
        // reference before the cascade from `tasks` has removed them (the migration's
        // comment says otherwise; the conformance story fails without this).
        sqlx::query("DELETE FROM task_deps WHERE tenant_id = $1 AND app = $2")
            .bind(tenant.as_uuid())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM apps WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.as_uuid())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let draft = AuditDraft::app("app.delete", Some(&before), None);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)
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
        let me = TaskRef::new(app.clone(), name.clone());
        let mut tx = self.begin_scoped(tenant).await?;
        lock_graph(&mut tx, tenant).await?;
        app_in(&mut tx, tenant, app)
            .await?
            .ok_or(StoreError::NotFound)?;
        for dep in &depends_on {
            if *dep != me && task_in(&mut tx, tenant, dep).await?.is_none() {
                return Err(StoreError::Invalid(ParseError::new(
                    "depends_on",
                    format!("{dep} does not exist"),
                )));
            }
        }
        if let Some(cycle) = cycle_with(edges(&mut tx, tenant).await?, &me, &depends_on) {
            return Err(StoreError::Invalid(ParseError::new(
                "depends_on",
                format!("would close a dependency cycle: {cycle}"),
            )));
        }
        let saved = save_task(&mut tx, tenant, change, &me, definition, depends_on, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(saved)
    }

    async fn get_task(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Task> {
        let mut tx = self.begin_scoped(tenant).await?;
        let found = task_in(&mut tx, tenant, task).await?;
        tx.commit().await.map_err(map_err)?;
        found.ok_or(StoreError::NotFound)
    }

    async fn list_tasks(&self, tenant: TenantId, app: &AppName) -> StoreResult<Vec<Task>> {
        let mut tx = self.begin_scoped(tenant).await?;
        app_in(&mut tx, tenant, app)
            .await?
            .ok_or(StoreError::NotFound)?;
        let tasks = tasks_where(&mut tx, tenant, app, None).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(tasks)
    }

    async fn delete_task(
        &self,
        tenant: TenantId,
        change: &Change,
        task: &TaskRef,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        lock_graph(&mut tx, tenant).await?;
        remove_task(&mut tx, tenant, change, task, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn task_dependants(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Vec<TaskRef>> {
        let mut tx = self.begin_scoped(tenant).await?;
        task_in(&mut tx, tenant, task)
            .await?
            .ok_or(StoreError::NotFound)?;
        let found = links(&mut tx, tenant, task, Links::Dependants).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(found)
    }

    async fn task_edges(&self, tenant: TenantId) -> StoreResult<Vec<(TaskRef, TaskRef)>> {
        let mut tx = self.begin_scoped(tenant).await?;
        let found = edges(&mut tx, tenant).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(found)
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
