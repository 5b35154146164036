"""Tools: tenants' OpenAPI tool sets and MCP servers, the built-ins, and published workflows
as tools; one way to list them and one to call them (shared/tools/contract.py)."""
