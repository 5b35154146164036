"""Files: bytes a client uploads once and names by id afterwards (workflow inputs, chat input,
compatible APIs' uploads). Stored in the uploads bucket under ``tenants/<tenant>/files/``."""
