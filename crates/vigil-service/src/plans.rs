//! Plans, quotas and usage: a platform admin sets what each tenant may keep and do; the use
//! cases that create what a plan counts refuse past its limit (403), the metered ones
//! (telemetry events, task runs) refuse past the day's limit until the next UTC day (429),
//! and a tenant whose trial ended is read-only (its principals may read, nothing else). Usage
//! is metered per tenant and day whether or not a limit applies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_domain::{Counted, Day, Meter, Permission, Plan, TenantId, Timestamp, UsageDay};

use crate::{Principal, ServiceError, ServiceResult, Services};

/// How long a tenant's plan is cached per process (a change made on another node takes
/// effect within it; on this node at once).
pub const PLAN_CACHE_TTL: Duration = Duration::from_secs(1);
/// Tenants whose plans one process caches; past it the cache starts over.
pub const PLAN_CACHE_MAX: usize = 10_000;
/// Most days one usage answer covers.
pub const USAGE_DAYS_MAX: u32 = 366;

/// The short-lived cache of tenants' plans, for the checks on every request.
#[derive(Default)]
pub(crate) struct PlanCache {
    plans: Mutex<HashMap<TenantId, (Instant, Plan)>>,
}

impl PlanCache {
    fn get(&self, tenant: TenantId) -> Option<Plan> {
        let plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        plans
            .get(&tenant)
            .filter(|(at, _)| at.elapsed() < PLAN_CACHE_TTL)
            .map(|(_, plan)| plan.clone())
    }

    fn put(&self, tenant: TenantId, plan: Plan) {
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if plans.len() >= PLAN_CACHE_MAX {
            plans.clear();
        }
        plans.insert(tenant, (Instant::now(), plan));
    }

    fn forget(&self, tenant: TenantId) {
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        plans.remove(&tenant);
    }
}

/// What a tenant keeps and used: its plan, the counts the plan limits, and its daily usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub tenant: TenantId,
    pub plan: Plan,
    pub read_only: bool,
    pub counts: Vec<(Counted, u64)>,
    /// Oldest first; days without use are absent.
    pub days: Vec<UsageDay>,
}

impl Services {
    /// The tenant's plan, from the cache when it is fresh.
    pub(crate) async fn plan_of(&self, tenant: TenantId) -> ServiceResult<Plan> {
        if let Some(plan) = self.plans.get(tenant) {
            return Ok(plan);
        }
        let plan = self.store.get_plan(tenant).await?;
        self.plans.put(tenant, plan.clone());
        Ok(plan)
    }

    /// The principal as its tenant's plan has it: read-only once the trial ended.
    pub(crate) async fn with_plan(&self, principal: Principal) -> ServiceResult<Principal> {
        let Some(tenant) = principal.tenant() else {
            return Ok(principal);
        };
        let plan = self.plan_of(tenant).await?;
        Ok(match plan.trial_ends_at {
            Some(end) if plan.read_only_at(Timestamp::now()) => principal.read_only_since(end),
            _ => principal,
        })
    }

    /// Refuses (403 naming the limit) when the tenant keeps as many `counted` as its plan
    /// allows. Checked before the write: concurrent creates may pass the limit by their
    /// number.
    pub(crate) async fn check_count(
        &self,
        tenant: TenantId,
        counted: Counted,
    ) -> ServiceResult<()> {
        match self.room_for(tenant, counted).await? {
            Some((max, 0)) => Err(ServiceError::PlanLimit {
                limit: counted.limit_name(),
                max,
            }),
            _ => Ok(()),
        }
    }

    /// The plan's limit on `counted` and how many more the tenant may create (`None`: no
    /// limit).
    pub(crate) async fn room_for(
        &self,
        tenant: TenantId,
        counted: Counted,
    ) -> ServiceResult<Option<(u64, u64)>> {
        let Some(max) = self.plan_of(tenant).await?.count_max(counted) else {
            return Ok(None);
        };
        let kept = self.store.count(tenant, counted).await?;
        Ok(Some((max, max.saturating_sub(kept))))
    }

    /// Meters `n` of `meter` for today; refuses (429 until the next UTC day, naming the
    /// limit) when that would pass the plan's daily limit, and then meters nothing.
    pub(crate) async fn meter(&self, tenant: TenantId, meter: Meter, n: u64) -> ServiceResult<()> {
        let limit = self.plan_of(tenant).await?.per_day(meter);
        let now = Timestamp::now();
        let today = Day::of(now);
        if self.store.meter(tenant, today, meter, n, limit).await? {
            return Ok(());
        }
        Err(ServiceError::Quota {
            limit: meter.limit_name(),
            max: limit.unwrap_or(0),
            retry_after_s: today.seconds_left(now),
        })
    }

    /// Today's usage across every tenant as OpenMetrics families (no tenant named), for
    /// `/metrics`; empty when the store does not answer.
    pub async fn usage_openmetrics(&self) -> String {
        let today = Day::of(Timestamp::now());
        let Ok(totals) = self.store.usage_totals(today).await else {
            return String::new();
        };
        let mut out = String::from(
            "# TYPE vigil_usage_today gauge\n# HELP vigil_usage_today Telemetry events accepted and task runs asked for today (UTC), all tenants.\n",
        );
        for meter in Meter::ALL {
            let total = totals
                .iter()
                .find(|(m, _)| *m == meter)
                .map_or(0, |(_, n)| *n);
            out.push_str(&format!(
                "vigil_usage_today{{meter=\"{}\"}} {total}\n",
                meter.as_str()
            ));
        }
        out
    }

    /// Sets a tenant's plan (platform admins).
    pub async fn set_plan(
        &self,
        principal: &Principal,
        tenant: TenantId,
        plan: Plan,
    ) -> ServiceResult<Plan> {
        principal.require(Permission::ManageTenants)?;
        let plan = self
            .store
            .set_plan(tenant, &principal.change(), &plan)
            .await?;
        self.plans.forget(tenant);
        Ok(plan)
    }

    /// A tenant's plan, counts and usage over the last `days` days: the caller's own tenant,
    /// or (platform admins) the one named.
    pub async fn usage(
        &self,
        principal: &Principal,
        tenant: Option<TenantId>,
        days: u32,
    ) -> ServiceResult<Usage> {
        let tenant = match tenant {
            Some(tenant) => {
                principal.require(Permission::ManageTenants)?;
                self.store.get_tenant(tenant).await?.id
            }
            None => principal.require_tenant(Permission::ReadData)?,
        };
        if days == 0 || days > USAGE_DAYS_MAX {
            return Err(ServiceError::invalid(
                "days",
                format!("1 to {USAGE_DAYS_MAX}"),
            ));
        }
        let plan = self.store.get_plan(tenant).await?;
        let today = Day::of(Timestamp::now());
        let from = today.plus(1 - i64::from(days));
        let mut counts = Vec::new();
        for counted in [
            Counted::Users,
            Counted::ApiKeys,
            Counted::Instances,
            Counted::Indicators,
        ] {
            counts.push((counted, self.store.count(tenant, counted).await?));
        }
        Ok(Usage {
            tenant,
            read_only: plan.read_only_at(Timestamp::now()),
            plan,
            counts,
            days: self.store.usage(tenant, from, today).await?,
        })
    }
}
