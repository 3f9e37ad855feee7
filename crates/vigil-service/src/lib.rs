//! vigil-service: Vigil's use cases — who may do what, to which tenant — shared by the HTTP
//! edge and the CLI. Owns credentials (API keys, passwords, access and refresh tokens) and
//! the rule that the tenant comes from the credential. Knows nothing of HTTP or SQL dialects:
//! it talks to storage only through the `vigil-store` traits.

mod apps;
mod audit;
mod bundles;
mod catalogue;
mod connectors;
mod correlate;
mod error;
mod instances;
mod key_cache;
mod keys;
mod plans;
mod principal;
mod risks;
mod runs;
mod seal;
mod secrets;
mod services;
mod sessions;
mod sync_port;
mod synced;
mod throttle;
mod tokens;
mod users;

pub use apps::{SECRET_MASK, VerifiedTask};
pub use audit::AuditVerification;
pub use bundles::{AppDiff, AppImportReport, Diagnostic, DiagnosticKind, ImportMode, Planned};
pub use catalogue::{
    IMPORT_INDICATORS_MAX, IMPORT_REJECTIONS_LISTED_MAX, ImportFormat, ImportRejection,
    ImportReport, dedupe_indicators, indicators_from_stix,
};
pub use connectors::{
    CONNECTORS_PER_TENANT_MAX, CREDENTIAL_LEN_MAX, ConnectorRequest, Credentials,
    SYNC_INTERVAL_DEFAULT_SECONDS,
};
pub use correlate::{
    BatchFormat, EventProblem, IngestReport, IngestedEvent, Reopener, StoreReopener,
    TELEMETRY_BATCH_EVENTS_MAX,
};
pub use error::{ServiceError, ServiceResult};
pub use instances::{InstancePatch, InstanceRequest};
pub use key_cache::{API_KEY_CACHE_MAX, API_KEY_CACHE_TTL};
pub use keys::{API_KEY_NAME_LEN_MAX, CreatedApiKey, KeyOwner, NewApiKeyRequest};
pub use plans::{PLAN_CACHE_MAX, PLAN_CACHE_TTL, USAGE_DAYS_MAX, Usage};
pub use principal::{Credential, Principal};
pub use runs::{PlannedStep, RunPlan, TaskRunner};
pub use seal::{MASTER_KEY_LEN, MasterKey};
pub use secrets::{
    API_KEY_PREFIX, ApiKeySecret, PASSWORD_LEN_MAX, PASSWORD_LEN_MIN, hash_password, random_token,
    verify_password,
};
pub use services::{
    PASSWORD_HASHES_CONCURRENT_MAX, PASSWORD_QUEUE_MAX, PASSWORD_QUEUE_WAIT_MAX, Services,
};
pub use sessions::{
    ACCESS_TOKEN_TTL_SECONDS, SESSION_TTL_MAX_SECONDS, SESSION_TTL_SECONDS, TokenPair,
};
pub use sync_port::{
    BreakerState, ConnectorHealth, CycleReport, Replayed, STALE_AFTER_INTERVALS, SyncEngine,
};
pub use throttle::{
    LOGIN_ACCOUNT_REFILL, LOGIN_ADDRESS_REFILL, LOGIN_FAILURES_PER_ACCOUNT_BURST,
    LOGIN_FAILURES_PER_ADDRESS_BURST, LOGIN_THROTTLE_KEYS_MAX,
};
pub use tokens::{AccessClaims, JWT_KEY_LEN_MIN, JwtKey, TokenError};
pub use vigil_matcher::ObjectError;
