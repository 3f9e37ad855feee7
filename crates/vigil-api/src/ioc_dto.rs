//! The wire format of findings, indicators, suppressions, telemetry answers and matches.

use serde::{Deserialize, Serialize};
use vigil_domain::{Finding, Indicator, IocMatch, Suppression};
use vigil_service::{ImportReport, IngestReport};

use crate::dto::double_option;

/// A new finding (status open); `external_id` needs a `source`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingIn {
    #[schema(schema_with = crate::schema::title)]
    pub(crate) title: String,
    #[schema(schema_with = crate::schema::opt_description)]
    pub(crate) description: Option<String>,
    #[schema(schema_with = crate::schema::opt_severity)]
    pub(crate) severity: Option<String>,
    #[schema(schema_with = crate::schema::opt_asset)]
    pub(crate) asset: Option<String>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
    #[schema(schema_with = crate::schema::opt_source)]
    pub(crate) source: Option<String>,
    #[schema(schema_with = crate::schema::opt_external_id)]
    pub(crate) external_id: Option<String>,
}

/// What to change in a finding (not its status: see the transition); `null` clears
/// `description` or `asset`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = FindingPatch)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingPatchIn {
    #[schema(schema_with = crate::schema::opt_title)]
    pub(crate) title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_description)]
    pub(crate) description: Option<Option<String>>,
    #[schema(schema_with = crate::schema::opt_severity)]
    pub(crate) severity: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_asset)]
    pub(crate) asset: Option<Option<String>>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
}

/// A lifecycle move; one the current status does not allow is a 409 naming the allowed ones.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Transition)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionIn {
    #[schema(schema_with = crate::schema::finding_status)]
    pub(crate) to: String,
    /// Recorded in the audit event; `X-Audit-Reason` is the fallback.
    pub(crate) reason: Option<String>,
}

/// The finding list's filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct FindingQuery {
    /// The finding's status.
    #[param(schema_with = crate::schema::finding_status)]
    pub(crate) status: Option<String>,
    /// The finding's severity.
    #[param(schema_with = crate::schema::severity)]
    pub(crate) severity: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// A finding, with the moves its lifecycle allows from its status.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Finding)]
pub(crate) struct FindingOut {
    id: String,
    title: String,
    description: Option<String>,
    #[schema(schema_with = crate::schema::severity)]
    severity: &'static str,
    #[schema(schema_with = crate::schema::finding_status)]
    status: &'static str,
    #[schema(schema_with = crate::schema::finding_statuses)]
    allowed_transitions: Vec<&'static str>,
    asset: Option<String>,
    source: Option<String>,
    external_id: Option<String>,
    #[schema(schema_with = crate::schema::tlp_out)]
    tlp: &'static str,
    reopen_count: u32,
    created_at: String,
    updated_at: String,
}

pub(crate) fn finding_out(f: &Finding) -> FindingOut {
    FindingOut {
        id: f.id.to_string(),
        title: f.title.as_str().to_owned(),
        description: f.description.as_ref().map(|d| d.as_str().to_owned()),
        severity: f.severity.as_str(),
        status: f.status.as_str(),
        allowed_transitions: f.status.next().iter().map(|s| s.as_str()).collect(),
        asset: f.asset.as_ref().map(|a| a.as_str().to_owned()),
        source: f.source.as_ref().map(|s| s.as_str().to_owned()),
        external_id: f.external_id.as_ref().map(|e| e.as_str().to_owned()),
        tlp: f.tlp.as_str(),
        reopen_count: f.reopen_count,
        created_at: f.created_at.to_string(),
        updated_at: f.updated_at.to_string(),
    }
}

/// A new indicator: its value is normalized for its type, and unique per type and value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorIn {
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::indicator_type)]
    pub(crate) kind: String,
    /// In the grammar of its type (an address, a CIDR, a domain, a hash …).
    pub(crate) value: String,
    #[schema(schema_with = crate::schema::opt_time)]
    pub(crate) valid_from: Option<String>,
    #[schema(schema_with = crate::schema::opt_time)]
    pub(crate) valid_until: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::opt_integral")]
    #[schema(schema_with = crate::schema::opt_confidence)]
    pub(crate) confidence: Option<i64>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
    pub(crate) active: Option<bool>,
    #[schema(schema_with = crate::schema::opt_uuid)]
    pub(crate) finding_id: Option<String>,
    pub(crate) match_subdomains: Option<bool>,
    #[schema(schema_with = crate::schema::opt_source)]
    pub(crate) source: Option<String>,
    #[schema(schema_with = crate::schema::opt_external_id)]
    pub(crate) source_ref: Option<String>,
}

/// What to change in an indicator (not its type or value); `null` clears.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = IndicatorPatch)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorPatchIn {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_time)]
    pub(crate) valid_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_time)]
    pub(crate) valid_until: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::dto::double_integral")]
    #[schema(schema_with = crate::schema::opt_confidence)]
    pub(crate) confidence: Option<Option<i64>>,
    #[schema(schema_with = crate::schema::opt_tlp)]
    pub(crate) tlp: Option<String>,
    pub(crate) active: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::schema::opt_uuid)]
    pub(crate) finding_id: Option<Option<String>>,
    pub(crate) match_subdomains: Option<bool>,
}

/// The indicator list's filters; a value needs a type, and an empty value is none.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorQuery {
    /// The indicator's type.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = crate::schema::indicator_type)]
    pub(crate) kind: Option<String>,
    /// The value, normalized before comparing (needs `type`).
    pub(crate) value: Option<String>,
    /// The finding the indicators point at.
    #[param(schema_with = crate::schema::uuid)]
    pub(crate) finding_id: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// An indicator of the catalogue.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Indicator)]
pub(crate) struct IndicatorOut {
    id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::indicator_type)]
    kind: &'static str,
    value: String,
    valid_from: Option<String>,
    valid_until: Option<String>,
    confidence: Option<u8>,
    #[schema(schema_with = crate::schema::tlp_out)]
    tlp: &'static str,
    active: bool,
    source: Option<String>,
    source_ref: Option<String>,
    finding_id: Option<String>,
    match_subdomains: bool,
    created_at: String,
    updated_at: String,
}

pub(crate) fn indicator_out(i: &Indicator) -> IndicatorOut {
    IndicatorOut {
        id: i.id.to_string(),
        kind: i.kind().as_str(),
        value: i.value.as_str().to_owned(),
        valid_from: i.valid_from.map(|at| at.to_string()),
        valid_until: i.valid_until.map(|at| at.to_string()),
        confidence: i.confidence.map(|c| c.get()),
        tlp: i.tlp.as_str(),
        active: i.active,
        source: i.source.as_ref().map(|s| s.as_str().to_owned()),
        source_ref: i.source_ref.as_ref().map(|s| s.as_str().to_owned()),
        finding_id: i.finding_id.map(|id| id.to_string()),
        match_subdomains: i.match_subdomains,
        created_at: i.created_at.to_string(),
        updated_at: i.updated_at.to_string(),
    }
}

/// A row or object an import did not take, and why.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RejectionOut {
    /// The CSV line (1-based, the header is 1) or the bundle's `objects` index.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    /// The STIX object's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    reason: String,
}

/// What an import did: counts, and the first 1,000 rejections (`rejected_count` counts all).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ImportReport)]
pub(crate) struct ImportOut {
    accepted: u64,
    updated: u64,
    unchanged: u64,
    rejected_count: u64,
    rejected: Vec<RejectionOut>,
    skipped_other_objects: u64,
}

pub(crate) fn import_out(report: &ImportReport) -> ImportOut {
    ImportOut {
        accepted: report.counts.created,
        updated: report.counts.updated,
        unchanged: report.counts.unchanged,
        rejected_count: report.n_rejected,
        rejected: report
            .rejected
            .iter()
            .map(|r| RejectionOut {
                index: r.index,
                id: r.id.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
        skipped_other_objects: report.skipped_other,
    }
}

/// A value that never matches: exact, a CIDR, or a domain with its subdomains.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuppressionIn {
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::indicator_type)]
    pub(crate) kind: String,
    /// In the grammar of its type.
    pub(crate) value: String,
    pub(crate) match_subdomains: Option<bool>,
    #[schema(schema_with = crate::schema::opt_description)]
    pub(crate) reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Suppression)]
pub(crate) struct SuppressionOut {
    id: String,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::schema::indicator_type)]
    kind: &'static str,
    value: String,
    match_subdomains: bool,
    reason: Option<String>,
    created_at: String,
}

pub(crate) fn suppression_out(s: &Suppression) -> SuppressionOut {
    SuppressionOut {
        id: s.id.to_string(),
        kind: s.value.kind().as_str(),
        value: s.value.as_str().to_owned(),
        match_subdomains: s.match_subdomains,
        reason: s.reason.as_ref().map(|r| r.as_str().to_owned()),
        created_at: s.created_at.to_string(),
    }
}

/// The match list's filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchQuery {
    /// The finding the matched indicator points at.
    #[param(schema_with = crate::schema::uuid)]
    pub(crate) finding_id: Option<String>,
    /// The indicator that matched.
    #[param(schema_with = crate::schema::uuid)]
    pub(crate) indicator_id: Option<String>,
    /// The telemetry event that matched.
    #[param(schema_with = crate::schema::uuid)]
    pub(crate) event_id: Option<String>,
    /// Only matches that did (true) or did not (false) reopen their finding.
    #[param(schema_with = crate::schema::boolean)]
    pub(crate) reopened: Option<String>,
    /// Matched at or after.
    #[param(schema_with = crate::schema::time)]
    pub(crate) since: Option<String>,
    /// Matched before.
    #[param(schema_with = crate::schema::time)]
    pub(crate) until: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    #[param(schema_with = crate::schema::limit)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::schema::cursor)]
    pub(crate) cursor: Option<String>,
}

/// One match: which indicator matched which event, in which field, and whether it reopened
/// the indicator's finding.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Match)]
pub(crate) struct MatchOut<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    event_id: String,
    indicator_id: String,
    indicator_type: &'a str,
    field: &'a str,
    value: &'a str,
    finding_id: Option<String>,
    reopened: bool,
    matched_at: String,
}

impl<'a> MatchOut<'a> {
    pub(crate) fn new(m: &'a IocMatch, index: Option<usize>) -> Self {
        Self {
            id: m.id.to_string(),
            index,
            event_id: m.event_id.to_string(),
            indicator_id: m.indicator_id.to_string(),
            indicator_type: m.indicator_kind.as_str(),
            field: m.field.as_str(),
            value: &m.value,
            finding_id: m.finding_id.map(|id| id.to_string()),
            reopened: m.reopened,
            matched_at: m.matched_at.to_string(),
        }
    }
}

/// An accepted or duplicate event of the batch, by its position.
#[derive(Serialize, utoipa::ToSchema)]
struct EventOut {
    index: usize,
    id: String,
    duplicate: bool,
}

/// An event of the batch that was refused, or whose correlation failed in part.
#[derive(Serialize, utoipa::ToSchema)]
struct ProblemOut<'a> {
    index: usize,
    reason: &'a str,
}

/// The answer to an ingest key: what happened to its events, never what they matched. The
/// ingest role may not read the catalogue, so indicator ids, finding ids and reopens are for
/// readers, through `/ioc-matches` and `/findings/{id}/reopens`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = IngestReport)]
pub(crate) struct IngestOut<'a> {
    accepted: usize,
    duplicates: usize,
    rejected: Vec<ProblemOut<'a>>,
    events: Vec<EventOut>,
    /// How many matches the batch recorded.
    matches: usize,
    /// Stored events whose correlation failed in part (they stay stored).
    errors: Vec<ProblemOut<'a>>,
}

impl<'a> IngestOut<'a> {
    pub(crate) fn new(report: &'a IngestReport) -> Self {
        let problems = |list: &'a [vigil_service::EventProblem]| {
            let mut out: Vec<ProblemOut<'a>> = list
                .iter()
                .map(|p| ProblemOut {
                    index: p.index,
                    reason: &p.reason,
                })
                .collect();
            out.sort_by_key(|p| p.index);
            out
        };
        Self {
            accepted: report.accepted(),
            duplicates: report.duplicates(),
            rejected: problems(&report.rejected),
            events: report
                .events
                .iter()
                .map(|e| EventOut {
                    index: e.index,
                    id: e.id.to_string(),
                    duplicate: e.duplicate,
                })
                .collect(),
            matches: report.matches.len(),
            errors: problems(&report.errors),
        }
    }
}
