//! Why a cycle failed, and why a record does not map. A record that does not map is not a
//! cycle failure: it becomes a dead letter with its `MapError`'s text as the reason, and the
//! cycle goes on.

use vigil_domain::ParseError;
use vigil_service::{ObjectError, ServiceError};

use crate::http::SourceError;

/// What stops a cycle before its cursor moves. Messages never carry credentials or the
/// source's own text (`SourceError` sees to the source's part).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CycleError {
    /// Talking to the source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Reading the connector's credentials or settings, or storing a page, a cursor or a
    /// dead letter failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A value Vigil builds itself (a source name, a cursor) does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The connector's configuration does not fit what the source answered (a TAXII
    /// collection that is not there, a missing option).
    #[error("{0}")]
    Config(String),
}

/// Why one upstream record does not map to a risk or an indicator.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("not a JSON object")]
    NotAnObject,
    /// Not of the shape the source's API documents (serde's message).
    #[error("not a {what}: {detail}")]
    Shape { what: &'static str, detail: String },
    /// A field the mapping needs is not there (or not a string).
    #[error("no {0}")]
    Missing(&'static str),
    /// A field holds a value the mapping table has no row for.
    #[error("{field} {value} is not {expected}")]
    Value {
        field: &'static str,
        /// The value as found, or `none`.
        value: String,
        expected: &'static str,
    },
    /// The STIX indicator the record stands for does not map.
    #[error(transparent)]
    Stix(#[from] ObjectError),
    /// A value built from the record does not parse (its id, its title, its tags).
    #[error(transparent)]
    Parse(#[from] ParseError),
}

impl MapError {
    /// `field` holds `value` (shown as JSON, `none` when absent), which is not `expected`.
    pub(crate) fn value(
        field: &'static str,
        value: Option<impl serde::Serialize>,
        expected: &'static str,
    ) -> Self {
        let shown = value.and_then(|v| serde_json::to_string(&v).ok());
        MapError::Value {
            field,
            value: shown.unwrap_or_else(|| "none".to_owned()),
            expected,
        }
    }
}
