//! Findings: something observed that needs handling, and its lifecycle.
//!
//! The lifecycle is one table, [`FindingStatus::TRANSITIONS`]; every other move is refused.
//! Reopening (closed → in progress) is the transition the IOC correlator makes when a
//! telemetry event matches an indicator that points at a closed finding.

use std::fmt;

use crate::text::{bounded, bounded_owned};
use crate::{BoundedText, ExternalId, FindingId, ParseError, RiskTitle, Source, TenantId};
use crate::{Timestamp, Tlp};

/// Longest asset name (host, application, account …), in characters.
pub const ASSET_LEN_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "severity",
                    "expected one of info, low, medium, high, critical",
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FindingStatus {
    #[default]
    Open,
    InProgress,
    Resolved,
    Closed,
}

impl FindingStatus {
    pub const ALL: [FindingStatus; 4] = [
        FindingStatus::Open,
        FindingStatus::InProgress,
        FindingStatus::Resolved,
        FindingStatus::Closed,
    ];

    /// Every allowed move: from, to. Anything else (including staying put) is refused.
    ///
    /// | from        | to                              |
    /// |-------------|---------------------------------|
    /// | open        | in_progress, resolved, closed   |
    /// | in_progress | open, resolved, closed          |
    /// | resolved    | in_progress, closed             |
    /// | closed      | in_progress (reopen)            |
    pub const TRANSITIONS: &'static [(FindingStatus, &'static [FindingStatus])] = &[
        (
            FindingStatus::Open,
            &[
                FindingStatus::InProgress,
                FindingStatus::Resolved,
                FindingStatus::Closed,
            ],
        ),
        (
            FindingStatus::InProgress,
            &[
                FindingStatus::Open,
                FindingStatus::Resolved,
                FindingStatus::Closed,
            ],
        ),
        (
            FindingStatus::Resolved,
            &[FindingStatus::InProgress, FindingStatus::Closed],
        ),
        (FindingStatus::Closed, &[FindingStatus::InProgress]),
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "status",
                    "expected one of open, in_progress, resolved, closed",
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::InProgress => "in_progress",
            FindingStatus::Resolved => "resolved",
            FindingStatus::Closed => "closed",
        }
    }

    /// The statuses this one may move to.
    pub fn next(&self) -> &'static [FindingStatus] {
        Self::TRANSITIONS
            .iter()
            .find(|(from, _)| from == self)
            .map_or(&[], |(_, to)| to)
    }

    pub fn can_become(&self, to: FindingStatus) -> bool {
        self.next().contains(&to)
    }
}

impl fmt::Display for FindingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused status change: the finding is `from`, which cannot become `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: FindingStatus,
    pub to: FindingStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} finding cannot become {}", self.from, self.to)?;
        let next = self.from.next();
        if !next.is_empty() {
            f.write_str("; it may become ")?;
            for (i, status) in next.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(status.as_str())?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for IllegalTransition {}

/// What a finding is about (a host, an application, an account): 1–500 characters on one
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset(String);

impl Asset {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("asset", raw, ASSET_LEN_MAX, false).map(Self)
    }

    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("asset", raw, ASSET_LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: FindingId,
    pub tenant_id: TenantId,
    pub title: RiskTitle,
    pub description: Option<BoundedText>,
    pub severity: Severity,
    pub status: FindingStatus,
    pub asset: Option<Asset>,
    pub source: Option<Source>,
    pub external_id: Option<ExternalId>,
    pub tlp: Tlp,
    /// How many times the finding went from closed back to in progress.
    pub reopen_count: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Finding {
    /// The finding moved to `to`, stamped `now`; refused unless the table allows it.
    /// Closed → in progress counts as a reopen.
    pub fn transitioned(
        &self,
        to: FindingStatus,
        now: Timestamp,
    ) -> Result<Finding, IllegalTransition> {
        if !self.status.can_become(to) {
            return Err(IllegalTransition {
                from: self.status,
                to,
            });
        }
        let mut next = self.clone();
        if self.status == FindingStatus::Closed {
            next.reopen_count = next.reopen_count.saturating_add(1);
        }
        next.status = to;
        next.updated_at = now;
        Ok(next)
    }

    /// The finding after the correlator's reopen, or `None` when it is not closed (a reopen
    /// of an open, in-progress or resolved finding changes nothing).
    pub fn reopened(&self, now: Timestamp) -> Option<Finding> {
        (self.status == FindingStatus::Closed)
            .then(|| self.transitioned(FindingStatus::InProgress, now).ok())
            .flatten()
    }

    pub fn patched(&self, patch: FindingPatch, now: Timestamp) -> Finding {
        let mut next = self.clone();
        if let Some(title) = patch.title {
            next.title = title;
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(severity) = patch.severity {
            next.severity = severity;
        }
        if let Some(asset) = patch.asset {
            next.asset = asset;
        }
        if let Some(tlp) = patch.tlp {
            next.tlp = tlp;
        }
        next.updated_at = now;
        next
    }
}

/// What a caller supplies to create a finding; it starts `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFinding {
    pub title: RiskTitle,
    pub description: Option<BoundedText>,
    pub severity: Severity,
    pub asset: Option<Asset>,
    pub tlp: Tlp,
    source_ref: Option<(Source, Option<ExternalId>)>,
}

impl NewFinding {
    pub fn new(title: RiskTitle, severity: Severity) -> Self {
        Self {
            title,
            description: None,
            severity,
            asset: None,
            tlp: Tlp::default(),
            source_ref: None,
        }
    }

    /// Where the finding came from, when it says.
    pub fn source(&self) -> Option<&Source> {
        self.source_ref.as_ref().map(|(source, _)| source)
    }

    /// Sets where the finding came from; an external id needs a source.
    pub fn with_source(
        mut self,
        source: Option<Source>,
        external_id: Option<ExternalId>,
    ) -> Result<Self, ParseError> {
        self.source_ref = match (source, external_id) {
            (None, None) => None,
            (None, Some(_)) => return Err(ParseError::new("external_id", "requires a source")),
            (Some(source), external_id) => Some((source, external_id)),
        };
        Ok(self)
    }

    pub fn into_finding(self, tenant_id: TenantId, id: FindingId, now: Timestamp) -> Finding {
        let (source, external_id) = match self.source_ref {
            Some((source, external_id)) => (Some(source), external_id),
            None => (None, None),
        };
        Finding {
            id,
            tenant_id,
            title: self.title,
            description: self.description,
            severity: self.severity,
            status: FindingStatus::Open,
            asset: self.asset,
            source,
            external_id,
            tlp: self.tlp,
            reopen_count: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A partial update of a finding's content. The status changes only through a transition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindingPatch {
    pub title: Option<RiskTitle>,
    pub description: Option<Option<BoundedText>>,
    pub severity: Option<Severity>,
    pub asset: Option<Option<Asset>>,
    pub tlp: Option<Tlp>,
}

impl FindingPatch {
    pub fn is_empty(&self) -> bool {
        *self == FindingPatch::default()
    }
}

/// Which findings a list returns. Every set condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindingFilter {
    pub status: Option<FindingStatus>,
    pub severity: Option<Severity>,
}

impl FindingFilter {
    /// The reference semantics of the filter, which both stores implement in SQL.
    pub fn matches(&self, finding: &Finding) -> bool {
        self.status.is_none_or(|status| finding.status == status)
            && self
                .severity
                .is_none_or(|severity| finding.severity == severity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(status: FindingStatus) -> Finding {
        let mut finding = NewFinding::new(RiskTitle::parse("beacon").unwrap(), Severity::High)
            .into_finding(
                TenantId::generate(),
                FindingId::generate(),
                Timestamp::from_unix_micros(1),
            );
        finding.status = status;
        finding
    }

    #[test]
    fn the_table_is_enforced_for_every_pair() {
        for from in FindingStatus::ALL {
            for to in FindingStatus::ALL {
                let allowed = FindingStatus::TRANSITIONS
                    .iter()
                    .any(|(f, next)| *f == from && next.contains(&to));
                let result = finding(from).transitioned(to, Timestamp::from_unix_micros(2));
                assert_eq!(result.is_ok(), allowed, "{from} -> {to}");
                assert!(from != to || !allowed, "{from} may not stay {from}");
            }
        }
    }

    #[test]
    fn only_closed_findings_reopen_and_each_reopen_counts() {
        let closed = finding(FindingStatus::Closed);
        let reopened = closed.reopened(Timestamp::from_unix_micros(5)).unwrap();
        assert_eq!(reopened.status, FindingStatus::InProgress);
        assert_eq!(reopened.reopen_count, 1);
        assert_eq!(reopened.updated_at, Timestamp::from_unix_micros(5));
        for status in [
            FindingStatus::Open,
            FindingStatus::InProgress,
            FindingStatus::Resolved,
        ] {
            assert_eq!(finding(status).reopened(Timestamp::now()), None);
        }
    }

    #[test]
    fn an_illegal_transition_says_what_is_allowed() {
        let err = finding(FindingStatus::Closed)
            .transitioned(FindingStatus::Resolved, Timestamp::now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a closed finding cannot become resolved; it may become in_progress"
        );
    }

    #[test]
    fn statuses_and_severities_round_trip() {
        for status in FindingStatus::ALL {
            assert_eq!(FindingStatus::parse(status.as_str()), Ok(status));
        }
        for severity in Severity::ALL {
            assert_eq!(Severity::parse(severity.as_str()), Ok(severity));
        }
        assert!(FindingStatus::parse("reopened").is_err());
    }
}
