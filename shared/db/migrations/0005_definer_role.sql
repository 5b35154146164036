-- SECURITY DEFINER functions run as their owner, and FORCE ROW LEVEL SECURITY applies to
-- owners too. Locally the owner is a superuser (which bypasses RLS), but on Aurora the
-- master user is not: every definer function would see no rows. They are therefore owned by
-- stratus_definer, a role without login that row-level security admits through explicit
-- policies — nothing else can act as it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stratus_definer') THEN
        CREATE ROLE stratus_definer NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- The migrating owner hands functions over, which needs membership.
GRANT stratus_definer TO CURRENT_USER;

-- CREATE: a new function owner must be allowed to create in the function's schema.
GRANT USAGE, CREATE ON SCHEMA public TO stratus_definer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO stratus_definer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO stratus_definer;

-- Enables tenant row-level security on a table the way every tenant table has it: forced,
-- isolated by app_current_tenant(), and open to the definer role. Later migrations call it.
CREATE OR REPLACE FUNCTION enable_tenant_rls(p_table regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
    EXECUTE format('DROP POLICY IF EXISTS definer_access ON %s', p_table);
    EXECUTE format('CREATE POLICY definer_access ON %s TO stratus_definer USING (true) WITH CHECK (true)', p_table);
END
$$;
REVOKE ALL ON FUNCTION enable_tenant_rls(regclass) FROM PUBLIC;

SELECT enable_tenant_rls(t::regclass)
  FROM unnest(ARRAY['tenants', 'users', 'members', 'api_keys', 'platform_admin_tokens', 'models',
                    'tenant_model_defaults', 'usage_records', 'tenant_quotas']) AS t;

ALTER FUNCTION auth_resolve_token(bytea) OWNER TO stratus_definer;
ALTER FUNCTION auth_touch_token(uuid) OWNER TO stratus_definer;
ALTER FUNCTION ensure_user(uuid, text, text) OWNER TO stratus_definer;
ALTER FUNCTION ensure_platform_admin_token(uuid, text, bytea) OWNER TO stratus_definer;
ALTER FUNCTION purge_tables() OWNER TO stratus_definer;
ALTER FUNCTION purge_soft_deleted(text, timestamptz, integer) OWNER TO stratus_definer;
ALTER FUNCTION reconcile_interrupted_work(text) OWNER TO stratus_definer;
ALTER FUNCTION models_refresh(jsonb) OWNER TO stratus_definer;

-- A member's display name belongs to the membership: one tenant never sees (or overwrites)
-- the name another tenant entered for the same person.
ALTER TABLE members ADD COLUMN name text NOT NULL DEFAULT '' CHECK (length(name) <= 100);
