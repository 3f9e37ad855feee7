-- Upstream records a sync cycle could not map or store, kept to be replayed.
CREATE TABLE sync_dead_letters (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connector       text NOT NULL,
    external_id     text NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL,
    payload         text NOT NULL,
    payload_digest  text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, connector, external_id)
);
CREATE INDEX sync_dead_letters_by_tenant ON sync_dead_letters (tenant_id, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON sync_dead_letters TO vigil_app;

ALTER TABLE sync_dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON sync_dead_letters
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);
