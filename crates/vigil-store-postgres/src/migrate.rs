//! Embedded migrations: each applies once, in order, inside its own transaction, and is
//! recorded with a checksum so an edited migration is refused instead of silently skipped.
//!
//! Every step holds one transaction-scoped advisory lock, so nodes that start together
//! migrate one after another: the second finds the first's record and skips. The lock key is
//! the same for every schema of the database on purpose: the `vigil_app` role the first
//! migration creates is shared by all of them.

use sqlx::{Executor, PgPool, Postgres, Row, Transaction};
use vigil_store::{StoreError, StoreResult};

use crate::row::map_err;

/// (version, name, SQL). Append only.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (2, "ioc", include_str!("../migrations/0002_ioc.sql")),
    (
        3,
        "connectors",
        include_str!("../migrations/0003_connectors.sql"),
    ),
    (4, "sync", include_str!("../migrations/0004_sync.sql")),
    (
        5,
        "dead_letters",
        include_str!("../migrations/0005_dead_letters.sql"),
    ),
    (
        6,
        "force_rls",
        include_str!("../migrations/0006_force_rls.sql"),
    ),
    (
        7,
        "user_lifecycle",
        include_str!("../migrations/0007_user_lifecycle.sql"),
    ),
    (
        8,
        "automation",
        include_str!("../migrations/0008_automation.sql"),
    ),
    (
        9,
        "instances",
        include_str!("../migrations/0009_instances.sql"),
    ),
    (10, "runs", include_str!("../migrations/0010_runs.sql")),
    (11, "plans", include_str!("../migrations/0011_plans.sql")),
];

/// The advisory-lock key pair (`pg_advisory_xact_lock(int, int)`) migrations hold.
const MIGRATION_LOCK: (i32, i32) = (crate::LOCK_CLASS_MIGRATIONS, 0);

pub(crate) async fn run(pool: &PgPool) -> StoreResult<()> {
    let mut tx = begin_locked(pool).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS vigil_migrations (
            version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
            applied_at timestamptz NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    for (version, name, sql) in MIGRATIONS {
        apply(pool, *version, name, sql).await?;
    }
    Ok(())
}

async fn begin_locked(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(MIGRATION_LOCK.0)
        .bind(MIGRATION_LOCK.1)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    Ok(tx)
}

async fn apply(pool: &PgPool, version: i64, name: &str, sql: &str) -> StoreResult<()> {
    let mut tx = begin_locked(pool).await?;
    // Read after taking the lock: a node that migrated meanwhile has committed its record.
    let applied = sqlx::query("SELECT checksum FROM vigil_migrations WHERE version = $1")
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
    let sum = checksum(sql);
    match applied {
        Some(row) if row.get::<String, _>(0) == sum => return Ok(()),
        Some(_) => {
            return Err(StoreError::Backend(format!(
                "migration {version} ({name}) was changed after it was applied"
            )));
        }
        None => {}
    }
    // A plain `&str` (no arguments) goes over the simple query protocol, which runs a
    // script of many statements; `raw_sql` would too, but its future is not `Send`.
    tx.execute(sql).await.map_err(map_err)?;
    sqlx::query("INSERT INTO vigil_migrations VALUES ($1, $2, $3, $4)")
        .bind(version)
        .bind(name)
        .bind(sum)
        .bind(vigil_domain::Timestamp::now().to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    tracing::info!(component = "store", version, name, "applied migration");
    Ok(())
}

/// The migration's SHA-256.
fn checksum(sql: &str) -> String {
    vigil_domain::Sha256Hex::digest(sql.as_bytes()).to_string()
}
