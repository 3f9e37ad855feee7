-- Tenants, credentials, the risk register and the audit trail, with row-level security.
-- Tables live in the current schema (the connection's search_path), so one database can
-- hold several independent Vigil schemas. Instants are timestamptz (microseconds, the
-- precision vigil_domain::Timestamp keeps); the audit snapshots are text, never jsonb,
-- because the chain hashes their exact bytes.

-- The role tenant-scoped transactions switch to with SET LOCAL ROLE. NOLOGIN: nobody
-- connects as it. Roles are cluster-wide, so another database (or a racing node in a
-- cluster without our advisory lock) may create it between the check and the CREATE.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vigil_app') THEN
        CREATE ROLE vigil_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- A non-superuser owner may only SET ROLE to roles it is a member of. A user that a DBA
-- already made a member, but that may not grant, keeps working.
DO $$
BEGIN
    GRANT vigil_app TO CURRENT_USER;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        IF NOT pg_has_role(current_user, 'vigil_app', 'MEMBER') THEN
            RAISE;
        END IF;
END
$$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- tenant_id is NULL for platform-admin keys. Scope-keyed indexes use the same expression as
-- the row-level security policies (NULL read as the nil UUID) so they serve both.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    role        text NOT NULL,
    prefix      text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE INDEX api_keys_by_scope
    ON api_keys ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), id);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    tenant_id      uuid REFERENCES tenants(id) ON DELETE CASCADE,
    email          text NOT NULL,
    role           text NOT NULL,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_per_scope
    ON users ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), email);
CREATE INDEX users_by_scope
    ON users ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), id);

CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          text NOT NULL,
    refresh_hash  text NOT NULL,
    -- The hash this session's refresh token had before its last rotation: presenting that
    -- token again is reuse (theft), any other mismatch is just a wrong token.
    previous_refresh_hash text,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL,
    refreshed_at  timestamptz NOT NULL
);
CREATE INDEX sessions_by_scope
    ON sessions ((coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)), id);

CREATE TABLE risks (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title        text NOT NULL,
    description  text,
    impact       integer NOT NULL CHECK (impact BETWEEN 1 AND 5),
    probability  integer NOT NULL CHECK (probability BETWEEN 1 AND 5),
    score        integer GENERATED ALWAYS AS (impact * probability) STORED,
    status       text NOT NULL,
    owner        text,
    tags         text[] NOT NULL DEFAULT '{}',
    tlp          text NOT NULL,
    source       text,
    external_id  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX risks_by_tenant ON risks (tenant_id, id);
CREATE UNIQUE INDEX risks_external_ref ON risks (tenant_id, source, external_id)
    WHERE external_id IS NOT NULL;

-- One hash chain per tenant; the nil UUID is the platform's chain. No foreign key: the
-- trail outlives what it describes.
CREATE TABLE audit_events (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    seq          bigint NOT NULL,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    text NOT NULL,
    before       text,
    after        text,
    reason       text,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_by_entity ON audit_events (tenant_id, entity_type, entity_id, seq);

-- The last appended event of each chain: appends lock and move it in one transaction, and
-- the verifier compares it with the chain's end to notice a deleted tail.
CREATE TABLE audit_heads (
    tenant_id  uuid PRIMARY KEY,
    seq        bigint NOT NULL,
    hash       text NOT NULL
);

-- What tenant-scoped transactions may do once they are vigil_app. Nothing else: no DDL, no
-- access to vigil_migrations.
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO vigil_app', current_schema());
END
$$;
-- The audit trail is append-only for it: events can be added, never changed or removed,
-- and a tenant transaction cannot touch its own tenant row.
GRANT SELECT, INSERT, UPDATE, DELETE ON api_keys, users, sessions, risks TO vigil_app;
GRANT SELECT ON tenants TO vigil_app;
GRANT SELECT, INSERT ON audit_events TO vigil_app;
GRANT SELECT, INSERT, UPDATE ON audit_heads TO vigil_app;

-- Row-level security: the second wall behind every query's own tenant filter. A row is
-- visible and writable only when its scope (tenant_id, NULL read as the nil UUID of the
-- platform) equals the transaction's vigil.tenant_id. With no tenant set, nothing is.
-- Superusers and the tables' owner bypass these policies (we do not FORCE them): platform
-- operations run as the connecting user on purpose, tenant operations as vigil_app.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON tenants
    USING (id = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON api_keys
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON users
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON sessions
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE risks ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON risks
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON audit_events
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_isolation ON audit_heads
    USING (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
           = nullif(current_setting('vigil.tenant_id', true), '')::uuid)
    WITH CHECK (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid)
                = nullif(current_setting('vigil.tenant_id', true), '')::uuid);
