-- Workflows: editable drafts and immutable published versions (docs/adr/0031-workflow-drafts.md).
-- The draft is saved as the editor sends it (shape-checked only); publishing validates it and
-- snapshots it as the next numbered version, which runs name.

CREATE TABLE workflows (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- The draft document (shared/workflows/definition.py, WorkflowDocument; schema_version inside).
    draft              jsonb NOT NULL,
    -- The latest published version's number (workflow_versions.number), NULL before the first.
    published_version  integer,
    published_at       timestamptz,
    created_by         uuid,
    updated_by         uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    -- Optimistic lock of the draft: every edit names the version it read.
    version            integer NOT NULL DEFAULT 1
);
-- Names are unique per tenant among live workflows, ignoring case.
CREATE UNIQUE INDEX workflows_tenant_name_key ON workflows (tenant_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX workflows_tenant_idx ON workflows (tenant_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE workflow_versions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workflow_id   uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    number        integer NOT NULL CHECK (number >= 1),
    -- The workflow's name and description when it was published.
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    document      jsonb NOT NULL,
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workflow_versions_number_key ON workflow_versions (workflow_id, number);
CREATE INDEX workflow_versions_tenant_idx ON workflow_versions (tenant_id, created_at);

SELECT enable_tenant_rls(t::regclass) FROM unnest(ARRAY['workflows', 'workflow_versions']) AS t;
CREATE POLICY tenant_isolation ON workflows
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON workflow_versions
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

-- Workflows are soft-deleted (no DELETE); published versions are immutable: inserted and read,
-- never updated or deleted by the application (they go with their workflow when the retention
-- purge removes it).
GRANT SELECT, INSERT, UPDATE ON workflows TO stratus_app;
GRANT SELECT, INSERT ON workflow_versions TO stratus_app;

INSERT INTO retention_tables VALUES ('workflows', 65);
