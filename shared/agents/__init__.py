"""Agents: drafts, published versions, built-ins (docs/adr/0026-agents.md)."""
