//! Instances and their sealed secrets (`AutomationRepo`'s instance half).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use vigil_automation::{AppName, Health, INSTANCES_PER_TENANT_MAX, Instance, InstanceName};
use vigil_domain::{PageRequest, SourceUrl, TenantId, Timestamp};
use vigil_store::{AuditDraft, Change, Page, StoreError, StoreResult};

use crate::PostgresStore;
use crate::audit::append;
use crate::automation::get;
use crate::row::map_err;

const COLUMNS: &str = "id, app, name, base_url, config::text AS config_text, rate_per_minute, \
                       concurrency_max, enabled, health_ok, checked_at, last_ok_at, \
                       health_error, created_at, updated_at";

fn corrupt(reason: impl std::fmt::Display) -> StoreError {
    crate::automation::corrupt("instances", reason)
}

fn at(value: Option<time::OffsetDateTime>) -> Option<Timestamp> {
    value.map(Timestamp::from_datetime)
}

fn decode(row: &PgRow) -> StoreResult<Instance> {
    let config: serde_json::Value =
        serde_json::from_str(&get::<String>(row, "config_text")?).map_err(corrupt)?;
    let health = get::<Option<bool>>(row, "health_ok")?.map(|ok| -> StoreResult<Health> {
        Ok(Health {
            ok,
            checked_at: at(get(row, "checked_at")?).unwrap_or_else(Timestamp::now),
            last_ok_at: at(get(row, "last_ok_at")?),
            error: get(row, "health_error")?,
        })
    });
    Ok(Instance {
        id: get(row, "id")?,
        app: AppName::parse(&get::<String>(row, "app")?).map_err(corrupt)?,
        name: InstanceName::parse(&get::<String>(row, "name")?).map_err(corrupt)?,
        base_url: get::<Option<String>>(row, "base_url")?
            .map(|u| SourceUrl::parse(&u))
            .transpose()
            .map_err(corrupt)?,
        config: config
            .as_object()
            .cloned()
            .ok_or_else(|| corrupt("config is not an object"))?,
        secret_fields: BTreeSet::new(),
        rate_limit_per_minute: get::<Option<i32>>(row, "rate_per_minute")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        concurrency_max: u32::try_from(get::<i32>(row, "concurrency_max")?).unwrap_or(1),
        enabled: get(row, "enabled")?,
        health: health.transpose()?,
        created_at: Timestamp::from_datetime(get(row, "created_at")?),
        updated_at: Timestamp::from_datetime(get(row, "updated_at")?),
    })
}

async fn with_secret_fields(
    conn: &mut PgConnection,
    tenant: TenantId,
    mut instance: Instance,
) -> StoreResult<Instance> {
    let rows =
        sqlx::query("SELECT field FROM instance_secrets WHERE tenant_id = $1 AND instance_id = $2")
            .bind(tenant.as_uuid())
            .bind(instance.id)
            .fetch_all(conn)
            .await
            .map_err(map_err)?;
    instance.secret_fields = rows
        .iter()
        .map(|r| get::<String>(r, "field"))
        .collect::<StoreResult<_>>()?;
    Ok(instance)
}

async fn instance_in(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: uuid::Uuid,
) -> StoreResult<Option<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    match row {
        Some(row) => Ok(Some(with_secret_fields(conn, tenant, decode(&row)?).await?)),
        None => Ok(None),
    }
}

async fn write_secrets(
    conn: &mut PgConnection,
    tenant: TenantId,
    id: uuid::Uuid,
    sealed: &BTreeMap<String, Vec<u8>>,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM instance_secrets WHERE tenant_id = $1 AND instance_id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    for (field, bytes) in sealed {
        sqlx::query(
            "INSERT INTO instance_secrets (tenant_id, instance_id, field, sealed) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(field)
        .bind(bytes)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

fn config_text(instance: &Instance) -> StoreResult<String> {
    serde_json::to_string(&instance.config).map_err(|err| StoreError::Backend(err.to_string()))
}

fn limit(n: Option<u32>) -> Option<i32> {
    n.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

impl PostgresStore {
    pub(crate) async fn create_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Instance> {
        let mut tx = self.begin_scoped(tenant).await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM instances WHERE tenant_id = $1")
            .bind(tenant.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= INSTANCES_PER_TENANT_MAX {
            return Err(StoreError::Conflict(format!(
                "a tenant keeps at most {INSTANCES_PER_TENANT_MAX} instances"
            )));
        }
        let stored = Instance {
            secret_fields: sealed.keys().cloned().collect(),
            ..instance
        };
        sqlx::query(
            "INSERT INTO instances (tenant_id, id, app, name, base_url, config, rate_per_minute,
                concurrency_max, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)",
        )
        .bind(tenant.as_uuid())
        .bind(stored.id)
        .bind(stored.app.as_str())
        .bind(stored.name.as_str())
        .bind(stored.base_url.as_ref().map(SourceUrl::as_str))
        .bind(config_text(&stored)?)
        .bind(limit(stored.rate_limit_per_minute))
        .bind(limit(Some(stored.concurrency_max)))
        .bind(stored.enabled)
        .bind(stored.created_at.to_datetime())
        .bind(stored.updated_at.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        write_secrets(&mut tx, tenant, stored.id, &sealed).await?;
        let draft = AuditDraft::instance("instance.create", None, Some(&stored), true);
        append(&mut tx, tenant, change, draft, stored.updated_at).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    pub(crate) async fn get_instance_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<Instance> {
        let mut tx = self.begin_scoped(tenant).await?;
        let found = instance_in(&mut tx, tenant, id).await?;
        tx.commit().await.map_err(map_err)?;
        found.ok_or(StoreError::NotFound)
    }

    pub(crate) async fn list_instances_in(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Instance>> {
        let mut tx = self.begin_scoped(tenant).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM instances WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.as_uuid())
            .bind(page.cursor().map(|cursor| cursor.id()))
            .bind(i64::from(page.limit()) + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(with_secret_fields(&mut tx, tenant, decode(row)?).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Page::from_overfetch(items, page.limit(), |i| {
            vigil_domain::Cursor::after(i.id)
        }))
    }

    pub(crate) async fn update_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: Option<BTreeMap<String, Vec<u8>>>,
    ) -> StoreResult<Instance> {
        let mut tx = self.begin_scoped(tenant).await?;
        sqlx::query("SELECT 1 FROM instances WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(tenant.as_uuid())
            .bind(instance.id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let before = instance_in(&mut tx, tenant, instance.id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let stored = Instance {
            secret_fields: sealed.as_ref().map_or_else(
                || before.secret_fields.clone(),
                |s| s.keys().cloned().collect(),
            ),
            created_at: before.created_at,
            health: before.health.clone(),
            ..instance
        };
        sqlx::query(
            "UPDATE instances SET name = $3, base_url = $4, config = $5::jsonb,
                rate_per_minute = $6, concurrency_max = $7, enabled = $8, updated_at = $9
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(stored.id)
        .bind(stored.name.as_str())
        .bind(stored.base_url.as_ref().map(SourceUrl::as_str))
        .bind(config_text(&stored)?)
        .bind(limit(stored.rate_limit_per_minute))
        .bind(limit(Some(stored.concurrency_max)))
        .bind(stored.enabled)
        .bind(stored.updated_at.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(sealed) = &sealed {
            write_secrets(&mut tx, tenant, stored.id, sealed).await?;
        }
        let draft = AuditDraft::instance(
            "instance.update",
            Some(&before),
            Some(&stored),
            sealed.is_some(),
        );
        append(&mut tx, tenant, change, draft, stored.updated_at).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    pub(crate) async fn delete_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
    ) -> StoreResult<()> {
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = instance_in(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        sqlx::query("DELETE FROM instances WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let draft = AuditDraft::instance("instance.delete", Some(&before), None, false);
        append(&mut tx, tenant, change, draft, now).await?;
        tx.commit().await.map_err(map_err)
    }

    pub(crate) async fn instance_secrets_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        let mut tx = self.begin_scoped(tenant).await?;
        instance_in(&mut tx, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT field, sealed FROM instance_secrets WHERE tenant_id = $1 AND instance_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((get::<String>(r, "field")?, get::<Vec<u8>>(r, "sealed")?)))
            .collect()
    }

    pub(crate) async fn set_instance_health_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        health: Health,
    ) -> StoreResult<()> {
        let mut tx = self.begin_scoped(tenant).await?;
        let changed = sqlx::query(
            "UPDATE instances SET health_ok = $3, checked_at = $4, last_ok_at = $5, health_error = $6
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(id)
        .bind(health.ok)
        .bind(health.checked_at.to_datetime())
        .bind(health.last_ok_at.map(|at| at.to_datetime()))
        .bind(health.error)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        tx.commit().await.map_err(map_err)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
