//! Sessions: turning a bearer credential into a principal, login (throttled, hashed in a
//! bounded queue), refresh, logout, and the admin's view of sessions (list, move an expiry,
//! revoke).

use secrecy::{ExposeSecret, SecretString};
use vigil_domain::{Email, PageRequest, SessionId, Sha256Hex, Slug, TenantId, Timestamp};
use vigil_store::{NewSession, Page, Scope, Session, StoreError, User};

use crate::secrets::random_token;
use crate::services::access_scope;
use crate::tokens::AccessClaims;
use crate::{Credential, Principal, ServiceError, ServiceResult, Services, verify_password};

/// Lifetime of an access token. Short, because it is checked against its session only for
/// revocation, and a stolen one should not be worth much.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 15 * 60;
/// Lifetime of a login session (its refresh token) unless an admin changes it.
pub const SESSION_TTL_SECONDS: i64 = 12 * 60 * 60;
/// Longest a session may live, counted from its login: an admin can move its expiry, but
/// not past this, so no session is kept alive forever.
pub const SESSION_TTL_MAX_SECONDS: i64 = 30 * 24 * 60 * 60;
const REFRESH_TOKEN_PREFIX: &str = "vgr_";
const INVALID_LOGIN: &str = "e-mail, tenant or password is wrong";

/// What login and refresh hand out.
pub struct TokenPair {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub access_expires_in_seconds: i64,
    pub session: Session,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// Turns a bearer credential into a principal: an API key (`vgl_…`) or an access token.
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<Principal> {
        if bearer.starts_with(crate::API_KEY_PREFIX) {
            return self.authenticate_key(bearer).await;
        }
        let claims = self
            .jwt
            .verify(bearer, Timestamp::now())
            .map_err(|_| ServiceError::Unauthenticated("the access token is invalid or expired"))?;
        let malformed = |_| ServiceError::Unauthenticated("the access token is invalid or expired");
        let tenant = claims.tenant().map_err(malformed)?;
        let role = claims.role().map_err(malformed)?;
        let session_id = claims.session().map_err(malformed)?;
        let user = claims.user().map_err(malformed)?;
        let scope = tenant.map_or(Scope::Platform, Scope::Tenant);
        let session = match self.store.get_session(scope, session_id).await {
            Err(StoreError::NotFound) => None,
            other => Some(other?),
        };
        match session {
            Some(session) if session.is_live(Timestamp::now()) && session.user_id == user => {
                self.with_plan(Principal::new(
                    Credential::Session {
                        session: session_id,
                        user,
                    },
                    role,
                    tenant,
                ))
                .await
            }
            _ => Err(ServiceError::Unauthenticated("the session has ended")),
        }
    }

    async fn authenticate_key(&self, bearer: &str) -> ServiceResult<Principal> {
        let hash = Sha256Hex::digest(bearer.as_bytes());
        let ticket = self.keys.ticket();
        let (key, cached) = match self.keys.get(&hash) {
            Some(key) => (Some(key), true),
            None => (
                self.store.unchecked_find_api_key_by_hash(&hash).await?,
                false,
            ),
        };
        let Some(key) = key else {
            return Err(ServiceError::Unauthenticated("unknown API key"));
        };
        if key.revoked_at.is_some() {
            return Err(ServiceError::Unauthenticated(
                "the API key has been revoked",
            ));
        }
        if !key.is_usable(Timestamp::now()) {
            return Err(ServiceError::Unauthenticated("the API key has expired"));
        }
        if key.role.is_tenant_role() != key.tenant_id.is_some() {
            return Err(ServiceError::Internal(format!(
                "api key {} has a role that does not fit its scope",
                key.id
            )));
        }
        // Only a store answer starts a cache entry's life; hits must not extend it, or a busy
        // key revoked elsewhere would never be looked up again.
        if !cached {
            self.keys.put(key.clone(), ticket);
        }
        self.with_plan(Principal::new(
            Credential::ApiKey(key.id),
            key.role,
            key.tenant_id,
        ))
        .await
    }

    /// Logs a user in. `client` is the caller's address, for the per-address limit on failed
    /// logins (see `throttle`); a throttled account or address is refused before any hash.
    pub async fn login(
        &self,
        tenant: Option<&str>,
        email: &str,
        password: SecretString,
        client: Option<std::net::IpAddr>,
    ) -> ServiceResult<TokenPair> {
        let account = crate::throttle::account_key(tenant, email);
        if let Some(wait) = self.throttle.check(&account, client) {
            return Err(ServiceError::Throttled {
                retry_after_s: wait.as_secs().max(1),
            });
        }
        let (scope, user) = self.find_login_user(tenant, email).await?;
        let stored = user.as_ref().map(|user| user.password_hash.clone());
        // The hash is checked even when there is no such tenant or user (against a dummy),
        // so the time an answer takes does not reveal which slugs and e-mails exist.
        let verified = self
            .with_password_slot(move || verify_password(&password, stored.as_deref()))
            .await?;
        // A disabled user is refused like a wrong password: the answer reveals nothing.
        let usable = |user: &User| verified && user.disabled_at.is_none();
        let (Some(scope), Some(user)) = (scope, user.filter(usable)) else {
            self.login_failed(scope, email, &account, client).await;
            return Err(ServiceError::Unauthenticated(INVALID_LOGIN));
        };
        let session_id = SessionId::generate();
        let refresh = refresh_token(session_id);
        let session = self
            .store
            .create_session(
                scope,
                &vigil_store::Change::by(format!("user:{}", user.id)),
                NewSession {
                    id: session_id,
                    user_id: user.id,
                    role: user.role,
                    refresh_hash: Sha256Hex::digest(refresh.expose_secret().as_bytes()),
                    expires_at: Timestamp::now().plus_seconds(SESSION_TTL_SECONDS),
                },
            )
            .await?;
        Ok(self.token_pair(session, refresh))
    }

    /// Spends the failure from the account's and the address's budgets; a budget this used
    /// up is audited in the tenant's chain (the platform's when the tenant is unknown).
    async fn login_failed(
        &self,
        scope: Option<Scope>,
        email: &str,
        account: &str,
        client: Option<std::net::IpAddr>,
    ) {
        for (key, wait) in self.throttle.failed(account, client) {
            let chain = scope.map_or(TenantId::PLATFORM_CHAIN, |scope| scope.chain());
            let entity = match &key {
                crate::throttle::Throttled::Account(_) => email.trim().to_lowercase(),
                crate::throttle::Throttled::Address(address) => address.to_string(),
            };
            let draft = vigil_store::AuditDraft::login_throttled(
                key.limit(),
                entity,
                wait.as_secs().max(1),
            );
            let change = vigil_store::Change::by("login-throttle");
            if let Err(err) = self.store.append_event(chain, &change, draft).await {
                tracing::error!(component = "auth", error = %err, "could not audit a throttled login");
            }
            tracing::warn!(
                component = "auth",
                limit = key.limit(),
                retry_after_s = wait.as_secs(),
                "failed logins throttled"
            );
        }
    }

    /// The login's scope and user, either of which may not exist.
    async fn find_login_user(
        &self,
        tenant: Option<&str>,
        email: &str,
    ) -> ServiceResult<(Option<Scope>, Option<User>)> {
        let scope = match tenant.map(Slug::parse) {
            None => Some(Scope::Platform),
            Some(Err(_)) => None,
            Some(Ok(slug)) => self
                .store
                .find_tenant_by_slug(&slug)
                .await?
                .map(|tenant| Scope::Tenant(tenant.id)),
        };
        let (Some(scope), Ok(email)) = (scope, Email::parse(email)) else {
            return Ok((scope, None));
        };
        Ok((
            Some(scope),
            self.store.find_user_by_email(scope, &email).await?,
        ))
    }

    fn token_pair(&self, session: Session, refresh: SecretString) -> TokenPair {
        let claims = AccessClaims::new(
            session.user_id,
            session.tenant_id,
            session.role,
            session.id,
            Timestamp::now(),
            ACCESS_TOKEN_TTL_SECONDS,
        );
        TokenPair {
            access_token: SecretString::from(self.jwt.sign(&claims)),
            refresh_token: refresh,
            access_expires_in_seconds: ACCESS_TOKEN_TTL_SECONDS,
            session,
        }
    }

    /// Trades a refresh token for a new pair. Each refresh token works once. Presenting the
    /// token this session rotated away from means it was copied, so the whole session is
    /// revoked; any other wrong token is refused and changes nothing (session ids are not
    /// secret, so a guess must not be able to log anyone out).
    pub async fn refresh(&self, token: &SecretString) -> ServiceResult<TokenPair> {
        let invalid = ServiceError::Unauthenticated("the refresh token is invalid or expired");
        let Some(session_id) = parse_refresh_token(token.expose_secret()) else {
            return Err(invalid);
        };
        let Some(session) = self.store.unchecked_get_session(session_id).await? else {
            return Err(invalid);
        };
        if !session.is_live(Timestamp::now()) {
            return Err(invalid);
        }
        let change = vigil_store::Change::by(format!("user:{}", session.user_id));
        let presented = Sha256Hex::digest(token.expose_secret().as_bytes());
        if session.previous_refresh_hash.as_ref() == Some(&presented) {
            let reuse = change.because(Some("refresh token reused".into()));
            self.store
                .revoke_session(session.scope(), &reuse, session_id)
                .await?;
            tracing::warn!(component = "auth", session = %session_id, "refresh token reused; session revoked");
            return Err(invalid);
        }
        if session.refresh_hash != presented {
            return Err(invalid);
        }
        let next = refresh_token(session_id);
        let next_hash = Sha256Hex::digest(next.expose_secret().as_bytes());
        match self
            .store
            .rotate_session(session.scope(), &change, session_id, &presented, &next_hash)
            .await
        {
            Ok(session) => Ok(self.token_pair(session, next)),
            // Another refresh with the same token won the race; this one is the copy.
            Err(StoreError::Conflict(_)) => Err(invalid),
            Err(err) => Err(err.into()),
        }
    }

    /// Ends the session the caller's access token belongs to.
    pub async fn logout(&self, principal: &Principal) -> ServiceResult<Session> {
        let Credential::Session { session, .. } = principal.credential() else {
            return Err(ServiceError::Forbidden(
                "logout ends a login session; API keys are revoked with DELETE /api/v1/api-keys/{id}"
                    .into(),
            ));
        };
        Ok(self
            .store
            .revoke_session(principal.scope(), &principal.change(), session)
            .await?)
    }

    pub async fn list_sessions(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<Session>> {
        let scope = access_scope(principal)?;
        Ok(self.store.list_sessions(scope, page).await?)
    }

    pub async fn set_session_expiry(
        &self,
        principal: &Principal,
        id: SessionId,
        expires_at: Timestamp,
    ) -> ServiceResult<Session> {
        let scope = access_scope(principal)?;
        let session = self.store.get_session(scope, id).await?;
        if expires_at > session.created_at.plus_seconds(SESSION_TTL_MAX_SECONDS) {
            return Err(ServiceError::invalid(
                "expires_at",
                "must be at most 30 days after the session began",
            ));
        }
        Ok(self
            .store
            .set_session_expiry(scope, &principal.change(), id, expires_at)
            .await?)
    }

    pub async fn revoke_session(
        &self,
        principal: &Principal,
        id: SessionId,
    ) -> ServiceResult<Session> {
        let scope = access_scope(principal)?;
        Ok(self
            .store
            .revoke_session(scope, &principal.change(), id)
            .await?)
    }
}

/// `vgr_<session id>.<secret>`: the session id lets refresh find the session without a
/// tenant; the secret is what proves possession.
fn refresh_token(session: SessionId) -> SecretString {
    SecretString::from(format!(
        "{REFRESH_TOKEN_PREFIX}{}.{}",
        session.as_uuid().simple(),
        random_token()
    ))
}

fn parse_refresh_token(token: &str) -> Option<SessionId> {
    let rest = token.strip_prefix(REFRESH_TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    if secret.is_empty() {
        return None;
    }
    SessionId::parse(id).ok()
}
