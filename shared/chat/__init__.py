"""Chat turns: a question in a conversation, answered by an agent and streamed as events."""
