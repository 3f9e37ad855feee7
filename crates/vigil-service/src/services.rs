//! The use cases. Each one first proves what the principal may do, then derives the scope
//! from the principal — never from its arguments — and only then touches the store.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use vigil_domain::{
    ApiKeyId, AuditEvent, ChainReport, ChainVerifier, Email, NewRisk, PageRequest, Permission,
    Risk, RiskFilter, RiskId, RiskPatch, Role, SessionId, Sha256Hex, Slug, Tenant, TenantId,
    TenantName, Timestamp,
};
use vigil_store::{
    ApiKey, AuditFilter, NewApiKey, NewSession, Page, Scope, Session, Store, StoreError, User,
};

use crate::secrets::random_token;
use crate::tokens::AccessClaims;
use crate::{
    ApiKeySecret, Credential, JwtKey, Principal, ServiceError, ServiceResult, verify_password,
};

/// Lifetime of an access token. Short, because it is checked against its session only for
/// revocation, and a stolen one should not be worth much.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 15 * 60;
/// Lifetime of a login session (its refresh token) unless an admin changes it.
pub const SESSION_TTL_SECONDS: i64 = 12 * 60 * 60;
/// Longest a session may live, counted from its login: an admin can move its expiry, but
/// not past this, so no session is kept alive forever.
pub const SESSION_TTL_MAX_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Longest API key name, in characters.
pub const API_KEY_NAME_LEN_MAX: usize = 100;
/// Password hashes computed at once. Each argon2id run holds 19 MiB and a core for tens of
/// milliseconds; more wait their turn in a bounded queue.
pub const PASSWORD_HASHES_CONCURRENT_MAX: usize = 4;
/// Callers waiting for a hashing slot at most; past it (a flood), 503 with a retry hint.
pub const PASSWORD_QUEUE_MAX: usize = 256;
/// Longest a caller waits for a hashing slot before 503.
pub const PASSWORD_QUEUE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(10);
/// Events read per store call while verifying a chain.
const AUDIT_VERIFY_BATCH: u32 = 1_000;
const REFRESH_TOKEN_PREFIX: &str = "vgr_";
const INVALID_LOGIN: &str = "e-mail, tenant or password is wrong";

/// Whose key `create_api_key` makes: the caller's own scope, or (platform admins only) a
/// named tenant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    Own,
    Tenant(TenantId),
}

#[derive(Debug, Clone)]
pub struct NewApiKeyRequest {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<Timestamp>,
}

/// A key just created: the record, and the secret that is shown this once.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

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

#[derive(Debug, Clone)]
pub struct AuditVerification {
    pub chain: TenantId,
    pub report: ChainReport,
}

#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    jwt: Arc<JwtKey>,
    password_slots: Arc<tokio::sync::Semaphore>,
    keys: Arc<crate::key_cache::KeyCache>,
    pub(crate) catalogues: Arc<crate::correlate::CatalogueCache>,
    pub(crate) reopener: Arc<dyn crate::Reopener>,
    pub(crate) master_key: Option<Arc<crate::MasterKey>>,
    pub(crate) sync_engine: Option<Arc<dyn crate::SyncEngine>>,
    throttle: Arc<crate::throttle::LoginThrottle>,
    password_waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, jwt: JwtKey) -> Self {
        let slots = tokio::sync::Semaphore::new(PASSWORD_HASHES_CONCURRENT_MAX);
        Self {
            reopener: Arc::new(crate::StoreReopener(Arc::clone(&store))),
            store,
            jwt: Arc::new(jwt),
            password_slots: Arc::new(slots),
            keys: Arc::default(),
            catalogues: Arc::default(),
            master_key: None,
            sync_engine: None,
            throttle: Arc::default(),
            password_waiting: Arc::default(),
        }
    }

    /// The same services sealing connector credentials under `key`. Without one, connector
    /// credentials can neither be stored nor read.
    pub fn with_master_key(mut self, key: crate::MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    /// The same services with another reopener (tests inject failing ones).
    pub fn with_reopener(mut self, reopener: Arc<dyn crate::Reopener>) -> Self {
        self.reopener = reopener;
        self
    }

    /// Runs one argon2id computation on the blocking pool, if a slot is free.
    pub(crate) async fn with_password_slot<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        use std::sync::atomic::Ordering;
        let overloaded =
            ServiceError::Overloaded("too many password checks at once; retry shortly");
        let _slot = match self.password_slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Wait in line, a bounded line for a bounded time: a flood of logins slows
                // everyone down a little instead of turning most of them away.
                if self.password_waiting.fetch_add(1, Ordering::SeqCst) >= PASSWORD_QUEUE_MAX {
                    self.password_waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(overloaded);
                }
                let waited = tokio::time::timeout(
                    PASSWORD_QUEUE_WAIT_MAX,
                    self.password_slots.clone().acquire_owned(),
                )
                .await;
                self.password_waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(overloaded),
                }
            }
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| ServiceError::Internal(err.to_string()))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

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
                Ok(Principal::new(
                    Credential::Session {
                        session: session_id,
                        user,
                    },
                    role,
                    tenant,
                ))
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
        Ok(Principal::new(
            Credential::ApiKey(key.id),
            key.role,
            key.tenant_id,
        ))
    }

    // ---- sessions -------------------------------------------------------------------------

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

    // ---- tenants, keys, users -------------------------------------------------------------

    pub async fn create_tenant(
        &self,
        principal: &Principal,
        slug: Slug,
        name: TenantName,
    ) -> ServiceResult<Tenant> {
        principal.require(Permission::ManageTenants)?;
        Ok(self
            .store
            .create_tenant(&principal.change(), &slug, &name)
            .await?)
    }

    pub async fn list_tenants(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<Tenant>> {
        principal.require(Permission::ManageTenants)?;
        Ok(self.store.list_tenants(page).await?)
    }

    pub async fn find_tenant(&self, principal: &Principal, slug: &Slug) -> ServiceResult<Tenant> {
        principal.require(Permission::ManageTenants)?;
        self.store
            .find_tenant_by_slug(slug)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        request: NewApiKeyRequest,
    ) -> ServiceResult<CreatedApiKey> {
        let scope = self.key_scope(principal, owner).await?;
        match scope {
            Scope::Platform if request.role != Role::PlatformAdmin => {
                return Err(ServiceError::invalid(
                    "role",
                    "platform keys are platform-admin; create tenant keys under /api/v1/tenants/{id}/api-keys",
                ));
            }
            Scope::Tenant(_) if !request.role.is_tenant_role() => {
                return Err(ServiceError::invalid(
                    "role",
                    "a tenant key cannot be platform-admin",
                ));
            }
            _ => {}
        }
        let name = request.name.trim();
        if name.is_empty()
            || name.chars().count() > API_KEY_NAME_LEN_MAX
            || name
                .chars()
                .any(|c| c.is_control() || vigil_domain::is_hidden_format_char(c))
        {
            return Err(ServiceError::invalid(
                "name",
                "must be 1 to 100 characters on one line, without invisible formatting characters",
            ));
        }
        if request.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            return Err(ServiceError::invalid("expires_at", "must be in the future"));
        }
        let secret = ApiKeySecret::generate();
        let new = NewApiKey {
            name: name.to_owned(),
            role: request.role,
            prefix: secret.display_prefix(),
            hash: secret.hash(),
            expires_at: request.expires_at,
        };
        let key = self
            .store
            .create_api_key(scope, &principal.change(), new)
            .await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// The keys of the caller's own scope, or (platform admins only) of a named tenant.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        page: PageRequest,
    ) -> ServiceResult<Page<ApiKey>> {
        let scope = self.key_scope(principal, owner).await?;
        Ok(self.store.list_api_keys(scope, page).await?)
    }

    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        id: ApiKeyId,
    ) -> ServiceResult<ApiKey> {
        let scope = self.key_scope(principal, owner).await?;
        let key = self
            .store
            .revoke_api_key(scope, &principal.change(), id)
            .await?;
        self.keys.forget(id);
        Ok(key)
    }

    async fn key_scope(&self, principal: &Principal, owner: KeyOwner) -> ServiceResult<Scope> {
        match owner {
            KeyOwner::Own => access_scope(principal),
            KeyOwner::Tenant(tenant) => {
                principal.require(Permission::ManageTenants)?;
                self.store.get_tenant(tenant).await?;
                Ok(Scope::Tenant(tenant))
            }
        }
    }

    /// Whether the platform has a usable admin key: first start creates one when it has not.
    pub async fn has_platform_admin_key(&self) -> ServiceResult<bool> {
        Ok(self
            .store
            .count_usable_platform_keys(Timestamp::now())
            .await?
            > 0)
    }

    // ---- risks ----------------------------------------------------------------------------

    pub async fn create_risk(&self, principal: &Principal, risk: NewRisk) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        crate::catalogue::refuse_reserved_source(risk.source())?;
        Ok(self
            .store
            .create_risk(tenant, &principal.change(), risk)
            .await?)
    }

    pub async fn get_risk(&self, principal: &Principal, id: RiskId) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_risk(tenant, id).await?)
    }

    pub async fn list_risks(
        &self,
        principal: &Principal,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Risk>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_risks(tenant, filter, page).await?)
    }

    pub async fn update_risk(
        &self,
        principal: &Principal,
        id: RiskId,
        patch: RiskPatch,
    ) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        // Nothing to change: the record as it is, and no audit event.
        if patch.is_empty() {
            return Ok(self.store.get_risk(tenant, id).await?);
        }
        Ok(self
            .store
            .update_risk(tenant, &principal.change(), id, patch)
            .await?)
    }

    pub async fn delete_risk(&self, principal: &Principal, id: RiskId) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        Ok(self
            .store
            .delete_risk(tenant, &principal.change(), id)
            .await?)
    }

    // ---- audit ----------------------------------------------------------------------------

    pub async fn list_audit(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<AuditEvent>> {
        let chain = audit_chain(principal)?;
        // Roles hold through the trail: who may not read users, keys, sessions or connectors
        // directly does not read their events either.
        let mut filter = filter.clone();
        filter.data_only = !principal.role().grants(Permission::ManageTenantAccess)
            && principal.role() != Role::PlatformAdmin;
        Ok(self.store.list_audit(chain, &filter, page).await?)
    }

    /// Walks the caller's chain from the first event up to the head recorded when the walk
    /// began (events appended meanwhile are left for the next run) and reports every break.
    pub async fn verify_audit(&self, principal: &Principal) -> ServiceResult<AuditVerification> {
        let chain = audit_chain(principal)?;
        let head = self.store.audit_head(chain).await?;
        let last_seq = head.as_ref().map_or(0, |head| head.seq);
        let mut verifier = ChainVerifier::default();
        let mut after_seq = 0;
        'pages: loop {
            let events = self
                .store
                .audit_chain_after(chain, after_seq, AUDIT_VERIFY_BATCH)
                .await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if event.seq > last_seq {
                    break 'pages;
                }
                after_seq = event.seq;
                verifier.push(event);
            }
        }
        Ok(AuditVerification {
            chain,
            report: verifier.finish(head.as_ref()),
        })
    }
}

/// The scope whose keys, users and sessions the caller administers.
pub(crate) fn access_scope(principal: &Principal) -> ServiceResult<Scope> {
    if principal.role() == Role::PlatformAdmin {
        return Ok(Scope::Platform);
    }
    principal
        .require_tenant(Permission::ManageTenantAccess)
        .map(Scope::Tenant)
}

/// The audit chain the caller reads: its tenant's, or the platform's for platform admins.
fn audit_chain(principal: &Principal) -> ServiceResult<TenantId> {
    if principal.role() == Role::PlatformAdmin {
        return Ok(TenantId::PLATFORM_CHAIN);
    }
    principal.require_tenant(Permission::ReadData)
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
