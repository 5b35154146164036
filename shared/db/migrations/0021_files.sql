-- Files (docs/files.md, docs/adr/0045-agent-variables-and-files.md): bytes a client uploads once
-- and names by id afterwards (workflow inputs, compatible APIs' uploads). The bytes live in the
-- uploads bucket at s3_key (tenants/<tenant>/files/<id>/content); the row is written after them.

CREATE TABLE files (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type  text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 255),
    size          bigint NOT NULL CHECK (size > 0),
    sha256        text NOT NULL CHECK (length(sha256) = 64),
    s3_key        text NOT NULL,
    -- Who uploaded it: the token's user and the token.
    created_by    uuid,
    api_key_id    uuid,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_tenant_idx ON files (tenant_id, created_at);

SELECT enable_tenant_rls('files'::regclass);
CREATE POLICY tenant_isolation ON files
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT ON files TO stratus_app;
