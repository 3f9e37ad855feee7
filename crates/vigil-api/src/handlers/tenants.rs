use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vigil_domain::{ApiKeyId, Role, Slug, TenantId, TenantName, Timestamp};
use vigil_service::{KeyOwner, NewApiKeyRequest};

use crate::dto::{ApiKeyIn, ApiKeyOut, CreatedKeyOut, PageOut, PageQuery, TenantIn, TenantOut};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ManageTenants};
use crate::handlers::{IdPath, KeyIdPath, ReasonHeader, page, path_id};
use crate::{ApiError, AppState};

/// Create a tenant (platform admins).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", operation_id = "createTenant",
    params(ReasonHeader), request_body = TenantIn,
    responses((status = 201, description = "created", body = TenantOut)))]
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

/// List tenants (platform admins).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", operation_id = "listTenants",
    params(PageQuery),
    responses((status = 200, description = "a page of tenants", body = PageOut<TenantOut>)))]
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

/// Issue a key inside a tenant (platform admins).
#[utoipa::path(post, path = "/api/v1/tenants/{id}/api-keys", tag = "api-keys",
    operation_id = "createTenantApiKey", params(IdPath, ReasonHeader), request_body = ApiKeyIn,
    responses((status = 201, description = "created; the key is shown only here", body = CreatedKeyOut)))]
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

/// List a tenant's keys, without secrets (platform admins).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/api-keys", tag = "api-keys",
    operation_id = "listTenantApiKeys", params(IdPath, PageQuery),
    responses((status = 200, description = "a page of keys", body = PageOut<ApiKeyOut>)))]
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

/// Revoke a tenant's key (platform admins).
#[utoipa::path(delete, path = "/api/v1/tenants/{id}/api-keys/{key_id}", tag = "api-keys",
    operation_id = "revokeTenantApiKey", params(IdPath, KeyIdPath, ReasonHeader),
    responses((status = 200, description = "the revoked key", body = ApiKeyOut)))]
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
