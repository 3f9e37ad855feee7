-- Sync connectors: one upstream source per (tenant, name). `credentials` holds the sealed
-- (AES-256-GCM) credentials; the store never sees them in clear.
CREATE TABLE connectors (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    url          TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    interval_s   INTEGER NOT NULL,
    threshold    TEXT NOT NULL,
    options      TEXT NOT NULL,  -- JSON object of strings
    credentials  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;
