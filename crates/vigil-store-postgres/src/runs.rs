//! Runs and their steps (`RunRepo`). Every status change is an `UPDATE … WHERE status IN
//! (…)`: whoever changes a run first wins, the others see `false`.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use vigil_automation::{AppName, Run, RunFilter, RunStatus, RunTrigger, Step, TaskName, TaskRef};
use vigil_domain::{PageRequest, TenantId, Timestamp};
use vigil_store::{
    AuditDraft, Change, Page, RunRepo, StoreError, StoreResult, attempts_from, attempts_text,
    outputs_from, runs_corrupt as corrupt,
};

use crate::PostgresStore;
use crate::audit::append;
use crate::automation::get;
use crate::row::map_err;

const COLUMNS: &str = "id, app, task, instance_id, input::text AS input_text, status, trigger, \
                       rerun_of, requested_by, runner, error, created_at, started_at, \
                       finished_at, deadline";

fn task_ref(row: &PgRow) -> StoreResult<TaskRef> {
    Ok(TaskRef::new(
        AppName::parse(&get::<String>(row, "app")?).map_err(corrupt)?,
        TaskName::parse(&get::<String>(row, "task")?).map_err(corrupt)?,
    ))
}

fn at(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<time::OffsetDateTime>>(row, column)?.map(Timestamp::from_datetime))
}

fn decode(row: &PgRow) -> StoreResult<Run> {
    Ok(Run {
        id: get(row, "id")?,
        task: task_ref(row)?,
        instance: get(row, "instance_id")?,
        input: serde_json::from_str(&get::<String>(row, "input_text")?).map_err(corrupt)?,
        status: RunStatus::parse(&get::<String>(row, "status")?).map_err(corrupt)?,
        trigger: RunTrigger::parse(&get::<String>(row, "trigger")?).map_err(corrupt)?,
        rerun_of: get(row, "rerun_of")?,
        requested_by: get(row, "requested_by")?,
        runner: get(row, "runner")?,
        error: get(row, "error")?,
        created_at: Timestamp::from_datetime(get(row, "created_at")?),
        started_at: at(row, "started_at")?,
        finished_at: at(row, "finished_at")?,
        deadline: Timestamp::from_datetime(get(row, "deadline")?),
        steps: Vec::new(),
    })
}

fn decode_step(row: &PgRow) -> StoreResult<Step> {
    let outputs: Option<String> = get(row, "outputs_text")?;
    Ok(Step {
        seq: u32::try_from(get::<i32>(row, "seq")?).map_err(corrupt)?,
        task: task_ref(row)?,
        status: RunStatus::parse(&get::<String>(row, "status")?).map_err(corrupt)?,
        started_at: Timestamp::from_datetime(get(row, "started_at")?),
        finished_at: at(row, "finished_at")?,
        attempts: attempts_from(&get::<String>(row, "attempts_text")?)?,
        outputs: outputs_from(outputs.as_deref())?,
        error: get(row, "error")?,
    })
}

async fn run_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: uuid::Uuid,
) -> StoreResult<Option<Run>> {
    let sql = format!("SELECT {COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2");
    let Some(row) = sqlx::query(&sql)
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
    else {
        return Ok(None);
    };
    let mut run = decode(&row)?;
    let steps = sqlx::query(
        "SELECT seq, app, task, status, started_at, finished_at, attempts::text AS attempts_text,
                outputs::text AS outputs_text, error
         FROM run_steps WHERE tenant_id = $1 AND run_id = $2 ORDER BY seq",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    run.steps = steps.iter().map(decode_step).collect::<StoreResult<_>>()?;
    Ok(Some(run))
}

async fn write_step(
    conn: &mut PgConnection,
    tenant: TenantId,
    run: uuid::Uuid,
    step: &Step,
) -> StoreResult<()> {
    let outputs = step
        .outputs
        .as_ref()
        .map(|o| serde_json::to_string(o).map_err(|err| StoreError::Backend(err.to_string())))
        .transpose()?;
    sqlx::query(
        "INSERT INTO run_steps (tenant_id, run_id, seq, app, task, status, started_at, finished_at,
            attempts, outputs, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11)
         ON CONFLICT (tenant_id, run_id, seq) DO UPDATE SET status = excluded.status,
            finished_at = excluded.finished_at, attempts = excluded.attempts,
            outputs = excluded.outputs, error = excluded.error",
    )
    .bind(tenant.as_uuid())
    .bind(run)
    .bind(i32::try_from(step.seq).unwrap_or(i32::MAX))
    .bind(step.task.app.as_str())
    .bind(step.task.task.as_str())
    .bind(step.status.as_str())
    .bind(step.started_at.to_datetime())
    .bind(step.finished_at.map(|at| at.to_datetime()))
    .bind(attempts_text(&step.attempts))
    .bind(outputs)
    .bind(step.error.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn end_open_steps(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: uuid::Uuid,
    status: RunStatus,
    at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE run_steps SET status = $3, finished_at = $4
         WHERE tenant_id = $1 AND run_id = $2 AND status = 'running'",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(status.as_str())
    .bind(at.to_datetime())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Ends the run (queued or running → `status`) and its open steps; whether it did.
async fn end_run(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: uuid::Uuid,
    status: RunStatus,
    error: Option<&str>,
    at: Timestamp,
) -> StoreResult<bool> {
    let ended = sqlx::query(
        "UPDATE runs SET status = $3, error = $4, finished_at = $5
         WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running')",
    )
    .bind(tenant.as_uuid())
    .bind(id)
    .bind(status.as_str())
    .bind(error)
    .bind(at.to_datetime())
    .execute(&mut *conn)
    .await
    .map_err(map_err)?
    .rows_affected();
    if ended > 0 {
        end_open_steps(conn, tenant, id, status, at).await?;
    }
    Ok(ended > 0)
}

async fn open_ids(
    conn: &mut PgConnection,
    tenant: TenantId,
    runner: Option<&str>,
    now: Timestamp,
) -> StoreResult<(Vec<uuid::Uuid>, Vec<uuid::Uuid>)> {
    let late = sqlx::query_scalar(
        "SELECT id FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running')
           AND deadline < $2 FOR UPDATE",
    )
    .bind(tenant.as_uuid())
    .bind(now.to_datetime())
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)?;
    let interrupted = match runner {
        Some(runner) => sqlx::query_scalar(
            "SELECT id FROM runs WHERE tenant_id = $1 AND status = 'running' AND runner = $2
             FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(runner)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?,
        None => Vec::new(),
    };
    Ok((late, interrupted))
}

#[async_trait::async_trait]
impl RunRepo for PostgresStore {
    async fn create_run(&self, tenant: TenantId, change: &Change, run: &Run) -> StoreResult<()> {
        let mut tx = self.begin_scoped(tenant).await?;
        sqlx::query(
            "INSERT INTO runs (tenant_id, id, app, task, instance_id, input, status, trigger,
                rerun_of, requested_by, created_at, deadline)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)",
        )
        .bind(tenant.as_uuid())
        .bind(run.id)
        .bind(run.task.app.as_str())
        .bind(run.task.task.as_str())
        .bind(run.instance)
        .bind(run.input.to_string())
        .bind(run.status.as_str())
        .bind(run.trigger.as_str())
        .bind(run.rerun_of)
        .bind(&run.requested_by)
        .bind(run.created_at.to_datetime())
        .bind(run.deadline.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let draft = AuditDraft::run("run.create", run);
        append(&mut tx, tenant, change, draft, run.created_at).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_run(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Run> {
        let mut tx = self.begin_scoped(tenant).await?;
        let found = run_in(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(map_err)?;
        found.ok_or(StoreError::NotFound)
    }

    async fn list_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Run>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE tenant_id = $1
               AND ($2::text IS NULL OR (app = $2 AND task = $3))
               AND ($4::uuid IS NULL OR instance_id = $4)
               AND ($5::text IS NULL OR status = $5)
               AND ($6::uuid IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7"
        );
        let query = sqlx::query(&sql)
            .bind(tenant.as_uuid())
            .bind(filter.task.as_ref().map(|t| t.app.to_string()))
            .bind(filter.task.as_ref().map(|t| t.task.to_string()))
            .bind(filter.instance)
            .bind(filter.status.map(RunStatus::as_str))
            .bind(page.cursor().map(|cursor| cursor.id()))
            .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let items = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |r| {
            vigil_domain::Cursor::after(r.id)
        }))
    }

    async fn start_run(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        runner: &str,
        at: Timestamp,
        first: &Step,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_scoped(tenant).await?;
        let started = sqlx::query(
            "UPDATE runs SET status = 'running', runner = $3, started_at = $4
             WHERE tenant_id = $1 AND id = $2 AND status = 'queued'",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(runner)
        .bind(at.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if started == 0 {
            return Ok(false);
        }
        write_step(&mut tx, tenant, id, first).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn save_step(&self, tenant: TenantId, run: uuid::Uuid, step: &Step) -> StoreResult<bool> {
        let mut tx = self.begin_scoped(tenant).await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(run)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if status.as_deref() != Some(RunStatus::Running.as_str()) {
            return Ok(false);
        }
        write_step(&mut tx, tenant, run, step).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn finish_run(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        status: RunStatus,
        error: Option<&str>,
        at: Timestamp,
        last: Option<&Step>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_scoped(tenant).await?;
        if let Some(step) = last {
            // Written first so that `end_run` leaves it as it is; rolled back if the run
            // was over already.
            write_step(&mut tx, tenant, id, step).await?;
        }
        if !end_run(&mut tx, tenant, id, status, error, at).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn cancel_run(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<Run> {
        let mut tx = self.begin_scoped(tenant).await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let status = status.ok_or(StoreError::NotFound)?;
        if !end_run(&mut tx, tenant, id, RunStatus::Canceled, None, at).await? {
            return Err(StoreError::Conflict(format!("the run is over ({status})")));
        }
        let run = run_in(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        append(
            &mut tx,
            tenant,
            change,
            AuditDraft::run("run.cancel", &run),
            at,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(run)
    }

    async fn reap_runs(
        &self,
        tenant: TenantId,
        runner: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_scoped(tenant).await?;
        let (late, interrupted) = open_ids(&mut tx, tenant, runner, now).await?;
        let mut ended = 0;
        for id in &late {
            let error = Some(vigil_automation::DEADLINE_PASSED);
            ended +=
                u64::from(end_run(&mut tx, tenant, *id, RunStatus::TimedOut, error, now).await?);
        }
        for id in interrupted.iter().filter(|id| !late.contains(id)) {
            let error = Some(vigil_automation::INTERRUPTED);
            ended += u64::from(end_run(&mut tx, tenant, *id, RunStatus::Failed, error, now).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(ended)
    }

    async fn queued_runs(&self, tenant: TenantId, limit: u32) -> StoreResult<Vec<uuid::Uuid>> {
        let mut tx = self.begin_scoped(tenant).await?;
        let ids = sqlx::query_scalar(
            "SELECT id FROM runs WHERE tenant_id = $1 AND status = 'queued' ORDER BY id LIMIT $2",
        )
        .bind(tenant.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(ids)
    }
}
