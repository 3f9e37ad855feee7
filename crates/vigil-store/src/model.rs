use std::fmt;

use crate::{StoreError, StoreResult};

use vigil_domain::{
    ApiKeyId, Cursor, Email, EventId, Indicator, Role, SessionId, Sha256Hex, Suppression, TenantId,
    Timestamp, UserId,
};

/// Whose rows a call may touch: the platform's own (platform-admin keys and users) or one
/// tenant's. Audit events of a scope go to its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Tenant(TenantId),
}

impl Scope {
    pub fn chain(&self) -> TenantId {
        match self {
            Scope::Platform => TenantId::PLATFORM_CHAIN,
            Scope::Tenant(tenant) => *tenant,
        }
    }

    pub fn tenant(&self) -> Option<TenantId> {
        match self {
            Scope::Platform => None,
            Scope::Tenant(tenant) => Some(*tenant),
        }
    }
}

/// One page of a list and where the next one starts, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only proves there is more.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// The first characters of the key, kept so people can tell their keys apart.
    pub prefix: String,
    pub hash: Sha256Hex,
    pub expires_at: Option<Timestamp>,
}

/// A stored API key. The key itself is never stored; `hash` is its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub hash: Sha256Hex,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl ApiKey {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    pub role: Role,
    /// A PHC-format argon2id hash.
    pub password_hash: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: Email,
    pub role: Role,
    pub password_hash: String,
    /// Set while the user is disabled: no login, no session.
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A change to a user by a tenant admin. Each but `Enable` revokes the user's live sessions
/// in the same transaction.
#[derive(Clone, PartialEq, Eq)]
pub enum UserEdit {
    Disable,
    Enable,
    /// The new password's hash.
    SetPassword(String),
    /// Removes the user and its sessions; the audit trail keeps their events.
    Delete,
}

impl fmt::Debug for UserEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserEdit::Disable => "Disable",
            UserEdit::Enable => "Enable",
            UserEdit::SetPassword(_) => "SetPassword([REDACTED])",
            UserEdit::Delete => "Delete",
        })
    }
}

impl UserEdit {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            UserEdit::Disable => "user.disable",
            UserEdit::Enable => "user.enable",
            UserEdit::SetPassword(_) => "user.password_reset",
            UserEdit::Delete => "user.delete",
        }
    }

    pub fn revokes_sessions(&self) -> bool {
        !matches!(self, UserEdit::Enable)
    }

    /// The user after the edit (for `Delete`, as it was).
    pub fn apply(&self, before: &User, now: Timestamp) -> User {
        let mut after = before.clone();
        match self {
            UserEdit::Disable => after.disabled_at = Some(before.disabled_at.unwrap_or(now)),
            UserEdit::Enable => after.disabled_at = None,
            UserEdit::SetPassword(hash) => after.password_hash.clone_from(hash),
            UserEdit::Delete => {}
        }
        after
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub role: Role,
    pub refresh_hash: Sha256Hex,
    pub expires_at: Timestamp,
}

/// A login: what its refresh token renews and what revocation ends.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub role: Role,
    pub refresh_hash: Sha256Hex,
    /// The refresh hash before the last rotation, to tell reuse from a wrong token.
    pub previous_refresh_hash: Option<Sha256Hex>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub refreshed_at: Timestamp,
}

impl Session {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    pub fn scope(&self) -> Scope {
        self.tenant_id.map_or(Scope::Platform, Scope::Tenant)
    }

    /// The session after its refresh token `expected` is traded for `next`. `Conflict` when
    /// `expected` is not the current token (it was already used).
    pub fn rotated(
        &self,
        expected: &Sha256Hex,
        next: Sha256Hex,
        now: Timestamp,
    ) -> StoreResult<Session> {
        if self.refresh_hash != *expected {
            return Err(StoreError::Conflict("refresh token already used".into()));
        }
        Ok(Session {
            previous_refresh_hash: Some(self.refresh_hash.clone()),
            refresh_hash: next,
            refreshed_at: now,
            ..self.clone()
        })
    }

    /// The session revoked at `now`; a second revocation keeps the first time.
    pub fn revoked(&self, now: Timestamp) -> Session {
        Session {
            revoked_at: self.revoked_at.or(Some(now)),
            ..self.clone()
        }
    }

    pub fn with_expiry(&self, expires_at: Timestamp) -> Session {
        Session {
            expires_at,
            ..self.clone()
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("refresh_hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Connection-pool occupancy, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// What an import did, by (type, value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What the correlator compiles: a tenant's active indicators and suppressions as of
/// `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueSnapshot {
    pub version: i64,
    pub indicators: Vec<Indicator>,
    pub suppressions: Vec<Suppression>,
}

/// The answer for one event of `insert_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: EventId,
    /// The tenant already had an event with this client id; `id` is that event.
    pub duplicate: bool,
}
