use vigil_domain::{ApiKeyId, Permission, Role, SessionId, TenantId, UserId};
use vigil_store::{Change, Scope};

use crate::{ServiceError, ServiceResult};

/// What authenticated the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    ApiKey(ApiKeyId),
    Session {
        session: SessionId,
        user: UserId,
    },
    /// The local operator at the command line, who holds the database itself.
    Cli,
    /// Vigil itself, e.g. creating the first admin key on first start.
    System,
}

/// An authenticated caller. Its tenant comes from the credential and from nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    credential: Credential,
    role: Role,
    tenant: Option<TenantId>,
    /// Why the caller says it is acting, recorded in the audit events of its changes.
    reason: Option<String>,
    /// When its tenant's trial ended, if it has: the caller may read, nothing else.
    read_only_since: Option<vigil_domain::Timestamp>,
}

impl Principal {
    pub(crate) fn new(credential: Credential, role: Role, tenant: Option<TenantId>) -> Self {
        debug_assert_eq!(tenant.is_some(), role.is_tenant_role());
        Self {
            credential,
            role,
            tenant,
            reason: None,
            read_only_since: None,
        }
    }

    /// The same caller in a tenant whose trial ended at `end`: read-only.
    pub(crate) fn read_only_since(mut self, end: vigil_domain::Timestamp) -> Self {
        self.read_only_since = Some(end);
        self
    }

    /// The same caller, stating why it acts (e.g. from `X-Audit-Reason`).
    pub fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    /// The operator at the CLI acts as platform admin.
    pub fn cli() -> Self {
        Self::new(Credential::Cli, Role::PlatformAdmin, None)
    }

    /// Vigil acting on its own behalf, as platform admin.
    pub fn system() -> Self {
        Self::new(Credential::System, Role::PlatformAdmin, None)
    }

    /// Vigil acting on its own behalf inside one tenant, as its admin (the sync engine).
    pub fn system_in(tenant: TenantId) -> Self {
        Self::new(Credential::System, Role::TenantAdmin, Some(tenant))
    }

    /// The operator at the CLI acting inside one tenant, as its admin.
    pub fn cli_in(tenant: TenantId) -> Self {
        Self::new(Credential::Cli, Role::TenantAdmin, Some(tenant))
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn tenant(&self) -> Option<TenantId> {
        self.tenant
    }

    pub fn credential(&self) -> Credential {
        self.credential
    }

    pub fn scope(&self) -> Scope {
        self.tenant.map_or(Scope::Platform, Scope::Tenant)
    }

    /// How audit events name this caller: `apikey:<id>`, `user:<id>` or `cli`.
    pub fn actor(&self) -> String {
        match self.credential {
            Credential::ApiKey(id) => format!("apikey:{id}"),
            Credential::Session { user, .. } => format!("user:{user}"),
            Credential::Cli => "cli".to_owned(),
            Credential::System => "system".to_owned(),
        }
    }

    /// Who makes a change and why: the reason the caller stated (`because`), which travels
    /// with the principal into every change it makes.
    pub fn change(&self) -> Change {
        Change::by(self.actor()).because(self.reason.clone())
    }

    /// Proves the caller may do `permission`.
    pub fn require(&self, permission: Permission) -> ServiceResult<()> {
        if let (Some(end), false) = (self.read_only_since, permission == Permission::ReadData) {
            return Err(ServiceError::ReadOnly { since: end });
        }
        if self.role.grants(permission) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "the {} role may not do this",
                self.role
            )))
        }
    }

    /// Proves the caller may do `permission` inside its own tenant, and returns that tenant.
    pub fn require_tenant(&self, permission: Permission) -> ServiceResult<TenantId> {
        self.require(permission)?;
        self.tenant
            .ok_or_else(|| ServiceError::Forbidden("this credential belongs to no tenant".into()))
    }
}
