"""The PostgreSQL vector store: pgvector HNSW and full-text search in the application
database (migration 0007, docs/adr/0025-vector-stores.md).

Writes run as the application role under row-level security (the transaction's tenant);
searches call the ``SECURITY DEFINER`` functions ``segment_search_semantic`` and
``segment_search_full_text``, which take the tenant and knowledge bases explicitly (row-level
security would keep the planner from the HNSW and GIN indexes). Vectors travel as pgvector's
text form, so no client-side type registration or extra dependency is needed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from shared.db.database import Database
from shared.knowledge.errors import VectorStoreError
from shared.knowledge.text import query_terms, search_text
from shared.knowledge.vectorstore.ports import Hit, IndexedSegment, JsonScalar, SearchFilter

logger = logging.getLogger(__name__)

# Rows per INSERT statement: one round trip each; keeps the statement's arrays a few MB.
UPSERT_BATCH = 500
# Rows per DELETE when a whole document or knowledge base goes: short transactions, so a large
# removal neither holds locks for long nor outlives a Lambda's time as one statement.
DELETE_BATCH = 5000
MAX_TOP_K = 1000

_UPSERT = """
INSERT INTO segment_index (segment_id, tenant_id, knowledge_base_id, document_id, dimensions, embedding,
                           search, metadata, tags, enabled, updated_at)
SELECT u.segment_id, s.tenant_id, s.knowledge_base_id, s.document_id, %(dimensions)s, u.embedding::vector,
       to_tsvector('simple', u.search), u.metadata, ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.enabled,
       now()
  FROM unnest(%(ids)s::uuid[], %(documents)s::uuid[], %(embeddings)s::text[], %(searches)s::text[],
              %(metadata)s::jsonb[], %(tags)s::jsonb[], %(enabled)s::boolean[])
       AS u(segment_id, document_id, embedding, search, metadata, tags, enabled)
  -- The row's tenant, knowledge base and document come from the segment itself (visible only
  -- to its tenant under row-level security): an id of another tenant's segment indexes nothing.
  JOIN segments s ON s.id = u.segment_id AND s.tenant_id = %(tenant)s AND s.knowledge_base_id = %(kb)s
                 AND s.document_id = u.document_id
ON CONFLICT (segment_id) DO UPDATE
   SET dimensions = EXCLUDED.dimensions, embedding = EXCLUDED.embedding, search = EXCLUDED.search,
       metadata = EXCLUDED.metadata, tags = EXCLUDED.tags, enabled = EXCLUDED.enabled, updated_at = now()
"""


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form. ``float()`` first: numpy scalars print as ``np.float32(...)``;
    a float32 widened to a double prints exactly, so PostgreSQL reads back the same float4."""
    tolist = getattr(vector, "tolist", None)
    values = tolist() if callable(tolist) else vector
    return "[" + ",".join([repr(float(v)) for v in values]) + "]"


def filter_arguments(search_filter: SearchFilter | None) -> dict[str, Any]:
    """The search functions' filter arguments: single metadata values as one containment
    object (``metadata @> {...}``), list values as ``{key: [values]}`` (each key equal to one
    of its values), tags (all present), document ids (None: any document)."""
    from psycopg.types.json import Jsonb

    if search_filter is None or search_filter.empty:
        return {"metadata": None, "metadata_any": None, "tags": None, "documents": None}
    equal: dict[str, JsonScalar] = {}
    any_of: dict[str, list[JsonScalar]] = {}
    for key, value in search_filter.metadata.items():
        if isinstance(value, list | tuple):
            any_of[key] = list(value)
        else:
            equal[key] = value
    return {
        "metadata": Jsonb(equal) if equal else None,
        "metadata_any": Jsonb(any_of) if any_of else None,
        "tags": list(search_filter.tags) or None,
        "documents": list(search_filter.document_ids) or None,
    }


class PostgresVectorStore:
    """The vector-store port on PostgreSQL through the :class:`Database` port."""

    name = "postgres"

    def __init__(self, db: Database, ef_search: int = 100) -> None:
        self._db = db
        self._ef_search = ef_search
        self._ensured: set[int] = set()
        self._lock = threading.Lock()

    @property
    def ef_search(self) -> int:
        return self._ef_search

    def ensure_index(self, dimensions: int) -> None:
        if dimensions in self._ensured:
            return
        with self._lock:
            if dimensions in self._ensured:
                return
            try:
                with self._db.transaction(None) as conn:
                    row = conn.execute("SELECT segment_index_ensure(%s)", (dimensions,)).fetchone()
            except _database_errors() as exc:
                raise VectorStoreError(f"could not create the {dimensions}-dimension index") from exc
            if row is not None and row[0]:
                logger.info("created vector index", extra={"dimensions": dimensions})
            self._ensured.add(dimensions)

    def upsert(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, dimensions: int,
               segments: Sequence[IndexedSegment]) -> None:
        if not segments:
            return
        from psycopg.types.json import Jsonb

        for segment in segments:
            if len(segment.vector) != dimensions:
                raise ValueError(f"segment {segment.segment_id} has {len(segment.vector)} dimensions, "
                                 f"not {dimensions}")
        written = 0
        try:
            with self._db.transaction(tenant_id) as conn:
                for start in range(0, len(segments), UPSERT_BATCH):
                    batch = segments[start:start + UPSERT_BATCH]
                    cursor = conn.execute(_UPSERT, {
                        "dimensions": dimensions, "tenant": tenant_id, "kb": knowledge_base_id,
                        "ids": [s.segment_id for s in batch],
                        "documents": [s.document_id for s in batch],
                        "embeddings": [vector_literal(s.vector) for s in batch],
                        "searches": [search_text(s.text) for s in batch],
                        "metadata": [Jsonb(dict(s.metadata)) for s in batch],
                        "tags": [Jsonb(list(s.tags)) for s in batch],
                        "enabled": [s.enabled for s in batch],
                    })
                    written += cursor.rowcount
        except _database_errors() as exc:
            raise VectorStoreError("could not write segments to the vector index") from exc
        if written < len(segments):
            # Deleted since they were chunked (their document went meanwhile): nothing to index.
            logger.warning("segments not indexed: not found in the knowledge base",
                           extra={"knowledge_base_id": str(knowledge_base_id), "missing": len(segments) - written})

    def delete_segments(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID,
                        segment_ids: Sequence[uuid.UUID]) -> None:
        if not segment_ids:
            return
        self._write(tenant_id, "DELETE FROM segment_index WHERE tenant_id = %s AND knowledge_base_id = %s "
                               "AND segment_id = ANY (%s)", (tenant_id, knowledge_base_id, list(segment_ids)))

    def delete_document(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID) -> None:
        self._delete_in_batches(tenant_id, "knowledge_base_id = %s AND document_id = %s",
                                (knowledge_base_id, document_id))

    def delete_knowledge_base(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID) -> None:
        self._delete_in_batches(tenant_id, "knowledge_base_id = %s", (knowledge_base_id,))

    def set_enabled(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, segment_ids: Sequence[uuid.UUID],
                    enabled: bool) -> None:
        if not segment_ids:
            return
        self._write(tenant_id, "UPDATE segment_index SET enabled = %s, updated_at = now() "
                               "WHERE tenant_id = %s AND knowledge_base_id = %s AND segment_id = ANY (%s) "
                               "AND enabled IS DISTINCT FROM %s",
                    (enabled, tenant_id, knowledge_base_id, list(segment_ids), enabled))

    def update_document_fields(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                               metadata: Mapping[str, Any], tags: Sequence[str]) -> None:
        from psycopg.types.json import Jsonb

        self._write(tenant_id, "UPDATE segment_index SET metadata = %s, tags = %s, updated_at = now() "
                               "WHERE tenant_id = %s AND knowledge_base_id = %s AND document_id = %s",
                    (Jsonb(dict(metadata)), list(tags), tenant_id, knowledge_base_id, document_id))

    def set_document_indexed(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                             indexed: bool) -> None:
        """Nothing to write: the search functions read the document's status (migration 0010)."""

    def search_semantic(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                        vector: Sequence[float], top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        if len(vector) != dimensions:
            raise ValueError(f"the query vector has {len(vector)} dimensions, not {dimensions}")
        if not knowledge_base_ids or top_k < 1:
            return []
        arguments = {"tenant": tenant_id, "kbs": list(knowledge_base_ids), "dimensions": dimensions,
                     "vector": vector_literal(vector), "top_k": min(top_k, MAX_TOP_K), "ef": self._ef_search,
                     **filter_arguments(search_filter)}
        rows = self._search("SELECT * FROM segment_search_semantic(%(tenant)s, %(kbs)s, %(dimensions)s, %(vector)s, "
                            "%(top_k)s, %(ef)s, %(metadata)s, %(metadata_any)s, %(tags)s, %(documents)s)",
                            tenant_id, arguments)
        return [Hit(row[0], row[1], row[2], float(row[3]), "cosine") for row in rows]

    def search_full_text(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], query: str,
                         top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        terms = query_terms(query)
        if not terms or not knowledge_base_ids or top_k < 1:
            return []
        arguments = {"tenant": tenant_id, "kbs": list(knowledge_base_ids), "terms": terms,
                     "top_k": min(top_k, MAX_TOP_K), **filter_arguments(search_filter)}
        rows = self._search("SELECT * FROM segment_search_full_text(%(tenant)s, %(kbs)s, %(terms)s, %(top_k)s, "
                            "%(metadata)s, %(metadata_any)s, %(tags)s, %(documents)s)",
                            tenant_id, arguments)
        return [Hit(row[0], row[1], row[2], float(row[3]), "full_text") for row in rows]

    def similarities(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                     vector: Sequence[float], segment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        if len(vector) != dimensions:
            raise ValueError(f"the query vector has {len(vector)} dimensions, not {dimensions}")
        if not knowledge_base_ids or not segment_ids:
            return {}
        # By primary key under row-level security (no index on the distance is wanted here);
        # the uncast column, as the exact search computes it.
        rows = self._search("SELECT segment_id, 1 - (embedding <=> %(vector)s::vector) FROM segment_index "
                            "WHERE segment_id = ANY (%(ids)s) AND tenant_id = %(tenant)s "
                            "AND knowledge_base_id = ANY (%(kbs)s) AND dimensions = %(dimensions)s",
                            tenant_id, {"ids": list(segment_ids), "tenant": tenant_id, "kbs": list(knowledge_base_ids),
                                        "dimensions": dimensions, "vector": vector_literal(vector)})
        return {row[0]: float(row[1]) for row in rows}

    # --- internals -----------------------------------------------------------------------

    def _search(self, query: str, tenant_id: uuid.UUID, arguments: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            with self._db.transaction(tenant_id) as conn:
                return list(conn.execute(query, arguments).fetchall())
        except _database_errors() as exc:
            raise VectorStoreError("vector search failed") from exc

    def _write(self, tenant_id: uuid.UUID, statement: str, params: tuple[Any, ...]) -> None:
        try:
            with self._db.transaction(tenant_id) as conn:
                conn.execute(statement, params)
        except _database_errors() as exc:
            raise VectorStoreError("could not update the vector index") from exc

    def _delete_in_batches(self, tenant_id: uuid.UUID, condition: str, params: tuple[Any, ...]) -> None:
        statement = (f"DELETE FROM segment_index WHERE segment_id IN (SELECT segment_id FROM segment_index "
                     f"WHERE tenant_id = %s AND {condition} LIMIT {DELETE_BATCH})")
        try:
            while True:
                with self._db.transaction(tenant_id) as conn:
                    deleted = conn.execute(statement, (tenant_id, *params)).rowcount
                if deleted < DELETE_BATCH:
                    return
        except _database_errors() as exc:
            raise VectorStoreError("could not delete from the vector index") from exc


def _database_errors() -> tuple[type[Exception], ...]:
    """Failures worth a retry: connection lost, pool exhausted, statement timeout, deadlock or
    serialisation failure (all psycopg OperationalErrors). Bad arguments and a tenant mismatch
    (InsufficientPrivilege) are programming errors and propagate as they are."""
    import psycopg

    return (psycopg.OperationalError,)
