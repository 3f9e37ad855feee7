//! Reading PostgreSQL rows into the shared row structs, and sqlx errors into `StoreError`.

use sqlx::error::ErrorKind;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};
use time::OffsetDateTime;
use vigil_domain::Timestamp;
use vigil_store::{
    ApiKeyRow, AuditRow, ConnectorRow, DeadLetterRow, EventRow, FindingRow, IndicatorRow, MatchRow,
    RiskRow, SessionRow, StoreError, StoreResult, SuppressionRow, TenantRow, UserRow,
};

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(err.to_string())
        }
        // Configuration errors may quote the connection URL, password included.
        sqlx::Error::Configuration(_) => {
            StoreError::Backend("invalid PostgreSQL connection settings".into())
        }
        sqlx::Error::Database(db) => match db.kind() {
            // The server's message names constraints; callers that expect a conflict say
            // what it means, this is the fallback.
            ErrorKind::UniqueViolation => {
                StoreError::Conflict("conflicts with an existing record".to_owned())
            }
            ErrorKind::ForeignKeyViolation => {
                StoreError::Conflict("a referenced record does not exist".to_owned())
            }
            _ if db.code().as_deref().is_some_and(is_transient) => {
                StoreError::Unavailable(db.message().to_owned())
            }
            _ => StoreError::Backend(db.message().to_owned()),
        },
        _ => StoreError::Backend(err.to_string()),
    }
}

/// SQLSTATEs that say "not now" rather than "never": connection trouble (08), resource
/// exhaustion (53), operator intervention such as a statement timeout or a shutdown (57),
/// a serialization failure (40001), a deadlock (40P01) and a lock not available (55P03).
fn is_transient(code: &str) -> bool {
    ["08", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "55P03")
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(map_err)
}

fn at(row: &PgRow, column: &str) -> StoreResult<Timestamp> {
    get::<OffsetDateTime>(row, column).map(Timestamp::from_datetime)
}

fn opt_at(row: &PgRow, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<OffsetDateTime>>(row, column)?.map(Timestamp::from_datetime))
}

pub(crate) fn tenant(row: &PgRow) -> StoreResult<TenantRow> {
    Ok(TenantRow {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        role: get(row, "role")?,
        prefix: get(row, "prefix")?,
        hash: get(row, "key_hash")?,
        expires_at: opt_at(row, "expires_at")?,
        revoked_at: opt_at(row, "revoked_at")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn user(row: &PgRow) -> StoreResult<UserRow> {
    Ok(UserRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        email: get(row, "email")?,
        role: get(row, "role")?,
        password_hash: get(row, "password_hash")?,
        disabled_at: opt_at(row, "disabled_at")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn session(row: &PgRow) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        user_id: get(row, "user_id")?,
        role: get(row, "role")?,
        refresh_hash: get(row, "refresh_hash")?,
        previous_refresh_hash: get(row, "previous_refresh_hash")?,
        expires_at: at(row, "expires_at")?,
        revoked_at: opt_at(row, "revoked_at")?,
        created_at: at(row, "created_at")?,
        refreshed_at: at(row, "refreshed_at")?,
    })
}

pub(crate) fn risk(row: &PgRow) -> StoreResult<RiskRow> {
    Ok(RiskRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        impact: i64::from(get::<i32>(row, "impact")?),
        probability: i64::from(get::<i32>(row, "probability")?),
        status: get(row, "status")?,
        owner: get(row, "owner")?,
        tags: get(row, "tags")?,
        tlp: get(row, "tlp")?,
        source: get(row, "source")?,
        external_id: get(row, "external_id")?,
        source_state: get(row, "source_state")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn audit(row: &PgRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        seq: get(row, "seq")?,
        at: at(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        entity_type: get(row, "entity_type")?,
        entity_id: get(row, "entity_id")?,
        before: get(row, "before")?,
        after: get(row, "after")?,
        reason: get(row, "reason")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

pub(crate) fn finding(row: &PgRow) -> StoreResult<FindingRow> {
    Ok(FindingRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        severity: get(row, "severity")?,
        status: get(row, "status")?,
        asset: get(row, "asset")?,
        source: get(row, "source")?,
        external_id: get(row, "external_id")?,
        tlp: get(row, "tlp")?,
        reopen_count: i64::from(get::<i32>(row, "reopen_count")?),
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn indicator(row: &PgRow) -> StoreResult<IndicatorRow> {
    Ok(IndicatorRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        kind: get(row, "kind")?,
        value: get(row, "value")?,
        valid_from: opt_at(row, "valid_from")?,
        valid_until: opt_at(row, "valid_until")?,
        confidence: get::<Option<i32>>(row, "confidence")?.map(i64::from),
        tlp: get(row, "tlp")?,
        active: get(row, "active")?,
        source: get(row, "source")?,
        source_ref: get(row, "source_ref")?,
        finding_id: get(row, "finding_id")?,
        match_subdomains: get(row, "match_subdomains")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn suppression(row: &PgRow) -> StoreResult<SuppressionRow> {
    Ok(SuppressionRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        kind: get(row, "kind")?,
        value: get(row, "value")?,
        match_subdomains: get(row, "match_subdomains")?,
        reason: get(row, "reason")?,
        created_at: at(row, "created_at")?,
    })
}

pub(crate) fn event(row: &PgRow) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        client_id: get(row, "client_id")?,
        event_type: get(row, "event_type")?,
        occurred_at: opt_at(row, "occurred_at")?,
        body: get(row, "body")?,
        received_at: at(row, "received_at")?,
    })
}

pub(crate) fn ioc_match(row: &PgRow) -> StoreResult<MatchRow> {
    Ok(MatchRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        indicator_id: get(row, "indicator_id")?,
        indicator_kind: get(row, "indicator_kind")?,
        event_id: get(row, "event_id")?,
        field: get(row, "field")?,
        value: get(row, "value")?,
        finding_id: get(row, "finding_id")?,
        reopened: get(row, "reopened")?,
        matched_at: at(row, "matched_at")?,
    })
}

pub(crate) fn connector(row: &PgRow) -> StoreResult<ConnectorRow> {
    Ok(ConnectorRow {
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        kind: get(row, "kind")?,
        url: get(row, "url")?,
        enabled: get(row, "enabled")?,
        interval_s: i64::from(get::<i32>(row, "interval_s")?),
        threshold: get(row, "threshold")?,
        options: get(row, "options_text")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}

pub(crate) fn dead_letter(row: &PgRow) -> StoreResult<DeadLetterRow> {
    Ok(DeadLetterRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        connector: get(row, "connector")?,
        external_id: get(row, "external_id")?,
        error: get(row, "error")?,
        attempts: i64::from(get::<i32>(row, "attempts")?),
        payload: get(row, "payload")?,
        payload_digest: get(row, "payload_digest")?,
        created_at: at(row, "created_at")?,
        updated_at: at(row, "updated_at")?,
    })
}
