use std::fmt;

use crate::ParseError;

/// What a credential may do. A role is fixed when the credential is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages tenants and their keys; holds no tenant and reads no tenant's data.
    PlatformAdmin,
    /// Everything an analyst can, plus the tenant's keys, users and sessions.
    TenantAdmin,
    /// Reads and writes the tenant's data.
    Analyst,
    /// Reads the tenant's data.
    Viewer,
    /// Posts telemetry and nothing else.
    Ingest,
}

/// One thing a handler or use case may require of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ManageTenants,
    ManageTenantAccess,
    WriteData,
    ReadData,
    IngestTelemetry,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Analyst,
        Role::Viewer,
        Role::Ingest,
    ];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "role",
                    "expected one of platform-admin, tenant-admin, analyst, viewer, ingest",
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform-admin",
            Role::TenantAdmin => "tenant-admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    pub fn grants(&self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::PlatformAdmin => matches!(permission, P::ManageTenants),
            Role::TenantAdmin => {
                matches!(
                    permission,
                    P::ManageTenantAccess | P::WriteData | P::ReadData
                )
            }
            Role::Analyst => matches!(permission, P::WriteData | P::ReadData),
            Role::Viewer => matches!(permission, P::ReadData),
            Role::Ingest => matches!(permission, P::IngestTelemetry),
        }
    }

    /// Whether this role belongs to a tenant. Only platform admins stand outside every tenant.
    pub fn is_tenant_role(&self) -> bool {
        *self != Role::PlatformAdmin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_round_trips() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn viewer_reads_but_does_not_write() {
        assert!(Role::Viewer.grants(Permission::ReadData));
        assert!(!Role::Viewer.grants(Permission::WriteData));
    }

    #[test]
    fn ingest_may_only_ingest() {
        assert!(Role::Ingest.grants(Permission::IngestTelemetry));
        assert!(!Role::Ingest.grants(Permission::ReadData));
    }

    #[test]
    fn platform_admin_reads_no_tenant_data() {
        assert!(!Role::PlatformAdmin.grants(Permission::ReadData));
        assert!(Role::PlatformAdmin.grants(Permission::ManageTenants));
    }
}
