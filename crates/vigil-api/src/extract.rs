//! Extractors that turn requests into typed input or a precise problem: the authenticated
//! principal, strict JSON bodies and strict query strings.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use vigil_service::Principal;

use crate::{ApiError, AppState};

/// The peer address of the connection, when the server was started with connection info
/// (`vigil_api::serve` is); a proxy in front makes this the proxy's address.
pub(crate) struct ClientAddr(pub(crate) Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(parts.extensions.get())))
    }
}

pub(crate) fn client_addr(
    info: Option<&axum::extract::ConnectInfo<std::net::SocketAddr>>,
) -> Option<std::net::IpAddr> {
    info.map(|axum::extract::ConnectInfo(address)| address.ip())
}

/// The caller, proven by `Authorization: Bearer <API key or access token>`.
pub(crate) struct Auth(pub(crate) Principal);

impl<S> FromRequestParts<S> for Auth
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <token>"))?;
        let principal = state
            .services
            .authenticate(token)
            .await?
            .because(crate::handlers::reason(&parts.headers));
        let span = tracing::Span::current();
        span.record("role", principal.role().as_str());
        if let Some(tenant) = principal.tenant() {
            span.record("tenant", tracing::field::display(tenant));
        }
        Ok(Auth(principal))
    }
}

/// The request's media type (`text/csv` of `text/csv; charset=utf-8`), lowercased.
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
}

/// The whole body as UTF-8 text, whatever its media type (the handler decides); 413 past
/// the route's body limit.
pub(crate) struct RawText(pub(crate) String);

impl<S: Send + Sync> FromRequest<S> for RawText {
    type Rejection = ApiError;

    /// Reads the body frame by frame into one buffer (sized from `Content-Length` when
    /// given), under the route's body limit: a large import costs its own size once, not the
    /// chunks and their concatenation at the same time.
    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        use http_body_util::BodyExt;
        let timeout = body_read_timeout(&req);
        let hint = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = axum::RequestExt::into_limited_body(req);
        let mut bytes: Vec<u8> = Vec::with_capacity(hint.min(crate::IMPORT_BYTES_MAX));
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(body_error)?;
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Ok::<(), ApiError>(())
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| body_timed_out(timeout))??;
        String::from_utf8(bytes)
            .map(RawText)
            .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))
    }
}

/// The body-read deadline the middleware (or the route) set.
fn body_read_timeout(req: &Request) -> std::time::Duration {
    req.extensions()
        .get::<crate::middleware::BodyReadTimeout>()
        .map_or(crate::BODY_READ_TIMEOUT_DEFAULT, |timeout| timeout.0)
}

fn body_timed_out(timeout: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ),
    )
}

/// A body that failed mid-read: past the limit (413) or broken.
fn body_error(err: axum::Error) -> ApiError {
    let too_large = std::error::Error::source(&err)
        .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
    if too_large {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "the request body is larger than the limit",
        )
    } else {
        ApiError::bad_request("could not read the request body")
    }
}

fn too_large_or_bad(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "the request body is larger than the limit",
        )
    } else {
        ApiError::bad_request(format!("could not read the request body: {rejection}"))
    }
}

/// A JSON body that must parse into `T` exactly: unknown fields, wrong types and missing
/// fields are 422 naming the field; malformed JSON is 400; too large is 413.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "expected Content-Type: application/json",
            ));
        }
        let timeout = body_read_timeout(&req);
        let bytes = tokio::time::timeout(timeout, Bytes::from_request(req, state))
            .await
            .map_err(|_| body_timed_out(timeout))?
            .map_err(too_large_or_bad)?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                ApiError::invalid(field_name(&path, &message), message)
            }
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })
}

/// serde reports missing and unknown fields at the parent's path (`.`) and names the field
/// in backticks; everything else at the field's own path.
fn field_name(path: &str, message: &str) -> String {
    let named = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) if message.starts_with("missing field") => format!("{path}.{name}"),
        (path, _) => path.to_owned(),
    }
}

/// A query string that must parse into `T`: unknown parameters and bad values are 422.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded_deserializer(query);
        deserializer.map(ApiQuery)
    }
}

fn serde_urlencoded_deserializer<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("malformed query string"))?,
    )
    .map(|axum::extract::Query(value)| value)
    .map_err(|rejection| {
        let text = rejection.body_text();
        let reason = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text)
            .to_owned();
        let field = reason.split('`').nth(1).unwrap_or("query").to_owned();
        ApiError::invalid(field, reason)
    })
}

/// What a route demands of its caller, proven before the request body is read: a caller
/// without the right role gets 403 whatever it sent. The use case checks again.
pub(crate) trait Requirement {
    fn check(principal: &Principal) -> vigil_service::ServiceResult<()>;
}

/// Writes the data of the caller's own tenant.
pub(crate) struct WriteData;

impl Requirement for WriteData {
    fn check(principal: &Principal) -> vigil_service::ServiceResult<()> {
        principal
            .require_tenant(vigil_domain::Permission::WriteData)
            .map(drop)
    }
}

/// Posts telemetry into the caller's own tenant (the `ingest` role).
pub(crate) struct IngestTelemetry;

impl Requirement for IngestTelemetry {
    fn check(principal: &Principal) -> vigil_service::ServiceResult<()> {
        principal
            .require_tenant(vigil_domain::Permission::IngestTelemetry)
            .map(drop)
    }
}

/// Manages tenants (platform admins).
pub(crate) struct ManageTenants;

impl Requirement for ManageTenants {
    fn check(principal: &Principal) -> vigil_service::ServiceResult<()> {
        principal.require(vigil_domain::Permission::ManageTenants)
    }
}

/// Manages the keys, users and sessions of its own scope (platform or tenant admins).
pub(crate) struct ManageAccess;

impl Requirement for ManageAccess {
    fn check(principal: &Principal) -> vigil_service::ServiceResult<()> {
        if principal.role() == vigil_domain::Role::PlatformAdmin {
            return Ok(());
        }
        principal
            .require_tenant(vigil_domain::Permission::ManageTenantAccess)
            .map(drop)
    }
}

/// An authenticated caller proven to meet `R`.
pub(crate) struct Authorized<R>(pub(crate) Principal, pub(crate) std::marker::PhantomData<R>);

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    AppState: FromRef<S>,
    S: Send + Sync,
    R: Requirement,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        R::check(&principal)?;
        Ok(Authorized(principal, std::marker::PhantomData))
    }
}
