use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use vigil_domain::{
    Connector, ConnectorKind, ConnectorName, ConnectorOptions, Severity, SourceUrl, SyncInterval,
};
use vigil_service::{ConnectorRequest, Credentials};

use crate::dto::{PageOut, PageQuery};
use crate::extract::{ApiJson, ApiQuery, Authorized, ManageAccess};
use crate::handlers::{IdPath, ReasonHeader, path_id};
use crate::sync_dto::{ConnectorHealthOut, CycleReportOut};
use crate::{ApiError, AppState};

/// A connector as `PUT` describes it; what each kind needs is in its schema.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectorIn {
    kind: String,
    url: String,
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "crate::dto::opt_integral")]
    interval_s: Option<i64>,
    threshold: Option<String>,
    credentials: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
}

/// One schema per kind (its credential names and required options): `oneOf`.
impl utoipa::PartialSchema for ConnectorIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::connector_in()
    }
}

impl utoipa::ToSchema for ConnectorIn {}

/// A connector, never with its credentials.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Connector)]
pub(crate) struct ConnectorOut {
    name: String,
    #[schema(schema_with = crate::schema::connector_kind)]
    kind: &'static str,
    url: String,
    enabled: bool,
    interval_s: u32,
    threshold: String,
    options: BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
}

fn connector_out(c: &Connector) -> ConnectorOut {
    ConnectorOut {
        name: c.name.as_str().to_owned(),
        kind: c.kind.as_str(),
        url: c.url.as_str().to_owned(),
        enabled: c.enabled,
        interval_s: c.interval.seconds(),
        threshold: c.threshold.as_str().to_ascii_uppercase(),
        options: c
            .options
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        created_at: c.created_at.to_string(),
        updated_at: c.updated_at.to_string(),
    }
}

/// The tenant's connectors.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectorList {
    items: Vec<ConnectorOut>,
}

/// The engine's view of the tenant's connectors.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SyncStatus {
    items: Vec<ConnectorHealthOut>,
}

/// An upstream record a cycle could not map or store, kept for replay.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeadLetter)]
pub(crate) struct DeadLetterOut {
    id: String,
    connector: String,
    external_id: String,
    error: String,
    attempts: u32,
    payload_digest: String,
    created_at: String,
    updated_at: String,
}

/// What replaying a dead letter did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Replayed)]
pub(crate) struct ReplayedOut {
    #[schema(schema_with = crate::schema::replayed)]
    outcome: &'static str,
}

/// The connector's name in the path.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct NamePath {
    /// 1 to 64 of a-z, 0-9, `-` and `_`.
    #[param(schema_with = crate::schema::connector_name)]
    name: String,
}

fn request(name: ConnectorName, body: ConnectorIn) -> Result<ConnectorRequest, ApiError> {
    let threshold = body
        .threshold
        .map(|raw| Severity::parse(&raw.to_ascii_lowercase()))
        .transpose()
        .map_err(|err| ApiError::invalid("threshold", err.reason()))?;
    Ok(ConnectorRequest {
        name,
        kind: ConnectorKind::parse(&body.kind)?,
        url: SourceUrl::parse(&body.url)?,
        enabled: body.enabled.unwrap_or(true),
        interval: body.interval_s.map(SyncInterval::parse).transpose()?,
        threshold,
        options: ConnectorOptions::parse(body.options.unwrap_or_default())?,
        credentials: body.credentials.map(Credentials::new),
    })
}

/// Create (201) or replace (200) a connector; credentials are sealed, and leaving them out
/// keeps the stored ones (for the same origin and kind).
#[utoipa::path(put, path = "/api/v1/connectors/{name}", tag = "sync", operation_id = "putConnector",
    params(NamePath, ReasonHeader), request_body = ConnectorIn,
    responses((status = 200, description = "replaced", body = ConnectorOut),
        (status = 201, description = "created", body = ConnectorOut)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ConnectorIn>,
) -> Result<Response, ApiError> {
    let name = ConnectorName::parse(&name)?;
    let (connector, created) = state
        .services
        .put_connector(&principal, request(name, body)?)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(connector_out(&connector))).into_response())
}

/// List the tenant's connectors, without credentials (tenant admins).
#[utoipa::path(get, path = "/api/v1/connectors", tag = "sync", operation_id = "listConnectors",
    responses((status = 200, description = "the connectors", body = ConnectorList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
) -> Result<Response, ApiError> {
    let connectors = state.services.list_connectors(&principal).await?;
    let items = connectors.iter().map(connector_out).collect();
    Ok(Json(ConnectorList { items }).into_response())
}

/// Read a connector, without credentials (tenant admins).
#[utoipa::path(get, path = "/api/v1/connectors/{name}", tag = "sync", operation_id = "getConnector",
    params(NamePath), responses((status = 200, description = "the connector", body = ConnectorOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    let connector = state.services.get_connector(&principal, &name).await?;
    Ok(Json(connector_out(&connector)).into_response())
}

/// Remove a connector; what it synced stays.
#[utoipa::path(delete, path = "/api/v1/connectors/{name}", tag = "sync", operation_id = "deleteConnector",
    params(NamePath, ReasonHeader), responses((status = 204, description = "removed")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    state.services.delete_connector(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run one cycle of the connector now (reconciliation included) and answer its report.
#[utoipa::path(post, path = "/api/v1/sync/{name}/run", tag = "sync", operation_id = "runSync",
    params(NamePath), responses((status = 200, description = "the cycle's report", body = CycleReportOut)))]
pub(crate) async fn run(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    let report = state.services.run_connector_now(&principal, &name).await?;
    Ok(Json(CycleReportOut::from(report)).into_response())
}

/// The engine's view of the tenant's connectors (tenant admins).
#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync", operation_id = "syncStatus",
    responses((status = 200, description = "each connector's health", body = SyncStatus)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
) -> Result<Response, ApiError> {
    let items: Vec<ConnectorHealthOut> = state
        .services
        .sync_health(&principal)?
        .into_iter()
        .map(ConnectorHealthOut::from)
        .collect();
    Ok(Json(SyncStatus { items }).into_response())
}

/// Upstream records a cycle could not map or store, newest first (tenant admins).
#[utoipa::path(get, path = "/api/v1/sync/dead-letters", tag = "sync", operation_id = "listDeadLetters",
    params(PageQuery), responses((status = 200, description = "a page of dead letters", body = PageOut<DeadLetterOut>)))]
pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = crate::handlers::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let letters = state.services.list_dead_letters(&principal, page).await?;
    let out = PageOut::from_page(letters, |d| DeadLetterOut {
        id: d.id.to_string(),
        connector: d.connector.as_str().to_owned(),
        external_id: d.external_id,
        error: d.error,
        attempts: d.attempts,
        payload_digest: d.payload_digest.as_str().to_owned(),
        created_at: d.created_at.to_string(),
        updated_at: d.updated_at.to_string(),
    });
    Ok(Json(out).into_response())
}

/// Map the record again with the connector's current settings and store it; 422 with the
/// reason when it still does not map.
#[utoipa::path(post, path = "/api/v1/sync/dead-letters/{id}/replay", tag = "sync", operation_id = "replayDeadLetter",
    params(IdPath), responses((status = 200, description = "what the replay did", body = ReplayedOut)))]
pub(crate) async fn replay(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, vigil_domain::DeadLetterId::parse)?;
    let outcome = state.services.replay_dead_letter(&principal, id).await?;
    Ok(Json(ReplayedOut {
        outcome: outcome.as_str(),
    })
    .into_response())
}
