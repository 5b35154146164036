-- Workflow runs started in the streaming mode (docs/adr/0035-workflow-run-streaming.md): the
-- run is the same; only how its starter follows it differs, and the run records it.
ALTER TABLE workflow_runs DROP CONSTRAINT workflow_runs_mode_check;
ALTER TABLE workflow_runs ADD CONSTRAINT workflow_runs_mode_check CHECK (mode IN ('sync', 'async', 'stream'));
