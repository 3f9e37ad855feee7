//! The IOC part of the conformance story: findings, the catalogue, telemetry and matches.

use vigil_domain::{
    ClientEventId, Confidence, EventType, ExternalId, FindingFilter, FindingId, FindingPatch,
    FindingStatus, IndicatorFilter, IndicatorKind, IndicatorPatch, IndicatorValue, MatchField,
    MatchFilter, NewEvent, NewFinding, NewIndicator, NewMatch, NewSuppression, PageRequest,
    ReopenCause, RiskTitle, Severity, Source, SourceState, TenantId, Timestamp,
};

use crate::{AuditFilter, Change, ImportCounts, Store, StoreError};

fn change() -> Change {
    Change::by("conformance").because(Some("ioc story".into()))
}

pub(crate) async fn story(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let finding = findings(store, acme, globex).await;
    catalogue(store, acme, globex, finding).await;
    imports(store, acme).await;
    suppressions(store, acme, globex).await;
    telemetry(store, acme, globex, finding).await;
    connectors(store, acme, globex).await;
    sync(store, acme, globex).await;
}

fn synced(id: &str, title: &str) -> vigil_domain::SyncedRisk {
    vigil_domain::SyncedRisk {
        source: Source::parse("openrmf").unwrap(),
        external_id: ExternalId::parse(id).unwrap(),
        title: RiskTitle::parse(title).unwrap(),
        description: None,
        impact: vigil_domain::Level::parse("impact", 4).unwrap(),
        probability: vigil_domain::Level::parse("probability", 4).unwrap(),
        status: vigil_domain::RiskStatus::Open,
        tags: vigil_domain::Tags::parse(["INCIDENT"]).unwrap(),
        tlp: vigil_domain::Tlp::Amber,
        source_state: vigil_domain::SourceState::Present,
    }
}

async fn sync(store: &dyn Store, acme: TenantId, globex: TenantId) {
    use crate::SyncOutcome::{Created, NotTracked, Unchanged, Updated};
    let page = vec![
        synced("case-1", "[INCIDENT] one"),
        synced("case-2", "[INCIDENT] two"),
    ];
    let mut closed = synced("case-0", "[INCIDENT] closed before Vigil saw it");
    closed.status = vigil_domain::RiskStatus::Closed;
    let first = store
        .sync_risks(acme, &change(), [vec![closed], page.clone()].concat())
        .await
        .unwrap();
    assert_eq!(
        first,
        [NotTracked, Created, Created],
        "closed upstream and untracked: not created"
    );
    let head = store.audit_head(acme).await.unwrap();
    assert_eq!(
        store
            .sync_risks(acme, &change(), page.clone())
            .await
            .unwrap(),
        [Unchanged, Unchanged]
    );
    assert_eq!(
        store.audit_head(acme).await.unwrap(),
        head,
        "no audit noise when unchanged"
    );
    let mut moved = page;
    moved[1].status = vigil_domain::RiskStatus::Closed;
    assert_eq!(
        store.sync_risks(acme, &change(), moved).await.unwrap(),
        [Unchanged, Updated]
    );
    let other = store
        .sync_risks(globex, &change(), vec![synced("case-1", "B's")])
        .await
        .unwrap();
    assert_eq!(other, [Created], "external ids are per tenant");
    sync_deletions(store, acme, globex).await;
    sync_cursors(store, acme, globex).await;
    dead_letters(store, acme, globex).await;
}

async fn dead_letters(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let hive = vigil_domain::ConnectorName::parse("hive").unwrap();
    let letter = |error: &str| {
        vigil_domain::DeadLetter::new(
            acme,
            hive.clone(),
            "~9".into(),
            error,
            r#"{"_id":"~9","severity":7}"#.into(),
            Timestamp::now(),
        )
    };
    let first = store
        .record_dead_letter(acme, letter("severity 7"))
        .await
        .unwrap();
    assert_eq!(first.attempts, 1);
    let again = store
        .record_dead_letter(acme, letter("severity 7 again"))
        .await
        .unwrap();
    assert_eq!(
        (again.id, again.attempts),
        (first.id, 2),
        "one letter per record"
    );
    assert_eq!(again.error, "severity 7 again");
    let listed = store
        .list_dead_letters(acme, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![again.clone()]);
    assert!(
        store
            .list_dead_letters(globex, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store.get_dead_letter(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.get_dead_letter(acme, first.id).await.unwrap(), again);
    assert!(matches!(
        store.delete_dead_letter(globex, first.id).await,
        Err(StoreError::NotFound)
    ));
    store.delete_dead_letter(acme, first.id).await.unwrap();
    assert!(matches!(
        store.delete_dead_letter(acme, first.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn sync_deletions(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let source = Source::parse("openrmf").unwrap();
    let mut present = store.present_external_ids(acme, &source).await.unwrap();
    present.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        present,
        [
            ExternalId::parse("case-1").unwrap(),
            ExternalId::parse("case-2").unwrap()
        ]
    );
    let gone = vec![ExternalId::parse("case-1").unwrap()];
    assert_eq!(
        store
            .close_upstream(acme, &change(), &source, gone.clone(), SourceState::Deleted)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .close_upstream(acme, &change(), &source, gone, SourceState::Deleted)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .present_external_ids(acme, &source)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .present_external_ids(globex, &source)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(closed_with(store, acme, SourceState::Deleted).await);
    below_threshold_closes(store, acme, &source).await;
}

/// A record below its connector's threshold closes its risk but is not gone.
async fn below_threshold_closes(store: &dyn Store, acme: TenantId, source: &Source) {
    let below = vec![ExternalId::parse("case-2").unwrap()];
    let changed = store
        .close_upstream(acme, &change(), source, below, SourceState::BelowThreshold)
        .await
        .unwrap();
    assert_eq!(changed, 1, "a record below the threshold closes its risk");
    let still_there = store.present_external_ids(acme, source).await.unwrap();
    assert_eq!(
        still_there,
        [ExternalId::parse("case-2").unwrap()],
        "below the threshold is not deleted: the deletion reconciliation still sees it"
    );
    assert!(closed_with(store, acme, SourceState::BelowThreshold).await);
}

/// Whether some closed risk of the tenant carries `state`.
async fn closed_with(store: &dyn Store, acme: TenantId, state: SourceState) -> bool {
    let filter = vigil_domain::RiskFilter {
        status: Some(vigil_domain::RiskStatus::Closed),
        ..Default::default()
    };
    let closed = store
        .list_risks(acme, &filter, PageRequest::first(10))
        .await
        .unwrap();
    closed
        .items
        .iter()
        .any(|risk| risk.source_state == Some(state))
}

async fn sync_cursors(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let hive = vigil_domain::ConnectorName::parse("hive").unwrap();
    assert_eq!(store.sync_cursor(acme, &hive).await.unwrap(), None);
    store
        .set_sync_cursor(acme, &hive, "1700000000000")
        .await
        .unwrap();
    store
        .set_sync_cursor(acme, &hive, "1700000000001")
        .await
        .unwrap();
    assert_eq!(
        store.sync_cursor(acme, &hive).await.unwrap().as_deref(),
        Some("1700000000001")
    );
    assert_eq!(store.sync_cursor(globex, &hive).await.unwrap(), None);
}

fn connector(name: &str, url: &str) -> vigil_domain::Connector {
    vigil_domain::Connector {
        tenant_id: TenantId::PLATFORM_CHAIN,
        name: vigil_domain::ConnectorName::parse(name).unwrap(),
        kind: vigil_domain::ConnectorKind::TheHive,
        url: vigil_domain::SourceUrl::parse(url).unwrap(),
        enabled: true,
        interval: vigil_domain::SyncInterval::parse(300).unwrap(),
        threshold: Severity::High,
        options: vigil_domain::ConnectorOptions::parse([(
            "organisation".to_owned(),
            "acme".to_owned(),
        )])
        .unwrap(),
        created_at: Timestamp::from_unix_micros(0),
        updated_at: Timestamp::from_unix_micros(0),
    }
}

async fn connectors(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let hive = connector("hive", "https://hive.example");
    let name = hive.name.clone();
    let missing = store
        .put_connector(acme, &change(), hive.clone(), None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::Invalid(_))),
        "{missing:?}"
    );
    let (created, is_new) = store
        .put_connector(acme, &change(), hive.clone(), Some(vec![1, 2, 3]))
        .await
        .unwrap();
    assert!(is_new);
    assert_eq!(created.tenant_id, acme, "the tenant comes from the call");
    assert_eq!(store.get_connector(acme, &name).await.unwrap(), created);
    let moved = connector("hive", "https://hive2.example");
    let (updated, is_new) = store
        .put_connector(acme, &change(), moved, None)
        .await
        .unwrap();
    assert!(!is_new);
    assert_eq!(updated.url.as_str(), "https://hive2.example");
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(
        store.connector_credentials(acme, &name).await.unwrap(),
        [1, 2, 3],
        "kept"
    );
    store
        .put_connector(acme, &change(), hive, Some(vec![9]))
        .await
        .unwrap();
    assert_eq!(store.connector_credentials(acme, &name).await.unwrap(), [9]);
    assert!(matches!(
        store.get_connector(globex, &name).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.connector_credentials(globex, &name).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_connectors(globex).await.unwrap().is_empty());
    assert_eq!(store.list_connectors(acme).await.unwrap().len(), 1);
    let foreign = store.delete_connector(globex, &change(), &name).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    store
        .delete_connector(acme, &change(), &name)
        .await
        .unwrap();
    assert!(store.list_connectors(acme).await.unwrap().is_empty());
}

fn new_finding(title: &str, severity: Severity) -> NewFinding {
    NewFinding::new(RiskTitle::parse(title).unwrap(), severity)
}

async fn findings(store: &dyn Store, acme: TenantId, globex: TenantId) -> FindingId {
    let c2 = new_finding("Beaconing to C2", Severity::High)
        .with_source(
            Some(Source::parse("edr").unwrap()),
            Some(ExternalId::parse("edr-1").unwrap()),
        )
        .unwrap();
    let created = store
        .create_finding(acme, &change(), c2.clone())
        .await
        .unwrap();
    assert_eq!(created.status, FindingStatus::Open);
    let again = store.create_finding(acme, &change(), c2.clone()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    store
        .create_finding(globex, &change(), c2)
        .await
        .expect("external ids are per tenant");
    let low = new_finding("Port scan", Severity::Low);
    let low = store.create_finding(acme, &change(), low).await.unwrap();

    assert_eq!(store.get_finding(acme, created.id).await.unwrap(), created);
    assert!(matches!(
        store.get_finding(globex, created.id).await,
        Err(StoreError::NotFound)
    ));
    let high = FindingFilter {
        severity: Some(Severity::High),
        ..FindingFilter::default()
    };
    let listed = store
        .list_findings(acme, &high, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![created.clone()]);
    let all = store
        .list_findings(acme, &FindingFilter::default(), PageRequest::first(1))
        .await;
    let all = all.unwrap();
    assert_eq!(all.items, vec![low.clone()], "newest first");
    assert!(all.next_cursor.is_some());

    let patch = FindingPatch {
        severity: Some(Severity::Critical),
        ..FindingPatch::default()
    };
    let patched = store
        .update_finding(acme, &change(), created.id, patch)
        .await
        .unwrap();
    assert_eq!(patched.severity, Severity::Critical);
    lifecycle(store, acme, globex, created.id).await;
    created.id
}

async fn lifecycle(store: &dyn Store, acme: TenantId, globex: TenantId, id: FindingId) {
    let illegal = store
        .transition_finding(acme, &change(), id, FindingStatus::Open)
        .await;
    assert!(
        matches!(illegal, Err(StoreError::Invalid(_))),
        "open → open: {illegal:?}"
    );
    let cause = ReopenCause {
        indicator_id: vigil_domain::IndicatorId::generate(),
        event_id: vigil_domain::EventId::generate(),
        field: MatchField::parse("destination.ip").unwrap(),
        value: "203.0.113.7".into(),
    };
    let not_closed = store
        .reopen_finding(acme, &change(), id, &cause)
        .await
        .unwrap();
    assert!(!not_closed, "an open finding is not reopened");
    let closed = store
        .transition_finding(acme, &change(), id, FindingStatus::Closed)
        .await;
    assert_eq!(closed.unwrap().status, FindingStatus::Closed);
    let foreign = store.reopen_finding(globex, &change(), id, &cause).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    assert!(
        store
            .reopen_finding(acme, &change(), id, &cause)
            .await
            .unwrap()
    );
    let reopened = store.get_finding(acme, id).await.unwrap();
    assert_eq!(reopened.status, FindingStatus::InProgress);
    assert_eq!(reopened.reopen_count, 1);
    assert!(
        !store
            .reopen_finding(acme, &change(), id, &cause)
            .await
            .unwrap()
    );

    reopen_trail(store, acme, id, &cause).await;
}

async fn reopen_trail(store: &dyn Store, acme: TenantId, id: FindingId, cause: &ReopenCause) {
    let filter = AuditFilter {
        entity_type: Some("finding".into()),
        entity_id: Some(id.to_string()),
        ..AuditFilter::default()
    };
    let trail = store
        .list_audit(acme, &filter, PageRequest::first(50))
        .await
        .unwrap();
    let actions: Vec<&str> = trail
        .items
        .iter()
        .map(|e| e.fields.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "finding.reopen",
            "finding.transition",
            "finding.update",
            "finding.create"
        ],
        "one audit event per change, none for the no-op reopens"
    );
    let reopen = trail.items[0].fields.after.as_deref().unwrap();
    for part in [cause.indicator_id.to_string(), cause.event_id.to_string()] {
        assert!(
            reopen.contains(&part),
            "the reopen names its cause: {reopen}"
        );
    }
    assert!(reopen.contains("destination.ip") && reopen.contains("203.0.113.7"));
}

fn ioc(kind: IndicatorKind, raw: &str) -> NewIndicator {
    NewIndicator::new(IndicatorValue::parse(kind, raw).unwrap())
}

async fn catalogue(store: &dyn Store, acme: TenantId, globex: TenantId, finding: FindingId) {
    let version = store.catalogue_version(acme).await.unwrap();
    let mut new = ioc(IndicatorKind::Ipv4, "203.0.113.7");
    new.finding_id = Some(finding);
    let created = store
        .create_indicator(acme, &change(), new.clone())
        .await
        .unwrap();
    assert!(
        store.catalogue_version(acme).await.unwrap() > version,
        "a change bumps it"
    );
    let again = store.create_indicator(acme, &change(), new.clone()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let foreign = store.create_indicator(globex, &change(), new).await;
    assert!(
        matches!(foreign, Err(StoreError::Invalid(_))),
        "another tenant's finding cannot be named: {foreign:?}"
    );
    assert_eq!(
        store.get_indicator(acme, created.id).await.unwrap(),
        created
    );
    assert!(matches!(
        store.get_indicator(globex, created.id).await,
        Err(StoreError::NotFound)
    ));
    let by_value = IndicatorFilter {
        kind: Some(IndicatorKind::Ipv4),
        value: Some("203.0.113.7".into()),
        finding_id: None,
    };
    let listed = store
        .list_indicators(acme, &by_value, PageRequest::first(5))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![created.clone()]);
    let none = store
        .list_indicators(globex, &by_value, PageRequest::first(5))
        .await
        .unwrap();
    assert!(none.items.is_empty());

    patch_and_delete(store, acme, created).await;
}

async fn patch_and_delete(store: &dyn Store, acme: TenantId, created: vigil_domain::Indicator) {
    let patch = IndicatorPatch {
        confidence: Some(Some(Confidence::parse(90).unwrap())),
        active: Some(false),
        ..IndicatorPatch::default()
    };
    let patched = store
        .update_indicator(acme, &change(), created.id, patch)
        .await
        .unwrap();
    assert_eq!(
        (patched.confidence.map(|c| c.get()), patched.active),
        (Some(90), false)
    );
    let snapshot = store.catalogue_snapshot(acme).await.unwrap();
    assert!(
        snapshot.indicators.iter().all(|i| i.id != created.id),
        "inactive is left out"
    );
    assert_eq!(
        snapshot.version,
        store.catalogue_version(acme).await.unwrap()
    );
    store
        .delete_indicator(acme, &change(), created.id)
        .await
        .unwrap();
    let gone = store.get_indicator(acme, created.id).await;
    assert!(matches!(gone, Err(StoreError::NotFound)));
}

async fn imports(store: &dyn Store, acme: TenantId) {
    let batch = vec![
        ioc(IndicatorKind::Domain, "evil.example"),
        ioc(IndicatorKind::Md5, &"a".repeat(32)),
    ];
    let counts = store
        .import_indicators(acme, &change(), batch.clone(), "feed", None)
        .await
        .unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            created: 2,
            updated: 0,
            unchanged: 0
        }
    );
    // Past the caller's room nothing is written; refreshing what exists needs none.
    let mut more = batch.clone();
    more.push(ioc(IndicatorKind::Domain, "worse.example"));
    let refused = store
        .import_indicators(acme, &change(), more, "feed", Some(0))
        .await;
    assert!(
        matches!(refused, Err(StoreError::OverLimit { max: 0 })),
        "{refused:?}"
    );
    let version = store.catalogue_version(acme).await.unwrap();
    let same = store
        .import_indicators(acme, &change(), batch.clone(), "feed", Some(0))
        .await
        .unwrap();
    assert_eq!(
        same,
        ImportCounts {
            created: 0,
            updated: 0,
            unchanged: 2
        }
    );
    assert_eq!(
        store.catalogue_version(acme).await.unwrap(),
        version,
        "no change, no bump"
    );
    let mut changed = batch;
    changed[0].match_subdomains = true;
    let counts = store
        .import_indicators(acme, &change(), changed, "feed", None)
        .await
        .unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            created: 0,
            updated: 1,
            unchanged: 1
        }
    );
    let snapshot = store.catalogue_snapshot(acme).await.unwrap();
    let domain = snapshot
        .indicators
        .iter()
        .find(|i| i.value.as_str() == "evil.example");
    assert!(
        domain.is_some_and(|d| d.match_subdomains),
        "the update is stored"
    );
}

async fn suppressions(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let new = NewSuppression {
        value: IndicatorValue::parse(IndicatorKind::Cidr, "8.8.8.0/24").unwrap(),
        match_subdomains: false,
        reason: None,
    };
    let created = store
        .create_suppression(acme, &change(), new.clone())
        .await
        .unwrap();
    let again = store.create_suppression(acme, &change(), new).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let listed = store
        .list_suppressions(acme, PageRequest::first(5))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![created.clone()]);
    assert!(
        store
            .list_suppressions(globex, PageRequest::first(5))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let snapshot = store.catalogue_snapshot(acme).await.unwrap();
    assert_eq!(snapshot.suppressions, vec![created.clone()]);
    let foreign = store
        .delete_suppression(globex, &change(), created.id)
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)));
    store
        .delete_suppression(acme, &change(), created.id)
        .await
        .unwrap();
    assert!(
        store
            .catalogue_snapshot(acme)
            .await
            .unwrap()
            .suppressions
            .is_empty()
    );
}

fn event(client: Option<&str>, body: &str) -> NewEvent {
    NewEvent {
        client_id: client.map(|c| ClientEventId::parse(c).unwrap()),
        event_type: EventType::parse("network_connection").unwrap(),
        occurred_at: Some(Timestamp::from_unix_micros(1_700_000_000_000_000)),
        body: body.into(),
    }
}

async fn telemetry(store: &dyn Store, acme: TenantId, globex: TenantId, finding: FindingId) {
    let body = r#"{"type":"network_connection", "properties":{"dst_ip":"203.0.113.7"}}"#;
    let batch = vec![
        event(Some("a-1"), body),
        event(None, body),
        event(Some("a-1"), "{}"),
    ];
    let stored = store.insert_events(acme, batch).await.unwrap();
    assert_eq!(
        stored.iter().map(|s| s.duplicate).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(
        stored[2].id, stored[0].id,
        "a duplicate names the stored event"
    );
    let again = store
        .insert_events(acme, vec![event(Some("a-1"), body)])
        .await
        .unwrap();
    assert_eq!((again[0].id, again[0].duplicate), (stored[0].id, true));
    let other = store
        .insert_events(globex, vec![event(Some("a-1"), body)])
        .await
        .unwrap();
    assert!(!other[0].duplicate, "client ids are per tenant");

    let read = store.get_event(acme, stored[0].id).await.unwrap();
    assert_eq!(read.body, body, "stored exactly as received");
    assert!(matches!(
        store.get_event(globex, stored[0].id).await,
        Err(StoreError::NotFound)
    ));

    matches(store, acme, globex, finding, &stored).await;
}

async fn matches(
    store: &dyn Store,
    acme: TenantId,
    globex: TenantId,
    finding: FindingId,
    stored: &[crate::StoredEvent],
) {
    let hit = |event_id, reopened| NewMatch {
        indicator_id: vigil_domain::IndicatorId::generate(),
        indicator_kind: IndicatorKind::Ipv4,
        event_id,
        field: MatchField::parse("dst_ip").unwrap(),
        value: "203.0.113.7".into(),
        finding_id: Some(finding),
        reopened,
    };
    let matches = vec![hit(stored[0].id, true), hit(stored[1].id, false)];
    let recorded = store.record_matches(acme, matches).await.unwrap();
    assert_eq!(recorded.len(), 2);
    let reopens = MatchFilter {
        finding_id: Some(finding),
        reopened: Some(true),
        ..MatchFilter::default()
    };
    let listed = store
        .list_matches(acme, &reopens, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![recorded[0].clone()]);
    let by_event = MatchFilter {
        event_id: Some(stored[1].id),
        since: Some(recorded[1].matched_at),
        until: Some(recorded[1].matched_at.plus_seconds(1)),
        ..MatchFilter::default()
    };
    let listed = store
        .list_matches(acme, &by_event, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![recorded[1].clone()]);
    let first = store
        .list_matches(acme, &MatchFilter::default(), PageRequest::first(1))
        .await;
    let first = first.unwrap();
    assert_eq!(first.items, vec![recorded[1].clone()], "newest first");
    let all = MatchFilter::default();
    let foreign = store
        .list_matches(globex, &all, PageRequest::first(10))
        .await;
    assert!(
        foreign.unwrap().items.is_empty(),
        "B never sees A's matches"
    );
}
