//! JSON Schemas as apps and tasks carry them: checked against the meta-schema when saved,
//! compiled without any `$ref` resolver (nothing is fetched, from the network or a file), and
//! used to check config, secrets and run inputs, each problem named by its JSON pointer.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::DefinitionError;

/// Largest schema, as JSON text.
pub const SCHEMA_BYTES_MAX: usize = 64 * 1024;
/// Most problems one check reports; the first ones are the useful ones.
const PROBLEMS_MAX: usize = 20;

/// A schema that passed the meta-schema and compiles.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSchema")
    }
}

/// One place where a value does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// JSON pointer into the value (`""` is the value itself).
    pub pointer: String,
    pub reason: String,
}

impl CompiledSchema {
    /// Checks `schema` (found at `field`) and compiles it: a JSON object or boolean schema,
    /// valid against its draft's meta-schema (2020-12 unless `$schema` says otherwise), no
    /// larger than `SCHEMA_BYTES_MAX`, with no `$ref` outside itself.
    pub fn compile(field: &str, schema: &Value) -> Result<Self, DefinitionError> {
        if !(schema.is_object() || schema.is_boolean()) {
            return Err(DefinitionError::new(
                field,
                "a JSON Schema is an object (or true/false)",
            ));
        }
        let len = serde_json::to_string(schema).map_or(usize::MAX, |text| text.len());
        if len > SCHEMA_BYTES_MAX {
            return Err(DefinitionError::new(
                field,
                format!("larger than {SCHEMA_BYTES_MAX} bytes"),
            ));
        }
        if let Err(err) = jsonschema::meta::validate(schema) {
            let at = err.instance_path().to_string();
            return Err(DefinitionError::new(
                format!("{field}{at}"),
                format!("not a valid JSON Schema: {err}"),
            ));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(schema)
            .map_err(|err| {
                DefinitionError::new(
                    field,
                    format!(
                        "does not compile (a `$ref` outside the schema is never fetched): {err}"
                    ),
                )
            })?;
        Ok(Self { validator })
    }

    /// Where `value` does not fit. With `redact`, a problem names the keyword that failed and
    /// never the value (for secrets).
    pub fn problems(&self, value: &Value, redact: bool) -> Vec<SchemaProblem> {
        self.validator
            .iter_errors(value)
            .take(PROBLEMS_MAX)
            .map(|err| SchemaProblem {
                pointer: err.instance_path().to_string(),
                reason: if redact {
                    format!("fails the schema at {}", err.schema_path())
                } else {
                    err.to_string()
                },
            })
            .collect()
    }

    /// `value` if it fits, or its first problem as an error on `field` + pointer.
    pub fn check(&self, field: &str, value: &Value, redact: bool) -> Result<(), DefinitionError> {
        match self.problems(value, redact).into_iter().next() {
            None => Ok(()),
            Some(problem) => Err(DefinitionError::new(
                format!("{field}{}", problem.pointer),
                problem.reason,
            )),
        }
    }
}

/// The top-level property names of an object schema (`None` when it lists none: anything
/// goes), split into the `writeOnly` ones (secrets) and the rest.
pub(crate) fn properties(schema: &Value) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let properties = schema.get("properties")?.as_object()?;
    let mut secrets = BTreeSet::new();
    let mut plain = BTreeSet::new();
    for (name, sub) in properties {
        if sub.get("writeOnly").and_then(Value::as_bool) == Some(true) {
            secrets.insert(name.clone());
        } else {
            plain.insert(name.clone());
        }
    }
    Some((secrets, plain))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schemas_are_checked_against_the_meta_schema_and_never_fetch() {
        let ok = json!({"type": "object", "properties": {"ip": {"type": "string", "format": "ipv4"}},
            "required": ["ip"]});
        let schema = CompiledSchema::compile("input_schema", &ok).unwrap();
        assert!(
            schema
                .check("input", &json!({"ip": "192.0.2.1"}), false)
                .is_ok()
        );
        let err = schema
            .check("input", &json!({"ip": "nope"}), false)
            .unwrap_err();
        assert_eq!(err.field, "input/ip", "formats are validated");
        let missing = schema.check("input", &json!({}), false).unwrap_err();
        assert_eq!(missing.field, "input");
        assert!(missing.reason.contains("ip"), "{missing}");

        let bad = CompiledSchema::compile("input_schema", &json!({"type": "strnig"})).unwrap_err();
        assert!(bad.reason.contains("not a valid JSON Schema"), "{bad}");
        let remote = json!({"$ref": "http://127.0.0.1:1/schema.json"});
        let err = CompiledSchema::compile("input_schema", &remote).unwrap_err();
        assert!(err.reason.contains("never fetched"), "{err}");
        assert!(CompiledSchema::compile("input_schema", &json!([1])).is_err());
    }

    #[test]
    fn a_redacted_problem_does_not_show_the_value() {
        let schema = CompiledSchema::compile(
            "config_schema",
            &json!({"properties": {"key": {"type": "string", "minLength": 40, "writeOnly": true}}}),
        )
        .unwrap();
        let err = schema
            .check("secrets", &json!({"key": "hunter2-short"}), true)
            .unwrap_err();
        assert_eq!(err.field, "secrets/key");
        assert!(!err.reason.contains("hunter2"), "{err}");
        assert!(err.reason.contains("minLength"), "{err}");
    }
}
