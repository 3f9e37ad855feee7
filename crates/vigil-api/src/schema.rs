//! What the domain's value types accept, as JSON Schema: the building blocks of the
//! OpenAPI document. Both its derived part (`schema_with` on the DTOs' fields) and its
//! hand-written part use these, so a constraint is stated once.

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, schema::Schema};

/// Characters no single-line text field accepts: control characters, and the invisible
/// formatting ones (`vigil_domain::is_hidden_format_char`).
pub(crate) const FORBIDDEN: &str = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff";
/// Control characters other than tab, newline and carriage return, for multi-line text.
pub(crate) const FORBIDDEN_IN_LINES: &str =
    "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f";

/// One line of text as the domain's text types accept it: 1 to `max` characters, at least
/// one of them visible, none forbidden.
pub(crate) fn line(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max,
        "pattern": format!("^[^{FORBIDDEN}]*[^\\s{FORBIDDEN}][^{FORBIDDEN}]*$")})
}

/// Text that may span lines: 1 to `max` characters, at least one visible.
pub(crate) fn lines(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max,
        "pattern": format!("^[^{FORBIDDEN_IN_LINES}]*[^\\s{FORBIDDEN_IN_LINES}][^{FORBIDDEN_IN_LINES}]*$")})
}

/// `external_id` needs a `source`.
pub(crate) fn with_source_rule(mut body: Value) -> Value {
    body["if"] =
        json!({"required": ["external_id"], "properties": {"external_id": {"type": "string"}}});
    body["then"] = json!({"required": ["source"], "properties": {"source": {"type": "string"}}});
    body
}

/// `schema`, or null.
pub(crate) fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// A JSON Schema value as utoipa's type, for `#[schema(schema_with = …)]`.
fn to_schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema object")
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A risk's or finding's title.
pub(crate) fn title() -> RefOr<Schema> {
    to_schema(line(vigil_domain::RiskTitle::LEN_MAX))
}

pub(crate) fn opt_title() -> RefOr<Schema> {
    to_schema(nullable(line(vigil_domain::RiskTitle::LEN_MAX)))
}

pub(crate) fn opt_description() -> RefOr<Schema> {
    to_schema(nullable(lines(vigil_domain::DESCRIPTION_LEN_MAX)))
}

pub(crate) fn opt_owner() -> RefOr<Schema> {
    to_schema(nullable(line(vigil_domain::OWNER_LEN_MAX)))
}

pub(crate) fn opt_external_id() -> RefOr<Schema> {
    to_schema(nullable(line(vigil_domain::ExternalId::LEN_MAX)))
}

pub(crate) fn source() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"})
}

pub(crate) fn opt_source() -> RefOr<Schema> {
    to_schema(nullable(source()))
}

pub(crate) fn opt_tags() -> RefOr<Schema> {
    to_schema(nullable(
        json!({"type": "array", "items": line(vigil_domain::Tag::LEN_MAX),
        "maxItems": vigil_domain::TAGS_MAX}),
    ))
}

pub(crate) fn tlp() -> Value {
    json!({"type": "string", "enum": ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"],
        "description": "TLP 2.0; case and a `TLP:` prefix are ignored on the way in"})
}

pub(crate) fn opt_tlp() -> RefOr<Schema> {
    to_schema(nullable(tlp()))
}

/// Impact or probability, 1 to 5.
pub(crate) fn level() -> RefOr<Schema> {
    to_schema(json!({"type": "integer", "minimum": 1, "maximum": 5}))
}

pub(crate) fn opt_level() -> RefOr<Schema> {
    to_schema(nullable(
        json!({"type": "integer", "minimum": 1, "maximum": 5}),
    ))
}

pub(crate) fn opt_risk_status() -> RefOr<Schema> {
    to_schema(nullable(reference("RiskStatus")))
}

pub(crate) fn risk_status() -> RefOr<Schema> {
    to_schema(reference("RiskStatus"))
}

pub(crate) fn source_query() -> RefOr<Schema> {
    to_schema(source())
}

pub(crate) fn min_score() -> RefOr<Schema> {
    to_schema(json!({"type": "integer", "minimum": 1, "maximum": 25}))
}

/// A tag to filter by; empty means any.
pub(crate) fn tag_query() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "maxLength": vigil_domain::Tag::LEN_MAX,
        "pattern": format!("^[^{FORBIDDEN}]*$")}),
    )
}

/// Free text to filter by; empty means any.
pub(crate) fn text_query() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "maxLength": 200}))
}

pub(crate) fn limit() -> RefOr<Schema> {
    to_schema(json!({"type": "integer", "minimum": 1, "maximum": vigil_domain::PAGE_SIZE_MAX}))
}

/// A `next_cursor` this API gave.
pub(crate) fn cursor() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}))
}

/// `RiskOut`, field by field as its serializer writes them.
pub(crate) fn risk_out() -> RefOr<Schema> {
    let text = json!({"type": "string"});
    let opt_text = json!({"type": ["string", "null"]});
    let at = json!({"type": "string", "format": "date-time"});
    let level = json!({"type": "integer", "minimum": 1, "maximum": 5});
    to_schema(json!({"type": "object", "additionalProperties": false,
    "required": ["id", "title", "impact", "probability", "score", "status", "tags", "tlp", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "title": text, "description": opt_text,
        "impact": level, "probability": level,
        "score": {"type": "integer", "minimum": 1, "maximum": 25}, "status": reference("RiskStatus"),
        "owner": opt_text, "tags": {"type": "array", "items": text}, "tlp": tlp(),
        "source": opt_text, "external_id": opt_text,
        "source_state": {"type": ["string", "null"], "enum": ["present", "deleted", "below_threshold", null],
            "description": "synced risks: whether the upstream record still exists, and whether it is above its connector's threshold"},
        "created_at": at, "updated_at": at,
    }}))
}

pub(crate) fn uuid() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "format": "uuid"}))
}

pub(crate) fn break_kind() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["edited", "missing", "reordered", "truncated"]}))
}

pub(crate) fn slug() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"}))
}

pub(crate) fn opt_tenant_name() -> RefOr<Schema> {
    to_schema(nullable(line(vigil_domain::TenantName::LEN_MAX)))
}

pub(crate) fn key_name() -> RefOr<Schema> {
    to_schema(line(vigil_service::API_KEY_NAME_LEN_MAX))
}

pub(crate) fn role() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "enum": ["platform-admin", "tenant-admin", "analyst", "viewer", "ingest"]}),
    )
}

pub(crate) fn opt_future_time() -> RefOr<Schema> {
    to_schema(
        json!({"type": ["string", "null"], "format": "date-time", "description": "in the future"}),
    )
}

pub(crate) fn email() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "maxLength": vigil_domain::Email::LEN_MAX,
        "pattern": format!("^[^\\s@{FORBIDDEN}]+@[^\\s@{FORBIDDEN}]+\\.[^\\s@{FORBIDDEN}]+$")}),
    )
}

pub(crate) fn password() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "minLength": vigil_service::PASSWORD_LEN_MIN,
        "maxLength": vigil_service::PASSWORD_LEN_MAX}),
    )
}

pub(crate) fn bearer() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["Bearer"]}))
}

pub(crate) fn severity() -> RefOr<Schema> {
    to_schema(reference("Severity"))
}

pub(crate) fn opt_severity() -> RefOr<Schema> {
    to_schema(nullable(reference("Severity")))
}

pub(crate) fn finding_status() -> RefOr<Schema> {
    to_schema(reference("FindingStatus"))
}

pub(crate) fn finding_statuses() -> RefOr<Schema> {
    to_schema(json!({"type": "array", "items": reference("FindingStatus")}))
}

pub(crate) fn opt_asset() -> RefOr<Schema> {
    to_schema(nullable(line(vigil_domain::ASSET_LEN_MAX)))
}

pub(crate) fn tlp_out() -> RefOr<Schema> {
    to_schema(tlp())
}

pub(crate) fn indicator_type() -> RefOr<Schema> {
    to_schema(reference("IndicatorType"))
}

pub(crate) fn time() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "format": "date-time"}))
}

pub(crate) fn opt_time() -> RefOr<Schema> {
    to_schema(json!({"type": ["string", "null"], "format": "date-time"}))
}

pub(crate) fn opt_confidence() -> RefOr<Schema> {
    to_schema(json!({"type": ["integer", "null"], "minimum": 0, "maximum": 100}))
}

pub(crate) fn opt_uuid() -> RefOr<Schema> {
    to_schema(nullable(json!({"type": "string", "format": "uuid"})))
}

pub(crate) fn boolean() -> RefOr<Schema> {
    to_schema(json!({"type": "boolean"}))
}

/// `POST /api/v1/indicators/import` as CSV: a header naming `type` and `value`.
pub(crate) struct CsvBody;

impl utoipa::PartialSchema for CsvBody {
    fn schema() -> RefOr<Schema> {
        to_schema(
            json!({"type": "string", "description": "Header row with type,value and optionally match_subdomains, valid_from, valid_until, confidence, tlp, active, source, source_ref, finding_id"}),
        )
    }
}

impl utoipa::ToSchema for CsvBody {}

/// `POST /api/v1/indicators/import` as a STIX 2.1 bundle.
pub(crate) struct StixBundle;

impl utoipa::PartialSchema for StixBundle {
    fn schema() -> RefOr<Schema> {
        to_schema(json!({"type": "object", "description": "A STIX 2.1 bundle",
            "required": ["type", "objects"], "properties": {"type": {"type": "string", "enum": ["bundle"]},
                "objects": {"type": "array", "maxItems": vigil_service::IMPORT_INDICATORS_MAX, "items": {}}}}))
    }
}

impl utoipa::ToSchema for StixBundle {}

/// A telemetry batch as a JSON array of events.
pub(crate) struct EventBatch;

impl utoipa::PartialSchema for EventBatch {
    fn schema() -> RefOr<Schema> {
        to_schema(
            json!({"type": "array", "items": reference("Event"), "minItems": 1,
            "maxItems": vigil_service::TELEMETRY_BATCH_EVENTS_MAX}),
        )
    }
}

impl utoipa::ToSchema for EventBatch {}

/// A telemetry batch as NDJSON: one event object per line.
pub(crate) struct NdjsonBatch;

impl utoipa::PartialSchema for NdjsonBatch {
    fn schema() -> RefOr<Schema> {
        to_schema(
            json!({"type": "string", "pattern": "\\S", "description": "One Event object per line"}),
        )
    }
}

impl utoipa::ToSchema for NdjsonBatch {}

/// `ConnectorIn` for one kind: its credential names and its required options.
fn connector_in_kind(kind: &str, credentials: &[&str], options: &[&str]) -> Value {
    let secret =
        json!({"type": "string", "minLength": 1, "maxLength": vigil_service::CREDENTIAL_LEN_MAX});
    let url = json!({"type": "string", "maxLength": vigil_domain::CONNECTOR_URL_LEN_MAX,
        "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$"});
    let mut credential_props = serde_json::Map::new();
    for name in credentials {
        let value = if *name == "token_url" {
            url.clone()
        } else {
            secret.clone()
        };
        credential_props.insert((*name).to_owned(), value);
    }
    let no_controls = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$";
    let option = json!({"type": "string", "minLength": 1, "maxLength": vigil_domain::CONNECTOR_OPTION_LEN_MAX, "pattern": no_controls});
    let any_option = json!({"type": "string", "maxLength": vigil_domain::CONNECTOR_OPTION_LEN_MAX,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"});
    let mut option_props = serde_json::Map::new();
    for name in options {
        option_props.insert((*name).to_owned(), option.clone());
    }
    let mut body = object(
        &["kind", "url"],
        json!({
            "kind": {"type": "string", "enum": [kind]}, "url": url, "enabled": {"type": ["boolean", "null"]},
            "interval_s": {"type": ["integer", "null"], "minimum": 10, "maximum": 86400},
            "threshold": {"type": ["string", "null"], "enum": ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", null]},
            "credentials": {"type": ["object", "null"], "required": credentials, "properties": credential_props, "additionalProperties": false},
            "options": {"type": "object", "required": options, "properties": option_props,
                "additionalProperties": any_option, "maxProperties": vigil_domain::CONNECTOR_OPTIONS_MAX,
                "propertyNames": option},
        }),
    );
    if options.is_empty() {
        body["properties"]["options"]["type"] = json!(["object", "null"]);
    } else {
        body["required"] = json!(["kind", "url", "options"]);
    }
    body
}

/// An object of exactly these properties, `required` among them.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

/// `PUT /api/v1/connectors/{name}`: one shape per kind.
pub(crate) fn connector_in() -> RefOr<Schema> {
    to_schema(
        json!({"description": "What each kind needs; credentials may be left out to keep the stored ones (a 409 when there are none)",
        "oneOf": [
            connector_in_kind("thehive", &["api_key"], &["organisation"]),
            connector_in_kind("opencti", &["token"], &[]),
            connector_in_kind("openrmf", &["token_url", "client_id", "username", "password"], &[]),
            connector_in_kind("taxii", &["username", "password"], &["api_root", "collection"]),
        ]}),
    )
}

pub(crate) fn connector_kind() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["thehive", "opencti", "openrmf", "taxii"]}))
}

pub(crate) fn connector_name() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}))
}

pub(crate) fn replayed() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["created", "updated", "unchanged", "skipped"]}))
}

pub(crate) fn breaker() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["closed", "open", "half_open"]}))
}

/// An app or task name: 1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter or digit.
pub(crate) fn automation_name() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}))
}

/// An RFC 3339 instant, or null.
pub(crate) fn opt_timestamp() -> RefOr<Schema> {
    to_schema(json!({"type": ["string", "null"], "format": "date-time"}))
}

/// A plan's limit: 0 to a trillion, or null (no limit).
pub(crate) fn plan_limit() -> RefOr<Schema> {
    to_schema(
        json!({"type": ["integer", "null"], "minimum": 0, "maximum": vigil_domain::PLAN_LIMIT_MAX}),
    )
}

/// Days of usage: 1 to 366.
pub(crate) fn usage_days() -> RefOr<Schema> {
    to_schema(json!({"type": "integer", "minimum": 1, "maximum": vigil_service::USAGE_DAYS_MAX}))
}

/// The apps of an export: names, at most 100.
pub(crate) fn app_names() -> RefOr<Schema> {
    to_schema(
        json!({"type": "array", "maxItems": vigil_automation::BUNDLE_APPS_MAX,
        "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}),
    )
}

/// How an import treats an app the tenant already has.
pub(crate) fn import_mode() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["fail", "skip", "overwrite", "rename"]}))
}

/// `true` or `false`, as a query parameter.
pub(crate) fn boolean_text() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["true", "false"]}))
}

/// A run's (or a step's) status.
pub(crate) fn run_status() -> RefOr<Schema> {
    let names: Vec<&str> = vigil_automation::RunStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    to_schema(json!({"type": "string", "enum": names}))
}

/// `app/task`.
pub(crate) fn task_ref() -> RefOr<Schema> {
    to_schema(json!({"type": "string",
        "pattern": "^[a-z0-9][a-z0-9_-]{0,63}/[a-z0-9][a-z0-9_-]{0,63}$"}))
}

/// An automation name, or null.
pub(crate) fn automation_name_nullable() -> RefOr<Schema> {
    to_schema(json!({"type": ["string", "null"], "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}))
}

/// A semantic version (semver.org 2.0.0).
pub(crate) fn semver() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "maxLength": 128,
        "pattern": "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$"}))
}

/// A JSON Schema (2020-12 unless `$schema` says otherwise): an object or a boolean; null
/// (or absent) is the default, `{"type": "object"}`.
pub(crate) fn json_schema() -> RefOr<Schema> {
    to_schema(json!({"type": ["object", "boolean", "null"],
        "description": "JSON Schema 2020-12; checked against the meta-schema; a `$ref` outside it is never fetched"}))
}

pub(crate) fn http_method() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]}))
}

pub(crate) fn output_kind() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["scalar", "array"]}))
}

pub(crate) fn output_type() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "enum": ["string", "number", "integer", "boolean", "object", "array", "any"]}),
    )
}

/// A request path template: starts with `/`.
pub(crate) fn request_path() -> RefOr<Schema> {
    to_schema(
        json!({"type": "string", "pattern": "^/", "maxLength": vigil_automation::TEMPLATE_LEN_MAX}),
    )
}

/// A deadline per attempt in milliseconds; null (or absent) is the default.
pub(crate) fn timeout_ms() -> RefOr<Schema> {
    to_schema(
        json!({"type": ["integer", "null"], "minimum": 1, "maximum": vigil_automation::TIMEOUT_MS_MAX}),
    )
}

pub(crate) fn apps_fields() -> RefOr<Schema> {
    to_schema(json!({"type": "string", "enum": ["name"]}))
}
