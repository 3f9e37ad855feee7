use async_trait::async_trait;
use sqlx::PgConnection;
use vigil_domain::{Connector, ConnectorName, ParseError, TenantId, Timestamp};
use vigil_store::{AuditDraft, Change, ConnectorRepo, StoreError, StoreResult, options_json};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

/// The columns `row::connector` reads; `options` comes back as text.
const COLUMNS: &str = "tenant_id, name, kind, url, enabled, interval_s, threshold, \
                       options::text AS options_text, created_at, updated_at";

async fn lock_connector(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &ConnectorName,
) -> StoreResult<Option<Connector>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 AND name = $2 FOR UPDATE"
    ))
    .bind(tenant.as_uuid())
    .bind(name.as_str())
    .fetch_optional(conn)
    .await
    .map_err(map_err)?;
    row.map(|r| row::connector(&r)?.try_into()).transpose()
}

async fn write(conn: &mut PgConnection, c: &Connector, sealed: Option<&[u8]>) -> StoreResult<()> {
    let options = options_json(&c.options);
    let interval = i32::try_from(c.interval.seconds()).unwrap_or(i32::MAX);
    let query = match sealed {
        Some(_) => sqlx::query(
            "INSERT INTO connectors (tenant_id, name, kind, url, enabled, interval_s, threshold,
                options, updated_at, created_at, credentials)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
             ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
                enabled = excluded.enabled, interval_s = excluded.interval_s,
                threshold = excluded.threshold, options = excluded.options,
                credentials = excluded.credentials, updated_at = excluded.updated_at",
        ),
        None => sqlx::query(
            "UPDATE connectors SET kind = $3, url = $4, enabled = $5, interval_s = $6,
                threshold = $7, options = $8::jsonb, updated_at = $9
             WHERE tenant_id = $1 AND name = $2",
        ),
    }
    .bind(c.tenant_id.as_uuid())
    .bind(c.name.as_str())
    .bind(c.kind.as_str())
    .bind(c.url.as_str())
    .bind(c.enabled)
    .bind(interval)
    .bind(c.threshold.as_str())
    .bind(options)
    .bind(c.updated_at.to_datetime());
    // Only an insert needs the creation time and the credentials.
    let query = match sealed {
        Some(sealed) => query.bind(c.created_at.to_datetime()).bind(sealed),
        None => query,
    };
    let changed = query.execute(conn).await.map_err(map_err)?.rows_affected();
    if changed == 0 {
        return Err(StoreError::Invalid(ParseError::new(
            "credentials",
            "a new connector needs credentials",
        )));
    }
    Ok(())
}

#[async_trait]
impl ConnectorRepo for PostgresStore {
    async fn put_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        connector: Connector,
        sealed: Option<Vec<u8>>,
    ) -> StoreResult<(Connector, bool)> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_connector(&mut tx, tenant, &connector.name).await?;
        let stored = Connector {
            tenant_id: tenant,
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
            ..connector
        };
        write(&mut tx, &stored, sealed.as_deref()).await?;
        let action = if before.is_some() {
            "connector.update"
        } else {
            "connector.create"
        };
        let draft = AuditDraft::connector(action, before.as_ref(), Some(&stored), sealed.is_some());
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok((stored, before.is_none()))
    }

    async fn get_connector(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
    ) -> StoreResult<Connector> {
        let sql = format!("SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 AND name = $2");
        let query = sqlx::query(&sql).bind(tenant.as_uuid()).bind(name.as_str());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        row::connector(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn list_connectors(&self, tenant: TenantId) -> StoreResult<Vec<Connector>> {
        let sql = format!("SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 ORDER BY name");
        let query = sqlx::query(&sql).bind(tenant.as_uuid());
        let rows = self.fetch_scoped(tenant, query).await?;
        rows.iter().map(|r| row::connector(r)?.try_into()).collect()
    }

    async fn delete_connector(
        &self,
        tenant: TenantId,
        change: &Change,
        name: &ConnectorName,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = lock_connector(&mut tx, tenant, name)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM connectors WHERE tenant_id = $1 AND name = $2")
            .bind(tenant.as_uuid())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let draft = AuditDraft::connector("connector.delete", Some(&before), None, false);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn connector_credentials(
        &self,
        tenant: TenantId,
        name: &ConnectorName,
    ) -> StoreResult<Vec<u8>> {
        let query =
            sqlx::query("SELECT credentials FROM connectors WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.as_uuid())
                .bind(name.as_str());
        let row = self.fetch_optional_scoped(tenant, query).await?;
        let row = row.ok_or(StoreError::NotFound)?;
        sqlx::Row::try_get(&row, "credentials").map_err(map_err)
    }
}
