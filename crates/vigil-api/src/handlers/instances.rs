//! Instances: an app bound to one client system. Secrets go in, never out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vigil_automation::{AppName, Instance, InstanceName};
use vigil_domain::SourceUrl;
use vigil_service::{InstancePatch, InstanceRequest};

use crate::dto::{PageOut, PageQuery, double_option};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ManageAccess};
use crate::handlers::{IdPath, ReasonHeader};
use crate::{ApiError, AppState};

/// A new instance of an app (tenant admins). `config` and `secrets` together must fit the
/// app's `config_schema`; secrets are the `writeOnly` fields and are never answered.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceIn {
    #[schema(schema_with = crate::schema::automation_name)]
    app: String,
    #[schema(schema_with = crate::schema::automation_name)]
    name: String,
    /// `https://` or `http://`, no credentials, query or fragment.
    base_url: Option<String>,
    config: Option<Map<String, Value>>,
    secrets: Option<Map<String, Value>>,
    #[schema(minimum = 1, maximum = 60_000)]
    rate_limit_per_minute: Option<u32>,
    #[schema(minimum = 1, maximum = 64)]
    concurrency_max: Option<u32>,
    enabled: Option<bool>,
}

/// What to change; `secrets` replaces every secret, and is needed when `base_url` moves to
/// another origin. `null` clears `base_url` or `rate_limit_per_minute`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstancePatchIn {
    #[schema(schema_with = crate::schema::automation_name)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    base_url: Option<Option<String>>,
    config: Option<Map<String, Value>>,
    secrets: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(minimum = 1, maximum = 60_000)]
    rate_limit_per_minute: Option<Option<u32>>,
    #[schema(minimum = 1, maximum = 64)]
    concurrency_max: Option<u32>,
    enabled: Option<bool>,
}

/// What the last check found.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct HealthOut {
    ok: bool,
    checked_at: String,
    last_ok_at: Option<String>,
    error: Option<String>,
}

/// An instance, with the names of its secrets and never their values.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Instance)]
pub(crate) struct InstanceOut {
    id: String,
    app: String,
    name: String,
    base_url: Option<String>,
    config: Map<String, Value>,
    /// Which secrets are set.
    secret_fields: Vec<String>,
    rate_limit_per_minute: Option<u32>,
    concurrency_max: u32,
    enabled: bool,
    health: Option<HealthOut>,
    created_at: String,
    updated_at: String,
}

fn instance_out(i: &Instance) -> InstanceOut {
    InstanceOut {
        id: i.id.to_string(),
        app: i.app.to_string(),
        name: i.name.to_string(),
        base_url: i.base_url.as_ref().map(|u| u.as_str().to_owned()),
        config: i.config.clone(),
        secret_fields: i.secret_fields.iter().cloned().collect(),
        rate_limit_per_minute: i.rate_limit_per_minute,
        concurrency_max: i.concurrency_max,
        enabled: i.enabled,
        health: i.health.as_ref().map(|h| HealthOut {
            ok: h.ok,
            checked_at: h.checked_at.to_string(),
            last_ok_at: h.last_ok_at.map(|at| at.to_string()),
            error: h.error.clone(),
        }),
        created_at: i.created_at.to_string(),
        updated_at: i.updated_at.to_string(),
    }
}

fn base_url(raw: &str) -> Result<SourceUrl, ApiError> {
    SourceUrl::parse(raw).map_err(|err| ApiError::invalid("base_url", err.reason()))
}

fn instance_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(raw)
        .map_err(|_| ApiError::not_found(format!("{raw:?} is not a valid instance id")))
}

/// Create an instance of an app (tenant admins).
#[utoipa::path(post, path = "/api/v1/instances", tag = "automation", operation_id = "createInstance",
    params(ReasonHeader), request_body = InstanceIn,
    responses((status = 201, description = "created", body = InstanceOut)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    ApiJson(body): ApiJson<InstanceIn>,
) -> Result<Response, ApiError> {
    let request = InstanceRequest {
        app: AppName::parse(&body.app)?,
        name: InstanceName::parse(&body.name)?,
        base_url: body.base_url.as_deref().map(base_url).transpose()?,
        config: body.config.unwrap_or_default(),
        secrets: body.secrets.unwrap_or_default(),
        rate_limit_per_minute: body.rate_limit_per_minute,
        concurrency_max: body.concurrency_max,
        enabled: body.enabled,
    };
    let instance = state.services.create_instance(&principal, request).await?;
    Ok((StatusCode::CREATED, Json(instance_out(&instance))).into_response())
}

/// The tenant's instances, newest first.
#[utoipa::path(get, path = "/api/v1/instances", tag = "automation", operation_id = "listInstances",
    params(PageQuery), responses((status = 200, description = "a page of instances", body = PageOut<InstanceOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = crate::handlers::page(query.limit.as_deref(), query.cursor.as_deref())?;
    let instances = state.services.list_instances(&principal, page).await?;
    Ok(Json(PageOut::from_page(instances, |i| instance_out(&i))).into_response())
}

/// Read an instance (never its secrets).
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "automation", operation_id = "getInstance",
    params(IdPath), responses((status = 200, description = "the instance", body = InstanceOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let instance = state
        .services
        .get_instance(&principal, instance_id(&id)?)
        .await?;
    Ok(Json(instance_out(&instance)).into_response())
}

/// Change an instance (tenant admins); moving `base_url` to another origin needs `secrets`.
#[utoipa::path(patch, path = "/api/v1/instances/{id}", tag = "automation", operation_id = "updateInstance",
    params(IdPath, ReasonHeader), request_body = InstancePatchIn,
    responses((status = 200, description = "the instance", body = InstanceOut)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InstancePatchIn>,
) -> Result<Response, ApiError> {
    let id = instance_id(&id)?;
    let patch = InstancePatch {
        name: body.name.as_deref().map(InstanceName::parse).transpose()?,
        base_url: body
            .base_url
            .map(|url| url.as_deref().map(base_url).transpose())
            .transpose()?,
        config: body.config,
        secrets: body.secrets,
        rate_limit_per_minute: body.rate_limit_per_minute,
        concurrency_max: body.concurrency_max,
        enabled: body.enabled,
    };
    let instance = state
        .services
        .update_instance(&principal, id, patch)
        .await?;
    Ok(Json(instance_out(&instance)).into_response())
}

/// Remove an instance (tenant admins); the history of its runs stays.
#[utoipa::path(delete, path = "/api/v1/instances/{id}", tag = "automation", operation_id = "deleteInstance",
    params(IdPath, ReasonHeader), responses((status = 204, description = "removed")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = instance_id(&id)?;
    state.services.delete_instance(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check an instance (analysts and up): its app's health task runs (trigger `test`), or,
/// without one, its base URL is fetched; the result is stored as the instance's `health`.
#[utoipa::path(post, path = "/api/v1/instances/{id}/test", tag = "automation", operation_id = "testInstance",
    params(IdPath), responses((status = 200, description = "the instance with what the check found", body = InstanceOut)))]
pub(crate) async fn test(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<crate::extract::WriteData>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let instance = state
        .services
        .test_instance(&principal, instance_id(&id)?)
        .await?;
    Ok(Json(instance_out(&instance)).into_response())
}
