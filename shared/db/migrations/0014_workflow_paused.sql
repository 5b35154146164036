-- A run paused for a person's input (docs/adr/0036-human-input-and-sub-workflows.md): its status
-- is 'paused' while a human_input node waits (a .waitForTaskToken task: the execution costs
-- nothing meanwhile), and the run row holds the pending form until it is answered or times out.
-- The task token that resumes the execution stays on the node's run (node_runs.task_token).

ALTER TABLE workflow_runs DROP CONSTRAINT workflow_runs_status_check;
ALTER TABLE workflow_runs ADD CONSTRAINT workflow_runs_status_check
    CHECK (status IN ('pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'));

ALTER TABLE workflow_runs
    -- The human_input node the run waits on (kept after it resumes, as a record of the last pause).
    ADD COLUMN pause_node_id    text,
    -- The form as the person sees it: {content (rendered), fields, actions}.
    ADD COLUMN pause_form       jsonb,
    -- When the run began to wait (its task token was kept), and when the wait times out (NULL: never).
    ADD COLUMN paused_at        timestamptz,
    ADD COLUMN pause_expires_at timestamptz;

-- A restart of the local runtime ends paused runs too: moto's executions, and the tokens that
-- would resume them, are gone with it.
UPDATE reconcile_targets SET active_statuses = ARRAY['pending', 'running', 'paused']
 WHERE table_name = 'workflow_runs';

-- The reconciler also looks at a paused run whose pause should have timed out long ago (its
-- execution may have ended without the timeout being handled); a paused run still within its
-- wait is never stale, however long it waits.
CREATE OR REPLACE FUNCTION workflow_runs_stale(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, run_id uuid, execution_arn text, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT r.tenant_id, r.id, r.execution_arn, r.status FROM workflow_runs r
     WHERE (r.status IN ('pending', 'running') AND r.updated_at < now() - p_older_than)
        OR (r.status = 'paused' AND r.pause_expires_at < now() - p_older_than)
     ORDER BY r.updated_at LIMIT p_limit
$$;
ALTER FUNCTION workflow_runs_stale(interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION workflow_runs_stale(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow_runs_stale(interval, integer) TO stratus_app;

CREATE INDEX workflow_runs_paused_idx ON workflow_runs (pause_expires_at) WHERE status = 'paused';
