//! API keys, users and sessions. Scope columns are `tenant_id`, NULL for the platform; SQLite's
//! `IS` compares NULL with NULL, so one query serves both scopes.

use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{ApiKeyId, Cursor, Email, PageRequest, SessionId, Sha256Hex, Timestamp, UserId};
use vigil_store::{
    ApiKey, ApiKeyRepo, AuditDraft, Change, NewApiKey, NewSession, NewUser, Page, Scope, Session,
    SessionRepo, StoreError, StoreResult, User, UserEdit, UserRepo,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{
    self, api_key_columns, exec, id_text, map_err, query_all, query_one, scoped_page_sql,
    session_columns, user_columns,
};

fn scope_id(scope: Scope) -> Option<String> {
    id_text(scope.tenant())
}

fn page_params(scope: Scope, page: PageRequest) -> (Option<String>, Option<String>, i64) {
    (
        scope_id(scope),
        page.cursor().map(|cursor| cursor.id().to_string()),
        i64::from(page.limit()) + 1,
    )
}

impl SqliteStore {
    /// One page of a scope's rows, newest first (see `scoped_page_sql`): keys, users,
    /// sessions, and the unfiltered tenant lists (suppressions, dead letters).
    pub(crate) async fn list_scoped<T, R>(
        &self,
        sql: &'static str,
        scope: Scope,
        page: PageRequest,
        decode: fn(&rusqlite::Row<'_>) -> StoreResult<R>,
        id_of: fn(&T) -> uuid::Uuid,
    ) -> StoreResult<Page<T>>
    where
        T: TryFrom<R, Error = StoreError> + Send + 'static,
        R: 'static,
    {
        self.read(move |conn| {
            let items: Vec<T> = query_all(conn, sql, page_params(scope, page), decode)?;
            Ok(Page::from_overfetch(items, page.limit(), |item| {
                Cursor::after(id_of(item))
            }))
        })
        .await
    }
}

fn key_in(conn: &Connection, scope: Scope, id: ApiKeyId) -> StoreResult<ApiKey> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE tenant_id IS ?1 AND id = ?2"
        ),
        params![scope_id(scope), id.to_string()],
        row::api_key,
    )?
    .ok_or(StoreError::NotFound)
}

#[async_trait]
impl ApiKeyRepo for SqliteStore {
    async fn create_api_key(
        &self,
        scope: Scope,
        change: &Change,
        key: NewApiKey,
    ) -> StoreResult<ApiKey> {
        let now = Timestamp::now();
        let key = ApiKey {
            id: ApiKeyId::generate(),
            tenant_id: scope.tenant(),
            name: key.name,
            role: key.role,
            prefix: key.prefix,
            hash: key.hash,
            expires_at: key.expires_at,
            revoked_at: None,
            created_at: now,
        };
        let change = change.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.id.to_string(),
                    scope_id(scope),
                    key.name,
                    key.role.as_str(),
                    key.prefix,
                    key.hash.as_str(),
                    key.expires_at.map(|at| at.unix_micros()),
                    now.unix_micros(),
                ],
            )?;
            append(tx, scope.chain(), &change, AuditDraft::api_key("api_key.create", None, &key), now)?;
            Ok(key)
        })
        .await
    }

    async fn list_api_keys(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<ApiKey>> {
        let sql = scoped_page_sql!(api_key_columns!(), "api_keys");
        self.list_scoped(sql, scope, page, row::api_key, |key: &ApiKey| {
            key.id.as_uuid()
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        scope: Scope,
        change: &Change,
        id: ApiKeyId,
    ) -> StoreResult<ApiKey> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = key_in(tx, scope, id)?;
            if before.revoked_at.is_some() {
                return Ok(before);
            }
            exec(
                tx,
                "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2",
                params![now.unix_micros(), id.to_string()],
            )?;
            let after = ApiKey {
                revoked_at: Some(now),
                ..before.clone()
            };
            append(
                tx,
                scope.chain(),
                &change,
                AuditDraft::api_key("api_key.revoke", Some(&before), &after),
                now,
            )?;
            Ok(after)
        })
        .await
    }

    async fn unchecked_find_api_key_by_hash(
        &self,
        hash: &Sha256Hex,
    ) -> StoreResult<Option<ApiKey>> {
        let hash = hash.as_str().to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    api_key_columns!(),
                    " FROM api_keys WHERE key_hash = ?1"
                ),
                [hash],
                row::api_key,
            )
        })
        .await
    }

    async fn count_usable_platform_keys(&self, now: Timestamp) -> StoreResult<u64> {
        self.read(move |conn| {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM api_keys WHERE tenant_id IS NULL AND role = 'platform-admin'
                       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
                    [now.unix_micros()],
                    |row| row.get(0),
                )
                .map_err(map_err)?;
            Ok(n.unsigned_abs())
        })
        .await
    }
}

#[async_trait]
impl UserRepo for SqliteStore {
    async fn create_user(&self, scope: Scope, change: &Change, user: NewUser) -> StoreResult<User> {
        let now = Timestamp::now();
        let user = User {
            id: UserId::generate(),
            tenant_id: scope.tenant(),
            email: user.email,
            role: user.role,
            password_hash: user.password_hash,
            disabled_at: None,
            created_at: now,
        };
        let change = change.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO users (id, tenant_id, email, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user.id.to_string(), scope_id(scope), user.email.as_str(), user.role.as_str(), user.password_hash, now.unix_micros()],
            )
            .map_err(|err| match err {
                StoreError::Conflict(_) => StoreError::Conflict(format!("e-mail {} is taken", user.email.as_str())),
                other => other,
            })?;
            append(tx, scope.chain(), &change, AuditDraft::user_created(&user), now)?;
            Ok(user)
        })
        .await
    }

    async fn list_users(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<User>> {
        let sql = scoped_page_sql!(user_columns!(), "users");
        self.list_scoped(sql, scope, page, row::user, |user: &User| user.id.as_uuid())
            .await
    }

    async fn find_user_by_email(&self, scope: Scope, email: &Email) -> StoreResult<Option<User>> {
        let email = email.as_str().to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id IS ?1 AND email = ?2"
                ),
                params![scope_id(scope), email],
                row::user,
            )
        })
        .await
    }

    async fn get_user(&self, scope: Scope, id: UserId) -> StoreResult<User> {
        self.read(move |conn| user_in(conn, scope, id)).await
    }

    async fn edit_user(
        &self,
        scope: Scope,
        change: &Change,
        id: UserId,
        edit: UserEdit,
    ) -> StoreResult<User> {
        let change = change.clone();
        self.write(move |tx| {
            let before = user_in(tx, scope, id)?;
            let now = Timestamp::now();
            let after = edit.apply(&before, now);
            let revoked = if edit.revokes_sessions() {
                exec(
                    tx,
                    "UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
                    params![now.unix_micros(), id.to_string()],
                )?
            } else {
                0
            };
            if edit == UserEdit::Delete {
                exec(
                    tx,
                    "DELETE FROM sessions WHERE user_id = ?1",
                    params![id.to_string()],
                )?;
                exec(
                    tx,
                    "DELETE FROM users WHERE id = ?1",
                    params![id.to_string()],
                )?;
            } else {
                exec(
                    tx,
                    "UPDATE users SET password_hash = ?1, disabled_at = ?2 WHERE id = ?3",
                    params![
                        after.password_hash,
                        after.disabled_at.map(|at| at.unix_micros()),
                        id.to_string()
                    ],
                )?;
            }
            let kept = (edit != UserEdit::Delete).then_some(&after);
            let draft = AuditDraft::user_changed(edit.action(), &before, kept, revoked as u64);
            append(tx, scope.chain(), &change, draft, now)?;
            Ok(after)
        })
        .await
    }
}

fn user_in(conn: &Connection, scope: Scope, id: UserId) -> StoreResult<User> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id IS ?1 AND id = ?2"
        ),
        params![scope_id(scope), id.to_string()],
        row::user,
    )?
    .ok_or(StoreError::NotFound)
}

fn session_in(conn: &Connection, scope: Scope, id: SessionId) -> StoreResult<Session> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE tenant_id IS ?1 AND id = ?2"
        ),
        params![scope_id(scope), id.to_string()],
        row::session,
    )?
    .ok_or(StoreError::NotFound)
}

impl SqliteStore {
    /// Applies `edit` to a session inside one write transaction and audits it as `action`.
    async fn edit_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        action: &'static str,
        edit: impl FnOnce(&Session) -> StoreResult<Session> + Send + 'static,
    ) -> StoreResult<Session> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = session_in(tx, scope, id)?;
            let after = edit(&before)?;
            exec(
                tx,
                "UPDATE sessions SET refresh_hash = ?1, expires_at = ?2, revoked_at = ?3, refreshed_at = ?4,
                    previous_refresh_hash = ?6 WHERE id = ?5",
                params![
                    after.refresh_hash.as_str(),
                    after.expires_at.unix_micros(),
                    after.revoked_at.map(|at| at.unix_micros()),
                    after.refreshed_at.unix_micros(),
                    id.to_string(),
                    after.previous_refresh_hash.as_ref().map(Sha256Hex::as_str),
                ],
            )?;
            append(tx, scope.chain(), &change, AuditDraft::session(action, Some(&before), &after), now)?;
            Ok(after)
        })
        .await
    }
}

#[async_trait]
impl SessionRepo for SqliteStore {
    async fn create_session(
        &self,
        scope: Scope,
        change: &Change,
        new: NewSession,
    ) -> StoreResult<Session> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            // The user must exist in the same scope, not merely somewhere.
            let user: Option<User> = query_one(
                tx,
                concat!("SELECT ", user_columns!(), " FROM users WHERE tenant_id IS ?1 AND id = ?2"),
                params![scope_id(scope), new.user_id.to_string()],
                row::user,
            )?;
            if user.is_none() {
                return Err(StoreError::Conflict("the session's user does not exist".into()));
            }
            let session = Session {
                id: new.id,
                tenant_id: scope.tenant(),
                user_id: new.user_id,
                role: new.role,
                refresh_hash: new.refresh_hash,
                previous_refresh_hash: None,
                expires_at: new.expires_at,
                revoked_at: None,
                created_at: now,
                refreshed_at: now,
            };
            exec(
                tx,
                "INSERT INTO sessions (id, tenant_id, user_id, role, refresh_hash, expires_at, created_at, refreshed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    session.id.to_string(),
                    scope_id(scope),
                    session.user_id.to_string(),
                    session.role.as_str(),
                    session.refresh_hash.as_str(),
                    session.expires_at.unix_micros(),
                    now.unix_micros(),
                    now.unix_micros(),
                ],
            )?;
            append(tx, scope.chain(), &change, AuditDraft::session("session.create", None, &session), now)?;
            Ok(session)
        })
        .await
    }

    async fn get_session(&self, scope: Scope, id: SessionId) -> StoreResult<Session> {
        self.read(move |conn| session_in(conn, scope, id)).await
    }

    async fn unchecked_get_session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id = ?1"
                ),
                [id.to_string()],
                row::session,
            )
        })
        .await
    }

    async fn list_sessions(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<Session>> {
        let sql = scoped_page_sql!(session_columns!(), "sessions");
        let id_of = |session: &Session| session.id.as_uuid();
        self.list_scoped(sql, scope, page, row::session, id_of)
            .await
    }

    async fn rotate_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        expected: &Sha256Hex,
        next: &Sha256Hex,
    ) -> StoreResult<Session> {
        let (expected, next) = (expected.clone(), next.clone());
        self.edit_session(scope, change, id, "session.refresh", move |before| {
            before.rotated(&expected, next, Timestamp::now())
        })
        .await
    }

    async fn revoke_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
    ) -> StoreResult<Session> {
        self.edit_session(scope, change, id, "session.revoke", |before| {
            Ok(before.revoked(Timestamp::now()))
        })
        .await
    }

    async fn set_session_expiry(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        expires_at: Timestamp,
    ) -> StoreResult<Session> {
        self.edit_session(scope, change, id, "session.expiry", move |before| {
            Ok(before.with_expiry(expires_at))
        })
        .await
    }
}
