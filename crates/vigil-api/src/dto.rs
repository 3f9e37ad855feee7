//! The wire format. Domain types stay serialization-free; these are their JSON faces, and
//! converting between the two happens here and only here.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use vigil_domain::{AuditEvent, Cursor, Risk, Tenant};
use vigil_service::AuditVerification;
use vigil_store::{ApiKey, Page, Session, User};

/// An integer as JSON Schema counts one: `5`, or `5.0` (a number without a fraction).
pub(crate) fn integral<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation)] // integral and within range: exact
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom("expected an integer")),
    }
}

/// `integral` for an optional field (absent or null: `None`).
pub(crate) fn opt_integral<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Integral(#[serde(deserialize_with = "integral")] i64);
    Ok(Option::<Integral>::deserialize(deserializer)?.map(|Integral(n)| n))
}

/// `double_option` for an integer (see `integral`).
pub(crate) fn double_integral<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<i64>>, D::Error> {
    opt_integral(deserializer).map(Some)
}

/// Tells "absent" (`None`) from "null" (`Some(None)`) in PATCH bodies.
pub(crate) fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// One page of a list, newest first; `next_cursor` continues it (null on the last page).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PageOut<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next_cursor: Option<String>,
}

impl<T> PageOut<T> {
    pub fn from_page<U>(page: Page<U>, convert: impl Fn(U) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(convert).collect(),
            next_cursor: page.next_cursor.as_ref().map(Cursor::encode),
        }
    }
}

/// A new tenant: its slug (2–63 of a-z, 0-9 and `-`) and a display name (the slug when
/// left out).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    #[schema(schema_with = crate::schema::slug)]
    pub(crate) slug: String,
    #[schema(schema_with = crate::schema::opt_tenant_name)]
    pub(crate) name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
pub struct TenantOut {
    id: String,
    slug: String,
    name: String,
    created_at: String,
}

impl From<Tenant> for TenantOut {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id.to_string(),
            slug: tenant.slug.as_str().to_owned(),
            name: tenant.name.as_str().to_owned(),
            created_at: tenant.created_at.to_string(),
        }
    }
}

/// A new API key: a name, a role, and an optional expiry in the future.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    #[schema(schema_with = crate::schema::key_name)]
    pub(crate) name: String,
    #[schema(schema_with = crate::schema::role)]
    pub(crate) role: String,
    #[schema(schema_with = crate::schema::opt_future_time)]
    pub(crate) expires_at: Option<String>,
}

/// An API key as listed: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyOut {
    id: String,
    tenant_id: Option<String>,
    name: String,
    #[schema(schema_with = crate::schema::role)]
    role: &'static str,
    prefix: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    created_at: String,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            tenant_id: key.tenant_id.map(|t| t.to_string()),
            name: key.name,
            role: key.role.as_str(),
            prefix: key.prefix,
            expires_at: key.expires_at.map(|at| at.to_string()),
            revoked_at: key.revoked_at.map(|at| at.to_string()),
            created_at: key.created_at.to_string(),
        }
    }
}

/// The one response that carries a key in clear: shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedApiKey)]
pub struct CreatedKeyOut {
    #[serde(flatten)]
    pub(crate) record: ApiKeyOut,
    /// The key (`vgl_…`); shown only here.
    pub(crate) key: String,
}

impl From<vigil_service::CreatedApiKey> for CreatedKeyOut {
    fn from(created: vigil_service::CreatedApiKey) -> Self {
        let key = created.secret.expose().to_owned();
        Self {
            record: created.key.into(),
            key,
        }
    }
}

/// A new user of the caller's tenant (or of the platform, for platform admins).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    #[schema(schema_with = crate::schema::email)]
    pub(crate) email: String,
    #[schema(schema_with = crate::schema::password)]
    pub(crate) password: String,
    #[schema(schema_with = crate::schema::role)]
    pub(crate) role: String,
}

/// A user, never with its password or hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserOut {
    id: String,
    tenant_id: Option<String>,
    email: String,
    #[schema(schema_with = crate::schema::role)]
    role: &'static str,
    disabled_at: Option<String>,
    created_at: String,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            tenant_id: user.tenant_id.map(|t| t.to_string()),
            email: user.email.as_str().to_owned(),
            role: user.role.as_str(),
            disabled_at: user.disabled_at.map(|at| at.to_string()),
            created_at: user.created_at.to_string(),
        }
    }
}

/// `PATCH /api/v1/users/{id}`: disable (every session ends) or enable.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UserPatch)]
#[serde(deny_unknown_fields)]
pub struct UserPatchIn {
    pub(crate) disabled: bool,
}

/// `POST /api/v1/users/{id}/password`. No `Debug`: it holds a password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    #[schema(schema_with = crate::schema::password)]
    pub(crate) password: String,
}

/// A login: the tenant's slug (none for platform users), the e-mail and the password. Any
/// of them wrong answers the same 401.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    /// The tenant's slug; omit for platform users.
    pub(crate) tenant: Option<String>,
    pub(crate) email: String,
    pub(crate) password: String,
}

/// A refresh token, which works once.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    pub(crate) refresh_token: String,
}

/// A 15-minute access token and a refresh token for the session.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tokens)]
pub struct TokenOut {
    pub(crate) access_token: String,
    #[schema(schema_with = crate::schema::bearer)]
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) refresh_token: String,
    pub(crate) session: SessionOut,
}

/// A login session.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionOut {
    id: String,
    user_id: String,
    #[schema(schema_with = crate::schema::role)]
    role: &'static str,
    expires_at: String,
    revoked_at: Option<String>,
    created_at: String,
    refreshed_at: String,
}

impl From<Session> for SessionOut {
    fn from(session: Session) -> Self {
        Self {
            id: session.id.to_string(),
            user_id: session.user_id.to_string(),
            role: session.role.as_str(),
            expires_at: session.expires_at.to_string(),
            revoked_at: session.revoked_at.map(|at| at.to_string()),
            created_at: session.created_at.to_string(),
            refreshed_at: session.refreshed_at.to_string(),
        }
    }
}

/// When the session ends: in the future, and at most 30 days after its login.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SessionPatch)]
#[serde(deny_unknown_fields)]
pub struct SessionPatchIn {
    #[schema(format = DateTime)]
    pub(crate) expires_at: String,
}

/// A new risk; `external_id` needs a `source` (and sources named after a connector kind
/// are the sync engine's).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskIn {
    #[schema(schema_with = crate::schema::title)]
    pub(crate) title: String,
    #[schema(schema_with = crate::schema::opt_description)]
    pub(crate) description: Option<String>,
    #[serde(deserialize_with = "integral")]
    #[schema(schema_with = crate::schema::level)]
    pub(crate) impact: i64,
    #[serde(deserialize_with = "integral")]
    #[schema(schema_with = crate::schema::level)]
    pub(crate) probability: i64,
    #[schema(schema_with = crate::schema::opt_risk_status)]
    pub(crate) status: Option<String>,
    #[schema(schema_with = crate::schema::opt_owner)]
    pub(crate) owner: Option<String>,
    #[schema(schema_with = crate::schema::opt_tags)]
    pub(crate) tags: Option<Vec<String>>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
    #[schema(schema_with = crate::schema::opt_source)]
    pub(crate) source: Option<String>,
    #[schema(schema_with = crate::schema::opt_external_id)]
    pub(crate) external_id: Option<String>,
}

/// What to change in a risk; `null` clears `description` or `owner`, an absent field is
/// left alone, and a patch that changes nothing answers the risk as it is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskPatchIn {
    #[schema(schema_with = crate::schema::opt_title)]
    pub(crate) title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_description)]
    pub(crate) description: Option<Option<String>>,
    #[serde(default, deserialize_with = "opt_integral")]
    #[schema(schema_with = crate::schema::opt_level)]
    pub(crate) impact: Option<i64>,
    #[serde(default, deserialize_with = "opt_integral")]
    #[schema(schema_with = crate::schema::opt_level)]
    pub(crate) probability: Option<i64>,
    #[schema(schema_with = crate::schema::opt_risk_status)]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_owner)]
    pub(crate) owner: Option<Option<String>>,
    #[schema(schema_with = crate::schema::opt_tags)]
    pub(crate) tags: Option<Vec<String>>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
}

/// A risk's tags as a JSON array, written without collecting them first.
struct TagList<'a>(&'a vigil_domain::Tags);

impl Serialize for TagList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// The schema of `RiskOut`, whose serializer is written by hand (see below).
impl utoipa::PartialSchema for RiskOut<'_> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::risk_out()
    }
}

impl utoipa::ToSchema for RiskOut<'_> {
    fn name() -> std::borrow::Cow<'static, str> {
        "Risk".into()
    }
}

/// A risk as the API shows it. Borrows the domain value and writes ids and instants
/// straight into the output: a page of 50 risks otherwise cloned every string once more
/// just to serialize it.
pub struct RiskOut<'a>(pub &'a Risk);

impl Serialize for RiskOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Display<T>(T);
        impl<T: std::fmt::Display> Serialize for Display<T> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }
        let risk = self.0;
        let mut out = serializer.serialize_struct("Risk", 15)?;
        out.serialize_field("id", &Display(risk.id))?;
        out.serialize_field("title", risk.title.as_str())?;
        out.serialize_field(
            "description",
            &risk.description.as_ref().map(|d| d.as_str()),
        )?;
        out.serialize_field("impact", &risk.impact.get())?;
        out.serialize_field("probability", &risk.probability.get())?;
        out.serialize_field("score", &risk.score())?;
        out.serialize_field("status", risk.status.as_str())?;
        out.serialize_field("owner", &risk.owner.as_ref().map(|o| o.as_str()))?;
        out.serialize_field("tags", &TagList(&risk.tags))?;
        out.serialize_field("tlp", risk.tlp.as_str())?;
        out.serialize_field("source", &risk.source.as_ref().map(|s| s.as_str()))?;
        out.serialize_field(
            "external_id",
            &risk.external_id.as_ref().map(|e| e.as_str()),
        )?;
        out.serialize_field("source_state", &risk.source_state.map(|s| s.as_str()))?;
        out.serialize_field("created_at", &Display(risk.created_at))?;
        out.serialize_field("updated_at", &Display(risk.updated_at))?;
        out.end()
    }
}

/// The risk list's filters; an empty value is the same as none.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RiskQuery {
    /// The risk's status.
    #[param(schema_with = crate::schema::risk_status)]
    pub(crate) status: Option<String>,
    /// The source system.
    #[param(schema_with = crate::schema::source_query)]
    pub(crate) source: Option<String>,
    /// The lowest score (impact × probability).
    #[param(schema_with = crate::schema::min_score)]
    pub(crate) min_score: Option<String>,
    /// Has this tag.
    #[param(schema_with = crate::schema::tag_query)]
    pub(crate) tag: Option<String>,
    /// Case-insensitive text in the title or description.
    #[param(schema_with = crate::schema::text_query)]
    pub(crate) q: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// A page of a list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// The audit list's filters; an empty value is the same as none.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// e.g. `risk`, `finding`, `api_key` (readers see data events only).
    #[param(schema_with = crate::schema::text_query)]
    pub(crate) entity_type: Option<String>,
    /// The entity's id.
    #[param(schema_with = crate::schema::text_query)]
    pub(crate) entity_id: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// One event of an audit chain: who did what to which entity, before and after, linked to
/// the event before it by its hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditOut {
    id: String,
    seq: i64,
    at: String,
    actor: String,
    action: String,
    entity_type: String,
    entity_id: String,
    before: Option<Value>,
    after: Option<Value>,
    reason: Option<String>,
    prev_hash: String,
    hash: String,
}

impl From<AuditEvent> for AuditOut {
    fn from(event: AuditEvent) -> Self {
        // Snapshots were written as JSON by the store; text that no longer parses (an edited
        // row) is shown as a string rather than hidden.
        let json = |text: Option<String>| {
            text.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
        };
        let fields = event.fields;
        Self {
            id: fields.id.to_string(),
            seq: event.seq,
            at: fields.at.to_string(),
            actor: fields.actor,
            action: fields.action,
            entity_type: fields.entity_type,
            entity_id: fields.entity_id,
            before: json(fields.before),
            after: json(fields.after),
            reason: fields.reason,
            prev_hash: event.prev_hash.to_string(),
            hash: event.hash.to_string(),
        }
    }
}

/// What verifying a chain found: `ok` when it is whole.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Verification)]
pub struct VerifyOut {
    ok: bool,
    chain: String,
    n_events: u64,
    breaks: Vec<BreakOut>,
}

/// One place where the chain does not hold.
#[derive(Serialize, utoipa::ToSchema)]
struct BreakOut {
    #[schema(schema_with = crate::schema::break_kind)]
    kind: &'static str,
    seq: i64,
    event_id: Option<String>,
    detail: String,
}

impl From<AuditVerification> for VerifyOut {
    fn from(verification: AuditVerification) -> Self {
        let report = verification.report;
        Self {
            ok: report.ok(),
            chain: verification.chain.to_string(),
            n_events: report.n_events,
            breaks: report
                .breaks
                .into_iter()
                .map(|b| BreakOut {
                    kind: b.kind.as_str(),
                    seq: b.seq,
                    event_id: b.event_id.map(|id| id.to_string()),
                    detail: b.detail,
                })
                .collect(),
        }
    }
}
