use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{
    Cursor, FindingId, Indicator, IndicatorFilter, IndicatorId, IndicatorPatch, NewIndicator,
    NewSuppression, PageRequest, ParseError, Suppression, SuppressionId, TenantId, Timestamp,
};
use vigil_store::{
    AuditDraft, CatalogueRepo, CatalogueSnapshot, Change, ImportCounts, Page, Scope, StoreError,
    StoreResult,
};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{
    self, exec, id_text, indicator_columns, map_err, query_all, query_one, scoped_page_sql,
    suppression_columns,
};

fn indicator_in(conn: &Connection, tenant: TenantId, id: IndicatorId) -> StoreResult<Indicator> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            indicator_columns!(),
            " FROM indicators WHERE tenant_id = ?1 AND id = ?2"
        ),
        params![tenant.to_string(), id.to_string()],
        row::indicator,
    )?
    .ok_or(StoreError::NotFound)
}

fn indicator_by_value(
    conn: &Connection,
    tenant: TenantId,
    new: &NewIndicator,
) -> StoreResult<Option<Indicator>> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            indicator_columns!(),
            " FROM indicators WHERE tenant_id = ?1 AND kind = ?2 AND value = ?3"
        ),
        params![
            tenant.to_string(),
            new.value.kind().as_str(),
            new.value.as_str()
        ],
        row::indicator,
    )
}

/// `Invalid` unless `finding` is one of the tenant's findings.
fn check_finding(conn: &Connection, tenant: TenantId, finding: FindingId) -> StoreResult<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM findings WHERE tenant_id = ?1 AND id = ?2")
        .map_err(map_err)?
        .exists(params![tenant.to_string(), finding.to_string()])
        .map_err(map_err)?;
    if found {
        Ok(())
    } else {
        Err(StoreError::Invalid(ParseError::new(
            "finding_id",
            "names no finding of this tenant",
        )))
    }
}

fn bump_version(conn: &Connection, tenant: TenantId) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO catalogue_versions (tenant_id, version) VALUES (?1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1",
        params![tenant.to_string()],
    )?;
    Ok(())
}

fn insert_indicator(conn: &Connection, i: &Indicator) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO indicators (id, tenant_id, kind, value, valid_from, valid_until, confidence,
            tlp, active, source, source_ref, finding_id, match_subdomains, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            i.id.to_string(),
            i.tenant_id.to_string(),
            i.kind().as_str(),
            i.value.as_str(),
            i.valid_from.map(|at| at.unix_micros()),
            i.valid_until.map(|at| at.unix_micros()),
            i.confidence.map(|c| c.get()),
            i.tlp.as_str(),
            i.active,
            i.source.as_ref().map(|s| s.as_str()),
            i.source_ref.as_ref().map(|s| s.as_str()),
            id_text(i.finding_id),
            i.match_subdomains,
            i.created_at.unix_micros(),
            i.updated_at.unix_micros(),
        ],
    )
    .map_err(|err| match err {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the catalogue already has this type and value".into())
        }
        other => other,
    })?;
    Ok(())
}

fn update_indicator_row(conn: &Connection, i: &Indicator) -> StoreResult<()> {
    exec(
        conn,
        "UPDATE indicators SET valid_from = ?1, valid_until = ?2, confidence = ?3, tlp = ?4,
            active = ?5, source = ?6, source_ref = ?7, finding_id = ?8, match_subdomains = ?9,
            updated_at = ?10 WHERE tenant_id = ?11 AND id = ?12",
        params![
            i.valid_from.map(|at| at.unix_micros()),
            i.valid_until.map(|at| at.unix_micros()),
            i.confidence.map(|c| c.get()),
            i.tlp.as_str(),
            i.active,
            i.source.as_ref().map(|s| s.as_str()),
            i.source_ref.as_ref().map(|s| s.as_str()),
            id_text(i.finding_id),
            i.match_subdomains,
            i.updated_at.unix_micros(),
            i.tenant_id.to_string(),
            i.id.to_string(),
        ],
    )?;
    Ok(())
}

/// Creates, refreshes or leaves alone one imported indicator.
fn import_one(
    tx: &Connection,
    tenant: TenantId,
    new: NewIndicator,
    known_findings: &mut HashSet<FindingId>,
    counts: &mut ImportCounts,
    now: Timestamp,
) -> StoreResult<()> {
    if let Some(finding) = new.finding_id
        && known_findings.insert(finding)
    {
        check_finding(tx, tenant, finding)?;
    }
    match indicator_by_value(tx, tenant, &new)? {
        None => {
            insert_indicator(
                tx,
                &new.into_indicator(tenant, IndicatorId::generate(), now),
            )?;
            counts.created += 1;
        }
        Some(existing) => match new.refresh(&existing, now) {
            Some(refreshed) => {
                update_indicator_row(tx, &refreshed)?;
                counts.updated += 1;
            }
            None => counts.unchanged += 1,
        },
    }
    Ok(())
}

#[async_trait]
impl CatalogueRepo for SqliteStore {
    async fn create_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewIndicator,
    ) -> StoreResult<Indicator> {
        let now = Timestamp::now();
        let indicator = new.into_indicator(tenant, IndicatorId::generate(), now);
        let change = change.clone();
        self.write(move |tx| {
            if let Some(finding) = indicator.finding_id {
                check_finding(tx, tenant, finding)?;
            }
            insert_indicator(tx, &indicator)?;
            bump_version(tx, tenant)?;
            let draft = AuditDraft::indicator("indicator.create", None, Some(&indicator));
            append(tx, tenant, &change, draft, now)?;
            Ok(indicator)
        })
        .await
    }

    async fn import_indicators(
        &self,
        tenant: TenantId,
        change: &Change,
        indicators: Vec<NewIndicator>,
        label: &str,
        created_max: Option<u64>,
    ) -> StoreResult<ImportCounts> {
        let now = Timestamp::now();
        let change = change.clone();
        let label = label.to_owned();
        self.write(move |tx| {
            let mut counts = ImportCounts::default();
            let mut known_findings = HashSet::new();
            for new in indicators {
                import_one(tx, tenant, new, &mut known_findings, &mut counts, now)?;
            }
            if let Some(max) = created_max.filter(|max| counts.created > *max) {
                return Err(StoreError::OverLimit { max });
            }
            if counts.created + counts.updated > 0 {
                bump_version(tx, tenant)?;
            }
            let draft = AuditDraft::indicator_import(
                &label,
                counts.created,
                counts.updated,
                counts.unchanged,
            );
            append(tx, tenant, &change, draft, now)?;
            Ok(counts)
        })
        .await
    }

    async fn get_indicator(&self, tenant: TenantId, id: IndicatorId) -> StoreResult<Indicator> {
        self.read(move |conn| indicator_in(conn, tenant, id)).await
    }

    async fn list_indicators(
        &self,
        tenant: TenantId,
        filter: &IndicatorFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Indicator>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let items: Vec<Indicator> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    indicator_columns!(),
                    " FROM indicators WHERE tenant_id = ?1
                       AND (?2 IS NULL OR kind = ?2)
                       AND (?3 IS NULL OR value = ?3)
                       AND (?4 IS NULL OR finding_id = ?4)
                       AND (?5 IS NULL OR id < ?5)
                     ORDER BY id DESC LIMIT ?6"
                ),
                params![
                    tenant.to_string(),
                    filter.kind.map(|k| k.as_str()),
                    filter.value,
                    id_text(filter.finding_id),
                    page.cursor().map(|cursor| cursor.id().to_string()),
                    i64::from(page.limit()) + 1,
                ],
                row::indicator,
            )?;
            Ok(Page::from_overfetch(items, page.limit(), |i| {
                Cursor::after(i.id.as_uuid())
            }))
        })
        .await
    }

    async fn update_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
        patch: IndicatorPatch,
    ) -> StoreResult<Indicator> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = indicator_in(tx, tenant, id)?;
            let after = before.patched(patch, now).map_err(StoreError::Invalid)?;
            if let Some(finding) = after.finding_id
                && after.finding_id != before.finding_id
            {
                check_finding(tx, tenant, finding)?;
            }
            update_indicator_row(tx, &after)?;
            bump_version(tx, tenant)?;
            let draft = AuditDraft::indicator("indicator.update", Some(&before), Some(&after));
            append(tx, tenant, &change, draft, now)?;
            Ok(after)
        })
        .await
    }

    async fn delete_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = indicator_in(tx, tenant, id)?;
            exec(
                tx,
                "DELETE FROM indicators WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string()],
            )?;
            bump_version(tx, tenant)?;
            let draft = AuditDraft::indicator("indicator.delete", Some(&before), None);
            append(tx, tenant, &change, draft, now)?;
            Ok(())
        })
        .await
    }

    async fn create_suppression(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewSuppression,
    ) -> StoreResult<Suppression> {
        let now = Timestamp::now();
        let suppression = new.into_suppression(tenant, SuppressionId::generate(), now);
        let change = change.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO suppressions (id, tenant_id, kind, value, match_subdomains, reason,
                    created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    suppression.id.to_string(),
                    tenant.to_string(),
                    suppression.value.kind().as_str(),
                    suppression.value.as_str(),
                    suppression.match_subdomains,
                    suppression.reason.as_ref().map(|r| r.as_str()),
                    now.unix_micros(),
                ],
            )
            .map_err(|err| match err {
                StoreError::Conflict(_) => {
                    StoreError::Conflict("this type and value are already suppressed".into())
                }
                other => other,
            })?;
            bump_version(tx, tenant)?;
            let draft = AuditDraft::suppression("suppression.create", None, Some(&suppression));
            append(tx, tenant, &change, draft, now)?;
            Ok(suppression)
        })
        .await
    }

    async fn list_suppressions(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Suppression>> {
        let sql = scoped_page_sql!(suppression_columns!(), "suppressions");
        self.list_scoped(
            sql,
            Scope::Tenant(tenant),
            page,
            row::suppression,
            |s: &Suppression| s.id.as_uuid(),
        )
        .await
    }

    async fn delete_suppression(
        &self,
        tenant: TenantId,
        change: &Change,
        id: SuppressionId,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before: Suppression = query_one(
                tx,
                concat!(
                    "SELECT ",
                    suppression_columns!(),
                    " FROM suppressions WHERE tenant_id = ?1 AND id = ?2"
                ),
                params![tenant.to_string(), id.to_string()],
                row::suppression,
            )?
            .ok_or(StoreError::NotFound)?;
            exec(
                tx,
                "DELETE FROM suppressions WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string()],
            )?;
            bump_version(tx, tenant)?;
            let draft = AuditDraft::suppression("suppression.delete", Some(&before), None);
            append(tx, tenant, &change, draft, now)?;
            Ok(())
        })
        .await
    }

    async fn catalogue_version(&self, tenant: TenantId) -> StoreResult<i64> {
        self.read(move |conn| version(conn, tenant)).await
    }

    async fn catalogue_snapshot(&self, tenant: TenantId) -> StoreResult<CatalogueSnapshot> {
        self.read(move |conn| {
            // One read transaction: the version and the rows come from the same snapshot.
            let tx = conn.unchecked_transaction().map_err(map_err)?;
            let version = version(&tx, tenant)?;
            let indicators: Vec<Indicator> = query_all(
                &tx,
                concat!(
                    "SELECT ",
                    indicator_columns!(),
                    " FROM indicators WHERE tenant_id = ?1 AND active = 1"
                ),
                params![tenant.to_string()],
                row::indicator,
            )?;
            let suppressions: Vec<Suppression> = query_all(
                &tx,
                concat!(
                    "SELECT ",
                    suppression_columns!(),
                    " FROM suppressions WHERE tenant_id = ?1"
                ),
                params![tenant.to_string()],
                row::suppression,
            )?;
            tx.commit().map_err(map_err)?;
            Ok(CatalogueSnapshot {
                version,
                indicators,
                suppressions,
            })
        })
        .await
    }
}

fn version(conn: &Connection, tenant: TenantId) -> StoreResult<i64> {
    let mut statement = conn
        .prepare_cached("SELECT version FROM catalogue_versions WHERE tenant_id = ?1")
        .map_err(map_err)?;
    let mut rows = statement.query([tenant.to_string()]).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(row) => row.get(0).map_err(map_err),
        None => Ok(0),
    }
}
