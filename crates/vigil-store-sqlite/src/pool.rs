//! A small pool of SQLite connections used from blocking threads. SQLite calls block, so
//! each use runs on tokio's blocking pool; a semaphore bounds how many run at once and how
//! long a caller waits for a turn.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;
use vigil_store::{StoreError, StoreResult};

use crate::row::map_err;
use crate::{ACQUIRE_TIMEOUT, BUSY_TIMEOUT};

/// Prepared statements kept per connection; the store's queries fit comfortably.
const STATEMENT_CACHE_CAPACITY: usize = 64;

pub(crate) struct Pool {
    path: PathBuf,
    read_only: bool,
    max: u32,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    opened: AtomicU32,
}

impl Pool {
    pub(crate) fn new(path: PathBuf, read_only: bool, max: u32) -> Arc<Self> {
        Arc::new(Self {
            path,
            read_only,
            max,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max as usize)),
            opened: AtomicU32::new(0),
        })
    }

    /// Opens a connection configured for Vigil: WAL, foreign keys, a busy timeout.
    pub(crate) fn open(&self) -> StoreResult<Connection> {
        let flags = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags).map_err(map_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(map_err)?;
        if !self.read_only {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(map_err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(map_err)?;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Runs `work` with a connection on a blocking thread. Waits at most `ACQUIRE_TIMEOUT`
    /// for a turn. If the caller goes away meanwhile, `work` still finishes, so a write
    /// transaction is never cut off half-way.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no SQLite connection free within {ACQUIRE_TIMEOUT:?}"
                ))
            })?
            .map_err(|_| StoreError::Unavailable("the SQLite pool is closed".into()))?;
        let pool = Arc::clone(self);
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = pool
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => pool.open()?,
            };
            let result = work(&mut conn);
            // A connection left inside a transaction (a bug) is not handed to the next caller.
            if conn.is_autocommit() {
                pool.idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(conn);
            } else {
                pool.opened.fetch_sub(1, Ordering::Relaxed);
            }
            result
        })
        .await;
        joined.map_err(|err| StoreError::Backend(format!("SQLite worker failed: {err}")))?
    }

    pub(crate) fn size(&self) -> u32 {
        self.opened.load(Ordering::Relaxed)
    }

    pub(crate) fn idle(&self) -> u32 {
        u32::try_from(self.idle.lock().map(|idle| idle.len()).unwrap_or(0)).unwrap_or(u32::MAX)
    }

    pub(crate) fn max(&self) -> u32 {
        self.max
    }
}
