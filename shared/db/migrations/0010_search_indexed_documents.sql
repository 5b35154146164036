-- Searches find only the segments of indexed documents (issue 11). A document whose indexing
-- failed half-way (or is still embedding, or is being re-indexed) keeps the segments already
-- written to segment_index; they must not be retrieved. Every search builds its WHERE clause
-- through segment_index_filter_sql(), so the condition is added there once, for both
-- segment_search_semantic and segment_search_full_text: the documents row is read by primary
-- key per candidate (the definer role sees every tenant's documents; the search already
-- filters on the tenant). Same signature and owner as in migration 0007.
CREATE OR REPLACE FUNCTION segment_index_filter_sql(p_metadata jsonb, p_metadata_any jsonb, p_tags text[],
                                                    p_document_ids uuid[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
AS $$
    SELECT concat(
        ' AND EXISTS (SELECT 1 FROM documents d WHERE d.id = s.document_id AND d.status = ''indexed'''
        ' AND d.deleted_at IS NULL)',
        CASE WHEN p_metadata IS NOT NULL AND p_metadata <> '{}' THEN ' AND s.metadata @> $5' END,
        (SELECT string_agg(format(' AND s.metadata @> ANY (%L::jsonb[])',
                                  (SELECT array_agg(jsonb_build_object(k, v))
                                     FROM jsonb_array_elements(p_metadata_any -> k) AS v)), '' ORDER BY k)
           FROM jsonb_object_keys(CASE WHEN jsonb_typeof(p_metadata_any) = 'object' THEN p_metadata_any
                                       ELSE '{}' END) AS k),
        CASE WHEN cardinality(p_tags) > 0 THEN ' AND s.tags @> $7' END,
        CASE WHEN p_document_ids IS NOT NULL THEN ' AND s.document_id = ANY ($8)' END)
$$;
