//! Tenants and API keys: create and list tenants (platform admins), create, list and revoke
//! keys in the caller's scope or, for platform admins, a named tenant's.

use vigil_domain::{
    ApiKeyId, PageRequest, Permission, Role, Slug, Tenant, TenantId, TenantName, Timestamp,
};
use vigil_store::{ApiKey, NewApiKey, Page, Scope};

use crate::services::access_scope;
use crate::{ApiKeySecret, Principal, ServiceError, ServiceResult, Services};

/// Longest API key name, in characters.
pub const API_KEY_NAME_LEN_MAX: usize = 100;

/// Whose key `create_api_key` makes: the caller's own scope, or (platform admins only) a
/// named tenant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    Own,
    Tenant(TenantId),
}

#[derive(Debug, Clone)]
pub struct NewApiKeyRequest {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<Timestamp>,
}

/// A key just created: the record, and the secret that is shown this once.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

impl Services {
    pub async fn create_tenant(
        &self,
        principal: &Principal,
        slug: Slug,
        name: TenantName,
    ) -> ServiceResult<Tenant> {
        principal.require(Permission::ManageTenants)?;
        Ok(self
            .store
            .create_tenant(&principal.change(), &slug, &name)
            .await?)
    }

    pub async fn list_tenants(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<Tenant>> {
        principal.require(Permission::ManageTenants)?;
        Ok(self.store.list_tenants(page).await?)
    }

    pub async fn find_tenant(&self, principal: &Principal, slug: &Slug) -> ServiceResult<Tenant> {
        principal.require(Permission::ManageTenants)?;
        self.store
            .find_tenant_by_slug(slug)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        request: NewApiKeyRequest,
    ) -> ServiceResult<CreatedApiKey> {
        let scope = self.key_scope(principal, owner).await?;
        match scope {
            Scope::Platform if request.role != Role::PlatformAdmin => {
                return Err(ServiceError::invalid(
                    "role",
                    "platform keys are platform-admin; create tenant keys under /api/v1/tenants/{id}/api-keys",
                ));
            }
            Scope::Tenant(_) if !request.role.is_tenant_role() => {
                return Err(ServiceError::invalid(
                    "role",
                    "a tenant key cannot be platform-admin",
                ));
            }
            _ => {}
        }
        if let Scope::Tenant(tenant) = scope {
            self.check_count(tenant, vigil_domain::Counted::ApiKeys)
                .await?;
        }
        let name = request.name.trim();
        if name.is_empty()
            || name.chars().count() > API_KEY_NAME_LEN_MAX
            || name
                .chars()
                .any(|c| c.is_control() || vigil_domain::is_hidden_format_char(c))
        {
            return Err(ServiceError::invalid(
                "name",
                "must be 1 to 100 characters on one line, without invisible formatting characters",
            ));
        }
        if request.expires_at.is_some_and(|at| at <= Timestamp::now()) {
            return Err(ServiceError::invalid("expires_at", "must be in the future"));
        }
        let secret = ApiKeySecret::generate();
        let new = NewApiKey {
            name: name.to_owned(),
            role: request.role,
            prefix: secret.display_prefix(),
            hash: secret.hash(),
            expires_at: request.expires_at,
        };
        let key = self
            .store
            .create_api_key(scope, &principal.change(), new)
            .await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// The keys of the caller's own scope, or (platform admins only) of a named tenant.
    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        page: PageRequest,
    ) -> ServiceResult<Page<ApiKey>> {
        let scope = self.key_scope(principal, owner).await?;
        Ok(self.store.list_api_keys(scope, page).await?)
    }

    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        owner: KeyOwner,
        id: ApiKeyId,
    ) -> ServiceResult<ApiKey> {
        let scope = self.key_scope(principal, owner).await?;
        let key = self
            .store
            .revoke_api_key(scope, &principal.change(), id)
            .await?;
        self.keys.forget(id);
        Ok(key)
    }

    async fn key_scope(&self, principal: &Principal, owner: KeyOwner) -> ServiceResult<Scope> {
        match owner {
            KeyOwner::Own => access_scope(principal),
            KeyOwner::Tenant(tenant) => {
                principal.require(Permission::ManageTenants)?;
                self.store.get_tenant(tenant).await?;
                Ok(Scope::Tenant(tenant))
            }
        }
    }

    /// Whether the platform has a usable admin key: first start creates one when it has not.
    pub async fn has_platform_admin_key(&self) -> ServiceResult<bool> {
        Ok(self
            .store
            .count_usable_platform_keys(Timestamp::now())
            .await?
            > 0)
    }
}
