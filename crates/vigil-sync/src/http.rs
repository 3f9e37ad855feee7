//! Calls to a source, through the one outbound policy (`vigil-outbound`): retries that
//! respect the source — exponential backoff with full jitter, `Retry-After` on 429/503, no
//! retry on an answer that will not change (4xx other than 408/429), so wrong credentials
//! never become a retry storm — and a budget of requests per cycle. An error says what
//! happened (a status, a fixed reason), never what the source wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use vigil_outbound::{
    Outbound, OutboundError, RequestBuilder, StatusCode, header::HeaderMap, jitter, retry_after,
};

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
/// Most requests (pages, logins, listings) one cycle of one connector makes by default; past
/// it the cycle fails and its cursor stays at the last committed page.
pub const PAGES_PER_CYCLE_MAX_DEFAULT: u32 = 10_000;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: RETRY_ATTEMPTS_MAX_DEFAULT,
            initial: RETRY_INITIAL_DEFAULT,
            cap: RETRY_CAP_DEFAULT,
        }
    }
}

/// Why talking to a source failed. Messages never carry credentials or the source's text.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An answer that retrying will not change (bad credentials, a rejected query).
    #[error("{source_name} answered {status}: {reason}")]
    Refused {
        source_name: &'static str,
        status: u16,
        /// Fixed text: the status's reason phrase, or what Vigil made of the answer.
        reason: &'static str,
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
    /// The outbound policy or its caps stopped the call.
    #[error("{source_name}: {error}")]
    Outbound {
        source_name: &'static str,
        error: OutboundError,
    },
    /// The cycle used up its request budget.
    #[error(
        "{source_name}: more than {max} requests in one cycle; the cursor stays at the last committed page"
    )]
    TooManyPages { source_name: &'static str, max: u32 },
}

/// A source's HTTP side for one cycle: the outbound client, the retry policy and the
/// cycle's request budget. Cheap to clone; clones share the budget.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    outbound: Outbound,
    retry: RetryPolicy,
    budget: Arc<Budget>,
}

#[derive(Debug)]
struct Budget {
    used: AtomicU32,
    max: u32,
}

impl Http {
    pub(crate) fn new(outbound: Outbound, retry: RetryPolicy, pages_max: u32) -> Self {
        Self {
            outbound,
            retry,
            budget: Arc::new(Budget {
                used: AtomicU32::new(0),
                max: pages_max,
            }),
        }
    }

    pub(crate) fn get(&self, url: &str) -> RequestBuilder {
        self.outbound.get(url)
    }

    pub(crate) fn post(&self, url: &str) -> RequestBuilder {
        self.outbound.post(url)
    }

    /// POSTs `body` as JSON and answers the JSON reply. `build` adds the source's headers
    /// (credentials) to each attempt.
    pub(crate) async fn post_json(
        &self,
        source_name: &'static str,
        build: impl Fn() -> RequestBuilder,
        body: &Value,
    ) -> Result<Value, SourceError> {
        self.fetch(source_name, || build().json(body))
            .await
            .map(|(_, value)| value)
    }

    /// Sends the request `build` makes (once per attempt) and answers the reply's headers and
    /// JSON body, retrying per the policy. Counts one request against the cycle's budget.
    pub(crate) async fn fetch(
        &self,
        source_name: &'static str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<(HeaderMap, Value), SourceError> {
        let used = self.budget.used.fetch_add(1, Ordering::Relaxed);
        if used >= self.budget.max {
            return Err(SourceError::TooManyPages {
                source_name,
                max: self.budget.max,
            });
        }
        let policy = self.retry;
        let mut bound = policy.initial;
        let mut last = String::new();
        for attempt in 1..=policy.attempts_max.max(1) {
            let wait = match self.outbound.send(build()).await {
                Ok(answer) if answer.status.is_success() => {
                    return match serde_json::from_slice::<Value>(&answer.body) {
                        Ok(value) => Ok((answer.headers, value)),
                        // serde's message may quote the body: say only that it is not JSON.
                        Err(_) => Err(SourceError::Malformed("not JSON".into(), source_name)),
                    };
                }
                Ok(answer) => {
                    let status = answer.status;
                    let retryable = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    if !retryable {
                        return Err(SourceError::Refused {
                            source_name,
                            status: status.as_u16(),
                            reason: status.canonical_reason().unwrap_or("refused"),
                        });
                    }
                    last = format!("HTTP {}", status.as_u16());
                    retry_after(&answer.headers).unwrap_or_else(|| jitter(bound))
                }
                Err(error) if error.is_transient() => {
                    last = error.to_string();
                    jitter(bound)
                }
                Err(error) => return Err(SourceError::Outbound { source_name, error }),
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
}
