-- Platform catalog rows are readable by every tenant but never writable by the application
-- role: one policy for reading, others for writing (a single USING clause also governed
-- UPDATE and DELETE, which let a tenant transaction delete catalog rows).
DROP POLICY tenant_isolation ON models;
CREATE POLICY models_read ON models FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant());
CREATE POLICY models_insert ON models FOR INSERT
    WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY models_update ON models FOR UPDATE
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY models_delete ON models FOR DELETE
    USING (tenant_id = app_current_tenant());
