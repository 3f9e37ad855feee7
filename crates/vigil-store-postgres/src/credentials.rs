//! API keys, users and sessions. Scope columns are `tenant_id`, NULL for the platform; the
//! queries compare `coalesce(tenant_id, nil)` with `Scope::chain()`, the expression the
//! policies and the scope indexes use, so one query serves both scopes.

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use uuid::Uuid;
use vigil_domain::{
    ApiKeyId, Cursor, Email, PageRequest, SessionId, Sha256Hex, TenantId, Timestamp, UserId,
};
use vigil_store::{
    ApiKey, ApiKeyRepo, AuditDraft, Change, NewApiKey, NewSession, NewUser, Page, Scope, Session,
    SessionRepo, StoreError, StoreResult, User, UserEdit, UserRepo,
};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

/// The value a row's scope expression has in `scope`.
/// One page of a scope's rows of `$table`, newest first: `$1` the scope, `$2` the cursor's
/// id, `$3` the page size plus one.
macro_rules! scoped_page_sql {
    ($table:literal) => {
        concat!(
            "SELECT * FROM ",
            $table,
            " WHERE ",
            scope_of_row!(),
            " = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        )
    };
}

fn scope_key(scope: Scope) -> Uuid {
    scope.chain().as_uuid()
}

/// The `tenant_id` column value of a new row in `scope`.
fn tenant_column(scope: Scope) -> Option<Uuid> {
    scope.tenant().map(|tenant| tenant.as_uuid())
}

/// Reads a key for a change and locks its row until the transaction ends, so concurrent
/// changes apply one after another instead of each from the same stale copy (SQLite gets
/// this from its single writer).
async fn lock_key(conn: &mut PgConnection, scope: Scope, id: ApiKeyId) -> StoreResult<ApiKey> {
    let row = sqlx::query(concat!(
        "SELECT * FROM api_keys WHERE ",
        scope_of_row!(),
        " = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(scope_key(scope))
    .bind(id.as_uuid())
    .fetch_one(conn)
    .await
    .map_err(map_err)?;
    row::api_key(&row)?.try_into()
}

#[async_trait]
impl ApiKeyRepo for PostgresStore {
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
        let mut tx = self.begin_scoped(scope.chain()).await?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.as_uuid())
        .bind(tenant_column(scope))
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(key.hash.as_str())
        .bind(key.expires_at.map(|at| at.to_datetime()))
        .bind(now.to_datetime())
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
        let sql = scoped_page_sql!("api_keys");
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
        let mut tx = self.begin_scoped(scope.chain()).await?;
        let before = lock_key(&mut tx, scope, id).await?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = $1 WHERE ",
            scope_of_row!(),
            " = $2 AND id = $3"
        ))
        .bind(now.to_datetime())
        .bind(scope_key(scope))
        .bind(id.as_uuid())
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
        let query = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1").bind(hash.as_str());
        let row = self.fetch_platform_optional(query).await?;
        row.map(|row| row::api_key(&row)?.try_into()).transpose()
    }

    async fn count_usable_platform_keys(&self, now: Timestamp) -> StoreResult<u64> {
        let mut tx = self.begin_scoped(TenantId::PLATFORM_CHAIN).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_keys WHERE tenant_id IS NULL AND role = 'platform-admin'
               AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(now.to_datetime())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(n.unsigned_abs())
    }
}

#[async_trait]
impl UserRepo for PostgresStore {
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
        let mut tx = self.begin_scoped(scope.chain()).await?;
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_uuid())
        .bind(tenant_column(scope))
        .bind(user.email.as_str())
        .bind(user.role.as_str())
        .bind(&user.password_hash)
        .bind(now.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(|err| match map_err(err) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("e-mail {} is taken", user.email.as_str()))
            }
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
        let sql = scoped_page_sql!("users");
        self.list_scoped(sql, scope, page, row::user, |user: &User| user.id.as_uuid())
            .await
    }

    async fn find_user_by_email(&self, scope: Scope, email: &Email) -> StoreResult<Option<User>> {
        let query = sqlx::query(concat!(
            "SELECT * FROM users WHERE ",
            scope_of_row!(),
            " = $1 AND email = $2"
        ))
        .bind(scope_key(scope))
        .bind(email.as_str());
        let row = self.fetch_optional_scoped(scope.chain(), query).await?;
        row.map(|row| row::user(&row)?.try_into()).transpose()
    }

    async fn get_user(&self, scope: Scope, id: UserId) -> StoreResult<User> {
        let query = sqlx::query(concat!(
            "SELECT * FROM users WHERE ",
            scope_of_row!(),
            " = $1 AND id = $2"
        ))
        .bind(scope_key(scope))
        .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(scope.chain(), query).await?;
        row::user(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn edit_user(
        &self,
        scope: Scope,
        change: &Change,
        id: UserId,
        edit: UserEdit,
    ) -> StoreResult<User> {
        let mut tx = self.begin_scoped(scope.chain()).await?;
        let row = sqlx::query(concat!(
            "SELECT * FROM users WHERE ",
            scope_of_row!(),
            " = $1 AND id = $2 FOR UPDATE"
        ))
        .bind(scope_key(scope))
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let before: User = row::user(&row.ok_or(StoreError::NotFound)?)?.try_into()?;
        let now = Timestamp::now();
        let after = edit.apply(&before, now);
        let revoked = if edit.revokes_sessions() {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now.to_datetime())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
        } else {
            0
        };
        if edit == UserEdit::Delete {
            for sql in [
                "DELETE FROM sessions WHERE user_id = $1",
                "DELETE FROM users WHERE id = $1",
            ] {
                sqlx::query(sql)
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        } else {
            sqlx::query("UPDATE users SET password_hash = $1, disabled_at = $2 WHERE id = $3")
                .bind(&after.password_hash)
                .bind(after.disabled_at.map(|at| at.to_datetime()))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let kept = (edit != UserEdit::Delete).then_some(&after);
        let draft = AuditDraft::user_changed(edit.action(), &before, kept, revoked);
        append(&mut tx, scope.chain(), change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }
}

/// Reads a session for a change and locks its row until the transaction ends: two rotations
/// with the same refresh token must not both see the old hash, or reuse goes unnoticed.
async fn lock_session(
    conn: &mut PgConnection,
    scope: Scope,
    id: SessionId,
) -> StoreResult<Session> {
    let row = sqlx::query(concat!(
        "SELECT * FROM sessions WHERE ",
        scope_of_row!(),
        " = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(scope_key(scope))
    .bind(id.as_uuid())
    .fetch_one(conn)
    .await
    .map_err(map_err)?;
    row::session(&row)?.try_into()
}

/// Fails with `Conflict` unless the user exists in `scope`, not merely somewhere: the
/// foreign key alone would accept another tenant's user.
async fn check_user_in(conn: &mut PgConnection, scope: Scope, id: UserId) -> StoreResult<()> {
    let user = sqlx::query(concat!(
        "SELECT 1 FROM users WHERE ",
        scope_of_row!(),
        " = $1 AND id = $2"
    ))
    .bind(scope_key(scope))
    .bind(id.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    match user {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(
            "the session's user does not exist".into(),
        )),
    }
}

impl PostgresStore {
    /// One page of a scope's keys, users or sessions (see `scoped_page_sql`).
    async fn list_scoped<T, R>(
        &self,
        sql: &'static str,
        scope: Scope,
        page: PageRequest,
        decode: fn(&PgRow) -> StoreResult<R>,
        id_of: fn(&T) -> uuid::Uuid,
    ) -> StoreResult<Page<T>>
    where
        T: TryFrom<R, Error = StoreError>,
    {
        let query = sqlx::query(sql)
            .bind(scope_key(scope))
            .bind(page.cursor().map(|cursor| cursor.id()))
            .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(scope.chain(), query).await?;
        let items = rows
            .iter()
            .map(|r| T::try_from(decode(r)?))
            .collect::<StoreResult<Vec<T>>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |item| {
            Cursor::after(id_of(item))
        }))
    }
}

impl PostgresStore {
    /// Applies `edit` to a session inside one scoped transaction and audits it as `action`.
    async fn edit_session(
        &self,
        scope: Scope,
        change: &Change,
        id: SessionId,
        action: &'static str,
        edit: impl FnOnce(&Session) -> StoreResult<Session> + Send,
    ) -> StoreResult<Session> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(scope.chain()).await?;
        let before = lock_session(&mut tx, scope, id).await?;
        let after = edit(&before)?;
        sqlx::query(concat!(
            "UPDATE sessions SET refresh_hash = $1, expires_at = $2, revoked_at = $3,
                refreshed_at = $4, previous_refresh_hash = $7 WHERE ",
            scope_of_row!(),
            " = $5 AND id = $6"
        ))
        .bind(after.refresh_hash.as_str())
        .bind(after.expires_at.to_datetime())
        .bind(after.revoked_at.map(|at| at.to_datetime()))
        .bind(after.refreshed_at.to_datetime())
        .bind(scope_key(scope))
        .bind(id.as_uuid())
        .bind(after.previous_refresh_hash.as_ref().map(Sha256Hex::as_str))
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
impl SessionRepo for PostgresStore {
    async fn create_session(
        &self,
        scope: Scope,
        change: &Change,
        new: NewSession,
    ) -> StoreResult<Session> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(scope.chain()).await?;
        check_user_in(&mut tx, scope, new.user_id).await?;
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
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, role, refresh_hash, expires_at,
                created_at, refreshed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(session.id.as_uuid())
        .bind(tenant_column(scope))
        .bind(session.user_id.as_uuid())
        .bind(session.role.as_str())
        .bind(session.refresh_hash.as_str())
        .bind(session.expires_at.to_datetime())
        .bind(now.to_datetime())
        .bind(now.to_datetime())
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
        let query = sqlx::query(concat!(
            "SELECT * FROM sessions WHERE ",
            scope_of_row!(),
            " = $1 AND id = $2"
        ))
        .bind(scope_key(scope))
        .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(scope.chain(), query).await?;
        row::session(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn unchecked_get_session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        let query = sqlx::query("SELECT * FROM sessions WHERE id = $1").bind(id.as_uuid());
        let row = self.fetch_platform_optional(query).await?;
        row.map(|row| row::session(&row)?.try_into()).transpose()
    }

    async fn list_sessions(&self, scope: Scope, page: PageRequest) -> StoreResult<Page<Session>> {
        let sql = scoped_page_sql!("sessions");
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
