use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vigil_domain::{
    BoundedText, Cursor, ExternalId, Level, NewRisk, RiskFilter, RiskId, RiskPatch, RiskStatus,
    RiskTitle, Source, Tag, Tags, Tlp,
};

use crate::dto::{PageOut, RiskIn, RiskOut, RiskPatchIn, RiskQuery};
use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, WriteData};
use crate::handlers::{IdPath, ReasonHeader, page, path_id, query_text};
use crate::{ApiError, AppState};

fn tags(raw: &[String]) -> Result<Tags, ApiError> {
    Ok(Tags::parse(raw.iter().map(String::as_str))?)
}

fn new_risk(body: RiskIn) -> Result<NewRisk, ApiError> {
    let mut risk = NewRisk::new(
        RiskTitle::parse(&body.title)?,
        Level::parse("impact", body.impact)?,
        Level::parse("probability", body.probability)?,
    );
    risk.description = body
        .description
        .as_deref()
        .map(BoundedText::description)
        .transpose()?;
    risk.owner = body.owner.as_deref().map(BoundedText::owner).transpose()?;
    if let Some(status) = &body.status {
        risk.status = RiskStatus::parse(status)?;
    }
    if let Some(raw) = &body.tags {
        risk.tags = tags(raw)?;
    }
    if let Some(tlp) = &body.tlp {
        risk.tlp = Tlp::parse(tlp)?;
    }
    let source = body.source.as_deref().map(Source::parse).transpose()?;
    let external_id = body
        .external_id
        .as_deref()
        .map(ExternalId::parse)
        .transpose()?;
    Ok(risk.with_source(source, external_id)?)
}

fn patch(body: RiskPatchIn) -> Result<RiskPatch, ApiError> {
    let optional_text = |value: Option<Option<String>>,
                         parse: fn(&str) -> Result<BoundedText, _>| {
        value
            .map(|inner| inner.as_deref().map(parse).transpose())
            .transpose()
    };
    Ok(RiskPatch {
        title: body.title.as_deref().map(RiskTitle::parse).transpose()?,
        description: optional_text(body.description, BoundedText::description)?,
        impact: body.impact.map(|v| Level::parse("impact", v)).transpose()?,
        probability: body
            .probability
            .map(|v| Level::parse("probability", v))
            .transpose()?,
        status: body.status.as_deref().map(RiskStatus::parse).transpose()?,
        owner: optional_text(body.owner, BoundedText::owner)?,
        tags: body.tags.as_deref().map(tags).transpose()?,
        tlp: body.tlp.as_deref().map(Tlp::parse).transpose()?,
    })
}

fn filter(query: &RiskQuery) -> Result<RiskFilter, ApiError> {
    let min_score = query
        .min_score
        .as_deref()
        .map(|raw| match raw.parse::<u8>() {
            Ok(score @ 1..=25) => Ok(score),
            _ => Err(ApiError::invalid(
                "min_score",
                "must be an integer from 1 to 25",
            )),
        })
        .transpose()?;
    Ok(RiskFilter {
        status: query.status.as_deref().map(RiskStatus::parse).transpose()?,
        source: query.source.as_deref().map(Source::parse).transpose()?,
        min_score,
        tag: query
            .tag
            .as_deref()
            .filter(|tag| !tag.trim().is_empty())
            .map(Tag::parse)
            .transpose()?,
        text: query_text("q", query.q.clone())?,
    })
}

/// Create a risk.
#[utoipa::path(post, path = "/api/v1/risks", tag = "risks", operation_id = "createRisk",
    params(ReasonHeader), request_body = RiskIn,
    responses((status = 201, description = "created", body = RiskOut)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    ApiJson(body): ApiJson<RiskIn>,
) -> Result<Response, ApiError> {
    let risk = state
        .services
        .create_risk(&principal, new_risk(body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(RiskOut(&risk))).into_response())
}

/// List risks, newest first.
#[utoipa::path(get, path = "/api/v1/risks", tag = "risks", operation_id = "listRisks",
    params(RiskQuery),
    responses((status = 200, description = "a page of risks", body = PageOut<RiskOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<RiskQuery>,
) -> Result<Response, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let risks = state
        .services
        .list_risks(&principal, &filter(&query)?, request)
        .await?;
    let page = PageOut {
        items: risks.items.iter().map(RiskOut).collect(),
        next_cursor: risks.next_cursor.as_ref().map(Cursor::encode),
    };
    Ok(Json(page).into_response())
}

/// Read a risk.
#[utoipa::path(get, path = "/api/v1/risks/{id}", tag = "risks", operation_id = "getRisk",
    params(IdPath), responses((status = 200, description = "the risk", body = RiskOut)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, RiskId::parse)?;
    let risk = state.services.get_risk(&principal, id).await?;
    Ok(Json(RiskOut(&risk)).into_response())
}

/// Change a risk; `null` clears description or owner.
#[utoipa::path(patch, path = "/api/v1/risks/{id}", tag = "risks", operation_id = "updateRisk",
    params(IdPath, ReasonHeader), request_body = RiskPatchIn,
    responses((status = 200, description = "the risk after the change", body = RiskOut)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<WriteData>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RiskPatchIn>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, RiskId::parse)?;
    let risk = state
        .services
        .update_risk(&principal, id, patch(body)?)
        .await?;
    Ok(Json(RiskOut(&risk)).into_response())
}

/// Delete a risk.
#[utoipa::path(delete, path = "/api/v1/risks/{id}", tag = "risks", operation_id = "deleteRisk",
    params(IdPath, ReasonHeader), responses((status = 204, description = "deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, RiskId::parse)?;
    state.services.delete_risk(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
