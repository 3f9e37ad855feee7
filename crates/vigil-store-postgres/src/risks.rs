use async_trait::async_trait;
use sqlx::PgConnection;
use vigil_domain::{
    Cursor, NewRisk, PageRequest, Risk, RiskFilter, RiskId, RiskPatch, TenantId, Timestamp,
};
use vigil_store::{AuditDraft, Change, Page, RiskRepo, StoreError, StoreResult, contains_pattern};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

/// Reads a risk for a change and locks its row until the transaction ends, so two
/// concurrent patches apply one after the other instead of the second erasing the first.
async fn lock_risk(conn: &mut PgConnection, tenant: TenantId, id: RiskId) -> StoreResult<Risk> {
    let row = sqlx::query("SELECT * FROM risks WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::risk(&row)?.try_into()
}

pub(crate) fn tags(risk: &Risk) -> Vec<&str> {
    risk.tags.iter().collect()
}

fn conflict_on_external_ref(err: sqlx::Error) -> StoreError {
    match map_err(err) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("a risk with this source and external_id already exists".into())
        }
        other => other,
    }
}

pub(crate) async fn insert(conn: &mut PgConnection, risk: &Risk) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO risks (id, tenant_id, title, description, impact, probability, status, owner,
            tags, tlp, source, external_id, created_at, updated_at, source_state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(risk.id.as_uuid())
    .bind(risk.tenant_id.as_uuid())
    .bind(risk.title.as_str())
    .bind(risk.description.as_ref().map(|d| d.as_str()))
    .bind(i32::from(risk.impact.get()))
    .bind(i32::from(risk.probability.get()))
    .bind(risk.status.as_str())
    .bind(risk.owner.as_ref().map(|o| o.as_str()))
    .bind(tags(risk))
    .bind(risk.tlp.as_str())
    .bind(risk.source.as_ref().map(|s| s.as_str()))
    .bind(risk.external_id.as_ref().map(|e| e.as_str()))
    .bind(risk.created_at.to_datetime())
    .bind(risk.updated_at.to_datetime())
    .bind(risk.source_state.map(|s| s.as_str()))
    .execute(conn)
    .await
    .map_err(conflict_on_external_ref)?;
    Ok(())
}

#[async_trait]
impl RiskRepo for PostgresStore {
    async fn create_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewRisk,
    ) -> StoreResult<Risk> {
        let now = Timestamp::now();
        let risk = new.into_risk(tenant, RiskId::generate(), now);
        let mut tx = self.begin_scoped(tenant).await?;
        insert(&mut tx, &risk).await?;
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
        let query = sqlx::query("SELECT * FROM risks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::risk(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn list_risks(
        &self,
        tenant: TenantId,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Risk>> {
        let query = sqlx::query(
            "SELECT * FROM risks WHERE tenant_id = $1
               AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR source = $3)
               AND ($4::integer IS NULL OR score >= $4)
               AND ($5::text IS NULL OR $5 = ANY (tags))
               AND ($6::text IS NULL OR title ILIKE $6 ESCAPE '\\'
                    OR description ILIKE $6 ESCAPE '\\')
               AND ($7::uuid IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8",
        )
        .bind(tenant.as_uuid())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.source.as_ref().map(|s| s.as_str()))
        .bind(filter.min_score.map(i32::from))
        .bind(filter.tag.as_ref().map(|t| t.as_str()))
        .bind(filter.text.as_deref().map(contains_pattern))
        .bind(page.cursor().map(|cursor| cursor.id()))
        .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
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
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_risk(&mut tx, tenant, id).await?;
        let after = before.patched(patch, now);
        sqlx::query(
            "UPDATE risks SET title = $1, description = $2, impact = $3, probability = $4,
                status = $5, owner = $6, tags = $7, tlp = $8, updated_at = $9
             WHERE tenant_id = $10 AND id = $11",
        )
        .bind(after.title.as_str())
        .bind(after.description.as_ref().map(|d| d.as_str()))
        .bind(i32::from(after.impact.get()))
        .bind(i32::from(after.probability.get()))
        .bind(after.status.as_str())
        .bind(after.owner.as_ref().map(|o| o.as_str()))
        .bind(tags(&after))
        .bind(after.tlp.as_str())
        .bind(after.updated_at.to_datetime())
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
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
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_risk(&mut tx, tenant, id).await?;
        sqlx::query("DELETE FROM risks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
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
