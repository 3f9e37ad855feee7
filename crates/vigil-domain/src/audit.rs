//! The audit trail's hash chain. Each tenant has its own chain; every event carries the
//! SHA-256 of its predecessor, so editing, deleting or reordering events breaks a link that
//! `ChainVerifier` finds and names.

use std::collections::HashMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::{AuditEventId, ParseError, TenantId, Timestamp};

/// A SHA-256 digest as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

/// The `prev_hash` of a chain's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Sha256Hex {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let valid = raw.len() == 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(ParseError::new(
                "sha256",
                "expected 64 lowercase hex characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn genesis() -> Self {
        Self(GENESIS_HASH.to_owned())
    }

    pub fn digest(bytes: &[u8]) -> Self {
        Self(to_hex(&Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// What an audit event says. `before` and `after` are JSON documents as text; the layer that
/// writes them owns their format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields {
    pub id: AuditEventId,
    pub tenant_id: TenantId,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub reason: Option<String>,
}

impl AuditFields {
    /// SHA-256 over the previous hash and every field, each length-prefixed so that no two
    /// different events share an encoding. The sequence number is deliberately not hashed:
    /// order is proven by the links, which lets the verifier tell reordering from editing.
    fn chained_hash(&self, prev_hash: &Sha256Hex) -> Sha256Hex {
        let mut hasher = Sha256::new();
        hasher.update(b"vigil-audit-v1");
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(prev_hash.as_str().as_bytes());
        field(self.id.to_string().as_bytes());
        field(self.tenant_id.to_string().as_bytes());
        field(&self.at.unix_micros().to_le_bytes());
        for text in [
            &self.actor,
            &self.action,
            &self.entity_type,
            &self.entity_id,
        ] {
            field(text.as_bytes());
        }
        for optional in [&self.before, &self.after, &self.reason] {
            match optional {
                None => field(&[0]),
                Some(text) => {
                    field(&[1]);
                    field(text.as_bytes());
                }
            }
        }
        Sha256Hex(to_hex(&hasher.finalize()))
    }
}

/// The last event of a chain: what the next event links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Sha256Hex,
}

impl ChainHead {
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: Sha256Hex::genesis(),
        }
    }
}

/// An event as stored: its fields, its place in the chain and the hashes that link it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub seq: i64,
    pub fields: AuditFields,
    pub prev_hash: Sha256Hex,
    pub hash: Sha256Hex,
}

impl AuditEvent {
    /// Appends `fields` after `head`.
    pub fn seal(head: &ChainHead, fields: AuditFields) -> AuditEvent {
        let hash = fields.chained_hash(&head.hash);
        AuditEvent {
            seq: head.seq + 1,
            fields,
            prev_hash: head.hash.clone(),
            hash,
        }
    }

    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// How a chain is broken at one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainBreakKind {
    /// The event's content no longer matches its hash.
    Edited,
    /// The event's predecessor is not in the chain: one or more events were deleted.
    Missing,
    /// The event's predecessor exists but is stored elsewhere in the sequence.
    Reordered,
    /// The chain ends before the recorded head: its last events were deleted.
    Truncated,
}

impl ChainBreakKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChainBreakKind::Edited => "edited",
            ChainBreakKind::Missing => "missing",
            ChainBreakKind::Reordered => "reordered",
            ChainBreakKind::Truncated => "truncated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub kind: ChainBreakKind,
    pub seq: i64,
    pub event_id: Option<AuditEventId>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub n_events: u64,
    /// The first breaks found, in chain order, at most `ChainVerifier::BREAKS_MAX`.
    pub breaks: Vec<ChainBreak>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.breaks.is_empty()
    }
}

struct Link {
    seq: i64,
    id: AuditEventId,
    prev_hash: Sha256Hex,
    hash: Sha256Hex,
    content_ok: bool,
}

/// Checks one chain, fed in stored sequence order. Keeps about 200 bytes per event so that
/// a predecessor stored out of place can be told apart from a deleted one.
#[derive(Default)]
pub struct ChainVerifier {
    links: Vec<Link>,
}

impl ChainVerifier {
    /// Breaks reported at most; a chain broken everywhere is reported by its first ones.
    pub const BREAKS_MAX: usize = 100;

    pub fn push(&mut self, event: &AuditEvent) {
        let content_ok = event.fields.chained_hash(&event.prev_hash) == event.hash;
        self.links.push(Link {
            seq: event.seq,
            id: event.fields.id,
            prev_hash: event.prev_hash.clone(),
            hash: event.hash.clone(),
            content_ok,
        });
    }

    /// `head` is the chain head the store recorded when it last appended, if any.
    pub fn finish(self, head: Option<&ChainHead>) -> ChainReport {
        let position_of: HashMap<&Sha256Hex, i64> = self
            .links
            .iter()
            .map(|link| (&link.hash, link.seq))
            .collect();
        let mut breaks = Vec::new();
        let mut expected_prev = Sha256Hex::genesis();
        let mut previous: Option<&Link> = None;
        for link in &self.links {
            if !link.content_ok {
                breaks.push(link.broken(
                    ChainBreakKind::Edited,
                    format!(
                        "event {} (seq {}) does not match its hash",
                        link.id, link.seq
                    ),
                ));
            }
            if link.prev_hash != expected_prev {
                breaks.push(Self::classify_link(link, previous, &position_of));
            }
            expected_prev = link.hash.clone();
            previous = Some(link);
        }
        let last_seq = self.links.last().map_or(0, |link| link.seq);
        if let Some(head) = head {
            if head.hash != expected_prev {
                breaks.push(ChainBreak {
                    kind: ChainBreakKind::Truncated,
                    seq: head.seq,
                    event_id: None,
                    detail: format!(
                        "the chain ends at seq {last_seq} but its recorded head is seq {}",
                        head.seq
                    ),
                });
            }
        }
        breaks.truncate(Self::BREAKS_MAX);
        ChainReport {
            n_events: self.links.len() as u64,
            breaks,
        }
    }
}

impl ChainVerifier {
    /// Names what happened when `link` does not point at the event stored before it: its
    /// predecessor sits elsewhere (reordered); the sequence has a gap (deleted); or the
    /// sequence is whole, so the event before it was replaced and re-sealed (edited).
    fn classify_link(
        link: &Link,
        previous: Option<&Link>,
        position_of: &HashMap<&Sha256Hex, i64>,
    ) -> ChainBreak {
        if let Some(seq) = position_of.get(&link.prev_hash) {
            return link.broken(
                ChainBreakKind::Reordered,
                format!(
                    "event {} (seq {}) follows the event stored at seq {seq}",
                    link.id, link.seq
                ),
            );
        }
        let expected_seq = previous.map_or(1, |previous| previous.seq + 1);
        match previous {
            Some(replaced) if link.seq == expected_seq => replaced.broken(
                ChainBreakKind::Edited,
                format!(
                    "event {} (seq {}) was replaced: its successor links to a different event",
                    replaced.id, replaced.seq
                ),
            ),
            None if link.seq == expected_seq => link.broken(
                ChainBreakKind::Edited,
                format!("event {} (seq 1) does not start the chain", link.id),
            ),
            _ => link.broken(
                ChainBreakKind::Missing,
                format!("the event before {} (seq {}) is missing", link.id, link.seq),
            ),
        }
    }
}

impl Link {
    fn broken(&self, kind: ChainBreakKind, detail: String) -> ChainBreak {
        ChainBreak {
            kind,
            seq: self.seq,
            event_id: Some(self.id),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEvent> {
        let tenant_id = TenantId::generate();
        let mut head = ChainHead::genesis();
        (0..n)
            .map(|i| {
                let event = AuditEvent::seal(
                    &head,
                    AuditFields {
                        id: AuditEventId::generate(),
                        tenant_id,
                        at: Timestamp::from_unix_micros(i as i64),
                        actor: "apikey:1".into(),
                        action: "risk.create".into(),
                        entity_type: "risk".into(),
                        entity_id: format!("r{i}"),
                        before: None,
                        after: Some(format!("{{\"n\":{i}}}")),
                        reason: None,
                    },
                );
                head = event.head();
                event
            })
            .collect()
    }

    fn check(events: &[AuditEvent], head: Option<&ChainHead>) -> Vec<(ChainBreakKind, i64)> {
        let mut verifier = ChainVerifier::default();
        events.iter().for_each(|event| verifier.push(event));
        verifier
            .finish(head)
            .breaks
            .iter()
            .map(|b| (b.kind, b.seq))
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let events = chain(5);
        let head = events[4].head();
        assert_eq!(check(&events, Some(&head)), []);
    }

    #[test]
    fn edited_event_is_named() {
        let mut events = chain(5);
        events[2].fields.after = Some("{\"n\":99}".into());
        assert_eq!(check(&events, None), [(ChainBreakKind::Edited, 3)]);
    }

    #[test]
    fn deleted_event_is_named() {
        let mut events = chain(5);
        events.remove(2);
        assert_eq!(check(&events, None), [(ChainBreakKind::Missing, 4)]);
    }

    #[test]
    fn swapped_events_are_reported_as_reordered() {
        let mut events = chain(5);
        events.swap(1, 2);
        (events[1].seq, events[2].seq) = (2, 3);
        let kinds: Vec<ChainBreakKind> = check(&events, None).into_iter().map(|(k, _)| k).collect();
        assert!(
            kinds.iter().all(|k| *k == ChainBreakKind::Reordered),
            "{kinds:?}"
        );
        assert!(!kinds.is_empty());
    }

    #[test]
    fn deleted_tail_is_reported_against_the_head() {
        let mut events = chain(5);
        let head = events[4].head();
        events.truncate(3);
        assert_eq!(
            check(&events, Some(&head)),
            [(ChainBreakKind::Truncated, 5)]
        );
    }

    #[test]
    fn rehashed_edit_breaks_the_next_link() {
        let mut events = chain(3);
        events[1].fields.actor = "intruder".into();
        let prev = ChainHead {
            seq: 1,
            hash: events[0].hash.clone(),
        };
        events[1] = AuditEvent::seal(&prev, events[1].fields.clone());
        assert_eq!(
            check(&events, None),
            [(ChainBreakKind::Edited, 2)],
            "the re-sealed event is named"
        );
    }
}
