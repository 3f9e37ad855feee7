//! Plans, daily meters and the counts a plan limits (`PlanRepo`).

use rusqlite::{Connection, OptionalExtension, params};
use vigil_domain::{Counted, Day, Meter, Plan, TenantId, Timestamp, UsageDay};
use vigil_store::{AuditDraft, Change, PlanRepo, StoreError, StoreResult};

use crate::SqliteStore;
use crate::audit::append;
use crate::row::{exec, map_err};

fn limit(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn column(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn plan_in(conn: &Connection, tenant: TenantId) -> StoreResult<Plan> {
    conn.query_row(
        "SELECT users_max, api_keys_max, instances_max, indicators_max, events_per_day,
                runs_per_day, trial_ends_at
         FROM plans WHERE tenant_id = ?1",
        params![tenant.to_string()],
        |row| {
            Ok(Plan {
                users_max: limit(row.get(0)?),
                api_keys_max: limit(row.get(1)?),
                instances_max: limit(row.get(2)?),
                indicators_max: limit(row.get(3)?),
                events_per_day: limit(row.get(4)?),
                runs_per_day: limit(row.get(5)?),
                trial_ends_at: row
                    .get::<_, Option<i64>>(6)?
                    .map(Timestamp::from_unix_micros),
            })
        },
    )
    .optional()
    .map_err(map_err)
    .map(Option::unwrap_or_default)
}

#[async_trait::async_trait]
impl PlanRepo for SqliteStore {
    async fn get_plan(&self, tenant: TenantId) -> StoreResult<Plan> {
        self.read(move |conn| plan_in(conn, tenant)).await
    }

    async fn set_plan(&self, tenant: TenantId, change: &Change, plan: &Plan) -> StoreResult<Plan> {
        let (change, plan) = (change.clone(), plan.clone());
        let now = Timestamp::now();
        self.write(move |tx| {
            let known: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM tenants WHERE id = ?1",
                    params![tenant.to_string()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if known.is_none() {
                return Err(StoreError::NotFound);
            }
            let before = plan_in(tx, tenant)?;
            exec(
                tx,
                "INSERT INTO plans (tenant_id, users_max, api_keys_max, instances_max,
                    indicators_max, events_per_day, runs_per_day, trial_ends_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (tenant_id) DO UPDATE SET users_max = excluded.users_max,
                    api_keys_max = excluded.api_keys_max, instances_max = excluded.instances_max,
                    indicators_max = excluded.indicators_max,
                    events_per_day = excluded.events_per_day, runs_per_day = excluded.runs_per_day,
                    trial_ends_at = excluded.trial_ends_at, updated_at = excluded.updated_at",
                params![
                    tenant.to_string(),
                    column(plan.users_max),
                    column(plan.api_keys_max),
                    column(plan.instances_max),
                    column(plan.indicators_max),
                    column(plan.events_per_day),
                    column(plan.runs_per_day),
                    plan.trial_ends_at.map(|at| at.unix_micros()),
                    now.unix_micros(),
                ],
            )?;
            append(
                tx,
                tenant,
                &change,
                AuditDraft::plan(&before, &plan, tenant),
                now,
            )?;
            Ok(plan)
        })
        .await
    }

    async fn meter(
        &self,
        tenant: TenantId,
        day: Day,
        meter: Meter,
        n: u64,
        limit: Option<u64>,
    ) -> StoreResult<bool> {
        self.write(move |tx| {
            let used: Option<i64> = tx
                .query_row(
                    "SELECT count FROM usage WHERE tenant_id = ?1 AND day = ?2 AND meter = ?3",
                    params![tenant.to_string(), day.number(), meter.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(map_err)?;
            let used = used.and_then(|u| u64::try_from(u).ok()).unwrap_or(0);
            if limit.is_some_and(|max| used.saturating_add(n) > max) {
                return Ok(false);
            }
            exec(
                tx,
                "INSERT INTO usage (tenant_id, day, meter, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, day, meter) DO UPDATE SET count = count + excluded.count",
                params![
                    tenant.to_string(),
                    day.number(),
                    meter.as_str(),
                    column(Some(n))
                ],
            )?;
            Ok(true)
        })
        .await
    }

    async fn usage(&self, tenant: TenantId, from: Day, to: Day) -> StoreResult<Vec<UsageDay>> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT day, meter, count FROM usage
                     WHERE tenant_id = ?1 AND day BETWEEN ?2 AND ?3 AND count > 0
                     ORDER BY day, meter",
                )
                .map_err(map_err)?;
            let rows = statement
                .query_map(
                    params![tenant.to_string(), from.number(), to.number()],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .map_err(map_err)?;
            rows.map(|row| {
                let (day, meter, count) = row.map_err(map_err)?;
                Ok(UsageDay {
                    day: Day::from_number(day),
                    meter: Meter::parse(&meter).map_err(|err| StoreError::Corrupt {
                        table: "usage",
                        source: err,
                    })?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
        })
        .await
    }

    async fn usage_totals(&self, day: Day) -> StoreResult<Vec<(Meter, u64)>> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT meter, sum(count) FROM usage WHERE day = ?1 GROUP BY meter ORDER BY meter",
                )
                .map_err(map_err)?;
            let rows = statement
                .query_map(params![day.number()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(map_err)?;
            rows.map(|row| {
                let (meter, total) = row.map_err(map_err)?;
                let meter = Meter::parse(&meter).map_err(|err| StoreError::Corrupt {
                    table: "usage",
                    source: err,
                })?;
                Ok((meter, u64::try_from(total).unwrap_or(0)))
            })
            .collect()
        })
        .await
    }

    async fn count(&self, tenant: TenantId, counted: Counted) -> StoreResult<u64> {
        let now = Timestamp::now().unix_micros();
        self.read(move |conn| {
            let sql = match counted {
                Counted::Users => "SELECT count(*) FROM users WHERE tenant_id = ?1",
                Counted::ApiKeys => {
                    "SELECT count(*) FROM api_keys WHERE tenant_id = ?1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR expires_at > ?2)"
                }
                Counted::Instances => "SELECT count(*) FROM instances WHERE tenant_id = ?1",
                Counted::Indicators => "SELECT count(*) FROM indicators WHERE tenant_id = ?1",
            };
            let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
            let count: i64 = if statement.parameter_count() == 2 {
                statement.query_row(params![tenant.to_string(), now], |row| row.get(0))
            } else {
                statement.query_row(params![tenant.to_string()], |row| row.get(0))
            }
            .map_err(map_err)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}
