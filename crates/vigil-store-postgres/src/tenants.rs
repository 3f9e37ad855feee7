//! Tenants are the platform's own records: these calls see across tenants, so they run as
//! the connecting user, outside row-level security.

use async_trait::async_trait;
use vigil_domain::{Cursor, PageRequest, Slug, Tenant, TenantId, TenantName, Timestamp};
use vigil_store::{AuditDraft, Change, Page, StoreError, StoreResult, TenantRepo};

use crate::PostgresStore;
use crate::audit::append;
use crate::row::{self, map_err};

#[async_trait]
impl TenantRepo for PostgresStore {
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
        let mut tx = self.begin_platform().await?;
        sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant.id.as_uuid())
            .bind(slug.as_str())
            .bind(name.as_str())
            .bind(now.to_datetime())
            .execute(&mut *tx)
            .await
            .map_err(|err| match map_err(err) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("slug {} is taken", slug.as_str()))
                }
                other => other,
            })?;
        append(
            &mut tx,
            TenantId::PLATFORM_CHAIN,
            change,
            AuditDraft::tenant_created(&tenant),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(tenant)
    }

    async fn list_tenants(&self, page: PageRequest) -> StoreResult<Page<Tenant>> {
        let query = sqlx::query(
            "SELECT * FROM tenants WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(page.cursor().map(|cursor| cursor.id()))
        .bind(i64::from(page.limit()) + 1);
        let rows = self.fetch_platform(query).await?;
        let tenants = rows
            .iter()
            .map(|r| row::tenant(r)?.try_into())
            .collect::<StoreResult<Vec<Tenant>>>()?;
        Ok(Page::from_overfetch(tenants, page.limit(), |tenant| {
            Cursor::after(tenant.id.as_uuid())
        }))
    }

    async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        let query = sqlx::query("SELECT * FROM tenants WHERE id = $1").bind(id.as_uuid());
        let row = self.fetch_platform_optional(query).await?;
        row::tenant(&row.ok_or(StoreError::NotFound)?)?.try_into()
    }

    async fn find_tenant_by_slug(&self, slug: &Slug) -> StoreResult<Option<Tenant>> {
        let query = sqlx::query("SELECT * FROM tenants WHERE slug = $1").bind(slug.as_str());
        let row = self.fetch_platform_optional(query).await?;
        row.map(|row| row::tenant(&row)?.try_into()).transpose()
    }
}
