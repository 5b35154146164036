-- Agents: editable drafts and immutable published versions (docs/adr/0026-agents.md).
-- Built-in agents (tenant_id NULL, a slug) are visible to every tenant and writable by none.

CREATE TABLE agents (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid REFERENCES tenants (id) ON DELETE CASCADE,
    -- Built-ins only: 'builtin-quick-answer', 'builtin-smart-reasoning'.
    slug               text CHECK (slug ~ '^builtin-[a-z0-9-]{1,60}$'),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- An https URL or a short emoji.
    avatar             text CHECK (length(avatar) <= 500),
    -- The draft configuration (shared/agents/config.py; schema_version inside).
    config             jsonb NOT NULL,
    -- The latest published version's number (agent_versions.number), NULL before the first.
    published_version  integer,
    published_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    version            integer NOT NULL DEFAULT 1,
    CHECK ((slug IS NULL) = (tenant_id IS NOT NULL))
);
-- Names are unique per scope (one tenant, or the built-ins) among live agents, ignoring case.
CREATE UNIQUE INDEX agents_scope_name_key
    ON agents (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name))
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX agents_slug_key ON agents (slug) WHERE slug IS NOT NULL;
CREATE INDEX agents_tenant_idx ON agents (tenant_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE agent_versions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    number        integer NOT NULL CHECK (number >= 1),
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    avatar        text,
    config        jsonb NOT NULL,
    note          text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    published_by  uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX agent_versions_number_key ON agent_versions (agent_id, number);
CREATE INDEX agent_versions_tenant_idx ON agent_versions (tenant_id, created_at);

SELECT enable_tenant_rls(t::regclass) FROM unnest(ARRAY['agents', 'agent_versions']) AS t;
-- Built-ins are readable by every tenant, never writable by the application role: one policy
-- per command (a single USING clause would also govern UPDATE and DELETE, as 0004 explains).
CREATE POLICY agents_read ON agents FOR SELECT
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant());
CREATE POLICY agents_insert ON agents FOR INSERT
    WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY agents_update ON agents FOR UPDATE
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON agent_versions
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

-- Agents are soft-deleted (no DELETE); published versions are immutable: inserted and read,
-- never updated or deleted by the application (they go with their agent when the retention
-- purge removes it).
GRANT SELECT, INSERT, UPDATE ON agents TO stratus_app;
GRANT SELECT, INSERT ON agent_versions TO stratus_app;

INSERT INTO retention_tables VALUES ('agents', 60);

-- The built-in agents. Fields left out of their configuration take the defaults of
-- shared/agents/config.py when read; "model": {"name": null} is the tenant's default chat model.
INSERT INTO agents (id, tenant_id, slug, name, description, avatar, config) VALUES
('0190f5a0-0000-7000-8000-00000000a001', NULL, 'builtin-quick-answer', 'Quick answer',
 'Answers directly and briefly, grounded in the knowledge bases you attach.', U&'\26A1',
 jsonb_build_object(
    'schema_version', 1,
    'mode', 'quick-answer',
    'model', jsonb_build_object('name', NULL, 'temperature', 0.3, 'top_p', 1.0),
    'system_prompt',
    'You are a helpful, precise assistant. Answer the user''s question directly and concisely. '
    || 'When reference material from the knowledge base is provided, base your answer on it and '
    || 'cite the sources you used; if the material does not contain the answer, say so plainly '
    || 'instead of guessing. Answer in the language of the question.',
    'opening_message', 'Hi! Ask me anything and I will answer briefly.',
    'suggested_questions', jsonb_build_array('What can you help me with?'),
    'memory', jsonb_build_object('turns', 10, 'max_tokens', 4000))),
('0190f5a0-0000-7000-8000-00000000a002', NULL, 'builtin-smart-reasoning', 'Smart reasoning',
 'Plans, looks things up step by step and reasons before answering.', U&'\+01F9E0',
 jsonb_build_object(
    'schema_version', 1,
    'mode', 'smart-reasoning',
    'model', jsonb_build_object('name', NULL, 'temperature', 0.2, 'top_p', 1.0),
    'system_prompt',
    'You are a careful assistant that reasons before answering. Break the question into steps, '
    || 'gather the facts you need from the knowledge base and the tools available, check them '
    || 'against each other, then give a clear final answer with the sources you relied on. If the '
    || 'information is insufficient, say what is missing. Answer in the language of the question.',
    'opening_message', 'Hi! Give me a question that needs some thought.',
    'suggested_questions', jsonb_build_array('Compare the options in our documents and recommend one.'),
    'memory', jsonb_build_object('turns', 20, 'max_tokens', 8000),
    'query_rewrite', true));
