//! Moving apps between tenants and Vigils: export to a `vigil.apps/v1` bundle (by name, no id,
//! no instance, no secret), and import all or nothing — parse, check the digest, validate
//! every app and task, resolve every dependency in the target tenant or the bundle, check the
//! combined graph, diff, and only then one transaction. Any diagnostic and nothing changes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use vigil_automation::{
    AppDefinition, AppLogo, AppName, BUNDLE_APPS_MAX, BUNDLE_FORMAT_MAJOR, Bundle, BundleApp,
    BundleLogo, BundleTask, DependencyGraph, Names, TaskDefinition, TaskName, TaskRef,
};
use vigil_domain::{PageRequest, Permission, TenantId, Timestamp};
use vigil_store::{AppImport, Task};

use crate::{Principal, ServiceError, ServiceResult, Services};

/// What to do with an app the target tenant already has (and that differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Refuse the import (a `conflict` diagnostic).
    Fail,
    /// Keep the target's app; the bundle's is not imported.
    Skip,
    /// Replace the target's app and its tasks with the bundle's.
    Overwrite,
    /// Import the bundle's app under a free name (`name-2`, `name-3` …).
    Rename,
}

impl ImportMode {
    pub fn parse(raw: &str) -> Result<Self, vigil_domain::ParseError> {
        match raw {
            "fail" => Ok(Self::Fail),
            "skip" => Ok(Self::Skip),
            "overwrite" => Ok(Self::Overwrite),
            "rename" => Ok(Self::Rename),
            _ => Err(vigil_domain::ParseError::new(
                "mode",
                "expected fail, skip, overwrite or rename",
            )),
        }
    }
}

/// What kind of problem a diagnostic reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticKind {
    Parse,
    Validation,
    Dependency,
    Conflict,
}

impl DiagnosticKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Parse => "parse",
            DiagnosticKind::Validation => "validation",
            DiagnosticKind::Dependency => "dependency",
            DiagnosticKind::Conflict => "conflict",
        }
    }
}

/// One problem with a bundle, and the app and task it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub app: Option<String>,
    pub task: Option<String>,
    pub message: String,
}

/// What an import does (or would do) to an app or a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    Create,
    Update,
    Unchanged,
    Skip,
    Conflict,
    /// A task of an overwritten app that the bundle no longer holds.
    Remove,
}

impl Planned {
    pub fn as_str(self) -> &'static str {
        match self {
            Planned::Create => "create",
            Planned::Update => "update",
            Planned::Unchanged => "unchanged",
            Planned::Skip => "skip",
            Planned::Conflict => "conflict",
            Planned::Remove => "remove",
        }
    }
}

/// One app of the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDiff {
    /// As the bundle names it.
    pub name: String,
    /// As the target tenant will name it (another name in `rename` mode).
    pub imported_as: String,
    pub change: Planned,
    pub tasks: Vec<(String, Planned)>,
}

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppImportReport {
    pub dry_run: bool,
    /// Whether the import was written (never with diagnostics, never on a dry run).
    pub applied: bool,
    pub apps: Vec<AppDiff>,
    pub diagnostics: Vec<Diagnostic>,
}

fn diagnostic(
    kind: DiagnosticKind,
    app: &str,
    task: Option<&str>,
    message: impl Into<String>,
) -> Diagnostic {
    Diagnostic {
        kind,
        app: (!app.is_empty()).then(|| app.to_owned()),
        task: task.map(str::to_owned),
        message: message.into(),
    }
}

/// The definition with `depends_on` written as the full `app/task` references it resolves to.
fn normalized(definition: &TaskDefinition, deps: &[TaskRef]) -> TaskDefinition {
    TaskDefinition {
        depends_on: deps.iter().map(ToString::to_string).collect(),
        ..definition.clone()
    }
}

/// An app of the bundle, parsed and with its target name.
struct Incoming {
    bundle_name: String,
    name: AppName,
    definition: AppDefinition,
    logo: Option<AppLogo>,
    tasks: Vec<(TaskName, TaskDefinition, Vec<TaskRef>)>,
    change: Planned,
}

impl Services {
    /// The named apps (every app of the tenant when `names` is empty) as a bundle. Readers
    /// and up.
    pub async fn export_apps(
        &self,
        principal: &Principal,
        names: &[AppName],
    ) -> ServiceResult<Bundle> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        if names.len() > BUNDLE_APPS_MAX {
            return Err(ServiceError::invalid(
                "apps",
                format!("a bundle holds at most {BUNDLE_APPS_MAX} apps"),
            ));
        }
        let names = if names.is_empty() {
            self.all_app_names(tenant).await?
        } else {
            names.to_vec()
        };
        let mut apps = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let app = match self.store.get_app(tenant, name).await {
                Err(vigil_store::StoreError::NotFound) => {
                    return Err(ServiceError::invalid(
                        format!("apps/{i}"),
                        format!("no app named {name}"),
                    ));
                }
                other => other?,
            };
            let logo = self.store.app_logo(tenant, name).await?;
            let tasks = self.store.list_tasks(tenant, name).await?;
            apps.push(BundleApp {
                name: name.to_string(),
                secret_fields: app.definition.secret_fields().into_iter().collect(),
                definition: app.definition,
                logo: logo.as_ref().map(BundleLogo::from_logo),
                tasks: tasks
                    .iter()
                    .map(|t| BundleTask {
                        name: t.name.to_string(),
                        definition: normalized(&t.definition, &t.depends_on),
                    })
                    .collect(),
            });
        }
        Ok(Bundle::new(Timestamp::now().to_string(), apps))
    }

    async fn all_app_names(&self, tenant: TenantId) -> ServiceResult<Vec<AppName>> {
        let mut names = Vec::new();
        let mut page = PageRequest::first(vigil_domain::PAGE_SIZE_MAX);
        loop {
            let found = self.store.list_apps(tenant, page).await?;
            names.extend(found.items.into_iter().map(|a| a.name));
            match found.next_cursor {
                Some(cursor) => page = PageRequest::new(Some(page.limit()), Some(cursor)),
                None => break,
            }
            if names.len() > BUNDLE_APPS_MAX {
                return Err(ServiceError::invalid(
                    "apps",
                    format!(
                        "the tenant has more than {BUNDLE_APPS_MAX} apps; name the ones to export"
                    ),
                ));
            }
        }
        Ok(names)
    }

    /// Imports a bundle (`text`, its JSON) as `mode` says: everything or nothing. With
    /// diagnostics, or on a dry run, nothing is written and the report says what would be.
    /// Analysts and up.
    pub async fn import_apps(
        &self,
        principal: &Principal,
        text: &[u8],
        mode: ImportMode,
        dry_run: bool,
    ) -> ServiceResult<AppImportReport> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let mut report = AppImportReport {
            dry_run,
            applied: false,
            apps: Vec::new(),
            diagnostics: Vec::new(),
        };
        let Some(bundle) = parse_bundle(text, &mut report.diagnostics)? else {
            return Ok(report);
        };
        let mut incoming = self
            .incoming(tenant, &bundle, mode, &mut report.diagnostics)
            .await?;
        let removed = self.diff(tenant, &mut incoming, mode, &mut report).await?;
        self.check_graph(tenant, &incoming, &removed, &mut report.diagnostics)
            .await?;
        if !report.diagnostics.is_empty() || dry_run {
            return Ok(report);
        }
        let import = plan(incoming, removed);
        match self
            .store
            .import_apps(tenant, &principal.change(), import)
            .await
        {
            Ok(()) => {}
            Err(vigil_store::StoreError::Invalid(err)) => {
                report.diagnostics.push(diagnostic(
                    DiagnosticKind::Dependency,
                    "",
                    None,
                    err.reason(),
                ));
                return Ok(report);
            }
            Err(vigil_store::StoreError::InUse { what, dependants }) => {
                let message = format!("{what} is in use by {}", dependants.join(", "));
                report
                    .diagnostics
                    .push(diagnostic(DiagnosticKind::Dependency, "", None, message));
                return Ok(report);
            }
            Err(err) => return Err(err.into()),
        }
        report.applied = true;
        Ok(report)
    }

    /// The bundle's apps parsed and checked one by one, with their target names.
    async fn incoming(
        &self,
        tenant: TenantId,
        bundle: &Bundle,
        mode: ImportMode,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> ServiceResult<Vec<Incoming>> {
        let mut taken: BTreeSet<String> = bundle.apps.iter().map(|a| a.name.clone()).collect();
        let mut renames: BTreeMap<String, String> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for app in &bundle.apps {
            if !seen.insert(app.name.clone()) {
                diagnostics.push(diagnostic(
                    DiagnosticKind::Validation,
                    &app.name,
                    None,
                    "the bundle holds this app twice",
                ));
            }
            let Ok(name) = AppName::parse(&app.name) else {
                continue;
            };
            if mode == ImportMode::Rename && self.app_exists(tenant, &name).await? {
                let new = self.free_name(tenant, &app.name, &taken).await?;
                taken.insert(new.clone());
                renames.insert(app.name.clone(), new);
            }
        }
        let mut out = Vec::new();
        for app in &bundle.apps {
            if let Some(parsed) = incoming_app(app, &renames, diagnostics) {
                out.push(parsed);
            }
        }
        Ok(out)
    }

    async fn app_exists(&self, tenant: TenantId, name: &AppName) -> ServiceResult<bool> {
        match self.store.get_app(tenant, name).await {
            Ok(_) => Ok(true),
            Err(vigil_store::StoreError::NotFound) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn free_name(
        &self,
        tenant: TenantId,
        name: &str,
        taken: &BTreeSet<String>,
    ) -> ServiceResult<String> {
        for n in 2..1_000 {
            let candidate = format!("{name}-{n}");
            let Ok(parsed) = AppName::parse(&candidate) else {
                break;
            };
            if !taken.contains(&candidate) && !self.app_exists(tenant, &parsed).await? {
                return Ok(candidate);
            }
        }
        Err(ServiceError::invalid(
            "mode",
            format!("no free name to rename {name} to"),
        ))
    }

    /// Decides each app's and task's change against the target; answers the tasks that go.
    async fn diff(
        &self,
        tenant: TenantId,
        incoming: &mut [Incoming],
        mode: ImportMode,
        report: &mut AppImportReport,
    ) -> ServiceResult<Vec<TaskRef>> {
        let mut removed = Vec::new();
        for app in incoming.iter_mut() {
            let (tasks, gone) = self.diff_app(tenant, app, mode).await?;
            if app.change == Planned::Update {
                removed.extend(gone.into_iter().map(|t| TaskRef::new(app.name.clone(), t)));
            }
            if app.change == Planned::Conflict {
                report.diagnostics.push(diagnostic(
                    DiagnosticKind::Conflict,
                    &app.bundle_name,
                    None,
                    format!(
                        "the tenant has an app named {} that differs; import with mode skip, overwrite or rename",
                        app.name
                    ),
                ));
            }
            report.apps.push(AppDiff {
                name: app.bundle_name.clone(),
                imported_as: app.name.to_string(),
                change: app.change,
                tasks,
            });
        }
        Ok(removed)
    }

    /// One app's change (set on `app`), its tasks' changes, and the target's tasks the
    /// bundle no longer holds.
    async fn diff_app(
        &self,
        tenant: TenantId,
        app: &mut Incoming,
        mode: ImportMode,
    ) -> ServiceResult<(Vec<(String, Planned)>, Vec<TaskName>)> {
        let target = match self.store.get_app(tenant, &app.name).await {
            Ok(found) => found,
            Err(vigil_store::StoreError::NotFound) => {
                app.change = Planned::Create;
                let tasks = app
                    .tasks
                    .iter()
                    .map(|(n, _, _)| (n.to_string(), Planned::Create));
                return Ok((tasks.collect(), Vec::new()));
            }
            Err(err) => return Err(err.into()),
        };
        let existing: BTreeMap<TaskName, Task> = self
            .store
            .list_tasks(tenant, &app.name)
            .await?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let logo = self.store.app_logo(tenant, &app.name).await?;
        let mut tasks: Vec<(String, Planned)> = app
            .tasks
            .iter()
            .map(|(name, definition, _)| {
                let change = match existing.get(name) {
                    None => Planned::Create,
                    Some(t) if normalized(&t.definition, &t.depends_on) == *definition => {
                        Planned::Unchanged
                    }
                    Some(_) => Planned::Update,
                };
                (name.to_string(), change)
            })
            .collect();
        let gone = dependants_first(
            &existing,
            existing
                .keys()
                .filter(|n| !app.tasks.iter().any(|(t, _, _)| t == *n))
                .cloned()
                .collect(),
        );
        let same = target.definition == app.definition
            && (app.logo.is_none() || app.logo == logo)
            && gone.is_empty()
            && tasks.iter().all(|(_, c)| *c == Planned::Unchanged);
        app.change = match mode {
            _ if same => Planned::Unchanged,
            ImportMode::Skip => Planned::Skip,
            ImportMode::Overwrite => Planned::Update,
            ImportMode::Fail | ImportMode::Rename => Planned::Conflict,
        };
        match app.change {
            Planned::Update => tasks.extend(gone.iter().map(|n| (n.to_string(), Planned::Remove))),
            Planned::Skip | Planned::Conflict => {
                for (_, change) in &mut tasks {
                    *change = app.change;
                }
            }
            _ => {}
        }
        Ok((tasks, gone))
    }

    /// Every dependency of what is written resolves (in the bundle's written apps, or in the
    /// target), each task's templates read only what those offer, and the graph the import
    /// leaves is acyclic with nothing depending on a removed task.
    async fn check_graph(
        &self,
        tenant: TenantId,
        incoming: &[Incoming],
        removed: &[TaskRef],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> ServiceResult<()> {
        let written: BTreeMap<&AppName, &Incoming> = incoming
            .iter()
            .filter(|a| matches!(a.change, Planned::Create | Planned::Update))
            .map(|a| (&a.name, a))
            .collect();
        for app in written.values() {
            for (task, definition, deps) in &app.tasks {
                let Some(outputs) = self
                    .outputs_of(tenant, &written, app, task, deps, diagnostics)
                    .await?
                else {
                    continue;
                };
                let names = Names {
                    app: &app.definition,
                    deps: outputs,
                };
                if let Err(err) = definition.validate(&names) {
                    let (app, task) = (&app.bundle_name, Some(task.as_str()));
                    diagnostics.push(diagnostic(
                        DiagnosticKind::Validation,
                        app,
                        task,
                        err.to_string(),
                    ));
                }
            }
        }
        let mut edges: Vec<(TaskRef, TaskRef)> = self
            .store
            .task_edges(tenant)
            .await?
            .into_iter()
            .filter(|(from, _)| !written.contains_key(&from.app))
            .collect();
        for app in written.values() {
            for (task, _, deps) in &app.tasks {
                let me = TaskRef::new(app.name.clone(), task.clone());
                edges.extend(deps.iter().map(|d| (me.clone(), d.clone())));
            }
        }
        graph_problems(edges, removed, diagnostics);
        Ok(())
    }

    /// The outputs of each dependency of `task` by task name, or `None` (with a diagnostic
    /// each) when one resolves neither in the bundle's written apps nor in the target.
    async fn outputs_of(
        &self,
        tenant: TenantId,
        written: &BTreeMap<&AppName, &Incoming>,
        app: &Incoming,
        task: &TaskName,
        deps: &[TaskRef],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> ServiceResult<Option<BTreeMap<TaskName, BTreeSet<String>>>> {
        let names = |d: &TaskDefinition| d.outputs.iter().map(|o| o.name.clone()).collect();
        let mut outputs = BTreeMap::new();
        let mut missing = false;
        for dep in deps {
            let found = match written.get(&dep.app) {
                Some(other) => other
                    .tasks
                    .iter()
                    .find(|(t, _, _)| *t == dep.task)
                    .map(|(_, d, _)| names(d)),
                None => match self.store.get_task(tenant, dep).await {
                    Ok(t) => Some(names(&t.definition)),
                    Err(vigil_store::StoreError::NotFound) => None,
                    Err(err) => return Err(err.into()),
                },
            };
            match found {
                Some(found) => {
                    outputs.insert(dep.task.clone(), found);
                }
                None => {
                    missing = true;
                    let message = format!(
                        "depends on {dep}, which is neither in the bundle nor in this tenant"
                    );
                    let (app, task) = (&app.bundle_name, Some(task.as_str()));
                    diagnostics.push(diagnostic(DiagnosticKind::Dependency, app, task, message));
                }
            }
        }
        Ok((!missing).then_some(outputs))
    }
}

/// `gone` (tasks of one app) ordered so that each comes before what it depends on: removed
/// in this order, no task is refused for a dependant that goes too.
fn dependants_first(existing: &BTreeMap<TaskName, Task>, mut gone: Vec<TaskName>) -> Vec<TaskName> {
    let mut ordered = Vec::with_capacity(gone.len());
    while !gone.is_empty() {
        let needed = |name: &TaskName| {
            gone.iter().any(|other| {
                other != name
                    && existing.get(other).is_some_and(|t| {
                        t.depends_on
                            .iter()
                            .any(|d| d.task == *name && d.app == t.app)
                    })
            })
        };
        let next = gone.iter().position(|name| !needed(name)).unwrap_or(0);
        ordered.push(gone.remove(next));
    }
    ordered
}

/// A task the import removes that something still depends on, and a cycle, in the graph the
/// import would leave.
fn graph_problems(
    edges: Vec<(TaskRef, TaskRef)>,
    removed: &[TaskRef],
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (from, to) in &edges {
        if removed.contains(to) && !removed.contains(from) {
            diagnostics.push(diagnostic(
                DiagnosticKind::Dependency,
                to.app.as_str(),
                Some(to.task.as_str()),
                format!("the bundle no longer holds {to}, but {from} depends on it"),
            ));
        }
    }
    if let Some(cycle) = vigil_store::cycle_in(edges) {
        let message = format!("the import would close a dependency cycle: {cycle}");
        diagnostics.push(diagnostic(DiagnosticKind::Dependency, "", None, message));
    }
}

/// The bundle, or `None` with a `parse` diagnostic. An unknown major version is refused.
fn parse_bundle(text: &[u8], diagnostics: &mut Vec<Diagnostic>) -> ServiceResult<Option<Bundle>> {
    let value: Value = match serde_json::from_slice(text) {
        Ok(value) => value,
        Err(err) => {
            diagnostics.push(diagnostic(
                DiagnosticKind::Parse,
                "",
                None,
                format!("not JSON: line {} column {}", err.line(), err.column()),
            ));
            return Ok(None);
        }
    };
    let bundle: Bundle = match serde_path_to_error::deserialize(value) {
        Ok(bundle) => bundle,
        Err(err) => {
            diagnostics.push(diagnostic(
                DiagnosticKind::Parse,
                "",
                None,
                format!("{}: {}", err.path(), err.inner()),
            ));
            return Ok(None);
        }
    };
    match bundle.format_major() {
        Some(BUNDLE_FORMAT_MAJOR) => {}
        Some(major) => {
            return Err(ServiceError::invalid(
                "format",
                format!(
                    "format major version {major} is unknown; this Vigil reads vigil.apps/v{BUNDLE_FORMAT_MAJOR}"
                ),
            ));
        }
        None => return Err(ServiceError::invalid("format", "expected vigil.apps/v1")),
    }
    if bundle.apps.len() > BUNDLE_APPS_MAX {
        return Err(ServiceError::TooLarge(format!(
            "a bundle holds at most {BUNDLE_APPS_MAX} apps"
        )));
    }
    if !bundle.digest_matches() {
        diagnostics.push(diagnostic(
            DiagnosticKind::Parse,
            "",
            None,
            "the digest does not match the apps: the bundle was changed after its export",
        ));
        return Ok(None);
    }
    Ok(Some(bundle))
}

/// One bundled app parsed and checked on its own, its references renamed; `None` (with a
/// diagnostic) when its name does not parse.
fn incoming_app(
    app: &BundleApp,
    renames: &BTreeMap<String, String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Incoming> {
    let target = renames.get(&app.name).unwrap_or(&app.name);
    let name = match AppName::parse(target) {
        Ok(name) => name,
        Err(err) => {
            diagnostics.push(diagnostic(
                DiagnosticKind::Validation,
                &app.name,
                None,
                format!("name: {}", err.reason()),
            ));
            return None;
        }
    };
    let invalid = |task: Option<&str>, message: String| {
        diagnostic(DiagnosticKind::Validation, &app.name, task, message)
    };
    if let Err(err) = app.definition.validate() {
        diagnostics.push(invalid(None, err.to_string()));
    }
    let logo = app.logo.as_ref().and_then(|logo| match logo.to_logo() {
        Ok(logo) => Some(logo),
        Err(err) => {
            diagnostics.push(invalid(None, err.to_string()));
            None
        }
    });
    let original = AppName::parse(&app.name).unwrap_or_else(|_| name.clone());
    let tasks = incoming_tasks(app, &original, renames, diagnostics);
    Some(Incoming {
        bundle_name: app.name.clone(),
        name,
        definition: app.definition.clone(),
        logo,
        tasks,
        change: Planned::Create,
    })
}

/// The tasks of a bundled app, parsed, their dependencies resolved against the app's bundle
/// name and renamed as the import renames apps.
fn incoming_tasks(
    app: &BundleApp,
    original: &AppName,
    renames: &BTreeMap<String, String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(TaskName, TaskDefinition, Vec<TaskRef>)> {
    let invalid = |task: &str, message: String| {
        diagnostic(DiagnosticKind::Validation, &app.name, Some(task), message)
    };
    let mut tasks = Vec::new();
    let mut seen = BTreeSet::new();
    for task in &app.tasks {
        let Ok(task_name) = TaskName::parse(&task.name) else {
            diagnostics.push(invalid(&task.name, "name: not a valid task name".into()));
            continue;
        };
        if !seen.insert(task_name.clone()) {
            diagnostics.push(invalid(&task.name, "the app holds this task twice".into()));
            continue;
        }
        match task.definition.dependencies(original) {
            Ok(deps) => {
                let deps: Vec<TaskRef> = deps
                    .into_iter()
                    .map(|d| {
                        match renames
                            .get(d.app.as_str())
                            .and_then(|n| AppName::parse(n).ok())
                        {
                            Some(renamed) => TaskRef::new(renamed, d.task),
                            None => d,
                        }
                    })
                    .collect();
                let definition = normalized(&task.definition, &deps);
                tasks.push((task_name, definition, deps));
            }
            Err(err) => diagnostics.push(invalid(&task.name, err.to_string())),
        }
    }
    tasks
}

/// The writes of an import: apps, then tasks with every task after what it depends on, then
/// what goes.
fn plan(incoming: Vec<Incoming>, removed: Vec<TaskRef>) -> AppImport {
    let written: Vec<Incoming> = incoming
        .into_iter()
        .filter(|a| matches!(a.change, Planned::Create | Planned::Update))
        .collect();
    let mut pending: BTreeMap<TaskRef, (TaskDefinition, Vec<TaskRef>)> = BTreeMap::new();
    let mut import = AppImport {
        removed,
        ..AppImport::default()
    };
    for app in written {
        for (task, definition, deps) in app.tasks {
            pending.insert(TaskRef::new(app.name.clone(), task), (definition, deps));
        }
        import.apps.push((app.name, app.definition, app.logo));
    }
    let graph = DependencyGraph::new(
        pending
            .iter()
            .flat_map(|(me, (_, deps))| deps.iter().map(move |d| (me.clone(), d.clone()))),
    );
    let mut done = BTreeSet::new();
    let keys: Vec<TaskRef> = pending.keys().cloned().collect();
    for key in keys {
        for step in graph
            .closure_in_order(&key)
            .unwrap_or_else(|| vec![key.clone()])
        {
            if done.insert(step.clone()) {
                if let Some((definition, deps)) = pending.remove(&step) {
                    import.tasks.push((step, definition, deps));
                }
            }
        }
    }
    import
}
