//! The OpenAPI 3.1 document. Every operation is declared on its handler (`#[utoipa::path]`)
//! and registered with `routes!` (`routes.rs`), and every body and parameter is the handler's
//! own type (`ToSchema`, `IntoParams`), so the router and the document come from one
//! declaration. What is written here is only what no handler owns: the document's frame,
//! the security schemes, the problem responses every operation may give, and the small
//! vocabularies the types refer to by name.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};

use crate::schema::with_source_rule;

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn serve() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(document).clone())
}

fn problem() -> Value {
    json!({"description": "problem details (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// The vocabularies the DTOs refer to by name, and the problem body.
fn shared_schemas() -> Value {
    let text = json!({"type": "string"});
    let at = json!({"type": "string", "format": "date-time"});
    json!({
        "Problem": {"type": "object", "properties": {
            "type": text, "title": text, "status": {"type": "integer"}, "detail": text, "request_id": text,
            "errors": {"type": "array", "items": {"type": "object", "properties": {"field": text, "reason": text}}},
            "dependants": {"type": "array", "items": text, "description": "What still depends on what a refused delete would remove"},
        }},
        "RiskStatus": {"type": "string", "enum": ["open", "mitigating", "accepted", "closed"]},
        "FindingStatus": {"type": "string", "enum": ["open", "in_progress", "resolved", "closed"],
            "description": "open -> in_progress|resolved|closed; in_progress -> open|resolved|closed; resolved -> in_progress|closed; closed -> in_progress (reopen)"},
        "Severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
        "IndicatorType": {"type": "string", "enum": ["ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256", "email", "file_name", "registry_key"]},
        "Event": {"type": "object", "additionalProperties": false, "required": ["type", "properties"], "properties": {
            "client_id": {"type": "string", "description": "The agent's id; a repeat is a duplicate"}, "type": text, "timestamp": at,
            "properties": {"type": "object", "description": "ECS (nested or dotted), flat agent keys or OCSF observables"},
        }},
    })
}

/// The whole document: the frame, with every derived path and schema.
pub(crate) fn document() -> Value {
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {"title": "Vigil", "version": env!("CARGO_PKG_VERSION"), "description": "Multi-tenant security-operations core"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (vgl_...) or an access token from /api/v1/auth/login"},
                "metrics_token": {"type": "http", "scheme": "bearer", "description": "VIGIL_METRICS_TOKEN"},
            },
            "schemas": shared_schemas(),
        },
    });
    let derived = serde_json::to_value(crate::routes::derived_document()).unwrap_or_default();
    if let Some(paths) = derived["paths"].as_object() {
        for (path, item) in paths {
            let mut item = item.clone();
            for operation in item
                .as_object_mut()
                .into_iter()
                .flat_map(|ops| ops.values_mut())
            {
                with_problems(operation);
            }
            document["paths"][path] = item;
        }
    }
    if let Some(schemas) = derived["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            document["components"]["schemas"][name] = schema.clone();
        }
    }
    // An empty page is both a page of apps and a page of names: any of, not one of.
    if let Some(list) = document["components"]["schemas"]["AppList"].as_object_mut() {
        if let Some(one_of) = list.remove("oneOf") {
            list.insert("anyOf".into(), one_of);
        }
    }
    // What a struct-level derive cannot say: `external_id` needs a `source`.
    for name in ["RiskIn", "FindingIn"] {
        let schema = &mut document["components"]["schemas"][name];
        if schema.get("if").is_none() {
            *schema = with_source_rule(schema.take());
        }
    }
    document
}

/// Every problem a request can meet, on an operation that does not say otherwise.
fn with_problems(operation: &mut Value) {
    for status in [
        "400", "401", "403", "404", "408", "409", "413", "415", "422", "429", "503",
    ] {
        if operation["responses"].get(status).is_none() {
            operation["responses"][status] = problem();
        }
    }
}
