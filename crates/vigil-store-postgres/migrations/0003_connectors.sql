-- Sync connectors: one upstream source per (tenant, name). `credentials` holds the sealed
-- (AES-256-GCM) credentials; the store never sees them in clear. Same shape as SQLite's 0003.
CREATE TABLE connectors (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL,
    url          text NOT NULL,
    enabled      boolean NOT NULL,
    interval_s   integer NOT NULL,
    threshold    text NOT NULL,
    options      jsonb NOT NULL,
    credentials  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON connectors TO vigil_app;

ALTER TABLE connectors ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON connectors
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);
