use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vigil_domain::{ApiKeyId, Role, Slug, TenantId, TenantName, Timestamp};
use vigil_service::{KeyOwner, NewApiKeyRequest};

use crate::dto::{ApiKeyIn, ApiKeyOut, CreatedKeyOut, PageOut, PageQuery, TenantIn, TenantOut};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ManageTenants};
use crate::handlers::{page, path_id};
use crate::{ApiError, AppState};

pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageTenants>,
    ApiJson(body): ApiJson<TenantIn>,
) -> Result<(StatusCode, Json<TenantOut>), ApiError> {
    let slug = Slug::parse(&body.slug)?;
    let name = TenantName::parse(body.name.as_deref().unwrap_or(slug.as_str()))?;
    let tenant = state.services.create_tenant(&principal, slug, name).await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PageOut<TenantOut>>, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let tenants = state.services.list_tenants(&principal, request).await?;
    Ok(Json(PageOut::from_page(tenants, TenantOut::from)))
}

pub(crate) fn key_request(body: ApiKeyIn) -> Result<NewApiKeyRequest, ApiError> {
    Ok(NewApiKeyRequest {
        name: body.name,
        role: Role::parse(&body.role)?,
        expires_at: body
            .expires_at
            .as_deref()
            .map(Timestamp::parse)
            .transpose()
            .map_err(|err| ApiError::invalid("expires_at", err.reason()))?,
    })
}

/// `POST /api/v1/tenants/{id}/api-keys`: a platform admin issues a key inside a tenant.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageTenants>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApiKeyIn>,
) -> Result<(StatusCode, Json<CreatedKeyOut>), ApiError> {
    let tenant = path_id(&id, TenantId::parse)?;
    let created = state
        .services
        .create_api_key(&principal, KeyOwner::Tenant(tenant), key_request(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `GET /api/v1/tenants/{id}/api-keys`: a platform admin lists a tenant's keys.
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PageOut<ApiKeyOut>>, ApiError> {
    let tenant = path_id(&id, TenantId::parse)?;
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let keys = state
        .services
        .list_api_keys(&principal, KeyOwner::Tenant(tenant), request)
        .await?;
    Ok(Json(PageOut::from_page(keys, ApiKeyOut::from)))
}

/// `DELETE /api/v1/tenants/{id}/api-keys/{key_id}`: a platform admin revokes a tenant's key.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    let tenant = path_id(&id, TenantId::parse)?;
    let key_id = path_id(&key_id, ApiKeyId::parse)?;
    let key = state
        .services
        .revoke_api_key(&principal, KeyOwner::Tenant(tenant), key_id)
        .await?;
    Ok(Json(key.into()))
}
