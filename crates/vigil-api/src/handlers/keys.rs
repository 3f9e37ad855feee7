use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use vigil_domain::ApiKeyId;
use vigil_service::KeyOwner;

use crate::dto::{ApiKeyIn, ApiKeyOut, CreatedKeyOut, PageOut, PageQuery};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ManageAccess};
use crate::handlers::tenants::key_request;
use crate::handlers::{IdPath, ReasonHeader, page, path_id};
use crate::{ApiError, AppState};

/// Issue a key in the caller's own scope (tenant admins, platform admins).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    params(ReasonHeader), request_body = ApiKeyIn,
    responses((status = 201, description = "created; the key is shown only here", body = CreatedKeyOut)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    ApiJson(body): ApiJson<ApiKeyIn>,
) -> Result<(StatusCode, Json<CreatedKeyOut>), ApiError> {
    let created = state
        .services
        .create_api_key(&principal, KeyOwner::Own, key_request(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// List the keys of the caller's scope, without secrets.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    params(PageQuery),
    responses((status = 200, description = "a page of keys", body = PageOut<ApiKeyOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PageOut<ApiKeyOut>>, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let keys = state
        .services
        .list_api_keys(&principal, KeyOwner::Own, request)
        .await?;
    Ok(Json(PageOut::from_page(keys, ApiKeyOut::from)))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", operation_id = "revokeApiKey",
    params(IdPath, ReasonHeader),
    responses((status = 200, description = "the revoked key", body = ApiKeyOut)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    let id = path_id(&id, ApiKeyId::parse)?;
    let key = state
        .services
        .revoke_api_key(&principal, KeyOwner::Own, id)
        .await?;
    Ok(Json(key.into()))
}
