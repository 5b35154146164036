-- Chatflows (docs/adr/0037-chatflows.md): a chatflow's conversation variables, kept per
-- conversation (what its assigner nodes changed is what the conversation's next turn reads), and
-- the chat context of a chatflow's run.

CREATE TABLE conversation_variables (
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The variable's name, as the chatflow declares it (["conversation", name]).
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    -- Its declared type when written: a chatflow version that declares another type reads its
    -- default instead.
    value_type       text NOT NULL,
    value            jsonb,
    -- The chatflow and the run that wrote it last.
    workflow_id      uuid NOT NULL,
    run_id           uuid NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, name)
);
CREATE INDEX conversation_variables_tenant_idx ON conversation_variables (tenant_id, conversation_id);

SELECT enable_tenant_rls('conversation_variables'::regclass);
CREATE POLICY tenant_isolation ON conversation_variables
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- Written (upserted) by chatflow runs; they go with their conversation when it is purged.
GRANT SELECT, INSERT, UPDATE ON conversation_variables TO stratus_app;

-- A chatflow run started by a chat turn: its conversation, the answer message it writes, the
-- user's message (sys.query) and the turn's number (sys.dialogue_count). NULL for other runs.
ALTER TABLE workflow_runs
    ADD COLUMN conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL,
    ADD COLUMN message_id uuid,
    ADD COLUMN query text,
    ADD COLUMN dialogue_count integer,
    -- A chatflow run's conversation variables as they stand (the defaults and what the
    -- conversation held when it started, then each assigner's changes).
    ADD COLUMN conversation jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX workflow_runs_conversation_idx ON workflow_runs (conversation_id) WHERE conversation_id IS NOT NULL;

-- The text a chatflow's node gave the chat: an answer node's, or a container's answer children's.
ALTER TABLE node_runs ADD COLUMN answer text;
