//! Fresh-schema setup shared by the PostgreSQL tests: each test gets a schema of its own in
//! the database `VIGIL_TEST_PG_URL` names, so tests run in parallel (nextest: one process
//! each) without seeing each other's rows.

use std::future::Future;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use vigil_store_postgres::PostgresStore;

/// The variable naming the test database, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub(crate) const URL_VAR: &str = "VIGIL_TEST_PG_URL";

/// A migrated store in a fresh schema, and the options that reach that schema directly.
pub(crate) struct Fresh {
    pub(crate) store: PostgresStore,
    pub(crate) options: PgConnectOptions,
}

/// The test database's options, or `None` (after saying so on stderr) when `URL_VAR` is
/// unset. In CI the tests must run, so there an unset variable fails the test instead.
pub(crate) fn base_options() -> Option<PgConnectOptions> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => {
            Some(PgConnectOptions::from_str(&url).expect("VIGIL_TEST_PG_URL parses"))
        }
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{URL_VAR} must be set in CI: the PostgreSQL tests may not skip there"
            );
            eprintln!("skipped: {URL_VAR} not set");
            None
        }
    }
}

/// Runs `test` on a store migrated into a new schema, then drops the schema, also when the
/// test panics (the panic is passed on afterwards). Connecting happens inside the spawned
/// task too, which also proves the store's futures are `Send`.
pub(crate) async fn with_fresh_store<F, Fut>(test: F)
where
    F: FnOnce(Fresh) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = base_options() else { return };
    let schema = format!("vigil_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = PgConnection::connect_with(&base)
        .await
        .expect("connect to VIGIL_TEST_PG_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create the test schema");
    let options = base.options([("search_path", schema.as_str())]);
    let outcome = tokio::spawn(async move {
        let store = PostgresStore::connect_with(options.clone())
            .await
            .expect("connect and migrate");
        let closer = store.clone();
        test(Fresh { store, options }).await;
        closer.close().await;
    })
    .await;
    // Best effort: a schema left behind by a crash only costs disk space.
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await;
    if let Err(err) = dropped {
        eprintln!("could not drop test schema {schema}: {err}");
    }
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}
