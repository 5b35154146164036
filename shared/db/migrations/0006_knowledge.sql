-- Knowledge bases, their documents and segments (docs/adr/0022). Vectors and full-text
-- entries live behind the vector-store port (0007 for PostgreSQL, or OpenSearch).

-- pgvector is a trusted extension: the database owner creates it (Aurora's master user too).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE knowledge_bases (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- Fixed once the knowledge base holds a document: vectors of two models never mix.
    embedding_model  text NOT NULL,
    dimensions       integer NOT NULL CHECK (dimensions > 0),
    chunking         jsonb NOT NULL,
    retrieval        jsonb NOT NULL,
    -- 'deleting': removal of its documents, vectors and objects is under way.
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleting')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    version          integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX knowledge_bases_name_key ON knowledge_bases (tenant_id, lower(name))
    WHERE deleted_at IS NULL;
CREATE INDEX knowledge_bases_tenant_idx ON knowledge_bases (tenant_id, created_at);

CREATE TABLE documents (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    knowledge_base_id  uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type       text NOT NULL,
    size               bigint NOT NULL CHECK (size >= 0),
    source             text NOT NULL CHECK (source IN ('upload', 'text')),
    s3_key             text NOT NULL,
    -- SHA-256 of the object as indexed; identical content in one knowledge base is refused.
    content_hash       text,
    metadata           jsonb NOT NULL DEFAULT '{}',
    tags               text[] NOT NULL DEFAULT '{}',
    chunking           jsonb NOT NULL,
    -- pending_upload: waiting for the client's upload; uploaded: queued for indexing.
    status             text NOT NULL DEFAULT 'pending_upload'
                       CHECK (status IN ('pending_upload', 'uploaded', 'parsing', 'chunking', 'embedding',
                                         'indexed', 'failed')),
    error_code         text,
    error              text,
    segments_total     integer NOT NULL DEFAULT 0,
    segments_done      integer NOT NULL DEFAULT 0,
    tokens             integer NOT NULL DEFAULT 0,
    pages              integer,
    -- {"parsing_ms": .., "chunking_ms": .., "embedding_ms": .., "total_ms": ..}
    timings            jsonb NOT NULL DEFAULT '{}',
    -- Incremented by every (re)indexing; names its Step Functions execution.
    attempt            integer NOT NULL DEFAULT 0,
    -- Retries the sweeper has made of the current attempt.
    retries            integer NOT NULL DEFAULT 0,
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    processing_started_at timestamptz,
    indexed_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    version            integer NOT NULL DEFAULT 1
);
CREATE INDEX documents_kb_idx ON documents (knowledge_base_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX documents_tenant_idx ON documents (tenant_id, created_at);
CREATE INDEX documents_hash_idx ON documents (knowledge_base_id, content_hash) WHERE deleted_at IS NULL;
-- The sweeper's scan: unfinished documents by age.
CREATE INDEX documents_unfinished_idx ON documents (status_changed_at)
    WHERE status IN ('uploaded', 'parsing', 'chunking', 'embedding') AND deleted_at IS NULL;

CREATE TABLE segments (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    knowledge_base_id  uuid NOT NULL REFERENCES knowledge_bases (id) ON DELETE CASCADE,
    document_id        uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    -- 'chunk': searched; 'parent': returned in place of its children (parent-child chunking).
    kind               text NOT NULL DEFAULT 'chunk' CHECK (kind IN ('chunk', 'parent')),
    -- Order within the document and kind; manual segments take the next free position.
    position           integer NOT NULL CHECK (position >= 0),
    parent_id          uuid REFERENCES segments (id) ON DELETE CASCADE,
    text               text NOT NULL CHECK (length(text) BETWEEN 1 AND 100000),
    tokens             integer NOT NULL DEFAULT 0,
    page               integer,
    content_hash       text NOT NULL,
    enabled            boolean NOT NULL DEFAULT true,
    source             text NOT NULL DEFAULT 'auto' CHECK (source IN ('auto', 'manual')),
    -- pending: not yet in the vector store (or changed since); indexed: searchable.
    index_status       text NOT NULL DEFAULT 'pending' CHECK (index_status IN ('pending', 'indexed')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1
);
-- A redelivered event re-chunks to the same positions: ON CONFLICT makes it a no-op.
CREATE UNIQUE INDEX segments_position_key ON segments (document_id, kind, position);
CREATE INDEX segments_kb_idx ON segments (knowledge_base_id);
CREATE INDEX segments_pending_idx ON segments (document_id, position) WHERE index_status = 'pending';
CREATE INDEX segments_parent_idx ON segments (parent_id) WHERE parent_id IS NOT NULL;

SELECT enable_tenant_rls(t::regclass) FROM unnest(ARRAY['knowledge_bases', 'documents', 'segments']) AS t;
CREATE POLICY tenant_isolation ON knowledge_bases
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON documents
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY tenant_isolation ON segments
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON knowledge_bases, documents, segments TO stratus_app;

-- Soft-deleted documents and knowledge bases are purged after the retention period
-- (segments go with their document through the foreign key).
INSERT INTO retention_tables VALUES ('documents', 40), ('knowledge_bases', 50);

-- A restart of the local runtime fails what was being indexed (the sweeper retries it).
INSERT INTO reconcile_targets (table_name, status_column, active_statuses, failed_status, error_column)
VALUES ('documents', 'status', ARRAY['parsing', 'chunking', 'embedding'], 'failed', 'error');

-- The sweeper works across tenants: documents in a non-final state unchanged for longer than
-- the timeout, and uploads never made (pending_upload past the upload form's life). Returns
-- what the caller needs to retry or fail exactly that attempt.
CREATE OR REPLACE FUNCTION documents_stuck(p_older_than interval, p_upload_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, document_id uuid, status text, attempt integer, retries integer, s3_key text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT d.tenant_id, d.id, d.status, d.attempt, d.retries, d.s3_key FROM documents d
     WHERE d.deleted_at IS NULL
       AND ((d.status IN ('uploaded', 'parsing', 'chunking', 'embedding')
             AND d.status_changed_at < now() - p_older_than)
         OR (d.status = 'pending_upload' AND d.status_changed_at < now() - p_upload_older_than))
     ORDER BY d.status_changed_at LIMIT p_limit
$$;
ALTER FUNCTION documents_stuck(interval, interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION documents_stuck(interval, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION documents_stuck(interval, interval, integer) TO stratus_app;
CREATE INDEX documents_pending_upload_idx ON documents (status_changed_at)
    WHERE status = 'pending_upload' AND deleted_at IS NULL;

-- Knowledge bases whose deletion stopped (its execution failed or was stopped): restarted.
CREATE OR REPLACE FUNCTION knowledge_bases_stuck_deleting(p_older_than interval, p_limit integer)
RETURNS TABLE (tenant_id uuid, knowledge_base_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT k.tenant_id, k.id FROM knowledge_bases k
     WHERE k.status = 'deleting' AND k.deleted_at IS NULL AND k.updated_at < now() - p_older_than
     ORDER BY k.updated_at LIMIT p_limit
$$;
ALTER FUNCTION knowledge_bases_stuck_deleting(interval, integer) OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION knowledge_bases_stuck_deleting(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION knowledge_bases_stuck_deleting(interval, integer) TO stratus_app;
