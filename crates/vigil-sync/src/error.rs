//! Why a cycle failed. A record that does not map is not a cycle failure: it becomes a
//! dead letter with its reason (a `String`, stored) and the cycle goes on.

use vigil_domain::ParseError;
use vigil_service::ServiceError;

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
