use async_trait::async_trait;
use rusqlite::{Connection, params};
use vigil_domain::{
    ClientEventId, Cursor, EventId, IocMatch, MatchFilter, MatchId, NewEvent, NewMatch,
    PageRequest, TelemetryEvent, TenantId, Timestamp,
};
use vigil_store::{Page, StoreError, StoreResult, StoredEvent, TelemetryRepo};

use crate::SqliteStore;
use crate::row::{
    self, event_columns, exec, id_text, map_err, match_columns, query_all, query_one,
};

fn existing_event(
    conn: &Connection,
    tenant: TenantId,
    client: &ClientEventId,
) -> StoreResult<EventId> {
    let mut statement = conn
        .prepare_cached("SELECT id FROM telemetry_events WHERE tenant_id = ?1 AND client_id = ?2")
        .map_err(map_err)?;
    let id: String = statement
        .query_row(params![tenant.to_string(), client.as_str()], |row| {
            row.get(0)
        })
        .map_err(map_err)?;
    EventId::parse(&id).map_err(StoreError::corrupt("telemetry_events"))
}

fn insert_event(
    conn: &Connection,
    tenant: TenantId,
    event: &NewEvent,
    now: Timestamp,
) -> StoreResult<StoredEvent> {
    let id = EventId::generate();
    let inserted = exec(
        conn,
        "INSERT INTO telemetry_events (id, tenant_id, client_id, event_type, occurred_at, body,
            received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        params![
            id.to_string(),
            tenant.to_string(),
            event.client_id.as_ref().map(|c| c.as_str()),
            event.event_type.as_str(),
            event.occurred_at.map(|at| at.unix_micros()),
            event.body,
            now.unix_micros(),
        ],
    )?;
    match (&event.client_id, inserted) {
        (_, 1) => Ok(StoredEvent {
            id,
            duplicate: false,
        }),
        (Some(client), _) => Ok(StoredEvent {
            id: existing_event(conn, tenant, client)?,
            duplicate: true,
        }),
        (None, _) => Err(StoreError::Backend(
            "an event without client id was not inserted".into(),
        )),
    }
}

#[async_trait]
impl TelemetryRepo for SqliteStore {
    async fn insert_events(
        &self,
        tenant: TenantId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<StoredEvent>> {
        let now = Timestamp::now();
        self.write(move |tx| {
            events
                .iter()
                .map(|event| insert_event(tx, tenant, event, now))
                .collect()
        })
        .await
    }

    async fn get_event(&self, tenant: TenantId, id: EventId) -> StoreResult<TelemetryEvent> {
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    event_columns!(),
                    " FROM telemetry_events WHERE tenant_id = ?1 AND id = ?2"
                ),
                params![tenant.to_string(), id.to_string()],
                row::event,
            )?
            .ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn record_matches(
        &self,
        tenant: TenantId,
        matches: Vec<NewMatch>,
    ) -> StoreResult<Vec<IocMatch>> {
        let now = Timestamp::now();
        self.write(move |tx| {
            let mut stored = Vec::with_capacity(matches.len());
            for new in matches {
                let m = new.into_match(tenant, MatchId::generate(), now);
                exec(
                    tx,
                    "INSERT INTO ioc_matches (id, tenant_id, indicator_id, indicator_kind, event_id,
                        field, value, finding_id, reopened, matched_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        m.id.to_string(),
                        tenant.to_string(),
                        m.indicator_id.to_string(),
                        m.indicator_kind.as_str(),
                        m.event_id.to_string(),
                        m.field.as_str(),
                        m.value,
                        id_text(m.finding_id),
                        m.reopened,
                        now.unix_micros(),
                    ],
                )?;
                stored.push(m);
            }
            Ok(stored)
        })
        .await
    }

    async fn list_matches(
        &self,
        tenant: TenantId,
        filter: &MatchFilter,
        page: PageRequest,
    ) -> StoreResult<Page<IocMatch>> {
        let filter = filter.clone();
        self.read(move |conn| {
            let items: Vec<IocMatch> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    match_columns!(),
                    " FROM ioc_matches WHERE tenant_id = ?1
                       AND (?2 IS NULL OR finding_id = ?2)
                       AND (?3 IS NULL OR indicator_id = ?3)
                       AND (?4 IS NULL OR event_id = ?4)
                       AND (?5 IS NULL OR reopened = ?5)
                       AND (?6 IS NULL OR matched_at >= ?6)
                       AND (?7 IS NULL OR matched_at < ?7)
                       AND (?8 IS NULL OR id < ?8)
                     ORDER BY id DESC LIMIT ?9"
                ),
                params![
                    tenant.to_string(),
                    id_text(filter.finding_id),
                    id_text(filter.indicator_id),
                    id_text(filter.event_id),
                    filter.reopened,
                    filter.since.map(|at| at.unix_micros()),
                    filter.until.map(|at| at.unix_micros()),
                    page.cursor().map(|cursor| cursor.id().to_string()),
                    i64::from(page.limit()) + 1,
                ],
                row::ioc_match,
            )?;
            Ok(Page::from_overfetch(items, page.limit(), |m| {
                Cursor::after(m.id.as_uuid())
            }))
        })
        .await
    }
}
