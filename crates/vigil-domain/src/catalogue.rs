//! The indicator catalogue and the suppression list: what the correlator matches telemetry
//! against, and what it never fires on.

use crate::{
    BoundedText, ExternalId, FindingId, IndicatorId, IndicatorKind, IndicatorValue, ParseError,
    Source, SuppressionId, TenantId, Timestamp, Tlp,
};

/// How sure the source is, 0–100 (STIX `confidence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Confidence(u8);

impl Confidence {
    pub fn parse(raw: i64) -> Result<Self, ParseError> {
        match u8::try_from(raw) {
            Ok(value @ 0..=100) => Ok(Self(value)),
            _ => Err(ParseError::new(
                "confidence",
                "must be an integer from 0 to 100",
            )),
        }
    }

    pub fn get(&self) -> u8 {
        self.0
    }
}

/// An indicator of compromise in a tenant's catalogue. Unique per (tenant, kind, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub id: IndicatorId,
    pub tenant_id: TenantId,
    pub value: IndicatorValue,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub confidence: Option<Confidence>,
    pub tlp: Tlp,
    pub active: bool,
    pub source: Option<Source>,
    /// The indicator's id at its source, e.g. a STIX id.
    pub source_ref: Option<ExternalId>,
    /// The finding a match reopens.
    pub finding_id: Option<FindingId>,
    /// For domains: also match every subdomain.
    pub match_subdomains: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Indicator {
    /// Whether the indicator may match at `now`: active and inside its validity window
    /// (`valid_from` inclusive, `valid_until` exclusive).
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.active && within_validity(self.valid_from, self.valid_until, now)
    }

    pub fn kind(&self) -> IndicatorKind {
        self.value.kind()
    }

    /// The indicator after `patch`, stamped `now`; fails when the window would end before it
    /// starts or subdomain matching is asked of another kind than `domain`.
    pub fn patched(&self, patch: IndicatorPatch, now: Timestamp) -> Result<Indicator, ParseError> {
        let mut next = self.clone();
        if let Some(valid_from) = patch.valid_from {
            next.valid_from = valid_from;
        }
        if let Some(valid_until) = patch.valid_until {
            next.valid_until = valid_until;
        }
        if let Some(confidence) = patch.confidence {
            next.confidence = confidence;
        }
        if let Some(tlp) = patch.tlp {
            next.tlp = tlp;
        }
        if let Some(active) = patch.active {
            next.active = active;
        }
        if let Some(finding_id) = patch.finding_id {
            next.finding_id = finding_id;
        }
        if let Some(match_subdomains) = patch.match_subdomains {
            next.match_subdomains = match_subdomains;
        }
        check_window(next.valid_from, next.valid_until)?;
        check_subdomains(&next.value, next.match_subdomains)?;
        next.updated_at = now;
        Ok(next)
    }
}

/// Whether `now` lies in a validity window: `from` inclusive, `until` exclusive, an absent
/// end unbounded. The one rule for indicators in the catalogue, the correlator and `hunt`.
pub fn within_validity(from: Option<Timestamp>, until: Option<Timestamp>, now: Timestamp) -> bool {
    from.is_none_or(|from| from <= now) && until.is_none_or(|until| now < until)
}

fn check_window(from: Option<Timestamp>, until: Option<Timestamp>) -> Result<(), ParseError> {
    match (from, until) {
        (Some(from), Some(until)) if until <= from => Err(ParseError::new(
            "valid_until",
            "must be later than valid_from",
        )),
        _ => Ok(()),
    }
}

fn check_subdomains(value: &IndicatorValue, match_subdomains: bool) -> Result<(), ParseError> {
    if match_subdomains && value.kind() != IndicatorKind::Domain {
        return Err(ParseError::new(
            "match_subdomains",
            "applies to domain indicators only",
        ));
    }
    Ok(())
}

/// What a caller supplies to add (or, on import, refresh) an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIndicator {
    pub value: IndicatorValue,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub confidence: Option<Confidence>,
    pub tlp: Tlp,
    pub active: bool,
    pub source: Option<Source>,
    pub source_ref: Option<ExternalId>,
    pub finding_id: Option<FindingId>,
    pub match_subdomains: bool,
}

impl NewIndicator {
    /// An active indicator with no window, confidence, source or finding.
    pub fn new(value: IndicatorValue) -> Self {
        Self {
            value,
            valid_from: None,
            valid_until: None,
            confidence: None,
            tlp: Tlp::default(),
            active: true,
            source: None,
            source_ref: None,
            finding_id: None,
            match_subdomains: false,
        }
    }

    /// Whether the indicator may match at `now` (see [`Indicator::is_live`]).
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.active && within_validity(self.valid_from, self.valid_until, now)
    }

    /// Checks the rules that span fields: the window's order and subdomain matching.
    pub fn validate(&self) -> Result<(), ParseError> {
        check_window(self.valid_from, self.valid_until)?;
        check_subdomains(&self.value, self.match_subdomains)
    }

    pub fn into_indicator(self, tenant_id: TenantId, id: IndicatorId, now: Timestamp) -> Indicator {
        Indicator {
            id,
            tenant_id,
            value: self.value,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            confidence: self.confidence,
            tlp: self.tlp,
            active: self.active,
            source: self.source,
            source_ref: self.source_ref,
            finding_id: self.finding_id,
            match_subdomains: self.match_subdomains,
            created_at: now,
            updated_at: now,
        }
    }

    /// `existing` refreshed with this indicator's fields (a repeated import), or `None` when
    /// nothing would change. Id and creation time stay.
    pub fn refresh(&self, existing: &Indicator, now: Timestamp) -> Option<Indicator> {
        let next =
            self.clone()
                .into_indicator(existing.tenant_id, existing.id, existing.created_at);
        if next == *existing {
            return None;
        }
        Some(Indicator {
            updated_at: now,
            ..next
        })
    }
}

/// A partial update. `None` leaves a field alone; `Some(None)` clears an optional field.
/// The type and value never change: they are the indicator's identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndicatorPatch {
    pub valid_from: Option<Option<Timestamp>>,
    pub valid_until: Option<Option<Timestamp>>,
    pub confidence: Option<Option<Confidence>>,
    pub tlp: Option<Tlp>,
    pub active: Option<bool>,
    pub finding_id: Option<Option<FindingId>>,
    pub match_subdomains: Option<bool>,
}

impl IndicatorPatch {
    pub fn is_empty(&self) -> bool {
        *self == IndicatorPatch::default()
    }
}

/// Which indicators a list returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndicatorFilter {
    pub kind: Option<IndicatorKind>,
    /// The normalized value (parse it with the kind first).
    pub value: Option<String>,
    pub finding_id: Option<FindingId>,
}

/// A value the correlator never fires on, even when an indicator lists it: an exact value of
/// any kind, a CIDR network (every address in it), or a domain with all its subdomains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub id: SuppressionId,
    pub tenant_id: TenantId,
    pub value: IndicatorValue,
    pub match_subdomains: bool,
    pub reason: Option<BoundedText>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    pub value: IndicatorValue,
    pub match_subdomains: bool,
    pub reason: Option<BoundedText>,
}

impl NewSuppression {
    pub fn validate(&self) -> Result<(), ParseError> {
        check_subdomains(&self.value, self.match_subdomains)
    }

    pub fn into_suppression(
        self,
        tenant_id: TenantId,
        id: SuppressionId,
        now: Timestamp,
    ) -> Suppression {
        Suppression {
            id,
            tenant_id,
            value: self.value,
            match_subdomains: self.match_subdomains,
            reason: self.reason,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indicator(raw: &str) -> Indicator {
        NewIndicator::new(IndicatorValue::parse(IndicatorKind::Domain, raw).unwrap())
            .into_indicator(
                TenantId::generate(),
                IndicatorId::generate(),
                Timestamp::from_unix_micros(0),
            )
    }

    #[test]
    fn liveness_honours_the_flag_and_the_half_open_window() {
        let mut ioc = indicator("evil.example");
        ioc.valid_from = Some(Timestamp::from_unix_micros(10));
        ioc.valid_until = Some(Timestamp::from_unix_micros(20));
        assert!(!ioc.is_live(Timestamp::from_unix_micros(9)));
        assert!(ioc.is_live(Timestamp::from_unix_micros(10)));
        assert!(ioc.is_live(Timestamp::from_unix_micros(19)));
        assert!(!ioc.is_live(Timestamp::from_unix_micros(20)));
        ioc.active = false;
        assert!(!ioc.is_live(Timestamp::from_unix_micros(15)));
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_refused() {
        let mut new =
            NewIndicator::new(IndicatorValue::parse(IndicatorKind::Md5, &"a".repeat(32)).unwrap());
        new.valid_from = Some(Timestamp::from_unix_micros(10));
        new.valid_until = Some(Timestamp::from_unix_micros(10));
        assert_eq!(new.validate().unwrap_err().what(), "valid_until");
        new.valid_until = None;
        new.match_subdomains = true;
        assert_eq!(new.validate().unwrap_err().what(), "match_subdomains");
    }

    #[test]
    fn a_refresh_with_the_same_fields_changes_nothing() {
        let existing = indicator("evil.example");
        let same = NewIndicator::new(existing.value.clone());
        assert_eq!(
            same.refresh(&existing, Timestamp::from_unix_micros(5)),
            None
        );
        let mut more = same.clone();
        more.confidence = Some(Confidence::parse(80).unwrap());
        let refreshed = more
            .refresh(&existing, Timestamp::from_unix_micros(5))
            .unwrap();
        assert_eq!(refreshed.id, existing.id);
        assert_eq!(refreshed.created_at, existing.created_at);
        assert_eq!(refreshed.updated_at, Timestamp::from_unix_micros(5));
        assert_eq!(refreshed.confidence.map(|c| c.get()), Some(80));
    }

    #[test]
    fn confidence_is_bounded() {
        assert!(Confidence::parse(0).is_ok());
        assert!(Confidence::parse(100).is_ok());
        assert!(Confidence::parse(101).is_err());
        assert!(Confidence::parse(-1).is_err());
    }
}
