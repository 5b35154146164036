"""Agent functions: drafts, published versions, built-ins, copies."""
