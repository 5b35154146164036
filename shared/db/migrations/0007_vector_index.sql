-- The PostgreSQL vector store (docs/adr/0025-vector-stores.md): one row per searchable
-- segment holding its vector, its full-text entry and the fields queries filter on.
--
-- One table serves every embedding size: `embedding` is an untyped vector and each size gets
-- a partial HNSW index over `embedding::vector(N) WHERE dimensions = N` (halfvec(N) above
-- 2,000 dimensions, HNSW's limit for vector), created on demand by segment_index_ensure().
-- Searches are SECURITY DEFINER functions (DESIGN §5): row-level security hides pgvector's
-- distance operators and `@@` (not LEAKPROOF) from indexes, so the application role would
-- scan. The functions take the tenant explicitly, insist it is the transaction's tenant, and
-- filter on it and the knowledge bases themselves. Writes go through the application role
-- under row-level security.

CREATE TABLE segment_index (
    segment_id         uuid PRIMARY KEY REFERENCES segments (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL,
    knowledge_base_id  uuid NOT NULL,
    document_id        uuid NOT NULL,
    dimensions         integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),
    embedding          vector NOT NULL CHECK (vector_dims(embedding) = dimensions),
    -- to_tsvector('simple', <segment text with CJK runs cut into bigrams>)
    search             tsvector NOT NULL,
    metadata           jsonb NOT NULL DEFAULT '{}',
    tags               text[] NOT NULL DEFAULT '{}',
    enabled            boolean NOT NULL DEFAULT true,
    updated_at         timestamptz NOT NULL DEFAULT now()
-- Free space per page lets enabling and disabling (no indexed column changes) be HOT
-- updates, which add no entry to the HNSW index.
) WITH (fillfactor = 80);

-- Deletes and updates by knowledge base or document; also the exact search's path into a
-- small knowledge base.
CREATE INDEX segment_index_scope_idx ON segment_index (tenant_id, knowledge_base_id, document_id);
CREATE INDEX segment_index_search_idx ON segment_index USING gin (search);
-- Selective metadata and tag filters: the planner searches the few matching rows exactly
-- (bitmap scan, then distances) instead of walking the HNSW graph past thousands of rejects.
CREATE INDEX segment_index_metadata_idx ON segment_index USING gin (metadata jsonb_path_ops);
CREATE INDEX segment_index_tags_idx ON segment_index USING gin (tags);

SELECT enable_tenant_rls('segment_index');
CREATE POLICY tenant_isolation ON segment_index
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON segment_index TO stratus_app;
-- The definer role owns the table so segment_index_ensure() may add indexes to it.
ALTER TABLE segment_index OWNER TO stratus_definer;

-- The type a vector of this size is indexed and searched as: vector(N) up to 2,000
-- dimensions, halfvec(N) up to 4,000 (HNSW's limits); larger vectors have no index and are
-- searched exactly (vector(N)).
CREATE FUNCTION segment_index_type(p_dimensions integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = public, pg_temp
AS $$
    SELECT CASE WHEN p_dimensions > 2000 AND p_dimensions <= 4000 THEN format('halfvec(%s)', p_dimensions)
                ELSE format('vector(%s)', p_dimensions) END
$$;

-- Creates the HNSW index for vectors of this size if it is missing; true when it did.
-- Building takes a SHARE lock on the table (writes wait) and scans it once, which happens the
-- first time a knowledge base of a new size is indexed.
CREATE FUNCTION segment_index_ensure(p_dimensions integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    v_name text := format('segment_index_hnsw_%s', p_dimensions);
    v_type text;
BEGIN
    IF p_dimensions IS NULL OR p_dimensions < 1 OR p_dimensions > 16000 THEN
        RAISE EXCEPTION 'dimensions must be between 1 and 16000, not %', p_dimensions USING ERRCODE = '22023';
    END IF;
    IF p_dimensions > 4000 THEN
        RETURN false;
    END IF;
    IF to_regclass('public.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Two first documents of a new size may race: one builds, the other finds it built.
    PERFORM pg_advisory_xact_lock(hashtext('segment_index_ensure'), p_dimensions);
    IF to_regclass('public.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    v_type := segment_index_type(p_dimensions);
    -- ef_construction 128, twice pgvector's default: on the retrieval benchmark (100k segments,
    -- benchmarks/retrieval.py) recall@10 at ef_search 100 was 0.94-0.97 with 64, varying from
    -- build to build, and 0.99 with 128, for 1.5x the build time; m 24 added nothing.
    EXECUTE format('CREATE INDEX %I ON segment_index USING hnsw ((embedding::%s) %s) '
                   'WITH (m = 16, ef_construction = 128) WHERE dimensions = %s',
                   v_name, v_type, split_part(v_type, '(', 1) || '_cosine_ops', p_dimensions);
    RETURN true;
END
$$;

-- The filter clauses a search adds for the arguments it was given, as SQL over the search's
-- parameters $5 (metadata: every key equals), $7 (tags: all present), $8 (documents), and
-- p_metadata_any ({"key": [values]}: every key equals one of its values) as one
-- `metadata @> ANY (<jsonb[] literal of {"key": value} objects>)` per key, spliced in quoted
-- (format %L) so the planner estimates it from the column's statistics. Only given filters
-- become clauses, and each can use an index: containment on the GIN indexes, documents on
-- the scope index. An empty list matches nothing.
CREATE FUNCTION segment_index_filter_sql(p_metadata jsonb, p_metadata_any jsonb, p_tags text[],
                                         p_document_ids uuid[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
AS $$
    SELECT concat(
        CASE WHEN p_metadata IS NOT NULL AND p_metadata <> '{}' THEN ' AND s.metadata @> $5' END,
        (SELECT string_agg(format(' AND s.metadata @> ANY (%L::jsonb[])',
                                  (SELECT array_agg(jsonb_build_object(k, v))
                                     FROM jsonb_array_elements(p_metadata_any -> k) AS v)), '' ORDER BY k)
           FROM jsonb_object_keys(CASE WHEN jsonb_typeof(p_metadata_any) = 'object' THEN p_metadata_any
                                       ELSE '{}' END) AS k),
        CASE WHEN cardinality(p_tags) > 0 THEN ' AND s.tags @> $7' END,
        CASE WHEN p_document_ids IS NOT NULL THEN ' AND s.document_id = ANY ($8)' END)
$$;

-- Every search runs in the tenant's transaction: passing another tenant's id fails.
CREATE FUNCTION segment_index_check_tenant(p_tenant_id uuid) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
BEGIN
    IF p_tenant_id IS NULL OR p_tenant_id IS DISTINCT FROM app_current_tenant() THEN
        RAISE EXCEPTION 'search tenant is not the transaction''s tenant' USING ERRCODE = '42501';
    END IF;
END
$$;

-- Nearest segments by cosine similarity (1 - cosine distance), best first.
--   p_vector: the query vector as pgvector text ('[0.1,...]'), p_dimensions long.
--   p_metadata: {"key": value, ...}, all must equal; p_metadata_any: {"key": [v1, v2], ...},
--   each key must equal one of its values; p_tags: all must be present; p_document_ids: NULL
--   for any document. Disabled segments never match.
-- The planner chooses: for a selective filter or a small knowledge base it reads the matching
-- rows through the GIN or scope index and ranks them exactly; otherwise it walks the HNSW
-- graph. That scan is iterative (hnsw.iterative_scan = relaxed_order): when filters reject the
-- first ef_search candidates it keeps scanning (up to hnsw.max_scan_tuples) instead of
-- returning fewer than p_top_k; relaxed order is then re-sorted by exact distance. If the
-- index still yields fewer than p_top_k, the matching rows are searched exactly, so a short
-- answer means fewer segments match. That fallback is reported at DEBUG1.
CREATE FUNCTION segment_search_semantic(
    p_tenant_id uuid, p_knowledge_base_ids uuid[], p_dimensions integer, p_vector text, p_top_k integer,
    p_ef_search integer, p_metadata jsonb DEFAULT NULL, p_metadata_any jsonb DEFAULT NULL,
    p_tags text[] DEFAULT NULL, p_document_ids uuid[] DEFAULT NULL)
RETURNS TABLE (segment_id uuid, document_id uuid, knowledge_base_id uuid, score double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_type text;
    v_filter text;
    v_ids uuid[];
    v_documents uuid[];
    v_kbs uuid[];
    v_scores double precision[];
    -- The caller's HNSW settings, put back before returning. (A function SET clause would scope
    -- them by itself, but only a superuser may create one for a parameter of a library not yet
    -- loaded, and Aurora's migrating user is not one.) NULL: the library was not loaded yet.
    v_caller_scan text := current_setting('hnsw.iterative_scan', true);
    v_caller_ef text := current_setting('hnsw.ef_search', true);
BEGIN
    PERFORM segment_index_check_tenant(p_tenant_id);
    IF p_dimensions IS NULL OR p_dimensions < 1 OR p_dimensions > 16000 THEN
        RAISE EXCEPTION 'dimensions must be between 1 and 16000, not %', p_dimensions USING ERRCODE = '22023';
    END IF;
    IF p_top_k IS NULL OR p_top_k < 1 OR p_top_k > 1000 THEN
        RAISE EXCEPTION 'top_k must be between 1 and 1000, not %', p_top_k USING ERRCODE = '22023';
    END IF;
    IF cardinality(p_knowledge_base_ids) IS NULL OR cardinality(p_knowledge_base_ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
    -- ef_search below top_k would cap a plain scan's answer at ef_search.
    PERFORM set_config('hnsw.ef_search', least(greatest(coalesce(p_ef_search, 40), p_top_k), 1000)::text, true);
    v_type := segment_index_type(p_dimensions);
    v_filter := segment_index_filter_sql(p_metadata, p_metadata_any, p_tags, p_document_ids);

    -- `dimensions = N` and the cast to vector(N) are literals so the partial index matches.
    EXECUTE format(
        'WITH candidates AS MATERIALIZED ('
        '  SELECT s.segment_id, s.document_id, s.knowledge_base_id, s.embedding::%1$s <=> $1::%1$s AS distance'
        '    FROM segment_index s'
        '   WHERE s.dimensions = %2$s AND s.tenant_id = $2 AND s.knowledge_base_id = ANY ($3) AND s.enabled%3$s'
        '   ORDER BY s.embedding::%1$s <=> $1::%1$s'
        '   LIMIT $4)'
        ' SELECT array_agg(c.segment_id ORDER BY c.distance, c.segment_id),'
        '        array_agg(c.document_id ORDER BY c.distance, c.segment_id),'
        '        array_agg(c.knowledge_base_id ORDER BY c.distance, c.segment_id),'
        '        array_agg(1 - c.distance ORDER BY c.distance, c.segment_id)'
        '   FROM candidates c',
        v_type, p_dimensions, v_filter)
    INTO v_ids, v_documents, v_kbs, v_scores
    USING p_vector, p_tenant_id, p_knowledge_base_ids, p_top_k, p_metadata, p_metadata_any, p_tags,
          p_document_ids;

    -- pgvector's defaults where the caller had none.
    PERFORM set_config('hnsw.iterative_scan', coalesce(v_caller_scan, 'off'), true),
            set_config('hnsw.ef_search', coalesce(v_caller_ef, '40'), true);

    IF coalesce(cardinality(v_ids), 0) >= p_top_k THEN
        RETURN QUERY SELECT r.segment_id, r.document_id, r.knowledge_base_id, r.score
                       FROM unnest(v_ids, v_documents, v_kbs, v_scores) WITH ORDINALITY
                            AS r(segment_id, document_id, knowledge_base_id, score, n)
                      ORDER BY r.n;
        RETURN;
    END IF;
    RAISE DEBUG 'segment_search_semantic: the index gave % of %, searching exactly',
        coalesce(cardinality(v_ids), 0), p_top_k;
    -- The uncast column matches no HNSW index: an exact scan of the tenant's matching rows.
    RETURN QUERY EXECUTE format(
        'SELECT s.segment_id, s.document_id, s.knowledge_base_id, 1 - (s.embedding <=> $1::vector) AS score'
        '  FROM segment_index s'
        ' WHERE s.dimensions = %1$s AND s.tenant_id = $2 AND s.knowledge_base_id = ANY ($3) AND s.enabled%2$s'
        ' ORDER BY s.embedding <=> $1::vector, s.segment_id'
        ' LIMIT $4',
        p_dimensions, v_filter)
    USING p_vector, p_tenant_id, p_knowledge_base_ids, p_top_k, p_metadata, p_metadata_any, p_tags,
          p_document_ids;
END
$$;

-- Full-text relevance: segments containing any of p_terms (lexemes as the indexing side wrote
-- them: lower-cased words, CJK bigrams), best first. Score: ts_rank_cd(search, query, 1), cover
-- density (terms close together score higher: adjacent CJK bigrams are the word itself)
-- divided by 1 + log(segment length in lexemes) so long segments do not win by size;
-- unbounded, comparable only within one query. ts_rank_cd costs about twice ts_rank per
-- matching row, and a query may match thousands: candidates are ranked by ts_rank (term
-- frequency) first, and the best max(5 x top_k, 50) of them ordered by ts_rank_cd.
-- Filters as for segment_search_semantic.
CREATE FUNCTION segment_search_full_text(
    p_tenant_id uuid, p_knowledge_base_ids uuid[], p_terms text[], p_top_k integer,
    p_metadata jsonb DEFAULT NULL, p_metadata_any jsonb DEFAULT NULL, p_tags text[] DEFAULT NULL,
    p_document_ids uuid[] DEFAULT NULL)
RETURNS TABLE (segment_id uuid, document_id uuid, knowledge_base_id uuid, score double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
-- to_tsquery's notice about a term with no lexeme (e.g. only punctuation) is not the caller's business.
SET client_min_messages = warning
AS $$
DECLARE
    v_query tsquery;
BEGIN
    PERFORM segment_index_check_tenant(p_tenant_id);
    IF p_top_k IS NULL OR p_top_k < 1 OR p_top_k > 1000 THEN
        RAISE EXCEPTION 'top_k must be between 1 and 1000, not %', p_top_k USING ERRCODE = '22023';
    END IF;
    IF cardinality(p_knowledge_base_ids) IS NULL OR cardinality(p_knowledge_base_ids) = 0 THEN
        RETURN;
    END IF;
    -- Each term quoted as a tsquery lexeme (quotes and backslashes doubled), OR-ed. English
    -- function words ("the", "how", ...: empty for the english_stem dictionary) are left out
    -- unless nothing else is left: they match most segments, mean nothing to ts_rank_cd (which
    -- has no IDF), and ranking every segment they match would take hundreds of milliseconds.
    SELECT to_tsquery('simple', string_agg(
               '''' || replace(replace(t, '\', '\\'), '''', '''''') || '''', ' | '))
      INTO v_query
      FROM unnest(p_terms) AS t
     WHERE t <> ''
       AND (ts_lexize('english_stem', t) <> '{}'
            OR NOT EXISTS (SELECT 1 FROM unnest(p_terms) AS u
                            WHERE u <> '' AND ts_lexize('english_stem', u) <> '{}'));
    IF v_query IS NULL OR numnode(v_query) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT c.segment_id, c.document_id, c.knowledge_base_id, ts_rank_cd(c.search, $1, 1)::double precision AS score'
        '  FROM (SELECT s.segment_id, s.document_id, s.knowledge_base_id, s.search'
        '          FROM segment_index s'
        '         WHERE s.search @@ $1 AND s.tenant_id = $2 AND s.knowledge_base_id = ANY ($3) AND s.enabled%s'
        '         ORDER BY ts_rank(s.search, $1, 1) DESC'
        '         LIMIT greatest($4 * 5, 50)) AS c'
        ' ORDER BY score DESC, c.segment_id'
        ' LIMIT $4',
        segment_index_filter_sql(p_metadata, p_metadata_any, p_tags, p_document_ids))
    USING v_query, p_tenant_id, p_knowledge_base_ids, p_top_k, p_metadata, p_metadata_any, p_tags,
          p_document_ids;
END
$$;

ALTER FUNCTION segment_index_type(integer) OWNER TO stratus_definer;
ALTER FUNCTION segment_index_ensure(integer) OWNER TO stratus_definer;
ALTER FUNCTION segment_index_filter_sql(jsonb, jsonb, text[], uuid[]) OWNER TO stratus_definer;
ALTER FUNCTION segment_index_check_tenant(uuid) OWNER TO stratus_definer;
ALTER FUNCTION segment_search_semantic(uuid, uuid[], integer, text, integer, integer, jsonb, jsonb, text[], uuid[])
    OWNER TO stratus_definer;
ALTER FUNCTION segment_search_full_text(uuid, uuid[], text[], integer, jsonb, jsonb, text[], uuid[])
    OWNER TO stratus_definer;
REVOKE ALL ON FUNCTION segment_index_type(integer), segment_index_ensure(integer),
    segment_index_filter_sql(jsonb, jsonb, text[], uuid[]), segment_index_check_tenant(uuid),
    segment_search_semantic(uuid, uuid[], integer, text, integer, integer, jsonb, jsonb, text[], uuid[]),
    segment_search_full_text(uuid, uuid[], text[], integer, jsonb, jsonb, text[], uuid[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION segment_index_ensure(integer),
    segment_search_semantic(uuid, uuid[], integer, text, integer, integer, jsonb, jsonb, text[], uuid[]),
    segment_search_full_text(uuid, uuid[], text[], integer, jsonb, jsonb, text[], uuid[])
    TO stratus_app;
