-- The sync engine: whether a synced risk's upstream record still exists, and where each
-- connector's incremental reading got to (saved only after the page it covers committed).
ALTER TABLE risks ADD COLUMN source_state text;

CREATE TABLE sync_cursors (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connector   text NOT NULL,
    cursor      text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, connector)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON sync_cursors TO vigil_app;

ALTER TABLE sync_cursors ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON sync_cursors
    USING (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);
