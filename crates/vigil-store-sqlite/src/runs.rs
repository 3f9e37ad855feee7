//! Runs and their steps (`RunRepo`). Every status change is an `UPDATE … WHERE status IN
//! (…)`: whoever changes a run first wins, the others see `false`.

use rusqlite::{Connection, OptionalExtension, Row, params};
use vigil_automation::{AppName, Run, RunFilter, RunStatus, RunTrigger, Step, TaskName, TaskRef};
use vigil_domain::{Cursor, PageRequest, TenantId, Timestamp};
use vigil_store::{
    AuditDraft, Change, Page, RunRepo, StoreError, StoreResult, attempts_from, attempts_text,
    outputs_from,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{exec, map_err};

const COLUMNS: &str = "id, app, task, instance_id, input, status, trigger, rerun_of, \
                       requested_by, runner, error, created_at, started_at, finished_at, deadline";

use vigil_store::runs_corrupt as corrupt;

fn task_ref(app: &str, task: &str) -> StoreResult<TaskRef> {
    Ok(TaskRef::new(
        AppName::parse(app).map_err(corrupt)?,
        TaskName::parse(task).map_err(corrupt)?,
    ))
}

fn uuid(text: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::try_parse(text).map_err(corrupt)
}

fn decode(row: &Row<'_>) -> StoreResult<Run> {
    let text = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
    let opt_text = |i: usize| -> StoreResult<Option<String>> { row.get(i).map_err(map_err) };
    let at = |i: usize| -> StoreResult<Option<Timestamp>> {
        let micros: Option<i64> = row.get(i).map_err(map_err)?;
        Ok(micros.map(Timestamp::from_unix_micros))
    };
    Ok(Run {
        id: uuid(&text(0)?)?,
        task: task_ref(&text(1)?, &text(2)?)?,
        instance: uuid(&text(3)?)?,
        input: serde_json::from_str(&text(4)?).map_err(corrupt)?,
        status: RunStatus::parse(&text(5)?).map_err(corrupt)?,
        trigger: RunTrigger::parse(&text(6)?).map_err(corrupt)?,
        rerun_of: opt_text(7)?.as_deref().map(uuid).transpose()?,
        requested_by: text(8)?,
        runner: opt_text(9)?,
        error: opt_text(10)?,
        created_at: at(11)?.unwrap_or(Timestamp::from_unix_micros(0)),
        started_at: at(12)?,
        finished_at: at(13)?,
        deadline: at(14)?.unwrap_or(Timestamp::from_unix_micros(0)),
        steps: Vec::new(),
    })
}

fn decode_step(row: &Row<'_>) -> StoreResult<Step> {
    let text = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
    let seq: i64 = row.get(0).map_err(map_err)?;
    let finished: Option<i64> = row.get(5).map_err(map_err)?;
    let outputs: Option<String> = row.get(7).map_err(map_err)?;
    Ok(Step {
        seq: u32::try_from(seq).map_err(corrupt)?,
        task: task_ref(&text(1)?, &text(2)?)?,
        status: RunStatus::parse(&text(3)?).map_err(corrupt)?,
        started_at: Timestamp::from_unix_micros(row.get(4).map_err(map_err)?),
        finished_at: finished.map(Timestamp::from_unix_micros),
        attempts: attempts_from(&text(6)?)?,
        outputs: outputs_from(outputs.as_deref())?,
        error: row.get(8).map_err(map_err)?,
    })
}

fn run_in(conn: &Connection, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Option<Run>> {
    let sql = format!("SELECT {COLUMNS} FROM runs WHERE tenant_id = ?1 AND id = ?2");
    let mut statement = conn.prepare_cached(&sql).map_err(map_err)?;
    let mut rows = statement
        .query(params![tenant.to_string(), id.to_string()])
        .map_err(map_err)?;
    let Some(row) = rows.next().map_err(map_err)? else {
        return Ok(None);
    };
    let mut run = decode(row)?;
    let mut statement = conn
        .prepare_cached(
            "SELECT seq, app, task, status, started_at, finished_at, attempts, outputs, error
             FROM run_steps WHERE tenant_id = ?1 AND run_id = ?2 ORDER BY seq",
        )
        .map_err(map_err)?;
    let mut rows = statement
        .query(params![tenant.to_string(), id.to_string()])
        .map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        run.steps.push(decode_step(row)?);
    }
    Ok(Some(run))
}

fn outputs_text(step: &Step) -> StoreResult<Option<String>> {
    step.outputs
        .as_ref()
        .map(|o| serde_json::to_string(o).map_err(|err| StoreError::Backend(err.to_string())))
        .transpose()
}

fn write_step(tx: &Connection, tenant: TenantId, run: uuid::Uuid, step: &Step) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO run_steps (tenant_id, run_id, seq, app, task, status, started_at, finished_at,
            attempts, outputs, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (tenant_id, run_id, seq) DO UPDATE SET status = excluded.status,
            finished_at = excluded.finished_at, attempts = excluded.attempts,
            outputs = excluded.outputs, error = excluded.error",
        params![
            tenant.to_string(),
            run.to_string(),
            step.seq,
            step.task.app.as_str(),
            step.task.task.as_str(),
            step.status.as_str(),
            step.started_at.unix_micros(),
            step.finished_at.map(|at| at.unix_micros()),
            attempts_text(&step.attempts),
            outputs_text(step)?,
            step.error,
        ],
    )?;
    Ok(())
}

fn status_of(
    conn: &Connection,
    tenant: TenantId,
    id: uuid::Uuid,
) -> StoreResult<Option<RunStatus>> {
    let status: Option<String> = conn
        .query_row(
            "SELECT status FROM runs WHERE tenant_id = ?1 AND id = ?2",
            params![tenant.to_string(), id.to_string()],
            |row| row.get(0),
        )
        .optional()
        .map_err(map_err)?;
    status
        .map(|s| RunStatus::parse(&s).map_err(corrupt))
        .transpose()
}

fn end_open_steps(
    tx: &Connection,
    tenant: TenantId,
    id: &str,
    status: RunStatus,
    at: Timestamp,
) -> StoreResult<()> {
    exec(
        tx,
        "UPDATE run_steps SET status = ?3, finished_at = ?4
         WHERE tenant_id = ?1 AND run_id = ?2 AND status = 'running'",
        params![tenant.to_string(), id, status.as_str(), at.unix_micros()],
    )?;
    Ok(())
}

impl SqliteStore {
    async fn list_runs_in(
        &self,
        tenant: TenantId,
        filter: RunFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Run>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM runs WHERE tenant_id = ?1
                   AND (?2 IS NULL OR (app = ?2 AND task = ?3))
                   AND (?4 IS NULL OR instance_id = ?4)
                   AND (?5 IS NULL OR status = ?5)
                   AND (?6 IS NULL OR id < ?6)
                 ORDER BY id DESC LIMIT ?7"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(map_err)?;
            let mut rows = statement
                .query(params![
                    tenant.to_string(),
                    filter.task.as_ref().map(|t| t.app.to_string()),
                    filter.task.as_ref().map(|t| t.task.to_string()),
                    filter.instance.map(|id| id.to_string()),
                    filter.status.map(RunStatus::as_str),
                    page.cursor().map(|c| c.id().to_string()),
                    i64::from(page.limit()) + 1,
                ])
                .map_err(map_err)?;
            let mut found = Vec::new();
            while let Some(row) = rows.next().map_err(map_err)? {
                found.push(decode(row)?);
            }
            Ok(Page::from_overfetch(found, page.limit(), |r: &Run| {
                Cursor::after(r.id)
            }))
        })
        .await
    }

    fn reap_in(
        tx: &Connection,
        tenant: TenantId,
        runner: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut ended = 0;
        let ids = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<String>> {
            let mut statement = tx.prepare_cached(sql).map_err(map_err)?;
            let rows = statement
                .query_map(values, |row| row.get::<_, String>(0))
                .map_err(map_err)?;
            rows.collect::<Result<_, _>>().map_err(map_err)
        };
        let tenant_text = tenant.to_string();
        let late = ids(
            "SELECT id FROM runs WHERE tenant_id = ?1 AND status IN ('queued', 'running') AND deadline < ?2",
            &[&tenant_text, &now.unix_micros()],
        )?;
        let interrupted = match runner {
            Some(runner) => ids(
                "SELECT id FROM runs WHERE tenant_id = ?1 AND status = 'running' AND runner = ?2",
                &[&tenant_text, &runner],
            )?,
            None => Vec::new(),
        };
        let ends = late
            .iter()
            .map(|id| (id, RunStatus::TimedOut, vigil_automation::DEADLINE_PASSED))
            .chain(
                interrupted
                    .iter()
                    .filter(|id| !late.contains(id))
                    .map(|id| (id, RunStatus::Failed, vigil_automation::INTERRUPTED)),
            );
        for (id, status, error) in ends {
            ended += exec(
                tx,
                "UPDATE runs SET status = ?3, error = ?4, finished_at = ?5
                 WHERE tenant_id = ?1 AND id = ?2 AND status IN ('queued', 'running')",
                params![tenant_text, id, status.as_str(), error, now.unix_micros()],
            )? as u64;
            end_open_steps(tx, tenant, id, status, now)?;
        }
        Ok(ended)
    }
}

#[async_trait::async_trait]
impl RunRepo for SqliteStore {
    async fn create_run(&self, tenant: TenantId, change: &Change, run: &Run) -> StoreResult<()> {
        let change = change.clone();
        let run = run.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO runs (tenant_id, id, app, task, instance_id, input, status, trigger,
                    rerun_of, requested_by, created_at, deadline)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    tenant.to_string(),
                    run.id.to_string(),
                    run.task.app.as_str(),
                    run.task.task.as_str(),
                    run.instance.to_string(),
                    run.input.to_string(),
                    run.status.as_str(),
                    run.trigger.as_str(),
                    run.rerun_of.map(|id| id.to_string()),
                    run.requested_by,
                    run.created_at.unix_micros(),
                    run.deadline.unix_micros(),
                ],
            )?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::run("run.create", &run),
                run.created_at,
            )
        })
        .await
    }

    async fn get_run(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Run> {
        self.read(move |conn| run_in(conn, tenant, id)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Run>> {
        self.list_runs_in(tenant, filter.clone(), page).await
    }

    async fn start_run(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        runner: &str,
        at: Timestamp,
        first: &Step,
    ) -> StoreResult<bool> {
        let (runner, first) = (runner.to_owned(), first.clone());
        self.write(move |tx| {
            let started = exec(
                tx,
                "UPDATE runs SET status = 'running', runner = ?3, started_at = ?4
                 WHERE tenant_id = ?1 AND id = ?2 AND status = 'queued'",
                params![tenant.to_string(), id.to_string(), runner, at.unix_micros()],
            )?;
            if started == 0 {
                return Ok(false);
            }
            write_step(tx, tenant, id, &first)?;
            Ok(true)
        })
        .await
    }

    async fn save_step(&self, tenant: TenantId, run: uuid::Uuid, step: &Step) -> StoreResult<bool> {
        let step = step.clone();
        self.write(move |tx| {
            if status_of(tx, tenant, run)? != Some(RunStatus::Running) {
                return Ok(false);
            }
            write_step(tx, tenant, run, &step)?;
            Ok(true)
        })
        .await
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
        let (error, last) = (error.map(str::to_owned), last.cloned());
        self.write(move |tx| {
            let ended = exec(
                tx,
                "UPDATE runs SET status = ?3, error = ?4, finished_at = ?5
                 WHERE tenant_id = ?1 AND id = ?2 AND status IN ('queued', 'running')",
                params![
                    tenant.to_string(),
                    id.to_string(),
                    status.as_str(),
                    error,
                    at.unix_micros()
                ],
            )?;
            if ended == 0 {
                return Ok(false);
            }
            if let Some(step) = &last {
                write_step(tx, tenant, id, step)?;
            }
            end_open_steps(tx, tenant, &id.to_string(), status, at)?;
            Ok(true)
        })
        .await
    }

    async fn cancel_run(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<Run> {
        let change = change.clone();
        self.write(move |tx| {
            let run = run_in(tx, tenant, id)?.ok_or(StoreError::NotFound)?;
            if run.status.is_terminal() {
                return Err(StoreError::Conflict(format!(
                    "the run is over ({})",
                    run.status.as_str()
                )));
            }
            exec(
                tx,
                "UPDATE runs SET status = 'canceled', finished_at = ?3
                 WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string(), at.unix_micros()],
            )?;
            end_open_steps(tx, tenant, &id.to_string(), RunStatus::Canceled, at)?;
            let run = run_in(tx, tenant, id)?.ok_or(StoreError::NotFound)?;
            append(tx, tenant, &change, AuditDraft::run("run.cancel", &run), at)?;
            Ok(run)
        })
        .await
    }

    async fn reap_runs(
        &self,
        tenant: TenantId,
        runner: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let runner = runner.map(str::to_owned);
        self.write(move |tx| Self::reap_in(tx, tenant, runner.as_deref(), now))
            .await
    }

    async fn queued_runs(&self, tenant: TenantId, limit: u32) -> StoreResult<Vec<uuid::Uuid>> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT id FROM runs WHERE tenant_id = ?1 AND status = 'queued'
                     ORDER BY id LIMIT ?2",
                )
                .map_err(map_err)?;
            let rows = statement
                .query_map(params![tenant.to_string(), limit], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(map_err)?;
            rows.map(|id| uuid(&id.map_err(map_err)?)).collect()
        })
        .await
    }
}
