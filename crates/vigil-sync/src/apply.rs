//! What every connector shares once it has read a page: mapping outcomes, storing them (risks
//! and indicators, one transaction each), dead letters for what does not map, the deletion
//! reconciliation, the incident → risk rule and the stored cursor's text form.

use std::collections::HashSet;

use serde_json::Value;
use vigil_domain::{
    BoundedText, Connector, DESCRIPTION_LEN_MAX, ExternalId, Level, NewIndicator, RiskStatus,
    RiskTitle, Severity, Source, SourceState, SyncedRisk, Tags, Tlp,
};
use vigil_service::{Principal, Services};

use crate::CycleError;
use crate::CycleReport;
use crate::error::MapError;

/// What one upstream record becomes.
#[derive(Debug, Clone)]
pub(crate) enum Mapped {
    Risk(SyncedRisk),
    /// One STIX indicator can hold several comparisons: one catalogue entry each.
    Indicators(Vec<NewIndicator>),
    /// Below the connector's threshold: a risk Vigil tracks for it is closed
    /// (`below_threshold`); one it does not track is skipped.
    BelowThreshold(ExternalId),
    /// Nothing to store: a record Vigil does not keep (a pattern language it does not
    /// match, a STIX object that is not an indicator). Counted.
    Skipped,
}

/// What `incident_risk` gave, as a mapping: the risk, or below the threshold.
pub(crate) fn risk_or_below(
    risk: Option<SyncedRisk>,
    external_id: &str,
) -> Result<Mapped, MapError> {
    match risk {
        Some(risk) => Ok(Mapped::Risk(risk)),
        None => Ok(Mapped::BelowThreshold(ExternalId::parse(external_id)?)),
    }
}

/// A deletion listing with fewer than this fraction of the ids Vigil tracks for the source
/// is not trusted (a source answering an empty or truncated list by mistake would close
/// every synced risk): nothing is closed, the cycle says why, the next listing decides.
pub const SHORT_LISTING_FRACTION: f64 = 0.5;
/// The fraction rule applies from this many tracked ids on; an empty listing is never
/// trusted while Vigil tracks any.
pub const SHORT_LISTING_TRACKED_MIN: usize = 10;

/// One record of a page: its upstream id, its raw form (a dead letter's payload) and what it
/// maps to, or why it does not.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) id: String,
    pub(crate) raw: Value,
    pub(crate) mapped: Result<Mapped, MapError>,
}

/// A page's records as items, each named by its `id_key` field.
pub(crate) fn items(
    records: Vec<Value>,
    id_key: &str,
    map: impl Fn(&Value) -> Result<Mapped, MapError>,
) -> Vec<Item> {
    records
        .into_iter()
        .map(|raw| Item {
            id: raw
                .get(id_key)
                .and_then(Value::as_str)
                .map_or_else(|| format!("(no {id_key})"), str::to_owned),
            mapped: map(&raw),
            raw,
        })
        .collect()
}

/// Vigil acting in the connector's tenant, as the audit trail names it: `system`, because
/// `sync`.
pub(crate) fn engine(connector: &Connector) -> Principal {
    Principal::system_in(connector.tenant_id).because(Some("sync".into()))
}

/// Stores a page: its risks in one transaction, its indicators in another, a dead letter
/// per record that does not map (the rest goes on), and clears the dead letters of records
/// that now map. An error here (the store) fails the cycle before its cursor moves.
pub(crate) async fn apply_page(
    services: &Services,
    connector: &Connector,
    items: Vec<Item>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let engine = engine(connector);
    let mut risks = Vec::new();
    let mut below = Vec::new();
    let mut indicators = Vec::new();
    let mut mapped_ids = Vec::new();
    for item in items {
        match item.mapped {
            Ok(mapped) => {
                mapped_ids.push(item.id);
                match mapped {
                    Mapped::Risk(risk) => risks.push(risk),
                    Mapped::BelowThreshold(id) => below.push(id),
                    Mapped::Indicators(mut found) => indicators.append(&mut found),
                    Mapped::Skipped => report.skipped += 1,
                }
            }
            Err(error) => {
                let reason = error.to_string();
                tracing::warn!(component = "sync", connector = %connector.name, record = %item.id, %reason, "record does not map; dead-lettered");
                let payload = item.raw.to_string();
                services
                    .record_dead_letter(&engine, &connector.name, item.id, &reason, payload)
                    .await?;
                report.dead_lettered += 1;
            }
        }
    }
    if !risks.is_empty() {
        let outcomes = services.store_synced_risks(&engine, risks).await?;
        for outcome in outcomes {
            report.count(outcome);
        }
    }
    close_below_threshold(services, connector, below, report).await?;
    if !indicators.is_empty() {
        let label = format!("{} connector {}", connector.kind, connector.name);
        let counts = services
            .store_synced_indicators(&engine, indicators, &label)
            .await?;
        report.created += counts.created;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
    }
    if !mapped_ids.is_empty() {
        services
            .clear_dead_letters(&engine, &connector.name, mapped_ids)
            .await?;
    }
    Ok(())
}

/// Closes the tracked risks of records now below the connector's threshold; the rest of
/// `below` (never tracked, or closed already) counts as skipped.
async fn close_below_threshold(
    services: &Services,
    connector: &Connector,
    below: Vec<ExternalId>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    if below.is_empty() {
        return Ok(());
    }
    let n = below.len() as u64;
    let source = Source::parse(connector.kind.as_str())?;
    let state = SourceState::BelowThreshold;
    let closed = services
        .close_synced(&engine(connector), &source, below, state)
        .await?;
    report.below_threshold += closed;
    report.skipped += n - closed;
    Ok(())
}

/// Closes (and marks `deleted`) every risk of the connector's source whose upstream id is not
/// in `upstream`: a full id listing, since no source lists tombstones.
pub(crate) async fn close_gone(
    services: &Services,
    connector: &Connector,
    upstream: &HashSet<String>,
    report: &mut CycleReport,
) -> Result<(), CycleError> {
    let source = Source::parse(connector.kind.as_str())?;
    let engine = engine(connector);
    let present = services.tracked_external_ids(&engine, &source).await?;
    let tracked = present.len();
    let listed = present
        .iter()
        .filter(|id| upstream.contains(id.as_str()))
        .count();
    if listing_is_short(tracked, upstream.len(), listed) {
        let warning = format!(
            "the deletion listing holds {listed} of the {tracked} ids Vigil tracks (less than {:.0} %); \
             nothing was closed as deleted, the next listing decides",
            SHORT_LISTING_FRACTION * 100.0
        );
        tracing::warn!(component = "sync", connector = %connector.name, %warning);
        report.warnings.push(warning);
        return Ok(());
    }
    let gone: Vec<ExternalId> = present
        .into_iter()
        .filter(|id| !upstream.contains(id.as_str()))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    report.deleted_upstream += services
        .close_synced(&engine, &source, gone, SourceState::Deleted)
        .await?;
    Ok(())
}

/// Whether a deletion listing is too short to trust (see `SHORT_LISTING_FRACTION`).
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn listing_is_short(tracked: usize, listed_total: usize, listed_tracked: usize) -> bool {
    if tracked == 0 {
        return false;
    }
    if listed_total == 0 {
        return true;
    }
    tracked >= SHORT_LISTING_TRACKED_MIN
        && (listed_tracked as f64) < SHORT_LISTING_FRACTION * tracked as f64
}

/// An upstream incident (or vulnerability) before the common rule turns it into a risk.
pub(crate) struct Incident<'a> {
    pub(crate) source: &'a str,
    pub(crate) external_id: &'a str,
    /// `[INCIDENT]` or `[VULNERABILITY]`.
    pub(crate) prefix: &'a str,
    pub(crate) title: &'a str,
    /// Words after "Auto-created from": `incident <id>`.
    pub(crate) origin: String,
    pub(crate) text: Option<&'a str>,
    pub(crate) severity: Severity,
    pub(crate) status: RiskStatus,
    pub(crate) tlp: Tlp,
    /// The first tag (INCIDENT, VULNERABILITY); AUTOMATED and the severity follow.
    pub(crate) kind_tag: &'a str,
    pub(crate) extra_tag: Option<&'a str>,
}

/// The severity's label and the impact and probability it gives.
fn weight(severity: Severity) -> (&'static str, u8) {
    match severity {
        Severity::Info => ("INFO", 1),
        Severity::Low => ("LOW", 2),
        Severity::Medium => ("MEDIUM", 3),
        Severity::High => ("HIGH", 4),
        Severity::Critical => ("CRITICAL", 5),
    }
}

/// The incident → risk rule every connector shares: `None` below the threshold.
pub(crate) fn incident_risk(
    incident: Incident<'_>,
    threshold: Severity,
) -> Result<Option<SyncedRisk>, MapError> {
    if incident.severity < threshold {
        return Ok(None);
    }
    let (label, level) = weight(incident.severity);
    let title: String = format!("{} {}", incident.prefix, incident.title.trim())
        .chars()
        .take(RiskTitle::LEN_MAX)
        .collect();
    let mut description = format!("Auto-created from {}", incident.origin);
    if let Some(text) = incident.text.filter(|t| !t.trim().is_empty()) {
        description.push_str("\n\n");
        description.push_str(text);
    }
    let description: String = description.chars().take(DESCRIPTION_LEN_MAX).collect();
    let mut tags = vec![incident.kind_tag, "AUTOMATED", label];
    tags.extend(incident.extra_tag);
    Ok(Some(SyncedRisk {
        source: Source::parse(incident.source)?,
        external_id: ExternalId::parse(incident.external_id)?,
        title: RiskTitle::parse(&title)?,
        description: Some(BoundedText::description(&description)?),
        impact: Level::parse("impact", level.into())?,
        probability: Level::parse("probability", level.into())?,
        status: incident.status,
        tags: Tags::parse(tags)?,
        tlp: incident.tlp,
        source_state: SourceState::Present,
    }))
}

/// The most restrictive TLP among marking names such as `TLP:AMBER+STRICT` (OpenCTI's
/// `objectMarking.definition`); AMBER when there is none.
pub(crate) fn tlp_of_markings<'a>(names: impl IntoIterator<Item = &'a str>) -> Tlp {
    names
        .into_iter()
        .filter_map(|name| {
            let name = name.trim().to_ascii_uppercase();
            Some(match name.strip_prefix("TLP:")? {
                "CLEAR" | "WHITE" => Tlp::Clear,
                "GREEN" => Tlp::Green,
                "AMBER" => Tlp::Amber,
                "AMBER+STRICT" => Tlp::AmberStrict,
                "RED" => Tlp::Red,
                _ => return None,
            })
        })
        .max()
        .unwrap_or(Tlp::Amber)
}

/// A connector's stored cursor, read once per pass and saved one key at a time, each save
/// after the page it covers committed.
pub(crate) struct Cursor<'a> {
    services: &'a Services,
    connector: &'a Connector,
    stored: Option<String>,
}

impl<'a> Cursor<'a> {
    pub(crate) async fn load(
        services: &'a Services,
        connector: &'a Connector,
    ) -> Result<Self, CycleError> {
        let stored = services
            .sync_cursor(&engine(connector), &connector.name)
            .await?;
        Ok(Self {
            services,
            connector,
            stored,
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        cursor_get(self.stored.as_deref(), key)
    }

    /// Sets `key` to `value`, keeping the other keys.
    pub(crate) async fn save(&mut self, key: &str, value: &str) -> Result<(), CycleError> {
        let next = cursor_set(self.stored.as_deref(), key, value);
        self.services
            .save_sync_cursor(&engine(self.connector), &self.connector.name, &next)
            .await?;
        self.stored = Some(next);
        Ok(())
    }
}

/// A connector's stored cursor is `key:value` pairs joined by `,` (one per read pass, e.g.
/// `updated:<ms>,created:<ms>`); values hold no `,`.
fn cursor_get<'a>(stored: Option<&'a str>, key: &str) -> Option<&'a str> {
    stored
        .into_iter()
        .flat_map(|text| text.split(','))
        .find_map(|part| part.split_once(':').filter(|(k, _)| *k == key))
        .map(|(_, value)| value)
}

/// `stored` with `key` set to `value`, the other keys kept in their order.
fn cursor_set(stored: Option<&str>, key: &str, value: &str) -> String {
    let mut parts: Vec<String> = stored
        .into_iter()
        .flat_map(|text| text.split(','))
        .filter(|part| !part.is_empty() && part.split_once(':').is_none_or(|(k, _)| k != key))
        .map(str::to_owned)
        .collect();
    parts.push(format!("{key}:{value}"));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_keep_their_other_keys() {
        let stored = "updated:17,created:4";
        assert_eq!(cursor_get(Some(stored), "created"), Some("4"));
        assert_eq!(cursor_get(Some(stored), "deleted"), None);
        assert_eq!(cursor_get(None, "created"), None);
        let next = cursor_set(Some(stored), "updated", "2025-01-01T00:00:00.000000Z");
        assert_eq!(next, "created:4,updated:2025-01-01T00:00:00.000000Z");
        assert_eq!(
            cursor_get(Some(&next), "updated"),
            Some("2025-01-01T00:00:00.000000Z"),
            "a value may hold colons"
        );
        assert_eq!(cursor_set(None, "a", "1"), "a:1");
    }

    #[test]
    fn the_strictest_tlp_marking_wins() {
        assert_eq!(tlp_of_markings([]), Tlp::Amber);
        assert_eq!(tlp_of_markings(["TLP:GREEN"]), Tlp::Green);
        assert_eq!(
            tlp_of_markings(["TLP:CLEAR", "tlp:red", "PAP:RED"]),
            Tlp::Red
        );
        assert_eq!(
            tlp_of_markings(["TLP:AMBER+STRICT", "TLP:AMBER"]),
            Tlp::AmberStrict
        );
    }
}
