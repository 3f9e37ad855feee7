use vigil_domain::ParseError;

pub type StoreResult<T> = Result<T, StoreError>;

/// How a store call failed. Messages never contain connection strings or secrets: backends
/// build them from the driver's error kind and constraint names, not from the DSN.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in the caller's scope. Another tenant's row is `NotFound` too.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a precondition (such as an expected refresh hash) did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something else still depends on what a delete would remove; `dependants` names it.
    #[error("{what} is in use by {}", dependants.join(", "))]
    InUse {
        what: String,
        dependants: Vec<String>,
    },
    /// The change breaks a rule checked inside the store's transaction: an illegal status
    /// transition, a reference to something the tenant does not have.
    #[error("{0}")]
    Invalid(ParseError),
    /// The store could not be reached in time (pool exhausted, connection refused, busy).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row no longer parses into a domain value.
    #[error("corrupt row in {table}: {source}")]
    Corrupt {
        table: &'static str,
        source: ParseError,
    },
    /// The write would create more than the caller allowed (a plan's room); nothing was
    /// written.
    #[error("more than {max} would be created")]
    OverLimit { max: u64 },
    #[error("store failure: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn corrupt(table: &'static str) -> impl FnOnce(ParseError) -> StoreError {
        move |source| StoreError::Corrupt { table, source }
    }
}
