-- Runs of tasks and their steps. A run names its task and instance by value, without a
-- reference, so deleting an app or an instance keeps the history of what ran.
CREATE TABLE runs (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    app           TEXT NOT NULL,
    task          TEXT NOT NULL,
    instance_id   TEXT NOT NULL,
    input         TEXT NOT NULL,  -- JSON
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'timed_out')),
    trigger       TEXT NOT NULL,
    rerun_of      TEXT,
    requested_by  TEXT NOT NULL,
    runner        TEXT,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    deadline      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- What the reaper and a restarted node look for: runs not over yet.
CREATE INDEX runs_open ON runs (tenant_id, status, deadline)
    WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_task ON runs (tenant_id, app, task, id);
CREATE INDEX runs_by_instance ON runs (tenant_id, instance_id, id);

CREATE TABLE run_steps (
    tenant_id    TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    app          TEXT NOT NULL,
    task         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    attempts     TEXT NOT NULL,  -- JSON array, secrets masked
    outputs      TEXT,           -- JSON object, secrets masked
    error        TEXT,
    PRIMARY KEY (tenant_id, run_id, seq),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs(tenant_id, id) ON DELETE CASCADE
) STRICT;
