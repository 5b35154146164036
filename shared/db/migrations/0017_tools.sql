-- Tool providers (docs/adr/0039-tool-providers.md): a tenant's OpenAPI tool sets and remote MCP
-- servers. Secrets (API keys, tokens, passwords) are KMS ciphertext bound to the tenant through
-- the encryption context, as tenant model keys are, and never returned.

CREATE TABLE tool_providers (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind          text NOT NULL CHECK (kind IN ('openapi', 'mcp')),
    description   text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- openapi: the document (an object), its derived operations and the base URL; mcp: the URL.
    document      jsonb,
    operations    jsonb,
    base_url      text CHECK (length(base_url) <= 2000),
    url           text CHECK (length(url) <= 2000),
    -- The auth without its secret: {"type", "in", "name", "username"}.
    auth          jsonb NOT NULL DEFAULT '{"type": "none"}',
    -- KMS ciphertext of the auth's secret (encryption context: the tenant id). Never returned.
    credentials   bytea,
    timeout_s     double precision NOT NULL DEFAULT 30 CHECK (timeout_s > 0 AND timeout_s <= 300),
    tool_timeouts jsonb NOT NULL DEFAULT '{}',
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    version       integer NOT NULL DEFAULT 1,
    CHECK ((kind = 'openapi') = (document IS NOT NULL AND operations IS NOT NULL AND base_url IS NOT NULL)),
    CHECK ((kind = 'mcp') = (url IS NOT NULL))
);
-- Names are unique per tenant among live providers, ignoring case.
CREATE UNIQUE INDEX tool_providers_tenant_name_key ON tool_providers (tenant_id, lower(name))
    WHERE deleted_at IS NULL;
CREATE INDEX tool_providers_tenant_idx ON tool_providers (tenant_id, created_at) WHERE deleted_at IS NULL;

SELECT enable_tenant_rls('tool_providers'::regclass);
CREATE POLICY tenant_isolation ON tool_providers
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

-- Soft-deleted (no DELETE by the application); the retention purge removes them.
GRANT SELECT, INSERT, UPDATE ON tool_providers TO stratus_app;

INSERT INTO retention_tables VALUES ('tool_providers', 62);
