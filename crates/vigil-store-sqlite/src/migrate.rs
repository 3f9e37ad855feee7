//! Embedded migrations: each applies once, in order, inside its own transaction, and is
//! recorded with a checksum so an edited migration is refused instead of silently skipped.

use sqlx::{Row, SqlitePool};
use vigil_store::{StoreError, StoreResult};

use crate::row::map_err;

/// (version, name, SQL). Append only.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "foundation",
    include_str!("../migrations/0001_foundation.sql"),
)];

pub(crate) async fn run(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS vigil_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL) STRICT",
    )
    .execute(pool)
    .await
    .map_err(map_err)?;
    for (version, name, sql) in MIGRATIONS {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let applied = sqlx::query("SELECT checksum FROM vigil_migrations WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let sum = checksum(sql);
        match applied {
            Some(row) if row.get::<String, _>(0) == sum => continue,
            Some(_) => {
                return Err(StoreError::Backend(format!(
                    "migration {version} ({name}) was changed after it was applied"
                )));
            }
            None => {}
        }
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("INSERT INTO vigil_migrations VALUES (?, ?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind(sum)
            .bind(vigil_domain::Timestamp::now().unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        tracing::info!(component = "store", version, name, "applied migration");
    }
    Ok(())
}

/// The migration's SHA-256.
fn checksum(sql: &str) -> String {
    vigil_domain::Sha256Hex::digest(sql.as_bytes()).to_string()
}
