use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{AuditEvent, ChainHead, Cursor, PageRequest, Sha256Hex, TenantId, Timestamp};
use vigil_store::{
    AuditDraft, AuditFilter, AuditRepo, Change, Page, StoreError, StoreResult, seal,
};

use crate::SqliteStore;
use crate::row::{self, audit_columns, exec, map_err, query_all};

/// Appends one event to `chain` inside the caller's write transaction.
pub(crate) fn append(
    conn: &Connection,
    chain: TenantId,
    change: &Change,
    draft: AuditDraft,
    now: Timestamp,
) -> StoreResult<()> {
    let head = read_head(conn, chain)?.unwrap_or_else(ChainHead::genesis);
    let event = seal(chain, &head, change, draft, now);
    let fields = &event.fields;
    exec(
        conn,
        "INSERT INTO audit_events (id, tenant_id, seq, at, actor, action, entity_type, entity_id,
            before, after, reason, prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
        params![
            fields.id.to_string(),
            chain.to_string(),
            event.seq,
            fields.at.unix_micros(),
            fields.actor,
            fields.action,
            fields.entity_type,
            fields.entity_id,
            fields.before,
            fields.after,
            fields.reason,
            event.prev_hash.as_str(),
            event.hash.as_str(),
        ],
    )?;
    exec(
        conn,
        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![chain.to_string(), event.seq, event.hash.as_str()],
    )?;
    Ok(())
}

fn read_head(conn: &Connection, chain: TenantId) -> StoreResult<Option<ChainHead>> {
    let mut statement = conn
        .prepare_cached("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1")
        .map_err(map_err)?;
    let mut rows = statement.query([chain.to_string()]).map_err(map_err)?;
    let Some(row) = rows.next().map_err(map_err)? else {
        return Ok(None);
    };
    let hash: String = row.get(1).map_err(map_err)?;
    Ok(Some(ChainHead {
        seq: row.get(0).map_err(map_err)?,
        hash: Sha256Hex::parse(&hash).map_err(StoreError::corrupt("audit_heads"))?,
    }))
}

#[async_trait]
impl AuditRepo for SqliteStore {
    async fn append_event(
        &self,
        chain: TenantId,
        change: &Change,
        draft: AuditDraft,
    ) -> StoreResult<()> {
        let change = change.clone();
        self.write(move |tx| append(tx, chain, &change, draft, Timestamp::now()))
            .await
    }

    async fn list_audit(
        &self,
        chain: TenantId,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> StoreResult<Page<AuditEvent>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let events: Vec<AuditEvent> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events WHERE tenant_id = ?1
                   AND (?2 IS NULL OR entity_type = ?2) AND (?3 IS NULL OR entity_id = ?3)
                   AND (?4 IS NULL OR seq < ?4)
                   AND (NOT ?6 OR entity_type NOT IN (",
                    vigil_store::access_entity_types_sql!(),
                    "))
                 ORDER BY seq DESC LIMIT ?5"
                ),
                params![
                    chain.to_string(),
                    filter.entity_type,
                    filter.entity_id,
                    page.cursor().map(|cursor| cursor.seq()),
                    i64::from(page.limit()) + 1,
                    filter.data_only,
                ],
                row::audit,
            )?;
            Ok(Page::from_overfetch(events, page.limit(), |event| {
                Cursor::after_seq(event.seq)
            }))
        })
        .await
    }

    async fn audit_chain_after(
        &self,
        chain: TenantId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        self.read(move |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                ),
                params![chain.to_string(), after_seq, i64::from(limit)],
                row::audit,
            )
        })
        .await
    }

    async fn audit_head(&self, chain: TenantId) -> StoreResult<Option<ChainHead>> {
        self.read(move |conn| read_head(conn, chain)).await
    }
}
