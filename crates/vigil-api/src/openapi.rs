//! The OpenAPI 3.1 document, written by hand next to the routes and checked against them by
//! the tests: every served (path, method) is documented and every documented one is served.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};

use crate::schema::{FORBIDDEN, with_source_rule};

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn serve() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(document).clone())
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn problem() -> Value {
    json!({"description": "problem details (RFC 9457)", "content": {"application/problem+json": {"schema": schema("Problem")}}})
}

/// One operation. `body` and `answer` are schema names; `answer` None means 204.
fn op(
    id: &str,
    summary: &str,
    tag: &str,
    params: &[&str],
    body: Option<&str>,
    status: u16,
    answer: Option<&str>,
) -> Value {
    let mut operation = json!({
        "operationId": id,
        "summary": summary,
        "tags": [tag],
        "parameters": params.iter().map(|p| json!({"$ref": format!("#/components/parameters/{p}")})).collect::<Vec<_>>(),
        "responses": {
            "400": problem(), "401": problem(), "403": problem(), "404": problem(), "408": problem(),
            "409": problem(), "413": problem(), "415": problem(), "422": problem(), "429": problem(),
            "503": problem(),
        },
    });
    if let Some(body) = body {
        operation["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema(body)}}});
    }
    operation["responses"][status.to_string()] = match answer {
        Some(answer) => {
            json!({"description": "success", "content": {"application/json": {"schema": schema(answer)}}})
        }
        None => json!({"description": "success, no content"}),
    };
    operation
}

/// An upsert: 201 when it created, 200 when it replaced, with the same body.
fn created_or_replaced(mut operation: Value) -> Value {
    operation["responses"]["201"] = operation["responses"]["200"].clone();
    operation
}

fn ioc_paths() -> Value {
    let page = ["limit", "cursor"];
    json!({
        "/api/v1/connectors": {
            "get": op("listConnectors", "List the tenant's sync connectors, without credentials (tenant-admin)", "sync", &[], None, 200, Some("ConnectorList")),
        },
        "/api/v1/connectors/{name}": {
            "get": op("getConnector", "Read a connector, without credentials (tenant-admin)", "sync", &["name"], None, 200, Some("Connector")),
            "put": created_or_replaced(op("putConnector", "Create (201) or replace (200) a connector; credentials are sealed, and omitting them keeps the stored ones", "sync", &["name", "reason"], Some("ConnectorIn"), 200, Some("Connector"))),
            "delete": op("deleteConnector", "Remove a connector; what it synced stays", "sync", &["name", "reason"], None, 204, None),
        },
        "/api/v1/sync/status": {
            "get": op("syncStatus", "The sync engine's view of the tenant's connectors (tenant-admin)", "sync", &[], None, 200, Some("SyncStatus")),
        },
        "/api/v1/sync/dead-letters": {
            "get": op("listDeadLetters", "Upstream records a cycle could not map or store, newest first (tenant-admin)", "sync", &page, None, 200, Some("DeadLetterPage")),
        },
        "/api/v1/sync/dead-letters/{id}/replay": {
            "post": op("replayDeadLetter", "Map the record again with the connector's current settings and store it; 422 with the reason when it still fails", "sync", &["id"], None, 200, Some("Replayed")),
        },
        "/api/v1/sync/{name}/run": {
            "post": op("runSync", "Run one cycle of the connector now (incremental reading, then deletion reconciliation) and answer its report", "sync", &["name"], None, 200, Some("CycleReport")),
        },
        "/api/v1/ioc-matches": {
            "get": op("listMatches", "List IOC matches, newest first", "telemetry", &["finding_id", "indicator_id", "event_id", "reopened", "since", "until", "limit", "cursor"], None, 200, Some("MatchPage")),
        },
    })
}

fn ioc_parameters() -> Value {
    let uuid = json!({"type": "string", "format": "uuid"});
    let at = json!({"type": "string", "format": "date-time"});
    json!({
        "name": {"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}},
        "finding_status": query("status", "Finding status", schema("FindingStatus")),
        "severity": query("severity", "Finding severity", schema("Severity")),
        "indicator_type": query("type", "Indicator type", schema("IndicatorType")),
        "value": query("value", "Indicator value (normalized before comparing; needs type)", json!({"type": "string"})),
        "finding_id": query("finding_id", "The finding", uuid.clone()),
        "indicator_id": query("indicator_id", "The indicator", uuid.clone()),
        "event_id": query("event_id", "The telemetry event", uuid),
        "reopened": query("reopened", "Only matches that did (true) or did not (false) reopen their finding", json!({"type": "boolean"})),
        "since": query("since", "Matched at or after", at.clone()),
        "until": query("until", "Matched before", at),
    })
}

fn ioc_schemas() -> Value {
    let text = json!({"type": "string"});
    let at = json!({"type": "string", "format": "date-time"});
    json!({
        "FindingStatus": {"type": "string", "enum": ["open", "in_progress", "resolved", "closed"],
            "description": "open -> in_progress|resolved|closed; in_progress -> open|resolved|closed; resolved -> in_progress|closed; closed -> in_progress (reopen)"},
        "Severity": {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
        "IndicatorType": {"type": "string", "enum": ["ipv4", "ipv6", "cidr", "domain", "url", "md5", "sha1", "sha256", "email", "file_name", "registry_key"]},
        "Event": object(&["type", "properties"], json!({
            "client_id": {"type": "string", "description": "The agent's id; a repeat is a duplicate"}, "type": text, "timestamp": at,
            "properties": {"type": "object", "description": "ECS (nested or dotted), flat agent keys or OCSF observables"},
        })),
    })
}

fn sync_schemas() -> Value {
    let text = json!({"type": "string"});
    let at = json!({"type": "string", "format": "date-time"});
    json!({
        "ConnectorIn": {"description": "What each kind needs; credentials may be left out to keep the stored ones (a 409 when there are none)",
            "oneOf": [
                connector_in("thehive", &["api_key"], &["organisation"]),
                connector_in("opencti", &["token"], &[]),
                connector_in("openrmf", &["token_url", "client_id", "username", "password"], &[]),
                connector_in("taxii", &["username", "password"], &["api_root", "collection"]),
            ]},
        "Connector": object(&["name", "kind", "url", "enabled", "interval_s", "threshold", "options", "created_at", "updated_at"], json!({
            "name": text, "kind": text, "url": text, "enabled": {"type": "boolean"}, "interval_s": {"type": "integer"}, "threshold": text,
            "options": {"type": "object", "additionalProperties": text}, "created_at": at, "updated_at": at,
        })),
        "CycleReport": {"type": "object", "properties": {
            "tenant": text, "connector": text, "kind": text, "created": {"type": "integer"}, "updated": {"type": "integer"},
            "unchanged": {"type": "integer"}, "skipped": {"type": "integer"}, "dead_lettered": {"type": "integer"},
            "deleted_upstream": {"type": "integer"}, "errors": {"type": "array", "items": text},
        }},
        "SyncStatus": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
            "connector": text, "kind": text, "cycles_total": {"type": "integer"}, "cycles_succeeded": {"type": "integer"}, "cycles_failed": {"type": "integer"},
            "items_created": {"type": "integer"}, "items_updated": {"type": "integer"}, "items_skipped": {"type": "integer"}, "items_dead_lettered": {"type": "integer"},
            "last_success_at": {"type": ["string", "null"]}, "last_error": {"type": ["string", "null"]}, "last_error_at": {"type": ["string", "null"]},
            "last_cycle_ms": {"type": ["integer", "null"]}, "breaker": {"type": "string", "enum": ["closed", "open", "half_open"]},
        }}}}},
        "DeadLetter": {"type": "object", "properties": {
            "id": text, "connector": text, "external_id": text, "error": text, "attempts": {"type": "integer"},
            "payload_digest": text, "created_at": at, "updated_at": at,
        }},
        "DeadLetterPage": page_of("DeadLetter"),
        "Replayed": {"type": "object", "properties": {"outcome": {"type": "string", "enum": ["created", "updated", "unchanged", "skipped"]}}},
        "ConnectorList": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": schema("Connector")}}},
    })
}

/// `ConnectorIn` for one kind: its credential names and its required options.
fn connector_in(kind: &str, credentials: &[&str], options: &[&str]) -> Value {
    let secret =
        json!({"type": "string", "minLength": 1, "maxLength": vigil_service::CREDENTIAL_LEN_MAX});
    let url = json!({"type": "string", "maxLength": vigil_domain::CONNECTOR_URL_LEN_MAX,
        "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$"});
    let mut credential_props = serde_json::Map::new();
    for name in credentials {
        let value = if *name == "token_url" {
            url.clone()
        } else {
            secret.clone()
        };
        credential_props.insert((*name).to_owned(), value);
    }
    let no_controls = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$";
    let option = json!({"type": "string", "minLength": 1, "maxLength": vigil_domain::CONNECTOR_OPTION_LEN_MAX, "pattern": no_controls});
    let any_option = json!({"type": "string", "maxLength": vigil_domain::CONNECTOR_OPTION_LEN_MAX,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"});
    let mut option_props = serde_json::Map::new();
    for name in options {
        option_props.insert((*name).to_owned(), option.clone());
    }
    let mut body = object(
        &["kind", "url"],
        json!({
            "kind": {"const": kind}, "url": url, "enabled": {"type": ["boolean", "null"]},
            "interval_s": {"type": ["integer", "null"], "minimum": 10, "maximum": 86400},
            "threshold": {"type": ["string", "null"], "enum": ["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL", null]},
            "credentials": {"type": ["object", "null"], "required": credentials, "properties": credential_props, "additionalProperties": false},
            "options": {"type": "object", "required": options, "properties": option_props,
                "additionalProperties": any_option, "maxProperties": vigil_domain::CONNECTOR_OPTIONS_MAX,
                "propertyNames": option},
        }),
    );
    if options.is_empty() {
        body["properties"]["options"]["type"] = json!(["object", "null"]);
    } else {
        body["required"] = json!(["kind", "url", "options"]);
    }
    body
}

/// `base` with every key of `more` added.
fn merged(mut base: Value, more: Value) -> Value {
    if let (Some(base), Value::Object(more)) = (base.as_object_mut(), more) {
        base.extend(more);
    }
    base
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn parameters() -> Value {
    json!({
        "id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
        "key_id": {"name": "key_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
        "reason": {"name": "X-Audit-Reason", "in": "header", "required": false, "description": "Why; recorded in the audit event", "schema": {"type": "string"}},
        "limit": query("limit", "Items per page, 1-500; default 50", json!({"type": "integer", "minimum": 1, "maximum": vigil_domain::PAGE_SIZE_MAX})),
        "cursor": query("cursor", "next_cursor of the previous page", json!({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"})),
        "status": query("status", "Risk status", json!({"$ref": "#/components/schemas/RiskStatus"})),
        "source": query("source", "Source system", json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"})),
        "min_score": query("min_score", "Lowest score (impact x probability)", json!({"type": "integer", "minimum": 1, "maximum": 25})),
        "tag": query("tag", "Has this tag (empty: any)", json!({"type": "string", "maxLength": 64, "pattern": format!("^[^{FORBIDDEN}]*$")})),
        "q": query("q", "Case-insensitive text in title or description (empty: any)", json!({"type": "string", "maxLength": 200})),
        "entity_type": query("entity_type", "e.g. risk, api_key, tenant (empty: any)", json!({"type": "string", "maxLength": 200})),
        "entity_id": query("entity_id", "The entity's id (empty: any)", json!({"type": "string", "maxLength": 200})),
    })
}

fn page_of(item: &str) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": schema(item)},
        "next_cursor": {"type": ["string", "null"]},
    }})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn schemas() -> Value {
    let text = json!({"type": "string"});
    json!({
        "Problem": {"type": "object", "properties": {
            "type": text, "title": text, "status": {"type": "integer"}, "detail": text, "request_id": text,
            "errors": {"type": "array", "items": {"type": "object", "properties": {"field": text, "reason": text}}},
        }},
        "RiskStatus": {"type": "string", "enum": ["open", "mitigating", "accepted", "closed"]},
    })
}

/// The whole document: the hand-written part, with the part derived from the migrated
/// handlers and DTOs laid over it (their paths and schemas win).
pub(crate) fn document() -> Value {
    let mut document = hand_written();
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
    // What a struct-level derive cannot say: `external_id` needs a `source`.
    for name in ["RiskIn", "FindingIn"] {
        let schema = &mut document["components"]["schemas"][name];
        if schema.get("if").is_none() {
            *schema = with_source_rule(schema.take());
        }
    }
    document
}

/// Every problem a request can meet, on a derived operation that does not say otherwise.
fn with_problems(operation: &mut Value) {
    for status in [
        "400", "401", "403", "404", "408", "409", "413", "415", "422", "429", "503",
    ] {
        if operation["responses"].get(status).is_none() {
            operation["responses"][status] = problem();
        }
    }
}

fn hand_written() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Vigil", "version": env!("CARGO_PKG_VERSION"), "description": "Multi-tenant security-operations core"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": ioc_paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (vgl_...) or an access token from /api/v1/auth/login"},
                "metrics_token": {"type": "http", "scheme": "bearer", "description": "VIGIL_METRICS_TOKEN"},
            },
            "parameters": merged(parameters(), ioc_parameters()),
            "schemas": merged(merged(schemas(), ioc_schemas()), sync_schemas()),
        },
    })
}
