-- The model catalog (platform rows: tenant_id NULL, loaded from the shipped YAML files; tenant
-- rows: a tenant's own models with KMS-encrypted credentials), tenant defaults, usage and quotas.

CREATE TABLE models (
    id               uuid PRIMARY KEY,
    tenant_id        uuid REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL,
    spec             jsonb NOT NULL,
    source           text NOT NULL CHECK (source IN ('catalog', 'tenant')),
    catalog_file     text,
    catalog_version  integer,
    -- KMS ciphertext of the tenant's API key (encryption context: the tenant id). Never returned.
    credentials      bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    version          integer NOT NULL DEFAULT 1,
    CHECK ((source = 'catalog') = (tenant_id IS NULL))
);
-- One live model per name and scope (platform, or one tenant).
CREATE UNIQUE INDEX models_scope_name_key
    ON models (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name))
    WHERE deleted_at IS NULL;
CREATE INDEX models_tenant_idx ON models (tenant_id, created_at);

ALTER TABLE models ENABLE ROW LEVEL SECURITY;
ALTER TABLE models FORCE ROW LEVEL SECURITY;
-- Platform models are visible to every tenant but writable only through models_refresh().
CREATE POLICY tenant_isolation ON models
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

CREATE TABLE tenant_model_defaults (
    tenant_id            uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    chat_model           text,
    chat_fallback_model  text,
    embedding_model      text,
    rerank_model         text,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              integer NOT NULL DEFAULT 1
);
ALTER TABLE tenant_model_defaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_model_defaults FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_model_defaults
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

CREATE TABLE usage_records (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    model_name     text NOT NULL,
    call_type      text NOT NULL CHECK (call_type IN ('chat', 'embedding', 'rerank')),
    input_tokens   integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens  integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    estimated      boolean NOT NULL DEFAULT false,
    latency_ms     integer NOT NULL DEFAULT 0,
    cost           numeric(20, 10) NOT NULL DEFAULT 0,
    outcome        text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_records_tenant_time_idx ON usage_records (tenant_id, created_at);
ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_records
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

CREATE TABLE tenant_quotas (
    tenant_id            uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    monthly_tokens_soft  bigint CHECK (monthly_tokens_soft > 0),
    monthly_tokens_hard  bigint CHECK (monthly_tokens_hard > 0),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (monthly_tokens_soft IS NULL OR monthly_tokens_hard IS NULL OR monthly_tokens_soft <= monthly_tokens_hard)
);
ALTER TABLE tenant_quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_quotas
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

-- Load the shipped catalog: p_models is a JSON array of {id, name, spec, file, version}.
-- New names are inserted, changed specs updated, names no longer shipped soft-deleted.
CREATE OR REPLACE FUNCTION models_refresh(p_models jsonb)
RETURNS TABLE (model_count integer, new_models text[], updated_models text[], removed_models text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    item jsonb;
    current record;
    v_new text[] := '{}';
    v_updated text[] := '{}';
    v_removed text[] := '{}';
BEGIN
    -- One refresh at a time (the schedule and an admin may race).
    PERFORM pg_advisory_xact_lock(hashtext('models_refresh'));
    FOR item IN SELECT * FROM jsonb_array_elements(p_models) LOOP
        SELECT id, spec INTO current FROM models
         WHERE tenant_id IS NULL AND deleted_at IS NULL AND lower(name) = lower(item->>'name');
        IF NOT FOUND THEN
            INSERT INTO models (id, tenant_id, name, spec, source, catalog_file, catalog_version)
            VALUES ((item->>'id')::uuid, NULL, item->>'name', item->'spec', 'catalog', item->>'file',
                    (item->>'version')::integer);
            v_new := v_new || (item->>'name');
        ELSIF current.spec IS DISTINCT FROM item->'spec' THEN
            UPDATE models SET spec = item->'spec', catalog_file = item->>'file',
                              catalog_version = (item->>'version')::integer,
                              updated_at = now(), version = version + 1
             WHERE id = current.id;
            v_updated := v_updated || (item->>'name');
        END IF;
    END LOOP;
    WITH gone AS (
        UPDATE models SET deleted_at = now(), updated_at = now(), version = version + 1
         WHERE tenant_id IS NULL AND deleted_at IS NULL
           AND lower(name) NOT IN (SELECT lower(e->>'name') FROM jsonb_array_elements(p_models) e)
        RETURNING name)
    SELECT coalesce(array_agg(name ORDER BY name), '{}') INTO v_removed FROM gone;
    RETURN QUERY SELECT (SELECT count(*)::integer FROM models WHERE tenant_id IS NULL AND deleted_at IS NULL),
                        v_new, v_updated, v_removed;
END
$$;

INSERT INTO retention_tables VALUES ('models', 15);

GRANT SELECT, INSERT, UPDATE, DELETE ON models, tenant_model_defaults, tenant_quotas TO stratus_app;
GRANT SELECT, INSERT ON usage_records TO stratus_app;
REVOKE ALL ON FUNCTION models_refresh(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION models_refresh(jsonb) TO stratus_app;
