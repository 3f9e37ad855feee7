//! Runs: asking for one (the input checked against the task's schema first), reading the
//! history, canceling, rerunning, and testing an instance. The runner itself is an engine
//! behind the `TaskRunner` port (`vigil-runner` implements it, the binary wires it); what it
//! stores goes through the engine-only use cases at the end of this module, callable by
//! `Principal::system_in` alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use vigil_automation::{
    AppName, CompiledSchema, DependencyGraph, Health, Instance, RUN_INPUT_BYTES_MAX, Run,
    RunFilter, RunStatus, RunTrigger, Step, TaskRef,
};
use vigil_domain::{PageRequest, Permission, SourceUrl, TenantId, Timestamp};
use vigil_store::{App, Page, Task};

use crate::{Credential, Principal, ServiceError, ServiceResult, Services};

/// How often `test_instance` looks whether its health run is over.
const TEST_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The task runner as the use cases see it.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    /// Whether the queue takes another run now.
    fn has_room(&self) -> bool;
    /// Queues a stored, queued run. `Overloaded` when the queue is full.
    fn submit(&self, tenant: TenantId, run: uuid::Uuid) -> ServiceResult<()>;
    /// Stops the run if it is running in this process (its status is already written).
    fn cancel(&self, run: uuid::Uuid);
    /// GETs `url` through the outbound policy: its status, or why there was none.
    async fn probe(&self, url: &SourceUrl) -> Result<u16, String>;
}

/// Everything the runner needs for one run: the run, its closure in order with the instance
/// each step runs on, and the secrets of each instance (redacted in `Debug`).
pub struct RunPlan {
    pub run: Run,
    pub steps: Vec<PlannedStep>,
}

/// One task of a run's closure and where it runs.
pub struct PlannedStep {
    pub task: Task,
    pub app: App,
    pub instance: Instance,
    /// In clear, for the request only; never logged, stored or answered.
    pub secrets: Map<String, Value>,
}

impl std::fmt::Debug for RunPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} on {} (secrets: {:?})",
                    s.task.task_ref(),
                    s.instance.id,
                    s.secrets.keys().collect::<Vec<_>>()
                )
            })
            .collect();
        f.debug_struct("RunPlan")
            .field("run", &self.run.id)
            .field("steps", &steps)
            .finish()
    }
}

/// The tenant the runner acts in; anyone else is refused.
fn runner_tenant(principal: &Principal) -> ServiceResult<TenantId> {
    match (principal.credential(), principal.tenant()) {
        (Credential::System, Some(tenant)) => Ok(tenant),
        _ => Err(ServiceError::Forbidden(
            "only the task runner writes what a run did".into(),
        )),
    }
}

impl Services {
    /// The same services handing runs to `runner`.
    pub fn with_task_runner(mut self, runner: Arc<dyn TaskRunner>) -> Self {
        self.task_runner = Some(runner);
        self
    }

    fn task_runner(&self) -> ServiceResult<&dyn TaskRunner> {
        self.task_runner.as_deref().ok_or_else(|| {
            ServiceError::Unavailable("the task runner does not run in this process".into())
        })
    }

    /// The task's closure in order (dependencies first), each task read.
    async fn closure(&self, tenant: TenantId, task: &TaskRef) -> ServiceResult<Vec<Task>> {
        let graph = DependencyGraph::new(self.store.task_edges(tenant).await?);
        let order = graph
            .closure_in_order(task)
            .ok_or_else(|| ServiceError::Internal(format!("the graph of {task} has a cycle")))?;
        let mut tasks = Vec::with_capacity(order.len());
        for step in &order {
            tasks.push(self.store.get_task(tenant, step).await?);
        }
        Ok(tasks)
    }

    /// The instance each app of the closure runs on: the run's own for its app, the only
    /// enabled instance of any other app.
    async fn instances_for(
        &self,
        tenant: TenantId,
        own: &Instance,
        closure: &[Task],
    ) -> ServiceResult<BTreeMap<AppName, Instance>> {
        let mut chosen = BTreeMap::from([(own.app.clone(), own.clone())]);
        for task in closure {
            if chosen.contains_key(&task.app) {
                continue;
            }
            let mut enabled = Vec::new();
            let mut page = PageRequest::first(vigil_domain::PAGE_SIZE_MAX);
            loop {
                let found = self.store.list_instances(tenant, page).await?;
                enabled.extend(
                    found
                        .items
                        .into_iter()
                        .filter(|i| i.app == task.app && i.enabled),
                );
                match found.next_cursor {
                    Some(cursor) => page = PageRequest::new(Some(page.limit()), Some(cursor)),
                    None => break,
                }
            }
            if enabled.len() != 1 {
                return Err(ServiceError::invalid(
                    "instance",
                    format!(
                        "{} depends on app {}, which has {} enabled instances; a run needs exactly one",
                        task.task_ref(),
                        task.app,
                        enabled.len()
                    ),
                ));
            }
            chosen.insert(task.app.clone(), enabled.remove(0));
        }
        Ok(chosen)
    }

    /// Asks for a run of `task` on `instance` with `input` (checked against the task's input
    /// schema first): stored as queued and handed to the runner. Analysts and up.
    pub async fn request_run(
        &self,
        principal: &Principal,
        task: &TaskRef,
        instance: uuid::Uuid,
        input: Value,
    ) -> ServiceResult<Run> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let run = self
            .new_run(tenant, principal, task, instance, input, RunTrigger::Manual)
            .await?;
        self.queue(tenant, &principal.change(), run).await
    }

    async fn new_run(
        &self,
        tenant: TenantId,
        principal: &Principal,
        task: &TaskRef,
        instance: uuid::Uuid,
        input: Value,
        trigger: RunTrigger,
    ) -> ServiceResult<Run> {
        if input.to_string().len() > RUN_INPUT_BYTES_MAX {
            return Err(ServiceError::TooLarge(format!(
                "a run's input is at most {RUN_INPUT_BYTES_MAX} bytes of JSON"
            )));
        }
        let definition = self.store.get_task(tenant, task).await?;
        let instance = match self.store.get_instance(tenant, instance).await {
            Err(vigil_store::StoreError::NotFound) => {
                return Err(ServiceError::invalid("instance", "no such instance"));
            }
            other => other?,
        };
        if instance.app != task.app {
            return Err(ServiceError::invalid(
                "instance",
                format!(
                    "the instance belongs to app {}, not {}",
                    instance.app, task.app
                ),
            ));
        }
        if !instance.enabled {
            return Err(ServiceError::invalid(
                "instance",
                "the instance is disabled",
            ));
        }
        CompiledSchema::compile("input_schema", &definition.definition.input_schema)?
            .check("input", &input, false)?;
        let closure = self.closure(tenant, task).await?;
        self.instances_for(tenant, &instance, &closure).await?;
        let definitions: Vec<_> = closure.iter().map(|t| &t.definition).collect();
        Ok(Run::queued(
            task.clone(),
            instance.id,
            input,
            trigger,
            principal.actor(),
            &definitions,
        ))
    }

    /// Stores the run and hands it to the runner; refused (503) when the queue is full.
    async fn queue(
        &self,
        tenant: TenantId,
        change: &vigil_store::Change,
        run: Run,
    ) -> ServiceResult<Run> {
        let runner = self.task_runner()?;
        if !runner.has_room() {
            return Err(ServiceError::Overloaded(
                "too many runs are queued; retry shortly",
            ));
        }
        self.meter(tenant, vigil_domain::Meter::Runs, 1).await?;
        self.store.create_run(tenant, change, &run).await?;
        if let Err(err) = runner.submit(tenant, run.id) {
            let error = Some("the run queue was full");
            self.store
                .finish_run(
                    tenant,
                    run.id,
                    RunStatus::Failed,
                    error,
                    Timestamp::now(),
                    None,
                )
                .await?;
            return Err(err);
        }
        Ok(run)
    }

    /// The run with its steps. Viewers and up.
    pub async fn get_run(&self, principal: &Principal, id: uuid::Uuid) -> ServiceResult<Run> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_run(tenant, id).await?)
    }

    /// Runs, newest first, without their steps. Viewers and up.
    pub async fn list_runs(
        &self,
        principal: &Principal,
        filter: RunFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Run>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_runs(tenant, &filter, page).await?)
    }

    /// Cancels a queued or running run (`Conflict` once it is over) and stops it where it
    /// runs. Analysts and up.
    pub async fn cancel_run(&self, principal: &Principal, id: uuid::Uuid) -> ServiceResult<Run> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let run = self
            .store
            .cancel_run(tenant, &principal.change(), id, Timestamp::now())
            .await?;
        if let Some(runner) = self.task_runner.as_deref() {
            runner.cancel(id);
        }
        Ok(run)
    }

    /// A new run of the same task on the same instance with the same input. Analysts and up.
    pub async fn rerun(&self, principal: &Principal, id: uuid::Uuid) -> ServiceResult<Run> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let earlier = self.store.get_run(tenant, id).await?;
        let mut run = self
            .new_run(
                tenant,
                principal,
                &earlier.task,
                earlier.instance,
                earlier.input,
                RunTrigger::Rerun,
            )
            .await?;
        run.rerun_of = Some(earlier.id);
        self.queue(tenant, &principal.change(), run).await
    }

    /// Checks the instance — its app's health task as a run (trigger `test`), or a GET of
    /// its base URL — and stores what it found. Analysts and up.
    pub async fn test_instance(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> ServiceResult<Instance> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let instance = self.store.get_instance(tenant, id).await?;
        let app = self.store.get_app(tenant, &instance.app).await?;
        let result = match (&app.definition.health_task, &instance.base_url) {
            (Some(task), _) => self.health_run(tenant, principal, &instance, task).await?,
            (None, Some(url)) => match self.task_runner()?.probe(url).await {
                Ok(status) if status < 500 => Ok(()),
                Ok(status) => Err(format!("HTTP {status}")),
                Err(reason) => Err(reason),
            },
            (None, None) => {
                return Err(ServiceError::invalid(
                    "instance",
                    "neither a health task on its app nor a base URL to check",
                ));
            }
        };
        let now = Timestamp::now();
        let last_ok = instance.health.as_ref().and_then(|h| h.last_ok_at);
        let health = Health {
            ok: result.is_ok(),
            checked_at: now,
            last_ok_at: if result.is_ok() { Some(now) } else { last_ok },
            error: result.err().map(|e| vigil_automation::bounded_error(&e)),
        };
        self.store
            .set_instance_health(tenant, id, health.clone())
            .await?;
        Ok(Instance {
            health: Some(health),
            ..instance
        })
    }

    async fn health_run(
        &self,
        tenant: TenantId,
        principal: &Principal,
        instance: &Instance,
        task: &str,
    ) -> ServiceResult<Result<(), String>> {
        let name = vigil_automation::TaskName::parse(task)?;
        let task = TaskRef::new(instance.app.clone(), name);
        if let Err(vigil_store::StoreError::NotFound) = self.store.get_task(tenant, &task).await {
            return Err(ServiceError::invalid(
                "health_task",
                format!("the app's health task {task} does not exist"),
            ));
        }
        let input = Value::Object(Map::new());
        let run = self
            .new_run(
                tenant,
                principal,
                &task,
                instance.id,
                input,
                RunTrigger::Test,
            )
            .await?;
        let run = self.queue(tenant, &principal.change(), run).await?;
        let deadline = tokio::time::Instant::now()
            + Duration::from_micros(
                u64::try_from(run.deadline.unix_micros() - run.created_at.unix_micros())
                    .unwrap_or(0),
            );
        loop {
            let now = self.store.get_run(tenant, run.id).await?;
            if now.status.is_terminal() {
                return Ok(match now.status {
                    RunStatus::Succeeded => Ok(()),
                    status => Err(now
                        .error
                        .unwrap_or_else(|| format!("the health run {}", status.as_str()))),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Err(vigil_automation::DEADLINE_PASSED.to_owned()));
            }
            tokio::time::sleep(TEST_POLL_INTERVAL).await;
        }
    }
}

/// What only the runner calls.
impl Services {
    /// The run and everything needed to execute it, or `None` when it is not queued any
    /// more (canceled, taken by another node, over).
    pub async fn run_plan(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> ServiceResult<Option<RunPlan>> {
        let tenant = runner_tenant(principal)?;
        let run = self.store.get_run(tenant, id).await?;
        if run.status != RunStatus::Queued {
            return Ok(None);
        }
        let own = self.store.get_instance(tenant, run.instance).await?;
        let closure = self.closure(tenant, &run.task).await?;
        let instances = self.instances_for(tenant, &own, &closure).await?;
        let mut opened: BTreeMap<AppName, Map<String, Value>> = BTreeMap::new();
        let mut steps = Vec::with_capacity(closure.len());
        for task in closure {
            let instance = instances[&task.app].clone();
            if !opened.contains_key(&task.app) {
                let secrets = self.open_instance_secrets(tenant, &instance).await?;
                opened.insert(task.app.clone(), secrets);
            }
            steps.push(PlannedStep {
                app: self.store.get_app(tenant, &task.app).await?,
                secrets: opened[&task.app].clone(),
                instance,
                task,
            });
        }
        Ok(Some(RunPlan { run, steps }))
    }

    /// Queued → running here, with its first step; `false` when it is not queued any more.
    pub async fn start_run(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        runner: &str,
        first: &Step,
    ) -> ServiceResult<bool> {
        let tenant = runner_tenant(principal)?;
        Ok(self
            .store
            .start_run(tenant, id, runner, first.started_at, first)
            .await?)
    }

    /// Writes a step while the run is running; `false` when it is not (canceled, reaped).
    pub async fn save_step(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        step: &Step,
    ) -> ServiceResult<bool> {
        let tenant = runner_tenant(principal)?;
        Ok(self.store.save_step(tenant, id, step).await?)
    }

    /// Ends the run with `status`; `false` when it was over already.
    pub async fn finish_run(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        status: RunStatus,
        error: Option<&str>,
        last: Option<&Step>,
    ) -> ServiceResult<bool> {
        let tenant = runner_tenant(principal)?;
        let error = error.map(vigil_automation::bounded_error);
        Ok(self
            .store
            .finish_run(tenant, id, status, error.as_deref(), Timestamp::now(), last)
            .await?)
    }

    /// Ends the tenant's runs nobody will finish (see `RunRepo::reap_runs`) and answers the
    /// queued ones, oldest first, for this node to pick up.
    pub async fn reap_runs(
        &self,
        principal: &Principal,
        runner: Option<&str>,
        queued_max: u32,
    ) -> ServiceResult<(u64, Vec<uuid::Uuid>)> {
        let tenant = runner_tenant(principal)?;
        let ended = self
            .store
            .reap_runs(tenant, runner, Timestamp::now())
            .await?;
        let queued = if queued_max == 0 {
            Vec::new()
        } else {
            self.store.queued_runs(tenant, queued_max).await?
        };
        Ok((ended, queued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_debug_prints_secret_names_only() {
        use serde_json::json;
        use vigil_automation::{AppDefinition, AppName, InstanceName, TaskName};
        let now = Timestamp::now();
        let app = AppName::parse("echo").unwrap();
        let task: vigil_automation::TaskDefinition = serde_json::from_value(json!({
            "input_schema": {"type": "object"},
            "request": {"method": "GET", "path": "/x"}, "timeout_ms": 1000}))
        .unwrap();
        let task = Task {
            app: app.clone(),
            name: TaskName::parse("ok").unwrap(),
            definition: task,
            depends_on: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        let definition = AppDefinition {
            version: "1.0.0".into(),
            description: None,
            category: None,
            config_schema: json!({"type": "object"}),
            base_url_required: false,
            health_task: None,
        };
        let instance = Instance {
            id: uuid::Uuid::now_v7(),
            app: app.clone(),
            name: InstanceName::parse("e").unwrap(),
            base_url: None,
            config: Map::new(),
            secret_fields: ["key".to_owned()].into(),
            rate_limit_per_minute: None,
            concurrency_max: 1,
            enabled: true,
            health: None,
            created_at: now,
            updated_at: now,
        };
        let mut secrets = Map::new();
        secrets.insert("key".into(), json!("plan-secret-Xy7"));
        let run = Run::queued(
            task.task_ref(),
            instance.id,
            json!({}),
            RunTrigger::Manual,
            "t".into(),
            &[&task.definition],
        );
        let plan = RunPlan {
            run,
            steps: vec![PlannedStep {
                app: App {
                    id: uuid::Uuid::now_v7(),
                    name: app,
                    definition,
                    logo_type: None,
                    created_at: now,
                    updated_at: now,
                },
                task,
                instance,
                secrets,
            }],
        };
        let shown = format!("{plan:?}");
        assert!(
            shown.contains("secrets: [") && shown.contains("key"),
            "{shown}"
        );
        assert!(!shown.contains("plan-secret-Xy7"), "{shown}");
    }

    #[test]
    fn only_the_runner_in_a_tenant_writes_what_a_run_did() {
        let tenant = TenantId::generate();
        assert_eq!(
            runner_tenant(&Principal::system_in(tenant)).unwrap(),
            tenant
        );
        assert!(runner_tenant(&Principal::system()).is_err());
        assert!(runner_tenant(&Principal::cli_in(tenant)).is_err());
    }
}
