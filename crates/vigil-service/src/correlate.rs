//! Telemetry ingest and IOC correlation.
//!
//! A batch is parsed event by event (an invalid event is rejected with its reason, the others
//! go on), the valid events are stored in one transaction — from then on they are never lost
//! or altered — and the new ones are matched against the tenant's compiled catalogue. Each
//! match that points at a closed finding reopens it through the [`Reopener`] port; then the
//! matches are recorded. A failed reopen or match write is reported for its event and does
//! not stop the rest of the batch.
//!
//! The compiled catalogue is cached per tenant and rebuilt when the tenant's catalogue version
//! moves, which every indicator or suppression change does in its own transaction: one store
//! read per batch, never one per event or per indicator.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::value::RawValue;
use vigil_domain::{
    ClientEventId, EventId, EventType, FindingId, IndicatorId, IndicatorKind, IocMatch, MatchField,
    NewEvent, NewMatch, Permission, ReopenCause, TenantId, Timestamp,
};
use vigil_matcher::{Candidate, Index, IndexedIndicator, scan_from};
use vigil_store::{CatalogueSnapshot, Change, Store, StoreResult};

use crate::{Principal, ServiceError, ServiceResult, Services};

/// Most events in one ingest batch; a larger batch is refused whole (413 over HTTP).
pub const TELEMETRY_BATCH_EVENTS_MAX: usize = 5_000;

/// Reopens findings for the correlator: the narrow port between matching and the findings it
/// points at. `Ok(true)` when the finding was closed and now is in progress, `Ok(false)`
/// when it was not closed (nothing changes).
#[async_trait]
pub trait Reopener: Send + Sync {
    async fn reopen(
        &self,
        tenant: TenantId,
        change: &Change,
        finding: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool>;
}

/// The production reopener: the store's atomic, audited reopen.
pub struct StoreReopener(pub Arc<dyn Store>);

#[async_trait]
impl Reopener for StoreReopener {
    async fn reopen(
        &self,
        tenant: TenantId,
        change: &Change,
        finding: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool> {
        self.0.reopen_finding(tenant, change, finding, cause).await
    }
}

/// How an ingest body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// One JSON array of event objects.
    JsonArray,
    /// One event object per line.
    Ndjson,
}

/// An event of the batch that was stored (or already had been).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedEvent {
    /// Position in the batch, 0-based.
    pub index: usize,
    pub id: EventId,
    pub duplicate: bool,
}

/// An event of the batch that was refused, or whose correlation failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProblem {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub events: Vec<IngestedEvent>,
    pub rejected: Vec<EventProblem>,
    /// Every match recorded, with the batch index of its event.
    pub matches: Vec<(usize, IocMatch)>,
    /// Stored events whose reopen or match write failed; they stay stored.
    pub errors: Vec<EventProblem>,
}

impl IngestReport {
    pub fn accepted(&self) -> usize {
        self.events.iter().filter(|e| !e.duplicate).count()
    }

    pub fn duplicates(&self) -> usize {
        self.events.iter().filter(|e| e.duplicate).count()
    }
}

/// What the index needs to know about an indicator once it matched.
struct Meta {
    id: IndicatorId,
    kind: IndicatorKind,
    finding: Option<FindingId>,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
}

impl Meta {
    fn is_live(&self, now: Timestamp) -> bool {
        vigil_domain::within_validity(self.valid_from, self.valid_until, now)
    }
}

/// A tenant's catalogue compiled for matching.
pub(crate) struct Compiled {
    version: i64,
    indicators: Index,
    meta: Vec<Meta>,
    suppressions: Index,
}

impl Compiled {
    fn build(snapshot: CatalogueSnapshot) -> Self {
        let mut meta = Vec::with_capacity(snapshot.indicators.len());
        let mut indexed = Vec::with_capacity(snapshot.indicators.len());
        for indicator in snapshot.indicators {
            meta.push(Meta {
                id: indicator.id,
                kind: indicator.kind(),
                finding: indicator.finding_id,
                valid_from: indicator.valid_from,
                valid_until: indicator.valid_until,
            });
            indexed.push(IndexedIndicator {
                id: indexed.len() as u64,
                value: indicator.value,
                match_subdomains: indicator.match_subdomains,
            });
        }
        let suppressions =
            snapshot
                .suppressions
                .into_iter()
                .enumerate()
                .map(|(i, s)| IndexedIndicator {
                    id: i as u64,
                    value: s.value,
                    match_subdomains: s.match_subdomains,
                });
        Compiled {
            version: snapshot.version,
            indicators: Index::build(indexed),
            meta,
            suppressions: Index::build(suppressions),
        }
    }

    /// The live, unsuppressed indicators `candidate` matches.
    fn matches<'a>(&'a self, candidate: &Candidate, now: Timestamp, out: &mut Vec<&'a Meta>) {
        let mut suppressed = false;
        self.suppressions
            .for_each_match(candidate, |_| suppressed = true);
        if suppressed {
            return;
        }
        self.indicators.for_each_match(candidate, |id| {
            let meta = &self.meta[id as usize];
            if meta.is_live(now) {
                out.push(meta);
            }
        });
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Compiled>>>>;

/// Compiled catalogues by tenant. A tenant's slot is locked while it is rebuilt, so
/// concurrent batches wait for one build instead of each making its own.
#[derive(Default)]
pub(crate) struct CatalogueCache {
    slots: Mutex<HashMap<TenantId, Slot>>,
}

impl CatalogueCache {
    async fn get(&self, store: &Arc<dyn Store>, tenant: TenantId) -> ServiceResult<Arc<Compiled>> {
        let version = store.catalogue_version(tenant).await?;
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(slots.entry(tenant).or_default())
        };
        let mut compiled = slot.lock().await;
        if let Some(current) = compiled.as_ref().filter(|c| c.version >= version) {
            return Ok(Arc::clone(current));
        }
        let snapshot = store.catalogue_snapshot(tenant).await?;
        let built = tokio::task::spawn_blocking(move || Compiled::build(snapshot))
            .await
            .map_err(|err| ServiceError::Internal(format!("index build failed: {err}")))?;
        let built = Arc::new(built);
        *compiled = Some(Arc::clone(&built));
        Ok(built)
    }
}

/// One event of the batch that passed validation: its position and its candidates (the event
/// itself goes to the store).
struct Parsed {
    index: usize,
    candidates: Vec<Candidate>,
}

/// Splits a body into event texts, by format. A JSON array that does not parse is refused
/// whole: there is no telling where its events begin.
fn split_batch(body: &str, format: BatchFormat) -> ServiceResult<Vec<&str>> {
    match format {
        BatchFormat::JsonArray => {
            let events: Vec<&RawValue> = serde_json::from_str(body).map_err(|err| {
                ServiceError::invalid("body", format!("not a JSON array of events: {err}"))
            })?;
            Ok(events.into_iter().map(RawValue::get).collect())
        }
        BatchFormat::Ndjson => Ok(body
            .lines()
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.trim().is_empty())
            .collect()),
    }
}

/// An event object, read in one pass: `properties` is scanned for candidates as it is parsed
/// and never kept as a tree.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventHead<'a> {
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "scan_properties")]
    properties: Option<Vec<Candidate>>,
}

fn scan_properties<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Candidate>>, D::Error> {
    match scan_from(deserializer, false)? {
        Some(scanned) => Ok(Some(scanned.candidates)),
        None => Err(serde::de::Error::custom(
            "`properties` must be a JSON object",
        )),
    }
}

/// One event's text: the event to store and the candidates of its properties.
fn parse_event(raw: &str) -> Result<(NewEvent, Vec<Candidate>), String> {
    if !raw.trim_start().starts_with('{') {
        return Err("an event must be a JSON object".into());
    }
    let head: EventHead<'_> = serde_json::from_str(raw).map_err(|err| {
        let message = err.to_string();
        message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned()
    })?;
    let candidates = head.properties.ok_or("the event has no `properties`")?;
    let event_type = head.event_type.ok_or("the event has no `type`")?;
    let event = NewEvent {
        client_id: head
            .client_id
            .map(|c| ClientEventId::parse(&c))
            .transpose()
            .map_err(|err| err.to_string())?,
        event_type: EventType::parse(&event_type).map_err(|err| err.to_string())?,
        occurred_at: head
            .timestamp
            .map(|raw| Timestamp::parse(&raw))
            .transpose()
            .map_err(|err| err.to_string())?,
        body: raw.to_owned(),
    };
    Ok((event, candidates))
}

/// The matches of one event, one per (indicator, field, value).
fn match_event(
    compiled: &Compiled,
    event_id: EventId,
    candidates: &[Candidate],
    now: Timestamp,
) -> Vec<NewMatch> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut hits = Vec::new();
    for candidate in candidates {
        hits.clear();
        compiled.matches(candidate, now, &mut hits);
        for meta in &hits {
            if !seen.insert((
                meta.id,
                candidate.field().to_owned(),
                candidate.value().to_owned(),
            )) {
                continue;
            }
            let Ok(field) = MatchField::parse(candidate.field()) else {
                continue;
            };
            out.push(NewMatch {
                indicator_id: meta.id,
                indicator_kind: meta.kind,
                event_id,
                field,
                value: candidate.value().to_owned(),
                finding_id: meta.finding,
                reopened: false,
            });
        }
    }
    out
}

impl Services {
    /// Stores a batch of telemetry and correlates it (see the module documentation).
    pub async fn ingest(
        &self,
        principal: &Principal,
        body: &str,
        format: BatchFormat,
    ) -> ServiceResult<IngestReport> {
        let tenant = principal.require_tenant(Permission::IngestTelemetry)?;
        let raw_events = split_batch(body, format)?;
        if raw_events.is_empty() {
            return Err(ServiceError::invalid("body", "the batch holds no events"));
        }
        if raw_events.len() > TELEMETRY_BATCH_EVENTS_MAX {
            return Err(ServiceError::TooLarge(format!(
                "the batch holds {} events; at most {TELEMETRY_BATCH_EVENTS_MAX} are accepted",
                raw_events.len()
            )));
        }
        let mut report = IngestReport::default();
        let mut parsed = Vec::with_capacity(raw_events.len());
        let mut events = Vec::with_capacity(raw_events.len());
        for (index, raw) in raw_events.into_iter().enumerate() {
            match parse_event(raw) {
                Ok((event, candidates)) => {
                    events.push(event);
                    parsed.push(Parsed { index, candidates });
                }
                Err(reason) => report.rejected.push(EventProblem { index, reason }),
            }
        }
        if parsed.is_empty() {
            return Ok(report);
        }
        let n = u64::try_from(events.len()).unwrap_or(u64::MAX);
        self.meter(tenant, vigil_domain::Meter::Events, n).await?;
        let stored = self.store().insert_events(tenant, events).await?;
        let compiled = self.catalogues.get(self.store(), tenant).await;
        let now = Timestamp::now();
        let mut found = Vec::new();
        for (p, stored) in parsed.iter().zip(&stored) {
            report.events.push(IngestedEvent {
                index: p.index,
                id: stored.id,
                duplicate: stored.duplicate,
            });
            if let (false, Ok(compiled)) = (stored.duplicate, &compiled) {
                let matches = match_event(compiled, stored.id, &p.candidates, now);
                found.extend(matches.into_iter().map(|m| (p.index, m)));
            }
        }
        if let Err(err) = compiled {
            // The events are stored; correlation could not run. Say so per event.
            tracing::error!(error = %err, "catalogue unavailable; batch stored without matching");
            report
                .errors
                .extend(
                    report
                        .events
                        .iter()
                        .filter(|e| !e.duplicate)
                        .map(|e| EventProblem {
                            index: e.index,
                            reason: "stored, but not correlated: the catalogue could not be read"
                                .into(),
                        }),
                );
            return Ok(report);
        }
        self.reopen_and_record(principal, tenant, found, &mut report)
            .await;
        Ok(report)
    }

    /// Reopens the findings `found` points at, then records the matches. Failures are
    /// reported per event.
    async fn reopen_and_record(
        &self,
        principal: &Principal,
        tenant: TenantId,
        mut found: Vec<(usize, NewMatch)>,
        report: &mut IngestReport,
    ) {
        let change = principal
            .clone()
            .because(Some("telemetry matched an indicator".into()))
            .change();
        // One reopen attempt per finding and batch: once it answered, later matches of the
        // same finding are not reopens.
        let mut settled: HashSet<FindingId> = HashSet::new();
        for (index, m) in &mut found {
            let Some(finding) = m.finding_id else {
                continue;
            };
            if settled.contains(&finding) {
                continue;
            }
            let cause = ReopenCause {
                indicator_id: m.indicator_id,
                event_id: m.event_id,
                field: m.field.clone(),
                value: m.value.clone(),
            };
            match self.reopener.reopen(tenant, &change, finding, &cause).await {
                Ok(reopened) => {
                    m.reopened = reopened;
                    settled.insert(finding);
                }
                Err(err) => {
                    tracing::error!(error = %err, %finding, "reopen failed");
                    report.errors.push(EventProblem {
                        index: *index,
                        // No finding id: the ingest role that reads this answer may not
                        // read findings.
                        reason: "a matched finding could not be reopened (see the server \
                                 log); the match is recorded as not reopening it"
                            .to_owned(),
                    });
                }
            }
        }
        if found.is_empty() {
            return;
        }
        let (indexes, matches): (Vec<usize>, Vec<NewMatch>) = found.into_iter().unzip();
        match self.store().record_matches(tenant, matches).await {
            Ok(recorded) => report.matches.extend(indexes.into_iter().zip(recorded)),
            Err(err) => {
                tracing::error!(error = %err, "recording matches failed");
                let affected: HashSet<usize> = indexes.into_iter().collect();
                report.errors.extend(affected.into_iter().map(|index| {
                    EventProblem {
                        index,
                        reason:
                            "stored, but its matches could not be recorded (see the server log)"
                                .to_owned(),
                    }
                }));
            }
        }
    }
}
