//! Runs: one execution of a task and its dependency closure against one instance, with the
//! history of every step and attempt. What a run is, when an attempt is tried again, how long
//! a run may take, and how secrets are kept out of what is recorded. No I/O.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_domain::{ParseError, Timestamp};

use crate::{HttpMethod, RetryPolicy, TaskDefinition, TaskRef};

/// Longest a run may take from being accepted to its end, whatever its tasks declare.
pub const RUN_DEADLINE_MAX: Duration = Duration::from_secs(60 * 60);
/// What a run's deadline grants on top of its steps' own budgets: the wait in the queue and
/// for its instance's limits.
pub const RUN_QUEUE_GRACE: Duration = Duration::from_secs(5 * 60);
/// Largest input a run accepts, as JSON text.
pub const RUN_INPUT_BYTES_MAX: usize = 64 * 1024;
/// Largest text of one recorded error.
pub const RUN_ERROR_LEN_MAX: usize = 1_024;
/// The error of a run that was running when its process stopped.
pub const INTERRUPTED: &str = "interrupted: the process running it stopped";
/// The error of a run that passed its deadline.
pub const DEADLINE_PASSED: &str = "the run passed its deadline";

/// Where a run is. Steps use the same words (never `queued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
    TimedOut,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "status",
                    "expected queued, running, succeeded, failed, canceled or timed_out",
                )
            })
    }

    /// Whether the run is over: nothing changes it any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// Someone asked for it (`POST …/runs`).
    Manual,
    /// A rerun of an earlier run.
    Rerun,
    /// The check of an instance (`POST /instances/{id}/test`) through the app's health task.
    Test,
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Manual => "manual",
            RunTrigger::Rerun => "rerun",
            RunTrigger::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        [RunTrigger::Manual, RunTrigger::Rerun, RunTrigger::Test]
            .into_iter()
            .find(|trigger| trigger.as_str() == raw)
            .ok_or_else(|| ParseError::new("trigger", "expected manual, rerun or test"))
    }
}

/// One try of one step's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first try.
    pub n: u32,
    #[serde(with = "rfc3339")]
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// The request as sent, its secrets masked.
    pub request: Value,
    /// The answer's status, when there was one.
    pub status_code: Option<u16>,
    /// Why the attempt failed: a status or a fixed reason, never the other side's text.
    pub error: Option<String>,
    /// How long the runner waited before the next attempt, when there was one.
    pub retry_in_ms: Option<u64>,
}

/// Attempts are kept as JSON; their instants as RFC 3339 text.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use vigil_domain::Timestamp;

    pub(super) fn serialize<S: Serializer>(at: &Timestamp, out: S) -> Result<S::Ok, S::Error> {
        out.collect_str(at)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(input)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One task of a run's closure, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 0 for the first task of the closure.
    pub seq: u32,
    pub task: TaskRef,
    pub status: RunStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub attempts: Vec<Attempt>,
    /// The step's outputs by name (secrets masked), once it succeeded.
    pub outputs: Option<serde_json::Map<String, Value>>,
    pub error: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: uuid::Uuid,
    pub task: TaskRef,
    pub instance: uuid::Uuid,
    pub input: Value,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    /// The run this one reruns.
    pub rerun_of: Option<uuid::Uuid>,
    /// Who asked for it (the audit trail's actor).
    pub requested_by: String,
    /// The node running (or that ran) it.
    pub runner: Option<String>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Past it the run is `timed_out`, wherever it is.
    pub deadline: Timestamp,
    /// In order; empty in lists.
    pub steps: Vec<Step>,
}

impl Run {
    /// A new queued run of `task` (whose closure is `closure`, in order) on `instance`.
    pub fn queued(
        task: TaskRef,
        instance: uuid::Uuid,
        input: Value,
        trigger: RunTrigger,
        requested_by: String,
        closure: &[&TaskDefinition],
    ) -> Self {
        let now = Timestamp::now();
        let budget = closure
            .iter()
            .map(|task| step_budget(task))
            .fold(RUN_QUEUE_GRACE, |sum, step| sum.saturating_add(step))
            .min(RUN_DEADLINE_MAX);
        let budget_s = i64::try_from(budget.as_secs()).unwrap_or(i64::MAX);
        Self {
            id: uuid::Uuid::now_v7(),
            task,
            instance,
            input,
            status: RunStatus::Queued,
            trigger,
            rerun_of: None,
            requested_by,
            runner: None,
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            deadline: now.plus_seconds(budget_s),
            steps: Vec::new(),
        }
    }
}

/// The longest one step may take: every attempt at its timeout and every backoff at its
/// longest.
pub fn step_budget(task: &TaskDefinition) -> Duration {
    let attempts = task.retry.max_attempts.max(1);
    let requests = Duration::from_millis(u64::from(task.timeout_ms)) * attempts;
    let waits = Duration::from_millis(u64::from(task.retry.max_backoff_ms)) * (attempts - 1);
    requests.saturating_add(waits)
}

/// Which runs a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub task: Option<TaskRef>,
    pub instance: Option<uuid::Uuid>,
    pub status: Option<RunStatus>,
}

impl RunFilter {
    /// The reference semantics of the filter (the stores' queries agree with it).
    pub fn matches(&self, run: &Run) -> bool {
        self.task.as_ref().is_none_or(|task| *task == run.task)
            && self.instance.is_none_or(|id| id == run.instance)
            && self.status.is_none_or(|status| status == run.status)
    }
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// No connection was made: the request never reached the other side.
    ConnectFailed,
    /// No complete answer in time (or the connection broke mid-answer).
    TimedOut,
    /// An answer with this status.
    Status(u16),
    /// Anything that trying again will not change (the outbound policy, an oversize answer).
    Refused,
}

/// Whether a failed attempt is tried again: a connection that never opened and a 429 for any
/// method (the request was not processed), a timeout or a 5xx only for idempotent methods (it
/// may have been). Never on other answers, which trying again will not change.
pub fn is_retryable(method: HttpMethod, outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::ConnectFailed | AttemptOutcome::Status(429) => true,
        AttemptOutcome::TimedOut => method.is_idempotent(),
        AttemptOutcome::Status(status) => (500..600).contains(&status) && method.is_idempotent(),
        AttemptOutcome::Refused => false,
    }
}

/// The wait before attempt `next` (2 for the first retry): a `Retry-After` the answer gave,
/// else `jitter` of the attempt's exponential bound (the runner draws a uniformly random
/// duration up to it: "full jitter"). Never longer than the policy's maximum.
pub fn backoff(
    policy: &RetryPolicy,
    next: u32,
    retry_after: Option<Duration>,
    jitter: impl FnOnce(Duration) -> Duration,
) -> Duration {
    let max = Duration::from_millis(u64::from(policy.max_backoff_ms));
    if let Some(wait) = retry_after {
        return wait.min(max);
    }
    let doublings = next.saturating_sub(2).min(30);
    let bound = u64::from(policy.initial_backoff_ms)
        .saturating_mul(1 << doublings)
        .min(u64::from(policy.max_backoff_ms));
    jitter(Duration::from_millis(bound)).min(max)
}

/// Keeps secrets out of what a run records: every occurrence of a secret's text (and of its
/// JSON form, for a secret that is not a string) in a recorded value is replaced by the mask.
/// The other side may echo a credential back (httpbin's `/headers` does); the history never
/// holds it.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Value>, mask: &str) -> Self {
        let mut needles: Vec<String> = secrets
            .into_iter()
            .map(|value| match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .filter(|text| !text.is_empty() && text != mask)
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        needles.sort_by_key(|text| std::cmp::Reverse(text.len()));
        needles.dedup();
        Self { needles }
    }

    pub fn text(&self, text: &str, mask: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), mask);
            }
        }
        out
    }

    /// `value` with every string (keys included) redacted.
    pub fn value(&self, value: &Value, mask: &str) -> Value {
        if self.needles.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(text) => Value::String(self.text(text, mask)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.value(v, mask)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, v)| (self.text(key, mask), self.value(v, mask)))
                    .collect(),
            ),
            Value::Number(_) => {
                let text = value.to_string();
                if self.needles.contains(&text) {
                    Value::String(mask.to_owned())
                } else {
                    value.clone()
                }
            }
            other => other.clone(),
        }
    }
}

/// `text` cut to `RUN_ERROR_LEN_MAX` bytes on a character boundary.
pub fn bounded_error(text: &str) -> String {
    if text.len() <= RUN_ERROR_LEN_MAX {
        return text.to_owned();
    }
    let mut end = RUN_ERROR_LEN_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_read_back_and_only_queued_and_running_are_open() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()).unwrap(), status);
            let text = serde_json::to_value(status).unwrap();
            assert_eq!(text, json!(status.as_str()));
        }
        assert!(!RunStatus::Queued.is_terminal());
        assert!(!RunStatus::Running.is_terminal());
        assert!(RunStatus::TimedOut.is_terminal());
        assert!(RunStatus::parse("done").is_err());
    }

    #[test]
    fn only_what_did_not_reach_the_other_side_is_retried_for_a_post() {
        use AttemptOutcome::*;
        let (get, post) = (HttpMethod::Get, HttpMethod::Post);
        assert!(is_retryable(post, ConnectFailed));
        assert!(is_retryable(post, Status(429)));
        assert!(!is_retryable(post, TimedOut));
        assert!(!is_retryable(post, Status(503)));
        assert!(is_retryable(get, TimedOut));
        assert!(is_retryable(get, Status(503)));
        assert!(!is_retryable(get, Status(404)));
        assert!(!is_retryable(get, Status(401)));
        assert!(!is_retryable(get, Refused));
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        let whole = |bound: Duration| bound;
        assert_eq!(backoff(&policy, 2, None, whole).as_millis(), 100);
        assert_eq!(backoff(&policy, 3, None, whole).as_millis(), 200);
        assert_eq!(backoff(&policy, 9, None, whole).as_millis(), 1_000);
        assert_eq!(
            backoff(&policy, 2, None, |_| Duration::ZERO),
            Duration::ZERO
        );
        let asked = Some(Duration::from_millis(300));
        assert_eq!(backoff(&policy, 2, asked, whole).as_millis(), 300);
        let too_long = Some(Duration::from_secs(3_600));
        assert_eq!(backoff(&policy, 2, too_long, whole).as_millis(), 1_000);
    }

    #[test]
    fn secrets_are_masked_wherever_they_appear_in_a_record() {
        let secrets = [json!("s3cret-token"), json!(424_242), json!("s3cret")];
        let redactor = Redactor::new(&secrets, "***");
        let echoed = json!({
            "headers": {"Authorization": "Bearer s3cret-token", "X-Pin": "424242"},
            "s3cret": [424_242, "ok"],
        });
        assert_eq!(
            redactor.value(&echoed, "***"),
            json!({
                "headers": {"Authorization": "Bearer ***", "X-Pin": "***"},
                "***": ["***", "ok"],
            })
        );
        assert!(format!("{redactor:?}").contains("3 secrets"));
        assert!(!format!("{redactor:?}").contains("s3cret"));
    }

    #[test]
    fn a_deadline_covers_every_attempt_of_every_step_and_is_bounded() {
        let task: TaskDefinition = serde_json::from_value(json!({
            "description": null,
            "input_schema": {"type": "object"},
            "request": {"method": "GET", "path": "/x"},
            "retry": {"max_attempts": 3, "initial_backoff_ms": 100, "max_backoff_ms": 2_000},
            "timeout_ms": 1_000,
        }))
        .unwrap();
        assert_eq!(step_budget(&task), Duration::from_secs(7));
        let app = crate::AppName::parse("a").unwrap();
        let name = crate::TaskName::parse("t").unwrap();
        let run = Run::queued(
            TaskRef::new(app, name),
            uuid::Uuid::nil(),
            json!({}),
            RunTrigger::Manual,
            "tester".into(),
            &[&task, &task],
        );
        let span = run.deadline.unix_micros() - run.created_at.unix_micros();
        assert_eq!(span / 1_000_000, (RUN_QUEUE_GRACE.as_secs() + 14) as i64);
        assert_eq!(run.status, RunStatus::Queued);
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let long = "é".repeat(RUN_ERROR_LEN_MAX);
        let cut = bounded_error(&long);
        assert!(cut.len() <= RUN_ERROR_LEN_MAX + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_error("short"), "short");
    }
}
