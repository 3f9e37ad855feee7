//! STIX 2.1 bundles: the simple-pattern subset of their indicators.
//!
//! [`parse_bundle`] keeps the `indicator` objects of a bundle and skips (counting them) every
//! other object type. An indicator is imported when its `pattern_type` is `stix` (the default)
//! and its pattern is made only of `object:path = 'string'` comparisons joined by `OR`, inside
//! one `[...]` or across several (`[a = 'x' OR b = 'y']`, `[a = 'x'] OR [b = 'y']`,
//! parentheses allowed). Each comparison becomes one [`StixIndicator`], all with the STIX id as
//! `source_ref`. Anything else (`AND`, `FOLLOWEDBY`, `MATCHES`, `LIKE`, `IN`, `!=`, qualifiers,
//! non-string literals, unknown object paths, values `IndicatorValue::parse` refuses) rejects
//! the **whole** indicator with a reason: an indicator is never partially imported, and a
//! rejection never stops the rest of the bundle.
//!
//! Object paths and the kinds they give: `ipv4-addr:value` (ipv4, or cidr with a `/`),
//! `ipv6-addr:value` (ipv6, or cidr), `domain-name:value`, `url:value`, `email-addr:value`,
//! `file:hashes.MD5` / `.'SHA-1'` / `.'SHA-256'` (also `SHA1`, `SHA256`, quoted or not),
//! `file:name`, `windows-registry-key:key`.

use std::fmt;

use serde_json::{Map, Value};

use crate::BundleObject;
use crate::pattern::{PatternError, parse_pattern};
use vigil_domain::{IndicatorValue, ParseError};

/// Most objects one bundle may hold; a larger bundle is refused as a whole.
pub const STIX_OBJECTS_MAX: usize = 1_000_000;
/// Longest pattern looked at, in bytes; a longer one rejects its indicator.
pub const STIX_PATTERN_LEN_MAX: usize = 10_000;
/// Most comparisons in one pattern; more reject the indicator.
pub const STIX_COMPARISONS_MAX: usize = 256;
/// Deepest nesting of parentheses in one pattern; deeper rejects the indicator.
pub const STIX_PATTERN_DEPTH_MAX: usize = 32;

/// One atomic indicator taken from a STIX indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StixIndicator {
    pub value: IndicatorValue,
    /// The STIX id (`indicator--<uuid>`).
    pub source_ref: String,
    /// RFC 3339, as given.
    pub valid_from: Option<String>,
    /// RFC 3339, as given.
    pub valid_until: Option<String>,
    /// Reported as given; the caller decides what a revoked indicator means.
    pub revoked: bool,
    pub confidence: Option<u8>,
}

/// An object of the bundle that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StixRejected {
    /// The object's `id`, when it has a string one.
    pub id: Option<String>,
    /// The object's position in `objects`.
    pub index: usize,
    pub reason: ObjectError,
}

/// Why one STIX object gives no indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    NotAnObject,
    /// Larger than `STIX_OBJECT_BYTES_MAX` bytes.
    TooLarge,
    /// Nested deeper than the JSON reader goes.
    TooDeep,
    /// An object of another type, where an indicator was asked for.
    NotAnIndicator(String),
    /// No string under this key (`type`, `id`, `pattern`).
    Missing(&'static str),
    /// This key holds something else than a string.
    NotAString(&'static str),
    /// A `pattern_type` other than `stix` (`sigma`, `yara`, …).
    PatternType(String),
    /// `revoked` is not a boolean.
    Revoked,
    /// `confidence` is not an integer from 0 to 100.
    Confidence,
    /// The pattern is outside the subset Vigil matches.
    Pattern(PatternError),
    /// A comparison's string is not a value of the type its object path gives.
    Value {
        path: String,
        error: ParseError,
    },
    /// The indicator the object makes is not one the catalogue keeps (its timestamps, its
    /// confidence, its id).
    Invalid(ParseError),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotAnObject => f.write_str("not a JSON object"),
            ObjectError::TooLarge => write!(
                f,
                "an object larger than {} bytes",
                crate::STIX_OBJECT_BYTES_MAX
            ),
            ObjectError::TooDeep => f.write_str("an object nested too deeply"),
            ObjectError::NotAnIndicator(kind) => write!(f, "a {kind:?} object, not an indicator"),
            ObjectError::Missing(key) => write!(f, "no string {key:?}"),
            ObjectError::NotAString(key) => write!(f, "{key:?} is not a string"),
            ObjectError::PatternType(kind) => {
                write!(f, "pattern_type {kind:?} is not supported (only \"stix\")")
            }
            ObjectError::Revoked => f.write_str("\"revoked\" is not a boolean"),
            ObjectError::Confidence => {
                f.write_str("\"confidence\" is not an integer from 0 to 100")
            }
            ObjectError::Pattern(error) => write!(f, "pattern: {error}"),
            ObjectError::Value { path, error } => write!(f, "{path}: {error}"),
            ObjectError::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ObjectError {}

impl From<PatternError> for ObjectError {
    fn from(error: PatternError) -> Self {
        ObjectError::Pattern(error)
    }
}

impl From<ParseError> for ObjectError {
    fn from(error: ParseError) -> Self {
        ObjectError::Invalid(error)
    }
}

/// What a bundle gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StixImport {
    pub indicators: Vec<StixIndicator>,
    pub rejected: Vec<StixRejected>,
    /// Objects of another type than `indicator` (identities, marking definitions, …).
    pub skipped_other: usize,
}

/// Why a document is not a bundle this importer reads at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StixError {
    NotAnObject,
    NotABundle,
    NoObjects,
    TooManyObjects(usize),
    /// The text is not JSON (serde's message, with line and column).
    NotJson(String),
}

impl fmt::Display for StixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StixError::NotAnObject => f.write_str("a STIX bundle must be a JSON object"),
            StixError::NotABundle => f.write_str("not a STIX bundle: \"type\" is not \"bundle\""),
            StixError::NoObjects => f.write_str("STIX bundle without an \"objects\" array"),
            StixError::TooManyObjects(n) if *n > STIX_OBJECTS_MAX + 1 => write!(
                f,
                "STIX bundle with {n} objects; at most {STIX_OBJECTS_MAX} are read"
            ),
            StixError::TooManyObjects(_) => write!(
                f,
                "STIX bundle with more than {STIX_OBJECTS_MAX} objects; at most that many are read"
            ),
            StixError::NotJson(reason) => write!(f, "not JSON: {reason}"),
        }
    }
}

impl std::error::Error for StixError {}

/// Reads the indicators of a STIX 2.1 bundle (see the module documentation for the subset).
pub fn parse_bundle(json: &Value) -> Result<StixImport, StixError> {
    let bundle = json.as_object().ok_or(StixError::NotAnObject)?;
    if bundle.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(StixError::NotABundle);
    }
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or(StixError::NoObjects)?;
    if objects.len() > STIX_OBJECTS_MAX {
        return Err(StixError::TooManyObjects(objects.len()));
    }
    let mut import = StixImport::default();
    for (index, object) in objects.iter().enumerate() {
        import.add(classify_object(index, object));
    }
    Ok(import)
}

/// [`parse_bundle`] over the bundle's text, streaming (see `for_each_bundle_object`).
pub fn parse_bundle_text(text: &str) -> Result<StixImport, StixError> {
    let mut import = StixImport::default();
    crate::for_each_bundle_object(text, |object| import.add(object))?;
    Ok(import)
}

impl StixImport {
    fn add(&mut self, object: BundleObject) {
        match object {
            BundleObject::Indicators(mut atoms) => self.indicators.append(&mut atoms),
            BundleObject::Rejected(rejected) => self.rejected.push(rejected),
            BundleObject::Other => self.skipped_other += 1,
        }
    }
}

/// What one object of a bundle (at `index` in `objects`) gives.
pub(crate) fn classify_object(index: usize, object: &Value) -> BundleObject {
    let Some(object) = object.as_object() else {
        return BundleObject::Rejected(StixRejected {
            id: None,
            index,
            reason: ObjectError::NotAnObject,
        });
    };
    let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
    match object.get("type").and_then(Value::as_str) {
        Some("indicator") => {}
        Some(_) => return BundleObject::Other,
        None => {
            let reason = ObjectError::Missing("type");
            return BundleObject::Rejected(StixRejected { id, index, reason });
        }
    }
    match indicator(object) {
        Ok(atoms) => BundleObject::Indicators(atoms),
        Err(reason) => BundleObject::Rejected(StixRejected { id, index, reason }),
    }
}

/// The atomic indicators of one STIX `indicator` object (as a TAXII collection or an
/// OpenCTI export serves it), or why it is rejected.
pub fn parse_indicator(object: &Value) -> Result<Vec<StixIndicator>, ObjectError> {
    let object = object.as_object().ok_or(ObjectError::NotAnObject)?;
    match object.get("type").and_then(Value::as_str) {
        Some("indicator") => indicator(object),
        Some(other) => Err(ObjectError::NotAnIndicator(other.to_owned())),
        None => Err(ObjectError::Missing("type")),
    }
}

/// The atomic indicators of one STIX indicator object, or why it is rejected.
fn indicator(object: &Map<String, Value>) -> Result<Vec<StixIndicator>, ObjectError> {
    let source_ref = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or(ObjectError::Missing("id"))?
        .to_owned();
    match object.get("pattern_type") {
        None => {}
        Some(Value::String(kind)) if kind == "stix" => {}
        Some(Value::String(kind)) => {
            return Err(ObjectError::PatternType(kind.clone()));
        }
        Some(_) => return Err(ObjectError::NotAString("pattern_type")),
    }
    let pattern = object
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or(ObjectError::Missing("pattern"))?;
    let valid_from = optional_string(object, "valid_from")?;
    let valid_until = optional_string(object, "valid_until")?;
    let revoked = match object.get("revoked") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(revoked)) => *revoked,
        Some(_) => return Err(ObjectError::Revoked),
    };
    let confidence = match object.get("confidence") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| *n <= 100)
                .ok_or(ObjectError::Confidence)?,
        ),
    };
    let comparisons = parse_pattern(pattern)?;
    let mut atoms = Vec::with_capacity(comparisons.len());
    for comparison in comparisons {
        atoms.push(StixIndicator {
            value: comparison.value()?,
            source_ref: source_ref.clone(),
            valid_from: valid_from.clone(),
            valid_until: valid_until.clone(),
            revoked,
            confidence,
        });
    }
    Ok(atoms)
}

fn optional_string(
    object: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, ObjectError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(ObjectError::NotAString(key)),
    }
}
