-- Smart-reasoning agents (docs/adr/0040-smart-reasoning-agent-loop.md): every step of an
-- answer's tool-calling loop (the model's thought, the tools it called with their arguments,
-- status, truncated output and time) is stored with the answer and returned by the messages API.
ALTER TABLE messages ADD COLUMN steps jsonb NOT NULL DEFAULT '[]'::jsonb;

-- The built-in smart-reasoning agent calls the clock and reads public web pages (with a
-- knowledge base attached to a copy, it searches it too).
UPDATE agents SET config = config || jsonb_build_object('tools', jsonb_build_array(
        jsonb_build_object('tool_id', 'builtin', 'operations', jsonb_build_array('current_time', 'web_fetch'))))
 WHERE id = '0190f5a0-0000-7000-8000-00000000a002' AND tenant_id IS NULL;
