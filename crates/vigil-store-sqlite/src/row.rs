//! Reading SQLite rows into the shared row structs, and rusqlite errors into `StoreError`.
//!
//! Queries name their columns through the `*_columns!` macros below and the decoders read
//! them by position: looking a column up by name costs a scan of every column name per
//! value, which was a fifth of the time of a 50-row list.

use rusqlite::{ErrorCode, Row};
use uuid::Uuid;
use vigil_domain::Timestamp;
use vigil_store::{
    ApiKeyRow, AuditRow, ConnectorRow, DeadLetterRow, EventRow, FindingRow, IndicatorRow, MatchRow,
    RiskRow, SessionRow, StoreError, StoreResult, SuppressionRow, TenantRow, UserRow,
};

/// Column lists, in the order the decoders below read them.
macro_rules! tenant_columns {
    () => {
        "id, slug, name, created_at"
    };
}
macro_rules! api_key_columns {
    () => {
        "id, tenant_id, name, role, prefix, key_hash, expires_at, revoked_at, created_at"
    };
}
macro_rules! user_columns {
    () => {
        "id, tenant_id, email, role, password_hash, created_at, disabled_at"
    };
}
macro_rules! session_columns {
    () => {
        "id, tenant_id, user_id, role, refresh_hash, previous_refresh_hash, expires_at, \
         revoked_at, created_at, refreshed_at"
    };
}
macro_rules! risk_columns {
    () => {
        "id, tenant_id, title, description, impact, probability, status, owner, tags, tlp, \
         source, external_id, created_at, updated_at, source_state"
    };
}
macro_rules! audit_columns {
    () => {
        "id, tenant_id, seq, at, actor, action, entity_type, entity_id, before, after, reason, \
         prev_hash, hash"
    };
}
macro_rules! finding_columns {
    () => {
        "id, tenant_id, title, description, severity, status, asset, source, external_id, tlp, \
         reopen_count, created_at, updated_at"
    };
}
macro_rules! indicator_columns {
    () => {
        "id, tenant_id, kind, value, valid_from, valid_until, confidence, tlp, active, source, \
         source_ref, finding_id, match_subdomains, created_at, updated_at"
    };
}
macro_rules! suppression_columns {
    () => {
        "id, tenant_id, kind, value, match_subdomains, reason, created_at"
    };
}
macro_rules! event_columns {
    () => {
        "id, tenant_id, client_id, event_type, occurred_at, body, received_at"
    };
}
macro_rules! connector_columns {
    () => {
        "tenant_id, name, kind, url, enabled, interval_s, threshold, options, created_at, updated_at"
    };
}
macro_rules! dead_letter_columns {
    () => {
        "id, tenant_id, connector, external_id, error, attempts, payload, payload_digest, \
         created_at, updated_at"
    };
}
macro_rules! match_columns {
    () => {
        "id, tenant_id, indicator_id, indicator_kind, event_id, field, value, finding_id, \
         reopened, matched_at"
    };
}
/// One page of a scope's rows of `$table`, newest first: `?1` the scope, `?2` the cursor's
/// id, `?3` the page size plus one.
macro_rules! scoped_page_sql {
    ($columns:expr, $table:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM ",
            $table,
            " WHERE tenant_id IS ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
        )
    };
}

pub(crate) use {
    api_key_columns, audit_columns, connector_columns, dead_letter_columns, event_columns,
    finding_columns, indicator_columns, match_columns, risk_columns, scoped_page_sql,
    session_columns, suppression_columns, tenant_columns, user_columns,
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
                    StoreError::Conflict("conflicts with an existing record".to_owned())
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

fn text(row: &Row<'_>, column: usize) -> StoreResult<String> {
    row.get(column).map_err(map_err)
}

fn opt_text(row: &Row<'_>, column: usize) -> StoreResult<Option<String>> {
    row.get(column).map_err(map_err)
}

fn int(row: &Row<'_>, column: usize) -> StoreResult<i64> {
    row.get(column).map_err(map_err)
}

fn parse_uuid(column: usize, text: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| StoreError::Backend(format!("column {column} is not a UUID")))
}

fn uuid(row: &Row<'_>, column: usize) -> StoreResult<Uuid> {
    let value = row.get_ref(column).map_err(map_err)?;
    let text = value
        .as_str()
        .map_err(|_| StoreError::Backend(format!("column {column} is not text")))?;
    parse_uuid(column, text)
}

fn opt_uuid(row: &Row<'_>, column: usize) -> StoreResult<Option<Uuid>> {
    opt_text(row, column)?
        .map(|text| parse_uuid(column, &text))
        .transpose()
}

fn at(row: &Row<'_>, column: usize) -> StoreResult<Timestamp> {
    int(row, column).map(Timestamp::from_unix_micros)
}

fn opt_at(row: &Row<'_>, column: usize) -> StoreResult<Option<Timestamp>> {
    let micros: Option<i64> = row.get(column).map_err(map_err)?;
    Ok(micros.map(Timestamp::from_unix_micros))
}

pub(crate) fn tenant(row: &Row<'_>) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: uuid(row, 0)?,
        slug: text(row, 1)?,
        name: text(row, 2)?,
        created_at: at(row, 3)?,
    })
}

pub(crate) fn api_key(row: &Row<'_>) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: uuid(row, 0)?,
        tenant_id: opt_uuid(row, 1)?,
        name: text(row, 2)?,
        role: text(row, 3)?,
        prefix: text(row, 4)?,
        hash: text(row, 5)?,
        expires_at: opt_at(row, 6)?,
        revoked_at: opt_at(row, 7)?,
        created_at: at(row, 8)?,
    })
}

pub(crate) fn user(row: &Row<'_>) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: uuid(row, 0)?,
        tenant_id: opt_uuid(row, 1)?,
        email: text(row, 2)?,
        role: text(row, 3)?,
        password_hash: text(row, 4)?,
        created_at: at(row, 5)?,
        disabled_at: opt_at(row, 6)?,
    })
}

pub(crate) fn session(row: &Row<'_>) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: uuid(row, 0)?,
        tenant_id: opt_uuid(row, 1)?,
        user_id: uuid(row, 2)?,
        role: text(row, 3)?,
        refresh_hash: text(row, 4)?,
        previous_refresh_hash: opt_text(row, 5)?,
        expires_at: at(row, 6)?,
        revoked_at: opt_at(row, 7)?,
        created_at: at(row, 8)?,
        refreshed_at: at(row, 9)?,
    })
}

pub(crate) fn risk(row: &Row<'_>) -> StoreResult<RiskRow> {
    let tags = row.get_ref(8).map_err(map_err)?;
    let tags: Vec<String> = tags
        .as_str()
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| StoreError::Backend("column tags is not a JSON array of strings".into()))?;
    Ok(RiskRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        title: text(row, 2)?,
        description: opt_text(row, 3)?,
        impact: int(row, 4)?,
        probability: int(row, 5)?,
        status: text(row, 6)?,
        owner: opt_text(row, 7)?,
        tags,
        tlp: text(row, 9)?,
        source: opt_text(row, 10)?,
        external_id: opt_text(row, 11)?,
        created_at: at(row, 12)?,
        updated_at: at(row, 13)?,
        source_state: opt_text(row, 14)?,
    })
}

pub(crate) fn audit(row: &Row<'_>) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        seq: int(row, 2)?,
        at: at(row, 3)?,
        actor: text(row, 4)?,
        action: text(row, 5)?,
        entity_type: text(row, 6)?,
        entity_id: text(row, 7)?,
        before: opt_text(row, 8)?,
        after: opt_text(row, 9)?,
        reason: opt_text(row, 10)?,
        prev_hash: text(row, 11)?,
        hash: text(row, 12)?,
    })
}

fn flag(row: &Row<'_>, column: usize) -> StoreResult<bool> {
    row.get(column).map_err(map_err)
}

pub(crate) fn finding(row: &Row<'_>) -> StoreResult<FindingRow> {
    Ok(FindingRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        title: text(row, 2)?,
        description: opt_text(row, 3)?,
        severity: text(row, 4)?,
        status: text(row, 5)?,
        asset: opt_text(row, 6)?,
        source: opt_text(row, 7)?,
        external_id: opt_text(row, 8)?,
        tlp: text(row, 9)?,
        reopen_count: int(row, 10)?,
        created_at: at(row, 11)?,
        updated_at: at(row, 12)?,
    })
}

pub(crate) fn indicator(row: &Row<'_>) -> StoreResult<IndicatorRow> {
    Ok(IndicatorRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        kind: text(row, 2)?,
        value: text(row, 3)?,
        valid_from: opt_at(row, 4)?,
        valid_until: opt_at(row, 5)?,
        confidence: row.get(6).map_err(map_err)?,
        tlp: text(row, 7)?,
        active: flag(row, 8)?,
        source: opt_text(row, 9)?,
        source_ref: opt_text(row, 10)?,
        finding_id: opt_uuid(row, 11)?,
        match_subdomains: flag(row, 12)?,
        created_at: at(row, 13)?,
        updated_at: at(row, 14)?,
    })
}

pub(crate) fn suppression(row: &Row<'_>) -> StoreResult<SuppressionRow> {
    Ok(SuppressionRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        kind: text(row, 2)?,
        value: text(row, 3)?,
        match_subdomains: flag(row, 4)?,
        reason: opt_text(row, 5)?,
        created_at: at(row, 6)?,
    })
}

pub(crate) fn event(row: &Row<'_>) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        client_id: opt_text(row, 2)?,
        event_type: text(row, 3)?,
        occurred_at: opt_at(row, 4)?,
        body: text(row, 5)?,
        received_at: at(row, 6)?,
    })
}

pub(crate) fn ioc_match(row: &Row<'_>) -> StoreResult<MatchRow> {
    Ok(MatchRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        indicator_id: uuid(row, 2)?,
        indicator_kind: text(row, 3)?,
        event_id: uuid(row, 4)?,
        field: text(row, 5)?,
        value: text(row, 6)?,
        finding_id: opt_uuid(row, 7)?,
        reopened: flag(row, 8)?,
        matched_at: at(row, 9)?,
    })
}

pub(crate) fn connector(row: &Row<'_>) -> StoreResult<ConnectorRow> {
    Ok(ConnectorRow {
        tenant_id: uuid(row, 0)?,
        name: text(row, 1)?,
        kind: text(row, 2)?,
        url: text(row, 3)?,
        enabled: flag(row, 4)?,
        interval_s: int(row, 5)?,
        threshold: text(row, 6)?,
        options: text(row, 7)?,
        created_at: at(row, 8)?,
        updated_at: at(row, 9)?,
    })
}

pub(crate) fn dead_letter(row: &Row<'_>) -> StoreResult<DeadLetterRow> {
    Ok(DeadLetterRow {
        id: uuid(row, 0)?,
        tenant_id: uuid(row, 1)?,
        connector: text(row, 2)?,
        external_id: text(row, 3)?,
        error: text(row, 4)?,
        attempts: int(row, 5)?,
        payload: text(row, 6)?,
        payload_digest: text(row, 7)?,
        created_at: at(row, 8)?,
        updated_at: at(row, 9)?,
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
