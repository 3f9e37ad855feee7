//! Embedded migrations: each applies once, in order, inside its own transaction, and is
//! recorded with a checksum so an edited migration is refused instead of silently skipped.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
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
        "user_lifecycle",
        include_str!("../migrations/0006_user_lifecycle.sql"),
    ),
    (
        7,
        "automation",
        include_str!("../migrations/0007_automation.sql"),
    ),
    (
        8,
        "instances",
        include_str!("../migrations/0008_instances.sql"),
    ),
    (9, "runs", include_str!("../migrations/0009_runs.sql")),
    (10, "plans", include_str!("../migrations/0010_plans.sql")),
];

pub(crate) fn run(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS vigil_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
            applied_at INTEGER NOT NULL) STRICT",
    )
    .map_err(map_err)?;
    for (version, name, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let applied: Option<String> = tx
            .query_row(
                "SELECT checksum FROM vigil_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()
            .map_err(map_err)?;
        let sum = checksum(sql);
        match applied {
            Some(applied) if applied == sum => continue,
            Some(_) => {
                return Err(StoreError::Backend(format!(
                    "migration {version} ({name}) was changed after it was applied"
                )));
            }
            None => {}
        }
        tx.execute_batch(sql).map_err(map_err)?;
        tx.execute(
            "INSERT INTO vigil_migrations VALUES (?1, ?2, ?3, ?4)",
            params![
                version,
                name,
                sum,
                vigil_domain::Timestamp::now().unix_micros()
            ],
        )
        .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        tracing::info!(component = "store", version, name, "applied migration");
    }
    Ok(())
}

/// The migration's SHA-256.
fn checksum(sql: &str) -> String {
    vigil_domain::Sha256Hex::digest(sql.as_bytes()).to_string()
}
