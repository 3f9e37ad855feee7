//! Instances: an app bound to one client system, with its own base URL, config, secrets and
//! limits. Secrets are checked with the config against the app's schema, sealed one field at
//! a time (AES-256-GCM, bound to tenant, instance, field and the base URL's origin) and never
//! answered; an origin change needs the secrets again. Readers see instances; tenant admins
//! write them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use vigil_automation::{AppName, INSTANCE_CONCURRENCY_DEFAULT, Instance, InstanceName};
use vigil_domain::{PageRequest, Permission, SourceUrl, TenantId, Timestamp};
use vigil_store::Page;

use crate::{Principal, ServiceError, ServiceResult, Services};

/// A new instance as the edge hands it over.
pub struct InstanceRequest {
    pub app: AppName,
    pub name: InstanceName,
    pub base_url: Option<SourceUrl>,
    pub config: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub rate_limit_per_minute: Option<u32>,
    pub concurrency_max: Option<u32>,
    pub enabled: Option<bool>,
}

/// What a `PATCH` changes; `secrets` replaces every secret.
#[derive(Default)]
pub struct InstancePatch {
    pub name: Option<InstanceName>,
    pub base_url: Option<Option<SourceUrl>>,
    pub config: Option<Map<String, Value>>,
    pub secrets: Option<Map<String, Value>>,
    pub rate_limit_per_minute: Option<Option<u32>>,
    pub concurrency_max: Option<u32>,
    pub enabled: Option<bool>,
}

/// Names only: a request's secrets never reach a log through `Debug`.
impl std::fmt::Debug for InstanceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceRequest")
            .field("app", &self.app)
            .field("name", &self.name)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for InstancePatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePatch")
            .field(
                "secrets",
                &self.secrets.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
            )
            .finish_non_exhaustive()
    }
}

fn origin(url: Option<&SourceUrl>) -> String {
    url.map_or_else(|| "-".to_owned(), SourceUrl::origin)
}

fn binding(tenant: TenantId, id: uuid::Uuid, field: &str, url: Option<&SourceUrl>) -> Vec<u8> {
    format!("instance/{tenant}/{id}/{field}/{}", origin(url)).into_bytes()
}

impl Services {
    fn seal_secrets(
        &self,
        tenant: TenantId,
        instance: &Instance,
        secrets: &Map<String, Value>,
    ) -> ServiceResult<BTreeMap<String, Vec<u8>>> {
        let key = self.master_key()?;
        secrets
            .iter()
            .map(|(field, value)| {
                let text = value.to_string();
                let bound = binding(tenant, instance.id, field, instance.base_url.as_ref());
                Ok((field.clone(), key.seal(text.as_bytes(), &bound)?))
            })
            .collect()
    }

    /// The instance's secrets in clear, for the task runner only (and the checks of an
    /// update). They open only for the origin they were sealed with.
    pub(crate) async fn open_instance_secrets(
        &self,
        tenant: TenantId,
        instance: &Instance,
    ) -> ServiceResult<Map<String, Value>> {
        let key = self.master_key()?;
        let sealed = self.store.instance_secrets(tenant, instance.id).await?;
        sealed
            .into_iter()
            .map(|(field, bytes)| {
                let bound = binding(tenant, instance.id, &field, instance.base_url.as_ref());
                let opened = key.open(&bytes, &bound)?;
                let value = serde_json::from_slice(&opened).map_err(|_| {
                    ServiceError::Internal("a sealed instance secret is not JSON".into())
                })?;
                Ok((field, value))
            })
            .collect()
    }

    async fn app_for_instance(
        &self,
        tenant: TenantId,
        app: &AppName,
    ) -> ServiceResult<vigil_store::App> {
        match self.store.get_app(tenant, app).await {
            Err(vigil_store::StoreError::NotFound) => {
                Err(ServiceError::invalid("app", format!("no app named {app}")))
            }
            other => Ok(other?),
        }
    }

    pub async fn create_instance(
        &self,
        principal: &Principal,
        request: InstanceRequest,
    ) -> ServiceResult<Instance> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        self.check_count(tenant, vigil_domain::Counted::Instances)
            .await?;
        let app = self.app_for_instance(tenant, &request.app).await?;
        app.definition.check_instance(
            request.base_url.as_ref(),
            &request.config,
            &request.secrets,
        )?;
        let now = Timestamp::now();
        let instance = Instance {
            id: uuid::Uuid::now_v7(),
            app: request.app,
            name: request.name,
            base_url: request.base_url,
            config: request.config,
            secret_fields: request.secrets.keys().cloned().collect(),
            rate_limit_per_minute: request.rate_limit_per_minute,
            concurrency_max: request
                .concurrency_max
                .unwrap_or(INSTANCE_CONCURRENCY_DEFAULT),
            enabled: request.enabled.unwrap_or(true),
            health: None,
            created_at: now,
            updated_at: now,
        };
        instance.validate_limits()?;
        let sealed = self.seal_secrets(tenant, &instance, &request.secrets)?;
        let change = principal.change();
        Ok(self
            .store
            .create_instance(tenant, &change, instance, sealed)
            .await?)
    }

    pub async fn get_instance(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> ServiceResult<Instance> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_instance(tenant, id).await?)
    }

    pub async fn list_instances(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> ServiceResult<Page<Instance>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_instances(tenant, page).await?)
    }

    /// Changes an instance. Moving its base URL to another origin needs the secrets again
    /// (they were sealed for the old one and never follow it); the result is checked whole
    /// against the app's schema.
    pub async fn update_instance(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        patch: InstancePatch,
    ) -> ServiceResult<Instance> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        let before = self.store.get_instance(tenant, id).await?;
        let app = self.app_for_instance(tenant, &before.app).await?;
        let after = Instance {
            name: patch.name.unwrap_or_else(|| before.name.clone()),
            base_url: patch.base_url.unwrap_or_else(|| before.base_url.clone()),
            config: patch.config.unwrap_or_else(|| before.config.clone()),
            rate_limit_per_minute: patch
                .rate_limit_per_minute
                .unwrap_or(before.rate_limit_per_minute),
            concurrency_max: patch.concurrency_max.unwrap_or(before.concurrency_max),
            enabled: patch.enabled.unwrap_or(before.enabled),
            updated_at: Timestamp::now(),
            ..before.clone()
        };
        after.validate_limits()?;
        let (from, to) = (
            origin(before.base_url.as_ref()),
            origin(after.base_url.as_ref()),
        );
        if from != to && patch.secrets.is_none() && !before.secret_fields.is_empty() {
            return Err(ServiceError::invalid(
                "secrets",
                format!(
                    "the base URL moves from {from} to {to}: send the secrets again, they do not follow it"
                ),
            ));
        }
        let secrets = match &patch.secrets {
            Some(secrets) => secrets.clone(),
            None => self.open_instance_secrets(tenant, &before).await?,
        };
        app.definition
            .check_instance(after.base_url.as_ref(), &after.config, &secrets)?;
        let sealed = match &patch.secrets {
            Some(secrets) => Some(self.seal_secrets(tenant, &after, secrets)?),
            None => None,
        };
        let change = principal.change();
        Ok(self
            .store
            .update_instance(tenant, &change, after, sealed)
            .await?)
    }

    pub async fn delete_instance(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::ManageTenantAccess)?;
        let change = principal.change();
        Ok(self.store.delete_instance(tenant, &change, id).await?)
    }
}
