//! Runs: ask for one, read the history (each step's attempts, secrets masked), cancel,
//! rerun; and the test of an instance.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vigil_automation::{AppName, Run, RunFilter, RunStatus, Step, TaskName, TaskRef};

use crate::dto::PageOut;
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, WriteData};
use crate::handlers::apps::TaskPath;
use crate::handlers::{IdPath, ReasonHeader, path_id};
use crate::{ApiError, AppState};

/// What to run the task on and with.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunIn {
    /// An instance of the task's app.
    #[schema(schema_with = crate::schema::uuid)]
    instance: String,
    /// Checked against the task's `input_schema` (default `{}`).
    input: Option<Value>,
}

/// One try of a step's request.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AttemptOut {
    n: u32,
    started_at: String,
    duration_ms: u64,
    /// Method, URL, headers and body as sent, every secret masked.
    request: Value,
    status_code: Option<u16>,
    error: Option<String>,
    /// The wait before the next attempt, when there was one.
    retry_in_ms: Option<u64>,
}

/// One task of the run's closure.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct StepOut {
    seq: u32,
    /// `app/task`.
    task: String,
    #[schema(schema_with = crate::schema::run_status)]
    status: &'static str,
    started_at: String,
    finished_at: Option<String>,
    attempts: Vec<AttemptOut>,
    /// By name, once the step succeeded; secrets masked.
    outputs: Option<Map<String, Value>>,
    error: Option<String>,
}

/// A run; `steps` only when read alone.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Run)]
pub(crate) struct RunOut {
    id: String,
    /// `app/task`.
    task: String,
    instance: String,
    input: Value,
    #[schema(schema_with = crate::schema::run_status)]
    status: &'static str,
    /// `manual`, `rerun` or `test`.
    trigger: &'static str,
    rerun_of: Option<String>,
    requested_by: String,
    error: Option<String>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// Past it the run is `timed_out`.
    deadline: String,
    steps: Vec<StepOut>,
}

fn step_out(step: &Step) -> StepOut {
    StepOut {
        seq: step.seq,
        task: step.task.to_string(),
        status: step.status.as_str(),
        started_at: step.started_at.to_string(),
        finished_at: step.finished_at.map(|at| at.to_string()),
        attempts: step
            .attempts
            .iter()
            .map(|a| AttemptOut {
                n: a.n,
                started_at: a.started_at.to_string(),
                duration_ms: a.duration_ms,
                request: a.request.clone(),
                status_code: a.status_code,
                error: a.error.clone(),
                retry_in_ms: a.retry_in_ms,
            })
            .collect(),
        outputs: step.outputs.clone(),
        error: step.error.clone(),
    }
}

fn run_out(run: &Run) -> RunOut {
    RunOut {
        id: run.id.to_string(),
        task: run.task.to_string(),
        instance: run.instance.to_string(),
        input: run.input.clone(),
        status: run.status.as_str(),
        trigger: run.trigger.as_str(),
        rerun_of: run.rerun_of.map(|id| id.to_string()),
        requested_by: run.requested_by.clone(),
        error: run.error.clone(),
        created_at: run.created_at.to_string(),
        started_at: run.started_at.map(|at| at.to_string()),
        finished_at: run.finished_at.map(|at| at.to_string()),
        deadline: run.deadline.to_string(),
        steps: run.steps.iter().map(step_out).collect(),
    }
}

/// The runs list's filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunQuery {
    /// `app/task`.
    #[param(schema_with = crate::schema::task_ref)]
    task: Option<String>,
    /// An instance's id.
    #[param(schema_with = crate::schema::uuid)]
    instance: Option<String>,
    #[param(schema_with = crate::schema::run_status)]
    status: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    cursor: Option<String>,
}

fn filter(query: &RunQuery) -> Result<RunFilter, ApiError> {
    let task = query
        .task
        .as_deref()
        .map(|raw| -> Result<TaskRef, ApiError> {
            let (app, task) = raw
                .split_once('/')
                .ok_or_else(|| ApiError::invalid("task", "expected app/task"))?;
            Ok(TaskRef::new(AppName::parse(app)?, TaskName::parse(task)?))
        })
        .transpose()?;
    let instance = query
        .instance
        .as_deref()
        .map(|raw| {
            uuid::Uuid::try_parse(raw).map_err(|_| ApiError::invalid("instance", "not a UUID"))
        })
        .transpose()?;
    let status = query.status.as_deref().map(RunStatus::parse).transpose()?;
    Ok(RunFilter {
        task,
        instance,
        status,
    })
}

fn run_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(raw)
        .map_err(|_| ApiError::not_found(format!("{raw:?} is not a valid run id")))
}

/// Run a task (analysts and up): its input is checked against the task's schema, then the
/// run is queued and answered at once; it executes the task's dependency closure in order.
#[utoipa::path(post, path = "/api/v1/apps/{app}/tasks/{task}/runs", tag = "automation", operation_id = "runTask",
    params(TaskPath, ReasonHeader), request_body = RunIn,
    responses((status = 202, description = "queued", body = RunOut)))]
pub(crate) async fn start(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path((app, task)): Path<(String, String)>,
    ApiJson(body): ApiJson<RunIn>,
) -> Result<Response, ApiError> {
    let task = TaskRef::new(
        path_id(&app, AppName::parse)?,
        path_id(&task, TaskName::parse)?,
    );
    let instance = uuid::Uuid::try_parse(&body.instance)
        .map_err(|_| ApiError::invalid("instance", "not a UUID"))?;
    let input = body.input.unwrap_or_else(|| Value::Object(Map::new()));
    let run = state
        .services
        .request_run(&principal, &task, instance, input)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(run_out(&run))).into_response())
}

/// Read a run with its steps and their attempts.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "automation", operation_id = "getRun",
    params(IdPath), responses((status = 200, description = "the run", body = RunOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.services.get_run(&principal, run_id(&id)?).await?;
    Ok(Json(run_out(&run)).into_response())
}

/// The tenant's runs, newest first, without their steps.
#[utoipa::path(get, path = "/api/v1/runs", tag = "automation", operation_id = "listRuns",
    params(RunQuery), responses((status = 200, description = "a page of runs", body = PageOut<RunOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Response, ApiError> {
    let page = crate::handlers::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let runs = state
        .services
        .list_runs(&principal, filter(&query)?, page)
        .await?;
    Ok(Json(PageOut::from_page(runs, |r| run_out(&r))).into_response())
}

/// Cancel a queued or running run (analysts and up); 409 once it is over.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "automation", operation_id = "cancelRun",
    params(IdPath, ReasonHeader), responses((status = 200, description = "canceled", body = RunOut)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.services.cancel_run(&principal, run_id(&id)?).await?;
    Ok(Json(run_out(&run)).into_response())
}

/// Run the same task on the same instance with the same input again (analysts and up).
#[utoipa::path(post, path = "/api/v1/runs/{id}/rerun", tag = "automation", operation_id = "rerunRun",
    params(IdPath, ReasonHeader), responses((status = 202, description = "queued", body = RunOut)))]
pub(crate) async fn rerun(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.services.rerun(&principal, run_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(run_out(&run))).into_response())
}
