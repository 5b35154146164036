-- Tenancy, users, memberships, access tokens; row-level security for every tenant-owned table.
-- Runs as the schema owner. The application connects as stratus_app, which owns nothing,
-- so FORCE ROW LEVEL SECURITY and the policies below always apply to it.

-- The tenant of the current transaction, set by the application with
-- set_config('app.tenant_id', ..., true). NULL (no rows visible) when unset.
CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    version     integer NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE members (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    version     integer NOT NULL DEFAULT 1
);
-- Unique per tenant among live rows: a removed member can be invited again.
CREATE UNIQUE INDEX members_tenant_user_key ON members (tenant_id, user_id) WHERE deleted_at IS NULL;
CREATE INDEX members_tenant_created_idx ON members (tenant_id, created_at);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash      bytea NOT NULL,
    prefix          text NOT NULL,
    scopes          text[] NOT NULL DEFAULT '{}',
    resource_type   text CHECK (resource_type IN ('agent', 'workflow')),
    resource_id     uuid,
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    version         integer NOT NULL DEFAULT 1,
    CHECK ((resource_type IS NULL) = (resource_id IS NULL))
);
CREATE UNIQUE INDEX api_keys_token_hash_key ON api_keys (token_hash);
CREATE UNIQUE INDEX api_keys_tenant_user_name_key ON api_keys (tenant_id, user_id, lower(name))
    WHERE deleted_at IS NULL;
CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at);

-- Platform administrators' tokens belong to no tenant; the application role has no
-- privilege on this table and reaches it only through auth_resolve_token().
CREATE TABLE platform_admin_tokens (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Row-level security --------------------------------------------------------------
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());

ALTER TABLE members ENABLE ROW LEVEL SECURITY;
ALTER TABLE members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON members
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

-- Users are global (one person may belong to several tenants); a tenant sees only its
-- members' users. New users are created through ensure_user().
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY member_of_current_tenant ON users
    USING (EXISTS (SELECT 1 FROM members m
                   WHERE m.user_id = users.id AND m.tenant_id = app_current_tenant()));

ALTER TABLE platform_admin_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform_admin_tokens FORCE ROW LEVEL SECURITY;

-- SECURITY DEFINER entry points: explicit arguments, pinned search_path ----------------

-- Resolve a token hash before any tenant is known (the authorizer).
CREATE OR REPLACE FUNCTION auth_resolve_token(p_hash bytea)
RETURNS TABLE (kind text, token_id uuid, tenant_id uuid, user_id uuid, role text, scopes text[],
               resource_type text, resource_id uuid, expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT 'api_key', k.id, k.tenant_id, k.user_id, m.role, k.scopes, k.resource_type,
           k.resource_id, k.expires_at
      FROM api_keys k
      JOIN members m ON m.tenant_id = k.tenant_id AND m.user_id = k.user_id AND m.deleted_at IS NULL
      JOIN tenants t ON t.id = k.tenant_id AND t.deleted_at IS NULL AND t.status = 'active'
     WHERE k.token_hash = p_hash AND k.revoked_at IS NULL AND k.deleted_at IS NULL
    UNION ALL
    SELECT 'platform_admin', p.id, NULL, NULL, NULL, ARRAY['*'], NULL, NULL, NULL
      FROM platform_admin_tokens p
     WHERE p.token_hash = p_hash AND p.revoked_at IS NULL
$$;

-- Record last use at most once a minute per token: the authorizer runs on every cache miss.
CREATE OR REPLACE FUNCTION auth_touch_token(p_token_id uuid) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    UPDATE api_keys SET last_used_at = now()
     WHERE id = p_token_id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
$$;

-- Find or create a user by e-mail (users are shared across tenants).
CREATE OR REPLACE FUNCTION ensure_user(p_id uuid, p_email text, p_name text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_id uuid;
BEGIN
    INSERT INTO users (id, email, name) VALUES (p_id, p_email, coalesce(p_name, ''))
        ON CONFLICT (lower(email)) DO NOTHING;
    SELECT id INTO v_id FROM users WHERE lower(email) = lower(p_email);
    RETURN v_id;
END
$$;

-- Install or replace a platform admin token (start-up of the local runtime, the deploy).
CREATE OR REPLACE FUNCTION ensure_platform_admin_token(p_id uuid, p_name text, p_hash bytea) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    INSERT INTO platform_admin_tokens (id, name, token_hash) VALUES (p_id, p_name, p_hash)
        ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL
$$;

-- Retention: tables whose soft-deleted rows the maintenance schedule purges, in an order
-- that respects foreign keys (children first).
CREATE TABLE retention_tables (
    table_name  text PRIMARY KEY,
    purge_order integer NOT NULL
);
INSERT INTO retention_tables VALUES ('api_keys', 10), ('members', 20), ('tenants', 90);

CREATE OR REPLACE FUNCTION purge_tables() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT table_name FROM retention_tables ORDER BY purge_order $$;

-- Delete up to p_limit rows soft-deleted before p_cutoff from one registered table.
CREATE OR REPLACE FUNCTION purge_soft_deleted(p_table text, p_cutoff timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM retention_tables WHERE table_name = p_table) THEN
        RAISE EXCEPTION 'table % is not registered for purging', p_table USING ERRCODE = '22023';
    END IF;
    EXECUTE format('DELETE FROM %I WHERE id IN (SELECT id FROM %I WHERE deleted_at < $1 LIMIT $2)',
                   p_table, p_table)
        USING p_cutoff, p_limit;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Privileges of the application role ---------------------------------------------------
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, members, api_keys TO stratus_app;
GRANT SELECT ON users TO stratus_app;
GRANT UPDATE (name, updated_at) ON users TO stratus_app;
REVOKE ALL ON platform_admin_tokens, retention_tables FROM stratus_app;
REVOKE ALL ON FUNCTION auth_resolve_token(bytea), auth_touch_token(uuid), ensure_user(uuid, text, text),
    ensure_platform_admin_token(uuid, text, bytea), purge_tables(), purge_soft_deleted(text, timestamptz, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_current_tenant(), auth_resolve_token(bytea), auth_touch_token(uuid),
    ensure_user(uuid, text, text), purge_tables(), purge_soft_deleted(text, timestamptz, integer)
    TO stratus_app;
