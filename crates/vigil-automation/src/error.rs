use std::fmt;

/// Why a definition (an app, a task) or a value checked against one is refused: the field,
/// as a path into what was sent (`request.headers.X-Key`, `input_schema`, `/ip` for a JSON
/// pointer into an input), and what is wrong with it. Never carries a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub field: String,
    pub reason: String,
}

impl DefinitionError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for DefinitionError {}

impl From<vigil_domain::ParseError> for DefinitionError {
    fn from(err: vigil_domain::ParseError) -> Self {
        DefinitionError::new(err.what(), err.reason())
    }
}
