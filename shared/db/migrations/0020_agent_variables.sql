-- Agent variables (Coze's "memory"; docs/variables.md, docs/adr/0045-agent-variables-and-files.md):
-- an agent declares them (name, description, default) in its configuration; their values are
-- kept here per agent and end user (the client's "user", or "member:<user id>"). A prompt reads
-- them as {{name}}, a chatflow as sys.user_variables.<name>.

CREATE TABLE agent_variable_values (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    end_user    text NOT NULL CHECK (length(end_user) BETWEEN 1 AND 255),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    value       text NOT NULL CHECK (length(value) <= 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, end_user, name)
);
CREATE INDEX agent_variable_values_tenant_idx ON agent_variable_values (tenant_id, agent_id, end_user);

SELECT enable_tenant_rls('agent_variable_values'::regclass);
CREATE POLICY tenant_isolation ON agent_variable_values
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- Values are set (upserted) and removed by name; they go with their agent's row when it is purged.
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_variable_values TO stratus_app;
