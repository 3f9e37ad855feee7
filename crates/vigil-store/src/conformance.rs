//! The one story every backend must tell the same way. Each backend's tests call `story`
//! on a fresh, migrated store; it exercises every repository method and panics with a
//! message naming the broken expectation.

use vigil_domain::{
    ChainVerifier, Email, ExternalId, Level, NewRisk, PageRequest, Risk, RiskFilter, RiskPatch,
    RiskStatus, RiskTitle, Role, SessionId, Sha256Hex, Slug, Source, Tag, Tags, TenantId,
    TenantName, Timestamp, Tlp, UserId,
};

use crate::{
    AuditFilter, Change, NewApiKey, NewSession, NewUser, Scope, Session, Store, StoreError, User,
    UserEdit,
};

/// Runs every part of the story, in order, on one store.
pub async fn story(store: &dyn Store) {
    store.ping().await.expect("ping");
    assert!(store.pool_stats().max >= 1, "pool_stats reports a maximum");
    let (acme, globex) = tenants(store).await;
    api_keys(store, acme, globex).await;
    users_and_sessions(store, acme, globex).await;
    user_lifecycle(store, acme, globex).await;
    risks(store, acme, globex).await;
    audit(store, acme, globex).await;
    crate::conformance_ioc::story(store, acme, globex).await;
    crate::conformance_automation::story(store, acme, globex).await;
    crate::conformance_runs::story(store, acme, globex).await;
    crate::conformance_plans::story(store, acme, globex).await;
}

fn change() -> Change {
    Change::by("conformance").because(Some("story".into()))
}

async fn tenants(store: &dyn Store) -> (TenantId, TenantId) {
    let slug = Slug::parse("acme").unwrap();
    let acme = store
        .create_tenant(&change(), &slug, &TenantName::parse("Acme").unwrap())
        .await
        .unwrap();
    let globex = store
        .create_tenant(
            &change(),
            &Slug::parse("globex").unwrap(),
            &TenantName::parse("Globex").unwrap(),
        )
        .await
        .unwrap();
    let taken = store
        .create_tenant(&change(), &slug, &TenantName::parse("Again").unwrap())
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "duplicate slug is a conflict: {taken:?}"
    );

    assert_eq!(store.get_tenant(acme.id).await.unwrap(), acme);
    assert_eq!(
        store.find_tenant_by_slug(&slug).await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        store
            .find_tenant_by_slug(&Slug::parse("initech").unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.get_tenant(TenantId::generate()).await,
        Err(StoreError::NotFound)
    ));

    let first = store.list_tenants(PageRequest::first(1)).await.unwrap();
    assert_eq!(first.items, vec![globex.clone()], "newest tenant first");
    let second = store
        .list_tenants(PageRequest::new(Some(1), first.next_cursor))
        .await
        .unwrap();
    assert_eq!(second.items, vec![acme.clone()]);
    assert_eq!(second.next_cursor, None);
    (acme.id, globex.id)
}

fn new_key(name: &str, role: Role, expires_at: Option<Timestamp>) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        role,
        prefix: format!("vgl_{name}"),
        hash: Sha256Hex::digest(name.as_bytes()),
        expires_at,
    }
}

async fn api_keys(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let now = Timestamp::now();
    let platform = store
        .create_api_key(
            Scope::Platform,
            &change(),
            new_key("root", Role::PlatformAdmin, None),
        )
        .await
        .unwrap();
    assert_eq!(platform.tenant_id, None);
    assert_eq!(store.count_usable_platform_keys(now).await.unwrap(), 1);

    let expired = new_key("old", Role::PlatformAdmin, Some(now.plus_seconds(-60)));
    store
        .create_api_key(Scope::Platform, &change(), expired)
        .await
        .unwrap();
    assert_eq!(
        store.count_usable_platform_keys(now).await.unwrap(),
        1,
        "expired keys do not count"
    );

    tenant_keys(store, acme, globex).await;
}

async fn tenant_keys(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let key = store
        .create_api_key(
            Scope::Tenant(acme),
            &change(),
            new_key("acme-admin", Role::TenantAdmin, None),
        )
        .await
        .unwrap();
    assert_eq!(key.tenant_id, Some(acme));
    let found = store
        .unchecked_find_api_key_by_hash(&key.hash)
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&key));
    assert!(
        store
            .unchecked_find_api_key_by_hash(&Sha256Hex::digest(b"nope"))
            .await
            .unwrap()
            .is_none()
    );

    let listed = store
        .list_api_keys(Scope::Tenant(acme), PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![key.clone()]);
    let platform_keys = store
        .list_api_keys(Scope::Platform, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(
        platform_keys.items.len(),
        2,
        "platform keys are listed apart from tenant keys"
    );
    assert!(
        store
            .list_api_keys(Scope::Tenant(globex), PageRequest::first(50))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let other = store
        .revoke_api_key(Scope::Tenant(globex), &change(), key.id)
        .await;
    assert!(
        matches!(other, Err(StoreError::NotFound)),
        "another tenant cannot revoke: {other:?}"
    );
    let revoked = store
        .revoke_api_key(Scope::Tenant(acme), &change(), key.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_usable(Timestamp::now()));
    let again = store
        .revoke_api_key(Scope::Tenant(acme), &change(), key.id)
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at, revoked.revoked_at,
        "second revocation keeps the first time"
    );
}

async fn users_and_sessions(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let email = Email::parse("ana@acme.example").unwrap();
    let new_user = || NewUser {
        email: email.clone(),
        role: Role::Analyst,
        password_hash: "$argon2id$stub".into(),
    };
    let user = store
        .create_user(Scope::Tenant(acme), &change(), new_user())
        .await
        .unwrap();
    let taken = store
        .create_user(Scope::Tenant(acme), &change(), new_user())
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "duplicate e-mail: {taken:?}"
    );
    store
        .create_user(Scope::Tenant(globex), &change(), new_user())
        .await
        .expect("same e-mail in another tenant");

    assert_eq!(
        store.get_user(Scope::Tenant(acme), user.id).await.unwrap(),
        user
    );
    assert!(matches!(
        store.get_user(Scope::Tenant(globex), user.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .find_user_by_email(Scope::Tenant(acme), &email)
            .await
            .unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store
            .find_user_by_email(Scope::Platform, &email)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_users(Scope::Tenant(acme), PageRequest::first(10))
            .await
            .unwrap()
            .items,
        vec![user.clone()]
    );

    sessions(store, acme, globex, user).await;
}

/// Disable, enable, password reset and delete: each but enable revokes the user's sessions,
/// each is audited, another tenant cannot touch the user.
async fn user_lifecycle(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let scope = Scope::Tenant(acme);
    let new = NewUser {
        email: Email::parse("bo@acme.example").unwrap(),
        role: Role::Viewer,
        password_hash: "$argon2id$first".into(),
    };
    let user = store.create_user(scope, &change(), new).await.unwrap();
    let first = user_session(store, scope, &user, 1).await;
    let second = user_session(store, scope, &user, 2).await;
    let foreign = store
        .edit_user(Scope::Tenant(globex), &change(), user.id, UserEdit::Disable)
        .await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");

    let disabled = store
        .edit_user(scope, &change(), user.id, UserEdit::Disable)
        .await
        .unwrap();
    assert!(disabled.disabled_at.is_some());
    assert_eq!(store.get_user(scope, user.id).await.unwrap(), disabled);
    for s in [&first, &second] {
        let after = store.get_session(scope, s.id).await.unwrap();
        assert!(
            after.revoked_at.is_some(),
            "disabling revokes every session"
        );
    }
    let trail = user_trail(store, acme, &user).await;
    assert_eq!(trail[0].fields.action, "user.disable");
    let after = trail[0].fields.after.as_deref().unwrap_or_default();
    assert!(after.contains("\"sessions_revoked\":2"), "{after}");
    user_reset_and_delete(store, acme, user).await;
}

async fn user_reset_and_delete(store: &dyn Store, acme: TenantId, user: User) {
    let scope = Scope::Tenant(acme);
    let enabled = store
        .edit_user(scope, &change(), user.id, UserEdit::Enable)
        .await
        .unwrap();
    assert_eq!(enabled.disabled_at, None);
    let third = user_session(store, scope, &user, 3).await;
    let reset = UserEdit::SetPassword("$argon2id$second".into());
    let changed = store
        .edit_user(scope, &change(), user.id, reset)
        .await
        .unwrap();
    assert_eq!(changed.password_hash, "$argon2id$second");
    let third_after = store.get_session(scope, third.id).await.unwrap();
    assert!(third_after.revoked_at.is_some(), "a reset revokes sessions");

    store
        .edit_user(scope, &change(), user.id, UserEdit::Delete)
        .await
        .unwrap();
    assert!(matches!(
        store.get_user(scope, user.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_session(scope, third.id).await,
        Err(StoreError::NotFound)
    ));
    let trail = user_trail(store, acme, &user).await;
    let actions: Vec<&str> = trail.iter().map(|e| e.fields.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.delete",
            "user.password_reset",
            "user.enable",
            "user.disable",
            "user.create"
        ],
        "the trail keeps a deleted user's history"
    );
    assert!(
        !trail
            .iter()
            .any(|e| format!("{:?}", e.fields.after).contains("argon2id")),
        "no hash in the trail"
    );
}

async fn user_session(store: &dyn Store, scope: Scope, user: &User, n: u8) -> Session {
    let new = NewSession {
        id: SessionId::generate(),
        user_id: user.id,
        role: user.role,
        refresh_hash: Sha256Hex::digest(&[n]),
        expires_at: Timestamp::now().plus_seconds(3600),
    };
    store.create_session(scope, &change(), new).await.unwrap()
}

async fn user_trail(
    store: &dyn Store,
    acme: TenantId,
    user: &User,
) -> Vec<vigil_domain::AuditEvent> {
    let filter = AuditFilter {
        entity_id: Some(user.id.to_string()),
        ..AuditFilter::default()
    };
    store
        .list_audit(acme, &filter, PageRequest::first(10))
        .await
        .unwrap()
        .items
}

async fn sessions(store: &dyn Store, acme: TenantId, globex: TenantId, user: User) {
    let now = Timestamp::now();
    let first_hash = Sha256Hex::digest(b"refresh-1");
    let session = store
        .create_session(
            Scope::Tenant(acme),
            &change(),
            NewSession {
                id: SessionId::generate(),
                user_id: user.id,
                role: user.role,
                refresh_hash: first_hash.clone(),
                expires_at: now.plus_seconds(3600),
            },
        )
        .await
        .unwrap();
    assert!(session.is_live(now));
    assert_eq!(
        store
            .get_session(Scope::Tenant(acme), session.id)
            .await
            .unwrap(),
        session
    );
    assert!(matches!(
        store.get_session(Scope::Tenant(globex), session.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.unchecked_get_session(session.id).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store
            .unchecked_get_session(SessionId::generate())
            .await
            .unwrap(),
        None
    );

    rotation(store, acme, &session, &first_hash).await;
    session_admin(store, (acme, globex), &session, now, first_hash).await;
}

/// A refresh token is traded once; the old hash is remembered.
async fn rotation(store: &dyn Store, acme: TenantId, session: &Session, first_hash: &Sha256Hex) {
    let next_hash = Sha256Hex::digest(b"refresh-2");
    let rotated = store
        .rotate_session(
            Scope::Tenant(acme),
            &change(),
            session.id,
            first_hash,
            &next_hash,
        )
        .await
        .unwrap();
    assert_eq!(rotated.refresh_hash, next_hash);
    assert_eq!(
        rotated.previous_refresh_hash,
        Some(first_hash.clone()),
        "rotation remembers the old hash"
    );
    assert_eq!(
        store.unchecked_get_session(session.id).await.unwrap(),
        Some(rotated.clone())
    );
    let reused = store
        .rotate_session(
            Scope::Tenant(acme),
            &change(),
            session.id,
            first_hash,
            &Sha256Hex::digest(b"x"),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::Conflict(_))),
        "a used refresh hash is a conflict: {reused:?}"
    );
}

/// What admins do to a session: move its expiry, list, revoke; and a session needs a user.
async fn session_admin(
    store: &dyn Store,
    (acme, globex): (TenantId, TenantId),
    session: &Session,
    now: Timestamp,
    first_hash: Sha256Hex,
) {
    let later = now.plus_seconds(60);
    let moved = store
        .set_session_expiry(Scope::Tenant(acme), &change(), session.id, later)
        .await
        .unwrap();
    assert_eq!(moved.expires_at, later);
    let listed = store
        .list_sessions(Scope::Tenant(acme), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![moved.clone()]);
    let revoked = store
        .revoke_session(Scope::Tenant(acme), &change(), session.id)
        .await
        .unwrap();
    assert!(!revoked.is_live(now));
    assert!(matches!(
        store
            .revoke_session(Scope::Tenant(globex), &change(), session.id)
            .await,
        Err(StoreError::NotFound)
    ));
    let missing_user = store
        .create_session(
            Scope::Tenant(acme),
            &change(),
            NewSession {
                id: SessionId::generate(),
                user_id: UserId::generate(),
                role: Role::Viewer,
                refresh_hash: first_hash,
                expires_at: now,
            },
        )
        .await;
    assert!(
        matches!(missing_user, Err(StoreError::Conflict(_))),
        "a session needs an existing user: {missing_user:?}"
    );
}

fn new_risk(title: &str, impact: i64, probability: i64) -> NewRisk {
    NewRisk::new(
        RiskTitle::parse(title).unwrap(),
        Level::parse("impact", impact).unwrap(),
        Level::parse("probability", probability).unwrap(),
    )
}

async fn seed_risks(store: &dyn Store, acme: TenantId) -> Vec<Risk> {
    let mut created = Vec::new();
    for i in 0..7_i64 {
        let mut risk = new_risk(&format!("Risk {i} on the VPN"), i % 5 + 1, 3);
        risk.tags = Tags::parse(if i % 2 == 0 {
            vec!["pci", "net"]
        } else {
            vec!["net"]
        })
        .unwrap();
        risk.status = if i == 6 {
            RiskStatus::Closed
        } else {
            RiskStatus::Open
        };
        risk.description = (i == 3)
            .then(|| vigil_domain::BoundedText::description("Legacy Fortinet box").unwrap());
        let risk = if i < 3 {
            let source = Source::parse("thehive").unwrap();
            risk.with_source(
                Some(source),
                Some(ExternalId::parse(&format!("~{i}")).unwrap()),
            )
            .unwrap()
        } else {
            risk
        };
        created.push(store.create_risk(acme, &change(), risk).await.unwrap());
    }
    created
}

async fn risks(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let created = seed_risks(store, acme).await;
    let duplicate = new_risk("Again", 1, 1)
        .with_source(
            Some(Source::parse("thehive").unwrap()),
            Some(ExternalId::parse("~0").unwrap()),
        )
        .unwrap();
    let head_before = store.audit_head(acme).await.unwrap();
    let conflict = store.create_risk(acme, &change(), duplicate.clone()).await;
    assert_eq!(
        store.audit_head(acme).await.unwrap(),
        head_before,
        "a refused change writes no audit event"
    );
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "duplicate external id: {conflict:?}"
    );
    store
        .create_risk(globex, &change(), duplicate)
        .await
        .expect("same external id in another tenant");

    let first = &created[0];
    assert_eq!(store.get_risk(acme, first.id).await.unwrap(), *first);
    assert!(matches!(
        store.get_risk(globex, first.id).await,
        Err(StoreError::NotFound)
    ));

    check_filters(store, acme, &created).await;

    let patch = RiskPatch {
        status: Some(RiskStatus::Mitigating),
        owner: Some(Some(vigil_domain::BoundedText::owner("Bea").unwrap())),
        tlp: Some(Tlp::Red),
        ..RiskPatch::default()
    };
    assert!(matches!(
        store
            .update_risk(globex, &change(), first.id, patch.clone())
            .await,
        Err(StoreError::NotFound)
    ));
    let updated = store
        .update_risk(acme, &change(), first.id, patch)
        .await
        .unwrap();
    assert_eq!(updated.status, RiskStatus::Mitigating);
    assert_eq!(updated.tlp, Tlp::Red);
    assert_eq!(updated.title, first.title);
    assert!(updated.updated_at >= first.updated_at);
    assert_eq!(store.get_risk(acme, first.id).await.unwrap(), updated);

    assert!(matches!(
        store.delete_risk(globex, &change(), first.id).await,
        Err(StoreError::NotFound)
    ));
    store.delete_risk(acme, &change(), first.id).await.unwrap();
    assert!(matches!(
        store.get_risk(acme, first.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_risk(acme, &change(), first.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn check_filters(store: &dyn Store, acme: TenantId, created: &[Risk]) {
    let filters = [
        RiskFilter::default(),
        RiskFilter {
            status: Some(RiskStatus::Closed),
            ..RiskFilter::default()
        },
        RiskFilter {
            source: Some(Source::parse("thehive").unwrap()),
            ..RiskFilter::default()
        },
        RiskFilter {
            min_score: Some(12),
            ..RiskFilter::default()
        },
        RiskFilter {
            tag: Some(Tag::parse("pci").unwrap()),
            ..RiskFilter::default()
        },
        RiskFilter {
            text: Some("fortinet".into()),
            ..RiskFilter::default()
        },
        RiskFilter {
            text: Some("RISK 5".into()),
            ..RiskFilter::default()
        },
        RiskFilter {
            text: Some("100%_".into()),
            ..RiskFilter::default()
        },
        RiskFilter {
            tag: Some(Tag::parse("net").unwrap()),
            min_score: Some(6),
            ..RiskFilter::default()
        },
    ];
    for filter in filters {
        let mut expected: Vec<Risk> = created
            .iter()
            .filter(|risk| filter.matches(risk))
            .cloned()
            .collect();
        expected.reverse();
        let mut seen = Vec::new();
        let mut page = PageRequest::first(2);
        loop {
            let got = store.list_risks(acme, &filter, page).await.unwrap();
            assert!(got.items.len() <= 2);
            seen.extend(got.items);
            match got.next_cursor {
                Some(cursor) => page = PageRequest::new(Some(2), Some(cursor)),
                None => break,
            }
        }
        assert_eq!(
            seen, expected,
            "list_risks with {filter:?}, paged by 2, newest first"
        );
    }
}

async fn audit(store: &dyn Store, acme: TenantId, globex: TenantId) {
    for chain in [TenantId::PLATFORM_CHAIN, acme, globex] {
        let head = store
            .audit_head(chain)
            .await
            .unwrap()
            .expect("every chain here has events");
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        loop {
            let events = store.audit_chain_after(chain, after, 3).await.unwrap();
            let Some(last) = events.last() else { break };
            after = last.seq;
            events.iter().for_each(|event| verifier.push(event));
            assert!(
                events.iter().all(|event| event.fields.tenant_id == chain),
                "events stay in their chain"
            );
        }
        let report = verifier.finish(Some(&head));
        assert!(report.ok(), "chain {chain} verifies: {:?}", report.breaks);
        assert_eq!(report.n_events, u64::try_from(head.seq).unwrap());
    }

    audit_lists(store, acme, globex).await;
}

async fn audit_lists(store: &dyn Store, acme: TenantId, globex: TenantId) {
    let platform = store
        .list_audit(
            TenantId::PLATFORM_CHAIN,
            &AuditFilter::default(),
            PageRequest::first(500),
        )
        .await
        .unwrap();
    assert!(
        platform
            .items
            .iter()
            .any(|event| event.fields.action == "tenant.create")
    );

    let risk_events = AuditFilter {
        entity_type: Some("risk".into()),
        ..AuditFilter::default()
    };
    let page = store
        .list_audit(acme, &risk_events, PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(
        page.items.windows(2).all(|pair| pair[0].seq > pair[1].seq),
        "newest first"
    );
    let newest = &page.items[0];
    assert_eq!(newest.fields.action, "risk.delete");
    assert_eq!(newest.fields.actor, "conformance");
    assert_eq!(newest.fields.reason.as_deref(), Some("story"));
    assert!(newest.fields.before.is_some() && newest.fields.after.is_none());

    let one_entity = AuditFilter {
        entity_id: Some(newest.fields.entity_id.clone()),
        ..AuditFilter::default()
    };
    let history = store
        .list_audit(acme, &one_entity, PageRequest::first(50))
        .await
        .unwrap();
    let actions: Vec<&str> = history
        .items
        .iter()
        .map(|event| event.fields.action.as_str())
        .collect();
    assert_eq!(actions, ["risk.delete", "risk.update", "risk.create"]);
    let rest = store
        .list_audit(
            acme,
            &risk_events,
            PageRequest::new(Some(500), page.next_cursor),
        )
        .await
        .unwrap();
    assert!(
        rest.items.iter().all(|event| event.seq < page.items[2].seq),
        "the cursor continues the list"
    );

    let leaked = store
        .list_audit(globex, &one_entity, PageRequest::first(50))
        .await
        .unwrap();
    assert!(leaked.items.is_empty(), "globex sees none of acme's events");
    data_only_leaves_out_access_events(store, acme).await;
}

/// `data_only` hides tenants, keys, users, sessions and connectors, and nothing else.
async fn data_only_leaves_out_access_events(store: &dyn Store, acme: TenantId) {
    let all = store
        .list_audit(acme, &AuditFilter::default(), PageRequest::first(500))
        .await
        .unwrap();
    let is_access = |t: &str| crate::audit::ACCESS_ENTITY_TYPES.contains(&t);
    assert!(
        all.items.iter().any(|e| is_access(&e.fields.entity_type)),
        "the story wrote access events"
    );
    let data_only = AuditFilter {
        data_only: true,
        ..AuditFilter::default()
    };
    let data = store
        .list_audit(acme, &data_only, PageRequest::first(500))
        .await
        .unwrap();
    let expected: Vec<i64> = all
        .items
        .iter()
        .filter(|e| !is_access(&e.fields.entity_type))
        .map(|e| e.seq)
        .collect();
    let got: Vec<i64> = data.items.iter().map(|e| e.seq).collect();
    assert_eq!(got, expected);
}
