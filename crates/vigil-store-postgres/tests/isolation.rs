//! What PostgreSQL itself enforces: row-level security behind the store's own tenant
//! filters, and one unbroken audit chain under concurrent writers.

mod common;

use std::sync::Arc;

use common::{Fresh, with_fresh_store};
use sqlx::{Connection, PgConnection};
use tokio::sync::Barrier;
use vigil_domain::{
    ChainVerifier, Level, NewRisk, PageRequest, RiskFilter, RiskTitle, Slug, Tenant, TenantId,
    TenantName,
};
use vigil_store::{AuditRepo, Change, RiskRepo, Store, TenantRepo};
use vigil_store_postgres::{APP_ROLE, POOL_CONNECTIONS_MAX, PostgresStore, TENANT_SETTING};

fn change() -> Change {
    Change::by("test")
}

fn new_risk(title: &str) -> NewRisk {
    NewRisk::new(
        RiskTitle::parse(title).unwrap(),
        Level::parse("impact", 3).unwrap(),
        Level::parse("probability", 2).unwrap(),
    )
}

async fn tenant(store: &dyn Store, slug: &str) -> Tenant {
    store
        .create_tenant(
            &change(),
            &Slug::parse(slug).unwrap(),
            &TenantName::parse(slug).unwrap(),
        )
        .await
        .unwrap()
}

/// Opens a raw transaction as the application role, scoped to `tenant` if given: what the
/// store does before every tenant query, minus the store's own `WHERE tenant_id`.
async fn begin_as_app(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
) -> sqlx::Transaction<'_, sqlx::Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(&format!("SET LOCAL ROLE {APP_ROLE}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(tenant) = tenant {
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(TENANT_SETTING)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx
}

async fn count(conn: &mut PgConnection, tenant: Option<TenantId>, table: &str) -> i64 {
    let mut tx = begin_as_app(conn, tenant).await;
    let n = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    n
}

#[tokio::test]
async fn rls_hides_other_tenants_from_an_unfiltered_query() {
    with_fresh_store(|Fresh { store, options }| async move {
        let alpha = tenant(&store, "alpha").await;
        let bravo = tenant(&store, "bravo").await;
        store
            .create_risk(alpha.id, &change(), new_risk("A"))
            .await
            .unwrap();
        store
            .create_risk(bravo.id, &change(), new_risk("B"))
            .await
            .unwrap();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();

        // The test user is a superuser: without the role switch it sees everything, which
        // is exactly why the store switches.
        let all: i64 = sqlx::query_scalar("SELECT count(*) FROM risks")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(all, 2);
        assert_eq!(count(&mut conn, Some(alpha.id), "risks").await, 1);
        assert_eq!(
            count(&mut conn, None, "risks").await,
            0,
            "no tenant, no rows"
        );
        assert_eq!(count(&mut conn, Some(alpha.id), "audit_events").await, 1);
        assert_eq!(count(&mut conn, Some(alpha.id), "tenants").await, 1);
        assert_eq!(
            count(&mut conn, Some(TenantId::PLATFORM_CHAIN), "audit_events").await,
            2,
            "the platform chain holds the two tenant creations"
        );

        let mut tx = begin_as_app(&mut conn, Some(alpha.id)).await;
        let smuggled = sqlx::query(
            "INSERT INTO risks (id, tenant_id, title, impact, probability, status, tlp,
                created_at, updated_at)
             VALUES ($1, $2, 'smuggled', 1, 1, 'open', 'amber', now(), now())",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(bravo.id.as_uuid())
        .execute(&mut *tx)
        .await;
        let err = smuggled.expect_err("WITH CHECK refuses another tenant's row");
        let code = err.as_database_error().and_then(|db| db.code());
        assert_eq!(code.as_deref(), Some("42501"), "{err}");
    })
    .await;
}

/// Every table that holds a tenant's rows has row-level security on, so a table added later
/// without its policy fails here.
#[tokio::test]
async fn every_tenant_table_has_row_level_security() {
    with_fresh_store(|Fresh { options, .. }| async move {
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        let unprotected: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
               AND NOT c.relrowsecurity",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(unprotected.is_empty(), "without RLS: {unprotected:?}");
        let n_tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(n_tables >= 12, "the query sees the tables: {n_tables}");
    })
    .await;
}

/// The application role appends to the audit trail and nothing more: a tenant transaction
/// cannot edit or delete its own events, nor touch its tenant row.
#[tokio::test]
async fn the_app_role_cannot_rewrite_the_audit_trail() {
    with_fresh_store(|Fresh { store, options }| async move {
        let alpha = tenant(&store, "alpha").await;
        store
            .create_risk(alpha.id, &change(), new_risk("A"))
            .await
            .unwrap();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        for statement in [
            "UPDATE audit_events SET actor = 'intruder'",
            "DELETE FROM audit_events",
            "UPDATE tenants SET name = 'renamed'",
            "DELETE FROM tenants",
            // Telemetry and matches are evidence, like the trail.
            "UPDATE telemetry_events SET body = '{}'",
            "DELETE FROM telemetry_events",
            "UPDATE ioc_matches SET reopened = false",
            "DELETE FROM ioc_matches",
        ] {
            let mut tx = begin_as_app(&mut conn, Some(alpha.id)).await;
            let err = sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .expect_err(statement);
            let code = err.as_database_error().and_then(|db| db.code());
            assert_eq!(code.as_deref(), Some("42501"), "{statement}: {err}");
            tx.rollback().await.unwrap();
        }
        assert_eq!(
            count(&mut conn, Some(alpha.id), "audit_events").await,
            1,
            "nothing was removed"
        );
    })
    .await;
}

/// Opens pooled connections ahead of the writers: otherwise the first writer finishes while
/// the others still connect, and the race on a chain's very first append never happens.
async fn warm_up(store: &PostgresStore, tenant: TenantId) {
    for _ in 0..10 {
        let readers: Vec<_> = (0..POOL_CONNECTIONS_MAX)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let filter = RiskFilter::default();
                    store
                        .list_risks(tenant, &filter, PageRequest::first(1))
                        .await
                })
            })
            .collect();
        for reader in readers {
            reader.await.unwrap().unwrap();
        }
        if store.pool_stats().size >= POOL_CONNECTIONS_MAX / 2 {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_keep_one_chain() {
    const WRITERS: i64 = 20;
    with_fresh_store(|Fresh { store, .. }| async move {
        let acme = tenant(&store, "acme").await.id;
        warm_up(&store, acme).await;
        // All writers start together, so several reach the chain's first append at once.
        let start = Arc::new(Barrier::new(usize::try_from(WRITERS).unwrap()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|i| {
                let store = store.clone();
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .create_risk(acme, &change(), new_risk(&format!("Risk {i}")))
                        .await
                })
            })
            .collect();
        for writer in writers {
            writer
                .await
                .unwrap()
                .expect("every concurrent create succeeds");
        }

        let head = store.audit_head(acme).await.unwrap().expect("a head");
        let mut verifier = ChainVerifier::default();
        let mut seqs = Vec::new();
        let mut after = 0;
        loop {
            let events = store.audit_chain_after(acme, after, 7).await.unwrap();
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                verifier.push(event);
                seqs.push(event.seq);
            }
        }
        let report = verifier.finish(Some(&head));
        assert!(report.ok(), "the chain verifies: {:?}", report.breaks);
        assert_eq!(
            seqs,
            (1..=WRITERS).collect::<Vec<_>>(),
            "seqs 1..=N, once each"
        );
        assert_eq!(head.seq, WRITERS);
    })
    .await;
}

/// Row-level security is forced: the owner role (what Vigil connects as) sees no tenant row
/// in a transaction that is neither scoped to a tenant nor marked as a platform operation,
/// so a query that forgot its filter cannot read across tenants even as the owner. Runs with
/// an ordinary (non-superuser) owner, since superusers bypass RLS by PostgreSQL's design.
#[tokio::test]
async fn row_level_security_holds_for_the_owner_role() {
    let Some(base) = common::base_options() else {
        return;
    };
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let (owner, schema) = (
        format!("vigil_owner_{suffix}"),
        format!("vigil_force_{suffix}"),
    );
    let mut admin = PgConnection::connect_with(&base).await.unwrap();
    for sql in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE SCHEMA {schema} AUTHORIZATION {owner}"),
        // The migration creates vigil_app when it can; an ordinary owner needs it made.
        "DO $$ BEGIN CREATE ROLE vigil_app NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            .to_owned(),
        format!("GRANT vigil_app TO {owner}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let options = base
        .clone()
        .username(&owner)
        .options([("search_path", schema.as_str())]);
    let outcome = tokio::spawn(owner_sees_nothing_unmarked(options)).await;
    for sql in [
        format!("DROP SCHEMA {schema} CASCADE"),
        format!("DROP OWNED BY {owner}"),
        format!("DROP ROLE {owner}"),
    ] {
        if let Err(err) = sqlx::query(&sql).execute(&mut admin).await {
            eprintln!("cleanup `{sql}`: {err}");
        }
    }
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

/// The store works as an ordinary owner, and a raw owner connection sees tenant rows only
/// once it marks itself as a platform operation.
async fn owner_sees_nothing_unmarked(options: sqlx::postgres::PgConnectOptions) {
    let store = PostgresStore::connect_with(options.clone()).await.unwrap();
    let acme = tenant(&store, "acme").await;
    store
        .create_risk(acme.id, &change(), new_risk("Acme's"))
        .await
        .unwrap();
    assert_eq!(
        store
            .list_tenants(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let unforced: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = current_schema()::regnamespace
               AND relkind = 'r' AND relrowsecurity AND NOT relforcerowsecurity",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(unforced.is_empty(), "not forced: {unforced:?}");
    for sql in ["SELECT count(*) FROM risks", "SELECT count(*) FROM tenants"] {
        assert_eq!(
            count(sql).fetch_one(&mut conn).await.unwrap(),
            0,
            "{sql} as the owner"
        );
    }
    sqlx::query("SET vigil.platform = 'on'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        count("SELECT count(*) FROM risks")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        1
    );
    store.close().await;
}

/// PostgreSQL over TLS: `sslmode=require` encrypts, `verify-full` also checks the server's
/// certificate and name (rustls). The test server's certificate (Debian's snakeoil, for
/// `localhost`) is read from the server's own setting.
#[tokio::test]
async fn the_store_connects_over_tls() {
    let Some(base) = common::base_options() else {
        return;
    };
    let mut admin = PgConnection::connect_with(&base).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    if ssl != "on" {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the CI server has TLS on"
        );
        eprintln!("skipped: the test server has ssl = off");
        return;
    }
    let cert: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let port = base.get_port();
    let user = base.get_username().to_owned();
    let url = |host: &str, mode: &str| {
        format!("postgres://{user}@{host}:{port}/test?sslmode={mode}&sslrootcert={cert}")
    };
    let schema = format!("vigil_tls_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    for (host, mode) in [("127.0.0.1", "require"), ("localhost", "verify-full")] {
        let options = std::str::FromStr::from_str(&url(host, mode)).unwrap();
        let options =
            sqlx::postgres::PgConnectOptions::options(options, [("search_path", schema.as_str())]);
        let store = PostgresStore::connect_with(options)
            .await
            .unwrap_or_else(|err| panic!("{mode}: {err}"));
        store.ping().await.unwrap();
        store.close().await;
        let mut conn = PgConnection::connect(&url(host, mode)).await.unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(encrypted, "{mode}");
    }
    let wrong_name = PgConnection::connect(&url("127.0.0.1", "verify-full")).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    assert!(
        wrong_name.is_err(),
        "verify-full checks the name: the certificate is for localhost"
    );
}
