//! What the sync engine stores, as use cases: the risks and indicators a page maps to, the
//! closing of what went away upstream, dead letters and cursors. Only Vigil itself, acting
//! in one tenant (`Principal::system_in`), may call them: records whose `source` names a
//! connector kind are written here and nowhere else.

use vigil_domain::{
    ConnectorName, DeadLetter, DeadLetterId, ExternalId, NewIndicator, Source, SourceState,
    SyncedRisk, TenantId, Timestamp,
};
use vigil_store::{ImportCounts, SyncOutcome};

use crate::{Credential, Principal, ServiceError, ServiceResult, Services, dedupe_indicators};

/// The tenant the engine acts in; anyone else is refused.
fn engine_tenant(principal: &Principal) -> ServiceResult<TenantId> {
    match (principal.credential(), principal.tenant()) {
        (Credential::System, Some(tenant)) => Ok(tenant),
        _ => Err(ServiceError::Forbidden(
            "only the sync engine writes synced records".into(),
        )),
    }
}

impl Services {
    /// Creates or refreshes a page's synced risks, in one transaction.
    pub async fn store_synced_risks(
        &self,
        principal: &Principal,
        risks: Vec<SyncedRisk>,
    ) -> ServiceResult<Vec<SyncOutcome>> {
        let tenant = engine_tenant(principal)?;
        Ok(self
            .store
            .sync_risks(tenant, &principal.change(), risks)
            .await?)
    }

    /// Creates or refreshes synced indicators (one per type and value), in one transaction.
    pub async fn store_synced_indicators(
        &self,
        principal: &Principal,
        indicators: Vec<NewIndicator>,
        label: &str,
    ) -> ServiceResult<ImportCounts> {
        let tenant = engine_tenant(principal)?;
        let indicators = dedupe_indicators(indicators);
        Ok(self
            .store
            .import_indicators(tenant, &principal.change(), indicators, label, None)
            .await?)
    }

    /// The upstream ids of `source`'s risks whose record is still there upstream.
    pub async fn tracked_external_ids(
        &self,
        principal: &Principal,
        source: &Source,
    ) -> ServiceResult<Vec<ExternalId>> {
        let tenant = engine_tenant(principal)?;
        Ok(self.store.present_external_ids(tenant, source).await?)
    }

    /// Closes these risks of `source`, marking them `state` upstream; answers how many
    /// changed (ids Vigil does not track, or closed already, are left alone).
    pub async fn close_synced(
        &self,
        principal: &Principal,
        source: &Source,
        external_ids: Vec<ExternalId>,
        state: SourceState,
    ) -> ServiceResult<u64> {
        let tenant = engine_tenant(principal)?;
        Ok(self
            .store
            .close_upstream(tenant, &principal.change(), source, external_ids, state)
            .await?)
    }

    /// Keeps a record that does not map, with why; a letter for the same record is replaced
    /// and counts another attempt.
    pub async fn record_dead_letter(
        &self,
        principal: &Principal,
        connector: &ConnectorName,
        external_id: String,
        reason: &str,
        payload: String,
    ) -> ServiceResult<DeadLetter> {
        let tenant = engine_tenant(principal)?;
        let letter = DeadLetter::new(
            tenant,
            connector.clone(),
            external_id,
            reason,
            payload,
            Timestamp::now(),
        );
        Ok(self.store.record_dead_letter(tenant, letter).await?)
    }

    /// Removes the connector's letters of records that now map.
    pub async fn clear_dead_letters(
        &self,
        principal: &Principal,
        connector: &ConnectorName,
        external_ids: Vec<String>,
    ) -> ServiceResult<u64> {
        let tenant = engine_tenant(principal)?;
        Ok(self
            .store
            .clear_dead_letters(tenant, connector, external_ids)
            .await?)
    }

    /// Removes a letter whose record has been stored by a replay.
    pub async fn delete_dead_letter(
        &self,
        principal: &Principal,
        id: DeadLetterId,
    ) -> ServiceResult<()> {
        let tenant = engine_tenant(principal)?;
        Ok(self.store.delete_dead_letter(tenant, id).await?)
    }

    /// The connector's stored cursor, as the last committed page left it.
    pub async fn sync_cursor(
        &self,
        principal: &Principal,
        connector: &ConnectorName,
    ) -> ServiceResult<Option<String>> {
        let tenant = engine_tenant(principal)?;
        Ok(self.store.sync_cursor(tenant, connector).await?)
    }

    /// Saves the connector's cursor, after the page it covers committed.
    pub async fn save_sync_cursor(
        &self,
        principal: &Principal,
        connector: &ConnectorName,
        cursor: &str,
    ) -> ServiceResult<()> {
        let tenant = engine_tenant(principal)?;
        Ok(self
            .store
            .set_sync_cursor(tenant, connector, cursor)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engine_in_a_tenant_writes_synced_records() {
        let tenant = TenantId::generate();
        assert_eq!(
            engine_tenant(&Principal::system_in(tenant)).unwrap(),
            tenant
        );
        for other in [
            Principal::cli_in(tenant),
            Principal::system(),
            Principal::cli(),
        ] {
            assert!(
                matches!(engine_tenant(&other), Err(ServiceError::Forbidden(_))),
                "{other:?}"
            );
        }
    }
}
