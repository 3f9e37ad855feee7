//! Reading SQLite rows into the shared row structs, and sqlx errors into `StoreError`.

use sqlx::Row;
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;
use vigil_domain::Timestamp;
use vigil_store::{
    ApiKeyRow, AuditRow, RiskRow, SessionRow, StoreError, StoreResult, TenantRow, UserRow,
};

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(err.to_string())
        }
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
            ErrorKind::ForeignKeyViolation => {
                StoreError::Conflict("a referenced record does not exist".to_owned())
            }
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6): another writer held the lock too long.
            _ if matches!(db.code().as_deref(), Some("5" | "6")) => {
                StoreError::Unavailable(db.message().to_owned())
            }
            _ => StoreError::Backend(db.message().to_owned()),
        },
        _ => StoreError::Backend(err.to_string()),
    }
}

fn uuid(row: &SqliteRow, column: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(column).map_err(map_err)?;
    Uuid::try_parse(&text)
        .map_err(|_| StoreError::Backend(format!("column {column} is not a UUID")))
}

fn opt_uuid(row: &SqliteRow, column: &str) -> StoreResult<Option<Uuid>> {
    let text: Option<String> = row.try_get(column).map_err(map_err)?;
    text.map(|text| {
        Uuid::try_parse(&text)
            .map_err(|_| StoreError::Backend(format!("column {column} is not a UUID")))
    })
    .transpose()
}

fn at(row: &SqliteRow, column: &str) -> StoreResult<Timestamp> {
    row.try_get(column)
        .map(Timestamp::from_unix_micros)
        .map_err(map_err)
}

fn opt_at(row: &SqliteRow, column: &str) -> StoreResult<Option<Timestamp>> {
    let micros: Option<i64> = row.try_get(column).map_err(map_err)?;
    Ok(micros.map(Timestamp::from_unix_micros))
}

fn text<T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &SqliteRow,
    column: &str,
) -> StoreResult<T> {
    row.try_get(column).map_err(map_err)
}

pub(crate) fn tenant(row: &SqliteRow) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: uuid(row, "id")?,
        slug: text(row, "slug")?,
        name: text(row, "name")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &SqliteRow) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid(row, "id")?,
        tenant_id: opt_uuid(row, "tenant_id")?,
        name: text(row, "name")?,
        role: text(row, "role")?,
        prefix: text(row, "prefix")?,
        hash: text(row, "key_hash")?,
        expires_at: opt_at(row, "expires_at")?,
        revoked_at: opt_at(row, "revoked_at")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn user(row: &SqliteRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: uuid(row, "id")?,
        tenant_id: opt_uuid(row, "tenant_id")?,
        email: text(row, "email")?,
        role: text(row, "role")?,
        password_hash: text(row, "password_hash")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn session(row: &SqliteRow) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: uuid(row, "id")?,
        tenant_id: opt_uuid(row, "tenant_id")?,
        user_id: uuid(row, "user_id")?,
        role: text(row, "role")?,
        refresh_hash: text(row, "refresh_hash")?,
        expires_at: at(row, "expires_at")?,
        revoked_at: opt_at(row, "revoked_at")?,
        created_at: at(row, "created_at")?,
        refreshed_at: at(row, "refreshed_at")?,
    })
}

pub(crate) fn risk(row: &SqliteRow) -> StoreResult<RiskRow> {
    let tags: String = text(row, "tags")?;
    let tags: Vec<String> = serde_json::from_str(&tags)
        .map_err(|_| StoreError::Backend("column tags is not a JSON array of strings".into()))?;
    Ok(RiskRow {
        id: uuid(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?,
        title: text(row, "title")?,
        description: text(row, "description")?,
        impact: text(row, "impact")?,
        probability: text(row, "probability")?,
        status: text(row, "status")?,
        owner: text(row, "owner")?,
        tags,
        tlp: text(row, "tlp")?,
        source: text(row, "source")?,
        external_id: text(row, "external_id")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn audit(row: &SqliteRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: uuid(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?,
        seq: text(row, "seq")?,
        at: at(row, "at")?,
        actor: text(row, "actor")?,
        action: text(row, "action")?,
        entity_type: text(row, "entity_type")?,
        entity_id: text(row, "entity_id")?,
        before: text(row, "before")?,
        after: text(row, "after")?,
        reason: text(row, "reason")?,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Binds an optional id as text.
pub(crate) fn id_text(id: Option<impl std::fmt::Display>) -> Option<String> {
    id.map(|id| id.to_string())
}
