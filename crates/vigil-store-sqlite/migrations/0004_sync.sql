-- The sync engine: whether a synced risk's upstream record still exists, and where each
-- connector's incremental reading got to (saved only after the page it covers committed).
ALTER TABLE risks ADD COLUMN source_state TEXT;

CREATE TABLE sync_cursors (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connector   TEXT NOT NULL,
    cursor      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connector)
) STRICT;
