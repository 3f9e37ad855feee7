//! The shared store story, on a fresh SQLite file.

use vigil_store_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_store_tells_the_conformance_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("vigil.db"))
        .await
        .unwrap();
    vigil_store::conformance::story(&store).await;
}

#[tokio::test]
async fn reopening_applies_no_migration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    drop(SqliteStore::open(&path).await.unwrap());
    SqliteStore::open(&path)
        .await
        .expect("second open of a migrated file");
}
