//! What the store keeps of plans and usage: each tenant's plan (none: no limits), its daily
//! meters, and the counts a plan limits. A meter only moves when the total stays within the
//! limit, checked and added in one transaction, so two nodes cannot both take the last unit.

use async_trait::async_trait;
use vigil_domain::{Counted, Day, Meter, Plan, TenantId, UsageDay};

use crate::{Change, StoreResult};

#[async_trait]
pub trait PlanRepo: Send + Sync {
    /// The tenant's plan; `Plan::default()` (no limits) when none was set.
    async fn get_plan(&self, tenant: TenantId) -> StoreResult<Plan>;
    /// Sets the tenant's plan (audited as `plan.set` in its chain). `NotFound` for an
    /// unknown tenant.
    async fn set_plan(&self, tenant: TenantId, change: &Change, plan: &Plan) -> StoreResult<Plan>;
    /// Adds `n` to the tenant's `meter` for `day` when the total stays within `limit`;
    /// `false`, and nothing added, when it would not.
    async fn meter(
        &self,
        tenant: TenantId,
        day: Day,
        meter: Meter,
        n: u64,
        limit: Option<u64>,
    ) -> StoreResult<bool>;
    /// The tenant's usage from `from` to `to` (both included), by day then meter; days
    /// without use are absent.
    async fn usage(&self, tenant: TenantId, from: Day, to: Day) -> StoreResult<Vec<UsageDay>>;
    /// Each meter's total for `day` across every tenant (for the metrics: no tenant named).
    async fn usage_totals(&self, day: Day) -> StoreResult<Vec<(Meter, u64)>>;
    /// How many of `counted` the tenant keeps (API keys: usable ones, not revoked or expired).
    async fn count(&self, tenant: TenantId, counted: Counted) -> StoreResult<u64>;
}
