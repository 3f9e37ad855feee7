use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{
    Cursor, Finding, FindingFilter, FindingId, FindingPatch, FindingStatus, NewFinding,
    PageRequest, ParseError, ReopenCause, TenantId, Timestamp,
};
use vigil_store::{AuditDraft, Change, FindingRepo, Page, StoreError, StoreResult};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, exec, finding_columns, query_all, query_one};

pub(crate) fn finding_in(
    conn: &Connection,
    tenant: TenantId,
    id: FindingId,
) -> StoreResult<Finding> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            finding_columns!(),
            " FROM findings WHERE tenant_id = ?1 AND id = ?2"
        ),
        params![tenant.to_string(), id.to_string()],
        row::finding,
    )?
    .ok_or(StoreError::NotFound)
}

/// Writes every mutable column of `finding` (the row exists).
fn store(conn: &Connection, finding: &Finding) -> StoreResult<()> {
    exec(
        conn,
        "UPDATE findings SET title = ?1, description = ?2, severity = ?3, status = ?4, asset = ?5,
            tlp = ?6, reopen_count = ?7, updated_at = ?8 WHERE tenant_id = ?9 AND id = ?10",
        params![
            finding.title.as_str(),
            finding.description.as_ref().map(|d| d.as_str()),
            finding.severity.as_str(),
            finding.status.as_str(),
            finding.asset.as_ref().map(|a| a.as_str()),
            finding.tlp.as_str(),
            finding.reopen_count,
            finding.updated_at.unix_micros(),
            finding.tenant_id.to_string(),
            finding.id.to_string(),
        ],
    )?;
    Ok(())
}

#[async_trait]
impl FindingRepo for SqliteStore {
    async fn create_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewFinding,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let finding = new.into_finding(tenant, FindingId::generate(), now);
        let change = change.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO findings (id, tenant_id, title, description, severity, status, asset,
                    source, external_id, tlp, reopen_count, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    finding.id.to_string(),
                    tenant.to_string(),
                    finding.title.as_str(),
                    finding.description.as_ref().map(|d| d.as_str()),
                    finding.severity.as_str(),
                    finding.status.as_str(),
                    finding.asset.as_ref().map(|a| a.as_str()),
                    finding.source.as_ref().map(|s| s.as_str()),
                    finding.external_id.as_ref().map(|e| e.as_str()),
                    finding.tlp.as_str(),
                    finding.reopen_count,
                    now.unix_micros(),
                    now.unix_micros(),
                ],
            )
            .map_err(|err| match err {
                StoreError::Conflict(_) => StoreError::Conflict(
                    "a finding with this source and external_id already exists".into(),
                ),
                other => other,
            })?;
            let draft = AuditDraft::finding("finding.create", None, &finding);
            append(tx, tenant, &change, draft, now)?;
            Ok(finding)
        })
        .await
    }

    async fn get_finding(&self, tenant: TenantId, id: FindingId) -> StoreResult<Finding> {
        self.read(move |conn| finding_in(conn, tenant, id)).await
    }

    async fn list_findings(
        &self,
        tenant: TenantId,
        filter: &FindingFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Finding>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let findings: Vec<Finding> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    finding_columns!(),
                    " FROM findings WHERE tenant_id = ?1
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR severity = ?3)
                       AND (?4 IS NULL OR id < ?4)
                     ORDER BY id DESC LIMIT ?5"
                ),
                params![
                    tenant.to_string(),
                    filter.status.map(|s| s.as_str()),
                    filter.severity.map(|s| s.as_str()),
                    page.cursor().map(|cursor| cursor.id().to_string()),
                    i64::from(page.limit()) + 1,
                ],
                row::finding,
            )?;
            Ok(Page::from_overfetch(findings, page.limit(), |f| {
                Cursor::after(f.id.as_uuid())
            }))
        })
        .await
    }

    async fn update_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        patch: FindingPatch,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = finding_in(tx, tenant, id)?;
            let after = before.patched(patch, now);
            store(tx, &after)?;
            let draft = AuditDraft::finding("finding.update", Some(&before), &after);
            append(tx, tenant, &change, draft, now)?;
            Ok(after)
        })
        .await
    }

    async fn transition_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        to: FindingStatus,
    ) -> StoreResult<Finding> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = finding_in(tx, tenant, id)?;
            let after = before
                .transitioned(to, now)
                .map_err(|err| StoreError::Invalid(ParseError::new("to", err.to_string())))?;
            store(tx, &after)?;
            let draft = AuditDraft::finding("finding.transition", Some(&before), &after);
            append(tx, tenant, &change, draft, now)?;
            Ok(after)
        })
        .await
    }

    async fn reopen_finding(
        &self,
        tenant: TenantId,
        change: &Change,
        id: FindingId,
        cause: &ReopenCause,
    ) -> StoreResult<bool> {
        let now = Timestamp::now();
        let change = change.clone();
        let cause = cause.clone();
        self.write(move |tx| {
            let before = finding_in(tx, tenant, id)?;
            let Some(after) = before.reopened(now) else {
                return Ok(false);
            };
            store(tx, &after)?;
            let draft = AuditDraft::finding_reopened(&before, &after, &cause);
            append(tx, tenant, &change, draft, now)?;
            Ok(true)
        })
        .await
    }
}
