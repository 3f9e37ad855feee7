use async_trait::async_trait;
use sqlx::SqliteConnection;
use vigil_domain::{
    Cursor, NewRisk, PageRequest, Risk, RiskFilter, RiskId, RiskPatch, TenantId, Timestamp,
};
use vigil_store::{
    AuditDraft, Change, Page, RiskRepo, StoreError, StoreResult, contains_pattern, tags_json,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, map_err};

async fn risk_in(conn: &mut SqliteConnection, tenant: TenantId, id: RiskId) -> StoreResult<Risk> {
    let row = sqlx::query("SELECT * FROM risks WHERE tenant_id = ? AND id = ?")
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::risk(&row)?.try_into()
}

fn conflict_on_external_ref(err: sqlx::Error) -> StoreError {
    match map_err(err) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("a risk with this source and external_id already exists".into())
        }
        other => other,
    }
}

#[async_trait]
impl RiskRepo for SqliteStore {
    async fn create_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewRisk,
    ) -> StoreResult<Risk> {
        let now = Timestamp::now();
        let risk = new.into_risk(tenant, RiskId::generate(), now);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO risks (id, tenant_id, title, description, impact, probability, status, owner,
                tags, tlp, source, external_id, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(risk.id.to_string())
        .bind(tenant.to_string())
        .bind(risk.title.as_str())
        .bind(risk.description.as_ref().map(|d| d.as_str()))
        .bind(i64::from(risk.impact.get()))
        .bind(i64::from(risk.probability.get()))
        .bind(risk.status.as_str())
        .bind(risk.owner.as_ref().map(|o| o.as_str()))
        .bind(tags_json(&risk))
        .bind(risk.tlp.as_str())
        .bind(risk.source.as_ref().map(|s| s.as_str()))
        .bind(risk.external_id.as_ref().map(|e| e.as_str()))
        .bind(now.unix_micros())
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_external_ref)?;
        append(
            &mut tx,
            tenant,
            change,
            AuditDraft::risk("risk.create", None, Some(&risk)),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(risk)
    }

    async fn get_risk(&self, tenant: TenantId, id: RiskId) -> StoreResult<Risk> {
        let mut conn = self.read.acquire().await.map_err(map_err)?;
        risk_in(&mut conn, tenant, id).await
    }

    async fn list_risks(
        &self,
        tenant: TenantId,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Risk>> {
        let rows = sqlx::query(
            "SELECT * FROM risks WHERE tenant_id = ?1
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR source = ?3)
               AND (?4 IS NULL OR score >= ?4)
               AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(risks.tags) WHERE value = ?5))
               AND (?6 IS NULL OR title LIKE ?6 ESCAPE '\\' OR description LIKE ?6 ESCAPE '\\')
               AND (?7 IS NULL OR id < ?7)
             ORDER BY id DESC LIMIT ?8",
        )
        .bind(tenant.to_string())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.source.as_ref().map(|s| s.as_str()))
        .bind(filter.min_score.map(i64::from))
        .bind(filter.tag.as_ref().map(|t| t.as_str()))
        .bind(filter.text.as_deref().map(contains_pattern))
        .bind(page.cursor().map(|cursor| cursor.id().to_string()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let risks = rows
            .iter()
            .map(|r| row::risk(r)?.try_into())
            .collect::<StoreResult<Vec<Risk>>>()?;
        Ok(Page::from_overfetch(risks, page.limit(), |risk| {
            Cursor::after(risk.id.as_uuid())
        }))
    }

    async fn update_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        id: RiskId,
        patch: RiskPatch,
    ) -> StoreResult<Risk> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let before = risk_in(&mut tx, tenant, id).await?;
        let after = before.patched(patch, now);
        sqlx::query(
            "UPDATE risks SET title = ?, description = ?, impact = ?, probability = ?, status = ?,
                owner = ?, tags = ?, tlp = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
        )
        .bind(after.title.as_str())
        .bind(after.description.as_ref().map(|d| d.as_str()))
        .bind(i64::from(after.impact.get()))
        .bind(i64::from(after.probability.get()))
        .bind(after.status.as_str())
        .bind(after.owner.as_ref().map(|o| o.as_str()))
        .bind(tags_json(&after))
        .bind(after.tlp.as_str())
        .bind(now.unix_micros())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append(
            &mut tx,
            tenant,
            change,
            AuditDraft::risk("risk.update", Some(&before), Some(&after)),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn delete_risk(&self, tenant: TenantId, change: &Change, id: RiskId) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let before = risk_in(&mut tx, tenant, id).await?;
        sqlx::query("DELETE FROM risks WHERE tenant_id = ? AND id = ?")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append(
            &mut tx,
            tenant,
            change,
            AuditDraft::risk("risk.delete", Some(&before), None),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }
}
