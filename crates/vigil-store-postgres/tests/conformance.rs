//! The shared store story, and migrations, on a fresh PostgreSQL schema.

mod common;

use common::{Fresh, with_fresh_store};
use sqlx::{Connection, Executor, PgConnection};
use vigil_store::StoreError;
use vigil_store_postgres::{MIGRATIONS, PostgresStore};

#[tokio::test]
async fn postgres_store_tells_the_conformance_story() {
    with_fresh_store(|Fresh { store, .. }| async move {
        vigil_store::conformance::story(&store).await;
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("postgres://"),
            "Debug shows no DSN: {shown}"
        );
    })
    .await;
}

async fn migrations_recorded(fresh: &Fresh) -> i64 {
    let mut conn = PgConnection::connect_with(&fresh.options).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM vigil_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn reconnecting_applies_no_migration_twice() {
    with_fresh_store(|fresh| async move {
        let again = PostgresStore::connect_with(fresh.options.clone())
            .await
            .expect("second connect to a migrated schema");
        again.close().await;
        let expected = i64::try_from(MIGRATIONS.len()).unwrap();
        assert_eq!(migrations_recorded(&fresh).await, expected);
    })
    .await;
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    with_fresh_store(|fresh| async move {
        // The fresh store migrated already; drop everything it made and let three "nodes"
        // race to migrate the empty schema again.
        let mut conn = PgConnection::connect_with(&fresh.options).await.unwrap();
        conn.execute(
            "DO $$ DECLARE t text; BEGIN
                 FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
                     EXECUTE format('DROP TABLE %I CASCADE', t);
                 END LOOP;
             END $$",
        )
        .await
        .unwrap();
        let nodes: Vec<_> = (0..3)
            .map(|_| tokio::spawn(PostgresStore::connect_with(fresh.options.clone())))
            .collect();
        for node in nodes {
            node.await
                .unwrap()
                .expect("every node starts")
                .close()
                .await;
        }
        let expected = i64::try_from(MIGRATIONS.len()).unwrap();
        assert_eq!(migrations_recorded(&fresh).await, expected);
    })
    .await;
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    with_fresh_store(|fresh| async move {
        let mut conn = PgConnection::connect_with(&fresh.options).await.unwrap();
        sqlx::query("UPDATE vigil_migrations SET checksum = 'edited' WHERE version = 1")
            .execute(&mut conn)
            .await
            .unwrap();
        let refused = PostgresStore::connect_with(fresh.options.clone()).await;
        assert!(
            matches!(&refused, Err(StoreError::Backend(msg)) if msg.contains("was changed")),
            "{refused:?}"
        );
    })
    .await;
}

/// Needs no server: nothing listens on port 1, so connecting fails, and the error must not
/// repeat the password from the URL.
#[tokio::test]
async fn connection_errors_never_show_the_url() {
    let url = "postgres://vigil:s3cret-pw@127.0.0.1:1/vigil";
    let err = PostgresStore::connect(url)
        .await
        .expect_err("nothing listens on port 1");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let garbage = PostgresStore::connect("postgres://vigil:s3cret-pw@[::1/x").await;
    let shown = format!("{garbage:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
}
