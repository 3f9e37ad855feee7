//! TheHive 5: cases through the Query API (`POST /api/v1/query`), `Authorization: Bearer` and
//! `X-Organisation` on every request. Facts: `../shared/research/connectors.md` §1.
//!
//! | TheHive case | Vigil risk |
//! |---|---|
//! | `_id` | `external_id`; `source` = `thehive` |
//! | `title` | `[INCIDENT] <title>` |
//! | `description` | "Auto-created from incident <_id>" + the description |
//! | `severity` 1..4 (LOW, MEDIUM, HIGH, CRITICAL) | impact = probability = 2, 3, 4, 5; tag LOW … CRITICAL; below the connector's threshold: skipped and counted |
//! | `stage` New / InProgress / Closed | status open / mitigating / closed (`status` is free text; the stage is not) |
//! | `tlp` 0..4 (CLEAR, GREEN, AMBER, AMBER+STRICT, RED; 5.2 numbering) | `tlp`; option `tlp_numbering=legacy` reads 3 as RED |
//! | — | tags INCIDENT, AUTOMATED, the severity label |
//! | listed no more | status closed, `source_state` deleted |

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};
use vigil_domain::{Connector, RiskStatus, Severity, SyncedRisk, Tlp};

use crate::CycleError;
use crate::apply::{
    Cursor, Incident, Mapped, apply_page, close_gone, incident_risk, items, risk_or_below,
};
use crate::error::MapError;
use crate::http::{Http, SourceError};
use crate::{Ctx, CycleReport, Reconcile};

const SOURCE_NAME: &str = "thehive";
/// Cases asked for per Query API page.
pub const THEHIVE_PAGE_SIZE: usize = 500;

/// One case as the Query API lists it; fields Vigil does not sync are not read.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    #[serde(rename = "_id")]
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub severity: Option<i64>,
    pub stage: Option<String>,
    pub tlp: Option<i64>,
    #[serde(rename = "_createdAt")]
    pub created_at: Option<i64>,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Option<i64>,
}

/// The two orders cases are read in: by `_updatedAt` (cases ever updated), and by
/// `_createdAt` (so that cases never updated, which have no `_updatedAt`, are read too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Updated,
    Created,
}

impl Order {
    pub(crate) fn field(self) -> &'static str {
        match self {
            Order::Updated => "_updatedAt",
            Order::Created => "_createdAt",
        }
    }

    /// The key of this order's cursor in the stored cursor.
    fn cursor_key(self) -> &'static str {
        match self {
            Order::Updated => "updated",
            Order::Created => "created",
        }
    }

    /// The case's value of this order's field, read from the raw record (so that a case
    /// that does not map still moves the cursor).
    pub(crate) fn key(self, case: &Value) -> Option<i64> {
        case.get(self.field()).and_then(Value::as_i64)
    }
}

pub(crate) struct TheHive {
    pub(crate) http: Http,
    pub(crate) base: String,
    pub(crate) api_key: String,
    pub(crate) organisation: String,
}

impl std::fmt::Debug for TheHive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TheHive")
            .field("base", &self.base)
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

impl TheHive {
    async fn query(&self, body: &Value) -> Result<Value, SourceError> {
        let url = format!("{}/api/v1/query?name=vigil-sync", self.base);
        let build = || {
            self.http
                .post(&url)
                .bearer_auth(&self.api_key)
                .header("X-Organisation", &self.organisation)
        };
        self.http.post_json(SOURCE_NAME, build, body).await
    }

    /// Cases whose `order` field is at least `since` (inclusive: cases sharing the last
    /// timestamp are read again and the upsert absorbs them), ascending, from `offset`.
    pub(crate) async fn cases(
        &self,
        order: Order,
        since: i64,
        offset: usize,
        size: usize,
    ) -> Result<Vec<Value>, SourceError> {
        let body = json!({"query": [
            {"_name": "listCase"},
            {"_name": "filter", "_gte": {"_field": order.field(), "_value": since}},
            {"_name": "sort", "_fields": [{order.field(): "asc"}, {"_id": "asc"}]},
            {"_name": "page", "from": offset, "to": offset + size, "extraData": []},
        ]});
        match self.query(&body).await? {
            Value::Array(cases) => Ok(cases),
            _ => Err(SourceError::Malformed(
                "not a list of cases".into(),
                SOURCE_NAME,
            )),
        }
    }

    /// Every case id, for the deletion reconciliation pass.
    pub(crate) async fn all_ids(&self, size: usize) -> Result<Vec<String>, SourceError> {
        #[derive(Deserialize)]
        struct Id {
            #[serde(rename = "_id")]
            id: String,
        }
        let mut ids = Vec::new();
        loop {
            let body = json!({"query": [
                {"_name": "listCase"},
                {"_name": "sort", "_fields": [{"_createdAt": "asc"}, {"_id": "asc"}]},
                {"_name": "page", "from": ids.len(), "to": ids.len() + size, "extraData": []},
            ], "excludeFields": ["description", "summary"]});
            let reply = self.query(&body).await?;
            let page: Vec<Id> = serde_json::from_value(reply).map_err(|_| {
                SourceError::Malformed("not a list of case ids".into(), SOURCE_NAME)
            })?;
            let n = page.len();
            ids.extend(page.into_iter().map(|case| case.id));
            if n < size {
                return Ok(ids);
            }
        }
    }
}

/// How a case maps (see the module table): `Ok(None)` when it is below the threshold.
pub fn transform(
    case: &Case,
    threshold: Severity,
    legacy_tlp: bool,
) -> Result<Option<SyncedRisk>, MapError> {
    let severity = match case.severity {
        Some(1) => Severity::Low,
        Some(2) => Severity::Medium,
        Some(3) => Severity::High,
        Some(4) => Severity::Critical,
        other => return Err(MapError::value("severity", other, "1 to 4")),
    };
    let status = match case.stage.as_deref() {
        Some("New") | None => RiskStatus::Open,
        Some("InProgress") => RiskStatus::Mitigating,
        Some("Closed") => RiskStatus::Closed,
        Some(other) => {
            return Err(MapError::value(
                "stage",
                Some(other),
                "New, InProgress or Closed",
            ));
        }
    };
    let tlp = match (case.tlp, legacy_tlp) {
        (None | Some(2), _) => Tlp::Amber,
        (Some(0), _) => Tlp::Clear,
        (Some(1), _) => Tlp::Green,
        (Some(3), true) | (Some(4), false) => Tlp::Red,
        (Some(3), false) => Tlp::AmberStrict,
        (other, _) => return Err(MapError::value("tlp", other, "0 to 4")),
    };
    let incident = Incident {
        source: SOURCE_NAME,
        external_id: &case.id,
        prefix: "[INCIDENT]",
        title: case.title.as_deref().unwrap_or_default(),
        origin: format!("incident {}", case.id),
        text: case.description.as_deref(),
        severity,
        status,
        tlp,
        kind_tag: "INCIDENT",
        extra_tag: None,
    };
    incident_risk(incident, threshold)
}

/// A raw case as what it maps to.
pub(crate) fn map(connector: &Connector, raw: &Value) -> Result<Mapped, MapError> {
    let case: Case = serde_json::from_value(raw.clone()).map_err(|err| MapError::Shape {
        what: "case",
        detail: err.to_string(),
    })?;
    let legacy_tlp = connector.options.get("tlp_numbering") == Some("legacy");
    risk_or_below(transform(&case, connector.threshold, legacy_tlp)?, &case.id)
}

/// One cycle: both read passes, then (when asked) the deletion reconciliation.
pub(crate) async fn cycle(
    ctx: &Ctx<'_>,
    reconcile: Reconcile,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let connector = ctx.connector;
    let hive = TheHive {
        http: ctx.http.clone(),
        base: connector.url.as_str().to_owned(),
        api_key: ctx
            .credentials
            .get("api_key")
            .unwrap_or_default()
            .to_owned(),
        organisation: connector
            .options
            .get("organisation")
            .unwrap_or_default()
            .to_owned(),
    };
    for order in [Order::Updated, Order::Created] {
        read_pass(ctx, &hive, order, report).await?;
    }
    if reconcile == Reconcile::Yes {
        let upstream: HashSet<String> =
            hive.all_ids(THEHIVE_PAGE_SIZE).await?.into_iter().collect();
        close_gone(ctx.services, connector, &upstream, report).await?;
    }
    Ok(())
}

/// Reads every case at or after the cursor in `order`, a page at a time: upsert the page,
/// then move the cursor to the page's last timestamp. Cases sharing that timestamp are read
/// again on the next page (or the next cycle) and come back unchanged, so ties across a page
/// boundary and a crash between the commit and the cursor save neither skip nor duplicate.
async fn read_pass(
    ctx: &Ctx<'_>,
    hive: &TheHive,
    order: Order,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let connector = ctx.connector;
    // Both orders' cursors in one value; this pass changes only its own.
    let mut cursor = Cursor::load(ctx.services, connector).await?;
    let mut since: i64 = cursor
        .get(order.cursor_key())
        .and_then(|at| at.parse().ok())
        .unwrap_or(0);
    // Cases at `since` already read in this pass; skipped by offset when a whole page shares
    // one timestamp.
    let mut offset = 0;
    loop {
        let page = hive.cases(order, since, offset, THEHIVE_PAGE_SIZE).await?;
        let page_len = page.len();
        let full = page_len == THEHIVE_PAGE_SIZE;
        let in_order: Vec<Value> = page
            .into_iter()
            .filter(|c| order.key(c).is_some())
            .collect();
        let last = in_order.iter().filter_map(|c| order.key(c)).max();
        let at_last = in_order
            .iter()
            .filter(|c| last.is_some() && order.key(c) == last)
            .count();
        let items = items(in_order, "_id", |raw| map(connector, raw));
        apply_page(ctx.services, connector, items, report).await?;
        match last {
            Some(last) if last > since => {
                offset = at_last;
                since = last;
            }
            _ => offset += page_len,
        }
        cursor.save(order.cursor_key(), &since.to_string()).await?;
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(severity: i64, stage: &str, tlp: i64) -> Case {
        Case {
            id: "~42".into(),
            title: Some("Phishing wave".into()),
            description: Some("Three users clicked".into()),
            severity: Some(severity),
            stage: Some(stage.into()),
            tlp: Some(tlp),
            created_at: Some(1),
            updated_at: None,
        }
    }

    #[test]
    fn the_table_maps_every_field() {
        let risk = transform(&case(3, "InProgress", 3), Severity::High, false)
            .unwrap()
            .unwrap();
        assert_eq!(risk.title.as_str(), "[INCIDENT] Phishing wave");
        assert_eq!(
            risk.description.unwrap().as_str(),
            "Auto-created from incident ~42\n\nThree users clicked"
        );
        assert_eq!((risk.impact.get(), risk.probability.get()), (4, 4));
        assert_eq!(risk.status, RiskStatus::Mitigating);
        assert_eq!(
            risk.tlp,
            Tlp::AmberStrict,
            "5.2 numbering: 3 is AMBER+STRICT"
        );
        assert_eq!(
            risk.tags.iter().collect::<Vec<_>>(),
            ["INCIDENT", "AUTOMATED", "HIGH"]
        );
        assert_eq!(
            (risk.source.as_str(), risk.external_id.as_str()),
            ("thehive", "~42")
        );
        let legacy = transform(&case(4, "Closed", 3), Severity::High, true)
            .unwrap()
            .unwrap();
        assert_eq!((legacy.tlp, legacy.status), (Tlp::Red, RiskStatus::Closed));
    }

    #[test]
    fn below_the_threshold_is_skipped_and_nonsense_is_refused() {
        assert_eq!(
            transform(&case(2, "New", 2), Severity::High, false).unwrap(),
            None
        );
        assert!(
            transform(&case(2, "New", 2), Severity::Low, false)
                .unwrap()
                .is_some()
        );
        assert!(transform(&case(7, "New", 2), Severity::Low, false).is_err());
        assert!(transform(&case(3, "Archived", 2), Severity::Low, false).is_err());
    }
}
