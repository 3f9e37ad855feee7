//! Reading SQLite rows into the shared row structs, and rusqlite errors into `StoreError`.

use rusqlite::{ErrorCode, Row};
use uuid::Uuid;
use vigil_domain::Timestamp;
use vigil_store::{
    ApiKeyRow, AuditRow, RiskRow, SessionRow, StoreError, StoreResult, TenantRow, UserRow,
};

pub(crate) fn map_err(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(failure, message) => {
            let message = message.clone().unwrap_or_else(|| failure.to_string());
            match failure.code {
                // SQLITE_CONSTRAINT_FOREIGNKEY
                ErrorCode::ConstraintViolation if failure.extended_code == 787 => {
                    StoreError::Conflict("a referenced record does not exist".to_owned())
                }
                // SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY
                ErrorCode::ConstraintViolation if matches!(failure.extended_code, 2067 | 1555) => {
                    StoreError::Conflict(message)
                }
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen => {
                    StoreError::Unavailable(message)
                }
                _ => StoreError::Backend(message),
            }
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

fn text(row: &Row<'_>, column: &str) -> StoreResult<String> {
    row.get(column).map_err(map_err)
}

fn opt_text(row: &Row<'_>, column: &str) -> StoreResult<Option<String>> {
    row.get(column).map_err(map_err)
}

fn int(row: &Row<'_>, column: &str) -> StoreResult<i64> {
    row.get(column).map_err(map_err)
}

fn parse_uuid(column: &str, text: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| StoreError::Backend(format!("column {column} is not a UUID")))
}

fn uuid(row: &Row<'_>, column: &str) -> StoreResult<Uuid> {
    let value = row.get_ref(column).map_err(map_err)?;
    let text = value
        .as_str()
        .map_err(|_| StoreError::Backend(format!("column {column} is not text")))?;
    parse_uuid(column, text)
}

fn opt_uuid(row: &Row<'_>, column: &str) -> StoreResult<Option<Uuid>> {
    opt_text(row, column)?
        .map(|text| parse_uuid(column, &text))
        .transpose()
}

fn at(row: &Row<'_>, column: &str) -> StoreResult<Timestamp> {
    int(row, column).map(Timestamp::from_unix_micros)
}

fn opt_at(row: &Row<'_>, column: &str) -> StoreResult<Option<Timestamp>> {
    let micros: Option<i64> = row.get(column).map_err(map_err)?;
    Ok(micros.map(Timestamp::from_unix_micros))
}

pub(crate) fn tenant(row: &Row<'_>) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: uuid(row, "id")?,
        slug: text(row, "slug")?,
        name: text(row, "name")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &Row<'_>) -> StoreResult<ApiKeyRow> {
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

pub(crate) fn user(row: &Row<'_>) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: uuid(row, "id")?,
        tenant_id: opt_uuid(row, "tenant_id")?,
        email: text(row, "email")?,
        role: text(row, "role")?,
        password_hash: text(row, "password_hash")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn session(row: &Row<'_>) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: uuid(row, "id")?,
        tenant_id: opt_uuid(row, "tenant_id")?,
        user_id: uuid(row, "user_id")?,
        role: text(row, "role")?,
        refresh_hash: text(row, "refresh_hash")?,
        previous_refresh_hash: opt_text(row, "previous_refresh_hash")?,
        expires_at: at(row, "expires_at")?,
        revoked_at: opt_at(row, "revoked_at")?,
        created_at: at(row, "created_at")?,
        refreshed_at: at(row, "refreshed_at")?,
    })
}

pub(crate) fn risk(row: &Row<'_>) -> StoreResult<RiskRow> {
    let tags = row.get_ref("tags").map_err(map_err)?;
    let tags: Vec<String> = tags
        .as_str()
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| StoreError::Backend("column tags is not a JSON array of strings".into()))?;
    Ok(RiskRow {
        id: uuid(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?,
        title: text(row, "title")?,
        description: opt_text(row, "description")?,
        impact: int(row, "impact")?,
        probability: int(row, "probability")?,
        status: text(row, "status")?,
        owner: opt_text(row, "owner")?,
        tags,
        tlp: text(row, "tlp")?,
        source: opt_text(row, "source")?,
        external_id: opt_text(row, "external_id")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn audit(row: &Row<'_>) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: uuid(row, "id")?,
        tenant_id: uuid(row, "tenant_id")?,
        seq: int(row, "seq")?,
        at: at(row, "at")?,
        actor: text(row, "actor")?,
        action: text(row, "action")?,
        entity_type: text(row, "entity_type")?,
        entity_id: text(row, "entity_id")?,
        before: opt_text(row, "before")?,
        after: opt_text(row, "after")?,
        reason: opt_text(row, "reason")?,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Runs a query and converts every row with `decode` then into `T`.
pub(crate) fn query_all<T, R>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&Row<'_>) -> StoreResult<R>,
) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = statement.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        out.push(T::try_from(decode(row)?)?);
    }
    Ok(out)
}

/// Like `query_all` for at most one row.
pub(crate) fn query_one<T, R>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: fn(&Row<'_>) -> StoreResult<R>,
) -> StoreResult<Option<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = statement.query(params).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(row) => Ok(Some(T::try_from(decode(row)?)?)),
        None => Ok(None),
    }
}

/// Binds an optional id as text.
pub(crate) fn id_text(id: Option<impl std::fmt::Display>) -> Option<String> {
    id.map(|id| id.to_string())
}

/// Executes one statement through the statement cache.
pub(crate) fn exec(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .map_err(map_err)?
        .execute(params)
        .map_err(map_err)
}
