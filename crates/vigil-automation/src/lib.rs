//! vigil-automation: what an app and its tasks are, pure and bounded. An app is an
//! integration definition (a config schema whose `writeOnly` fields are secrets); a task is
//! one request it can make: an input schema, a request template, the outputs read from the
//! answer by JSONPath, the tasks it depends on, and how it is retried. Everything a
//! definition holds is checked here before it is saved — schemas against the JSON Schema
//! meta-schema, templates parsed and every name they use resolved, paths parsed, the
//! dependency graph acyclic — so that nothing invalid reaches the store. No I/O.

mod bundle;
mod dag;
mod definition;
mod error;
mod instance;
mod logo;
mod names;
mod run;
mod schema;
mod template;

pub use bundle::{
    BUNDLE_APPS_MAX, BUNDLE_BYTES_MAX, BUNDLE_FORMAT, BUNDLE_FORMAT_MAJOR, Bundle, BundleApp,
    BundleLogo, BundleTask, canonical_json, digest,
};
pub use dag::{DependencyGraph, find_cycle};
pub use definition::{
    AppDefinition, DEPENDS_ON_MAX, HEADERS_MAX, HttpMethod, Names, OUTPUT_PATH_LEN_MAX,
    OUTPUTS_MAX, Output, OutputKind, OutputType, RETRY_ATTEMPTS_MAX, RenderedRequest,
    RequestTemplate, RetryPolicy, TIMEOUT_MS_DEFAULT, TIMEOUT_MS_MAX, TaskDefinition, TaskRefs,
    VERSION_LEN_MAX,
};
pub use error::DefinitionError;
pub use instance::{
    Health, INSTANCE_CONCURRENCY_DEFAULT, INSTANCE_CONCURRENCY_MAX, INSTANCE_CONFIG_BYTES_MAX,
    INSTANCE_RATE_PER_MINUTE_MAX, INSTANCES_PER_TENANT_MAX, Instance, InstanceName,
};
pub use logo::{APP_LOGO_BYTES_MAX, AppLogo};
pub use names::{AppName, TaskName, TaskRef};
pub use run::{
    Attempt, AttemptOutcome, DEADLINE_PASSED, INTERRUPTED, RUN_DEADLINE_MAX, RUN_ERROR_LEN_MAX,
    RUN_INPUT_BYTES_MAX, RUN_QUEUE_GRACE, Redactor, Run, RunFilter, RunStatus, RunTrigger, Step,
    backoff, bounded_error, is_retryable, step_budget,
};
pub use schema::{CompiledSchema, SCHEMA_BYTES_MAX, SchemaProblem};
pub use template::{
    RENDERED_LEN_MAX, RenderContext, TEMPLATE_FUEL_MAX, TEMPLATE_LEN_MAX, TEMPLATES_PER_TASK_MAX,
    Template,
};
