//! Rows as both backends read them — plain values — and their conversion into domain types,
//! written once so the backends differ only in SQL.

use uuid::Uuid;
use vigil_domain::{
    ApiKeyId, AuditEvent, AuditEventId, AuditFields, BoundedText, Email, ExternalId, Level, Risk,
    RiskId, RiskStatus, RiskTitle, Role, SessionId, Sha256Hex, Slug, Source, SourceState, Tags,
    Tenant, TenantId, TenantName, Timestamp, Tlp, UserId,
};

use crate::{ApiKey, Session, StoreError, StoreResult, User};

pub struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> StoreResult<Tenant> {
        let corrupt = StoreError::corrupt;
        Ok(Tenant {
            id: TenantId::from_uuid(row.id),
            slug: Slug::parse(&row.slug).map_err(corrupt("tenants"))?,
            name: TenantName::parse(&row.name).map_err(corrupt("tenants"))?,
            created_at: row.created_at,
        })
    }
}

pub struct ApiKeyRow {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub hash: String,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;

    fn try_from(row: ApiKeyRow) -> StoreResult<ApiKey> {
        let corrupt = StoreError::corrupt("api_keys");
        Ok(ApiKey {
            id: ApiKeyId::from_uuid(row.id),
            tenant_id: row.tenant_id.map(TenantId::from_uuid),
            name: row.name,
            role: Role::parse(&row.role).map_err(StoreError::corrupt("api_keys"))?,
            prefix: row.prefix,
            hash: Sha256Hex::parse(&row.hash).map_err(corrupt)?,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
        })
    }
}

pub struct UserRow {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<User> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            tenant_id: row.tenant_id.map(TenantId::from_uuid),
            email: Email::parse(&row.email).map_err(StoreError::corrupt("users"))?,
            role: Role::parse(&row.role).map_err(StoreError::corrupt("users"))?,
            password_hash: row.password_hash,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
        })
    }
}

pub struct SessionRow {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub user_id: Uuid,
    pub role: String,
    pub refresh_hash: String,
    pub previous_refresh_hash: Option<String>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub refreshed_at: Timestamp,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> StoreResult<Session> {
        Ok(Session {
            id: SessionId::from_uuid(row.id),
            tenant_id: row.tenant_id.map(TenantId::from_uuid),
            user_id: UserId::from_uuid(row.user_id),
            role: Role::parse(&row.role).map_err(StoreError::corrupt("sessions"))?,
            refresh_hash: Sha256Hex::parse(&row.refresh_hash)
                .map_err(StoreError::corrupt("sessions"))?,
            previous_refresh_hash: row
                .previous_refresh_hash
                .as_deref()
                .map(Sha256Hex::parse)
                .transpose()
                .map_err(StoreError::corrupt("sessions"))?,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
            refreshed_at: row.refreshed_at,
        })
    }
}

pub struct RiskRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub impact: i64,
    pub probability: i64,
    pub status: String,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    pub tlp: String,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub source_state: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<RiskRow> for Risk {
    type Error = StoreError;

    /// Values are parsed again on the way out of the store (a row edited behind Vigil's
    /// back is reported as corrupt, not served), keeping the row's own buffers.
    fn try_from(row: RiskRow) -> StoreResult<Risk> {
        let corrupt = || StoreError::corrupt("risks");
        Ok(Risk {
            id: RiskId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            title: RiskTitle::parse_owned(row.title).map_err(corrupt())?,
            description: row
                .description
                .map(BoundedText::description_owned)
                .transpose()
                .map_err(corrupt())?,
            impact: Level::parse("impact", row.impact).map_err(corrupt())?,
            probability: Level::parse("probability", row.probability).map_err(corrupt())?,
            status: RiskStatus::parse(&row.status).map_err(corrupt())?,
            owner: row
                .owner
                .map(BoundedText::owner_owned)
                .transpose()
                .map_err(corrupt())?,
            tags: Tags::parse_owned(row.tags).map_err(corrupt())?,
            tlp: Tlp::parse(&row.tlp).map_err(corrupt())?,
            source: row
                .source
                .map(Source::parse_owned)
                .transpose()
                .map_err(corrupt())?,
            external_id: row
                .external_id
                .map(ExternalId::parse_owned)
                .transpose()
                .map_err(corrupt())?,
            source_state: row
                .source_state
                .as_deref()
                .map(SourceState::parse)
                .transpose()
                .map_err(corrupt())?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub struct AuditRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl TryFrom<AuditRow> for AuditEvent {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> StoreResult<AuditEvent> {
        let corrupt = || StoreError::corrupt("audit_events");
        Ok(AuditEvent {
            seq: row.seq,
            prev_hash: Sha256Hex::parse(&row.prev_hash).map_err(corrupt())?,
            hash: Sha256Hex::parse(&row.hash).map_err(corrupt())?,
            fields: AuditFields {
                id: AuditEventId::from_uuid(row.id),
                tenant_id: TenantId::from_uuid(row.tenant_id),
                at: row.at,
                actor: row.actor,
                action: row.action,
                entity_type: row.entity_type,
                entity_id: row.entity_id,
                before: row.before,
                after: row.after,
                reason: row.reason,
            },
        })
    }
}

/// A `LIKE … ESCAPE '\'` pattern matching any text that contains `needle` literally.
pub fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A risk's tags as the JSON array both backends store.
pub fn tags_json(risk: &Risk) -> String {
    serde_json::Value::from(risk.tags.iter().collect::<Vec<_>>()).to_string()
}
