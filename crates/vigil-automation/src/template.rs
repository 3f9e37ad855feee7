//! Request templates. A string may hold `{{ expr }}` expressions (minijinja's expression
//! language) over `input`, `secrets`, `config` and `deps`; nothing else — no statements, no
//! loops, no comments, no includes (there is no loader). A string that is one expression
//! and nothing else keeps the expression's JSON type (`"{{ input.limit }}"` → `50`); one with
//! text around its expressions renders to text. Undefined names are errors, never empty
//! strings, and every evaluation runs on a fuel budget.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::Value;

use crate::DefinitionError;

/// Longest template string, in bytes.
pub const TEMPLATE_LEN_MAX: usize = 4_096;
/// Most template strings in one task's request.
pub const TEMPLATES_PER_TASK_MAX: usize = 256;
/// Instructions one evaluation may run.
pub const TEMPLATE_FUEL_MAX: u64 = 20_000;
/// Largest rendered string, in bytes.
pub const RENDERED_LEN_MAX: usize = 256 * 1024;
/// Deepest nesting of an expression.
const RECURSION_MAX: usize = 32;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL_MAX));
    env.set_recursion_limit(RECURSION_MAX);
    env
});

/// One string of a request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// No expression: sent as written.
    Literal(String),
    /// Exactly one `{{ expr }}`: the expression's value, with its JSON type.
    Whole(String),
    /// Text with expressions: rendered to a string.
    Text(String),
}

/// What a request's expressions see.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RenderContext {
    pub input: Value,
    pub secrets: serde_json::Map<String, Value>,
    pub config: Value,
    /// `deps.<task>.<output>`.
    pub deps: serde_json::Map<String, Value>,
}

impl Template {
    /// Parses `raw` (found at `field`): its expressions must compile.
    pub fn parse(field: &str, raw: &str) -> Result<Self, DefinitionError> {
        if raw.len() > TEMPLATE_LEN_MAX {
            return Err(DefinitionError::new(
                field,
                format!("longer than {TEMPLATE_LEN_MAX} bytes"),
            ));
        }
        if !raw.contains("{{") && !raw.contains("{%") && !raw.contains("{#") {
            return Ok(Template::Literal(raw.to_owned()));
        }
        if raw.contains("{%") || raw.contains("{#") {
            return Err(DefinitionError::new(
                field,
                "only {{ expression }} is allowed: no {% statements %} or {# comments #}",
            ));
        }
        let trimmed = raw.trim();
        let whole = trimmed
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
        let template = match whole {
            Some(inner) => Template::Whole(inner.trim().to_owned()),
            None => Template::Text(raw.to_owned()),
        };
        template.compile_check(field)?;
        Ok(template)
    }

    fn compile_check(&self, field: &str) -> Result<(), DefinitionError> {
        let invalid = |err: minijinja::Error| {
            DefinitionError::new(
                field,
                format!("template does not parse: {}", describe(&err)),
            )
        };
        match self {
            Template::Literal(_) => Ok(()),
            Template::Whole(expr) => ENV.compile_expression(expr).map(drop).map_err(invalid),
            Template::Text(text) => ENV.template_from_str(text).map(drop).map_err(invalid),
        }
    }

    /// Every name the template reads, dotted as far as it is written (`input.ip`,
    /// `deps.lookup.score`; `secrets` alone for `secrets[name]`).
    pub fn names(&self) -> BTreeSet<String> {
        let found = match self {
            Template::Literal(_) => return BTreeSet::new(),
            Template::Whole(expr) => ENV
                .compile_expression(expr)
                .map(|e| e.undeclared_variables(true)),
            Template::Text(text) => ENV
                .template_from_str(text)
                .map(|t| t.undeclared_variables(true)),
        };
        found.unwrap_or_default().into_iter().collect()
    }

    /// The value the template stands for in `ctx`.
    pub fn render(&self, field: &str, ctx: &RenderContext) -> Result<Value, DefinitionError> {
        let failed = |err: minijinja::Error| {
            DefinitionError::new(field, format!("template: {}", describe(&err)))
        };
        let value = match self {
            Template::Literal(text) => return Ok(Value::String(text.clone())),
            Template::Whole(expr) => {
                let compiled = ENV.compile_expression(expr).map_err(failed)?;
                let value = compiled
                    .eval(minijinja::value::Serde(ctx))
                    .map_err(failed)?;
                if value.is_undefined() {
                    return Err(DefinitionError::new(
                        field,
                        format!("template: {expr} is undefined"),
                    ));
                }
                serde_json::to_value(&value)
                    .map_err(|_| DefinitionError::new(field, "template: not a JSON value"))?
            }
            Template::Text(text) => {
                let compiled = ENV.template_from_str(text).map_err(failed)?;
                let rendered = compiled.render(minijinja::value::Serde(ctx));
                Value::String(rendered.map_err(failed)?)
            }
        };
        let len = match &value {
            Value::String(text) => text.len(),
            other => other.to_string().len(),
        };
        if len > RENDERED_LEN_MAX {
            return Err(DefinitionError::new(
                field,
                format!("template renders more than {RENDERED_LEN_MAX} bytes"),
            ));
        }
        Ok(value)
    }
}

/// An engine error without the template source line (it could hold a secret's name only,
/// but the caller already has the template).
fn describe(err: &minijinja::Error) -> String {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx() -> RenderContext {
        RenderContext {
            input: json!({"ip": "192.0.2.7", "limit": 50, "tags": ["a", "b"]}),
            secrets: json!({"api_key": "k-123"}).as_object().unwrap().clone(),
            config: json!({"region": "eu"}),
            deps: json!({"lookup": {"score": 97}})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn a_whole_expression_keeps_its_type_and_embedded_ones_are_text() {
        let whole = Template::parse("body.limit", "{{ input.limit }}").unwrap();
        assert_eq!(whole.render("body.limit", &ctx()).unwrap(), json!(50));
        let list = Template::parse("body.tags", " {{input.tags}} ").unwrap();
        assert_eq!(list.render("body.tags", &ctx()).unwrap(), json!(["a", "b"]));
        let text =
            Template::parse("path", "/check/{{ input.ip }}?s={{ deps.lookup.score }}").unwrap();
        assert_eq!(
            text.render("path", &ctx()).unwrap(),
            json!("/check/192.0.2.7?s=97")
        );
        let literal = Template::parse("path", "/plain").unwrap();
        assert_eq!(literal, Template::Literal("/plain".into()));
        assert!(literal.names().is_empty());
    }

    #[test]
    fn names_are_read_from_the_expression_not_guessed() {
        let t = Template::parse(
            "headers.Key",
            "{{ secrets.api_key }}-{{ config.region | upper }}-{{ input.ip ~ deps.lookup.score }}",
        )
        .unwrap();
        let names: Vec<String> = t.names().into_iter().collect();
        assert_eq!(
            names,
            [
                "config.region",
                "deps.lookup.score",
                "input.ip",
                "secrets.api_key"
            ]
        );
    }

    #[test]
    fn undefined_names_statements_and_runaway_work_are_errors() {
        let missing = Template::parse("path", "/{{ input.nope }}").unwrap();
        assert!(missing.render("path", &ctx()).is_err(), "strict undefined");
        let whole_missing = Template::parse("path", "{{ input.nope }}").unwrap();
        assert!(whole_missing.render("path", &ctx()).is_err());
        for bad in [
            "{% for x in input.tags %}{{x}}{% endfor %}",
            "{# hi #}",
            "{{ input. }}",
        ] {
            assert!(Template::parse("body", bad).is_err(), "{bad}");
        }
        let big = Template::parse("body", "{{ range(100000) | join(',') }}").unwrap();
        assert!(
            big.render("body", &ctx()).is_err(),
            "runaway output is refused"
        );
    }
}
