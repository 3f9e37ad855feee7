use std::fmt;

use vigil_domain::ParseError;

/// Longest app or task name.
const NAME_LEN_MAX: usize = 64;

pub(crate) fn name(what: &'static str, raw: &str) -> Result<String, ParseError> {
    let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    let first_ok = raw
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if raw.len() > NAME_LEN_MAX || !first_ok || !raw.bytes().all(valid) {
        return Err(ParseError::new(
            what,
            "must be 1 to 64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ));
    }
    Ok(raw.to_owned())
}

/// An app's name, unique in its tenant; apps refer to each other by it, never by an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

impl AppName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        name("app", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task's name, unique in its app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskName(String);

impl TaskName {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        name("task", raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task anywhere in the tenant: `app/task`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskRef {
    pub app: AppName,
    pub task: TaskName,
}

impl TaskRef {
    pub fn new(app: AppName, task: TaskName) -> Self {
        Self { app, task }
    }

    /// `task` (a task of `within`) or `app/task`.
    pub fn parse(raw: &str, within: &AppName) -> Result<Self, ParseError> {
        match raw.split_once('/') {
            Some((app, task)) => Ok(Self::new(AppName::parse(app)?, TaskName::parse(task)?)),
            None => Ok(Self::new(within.clone(), TaskName::parse(raw)?)),
        }
    }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_and_refs_default_to_their_app() {
        assert!(AppName::parse("abuse-ipdb_2").is_ok());
        for bad in ["", "-x", "_x", "Upper", "a/b", "a b", &"x".repeat(65)] {
            assert!(AppName::parse(bad).is_err(), "{bad:?}");
        }
        let app = AppName::parse("okta").unwrap();
        assert_eq!(
            TaskRef::parse("lookup", &app).unwrap().to_string(),
            "okta/lookup"
        );
        assert_eq!(
            TaskRef::parse("m365/users", &app).unwrap().to_string(),
            "m365/users"
        );
        assert!(TaskRef::parse("a/b/c", &app).is_err());
    }
}
