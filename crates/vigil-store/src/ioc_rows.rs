//! Rows of the IOC tables as both backends read them, and their conversion into domain
//! types (see `rows.rs` for the pattern).

use uuid::Uuid;
use vigil_domain::{
    Asset, BoundedText, ClientEventId, Confidence, Connector, ConnectorKind, ConnectorName,
    ConnectorOptions, EventId, EventType, ExternalId, Finding, FindingId, FindingStatus, Indicator,
    IndicatorId, IndicatorKind, IndicatorValue, IocMatch, MatchField, MatchId, RiskTitle, Severity,
    Source, SourceUrl, Suppression, SuppressionId, SyncInterval, TelemetryEvent, TenantId,
    Timestamp, Tlp,
};

use crate::{StoreError, StoreResult};

pub struct FindingRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub severity: String,
    pub status: String,
    pub asset: Option<String>,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub tlp: String,
    pub reopen_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<FindingRow> for Finding {
    type Error = StoreError;

    fn try_from(row: FindingRow) -> StoreResult<Finding> {
        let corrupt = || StoreError::corrupt("findings");
        Ok(Finding {
            id: FindingId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            title: RiskTitle::parse_owned(row.title).map_err(corrupt())?,
            description: row
                .description
                .map(BoundedText::description_owned)
                .transpose()
                .map_err(corrupt())?,
            severity: Severity::parse(&row.severity).map_err(corrupt())?,
            status: FindingStatus::parse(&row.status).map_err(corrupt())?,
            asset: row
                .asset
                .map(Asset::parse_owned)
                .transpose()
                .map_err(corrupt())?,
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
            tlp: Tlp::parse(&row.tlp).map_err(corrupt())?,
            reopen_count: u32::try_from(row.reopen_count).unwrap_or(u32::MAX),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub struct IndicatorRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub value: String,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub confidence: Option<i64>,
    pub tlp: String,
    pub active: bool,
    pub source: Option<String>,
    pub source_ref: Option<String>,
    pub finding_id: Option<Uuid>,
    pub match_subdomains: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A stored value parses back into itself: normalization is idempotent.
fn stored_value(table: &'static str, kind: &str, value: &str) -> StoreResult<IndicatorValue> {
    let kind = IndicatorKind::parse(kind).map_err(StoreError::corrupt(table))?;
    IndicatorValue::parse(kind, value).map_err(StoreError::corrupt(table))
}

impl TryFrom<IndicatorRow> for Indicator {
    type Error = StoreError;

    fn try_from(row: IndicatorRow) -> StoreResult<Indicator> {
        let corrupt = || StoreError::corrupt("indicators");
        Ok(Indicator {
            id: IndicatorId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            value: stored_value("indicators", &row.kind, &row.value)?,
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            confidence: row
                .confidence
                .map(Confidence::parse)
                .transpose()
                .map_err(corrupt())?,
            tlp: Tlp::parse(&row.tlp).map_err(corrupt())?,
            active: row.active,
            source: row
                .source
                .map(Source::parse_owned)
                .transpose()
                .map_err(corrupt())?,
            source_ref: row
                .source_ref
                .map(ExternalId::parse_owned)
                .transpose()
                .map_err(corrupt())?,
            finding_id: row.finding_id.map(FindingId::from_uuid),
            match_subdomains: row.match_subdomains,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub struct SuppressionRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub value: String,
    pub match_subdomains: bool,
    pub reason: Option<String>,
    pub created_at: Timestamp,
}

impl TryFrom<SuppressionRow> for Suppression {
    type Error = StoreError;

    fn try_from(row: SuppressionRow) -> StoreResult<Suppression> {
        Ok(Suppression {
            id: SuppressionId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            value: stored_value("suppressions", &row.kind, &row.value)?,
            match_subdomains: row.match_subdomains,
            reason: row
                .reason
                .map(BoundedText::description_owned)
                .transpose()
                .map_err(StoreError::corrupt("suppressions"))?,
            created_at: row.created_at,
        })
    }
}

pub struct EventRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: Option<String>,
    pub event_type: String,
    pub occurred_at: Option<Timestamp>,
    pub body: String,
    pub received_at: Timestamp,
}

impl TryFrom<EventRow> for TelemetryEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> StoreResult<TelemetryEvent> {
        let corrupt = || StoreError::corrupt("telemetry_events");
        Ok(TelemetryEvent {
            id: EventId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            client_id: row
                .client_id
                .map(ClientEventId::parse_owned)
                .transpose()
                .map_err(corrupt())?,
            event_type: EventType::parse_owned(row.event_type).map_err(corrupt())?,
            occurred_at: row.occurred_at,
            body: row.body,
            received_at: row.received_at,
        })
    }
}

pub struct MatchRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub indicator_id: Uuid,
    pub indicator_kind: String,
    pub event_id: Uuid,
    pub field: String,
    pub value: String,
    pub finding_id: Option<Uuid>,
    pub reopened: bool,
    pub matched_at: Timestamp,
}

impl TryFrom<MatchRow> for IocMatch {
    type Error = StoreError;

    fn try_from(row: MatchRow) -> StoreResult<IocMatch> {
        let corrupt = || StoreError::corrupt("ioc_matches");
        Ok(IocMatch {
            id: MatchId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            indicator_id: IndicatorId::from_uuid(row.indicator_id),
            indicator_kind: IndicatorKind::parse(&row.indicator_kind).map_err(corrupt())?,
            event_id: EventId::from_uuid(row.event_id),
            field: MatchField::parse_owned(row.field).map_err(corrupt())?,
            value: row.value,
            finding_id: row.finding_id.map(FindingId::from_uuid),
            reopened: row.reopened,
            matched_at: row.matched_at,
        })
    }
}

pub struct ConnectorRow {
    pub tenant_id: Uuid,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub enabled: bool,
    pub interval_s: i64,
    pub threshold: String,
    /// A JSON object of strings.
    pub options: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<ConnectorRow> for Connector {
    type Error = StoreError;

    fn try_from(row: ConnectorRow) -> StoreResult<Connector> {
        let corrupt = || StoreError::corrupt("connectors");
        let options: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&row.options).map_err(|_| {
                StoreError::Backend("column options is not a JSON object of strings".into())
            })?;
        Ok(Connector {
            tenant_id: TenantId::from_uuid(row.tenant_id),
            name: ConnectorName::parse(&row.name).map_err(corrupt())?,
            kind: ConnectorKind::parse(&row.kind).map_err(corrupt())?,
            url: SourceUrl::parse(&row.url).map_err(corrupt())?,
            enabled: row.enabled,
            interval: SyncInterval::parse(row.interval_s).map_err(corrupt())?,
            threshold: Severity::parse(&row.threshold).map_err(corrupt())?,
            options: ConnectorOptions::parse(options).map_err(corrupt())?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A connector's options as the JSON object the stores keep.
pub fn options_json(options: &ConnectorOptions) -> String {
    let map: serde_json::Map<String, serde_json::Value> = options
        .iter()
        .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub struct DeadLetterRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub connector: String,
    pub external_id: String,
    pub error: String,
    pub attempts: i64,
    pub payload: String,
    pub payload_digest: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<DeadLetterRow> for vigil_domain::DeadLetter {
    type Error = StoreError;

    fn try_from(row: DeadLetterRow) -> StoreResult<vigil_domain::DeadLetter> {
        let corrupt = || StoreError::corrupt("sync_dead_letters");
        Ok(vigil_domain::DeadLetter {
            id: vigil_domain::DeadLetterId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            connector: ConnectorName::parse(&row.connector).map_err(corrupt())?,
            external_id: row.external_id,
            error: row.error,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            payload: row.payload,
            payload_digest: vigil_domain::Sha256Hex::parse(&row.payload_digest)
                .map_err(corrupt())?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
