//! Instances and their sealed secrets (`AutomationRepo`'s instance half).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, Row, params};
use vigil_automation::{AppName, Health, INSTANCES_PER_TENANT_MAX, Instance, InstanceName};
use vigil_domain::{Cursor, PageRequest, ParseError, SourceUrl, TenantId, Timestamp};
use vigil_store::{AuditDraft, Change, Page, StoreError, StoreResult};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{exec, map_err};

const COLUMNS: &str = "id, app, name, base_url, config, rate_per_minute, concurrency_max, \
                       enabled, health_ok, checked_at, last_ok_at, health_error, created_at, \
                       updated_at";

fn corrupt(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table: "instances",
        source: ParseError::new("instance", reason.to_string()),
    }
}

fn decode(row: &Row<'_>) -> StoreResult<Instance> {
    let text = |i: usize| -> StoreResult<String> { row.get(i).map_err(map_err) };
    let opt_int = |i: usize| -> StoreResult<Option<i64>> { row.get(i).map_err(map_err) };
    let config: serde_json::Value = serde_json::from_str(&text(4)?).map_err(corrupt)?;
    let health = match row.get::<_, Option<bool>>(8).map_err(map_err)? {
        None => None,
        Some(ok) => Some(Health {
            ok,
            checked_at: Timestamp::from_unix_micros(opt_int(9)?.unwrap_or_default()),
            last_ok_at: opt_int(10)?.map(Timestamp::from_unix_micros),
            error: row.get(11).map_err(map_err)?,
        }),
    };
    Ok(Instance {
        id: uuid::Uuid::try_parse(&text(0)?).map_err(corrupt)?,
        app: AppName::parse(&text(1)?).map_err(corrupt)?,
        name: InstanceName::parse(&text(2)?).map_err(corrupt)?,
        base_url: row
            .get::<_, Option<String>>(3)
            .map_err(map_err)?
            .map(|u| SourceUrl::parse(&u))
            .transpose()
            .map_err(corrupt)?,
        config: config
            .as_object()
            .cloned()
            .ok_or_else(|| corrupt("config is not an object"))?,
        secret_fields: BTreeSet::new(),
        rate_limit_per_minute: opt_int(5)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        concurrency_max: u32::try_from(row.get::<_, i64>(6).map_err(map_err)?).unwrap_or(1),
        enabled: row.get(7).map_err(map_err)?,
        health,
        created_at: Timestamp::from_unix_micros(row.get(12).map_err(map_err)?),
        updated_at: Timestamp::from_unix_micros(row.get(13).map_err(map_err)?),
    })
}

fn secret_fields(
    conn: &Connection,
    tenant: TenantId,
    id: uuid::Uuid,
) -> StoreResult<BTreeSet<String>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT field FROM instance_secrets WHERE tenant_id = ?1 AND instance_id = ?2",
        )
        .map_err(map_err)?;
    let mut rows = statement
        .query(params![tenant.to_string(), id.to_string()])
        .map_err(map_err)?;
    let mut out = BTreeSet::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        out.insert(row.get(0).map_err(map_err)?);
    }
    Ok(out)
}

fn select(
    conn: &Connection,
    tenant: TenantId,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Instance>> {
    let mut found = Vec::new();
    {
        let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
        let mut rows = statement.query(params).map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            found.push(decode(row)?);
        }
    }
    for instance in &mut found {
        instance.secret_fields = secret_fields(conn, tenant, instance.id)?;
    }
    Ok(found)
}

fn instance_in(
    conn: &Connection,
    tenant: TenantId,
    id: uuid::Uuid,
) -> StoreResult<Option<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE tenant_id = ?1 AND id = ?2");
    Ok(select(
        conn,
        tenant,
        &sql,
        params![tenant.to_string(), id.to_string()],
    )?
    .into_iter()
    .next())
}

fn write_secrets(
    tx: &Connection,
    tenant: TenantId,
    id: uuid::Uuid,
    sealed: &BTreeMap<String, Vec<u8>>,
) -> StoreResult<()> {
    exec(
        tx,
        "DELETE FROM instance_secrets WHERE tenant_id = ?1 AND instance_id = ?2",
        params![tenant.to_string(), id.to_string()],
    )?;
    for (field, bytes) in sealed {
        exec(
            tx,
            "INSERT INTO instance_secrets (tenant_id, instance_id, field, sealed) VALUES (?1, ?2, ?3, ?4)",
            params![tenant.to_string(), id.to_string(), field, bytes],
        )?;
    }
    Ok(())
}

fn config_text(instance: &Instance) -> StoreResult<String> {
    serde_json::to_string(&instance.config).map_err(|err| StoreError::Backend(err.to_string()))
}

impl SqliteStore {
    pub(crate) async fn create_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: BTreeMap<String, Vec<u8>>,
    ) -> StoreResult<Instance> {
        let change = change.clone();
        self.write(move |tx| {
            let count: i64 = tx
                .query_row(
                    "SELECT count(*) FROM instances WHERE tenant_id = ?1",
                    params![tenant.to_string()],
                    |row| row.get(0),
                )
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
            exec(
                tx,
                "INSERT INTO instances (tenant_id, id, app, name, base_url, config, rate_per_minute,
                    concurrency_max, enabled, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    tenant.to_string(),
                    stored.id.to_string(),
                    stored.app.as_str(),
                    stored.name.as_str(),
                    stored.base_url.as_ref().map(SourceUrl::as_str),
                    config_text(&stored)?,
                    stored.rate_limit_per_minute,
                    stored.concurrency_max,
                    stored.enabled,
                    stored.created_at.unix_micros(),
                    stored.updated_at.unix_micros(),
                ],
            )?;
            write_secrets(tx, tenant, stored.id, &sealed)?;
            let draft = AuditDraft::instance("instance.create", None, Some(&stored), true);
            append(tx, tenant, &change, draft, stored.updated_at)?;
            Ok(stored)
        })
        .await
    }

    pub(crate) async fn get_instance_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<Instance> {
        self.read(move |conn| instance_in(conn, tenant, id)?.ok_or(StoreError::NotFound))
            .await
    }

    pub(crate) async fn list_instances_in(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<Instance>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM instances WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3"
            );
            let cursor = page.cursor().map(|c| c.id().to_string());
            let rows = select(
                conn,
                tenant,
                &sql,
                params![tenant.to_string(), cursor, i64::from(page.limit()) + 1],
            )?;
            Ok(Page::from_overfetch(rows, page.limit(), |i: &Instance| {
                Cursor::after(i.id)
            }))
        })
        .await
    }

    pub(crate) async fn update_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        instance: Instance,
        sealed: Option<BTreeMap<String, Vec<u8>>>,
    ) -> StoreResult<Instance> {
        let change = change.clone();
        self.write(move |tx| {
            let before = instance_in(tx, tenant, instance.id)?.ok_or(StoreError::NotFound)?;
            let stored = Instance {
                secret_fields: sealed.as_ref().map_or_else(
                    || before.secret_fields.clone(),
                    |s| s.keys().cloned().collect(),
                ),
                created_at: before.created_at,
                health: before.health.clone(),
                ..instance
            };
            exec(
                tx,
                "UPDATE instances SET name = ?3, base_url = ?4, config = ?5, rate_per_minute = ?6,
                    concurrency_max = ?7, enabled = ?8, updated_at = ?9
                 WHERE tenant_id = ?1 AND id = ?2",
                params![
                    tenant.to_string(),
                    stored.id.to_string(),
                    stored.name.as_str(),
                    stored.base_url.as_ref().map(SourceUrl::as_str),
                    config_text(&stored)?,
                    stored.rate_limit_per_minute,
                    stored.concurrency_max,
                    stored.enabled,
                    stored.updated_at.unix_micros(),
                ],
            )?;
            if let Some(sealed) = &sealed {
                write_secrets(tx, tenant, stored.id, sealed)?;
            }
            let draft = AuditDraft::instance(
                "instance.update",
                Some(&before),
                Some(&stored),
                sealed.is_some(),
            );
            append(tx, tenant, &change, draft, stored.updated_at)?;
            Ok(stored)
        })
        .await
    }

    pub(crate) async fn delete_instance_in(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
    ) -> StoreResult<()> {
        let change = change.clone();
        let now = Timestamp::now();
        self.write(move |tx| {
            let before = instance_in(tx, tenant, id)?.ok_or(StoreError::NotFound)?;
            exec(
                tx,
                "DELETE FROM instances WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.to_string(), id.to_string()],
            )?;
            let draft = AuditDraft::instance("instance.delete", Some(&before), None, false);
            append(tx, tenant, &change, draft, now)
        })
        .await
    }

    pub(crate) async fn instance_secrets_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
    ) -> StoreResult<BTreeMap<String, Vec<u8>>> {
        self.read(move |conn| {
            instance_in(conn, tenant, id)?.ok_or(StoreError::NotFound)?;
            let mut statement = conn
                .prepare_cached(
                    "SELECT field, sealed FROM instance_secrets WHERE tenant_id = ?1 AND instance_id = ?2",
                )
                .map_err(map_err)?;
            let mut rows = statement
                .query(params![tenant.to_string(), id.to_string()])
                .map_err(map_err)?;
            let mut out = BTreeMap::new();
            while let Some(row) = rows.next().map_err(map_err)? {
                out.insert(row.get(0).map_err(map_err)?, row.get(1).map_err(map_err)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn set_instance_health_in(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        health: Health,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let changed = exec(
                tx,
                "UPDATE instances SET health_ok = ?3, checked_at = ?4, last_ok_at = ?5, health_error = ?6
                 WHERE tenant_id = ?1 AND id = ?2",
                params![
                    tenant.to_string(),
                    id.to_string(),
                    health.ok,
                    health.checked_at.unix_micros(),
                    health.last_ok_at.map(|at| at.unix_micros()),
                    health.error,
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
