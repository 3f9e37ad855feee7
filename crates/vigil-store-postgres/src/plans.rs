//! Plans, daily meters and the counts a plan limits (`PlanRepo`).

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use vigil_domain::{Counted, Day, Meter, Plan, TenantId, Timestamp, UsageDay};
use vigil_store::{AuditDraft, Change, PlanRepo, StoreError, StoreResult};

use crate::PostgresStore;
use crate::audit::append;
use crate::automation::get;
use crate::row::map_err;

fn limit(row: &PgRow, column: &str) -> StoreResult<Option<u64>> {
    Ok(get::<Option<i64>>(row, column)?.and_then(|v| u64::try_from(v).ok()))
}

fn column(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

async fn plan_in(conn: &mut PgConnection, tenant: TenantId) -> StoreResult<Plan> {
    let row = sqlx::query("SELECT * FROM plans WHERE tenant_id = $1")
        .bind(tenant.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(map_err)?;
    let Some(row) = row else {
        return Ok(Plan::default());
    };
    Ok(Plan {
        users_max: limit(&row, "users_max")?,
        api_keys_max: limit(&row, "api_keys_max")?,
        instances_max: limit(&row, "instances_max")?,
        indicators_max: limit(&row, "indicators_max")?,
        events_per_day: limit(&row, "events_per_day")?,
        runs_per_day: limit(&row, "runs_per_day")?,
        trial_ends_at: get::<Option<time::OffsetDateTime>>(&row, "trial_ends_at")?
            .map(Timestamp::from_datetime),
    })
}

#[async_trait::async_trait]
impl PlanRepo for PostgresStore {
    async fn get_plan(&self, tenant: TenantId) -> StoreResult<Plan> {
        let mut tx = self.begin_scoped(tenant).await?;
        let plan = plan_in(&mut tx, tenant).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(plan)
    }

    async fn set_plan(&self, tenant: TenantId, change: &Change, plan: &Plan) -> StoreResult<Plan> {
        let known = sqlx::query("SELECT id FROM tenants WHERE id = $1").bind(tenant.as_uuid());
        if self.fetch_platform_optional(known).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let now = Timestamp::now();
        let mut tx = self.begin_scoped(tenant).await?;
        let before = plan_in(&mut tx, tenant).await?;
        sqlx::query(
            "INSERT INTO plans (tenant_id, users_max, api_keys_max, instances_max, indicators_max,
                events_per_day, runs_per_day, trial_ends_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id) DO UPDATE SET users_max = excluded.users_max,
                api_keys_max = excluded.api_keys_max, instances_max = excluded.instances_max,
                indicators_max = excluded.indicators_max, events_per_day = excluded.events_per_day,
                runs_per_day = excluded.runs_per_day, trial_ends_at = excluded.trial_ends_at,
                updated_at = excluded.updated_at",
        )
        .bind(tenant.as_uuid())
        .bind(column(plan.users_max))
        .bind(column(plan.api_keys_max))
        .bind(column(plan.instances_max))
        .bind(column(plan.indicators_max))
        .bind(column(plan.events_per_day))
        .bind(column(plan.runs_per_day))
        .bind(plan.trial_ends_at.map(|at| at.to_datetime()))
        .bind(now.to_datetime())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append(
            &mut tx,
            tenant,
            change,
            AuditDraft::plan(&before, plan, tenant),
            now,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(plan.clone())
    }

    async fn meter(
        &self,
        tenant: TenantId,
        day: Day,
        meter: Meter,
        n: u64,
        limit: Option<u64>,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_scoped(tenant).await?;
        // The row exists and is locked before it is read: two nodes cannot both take the
        // last unit.
        sqlx::query(
            "INSERT INTO usage (tenant_id, day, meter, count) VALUES ($1, $2, $3, 0)
             ON CONFLICT (tenant_id, day, meter) DO NOTHING",
        )
        .bind(tenant.as_uuid())
        .bind(day.number())
        .bind(meter.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let used: i64 = sqlx::query_scalar(
            "SELECT count FROM usage WHERE tenant_id = $1 AND day = $2 AND meter = $3 FOR UPDATE",
        )
        .bind(tenant.as_uuid())
        .bind(day.number())
        .bind(meter.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let used = u64::try_from(used).unwrap_or(0);
        if limit.is_some_and(|max| used.saturating_add(n) > max) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE usage SET count = count + $4 WHERE tenant_id = $1 AND day = $2 AND meter = $3",
        )
        .bind(tenant.as_uuid())
        .bind(day.number())
        .bind(meter.as_str())
        .bind(column(Some(n)))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn usage(&self, tenant: TenantId, from: Day, to: Day) -> StoreResult<Vec<UsageDay>> {
        let query = sqlx::query(
            "SELECT day, meter, count FROM usage
             WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND count > 0 ORDER BY day, meter",
        )
        .bind(tenant.as_uuid())
        .bind(from.number())
        .bind(to.number());
        let rows = self.fetch_scoped(tenant, query).await?;
        rows.iter()
            .map(|row| {
                Ok(UsageDay {
                    day: Day::from_number(get(row, "day")?),
                    meter: Meter::parse(&get::<String>(row, "meter")?).map_err(|err| {
                        StoreError::Corrupt {
                            table: "usage",
                            source: err,
                        }
                    })?,
                    count: u64::try_from(get::<i64>(row, "count")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn usage_totals(&self, day: Day) -> StoreResult<Vec<(Meter, u64)>> {
        let query = sqlx::query(
            "SELECT meter, sum(count)::bigint AS total FROM usage WHERE day = $1
             GROUP BY meter ORDER BY meter",
        )
        .bind(day.number());
        let rows = self.fetch_platform(query).await?;
        rows.iter()
            .map(|row| {
                let meter = Meter::parse(&get::<String>(row, "meter")?).map_err(|err| {
                    StoreError::Corrupt {
                        table: "usage",
                        source: err,
                    }
                })?;
                Ok((meter, u64::try_from(get::<i64>(row, "total")?).unwrap_or(0)))
            })
            .collect()
    }

    async fn count(&self, tenant: TenantId, counted: Counted) -> StoreResult<u64> {
        let sql = match counted {
            Counted::Users => "SELECT count(*) FROM users WHERE tenant_id = $1",
            Counted::ApiKeys => {
                "SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())"
            }
            Counted::Instances => "SELECT count(*) FROM instances WHERE tenant_id = $1",
            Counted::Indicators => "SELECT count(*) FROM indicators WHERE tenant_id = $1",
        };
        let mut tx = self.begin_scoped(tenant).await?;
        let count: i64 = sqlx::query_scalar(sql)
            .bind(tenant.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
