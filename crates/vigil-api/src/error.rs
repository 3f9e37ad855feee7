//! RFC 9457 problem details. A 4xx says what was wrong; a 5xx says only "internal" and the
//! request id, and the detail goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vigil_service::ServiceError;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) reason: String,
}

/// More members of a problem (boxed: rare, and it keeps `ApiError` small).
#[derive(Debug)]
enum Extra {
    /// What still depends on what a refused delete would remove.
    Dependants(Vec<String>),
    /// Any other members (an import's diagnostics and diff).
    Members(serde_json::Map<String, serde_json::Value>),
}

/// An error on its way to becoming a problem+json response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    extra: Option<Box<Extra>>,
    /// Logged, never sent.
    internal: Option<String>,
    /// Seconds for `Retry-After` (429, 503).
    retry_after_s: Option<u64>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    dependants: &'a [String],
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            extra: None,
            internal: None,
            retry_after_s: None,
        }
    }

    /// The same error with more members in its problem body.
    pub(crate) fn with_extra(mut self, extra: serde_json::Map<String, serde_json::Value>) -> Self {
        self.extra = Some(Box::new(Extra::Members(extra)));
        self
    }

    /// The same error telling the client when to try again.
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("{field}: {reason}"),
        );
        err.errors.push(FieldError { field, reason });
        err
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub(crate) fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal");
        err.internal = Some(detail.into());
        err
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unauthenticated(reason) => ApiError::unauthenticated(reason),
            ServiceError::Forbidden(reason) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason)
            }
            ServiceError::NotFound => ApiError::not_found("no such record in this tenant"),
            ServiceError::Invalid { field, reason } => ApiError::invalid(field, reason),
            ServiceError::Conflict(reason) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", reason)
            }
            err @ ServiceError::InUse { .. } => {
                let detail = err.to_string();
                let ServiceError::InUse { dependants, .. } = err else {
                    unreachable!()
                };
                let mut api = ApiError::new(StatusCode::CONFLICT, "in-use", detail);
                api.extra = Some(Box::new(Extra::Dependants(dependants)));
                api
            }
            err @ ServiceError::PlanLimit { limit, max } => {
                let mut extra = serde_json::Map::new();
                extra.insert("limit".into(), limit.into());
                extra.insert("max".into(), max.into());
                ApiError::new(StatusCode::FORBIDDEN, "plan-limit", err.to_string())
                    .with_extra(extra)
            }
            err @ ServiceError::Quota {
                limit,
                max,
                retry_after_s,
            } => {
                let mut extra = serde_json::Map::new();
                extra.insert("limit".into(), limit.into());
                extra.insert("max".into(), max.into());
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota", err.to_string())
                    .with_extra(extra)
                    .retry_after(retry_after_s)
            }
            err @ ServiceError::ReadOnly { .. } => {
                let mut extra = serde_json::Map::new();
                extra.insert("limit".into(), "trial_ends_at".into());
                ApiError::new(StatusCode::FORBIDDEN, "read-only", err.to_string()).with_extra(extra)
            }
            ServiceError::TooLarge(reason) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", reason)
            }
            ServiceError::Overloaded(reason) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", reason).retry_after(1)
            }
            err @ ServiceError::Throttled { retry_after_s } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", err.to_string())
                    .retry_after(retry_after_s)
            }
            ServiceError::Unavailable(reason) => {
                let mut err = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; retry later",
                );
                err.internal = Some(reason);
                err
            }
            ServiceError::Internal(reason) => ApiError::internal(reason),
        }
    }
}

impl From<vigil_domain::ParseError> for ApiError {
    fn from(err: vigil_domain::ParseError) -> Self {
        ApiError::invalid(err.what(), err.reason())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(internal) = &self.internal {
            tracing::error!(component = "http", status = self.status.as_u16(), error = %internal, "request failed");
        }
        let title = self.status.canonical_reason().unwrap_or("error");
        let problem = Problem {
            kind: format!("urn:vigil:problem:{}", self.kind),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            dependants: match self.extra.as_deref() {
                Some(Extra::Dependants(names)) => names,
                _ => &[],
            },
            extra: match self.extra.as_deref() {
                Some(Extra::Members(members)) => Some(members),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
