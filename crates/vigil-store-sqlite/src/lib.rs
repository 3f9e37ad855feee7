//! vigil-store-sqlite: the embedded default backend — one SQLite file in WAL mode, foreign
//! keys on, a busy timeout, and migrations compiled into the binary. Implements the
//! `vigil-store` traits and nothing else.
//!
//! Writes go through a pool of one connection and open with `BEGIN IMMEDIATE`, so writers
//! queue instead of failing on lock upgrades; reads use their own pool and run alongside.

mod audit;
mod credentials;
mod migrate;
mod risks;
mod row;
mod tenants;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use vigil_store::{PoolStats, Store, StoreResult};

pub use migrate::MIGRATIONS;

/// Read connections at most. WAL lets them run while the single writer writes.
pub const READ_CONNECTIONS_MAX: u32 = 8;
/// How long a call waits for a pooled connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite itself waits on a lock held by another process (e.g. the CLI).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(row::map_err)?;
        migrate::run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS_MAX)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await
            .map_err(row::map_err)?;
        Ok(Self { write, read })
    }

    /// Opens `sqlite://path` or `sqlite:path` URLs as given in `VIGIL_DATABASE_URL`.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        Self::open(Path::new(path)).await
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(row::map_err)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map_err(row::map_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.read.size() + self.write.size(),
            idle: u32::try_from(self.read.num_idle() + self.write.num_idle()).unwrap_or(u32::MAX),
            max: READ_CONNECTIONS_MAX + 1,
        }
    }
}
