-- Automation: apps (integration definitions) and their tasks, per tenant, referred to by
-- name. Same shape as SQLite's 0007. `task_deps` mirrors each task's `depends_on`; its
-- reference to the dependency is NO ACTION (checked at statement end), so deleting a whole
-- app takes its own internal links with it while a link from another app refuses.
CREATE TABLE apps (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           uuid NOT NULL,
    name         text NOT NULL,
    definition   jsonb NOT NULL,
    logo         bytea,
    logo_type    text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE tasks (
    tenant_id    uuid NOT NULL,
    app          text NOT NULL,
    name         text NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, app, name),
    FOREIGN KEY (tenant_id, app) REFERENCES apps(tenant_id, name) ON DELETE CASCADE
);

CREATE TABLE task_deps (
    tenant_id    uuid NOT NULL,
    app          text NOT NULL,
    task         text NOT NULL,
    dep_app      text NOT NULL,
    dep_task     text NOT NULL,
    PRIMARY KEY (tenant_id, app, task, dep_app, dep_task),
    FOREIGN KEY (tenant_id, app, task) REFERENCES tasks(tenant_id, app, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, dep_app, dep_task) REFERENCES tasks(tenant_id, app, name)
);
CREATE INDEX task_deps_by_dependency ON task_deps (tenant_id, dep_app, dep_task);

GRANT SELECT, INSERT, UPDATE, DELETE ON apps, tasks, task_deps TO vigil_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['apps', 'tasks', 'task_deps'] LOOP
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
