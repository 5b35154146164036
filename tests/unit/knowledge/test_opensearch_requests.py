"""The OpenSearch adapter's requests, exactly: opensearch-py talks HTTP to a scripted server
(stdlib http.server on loopback) that records each request and answers canned JSON, so what
the adapter sends is checked byte for byte without an OpenSearch. The same adapter runs the
shared contract against a live server when OPENSEARCH_URL is set
(tests/integration/test_vector_store_contract.py)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from shared.knowledge.errors import VectorStoreError
from shared.knowledge.vectorstore.opensearch import OpenSearchVectorStore, build_client
from shared.knowledge.vectorstore.ports import IndexedSegment, SearchFilter

TENANT = uuid.UUID("00000000-0000-7000-8000-00000000000a")
KB = uuid.UUID("00000000-0000-7000-8000-0000000000b1")
KB2 = uuid.UUID("00000000-0000-7000-8000-0000000000b2")
DOC = uuid.UUID("00000000-0000-7000-8000-0000000000d1")
SEG1 = uuid.UUID("00000000-0000-7000-8000-000000000051")
SEG2 = uuid.UUID("00000000-0000-7000-8000-000000000052")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON; for _bulk the list of NDJSON lines, parsed
    raw: bytes
    headers: dict[str, str]


class ScriptedOpenSearch:
    """Answers like OpenSearch: scripted responses first (per method and path, in order),
    otherwise a plausible success for the endpoint."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._script: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path.endswith("/_bulk"):
                    body: Any = [json.loads(line) for line in raw.decode().splitlines() if line]
                else:
                    body = json.loads(raw) if raw else None
                status, answer = server._answer(Request(self.command, parts.path, dict(parse_qsl(parts.query)),
                                                        body, raw, dict(self.headers.items())))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, method: str, path: str, status: int, body: Any) -> None:
        self._script.setdefault((method, path), []).append((status, body))

    def _answer(self, request: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(request)
            queue = self._script.get((request.method, request.path))
            if queue:
                return queue.pop(0)
        if request.path.endswith("/_bulk"):
            actions = request.body[0::2]
            items = [{op: {"_index": meta["_index"], "_id": meta["_id"], "status": 201, "result": "created"}}
                     for action in actions for op, meta in action.items()]
            return 200, {"took": 1, "errors": False, "items": items}
        if request.path.endswith("/_search"):
            return 200, {"took": 1, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"},
                                                                  "max_score": None, "hits": []}}
        if request.path.endswith("_by_query"):
            return 200, {"took": 1, "timed_out": False, "total": 0, "deleted": 0, "updated": 0, "failures": []}
        if request.method == "PUT":
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": request.path.strip("/")}
        return 404, {"error": {"type": "not_found"}, "status": 404}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedOpenSearch]:
    scripted = ScriptedOpenSearch()
    yield scripted
    scripted.close()


@pytest.fixture
def store(server: ScriptedOpenSearch) -> OpenSearchVectorStore:
    return OpenSearchVectorStore(lambda: build_client(server.url, sigv4_service="none", timeout_s=5),
                                 "stratus-segments", ef_search=100, bulk_initial_backoff_s=0.01)


EXPECTED_INDEX_BODY = {
    "settings": {
        "index": {"knn": True},
        "analysis": {"analyzer": {"stratus_text": {
            "type": "custom", "tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]}}},
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "tenant_id": {"type": "keyword"},
            "knowledge_base_id": {"type": "keyword"},
            "document_id": {"type": "keyword"},
            "text": {"type": "text", "analyzer": "stratus_text"},
            "embedding": {"type": "knn_vector", "dimension": 4,
                          "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil",
                                     "parameters": {"m": 16, "ef_construction": 128}}},
            "metadata": {"type": "object", "enabled": False},
            "metadata_terms": {"type": "keyword"},
            "tags": {"type": "keyword"},
            "enabled": {"type": "boolean"},
            "document_indexed": {"type": "boolean"},
        },
    },
}


def test_index_creation_body_and_idempotence(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.ensure_index(4)
    store.ensure_index(4)  # remembered: no second request
    assert [(r.method, r.path) for r in server.requests] == [("PUT", "/stratus-segments-4")]
    assert server.requests[0].body == EXPECTED_INDEX_BODY


def test_existing_index_is_tolerated(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    server.script("PUT", "/stratus-segments-4", 400, {
        "error": {"root_cause": [{"type": "resource_already_exists_exception",
                                  "reason": "index [stratus-segments-4/abc] already exists"}],
                  "type": "resource_already_exists_exception",
                  "reason": "index [stratus-segments-4/abc] already exists", "index": "stratus-segments-4"},
        "status": 400})
    store.ensure_index(4)
    # An index created before a field was added gets the field mapped.
    assert [(r.method, r.path, r.body) for r in server.requests[1:]] == [
        ("PUT", "/stratus-segments-4/_mapping", {"properties": {"document_indexed": {"type": "boolean"}}})]
    server.script("PUT", "/stratus-segments-8", 400, {
        "error": {"type": "illegal_argument_exception", "reason": "bad mapping"}, "status": 400})
    with pytest.raises(VectorStoreError, match="illegal_argument_exception"):
        store.ensure_index(8)


def test_bulk_upsert_lines(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.upsert(TENANT, KB, 4, [
        IndexedSegment(SEG1, DOC, "向量检索 works", [0.5, 0.5, 0.5, 0.5], {"lang": "zh", "year": 2024.0, "n": None},
                       ["a", "b"]),
        IndexedSegment(SEG2, DOC, "second", [1.0, 0.0, 0.0, 0.0], enabled=False, document_indexed=False),
    ])
    assert [(r.method, r.path) for r in server.requests] == [("PUT", "/stratus-segments-4"), ("POST", "/_bulk")]
    bulk = server.requests[1]
    assert bulk.query == {}
    assert bulk.body == [
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG1)}},
        {"tenant_id": str(TENANT), "knowledge_base_id": str(KB), "document_id": str(DOC), "text": "向量检索 works",
         "embedding": [0.5, 0.5, 0.5, 0.5], "metadata": {"lang": "zh", "year": 2024.0, "n": None},
         "metadata_terms": ['["lang","zh"]', '["year",2024]'], "tags": ["a", "b"], "enabled": True,
         "document_indexed": True},
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG2)}},
        {"tenant_id": str(TENANT), "knowledge_base_id": str(KB), "document_id": str(DOC), "text": "second",
         "embedding": [1.0, 0.0, 0.0, 0.0], "metadata": {}, "metadata_terms": [], "tags": [], "enabled": False,
         "document_indexed": False},
    ]
    assert bulk.raw.endswith(b"\n")  # NDJSON: every line terminated


def test_bulk_item_failure_raises(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.ensure_index(4)
    server.script("POST", "/_bulk", 200, {"took": 1, "errors": True, "items": [
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG1), "status": 201, "result": "created"}},
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG2), "status": 400,
                   "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [embedding]"}}},
    ]})
    with pytest.raises(VectorStoreError, match=f"1 segment.*{SEG2}.*mapper_parsing_exception"):
        store.upsert(TENANT, KB, 4, [IndexedSegment(SEG1, DOC, "a", [1.0, 0, 0, 0]),
                                     IndexedSegment(SEG2, DOC, "b", [0, 1.0, 0, 0])])


def test_bulk_429_is_retried(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.ensure_index(4)
    # The whole request rejected, then one item rejected: each retried after a backoff.
    server.script("POST", "/_bulk", 429, {"error": {"type": "es_rejected_execution_exception",
                                                    "reason": "rejected execution"}, "status": 429})
    server.script("POST", "/_bulk", 200, {"took": 1, "errors": True, "items": [
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG1), "status": 201, "result": "created"}},
        {"index": {"_index": "stratus-segments-4", "_id": str(SEG2), "status": 429,
                   "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
    ]})
    store.upsert(TENANT, KB, 4, [IndexedSegment(SEG1, DOC, "a", [1.0, 0, 0, 0]),
                                 IndexedSegment(SEG2, DOC, "b", [0, 1.0, 0, 0])])
    bulks = [r for r in server.requests if r.path == "/_bulk"]
    assert len(bulks) == 3
    assert bulks[0].body == bulks[1].body and len(bulks[0].body) == 4
    assert bulks[2].body == bulks[1].body[2:]  # only the rejected item


def test_bulk_429_gives_up_after_the_retries(server: ScriptedOpenSearch) -> None:
    store = OpenSearchVectorStore(lambda: build_client(server.url, sigv4_service="none", timeout_s=5),
                                  "stratus-segments", bulk_max_retries=2, bulk_initial_backoff_s=0.01)
    store.ensure_index(4)
    for _ in range(3):
        server.script("POST", "/_bulk", 429, {"error": {"type": "es_rejected_execution_exception"}, "status": 429})
    with pytest.raises(VectorStoreError):
        store.upsert(TENANT, KB, 4, [IndexedSegment(SEG1, DOC, "a", [1.0, 0, 0, 0])])
    assert len([r for r in server.requests if r.path == "/_bulk"]) == 3


def test_semantic_search_body_and_scores(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    server.script("POST", "/stratus-segments-4/_search", 200, {"took": 2, "timed_out": False, "hits": {
        "total": {"value": 2, "relation": "eq"}, "max_score": 0.95, "hits": [
            {"_index": "stratus-segments-4", "_id": str(SEG1), "_score": 0.95,
             "_source": {"document_id": str(DOC), "knowledge_base_id": str(KB)}},
            {"_index": "stratus-segments-4", "_id": str(SEG2), "_score": 0.25,
             "_source": {"document_id": str(DOC), "knowledge_base_id": str(KB2)}}]}})
    hits = store.search_semantic(TENANT, [KB, KB2], 4, [0.1, 0.2, 0.3, 0.4], 5,
                                 SearchFilter(metadata={"lang": "en", "year": [2023, 2024]}, tags=["x", "y"],
                                              document_ids=[DOC]))
    request = server.requests[-1]
    assert (request.method, request.path, request.query) == (
        "POST", "/stratus-segments-4/_search", {"ignore_unavailable": "true"})
    assert request.body == {
        "size": 5,
        "_source": ["document_id", "knowledge_base_id"],
        "query": {"knn": {"embedding": {
            "vector": [0.1, 0.2, 0.3, 0.4],
            "k": 5,
            "filter": {"bool": {"filter": [
                {"term": {"tenant_id": str(TENANT)}},
                {"terms": {"knowledge_base_id": [str(KB), str(KB2)]}},
                {"term": {"enabled": True}},
                {"bool": {"must_not": [{"term": {"document_indexed": False}}]}},
                {"term": {"metadata_terms": '["lang","en"]'}},
                {"terms": {"metadata_terms": ['["year",2023]', '["year",2024]']}},
                {"term": {"tags": "x"}},
                {"term": {"tags": "y"}},
                {"terms": {"document_id": [str(DOC)]}},
            ]}},
            "method_parameters": {"ef_search": 100},
        }}},
    }
    # cosinesimil scores are (1 + cos) / 2: the hits carry the cosine.
    assert [(h.segment_id, h.knowledge_base_id, h.score_type) for h in hits] == [
        (SEG1, KB, "cosine"), (SEG2, KB2, "cosine")]
    assert hits[0].score == pytest.approx(0.9) and hits[1].score == pytest.approx(-0.5)


def test_similarities_score_the_named_segments_exactly(server: ScriptedOpenSearch,
                                                       store: OpenSearchVectorStore) -> None:
    """A k-NN query filtered to the ids with k = their number: Lucene scores every one exactly
    (its filter leaves no more than k), with the same cosinesimil scores as the search."""
    server.script("POST", "/stratus-segments-4/_search", 200, {"took": 1, "timed_out": False, "hits": {
        "total": {"value": 1, "relation": "eq"}, "max_score": 0.7, "hits": [
            {"_index": "stratus-segments-4", "_id": str(SEG2), "_score": 0.7,
             "_source": {"document_id": str(DOC), "knowledge_base_id": str(KB)}}]}})
    found = store.similarities(TENANT, [KB], 4, [0.1, 0.2, 0.3, 0.4], [SEG1, SEG2, SEG1])
    request = server.requests[-1]
    assert (request.method, request.path, request.query) == (
        "POST", "/stratus-segments-4/_search", {"ignore_unavailable": "true"})
    assert request.body == {
        "size": 2,
        "_source": ["document_id", "knowledge_base_id"],
        "query": {"knn": {"embedding": {
            "vector": [0.1, 0.2, 0.3, 0.4],
            "k": 2,
            "filter": {"bool": {"filter": [
                {"term": {"tenant_id": str(TENANT)}},
                {"terms": {"knowledge_base_id": [str(KB)]}},
                {"term": {"enabled": True}},
                {"bool": {"must_not": [{"term": {"document_indexed": False}}]}},
                {"ids": {"values": [str(SEG1), str(SEG2)]}},
            ]}},
        }}},
    }
    # A segment the store does not have (SEG1 here) is left out; scores are cosines.
    assert found == {SEG2: pytest.approx(0.4)}


def test_full_text_search_body(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    server.script("POST", "/stratus-segments-*/_search", 200, {"took": 1, "timed_out": False, "hits": {
        "total": {"value": 1, "relation": "eq"}, "max_score": 7.5, "hits": [
            {"_index": "stratus-segments-384", "_id": str(SEG1), "_score": 7.5,
             "_source": {"document_id": str(DOC), "knowledge_base_id": str(KB)}}]}})
    hits = store.search_full_text(TENANT, [KB], "向量 search", 3)
    request = server.requests[-1]
    assert (request.method, request.path, request.query) == (
        "POST", "/stratus-segments-*/_search", {"ignore_unavailable": "true"})
    assert request.body == {
        "size": 3,
        "_source": ["document_id", "knowledge_base_id"],
        "query": {"bool": {
            "must": [{"match": {"text": {"query": "向量 search", "operator": "or"}}}],
            "filter": [{"term": {"tenant_id": str(TENANT)}}, {"terms": {"knowledge_base_id": [str(KB)]}},
                       {"term": {"enabled": True}},
                       {"bool": {"must_not": [{"term": {"document_indexed": False}}]}}],
        }},
    }
    assert [(h.segment_id, h.score, h.score_type) for h in hits] == [(SEG1, 7.5, "full_text")]


def test_delete_by_query_bodies(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.delete_segments(TENANT, KB, [SEG1, SEG2])
    store.delete_document(TENANT, KB, DOC)
    store.delete_knowledge_base(TENANT, KB)
    scope = [{"term": {"tenant_id": str(TENANT)}}, {"terms": {"knowledge_base_id": [str(KB)]}}]
    assert [(r.method, r.path, r.query, r.body) for r in server.requests] == [
        ("POST", "/stratus-segments-*/_delete_by_query", {"ignore_unavailable": "true"},
         {"query": {"bool": {"filter": [*scope, {"ids": {"values": [str(SEG1), str(SEG2)]}}]}}}),
        ("POST", "/stratus-segments-*/_delete_by_query", {"ignore_unavailable": "true"},
         {"query": {"bool": {"filter": [*scope, {"term": {"document_id": str(DOC)}}]}}}),
        ("POST", "/stratus-segments-*/_delete_by_query", {"ignore_unavailable": "true"},
         {"query": {"bool": {"filter": scope}}}),
    ]


def test_update_by_query_bodies(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.set_enabled(TENANT, KB, [SEG1], False)
    store.update_document_fields(TENANT, KB, DOC, {"lang": "en"}, ["t"])
    store.set_document_indexed(TENANT, KB, DOC, True)
    scope = [{"term": {"tenant_id": str(TENANT)}}, {"terms": {"knowledge_base_id": [str(KB)]}}]
    assert [(r.method, r.path, r.body) for r in server.requests] == [
        ("POST", "/stratus-segments-*/_update_by_query", {
            "query": {"bool": {"filter": [*scope, {"ids": {"values": [str(SEG1)]}}]}},
            "script": {"lang": "painless", "source": "ctx._source.enabled = params.enabled",
                       "params": {"enabled": False}}}),
        ("POST", "/stratus-segments-*/_update_by_query", {
            "query": {"bool": {"filter": [*scope, {"term": {"document_id": str(DOC)}}]}},
            "script": {"lang": "painless",
                       "source": "ctx._source.metadata = params.metadata; "
                                 "ctx._source.metadata_terms = params.metadata_terms; ctx._source.tags = params.tags",
                       "params": {"metadata": {"lang": "en"}, "metadata_terms": ['["lang","en"]'], "tags": ["t"]}}}),
        ("POST", "/stratus-segments-*/_update_by_query", {
            "query": {"bool": {"filter": [*scope, {"term": {"document_id": str(DOC)}}]}},
            "script": {"lang": "painless", "source": "ctx._source.document_indexed = params.indexed",
                       "params": {"indexed": True}}}),
    ]


def test_refresh_makes_writes_visible_before_returning(server: ScriptedOpenSearch) -> None:
    store = OpenSearchVectorStore(lambda: build_client(server.url, sigv4_service="none", timeout_s=5),
                                  "stratus-segments", refresh=True)
    store.upsert(TENANT, KB, 4, [IndexedSegment(SEG1, DOC, "a", [1.0, 0, 0, 0])])
    store.delete_document(TENANT, KB, DOC)
    assert [r.query for r in server.requests[1:]] == [{"refresh": "wait_for"},
                                                      {"ignore_unavailable": "true", "refresh": "true"}]


def test_failures_become_vector_store_errors(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    server.script("POST", "/stratus-segments-4/_search", 500, {"error": {"type": "search_phase_execution_exception"},
                                                               "status": 500})
    with pytest.raises(VectorStoreError):
        store.search_semantic(TENANT, [KB], 4, [1.0, 0, 0, 0], 5)
    server.script("POST", "/stratus-segments-*/_delete_by_query", 200, {
        "took": 1, "total": 1, "deleted": 0, "failures": [{"cause": {"type": "version_conflict_engine_exception"}}]})
    with pytest.raises(VectorStoreError, match="version_conflict"):
        store.delete_document(TENANT, KB, DOC)
    unreachable = OpenSearchVectorStore(lambda: build_client("http://127.0.0.1:9", sigv4_service="none",
                                                             timeout_s=1), "p")
    with pytest.raises(VectorStoreError):
        unreachable.search_full_text(TENANT, [KB], "x", 5)


def test_nothing_is_sent_for_empty_work(server: ScriptedOpenSearch, store: OpenSearchVectorStore) -> None:
    store.upsert(TENANT, KB, 4, [])
    store.delete_segments(TENANT, KB, [])
    store.set_enabled(TENANT, KB, [], True)
    assert store.search_semantic(TENANT, [], 4, [1.0, 0, 0, 0], 5) == []
    assert store.search_full_text(TENANT, [KB], "   ", 5) == []
    assert store.similarities(TENANT, [KB], 4, [1.0, 0, 0, 0], []) == {}
    assert store.similarities(TENANT, [], 4, [1.0, 0, 0, 0], [SEG1]) == {}
    assert server.requests == []
    with pytest.raises(ValueError, match="dimensions"):
        store.similarities(TENANT, [KB], 4, [1.0, 0], [SEG1])
    with pytest.raises(ValueError, match="dimensions"):
        store.search_semantic(TENANT, [KB], 4, [1.0, 0], 5)


def test_sigv4_signing(server: ScriptedOpenSearch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    store = OpenSearchVectorStore(lambda: build_client(server.url, sigv4_service="es", timeout_s=5), "p")
    store.search_full_text(TENANT, [KB], "x", 5)
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers and "x-amz-content-sha256" in headers
    unsigned = OpenSearchVectorStore(lambda: build_client(server.url, sigv4_service="none", timeout_s=5), "p")
    unsigned.search_full_text(TENANT, [KB], "x", 5)
    assert "authorization" not in {k.lower() for k in server.requests[1].headers}
