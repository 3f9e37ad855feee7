//! App bundles: export named apps to `vigil.apps/v1`, import one all or nothing.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_automation::AppName;
use vigil_service::{AppImportReport, ImportMode};

use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, RawText, WriteData};
use crate::handlers::ReasonHeader;
use crate::{ApiError, AppState};

/// Which apps to export; none: every app of the tenant (at most 100).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportIn {
    #[schema(schema_with = crate::schema::app_names)]
    apps: Vec<String>,
}

/// A bundled app: its definition, the names of the secrets an instance needs, its logo
/// (base64) and its tasks, every reference by name.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // only describes the document
pub(crate) struct BundleAppDoc {
    name: String,
    /// As `PUT /api/v1/apps/{name}` takes it.
    definition: Value,
    secret_fields: Vec<String>,
    logo: Option<BundleLogoDoc>,
    tasks: Vec<BundleTaskDoc>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // only describes the document
pub(crate) struct BundleLogoDoc {
    media_type: String,
    /// Standard base64.
    data: String,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // only describes the document
pub(crate) struct BundleTaskDoc {
    name: String,
    /// As `PUT …/tasks/{task}` takes it; `depends_on` reads `app/task`.
    definition: Value,
}

/// A `vigil.apps/v1` bundle: canonical JSON (keys sorted, apps and tasks by name), no id, no
/// instance, no secret; `digest` is `sha256:` over the canonical `apps`.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AppBundle)]
#[allow(dead_code)] // only describes the document
pub(crate) struct BundleDoc {
    /// `vigil.apps/v1`; another major version is refused.
    format: String,
    exported_at: String,
    apps: Vec<BundleAppDoc>,
    digest: String,
}

/// `mode` for apps the tenant already has (and that differ), and whether to only look.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// `fail` (default), `skip`, `overwrite` or `rename`.
    #[param(schema_with = crate::schema::import_mode)]
    mode: Option<String>,
    /// `true`: check and diff, write nothing.
    #[param(schema_with = crate::schema::boolean_text)]
    dry_run: Option<String>,
}

/// One problem of an import, and the app and task it concerns.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DiagnosticOut {
    /// `parse`, `validation`, `dependency` or `conflict`.
    #[serde(rename = "type")]
    kind: &'static str,
    app: Option<String>,
    task: Option<String>,
    message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TaskDiffOut {
    name: String,
    /// `create`, `update`, `unchanged`, `skip`, `conflict` or `remove`.
    change: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AppDiffOut {
    name: String,
    /// The name in this tenant (another one in `rename` mode).
    imported_as: String,
    /// `create`, `update`, `unchanged`, `skip` or `conflict`.
    change: &'static str,
    tasks: Vec<TaskDiffOut>,
}

/// What an import found and did; with diagnostics it is refused (422) and nothing changed.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ImportReportOut {
    dry_run: bool,
    applied: bool,
    apps: Vec<AppDiffOut>,
    diagnostics: Vec<DiagnosticOut>,
}

/// An import's report as the API answers it (the CLI prints the same).
pub fn import_report_json(report: &AppImportReport) -> Value {
    serde_json::to_value(report_out(report)).unwrap_or_default()
}

fn report_out(report: &AppImportReport) -> ImportReportOut {
    ImportReportOut {
        dry_run: report.dry_run,
        applied: report.applied,
        apps: report
            .apps
            .iter()
            .map(|a| AppDiffOut {
                name: a.name.clone(),
                imported_as: a.imported_as.clone(),
                change: a.change.as_str(),
                tasks: a
                    .tasks
                    .iter()
                    .map(|(name, change)| TaskDiffOut {
                        name: name.clone(),
                        change: change.as_str(),
                    })
                    .collect(),
            })
            .collect(),
        diagnostics: report
            .diagnostics
            .iter()
            .map(|d| DiagnosticOut {
                kind: d.kind.as_str(),
                app: d.app.clone(),
                task: d.task.clone(),
                message: d.message.clone(),
            })
            .collect(),
    }
}

/// Export apps with their tasks and logos as a bundle (readers and up).
#[utoipa::path(post, path = "/api/v1/apps/export", tag = "automation", operation_id = "exportApps",
    request_body = ExportIn,
    responses((status = 200, description = "the bundle", body = BundleDoc)))]
pub(crate) async fn export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(body): ApiJson<ExportIn>,
) -> Result<Response, ApiError> {
    let names = body
        .apps
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            AppName::parse(raw).map_err(|err| ApiError::invalid(format!("apps/{i}"), err.reason()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bundle = state.services.export_apps(&principal, &names).await?;
    let mut response = bundle.to_canonical().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// Import a bundle (analysts and up): everything is checked — digest, schemas, templates,
/// paths, every dependency in this tenant or the bundle, the combined graph — and diffed
/// before one transaction writes it. Any diagnostic and nothing changes (422).
#[utoipa::path(post, path = "/api/v1/apps/import", tag = "automation", operation_id = "importApps",
    params(ImportQuery, ReasonHeader), request_body = BundleDoc,
    responses((status = 200, description = "what the import did (or, on a dry run, would do)", body = ImportReportOut)))]
pub(crate) async fn import(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    RawText(body): RawText,
) -> Result<Response, ApiError> {
    let mode = match query.mode.as_deref() {
        None => ImportMode::Fail,
        Some(raw) => ImportMode::parse(raw)?,
    };
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("dry_run", "expected true or false")),
    };
    let report = state
        .services
        .import_apps(&principal, body.as_bytes(), mode, dry_run)
        .await?;
    let out = report_out(&report);
    if report.diagnostics.is_empty() {
        return Ok(Json(out).into_response());
    }
    let detail = format!(
        "the import was refused ({} problems); nothing changed",
        report.diagnostics.len()
    );
    let Value::Object(extra) = serde_json::to_value(&out).unwrap_or_default() else {
        return Err(ApiError::internal("an import report is not an object"));
    };
    Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "import", detail).with_extra(extra))
}
