use async_trait::async_trait;
use sqlx::PgConnection;
use vigil_domain::{
    ConnectorName, DeadLetter, DeadLetterId, ExternalId, PageRequest, Risk, RiskId, RiskStatus,
    Source, SourceState, SyncedRisk, TenantId, Timestamp,
};
use vigil_store::{AuditDraft, Change, Page, StoreError, StoreResult, SyncOutcome, SyncRepo};

use crate::PostgresStore;
use crate::audit::append;
use crate::risks::{insert, tags};
use crate::row::{self, map_err};

async fn lock_by_external_ref(
    conn: &mut PgConnection,
    tenant: TenantId,
    source: &Source,
    external_id: &ExternalId,
) -> StoreResult<Option<Risk>> {
    let row = sqlx::query(
        "SELECT * FROM risks WHERE tenant_id = $1 AND source = $2 AND external_id = $3 FOR UPDATE",
    )
    .bind(tenant.as_uuid())
    .bind(source.as_str())
    .bind(external_id.as_str())
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    row.map(|r| row::risk(&r)?.try_into()).transpose()
}

async fn update_row(conn: &mut PgConnection, risk: &Risk) -> StoreResult<()> {
    sqlx::query(
        "UPDATE risks SET title = $1, description = $2, impact = $3, probability = $4,
            status = $5, tags = $6, tlp = $7, source_state = $8, updated_at = $9
         WHERE tenant_id = $10 AND id = $11",
    )
    .bind(risk.title.as_str())
    .bind(risk.description.as_ref().map(|d| d.as_str()))
    .bind(i32::from(risk.impact.get()))
    .bind(i32::from(risk.probability.get()))
    .bind(risk.status.as_str())
    .bind(tags(risk))
    .bind(risk.tlp.as_str())
    .bind(risk.source_state.map(|s| s.as_str()))
    .bind(risk.updated_at.to_datetime())
    .bind(risk.tenant_id.as_uuid())
    .bind(risk.id.as_uuid())
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn sync_one(
    tx: &mut PgConnection,
    tenant: TenantId,
    change: &Change,
    synced: SyncedRisk,
    now: Timestamp,
) -> StoreResult<SyncOutcome> {
    match lock_by_external_ref(tx, tenant, &synced.source, &synced.external_id).await? {
        None if synced.status == RiskStatus::Closed => Ok(SyncOutcome::NotTracked),
        None => {
            let risk = synced.into_risk(tenant, RiskId::generate(), now);
            insert(tx, &risk).await?;
            let draft = AuditDraft::risk("risk.create", None, Some(&risk));
            append(tx, tenant, change, draft, now).await?;
            Ok(SyncOutcome::Created)
        }
        Some(existing) => match synced.applied_to(&existing, now) {
            None => Ok(SyncOutcome::Unchanged),
            Some(next) => {
                update_row(tx, &next).await?;
                let draft = AuditDraft::risk("risk.update", Some(&existing), Some(&next));
                append(tx, tenant, change, draft, now).await?;
                Ok(SyncOutcome::Updated)
            }
        },
    }
}

#[async_trait]
impl SyncRepo for PostgresStore {
    async fn sync_risks(
        &self,
        tenant: TenantId,
        change: &Change,
        risks: Vec<SyncedRisk>,
    ) -> StoreResult<Vec<SyncOutcome>> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let mut outcomes = Vec::with_capacity(risks.len());
        for synced in risks {
            outcomes.push(sync_one(&mut tx, tenant, change, synced, now).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcomes)
    }

    async fn present_external_ids(
        &self,
        tenant: TenantId,
        source: &Source,
    ) -> StoreResult<Vec<ExternalId>> {
        let query = sqlx::query(
            "SELECT external_id FROM risks WHERE tenant_id = $1 AND source = $2
               AND external_id IS NOT NULL AND coalesce(source_state, 'present') <> 'deleted'",
        )
        .bind(tenant.as_uuid())
        .bind(source.as_str());
        let rows = self.fetch_scoped(tenant, query).await?;
        rows.iter()
            .map(|r| {
                let id: String = sqlx::Row::try_get(r, "external_id").map_err(map_err)?;
                ExternalId::parse_owned(id).map_err(StoreError::corrupt("risks"))
            })
            .collect()
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
        let mut tx = self.begin_scoped(tenant).await?;
        let mut changed = 0;
        for external_id in external_ids {
            let Some(existing) =
                lock_by_external_ref(&mut tx, tenant, source, &external_id).await?
            else {
                continue;
            };
            let mut next = existing.clone();
            next.status = RiskStatus::Closed;
            next.source_state = Some(state);
            if next == existing {
                continue;
            }
            next.updated_at = now;
            update_row(&mut tx, &next).await?;
            let draft = AuditDraft::risk("risk.update", Some(&existing), Some(&next));
            append(&mut tx, tenant, change, draft, now).await?;
            changed += 1;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }

    async fn sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
    ) -> StoreResult<Option<String>> {
        let query =
            sqlx::query("SELECT cursor FROM sync_cursors WHERE tenant_id = $1 AND connector = $2")
                .bind(tenant.as_uuid())
                .bind(connector.as_str());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row.map(|r| sqlx::Row::try_get(&r, "cursor").map_err(map_err))
            .transpose()
    }

    async fn set_sync_cursor(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        cursor: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_scoped(tenant).await?;
        sqlx::query(
            "INSERT INTO sync_cursors (tenant_id, connector, cursor, updated_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (tenant_id, connector) DO UPDATE SET cursor = excluded.cursor,
                updated_at = excluded.updated_at",
        )
        .bind(tenant.as_uuid())
        .bind(connector.as_str())
        .bind(cursor)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn record_dead_letter(
        &self,
        tenant: TenantId,
        letter: DeadLetter,
    ) -> StoreResult<DeadLetter> {
        let mut tx = self.begin_scoped(tenant).await?;
        let row = sqlx::query(
            "INSERT INTO sync_dead_letters (id, tenant_id, connector, external_id, error, attempts,
                payload, payload_digest, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8)
             ON CONFLICT (tenant_id, connector, external_id) DO UPDATE SET
                error = excluded.error, attempts = sync_dead_letters.attempts + 1,
                payload = excluded.payload, payload_digest = excluded.payload_digest,
                updated_at = excluded.updated_at
             RETURNING *",
        )
        .bind(letter.id.as_uuid())
        .bind(tenant.as_uuid())
        .bind(letter.connector.as_str())
        .bind(&letter.external_id)
        .bind(&letter.error)
        .bind(&letter.payload)
        .bind(letter.payload_digest.as_str())
        .bind(letter.updated_at.to_datetime())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        row::dead_letter(&row)?.try_into()
    }

    async fn list_dead_letters(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<DeadLetter>> {
        self.tenant_page(
            tenant,
            "sync_dead_letters",
            page,
            |r| row::dead_letter(r)?.try_into(),
            |d: &DeadLetter| d.id.as_uuid(),
        )
        .await
    }

    async fn get_dead_letter(&self, tenant: TenantId, id: DeadLetterId) -> StoreResult<DeadLetter> {
        let query = sqlx::query("SELECT * FROM sync_dead_letters WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::dead_letter(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn clear_dead_letters(
        &self,
        tenant: TenantId,
        connector: &ConnectorName,
        external_ids: Vec<String>,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_scoped(tenant).await?;
        let n = sqlx::query(
            "DELETE FROM sync_dead_letters WHERE tenant_id = $1 AND connector = $2
               AND external_id = ANY($3)",
        )
        .bind(tenant.as_uuid())
        .bind(connector.as_str())
        .bind(&external_ids)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn delete_dead_letter(&self, tenant: TenantId, id: DeadLetterId) -> StoreResult<()> {
        let mut tx = self.begin_scoped(tenant).await?;
        let deleted = sqlx::query("DELETE FROM sync_dead_letters WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
