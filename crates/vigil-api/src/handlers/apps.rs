//! Apps (integration definitions) and their tasks: upsert by name, the reads a builder UI
//! needs, deletes that refuse to break a dependant, and a dry run of a task definition.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_automation::{
    AppDefinition, AppName, Output, OutputKind, RenderedRequest, RetryPolicy, TIMEOUT_MS_DEFAULT,
    TaskDefinition, TaskName, TaskRef,
};
use vigil_store::{App, Task};

use crate::dto::PageOut;
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, WriteData};
use crate::handlers::{ReasonHeader, path_id};
use crate::{ApiError, AppState};

/// An app: its version, what it is for, and the configuration its instances take.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppIn {
    #[schema(schema_with = crate::schema::semver)]
    version: String,
    description: Option<String>,
    category: Option<String>,
    /// The config an instance takes; a property with `"writeOnly": true` is a secret.
    /// Default: `{"type": "object"}`.
    #[schema(schema_with = crate::schema::json_schema)]
    config_schema: Option<Value>,
    /// Whether an instance must name a base URL (default true).
    base_url_required: Option<bool>,
    /// The task of this app (taking `{}` as input) that `POST /instances/{id}/test` runs;
    /// without one the test is a GET of the instance's base URL.
    #[schema(schema_with = crate::schema::automation_name_nullable)]
    health_task: Option<String>,
}

/// An app as stored.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = App)]
pub(crate) struct AppOut {
    name: String,
    version: String,
    description: Option<String>,
    category: Option<String>,
    config_schema: Value,
    base_url_required: bool,
    health_task: Option<String>,
    /// The `writeOnly` fields of `config_schema`: what `secrets.<name>` may read.
    secret_fields: Vec<String>,
    has_logo: bool,
    created_at: String,
    updated_at: String,
}

fn app_out(app: &App) -> AppOut {
    let d = &app.definition;
    AppOut {
        name: app.name.to_string(),
        version: d.version.clone(),
        description: d.description.clone(),
        category: d.category.clone(),
        config_schema: d.config_schema.clone(),
        base_url_required: d.base_url_required,
        health_task: d.health_task.clone(),
        secret_fields: d.secret_fields().into_iter().collect(),
        has_logo: app.logo_type.is_some(),
        created_at: app.created_at.to_string(),
        updated_at: app.updated_at.to_string(),
    }
}

/// App names only (`?fields=name`), as a picker needs.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AppNames {
    items: Vec<String>,
    next_cursor: Option<String>,
}

/// A page of apps, whole or by name.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum AppList {
    Apps(PageOut<AppOut>),
    Names(AppNames),
}

/// A page of apps; `fields=name` answers names only.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppsQuery {
    #[param(schema_with = crate::schema::apps_fields)]
    fields: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    cursor: Option<String>,
}

/// The app's name in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct AppPath {
    #[param(schema_with = crate::schema::automation_name)]
    name: String,
}

/// The app's and the task's names in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct TaskPath {
    #[param(schema_with = crate::schema::automation_name)]
    app: String,
    #[param(schema_with = crate::schema::automation_name)]
    task: String,
}

/// The app's name in `/apps/{app}/tasks`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct AppTasksPath {
    #[param(schema_with = crate::schema::automation_name)]
    app: String,
}

/// The request a task sends, relative to its instance's base URL. Any string may hold
/// `{{ expr }}` over `input`, `secrets`, `config` and `deps.<task>.<output>`.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestIn {
    #[schema(schema_with = crate::schema::http_method)]
    method: String,
    #[schema(schema_with = crate::schema::request_path)]
    path: String,
    query: Option<BTreeMap<String, String>>,
    headers: Option<BTreeMap<String, String>>,
    /// A JSON value whose strings may be templates; sent as JSON.
    body: Option<Value>,
}

/// A value read from the answer: `path` is an RFC 9535 JSONPath into its JSON body.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputIn {
    name: String,
    path: String,
    #[schema(schema_with = crate::schema::output_kind)]
    kind: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::output_type)]
    kind_of_value: String,
}

/// When a failed attempt is retried: timeouts, connection errors, 429, and 5xx of
/// idempotent methods, after full-jitter backoff or `Retry-After`.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryIn {
    #[schema(minimum = 1, maximum = 10)]
    max_attempts: Option<u32>,
    #[schema(minimum = 1, maximum = 300_000)]
    initial_backoff_ms: Option<u32>,
    #[schema(minimum = 1, maximum = 300_000)]
    max_backoff_ms: Option<u32>,
}

/// A task of an app.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskIn {
    description: Option<String>,
    /// What a run's input must fit. Default: `{"type": "object"}`.
    #[schema(schema_with = crate::schema::json_schema)]
    input_schema: Option<Value>,
    request: RequestIn,
    outputs: Option<Vec<OutputIn>>,
    /// `task` of the same app or `app/task`.
    depends_on: Option<Vec<String>>,
    retry: Option<RetryIn>,
    /// Deadline per attempt (default 10 000).
    #[schema(schema_with = crate::schema::timeout_ms)]
    timeout_ms: Option<u32>,
    /// Statuses that count as success (default: any 2xx).
    success_status: Option<Vec<u16>>,
}

fn enum_value<T: serde::de::DeserializeOwned>(field: &str, raw: &str) -> Result<T, ApiError> {
    serde_json::from_value(json!(raw))
        .map_err(|_| ApiError::invalid(field, format!("{raw:?} is not one of the allowed values")))
}

fn definition(body: TaskIn) -> Result<TaskDefinition, ApiError> {
    let request = body.request;
    let mut outputs = Vec::new();
    for (i, o) in body.outputs.unwrap_or_default().into_iter().enumerate() {
        outputs.push(Output {
            name: o.name,
            path: o.path,
            kind: enum_value(&format!("outputs/{i}/kind"), &o.kind)?,
            kind_of_value: enum_value(&format!("outputs/{i}/type"), &o.kind_of_value)?,
        });
    }
    let defaults = RetryPolicy::default();
    let retry = body.retry.map_or(defaults, |r| RetryPolicy {
        max_attempts: r.max_attempts.unwrap_or(defaults.max_attempts),
        initial_backoff_ms: r.initial_backoff_ms.unwrap_or(defaults.initial_backoff_ms),
        max_backoff_ms: r.max_backoff_ms.unwrap_or(defaults.max_backoff_ms),
    });
    Ok(TaskDefinition {
        description: body.description,
        input_schema: body
            .input_schema
            .unwrap_or_else(|| json!({"type": "object"})),
        request: vigil_automation::RequestTemplate {
            method: enum_value("request.method", &request.method)?,
            path: request.path,
            query: request.query.unwrap_or_default(),
            headers: request.headers.unwrap_or_default(),
            body: request.body,
        },
        outputs,
        depends_on: body.depends_on.unwrap_or_default(),
        retry,
        timeout_ms: body.timeout_ms.unwrap_or(TIMEOUT_MS_DEFAULT),
        success_status: body.success_status.unwrap_or_default(),
    })
}

/// A task as stored; `depends_on` resolved to `app/task`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Task)]
pub(crate) struct TaskOut {
    app: String,
    name: String,
    description: Option<String>,
    input_schema: Value,
    request: RequestIn,
    outputs: Vec<OutputIn>,
    depends_on: Vec<String>,
    retry: RetryIn,
    timeout_ms: u32,
    success_status: Vec<u16>,
    created_at: String,
    updated_at: String,
}

fn output_out(o: &Output) -> OutputIn {
    OutputIn {
        name: o.name.clone(),
        path: o.path.clone(),
        kind: o.kind.as_str().to_owned(),
        kind_of_value: serde_json::to_value(o.kind_of_value)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    }
}

fn task_out(task: &Task) -> TaskOut {
    let d = &task.definition;
    TaskOut {
        app: task.app.to_string(),
        name: task.name.to_string(),
        description: d.description.clone(),
        input_schema: d.input_schema.clone(),
        request: RequestIn {
            method: d.request.method.as_str().to_owned(),
            path: d.request.path.clone(),
            query: Some(d.request.query.clone()),
            headers: Some(d.request.headers.clone()),
            body: d.request.body.clone(),
        },
        outputs: d.outputs.iter().map(output_out).collect(),
        depends_on: task.depends_on.iter().map(ToString::to_string).collect(),
        retry: RetryIn {
            max_attempts: Some(d.retry.max_attempts),
            initial_backoff_ms: Some(d.retry.initial_backoff_ms),
            max_backoff_ms: Some(d.retry.max_backoff_ms),
        },
        timeout_ms: d.timeout_ms,
        success_status: d.success_status.clone(),
        created_at: task.created_at.to_string(),
        updated_at: task.updated_at.to_string(),
    }
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

fn task_ref(app: &str, task: &str) -> Result<TaskRef, ApiError> {
    Ok(TaskRef::new(
        path_id(app, AppName::parse)?,
        path_id(task, TaskName::parse)?,
    ))
}

/// An app with its logo: `definition` is the app's JSON, `logo` a PNG, JPEG or SVG file
/// (its type is read from its bytes, at most 256 KiB).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only describes the form
pub(crate) struct AppForm {
    #[schema(content_media_type = "application/json")]
    definition: String,
    #[schema(value_type = Option<String>, format = Binary, content_media_type = "application/octet-stream")]
    logo: Option<Vec<u8>>,
}

/// `PUT /apps/{name}`'s body: the app's JSON, or a form with its JSON and a logo.
pub(crate) struct AppBody {
    definition: AppIn,
    logo: Option<Vec<u8>>,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for AppBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let multipart = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !multipart {
            let ApiJson(definition) = ApiJson::<AppIn>::from_request(req, state).await?;
            return Ok(Self {
                definition,
                logo: None,
            });
        }
        let mut form = axum::extract::Multipart::from_request(req, state)
            .await
            .map_err(|err| {
                ApiError::bad_request(format!("not a multipart form: {}", err.body_text()))
            })?;
        let (mut definition, mut logo) = (None, None);
        while let Some(field) = form.next_field().await.map_err(|err| {
            ApiError::bad_request(format!("a broken form part: {}", err.body_text()))
        })? {
            let name = field.name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|err| {
                ApiError::bad_request(format!("a broken form part: {}", err.body_text()))
            })?;
            match name.as_str() {
                "definition" => definition = Some(crate::extract::parse_json::<AppIn>(&bytes)?),
                "logo" => logo = Some(bytes.to_vec()),
                other => {
                    return Err(ApiError::invalid(
                        other.to_owned(),
                        "unknown form part; expected `definition` and `logo`",
                    ));
                }
            }
        }
        let definition = definition
            .ok_or_else(|| ApiError::invalid("definition", "the form needs a `definition` part"))?;
        Ok(Self { definition, logo })
    }
}

/// Create (201) or replace (200) an app; its tasks stay. As a form, a `logo` part replaces
/// its logo (without one, the stored logo stays).
#[utoipa::path(put, path = "/api/v1/apps/{name}", tag = "automation", operation_id = "putApp",
    params(AppPath, ReasonHeader),
    request_body(content(
        (AppIn = "application/json"),
        (AppForm = "multipart/form-data"),
    )),
    responses((status = 200, description = "replaced", body = AppOut),
        (status = 201, description = "created", body = AppOut)))]
pub(crate) async fn put_app(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(name): Path<String>,
    AppBody {
        definition: body,
        logo,
    }: AppBody,
) -> Result<Response, ApiError> {
    let name = AppName::parse(&name)?;
    let definition = AppDefinition {
        version: body.version,
        description: body.description,
        category: body.category,
        config_schema: body
            .config_schema
            .unwrap_or_else(|| json!({"type": "object"})),
        base_url_required: body.base_url_required.unwrap_or(true),
        health_task: body.health_task,
    };
    let (app, created) = state
        .services
        .put_app(&principal, name, definition, logo)
        .await?;
    Ok((created_or_ok(created), Json(app_out(&app))).into_response())
}

/// The app's logo, as its bytes showed it to be; an SVG is served sandboxed (no script, no
/// fetch) and nothing is sniffed.
#[utoipa::path(get, path = "/api/v1/apps/{name}/logo", tag = "automation", operation_id = "getAppLogo",
    params(AppPath), responses((status = 200, description = "the logo",
        content(("image/png"), ("image/jpeg"), ("image/svg+xml")))))]
pub(crate) async fn logo(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    use axum::http::{HeaderValue, header};
    let name = path_id(&name, AppName::parse)?;
    let logo = state.services.app_logo(&principal, &name).await?;
    let mut response = logo.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(logo.media_type),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"logo\""),
    );
    Ok(response)
}

/// Read an app.
#[utoipa::path(get, path = "/api/v1/apps/{name}", tag = "automation", operation_id = "getApp",
    params(AppPath), responses((status = 200, description = "the app", body = AppOut)))]
pub(crate) async fn get_app(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = path_id(&name, AppName::parse)?;
    let app = state.services.get_app(&principal, &name).await?;
    Ok(Json(app_out(&app)).into_response())
}

/// The tenant's apps, newest first; `fields=name` answers names only.
#[utoipa::path(get, path = "/api/v1/apps", tag = "automation", operation_id = "listApps",
    params(AppsQuery), responses((status = 200, description = "a page of apps", body = AppList)))]
pub(crate) async fn list_apps(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<AppsQuery>,
) -> Result<Response, ApiError> {
    let names_only = match query.fields.as_deref() {
        None => false,
        Some("name") => true,
        Some(_) => return Err(ApiError::invalid("fields", "the only field list is `name`")),
    };
    let page = crate::handlers::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let apps = state.services.list_apps(&principal, page).await?;
    let out = if names_only {
        let page = PageOut::from_page(apps, |a| a.name.to_string());
        AppList::Names(AppNames {
            items: page.items,
            next_cursor: page.next_cursor,
        })
    } else {
        AppList::Apps(PageOut::from_page(apps, |a| app_out(&a)))
    };
    Ok(Json(out).into_response())
}

/// Remove an app and its tasks; 409 naming them while another app's task depends on one.
#[utoipa::path(delete, path = "/api/v1/apps/{name}", tag = "automation", operation_id = "deleteApp",
    params(AppPath, ReasonHeader), responses((status = 204, description = "removed")))]
pub(crate) async fn delete_app(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = path_id(&name, AppName::parse)?;
    state.services.delete_app(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The app's tasks, by name.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TaskList {
    items: Vec<TaskOut>,
}

/// The app's tasks.
#[utoipa::path(get, path = "/api/v1/apps/{app}/tasks", tag = "automation", operation_id = "listTasks",
    params(AppTasksPath), responses((status = 200, description = "the tasks", body = TaskList)))]
pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = path_id(&app, AppName::parse)?;
    let tasks = state.services.list_tasks(&principal, &app).await?;
    Ok(Json(TaskList {
        items: tasks.iter().map(task_out).collect(),
    })
    .into_response())
}

/// Create (201) or replace (200) a task, checked whole: schema, templates and the names
/// they read, JSONPaths, dependencies and the tenant's graph (a cycle is named in order).
#[utoipa::path(put, path = "/api/v1/apps/{app}/tasks/{task}", tag = "automation", operation_id = "putTask",
    params(TaskPath, ReasonHeader), request_body = TaskIn,
    responses((status = 200, description = "replaced", body = TaskOut),
        (status = 201, description = "created", body = TaskOut)))]
pub(crate) async fn put_task(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path((app, task)): Path<(String, String)>,
    ApiJson(body): ApiJson<TaskIn>,
) -> Result<Response, ApiError> {
    let task = TaskRef::new(AppName::parse(&app)?, TaskName::parse(&task)?);
    let (stored, created) = state
        .services
        .put_task(&principal, task, definition(body)?)
        .await?;
    Ok((created_or_ok(created), Json(task_out(&stored))).into_response())
}

/// Read a task.
#[utoipa::path(get, path = "/api/v1/apps/{app}/tasks/{task}", tag = "automation", operation_id = "getTask",
    params(TaskPath), responses((status = 200, description = "the task", body = TaskOut)))]
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((app, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let task = state
        .services
        .get_task(&principal, &task_ref(&app, &task)?)
        .await?;
    Ok(Json(task_out(&task)).into_response())
}

/// Remove a task; 409 naming the tasks that depend on it.
#[utoipa::path(delete, path = "/api/v1/apps/{app}/tasks/{task}", tag = "automation", operation_id = "deleteTask",
    params(TaskPath, ReasonHeader), responses((status = 204, description = "removed")))]
pub(crate) async fn delete_task(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path((app, task)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .services
        .delete_task(&principal, &task_ref(&app, &task)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The task's input schema, as a form builder needs it.
#[utoipa::path(get, path = "/api/v1/apps/{app}/tasks/{task}/input-schema", tag = "automation",
    operation_id = "getTaskInputSchema", params(TaskPath),
    responses((status = 200, description = "the JSON Schema a run's input must fit", body = Object)))]
pub(crate) async fn input_schema(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((app, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let task = state
        .services
        .get_task(&principal, &task_ref(&app, &task)?)
        .await?;
    Ok(Json(task.definition.input_schema).into_response())
}

/// Which outputs to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputsQuery {
    #[param(schema_with = crate::schema::output_kind)]
    kind: Option<String>,
}

/// The task's outputs.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OutputList {
    items: Vec<OutputIn>,
}

/// The task's outputs, all or of one kind (what a dependant may read as `deps.<task>.<name>`).
#[utoipa::path(get, path = "/api/v1/apps/{app}/tasks/{task}/outputs", tag = "automation",
    operation_id = "listTaskOutputs", params(TaskPath, OutputsQuery),
    responses((status = 200, description = "the outputs", body = OutputList)))]
pub(crate) async fn outputs(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((app, task)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<OutputsQuery>,
) -> Result<Response, ApiError> {
    let kind: Option<OutputKind> = match query.kind.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(enum_value("kind", raw)?),
    };
    let outputs = state
        .services
        .task_outputs(&principal, &task_ref(&app, &task)?, kind)
        .await?;
    Ok(Json(OutputList {
        items: outputs.iter().map(output_out).collect(),
    })
    .into_response())
}

/// The tasks a delete would break.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Dependants {
    /// `app/task` each.
    items: Vec<String>,
}

/// The tasks that depend on this one directly (what deleting it would break).
#[utoipa::path(get, path = "/api/v1/apps/{app}/tasks/{task}/dependants", tag = "automation",
    operation_id = "listTaskDependants", params(TaskPath),
    responses((status = 200, description = "the dependants", body = Dependants)))]
pub(crate) async fn dependants(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((app, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = state
        .services
        .task_dependants(&principal, &task_ref(&app, &task)?)
        .await?;
    Ok(Json(Dependants {
        items: found.iter().map(ToString::to_string).collect(),
    })
    .into_response())
}

/// A task definition to check without saving, and optionally an input to render it for.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyIn {
    #[schema(schema_with = crate::schema::automation_name)]
    app: String,
    #[schema(schema_with = crate::schema::automation_name)]
    name: String,
    definition: TaskIn,
    /// A run's input: checked against the input schema, then the request is rendered.
    input: Option<Value>,
}

/// What a dry run found.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VerifyOut {
    valid: bool,
    depends_on: Vec<String>,
    /// The request the task would send for `input`: secrets masked, config and dependency
    /// outputs as `<config.name>` / `<deps.task.output>` placeholders.
    request: Option<RenderedOut>,
}

/// A rendered request.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RenderedOut {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

fn rendered_out(r: RenderedRequest) -> RenderedOut {
    RenderedOut {
        method: r.method.as_str().to_owned(),
        path: r.path,
        query: r.query,
        headers: r.headers,
        body: r.body,
    }
}

/// Check a task definition without saving it (schema, templates, paths, refs, the graph);
/// with an `input`, render the request it would send, secrets masked.
#[utoipa::path(post, path = "/api/v1/tasks/verify", tag = "automation", operation_id = "verifyTask",
    request_body = VerifyIn,
    responses((status = 200, description = "valid, with the rendered request", body = VerifyOut)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<VerifyIn>,
) -> Result<Response, ApiError> {
    let task = TaskRef::new(AppName::parse(&body.app)?, TaskName::parse(&body.name)?);
    let verified = state
        .services
        .verify_task(&principal, task, definition(body.definition)?, body.input)
        .await?;
    Ok(Json(VerifyOut {
        valid: true,
        depends_on: verified
            .depends_on
            .iter()
            .map(ToString::to_string)
            .collect(),
        request: verified.request.map(rendered_out),
    })
    .into_response())
}
