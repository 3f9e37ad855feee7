use async_trait::async_trait;
use rusqlite::params;
use vigil_domain::{Cursor, PageRequest, Slug, Tenant, TenantId, TenantName, Timestamp};
use vigil_store::{AuditDraft, Change, Page, StoreError, StoreResult, TenantRepo};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{self, exec, query_all, query_one, tenant_columns};

#[async_trait]
impl TenantRepo for SqliteStore {
    async fn create_tenant(
        &self,
        change: &Change,
        slug: &Slug,
        name: &TenantName,
    ) -> StoreResult<Tenant> {
        let now = Timestamp::now();
        let tenant = Tenant {
            id: TenantId::generate(),
            slug: slug.clone(),
            name: name.clone(),
            created_at: now,
        };
        let change = change.clone();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    tenant.id.to_string(),
                    tenant.slug.as_str(),
                    tenant.name.as_str(),
                    now.unix_micros()
                ],
            )
            .map_err(|err| match err {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("slug {} is taken", tenant.slug.as_str()))
                }
                other => other,
            })?;
            append(
                tx,
                TenantId::PLATFORM_CHAIN,
                &change,
                AuditDraft::tenant_created(&tenant),
                now,
            )?;
            Ok(tenant)
        })
        .await
    }

    async fn list_tenants(&self, page: PageRequest) -> StoreResult<Page<Tenant>> {
        self.read(move |conn| {
            let tenants: Vec<Tenant> = query_all(
                conn,
                concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2"
                ),
                params![
                    page.cursor().map(|cursor| cursor.id().to_string()),
                    i64::from(page.limit()) + 1
                ],
                row::tenant,
            )?;
            Ok(Page::from_overfetch(tenants, page.limit(), |tenant| {
                Cursor::after(tenant.id.as_uuid())
            }))
        })
        .await
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.read(move |conn| {
            query_one(
                conn,
                concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE id = ?1"),
                [id.to_string()],
                row::tenant,
            )
        })
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn find_tenant_by_slug(&self, slug: &Slug) -> StoreResult<Option<Tenant>> {
        let slug = slug.as_str().to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                concat!(
                    "SELECT ",
                    tenant_columns!(),
                    " FROM tenants WHERE slug = ?1"
                ),
                [slug],
                row::tenant,
            )
        })
        .await
    }
}
