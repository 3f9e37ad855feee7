use axum::Json;
use axum::extract::State;
use vigil_store::AuditFilter;

use crate::dto::{AuditOut, AuditQuery, PageOut, VerifyOut};
use crate::extract::{ApiQuery, Auth};
use crate::handlers::{page, query_text};
use crate::{ApiError, AppState};

/// Page the audit trail, newest first (the caller's tenant's chain, or the platform's).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "listAudit",
    params(AuditQuery),
    responses((status = 200, description = "a page of events", body = PageOut<AuditOut>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<PageOut<AuditOut>>, ApiError> {
    let request = page(query.limit.as_deref(), query.cursor.as_deref())?;
    let filter = AuditFilter {
        entity_type: query_text("entity_type", query.entity_type)?,
        entity_id: query_text("entity_id", query.entity_id)?,
        ..AuditFilter::default()
    };
    let events = state
        .services
        .list_audit(&principal, &filter, request)
        .await?;
    Ok(Json(PageOut::from_page(events, AuditOut::from)))
}

/// Verify the caller's hash chain from its first event to its head.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", operation_id = "verifyAudit",
    responses((status = 200, description = "what verification found", body = VerifyOut)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<VerifyOut>, ApiError> {
    Ok(Json(state.services.verify_audit(&principal).await?.into()))
}
