-- Conversations and their messages (docs/adr/0027-chat.md). A conversation belongs to a tenant,
-- an agent and an end user (the "user" a client sends, as with Dify or Coze); each turn is a
-- user message and the assistant message answering it.

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id         uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- The end user: the client's "user" value, or "member:<user id>" of the token's owner.
    end_user         text NOT NULL CHECK (length(end_user) BETWEEN 1 AND 255),
    name             text NOT NULL DEFAULT '' CHECK (length(name) <= 255),
    -- A debug conversation runs the agent's draft instead of its latest published version.
    draft            boolean NOT NULL DEFAULT false,
    -- The system prompt's variables, fixed for the conversation by its first turn.
    inputs           jsonb NOT NULL DEFAULT '{}'::jsonb,
    message_count    integer NOT NULL DEFAULT 0,
    last_message_at  timestamptz,
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    version          integer NOT NULL DEFAULT 1
);
CREATE INDEX conversations_user_idx
    ON conversations (tenant_id, end_user, updated_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX conversations_agent_idx
    ON conversations (tenant_id, agent_id, updated_at DESC) WHERE deleted_at IS NULL;
-- The foreign key's own index: purging an agent finds its conversations without a scan.
CREATE INDEX conversations_agent_fk_idx ON conversations (agent_id);

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- 1, 2, 3… within the conversation: a user message and its answer are written in one
    -- transaction and share a timestamp, so order comes from here.
    position         integer NOT NULL CHECK (position >= 1),
    role             text NOT NULL CHECK (role IN ('user', 'assistant')),
    -- An answer's question.
    reply_to         uuid REFERENCES messages (id) ON DELETE CASCADE,
    content          text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    agent_id         uuid NOT NULL,
    -- The published version that answered (NULL: a draft chat or a built-in).
    agent_version    integer,
    -- The retrieved segments the answer was given, numbered as cited ([1], [2]…).
    refs             jsonb NOT NULL DEFAULT '[]'::jsonb,
    -- The standalone question retrieval used, when query rewrite changed it.
    rewritten_query  text,
    model            text,
    stop_reason      text,
    -- {input_tokens, output_tokens, total_tokens, estimated}
    usage            jsonb,
    -- {retrieval_ms, first_token_ms, total_ms}
    latency          jsonb,
    -- What the prompt kept and dropped to fit the model's context.
    context          jsonb,
    error_code       text,
    error            text,
    feedback_rating  text CHECK (feedback_rating IN ('like', 'dislike')),
    feedback_content text CHECK (length(feedback_content) <= 2000),
    feedback_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE UNIQUE INDEX messages_position_key ON messages (conversation_id, position);
-- One answer at a time per conversation (the turn also checks it under the conversation's lock).
CREATE UNIQUE INDEX messages_one_running_key ON messages (conversation_id) WHERE status = 'running';
CREATE INDEX messages_running_idx ON messages (updated_at) WHERE status = 'running';
-- The foreign key's own index: deleting a question finds its answer without a scan.
CREATE INDEX messages_reply_to_idx ON messages (reply_to) WHERE reply_to IS NOT NULL;

SELECT enable_tenant_rls(t::regclass) FROM unnest(ARRAY['conversations', 'messages']) AS t;
CREATE POLICY tenant_isolation ON conversations
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON messages
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- Conversations are soft-deleted; messages go with their conversation when it is purged.
GRANT SELECT, INSERT, UPDATE ON conversations, messages TO stratus_app;

INSERT INTO retention_tables VALUES ('conversations', 55);

-- A restart of the local runtime ends the turns it was generating.
INSERT INTO reconcile_targets (table_name, status_column, active_statuses, failed_status, error_column)
VALUES ('messages', 'status', ARRAY['running'], 'failed', 'error');

-- The reaper works across tenants: answers still running whose generator has written nothing
-- for longer than p_older_than (a live turn checkpoints every few seconds).
CREATE OR REPLACE FUNCTION chat_turns_stuck(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, message_id uuid, conversation_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT m.tenant_id, m.id, m.conversation_id FROM messages m
    WHERE m.status = 'running' AND m.updated_at < now() - p_older_than
    ORDER BY m.updated_at
    LIMIT p_limit
$$;
ALTER FUNCTION chat_turns_stuck(interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION chat_turns_stuck(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat_turns_stuck(interval, integer) TO stratus_app;
