//! Findings, the indicator catalogue (with CSV and STIX import), the suppression list and
//! the match history: the use cases around IOC correlation that are not ingest.

use std::collections::HashMap;

use serde_json::Value;
use vigil_domain::{
    Confidence, ExternalId, Finding, FindingFilter, FindingId, FindingPatch, FindingStatus,
    Indicator, IndicatorFilter, IndicatorId, IndicatorPatch, IocMatch, MatchFilter, NewFinding,
    NewIndicator, NewSuppression, PageRequest, ParseError, Permission, Source, Suppression,
    SuppressionId, Timestamp,
};
use vigil_matcher::{
    BundleObject, ObjectError, StixIndicator, for_each_bundle_object, for_each_indicator_row,
};
use vigil_store::{ImportCounts, Page};

use crate::{Principal, ServiceError, ServiceResult, Services};

/// Most indicators one import may carry; a larger one is refused as a whole.
pub const IMPORT_INDICATORS_MAX: usize = 1_000_000;
/// Most rejected rows or objects an import answer lists one by one; the count is exact.
pub const IMPORT_REJECTIONS_LISTED_MAX: usize = 1_000;

/// What an import body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// An indicator CSV (see `vigil_matcher::for_each_indicator_row`).
    Csv,
    /// A STIX 2.1 bundle.
    Stix,
}

/// One row or object an import did not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRejection {
    /// The CSV line (1-based, the header is line 1) or the bundle's `objects` index.
    pub index: Option<u64>,
    /// The STIX object's id, when it has one.
    pub id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub counts: ImportCounts,
    pub n_rejected: u64,
    /// The first `IMPORT_REJECTIONS_LISTED_MAX` rejections.
    pub rejected: Vec<ImportRejection>,
    /// STIX objects of other types (identities, marking definitions, …), not indicators.
    pub skipped_other: u64,
}

impl ImportReport {
    fn reject(&mut self, rejection: ImportRejection) {
        self.n_rejected += 1;
        if self.rejected.len() < IMPORT_REJECTIONS_LISTED_MAX {
            self.rejected.push(rejection);
        }
    }
}

/// The source STIX imports are filed under.
const STIX_SOURCE: &str = "stix";

/// Refuses a `source` that names a connector kind: those are written by the sync engine only.
pub(crate) fn refuse_reserved_source(source: Option<&Source>) -> ServiceResult<()> {
    match source.and_then(vigil_domain::ConnectorKind::reserving) {
        Some(kind) => Err(ServiceError::invalid("source", reserved_reason(kind))),
        None => Ok(()),
    }
}

fn reserved_reason(kind: vigil_domain::ConnectorKind) -> String {
    format!("`{kind}` is reserved for records the {kind} connector syncs")
}

impl Services {
    // ---- findings -------------------------------------------------------------------------

    pub async fn create_finding(
        &self,
        principal: &Principal,
        finding: NewFinding,
    ) -> ServiceResult<Finding> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        refuse_reserved_source(finding.source())?;
        let change = principal.change();
        Ok(self
            .store()
            .create_finding(tenant, &change, finding)
            .await?)
    }

    pub async fn get_finding(
        &self,
        principal: &Principal,
        id: FindingId,
    ) -> ServiceResult<Finding> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().get_finding(tenant, id).await?)
    }

    pub async fn list_findings(
        &self,
        principal: &Principal,
        filter: &FindingFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Finding>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().list_findings(tenant, filter, page).await?)
    }

    pub async fn update_finding(
        &self,
        principal: &Principal,
        id: FindingId,
        patch: FindingPatch,
    ) -> ServiceResult<Finding> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        // Nothing to change: the record as it is, and no audit event.
        if patch.is_empty() {
            return Ok(self.store().get_finding(tenant, id).await?);
        }
        let change = principal.change();
        Ok(self
            .store()
            .update_finding(tenant, &change, id, patch)
            .await?)
    }

    pub async fn transition_finding(
        &self,
        principal: &Principal,
        id: FindingId,
        to: FindingStatus,
    ) -> ServiceResult<Finding> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let change = principal.change();
        // A move the lifecycle forbids from the finding's current status conflicts with its
        // state: 409, naming the moves it allows.
        match self
            .store()
            .transition_finding(tenant, &change, id, to)
            .await
        {
            Err(vigil_store::StoreError::Invalid(err)) if err.what() == "to" => {
                Err(ServiceError::Conflict(format!("to: {}", err.reason())))
            }
            other => Ok(other?),
        }
    }

    /// The matches that reopened `id`, newest first: why the finding was reopened.
    pub async fn finding_reopens(
        &self,
        principal: &Principal,
        id: FindingId,
        page: PageRequest,
    ) -> ServiceResult<Page<IocMatch>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        self.store().get_finding(tenant, id).await?;
        let filter = MatchFilter {
            finding_id: Some(id),
            reopened: Some(true),
            ..MatchFilter::default()
        };
        Ok(self.store().list_matches(tenant, &filter, page).await?)
    }

    pub async fn list_matches(
        &self,
        principal: &Principal,
        filter: &MatchFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<IocMatch>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().list_matches(tenant, filter, page).await?)
    }

    // ---- indicators -----------------------------------------------------------------------

    pub async fn create_indicator(
        &self,
        principal: &Principal,
        indicator: NewIndicator,
    ) -> ServiceResult<Indicator> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        self.check_count(tenant, vigil_domain::Counted::Indicators)
            .await?;
        indicator.validate()?;
        refuse_reserved_source(indicator.source.as_ref())?;
        let change = principal.change();
        Ok(self
            .store()
            .create_indicator(tenant, &change, indicator)
            .await?)
    }

    pub async fn get_indicator(
        &self,
        principal: &Principal,
        id: IndicatorId,
    ) -> ServiceResult<Indicator> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().get_indicator(tenant, id).await?)
    }

    pub async fn list_indicators(
        &self,
        principal: &Principal,
        filter: &IndicatorFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Indicator>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().list_indicators(tenant, filter, page).await?)
    }

    pub async fn update_indicator(
        &self,
        principal: &Principal,
        id: IndicatorId,
        patch: IndicatorPatch,
    ) -> ServiceResult<Indicator> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        // Nothing to change: the record as it is, and no audit event.
        if patch.is_empty() {
            return Ok(self.store().get_indicator(tenant, id).await?);
        }
        let change = principal.change();
        Ok(self
            .store()
            .update_indicator(tenant, &change, id, patch)
            .await?)
    }

    pub async fn delete_indicator(
        &self,
        principal: &Principal,
        id: IndicatorId,
    ) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let change = principal.change();
        Ok(self.store().delete_indicator(tenant, &change, id).await?)
    }

    /// Imports a CSV or a STIX bundle: every valid indicator is created or refreshed in one
    /// transaction, every invalid one is listed with its reason, and a document that is not
    /// a CSV or a bundle at all is refused whole.
    pub async fn import_indicators(
        &self,
        principal: &Principal,
        format: ImportFormat,
        body: String,
    ) -> ServiceResult<ImportReport> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let room = self
            .room_for(tenant, vigil_domain::Counted::Indicators)
            .await?;
        // Reading a large document is CPU work: off the async workers.
        let (indicators, mut report) = tokio::task::spawn_blocking(move || match format {
            ImportFormat::Csv => read_csv(&body),
            ImportFormat::Stix => read_stix(&body),
        })
        .await
        .map_err(|_| ServiceError::Internal("the import reader panicked".into()))??;
        let label = match format {
            ImportFormat::Csv => "csv",
            ImportFormat::Stix => "stix",
        };
        let change = principal.change();
        let indicators = dedupe_indicators(indicators);
        report.counts = match self
            .store()
            .import_indicators(
                tenant,
                &change,
                indicators,
                label,
                room.map(|(_, left)| left),
            )
            .await
        {
            Err(vigil_store::StoreError::OverLimit { .. }) => {
                let max = room.map_or(0, |(max, _)| max);
                return Err(ServiceError::PlanLimit {
                    limit: vigil_domain::Counted::Indicators.limit_name(),
                    max,
                });
            }
            other => other?,
        };
        Ok(report)
    }

    // ---- suppressions ---------------------------------------------------------------------

    pub async fn create_suppression(
        &self,
        principal: &Principal,
        suppression: NewSuppression,
    ) -> ServiceResult<Suppression> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        suppression.validate()?;
        let change = principal.change();
        Ok(self
            .store()
            .create_suppression(tenant, &change, suppression)
            .await?)
    }

    pub async fn list_suppressions(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<Suppression>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store().list_suppressions(tenant, page).await?)
    }

    pub async fn delete_suppression(
        &self,
        principal: &Principal,
        id: SuppressionId,
    ) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        let change = principal.change();
        Ok(self.store().delete_suppression(tenant, &change, id).await?)
    }
}

/// One indicator per (type, value): a later row of the same document wins.
pub fn dedupe_indicators(indicators: Vec<NewIndicator>) -> Vec<NewIndicator> {
    let mut position: HashMap<(vigil_domain::IndicatorKind, String), usize> = HashMap::new();
    let mut out: Vec<NewIndicator> = Vec::with_capacity(indicators.len());
    for indicator in indicators {
        let key = (indicator.value.kind(), indicator.value.as_str().to_owned());
        match position.get(&key) {
            Some(&i) => out[i] = indicator,
            None => {
                position.insert(key, out.len());
                out.push(indicator);
            }
        }
    }
    out
}

/// The indicators an import keeps while reading: at most `IMPORT_INDICATORS_MAX`, past which
/// the document is refused whole (and nothing more is kept while the rest is read).
#[derive(Default)]
struct Kept {
    indicators: Vec<NewIndicator>,
    too_many: bool,
}

impl Kept {
    fn push(&mut self, indicator: NewIndicator) {
        if self.indicators.len() < IMPORT_INDICATORS_MAX {
            self.indicators.push(indicator);
        } else {
            self.too_many = true;
        }
    }

    fn finish(self, report: ImportReport) -> ServiceResult<(Vec<NewIndicator>, ImportReport)> {
        if self.too_many {
            return Err(ServiceError::invalid(
                "body",
                format!("holds more than {IMPORT_INDICATORS_MAX} indicators; split it"),
            ));
        }
        Ok((self.indicators, report))
    }
}

/// Reads the CSV row by row: the valid rows are kept, the rejected ones counted and the first
/// `IMPORT_REJECTIONS_LISTED_MAX` of them listed.
fn read_csv(body: &str) -> ServiceResult<(Vec<NewIndicator>, ImportReport)> {
    let mut report = ImportReport::default();
    let mut kept = Kept::default();
    for_each_indicator_row(body, |line, row| {
        let reserved = row
            .as_ref()
            .ok()
            .and_then(|indicator| indicator.source.as_ref())
            .and_then(vigil_domain::ConnectorKind::reserving);
        match (row, reserved) {
            (Ok(_), Some(kind)) => report.reject(ImportRejection {
                index: Some(line),
                id: None,
                reason: format!("source: {}", reserved_reason(kind)),
            }),
            (Ok(indicator), None) => kept.push(indicator),
            (Err(reason), _) => report.reject(ImportRejection {
                index: Some(line),
                id: None,
                reason: reason.to_string(),
            }),
        }
    })
    .map_err(|err| ServiceError::invalid("body", err.to_string()))?;
    kept.finish(report)
}

/// Reads the bundle object by object (never as one JSON tree), keeping what `read_csv` keeps.
fn read_stix(body: &str) -> ServiceResult<(Vec<NewIndicator>, ImportReport)> {
    let mut report = ImportReport::default();
    let mut kept = Kept::default();
    for_each_bundle_object(body, |object| match object {
        BundleObject::Other => report.skipped_other += 1,
        BundleObject::Rejected(rejected) => report.reject(ImportRejection {
            index: Some(rejected.index as u64),
            id: rejected.id,
            reason: rejected.reason.to_string(),
        }),
        BundleObject::Indicators(found) => {
            for found in found {
                let id = found.source_ref.clone();
                match stix_indicator(found, STIX_SOURCE) {
                    Ok(indicator) => kept.push(indicator),
                    Err(reason) => report.reject(ImportRejection {
                        index: None,
                        id: Some(id),
                        reason: reason.to_string(),
                    }),
                }
            }
        }
    })
    .map_err(|err| ServiceError::invalid("body", err.to_string()))?;
    kept.finish(report)
}

/// A STIX indicator as a catalogue entry: a revoked one is kept but inactive, so a feed that
/// revokes an indicator switches it off.
fn stix_indicator(found: StixIndicator, source: &str) -> Result<NewIndicator, ObjectError> {
    let at = |what: &'static str, raw: Option<String>| {
        raw.map(|raw| Timestamp::parse(&raw).map_err(|err| ParseError::new(what, err.reason())))
            .transpose()
    };
    let mut new = NewIndicator::new(found.value);
    new.valid_from = at("valid_from", found.valid_from)?;
    new.valid_until = at("valid_until", found.valid_until)?;
    new.confidence = found
        .confidence
        .map(|c| Confidence::parse(i64::from(c)))
        .transpose()?;
    new.active = !found.revoked;
    new.source = Some(Source::parse(source)?);
    new.source_ref = Some(ExternalId::parse(&found.source_ref)?);
    new.validate()?;
    Ok(new)
}

/// The catalogue entries of one STIX `indicator` object, filed under `source` (a connector
/// kind) with the STIX id as `source_ref`; a revoked indicator is kept inactive. All of the
/// object's comparisons or none: an error names why it does not map.
pub fn indicators_from_stix(
    object: &Value,
    source: &str,
) -> Result<Vec<NewIndicator>, ObjectError> {
    vigil_matcher::parse_indicator(object)?
        .into_iter()
        .map(|found| stix_indicator(found, source))
        .collect()
}
