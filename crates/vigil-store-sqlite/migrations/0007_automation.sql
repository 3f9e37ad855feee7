-- Automation: apps (integration definitions) and their tasks, per tenant, referred to by
-- name. A definition is kept as JSON text, checked by vigil-automation before it is saved.
-- `task_deps` mirrors each task's `depends_on`: deleting a task another one depends on fails
-- (no action at statement end, so deleting a whole app takes its own internal links with it).
CREATE TABLE apps (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,  -- JSON: AppDefinition
    logo         BLOB,
    logo_type    TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name),
    UNIQUE (tenant_id, id)
) STRICT;

CREATE TABLE tasks (
    tenant_id    TEXT NOT NULL,
    app          TEXT NOT NULL,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,  -- JSON: TaskDefinition
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, app, name),
    FOREIGN KEY (tenant_id, app) REFERENCES apps(tenant_id, name) ON DELETE CASCADE
) STRICT;

CREATE TABLE task_deps (
    tenant_id    TEXT NOT NULL,
    app          TEXT NOT NULL,
    task         TEXT NOT NULL,
    dep_app      TEXT NOT NULL,
    dep_task     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app, task, dep_app, dep_task),
    FOREIGN KEY (tenant_id, app, task) REFERENCES tasks(tenant_id, app, name) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, dep_app, dep_task) REFERENCES tasks(tenant_id, app, name)
) STRICT;
CREATE INDEX task_deps_by_dependency ON task_deps (tenant_id, dep_app, dep_task);
