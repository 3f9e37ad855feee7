use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;
use vigil_domain::{
    Cursor, FindingId, Indicator, IndicatorFilter, IndicatorId, IndicatorPatch, NewIndicator,
    NewSuppression, PageRequest, ParseError, Suppression, SuppressionId, TenantId, Timestamp,
};
use vigil_store::{
    AuditDraft, CatalogueRepo, CatalogueSnapshot, Change, ImportCounts, Page, StoreError,
    StoreResult,
};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

/// Indicators an import reads and writes per statement.
const IMPORT_CHUNK: usize = 1_000;

async fn lock_indicator(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: IndicatorId,
) -> StoreResult<Indicator> {
    let row = sqlx::query("SELECT * FROM indicators WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    row::indicator(&row)?.try_into()
}

/// `Invalid` unless every id in `findings` is one of the tenant's findings.
async fn check_findings(
    conn: &mut PgConnection,
    tenant: TenantId,
    findings: &HashSet<FindingId>,
) -> StoreResult<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = findings.iter().map(FindingId::as_uuid).collect();
    let found: i64 =
        sqlx::query_scalar("SELECT count(*) FROM findings WHERE tenant_id = $1 AND id = ANY($2)")
            .bind(tenant.as_uuid())
            .bind(&ids)
            .fetch_one(conn)
            .await
            .map_err(map_err)?;
    if usize::try_from(found).ok() == Some(ids.len()) {
        Ok(())
    } else {
        Err(StoreError::Invalid(ParseError::new(
            "finding_id",
            "names no finding of this tenant",
        )))
    }
}

async fn bump_version(conn: &mut PgConnection, tenant: TenantId) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO catalogue_versions (tenant_id, version) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET version = catalogue_versions.version + 1",
    )
    .bind(tenant.as_uuid())
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn conflict_on_value(err: sqlx::Error) -> StoreError {
    match map_err(err) {
        StoreError::Conflict(_) => {
            StoreError::Conflict("the catalogue already has this type and value".into())
        }
        other => other,
    }
}

/// Inserts `indicators` with one statement (arrays unnested into rows).
async fn insert_indicators(conn: &mut PgConnection, indicators: &[Indicator]) -> StoreResult<()> {
    if indicators.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Indicator) -> Option<String>| -> Vec<Option<String>> {
        indicators.iter().map(f).collect()
    };
    let at = |f: fn(&Indicator) -> Option<Timestamp>| -> Vec<Option<OffsetDateTime>> {
        indicators
            .iter()
            .map(|i| f(i).map(|t| t.to_datetime()))
            .collect()
    };
    sqlx::query(
        "INSERT INTO indicators (id, tenant_id, kind, value, valid_from, valid_until, confidence,
            tlp, active, source, source_ref, finding_id, match_subdomains, created_at, updated_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[],
            $5::timestamptz[], $6::timestamptz[], $7::int4[], $8::text[], $9::bool[],
            $10::text[], $11::text[], $12::uuid[], $13::bool[], $14::timestamptz[],
            $15::timestamptz[])",
    )
    .bind(
        indicators
            .iter()
            .map(|i| i.id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(
        indicators
            .iter()
            .map(|i| i.tenant_id.as_uuid())
            .collect::<Vec<_>>(),
    )
    .bind(column(|i| Some(i.kind().as_str().to_owned())))
    .bind(column(|i| Some(i.value.as_str().to_owned())))
    .bind(at(|i| i.valid_from))
    .bind(at(|i| i.valid_until))
    .bind(
        indicators
            .iter()
            .map(|i| i.confidence.map(|c| i32::from(c.get())))
            .collect::<Vec<_>>(),
    )
    .bind(column(|i| Some(i.tlp.as_str().to_owned())))
    .bind(indicators.iter().map(|i| i.active).collect::<Vec<_>>())
    .bind(column(|i| i.source.as_ref().map(|s| s.as_str().to_owned())))
    .bind(column(|i| {
        i.source_ref.as_ref().map(|s| s.as_str().to_owned())
    }))
    .bind(
        indicators
            .iter()
            .map(|i| i.finding_id.map(|f| f.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        indicators
            .iter()
            .map(|i| i.match_subdomains)
            .collect::<Vec<_>>(),
    )
    .bind(at(|i| Some(i.created_at)))
    .bind(at(|i| Some(i.updated_at)))
    .execute(conn)
    .await
    .map_err(conflict_on_value)?;
    Ok(())
}

async fn update_indicator_row(conn: &mut PgConnection, i: &Indicator) -> StoreResult<()> {
    sqlx::query(
        "UPDATE indicators SET valid_from = $1, valid_until = $2, confidence = $3, tlp = $4,
            active = $5, source = $6, source_ref = $7, finding_id = $8, match_subdomains = $9,
            updated_at = $10 WHERE tenant_id = $11 AND id = $12",
    )
    .bind(i.valid_from.map(|at| at.to_datetime()))
    .bind(i.valid_until.map(|at| at.to_datetime()))
    .bind(i.confidence.map(|c| i32::from(c.get())))
    .bind(i.tlp.as_str())
    .bind(i.active)
    .bind(i.source.as_ref().map(|s| s.as_str()))
    .bind(i.source_ref.as_ref().map(|s| s.as_str()))
    .bind(i.finding_id.map(|f| f.as_uuid()))
    .bind(i.match_subdomains)
    .bind(i.updated_at.to_datetime())
    .bind(i.tenant_id.as_uuid())
    .bind(i.id.as_uuid())
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The tenant's indicators among `chunk`, by (type, value), locked for the import.
async fn existing_by_value(
    conn: &mut PgConnection,
    tenant: TenantId,
    chunk: &[NewIndicator],
) -> StoreResult<HashMap<(String, String), Indicator>> {
    let kinds: Vec<&str> = chunk.iter().map(|n| n.value.kind().as_str()).collect();
    let values: Vec<&str> = chunk.iter().map(|n| n.value.as_str()).collect();
    let rows = sqlx::query(
        "SELECT * FROM indicators WHERE tenant_id = $1
           AND (kind, value) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))
         FOR UPDATE",
    )
    .bind(tenant.as_uuid())
    .bind(&kinds)
    .bind(&values)
    .fetch_all(conn)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            let indicator: Indicator = row::indicator(r)?.try_into()?;
            let key = (
                indicator.kind().as_str().to_owned(),
                indicator.value.as_str().to_owned(),
            );
            Ok((key, indicator))
        })
        .collect()
}

async fn import_chunk(
    conn: &mut PgConnection,
    tenant: TenantId,
    chunk: Vec<NewIndicator>,
    counts: &mut ImportCounts,
    now: Timestamp,
) -> StoreResult<()> {
    let existing = existing_by_value(conn, tenant, &chunk).await?;
    let mut created = Vec::new();
    for new in chunk {
        let key = (
            new.value.kind().as_str().to_owned(),
            new.value.as_str().to_owned(),
        );
        match existing.get(&key) {
            None => created.push(new.into_indicator(tenant, IndicatorId::generate(), now)),
            Some(old) => match new.refresh(old, now) {
                Some(refreshed) => {
                    update_indicator_row(conn, &refreshed).await?;
                    counts.updated += 1;
                }
                None => counts.unchanged += 1,
            },
        }
    }
    counts.created += created.len() as u64;
    insert_indicators(conn, &created).await
}

#[async_trait]
impl CatalogueRepo for PostgresStore {
    async fn create_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewIndicator,
    ) -> StoreResult<Indicator> {
        let now = Timestamp::now();
        let indicator = new.into_indicator(tenant, IndicatorId::generate(), now);
        let mut tx = self.begin_scoped(tenant).await?;
        check_findings(&mut tx, tenant, &indicator.finding_id.into_iter().collect()).await?;
        insert_indicators(&mut tx, std::slice::from_ref(&indicator)).await?;
        bump_version(&mut tx, tenant).await?;
        let draft = AuditDraft::indicator("indicator.create", None, Some(&indicator));
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(indicator)
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
        let mut tx = self.begin_scoped(tenant).await?;
        let findings = indicators.iter().filter_map(|i| i.finding_id).collect();
        check_findings(&mut tx, tenant, &findings).await?;
        let mut counts = ImportCounts::default();
        let mut rest = indicators;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(IMPORT_CHUNK));
            import_chunk(&mut tx, tenant, rest, &mut counts, now).await?;
            rest = tail;
        }
        if let Some(max) = created_max.filter(|max| counts.created > *max) {
            return Err(StoreError::OverLimit { max });
        }
        if counts.created + counts.updated > 0 {
            bump_version(&mut tx, tenant).await?;
        }
        let draft =
            AuditDraft::indicator_import(label, counts.created, counts.updated, counts.unchanged);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(counts)
    }

    async fn get_indicator(&self, tenant: TenantId, id: IndicatorId) -> StoreResult<Indicator> {
        let query = sqlx::query("SELECT * FROM indicators WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::indicator(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn list_indicators(
        &self,
        tenant: TenantId,
        filter: &IndicatorFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Indicator>> {
        let query = sqlx::query(
            "SELECT * FROM indicators WHERE tenant_id = $1
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR value = $3)
               AND ($4::uuid IS NULL OR finding_id = $4)
               AND ($5::uuid IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(tenant.as_uuid())
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(filter.value.as_deref())
        .bind(filter.finding_id.map(|f| f.as_uuid()))
        .bind(page.cursor().map(|cursor| cursor.id()))
        .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let items = rows
            .iter()
            .map(|r| row::indicator(r)?.try_into())
            .collect::<StoreResult<Vec<Indicator>>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |i| {
            Cursor::after(i.id.as_uuid())
        }))
    }

    async fn update_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
        patch: IndicatorPatch,
    ) -> StoreResult<Indicator> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_indicator(&mut tx, tenant, id).await?;
        let after = before.patched(patch, now).map_err(StoreError::Invalid)?;
        if after.finding_id != before.finding_id {
            check_findings(&mut tx, tenant, &after.finding_id.into_iter().collect()).await?;
        }
        update_indicator_row(&mut tx, &after).await?;
        bump_version(&mut tx, tenant).await?;
        let draft = AuditDraft::indicator("indicator.update", Some(&before), Some(&after));
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(after)
    }

    async fn delete_indicator(
        &self,
        tenant: TenantId,
        change: &Change,
        id: IndicatorId,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_indicator(&mut tx, tenant, id).await?;
        sqlx::query("DELETE FROM indicators WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        bump_version(&mut tx, tenant).await?;
        let draft = AuditDraft::indicator("indicator.delete", Some(&before), None);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn create_suppression(
        &self,
        tenant: TenantId,
        change: &Change,
        new: NewSuppression,
    ) -> StoreResult<Suppression> {
        let now = Timestamp::now();
        let suppression = new.into_suppression(tenant, SuppressionId::generate(), now);
        let mut tx = self.begin_scoped(tenant).await?;
        sqlx::query(
            "INSERT INTO suppressions (id, tenant_id, kind, value, match_subdomains, reason,
                created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(suppression.id.as_uuid())
        .bind(tenant.as_uuid())
        .bind(suppression.value.kind().as_str())
        .bind(suppression.value.as_str())
        .bind(suppression.match_subdomains)
        .bind(suppression.reason.as_ref().map(|r| r.as_str()))
        .bind(now.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(|err| match map_err(err) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("this type and value are already suppressed".into())
            }
            other => other,
        })?;
        bump_version(&mut tx, tenant).await?;
        let draft = AuditDraft::suppression("suppression.create", None, Some(&suppression));
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(suppression)
    }

    async fn list_suppressions(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Suppression>> {
        self.tenant_page(
            tenant,
            "suppressions",
            page,
            |r| row::suppression(r)?.try_into(),
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
        let mut tx = self.begin_scoped(tenant).await?;
        let row =
            sqlx::query("DELETE FROM suppressions WHERE tenant_id = $1 AND id = $2 RETURNING *")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or(StoreError::NotFound)?;
        let before: Suppression = row::suppression(&row)?.try_into()?;
        bump_version(&mut tx, tenant).await?;
        let draft = AuditDraft::suppression("suppression.delete", Some(&before), None);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn catalogue_version(&self, tenant: TenantId) -> StoreResult<i64> {
        let query = sqlx::query("SELECT version FROM catalogue_versions WHERE tenant_id = $1")
            .bind(tenant.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row.map_or(Ok(0), |row| row.try_get("version").map_err(map_err))
    }

    async fn catalogue_snapshot(&self, tenant: TenantId) -> StoreResult<CatalogueSnapshot> {
        // One snapshot for the version and the rows.
        let mut tx = self.begin_scoped_snapshot(tenant).await?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM catalogue_versions WHERE tenant_id = $1")
                .bind(tenant.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let indicators = sqlx::query("SELECT * FROM indicators WHERE tenant_id = $1 AND active")
            .bind(tenant.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| row::indicator(r)?.try_into())
            .collect::<StoreResult<Vec<Indicator>>>()?;
        let suppressions = sqlx::query("SELECT * FROM suppressions WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| row::suppression(r)?.try_into())
            .collect::<StoreResult<Vec<Suppression>>>()?;
        tx.commit().await.map_err(map_err)?;
        Ok(CatalogueSnapshot {
            version: version.unwrap_or(0),
            indicators,
            suppressions,
        })
    }
}
