//! Logins, token refresh, logout, and the users and sessions tenant admins manage.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use vigil_domain::{Email, Role, SessionId, Timestamp, UserId};
use vigil_service::TokenPair;

use crate::dto::{
    LoginIn, PageOut, PageQuery, PasswordIn, RefreshIn, SessionOut, SessionPatchIn, TokenOut,
    UserIn, UserOut, UserPatchIn,
};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ClientAddr, ManageAccess};
use crate::handlers::{page, path_id, reason};
use crate::{ApiError, AppState};

fn tokens(pair: TokenPair) -> Json<TokenOut> {
    Json(TokenOut {
        access_token: pair.access_token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: pair.access_expires_in_seconds,
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
        session: pair.session.into(),
    })
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginIn>,
) -> Result<Json<TokenOut>, ApiError> {
    let password = SecretString::from(body.password);
    let pair = state
        .services
        .login(body.tenant.as_deref(), &body.email, password, client)
        .await?;
    Ok(tokens(pair))
}

pub(crate) async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshIn>,
) -> Result<Json<TokenOut>, ApiError> {
    let pair = state
        .services
        .refresh(&SecretString::from(body.refresh_token))
        .await?;
    Ok(tokens(pair))
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    state.services.logout(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    ApiJson(body): ApiJson<UserIn>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let email = Email::parse(&body.email)?;
    let role = Role::parse(&body.role)?;
    let user = state
        .services
        .create_user(&principal, email, SecretString::from(body.password), role)
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

pub(crate) async fn list_users(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PageOut<UserOut>>, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    Ok(Json(PageOut::from_page(
        state.services.list_users(&principal, request).await?,
        UserOut::from,
    )))
}

pub(crate) async fn get_user(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    Ok(Json(state.services.get_user(&principal, id).await?.into()))
}

/// Disables (every session ends at once) or re-enables a user.
pub(crate) async fn set_user_disabled(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UserPatchIn>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    let services = &state.services;
    let user = if body.disabled {
        services
            .disable_user(&principal, id, reason(&headers))
            .await?
    } else {
        services
            .enable_user(&principal, id, reason(&headers))
            .await?
    };
    Ok(Json(user.into()))
}

pub(crate) async fn reset_password(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordIn>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    let password = SecretString::from(body.password);
    let user = state
        .services
        .reset_password(&principal, id, password, reason(&headers))
        .await?;
    Ok(Json(user.into()))
}

pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    state
        .services
        .delete_user(&principal, id, reason(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<PageOut<SessionOut>>, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    Ok(Json(PageOut::from_page(
        state.services.list_sessions(&principal, request).await?,
        SessionOut::from,
    )))
}

/// `PATCH /api/v1/sessions/{id}`: an admin shortens or extends a session.
pub(crate) async fn set_expiry(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SessionPatchIn>,
) -> Result<Json<SessionOut>, ApiError> {
    let id = path_id(&id, SessionId::parse)?;
    let expires_at = Timestamp::parse(&body.expires_at)
        .map_err(|err| ApiError::invalid("expires_at", err.reason()))?;
    Ok(Json(
        state
            .services
            .set_session_expiry(&principal, id, expires_at)
            .await?
            .into(),
    ))
}

pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionOut>, ApiError> {
    let id = path_id(&id, SessionId::parse)?;
    Ok(Json(
        state.services.revoke_session(&principal, id).await?.into(),
    ))
}
