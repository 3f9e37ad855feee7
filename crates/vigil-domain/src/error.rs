use std::fmt;

/// Why a raw value was rejected. The message is written for the person who sent the value:
/// it names what was expected, never echoes secrets, and carries no trailing full stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    reason: String,
}

impl ParseError {
    pub fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }

    /// The kind of value that failed to parse, e.g. `"slug"`.
    pub fn what(&self) -> &'static str {
        self.what
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for ParseError {}
