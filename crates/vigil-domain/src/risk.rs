use std::fmt;

use crate::text::{bounded, bounded_owned};
use crate::{ParseError, RiskId, TenantId, Timestamp, Tlp};

/// Longest risk description, in characters.
pub const DESCRIPTION_LEN_MAX: usize = 10_000;
/// Longest owner name, in characters.
pub const OWNER_LEN_MAX: usize = 200;
/// Most tags on one risk.
pub const TAGS_MAX: usize = 32;

/// Impact or probability on the 1–5 scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u8);

impl Level {
    pub fn parse(what: &'static str, raw: i64) -> Result<Self, ParseError> {
        match u8::try_from(raw) {
            Ok(value @ 1..=5) => Ok(Self(value)),
            _ => Err(ParseError::new(what, "must be an integer from 1 to 5")),
        }
    }

    pub fn get(&self) -> u8 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RiskStatus {
    #[default]
    Open,
    Mitigating,
    Accepted,
    Closed,
}

impl RiskStatus {
    pub const ALL: [RiskStatus; 4] = [
        RiskStatus::Open,
        RiskStatus::Mitigating,
        RiskStatus::Accepted,
        RiskStatus::Closed,
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "status",
                    "expected one of open, mitigating, accepted, closed",
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RiskStatus::Open => "open",
            RiskStatus::Mitigating => "mitigating",
            RiskStatus::Accepted => "accepted",
            RiskStatus::Closed => "closed",
        }
    }
}

impl fmt::Display for RiskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A risk's title: 1–300 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskTitle(String);

impl RiskTitle {
    pub const LEN_MAX: usize = 300;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("title", raw, Self::LEN_MAX, false).map(Self)
    }

    /// `parse` that keeps the buffer of an owned, already-trimmed string.
    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("title", raw, Self::LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text with a length limit: descriptions (multi-line) and owners (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedText(String);

impl BoundedText {
    pub fn description(raw: &str) -> Result<Self, ParseError> {
        bounded("description", raw, DESCRIPTION_LEN_MAX, true).map(Self)
    }

    pub fn owner(raw: &str) -> Result<Self, ParseError> {
        bounded("owner", raw, OWNER_LEN_MAX, false).map(Self)
    }

    /// `description` that keeps the buffer of an owned, already-trimmed string.
    pub fn description_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("description", raw, DESCRIPTION_LEN_MAX, true).map(Self)
    }

    /// `owner` that keeps the buffer of an owned, already-trimmed string.
    pub fn owner_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("owner", raw, OWNER_LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One label on a risk: 1–64 characters on one line; compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub const LEN_MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("tag", raw, Self::LEN_MAX, false).map(Self)
    }

    /// `parse` that keeps the buffer of an owned, already-trimmed string.
    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("tag", raw, Self::LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A risk's tags: at most `TAGS_MAX`, without duplicates, in the order first given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub fn parse<'a>(raw: impl IntoIterator<Item = &'a str>) -> Result<Self, ParseError> {
        Self::collect(raw.into_iter().map(Tag::parse))
    }

    /// `parse` over owned strings, keeping their buffers.
    pub fn parse_owned(raw: Vec<String>) -> Result<Self, ParseError> {
        Self::collect(raw.into_iter().map(Tag::parse_owned))
    }

    fn collect(parsed: impl Iterator<Item = Result<Tag, ParseError>>) -> Result<Self, ParseError> {
        let mut tags: Vec<Tag> = Vec::new();
        for tag in parsed {
            let tag = tag.map_err(|err| ParseError::new("tags", err.reason()))?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
            if tags.len() > TAGS_MAX {
                return Err(ParseError::new("tags", format!("at most {TAGS_MAX} tags")));
            }
        }
        Ok(Self(tags))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Tag::as_str)
    }

    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }
}

/// Where a record came from (`thehive`, `opencti`, `manual`, …): 1–64 characters of
/// lowercase letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source(String);

impl Source {
    pub const LEN_MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::parse_owned(raw.trim().to_owned())
    }

    /// `parse` that keeps the buffer of an owned string.
    pub fn parse_owned(mut value: String) -> Result<Self, ParseError> {
        if value.trim().len() != value.len() {
            value = value.trim().to_owned();
        }
        value.make_ascii_lowercase();
        let valid_byte =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
        if value.is_empty() || value.len() > Self::LEN_MAX || !value.bytes().all(valid_byte) {
            return Err(ParseError::new(
                "source",
                "must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-'",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The record's id in its source system; unique per tenant and source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    pub const LEN_MAX: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("external_id", raw, Self::LEN_MAX, false).map(Self)
    }

    /// `parse` that keeps the buffer of an owned, already-trimmed string.
    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("external_id", raw, Self::LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An entry of the risk register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    pub id: RiskId,
    pub tenant_id: TenantId,
    pub title: RiskTitle,
    pub description: Option<BoundedText>,
    pub impact: Level,
    pub probability: Level,
    pub status: RiskStatus,
    pub owner: Option<BoundedText>,
    pub tags: Tags,
    pub tlp: Tlp,
    pub source: Option<Source>,
    pub external_id: Option<ExternalId>,
    /// For a synced risk: whether its upstream record still exists.
    pub source_state: Option<SourceState>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Whether a synced risk's upstream record still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceState {
    Present,
    /// Deleted or merged away upstream: the risk is closed, never silently kept open or
    /// removed.
    Deleted,
    /// Still upstream, but now below its connector's threshold: the risk is closed; it
    /// opens again if the record rises above the threshold.
    BelowThreshold,
}

impl SourceState {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw {
            "present" => Ok(SourceState::Present),
            "deleted" => Ok(SourceState::Deleted),
            "below_threshold" => Ok(SourceState::BelowThreshold),
            _ => Err(ParseError::new(
                "source_state",
                "expected present, deleted or below_threshold",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            SourceState::Present => "present",
            SourceState::Deleted => "deleted",
            SourceState::BelowThreshold => "below_threshold",
        }
    }
}

impl Risk {
    /// Impact × probability, 1–25. Derived, never stored apart from its factors.
    pub fn score(&self) -> u8 {
        self.impact.get() * self.probability.get()
    }

    /// The risk after `patch`, stamped `now`. Fields the patch leaves out keep their value.
    pub fn patched(&self, patch: RiskPatch, now: Timestamp) -> Risk {
        let mut next = self.clone();
        if let Some(title) = patch.title {
            next.title = title;
        }
        if let Some(description) = patch.description {
            next.description = description;
        }
        if let Some(impact) = patch.impact {
            next.impact = impact;
        }
        if let Some(probability) = patch.probability {
            next.probability = probability;
        }
        if let Some(status) = patch.status {
            next.status = status;
        }
        if let Some(owner) = patch.owner {
            next.owner = owner;
        }
        if let Some(tags) = patch.tags {
            next.tags = tags;
        }
        if let Some(tlp) = patch.tlp {
            next.tlp = tlp;
        }
        next.updated_at = now;
        next
    }
}

/// What a caller supplies to create a risk; the store adds id and timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRisk {
    pub title: RiskTitle,
    pub description: Option<BoundedText>,
    pub impact: Level,
    pub probability: Level,
    pub status: RiskStatus,
    pub owner: Option<BoundedText>,
    pub tags: Tags,
    pub tlp: Tlp,
    source_ref: Option<(Source, Option<ExternalId>)>,
}

impl NewRisk {
    pub fn new(title: RiskTitle, impact: Level, probability: Level) -> Self {
        Self {
            title,
            description: None,
            impact,
            probability,
            status: RiskStatus::Open,
            owner: None,
            tags: Tags::default(),
            tlp: Tlp::default(),
            source_ref: None,
        }
    }

    /// Sets where the risk came from. An external id without a source is meaningless (it is
    /// unique only within its source), so it is rejected.
    pub fn with_source(
        mut self,
        source: Option<Source>,
        external_id: Option<ExternalId>,
    ) -> Result<Self, ParseError> {
        self.source_ref = match (source, external_id) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ParseError::new("external_id", "requires a source"));
            }
            (Some(source), external_id) => Some((source, external_id)),
        };
        Ok(self)
    }

    pub fn source(&self) -> Option<&Source> {
        self.source_ref.as_ref().map(|(source, _)| source)
    }

    pub fn external_id(&self) -> Option<&ExternalId> {
        self.source_ref
            .as_ref()
            .and_then(|(_, external_id)| external_id.as_ref())
    }

    pub fn into_risk(self, tenant_id: TenantId, id: RiskId, now: Timestamp) -> Risk {
        let (source, external_id) = match self.source_ref {
            Some((source, external_id)) => (Some(source), external_id),
            None => (None, None),
        };
        Risk {
            id,
            tenant_id,
            title: self.title,
            description: self.description,
            impact: self.impact,
            probability: self.probability,
            status: self.status,
            owner: self.owner,
            tags: self.tags,
            tlp: self.tlp,
            source,
            external_id,
            source_state: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A risk as a connector sees it upstream: what the register should hold for its
/// (source, external id). The owner is Vigil's own and is never synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedRisk {
    pub source: Source,
    pub external_id: ExternalId,
    pub title: RiskTitle,
    pub description: Option<BoundedText>,
    pub impact: Level,
    pub probability: Level,
    pub status: RiskStatus,
    pub tags: Tags,
    pub tlp: Tlp,
    pub source_state: SourceState,
}

impl SyncedRisk {
    pub fn into_risk(self, tenant_id: TenantId, id: RiskId, now: Timestamp) -> Risk {
        Risk {
            id,
            tenant_id,
            title: self.title,
            description: self.description,
            impact: self.impact,
            probability: self.probability,
            status: self.status,
            owner: None,
            tags: self.tags,
            tlp: self.tlp,
            source: Some(self.source),
            external_id: Some(self.external_id),
            source_state: Some(self.source_state),
            created_at: now,
            updated_at: now,
        }
    }

    /// `existing` with the upstream fields applied, or `None` when nothing would change (no
    /// update, no audit noise).
    pub fn applied_to(&self, existing: &Risk, now: Timestamp) -> Option<Risk> {
        let mut next = existing.clone();
        next.title = self.title.clone();
        next.description = self.description.clone();
        next.impact = self.impact;
        next.probability = self.probability;
        next.status = self.status;
        next.tags = self.tags.clone();
        next.tlp = self.tlp;
        next.source_state = Some(self.source_state);
        if next == *existing {
            return None;
        }
        next.updated_at = now;
        Some(next)
    }
}

/// A partial update. `None` leaves a field alone; `Some(None)` clears an optional field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskPatch {
    pub title: Option<RiskTitle>,
    pub description: Option<Option<BoundedText>>,
    pub impact: Option<Level>,
    pub probability: Option<Level>,
    pub status: Option<RiskStatus>,
    pub owner: Option<Option<BoundedText>>,
    pub tags: Option<Tags>,
    pub tlp: Option<Tlp>,
}

impl RiskPatch {
    pub fn is_empty(&self) -> bool {
        *self == RiskPatch::default()
    }
}

/// Which risks a list returns. Every set condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskFilter {
    pub status: Option<RiskStatus>,
    pub source: Option<Source>,
    pub min_score: Option<u8>,
    pub tag: Option<Tag>,
    /// Case-insensitive substring of the title or description.
    pub text: Option<String>,
}

impl RiskFilter {
    /// The reference semantics of the filter; the stores implement the same in SQL and the
    /// conformance story checks them against this.
    pub fn matches(&self, risk: &Risk) -> bool {
        let text_matches = |needle: &str| {
            let needle = needle.to_lowercase();
            risk.title.as_str().to_lowercase().contains(&needle)
                || risk
                    .description
                    .as_ref()
                    .is_some_and(|d| d.as_str().to_lowercase().contains(&needle))
        };
        self.status.is_none_or(|status| risk.status == status)
            && self
                .source
                .as_ref()
                .is_none_or(|source| risk.source.as_ref() == Some(source))
            && self.min_score.is_none_or(|min| risk.score() >= min)
            && self.tag.as_ref().is_none_or(|tag| risk.tags.contains(tag))
            && self.text.as_deref().is_none_or(text_matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn risk(impact: i64, probability: i64) -> Risk {
        let new = NewRisk::new(
            RiskTitle::parse("Unpatched VPN").unwrap(),
            Level::parse("impact", impact).unwrap(),
            Level::parse("probability", probability).unwrap(),
        );
        new.into_risk(
            TenantId::generate(),
            RiskId::generate(),
            Timestamp::from_unix_micros(0),
        )
    }

    #[test]
    fn score_is_impact_times_probability() {
        assert_eq!(risk(4, 5).score(), 20);
        assert_eq!(risk(1, 1).score(), 1);
    }

    #[test]
    fn levels_outside_one_to_five_are_rejected() {
        assert_eq!(Level::parse("impact", 0).unwrap_err().what(), "impact");
        assert!(Level::parse("probability", 6).is_err());
        assert!(Level::parse("impact", -1).is_err());
    }

    #[test]
    fn external_id_without_source_is_rejected() {
        let new = NewRisk::new(
            RiskTitle::parse("x").unwrap(),
            Level::parse("impact", 1).unwrap(),
            Level::parse("probability", 1).unwrap(),
        );
        let err = new
            .with_source(None, Some(ExternalId::parse("42").unwrap()))
            .unwrap_err();
        assert_eq!(err.what(), "external_id");
    }

    #[test]
    fn patch_changes_only_what_it_names() {
        let before = risk(2, 2);
        let patch = RiskPatch {
            status: Some(RiskStatus::Accepted),
            ..RiskPatch::default()
        };
        let after = before.patched(patch, Timestamp::from_unix_micros(5));
        assert_eq!(after.status, RiskStatus::Accepted);
        assert_eq!(after.title, before.title);
        assert_eq!(after.updated_at, Timestamp::from_unix_micros(5));
    }

    #[test]
    fn tags_are_deduplicated_and_bounded() {
        let tags = Tags::parse(["pci", "pci", "vpn"]).unwrap();
        assert_eq!(tags.iter().collect::<Vec<_>>(), ["pci", "vpn"]);
        let many: Vec<String> = (0..=TAGS_MAX).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(many.iter().map(String::as_str)).is_err());
    }

    #[test]
    fn filter_text_is_case_insensitive() {
        let filter = RiskFilter {
            text: Some("vpn".into()),
            ..RiskFilter::default()
        };
        assert!(filter.matches(&risk(1, 1)));
    }

    proptest! {
        #[test]
        fn status_round_trips(index in 0usize..4) {
            let status = RiskStatus::ALL[index];
            prop_assert_eq!(RiskStatus::parse(status.as_str()), Ok(status));
        }

        #[test]
        fn title_parse_never_panics_and_trims(raw in "\\PC{0,400}") {
            if let Ok(title) = RiskTitle::parse(&raw) {
                prop_assert_eq!(title.as_str(), raw.trim());
                prop_assert!(title.as_str().chars().count() <= RiskTitle::LEN_MAX);
            }
        }

        #[test]
        fn owned_and_borrowed_parsing_agree(raw in "\\PC{0,80}") {
            prop_assert_eq!(RiskTitle::parse(&raw), RiskTitle::parse_owned(raw.clone()));
            prop_assert_eq!(Tag::parse(&raw), Tag::parse_owned(raw.clone()));
            prop_assert_eq!(ExternalId::parse(&raw), ExternalId::parse_owned(raw.clone()));
            prop_assert_eq!(Source::parse(&raw), Source::parse_owned(raw.clone()));
            prop_assert_eq!(BoundedText::description(&raw), BoundedText::description_owned(raw.clone()));
            prop_assert_eq!(BoundedText::owner(&raw), BoundedText::owner_owned(raw.clone()));
        }

        #[test]
        fn source_round_trips(raw in "[a-z0-9._-]{1,64}") {
            let source = Source::parse(&raw).unwrap();
            prop_assert_eq!(Source::parse(source.as_str()), Ok(source.clone()));
        }
    }
}
