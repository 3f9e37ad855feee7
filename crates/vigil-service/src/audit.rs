//! The audit trail: list it (readers see data events only) and verify its hash chain.

use vigil_domain::{
    AuditEvent, ChainReport, ChainVerifier, PageRequest, Permission, Role, TenantId,
};
use vigil_store::{AuditFilter, Page};

use crate::{Principal, ServiceResult, Services};

/// Events read per store call while verifying a chain.
const AUDIT_VERIFY_BATCH: u32 = 1_000;

#[derive(Debug, Clone)]
pub struct AuditVerification {
    pub chain: TenantId,
    pub report: ChainReport,
}

impl Services {
    pub async fn list_audit(
        &self,
        principal: &Principal,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<AuditEvent>> {
        let chain = audit_chain(principal)?;
        // Roles hold through the trail: who may not read users, keys, sessions or connectors
        // directly does not read their events either.
        let mut filter = filter.clone();
        filter.data_only = !principal.role().grants(Permission::ManageTenantAccess)
            && principal.role() != Role::PlatformAdmin;
        Ok(self.store.list_audit(chain, &filter, page).await?)
    }

    /// Walks the caller's chain from the first event up to the head recorded when the walk
    /// began (events appended meanwhile are left for the next run) and reports every break.
    pub async fn verify_audit(&self, principal: &Principal) -> ServiceResult<AuditVerification> {
        let chain = audit_chain(principal)?;
        let head = self.store.audit_head(chain).await?;
        let last_seq = head.as_ref().map_or(0, |head| head.seq);
        let mut verifier = ChainVerifier::default();
        let mut after_seq = 0;
        'pages: loop {
            let events = self
                .store
                .audit_chain_after(chain, after_seq, AUDIT_VERIFY_BATCH)
                .await?;
            if events.is_empty() {
                break;
            }
            for event in &events {
                if event.seq > last_seq {
                    break 'pages;
                }
                after_seq = event.seq;
                verifier.push(event);
            }
        }
        Ok(AuditVerification {
            chain,
            report: verifier.finish(head.as_ref()),
        })
    }
}

/// The audit chain the caller reads: its tenant's, or the platform's for platform admins.
fn audit_chain(principal: &Principal) -> ServiceResult<TenantId> {
    if principal.role() == Role::PlatformAdmin {
        return Ok(TenantId::PLATFORM_CHAIN);
    }
    principal.require_tenant(Permission::ReadData)
}
