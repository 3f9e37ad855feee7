//! What the store keeps of the automation layer: apps and their tasks, by name. Definitions
//! arrive checked (vigil-automation); inside its transaction the store checks what only it
//! can: that every dependency exists in the tenant and that the tenant's dependency graph
//! stays acyclic, and it refuses deletes that would leave a dependant dangling.

use std::collections::BTreeMap;

use async_trait::async_trait;
use vigil_automation::{
    AppDefinition, AppLogo, AppName, Health, Instance, TaskDefinition, TaskName, TaskRef,
};
use vigil_domain::{PageRequest, TenantId, Timestamp};

use crate::{Change, Page, StoreResult};

/// An app as stored. `id` orders the list and nothing else: apps are referred to by name.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub id: uuid::Uuid,
    pub name: AppName,
    pub definition: AppDefinition,
    /// The logo's media type, when it has one.
    pub logo_type: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A task as stored, with its dependencies resolved to `app/task`.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub app: AppName,
    pub name: TaskName,
    pub definition: TaskDefinition,
    pub depends_on: Vec<TaskRef>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Task {
    pub fn task_ref(&self) -> TaskRef {
        TaskRef::new(self.app.clone(), self.name.clone())
    }
}

/// What an import writes, in one transaction: apps (created or replaced, with their logo when
/// one comes), then tasks in dependency order (each task after what it depends on), then
/// the tasks that go (those of a replaced app the bundle no longer holds).
#[derive(Debug, Clone, Default)]
pub struct AppImport {
    pub apps: Vec<(AppName, AppDefinition, Option<AppLogo>)>,
    pub tasks: Vec<(TaskRef, TaskDefinition, Vec<TaskRef>)>,
    pub removed: Vec<TaskRef>,
}

#[async_trait]
pub trait AutomationRepo: Send + Sync {
    /// Writes the whole import or nothing: every write audited as its own put or delete
    /// would be; `Invalid` (`depends_on`) when a dependency is missing or the graph would
    /// close a cycle, `InUse` when a task that goes still has a dependant.
    async fn import_apps(
        &self,
        tenant: TenantId,
        change: &Change,
        import: AppImport,
    ) -> StoreResult<()>;
    /// Creates the app or replaces its definition (its tasks stay), and its logo when one
    /// comes (`None` keeps the stored one). Answers the stored app and whether it was created.
    async fn put_app(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &AppName,
        definition: AppDefinition,
        logo: Option<AppLogo>,
    ) -> StoreResult<(App, bool)>;
    /// The app's logo, if it has one.
    async fn app_logo(&self, tenant: TenantId, name: &AppName) -> StoreResult<Option<AppLogo>>;
    async fn get_app(&self, tenant: TenantId, name: &AppName) -> StoreResult<App>;
    /// Newest first.
    async fn list_apps(&self, tenant: TenantId, page: PageRequest) -> StoreResult<Page<App>>;
    /// Removes the app and its tasks. `InUse` naming the dependants while a task of another
    /// app depends on one of its tasks.
    async fn delete_app(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &AppName,
    ) -> StoreResult<()>;
    /// Creates the task or replaces its definition. `Invalid` (`depends_on`) when a
    /// dependency does not exist or the tenant's graph would close a cycle (named in order);
    /// `NotFound` when the app does not exist.
    async fn put_task(
        &self,
        tenant: TenantId,
        change: &Change,
        app: &AppName,
        name: &TaskName,
        definition: TaskDefinition,
        depends_on: Vec<TaskRef>,
    ) -> StoreResult<(Task, bool)>;
    async fn get_task(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Task>;
    /// The app's tasks, by name.
    async fn list_tasks(&self, tenant: TenantId, app: &AppName) -> StoreResult<Vec<Task>>;
    /// `InUse` naming the dependants while another task depends on it.
    async fn delete_task(
        &self,
        tenant: TenantId,
        change: &Change,
        task: &TaskRef,
    ) -> StoreResult<()>;
    /// The tasks that depend on `task` directly.
    async fn task_dependants(&self, tenant: TenantId, task: &TaskRef) -> StoreResult<Vec<TaskRef>>;
    /// Every dependency edge of the tenant: (task, what it depends on).
    async fn task_edges(&self, tenant: TenantId) -> StoreResult<Vec<(TaskRef, TaskRef)>>;

    /// Keeps a new instance with its sealed secrets (one per field). `Conflict` when the app
    /// has an instance of that name or the tenant has `INSTANCES_PER_TENANT_MAX`.
    async fn create_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Instance>;
    async fn get_instance(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Instance>;
    /// Newest first.
    async fn list_instances(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Instance>>;
    /// Replaces the instance's settings; `sealed` `Some` replaces all of its secrets, `None`
    /// keeps them.
    async fn update_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: Option<BTreeMap<String, Vec<u8>>>,
    ) -> StoreResult<Instance>;
    async fn delete_instance(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
    ) -> StoreResult<()>;
    /// The sealed secrets, by field, for whoever opens them (the service).
    async fn instance_secrets(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<BTreeMap<String, Vec<u8>>>;
    /// Records what a check of the instance found.
    async fn set_instance_health(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        health: Health,
    ) -> StoreResult<()>;
}

/// Whether the graph of `edges` with `task` depending on `depends_on` stays acyclic: the
/// cycle's text (`a/x → a/y → a/x`) when it does not.
pub fn cycle_with(
    edges: Vec<(TaskRef, TaskRef)>,
    task: &TaskRef,
    depends_on: &[TaskRef],
) -> Option<String> {
    let graph =
        vigil_automation::DependencyGraph::new(edges).with_task(task.clone(), depends_on.to_vec());
    cycle_text(&graph)
}

/// Whether the graph of `edges` is acyclic: the cycle's text (`a/x → a/y → a/x`) when not.
pub fn cycle_in(edges: Vec<(TaskRef, TaskRef)>) -> Option<String> {
    cycle_text(&vigil_automation::DependencyGraph::new(edges))
}

fn cycle_text(graph: &vigil_automation::DependencyGraph) -> Option<String> {
    vigil_automation::find_cycle(graph).map(|cycle| {
        cycle
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" → ")
    })
}
