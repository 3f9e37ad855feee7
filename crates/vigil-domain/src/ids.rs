use std::fmt;

use uuid::Uuid;

use crate::ParseError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUIDv7) id: newer ids sort after older ones, which is
            /// what cursor pagination relies on.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                Uuid::try_parse(raw)
                    .map(Self)
                    .map_err(|_| ParseError::new($what, "expected a UUID"))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant: one client organisation. Every tenant-owned row carries it.
    TenantId, "tenant id"
);
id_type!(ApiKeyId, "api key id");
id_type!(UserId, "user id");
id_type!(SessionId, "session id");
id_type!(RiskId, "risk id");
id_type!(AuditEventId, "audit event id");
id_type!(FindingId, "finding id");
id_type!(IndicatorId, "indicator id");
id_type!(SuppressionId, "suppression id");
id_type!(
    /// A telemetry event as Vigil stored it (not the agent's own id, which is `client_id`).
    EventId, "event id"
);
id_type!(MatchId, "match id");
id_type!(DeadLetterId, "dead letter id");

impl TenantId {
    /// The audit chain of platform-level changes (tenants, platform keys) is kept under the
    /// nil UUID, which no real tenant can have.
    pub const PLATFORM_CHAIN: TenantId = TenantId(Uuid::nil());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_sort_by_creation() {
        let first = RiskId::generate();
        let second = RiskId::generate();
        assert!(first < second);
        assert!(first.to_string() < second.to_string());
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(&id.to_string()), Ok(id));
        assert_eq!(
            TenantId::parse("not-a-uuid").unwrap_err().what(),
            "tenant id"
        );
    }
}
