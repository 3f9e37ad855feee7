-- IOC correlation: findings, the indicator catalogue and its suppression list, telemetry
-- events exactly as received, and the matches between them. Same shape as SQLite's 0002.

CREATE TABLE findings (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         text NOT NULL,
    description   text,
    severity      text NOT NULL,
    status        text NOT NULL,
    asset         text,
    source        text,
    external_id   text,
    tlp           text NOT NULL,
    reopen_count  integer NOT NULL DEFAULT 0 CHECK (reopen_count >= 0),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX findings_external_ref ON findings (tenant_id, source, external_id)
    WHERE external_id IS NOT NULL;

-- (tenant_id, finding_id) references a finding of the same tenant, so an indicator can
-- never point at another tenant's finding.
CREATE TABLE indicators (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind              text NOT NULL,
    value             text NOT NULL,
    valid_from        timestamptz,
    valid_until       timestamptz,
    confidence        integer CHECK (confidence BETWEEN 0 AND 100),
    tlp               text NOT NULL,
    active            boolean NOT NULL,
    source            text,
    source_ref        text,
    finding_id        uuid,
    match_subdomains  boolean NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (tenant_id, kind, value),
    FOREIGN KEY (tenant_id, finding_id) REFERENCES findings (tenant_id, id)
);
CREATE INDEX indicators_by_tenant ON indicators (tenant_id, id);
CREATE INDEX indicators_by_finding ON indicators (tenant_id, finding_id)
    WHERE finding_id IS NOT NULL;

CREATE TABLE suppressions (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind              text NOT NULL,
    value             text NOT NULL,
    match_subdomains  boolean NOT NULL,
    reason            text,
    created_at        timestamptz NOT NULL,
    UNIQUE (tenant_id, kind, value)
);
CREATE INDEX suppressions_by_tenant ON suppressions (tenant_id, id);

-- Bumped in the transaction of every change to a tenant's indicators or suppressions, so
-- the correlator notices a change with one read per batch.
CREATE TABLE catalogue_versions (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    version    bigint NOT NULL
);

-- Never updated or deleted by Vigil (vigil_app may only insert and read): `body` is the
-- event object's JSON text as received, kept as text because jsonb would reorder it.
CREATE TABLE telemetry_events (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    client_id    text,
    event_type   text NOT NULL,
    occurred_at  timestamptz,
    body         text NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX telemetry_events_client ON telemetry_events (tenant_id, client_id)
    WHERE client_id IS NOT NULL;

-- No foreign key to indicators: a match outlives a deleted indicator, as history.
CREATE TABLE ioc_matches (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    indicator_id    uuid NOT NULL,
    indicator_kind  text NOT NULL,
    event_id        uuid NOT NULL REFERENCES telemetry_events(id),
    field           text NOT NULL,
    value           text NOT NULL,
    finding_id      uuid,
    reopened        boolean NOT NULL,
    matched_at      timestamptz NOT NULL
);
CREATE INDEX ioc_matches_by_tenant ON ioc_matches (tenant_id, id);
CREATE INDEX ioc_matches_by_finding ON ioc_matches (tenant_id, finding_id, id)
    WHERE finding_id IS NOT NULL;
CREATE INDEX ioc_matches_by_indicator ON ioc_matches (tenant_id, indicator_id, id);
CREATE INDEX ioc_matches_by_event ON ioc_matches (tenant_id, event_id);

-- Telemetry and matches are evidence: vigil_app adds and reads them, never changes them.
GRANT SELECT, INSERT, UPDATE, DELETE ON findings, indicators, suppressions TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON catalogue_versions TO vigil_app;
GRANT SELECT, INSERT ON telemetry_events, ioc_matches TO vigil_app;

-- Row-level security, as in 0001: a row is visible and writable only in its tenant's
-- transactions.
ALTER TABLE findings ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON findings
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE indicators ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON indicators
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON suppressions
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE catalogue_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON catalogue_versions
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE telemetry_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON telemetry_events
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE ioc_matches ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON ioc_matches
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);
