-- IOC correlation: findings, the indicator catalogue and its suppression list, telemetry
-- events exactly as received, and the matches between them.

CREATE TABLE findings (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    description   TEXT,
    severity      TEXT NOT NULL,
    status        TEXT NOT NULL,
    asset         TEXT,
    source        TEXT,
    external_id   TEXT,
    tlp           TEXT NOT NULL,
    reopen_count  INTEGER NOT NULL DEFAULT 0 CHECK (reopen_count >= 0),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX findings_external_ref ON findings (tenant_id, source, external_id)
    WHERE external_id IS NOT NULL;

-- (tenant_id, finding_id) references a finding of the same tenant, so an indicator can
-- never point at another tenant's finding.
CREATE TABLE indicators (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    value             TEXT NOT NULL,
    valid_from        INTEGER,
    valid_until       INTEGER,
    confidence        INTEGER CHECK (confidence BETWEEN 0 AND 100),
    tlp               TEXT NOT NULL,
    active            INTEGER NOT NULL,
    source            TEXT,
    source_ref        TEXT,
    finding_id        TEXT,
    match_subdomains  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, value),
    FOREIGN KEY (tenant_id, finding_id) REFERENCES findings (tenant_id, id)
) STRICT;
CREATE INDEX indicators_by_tenant ON indicators (tenant_id, id);
CREATE INDEX indicators_by_finding ON indicators (tenant_id, finding_id)
    WHERE finding_id IS NOT NULL;

CREATE TABLE suppressions (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    value             TEXT NOT NULL,
    match_subdomains  INTEGER NOT NULL,
    reason            TEXT,
    created_at        INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, value)
) STRICT;
CREATE INDEX suppressions_by_tenant ON suppressions (tenant_id, id);

-- Bumped in the transaction of every change to a tenant's indicators or suppressions, so
-- the correlator notices a change with one read per batch.
CREATE TABLE catalogue_versions (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL
) STRICT;

-- Never updated or deleted by Vigil: `body` is the event object's JSON text as received.
CREATE TABLE telemetry_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    client_id    TEXT,
    event_type   TEXT NOT NULL,
    occurred_at  INTEGER,
    body         TEXT NOT NULL,
    received_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX telemetry_events_client ON telemetry_events (tenant_id, client_id)
    WHERE client_id IS NOT NULL;

-- No foreign key to indicators: a match outlives a deleted indicator, as history.
CREATE TABLE ioc_matches (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    indicator_id    TEXT NOT NULL,
    indicator_kind  TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES telemetry_events(id),
    field           TEXT NOT NULL,
    value           TEXT NOT NULL,
    finding_id      TEXT,
    reopened        INTEGER NOT NULL,
    matched_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX ioc_matches_by_tenant ON ioc_matches (tenant_id, id);
CREATE INDEX ioc_matches_by_finding ON ioc_matches (tenant_id, finding_id, id)
    WHERE finding_id IS NOT NULL;
CREATE INDEX ioc_matches_by_indicator ON ioc_matches (tenant_id, indicator_id, id);
CREATE INDEX ioc_matches_by_event ON ioc_matches (tenant_id, event_id);
