use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vigil_domain::{
    Asset, BoundedText, ExternalId, FindingFilter, FindingId, FindingPatch, FindingStatus,
    NewFinding, RiskTitle, Severity, Source, Tlp,
};

use crate::dto::{PageOut, PageQuery};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, WriteData};
use crate::handlers::{IdPath, ReasonHeader, page, path_id};
use crate::ioc_dto::{
    FindingIn, FindingOut, FindingPatchIn, FindingQuery, MatchOut, TransitionIn, finding_out,
};
use crate::{ApiError, AppState};

fn new_finding(body: FindingIn) -> Result<NewFinding, ApiError> {
    let severity = body.severity.as_deref().map(Severity::parse).transpose()?;
    let mut finding = NewFinding::new(RiskTitle::parse(&body.title)?, severity.unwrap_or_default());
    finding.description = body
        .description
        .as_deref()
        .map(BoundedText::description)
        .transpose()?;
    finding.asset = body.asset.as_deref().map(Asset::parse).transpose()?;
    if let Some(tlp) = &body.tlp {
        finding.tlp = Tlp::parse(tlp)?;
    }
    let source = body.source.as_deref().map(Source::parse).transpose()?;
    let external_id = body
        .external_id
        .as_deref()
        .map(ExternalId::parse)
        .transpose()?;
    Ok(finding.with_source(source, external_id)?)
}

fn patch(body: FindingPatchIn) -> Result<FindingPatch, ApiError> {
    Ok(FindingPatch {
        title: body.title.as_deref().map(RiskTitle::parse).transpose()?,
        description: body
            .description
            .map(|inner| inner.as_deref().map(BoundedText::description).transpose())
            .transpose()?,
        severity: body.severity.as_deref().map(Severity::parse).transpose()?,
        asset: body
            .asset
            .map(|inner| inner.as_deref().map(Asset::parse).transpose())
            .transpose()?,
        tlp: body.tlp.as_deref().map(Tlp::parse).transpose()?,
    })
}

/// Create a finding (status open).
#[utoipa::path(post, path = "/api/v1/findings", tag = "findings", operation_id = "createFinding",
    params(ReasonHeader), request_body = FindingIn,
    responses((status = 201, description = "created", body = FindingOut)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    ApiJson(body): ApiJson<FindingIn>,
) -> Result<Response, ApiError> {
    let finding = state
        .services
        .create_finding(&principal, new_finding(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(finding_out(&finding))).into_response())
}

/// List findings, newest first.
#[utoipa::path(get, path = "/api/v1/findings", tag = "findings", operation_id = "listFindings",
    params(FindingQuery), responses((status = 200, description = "a page of findings", body = PageOut<FindingOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<FindingQuery>,
) -> Result<Response, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let filter = FindingFilter {
        status: query
            .status
            .as_deref()
            .map(FindingStatus::parse)
            .transpose()?,
        severity: query.severity.as_deref().map(Severity::parse).transpose()?,
    };
    let findings = state
        .services
        .list_findings(&principal, &filter, request)
        .await?;
    Ok(Json(PageOut::from_page(findings, |f| finding_out(&f))).into_response())
}

/// Read a finding.
#[utoipa::path(get, path = "/api/v1/findings/{id}", tag = "findings", operation_id = "getFinding",
    params(IdPath), responses((status = 200, description = "the finding", body = FindingOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, FindingId::parse)?;
    let finding = state.services.get_finding(&principal, id).await?;
    Ok(Json(finding_out(&finding)).into_response())
}

/// Change a finding's content (not its status).
#[utoipa::path(patch, path = "/api/v1/findings/{id}", tag = "findings", operation_id = "updateFinding",
    params(IdPath, ReasonHeader), request_body = FindingPatchIn,
    responses((status = 200, description = "the finding after the change", body = FindingOut)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FindingPatchIn>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, FindingId::parse)?;
    let finding = state
        .services
        .update_finding(&principal, id, patch(body)?)
        .await?;
    Ok(Json(finding_out(&finding)).into_response())
}

/// Move a finding along its lifecycle; a move its status does not allow is 409.
#[utoipa::path(post, path = "/api/v1/findings/{id}/transition", tag = "findings", operation_id = "transitionFinding",
    params(IdPath, ReasonHeader), request_body = TransitionIn,
    responses((status = 200, description = "the finding after the move", body = FindingOut)))]
pub(crate) async fn transition(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransitionIn>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, FindingId::parse)?;
    let to = FindingStatus::parse(&body.to).map_err(|err| ApiError::invalid("to", err.reason()))?;
    // A reason in the body wins over `X-Audit-Reason`.
    let principal = match body.reason.filter(|r| !r.trim().is_empty()) {
        Some(why) => principal.because(Some(why)),
        None => principal,
    };
    let finding = state
        .services
        .transition_finding(&principal, id, to)
        .await?;
    Ok(Json(finding_out(&finding)).into_response())
}

/// Why this finding was reopened: the matches that reopened it.
#[utoipa::path(get, path = "/api/v1/findings/{id}/reopens", tag = "findings", operation_id = "findingReopens",
    params(IdPath, PageQuery), responses((status = 200, description = "a page of matches", body = PageOut<MatchOut>)))]
pub(crate) async fn reopens(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, FindingId::parse)?;
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let matches = state
        .services
        .finding_reopens(&principal, id, request)
        .await?;
    let out = PageOut {
        items: matches
            .items
            .iter()
            .map(|m| MatchOut::new(m, None))
            .collect(),
        next_cursor: matches
            .next_cursor
            .as_ref()
            .map(vigil_domain::Cursor::encode),
    };
    Ok(Json(out).into_response())
}
