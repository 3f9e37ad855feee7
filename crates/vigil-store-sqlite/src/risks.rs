use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{
    Cursor, NewRisk, PageRequest, Risk, RiskFilter, RiskId, RiskPatch, TenantId, Timestamp,
};
use vigil_store::{
    AuditDraft, Change, Page, RiskRepo, StoreError, StoreResult, contains_pattern, tags_json,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, exec, query_all, query_one, risk_columns};

fn risk_in(conn: &Connection, tenant: TenantId, id: RiskId) -> StoreResult<Risk> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            risk_columns!(),
            " FROM risks WHERE tenant_id = ?1 AND id = ?2"
        ),
        params![tenant.to_string(), id.to_string()],
        row::risk,
    )?
    .ok_or(StoreError::NotFound)
}

pub(crate) fn insert_risk(conn: &Connection, risk: &Risk) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO risks (id, tenant_id, title, description, impact, probability, status, owner,
            tags, tlp, source, external_id, source_state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            risk.id.to_string(),
            risk.tenant_id.to_string(),
            risk.title.as_str(),
            risk.description.as_ref().map(|d| d.as_str()),
            risk.impact.get(),
            risk.probability.get(),
            risk.status.as_str(),
            risk.owner.as_ref().map(|o| o.as_str()),
            tags_json(risk),
            risk.tlp.as_str(),
            risk.source.as_ref().map(|s| s.as_str()),
            risk.external_id.as_ref().map(|e| e.as_str()),
            risk.source_state.map(|s| s.as_str()),
            risk.created_at.unix_micros(),
            risk.updated_at.unix_micros(),
        ],
    )
    .map_err(|err| match err {
        StoreError::Conflict(_) => {
            StoreError::Conflict("a risk with this source and external_id already exists".into())
        }
        other => other,
    })?;
    Ok(())
}

/// Writes every mutable column of `risk` (the row exists).
pub(crate) fn update_risk_row(conn: &Connection, risk: &Risk) -> StoreResult<()> {
    exec(
        conn,
        "UPDATE risks SET title = ?1, description = ?2, impact = ?3, probability = ?4, status = ?5,
            owner = ?6, tags = ?7, tlp = ?8, source_state = ?9, updated_at = ?10
         WHERE tenant_id = ?11 AND id = ?12",
        params![
            risk.title.as_str(),
            risk.description.as_ref().map(|d| d.as_str()),
            risk.impact.get(),
            risk.probability.get(),
            risk.status.as_str(),
            risk.owner.as_ref().map(|o| o.as_str()),
            tags_json(risk),
            risk.tlp.as_str(),
            risk.source_state.map(|s| s.as_str()),
            risk.updated_at.unix_micros(),
            risk.tenant_id.to_string(),
            risk.id.to_string(),
        ],
    )?;
    Ok(())
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
        let change = change.clone();
        self.write(move |tx| {
            insert_risk(tx, &risk)?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::risk("risk.create", None, Some(&risk)),
                now,
            )?;
            Ok(risk)
        })
        .await
    }

    async fn get_risk(&self, tenant: TenantId, id: RiskId) -> StoreResult<Risk> {
        self.read(move |conn| risk_in(conn, tenant, id)).await
    }

    async fn list_risks(
        &self,
        tenant: TenantId,
        filter: &RiskFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Risk>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let risks: Vec<Risk> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    risk_columns!(),
                    " FROM risks WHERE tenant_id = ?1
                   AND (?2 IS NULL OR status = ?2)
                   AND (?3 IS NULL OR source = ?3)
                   AND (?4 IS NULL OR score >= ?4)
                   AND (?5 IS NULL OR EXISTS (SELECT 1 FROM json_each(risks.tags) WHERE value = ?5))
                   AND (?6 IS NULL OR title LIKE ?6 ESCAPE '\\' OR description LIKE ?6 ESCAPE '\\')
                   AND (?7 IS NULL OR id < ?7)
                 ORDER BY id DESC LIMIT ?8"
                ),
                params![
                    tenant.to_string(),
                    filter.status.map(|s| s.as_str()),
                    filter.source.as_ref().map(|s| s.as_str()),
                    filter.min_score,
                    filter.tag.as_ref().map(|t| t.as_str()),
                    filter.text.as_deref().map(contains_pattern),
                    page.cursor().map(|cursor| cursor.id().to_string()),
                    i64::from(page.limit()) + 1,
                ],
                row::risk,
            )?;
            Ok(Page::from_overfetch(risks, page.limit(), |risk| {
                Cursor::after(risk.id.as_uuid())
            }))
        })
        .await
    }

    async fn update_risk(
        &self,
        tenant: TenantId,
        change: &Change,
        id: RiskId,
        patch: RiskPatch,
    ) -> StoreResult<Risk> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = risk_in(tx, tenant, id)?;
            let after = before.patched(patch, now);
            update_risk_row(tx, &after)?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::risk("risk.update", Some(&before), Some(&after)),
                now,
            )?;
            Ok(after)
        })
        .await
    }

    async fn delete_risk(&self, tenant: TenantId, change: &Change, id: RiskId) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = risk_in(tx, tenant, id)?;
            exec(
                tx,
                "DELETE FROM risks WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string()],
            )?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::risk("risk.delete", Some(&before), None),
                now,
            )?;
            Ok(())
        })
        .await
    }
}
