use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vigil_domain::{Cursor, EventId, FindingId, IndicatorId, MatchFilter, Timestamp};
use vigil_service::BatchFormat;

use crate::dto::PageOut;
use crate::extract::{ApiQuery, Auth, Authorized, IngestTelemetry, RawText, media_type};
use crate::handlers::page;
use crate::ioc_dto::{IngestOut, MatchOut, MatchQuery};
use crate::{ApiError, AppState};

/// Store and correlate a batch of events (the ingest role): a JSON array or NDJSON.
#[utoipa::path(post, path = "/api/v1/telemetry/events", tag = "telemetry", operation_id = "ingestTelemetry",
    request_body(content((crate::schema::EventBatch = "application/json"), (crate::schema::NdjsonBatch = "application/x-ndjson"))),
    responses((status = 200, description = "what happened to the batch's events", body = IngestOut)))]
pub(crate) async fn ingest(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<IngestTelemetry>,
    headers: HeaderMap,
    RawText(body): RawText,
) -> Result<Response, ApiError> {
    let format = match media_type(&headers).as_deref() {
        Some("application/json") => BatchFormat::JsonArray,
        Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
            BatchFormat::Ndjson
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "expected Content-Type: application/json (an array of events) or \
                 application/x-ndjson (one event per line)",
            ));
        }
    };
    let report = state.services.ingest(&principal, &body, format).await?;
    state.metrics.ingested(&report);
    Ok(Json(IngestOut::new(&report)).into_response())
}

fn filter(query: &MatchQuery) -> Result<MatchFilter, ApiError> {
    let at = |field: &'static str, raw: Option<&str>| {
        raw.map(Timestamp::parse)
            .transpose()
            .map_err(|err| ApiError::invalid(field, err.reason()))
    };
    let reopened = match query.reopened.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::invalid("reopened", "expected true or false")),
    };
    Ok(MatchFilter {
        finding_id: query
            .finding_id
            .as_deref()
            .map(FindingId::parse)
            .transpose()?,
        indicator_id: query
            .indicator_id
            .as_deref()
            .map(IndicatorId::parse)
            .transpose()?,
        event_id: query.event_id.as_deref().map(EventId::parse).transpose()?,
        reopened,
        since: at("since", query.since.as_deref())?,
        until: at("until", query.until.as_deref())?,
    })
}

/// List IOC matches, newest first.
#[utoipa::path(get, path = "/api/v1/ioc-matches", tag = "telemetry", operation_id = "listMatches",
    params(MatchQuery), responses((status = 200, description = "a page of matches", body = PageOut<MatchOut>)))]
pub(crate) async fn list_matches(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<MatchQuery>,
) -> Result<Response, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let matches = state
        .services
        .list_matches(&principal, &filter(&query)?, request)
        .await?;
    let out = PageOut {
        items: matches
            .items
            .iter()
            .map(|m| MatchOut::new(m, None))
            .collect(),
        next_cursor: matches.next_cursor.as_ref().map(Cursor::encode),
    };
    Ok(Json(out).into_response())
}
