//! One run from start to end: its closure in order, each step's attempts, the step's outputs
//! for the steps after it, and the terminal status whatever happens.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};
use vigil_automation::{
    Attempt, AttemptOutcome, DEADLINE_PASSED, INTERRUPTED, Redactor, RenderContext,
    RenderedRequest, RunStatus, Step, TaskDefinition, TaskRef, backoff, bounded_error,
    is_retryable,
};
use vigil_domain::{TenantId, Timestamp};
use vigil_service::{PlannedStep, Principal, RunPlan, SECRET_MASK};

use crate::{Runner, Stop, call};

/// How a run's steps ended.
enum Ended {
    /// Every step succeeded; the last one, to be written with the run's end.
    Succeeded(Step),
    /// A step failed; written with the run's end.
    Failed(Step, String),
    /// The run is not running any more (canceled, reaped): nothing more to write.
    Gone,
}

/// Where one step got to.
enum StepEnd {
    Done(Map<String, Value>),
    Failed(String),
    Gone,
    /// The store did not take a step's record: the run ends failed (if it can be written).
    StoreFailed(String),
}

/// What a step's write says about the run: `None` to go on; the run is gone (canceled,
/// reaped); or the store failed, and the run should end failed rather than stay running.
fn saved(written: vigil_service::ServiceResult<bool>, step: &Step) -> Option<Ended> {
    match written {
        Ok(true) => None,
        Ok(false) => Some(Ended::Gone),
        Err(err) => Some(Ended::Failed(
            step.clone(),
            format!("the store did not take the step's record: {err}"),
        )),
    }
}

fn first_step(plan: &RunPlan) -> Option<Step> {
    plan.steps.first().map(|s| new_step(0, s))
}

fn new_step(seq: usize, planned: &PlannedStep) -> Step {
    Step {
        seq: u32::try_from(seq).unwrap_or(u32::MAX),
        task: planned.task.task_ref(),
        status: RunStatus::Running,
        started_at: Timestamp::now(),
        finished_at: None,
        attempts: Vec::new(),
        outputs: None,
        error: None,
    }
}

impl Runner {
    /// Executes the run if it is still queued, and writes how it ended.
    pub(crate) async fn execute(&self, tenant: TenantId, id: uuid::Uuid) {
        let principal = Principal::system_in(tenant);
        let services = &self.inner().services;
        let plan = match services.run_plan(&principal, id).await {
            Ok(Some(plan)) => plan,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(component = "runner", run = %id, error = %err, "could not plan the run");
                let error = format!("could not prepare the run: {err}");
                let _ = services
                    .finish_run(&principal, id, RunStatus::Failed, Some(&error), None)
                    .await;
                return;
            }
        };
        let Some(first) = first_step(&plan) else {
            return;
        };
        // Not when this run already executes here (submitted twice), and not once the pool
        // stops: a run not started stays queued for the next start.
        let Some(mut stop) = self.watch(id) else {
            return;
        };
        match services
            .start_run(&principal, id, &self.inner().node, &first)
            .await
        {
            Ok(true) => {}
            Ok(false) => return self.forget(id),
            Err(err) => {
                tracing::error!(component = "runner", run = %id, error = %err, "could not start the run");
                return self.forget(id);
            }
        }
        let left = plan.run.deadline.unix_micros() - Timestamp::now().unix_micros();
        let left = Duration::from_micros(u64::try_from(left).unwrap_or(0));
        let ended = tokio::select! {
            ended = tokio::time::timeout(left, self.steps(&principal, &plan, first)) => match ended {
                Ok(Ended::Succeeded(last)) => Some((RunStatus::Succeeded, None, Some(last))),
                Ok(Ended::Failed(step, error)) => Some((RunStatus::Failed, Some(error), Some(step))),
                Ok(Ended::Gone) => None,
                Err(_) => Some((RunStatus::TimedOut, Some(DEADLINE_PASSED.to_owned()), None)),
            },
            stopped = stop.wait_for(|s| *s != Stop::Go) => match stopped.map(|s| *s) {
                Ok(Stop::Canceled) => None,
                _ => Some((RunStatus::Failed, Some(INTERRUPTED.to_owned()), None)),
            },
        };
        if let Some((status, error, last)) = ended {
            let written = services
                .finish_run(&principal, id, status, error.as_deref(), last.as_ref())
                .await;
            if let Err(err) = written {
                tracing::error!(component = "runner", run = %id, error = %err, "could not write the run's end");
            }
        }
        self.forget(id);
    }

    async fn steps(&self, principal: &Principal, plan: &RunPlan, first: Step) -> Ended {
        let services = &self.inner().services;
        // Every instance's secrets, whichever step they belong to: a secret one step's answer
        // echoes may travel on in a dependency's output to another step's request.
        let redactor = Redactor::new(
            plan.steps.iter().flat_map(|s| s.secrets.values()),
            SECRET_MASK,
        );
        let mut outputs: HashMap<TaskRef, Map<String, Value>> = HashMap::new();
        let mut step = first;
        for (seq, planned) in plan.steps.iter().enumerate() {
            if seq > 0 {
                step = new_step(seq, planned);
                if let Some(ended) = saved(
                    services.save_step(principal, plan.run.id, &step).await,
                    &step,
                ) {
                    return ended;
                }
            }
            let ctx = context(&plan.run.input, planned, &outputs);
            match self
                .step(principal, plan.run.id, planned, &ctx, &redactor, &mut step)
                .await
            {
                StepEnd::Done(found) => {
                    step.outputs = Some(redact_map(&redactor, &found));
                    step.status = RunStatus::Succeeded;
                    step.finished_at = Some(Timestamp::now());
                    outputs.insert(planned.task.task_ref(), found);
                }
                StepEnd::Failed(error) => {
                    let error = bounded_error(&redactor.text(&error, SECRET_MASK));
                    step.error = Some(error.clone());
                    step.status = RunStatus::Failed;
                    step.finished_at = Some(Timestamp::now());
                    return Ended::Failed(step, format!("{}: {error}", planned.task.task_ref()));
                }
                StepEnd::Gone => return Ended::Gone,
                StepEnd::StoreFailed(error) => return Ended::Failed(step, error),
            }
            if seq + 1 < plan.steps.len() {
                if let Some(ended) = saved(
                    services.save_step(principal, plan.run.id, &step).await,
                    &step,
                ) {
                    return ended;
                }
            }
        }
        Ended::Succeeded(step)
    }

    /// Every attempt of one step, until one succeeds, one fails for good, or the attempts
    /// are used up. Each retried attempt is written before the wait.
    async fn step(
        &self,
        principal: &Principal,
        run: uuid::Uuid,
        planned: &PlannedStep,
        ctx: &RenderContext,
        redactor: &Redactor,
        step: &mut Step,
    ) -> StepEnd {
        let definition = &planned.task.definition;
        let (real, shown) = match render(definition, ctx) {
            Ok(both) => both,
            Err(error) => return StepEnd::Failed(error),
        };
        let Some(base) = planned.instance.base_url.as_ref() else {
            return StepEnd::Failed("the instance has no base URL".into());
        };
        let url = match call::url(base.as_str(), &real) {
            Ok(url) => url,
            Err(error) => return StepEnd::Failed(error),
        };
        // What the history keeps: the masked rendering, on its own URL (a secret may sit in
        // the query or the path), and anything a secret still reaches redacted.
        let shown_url = call::url(base.as_str(), &shown).ok();
        let request = redactor.value(&call::recorded(shown_url.as_ref(), &shown), SECRET_MASK);
        let attempts = definition.retry.max_attempts.max(1);
        let timeout = Duration::from_millis(u64::from(definition.timeout_ms));
        for n in 1..=attempts {
            let started_at = Timestamp::now();
            let pass = self.inner().gates.enter(&planned.instance).await;
            let sent = match self.inner().send(url.clone(), &real, timeout).await {
                Ok(sent) => sent,
                Err(error) => return StepEnd::Failed(error),
            };
            drop(pass);
            let mut attempt = Attempt {
                n,
                started_at,
                duration_ms: u64::try_from(sent.elapsed.as_millis()).unwrap_or(u64::MAX),
                request: request.clone(),
                status_code: sent.status,
                error: sent.error.clone(),
                retry_in_ms: None,
            };
            let verdict = judge(definition, &sent);
            if let Err(error) = &verdict {
                attempt.error = Some(redactor.text(error, SECRET_MASK));
            }
            let retry = verdict.is_err()
                && n < attempts
                && is_retryable(definition.request.method, sent.outcome);
            if !retry {
                step.attempts.push(attempt);
                return match verdict {
                    Ok(outputs) => StepEnd::Done(outputs),
                    Err(error) => StepEnd::Failed(error),
                };
            }
            let wait = backoff(
                &definition.retry,
                n + 1,
                vigil_outbound::retry_after(&sent.headers),
                vigil_outbound::jitter,
            );
            attempt.retry_in_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            step.attempts.push(attempt);
            match self.inner().services.save_step(principal, run, step).await {
                Ok(true) => {}
                Ok(false) => return StepEnd::Gone,
                Err(err) => {
                    return StepEnd::StoreFailed(format!(
                        "the store did not take the step's record: {err}"
                    ));
                }
            }
            tokio::time::sleep(wait).await;
        }
        StepEnd::Failed("no attempt was made".into())
    }
}

/// The request for the wire and the one for the history (secrets masked).
fn render(
    definition: &TaskDefinition,
    ctx: &RenderContext,
) -> Result<(RenderedRequest, RenderedRequest), String> {
    let real = definition.request.render(ctx).map_err(|e| e.to_string())?;
    let masked = RenderContext {
        secrets: ctx
            .secrets
            .keys()
            .map(|k| (k.clone(), Value::String(SECRET_MASK.to_owned())))
            .collect(),
        input: ctx.input.clone(),
        config: ctx.config.clone(),
        deps: ctx.deps.clone(),
    };
    let shown = definition
        .request
        .render(&masked)
        .map_err(|e| e.to_string())?;
    Ok((real, shown))
}

/// What a step's templates see: the run's input, its instance's config and secrets, and the
/// outputs of the tasks it depends on, by task name.
fn context(
    input: &Value,
    planned: &PlannedStep,
    outputs: &HashMap<TaskRef, Map<String, Value>>,
) -> RenderContext {
    let deps = planned
        .task
        .depends_on
        .iter()
        .filter_map(|dep| {
            let found = outputs.get(dep)?;
            Some((dep.task.to_string(), Value::Object(found.clone())))
        })
        .collect();
    RenderContext {
        input: input.clone(),
        secrets: planned.secrets.clone(),
        config: Value::Object(planned.instance.config.clone()),
        deps,
    }
}

/// Whether the answer is a success, and its outputs.
fn judge(definition: &TaskDefinition, sent: &call::Sent) -> Result<Map<String, Value>, String> {
    let status = match sent.outcome {
        AttemptOutcome::Status(status) => status,
        _ => {
            return Err(sent
                .error
                .clone()
                .unwrap_or_else(|| "the request failed".into()));
        }
    };
    let success = if definition.success_status.is_empty() {
        (200..300).contains(&status)
    } else {
        definition.success_status.contains(&status)
    };
    if !success {
        return Err(format!("HTTP {status}"));
    }
    if definition.outputs.is_empty() {
        return Ok(Map::new());
    }
    let answer: Value = serde_json::from_slice(&sent.body)
        .map_err(|_| format!("HTTP {status}, but the answer is not JSON"))?;
    definition
        .outputs
        .iter()
        .map(|output| Ok((output.name.clone(), output.extract(&answer)?)))
        .collect()
}

fn redact_map(redactor: &Redactor, map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), redactor.value(v, SECRET_MASK)))
        .collect()
}
