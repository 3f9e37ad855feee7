use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use vigil_domain::{
    ConnectorName, DeadLetter, DeadLetterId, ExternalId, PageRequest, Risk, RiskId, RiskStatus,
    Source, SourceState, SyncedRisk, TenantId, Timestamp,
};
use vigil_store::{
    AuditDraft, Change, Page, Scope, StoreError, StoreResult, SyncOutcome, SyncRepo,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::risks::{insert_risk, update_risk_row};
use crate::row::{
    self, dead_letter_columns, exec, map_err, query_one, risk_columns, scoped_page_sql,
};

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
        None if synced.status == RiskStatus::Closed => Ok(SyncOutcome::NotTracked),
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
                       AND external_id IS NOT NULL AND coalesce(source_state, 'present') <> 'deleted'",
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

    async fn close_upstream(
        &self,
        tenant: TenantId,
        change: &Change,
        source: &Source,
        external_ids: Vec<ExternalId>,
        state: SourceState,
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
                next.source_state = Some(state);
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

    async fn record_dead_letter(
        &self,
        tenant: TenantId,
        letter: DeadLetter,
    ) -> StoreResult<DeadLetter> {
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO sync_dead_letters (id, tenant_id, connector, external_id, error,
                    attempts, payload, payload_digest, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?8)
                 ON CONFLICT (tenant_id, connector, external_id) DO UPDATE SET
                    error = excluded.error, attempts = attempts + 1, payload = excluded.payload,
                    payload_digest = excluded.payload_digest, updated_at = excluded.updated_at",
                params![
                    letter.id.to_string(),
                    tenant.to_string(),
                    letter.connector.as_str(),
                    letter.external_id,
                    letter.error,
                    letter.payload,
                    letter.payload_digest.as_str(),
                    letter.updated_at.unix_micros(),
                ],
            )?;
            query_one(
                tx,
                concat!(
                    "SELECT ",
                    dead_letter_columns!(),
                    " FROM sync_dead_letters WHERE tenant_id = ?1 AND connector = ?2
                       AND external_id = ?3"
                ),
                params![
                    tenant.to_string(),
                    letter.connector.as_str(),
                    letter.external_id
                ],
                row::dead_letter,
            )?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn list_dead_letters(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<DeadLetter>> {
        let sql = scoped_page_sql!(dead_letter_columns!(), "sync_dead_letters");
        self.list_scoped(
            sql,
            Scope::Tenant(tenant),
            page,
            row::dead_letter,
            |d: &DeadLetter| d.id.as_uuid(),
        )
        .await
    }

    async fn get_dead_letter(&self, tenant: TenantId, id: DeadLetterId) -> StoreResult<DeadLetter> {
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    dead_letter_columns!(),
                    " FROM sync_dead_letters WHERE tenant_id = ?1 AND id = ?2"
                ),
                params![tenant.to_string(), id.to_string()],
                row::dead_letter,
            )?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn clear_dead_letters(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        external_ids: Vec<String>,
    ) -> StoreResult<u64> {
        let connector = connector.clone();
        // Nearly always there is nothing to clear: find that out without the write lock.
        let (tenant_text, name) = (tenant.to_string(), connector.as_str().to_owned());
        let any = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT 1 FROM sync_dead_letters WHERE tenant_id = ?1 AND connector = ?2 LIMIT 1",
                )
                .map_err(map_err)?
                .exists(params![tenant_text, name])
                .map_err(map_err)
            })
            .await?;
        if !any {
            return Ok(0);
        }
        self.write(move |tx| {
            let mut n = 0;
            for external_id in external_ids {
                n += exec(
                    tx,
                    "DELETE FROM sync_dead_letters WHERE tenant_id = ?1 AND connector = ?2
                       AND external_id = ?3",
                    params![tenant.to_string(), connector.as_str(), external_id],
                )? as u64;
            }
            Ok(n)
        })
        .await
    }

    async fn delete_dead_letter(&self, tenant: TenantId, id: DeadLetterId) -> StoreResult<()> {
        self.write(move |tx| {
            let n = exec(
                tx,
                "DELETE FROM sync_dead_letters WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
