//! API keys, users and sessions. Scope columns are `tenant_id`, NULL for the platform; SQLite's
//! `IS` compares NULL with NULL, so one query serves both scopes.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use vigil_domain::{ApiKeyId, Cursor, Email, PageRequest, SessionId, Sha256Hex, Timestamp, UserId};
use vigil_store::{
    ApiKey, ApiKeyRepo, AuditDraft, Change, NewApiKey, NewSession, NewUser, Page, Scope, Session,
    SessionRepo, StoreError, StoreResult, User, UserRepo,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, id_text, map_err};

fn scope_id(scope: Scope) -> Option<String> {
    id_text(scope.tenant())
}

async fn key_in(conn: &mut SqliteConnection, scope: Scope, id: ApiKeyId) -> StoreResult<ApiKey> {
    let row = sqlx::query("SELECT * FROM api_keys WHERE tenant_id IS ? AND id = ?")
        .bind(scope_id(scope))
        .bind(id.to_string())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::api_key(&row)?.try_into()
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
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key.id.to_string())
        .bind(scope_id(scope))
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(key.hash.as_str())
        .bind(key.expires_at.map(|at| at.unix_micros()))
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append(
            &mut tx,
            scope.chain(),
            change,
            AuditDraft::api_key("api_key.create", None, &key),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(key)
    }

    async fn list_api_keys(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<ApiKey>> {
        let rows = sqlx::query(
            "SELECT * FROM api_keys WHERE tenant_id IS ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(scope_id(scope))
        .bind(page.cursor().map(|cursor| cursor.id().to_string()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let keys = rows
            .iter()
            .map(|r| row::api_key(r)?.try_into())
            .collect::<StoreResult<Vec<ApiKey>>>()?;
        Ok(Page::from_overfetch(keys, page.limit(), |key| {
            Cursor::after(key.id.as_uuid())
        }))
    }

    async fn revoke_api_key(
        &self,
        scope: Scope,
        change: &Change,
        id: ApiKeyId,
    ) -> StoreResult<ApiKey> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let before = key_in(&mut tx, scope, id).await?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
            .bind(now.unix_micros())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let after = ApiKey {
            revoked_at: Some(now),
            ..before.clone()
        };
        append(
            &mut tx,
            scope.chain(),
            change,
            AuditDraft::api_key("api_key.revoke", Some(&before), &after),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn unchecked_find_api_key_by_hash(
        &self,
        hash: &Sha256Hex,
    ) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = ?")
            .bind(hash.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.map(|row| row::api_key(&row)?.try_into()).transpose()
    }

    async fn count_usable_platform_keys(&self, now: Timestamp) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_keys WHERE tenant_id IS NULL AND role = 'platform-admin'
               AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(now.unix_micros())
        .fetch_one(&self.read)
        .await
        .map_err(map_err)?;
        Ok(n.unsigned_abs())
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
            created_at: now,
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO users (id, tenant_id, email, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(user.id.to_string())
            .bind(scope_id(scope))
            .bind(user.email.as_str())
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .bind(now.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("e-mail {} is taken", user.email.as_str())),
                other => other,
            })?;
        append(
            &mut tx,
            scope.chain(),
            change,
            AuditDraft::user_created(&user),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn list_users(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<User>> {
        let rows = sqlx::query(
            "SELECT * FROM users WHERE tenant_id IS ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(scope_id(scope))
        .bind(page.cursor().map(|cursor| cursor.id().to_string()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let users = rows
            .iter()
            .map(|r| row::user(r)?.try_into())
            .collect::<StoreResult<Vec<User>>>()?;
        Ok(Page::from_overfetch(users, page.limit(), |user| {
            Cursor::after(user.id.as_uuid())
        }))
    }

    async fn find_user_by_email(&self, scope: Scope, email: &Email) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id IS ? AND email = ?")
            .bind(scope_id(scope))
            .bind(email.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.map(|row| row::user(&row)?.try_into()).transpose()
    }

    async fn get_user(&self, scope: Scope, id: UserId) -> StoreResult<User> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id IS ? AND id = ?")
            .bind(scope_id(scope))
            .bind(id.to_string())
            .fetch_one(&self.read)
            .await
            .map_err(map_err)?;
        row::user(&row)?.try_into()
    }
}

async fn session_in(
    conn: &mut SqliteConnection,
    scope: Scope,
    id: SessionId,
) -> StoreResult<Session> {
    let row = sqlx::query("SELECT * FROM sessions WHERE tenant_id IS ? AND id = ?")
        .bind(scope_id(scope))
        .bind(id.to_string())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::session(&row)?.try_into()
}

impl SqliteStore {
    /// Applies `edit` to a session inside one write transaction and audits it as `action`.
    async fn edit_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        action: &'static str,
        edit: impl FnOnce(&Session) -> StoreResult<Session> + Send,
    ) -> StoreResult<Session> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let before = session_in(&mut tx, scope, id).await?;
        let after = edit(&before)?;
        sqlx::query("UPDATE sessions SET refresh_hash = ?, expires_at = ?, revoked_at = ?, refreshed_at = ? WHERE id = ?")
            .bind(after.refresh_hash.as_str())
            .bind(after.expires_at.unix_micros())
            .bind(after.revoked_at.map(|at| at.unix_micros()))
            .bind(after.refreshed_at.unix_micros())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append(
            &mut tx,
            scope.chain(),
            change,
            AuditDraft::session(action, Some(&before), &after),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
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
        let mut tx = self.begin_write().await?;
        // The user must exist in the same scope, not merely somewhere.
        let user = sqlx::query("SELECT 1 FROM users WHERE tenant_id IS ? AND id = ?")
            .bind(scope_id(scope))
            .bind(new.user_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if user.is_none() {
            return Err(StoreError::Conflict(
                "the session's user does not exist".into(),
            ));
        }
        let session = Session {
            id: new.id,
            tenant_id: scope.tenant(),
            user_id: new.user_id,
            role: new.role,
            refresh_hash: new.refresh_hash,
            expires_at: new.expires_at,
            revoked_at: None,
            created_at: now,
            refreshed_at: now,
        };
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, role, refresh_hash, expires_at, created_at, refreshed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session.id.to_string())
        .bind(scope_id(scope))
        .bind(session.user_id.to_string())
        .bind(session.role.as_str())
        .bind(session.refresh_hash.as_str())
        .bind(session.expires_at.unix_micros())
        .bind(now.unix_micros())
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append(
            &mut tx,
            scope.chain(),
            change,
            AuditDraft::session("session.create", None, &session),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(session)
    }

    async fn get_session(&self, scope: Scope, id: SessionId) -> StoreResult<Session> {
        let mut conn = self.read.acquire().await.map_err(map_err)?;
        session_in(&mut conn, scope, id).await
    }

    async fn unchecked_get_session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.map(|row| row::session(&row)?.try_into()).transpose()
    }

    async fn list_sessions(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<Session>> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE tenant_id IS ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(scope_id(scope))
        .bind(page.cursor().map(|cursor| cursor.id().to_string()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let sessions = rows
            .iter()
            .map(|r| row::session(r)?.try_into())
            .collect::<StoreResult<Vec<Session>>>()?;
        Ok(Page::from_overfetch(sessions, page.limit(), |session| {
            Cursor::after(session.id.as_uuid())
        }))
    }

    async fn rotate_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        expected: &Sha256Hex,
        next: &Sha256Hex,
    ) -> StoreResult<Session> {
        self.edit_session(scope, change, id, "session.refresh", |before| {
            if before.refresh_hash != *expected {
                return Err(StoreError::Conflict("refresh token already used".into()));
            }
            Ok(Session {
                refresh_hash: next.clone(),
                refreshed_at: Timestamp::now(),
                ..before.clone()
            })
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
            Ok(Session {
                revoked_at: before.revoked_at.or(Some(Timestamp::now())),
                ..before.clone()
            })
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
        self.edit_session(scope, change, id, "session.expiry", |before| {
            Ok(Session {
                expires_at,
                ..before.clone()
            })
        })
        .await
    }
}
