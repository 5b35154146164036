-- Work that was in flight when a runtime stopped (local restarts; crashed executions) is
-- marked failed at start-up rather than left "running" forever. Each capability registers
-- its table here in its own migration: which status column, which statuses mean "in
-- flight", where the human-readable error goes.
CREATE TABLE reconcile_targets (
    table_name       text PRIMARY KEY,
    status_column    text NOT NULL,
    active_statuses  text[] NOT NULL CHECK (cardinality(active_statuses) > 0),
    failed_status    text NOT NULL DEFAULT 'failed',
    error_column     text NOT NULL
);

-- Mark every in-flight row of every registered table failed with p_reason; returns a row
-- per table with the count. Runs across tenants, hence SECURITY DEFINER.
CREATE OR REPLACE FUNCTION reconcile_interrupted_work(p_reason text)
RETURNS TABLE (table_name text, failed integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    t record;
    v_count integer;
BEGIN
    FOR t IN SELECT * FROM reconcile_targets ORDER BY reconcile_targets.table_name LOOP
        EXECUTE format('UPDATE %I SET %I = $1, %I = $2 WHERE %I = ANY($3)',
                       t.table_name, t.status_column, t.error_column, t.status_column)
            USING t.failed_status, p_reason, t.active_statuses;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        table_name := t.table_name;
        failed := v_count;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON reconcile_targets FROM stratus_app;
REVOKE ALL ON FUNCTION reconcile_interrupted_work(text) FROM PUBLIC;
