"""Dify's service API over the agent or workflow a key is bound to (docs/dify-api.md)."""
