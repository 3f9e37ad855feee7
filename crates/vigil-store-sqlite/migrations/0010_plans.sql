-- Plans (what a tenant may keep and do; no row: no limits) and daily usage meters.
CREATE TABLE plans (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    users_max       INTEGER,
    api_keys_max    INTEGER,
    instances_max   INTEGER,
    indicators_max  INTEGER,
    events_per_day  INTEGER,
    runs_per_day    INTEGER,
    trial_ends_at   INTEGER,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE usage (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day        INTEGER NOT NULL,  -- days since 1970-01-01, UTC
    meter      TEXT NOT NULL CHECK (meter IN ('events', 'runs')),
    count      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day, meter)
) STRICT;
