-- The workflows that started a run through a workflow tool, outermost first (empty: a run of its
-- own). A run refuses to start a workflow already on this path, or deeper than the bound, so a
-- workflow reaching itself through tool nodes cannot start runs without end
-- (docs/workflows.md §13, docs/tools.md).
ALTER TABLE workflow_runs ADD COLUMN lineage jsonb NOT NULL DEFAULT '[]'::jsonb;
