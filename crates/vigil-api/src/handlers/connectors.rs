use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::{
    Connector, ConnectorKind, ConnectorName, ConnectorOptions, Severity, SourceUrl, SyncInterval,
};
use vigil_service::{ConnectorRequest, Credentials};

use crate::dto::{PageOut, PageQuery};
use crate::extract::{ApiJson, ApiQuery, Authorized, ManageAccess};
use crate::handlers::{path_id, reason};
use crate::sync_dto::{ConnectorHealthOut, CycleReportOut};
use crate::{ApiError, AppState};

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

fn connector_out(c: &Connector) -> Value {
    json!({
        "name": c.name.as_str(),
        "kind": c.kind.as_str(),
        "url": c.url.as_str(),
        "enabled": c.enabled,
        "interval_s": c.interval.seconds(),
        "threshold": c.threshold.as_str().to_ascii_uppercase(),
        "options": c.options.iter().collect::<BTreeMap<_, _>>(),
        "created_at": c.created_at.to_string(),
        "updated_at": c.updated_at.to_string(),
    })
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

/// Creates (201) or replaces (200) the connector; omitted credentials keep the stored ones.
pub(crate) async fn put(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConnectorIn>,
) -> Result<Response, ApiError> {
    let name = ConnectorName::parse(&name)?;
    let (connector, created) = state
        .services
        .put_connector(&principal, request(name, body)?, reason(&headers))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(connector_out(&connector))).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
) -> Result<Response, ApiError> {
    let connectors = state.services.list_connectors(&principal).await?;
    let items: Vec<Value> = connectors.iter().map(connector_out).collect();
    Ok(Json(json!({"items": items})).into_response())
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    let connector = state.services.get_connector(&principal, &name).await?;
    Ok(Json(connector_out(&connector)).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    state
        .services
        .delete_connector(&principal, &name, reason(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs one cycle of the connector now and answers its report (tenant admins). The
/// request's timeout bounds it; a cycle cut short keeps every page it committed.
pub(crate) async fn run(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = path_id(&name, ConnectorName::parse)?;
    let report = state.services.run_connector_now(&principal, &name).await?;
    Ok(Json(CycleReportOut::from(report)).into_response())
}

/// The engine's view of the tenant's connectors: cycles, items, last success and error,
/// breaker state (tenant admins).
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
    Ok(Json(json!({"items": items})).into_response())
}

pub(crate) async fn dead_letters(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = crate::handlers::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let letters = state.services.list_dead_letters(&principal, page).await?;
    let out = PageOut::from_page(letters, |d| {
        json!({
            "id": d.id.to_string(), "connector": d.connector.as_str(), "external_id": d.external_id,
            "error": d.error, "attempts": d.attempts, "payload_digest": d.payload_digest.as_str(),
            "created_at": d.created_at.to_string(), "updated_at": d.updated_at.to_string(),
        })
    });
    Ok(Json(out).into_response())
}

pub(crate) async fn replay(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, vigil_domain::DeadLetterId::parse)?;
    let outcome = state.services.replay_dead_letter(&principal, id).await?;
    Ok(Json(json!({"outcome": outcome.as_str()})).into_response())
}
