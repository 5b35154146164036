"""One contract for the vector-store port, held by every adapter: PostgreSQL (pgvector + full
text, always: the embedded server, as the application role through the Database port the
functions use) and OpenSearch (only when OPENSEARCH_URL names a live server; the parameter
is absent otherwise, so nothing shows as skipped). Segments exist in PostgreSQL for both,
as they do in the application (it is the source of truth).

PostgreSQL-only tests at the end call the SECURITY DEFINER functions directly as the
application role (isolation) and check the HNSW index and its iterative scan do the work."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.db.database import SingleConnectionDatabase, get_database
from shared.knowledge.vectorstore.pgvector import PostgresVectorStore, vector_literal
from shared.knowledge.vectorstore.ports import Hit, IndexedSegment, SearchFilter, VectorStore

EF_SEARCH = 40
ADAPTERS = ["postgres"] + (["opensearch"] if os.environ.get("OPENSEARCH_URL") else [])


@pytest.fixture(scope="module", params=ADAPTERS)
def store(request: pytest.FixtureRequest, app_env: None) -> Iterator[VectorStore]:
    if request.param == "postgres":
        yield PostgresVectorStore(get_database(), ef_search=EF_SEARCH)
        return
    from shared.knowledge.vectorstore.opensearch import OpenSearchVectorStore, build_client

    url = os.environ["OPENSEARCH_URL"]
    service = os.environ.get("OPENSEARCH_SIGV4_SERVICE", "none")
    prefix = f"stratus-contract-{uuid.uuid4().hex[:8]}"
    client = build_client(url, sigv4_service=service, timeout_s=30)
    yield OpenSearchVectorStore(lambda: client, prefix, ef_search=EF_SEARCH, refresh=True)
    client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)


# --- the knowledge base rows the segments belong to (PostgreSQL is the source of truth) --------


@dataclass
class Seed:
    """Knowledge bases, documents and segments written as the schema owner, as the ingestion
    service would have written them before indexing."""

    admin_url: str
    # An owner that is no superuser is held by (forced) row-level security: it writes as this tenant.
    as_tenant: uuid.UUID | None = None

    def _run(self, query: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn, conn.cursor() as cur:
            if self.as_tenant is not None:
                cur.execute("SELECT set_config('app.tenant_id', %s, false)", (str(self.as_tenant),))
            cur.executemany(query, rows)

    def knowledge_base(self, tenant_id: uuid.UUID, dimensions: int) -> uuid.UUID:
        kb = uuid.uuid4()
        self._run("""INSERT INTO knowledge_bases (id, tenant_id, name, embedding_model, dimensions, chunking, retrieval)
                     VALUES (%s, %s, %s, 'test-model', %s, '{}', '{}')""",
                  [(kb, tenant_id, f"kb {kb.hex[:8]}", dimensions)])
        return kb

    def document(self, tenant_id: uuid.UUID, kb: uuid.UUID, texts: Sequence[str],
                 status: str = "indexed") -> tuple[uuid.UUID, list[uuid.UUID]]:
        document = uuid.uuid4()
        self._run("""INSERT INTO documents (id, tenant_id, knowledge_base_id, name, content_type, size, source,
                                            s3_key, chunking, status)
                     VALUES (%s, %s, %s, 'doc.txt', 'text/plain', 1, 'text', 'k', '{}', %s)""",
                  [(document, tenant_id, kb, status)])
        ids = [uuid.uuid4() for _ in texts]
        self._run("""INSERT INTO segments (id, tenant_id, knowledge_base_id, document_id, position, text, content_hash)
                     VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                  [(sid, tenant_id, kb, document, i, text, hashlib.sha256(text.encode()).hexdigest())
                   for i, (sid, text) in enumerate(zip(ids, texts, strict=True))])
        return document, ids

    def document_status(self, tenant_id: uuid.UUID, document: uuid.UUID, status: str) -> None:
        self._run("UPDATE documents SET status = %s WHERE tenant_id = %s AND id = %s", [(status, tenant_id, document)])


@pytest.fixture
def seed(pg: Any) -> Seed:
    return Seed(pg.admin_url)


@pytest.fixture
def tenant(new_tenant: Callable[..., dict[str, Any]]) -> uuid.UUID:
    return uuid.UUID(new_tenant()["tenant"]["id"])


def unit(vector: Sequence[float] | np.ndarray) -> list[float]:
    array = np.asarray(vector, dtype=np.float64)
    return [float(x) for x in array / np.linalg.norm(array)]


def random_vectors(rng: np.random.Generator, n: int, dims: int) -> list[list[float]]:
    return [unit(v) for v in rng.normal(size=(n, dims))]


def segments_of(document: uuid.UUID, ids: Sequence[uuid.UUID], texts: Sequence[str],
                vectors: Sequence[Sequence[float]], **fields: Any) -> list[IndexedSegment]:
    return [IndexedSegment(sid, document, text, vector, **fields)
            for sid, text, vector in zip(ids, texts, vectors, strict=True)]


def ids(hits: Sequence[Hit]) -> list[uuid.UUID]:
    return [h.segment_id for h in hits]


def exact_order(query: Sequence[float], candidates: Mapping[uuid.UUID, Sequence[float]]) -> list[uuid.UUID]:
    q = np.asarray(query)
    return sorted(candidates, key=lambda sid: -float(np.dot(q, np.asarray(candidates[sid]))))


# --- the contract ------------------------------------------------------------------------------


def test_upsert_is_idempotent_and_replaces(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    store.ensure_index(8)  # idempotent
    document, (sid,) = seed.document(tenant, kb, ["alpha"])
    vector = unit([1, 0, 0, 0, 0, 0, 0, 0])
    store.upsert(tenant, kb, 8, [IndexedSegment(sid, document, "original wording", vector)])
    store.upsert(tenant, kb, 8, [IndexedSegment(sid, document, "original wording", vector)])
    hits = store.search_semantic(tenant, [kb], 8, vector, 10)
    assert ids(hits) == [sid]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3) and hits[0].score_type == "cosine"
    assert hits[0].document_id == document and hits[0].knowledge_base_id == kb

    store.upsert(tenant, kb, 8, [IndexedSegment(sid, document, "replacement wording", vector)])
    assert ids(store.search_full_text(tenant, [kb], "replacement", 10)) == [sid]
    assert store.search_full_text(tenant, [kb], "original", 10) == []
    assert ids(store.search_semantic(tenant, [kb], 8, vector, 10)) == [sid]


def test_semantic_order_and_scores(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    rng = np.random.default_rng(1)
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    texts = [f"segment {i}" for i in range(60)]
    document, sids = seed.document(tenant, kb, texts)
    vectors = random_vectors(rng, 60, 8)
    store.upsert(tenant, kb, 8, segments_of(document, sids, texts, vectors))
    query = unit(rng.normal(size=8))
    hits = store.search_semantic(tenant, [kb], 8, query, 10)
    expected = exact_order(query, dict(zip(sids, vectors, strict=True)))[:10]
    assert ids(hits) == expected
    by_id = dict(zip(sids, vectors, strict=True))
    for hit in hits:
        assert hit.score == pytest.approx(float(np.dot(query, by_id[hit.segment_id])), abs=1e-3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(store.search_semantic(tenant, [kb], 8, query, 3)) == 3


def test_top_k_with_a_one_percent_filter(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    """2,000 segments, 1% carrying the filtered value and all of them far from the query: the
    first ef_search candidates hold none of them, so post-filtering would return nothing."""
    rng = np.random.default_rng(2)
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    n, rare_every = 2000, 100
    query = unit([1, 0, 0, 0, 0, 0, 0, 0])
    texts = [f"s{i}" for i in range(n)]
    document, sids = seed.document(tenant, kb, texts)
    vectors, segments = [], []
    for i, sid in enumerate(sids):
        rare = i % rare_every == 0
        noise = rng.normal(scale=0.3, size=8)
        vector = unit(np.asarray(query) * (-1 if rare else 1) + noise)
        vectors.append(vector)
        segments.append(IndexedSegment(sid, document, texts[i], vector, metadata={"tier": "rare" if rare else "std"}))
    store.upsert(tenant, kb, 8, segments)
    rare_ids = {sid for i, sid in enumerate(sids) if i % rare_every == 0}
    hits = store.search_semantic(tenant, [kb], 8, query, 10, SearchFilter(metadata={"tier": "rare"}))
    assert len(hits) == 10
    assert set(ids(hits)) <= rare_ids
    expected = exact_order(query, {sid: v for sid, v in zip(sids, vectors, strict=True) if sid in rare_ids})[:10]
    assert len(set(ids(hits)) & set(expected)) >= 9  # HNSW is approximate; recall stays high
    # Unfiltered, the same query finds the common segments.
    assert not set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) & rare_ids


def test_similarities_are_the_searchs_cosines_for_named_segments(store: VectorStore, seed: Seed,
                                                                 new_tenant: Callable[..., dict[str, Any]]) -> None:
    """Hybrid search asks the cosine of segments only the keyword ranking found: the score the
    semantic search gives each, for just those ids, within the tenant's named knowledge bases."""
    rng = np.random.default_rng(11)
    tenant, other = uuid.UUID(new_tenant()["tenant"]["id"]), uuid.UUID(new_tenant()["tenant"]["id"])
    kb, kb_unnamed, kb_other = seed.knowledge_base(tenant, 8), seed.knowledge_base(tenant, 8), \
        seed.knowledge_base(other, 8)
    store.ensure_index(8)
    texts = [f"note {i}" for i in range(30)]
    document, sids = seed.document(tenant, kb, texts)
    vectors = random_vectors(rng, 30, 8)
    store.upsert(tenant, kb, 8, segments_of(document, sids, texts, vectors))
    unnamed_doc, (unnamed,) = seed.document(tenant, kb_unnamed, ["unnamed"])
    store.upsert(tenant, kb_unnamed, 8, [IndexedSegment(unnamed, unnamed_doc, "unnamed", vectors[0])])
    other_doc, (foreign,) = seed.document(other, kb_other, ["foreign"])
    store.upsert(other, kb_other, 8, [IndexedSegment(foreign, other_doc, "foreign", vectors[0])])
    query = unit(rng.normal(size=8))
    searched = {h.segment_id: h.score for h in store.search_semantic(tenant, [kb], 8, query, 30)}
    # The five farthest: what a semantic search for a few candidates would not have returned.
    farthest = exact_order(query, dict(zip(sids, vectors, strict=True)))[-5:]
    found = store.similarities(tenant, [kb, kb_other], 8, query, [*farthest, unnamed, foreign, uuid.uuid4()])
    assert set(found) == set(farthest)
    by_id = dict(zip(sids, vectors, strict=True))
    for sid in farthest:
        assert found[sid] == pytest.approx(searched[sid], abs=1e-3)
        assert found[sid] == pytest.approx(float(np.dot(query, by_id[sid])), abs=1e-3)
    assert store.similarities(other, [kb], 8, query, farthest) == {}
    assert store.similarities(tenant, [kb], 8, query, []) == {}
    with pytest.raises(ValueError, match="dimensions"):
        store.similarities(tenant, [kb], 8, query[:4], farthest)


def test_metadata_tags_and_document_filters(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    query = unit([1] * 8)
    doc_a, (a1, a2) = seed.document(tenant, kb, ["a1", "a2"])
    doc_b, (b1,) = seed.document(tenant, kb, ["b1"])
    doc_c, (c1,) = seed.document(tenant, kb, ["c1"])
    store.upsert(tenant, kb, 8, [
        IndexedSegment(a1, doc_a, "shared words one", query, {"lang": "en", "year": 2024}, ["red", "blue"]),
        IndexedSegment(a2, doc_a, "shared words two", query, {"lang": "en", "year": 2024}, ["red", "blue"]),
        IndexedSegment(b1, doc_b, "shared words three", query, {"lang": "fr", "year": 2023}, ["red"]),
        IndexedSegment(c1, doc_c, "shared words four", query, {"lang": "de", "year": "2024", "it's \"x\"": "y'"},
                       []),
    ])

    def both(search_filter: SearchFilter) -> set[uuid.UUID]:
        semantic = set(ids(store.search_semantic(tenant, [kb], 8, query, 10, search_filter)))
        full_text = set(ids(store.search_full_text(tenant, [kb], "shared words", 10, search_filter)))
        assert semantic == full_text
        return semantic

    assert both(SearchFilter()) == {a1, a2, b1, c1}
    assert both(SearchFilter(tags=["red"])) == {a1, a2, b1}
    assert both(SearchFilter(tags=["red", "blue"])) == {a1, a2}  # every tag must be present
    assert both(SearchFilter(tags=["green"])) == set()
    assert both(SearchFilter(metadata={"lang": "en"})) == {a1, a2}
    assert both(SearchFilter(metadata={"lang": ["fr", "de"]})) == {b1, c1}  # any of a list
    assert both(SearchFilter(metadata={"year": 2024})) == {a1, a2}  # typed: "2024" is not 2024
    assert both(SearchFilter(metadata={"year": 2024.0})) == {a1, a2}
    assert both(SearchFilter(metadata={"lang": "en", "year": 2023})) == set()
    assert both(SearchFilter(metadata={"missing": "x"})) == set()
    assert both(SearchFilter(document_ids=[doc_b, doc_c])) == {b1, c1}
    assert both(SearchFilter(metadata={"lang": []})) == set()  # none of an empty list
    assert both(SearchFilter(metadata={"it's \"x\"": ["y'", "z"]})) == {c1}  # keys and values are data, not SQL
    assert both(SearchFilter(metadata={"it's \"x\"": "y'"})) == {c1}
    assert both(SearchFilter(metadata={"lang": ["en", "fr"]}, tags=["red"], document_ids=[doc_b])) == {b1}


def test_disabled_segments_are_invisible_until_enabled(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    query = unit([1] * 8)
    document, (s1, s2, s3) = seed.document(tenant, kb, ["x", "y", "z"])
    store.upsert(tenant, kb, 8, [IndexedSegment(s1, document, "lantern harbour", query),
                                 IndexedSegment(s2, document, "lantern harbour", query),
                                 IndexedSegment(s3, document, "lantern harbour", query, enabled=False)])
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {s1, s2}
    store.set_enabled(tenant, kb, [s1], False)
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {s2}
    assert set(ids(store.search_full_text(tenant, [kb], "lantern", 10))) == {s2}
    store.set_enabled(tenant, kb, [s1, s3], True)
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {s1, s2, s3}
    assert set(ids(store.search_full_text(tenant, [kb], "harbour", 10))) == {s1, s2, s3}


def test_only_indexed_documents_are_searched(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    """Segments written while their document embeds (or of a document whose indexing then
    failed, part-way) are never retrieved: only indexed documents are searched."""
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    query = unit([1] * 8)
    done, (d1,) = seed.document(tenant, kb, ["x"])
    embedding, (e1, e2) = seed.document(tenant, kb, ["y", "z"], status="embedding")
    store.upsert(tenant, kb, 8, [IndexedSegment(d1, done, "copper kettle", query)])
    store.upsert(tenant, kb, 8, [IndexedSegment(e1, embedding, "copper kettle", query, document_indexed=False),
                                 IndexedSegment(e2, embedding, "copper kettle", query, document_indexed=False)])
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {d1}
    assert set(ids(store.search_full_text(tenant, [kb], "kettle", 10))) == {d1}

    seed.document_status(tenant, embedding, "indexed")
    store.set_document_indexed(tenant, kb, embedding, True)
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {d1, e1, e2}
    assert set(ids(store.search_full_text(tenant, [kb], "copper", 10))) == {d1, e1, e2}

    seed.document_status(tenant, done, "failed")
    store.set_document_indexed(tenant, kb, done, False)
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10))) == {e1, e2}
    assert set(ids(store.search_full_text(tenant, [kb], "kettle", 10))) == {e1, e2}


def test_full_text_english(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    texts = ["The invoice payment failed because the card expired.",
             "Payment reminders are sent weekly.",
             "Our mountain cabin has a wood stove.",
             "INVOICE numbers start at 1000; every invoice lists its payment terms."]
    document, sids = seed.document(tenant, kb, texts)
    store.upsert(tenant, kb, 8, segments_of(document, sids, texts, random_vectors(np.random.default_rng(3), 4, 8)))
    hits = store.search_full_text(tenant, [kb], "Invoice payment?", 10)
    assert set(ids(hits)) == {sids[0], sids[1], sids[3]}  # any term may match; case and punctuation ignored
    assert ids(hits)[-1] == sids[1]  # one term only: ranked last
    assert all(h.score_type == "full_text" and h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert ids(store.search_full_text(tenant, [kb], "stove", 10)) == [sids[2]]
    assert ids(store.search_full_text(tenant, [kb], "how is the stove", 10))[0] == sids[2]
    assert store.search_full_text(tenant, [kb], "submarine", 10) == []
    assert store.search_full_text(tenant, [kb], "?!", 10) == []
    assert len(store.search_full_text(tenant, [kb], "invoice payment", 1)) == 1


def test_full_text_chinese(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    texts = ["向量数据库支持语义检索和全文检索。",
             "今天天气很好，我们去公园散步。",  # noqa: RUF001 - Chinese punctuation is the point
             "知识库的文档会被切分成片段，然后写入数据库。"]  # noqa: RUF001
    document, sids = seed.document(tenant, kb, texts)
    store.upsert(tenant, kb, 8, segments_of(document, sids, texts, random_vectors(np.random.default_rng(4), 3, 8)))
    assert set(ids(store.search_full_text(tenant, [kb], "数据库", 10))) == {sids[0], sids[2]}
    assert ids(store.search_full_text(tenant, [kb], "语义检索", 10)) == [sids[0]]
    assert ids(store.search_full_text(tenant, [kb], "公园", 10)) == [sids[1]]
    assert store.search_full_text(tenant, [kb], "火车站", 10) == []


def test_deletes(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb, other_kb = seed.knowledge_base(tenant, 8), seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    query = unit([1] * 8)
    doc_a, (a1, a2) = seed.document(tenant, kb, ["a1", "a2"])
    doc_b, (b1, b2) = seed.document(tenant, kb, ["b1", "b2"])
    doc_o, (o1,) = seed.document(tenant, other_kb, ["o1"])
    store.upsert(tenant, kb, 8, [IndexedSegment(s, d, "quartz", query) for s, d in
                                 ((a1, doc_a), (a2, doc_a), (b1, doc_b), (b2, doc_b))])
    store.upsert(tenant, other_kb, 8, [IndexedSegment(o1, doc_o, "quartz", query)])

    def found() -> set[uuid.UUID]:
        semantic = set(ids(store.search_semantic(tenant, [kb, other_kb], 8, query, 10)))
        assert semantic == set(ids(store.search_full_text(tenant, [kb, other_kb], "quartz", 10)))
        return semantic

    assert found() == {a1, a2, b1, b2, o1}
    store.delete_segments(tenant, kb, [a1])
    assert found() == {a2, b1, b2, o1}
    store.delete_segments(tenant, kb, [o1])  # not in this knowledge base: nothing happens
    assert found() == {a2, b1, b2, o1}
    store.delete_document(tenant, kb, doc_b)
    assert found() == {a2, o1}
    store.delete_knowledge_base(tenant, kb)
    assert found() == {o1}
    store.delete_knowledge_base(tenant, kb)  # idempotent
    store.delete_segments(tenant, other_kb, [])
    assert found() == {o1}


def test_update_document_fields_changes_filter_results(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    query = unit([1] * 8)
    doc_a, (a1, a2) = seed.document(tenant, kb, ["a1", "a2"])
    doc_b, (b1,) = seed.document(tenant, kb, ["b1"])
    store.upsert(tenant, kb, 8, [IndexedSegment(a1, doc_a, "meadow", query, {"status": "draft"}, ["old"]),
                                 IndexedSegment(a2, doc_a, "meadow", query, {"status": "draft"}, ["old"]),
                                 IndexedSegment(b1, doc_b, "meadow", query, {"status": "draft"}, ["old"])])
    final = SearchFilter(metadata={"status": "final"}, tags=["new"])
    assert store.search_semantic(tenant, [kb], 8, query, 10, final) == []
    store.update_document_fields(tenant, kb, doc_a, {"status": "final", "owner": "ana"}, ["new", "reviewed"])
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10, final))) == {a1, a2}
    assert set(ids(store.search_full_text(tenant, [kb], "meadow", 10, final))) == {a1, a2}
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10, SearchFilter(tags=["old"])))) == {b1}
    assert set(ids(store.search_semantic(tenant, [kb], 8, query, 10,
                                         SearchFilter(metadata={"owner": "ana"})))) == {a1, a2}


def test_tenant_isolation(store: VectorStore, seed: Seed, new_tenant: Callable[..., dict[str, Any]]) -> None:
    a, b = uuid.UUID(new_tenant()["tenant"]["id"]), uuid.UUID(new_tenant()["tenant"]["id"])
    kb_a, kb_b = seed.knowledge_base(a, 8), seed.knowledge_base(b, 8)
    store.ensure_index(8)
    query = unit([1, 2, 3, 4, 5, 6, 7, 8])
    doc_a, (sa,) = seed.document(a, kb_a, ["a"])
    doc_b, (sb1, sb2) = seed.document(b, kb_b, ["b1", "b2"])
    store.upsert(a, kb_a, 8, [IndexedSegment(sa, doc_a, "secret plans", query)])
    store.upsert(b, kb_b, 8, [IndexedSegment(sb1, doc_b, "secret plans", query),
                              IndexedSegment(sb2, doc_b, "secret plans", query)])
    # A names B's knowledge base (a guessed or leaked id): still only A's segments.
    assert ids(store.search_semantic(a, [kb_a, kb_b], 8, query, 10)) == [sa]
    assert ids(store.search_full_text(a, [kb_a, kb_b], "secret plans", 10)) == [sa]
    assert store.search_semantic(a, [kb_b], 8, query, 10) == []
    assert store.search_full_text(a, [kb_b], "secret", 10) == []
    # Writes scoped to A never touch B's segments, whatever ids A passes.
    store.delete_segments(a, kb_b, [sb1])
    store.delete_knowledge_base(a, kb_b)
    store.set_enabled(a, kb_b, [sb1, sb2], False)
    store.update_document_fields(a, kb_b, doc_b, {"x": 1}, ["y"])
    assert set(ids(store.search_semantic(b, [kb_b], 8, query, 10))) == {sb1, sb2}
    assert set(ids(store.search_semantic(b, [kb_b], 8, query, 10, SearchFilter(tags=["y"])))) == set()


def test_dimensions_coexist(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    """8, 16 and 2048 dimensions (halfvec on PostgreSQL) side by side for one tenant."""
    rng = np.random.default_rng(5)
    found: dict[int, tuple[uuid.UUID, list[uuid.UUID], list[list[float]]]] = {}
    for dims, n in ((8, 20), (16, 20), (2048, 6)):
        kb = seed.knowledge_base(tenant, dims)
        store.ensure_index(dims)
        texts = [f"size {dims} item {i}" for i in range(n)]
        document, sids = seed.document(tenant, kb, texts)
        vectors = random_vectors(rng, n, dims)
        store.upsert(tenant, kb, dims, segments_of(document, sids, texts, vectors))
        found[dims] = (kb, sids, vectors)
    kbs = [kb for kb, _, _ in found.values()]
    for dims, (_, sids, vectors) in found.items():
        hits = store.search_semantic(tenant, kbs, dims, vectors[3], 5)
        assert hits[0].segment_id == sids[3]
        assert hits[0].score == pytest.approx(1.0, abs=5e-3)  # halfvec rounds the 2048-d vectors
        assert set(ids(hits)) <= set(sids)
        assert ids(hits) == exact_order(vectors[3], dict(zip(sids, vectors, strict=True)))[:5]
    assert len(store.search_full_text(tenant, kbs, "item", 100)) == 46
    with pytest.raises(ValueError, match="dimensions"):
        store.search_semantic(tenant, kbs, 16, found[8][2][0], 5)


def test_empty_arguments(store: VectorStore, seed: Seed, tenant: uuid.UUID) -> None:
    kb = seed.knowledge_base(tenant, 8)
    store.ensure_index(8)
    store.upsert(tenant, kb, 8, [])
    assert store.search_semantic(tenant, [], 8, unit([1] * 8), 10) == []
    assert store.search_full_text(tenant, [], "anything", 10) == []
    assert store.search_semantic(tenant, [kb], 8, unit([1] * 8), 10) == []
    assert store.search_full_text(tenant, [kb], "", 10) == []


# --- PostgreSQL only: the SECURITY DEFINER functions and the HNSW index -------------------------


@pytest.fixture
def app_db(pg: Any) -> Iterator[SingleConnectionDatabase]:
    db = SingleConnectionDatabase(pg.app_url)
    yield db
    db.close()


def _call_semantic(conn: Any, tenant: uuid.UUID, kbs: list[uuid.UUID], vector: list[float], top_k: int = 10,
                   metadata: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT segment_id, score FROM segment_search_semantic(%s, %s, %s, %s, %s, %s, %s)",
                        (tenant, kbs, len(vector), vector_literal(vector), top_k, EF_SEARCH,
                         Jsonb(metadata) if metadata else None)).fetchall()


def test_definer_functions_isolate_tenants(app_db: SingleConnectionDatabase, seed: Seed,
                                           new_tenant: Callable[..., dict[str, Any]]) -> None:
    a, b = uuid.UUID(new_tenant()["tenant"]["id"]), uuid.UUID(new_tenant()["tenant"]["id"])
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    store.ensure_index(8)
    kb_a, kb_b = seed.knowledge_base(a, 8), seed.knowledge_base(b, 8)
    vector = unit([1] * 8)
    doc_a, (sa,) = seed.document(a, kb_a, ["a"])
    doc_b, (sb,) = seed.document(b, kb_b, ["b"])
    store.upsert(a, kb_a, 8, [IndexedSegment(sa, doc_a, "common words", vector)])
    store.upsert(b, kb_b, 8, [IndexedSegment(sb, doc_b, "common words", vector)])

    with app_db.transaction(a) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("stratus_app",)
        assert [r[0] for r in _call_semantic(conn, a, [kb_a, kb_b], vector)] == [sa]
        rows = conn.execute("SELECT segment_id FROM segment_search_full_text(%s, %s, %s, %s)",
                            (a, [kb_a, kb_b], ["common"], 10)).fetchall()
        assert [r[0] for r in rows] == [sa]
        # Row-level security on the table itself: B's rows do not exist for A.
        assert conn.execute("SELECT segment_id FROM segment_index").fetchall() == [(sa,)]
        # A transaction of tenant A cannot search as tenant B.
    for call in (lambda c: _call_semantic(c, b, [kb_b], vector),
                 lambda c: c.execute("SELECT * FROM segment_search_full_text(%s, %s, %s, %s)",
                                     (b, [kb_b], ["common"], 10)).fetchall()):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tenant"), app_db.transaction(a) as conn:
            call(conn)
    # No tenant set: no search at all.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.transaction(None) as conn:
        _call_semantic(conn, a, [kb_a], vector)
    # A cannot write B's rows under row-level security: an upsert of B's segment id indexes nothing.
    store.upsert(a, kb_b, 8, [IndexedSegment(sb, doc_b, "hijacked", unit([-1] * 8))])
    with app_db.transaction(b) as conn:
        rows = conn.execute("SELECT segment_id FROM segment_search_full_text(%s, %s, %s, %s)",
                            (b, [kb_b], ["hijacked"], 10)).fetchall()
    assert rows == []
    assert [h.segment_id for h in store.search_semantic(b, [kb_b], 8, vector, 10)] == [sb]


def test_definer_internals_are_not_callable_by_the_app(app_db: SingleConnectionDatabase) -> None:
    for statement in ("SELECT segment_index_type(8)",
                      "SELECT segment_index_filter_sql(NULL, NULL, NULL, NULL)",
                      "SELECT segment_index_check_tenant(gen_random_uuid())"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), app_db.transaction(None) as conn:
            conn.execute(statement)
    with app_db.transaction(None) as conn:
        owner = conn.execute("""SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc
                                 WHERE proname LIKE 'segment\\_%'""").fetchall()
        definer = conn.execute("""SELECT proname, prosecdef, proconfig FROM pg_proc
                                   WHERE proname IN ('segment_search_semantic', 'segment_search_full_text',
                                                     'segment_index_ensure')""").fetchall()
        table_owner = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                   "WHERE relname = 'segment_index'").fetchone()
    assert owner == [("stratus_definer",)] and table_owner == ("stratus_definer",)
    assert len(definer) == 3
    for _, secdef, config in definer:
        assert secdef and "search_path=public, pg_temp" in config


def test_hnsw_iterative_scan_serves_selective_filters(app_db: SingleConnectionDatabase, seed: Seed,
                                                      tenant: uuid.UUID, admin_sql: Callable[..., Any]) -> None:
    """The semantic function answers from the partial HNSW index, which keeps scanning past
    ef_search candidates when a filter rejects them (no exact fallback was needed). At this
    size the planner rightly prefers scanning the 5,000 rows; the test takes the other plans
    away so the index path is the one exercised (the benchmark shows the planner's choices)."""
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    store.ensure_index(16)
    rng = np.random.default_rng(6)
    kb = seed.knowledge_base(tenant, 16)
    n = 5000
    query = unit([1] + [0] * 15)
    texts = [f"t{i}" for i in range(n)]
    document, sids = seed.document(tenant, kb, texts)
    segments, rare = [], {}
    for i, sid in enumerate(sids):
        is_rare = i % 100 == 0
        vector = unit(np.asarray(query) * (-0.5 if is_rare else 1) + rng.normal(scale=0.35, size=16))
        segments.append(IndexedSegment(sid, document, texts[i], vector, {"tier": "rare" if is_rare else "std"}))
        if is_rare:
            rare[sid] = vector
    store.upsert(tenant, kb, 16, segments)
    admin_sql("ANALYZE segment_index")
    notices: list[str] = []
    with app_db.transaction(tenant) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("SET LOCAL client_min_messages = debug1")
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(f"SET LOCAL {setting} = off")
        # Scans of the index by this transaction (not yet flushed to the cumulative statistics).
        scans = "SELECT pg_stat_get_xact_numscans('segment_index_hnsw_16'::regclass)"
        before = conn.execute(scans).fetchone()
        rows = _call_semantic(conn, tenant, [kb], query, 10, {"tier": "rare"})
        after = conn.execute(scans).fetchone()
    assert len(rows) == 10 and {r[0] for r in rows} <= set(rare)
    assert before is not None and after is not None and after[0] > before[0], "the HNSW index was not used"
    assert not [m for m in notices if "searching exactly" in m], notices
    assert len({r[0] for r in rows} & set(exact_order(query, rare)[:10])) >= 9


def test_semantic_falls_back_to_exact_search_when_the_index_runs_dry(
        app_db: SingleConnectionDatabase, seed: Seed, tenant: uuid.UUID) -> None:
    """Fewer matches than top_k: the function says so (DEBUG1) and returns every match, in order."""
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    store.ensure_index(8)
    kb = seed.knowledge_base(tenant, 8)
    rng = np.random.default_rng(7)
    document, sids = seed.document(tenant, kb, [f"x{i}" for i in range(30)])
    vectors = random_vectors(rng, 30, 8)
    store.upsert(tenant, kb, 8, [IndexedSegment(s, document, "x", v, {"keep": i < 3})
                                 for i, (s, v) in enumerate(zip(sids, vectors, strict=True))])
    notices: list[str] = []
    with app_db.transaction(tenant) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("SET LOCAL client_min_messages = debug1")
        rows = _call_semantic(conn, tenant, [kb], vectors[0], 10, {"keep": True})
    assert [r[0] for r in rows] == exact_order(vectors[0], dict(zip(sids[:3], vectors[:3], strict=True)))
    assert [m for m in notices if "searching exactly" in m]


def test_segment_index_rows_follow_their_segment(app_db: SingleConnectionDatabase, seed: Seed, tenant: uuid.UUID,
                                                 admin_sql: Callable[..., Any]) -> None:
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    kb = seed.knowledge_base(tenant, 8)
    document, (s1, s2) = seed.document(tenant, kb, ["one", "two"])
    store.upsert(tenant, kb, 8, [IndexedSegment(s1, document, "one", unit([1] * 8), {"k": "v"}, ["t"]),
                                 IndexedSegment(s2, document, "two", unit([1] * 8))])
    row = admin_sql("SELECT tenant_id, knowledge_base_id, document_id, dimensions, metadata, tags, search::text "
                    "FROM segment_index WHERE segment_id = %s", (s1,))
    assert row == [(tenant, kb, document, 8, {"k": "v"}, ["t"], "'one':1")]
    admin_sql("DELETE FROM segments WHERE id = %s", (s1,))  # the segment's row takes its index row along
    assert admin_sql("SELECT segment_id FROM segment_index WHERE knowledge_base_id = %s", (kb,)) == [(s2,)]
    # An upsert naming a segment that no longer exists indexes nothing (and does not fail).
    store.upsert(tenant, kb, 8, [IndexedSegment(s1, document, "one", unit([1] * 8))])
    assert admin_sql("SELECT count(*) FROM segment_index WHERE knowledge_base_id = %s", (kb,)) == [(1,)]


def test_postgres_store_when_the_owner_is_not_a_superuser(tmp_path: Any) -> None:
    """As on Aurora: the migrating owner is a plain role, the table and functions belong to
    stratus_definer; indexes are created, rows written, searched and cascaded all the same."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from infra.local.postgres import start_embedded_postgres
    from shared.db.migrate import apply_migrations

    server = start_embedded_postgres(tmp_path / "pg", database="postgres")
    try:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE plain_vector_owner LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS")
            conn.execute("CREATE DATABASE vectors_aurora_like OWNER plain_vector_owner")
        params = conninfo_to_dict(server.admin_url)
        with psycopg.connect(make_conninfo("", **{**params, "dbname": "vectors_aurora_like"}),
                             autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        owner_url = make_conninfo("", **{**params, "dbname": "vectors_aurora_like", "user": "plain_vector_owner"})
        apply_migrations(owner_url)
        tenant = uuid.uuid4()
        with psycopg.connect(owner_url, autocommit=True) as conn:
            # The owner is subject to FORCE RLS too: it writes the seed rows as the tenant.
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant),))
            conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'aurora')", (tenant,))
        seed = Seed(owner_url, as_tenant=tenant)
        kb = seed.knowledge_base(tenant, 8)
        document, sids = seed.document(tenant, kb, ["red apple", "green pear", "blue plum"])
        db = SingleConnectionDatabase(make_conninfo("", **{**params, "dbname": "vectors_aurora_like",
                                                          "user": "stratus_app"}))
        try:
            store = PostgresVectorStore(db, ef_search=EF_SEARCH)
            store.ensure_index(8)
            store.ensure_index(2048)
            vectors = random_vectors(np.random.default_rng(8), 3, 8)
            store.upsert(tenant, kb, 8, segments_of(document, sids, ["red apple", "green pear", "blue plum"],
                                                    vectors))
            assert ids(store.search_semantic(tenant, [kb], 8, vectors[1], 1)) == [sids[1]]
            assert ids(store.search_full_text(tenant, [kb], "pear", 5)) == [sids[1]]
            store.set_enabled(tenant, kb, [sids[1]], False)
            assert ids(store.search_full_text(tenant, [kb], "pear", 5)) == []
            seed._run("DELETE FROM segments WHERE id = %s", [(sids[0],)])  # cascades as stratus_definer
            assert ids(store.search_full_text(tenant, [kb], "apple plum", 5)) == [sids[2]]
        finally:
            db.close()
        with psycopg.connect(owner_url) as conn:
            indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'segment_index'")}
        assert {"segment_index_hnsw_8", "segment_index_hnsw_2048"} <= indexes
    finally:
        server.stop()


def test_semantic_search_leaves_the_callers_hnsw_settings(app_db: SingleConnectionDatabase, seed: Seed,
                                                          tenant: uuid.UUID) -> None:
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    store.ensure_index(8)
    kb = seed.knowledge_base(tenant, 8)
    document, (sid,) = seed.document(tenant, kb, ["x"])
    store.upsert(tenant, kb, 8, [IndexedSegment(sid, document, "x", unit([1] * 8))])
    with app_db.transaction(tenant) as conn:
        conn.execute("SET LOCAL hnsw.ef_search = 77")
        assert [r[0] for r in _call_semantic(conn, tenant, [kb], unit([1] * 8))] == [sid]
        assert conn.execute("SELECT current_setting('hnsw.ef_search'), "
                            "current_setting('hnsw.iterative_scan')").fetchone() == ("77", "off")


def test_full_text_leaves_out_english_function_words(app_db: SingleConnectionDatabase, seed: Seed,
                                                     tenant: uuid.UUID) -> None:
    """ts_rank_cd has no IDF: "the" would rank (and cost) like "stove". Dropped from queries that
    have other terms; kept when nothing else is left."""
    store = PostgresVectorStore(app_db, ef_search=EF_SEARCH)
    kb = seed.knowledge_base(tenant, 8)
    texts = ["The cabin has a wood stove.", "The invoice is late.", "Stove repairs take a week."]
    document, sids = seed.document(tenant, kb, texts)
    store.upsert(tenant, kb, 8, segments_of(document, sids, texts, random_vectors(np.random.default_rng(9), 3, 8)))
    assert set(ids(store.search_full_text(tenant, [kb], "how is the stove", 10))) == {sids[0], sids[2]}
    assert set(ids(store.search_full_text(tenant, [kb], "the", 10))) == {sids[0], sids[1]}
    assert set(ids(store.search_full_text(tenant, [kb], "it's", 10))) == set()
