-- Runs of tasks and their steps. Same shape as SQLite's 0009: a run names its task and
-- instance by value, without a reference, so deleting an app or an instance keeps the history.
CREATE TABLE runs (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    app           text NOT NULL,
    task          text NOT NULL,
    instance_id   uuid NOT NULL,
    input         jsonb NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'timed_out')),
    trigger       text NOT NULL,
    rerun_of      uuid,
    requested_by  text NOT NULL,
    runner        text,
    error         text,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    deadline      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX runs_open ON runs (tenant_id, status, deadline)
    WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_task ON runs (tenant_id, app, task, id);
CREATE INDEX runs_by_instance ON runs (tenant_id, instance_id, id);

CREATE TABLE run_steps (
    tenant_id    uuid NOT NULL,
    run_id       uuid NOT NULL,
    seq          integer NOT NULL,
    app          text NOT NULL,
    task         text NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    attempts     jsonb NOT NULL,
    outputs      jsonb,
    error        text,
    PRIMARY KEY (tenant_id, run_id, seq),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs(tenant_id, id) ON DELETE CASCADE
);

GRANT SELECT, INSERT, UPDATE, DELETE ON runs, run_steps TO vigil_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['runs', 'run_steps'] LOOP
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
