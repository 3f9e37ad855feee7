use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use vigil_domain::{Connector, ConnectorName, ParseError, TenantId, Timestamp};
use vigil_store::{AuditDraft, Change, ConnectorRepo, StoreError, StoreResult, options_json};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, connector_columns, exec, map_err, query_all, query_one};

fn connector_in(
    conn: &Connection,
    tenant: TenantId,
    name: &ConnectorName,
) -> StoreResult<Option<Connector>> {
    query_one(
        conn,
        concat!(
            "SELECT ",
            connector_columns!(),
            " FROM connectors WHERE tenant_id = ?1 AND name = ?2"
        ),
        params![tenant.to_string(), name.as_str()],
        row::connector,
    )
}

fn write(conn: &Connection, c: &Connector, sealed: Option<&[u8]>) -> StoreResult<()> {
    let changed = match sealed {
        Some(sealed) => exec(
            conn,
            "INSERT INTO connectors (tenant_id, name, kind, url, enabled, interval_s, threshold,
                options, credentials, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
                enabled = excluded.enabled, interval_s = excluded.interval_s,
                threshold = excluded.threshold, options = excluded.options,
                credentials = excluded.credentials, updated_at = excluded.updated_at",
            params![
                c.tenant_id.to_string(),
                c.name.as_str(),
                c.kind.as_str(),
                c.url.as_str(),
                c.enabled,
                c.interval.seconds(),
                c.threshold.as_str(),
                options_json(&c.options),
                sealed,
                c.created_at.unix_micros(),
                c.updated_at.unix_micros(),
            ],
        )?,
        None => exec(
            conn,
            "UPDATE connectors SET kind = ?3, url = ?4, enabled = ?5, interval_s = ?6,
                threshold = ?7, options = ?8, updated_at = ?9
             WHERE tenant_id = ?1 AND name = ?2",
            params![
                c.tenant_id.to_string(),
                c.name.as_str(),
                c.kind.as_str(),
                c.url.as_str(),
                c.enabled,
                c.interval.seconds(),
                c.threshold.as_str(),
                options_json(&c.options),
                c.updated_at.unix_micros(),
            ],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::Invalid(ParseError::new(
            "credentials",
            "a new connector needs credentials",
        )));
    }
    Ok(())
}

#[async_trait]
impl ConnectorRepo for SqliteStore {
    async fn put_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        connector: Connector,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<(Connector, bool)> {
        let now = Timestamp::now();
        let change = change.clone();
        self.write(move |tx| {
            let before = connector_in(tx, tenant, &connector.name)?;
            let stored = Connector {
                tenant_id: tenant,
                created_at: before.as_ref().map_or(now, |b| b.created_at),
                updated_at: now,
                ..connector
            };
            write(tx, &stored, sealed.as_deref())?;
            let action = if before.is_some() {
                "connector.update"
            } else {
                "connector.create"
            };
            let draft =
                AuditDraft::connector(action, before.as_ref(), Some(&stored), sealed.is_some());
            append(tx, tenant, &change, draft, now)?;
            Ok((stored, before.is_none()))
        })
        .await
    }

    async fn get_connector(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
    ) -> StoreResult<Connector> {
        let name = name.clone();
        self.read(move |conn| connector_in(conn, tenant, &name)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_connectors(&self, tenant: TenantId) -> StoreResult<Vec<Connector>> {
        self.read(move |conn| {
            query_all(
                conn,
                concat!(
                    "SELECT ",
                    connector_columns!(),
                    " FROM connectors WHERE tenant_id = ?1 ORDER BY name"
                ),
                params![tenant.to_string()],
                row::connector,
            )
        })
        .await
    }

    async fn delete_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &ConnectorName,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let change = change.clone();
        let name = name.clone();
        self.write(move |tx| {
            let before = connector_in(tx, tenant, &name)?.ok_or(StoreError::NotFound)?;
            exec(
                tx,
                "DELETE FROM connectors WHERE tenant_id = ?1 AND name = ?2",
                params![tenant.to_string(), name.as_str()],
            )?;
            let draft = AuditDraft::connector("connector.delete", Some(&before), None, false);
            append(tx, tenant, &change, draft, now)
        })
        .await
    }

    async fn connector_credentials(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
    ) -> StoreResult<Vec<u8>> {
        let name = name.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT credentials FROM connectors WHERE tenant_id = ?1 AND name = ?2",
            )
            .map_err(map_err)?
            .query_row(params![tenant.to_string(), name.as_str()], |row| row.get(0))
            .optional()
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)
        })
        .await
    }
}
