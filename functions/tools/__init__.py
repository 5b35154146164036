"""Tool provider functions (docs/tools.md)."""
