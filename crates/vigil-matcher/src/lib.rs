//! vigil-matcher: matches telemetry values against a tenant's indicators in memory. No I/O;
//! knows nothing of HTTP or SQL.
//!
//! Three steps: [`candidates`] pulls the values of an event's IOC-bearing fields (the
//! whitelist [`FIELDS`]) and normalizes them with the same `IndicatorValue::parse` the
//! catalogue uses; [`Index::build`] compiles a catalogue once; [`Index::matches`] answers for one
//! candidate with about one hash probe. Validity windows, suppression and what a match causes
//! belong to the caller.

mod bundle;
mod csv;
mod extract;
mod fields;
mod hash;
mod index;
mod pattern;
mod scan;
mod stix;

pub use bundle::{BundleObject, STIX_OBJECT_BYTES_MAX, for_each_bundle_object};
pub use csv::{
    CsvError, CsvImport, CsvIndicator, CsvRejected, RowError, for_each_indicator_row,
    parse_indicator_csv,
};
pub use extract::{
    CANDIDATES_PER_EVENT_MAX, Candidate, EVENT_DEPTH_MAX, FIELD_LEN_MAX, KindSet, candidates,
};
pub use fields::{FIELDS, OBSERVABLE_TYPES, OBSERVABLES_KEY, field_kinds};
pub use index::{Index, IndexedIndicator};
pub use pattern::PatternError;
pub use scan::{ScanError, Scanned, scan_event, scan_from};
pub use stix::{
    ObjectError, STIX_COMPARISONS_MAX, STIX_OBJECTS_MAX, STIX_PATTERN_DEPTH_MAX,
    STIX_PATTERN_LEN_MAX, StixError, StixImport, StixIndicator, StixRejected, parse_bundle,
    parse_bundle_text, parse_indicator,
};
