//! Instances: an app bound to one real system — its base URL, its config, its secrets (sealed
//! by the service, never here) and its limits. Several per app and tenant, one per client
//! system. Config and secrets are checked together against the app's config schema.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use vigil_domain::{ParseError, SourceUrl, Timestamp};

use crate::{AppDefinition, AppName, CompiledSchema, DefinitionError};

/// Runs of one instance at once when it names no limit.
pub const INSTANCE_CONCURRENCY_DEFAULT: u32 = 4;
/// Most runs of one instance at once.
pub const INSTANCE_CONCURRENCY_MAX: u32 = 64;
/// Highest rate limit an instance may set, in requests per minute.
pub const INSTANCE_RATE_PER_MINUTE_MAX: u32 = 60_000;
/// Most instances one tenant keeps.
pub const INSTANCES_PER_TENANT_MAX: usize = 1_000;
/// Largest config plus secrets of one instance, as JSON text.
pub const INSTANCE_CONFIG_BYTES_MAX: usize = 64 * 1024;

/// An instance's name, unique per app in its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceName(String);

impl InstanceName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        crate::names::name("name", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InstanceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the last check of an instance found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    pub checked_at: Timestamp,
    pub last_ok_at: Option<Timestamp>,
    /// A status and a fixed reason, never the other side's text.
    pub error: Option<String>,
}

/// An instance as stored; its secrets are elsewhere, sealed, and only their names are here.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: uuid::Uuid,
    pub app: AppName,
    pub name: InstanceName,
    pub base_url: Option<SourceUrl>,
    pub config: Map<String, Value>,
    /// The secret fields it holds, by name.
    pub secret_fields: BTreeSet<String>,
    pub rate_limit_per_minute: Option<u32>,
    pub concurrency_max: u32,
    pub enabled: bool,
    pub health: Option<Health>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Instance {
    /// Checks the limits.
    pub fn validate_limits(&self) -> Result<(), DefinitionError> {
        if !(1..=INSTANCE_CONCURRENCY_MAX).contains(&self.concurrency_max) {
            return Err(DefinitionError::new(
                "concurrency_max",
                format!("must be 1 to {INSTANCE_CONCURRENCY_MAX}"),
            ));
        }
        if let Some(rate) = self.rate_limit_per_minute {
            if !(1..=INSTANCE_RATE_PER_MINUTE_MAX).contains(&rate) {
                return Err(DefinitionError::new(
                    "rate_limit_per_minute",
                    format!("must be 1 to {INSTANCE_RATE_PER_MINUTE_MAX}"),
                ));
            }
        }
        Ok(())
    }
}

impl AppDefinition {
    /// Checks an instance's config and secrets against this app: secrets only in `writeOnly`
    /// fields, config only in the others, a base URL when the app needs one, and both
    /// together against the config schema. A problem in a secret never shows its value.
    pub fn check_instance(
        &self,
        base_url: Option<&SourceUrl>,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<(), DefinitionError> {
        if self.base_url_required && base_url.is_none() {
            return Err(DefinitionError::new(
                "base_url",
                "this app's instances need a base URL",
            ));
        }
        let size =
            |map: &Map<String, Value>| serde_json::to_string(map).map_or(usize::MAX, |t| t.len());
        if size(config).saturating_add(size(secrets)) > INSTANCE_CONFIG_BYTES_MAX {
            return Err(DefinitionError::new(
                "config",
                format!("config and secrets hold more than {INSTANCE_CONFIG_BYTES_MAX} bytes"),
            ));
        }
        let secret_fields = self.secret_fields();
        if let Some(key) = secrets.keys().find(|k| !secret_fields.contains(*k)) {
            return Err(DefinitionError::new(
                format!("secrets/{key}"),
                "not a writeOnly field of the app's config_schema",
            ));
        }
        if let Some(key) = config.keys().find(|k| secret_fields.contains(*k)) {
            return Err(DefinitionError::new(
                format!("config/{key}"),
                "a secret: send it in `secrets`, never in `config`",
            ));
        }
        let mut whole = config.clone();
        whole.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
        let whole = Value::Object(whole);
        let schema = CompiledSchema::compile("config_schema", &self.config_schema)?;
        match schema.problems(&whole, false).into_iter().next() {
            None => Ok(()),
            Some(problem) => Err(schema_error(
                &schema,
                &whole,
                &secret_fields,
                secrets,
                problem,
            )),
        }
    }
}

/// The error for the first place the instance does not fit, naming `config/…` or
/// `secrets/…`; a message that could quote a secret is replaced by the rule that failed.
fn schema_error(
    schema: &CompiledSchema,
    whole: &Value,
    secret_fields: &BTreeSet<String>,
    secrets: &Map<String, Value>,
    problem: crate::SchemaProblem,
) -> DefinitionError {
    let top = problem
        .pointer
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    // A message about a secret, or about the whole object, may quote a secret's value:
    // then say only which rule failed.
    let redacted = || {
        schema
            .problems(whole, true)
            .into_iter()
            .find(|p| p.pointer == problem.pointer)
            .map_or_else(|| "does not fit the config schema".to_owned(), |p| p.reason)
    };
    if secret_fields.contains(&top) {
        return DefinitionError::new(format!("secrets{}", problem.pointer), redacted());
    }
    if top.is_empty() {
        let quotes_a_secret = secrets.values().any(|v| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            !text.is_empty() && problem.reason.contains(&text)
        });
        let reason = if quotes_a_secret {
            redacted()
        } else {
            problem.reason.clone()
        };
        return DefinitionError::new("config", reason);
    }
    DefinitionError::new(format!("config{}", problem.pointer), problem.reason)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app() -> AppDefinition {
        AppDefinition {
            version: "1.0.0".into(),
            description: None,
            category: None,
            config_schema: json!({"type": "object", "required": ["api_key"], "properties": {
                "region": {"type": "string", "enum": ["eu", "us"]},
                "api_key": {"type": "string", "writeOnly": true, "minLength": 12}}}),
            base_url_required: true,
            health_task: None,
        }
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn config_and_secrets_are_checked_together_and_secrets_never_show() {
        let url = SourceUrl::parse("https://api.example.com").unwrap();
        let ok = app().check_instance(
            Some(&url),
            &map(json!({"region": "eu"})),
            &map(json!({"api_key": "k-0123456789ab"})),
        );
        assert_eq!(ok, Ok(()));
        let cases = [
            (
                json!({"region": "mars"}),
                json!({"api_key": "k-0123456789ab"}),
                "config/region",
            ),
            (json!({}), json!({"api_key": "hunter2"}), "secrets/api_key"),
            (
                json!({"api_key": "k-0123456789ab"}),
                json!({}),
                "config/api_key",
            ),
            (json!({}), json!({"region": "eu"}), "secrets/region"),
            (json!({}), json!({}), "config"),
        ];
        for (config, secrets, field) in cases {
            let err = app()
                .check_instance(Some(&url), &map(config), &map(secrets))
                .unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert!(!err.reason.contains("hunter2"), "{err}");
        }
        let no_url = app()
            .check_instance(
                None,
                &Map::new(),
                &map(json!({"api_key": "k-0123456789ab"})),
            )
            .unwrap_err();
        assert_eq!(no_url.field, "base_url");
        let mut strict = app();
        strict.config_schema["not"] = json!({"required": ["region"]});
        let whole = strict
            .check_instance(
                Some(&url),
                &map(json!({"region": "eu"})),
                &map(json!({"api_key": "k-0123456789ab"})),
            )
            .unwrap_err();
        assert_eq!(whole.field, "config");
        let raw = CompiledSchema::compile("config_schema", &strict.config_schema)
            .unwrap()
            .problems(&json!({"region": "eu", "api_key": "k-0123456789ab"}), false);
        assert!(
            raw[0].reason.contains("k-0123456789ab"),
            "the engine's own message would quote it: {raw:?}"
        );
        assert!(
            !whole.reason.contains("k-0123456789ab"),
            "a message about the whole object does not quote a secret: {whole}"
        );
        let big = map(json!({"region": "x".repeat(INSTANCE_CONFIG_BYTES_MAX)}));
        let err = app()
            .check_instance(Some(&url), &big, &Map::new())
            .unwrap_err();
        assert!(err.reason.contains("more than"), "{err}");
    }
}
