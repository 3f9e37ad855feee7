-- Tenants, credentials, the risk register and the audit trail.
-- Ids are hyphenated UUID text; instants are Unix microseconds (UTC).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- tenant_id is NULL for platform-admin keys.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_email_per_tenant ON users (coalesce(tenant_id, ''), email);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    refresh_hash  TEXT NOT NULL,
    -- The hash this session's refresh token had before its last rotation: presenting that
    -- token again is reuse (theft), any other mismatch is just a wrong token.
    previous_refresh_hash TEXT,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    created_at    INTEGER NOT NULL,
    refreshed_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_tenant ON sessions (tenant_id, id);

CREATE TABLE risks (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title        TEXT NOT NULL,
    description  TEXT,
    impact       INTEGER NOT NULL CHECK (impact BETWEEN 1 AND 5),
    probability  INTEGER NOT NULL CHECK (probability BETWEEN 1 AND 5),
    score        INTEGER GENERATED ALWAYS AS (impact * probability) STORED,
    status       TEXT NOT NULL,
    owner        TEXT,
    tags         TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    tlp          TEXT NOT NULL,
    source       TEXT,
    external_id  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX risks_by_tenant ON risks (tenant_id, id);
CREATE UNIQUE INDEX risks_external_ref ON risks (tenant_id, source, external_id)
    WHERE external_id IS NOT NULL;

-- One hash chain per tenant; the nil UUID is the platform's chain. No foreign key: the
-- trail outlives what it describes.
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    before       TEXT,
    after        TEXT,
    reason       TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    UNIQUE (tenant_id, seq)
) STRICT;
CREATE INDEX audit_by_entity ON audit_events (tenant_id, entity_type, entity_id, seq);

-- The last appended event of each chain: appends read and move it in one transaction, and
-- the verifier compares it with the chain's end to notice a deleted tail.
CREATE TABLE audit_heads (
    tenant_id  TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
