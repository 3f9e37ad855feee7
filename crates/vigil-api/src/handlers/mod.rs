//! Handlers: parse the request into domain values, call one use case, shape the answer.

pub(crate) mod apps;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod bundles;
pub(crate) mod connectors;
pub(crate) mod findings;
pub(crate) mod health;
pub(crate) mod indicators;
pub(crate) mod instances;
pub(crate) mod keys;
pub(crate) mod plans;
pub(crate) mod risks;
pub(crate) mod runs;
pub(crate) mod telemetry;
pub(crate) mod tenants;

use axum::http::HeaderMap;
use vigil_domain::{Cursor, PageRequest, ParseError};

use crate::ApiError;

/// Why a change was made, for the audit trail: `X-Audit-Reason`, optional on every
/// authenticated mutation; the `Auth` extractor attaches it to the principal.
pub(crate) const AUDIT_REASON: &str = "x-audit-reason";

/// Longest free-text query parameter (`q`, `entity_type`, `entity_id`), in characters.
pub(crate) const QUERY_TEXT_LEN_MAX: usize = 200;

/// A free-text query parameter, trimmed; empty means absent, too long is 422.
pub(crate) fn query_text(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.trim();
    if text.chars().count() > QUERY_TEXT_LEN_MAX {
        return Err(ApiError::invalid(
            field,
            format!("at most {QUERY_TEXT_LEN_MAX} characters"),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

pub(crate) fn reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUDIT_REASON)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned)
}

/// A page from `limit` (1 to `PAGE_SIZE_MAX`, else 422) and `cursor` (one this API gave).
pub(crate) fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = limit
        .map(|raw| match raw.parse::<u32>() {
            Ok(n) if (1..=vigil_domain::PAGE_SIZE_MAX).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!(
                    "must be an integer from 1 to {}",
                    vigil_domain::PAGE_SIZE_MAX
                ),
            )),
        })
        .transpose()?;
    let cursor = cursor.map(Cursor::parse).transpose()?;
    Ok(PageRequest::new(limit, cursor))
}

/// A path id that does not parse names no record, so it is a 404 like any unknown id.
pub(crate) fn path_id<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|err| ApiError::not_found(format!("{raw:?} is not a valid {}", err.what())))
}

/// A record's id in the path (`{id}`); one that is not an id answers 404.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct IdPath {
    /// The record's id.
    #[param(schema_with = crate::schema::uuid)]
    id: String,
}

/// `X-Audit-Reason`: why, recorded in the change's audit event.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub(crate) struct ReasonHeader {
    /// Why; recorded in the audit event.
    #[param(rename = "X-Audit-Reason")]
    reason: Option<String>,
}

/// The key's id in `/tenants/{id}/api-keys/{key_id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only describes the path
pub(crate) struct KeyIdPath {
    /// The key's id.
    #[param(schema_with = crate::schema::uuid)]
    key_id: String,
}
