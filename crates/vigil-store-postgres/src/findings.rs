use async_trait::async_trait;
use sqlx::PgConnection;
use vigil_domain::{
    Cursor, Finding, FindingFilter, FindingId, FindingPatch, FindingStatus, NewFinding,
    PageRequest, ParseError, ReopenCause, TenantId, Timestamp,
};
use vigil_store::{AuditDraft, Change, FindingRepo, Page, StoreError, StoreResult};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

/// Reads a finding for a change and locks its row until the transaction ends, so two
/// transitions (or a transition and a reopen) apply one after the other.
async fn lock_finding(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: FindingId,
) -> StoreResult<Finding> {
    let row = sqlx::query("SELECT * FROM findings WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::finding(&row)?.try_into()
}

async fn store(conn: &mut PgConnection, finding: &Finding) -> StoreResult<()> {
    sqlx::query(
        "UPDATE findings SET title = $1, description = $2, severity = $3, status = $4,
            asset = $5, tlp = $6, reopen_count = $7, updated_at = $8
         WHERE tenant_id = $9 AND id = $10",
    )
    .bind(finding.title.as_str())
    .bind(finding.description.as_ref().map(|d| d.as_str()))
    .bind(finding.severity.as_str())
    .bind(finding.status.as_str())
    .bind(finding.asset.as_ref().map(|a| a.as_str()))
    .bind(finding.tlp.as_str())
    .bind(i32::try_from(finding.reopen_count).unwrap_or(i32::MAX))
    .bind(finding.updated_at.to_datetime())
    .bind(finding.tenant_id.as_uuid())
    .bind(finding.id.as_uuid())
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert(conn: &mut PgConnection, finding: &Finding) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO findings (id, tenant_id, title, description, severity, status, asset,
            source, external_id, tlp, reopen_count, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(finding.id.as_uuid())
    .bind(finding.tenant_id.as_uuid())
    .bind(finding.title.as_str())
    .bind(finding.description.as_ref().map(|d| d.as_str()))
    .bind(finding.severity.as_str())
    .bind(finding.status.as_str())
    .bind(finding.asset.as_ref().map(|a| a.as_str()))
    .bind(finding.source.as_ref().map(|s| s.as_str()))
    .bind(finding.external_id.as_ref().map(|e| e.as_str()))
    .bind(finding.tlp.as_str())
    .bind(0_i32)
    .bind(finding.created_at.to_datetime())
    .bind(finding.updated_at.to_datetime())
    .execute(conn)
    .await
    .map_err(|err| match map_err(err) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("a finding with this source and external_id already exists".into())
        }
        other => other,
    })?;
    Ok(())
}

#[async_trait]
impl FindingRepo for PostgresStore {
    async fn create_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewFinding,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let finding = new.into_finding(tenant, FindingId::generate(), now);
        let mut tx = self.begin_scoped(tenant).await?;
        insert(&mut tx, &finding).await?;
        let draft = AuditDraft::finding("finding.create", None, &finding);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(finding)
    }

    async fn get_finding(&self, tenant: TenantId, id: FindingId) -> StoreResult<Finding> {
        let query = sqlx::query("SELECT * FROM findings WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::finding(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn list_findings(
        &self,
        tenant: TenantId,
        filter: &FindingFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Finding>> {
        let query = sqlx::query(
            "SELECT * FROM findings WHERE tenant_id = $1
               AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR severity = $3)
               AND ($4::uuid IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(tenant.as_uuid())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.severity.map(|s| s.as_str()))
        .bind(page.cursor().map(|cursor| cursor.id()))
        .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let findings = rows
            .iter()
            .map(|r| row::finding(r)?.try_into())
            .collect::<StoreResult<Vec<Finding>>>()?;
        Ok(Page::from_overfetch(findings, page.limit(), |f| {
            Cursor::after(f.id.as_uuid())
        }))
    }

    async fn update_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        patch: FindingPatch,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_finding(&mut tx, tenant, id).await?;
        let after = before.patched(patch, now);
        store(&mut tx, &after).await?;
        let draft = AuditDraft::finding("finding.update", Some(&before), &after);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn transition_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        to: FindingStatus,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_finding(&mut tx, tenant, id).await?;
        let after = before
            .transitioned(to, now)
            .map_err(|err| StoreError::Invalid(ParseError::new("to", err.to_string())))?;
        store(&mut tx, &after).await?;
        let draft = AuditDraft::finding("finding.transition", Some(&before), &after);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn reopen_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_finding(&mut tx, tenant, id).await?;
        let Some(after) = before.reopened(now) else {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        };
        store(&mut tx, &after).await?;
        let draft = AuditDraft::finding_reopened(&before, &after, cause);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}
