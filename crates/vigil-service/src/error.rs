use vigil_store::StoreError;

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Why a use case refused or failed. The edges map these to status codes and exit codes;
/// the messages are safe to show the caller.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No credential, or one that is malformed, unknown, revoked or expired.
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The credential is valid but its role does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Nothing with that id in the caller's tenant — including another tenant's rows.
    #[error("not found")]
    NotFound,
    /// A field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("conflict: {0}")]
    Conflict(String),
    /// A delete refused while something else depends on it; `dependants` names what.
    #[error("{what} is in use by {}", dependants.join(", "))]
    InUse {
        what: String,
        dependants: Vec<String>,
    },
    /// The request carries more than a named limit allows.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Too many failed attempts for this account or address; retry after the delay.
    #[error("too many failed attempts; retry in {retry_after_s} s")]
    Throttled { retry_after_s: u64 },
    /// The tenant keeps as many of something as its plan allows (`limit` names the plan's
    /// field).
    #[error("the tenant's plan allows at most {max} ({limit})")]
    PlanLimit { limit: &'static str, max: u64 },
    /// The tenant used its plan's daily allowance; retry after the UTC day ends.
    #[error("the tenant's plan allows {max} a day ({limit}); retry in {retry_after_s} s")]
    Quota {
        limit: &'static str,
        max: u64,
        retry_after_s: u64,
    },
    /// The tenant's trial ended: it may read its data, not change it.
    #[error("the tenant's trial ended at {since}; it is read-only")]
    ReadOnly { since: vigil_domain::Timestamp },
    /// Too much of one expensive thing at once; worth retrying shortly.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// The store could not be reached in time; worth retrying.
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// A bug or a corrupt row. The detail is for the log, never for the caller.
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<vigil_domain::ParseError> for ServiceError {
    fn from(err: vigil_domain::ParseError) -> Self {
        ServiceError::invalid(err.what(), err.reason())
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict(reason) => ServiceError::Conflict(reason),
            StoreError::InUse { what, dependants } => ServiceError::InUse { what, dependants },
            StoreError::Invalid(err) => err.into(),
            StoreError::Unavailable(reason) => ServiceError::Unavailable(reason),
            other @ StoreError::OverLimit { .. } => ServiceError::Internal(other.to_string()),
            other @ (StoreError::Corrupt { .. } | StoreError::Backend(_)) => {
                ServiceError::Internal(other.to_string())
            }
        }
    }
}
