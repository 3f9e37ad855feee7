//! Logins, token refresh, logout, and the users and sessions tenant admins manage.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use vigil_domain::{Email, Role, SessionId, Timestamp, UserId};
use vigil_service::TokenPair;

use crate::dto::{
    LoginIn, PageOut, PageQuery, PasswordIn, RefreshIn, SessionOut, SessionPatchIn, TokenOut,
    UserIn, UserOut, UserPatchIn,
};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ClientAddr, ManageAccess};
use crate::handlers::{IdPath, ReasonHeader, page, path_id};
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

/// Log in with e-mail and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login", security(()),
    request_body = LoginIn, responses((status = 200, description = "tokens", body = TokenOut)))]
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

/// Trade a refresh token for new tokens (each works once; reuse ends the session).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh", security(()),
    request_body = RefreshIn, responses((status = 200, description = "tokens", body = TokenOut)))]
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

/// End the current login session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout",
    params(ReasonHeader), responses((status = 204, description = "ended")))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<StatusCode, ApiError> {
    state.services.logout(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a user (tenant admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "auth", operation_id = "createUser",
    params(ReasonHeader), request_body = UserIn,
    responses((status = 201, description = "created", body = UserOut)))]
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

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "auth", operation_id = "listUsers",
    params(PageQuery), responses((status = 200, description = "a page of users", body = PageOut<UserOut>)))]
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

/// One user (tenant admins).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "auth", operation_id = "getUser",
    params(IdPath), responses((status = 200, description = "the user", body = UserOut)))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    Ok(Json(state.services.get_user(&principal, id).await?.into()))
}

/// Disable (every session ends at once) or re-enable a user (tenant admins).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "auth", operation_id = "setUserDisabled",
    params(IdPath, ReasonHeader), request_body = UserPatchIn,
    responses((status = 200, description = "the user", body = UserOut)))]
pub(crate) async fn set_user_disabled(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatchIn>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    let services = &state.services;
    let user = if body.disabled {
        services.disable_user(&principal, id).await?
    } else {
        services.enable_user(&principal, id).await?
    };
    Ok(Json(user.into()))
}

/// Set a user's password; every session of the user ends (tenant admins).
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "auth", operation_id = "resetPassword",
    params(IdPath, ReasonHeader), request_body = PasswordIn,
    responses((status = 200, description = "the user", body = UserOut)))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PasswordIn>,
) -> Result<Json<UserOut>, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    let password = SecretString::from(body.password);
    let user = state
        .services
        .reset_password(&principal, id, password)
        .await?;
    Ok(Json(user.into()))
}

/// Delete a user and its sessions; the audit trail keeps its history (tenant admins).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "auth", operation_id = "deleteUser",
    params(IdPath, ReasonHeader), responses((status = 204, description = "deleted")))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageAccess>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, UserId::parse)?;
    state.services.delete_user(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List login sessions (tenant admins).
#[utoipa::path(get, path = "/api/v1/sessions", tag = "auth", operation_id = "listSessions",
    params(PageQuery), responses((status = 200, description = "a page of sessions", body = PageOut<SessionOut>)))]
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

/// Change when a session expires (tenant admins).
#[utoipa::path(patch, path = "/api/v1/sessions/{id}", tag = "auth", operation_id = "setSessionExpiry",
    params(IdPath, ReasonHeader), request_body = SessionPatchIn,
    responses((status = 200, description = "the session", body = SessionOut)))]
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

/// Revoke a session (tenant admins).
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "auth", operation_id = "revokeSession",
    params(IdPath, ReasonHeader), responses((status = 200, description = "the revoked session", body = SessionOut)))]
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
