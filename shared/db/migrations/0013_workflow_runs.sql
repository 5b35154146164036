-- Workflow runs and their node runs (docs/adr/0033-workflow-runs.md). A run is an execution of
-- the interpreter state machine over a snapshot of the document it runs; each node it ran has a
-- node_runs row with its inputs, outputs, status, error, attempts, tokens and timings. Outputs
-- larger than the inline bound live in the payloads bucket (outputs_ref), not in the row.

CREATE TABLE workflow_runs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    workflow_id     uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- The published version run; NULL: the draft (its snapshot is in document).
    version         integer,
    -- What the run executes, frozen when it started (a draft keeps changing).
    document        jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    mode            text NOT NULL CHECK (mode IN ('sync', 'async')),
    inputs          jsonb NOT NULL DEFAULT '{}',
    outputs         jsonb,
    outputs_ref     text,
    error_code      text,
    error_message   text,
    error_node_id   text,
    execution_arn   text,
    -- State transitions the run cost on Step Functions (counted by the interpreter).
    transitions     integer NOT NULL DEFAULT 0,
    tokens          integer NOT NULL DEFAULT 0,
    created_by      uuid,
    -- The API key a run was started with (keys bound to a workflow).
    api_key_id      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    elapsed_ms      integer,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Runs are never soft-deleted by hand: a finished run's history is purged retention_days
    -- after it finished, through the purge job's soft-delete column.
    deleted_at      timestamptz GENERATED ALWAYS AS (finished_at) STORED
);
CREATE INDEX workflow_runs_workflow_idx ON workflow_runs (tenant_id, workflow_id, created_at DESC);
CREATE INDEX workflow_runs_active_idx ON workflow_runs (updated_at) WHERE status IN ('pending', 'running');
CREATE INDEX workflow_runs_deleted_idx ON workflow_runs (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE node_runs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    run_id          uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    node_id         text NOT NULL,
    node_type       text NOT NULL,
    title           text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'cancelled')),
    -- The handle the node left by (succeeded nodes): source, a branch's case id, fail-branch.
    handle          text,
    inputs          jsonb,
    outputs         jsonb,
    outputs_ref     text,
    error           jsonb,
    attempts        integer NOT NULL DEFAULT 0,
    tokens          integer NOT NULL DEFAULT 0,
    -- The order in which the run settled its nodes.
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    elapsed_ms      integer,
    -- A container's (iteration, loop) children's runs, by item or round: [{node_id, index, status,
    -- handle, inputs, outputs, error, attempts, tokens, elapsed_ms}], in the payloads bucket when large.
    children        jsonb,
    children_ref    text,
    -- The task token of a node waiting for a person's input (.waitForTaskToken).
    task_token      text
);
CREATE UNIQUE INDEX node_runs_run_node_key ON node_runs (run_id, node_id);

-- Finishing a run stamps when and how long, once (a redelivered finish changes nothing).
CREATE OR REPLACE FUNCTION workflow_runs_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    IF NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.finished_at IS NULL THEN
        NEW.finished_at := now();
        NEW.elapsed_ms := (extract(epoch FROM now() - coalesce(NEW.started_at, NEW.created_at)) * 1000)::integer;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER workflow_runs_stamp BEFORE UPDATE ON workflow_runs
    FOR EACH ROW EXECUTE FUNCTION workflow_runs_stamp();

SELECT enable_tenant_rls(t::regclass) FROM unnest(ARRAY['workflow_runs', 'node_runs']) AS t;
CREATE POLICY tenant_isolation ON workflow_runs
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON node_runs
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

GRANT SELECT, INSERT, UPDATE ON workflow_runs TO stratus_app;
GRANT SELECT, INSERT, UPDATE ON node_runs TO stratus_app;

-- Purged retention_days after they finished (node runs go with their run), before workflows.
INSERT INTO retention_tables VALUES ('workflow_runs', 60);

-- A restart of the local runtime ends what was running (its executions are gone with it).
INSERT INTO reconcile_targets (table_name, status_column, active_statuses, failed_status, error_column)
VALUES ('workflow_runs', 'status', ARRAY['pending', 'running'], 'failed', 'error_message');

-- The reconciler works across tenants: runs not finished and unchanged for longer than
-- p_older_than, with the execution to ask about.
CREATE OR REPLACE FUNCTION workflow_runs_stale(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, run_id uuid, execution_arn text, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT r.tenant_id, r.id, r.execution_arn, r.status FROM workflow_runs r
     WHERE r.status IN ('pending', 'running') AND r.updated_at < now() - p_older_than
     ORDER BY r.updated_at LIMIT p_limit
$$;
ALTER FUNCTION workflow_runs_stale(interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION workflow_runs_stale(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow_runs_stale(interval, integer) TO stratus_app;
