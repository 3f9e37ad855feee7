//! vigil-outbound: the one way out. Every HTTP call Vigil makes to another system (connectors
//! today; tasks, case ingestion and single sign-on as they come) goes through [`Outbound`]:
//! the URL is checked, names are resolved through a resolver that drops refused addresses,
//! every redirect hop is checked again (and must stay on the same host), each call has a
//! timeout, and an answer larger than its cap is refused rather than read whole. Errors carry
//! a status and a fixed reason, never text the other side sent. Knows nothing of tenants,
//! connectors or the store.

mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use policy::{ALLOW_RANGES_MAX, AllowListError, OutboundPolicy, Refusal};
pub use reqwest::{Method, RequestBuilder, StatusCode, Url, header};

/// Longest one call may take, reading the answer included.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Longest a TCP/TLS connection may take to open.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Largest answer read, in bytes; past it the call fails with [`OutboundError::TooLarge`].
pub const RESPONSE_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Redirects followed per call (each checked, each on the same host).
pub const REDIRECTS_MAX: usize = 5;

/// The bounds of every call.
#[derive(Debug, Clone, Copy)]
pub struct OutboundLimits {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub response_bytes_max: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        Self {
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            response_bytes_max: RESPONSE_BYTES_MAX_DEFAULT,
        }
    }
}

/// Why a call failed. Every message is fixed text or a number: nothing of what the other side
/// answered, and no credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL cannot be called at all (its scheme, no host).
    #[error("the URL {0}")]
    BadUrl(&'static str),
    /// The destination is one the policy refuses.
    #[error("refused by the outbound policy: {0}")]
    Refused(Refusal),
    /// A redirect the policy does not follow.
    #[error("redirect not followed: {0}")]
    Redirect(&'static str),
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    /// The answer is larger than the cap; it was not read whole.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// Anything else on the way (TLS, a broken connection mid-answer).
    #[error("the request failed")]
    Failed,
}

impl OutboundError {
    /// Whether trying again may help (timeouts and connection failures).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Connect | Self::Failed)
    }
}

/// A complete answer: its status, headers and body (at most the cap).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Vec<u8>,
}

/// The outbound HTTP client under the policy. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<OutboundPolicy>,
    limits: OutboundLimits,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow", &self.policy.allowed())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(policy: OutboundPolicy, limits: OutboundLimits) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .timeout(limits.request_timeout)
            .connect_timeout(limits.connect_timeout)
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            // A proxy would resolve the name itself, past the policy.
            .no_proxy()
            .dns_resolver(Arc::new(FilteringResolver {
                policy: Arc::clone(&policy),
            }))
            .redirect(redirects(Arc::clone(&policy)))
            .build()
            .expect("the TLS backend initializes");
        Self {
            client,
            policy,
            limits,
        }
    }

    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    pub fn limits(&self) -> OutboundLimits {
        self.limits
    }

    /// A request to `url`, to be sent with [`Outbound::send`] (which checks it).
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url)
    }

    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Whether `url` may be called: http or https, a host, and (for an
    /// IP literal) an address the policy allows. Names are checked when they resolve.
    pub fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        check_url(&self.policy, url)
    }

    /// Sends the request and reads its whole answer, up to the cap.
    pub async fn send(&self, request: RequestBuilder) -> Result<Answer, OutboundError> {
        let request = request
            .build()
            .map_err(|_| OutboundError::BadUrl("is not valid"))?;
        self.check_url(request.url())?;
        let response = self.client.execute(request).await.map_err(classify)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, self.limits.response_bytes_max).await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The wait an answer asks for in `Retry-After`, when it gives one in seconds.
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A uniformly random duration up to `bound` ("full jitter", for backoffs). The randomness
/// is the standard library's: each `RandomState` is freshly keyed, so hashing nothing gives
/// a new value.
pub fn jitter(bound: Duration) -> Duration {
    use std::hash::BuildHasher;
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new().hash_one(());
    Duration::from_nanos(random % nanos)
}

fn check_url(policy: &OutboundPolicy, url: &Url) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::BadUrl("must be http or https"));
    }
    match url.host() {
        None => Err(OutboundError::BadUrl("has no host")),
        Some(url::Host::Ipv4(ip)) => policy
            .check_ip(IpAddr::V4(ip))
            .map_err(OutboundError::Refused),
        Some(url::Host::Ipv6(ip)) => policy
            .check_ip(IpAddr::V6(ip))
            .map_err(OutboundError::Refused),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, OutboundError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(OutboundError::TooLarge { limit: cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > cap {
            return Err(OutboundError::TooLarge { limit: cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong, from reqwest's error and the policy's own errors in its source chain.
fn classify(err: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return OutboundError::Refused(*refusal);
        }
        if let Some(refused) = cause.downcast_ref::<OutboundError>() {
            return refused.clone();
        }
        source = cause.source();
    }
    if err.is_timeout() {
        OutboundError::Timeout
    } else if err.is_connect() {
        OutboundError::Connect
    } else {
        OutboundError::Failed
    }
}

/// Follows at most `REDIRECTS_MAX` redirects, each on the host the call started on (so a
/// credential never follows a redirect elsewhere) and each to an address the policy allows.
fn redirects(policy: Arc<OutboundPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > REDIRECTS_MAX {
            return attempt.error(OutboundError::Redirect("too many redirects"));
        }
        let same_host = attempt
            .previous()
            .first()
            .is_some_and(|first| first.host_str() == attempt.url().host_str());
        if !same_host {
            return attempt.error(OutboundError::Redirect("it leads to another host"));
        }
        match check_url(&policy, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(err) => attempt.error(err),
        }
    })
}

/// Resolves names with the system resolver and keeps only the addresses the policy allows;
/// a name left with none fails with the refusal of its first address.
struct FilteringResolver {
    policy: Arc<OutboundPolicy>,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = Refusal::Unresolved;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.check_ip(addr.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        if refusal == Refusal::Unresolved {
                            refusal = why;
                        }
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                tracing::warn!(component = "outbound", host = %host, reason = %refusal, "name refused");
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
