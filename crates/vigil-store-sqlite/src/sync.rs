use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use vigil_domain::{
    ConnectorName, ExternalId, Risk, RiskId, RiskStatus, Source, SourceState, SyncedRisk, TenantId,
    Timestamp,
};
use vigil_store::{AuditDraft, Change, StoreError, StoreResult, SyncOutcome, SyncRepo};

use crate::SqliteStore;
use crate::audit::append;
use crate::risks::{insert_risk, update_risk_row};
use crate::row::{self, exec, map_err, query_one, risk_columns};

fn by_external_ref(
    conn: &Connection,
    tenant: TenantId,
    source: &Source,
    external_id: &ExternalId,
) -> StoreResult<Option<Risk>> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            risk_columns!(),
            " FROM risks WHERE tenant_id = ?1 AND source = ?2 AND external_id = ?3"
        ),
        params![tenant.to_string(), source.as_str(), external_id.as_str()],
        row::risk,
    )
}

fn sync_one(
    tx: &Connection,
    tenant: TenantId,
    change: &Change,
    synced: SyncedRisk,
    now: Timestamp,
) -> StoreResult<SyncOutcome> {
    match by_external_ref(tx, tenant, &synced.source, &synced.external_id)? {
        None => {
            let risk = synced.into_risk(tenant, RiskId::generate(), now);
            insert_risk(tx, &risk)?;
            append(
                tx,
                tenant,
                change,
                AuditDraft::risk("risk.create", None, Some(&risk)),
                now,
            )?;
            Ok(SyncOutcome::Created)
        }
        Some(existing) => match synced.applied_to(&existing, now) {
            None => Ok(SyncOutcome::Unchanged),
            Some(next) => {
                update_risk_row(tx, &next)?;
                let draft = AuditDraft::risk("risk.update", Some(&existing), Some(&next));
                append(tx, tenant, change, draft, now)?;
                Ok(SyncOutcome::Updated)
            }
        },
    }
}

#[async_trait]
impl SyncRepo for SqliteStore {
    async fn sync_risks(
        &self,
        tenant: TenantId,
        change: &Change,
        risks: Vec<SyncedRisk>,
    ) -> StoreResult<Vec<SyncOutcome>> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            risks
                .into_iter()
                .map(|synced| sync_one(tx, tenant, &change, synced, now))
                .collect()
        })
        .await
    }

    async fn present_external_ids(
        &self,
        tenant: TenantId,
        source: &Source,
    ) -> StoreResult<Vec<ExternalId>> {
        let source = source.clone();
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT external_id FROM risks WHERE tenant_id = ?1 AND source = ?2
                       AND external_id IS NOT NULL AND coalesce(source_state, 'present') = 'present'",
                )
                .map_err(map_err)?;
            let rows = statement
                .query_map(params![tenant.to_string(), source.as_str()], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(map_err)?;
            rows.map(|id| {
                ExternalId::parse_owned(id.map_err(map_err)?)
                    .map_err(StoreError::corrupt("risks"))
            })
            .collect()
        })
        .await
    }

    async fn mark_deleted_upstream(
        &self,
        tenant: TenantId,
        change: &Change,
        source: &Source,
        external_ids: Vec<ExternalId>,
    ) -> StoreResult<u64> {
        let now = Timestamp::now();
        let change = change.clone();
        let source = source.clone();
        self.write(move |tx| {
            let mut changed = 0;
            for external_id in external_ids {
                let Some(existing) = by_external_ref(tx, tenant, &source, &external_id)? else {
                    continue;
                };
                let mut next = existing.clone();
                next.status = RiskStatus::Closed;
                next.source_state = Some(SourceState::Deleted);
                if next == existing {
                    continue;
                }
                next.updated_at = now;
                update_risk_row(tx, &next)?;
                let draft = AuditDraft::risk("risk.update", Some(&existing), Some(&next));
                append(tx, tenant, &change, draft, now)?;
                changed += 1;
            }
            Ok(changed)
        })
        .await
    }

    async fn sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
    ) -> StoreResult<Option<String>> {
        let connector = connector.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT cursor FROM sync_cursors WHERE tenant_id = ?1 AND connector = ?2",
            )
            .map_err(map_err)?
            .query_row(params![tenant.to_string(), connector.as_str()], |r| {
                r.get(0)
            })
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn set_sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        cursor: &str,
    ) -> StoreResult<()> {
        let (connector, cursor) = (connector.clone(), cursor.to_owned());
        let now = Timestamp::now();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO sync_cursors (tenant_id, connector, cursor, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, connector) DO UPDATE SET cursor = excluded.cursor,
                    updated_at = excluded.updated_at",
                params![
                    tenant.to_string(),
                    connector.as_str(),
                    cursor,
                    now.unix_micros()
                ],
            )?;
            Ok(())
        })
        .await
    }
}
