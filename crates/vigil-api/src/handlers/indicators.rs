use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_domain::{
    BoundedText, Confidence, ExternalId, FindingId, IndicatorFilter, IndicatorId, IndicatorKind,
    IndicatorPatch, IndicatorValue, NewIndicator, NewSuppression, Source, SuppressionId, Timestamp,
    Tlp,
};
use vigil_service::ImportFormat;

use crate::dto::{PageOut, PageQuery};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, RawText, WriteData, media_type};
use crate::handlers::{IdPath, ReasonHeader, page, path_id};
use crate::ioc_dto::{
    ImportOut, IndicatorIn, IndicatorOut, IndicatorPatchIn, IndicatorQuery, SuppressionIn,
    SuppressionOut, import_out, indicator_out, suppression_out,
};
use crate::{ApiError, AppState};

/// A (type, value) pair from a body: the type names the parser, and a value that does not
/// parse is reported against `value`.
pub(crate) fn indicator_value(kind: &str, value: &str) -> Result<IndicatorValue, ApiError> {
    let kind = IndicatorKind::parse(kind).map_err(|err| ApiError::invalid("type", err.reason()))?;
    IndicatorValue::parse(kind, value).map_err(|err| ApiError::invalid("value", err.to_string()))
}

fn timestamp(field: &'static str, raw: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    raw.map(Timestamp::parse)
        .transpose()
        .map_err(|err| ApiError::invalid(field, err.reason()))
}

fn new_indicator(body: IndicatorIn) -> Result<NewIndicator, ApiError> {
    let mut new = NewIndicator::new(indicator_value(&body.kind, &body.value)?);
    new.valid_from = timestamp("valid_from", body.valid_from.as_deref())?;
    new.valid_until = timestamp("valid_until", body.valid_until.as_deref())?;
    new.confidence = body.confidence.map(Confidence::parse).transpose()?;
    if let Some(tlp) = &body.tlp {
        new.tlp = Tlp::parse(tlp)?;
    }
    new.active = body.active.unwrap_or(true);
    new.finding_id = body
        .finding_id
        .as_deref()
        .map(FindingId::parse)
        .transpose()?;
    new.match_subdomains = body.match_subdomains.unwrap_or(false);
    new.source = body.source.as_deref().map(Source::parse).transpose()?;
    new.source_ref = body
        .source_ref
        .as_deref()
        .map(ExternalId::parse)
        .transpose()?;
    Ok(new)
}

fn patch(body: IndicatorPatchIn) -> Result<IndicatorPatch, ApiError> {
    let at = |field, raw: Option<Option<String>>| {
        raw.map(|inner| timestamp(field, inner.as_deref()))
            .transpose()
    };
    Ok(IndicatorPatch {
        valid_from: at("valid_from", body.valid_from)?,
        valid_until: at("valid_until", body.valid_until)?,
        confidence: body
            .confidence
            .map(|inner| inner.map(Confidence::parse).transpose())
            .transpose()?,
        tlp: body.tlp.as_deref().map(Tlp::parse).transpose()?,
        active: body.active,
        finding_id: body
            .finding_id
            .map(|inner| inner.as_deref().map(FindingId::parse).transpose())
            .transpose()?,
        match_subdomains: body.match_subdomains,
    })
}

/// Add an indicator (normalized; 409 if its type and value exist).
#[utoipa::path(post, path = "/api/v1/indicators", tag = "indicators", operation_id = "createIndicator",
    params(ReasonHeader), request_body = IndicatorIn,
    responses((status = 201, description = "created", body = IndicatorOut)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    ApiJson(body): ApiJson<IndicatorIn>,
) -> Result<Response, ApiError> {
    let indicator = state
        .services
        .create_indicator(&principal, new_indicator(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(indicator_out(&indicator))).into_response())
}

/// List indicators, newest first.
#[utoipa::path(get, path = "/api/v1/indicators", tag = "indicators", operation_id = "listIndicators",
    params(IndicatorQuery), responses((status = 200, description = "a page of indicators", body = PageOut<IndicatorOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<IndicatorQuery>,
) -> Result<Response, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let kind = query
        .kind
        .as_deref()
        .map(IndicatorKind::parse)
        .transpose()
        .map_err(|err| ApiError::invalid("type", err.reason()))?;
    // A value is compared in its normalized form, so `Evil.Example.` finds `evil.example`.
    let value = match (
        kind,
        query.value.as_deref().filter(|v| !v.trim().is_empty()),
    ) {
        (Some(kind), Some(raw)) => Some(indicator_value(kind.as_str(), raw)?.as_str().to_owned()),
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "value",
                "filtering by value needs a type",
            ));
        }
        (_, None) => None,
    };
    let filter = IndicatorFilter {
        kind,
        value,
        finding_id: query
            .finding_id
            .as_deref()
            .map(FindingId::parse)
            .transpose()?,
    };
    let indicators = state
        .services
        .list_indicators(&principal, &filter, request)
        .await?;
    Ok(Json(PageOut::from_page(indicators, |i| indicator_out(&i))).into_response())
}

/// Read an indicator.
#[utoipa::path(get, path = "/api/v1/indicators/{id}", tag = "indicators", operation_id = "getIndicator",
    params(IdPath), responses((status = 200, description = "the indicator", body = IndicatorOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, IndicatorId::parse)?;
    let indicator = state.services.get_indicator(&principal, id).await?;
    Ok(Json(indicator_out(&indicator)).into_response())
}

/// Change an indicator (not its type or value).
#[utoipa::path(patch, path = "/api/v1/indicators/{id}", tag = "indicators", operation_id = "updateIndicator",
    params(IdPath, ReasonHeader), request_body = IndicatorPatchIn,
    responses((status = 200, description = "the indicator after the change", body = IndicatorOut)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IndicatorPatchIn>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, IndicatorId::parse)?;
    let indicator = state
        .services
        .update_indicator(&principal, id, patch(body)?)
        .await?;
    Ok(Json(indicator_out(&indicator)).into_response())
}

/// Delete an indicator.
#[utoipa::path(delete, path = "/api/v1/indicators/{id}", tag = "indicators", operation_id = "deleteIndicator",
    params(IdPath, ReasonHeader), responses((status = 204, description = "deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, IndicatorId::parse)?;
    state.services.delete_indicator(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import an indicator CSV (text/csv) or a STIX 2.1 bundle (application/json): new type and
/// value pairs are created, existing ones updated, every rejection counted.
#[utoipa::path(post, path = "/api/v1/indicators/import", tag = "indicators", operation_id = "importIndicators",
    params(ReasonHeader),
    request_body(content((crate::schema::CsvBody = "text/csv"), (crate::schema::StixBundle = "application/json"))),
    responses((status = 200, description = "what the import did", body = ImportOut)))]
pub(crate) async fn import(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    headers: HeaderMap,
    RawText(body): RawText,
) -> Result<Response, ApiError> {
    let format = match media_type(&headers).as_deref() {
        Some("text/csv") => ImportFormat::Csv,
        Some("application/json" | "application/stix+json") => ImportFormat::Stix,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "expected Content-Type: text/csv (indicator CSV) or application/json (STIX 2.1 bundle)",
            ));
        }
    };
    let report = state
        .services
        .import_indicators(&principal, format, body)
        .await?;
    Ok(Json(import_out(&report)).into_response())
}

/// Never fire on this value (exact, CIDR, or a domain with its subdomains).
#[utoipa::path(post, path = "/api/v1/suppressions", tag = "indicators", operation_id = "createSuppression",
    params(ReasonHeader), request_body = SuppressionIn,
    responses((status = 201, description = "created", body = SuppressionOut)))]
pub(crate) async fn create_suppression(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    ApiJson(body): ApiJson<SuppressionIn>,
) -> Result<Response, ApiError> {
    let new = NewSuppression {
        value: indicator_value(&body.kind, &body.value)?,
        match_subdomains: body.match_subdomains.unwrap_or(false),
        reason: body
            .reason
            .as_deref()
            .map(BoundedText::description)
            .transpose()?,
    };
    let suppression = state.services.create_suppression(&principal, new).await?;
    Ok((StatusCode::CREATED, Json(suppression_out(&suppression))).into_response())
}

/// List suppressions.
#[utoipa::path(get, path = "/api/v1/suppressions", tag = "indicators", operation_id = "listSuppressions",
    params(PageQuery), responses((status = 200, description = "a page of suppressions", body = PageOut<SuppressionOut>)))]
pub(crate) async fn list_suppressions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let suppressions = state
        .services
        .list_suppressions(&principal, request)
        .await?;
    Ok(Json(PageOut::from_page(suppressions, |s| suppression_out(&s))).into_response())
}

/// Remove a suppression.
#[utoipa::path(delete, path = "/api/v1/suppressions/{id}", tag = "indicators", operation_id = "deleteSuppression",
    params(IdPath, ReasonHeader), responses((status = 204, description = "removed")))]
pub(crate) async fn delete_suppression(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, SuppressionId::parse)?;
    state.services.delete_suppression(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
