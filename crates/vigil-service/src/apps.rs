//! Apps and their tasks: definitions checked in full before they are saved (schemas,
//! templates and every name they read, JSONPaths, dependencies and the tenant's graph), the
//! reads a builder needs, and a dry run that renders the request a task would send. Readers
//! (viewer and up) see definitions; analysts and tenant admins write them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use vigil_automation::{
    AppDefinition, AppName, CompiledSchema, DefinitionError, Names, OutputKind, RenderContext,
    RenderedRequest, TaskDefinition, TaskName, TaskRef,
};
use vigil_domain::{PageRequest, Permission};
use vigil_store::{App, Page, Task};

use crate::{Principal, ServiceError, ServiceResult, Services};

impl From<DefinitionError> for ServiceError {
    fn from(err: DefinitionError) -> Self {
        ServiceError::invalid(err.field, err.reason)
    }
}

/// What a secret reads as in a dry run.
pub const SECRET_MASK: &str = "********";

/// What a dry run of a task found: it is valid, and the request it would send for the
/// given input (secrets masked, config and dependency outputs as placeholders).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedTask {
    pub depends_on: Vec<TaskRef>,
    pub request: Option<RenderedRequest>,
}

impl Services {
    pub async fn put_app(
        &self,
        principal: &Principal,
        name: AppName,
        definition: AppDefinition,
        logo: Option<Vec<u8>>,
    ) -> ServiceResult<(App, bool)> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        definition.validate()?;
        let logo = match logo {
            Some(bytes) if bytes.len() > vigil_automation::APP_LOGO_BYTES_MAX => {
                return Err(ServiceError::TooLarge(format!(
                    "a logo is at most {} bytes",
                    vigil_automation::APP_LOGO_BYTES_MAX
                )));
            }
            Some(bytes) => Some(vigil_automation::AppLogo::sniff(bytes)?),
            None => None,
        };
        let change = principal.change();
        Ok(self
            .store
            .put_app(tenant, &change, &name, definition, logo)
            .await?)
    }

    /// The app's logo; `NotFound` when it has none.
    pub async fn app_logo(
        &self,
        principal: &Principal,
        name: &AppName,
    ) -> ServiceResult<vigil_automation::AppLogo> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        self.store
            .app_logo(tenant, name)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn get_app(&self, principal: &Principal, name: &AppName) -> ServiceResult<App> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_app(tenant, name).await?)
    }

    pub async fn list_apps(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<App>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_apps(tenant, page).await?)
    }

    /// Removes the app and its tasks; refused (naming them) while another app's task
    /// depends on one of its tasks.
    pub async fn delete_app(&self, principal: &Principal, name: &AppName) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let change = principal.change();
        Ok(self.store.delete_app(tenant, &change, name).await?)
    }

    /// Creates or replaces a task after checking it whole: its own fields, the names its
    /// templates read (the app's config and secrets, its dependencies' outputs), that every
    /// dependency exists, and — inside the store's transaction — that the graph stays acyclic.
    pub async fn put_task(
        &self,
        principal: &Principal,
        task: TaskRef,
        definition: TaskDefinition,
    ) -> ServiceResult<(Task, bool)> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let depends_on = self.check_task(tenant, &task, &definition).await?;
        let change = principal.change();
        Ok(self
            .store
            .put_task(
                tenant, &change, &task.app, &task.task, definition, depends_on,
            )
            .await?)
    }

    /// Everything `put_task` checks, without saving; with an `input`, it must fit the input
    /// schema and the answer holds the request the task would send for it.
    pub async fn verify_task(
        &self,
        principal: &Principal,
        task: TaskRef,
        definition: TaskDefinition,
        input: Option<Value>,
    ) -> ServiceResult<VerifiedTask> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        let depends_on = self.check_task(tenant, &task, &definition).await?;
        let edges = self.store.task_edges(tenant).await?;
        if let Some(cycle) = vigil_store::cycle_with(edges, &task, &depends_on) {
            return Err(ServiceError::invalid(
                "depends_on",
                format!("would close a dependency cycle: {cycle}"),
            ));
        }
        let request = match input {
            None => None,
            Some(input) => {
                let app = self.store.get_app(tenant, &task.app).await?;
                Some(
                    self.dry_run(tenant, &app, &definition, &depends_on, input)
                        .await?,
                )
            }
        };
        Ok(VerifiedTask {
            depends_on,
            request,
        })
    }

    async fn dry_run(
        &self,
        tenant: vigil_domain::TenantId,
        app: &App,
        definition: &TaskDefinition,
        depends_on: &[TaskRef],
        input: Value,
    ) -> ServiceResult<RenderedRequest> {
        CompiledSchema::compile("input_schema", &definition.input_schema)?
            .check("input", &input, false)?;
        let secrets = app
            .definition
            .secret_fields()
            .into_iter()
            .map(|name| (name, Value::String(SECRET_MASK.to_owned())))
            .collect();
        let config = app
            .definition
            .config_fields()
            .unwrap_or_default()
            .into_iter()
            .map(|name| {
                let shown = format!("<config.{name}>");
                (name, Value::String(shown))
            })
            .collect();
        let mut deps = serde_json::Map::new();
        for dep in depends_on {
            let task = self.store.get_task(tenant, dep).await?;
            let outputs = task
                .definition
                .outputs
                .iter()
                .map(|o| {
                    let shown = format!("<deps.{}.{}>", dep.task, o.name);
                    (o.name.clone(), Value::String(shown))
                })
                .collect();
            deps.insert(dep.task.to_string(), Value::Object(outputs));
        }
        let ctx = RenderContext {
            input,
            secrets,
            config: Value::Object(config),
            deps,
        };
        Ok(definition.request.render(&ctx)?)
    }

    /// The definition's own checks and its names, with every dependency resolved and read.
    async fn check_task(
        &self,
        tenant: vigil_domain::TenantId,
        task: &TaskRef,
        definition: &TaskDefinition,
    ) -> ServiceResult<Vec<TaskRef>> {
        let app = self.store.get_app(tenant, &task.app).await?;
        let depends_on = definition.dependencies(&task.app)?;
        let mut deps: BTreeMap<TaskName, BTreeSet<String>> = BTreeMap::new();
        for (i, dep) in depends_on.iter().enumerate() {
            if dep == task {
                return Err(ServiceError::invalid(
                    format!("depends_on/{i}"),
                    format!("would close a dependency cycle: {task} → {task}"),
                ));
            }
            let found = match self.store.get_task(tenant, dep).await {
                Ok(found) => found,
                Err(vigil_store::StoreError::NotFound) => {
                    return Err(ServiceError::invalid(
                        format!("depends_on/{i}"),
                        format!("{dep} does not exist"),
                    ));
                }
                Err(err) => return Err(err.into()),
            };
            let outputs = found.definition.outputs.iter().map(|o| o.name.clone());
            deps.insert(dep.task.clone(), outputs.collect());
        }
        definition.validate(&Names {
            app: &app.definition,
            deps,
        })?;
        Ok(depends_on)
    }

    pub async fn get_task(&self, principal: &Principal, task: &TaskRef) -> ServiceResult<Task> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_task(tenant, task).await?)
    }

    pub async fn list_tasks(
        &self,
        principal: &Principal,
        app: &AppName,
    ) -> ServiceResult<Vec<Task>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_tasks(tenant, app).await?)
    }

    /// The task's outputs, all or of one kind.
    pub async fn task_outputs(
        &self,
        principal: &Principal,
        task: &TaskRef,
        kind: Option<OutputKind>,
    ) -> ServiceResult<Vec<vigil_automation::Output>> {
        let task = self.get_task(principal, task).await?;
        Ok(task
            .definition
            .outputs
            .into_iter()
            .filter(|o| kind.is_none_or(|kind| o.kind == kind))
            .collect())
    }

    /// Refused (naming them) while another task depends on it.
    pub async fn delete_task(&self, principal: &Principal, task: &TaskRef) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let change = principal.change();
        Ok(self.store.delete_task(tenant, &change, task).await?)
    }

    /// What deleting the task would break: the tasks that depend on it directly.
    pub async fn task_dependants(
        &self,
        principal: &Principal,
        task: &TaskRef,
    ) -> ServiceResult<Vec<TaskRef>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.task_dependants(tenant, task).await?)
    }
}
