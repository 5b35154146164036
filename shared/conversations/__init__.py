"""Conversations with agents and their messages (one turn: a question and its answer)."""
