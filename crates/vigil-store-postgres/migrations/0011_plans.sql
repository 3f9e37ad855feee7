-- Plans (what a tenant may keep and do; no row: no limits) and daily usage meters. Same
-- shape as SQLite's 0010.
CREATE TABLE plans (
    tenant_id       uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    users_max       bigint,
    api_keys_max    bigint,
    instances_max   bigint,
    indicators_max  bigint,
    events_per_day  bigint,
    runs_per_day    bigint,
    trial_ends_at   timestamptz,
    updated_at      timestamptz NOT NULL
);

CREATE TABLE usage (
    tenant_id  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day        bigint NOT NULL,  -- days since 1970-01-01, UTC
    meter      text NOT NULL CHECK (meter IN ('events', 'runs')),
    count      bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, meter)
);

GRANT SELECT, INSERT, UPDATE ON plans, usage TO vigil_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['plans', 'usage'] LOOP
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
