//! Plans and usage: a platform admin sets each tenant's plan and reads its usage; a tenant
//! reads its own.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use vigil_domain::{Counted, Plan, TenantId, Timestamp};
use vigil_service::Usage;

use crate::extract::{ApiJson, ApiQuery, Auth, Authorized, ManageTenants};
use crate::handlers::{IdPath, ReasonHeader, path_id};
use crate::{ApiError, AppState};

/// A tenant's plan; an absent or null limit is no limit.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanIn {
    #[schema(schema_with = crate::schema::plan_limit)]
    users_max: Option<serde_json::Number>,
    #[schema(schema_with = crate::schema::plan_limit)]
    api_keys_max: Option<serde_json::Number>,
    #[schema(schema_with = crate::schema::plan_limit)]
    instances_max: Option<serde_json::Number>,
    #[schema(schema_with = crate::schema::plan_limit)]
    indicators_max: Option<serde_json::Number>,
    /// Telemetry events accepted per UTC day.
    #[schema(schema_with = crate::schema::plan_limit)]
    events_per_day: Option<serde_json::Number>,
    /// Task runs asked for per UTC day.
    #[schema(schema_with = crate::schema::plan_limit)]
    runs_per_day: Option<serde_json::Number>,
    /// RFC 3339; from then on the tenant is read-only.
    #[schema(schema_with = crate::schema::opt_timestamp)]
    trial_ends_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Plan)]
pub(crate) struct PlanOut {
    users_max: Option<u64>,
    api_keys_max: Option<u64>,
    instances_max: Option<u64>,
    indicators_max: Option<u64>,
    events_per_day: Option<u64>,
    runs_per_day: Option<u64>,
    trial_ends_at: Option<String>,
}

/// A limit as JSON Schema's `integer` has it (`5` or `5.0`), 0 to `PLAN_LIMIT_MAX`.
fn limit(field: &str, value: Option<&serde_json::Number>) -> Result<Option<u64>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let whole = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=vigil_domain::PLAN_LIMIT_MAX as f64).contains(f))
            .map(|f| f as u64)
    });
    match whole {
        Some(n) if n <= vigil_domain::PLAN_LIMIT_MAX => Ok(Some(n)),
        _ => Err(ApiError::invalid(
            field,
            format!("a whole number from 0 to {}", vigil_domain::PLAN_LIMIT_MAX),
        )),
    }
}

fn plan_out(plan: &Plan) -> PlanOut {
    PlanOut {
        users_max: plan.users_max,
        api_keys_max: plan.api_keys_max,
        instances_max: plan.instances_max,
        indicators_max: plan.indicators_max,
        events_per_day: plan.events_per_day,
        runs_per_day: plan.runs_per_day,
        trial_ends_at: plan.trial_ends_at.map(|at| at.to_string()),
    }
}

/// What a tenant keeps of what its plan counts.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CountsOut {
    users: u64,
    api_keys: u64,
    instances: u64,
    indicators: u64,
}

/// One day's use.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct UsageDayOut {
    /// `YYYY-MM-DD`, UTC.
    day: String,
    events: u64,
    runs: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Usage)]
pub(crate) struct UsageOut {
    tenant_id: String,
    plan: PlanOut,
    /// The trial ended: the tenant may read, not write.
    read_only: bool,
    counts: CountsOut,
    /// Oldest first; days without use are absent.
    days: Vec<UsageDayOut>,
}

fn usage_out(usage: &Usage) -> UsageOut {
    let count = |c: Counted| {
        usage
            .counts
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, n)| *n)
    };
    let mut days: Vec<UsageDayOut> = Vec::new();
    for used in &usage.days {
        let date = used.day.date();
        if days.last().is_none_or(|d| d.day != date) {
            days.push(UsageDayOut {
                day: date,
                events: 0,
                runs: 0,
            });
        }
        if let Some(day) = days.last_mut() {
            match used.meter {
                vigil_domain::Meter::Events => day.events = used.count,
                vigil_domain::Meter::Runs => day.runs = used.count,
            }
        }
    }
    UsageOut {
        tenant_id: usage.tenant.to_string(),
        plan: plan_out(&usage.plan),
        read_only: usage.read_only,
        counts: CountsOut {
            users: count(Counted::Users),
            api_keys: count(Counted::ApiKeys),
            instances: count(Counted::Instances),
            indicators: count(Counted::Indicators),
        },
        days,
    }
}

/// How many days of usage to answer.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// 1 to 366 (default 30), ending today (UTC).
    #[param(schema_with = crate::schema::usage_days)]
    days: Option<String>,
}

fn days(query: &UsageQuery) -> Result<u32, ApiError> {
    match query.days.as_deref() {
        None => Ok(30),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=vigil_service::USAGE_DAYS_MAX).contains(d))
            .ok_or_else(|| ApiError::invalid("days", "1 to 366")),
    }
}

/// Set a tenant's plan (platform admins).
#[utoipa::path(put, path = "/api/v1/tenants/{id}/plan", tag = "tenants", operation_id = "setPlan",
    params(IdPath, ReasonHeader), request_body = PlanIn,
    responses((status = 200, description = "the plan", body = PlanOut)))]
pub(crate) async fn set(
    State(state): State<AppState>,
    Authorized(principal, _): Authorized<ManageTenants>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlanIn>,
) -> Result<Json<PlanOut>, ApiError> {
    let tenant = path_id(&id, TenantId::parse)?;
    let plan = Plan {
        users_max: limit("users_max", body.users_max.as_ref())?,
        api_keys_max: limit("api_keys_max", body.api_keys_max.as_ref())?,
        instances_max: limit("instances_max", body.instances_max.as_ref())?,
        indicators_max: limit("indicators_max", body.indicators_max.as_ref())?,
        events_per_day: limit("events_per_day", body.events_per_day.as_ref())?,
        runs_per_day: limit("runs_per_day", body.runs_per_day.as_ref())?,
        trial_ends_at: body
            .trial_ends_at
            .as_deref()
            .map(Timestamp::parse)
            .transpose()
            .map_err(|err| ApiError::invalid("trial_ends_at", err.reason()))?,
    };
    let plan = state.services.set_plan(&principal, tenant, plan).await?;
    Ok(Json(plan_out(&plan)))
}

/// A tenant's plan, counts and daily usage (platform admins).
#[utoipa::path(get, path = "/api/v1/tenants/{id}/usage", tag = "tenants", operation_id = "tenantUsage",
    params(IdPath, UsageQuery), responses((status = 200, description = "plan and usage", body = UsageOut)))]
pub(crate) async fn tenant_usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageOut>, ApiError> {
    let tenant = path_id(&id, TenantId::parse)?;
    let usage = state
        .services
        .usage(&principal, Some(tenant), days(&query)?)
        .await?;
    Ok(Json(usage_out(&usage)))
}

/// The caller's tenant's plan, counts and daily usage.
#[utoipa::path(get, path = "/api/v1/usage", tag = "tenants", operation_id = "usage",
    params(UsageQuery), responses((status = 200, description = "plan and usage", body = UsageOut)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageOut>, ApiError> {
    let usage = state
        .services
        .usage(&principal, None, days(&query)?)
        .await?;
    Ok(Json(usage_out(&usage)))
}
