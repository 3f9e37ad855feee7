//! OpenCTI: GraphQL over `POST {url}/graphql` with `Authorization: Bearer <token>`; lists
//! paged Relay-style (`first`/`after`, `pageInfo { endCursor hasNextPage }`), ordered and
//! filtered on the platform's own `updated_at` (never the user-editable `modified`). A GraphQL
//! `errors` array in an HTTP 200 fails the request. Facts: `../shared/research/connectors.md` §2.
//!
//! Three read passes per cycle, each with its own cursor (the greatest `updated_at` stored,
//! re-read inclusively so that ties and a crash before the cursor save lose nothing):
//!
//! | OpenCTI | Vigil |
//! |---|---|
//! | `incidents`, `caseIncidents`: `standard_id` | risk `external_id`; `source` = `opencti` |
//! | `name` | `[INCIDENT] <name>` |
//! | `description` | "Auto-created from incident <standard_id>" + the description |
//! | `severity` low / medium / high / critical (the default vocabularies) | impact = probability = 2, 3, 4, 5; tag LOW … CRITICAL; below the threshold: skipped; another value or none: dead letter |
//! | workflow `status.template.name` CLOSED / IN_PROGRESS / other; `revoked` | closed / mitigating / open; revoked closes |
//! | `objectMarking.definition` TLP:… | the strictest TLP, AMBER when unmarked |
//! | listed no more | closed, `source_state` deleted |
//! | `indicators` with `pattern_type` stix | catalogue entries (one per comparison), `source` = `opencti`, `source_ref` = `standard_id` |
//! | `revoked`, `valid_from`, `valid_until` | inactive when revoked; the validity window |
//! | `x_opencti_score` (else `confidence`) | confidence |
//! | another `pattern_type` (sigma, yara, …) | skipped |

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use vigil_domain::{Connector, RiskStatus, Severity, Timestamp};

use crate::CycleError;
use crate::apply::{
    Cursor, Incident, Mapped, apply_page, close_gone, incident_risk, items, risk_or_below,
    tlp_of_markings,
};
use crate::error::MapError;
use crate::http::{Http, SourceError};
use crate::{Ctx, CycleReport, Reconcile};

const SOURCE_NAME: &str = "opencti";
/// Nodes asked for per GraphQL page (pycti's default; OpenCTI answers at most 5,000).
pub const OPENCTI_PAGE_SIZE: usize = 500;

/// One list the connector reads: its GraphQL field (also its cursor key) and node fields.
struct Entity {
    root: &'static str,
    fields: &'static str,
}

const INCIDENTS: Entity = Entity {
    root: "incidents",
    fields: "id standard_id entity_type name description severity incident_type revoked \
             confidence created_at updated_at status { template { name } } \
             objectMarking { definition }",
};
const CASE_INCIDENTS: Entity = Entity {
    root: "caseIncidents",
    fields: "id standard_id entity_type name description severity priority revoked \
             created_at updated_at status { template { name } } objectMarking { definition }",
};
const INDICATORS: Entity = Entity {
    root: "indicators",
    fields: "id standard_id entity_type name pattern pattern_type valid_from valid_until \
             x_opencti_score revoked confidence created_at updated_at \
             objectMarking { definition }",
};

/// One page of a Relay connection.
struct Connection {
    nodes: Vec<Value>,
    end_cursor: Option<String>,
    has_next: bool,
}

struct OpenCti {
    http: Http,
    endpoint: String,
    token: String,
}

impl std::fmt::Debug for OpenCti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCti")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OpenCti {
    /// Runs one GraphQL request and answers its `data`.
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, SourceError> {
        let body = json!({"query": query, "variables": variables});
        let build = || self.http.post(&self.endpoint).bearer_auth(&self.token);
        let mut reply = self.http.post_json(SOURCE_NAME, build, &body).await?;
        if let Some(errors) = reply.get("errors").and_then(Value::as_array)
            && let Some(first) = errors.first()
        {
            // The message is the server's text; only its documented codes are named.
            let code = first.pointer("/extensions/code").and_then(Value::as_str);
            return Err(SourceError::Refused {
                source_name: SOURCE_NAME,
                status: 200,
                reason: graphql_reason(code),
            });
        }
        match reply.get_mut("data").map(Value::take) {
            Some(data @ Value::Object(_)) => Ok(data),
            _ => Err(SourceError::Malformed(
                "a GraphQL answer without errors or data".into(),
                SOURCE_NAME,
            )),
        }
    }

    /// One page of `entity`, `updated_at` at or after `since`, ascending.
    async fn page(
        &self,
        entity: &Entity,
        fields: &str,
        since: Option<&str>,
        after: Option<&str>,
    ) -> Result<Connection, SourceError> {
        let query = format!(
            "query VigilSync($first: Int, $after: ID, $filters: FilterGroup) {{ \
             {root}(first: $first, after: $after, filters: $filters, \
             orderBy: updated_at, orderMode: asc) {{ \
             edges {{ node {{ {fields} }} }} pageInfo {{ endCursor hasNextPage }} }} }}",
            root = entity.root,
        );
        let filters = since.map(|since| {
            json!({"mode": "and", "filterGroups": [], "filters": [
                {"key": "updated_at", "operator": "gte", "values": [since], "mode": "or"}
            ]})
        });
        let variables = json!({"first": OPENCTI_PAGE_SIZE, "after": after, "filters": filters});
        let data = self.graphql(&query, variables).await?;
        connection(&data, entity.root)
    }
}

/// What a GraphQL error in an HTTP 200 says, in fixed text: OpenCTI's authentication and
/// authorization codes by name, anything else as a plain GraphQL error.
fn graphql_reason(code: Option<&str>) -> &'static str {
    match code {
        Some("AUTH_REQUIRED") => "GraphQL error AUTH_REQUIRED (a wrong or missing token)",
        Some("FORBIDDEN_ACCESS") => "GraphQL error FORBIDDEN_ACCESS",
        Some("UNSUPPORTED_ERROR" | "DATABASE_ERROR" | "INTERNAL_SERVER_ERROR") => {
            "GraphQL error (the server failed)"
        }
        _ => "GraphQL error",
    }
}

fn connection(data: &Value, root: &str) -> Result<Connection, SourceError> {
    let malformed = |what: &str| SourceError::Malformed(format!("{root}: {what}"), SOURCE_NAME);
    let list = data.get(root).ok_or_else(|| malformed("missing"))?;
    let edges = list
        .get("edges")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no edges"))?;
    let nodes = edges
        .iter()
        .map(|edge| {
            edge.get("node")
                .cloned()
                .ok_or_else(|| malformed("an edge without a node"))
        })
        .collect::<Result<_, _>>()?;
    let info = list
        .get("pageInfo")
        .ok_or_else(|| malformed("no pageInfo"))?;
    let has_next = info
        .get("hasNextPage")
        .and_then(Value::as_bool)
        .ok_or_else(|| malformed("no pageInfo.hasNextPage"))?;
    let end_cursor = info
        .get("endCursor")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if has_next && end_cursor.is_none() {
        return Err(malformed("hasNextPage without an endCursor"));
    }
    Ok(Connection {
        nodes,
        end_cursor,
        has_next,
    })
}

/// One cycle: incidents, case-incidents and indicators, then (when asked) the deletion
/// reconciliation of the incidents.
pub(crate) async fn cycle(
    ctx: &Ctx<'_>,
    reconcile: Reconcile,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let cti = OpenCti {
        http: ctx.http.clone(),
        endpoint: format!(
            "{}/graphql",
            ctx.connector.url.as_str().trim_end_matches('/')
        ),
        token: ctx.credentials.get("token").unwrap_or_default().to_owned(),
    };
    for entity in [&INCIDENTS, &CASE_INCIDENTS, &INDICATORS] {
        read_pass(ctx, &cti, entity, report).await?;
    }
    if reconcile == Reconcile::Yes {
        let mut upstream = HashSet::new();
        for entity in [&INCIDENTS, &CASE_INCIDENTS] {
            let mut after: Option<String> = None;
            loop {
                let page = cti
                    .page(entity, "standard_id", None, after.as_deref())
                    .await?;
                upstream.extend(page.nodes.iter().filter_map(|node| {
                    node.get("standard_id")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }));
                if !page.has_next {
                    break;
                }
                after = page.end_cursor;
            }
        }
        close_gone(ctx.services, ctx.connector, &upstream, report).await?;
    }
    Ok(())
}

/// Reads `entity` from its cursor on, a page at a time; the cursor moves to the page's
/// greatest `updated_at` once the page is stored.
async fn read_pass(
    ctx: &Ctx<'_>,
    cti: &OpenCti,
    entity: &Entity,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let connector = ctx.connector;
    let mut cursor = Cursor::load(ctx.services, connector).await?;
    let since = cursor.get(entity.root).map(str::to_owned);
    let mut newest = since.as_deref().and_then(|at| Timestamp::parse(at).ok());
    let mut after: Option<String> = None;
    loop {
        let page = cti
            .page(entity, entity.fields, since.as_deref(), after.as_deref())
            .await?;
        let page_newest = page
            .nodes
            .iter()
            .filter_map(|node| node.get("updated_at")?.as_str())
            .filter_map(|at| Timestamp::parse(at).ok())
            .max();
        let items = items(page.nodes, "standard_id", |raw| map(connector, raw));
        apply_page(ctx.services, connector, items, report).await?;
        if let Some(at) = page_newest.filter(|at| newest.is_none_or(|n| *at > n)) {
            newest = Some(at);
            cursor.save(entity.root, &at.to_string()).await?;
        }
        if !page.has_next {
            return Ok(());
        }
        after = page.end_cursor;
    }
}

/// What an OpenCTI node maps to, by its `entity_type`.
pub(crate) fn map(connector: &Connector, node: &Value) -> Result<Mapped, MapError> {
    let node = node.as_object().ok_or(MapError::NotAnObject)?;
    match node.get("entity_type").and_then(Value::as_str) {
        Some("Incident") => incident(connector.threshold, node, "incident"),
        Some("Case-Incident") => incident(connector.threshold, node, "case-incident"),
        Some("Indicator") => indicator(node),
        other => Err(MapError::value(
            "entity_type",
            other,
            "Incident, Case-Incident or Indicator",
        )),
    }
}

fn string<'a>(node: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Value::as_str)
}

fn markings(node: &Map<String, Value>) -> vigil_domain::Tlp {
    let definitions = node
        .get("objectMarking")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|marking| marking.get("definition")?.as_str());
    tlp_of_markings(definitions)
}

fn incident(
    threshold: Severity,
    node: &Map<String, Value>,
    what: &str,
) -> Result<Mapped, MapError> {
    let id = string(node, "standard_id").ok_or(MapError::Missing("standard_id"))?;
    let severity = match string(node, "severity")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("low") => Severity::Low,
        Some("medium") => Severity::Medium,
        Some("high") => Severity::High,
        Some("critical") => Severity::Critical,
        _ => {
            return Err(MapError::value(
                "severity",
                node.get("severity"),
                "low, medium, high or critical",
            ));
        }
    };
    let workflow = node
        .get("status")
        .and_then(|status| status.pointer("/template/name"))
        .and_then(Value::as_str)
        .map(|name| name.trim().to_ascii_uppercase().replace(' ', "_"));
    let status = if node.get("revoked").and_then(Value::as_bool) == Some(true) {
        RiskStatus::Closed
    } else {
        match workflow.as_deref() {
            Some("CLOSED") => RiskStatus::Closed,
            Some("IN_PROGRESS") => RiskStatus::Mitigating,
            _ => RiskStatus::Open,
        }
    };
    let risk = incident_risk(
        Incident {
            source: SOURCE_NAME,
            external_id: id,
            prefix: "[INCIDENT]",
            title: string(node, "name").unwrap_or_default(),
            origin: format!("{what} {id}"),
            text: string(node, "description"),
            severity,
            status,
            tlp: markings(node),
            kind_tag: "INCIDENT",
            extra_tag: None,
        },
        threshold,
    )?;
    risk_or_below(risk, id)
}

/// An OpenCTI indicator as the STIX object it stands for, then as catalogue entries.
fn indicator(node: &Map<String, Value>) -> Result<Mapped, MapError> {
    let id = string(node, "standard_id").ok_or(MapError::Missing("standard_id"))?;
    let pattern_type = string(node, "pattern_type").unwrap_or("stix");
    if !pattern_type.eq_ignore_ascii_case("stix") {
        return Ok(Mapped::Skipped);
    }
    let mut stix = Map::new();
    stix.insert("type".into(), "indicator".into());
    stix.insert("id".into(), id.into());
    stix.insert("pattern_type".into(), "stix".into());
    for key in ["pattern", "valid_from", "valid_until", "revoked"] {
        if let Some(value) = node.get(key).filter(|v| !v.is_null()) {
            stix.insert(key.into(), value.clone());
        }
    }
    let score = node
        .get("x_opencti_score")
        .filter(|v| !v.is_null())
        .or_else(|| node.get("confidence").filter(|v| !v.is_null()));
    if let Some(score) = score {
        stix.insert("confidence".into(), score.clone());
    }
    let tlp = markings(node);
    let mut found = vigil_service::indicators_from_stix(&Value::Object(stix), SOURCE_NAME)?;
    for indicator in &mut found {
        indicator.tlp = tlp;
    }
    Ok(Mapped::Indicators(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(raw: Value) -> Map<String, Value> {
        raw.as_object().unwrap().clone()
    }

    #[test]
    fn incidents_map_severity_workflow_and_markings() {
        let raw = node(json!({
            "standard_id": "incident--1", "entity_type": "Incident", "name": "Ransomware",
            "description": "Encrypted shares", "severity": "critical", "revoked": false,
            "status": {"template": {"name": "In progress"}},
            "objectMarking": [{"definition": "TLP:GREEN"}, {"definition": "TLP:RED"}]
        }));
        let Ok(Mapped::Risk(risk)) = incident(Severity::High, &raw, "incident") else {
            panic!("a critical incident is above HIGH")
        };
        assert_eq!(
            risk.status,
            RiskStatus::Mitigating,
            "\"In progress\" is IN_PROGRESS"
        );
        assert_eq!(
            risk.description.unwrap().as_str(),
            "Auto-created from incident incident--1\n\nEncrypted shares"
        );
        assert_eq!(risk.tlp, vigil_domain::Tlp::Red);
        assert_eq!(risk.title.as_str(), "[INCIDENT] Ransomware");
        let mut low = raw.clone();
        low.insert("severity".into(), "low".into());
        assert!(matches!(
            incident(Severity::High, &low, "incident"),
            Ok(Mapped::BelowThreshold(_))
        ));
        low.insert("revoked".into(), true.into());
        let Ok(Mapped::Risk(revoked)) = incident(Severity::Low, &low, "incident") else {
            panic!("a low incident is at LOW")
        };
        assert_eq!(revoked.status, RiskStatus::Closed, "revoked closes");
        low.insert("severity".into(), "sev-9".into());
        let err = incident(Severity::Low, &low, "incident").unwrap_err();
        assert!(
            matches!(&err, MapError::Value { field: "severity", value, .. } if value.contains("sev-9")),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "severity \"sev-9\" is not low, medium, high or critical"
        );
        low.remove("severity");
        assert!(
            incident(Severity::Low, &low, "incident").is_err(),
            "no severity: dead letter"
        );
    }

    #[test]
    fn indicators_keep_score_window_and_revocation() {
        let raw = node(json!({
            "standard_id": "indicator--2", "entity_type": "Indicator",
            "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00.000Z", "valid_until": "2030-01-01T00:00:00.000Z",
            "x_opencti_score": 80, "confidence": 15, "revoked": true,
            "objectMarking": [{"definition": "TLP:CLEAR"}]
        }));
        let Mapped::Indicators(found) = indicator(&raw).unwrap() else {
            panic!("an indicator")
        };
        let entry = &found[0];
        assert_eq!(entry.value.as_str(), "198.51.100.7");
        assert!(!entry.active, "revoked upstream: kept inactive");
        assert_eq!(
            entry.confidence.map(|c| c.get()),
            Some(80),
            "the score first"
        );
        assert_eq!(entry.tlp, vigil_domain::Tlp::Clear);
        assert_eq!(entry.source_ref.as_ref().unwrap().as_str(), "indicator--2");
        let mut sigma = raw.clone();
        sigma.insert("pattern_type".into(), "sigma".into());
        assert!(matches!(indicator(&sigma), Ok(Mapped::Skipped)));
    }
}
