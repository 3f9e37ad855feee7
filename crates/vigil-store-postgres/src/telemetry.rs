use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::{PgConnection, Row};
use uuid::Uuid;
use vigil_domain::{
    Cursor, EventId, IocMatch, MatchFilter, MatchId, NewEvent, NewMatch, PageRequest,
    TelemetryEvent, TenantId, Timestamp,
};
use vigil_store::{Page, StoreError, StoreResult, StoredEvent, TelemetryRepo};

use crate::PostgresStore;
use crate::row::{self, map_err};

/// The stored ids of the tenant's events with these client ids.
async fn ids_by_client(
    conn: &mut PgConnection,
    tenant: TenantId,
    clients: &[&str],
) -> StoreResult<HashMap<String, Uuid>> {
    if clients.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT client_id, id FROM telemetry_events WHERE tenant_id = $1 AND client_id = ANY($2)",
    )
    .bind(tenant.as_uuid())
    .bind(clients)
    .fetch_all(conn)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("client_id").map_err(map_err)?,
                r.try_get("id").map_err(map_err)?,
            ))
        })
        .collect()
}

/// Inserts `events` under `ids` with one statement; answers the ids actually inserted (the
/// others repeat a client id the tenant already has).
async fn insert_batch(
    conn: &mut PgConnection,
    tenant: TenantId,
    events: &[NewEvent],
    ids: &[Uuid],
    now: Timestamp,
) -> StoreResult<HashSet<Uuid>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO telemetry_events (id, tenant_id, client_id, event_type, occurred_at,
                body, received_at)
             SELECT id, $2, client_id, event_type, occurred_at, body, $7
             FROM UNNEST($1::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
                AS e(id, client_id, event_type, occurred_at, body)
             ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(ids)
    .bind(tenant.as_uuid())
    .bind(
        events
            .iter()
            .map(|e| e.client_id.as_ref().map(|c| c.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.occurred_at.map(|at| at.to_datetime()))
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.body.as_str()).collect::<Vec<_>>())
    .bind(now.to_datetime())
    .fetch_all(conn)
    .await
    .map_err(map_err)?
    .into_iter()
    .collect())
}

#[async_trait]
impl TelemetryRepo for PostgresStore {
    async fn insert_events(
        &self,
        tenant: TenantId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<StoredEvent>> {
        let now = Timestamp::now();
        let ids: Vec<Uuid> = events
            .iter()
            .map(|_| EventId::generate().as_uuid())
            .collect();
        let mut tx = self.begin_scoped(tenant).await?;
        let inserted = insert_batch(&mut tx, tenant, &events, &ids, now).await?;
        let duplicates: Vec<&str> = events
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !inserted.contains(id))
            .filter_map(|(event, _)| event.client_id.as_ref().map(|c| c.as_str()))
            .collect();
        let existing = ids_by_client(&mut tx, tenant, &duplicates).await?;
        tx.commit().await.map_err(map_err)?;
        events
            .iter()
            .zip(ids)
            .map(|(event, id)| {
                if inserted.contains(&id) {
                    return Ok(StoredEvent {
                        id: EventId::from_uuid(id),
                        duplicate: false,
                    });
                }
                let client = event
                    .client_id
                    .as_ref()
                    .map(|c| c.as_str())
                    .unwrap_or_default();
                let existing = existing.get(client).ok_or_else(|| {
                    StoreError::Backend("an event was neither inserted nor a duplicate".into())
                })?;
                Ok(StoredEvent {
                    id: EventId::from_uuid(*existing),
                    duplicate: true,
                })
            })
            .collect()
    }

    async fn get_event(&self, tenant: TenantId, id: EventId) -> StoreResult<TelemetryEvent> {
        let query = sqlx::query("SELECT * FROM telemetry_events WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::event(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn record_matches(
        &self,
        tenant: TenantId,
        matches: Vec<NewMatch>,
    ) -> StoreResult<Vec<IocMatch>> {
        let now = Timestamp::now();
        let stored: Vec<IocMatch> = matches
            .into_iter()
            .map(|m| m.into_match(tenant, MatchId::generate(), now))
            .collect();
        if stored.is_empty() {
            return Ok(stored);
        }
        let mut tx = self.begin_scoped(tenant).await?;
        sqlx::query(
            "INSERT INTO ioc_matches (id, tenant_id, indicator_id, indicator_kind, event_id, field,
                value, finding_id, reopened, matched_at)
             SELECT id, $2, indicator_id, indicator_kind, event_id, field, value, finding_id,
                reopened, $10
             FROM UNNEST($1::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[],
                $8::uuid[], $9::bool[])
                AS m(id, indicator_id, indicator_kind, event_id, field, value, finding_id, reopened)",
        )
        .bind(stored.iter().map(|m| m.id.as_uuid()).collect::<Vec<_>>())
        .bind(tenant.as_uuid())
        .bind(stored.iter().map(|m| m.indicator_id.as_uuid()).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.indicator_kind.as_str()).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.event_id.as_uuid()).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.field.as_str()).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.value.as_str()).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.finding_id.map(|f| f.as_uuid())).collect::<Vec<_>>())
        .bind(stored.iter().map(|m| m.reopened).collect::<Vec<_>>())
        .bind(now.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn list_matches(
        &self,
        tenant: TenantId,
        filter: &MatchFilter,
        page: PageRequest,
    ) -> StoreResult<Page<IocMatch>> {
        let query = sqlx::query(
            "SELECT * FROM ioc_matches WHERE tenant_id = $1
               AND ($2::uuid IS NULL OR finding_id = $2)
               AND ($3::uuid IS NULL OR indicator_id = $3)
               AND ($4::uuid IS NULL OR event_id = $4)
               AND ($5::bool IS NULL OR reopened = $5)
               AND ($6::timestamptz IS NULL OR matched_at >= $6)
               AND ($7::timestamptz IS NULL OR matched_at < $7)
               AND ($8::uuid IS NULL OR id < $8)
             ORDER BY id DESC LIMIT $9",
        )
        .bind(tenant.as_uuid())
        .bind(filter.finding_id.map(|id| id.as_uuid()))
        .bind(filter.indicator_id.map(|id| id.as_uuid()))
        .bind(filter.event_id.map(|id| id.as_uuid()))
        .bind(filter.reopened)
        .bind(filter.since.map(|at| at.to_datetime()))
        .bind(filter.until.map(|at| at.to_datetime()))
        .bind(page.cursor().map(|cursor| cursor.id()))
        .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let items = rows
            .iter()
            .map(|r| row::ioc_match(r)?.try_into())
            .collect::<StoreResult<Vec<IocMatch>>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |m| {
            Cursor::after(m.id.as_uuid())
        }))
    }
}
