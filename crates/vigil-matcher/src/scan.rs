//! Candidate extraction straight from JSON text, without building a `serde_json::Value`.
//!
//! [`candidates`](crate::candidates) walks a parsed event; [`scan_event`] walks the text as it
//! parses it and gives the same candidates: keys outside the whitelist are skipped unread
//! (no allocation), and only strings at whitelisted paths are looked at. This is what telemetry
//! ingest and `vigil hunt` use, because building and dropping a tree for every event is most of
//! the cost of matching.
//!
//! Differences from walking a parsed `Value`: candidates come in the order of the text, and a
//! key repeated in one object is visited each time (a parsed map keeps only its last value).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::extract::{CANDIDATES_PER_EVENT_MAX, Candidate, EVENT_DEPTH_MAX, FIELD_LEN_MAX};
use crate::fields::{OBSERVABLES_KEY, PathInfo, observable_kinds, path_info};

/// What one event's text gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    pub candidates: Vec<Candidate>,
    /// The event's `event.id` (nested or dotted), else its top-level `id`, when a non-empty
    /// string or a number. Only looked for when asked.
    pub event_id: Option<String>,
}

/// Why a text is not an event.
#[derive(Debug)]
pub enum ScanError {
    NotAnObject,
    Json(serde_json::Error),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanError::NotAnObject => f.write_str("not a JSON object"),
            ScanError::Json(err) => write!(f, "not JSON ({err})"),
        }
    }
}

impl std::error::Error for ScanError {}

/// The candidates of the JSON object `json` (see the module documentation), and its id when
/// `want_id`. Bounded like [`candidates`](crate::candidates).
pub fn scan_event(json: &str, want_id: bool) -> Result<Scanned, ScanError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let scanned = scan_from(&mut deserializer, want_id).map_err(ScanError::Json)?;
    deserializer.end().map_err(ScanError::Json)?;
    scanned.ok_or(ScanError::NotAnObject)
}

/// [`scan_event`] on the next value of any serde deserializer: for callers that scan a part
/// of a larger document as they parse it. `None` when the value is not an object.
pub fn scan_from<'de, D: Deserializer<'de>>(
    deserializer: D,
    want_id: bool,
) -> Result<Option<Scanned>, D::Error> {
    let mut walker = Walker {
        path: String::new(),
        out: Vec::new(),
        want_id,
        event_id: None,
        top_id: None,
        is_object: false,
    };
    RootSeed(&mut walker).deserialize(deserializer)?;
    Ok(walker.is_object.then(|| Scanned {
        candidates: walker.out,
        event_id: walker.event_id.or(walker.top_id),
    }))
}

struct Walker {
    /// The dotted path of the value being visited.
    path: String,
    out: Vec<Candidate>,
    want_id: bool,
    event_id: Option<String>,
    top_id: Option<String>,
    is_object: bool,
}

impl Walker {
    fn is_full(&self) -> bool {
        self.out.len() >= CANDIDATES_PER_EVENT_MAX
    }

    /// What lies at and below the current path, or `None` when nothing there can matter.
    fn info(&self) -> Option<PathInfo> {
        path_info(&self.path).or_else(|| {
            let id_path = self.want_id && matches!(self.path.as_str(), "event" | "event.id" | "id");
            (id_path || self.path == OBSERVABLES_KEY).then(PathInfo::default)
        })
    }

    fn string(&mut self, info: PathInfo, raw: &str) {
        if let Some(kinds) = info.kinds
            && let Some(value) = kinds
                .iter()
                .find_map(|kind| vigil_domain::IndicatorValue::parse(*kind, raw).ok())
            && !self.is_full()
        {
            self.out.push(Candidate::new(self.path.clone(), value));
        }
        self.id(|| (!raw.is_empty()).then(|| raw.to_owned()));
    }

    fn id(&mut self, id: impl FnOnce() -> Option<String>) {
        if !self.want_id {
            return;
        }
        match self.path.as_str() {
            "event.id" if self.event_id.is_none() => self.event_id = id(),
            "id" if self.top_id.is_none() => self.top_id = id(),
            _ => {}
        }
    }
}

/// Visitor methods that accept and drop every scalar (string, bool, number, null).
macro_rules! ignore_scalars {
    () => {
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }

        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }

        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }

        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }

        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

/// The event itself: must be an object.
struct RootSeed<'w>(&'w mut Walker);

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.is_object = true;
        visit_object(self.0, map, 0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    ignore_scalars!();
}

/// Appends a key to the walker's path.
struct KeySeed<'w>(&'w mut Walker);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        if !self.0.path.is_empty() {
            self.0.path.push('.');
        }
        self.0.path.push_str(key);
        Ok(())
    }
}

fn visit_object<'de, A: MapAccess<'de>>(
    walker: &mut Walker,
    mut map: A,
    depth: usize,
) -> Result<(), A::Error> {
    let parent_len = walker.path.len();
    while map.next_key_seed(KeySeed(walker))?.is_some() {
        let info = if depth >= EVENT_DEPTH_MAX || walker.is_full() {
            None
        } else {
            walker.info()
        };
        match info {
            None => {
                map.next_value::<IgnoredAny>()?;
            }
            Some(_) if walker.path == OBSERVABLES_KEY => {
                map.next_value_seed(ObservablesSeed(walker))?;
            }
            Some(info) => map.next_value_seed(ValueSeed {
                walker,
                info,
                depth,
            })?,
        }
        walker.path.truncate(parent_len);
    }
    Ok(())
}

/// A value at the walker's path (described by `info`), inside an object at `depth`.
struct ValueSeed<'w> {
    walker: &'w mut Walker,
    info: PathInfo,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, raw: &str) -> Result<(), E> {
        self.walker.string(self.info, raw);
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.walker.id(|| Some(n.to_string()));
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.walker.id(|| Some(n.to_string()));
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        self.walker.id(|| Some(n.to_string()));
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let descend = self.info.has_below || (self.walker.want_id && self.walker.path == "event");
        if descend {
            visit_object(self.walker, map, self.depth + 1)
        } else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(())
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        if depth >= EVENT_DEPTH_MAX {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        // Elements take the path of the field that holds the array; an id is never in one.
        // (After an error the whole scan fails, so `want_id` need not be restored then.)
        let want_id = std::mem::replace(&mut self.walker.want_id, false);
        loop {
            if self.walker.is_full() {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                break;
            }
            let seed = ValueSeed {
                walker: &mut *self.walker,
                info: self.info,
                depth,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
        }
        self.walker.want_id = want_id;
        Ok(())
    }
}

/// OCSF `observables[]`: `{"name", "type_id", "value"}` objects, matched by `type_id`.
struct ObservablesSeed<'w>(&'w mut Walker);

impl<'de> DeserializeSeed<'de> for ObservablesSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ObservablesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OCSF observables")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            if self.0.is_full() {
                continue;
            }
            let kinds = item
                .get("type_id")
                .and_then(serde_json::Value::as_u64)
                .and_then(observable_kinds);
            let raw = item.get("value").and_then(serde_json::Value::as_str);
            let (Some(kinds), Some(raw)) = (kinds, raw) else {
                continue;
            };
            let field = item
                .get("name")
                .and_then(serde_json::Value::as_str)
                .filter(|name| !name.is_empty() && name.len() <= FIELD_LEN_MAX)
                .unwrap_or(OBSERVABLES_KEY);
            if let Some(value) = kinds
                .iter()
                .find_map(|kind| vigil_domain::IndicatorValue::parse(*kind, raw).ok())
            {
                self.0.out.push(Candidate::new(field, value));
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    ignore_scalars!();
}
