//! The plans part of the conformance story: a tenant without a plan has no limits, a plan
//! reads back as set and is audited, a meter moves only within its limit, usage reads back
//! by day, and the counts agree with the lists.

use vigil_domain::{Counted, Day, Meter, PageRequest, Plan, TenantId, Timestamp};

use crate::{AuditFilter, Change, Scope, Store, StoreError};

pub(crate) async fn story(store: &dyn Store, acme: TenantId, globex: TenantId) {
    assert_eq!(store.get_plan(acme).await.unwrap(), Plan::default());
    let plan = Plan {
        users_max: Some(5),
        api_keys_max: Some(3),
        instances_max: None,
        indicators_max: Some(1_000_000),
        events_per_day: Some(10),
        runs_per_day: Some(0),
        trial_ends_at: Some(Timestamp::from_unix_micros(1_800_000_000_000_000)),
    };
    store
        .set_plan(acme, &Change::by("conformance"), &plan)
        .await
        .unwrap();
    assert_eq!(store.get_plan(acme).await.unwrap(), plan);
    assert_eq!(
        store.get_plan(globex).await.unwrap(),
        Plan::default(),
        "per tenant"
    );
    assert!(matches!(
        store
            .set_plan(TenantId::generate(), &Change::by("conformance"), &plan)
            .await,
        Err(StoreError::NotFound)
    ));
    let filter = AuditFilter {
        entity_type: Some("plan".into()),
        ..AuditFilter::default()
    };
    let trail = store
        .list_audit(acme, &filter, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(trail.items[0].fields.action, "plan.set");

    let day = Day::of(Timestamp::now());
    let meter = |n, limit| store.meter(acme, day, Meter::Events, n, limit);
    assert!(meter(6, Some(10)).await.unwrap());
    assert!(meter(4, Some(10)).await.unwrap(), "up to the limit itself");
    assert!(!meter(1, Some(10)).await.unwrap(), "not one past it");
    assert!(meter(1, None).await.unwrap(), "no limit, no refusal");
    assert!(
        store
            .meter(acme, day.plus(-1), Meter::Runs, 2, None)
            .await
            .unwrap()
    );
    let used = store.usage(acme, day.plus(-1), day).await.unwrap();
    let used: Vec<(i64, Meter, u64)> = used
        .iter()
        .map(|u| (u.day.number() - day.number(), u.meter, u.count))
        .collect();
    assert_eq!(used, [(-1, Meter::Runs, 2), (0, Meter::Events, 11)]);
    assert!(store.usage(globex, day, day).await.unwrap().is_empty());
    assert!(
        store
            .meter(globex, day, Meter::Events, 4, None)
            .await
            .unwrap()
    );
    let totals = store.usage_totals(day).await.unwrap();
    assert_eq!(totals, [(Meter::Events, 15)], "every tenant's use, summed");

    counts(store, acme).await;
}

async fn counts(store: &dyn Store, acme: TenantId) {
    let now = Timestamp::now();
    let keys = store
        .list_api_keys(Scope::Tenant(acme), PageRequest::first(500))
        .await
        .unwrap();
    let usable = keys
        .items
        .iter()
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|at| at > now))
        .count();
    assert_eq!(
        store.count(acme, Counted::ApiKeys).await.unwrap(),
        usable as u64
    );
    let users = store
        .list_users(Scope::Tenant(acme), PageRequest::first(500))
        .await
        .unwrap();
    assert_eq!(
        store.count(acme, Counted::Users).await.unwrap(),
        users.items.len() as u64
    );
    let instances = store
        .list_instances(acme, PageRequest::first(500))
        .await
        .unwrap();
    assert_eq!(
        store.count(acme, Counted::Instances).await.unwrap(),
        instances.items.len() as u64
    );
    let indicators = store
        .list_indicators(
            acme,
            &vigil_domain::IndicatorFilter::default(),
            PageRequest::first(500),
        )
        .await
        .unwrap();
    assert!(
        indicators.next_cursor.is_none(),
        "the story keeps fewer than a page"
    );
    assert_eq!(
        store.count(acme, Counted::Indicators).await.unwrap(),
        indicators.items.len() as u64
    );
}
