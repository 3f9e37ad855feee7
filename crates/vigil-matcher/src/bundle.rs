//! A STIX bundle read from its text one object at a time: the document is never built as a
//! tree. Each object of `objects` is taken as a borrowed slice of the text, parsed alone (at
//! most `STIX_OBJECT_BYTES_MAX`), handed over and dropped, and the count is checked as the
//! objects stream by, so a bundle of junk costs what its largest object costs, not what the
//! whole bundle would as a `serde_json::Value`.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::stix::{
    ObjectError, STIX_OBJECTS_MAX, StixError, StixIndicator, StixRejected, classify_object,
};

/// Largest single object read, in bytes; a larger one is rejected unread.
pub const STIX_OBJECT_BYTES_MAX: usize = 1024 * 1024;

/// What one object of a bundle gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleObject {
    /// The atomic indicators of an `indicator` object.
    Indicators(Vec<StixIndicator>),
    /// An object that is not imported, and why.
    Rejected(StixRejected),
    /// An object of another type (identity, marking definition, …).
    Other,
}

/// Reads the bundle in `text`, handing each object's outcome to `each` in order. Fails when
/// the text is not a bundle at all, holds more than `STIX_OBJECTS_MAX` objects (found while
/// streaming, before the rest is read), or is not JSON; what `each` was handed before a
/// failure is the caller's to drop.
pub fn for_each_bundle_object(
    text: &str,
    mut each: impl FnMut(BundleObject),
) -> Result<(), StixError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let outcome =
        de::Deserializer::deserialize_any(&mut deserializer, BundleVisitor { each: &mut each })
            .and_then(|seen| deserializer.end().map(|()| seen));
    let seen = match outcome {
        Ok(seen) => seen,
        Err(err) if err.to_string().starts_with(TOO_MANY) => {
            return Err(StixError::TooManyObjects(STIX_OBJECTS_MAX + 1));
        }
        Err(err) if err.to_string().starts_with(NOT_AN_OBJECT) => {
            return Err(StixError::NotAnObject);
        }
        Err(err) => return Err(StixError::NotJson(err.to_string())),
    };
    if !seen.is_bundle {
        return Err(StixError::NotABundle);
    }
    if !seen.has_objects {
        return Err(StixError::NoObjects);
    }
    Ok(())
}

/// Markers of the visitor's own errors inside serde's error type.
const TOO_MANY: &str = "vigil: too many objects";
const NOT_AN_OBJECT: &str = "vigil: not an object";

struct Seen {
    is_bundle: bool,
    has_objects: bool,
}

struct BundleVisitor<'a, F> {
    each: &'a mut F,
}

impl<'de, F: FnMut(BundleObject)> Visitor<'de> for BundleVisitor<'_, F> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a STIX bundle (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let mut seen = Seen {
            is_bundle: false,
            has_objects: false,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => seen.is_bundle = map.next_value::<Value>()? == "bundle",
                "objects" => {
                    seen.has_objects = map.next_value_seed(Objects {
                        each: &mut *self.each,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(seen)
    }

    // Anything but an object: say so without serde's wording.
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Seen, A::Error> {
        Err(de::Error::custom(NOT_AN_OBJECT))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Seen, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
}

/// The `objects` array; answers whether it was an array.
struct Objects<'a, F> {
    each: &'a mut F,
}

impl<'de, F: FnMut(BundleObject)> DeserializeSeed<'de> for Objects<'_, F> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(BundleObject)> Visitor<'de> for Objects<'_, F> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of STIX objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut index = 0;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if index == STIX_OBJECTS_MAX {
                return Err(de::Error::custom(TOO_MANY));
            }
            (self.each)(object(index, raw.get()));
            index += 1;
        }
        Ok(true)
    }

    // `objects` that is not an array is the same as none.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
}

fn object(index: usize, raw: &str) -> BundleObject {
    if raw.len() > STIX_OBJECT_BYTES_MAX {
        return BundleObject::Rejected(StixRejected {
            id: None,
            index,
            reason: ObjectError::TooLarge,
        });
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(value) => classify_object(index, &value),
        // The element was valid JSON a moment ago (RawValue checked it); only depth limits
        // can refuse it now.
        Err(_) => BundleObject::Rejected(StixRejected {
            id: None,
            index,
            reason: ObjectError::TooDeep,
        }),
    }
}
