use serde_json::{Value, json};
use vigil_domain::{
    AuditEvent, AuditEventId, AuditFields, ChainHead, Connector, Finding, Indicator, ReopenCause,
    Risk, Suppression, Tenant, TenantId, Timestamp,
};

use crate::{ApiKey, Session, User};

/// Who makes a change and why: every mutation takes one, and its audit event records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    actor: String,
    reason: Option<String>,
}

impl Change {
    /// Longest reason kept; longer ones are cut at a character boundary.
    pub const REASON_LEN_MAX: usize = 1_000;

    /// `actor` names the credential, e.g. `apikey:<id>`, `user:<id>`, `cli`, `system`.
    pub fn by(actor: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            reason: None,
        }
    }

    pub fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason.map(|reason| reason.chars().take(Self::REASON_LEN_MAX).collect());
        self
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// What an audit event says about one entity, before it is sealed into a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditDraft {
    pub fn tenant_created(tenant: &Tenant) -> Self {
        Self::new(
            "tenant.create",
            "tenant",
            tenant.id.to_string(),
            None,
            Some(tenant_json(tenant)),
        )
    }

    pub fn api_key(action: &'static str, before: Option<&ApiKey>, after: &ApiKey) -> Self {
        Self::new(
            action,
            "api_key",
            after.id.to_string(),
            before.map(api_key_json),
            Some(api_key_json(after)),
        )
    }

    pub fn user_created(user: &User) -> Self {
        Self::new(
            "user.create",
            "user",
            user.id.to_string(),
            None,
            Some(user_json(user)),
        )
    }

    /// Failed logins for one account or one client address reached their limit: further
    /// attempts are refused for `retry_after_s`. The entity is the account's e-mail or the
    /// address; an access event (see `ACCESS_ENTITY_TYPES`).
    pub fn login_throttled(limit: &'static str, key: String, retry_after_s: u64) -> Self {
        Self::new(
            "login.throttle",
            "login",
            key,
            None,
            Some(json!({"limit": limit, "retry_after_s": retry_after_s})),
        )
    }

    /// A tenant admin's change to a user (`UserEdit`): the snapshot after (none for a delete)
    /// counts the sessions it revoked; a password change shows no hash.
    pub fn user_changed(
        action: &'static str,
        before: &User,
        after: Option<&User>,
        sessions_revoked: u64,
    ) -> Self {
        let after = after.map(|user| {
            let mut snapshot = user_json(user);
            snapshot["sessions_revoked"] = json!(sessions_revoked);
            snapshot
        });
        Self::new(
            action,
            "user",
            before.id.to_string(),
            Some(user_json(before)),
            after,
        )
    }

    pub fn session(action: &'static str, before: Option<&Session>, after: &Session) -> Self {
        Self::new(
            action,
            "session",
            after.id.to_string(),
            before.map(session_json),
            Some(session_json(after)),
        )
    }

    pub fn risk(action: &'static str, before: Option<&Risk>, after: Option<&Risk>) -> Self {
        let id = after
            .or(before)
            .map(|risk| risk.id.to_string())
            .unwrap_or_default();
        Self::new(
            action,
            "risk",
            id,
            before.map(risk_json),
            after.map(risk_json),
        )
    }

    pub fn finding(action: &'static str, before: Option<&Finding>, after: &Finding) -> Self {
        Self::new(
            action,
            "finding",
            after.id.to_string(),
            before.map(finding_json),
            Some(finding_json(after)),
        )
    }

    /// The correlator's reopen: the snapshot after it also names the match that caused it,
    /// so the trail alone answers "why was this finding reopened?".
    pub fn finding_reopened(before: &Finding, after: &Finding, cause: &ReopenCause) -> Self {
        let mut snapshot = finding_json(after);
        snapshot["reopened_by"] = json!({
            "indicator_id": cause.indicator_id.to_string(),
            "event_id": cause.event_id.to_string(),
            "field": cause.field.as_str(),
            "value": cause.value,
        });
        Self::new(
            "finding.reopen",
            "finding",
            after.id.to_string(),
            Some(finding_json(before)),
            Some(snapshot),
        )
    }

    pub fn indicator(
        action: &'static str,
        before: Option<&Indicator>,
        after: Option<&Indicator>,
    ) -> Self {
        let id = after
            .or(before)
            .map(|i| i.id.to_string())
            .unwrap_or_default();
        Self::new(
            action,
            "indicator",
            id,
            before.map(indicator_json),
            after.map(indicator_json),
        )
    }

    /// One event per import, with its counts: an import of a million indicators writes one
    /// line to the trail, not a million.
    pub fn indicator_import(label: &str, created: u64, updated: u64, unchanged: u64) -> Self {
        Self::new(
            "indicator.import",
            "indicator_import",
            label.to_owned(),
            None,
            Some(json!({"created": created, "updated": updated, "unchanged": unchanged})),
        )
    }

    pub fn suppression(
        action: &'static str,
        before: Option<&Suppression>,
        after: Option<&Suppression>,
    ) -> Self {
        let id = after
            .or(before)
            .map(|s| s.id.to_string())
            .unwrap_or_default();
        Self::new(
            action,
            "suppression",
            id,
            before.map(suppression_json),
            after.map(suppression_json),
        )
    }

    /// A connector change. Snapshots name the configuration and whether the credentials
    /// were replaced, never the credentials.
    pub fn connector(
        action: &'static str,
        before: Option<&Connector>,
        after: Option<&Connector>,
        credentials_replaced: bool,
    ) -> Self {
        let id = after
            .or(before)
            .map(|c| c.name.to_string())
            .unwrap_or_default();
        let mut after = after.map(connector_json);
        if let Some(after) = after.as_mut() {
            after["credentials_replaced"] = json!(credentials_replaced);
        }
        Self::new(action, "connector", id, before.map(connector_json), after)
    }

    /// An app's definition, before and after.
    pub fn app(
        action: &'static str,
        before: Option<&crate::App>,
        after: Option<&crate::App>,
    ) -> Self {
        let id = after
            .or(before)
            .map(|a| a.name.to_string())
            .unwrap_or_default();
        let json = |app: &crate::App| json!({"name": app.name.as_str(), "definition": app.definition, "logo_type": app.logo_type});
        Self::new(action, "app", id, before.map(json), after.map(json))
    }

    /// An instance's settings, before and after; its secrets only as their names, and whether
    /// this change replaced them.
    pub fn instance(
        action: &'static str,
        before: Option<&vigil_automation::Instance>,
        after: Option<&vigil_automation::Instance>,
        secrets_changed: bool,
    ) -> Self {
        let id = after
            .or(before)
            .map(|i| i.id.to_string())
            .unwrap_or_default();
        let json = |i: &vigil_automation::Instance| {
            json!({"app": i.app.as_str(), "name": i.name.as_str(),
                "base_url": i.base_url.as_ref().map(|u| u.as_str()), "config": i.config,
                "secret_fields": i.secret_fields, "rate_limit_per_minute": i.rate_limit_per_minute,
                "concurrency_max": i.concurrency_max, "enabled": i.enabled})
        };
        let mut after = after.map(json);
        if let Some(after) = after.as_mut() {
            after["secrets_changed"] = json!(secrets_changed);
        }
        Self::new(action, "instance", id, before.map(json), after)
    }

    /// A task's definition, before and after; its id is `app/task`.
    pub fn task(
        action: &'static str,
        before: Option<&crate::Task>,
        after: Option<&crate::Task>,
    ) -> Self {
        let id = after
            .or(before)
            .map(|t| t.task_ref().to_string())
            .unwrap_or_default();
        let json = |task: &crate::Task| json!({"definition": task.definition});
        Self::new(action, "task", id, before.map(json), after.map(json))
    }

    /// A tenant's plan, before and after.
    pub fn plan(before: &vigil_domain::Plan, after: &vigil_domain::Plan, tenant: TenantId) -> Self {
        let json = |p: &vigil_domain::Plan| {
            json!({"users_max": p.users_max, "api_keys_max": p.api_keys_max,
                "instances_max": p.instances_max, "indicators_max": p.indicators_max,
                "events_per_day": p.events_per_day, "runs_per_day": p.runs_per_day,
                "trial_ends_at": p.trial_ends_at.map(|at| at.to_string())})
        };
        Self::new(
            "plan.set",
            "plan",
            tenant.to_string(),
            Some(json(before)),
            Some(json(after)),
        )
    }

    /// A run asked for or canceled: its task, instance, trigger and status, never its input
    /// (which the run's history keeps, for those who may read runs).
    pub fn run(action: &'static str, run: &vigil_automation::Run) -> Self {
        let after = json!({"task": run.task.to_string(), "instance": run.instance.to_string(),
            "trigger": run.trigger.as_str(), "status": run.status.as_str(),
            "rerun_of": run.rerun_of.map(|id| id.to_string())});
        Self::new(action, "run", run.id.to_string(), None, Some(after))
    }

    fn new(
        action: &'static str,
        entity_type: &'static str,
        entity_id: String,
        before: Option<Value>,
        after: Option<Value>,
    ) -> Self {
        Self {
            action,
            entity_type,
            entity_id,
            before,
            after,
        }
    }
}

/// Turns a draft into the next event of `chain` after `head`. Backends call this inside the
/// transaction that holds the chain head, so appends to one chain are serialized.
pub fn seal(
    chain: TenantId,
    head: &ChainHead,
    change: &Change,
    draft: AuditDraft,
    at: Timestamp,
) -> AuditEvent {
    // serde_json's default map is ordered by key, so the same snapshot always has the same text.
    let text = |value: Option<Value>| value.map(|value| value.to_string());
    AuditEvent::seal(
        head,
        AuditFields {
            id: AuditEventId::generate(),
            tenant_id: chain,
            at,
            actor: change.actor.clone(),
            action: draft.action.to_owned(),
            entity_type: draft.entity_type.to_owned(),
            entity_id: draft.entity_id,
            before: text(draft.before),
            after: text(draft.after),
            reason: change.reason.clone(),
        },
    )
}

/// The entity types whose events record who may do what (tenants, keys, users, sessions,
/// connector configuration, throttled logins): readable through the trail only by those who may read them
/// directly. As an SQL list, for both backends' `NOT IN`.
#[macro_export]
macro_rules! access_entity_types_sql {
    () => {
        "'tenant', 'api_key', 'user', 'session', 'connector', 'login'"
    };
}

/// `access_entity_types_sql!` as values.
pub const ACCESS_ENTITY_TYPES: [&str; 6] =
    ["tenant", "api_key", "user", "session", "connector", "login"];

/// Which audit events a list returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Leave out the events of `ACCESS_ENTITY_TYPES` (for readers who may not manage access).
    pub data_only: bool,
}

fn tenant_json(tenant: &Tenant) -> Value {
    json!({"id": tenant.id.to_string(), "slug": tenant.slug.as_str(), "name": tenant.name.as_str()})
}

// Snapshots of credentials deliberately leave out hashes: the trail says what changed, and a
// hash in a readable log is one step from an offline guessing attack.
fn api_key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id.to_string(),
        "name": key.name,
        "role": key.role.as_str(),
        "prefix": key.prefix,
        "expires_at": key.expires_at.map(|at| at.to_string()),
        "revoked_at": key.revoked_at.map(|at| at.to_string()),
    })
}

fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.to_string(), "email": user.email.as_str(), "role": user.role.as_str(),
        "disabled_at": user.disabled_at.map(|at| at.to_string()),
    })
}

fn session_json(session: &Session) -> Value {
    json!({
        "id": session.id.to_string(),
        "user_id": session.user_id.to_string(),
        "expires_at": session.expires_at.to_string(),
        "revoked_at": session.revoked_at.map(|at| at.to_string()),
    })
}

fn risk_json(risk: &Risk) -> Value {
    json!({
        "id": risk.id.to_string(),
        "title": risk.title.as_str(),
        "description": risk.description.as_ref().map(|d| d.as_str()),
        "impact": risk.impact.get(),
        "probability": risk.probability.get(),
        "score": risk.score(),
        "status": risk.status.as_str(),
        "owner": risk.owner.as_ref().map(|o| o.as_str()),
        "tags": risk.tags.iter().collect::<Vec<_>>(),
        "tlp": risk.tlp.as_str(),
        "source": risk.source.as_ref().map(|s| s.as_str()),
        "external_id": risk.external_id.as_ref().map(|e| e.as_str()),
        "source_state": risk.source_state.map(|s| s.as_str()),
    })
}

fn finding_json(finding: &Finding) -> Value {
    json!({
        "id": finding.id.to_string(),
        "title": finding.title.as_str(),
        "description": finding.description.as_ref().map(|d| d.as_str()),
        "severity": finding.severity.as_str(),
        "status": finding.status.as_str(),
        "asset": finding.asset.as_ref().map(|a| a.as_str()),
        "source": finding.source.as_ref().map(|s| s.as_str()),
        "external_id": finding.external_id.as_ref().map(|e| e.as_str()),
        "tlp": finding.tlp.as_str(),
        "reopen_count": finding.reopen_count,
    })
}

fn indicator_json(indicator: &Indicator) -> Value {
    json!({
        "id": indicator.id.to_string(),
        "type": indicator.kind().as_str(),
        "value": indicator.value.as_str(),
        "valid_from": indicator.valid_from.map(|at| at.to_string()),
        "valid_until": indicator.valid_until.map(|at| at.to_string()),
        "confidence": indicator.confidence.map(|c| c.get()),
        "tlp": indicator.tlp.as_str(),
        "active": indicator.active,
        "source": indicator.source.as_ref().map(|s| s.as_str()),
        "source_ref": indicator.source_ref.as_ref().map(|s| s.as_str()),
        "finding_id": indicator.finding_id.map(|id| id.to_string()),
        "match_subdomains": indicator.match_subdomains,
    })
}

fn suppression_json(suppression: &Suppression) -> Value {
    json!({
        "id": suppression.id.to_string(),
        "type": suppression.value.kind().as_str(),
        "value": suppression.value.as_str(),
        "match_subdomains": suppression.match_subdomains,
        "reason": suppression.reason.as_ref().map(|r| r.as_str()),
    })
}

fn connector_json(connector: &Connector) -> Value {
    json!({
        "name": connector.name.as_str(),
        "kind": connector.kind.as_str(),
        "url": connector.url.as_str(),
        "enabled": connector.enabled,
        "interval_s": connector.interval.seconds(),
        "threshold": connector.threshold.as_str(),
        "options": connector.options.iter().collect::<std::collections::BTreeMap<_, _>>(),
    })
}
