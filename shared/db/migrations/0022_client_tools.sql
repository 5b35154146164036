-- Client-side tools (docs/adr/0051-client-side-tools.md): a smart-reasoning answer pauses when
-- the model calls a tool the client runs. It is stored 'requires_action' with the calls the
-- client must answer and when that offer ends; the steps column holds everything else the loop
-- needs to go on (with the conversation's history). Nothing waits meanwhile: a submit of the
-- outputs claims the answer back to 'running' and continues it.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('running', 'requires_action', 'completed', 'failed', 'cancelled'));

ALTER TABLE messages
    -- {tool_calls: [{id, name, arguments}]}: the calls waiting for the client's outputs.
    ADD COLUMN required_action   jsonb,
    ADD COLUMN action_expires_at timestamptz;

CREATE INDEX messages_requires_action_idx ON messages (action_expires_at) WHERE status = 'requires_action';

-- The reaper also ends pauses whose offer expired (status says which kind it found): a paused
-- answer is never stuck while it may still be answered, however long that is.
DROP FUNCTION chat_turns_stuck(interval, integer);
CREATE FUNCTION chat_turns_stuck(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, message_id uuid, conversation_id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    -- Two arms, each on its partial index.
    (SELECT m.tenant_id, m.id, m.conversation_id, m.status FROM messages m
      WHERE m.status = 'running' AND m.updated_at < now() - p_older_than
      ORDER BY m.updated_at LIMIT p_limit)
    UNION ALL
    (SELECT m.tenant_id, m.id, m.conversation_id, m.status FROM messages m
      WHERE m.status = 'requires_action' AND m.action_expires_at < now()
      ORDER BY m.action_expires_at LIMIT p_limit)
    LIMIT p_limit
$$;
ALTER FUNCTION chat_turns_stuck(interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION chat_turns_stuck(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chat_turns_stuck(interval, integer) TO stratus_app;
