//! vigil-store-sqlite: the embedded default backend — one SQLite file in WAL mode, foreign
//! keys on, a busy timeout, and migrations compiled into the binary. Implements the
//! `vigil-store` traits and nothing else.
//!
//! SQLite is a C library with blocking calls, so every call runs on tokio's blocking pool
//! through `rusqlite`, which reads columns in place (no per-value copies) and caches
//! prepared statements. Writes go through a pool of one connection and open with
//! `BEGIN IMMEDIATE`, so writers queue instead of failing on lock upgrades; reads use their
//! own connections and run alongside (WAL).

mod audit;
mod automation;
mod catalogue;
mod connectors;
mod credentials;
mod findings;
mod instances;
mod migrate;
mod plans;
mod pool;
mod risks;
mod row;
mod runs;
mod sync;
mod telemetry;
mod tenants;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use vigil_store::{PoolStats, Store, StoreResult};

pub use migrate::MIGRATIONS;

use crate::pool::Pool;
use crate::row::map_err;

/// Read connections at most. WAL lets them run while the single writer writes.
pub const READ_CONNECTIONS_MAX: u32 = 8;
/// How long a call waits for a pooled connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite itself waits on a lock held by another process (e.g. the CLI).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct SqliteStore {
    write: Arc<Pool>,
    read: Arc<Pool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let write = Pool::new(path.to_path_buf(), false, 1);
        write.run(migrate::run).await?;
        let read = Pool::new(path.to_path_buf(), true, READ_CONNECTIONS_MAX);
        Ok(Self { write, read })
    }

    /// Runs `work` on a read connection.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.read.run(move |conn| work(conn)).await
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer and commits it when
    /// `work` succeeds; an error rolls everything back, audit event included.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.write
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_err)?;
                let value = work(&tx)?;
                tx.commit().map_err(map_err)?;
                Ok(value)
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.read.size() + self.write.size(),
            idle: self.read.idle() + self.write.idle(),
            max: self.read.max() + self.write.max(),
        }
    }
}
