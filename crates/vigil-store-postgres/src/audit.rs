use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use vigil_domain::{AuditEvent, ChainHead, Cursor, PageRequest, Sha256Hex, TenantId, Timestamp};
use vigil_store::{
    AuditDraft, AuditFilter, AuditRepo, Change, Page, StoreError, StoreResult, seal,
};

use crate::row::{self, map_err};
use crate::{LOCK_CLASS_CHAINS, PostgresStore};

/// Appends one event to `chain` inside the caller's write transaction.
///
/// Appends to one chain must run one at a time: each reads the head and writes its
/// successor. `FOR UPDATE` on the head row serializes them once the chain has a head, but
/// the first appends find no row to lock and would both write seq 1; the advisory lock,
/// taken first and held until commit, covers that case too.
pub(crate) async fn append(
    tx: &mut PgConnection,
    chain: TenantId,
    change: &Change,
    draft: AuditDraft,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_CLASS_CHAINS)
        .bind(chain.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let head = read_head(&mut *tx, chain, true)
        .await?
        .unwrap_or_else(ChainHead::genesis);
    let event = seal(chain, &head, change, draft, now);
    insert_event(&mut *tx, &event).await?;
    sqlx::query(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(chain.as_uuid())
    .bind(event.seq)
    .bind(event.hash.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_event(tx: &mut PgConnection, event: &AuditEvent) -> StoreResult<()> {
    let fields = &event.fields;
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, seq, at, actor, action, entity_type, entity_id,
            before, after, reason, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(fields.id.as_uuid())
    .bind(fields.tenant_id.as_uuid())
    .bind(event.seq)
    .bind(fields.at.to_datetime())
    .bind(&fields.actor)
    .bind(&fields.action)
    .bind(&fields.entity_type)
    .bind(&fields.entity_id)
    .bind(&fields.before)
    .bind(&fields.after)
    .bind(&fields.reason)
    .bind(event.prev_hash.as_str())
    .bind(event.hash.as_str())
    .execute(tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The chain's head; `lock` holds its row until the transaction ends.
async fn read_head(
    conn: &mut PgConnection,
    chain: TenantId,
    lock: bool,
) -> StoreResult<Option<ChainHead>> {
    let sql = if lock {
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE"
    } else {
        "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1"
    };
    let row = sqlx::query(sql)
        .bind(chain.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
    row.map(|row| {
        let hash: String = row.try_get("hash").map_err(map_err)?;
        Ok(ChainHead {
            seq: row.try_get("seq").map_err(map_err)?,
            hash: Sha256Hex::parse(&hash).map_err(StoreError::corrupt("audit_heads"))?,
        })
    })
    .transpose()
}

#[async_trait]
impl AuditRepo for PostgresStore {
    async fn append_event(
        &self,
        chain: TenantId,
        change: &Change,
        draft: AuditDraft,
    ) -> StoreResult<()> {
        let mut tx = self.begin_scoped(chain).await?;
        append(&mut tx, chain, change, draft, Timestamp::now()).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_audit(
        &self,
        chain: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEvent>> {
        let query = sqlx::query(concat!(
            "SELECT * FROM audit_events WHERE tenant_id = $1
               AND ($2::text IS NULL OR entity_type = $2)
               AND ($3::text IS NULL OR entity_id = $3)
               AND ($4::bigint IS NULL OR seq < $4)
               AND (NOT $6 OR entity_type NOT IN (",
            vigil_store::access_entity_types_sql!(),
            "))
             ORDER BY seq DESC LIMIT $5"
        ))
        .bind(chain.as_uuid())
        .bind(&filter.entity_type)
        .bind(&filter.entity_id)
        .bind(page.cursor().map(|cursor| cursor.seq()))
        .bind(i64::from(page.limit()) + 1)
        .bind(filter.data_only);
        let rows = self.fetch_scoped(chain, query).await?;
        let events = rows
            .iter()
            .map(|r| row::audit(r)?.try_into())
            .collect::<StoreResult<Vec<AuditEvent>>>()?;
        Ok(Page::from_overfetch(events, page.limit(), |event| {
            Cursor::after_seq(event.seq)
        }))
    }

    async fn audit_chain_after(
        &self,
        chain: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let query = sqlx::query(
            "SELECT * FROM audit_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(chain.as_uuid())
        .bind(after_seq)
        .bind(i64::from(limit));
        let rows = self.fetch_scoped(chain, query).await?;
        rows.iter().map(|r| row::audit(r)?.try_into()).collect()
    }

    async fn audit_head(&self, chain: TenantId) -> StoreResult<Option<ChainHead>> {
        let mut tx = self.begin_scoped(chain).await?;
        let head = read_head(&mut tx, chain, false).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(head)
    }
}
