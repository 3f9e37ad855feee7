//! OpenRMF OSS: checklist vulnerabilities into risks. A bearer token from Keycloak (password
//! grant at the connector's `token_url` with its `client_id`, `username` and `password`), then
//! `GET {url}/api/read/artifact/systems` and, per system,
//! `GET {url}/api/report/system/{internalIdString}`: one row per host and rule, every status.
//! OpenRMF has no paging and no updated-since filter, so every cycle reads the whole lists and
//! diffs by key; the upsert leaves unchanged rows alone. Facts:
//! `../shared/research/connectors.md` §3.
//!
//! | OpenRMF report row | Vigil risk |
//! |---|---|
//! | `artifactId`:`vulnid` | `external_id`; `source` = `openrmf` |
//! | `vulnid`, `hostname`, `ruleTitle` | `[VULNERABILITY] <vulnid> on <hostname>: <ruleTitle>` |
//! | `details`, `fixText` | "Auto-created from OpenRMF checklist <artifactId>, rule <vulnid>" + details + fix |
//! | `severityOverride`, else `severity`: high / medium / low | CAT I / II / III: impact = probability = 4, 3, 2; tags HIGH … and CAT I …; below the threshold: skipped |
//! | `status` Open | open |
//! | `status` NotAFinding, Not_Applicable, Not_Reviewed | closed (never created when untracked) |
//! | a key listed no more (checklist or system removed) | closed, `source_state` deleted |

use std::collections::HashSet;

use serde_json::{Map, Value};
use vigil_domain::{Connector, RiskStatus, Severity, Tlp};

use crate::CycleError;
use crate::apply::{Incident, Item, Mapped, apply_page, close_gone, incident_risk, risk_or_below};
use crate::error::MapError;
use crate::http::{Http, SourceError};
use crate::{Ctx, CycleReport};

const SOURCE_NAME: &str = "openrmf";
/// Report rows stored per transaction.
pub const OPENRMF_PAGE_SIZE: usize = 500;

struct OpenRmf<'a> {
    ctx: &'a Ctx<'a>,
    http: Http,
    base: String,
    token: Option<String>,
}

impl OpenRmf<'_> {
    /// A fresh access token from Keycloak's token endpoint.
    async fn log_in(&mut self) -> Result<String, SourceError> {
        let credentials = &self.ctx.credentials;
        let form = [
            ("grant_type", "password"),
            (
                "client_id",
                credentials.get("client_id").unwrap_or_default(),
            ),
            ("username", credentials.get("username").unwrap_or_default()),
            ("password", credentials.get("password").unwrap_or_default()),
        ];
        let token_url = credentials.get("token_url").unwrap_or_default();
        let build = || self.http.post(token_url).form(&form);
        let (_, reply) = self.http.fetch(SOURCE_NAME, build).await?;
        let token = reply
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                SourceError::Malformed("a token answer without access_token".into(), SOURCE_NAME)
            })?
            .to_owned();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// GETs `path` with the token; a 401 (an expired token) logs in again once.
    async fn get(&mut self, path: &str) -> Result<Value, SourceError> {
        let url = format!("{}{path}", self.base);
        let mut fresh = false;
        loop {
            let token = match self.token.clone() {
                Some(token) => token,
                None => {
                    fresh = true;
                    self.log_in().await?
                }
            };
            let build = || self.http.get(&url).bearer_auth(&token);
            match self.http.fetch(SOURCE_NAME, build).await {
                Err(SourceError::Refused { status: 401, .. }) if !fresh => self.token = None,
                other => return other.map(|(_, body)| body),
            }
        }
    }
}

fn array(value: Value, what: &str) -> Result<Vec<Value>, SourceError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(SourceError::Malformed(
            format!("{what} is not a list"),
            SOURCE_NAME,
        )),
    }
}

/// One cycle: every system's report rows, stored a page at a time, then every risk whose key
/// was not listed is closed as deleted upstream.
pub(crate) async fn cycle(ctx: &Ctx<'_>, report: &mut CycleReport) -> Result<(), CycleError> {
    let connector = ctx.connector;
    let mut rmf = OpenRmf {
        ctx,
        http: ctx.http.clone(),
        base: connector.url.as_str().trim_end_matches('/').to_owned(),
        token: None,
    };
    let systems = array(
        rmf.get("/api/read/artifact/systems").await?,
        "the system list",
    )?;
    let mut upstream = HashSet::new();
    for system in systems {
        let Some(id) = system.get("internalIdString").and_then(Value::as_str) else {
            return Err(SourceError::Malformed(
                "a system without internalIdString".into(),
                SOURCE_NAME,
            )
            .into());
        };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(SourceError::Malformed(
                "a system id that is not an id (letters, digits, -)".into(),
                SOURCE_NAME,
            )
            .into());
        }
        let rows = array(
            rmf.get(&format!("/api/report/system/{id}")).await?,
            "a system report",
        )?;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let items: Vec<Item> = rows
                .by_ref()
                .take(OPENRMF_PAGE_SIZE)
                .map(|raw| {
                    let key = key(&raw);
                    upstream.extend(key.clone());
                    Item {
                        id: key.unwrap_or_else(|| "(no artifactId:vulnid)".to_owned()),
                        mapped: map(connector, &raw),
                        raw,
                    }
                })
                .collect();
            apply_page(ctx.services, connector, items, report).await?;
        }
    }
    close_gone(ctx.services, connector, &upstream, report).await
}

fn string<'a>(row: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    row.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A row's key: `artifactId:vulnid`.
fn key(row: &Value) -> Option<String> {
    let row = row.as_object()?;
    Some(format!(
        "{}:{}",
        string(row, "artifactId")?,
        string(row, "vulnid")?
    ))
}

/// What one report row maps to.
pub(crate) fn map(connector: &Connector, raw: &Value) -> Result<Mapped, MapError> {
    let row = raw.as_object().ok_or(MapError::NotAnObject)?;
    let artifact = string(row, "artifactId").ok_or(MapError::Missing("artifactId"))?;
    let vulnid = string(row, "vulnid").ok_or(MapError::Missing("vulnid"))?;
    let effective = string(row, "severityOverride").or_else(|| string(row, "severity"));
    let (severity, category) = match effective.map(str::to_ascii_lowercase).as_deref() {
        Some("high") => (Severity::High, "CAT I"),
        Some("medium") => (Severity::Medium, "CAT II"),
        Some("low") => (Severity::Low, "CAT III"),
        _ => {
            return Err(MapError::value(
                "severity",
                effective,
                "high, medium or low",
            ));
        }
    };
    let status = match string(row, "status") {
        Some("Open") => RiskStatus::Open,
        Some("NotAFinding" | "Not_Applicable" | "Not_Reviewed") => RiskStatus::Closed,
        other => {
            return Err(MapError::value(
                "status",
                other,
                "Open, NotAFinding, Not_Applicable or Not_Reviewed",
            ));
        }
    };
    let title = format!(
        "{vulnid} on {}: {}",
        string(row, "hostname").unwrap_or("(no host)"),
        string(row, "ruleTitle").unwrap_or_default()
    );
    let text: Vec<String> = [
        string(row, "details").map(str::to_owned),
        string(row, "fixText").map(|fix| format!("Fix: {fix}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let text = text.join("\n\n");
    let external_id = format!("{artifact}:{vulnid}");
    let risk = incident_risk(
        Incident {
            source: SOURCE_NAME,
            external_id: &external_id,
            prefix: "[VULNERABILITY]",
            title: &title,
            origin: format!("OpenRMF checklist {artifact}, rule {vulnid}"),
            text: Some(&text),
            severity,
            status,
            tlp: Tlp::Amber,
            kind_tag: "VULNERABILITY",
            extra_tag: Some(category),
        },
        connector.threshold,
    )?;
    risk_or_below(risk, &external_id)
}
