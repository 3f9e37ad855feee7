//! vigil-domain: Vigil's vocabulary — tenants, roles, TLP markings, risks, the audit hash chain —
//! as plain types whose `parse` constructors reject invalid values, so an invalid value cannot
//! exist past the edge. No I/O, no async, no serialization formats: those belong to the layers
//! above.

mod audit;
mod error;
mod ids;
mod page;
mod risk;
mod role;
mod tenant;
mod text;
mod timestamp;
mod tlp;

pub use audit::{
    AuditEvent, AuditFields, ChainBreak, ChainBreakKind, ChainHead, ChainReport, ChainVerifier,
    GENESIS_HASH, Sha256Hex,
};
pub use error::ParseError;
pub use ids::{ApiKeyId, AuditEventId, RiskId, SessionId, TenantId, UserId};
pub use page::{Cursor, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PageRequest};
pub use risk::{
    BoundedText, DESCRIPTION_LEN_MAX, ExternalId, Level, NewRisk, OWNER_LEN_MAX, Risk, RiskFilter,
    RiskPatch, RiskStatus, RiskTitle, Source, TAGS_MAX, Tag, Tags,
};
pub use role::{Permission, Role};
pub use tenant::{Email, Slug, Tenant, TenantName};
pub use timestamp::Timestamp;
pub use tlp::Tlp;
