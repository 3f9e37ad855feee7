//! The risk register: create, read, list, update, delete, in the caller's tenant.

use vigil_domain::{NewRisk, PageRequest, Permission, Risk, RiskFilter, RiskId, RiskPatch};
use vigil_store::Page;

use crate::{Principal, ServiceResult, Services};

impl Services {
    pub async fn create_risk(&self, principal: &Principal, risk: NewRisk) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        crate::catalogue::refuse_reserved_source(risk.source())?;
        Ok(self
            .store
            .create_risk(tenant, &principal.change(), risk)
            .await?)
    }

    pub async fn get_risk(&self, principal: &Principal, id: RiskId) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.get_risk(tenant, id).await?)
    }

    pub async fn list_risks(
        &self,
        principal: &Principal,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Risk>> {
        let tenant = principal.require_tenant(Permission::ReadData)?;
        Ok(self.store.list_risks(tenant, filter, page).await?)
    }

    pub async fn update_risk(
        &self,
        principal: &Principal,
        id: RiskId,
        patch: RiskPatch,
    ) -> ServiceResult<Risk> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        // Nothing to change: the record as it is, and no audit event.
        if patch.is_empty() {
            return Ok(self.store.get_risk(tenant, id).await?);
        }
        Ok(self
            .store
            .update_risk(tenant, &principal.change(), id, patch)
            .await?)
    }

    pub async fn delete_risk(&self, principal: &Principal, id: RiskId) -> ServiceResult<()> {
        let tenant = principal.require_tenant(Permission::WriteData)?;
        Ok(self
            .store
            .delete_risk(tenant, &principal.change(), id)
            .await?)
    }
}
