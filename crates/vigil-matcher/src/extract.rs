//! Candidate extraction: the normalized values of an event's IOC-bearing fields.

use serde_json::{Map, Value};
use vigil_domain::{IndicatorKind, IndicatorValue};

use crate::fields::{OBSERVABLES_KEY, can_match, field_kinds, has_fields_below, observable_kinds};

/// Most candidates taken from one event; the rest of the event is not looked at.
pub const CANDIDATES_PER_EVENT_MAX: usize = 256;
/// Deepest nesting of objects and arrays looked into; deeper values are ignored.
pub const EVENT_DEPTH_MAX: usize = 16;
/// Longest field name a candidate carries; longer observable names are replaced by
/// [`OBSERVABLES_KEY`](crate::OBSERVABLES_KEY).
pub const FIELD_LEN_MAX: usize = 128;

/// A set of indicator kinds, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(u16);

const _: () = assert!(IndicatorKind::ALL.len() <= 16);

impl KindSet {
    pub fn with(self, kind: IndicatorKind) -> Self {
        Self(self.0 | 1 << kind.index())
    }

    pub fn contains(self, kind: IndicatorKind) -> bool {
        self.0 & (1 << kind.index()) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = IndicatorKind> {
        IndicatorKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

/// One value seen in an event, normalized like an indicator, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    field: String,
    value: IndicatorValue,
    kinds: KindSet,
}

impl Candidate {
    pub fn new(field: impl Into<String>, value: IndicatorValue) -> Self {
        let kinds = IndicatorKind::ALL
            .into_iter()
            .filter(|indicator_kind| can_match(value.kind(), *indicator_kind))
            .fold(KindSet::default(), KindSet::with);
        Self {
            field: field.into(),
            value,
            kinds,
        }
    }

    /// The dotted ECS path, OCSF path or flat key the value was found under.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The normalized value, the form that is looked up and reported.
    pub fn value(&self) -> &str {
        self.value.as_str()
    }

    pub fn indicator_value(&self) -> &IndicatorValue {
        &self.value
    }

    /// The kinds of indicator this candidate can match: its own kind, plus `cidr` for an
    /// address.
    pub fn kinds(&self) -> KindSet {
        self.kinds
    }
}

/// The candidates of `event`, an object whose keys are ECS paths (nested or dotted), OCSF
/// paths, flat agent keys and `observables`, in the order they appear. Only whitelisted fields
/// ([`FIELDS`](crate::FIELDS)) yield candidates; values that do not parse as one of the field's
/// kinds are skipped. Bounded by [`CANDIDATES_PER_EVENT_MAX`] and [`EVENT_DEPTH_MAX`]. The same
/// value under two fields is two candidates.
pub fn candidates(event: &Value) -> Vec<Candidate> {
    let mut walker = Walker {
        path: String::new(),
        out: Vec::new(),
    };
    if let Value::Object(map) = event {
        walker.object(map, 0);
    }
    debug_assert!(walker.out.len() <= CANDIDATES_PER_EVENT_MAX);
    walker.out
}

struct Walker {
    /// The dotted path of the value being visited.
    path: String,
    out: Vec<Candidate>,
}

impl Walker {
    fn is_full(&self) -> bool {
        self.out.len() >= CANDIDATES_PER_EVENT_MAX
    }

    fn object(&mut self, map: &Map<String, Value>, depth: usize) {
        if depth >= EVENT_DEPTH_MAX {
            return;
        }
        for (key, value) in map {
            if self.is_full() {
                return;
            }
            let parent_len = self.path.len();
            if parent_len > 0 {
                self.path.push('.');
            }
            self.path.push_str(key);
            if self.path == OBSERVABLES_KEY {
                self.observables(value);
            } else {
                self.value(value, depth);
            }
            self.path.truncate(parent_len);
        }
    }

    fn value(&mut self, value: &Value, depth: usize) {
        match value {
            Value::String(raw) => {
                if let Some(value) =
                    field_kinds(&self.path).and_then(|kinds| parse_first(raw, kinds))
                {
                    self.out.push(Candidate::new(self.path.clone(), value));
                }
            }
            Value::Object(map) if has_fields_below(&self.path) => self.object(map, depth + 1),
            Value::Array(items) if depth + 1 < EVENT_DEPTH_MAX => {
                for item in items {
                    if self.is_full() {
                        return;
                    }
                    self.value(item, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// OCSF `observables[]`: `{"name", "type_id", "value"}` objects, matched by `type_id`.
    fn observables(&mut self, value: &Value) {
        let Value::Array(items) = value else {
            return;
        };
        for item in items {
            if self.is_full() {
                return;
            }
            let kinds = item
                .get("type_id")
                .and_then(Value::as_u64)
                .and_then(observable_kinds);
            let raw = item.get("value").and_then(Value::as_str);
            let (Some(kinds), Some(raw)) = (kinds, raw) else {
                continue;
            };
            let field = item
                .get("name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty() && name.len() <= FIELD_LEN_MAX)
                .unwrap_or(OBSERVABLES_KEY);
            if let Some(value) = parse_first(raw, kinds) {
                self.out.push(Candidate::new(field, value));
            }
        }
    }
}

/// `raw` as the first of `kinds` it parses as.
fn parse_first(raw: &str, kinds: &[IndicatorKind]) -> Option<IndicatorValue> {
    kinds
        .iter()
        .find_map(|kind| IndicatorValue::parse(*kind, raw).ok())
}
