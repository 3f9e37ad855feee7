-- Upstream records a sync cycle could not map or store, kept to be replayed.
CREATE TABLE sync_dead_letters (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connector       TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    error           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    payload_digest  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, connector, external_id)
) STRICT;
CREATE INDEX sync_dead_letters_by_tenant ON sync_dead_letters (tenant_id, id);
