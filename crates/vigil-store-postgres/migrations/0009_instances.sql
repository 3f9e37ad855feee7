-- Instances: an app bound to one real system. Same shape as SQLite's 0008. Secrets live in
-- `instance_secrets`, one sealed value per field; the store never sees them in clear.
CREATE TABLE instances (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL,
    app              text NOT NULL,
    name             text NOT NULL,
    base_url         text,
    config           jsonb NOT NULL,
    rate_per_minute  integer,
    concurrency_max  integer NOT NULL,
    enabled          boolean NOT NULL,
    health_ok        boolean,
    checked_at       timestamptz,
    last_ok_at       timestamptz,
    health_error     text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, app, name),
    FOREIGN KEY (tenant_id, app) REFERENCES apps(tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE instance_secrets (
    tenant_id    uuid NOT NULL,
    instance_id  uuid NOT NULL,
    field        text NOT NULL,
    sealed       bytea NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, field),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES instances(tenant_id, id) ON DELETE CASCADE
);

GRANT SELECT, INSERT, UPDATE, DELETE ON instances, instance_secrets TO vigil_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['instances', 'instance_secrets'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY scope_isolation ON %I
                 USING (tenant_id = nullif(current_setting(''vigil.tenant_id'', true), '''')::uuid)
                 WITH CHECK (tenant_id = nullif(current_setting(''vigil.tenant_id'', true), '''')::uuid)',
            t);
        EXECUTE format(
            'CREATE POLICY platform_operations ON %I TO %I
                 USING (current_setting(''vigil.platform'', true) = ''on'')
                 WITH CHECK (current_setting(''vigil.platform'', true) = ''on'')',
            t, current_user);
    END LOOP;
END
$$;
