-- Instances: an app bound to one real system. Secrets live in `instance_secrets`, one sealed
-- (AES-256-GCM) value per field, bound to (tenant, instance, field, base URL origin); the
-- store never sees them in clear. Deleting the app deletes its instances.
CREATE TABLE instances (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    app              TEXT NOT NULL,
    name             TEXT NOT NULL,
    base_url         TEXT,
    config           TEXT NOT NULL,  -- JSON object
    rate_per_minute  INTEGER,
    concurrency_max  INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    health_ok        INTEGER,
    checked_at       INTEGER,
    last_ok_at       INTEGER,
    health_error     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, app, name),
    FOREIGN KEY (tenant_id, app) REFERENCES apps(tenant_id, name) ON DELETE CASCADE
) STRICT;

CREATE TABLE instance_secrets (
    tenant_id    TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    field        TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, field),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES instances(tenant_id, id) ON DELETE CASCADE
) STRICT;
