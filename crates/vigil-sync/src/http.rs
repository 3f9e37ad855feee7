//! Outbound HTTP with a timeout on every call and retries that respect the source: exponential
//! backoff with full jitter, `Retry-After` on 429/503, no retry on an answer that will not
//! change (4xx other than 408/429), so wrong credentials never become a retry storm.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// Longest one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a TCP/TLS connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts_max: u32,
    /// The first backoff's upper bound; each retry doubles it.
    pub initial: Duration,
    /// No backoff (or `Retry-After`) is longer than this.
    pub cap: Duration,
}

/// Attempts per request by default.
pub const RETRY_ATTEMPTS_MAX_DEFAULT: u32 = 5;
/// The first backoff's bound by default.
pub const RETRY_INITIAL_DEFAULT: Duration = Duration::from_secs(1);
/// The longest wait between attempts by default.
pub const RETRY_CAP_DEFAULT: Duration = Duration::from_secs(60);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: RETRY_ATTEMPTS_MAX_DEFAULT,
            initial: RETRY_INITIAL_DEFAULT,
            cap: RETRY_CAP_DEFAULT,
        }
    }
}

/// Why talking to a source failed. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An answer that retrying will not change (bad credentials, a rejected query).
    #[error("{source_name} answered {status}: {detail}")]
    Refused {
        source_name: &'static str,
        status: u16,
        detail: String,
    },
    /// Still failing after every attempt (5xx, 429, timeouts, connection errors).
    #[error("{source_name} unavailable after {attempts} attempts: {last}")]
    Unavailable {
        source_name: &'static str,
        attempts: u32,
        last: String,
    },
    /// A 200 whose body is not what the API documents.
    #[error("{source_name} answered something unexpected: {0}", source_name = .1)]
    Malformed(String, &'static str),
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initializes")
}

/// A uniformly random duration up to `bound` ("full jitter"). The randomness is the standard
/// library's: each `RandomState` is freshly keyed, so hashing nothing gives a new value.
fn jitter(bound: Duration) -> Duration {
    use std::hash::BuildHasher;
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new().hash_one(());
    Duration::from_nanos(random % nanos)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// POSTs `body` as JSON and answers the JSON reply, retrying per `policy`. `build` adds the
/// source's headers (credentials) to each attempt.
pub(crate) async fn post_json(
    source_name: &'static str,
    policy: RetryPolicy,
    build: impl Fn() -> reqwest::RequestBuilder,
    body: &Value,
) -> Result<Value, SourceError> {
    fetch(source_name, policy, || build().json(body))
        .await
        .map(|(_, value)| value)
}

/// Sends the request `build` makes (once per attempt) and answers the reply's headers and
/// JSON body, retrying per `policy`.
pub(crate) async fn fetch(
    source_name: &'static str,
    policy: RetryPolicy,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> Result<(reqwest::header::HeaderMap, Value), SourceError> {
    let mut bound = policy.initial;
    let mut last = String::new();
    for attempt in 1..=policy.attempts_max.max(1) {
        let wait = match build().send().await {
            Ok(response) if response.status().is_success() => {
                let headers = response.headers().clone();
                return match response.json::<Value>().await {
                    Ok(value) => Ok((headers, value)),
                    Err(err) => Err(SourceError::Malformed(
                        format!("not JSON: {err}"),
                        source_name,
                    )),
                };
            }
            Ok(response) => {
                let status = response.status();
                let retryable = status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT;
                let after = retry_after(&response);
                let detail: String = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                if !retryable {
                    return Err(SourceError::Refused {
                        source_name,
                        status: status.as_u16(),
                        detail,
                    });
                }
                last = format!("HTTP {}", status.as_u16());
                after.unwrap_or_else(|| jitter(bound))
            }
            // reqwest's errors name the URL, never the headers that carry credentials.
            Err(err) => {
                last = if err.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("request failed: {err}")
                };
                jitter(bound)
            }
        };
        if attempt < policy.attempts_max {
            let wait = wait.min(policy.cap);
            tracing::warn!(component = "sync", source_name, attempt, wait_ms = wait.as_millis() as u64, error = %last, "retrying");
            tokio::time::sleep(wait).await;
            bound = (bound * 2).min(policy.cap);
        }
    }
    Err(SourceError::Unavailable {
        source_name,
        attempts: policy.attempts_max.max(1),
        last,
    })
}
