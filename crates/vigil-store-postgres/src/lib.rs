//! vigil-store-postgres: the PostgreSQL backend, for deployments that run several nodes or
//! outgrow one SQLite file. A bounded connection pool with a statement timeout, migrations
//! compiled into the binary (serialized across nodes by an advisory lock), and row-level
//! security under every tenant query. Implements the `vigil-store` traits and nothing else:
//! no HTTP, no authorization decisions, no business rules. Callers bring the tenant; this
//! crate only enforces it.
//!
//! Every tenant-scoped call runs in a transaction that first switches to the `vigil_app`
//! role and records its scope in the `vigil.tenant_id` setting, so PostgreSQL's policies
//! hide other tenants' rows even from a query that lost its own `WHERE tenant_id`. That
//! matters because the connecting user usually owns the tables (it ran the migrations) or is
//! a superuser, and both bypass policies. Platform operations (tenants, `unchecked_*`) run
//! as the connecting user on purpose: they are the ones that must see across tenants.

/// The NOLOGIN role tenant-scoped transactions switch to. Written once here so the role name
/// in `SET LOCAL ROLE` and the public constant cannot drift apart; the migration creates it.
macro_rules! app_role {
    () => {
        "vigil_app"
    };
}

/// A row's scope: its tenant, or the nil UUID (`TenantId::PLATFORM_CHAIN`) for platform
/// rows. The same expression as the row-level security policies and the scope indexes, so
/// one index serves both the explicit filter and the policy.
macro_rules! scope_of_row {
    () => {
        "coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)"
    };
}

mod audit;
mod automation;
mod catalogue;
mod connectors;
mod credentials;
mod findings;
mod instances;
mod migrate;
mod plans;
mod risks;
mod row;
mod runs;
mod sync;
mod telemetry;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Transaction};
use vigil_domain::TenantId;
use vigil_store::{PoolStats, Store, StoreError, StoreResult};

pub use migrate::MIGRATIONS;

use crate::row::map_err;

/// Connections the pool opens at most. Bounded so that many nodes stay under the server's
/// `max_connections` (100 by default).
pub const POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a call waits for a pooled connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server lets one statement run (lock waits included) before cancelling it, so
/// a stuck query frees its connection instead of starving the pool.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The role tenant-scoped transactions run as; row-level security applies to it.
pub const APP_ROLE: &str = app_role!();
/// The per-transaction setting the policies compare each row's scope with.
pub const TENANT_SETTING: &str = "vigil.tenant_id";
/// The setting a platform transaction turns on (`'on'`, LOCAL) to see across tenants as the
/// owner role, row-level security being forced.
pub const PLATFORM_SETTING: &str = "vigil.platform";

/// Advisory-lock classes: the first key of `pg_advisory_xact_lock(int, int)`, so this
/// crate's locks keep apart from each other and, with "VG" in the high half, from other
/// applications' locks in the same database.
pub(crate) const LOCK_CLASS_MIGRATIONS: i32 = 0x5647_0001;
/// See `LOCK_CLASS_MIGRATIONS`; the second key is the hash of the chain id.
pub(crate) const LOCK_CLASS_CHAINS: i32 = 0x5647_0002;
/// See `LOCK_CLASS_MIGRATIONS`; the second key is the hash of the tenant id: held by writes
/// that change the tenant's task dependency graph.
pub(crate) const LOCK_CLASS_TASK_GRAPH: i32 = 0x5647_0003;

/// The PostgreSQL store. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

// Not derived: the pool's options hold the DSN, which may carry a password.
impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `postgres://…` (as given in `VIGIL_DATABASE_URL`) and applies pending
    /// migrations. Errors never repeat the URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // sqlx's parse error may quote the URL, password included: say only what failed.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Backend("the PostgreSQL URL does not parse".into()))?;
        Self::connect_with(options).await
    }

    /// Connects with prepared options (e.g. a `search_path` naming the schema to use) and
    /// applies pending migrations. `STATEMENT_TIMEOUT` is added to the options.
    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        let timeout = format!("{}ms", STATEMENT_TIMEOUT.as_millis());
        let options = options.options([("statement_timeout", timeout)]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        migrate::run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes every connection, waiting for calls in flight to return theirs. For shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction in which row-level security applies: as `vigil_app`, scoped to `chain`
    /// (a tenant, or `TenantId::PLATFORM_CHAIN` for platform rows). Both settings are
    /// `LOCAL`, so they end with the transaction and never leak into the next user of the
    /// pooled connection.
    pub(crate) async fn begin_scoped(
        &self,
        chain: TenantId,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let tx = self.pool.begin().await.map_err(map_err)?;
        Self::scope(tx, chain).await
    }

    /// `begin_scoped` for a read-only transaction that sees one snapshot throughout.
    pub(crate) async fn begin_scoped_snapshot(
        &self,
        chain: TenantId,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Must come before any other statement of the transaction.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Self::scope(tx, chain).await
    }

    async fn scope(
        mut tx: Transaction<'static, Postgres>,
        chain: TenantId,
    ) -> StoreResult<Transaction<'static, Postgres>> {
        sqlx::query(concat!("SET LOCAL ROLE ", app_role!()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(TENANT_SETTING)
            .bind(chain.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Ok(tx)
    }

    /// A transaction as the connecting user, for platform operations that span tenants. It
    /// sets `PLATFORM_SETTING` (LOCAL), which the owner-only `platform_operations` policies
    /// require: row-level security is forced, so without it the owner sees no tenant row.
    pub(crate) async fn begin_platform(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("SELECT set_config($1, 'on', true)")
            .bind(PLATFORM_SETTING)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Ok(tx)
    }

    /// Runs one read in a platform transaction (see `begin_platform`).
    pub(crate) async fn fetch_platform(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Vec<PgRow>> {
        let mut tx = self.begin_platform().await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }

    /// `fetch_platform` for at most one row.
    pub(crate) async fn fetch_platform_optional(
        &self,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Option<PgRow>> {
        Ok(self.fetch_platform(query).await?.into_iter().next())
    }

    /// One page of a tenant's rows of `table`, newest first (by id), each converted by
    /// `convert`.
    pub(crate) async fn tenant_page<T>(
        &self,
        tenant: TenantId,
        table: &'static str,
        page: vigil_domain::PageRequest,
        convert: impl Fn(&PgRow) -> StoreResult<T>,
        id: impl Fn(&T) -> uuid::Uuid,
    ) -> StoreResult<vigil_store::Page<T>> {
        let sql = format!(
            "SELECT * FROM {table} WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        );
        let query = sqlx::query(&sql)
            .bind(tenant.as_uuid())
            .bind(page.cursor().map(|cursor| cursor.id()))
            .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_scoped(tenant, query).await?;
        let items = rows.iter().map(convert).collect::<StoreResult<Vec<T>>>()?;
        Ok(vigil_store::Page::from_overfetch(
            items,
            page.limit(),
            |item| vigil_domain::Cursor::after(id(item)),
        ))
    }

    /// Runs one read in a transaction scoped to `chain`.
    pub(crate) async fn fetch_scoped(
        &self,
        chain: TenantId,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Vec<PgRow>> {
        let mut tx = self.begin_scoped(chain).await?;
        let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }

    /// Runs one read of at most one row in a transaction scoped to `chain`.
    pub(crate) async fn fetch_optional_scoped(
        &self,
        chain: TenantId,
        query: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<Option<PgRow>> {
        let mut tx = self.begin_scoped(chain).await?;
        let row = query.fetch_optional(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(row)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: POOL_CONNECTIONS_MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migration's SQL names the role and the setting literally; keep them in step with
    /// the constants the code switches to.
    #[test]
    fn the_migration_names_the_role_and_setting_the_code_uses() {
        let (_, _, sql) = MIGRATIONS[0];
        assert!(sql.contains(&format!("CREATE ROLE {APP_ROLE} NOLOGIN")));
        assert!(sql.contains(&format!("current_setting('{TENANT_SETTING}', true)")));
        assert!(sql.contains(scope_of_row!()));
    }
}
