use async_trait::async_trait;
use sqlx::{Row, SqliteConnection};
use vigil_domain::{AuditEvent, ChainHead, PageRequest, Sha256Hex, TenantId, Timestamp};
use vigil_store::{AuditDraft, AuditFilter, AuditRepo, Change, Page, StoreResult, seal};

use crate::SqliteStore;
use crate::row::{self, map_err};

/// Appends one event to `chain` inside the caller's write transaction.
pub(crate) async fn append(
    tx: &mut SqliteConnection,
    chain: TenantId,
    change: &Change,
    draft: AuditDraft,
    now: Timestamp,
) -> StoreResult<()> {
    let head = read_head(&mut *tx, chain)
        .await?
        .unwrap_or_else(ChainHead::genesis);
    let event = seal(chain, &head, change, draft, now);
    let fields = &event.fields;
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, seq, at, actor, action, entity_type, entity_id,
            before, after, reason, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    )
    .bind(fields.id.to_string())
    .bind(chain.to_string())
    .bind(event.seq)
    .bind(fields.at.unix_micros())
    .bind(&fields.actor)
    .bind(&fields.action)
    .bind(&fields.entity_type)
    .bind(&fields.entity_id)
    .bind(&fields.before)
    .bind(&fields.after)
    .bind(&fields.reason)
    .bind(event.prev_hash.as_str())
    .bind(event.hash.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(chain.to_string())
    .bind(event.seq)
    .bind(event.hash.as_str())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn read_head(conn: &mut SqliteConnection, chain: TenantId) -> StoreResult<Option<ChainHead>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?")
        .bind(chain.to_string())
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
    row.map(|row| {
        let hash: String = row.get("hash");
        Ok(ChainHead {
            seq: row.get("seq"),
            hash: Sha256Hex::parse(&hash)
                .map_err(vigil_store::StoreError::corrupt("audit_heads"))?,
        })
    })
    .transpose()
}

#[async_trait]
impl AuditRepo for SqliteStore {
    async fn list_audit(
        &self,
        chain: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE tenant_id = ?1
               AND (?2 IS NULL OR entity_type = ?2) AND (?3 IS NULL OR entity_id = ?3)
               AND (?4 IS NULL OR seq < ?4)
             ORDER BY seq DESC LIMIT ?5",
        )
        .bind(chain.to_string())
        .bind(&filter.entity_type)
        .bind(&filter.entity_id)
        .bind(page.cursor().map(|cursor| cursor.seq()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let events = rows
            .iter()
            .map(|r| row::audit(r)?.try_into())
            .collect::<StoreResult<Vec<AuditEvent>>>()?;
        Ok(Page::from_overfetch(events, page.limit(), |event| {
            vigil_domain::Cursor::after_seq(event.seq)
        }))
    }

    async fn audit_chain_after(
        &self,
        chain: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(chain.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| row::audit(r)?.try_into()).collect()
    }

    async fn audit_head(&self, chain: TenantId) -> StoreResult<Option<ChainHead>> {
        let mut conn = self.read.acquire().await.map_err(map_err)?;
        read_head(&mut conn, chain).await
    }
}
