"""The OpenSearch vector store: k-NN (HNSW) and BM25 on a managed domain
(docs/adr/0025-vector-stores.md).

- One index per embedding size, ``{prefix}-{dimensions}``, created idempotently on first use.
  Document ``_id`` is the segment id, so a retried batch overwrites the same documents.
- ``knn_vector`` with the **lucene** engine (HNSW, ``cosinesimil``): it filters *during* the
  graph search (and searches exactly when the filter leaves few documents), so a query filtered
  to one tenant's knowledge base still returns ``k`` hits; Lucene handles cosine natively.
- Text: standard tokenizer + ``cjk_width`` + ``lowercase`` + ``cjk_bigram``: Chinese, Japanese
  and Korean runs are indexed as overlapping bigrams (what ``search_text`` does for PostgreSQL);
  other scripts as words. BM25 ranks.
- Every query filters on ``tenant_id``, ``knowledge_base_id``, ``enabled`` and
  ``document_indexed`` (false while the document is embedding, re-indexing or failed; a segment
  written before the field existed has none and counts as indexed), inside the k-NN clause
  (efficient filtering, not post-filtering).
- Metadata is kept in ``_source`` (not indexed) and, for filtering, as one keyword field of
  ``json.dumps([key, value])`` strings: exact, typed matching (``2024`` is not ``"2024"``) and no
  mapping growth however many keys tenants invent.

opensearch-py (and boto3 for SigV4) are imported on first use only: cold starts of functions
that never search pay nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.knowledge.errors import VectorStoreError
from shared.knowledge.vectorstore.ports import Hit, IndexedSegment, JsonScalar, SearchFilter

if TYPE_CHECKING:
    from shared.config import Settings

logger = logging.getLogger(__name__)

TEXT_ANALYZER = "stratus_text"
MAX_TOP_K = 1000
# A match query becomes one clause per analysed term (a CJK character pair each): a pasted
# page would pass indices.query.bool.max_clause_count (1,024). Queries are cut to this.
MAX_QUERY_CHARS = 512
# Lucene's HNSW build parameters: m as pgvector's; a wider build beam for recall, paid once per write.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128


def index_body(dimensions: int) -> dict[str, Any]:
    """Settings and mappings of the index for vectors of this size."""
    return {
        "settings": {
            "index": {"knn": True},
            "analysis": {"analyzer": {TEXT_ANALYZER: {
                "type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]}}},
        },
        "mappings": {
            # A field nobody declared is a bug, not a new mapping.
            "dynamic": "strict",
            "properties": {
                "tenant_id": {"type": "keyword"},
                "knowledge_base_id": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "text": {"type": "text", "analyzer": TEXT_ANALYZER},
                "embedding": {
                    "type": "knn_vector", "dimension": dimensions,
                    "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil",
                               "parameters": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}},
                },
                "metadata": {"type": "object", "enabled": False},
                "metadata_terms": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "enabled": {"type": "boolean"},
                "document_indexed": {"type": "boolean"},
            },
        },
    }


def metadata_term(key: str, value: JsonScalar) -> str:
    """The keyword a metadata pair is filtered by. Integral floats are written as integers, as
    JSON equality (and PostgreSQL's jsonb) treats 1.0 and 1 alike."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        value = int(value)
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":"))


def metadata_terms(metadata: Mapping[str, Any]) -> list[str]:
    """Filter keywords of a segment's metadata: scalar values only (lists and objects are kept
    in ``_source`` but cannot be filtered, as in the PostgreSQL store's equality)."""
    return [metadata_term(k, v) for k, v in metadata.items()
            if v is not None and isinstance(v, str | int | float | bool)]


def scope_filter(tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID],
                 search_filter: SearchFilter | None = None, *, enabled_only: bool = True) -> list[dict[str, Any]]:
    """The filter clauses of a query: tenant and knowledge bases always, then the caller's."""
    clauses: list[dict[str, Any]] = [
        {"term": {"tenant_id": str(tenant_id)}},
        {"terms": {"knowledge_base_id": [str(kb) for kb in knowledge_base_ids]}},
    ]
    if enabled_only:
        clauses.append({"term": {"enabled": True}})
        # must_not false rather than term true: segments indexed before the field existed count as indexed.
        clauses.append({"bool": {"must_not": [{"term": {"document_indexed": False}}]}})
    if search_filter is not None:
        for key, value in search_filter.metadata.items():
            if isinstance(value, list | tuple):
                clauses.append({"terms": {"metadata_terms": [metadata_term(key, v) for v in value]}})
            else:
                clauses.append({"term": {"metadata_terms": metadata_term(key, value)}})
        clauses.extend({"term": {"tags": tag}} for tag in search_filter.tags)
        if search_filter.document_ids:
            clauses.append({"terms": {"document_id": [str(d) for d in search_filter.document_ids]}})
    return clauses


def cosine_from_score(score: float) -> float:
    """OpenSearch scores cosinesimil as (1 + cos) / 2; the port speaks cosine similarity."""
    return 2.0 * score - 1.0


class OpenSearchVectorStore:
    """The vector-store port on OpenSearch. ``client_factory`` builds an ``opensearchpy.OpenSearch``
    (on first use); ``refresh`` makes writes visible to search before they return (tests; in
    production segments become searchable within the index refresh interval, 1 s by default)."""

    name = "opensearch"

    def __init__(self, client_factory: Callable[[], Any], index_prefix: str, ef_search: int = 100, *,
                 refresh: bool = False, bulk_chunk_size: int = 500, bulk_max_retries: int = 5,
                 bulk_initial_backoff_s: float = 1.0, bulk_max_backoff_s: float = 30.0,
                 by_query_timeout_s: float = 120.0) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._prefix = index_prefix.lower()
        self._ef_search = ef_search
        self._refresh = refresh
        self._bulk_chunk_size = bulk_chunk_size
        self._bulk_max_retries = bulk_max_retries
        self._bulk_initial_backoff_s = bulk_initial_backoff_s
        self._bulk_max_backoff_s = bulk_max_backoff_s
        self._by_query_timeout_s = by_query_timeout_s
        self._ensured: set[int] = set()
        self._lock = threading.Lock()

    @property
    def ef_search(self) -> int:
        return self._ef_search

    def index_name(self, dimensions: int) -> str:
        return f"{self._prefix}-{dimensions}"

    @property
    def _all_indices(self) -> str:
        return f"{self._prefix}-*"

    def _opensearch(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._client_factory()
        return self._client

    # --- writes --------------------------------------------------------------------------

    def ensure_index(self, dimensions: int) -> None:
        if dimensions in self._ensured:
            return
        from opensearchpy.exceptions import OpenSearchException, RequestError

        client = self._opensearch()
        try:
            client.indices.create(index=self.index_name(dimensions), body=index_body(dimensions))
            logger.info("created vector index", extra={"index": self.index_name(dimensions)})
        except RequestError as exc:
            # Created before (or concurrently): the index exists; fields added since are mapped.
            if exc.error != "resource_already_exists_exception":
                raise VectorStoreError(f"could not create index {self.index_name(dimensions)}: {exc.error}") from exc
            self._add_new_fields(client, dimensions)
        except OpenSearchException as exc:
            raise VectorStoreError(f"could not create index {self.index_name(dimensions)}") from exc
        self._ensured.add(dimensions)

    def _add_new_fields(self, client: Any, dimensions: int) -> None:
        """Fields added to the mapping after an index was created (the mapping is strict: a
        write with an unmapped field fails). Adding a field to a mapping is idempotent."""
        from opensearchpy.exceptions import OpenSearchException

        try:
            client.indices.put_mapping(index=self.index_name(dimensions),
                                       body={"properties": {"document_indexed": {"type": "boolean"}}})
        except OpenSearchException as exc:
            raise VectorStoreError(f"could not update the mapping of {self.index_name(dimensions)}") from exc

    def upsert(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, dimensions: int,
               segments: Sequence[IndexedSegment]) -> None:
        if not segments:
            return
        for segment in segments:
            if len(segment.vector) != dimensions:
                raise ValueError(f"segment {segment.segment_id} has {len(segment.vector)} dimensions, "
                                 f"not {dimensions}")
        # Without its mapping an index would be created by dynamic mapping: wrong types.
        self.ensure_index(dimensions)
        index = self.index_name(dimensions)
        self._bulk({"_op_type": "index", "_index": index, "_id": str(segment.segment_id),
                    "_source": self._document(tenant_id, knowledge_base_id, segment)} for segment in segments)

    def delete_segments(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID,
                        segment_ids: Sequence[uuid.UUID]) -> None:
        if not segment_ids:
            return
        self._delete_by_query(tenant_id, knowledge_base_id, {"ids": {"values": [str(s) for s in segment_ids]}})

    def delete_document(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID) -> None:
        self._delete_by_query(tenant_id, knowledge_base_id, {"term": {"document_id": str(document_id)}})

    def delete_knowledge_base(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID) -> None:
        self._delete_by_query(tenant_id, knowledge_base_id, None)

    def set_enabled(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, segment_ids: Sequence[uuid.UUID],
                    enabled: bool) -> None:
        if not segment_ids:
            return
        self._update_by_query(tenant_id, knowledge_base_id, {"ids": {"values": [str(s) for s in segment_ids]}},
                              "ctx._source.enabled = params.enabled", {"enabled": enabled})

    def update_document_fields(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                               metadata: Mapping[str, Any], tags: Sequence[str]) -> None:
        self._update_by_query(
            tenant_id, knowledge_base_id, {"term": {"document_id": str(document_id)}},
            "ctx._source.metadata = params.metadata; ctx._source.metadata_terms = params.metadata_terms; "
            "ctx._source.tags = params.tags",
            {"metadata": dict(metadata), "metadata_terms": metadata_terms(metadata), "tags": list(tags)})

    def set_document_indexed(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, document_id: uuid.UUID,
                             indexed: bool) -> None:
        self._update_by_query(tenant_id, knowledge_base_id, {"term": {"document_id": str(document_id)}},
                              "ctx._source.document_indexed = params.indexed", {"indexed": indexed})

    # --- searches ------------------------------------------------------------------------

    def search_semantic(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                        vector: Sequence[float], top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        if len(vector) != dimensions:
            raise ValueError(f"the query vector has {len(vector)} dimensions, not {dimensions}")
        if not knowledge_base_ids or top_k < 1:
            return []
        top_k = min(top_k, MAX_TOP_K)
        body = {
            "size": top_k,
            "_source": ["document_id", "knowledge_base_id"],
            "query": {"knn": {"embedding": {
                "vector": [float(v) for v in vector],
                "k": top_k,
                "filter": {"bool": {"filter": scope_filter(tenant_id, knowledge_base_ids, search_filter)}},
                "method_parameters": {"ef_search": max(self._ef_search, top_k)},
            }}},
        }
        return self._search(self.index_name(dimensions), body, "cosine")

    def search_full_text(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], query: str,
                         top_k: int, search_filter: SearchFilter | None = None) -> list[Hit]:
        if not query.strip() or not knowledge_base_ids or top_k < 1:
            return []
        top_k = min(top_k, MAX_TOP_K)
        body = {
            "size": top_k,
            "_source": ["document_id", "knowledge_base_id"],
            "query": {"bool": {
                "must": [{"match": {"text": {"query": query[:MAX_QUERY_CHARS], "operator": "or"}}}],
                "filter": scope_filter(tenant_id, knowledge_base_ids, search_filter),
            }},
        }
        # The knowledge bases' sizes are not known here: every size's index is searched.
        return self._search(self._all_indices, body, "full_text")

    def similarities(self, tenant_id: uuid.UUID, knowledge_base_ids: Sequence[uuid.UUID], dimensions: int,
                     vector: Sequence[float], segment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
        if len(vector) != dimensions:
            raise ValueError(f"the query vector has {len(vector)} dimensions, not {dimensions}")
        ids = list(dict.fromkeys(str(s) for s in segment_ids))[:MAX_TOP_K]
        if not knowledge_base_ids or not ids:
            return {}
        # A k-NN query filtered to these ids, k = their number: when the filter leaves no more
        # than k documents Lucene scores every one exactly, with the score search_semantic reads.
        body = {
            "size": len(ids),
            "_source": ["document_id", "knowledge_base_id"],
            "query": {"knn": {"embedding": {
                "vector": [float(v) for v in vector],
                "k": len(ids),
                "filter": {"bool": {"filter": [*scope_filter(tenant_id, knowledge_base_ids),
                                               {"ids": {"values": ids}}]}},
            }}},
        }
        return {hit.segment_id: hit.score for hit in self._search(self.index_name(dimensions), body, "cosine")}

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _document(tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, segment: IndexedSegment) -> dict[str, Any]:
        tolist = getattr(segment.vector, "tolist", None)
        vector = tolist() if callable(tolist) else segment.vector
        return {
            "tenant_id": str(tenant_id),
            "knowledge_base_id": str(knowledge_base_id),
            "document_id": str(segment.document_id),
            "text": segment.text,
            "embedding": [float(v) for v in vector],
            "metadata": dict(segment.metadata),
            "metadata_terms": metadata_terms(segment.metadata),
            "tags": list(segment.tags),
            "enabled": segment.enabled,
            "document_indexed": segment.document_indexed,
        }

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> None:
        from opensearchpy import helpers
        from opensearchpy.exceptions import OpenSearchException

        failures: list[dict[str, Any]] = []
        # Items rejected with 429 (and a whole request answered 429) are retried with
        # exponential backoff; other item failures are collected.
        options: dict[str, Any] = {
            "chunk_size": self._bulk_chunk_size, "raise_on_error": False, "yield_ok": False,
            "max_retries": self._bulk_max_retries, "initial_backoff": self._bulk_initial_backoff_s,
            "max_backoff": self._bulk_max_backoff_s}
        if self._refresh:
            options["refresh"] = "wait_for"
        try:
            for ok, item in helpers.streaming_bulk(self._opensearch(), actions, **options):
                if not ok:
                    failures.append(item)
        except OpenSearchException as exc:
            raise VectorStoreError("bulk write to OpenSearch failed") from exc
        if failures:
            first = next(iter(failures[0].values()))
            raise VectorStoreError(f"{len(failures)} segment(s) were not indexed; first: "
                                   f"{first.get('_id')}: {json.dumps(first.get('error'))[:500]}")

    def _delete_by_query(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID,
                         clause: dict[str, Any] | None) -> None:
        filters = scope_filter(tenant_id, [knowledge_base_id], enabled_only=False)
        if clause is not None:
            filters.append(clause)
        self._by_query("delete_by_query", {"query": {"bool": {"filter": filters}}})

    def _update_by_query(self, tenant_id: uuid.UUID, knowledge_base_id: uuid.UUID, clause: dict[str, Any],
                         source: str, params: dict[str, Any]) -> None:
        filters = [*scope_filter(tenant_id, [knowledge_base_id], enabled_only=False), clause]
        self._by_query("update_by_query", {
            "query": {"bool": {"filter": filters}},
            "script": {"lang": "painless", "source": source, "params": params},
        })

    def _by_query(self, operation: str, body: dict[str, Any]) -> None:
        from opensearchpy.exceptions import OpenSearchException

        params: dict[str, Any] = {"ignore_unavailable": True, "request_timeout": self._by_query_timeout_s}
        if self._refresh:
            params["refresh"] = True
        try:
            # A version conflict (a segment rewritten meanwhile) aborts with 409: the caller retries,
            # rather than leaving that segment with stale fields.
            response = getattr(self._opensearch(), operation)(index=self._all_indices, body=body, **params)
        except OpenSearchException as exc:
            raise VectorStoreError(f"OpenSearch {operation} failed") from exc
        if response.get("failures"):
            raise VectorStoreError(f"OpenSearch {operation} failed: {json.dumps(response['failures'])[:500]}")

    def _search(self, index: str, body: dict[str, Any], score_type: str) -> list[Hit]:
        from opensearchpy.exceptions import OpenSearchException

        try:
            response = self._opensearch().search(index=index, body=body, ignore_unavailable=True)
        except OpenSearchException as exc:
            raise VectorStoreError("OpenSearch search failed") from exc
        hits = []
        for hit in response.get("hits", {}).get("hits", []):
            source = hit["_source"]
            score = float(hit["_score"])
            if score_type == "cosine":
                hits.append(Hit(uuid.UUID(hit["_id"]), uuid.UUID(source["document_id"]),
                                uuid.UUID(source["knowledge_base_id"]), cosine_from_score(score), "cosine"))
            else:
                hits.append(Hit(uuid.UUID(hit["_id"]), uuid.UUID(source["document_id"]),
                                uuid.UUID(source["knowledge_base_id"]), score, "full_text"))
        return hits


def build_client(url: str, *, sigv4_service: str = "es", timeout_s: float = 10.0, region: str | None = None) -> Any:
    """An ``opensearchpy.OpenSearch`` for ``url``. Unless ``sigv4_service`` is "none", requests
    are SigV4-signed with the container's AWS credentials (the Lambda role), refreshed as
    botocore refreshes them."""
    from opensearchpy import OpenSearch, Urllib3HttpConnection

    kwargs: dict[str, Any] = {
        "hosts": [url],
        "connection_class": Urllib3HttpConnection,
        "timeout": timeout_s,
        # Connection errors and 502/503/504 are retried by the transport (the writes are
        # idempotent: documents by _id, deletes by query); 429 is retried with backoff by bulk.
        "max_retries": 2,
        "retry_on_timeout": True,
    }
    if sigv4_service != "none":
        import boto3
        from opensearchpy import Urllib3AWSV4SignerAuth

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise VectorStoreError("no AWS credentials to sign OpenSearch requests with")
        kwargs["http_auth"] = Urllib3AWSV4SignerAuth(credentials, region or session.region_name, sigv4_service)
    return OpenSearch(**kwargs)


def store_from_settings(settings: Settings) -> OpenSearchVectorStore:
    """The store the settings describe (``OPENSEARCH_URL``, index prefix, SigV4 service, timeout)."""
    from shared.errors import Unavailable

    url = settings.opensearch_url
    if not url:
        raise Unavailable("The vector store is OpenSearch but OPENSEARCH_URL is not set",
                          code="sys_vector_store_unconfigured")
    return OpenSearchVectorStore(
        lambda: build_client(url, sigv4_service=settings.opensearch_sigv4_service,
                             timeout_s=settings.opensearch_timeout_s),
        settings.opensearch_index_prefix, settings.hnsw_ef_search)
