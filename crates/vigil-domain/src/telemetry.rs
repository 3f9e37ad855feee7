//! Telemetry events as agents send them, and the IOC matches found in them.
//!
//! An event is kept exactly as received (`body`, the JSON text of the event object); the few
//! columns beside it (client id, type, time) are read out of it for lookups. Nothing
//! downstream alters or deletes an event.

use crate::Timestamp;
use crate::text::{bounded, bounded_owned};
use crate::{EventId, FindingId, IndicatorId, IndicatorKind, MatchId, ParseError, TenantId};

/// Longest client event id, in characters.
pub const CLIENT_EVENT_ID_LEN_MAX: usize = 256;
/// Longest event type, in characters.
pub const EVENT_TYPE_LEN_MAX: usize = 128;
/// Longest matched field path kept on a match, in characters.
pub const MATCH_FIELD_LEN_MAX: usize = 256;

/// The agent's own id for an event. A second event with the same client id in the same
/// tenant is a duplicate and is not stored again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientEventId(String);

impl ClientEventId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("client_id", raw, CLIENT_EVENT_ID_LEN_MAX, false).map(Self)
    }

    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("client_id", raw, CLIENT_EVENT_ID_LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What kind of event it is, as the agent says (`network_connection`, `dns`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventType(String);

impl EventType {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("type", raw, EVENT_TYPE_LEN_MAX, false).map(Self)
    }

    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("type", raw, EVENT_TYPE_LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event to store. `body` is the event object's JSON text as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub client_id: Option<ClientEventId>,
    pub event_type: EventType,
    pub occurred_at: Option<Timestamp>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryEvent {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub client_id: Option<ClientEventId>,
    pub event_type: EventType,
    pub occurred_at: Option<Timestamp>,
    pub body: String,
    pub received_at: Timestamp,
}

/// The dotted path of a matched field (`destination.ip`) or the flat key as it appeared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchField(String);

impl MatchField {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        bounded("field", raw, MATCH_FIELD_LEN_MAX, false).map(Self)
    }

    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        bounded_owned("field", raw, MATCH_FIELD_LEN_MAX, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One hit: an event's field held a value that an indicator matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMatch {
    pub indicator_id: IndicatorId,
    pub indicator_kind: IndicatorKind,
    pub event_id: EventId,
    pub field: MatchField,
    /// The normalized value that matched.
    pub value: String,
    pub finding_id: Option<FindingId>,
    /// Whether this match reopened its finding.
    pub reopened: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IocMatch {
    pub id: MatchId,
    pub tenant_id: TenantId,
    pub indicator_id: IndicatorId,
    pub indicator_kind: IndicatorKind,
    pub event_id: EventId,
    pub field: MatchField,
    pub value: String,
    pub finding_id: Option<FindingId>,
    pub reopened: bool,
    pub matched_at: Timestamp,
}

impl NewMatch {
    pub fn into_match(self, tenant_id: TenantId, id: MatchId, now: Timestamp) -> IocMatch {
        IocMatch {
            id,
            tenant_id,
            indicator_id: self.indicator_id,
            indicator_kind: self.indicator_kind,
            event_id: self.event_id,
            field: self.field,
            value: self.value,
            finding_id: self.finding_id,
            reopened: self.reopened,
            matched_at: now,
        }
    }
}

/// Which matches a list returns. Every set condition must hold; `since` is inclusive and
/// `until` exclusive, on the match time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchFilter {
    pub finding_id: Option<FindingId>,
    pub indicator_id: Option<IndicatorId>,
    pub event_id: Option<EventId>,
    pub reopened: Option<bool>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl MatchFilter {
    /// The reference semantics of the filter, which both stores implement in SQL.
    pub fn matches(&self, m: &IocMatch) -> bool {
        self.finding_id.is_none_or(|id| m.finding_id == Some(id))
            && self.indicator_id.is_none_or(|id| m.indicator_id == id)
            && self.event_id.is_none_or(|id| m.event_id == id)
            && self.reopened.is_none_or(|reopened| m.reopened == reopened)
            && self.since.is_none_or(|since| since <= m.matched_at)
            && self.until.is_none_or(|until| m.matched_at < until)
    }
}

/// Why the correlator reopens a finding: which indicator matched what, where. Recorded in
/// the reopen's audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReopenCause {
    pub indicator_id: IndicatorId,
    pub event_id: EventId,
    pub field: MatchField,
    pub value: String,
}
