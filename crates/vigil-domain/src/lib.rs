//! vigil-domain: Vigil's vocabulary — tenants, roles, TLP markings, risks, indicators of
//! compromise, the audit hash chain —
//! as plain types whose `parse` constructors reject invalid values, so an invalid value cannot
//! exist past the edge. No I/O, no async, no serialization formats: those belong to the layers
//! above.

mod audit;
mod catalogue;
mod connector;
mod error;
mod finding;
mod ids;
mod indicator;
mod page;
mod plan;
mod risk;
mod role;
mod telemetry;
mod tenant;
mod text;
pub use text::is_hidden_format_char;
mod timestamp;
mod tlp;

pub use audit::{
    AuditEvent, AuditFields, ChainBreak, ChainBreakKind, ChainHead, ChainReport, ChainVerifier,
    GENESIS_HASH, Sha256Hex,
};
pub use catalogue::{
    Confidence, Indicator, IndicatorFilter, IndicatorPatch, NewIndicator, NewSuppression,
    Suppression, within_validity,
};
pub use connector::{
    CONNECTOR_OPTION_LEN_MAX, CONNECTOR_OPTIONS_MAX, CONNECTOR_URL_LEN_MAX, Connector,
    ConnectorKind, ConnectorName, ConnectorOptions, DEAD_LETTER_ERROR_LEN_MAX, DeadLetter,
    SYNC_INTERVAL_MAX_SECONDS, SYNC_INTERVAL_MIN_SECONDS, SourceUrl, SyncInterval,
};
pub use error::ParseError;
pub use finding::{
    ASSET_LEN_MAX, Asset, Finding, FindingFilter, FindingPatch, FindingStatus, IllegalTransition,
    NewFinding, Severity,
};
pub use ids::{
    ApiKeyId, AuditEventId, DeadLetterId, EventId, FindingId, IndicatorId, MatchId, RiskId,
    SessionId, SuppressionId, TenantId, UserId,
};
pub use indicator::{
    CIDR_V4_PREFIX_LEN_MIN, CIDR_V6_PREFIX_LEN_MIN, DOMAIN_LABEL_LEN_MAX, DOMAIN_LEN_MAX,
    EMAIL_LEN_MAX, EMAIL_LOCAL_LEN_MAX, FILE_NAME_LEN_MAX, INDICATOR_RAW_LEN_MAX, IndicatorKind,
    IndicatorValue, REGISTRY_KEY_LEN_MAX, URL_LEN_MAX,
};
pub use page::{Cursor, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PageRequest};
pub use plan::{Counted, Day, Meter, PLAN_LIMIT_MAX, Plan, SECONDS_PER_DAY, UsageDay};
pub use risk::{
    BoundedText, DESCRIPTION_LEN_MAX, ExternalId, Level, NewRisk, OWNER_LEN_MAX, Risk, RiskFilter,
    RiskPatch, RiskStatus, RiskTitle, Source, SourceState, SyncedRisk, TAGS_MAX, Tag, Tags,
};
pub use role::{Permission, Role};
pub use telemetry::{
    CLIENT_EVENT_ID_LEN_MAX, ClientEventId, EVENT_TYPE_LEN_MAX, EventType, IocMatch,
    MATCH_FIELD_LEN_MAX, MatchField, MatchFilter, NewEvent, NewMatch, ReopenCause, TelemetryEvent,
};
pub use tenant::{Email, Slug, Tenant, TenantName};
pub use timestamp::Timestamp;
pub use tlp::Tlp;
