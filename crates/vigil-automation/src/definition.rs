//! Apps and tasks as they are stored: plain data (serde, kept as JSON by the store), and the
//! checks a definition passes before it is saved.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::properties;
use crate::{CompiledSchema, DefinitionError, TaskName, TaskRef, Template};

/// Most outputs one task declares.
pub const OUTPUTS_MAX: usize = 64;
/// Most tasks one task depends on directly.
pub const DEPENDS_ON_MAX: usize = 16;
/// Most headers (and most query parameters) one request template sets.
pub const HEADERS_MAX: usize = 32;
/// Most attempts a retry policy may ask for.
pub const RETRY_ATTEMPTS_MAX: u32 = 10;
/// A task's deadline per attempt when it names none, in milliseconds.
pub const TIMEOUT_MS_DEFAULT: u32 = 10_000;
/// Longest deadline per attempt, in milliseconds (five minutes).
pub const TIMEOUT_MS_MAX: u32 = 300_000;
/// Longest description or category, in characters.
const TEXT_LEN_MAX: usize = 2_000;
/// Longest app version, in bytes.
pub const VERSION_LEN_MAX: usize = 128;
/// Longest output JSONPath, in bytes.
pub const OUTPUT_PATH_LEN_MAX: usize = 1_024;
/// Deepest JSON body template.
const BODY_DEPTH_MAX: usize = 16;

/// What an app is: its version, what it is for, and the configuration an instance of it
/// takes (`config_schema`; a property with `"writeOnly": true` is a secret, sealed and
/// never returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppDefinition {
    pub version: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub config_schema: Value,
    pub base_url_required: bool,
    /// The task (of this app, taking `{}` as input) that checks an instance: what
    /// `POST /instances/{id}/test` runs. Without one, the test is a GET of the base URL.
    #[serde(default)]
    pub health_task: Option<String>,
}

impl AppDefinition {
    /// Checks the version (semver), the texts and the config schema.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        if self.version.len() > VERSION_LEN_MAX {
            return Err(DefinitionError::new(
                "version",
                format!("longer than {VERSION_LEN_MAX} bytes"),
            ));
        }
        semver::Version::parse(&self.version).map_err(|err| {
            DefinitionError::new("version", format!("not a semantic version (1.2.3): {err}"))
        })?;
        bounded_text("description", self.description.as_deref())?;
        bounded_text("category", self.category.as_deref())?;
        CompiledSchema::compile("config_schema", &self.config_schema)?;
        if let Some(task) = &self.health_task {
            crate::TaskName::parse(task)
                .map_err(|err| DefinitionError::new("health_task", err.reason().to_owned()))?;
        }
        Ok(())
    }

    /// The config fields marked `writeOnly`: the secrets an instance carries and templates
    /// may read as `secrets.<name>`.
    pub fn secret_fields(&self) -> BTreeSet<String> {
        properties(&self.config_schema)
            .map(|(secrets, _)| secrets)
            .unwrap_or_default()
    }

    /// The other config fields (`None`: the schema lists none, any name may be read).
    pub fn config_fields(&self) -> Option<BTreeSet<String>> {
        properties(&self.config_schema).map(|(_, plain)| plain)
    }
}

fn bounded_text(field: &str, text: Option<&str>) -> Result<(), DefinitionError> {
    match text {
        Some(text) if text.chars().count() > TEXT_LEN_MAX => Err(DefinitionError::new(
            field,
            format!("longer than {TEXT_LEN_MAX} characters"),
        )),
        Some(text) if text.chars().any(vigil_domain::is_hidden_format_char) => Err(
            DefinitionError::new(field, "holds invisible or direction-changing characters"),
        ),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    /// Whether sending it twice does what sending it once does (RFC 9110 §9.2.2): only
    /// those are retried after a 5xx.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, HttpMethod::Post | HttpMethod::Patch)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// The request a task sends, relative to its instance's base URL. Every string may be a
/// template (see `Template`); the body is a JSON value whose strings are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestTemplate {
    pub method: HttpMethod,
    /// Starts with `/`; appended to the base URL.
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
}

/// A request with its templates rendered: what goes on the wire (relative to the base URL).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedRequest {
    pub method: HttpMethod,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
}

impl RequestTemplate {
    /// Renders every template in `ctx`. Path, query and header values become text (a whole
    /// expression giving a number or a boolean is written as JSON); the body keeps types.
    pub fn render(&self, ctx: &crate::RenderContext) -> Result<RenderedRequest, DefinitionError> {
        let text = |field: &str, raw: &str| -> Result<String, DefinitionError> {
            match Template::parse(field, raw)?.render(field, ctx)? {
                Value::String(text) => Ok(text),
                Value::Null => Ok(String::new()),
                other @ (Value::Number(_) | Value::Bool(_)) => Ok(other.to_string()),
                _ => Err(DefinitionError::new(
                    field,
                    "renders a list or an object where text is expected",
                )),
            }
        };
        let mut query = BTreeMap::new();
        for (name, raw) in &self.query {
            query.insert(name.clone(), text(&format!("request.query.{name}"), raw)?);
        }
        let mut headers = BTreeMap::new();
        for (name, raw) in &self.headers {
            headers.insert(name.clone(), text(&format!("request.headers.{name}"), raw)?);
        }
        let body = match &self.body {
            Some(body) => Some(render_body("request.body", body, ctx)?),
            None => None,
        };
        Ok(RenderedRequest {
            method: self.method,
            path: text("request.path", &self.path)?,
            query,
            headers,
            body,
        })
    }
}

fn render_body(
    field: &str,
    value: &Value,
    ctx: &crate::RenderContext,
) -> Result<Value, DefinitionError> {
    Ok(match value {
        Value::String(raw) => Template::parse(field, raw)?.render(field, ctx)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_body(&format!("{field}/{i}"), item, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        render_body(&format!("{field}/{key}"), item, ctx)?,
                    ))
                })
                .collect::<Result<_, DefinitionError>>()?,
        ),
        other => other.clone(),
    })
}

/// Headers a template may not set: the client sets them from what it sends.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Exactly one value.
    Scalar,
    /// Every value the path selects, as a list.
    Array,
}

impl OutputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Scalar => "scalar",
            OutputKind::Array => "array",
        }
    }
}

/// The JSON type of an output (of each element, for an array output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
    Any,
}

impl OutputType {
    pub fn admits(self, value: &Value) -> bool {
        match self {
            OutputType::String => value.is_string(),
            OutputType::Number => value.is_number(),
            OutputType::Integer => value.is_i64() || value.is_u64(),
            OutputType::Boolean => value.is_boolean(),
            OutputType::Object => value.is_object(),
            OutputType::Array => value.is_array(),
            OutputType::Any => true,
        }
    }
}

/// A value a task reads from its answer, for the tasks that depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    /// RFC 9535 JSONPath into the answer's JSON body.
    pub path: String,
    pub kind: OutputKind,
    #[serde(rename = "type")]
    pub kind_of_value: OutputType,
}

impl Output {
    /// The output's value in `answer`.
    pub fn extract(&self, answer: &Value) -> Result<Value, String> {
        let path = serde_json_path::JsonPath::parse(&self.path).map_err(|err| err.to_string())?;
        let nodes = path.query(answer);
        let value = match self.kind {
            OutputKind::Scalar => nodes
                .exactly_one()
                .map_err(|_| format!("{} selects {} values, not one", self.path, nodes.len()))?
                .clone(),
            OutputKind::Array => Value::Array(nodes.all().into_iter().cloned().collect()),
        };
        let fits = match (&self.kind, &value) {
            (OutputKind::Array, Value::Array(items)) => {
                items.iter().all(|item| self.kind_of_value.admits(item))
            }
            _ => self.kind_of_value.admits(&value),
        };
        if !fits {
            return Err(format!(
                "{} is not of type {}",
                self.name,
                serde_json::to_value(self.kind_of_value)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ));
        }
        Ok(value)
    }
}

/// When a failed attempt is tried again: timeouts, connection errors, 429, and 5xx of
/// idempotent methods, after a backoff with full jitter (or `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff_ms: u32,
    pub max_backoff_ms: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

/// The tasks a task depends on, as written (`task` in the same app or `app/task`) and
/// resolved.
pub type TaskRefs = Vec<TaskRef>;

/// What a task is. Its name and app are the key it is stored under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub description: Option<String>,
    pub input_schema: Value,
    pub request: RequestTemplate,
    #[serde(default)]
    pub outputs: Vec<Output>,
    /// `app/task` each.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub retry: RetryPolicy,
    pub timeout_ms: u32,
    /// Statuses that count as success; empty: any 2xx.
    #[serde(default)]
    pub success_status: Vec<u16>,
}

/// What a task's templates may name, beyond its own input: the app's config and secret
/// fields, and each dependency's outputs by the dependency's task name.
pub struct Names<'a> {
    pub app: &'a AppDefinition,
    pub deps: BTreeMap<TaskName, BTreeSet<String>>,
}

impl TaskDefinition {
    /// Everything that can be checked without the store: texts, schema, request shape,
    /// templates (they parse and name only what `names` offers), outputs and their paths,
    /// limits. `depends_on` must already be resolved (`names.deps` holds each dependency).
    pub fn validate(&self, names: &Names<'_>) -> Result<(), DefinitionError> {
        bounded_text("description", self.description.as_deref())?;
        CompiledSchema::compile("input_schema", &self.input_schema)?;
        if !(1..=TIMEOUT_MS_MAX).contains(&self.timeout_ms) {
            return Err(DefinitionError::new(
                "timeout_ms",
                format!("must be 1 to {TIMEOUT_MS_MAX}"),
            ));
        }
        self.validate_retry()?;
        if let Some(code) = self
            .success_status
            .iter()
            .find(|code| !(100..=599).contains(*code))
        {
            return Err(DefinitionError::new(
                "success_status",
                format!("{code} is not an HTTP status"),
            ));
        }
        if self.depends_on.len() > DEPENDS_ON_MAX {
            return Err(DefinitionError::new(
                "depends_on",
                format!("more than {DEPENDS_ON_MAX} dependencies"),
            ));
        }
        self.validate_outputs()?;
        let templates = self.templates()?;
        let input_fields = properties(&self.input_schema).map(|(secret, plain)| {
            secret
                .into_iter()
                .chain(plain)
                .collect::<BTreeSet<String>>()
        });
        for (field, template) in &templates {
            for name in template.names() {
                check_name(field, &name, input_fields.as_ref(), names)?;
            }
        }
        Ok(())
    }

    fn validate_retry(&self) -> Result<(), DefinitionError> {
        let retry = &self.retry;
        if !(1..=RETRY_ATTEMPTS_MAX).contains(&retry.max_attempts) {
            return Err(DefinitionError::new(
                "retry.max_attempts",
                format!("must be 1 to {RETRY_ATTEMPTS_MAX}"),
            ));
        }
        if retry.initial_backoff_ms == 0 || retry.initial_backoff_ms > retry.max_backoff_ms {
            return Err(DefinitionError::new(
                "retry.initial_backoff_ms",
                "must be at least 1 and at most retry.max_backoff_ms",
            ));
        }
        if retry.max_backoff_ms > TIMEOUT_MS_MAX {
            return Err(DefinitionError::new(
                "retry.max_backoff_ms",
                format!("must be at most {TIMEOUT_MS_MAX}"),
            ));
        }
        Ok(())
    }

    fn validate_outputs(&self) -> Result<(), DefinitionError> {
        if self.outputs.len() > OUTPUTS_MAX {
            return Err(DefinitionError::new(
                "outputs",
                format!("more than {OUTPUTS_MAX} outputs"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, output) in self.outputs.iter().enumerate() {
            let field = format!("outputs/{i}");
            let valid_name = !output.name.is_empty()
                && output.name.len() <= 64
                && output
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !output.name.as_bytes()[0].is_ascii_digit();
            if !valid_name {
                return Err(DefinitionError::new(
                    format!("{field}/name"),
                    "must be 1 to 64 characters of a-z, A-Z, 0-9 and '_', not starting with a digit",
                ));
            }
            if !seen.insert(output.name.as_str()) {
                return Err(DefinitionError::new(
                    format!("{field}/name"),
                    format!("{} is declared twice", output.name),
                ));
            }
            if output.path.len() > OUTPUT_PATH_LEN_MAX {
                return Err(DefinitionError::new(
                    format!("{field}/path"),
                    format!("longer than {OUTPUT_PATH_LEN_MAX} bytes"),
                ));
            }
            serde_json_path::JsonPath::parse(&output.path).map_err(|err| {
                DefinitionError::new(
                    format!("{field}/path"),
                    format!("not an RFC 9535 JSONPath: {err}"),
                )
            })?;
        }
        Ok(())
    }

    /// Every template string of the request, with the field it is at.
    fn templates(&self) -> Result<Vec<(String, Template)>, DefinitionError> {
        let request = &self.request;
        if !request.path.starts_with('/') {
            return Err(DefinitionError::new(
                "request.path",
                "must start with '/' (it is appended to the instance's base URL)",
            ));
        }
        if request.headers.len() > HEADERS_MAX || request.query.len() > HEADERS_MAX {
            return Err(DefinitionError::new(
                "request",
                format!("more than {HEADERS_MAX} headers or query parameters"),
            ));
        }
        let mut out = vec![(
            "request.path".to_owned(),
            Template::parse("request.path", &request.path)?,
        )];
        for (name, value) in &request.headers {
            let field = format!("request.headers.{name}");
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(DefinitionError::new(field, "not an HTTP header name"));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(DefinitionError::new(
                    field,
                    "set by the client from what it sends; a template may not set it",
                ));
            }
            out.push((field.clone(), Template::parse(&field, value)?));
        }
        for (name, value) in &request.query {
            let field = format!("request.query.{name}");
            out.push((field.clone(), Template::parse(&field, value)?));
        }
        if let Some(body) = &request.body {
            body_templates("request.body", body, 0, &mut out)?;
        }
        if out.len() > crate::TEMPLATES_PER_TASK_MAX {
            return Err(DefinitionError::new(
                "request",
                format!(
                    "more than {} template strings",
                    crate::TEMPLATES_PER_TASK_MAX
                ),
            ));
        }
        Ok(out)
    }

    /// The tasks it depends on, resolved against its own app.
    pub fn dependencies(&self, app: &crate::AppName) -> Result<TaskRefs, DefinitionError> {
        let mut refs = Vec::new();
        for (i, raw) in self.depends_on.iter().enumerate() {
            let parsed = TaskRef::parse(raw, app)
                .map_err(|err| DefinitionError::new(format!("depends_on/{i}"), err.reason()))?;
            if refs.contains(&parsed) {
                return Err(DefinitionError::new(
                    format!("depends_on/{i}"),
                    format!("{parsed} is listed twice"),
                ));
            }
            if refs.iter().any(|r: &TaskRef| r.task == parsed.task) {
                return Err(DefinitionError::new(
                    format!("depends_on/{i}"),
                    format!(
                        "two dependencies named {}: templates read them as deps.{}",
                        parsed.task, parsed.task
                    ),
                ));
            }
            refs.push(parsed);
        }
        Ok(refs)
    }
}

fn body_templates(
    field: &str,
    value: &Value,
    depth: usize,
    out: &mut Vec<(String, Template)>,
) -> Result<(), DefinitionError> {
    if depth > BODY_DEPTH_MAX {
        return Err(DefinitionError::new(
            field,
            format!("nested deeper than {BODY_DEPTH_MAX}"),
        ));
    }
    match value {
        Value::String(text) => out.push((field.to_owned(), Template::parse(field, text)?)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                body_templates(&format!("{field}/{i}"), item, depth + 1, out)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                body_templates(&format!("{field}/{key}"), item, depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Refuses a name a template may not read: unknown roots, secrets the app does not declare,
/// config fields it does not have, dependencies the task does not list, outputs they do not
/// declare, input fields the input schema does not list.
fn check_name(
    field: &str,
    name: &str,
    input_fields: Option<&BTreeSet<String>>,
    names: &Names<'_>,
) -> Result<(), DefinitionError> {
    let refuse = |reason: String| Err(DefinitionError::new(field, reason));
    let mut parts = name.split('.');
    let root = parts.next().unwrap_or_default();
    let second = parts.next();
    let third = parts.next();
    match (root, second) {
        ("input", None) => Ok(()),
        ("input", Some(key)) => match input_fields {
            Some(fields) if !fields.contains(key) => {
                refuse(format!("input.{key} is not a property of input_schema"))
            }
            _ => Ok(()),
        },
        ("secrets", None) => {
            refuse("secrets are read one by one by name: secrets.<field>".to_owned())
        }
        ("secrets", Some(key)) => {
            if names.app.secret_fields().contains(key) {
                Ok(())
            } else {
                refuse(format!(
                    "secrets.{key} is not a writeOnly field of the app's config_schema"
                ))
            }
        }
        ("config", None) => Ok(()),
        ("config", Some(key)) => match names.app.config_fields() {
            Some(fields) if !fields.contains(key) => {
                if names.app.secret_fields().contains(key) {
                    refuse(format!("{key} is a secret: read it as secrets.{key}"))
                } else {
                    refuse(format!(
                        "config.{key} is not a field of the app's config_schema"
                    ))
                }
            }
            _ => Ok(()),
        },
        ("deps", None) => refuse("dependencies are read by name: deps.<task>.<output>".to_owned()),
        ("deps", Some(task)) => {
            let Some(outputs) = names
                .deps
                .iter()
                .find(|(name, _)| name.as_str() == task)
                .map(|(_, outputs)| outputs)
            else {
                return refuse(format!("deps.{task}: {task} is not in depends_on"));
            };
            match third {
                Some(output) if !outputs.contains(output) => refuse(format!(
                    "deps.{task}.{output}: {task} has no output {output}"
                )),
                _ => Ok(()),
            }
        }
        (other, _) => refuse(format!(
            "unknown name {other}; templates read input, secrets, config and deps"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::AppName;

    fn app() -> AppDefinition {
        AppDefinition {
            version: "1.0.0".into(),
            description: None,
            category: Some("intel".into()),
            config_schema: json!({"type": "object", "properties": {
                "region": {"type": "string"},
                "api_key": {"type": "string", "writeOnly": true}}}),
            base_url_required: true,
            health_task: None,
        }
    }

    fn task(request: Value) -> TaskDefinition {
        serde_json::from_value(json!({
            "input_schema": {"type": "object", "properties": {"ip": {"type": "string"}}},
            "request": request,
            "outputs": [{"name": "score", "path": "$.data.abuseConfidenceScore", "kind": "scalar", "type": "integer"}],
            "timeout_ms": 5000,
        }))
        .unwrap()
    }

    fn names(app: &AppDefinition) -> Names<'_> {
        let mut deps = BTreeMap::new();
        deps.insert(
            TaskName::parse("whois").unwrap(),
            BTreeSet::from(["owner".to_owned()]),
        );
        Names { app, deps }
    }

    #[test]
    fn a_task_names_only_what_it_may_read() {
        let app = app();
        let ok = task(json!({"method": "GET", "path": "/check",
            "query": {"ipAddress": "{{ input.ip }}", "r": "{{ config.region }}", "o": "{{ deps.whois.owner }}"},
            "headers": {"Key": "{{ secrets.api_key }}"}}));
        ok.validate(&names(&app)).unwrap();
        let cases = [
            (
                json!({"Key": "{{ secrets.other }}"}),
                "not a writeOnly field",
            ),
            (json!({"Key": "{{ config.api_key }}"}), "is a secret"),
            (
                json!({"Key": "{{ input.port }}"}),
                "not a property of input_schema",
            ),
            (json!({"Key": "{{ deps.nope.x }}"}), "not in depends_on"),
            (json!({"Key": "{{ deps.whois.age }}"}), "has no output age"),
            (json!({"Key": "{{ env.HOME }}"}), "unknown name env"),
            (json!({"Key": "{{ secrets['api_key'] }}"}), "one by one"),
            (json!({"Host": "x"}), "may not set it"),
        ];
        for (headers, expected) in cases {
            let bad = task(json!({"method": "GET", "path": "/check", "headers": headers}));
            let err = bad.validate(&names(&app)).unwrap_err();
            assert!(err.reason.contains(expected), "{headers}: {err}");
            assert!(err.field.starts_with("request.headers."), "{err}");
        }
    }

    #[test]
    fn paths_schemas_and_limits_are_checked_at_save_time() {
        let app = app();
        let mut bad_path = task(json!({"method": "GET", "path": "/x"}));
        bad_path.outputs[0].path = "$.data[".into();
        let err = bad_path.validate(&names(&app)).unwrap_err();
        assert_eq!(err.field, "outputs/0/path");
        bad_path.outputs[0].path = format!("$.{}", "a".repeat(OUTPUT_PATH_LEN_MAX));
        let long = bad_path.validate(&names(&app)).unwrap_err();
        assert!(long.reason.contains("longer than"), "{long}");
        let mut long_version = app.clone();
        long_version.version = format!("1.0.0-{}", "a".repeat(VERSION_LEN_MAX));
        assert_eq!(long_version.validate().unwrap_err().field, "version");
        let mut bad_schema = task(json!({"method": "GET", "path": "/x"}));
        bad_schema.input_schema = json!({"type": 7});
        assert_eq!(
            bad_schema.validate(&names(&app)).unwrap_err().field,
            "input_schema/type"
        );
        let relative = task(json!({"method": "GET", "path": "x"}));
        assert_eq!(
            relative.validate(&names(&app)).unwrap_err().field,
            "request.path"
        );
        let body = task(json!({"method": "POST", "path": "/x", "body": {"q": ["{{ inptu.ip }}"]}}));
        assert_eq!(
            body.validate(&names(&app)).unwrap_err().field,
            "request.body/q/0"
        );
        let mut slow = task(json!({"method": "GET", "path": "/x"}));
        slow.timeout_ms = TIMEOUT_MS_MAX + 1;
        assert_eq!(slow.validate(&names(&app)).unwrap_err().field, "timeout_ms");
    }

    #[test]
    fn dependencies_resolve_against_the_app_and_are_not_ambiguous() {
        let own = AppName::parse("abuse").unwrap();
        let mut t = task(json!({"method": "GET", "path": "/x"}));
        t.depends_on = vec!["whois".into(), "dns/resolve".into()];
        let refs: Vec<String> = t
            .dependencies(&own)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(refs, ["abuse/whois", "dns/resolve"]);
        t.depends_on = vec!["whois".into(), "other/whois".into()];
        assert!(
            t.dependencies(&own)
                .unwrap_err()
                .reason
                .contains("deps.whois")
        );
    }

    #[test]
    fn outputs_are_read_by_path_and_typed() {
        let answer =
            json!({"data": {"abuseConfidenceScore": 97, "reports": [{"c": "a"}, {"c": "b"}]}});
        let score = Output {
            name: "score".into(),
            path: "$.data.abuseConfidenceScore".into(),
            kind: OutputKind::Scalar,
            kind_of_value: OutputType::Integer,
        };
        assert_eq!(score.extract(&answer).unwrap(), json!(97));
        let cats = Output {
            name: "cats".into(),
            path: "$.data.reports[*].c".into(),
            kind: OutputKind::Array,
            kind_of_value: OutputType::String,
        };
        assert_eq!(cats.extract(&answer).unwrap(), json!(["a", "b"]));
        let wrong = Output {
            kind_of_value: OutputType::String,
            ..score.clone()
        };
        assert!(wrong.extract(&answer).is_err());
        assert!(
            score
                .extract(&json!({}))
                .unwrap_err()
                .contains("selects 0 values")
        );
    }
}
