"""Knowledge bases through the API and the ingestion path: real PostgreSQL (pgvector), moto's
S3, SQS and Step Functions, the local embedding model. Ingestion is driven with the same SQS
event shape Lambda delivers (``events/sqs_s3_object_created.json``)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from infra.local.aws import LocalAws
from infra.local.invoker import LocalInvoker
from shared.aws.clients import client as aws_client
from shared.aws.clients import reset_clients
from shared.config import get_settings, reset_settings
from shared.knowledge.vectorstore.factory import set_vector_store
from shared.knowledge.wiring import reset_knowledge_services
from tests.support.api import ApiClient
from tests.support.documents import make_docx, make_pdf
from tests.support.events import load_event

Sql = Callable[..., list[tuple[Any, ...]]]

PARAGRAPHS = [
    "Lambda functions scale automatically with the number of requests they receive.",
    "Aurora PostgreSQL stores relational data and pgvector adds vector similarity search.",
    "The quarterly revenue grew by twelve percent thanks to strong sales in Europe.",
    "Photosynthesis converts light energy into chemical energy inside plant cells.",
    "知识库将文档切分成片段并计算向量以便检索。",
]


@pytest.fixture(scope="module")
def invoker() -> LocalInvoker:
    return LocalInvoker()


@pytest.fixture(scope="module")
def local_aws(app_env: None, tmp_path_factory: pytest.TempPathFactory, invoker: LocalInvoker) -> Iterator[LocalAws]:
    saved_env = dict(os.environ)
    aws = LocalAws(tmp_path_factory.mktemp("kb-state"), invoker)
    aws.start()
    reset_knowledge_services()
    set_vector_store(None)
    try:
        yield aws
    finally:
        aws.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_settings()
        reset_clients()
        reset_knowledge_services()
        set_vector_store(None)


@pytest.fixture
def api(client: TestClient, local_aws: LocalAws, new_tenant: Callable[..., dict[str, Any]]) -> Api:
    return Api(client, new_tenant()["owner_token"])


class Api(ApiClient):
    def kb(self, name: str = "handbook", **fields: Any) -> dict[str, Any]:
        body = {"name": name, **fields}
        data: dict[str, Any] = self.call("POST", "/api/v1/knowledge-bases", body, 201).json()["data"]
        return data

    def text_document(self, kb_id: str, text: str, name: str = "notes.txt", **fields: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.call("POST", f"/api/v1/knowledge-bases/{kb_id}/documents",
                                         {"name": name, "text": text, **fields}, 201).json()["data"]
        return data

    def document(self, kb_id: str, document_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/api/v1/knowledge-bases/{kb_id}/documents/{document_id}",
                                         expect=200).json()["data"]
        return data


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    template = load_event("sqs_s3_object_created")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"m-{n}-{uuid.uuid4()}"
        record["body"] = json.dumps(body)
        records.append(record)
    return {"Records": records}


def s3_body(key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(load_event("sqs_s3_object_created")["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = key
    return body


def key_of(tenant_sql: Sql, document_id: str) -> str:
    return str(tenant_sql("SELECT s3_key FROM documents WHERE id = %s", (document_id,))[0][0])


def deliver(invoker: LocalInvoker, admin_sql: Sql, document_id: str) -> dict[str, Any]:
    """The S3 ObjectCreated notification for the document's object, as SQS hands it to Lambda."""
    result: dict[str, Any] = invoker.invoke("documents-ingest", sqs_event(s3_body(key_of(admin_sql, document_id))))
    return result


def drain_queue(invoker: LocalInvoker) -> int:
    """Hand every message waiting on the ingest queue to the indexing function (as the
    event source mapping would); returns how many were handled."""
    sqs = aws_client("sqs")
    url = get_settings().ingest_queue_url
    handled = 0
    while True:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0,
                                       VisibilityTimeout=30).get("Messages", [])
        if not received:
            return handled
        for message in received:
            result = invoker.invoke("documents-ingest", sqs_event(json.loads(message["Body"])))
            assert result == {"batchItemFailures": []}, result
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += 1


def wait_status(api: Api, kb_id: str, document_id: str, statuses: tuple[str, ...] = ("indexed", "failed"),
                timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        document = api.document(kb_id, document_id)
        if document["status"] in statuses:
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.2)


def indexed_text_document(api: Api, invoker: LocalInvoker, admin_sql: Sql, kb_id: str, text: str,
                          **fields: Any) -> dict[str, Any]:
    document = api.text_document(kb_id, text, **fields)
    assert document["status"] in ("uploaded", "parsing", "chunking", "embedding", "indexed", "failed")
    deliver(invoker, admin_sql, document["id"])
    return wait_status(api, kb_id, document["id"])


# Knowledge bases ------------------------------------------------------------------------------
def test_knowledge_base_crud_and_validation(api: Api) -> None:
    kb = api.kb(description="Company handbook")
    assert kb["embedding_model"] == "all-minilm-l6-v2" and kb["dimensions"] == 384
    # The default chunking fits the model's 256-token input limit.
    assert kb["chunking"]["chunk_size"] <= 256 and kb["status"] == "active"
    assert kb["document_count"] == 0
    api.call("POST", "/api/v1/knowledge-bases", {"name": "HANDBOOK"}, 409)
    too_big = api.call("POST", "/api/v1/knowledge-bases",
                       {"name": "big", "chunking": {"chunk_size": 1000, "chunk_overlap": 10}}, 422).json()
    assert too_big["code"] == "knowledge_invalid_chunking"
    assert too_big["details"]["fields"][0]["field"] == "body.chunking.chunk_size"
    assert api.call("POST", "/api/v1/knowledge-bases", {"name": "x", "embedding_model": "gpt-4o-mini"},
                    422).json()["details"]["fields"][0]["field"] == "body.embedding_model"
    api.call("POST", "/api/v1/knowledge-bases", {"name": "x", "unknown": 1}, 422)
    listed = api.call("GET", "/api/v1/knowledge-bases", expect=200).json()
    assert [item["name"] for item in listed["data"]] == ["handbook"]
    assert listed["pagination"]["total"] == 1

    path = f"/api/v1/knowledge-bases/{kb['id']}"
    updated = api.call("PATCH", path, {"description": "v2", "retrieval": {"mode": "semantic", "top_k": 3},
                                       "version": kb["version"]}, 200).json()["data"]
    assert updated["description"] == "v2" and updated["retrieval"]["top_k"] == 3
    assert api.call("PATCH", path, {"description": "stale", "version": kb["version"]}, 409).json()["code"] == \
        "knowledge_base_version_conflict"
    assert api.call("GET", path, expect=200).json()["data"]["description"] == "v2"
    api.call("GET", "/api/v1/knowledge-bases/not-a-uuid", expect=404)


def test_other_tenants_knowledge_bases_answer_404(api: Api, client: TestClient,
                                                  new_tenant: Callable[..., dict[str, Any]]) -> None:
    kb = api.kb()
    other = Api(client, new_tenant()["owner_token"])
    path = f"/api/v1/knowledge-bases/{kb['id']}"
    assert other.call("GET", path, expect=404).json()["code"] == "knowledge_base_not_found"
    other.call("PATCH", path, {"description": "x", "version": 1}, 404)
    other.call("DELETE", path, expect=404)
    other.call("POST", f"{path}/documents", {"name": "a.txt", "text": "hello"}, 404)
    other.call("POST", f"{path}/retrieve", {"query": "hello"}, 404)
    other.call("POST", "/api/v1/retrieve", {"query": "hello", "knowledge_base_ids": [kb["id"]]}, 404)
    assert other.call("GET", "/api/v1/knowledge-bases", expect=200).json()["data"] == []


# Ingestion ------------------------------------------------------------------------------------
def test_text_document_is_indexed_idempotently(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    text = "\n\n".join(PARAGRAPHS * 3)
    document = api.text_document(kb["id"], text, metadata={"team": "platform"}, tags=["faq"])
    assert document["upload"] is None and document["source"] == "text"
    first = deliver(invoker, admin_sql, document["id"])
    assert first == {"batchItemFailures": []}
    indexed = wait_status(api, kb["id"], document["id"])
    assert indexed["status"] == "indexed", indexed["error"]
    assert indexed["progress"]["percent"] == 100.0
    total = indexed["progress"]["segments_total"]
    assert total >= 1 and indexed["progress"]["segments_done"] == total
    assert indexed["tokens"] > 0 and indexed["content_hash"]
    assert {"parsing_ms", "chunking_ms", "embedding_ms", "total_ms"} <= set(indexed["timings"])
    # A redelivered or duplicated event changes nothing.
    assert deliver(invoker, admin_sql, document["id"]) == {"batchItemFailures": []}
    rows = admin_sql("SELECT count(*), count(DISTINCT position) FROM segments WHERE document_id = %s",
                     (document["id"],))
    assert rows[0][0] == rows[0][1] == total
    assert admin_sql("SELECT count(*) FROM segment_index WHERE document_id = %s", (document["id"],))[0][0] == total
    assert api.document(kb["id"], document["id"])["attempt"] == 1


def test_identical_content_is_refused_by_hash(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    first = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[0], name="a.txt")
    assert first["status"] == "indexed"
    second = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[0], name="b.txt")
    assert second["status"] == "failed"
    assert second["error"]["code"] == "document_duplicate"
    assert "a.txt" in second["error"]["message"]
    assert admin_sql("SELECT count(*) FROM segments WHERE document_id = %s", (second["id"],))[0][0] == 0


def test_failures_are_recorded_with_a_reason(api: Api, invoker: LocalInvoker, admin_sql: Sql,
                                            tmp_path: Path) -> None:
    kb = api.kb()
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n  \t ")
    created = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                       {"name": "blank.txt", "content_type": "text/plain", "size": blank.stat().st_size},
                       201).json()["data"]
    assert _upload(created["upload"], blank, "text/plain").status_code in (200, 204)
    deliver(invoker, admin_sql, created["id"])
    empty = wait_status(api, kb["id"], created["id"])
    assert empty["status"] == "failed" and empty["error"]["code"] == "document_empty"
    assert "no text" in empty["error"]["message"]
    unsupported = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                           {"name": "x.exe", "content_type": "application/x-msdownload", "size": 10}, 422).json()
    assert unsupported["code"] == "document_unsupported_type"
    too_large = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                         {"name": "x.pdf", "content_type": "application/pdf", "size": 10**12}, 422).json()
    assert too_large["code"] == "document_too_large"
    api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents", {"name": "x.txt"}, 422)
    assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 1


def _upload(form: dict[str, Any], path: Path, content_type: str) -> httpx.Response:
    with path.open("rb") as handle:
        return httpx.post(form["url"], data=form["fields"], files={"file": (path.name, handle, content_type)},
                          timeout=30)


@pytest.mark.parametrize(("name", "content_type"), [
    ("report.pdf", "application/pdf"),
    ("guide.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
])
def test_presigned_upload_is_parsed_and_indexed(api: Api, invoker: LocalInvoker, admin_sql: Sql, tmp_path: Path,
                                               name: str, content_type: str) -> None:
    kb = api.kb()
    path = tmp_path / name
    if name.endswith(".pdf"):
        make_pdf(path, pages=3)
    else:
        make_docx(path, PARAGRAPHS)
    created = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                       {"name": name, "content_type": content_type, "size": path.stat().st_size}, 201).json()["data"]
    form = created["upload"]
    assert form["fields"]["Content-Type"] == content_type
    # The policy holds the declared type: another one is refused by S3 (the local runtime checks it).
    wrong = dict(form, fields={**form["fields"], "Content-Type": "text/plain"})
    assert _upload(wrong, path, "text/plain").status_code == 403
    assert _upload(form, path, content_type).status_code in (200, 204)
    deliver(invoker, admin_sql, created["id"])
    document = wait_status(api, kb["id"], created["id"])
    assert document["status"] == "indexed", document["error"]
    if name.endswith(".pdf"):
        assert document["pages"] == 3
    segments = api.call("GET", f"/api/v1/knowledge-bases/{kb['id']}/documents/{created['id']}/segments",
                        expect=200).json()
    assert segments["pagination"]["total"] == document["progress"]["segments_total"]


def test_progress_moves_while_a_batch_embeds(api: Api, invoker: LocalInvoker, admin_sql: Sql,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One embedding batch of ~100 segments (the local model embeds 32 at a time): the
    document's progress is written after each provider batch, not only at the end."""
    from shared.knowledge import repository

    seen: list[tuple[str, int, int]] = []
    refresh = repository.refresh_progress

    def spy(conn: Any, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Any:
        row = refresh(conn, tenant_id, document_id)
        status = conn.execute("SELECT status FROM documents WHERE id = %s", (document_id,)).fetchone()[0]
        if row is not None:
            seen.append((status, int(row["segments_done"]), int(row["segments_total"])))
        return row

    monkeypatch.setattr(repository, "refresh_progress", spy)
    kb = api.kb(chunking={"strategy": "fixed", "chunk_size": 16, "chunk_overlap": 0})
    document = indexed_text_document(api, invoker, admin_sql, kb["id"], " ".join(PARAGRAPHS * 20))
    assert document["status"] == "indexed", document["error"]
    total = document["progress"]["segments_total"]
    assert 64 < total <= 128  # one embedding batch (range), several provider batches
    during = sorted({done for status, done, _ in seen if status == "embedding" and 0 < done < total})
    assert len(during) >= 2, seen


def test_large_document_fans_out_through_the_state_machine(api: Api, invoker: LocalInvoker, admin_sql: Sql,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_INLINE_SEGMENTS", "4")
    monkeypatch.setenv("INGEST_BATCH_SEGMENTS", "3")
    reset_settings()
    reset_knowledge_services()
    try:
        kb = api.kb(chunking={"strategy": "fixed", "chunk_size": 32, "chunk_overlap": 4})
        text = " ".join(PARAGRAPHS[:4] * 4)
        document = api.text_document(kb["id"], text)
        deliver(invoker, admin_sql, document["id"])
        indexed = wait_status(api, kb["id"], document["id"], timeout_s=120)
        assert indexed["status"] == "indexed", indexed["error"]
        assert indexed["progress"]["segments_total"] > 4
        executions = aws_client("stepfunctions").list_executions(
            stateMachineArn=get_settings().ingest_state_machine_arn)["executions"]
        assert any(e["name"].startswith(document["id"]) and e["status"] == "SUCCEEDED" for e in executions)
    finally:
        monkeypatch.undo()
        reset_settings()
        reset_knowledge_services()


# Segments -------------------------------------------------------------------------------------
def test_segments_edit_disable_and_add(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb(retrieval={"mode": "semantic", "top_k": 5})
    document = indexed_text_document(api, invoker, admin_sql, kb["id"], "\n\n".join(PARAGRAPHS[:4]),
                                     chunking={"strategy": "recursive", "chunk_size": 24, "chunk_overlap": 0})
    base = f"/api/v1/knowledge-bases/{kb['id']}/documents/{document['id']}/segments"
    segments = api.call("GET", base, expect=200, limit=100).json()["data"]
    assert [s["position"] for s in segments] == sorted(s["position"] for s in segments)
    retrieve = f"/api/v1/knowledge-bases/{kb['id']}/retrieve"

    def top(query: str) -> dict[str, Any]:
        items = api.call("POST", retrieve, {"query": query}, 200).json()["data"]["items"]
        return items[0] if items else {}

    photo = next(s for s in segments if "Photosynthesis" in s["text"])
    assert top("how do plants turn light into energy")["segment_id"] == photo["id"]
    # Disabled: never returned; enabled again: back.
    disabled = api.call("PATCH", f"{base}/{photo['id']}", {"enabled": False, "version": photo["version"]},
                        200).json()["data"]
    assert top("how do plants turn light into energy").get("segment_id") != photo["id"]
    api.call("PATCH", f"{base}/{photo['id']}", {"enabled": True, "version": photo["version"]}, 409)
    api.call("PATCH", f"{base}/{photo['id']}", {"enabled": True, "version": disabled["version"]}, 200)
    assert top("how do plants turn light into energy")["segment_id"] == photo["id"]
    # New text is re-embedded.
    revenue = next(s for s in segments if "revenue" in s["text"])
    edited = api.call("PATCH", f"{base}/{revenue['id']}",
                      {"text": "Volcanoes erupt molten rock called lava.", "version": revenue["version"]},
                      200).json()["data"]
    assert edited["text"].startswith("Volcanoes") and edited["version"] == revenue["version"] + 1
    assert top("volcanic eruption lava")["segment_id"] == revenue["id"]
    added = api.call("POST", base, {"text": "Penguins live in the southern hemisphere."}, 201).json()["data"]
    assert added["source"] == "manual" and added["index_status"] == "indexed"
    assert added["position"] == max(s["position"] for s in segments) + 1
    penguins = api.call("POST", retrieve, {"query": "where do penguins live"}, 200).json()["data"]["items"]
    assert penguins[0]["segment_id"] == added["id"], [(p["text"], p["score"]) for p in penguins]
    assert api.document(kb["id"], document["id"])["progress"]["segments_total"] == len(segments) + 1
    api.call("POST", base, {"text": "x" * 20_001}, 422)
    api.call("PATCH", f"{base}/{uuid.uuid4()}", {"enabled": False, "version": 1}, 404)


# Retrieval ------------------------------------------------------------------------------------
def test_retrieval_modes_filters_and_scores(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    finance = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[2], name="finance.txt",
                                    metadata={"dept": "finance", "year": 2026}, tags=["report", "public"])
    science = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[3], name="science.txt",
                                    metadata={"dept": "research"}, tags=["public"])
    chinese = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[4], name="zh.txt")
    path = f"/api/v1/knowledge-bases/{kb['id']}/retrieve"

    def search(**body: Any) -> dict[str, Any]:
        data: dict[str, Any] = api.call("POST", path, body, 200).json()["data"]
        return data

    semantic = search(query="how much did sales grow", mode="semantic")
    assert semantic["items"][0]["document_id"] == finance["id"]
    assert semantic["items"][0]["score_type"] == "cosine" and -1 <= semantic["items"][0]["score"] <= 1
    assert semantic["items"][0]["document_name"] == "finance.txt"
    full_text = search(query="photosynthesis plant", mode="full_text")
    assert [i["document_id"] for i in full_text["items"]] == [science["id"]]
    # Both of the query's terms occur in the segment.
    assert full_text["items"][0]["score_type"] == "keyword" and full_text["items"][0]["score"] == 1.0
    cjk = search(query="文档检索", mode="full_text")
    assert [i["document_id"] for i in cjk["items"]] == [chinese["id"]]
    hybrid = search(query="revenue growth in Europe", mode="hybrid", top_k=3)
    assert hybrid["items"][0]["document_id"] == finance["id"]
    top = hybrid["items"][0]
    assert top["score_type"] == "hybrid" and 0 < top["score"] <= 1 and set(top["scores"]) == {"cosine", "keyword"}
    # Filters: metadata (a list means any of), tags (all of), documents.
    assert [i["document_id"] for i in search(query="energy", mode="semantic",
                                             filters={"metadata": {"dept": "research"}})["items"]] == [science["id"]]
    assert [i["document_id"] for i in search(query="energy", mode="semantic",
                                             filters={"tags": ["report", "public"]})["items"]] == [finance["id"]]
    both = search(query="energy", mode="semantic", filters={"metadata": {"dept": ["research", "finance"]}})
    assert {i["document_id"] for i in both["items"]} == {finance["id"], science["id"]}
    # A threshold above every score returns nothing; the KB's defaults apply when the body is silent.
    assert search(query="sales", mode="semantic", score_threshold=0.99)["items"] == []
    assert search(query="sales")["mode"] == "hybrid"
    api.call("POST", path, {"query": ""}, 422)
    api.call("POST", path, {"query": "x", "top_k": 0}, 422)
    assert api.call("POST", path, {"query": "x", "rerank": {}}, 400).json()["code"] == "model_not_configured"


RELEVANT_QUERIES = ["how do plants turn light into energy", "revenue growth in Europe",
                    "vector similarity search in PostgreSQL"]
IRRELEVANT_QUERIES = ["best chocolate cake recipe for a birthday party", "how to fix a flat bicycle tyre"]


def test_hybrid_scores_mean_the_same_for_every_query(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    """A query about nothing in the knowledge base scores low, whatever its best hit; one about
    something in it scores high (issue 11: every query's best hit used to score 1.0)."""
    kb = api.kb(retrieval={"mode": "hybrid", "top_k": 4})
    indexed_text_document(api, invoker, admin_sql, kb["id"], "\n\n".join(PARAGRAPHS[:4]),
                          chunking={"strategy": "recursive", "chunk_size": 24, "chunk_overlap": 0})
    path = f"/api/v1/knowledge-bases/{kb['id']}/retrieve"

    def items(query: str, **body: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.call("POST", path, {"query": query, **body}, 200).json()["data"]["items"]
        return found

    results = {query: items(query) for query in RELEVANT_QUERIES + IRRELEVANT_QUERIES}
    for query, found in results.items():
        assert len(found) == 4, query  # the four paragraphs are candidates of every query
        for item in found:
            parts = item["scores"]
            assert item["score_type"] == "hybrid" and set(parts) == {"cosine", "keyword"}
            assert 0 <= item["score"] <= 1 and 0 <= parts["keyword"] <= 1
            assert item["score"] == pytest.approx(0.5 * min(1.0, max(0.0, parts["cosine"])) + 0.5 * parts["keyword"])
        # Ordered by the score reported.
        assert [i["score"] for i in found] == sorted((i["score"] for i in found), reverse=True), query
    best = {query: found[0]["score"] for query, found in results.items()}
    assert results[RELEVANT_QUERIES[0]][0]["text"].startswith("Photosynthesis")
    assert results[RELEVANT_QUERIES[1]][0]["text"].startswith("The quarterly revenue")
    assert results[RELEVANT_QUERIES[2]][0]["text"].startswith("Aurora PostgreSQL")
    assert min(best[q] for q in RELEVANT_QUERIES) > 0.5, best
    assert max(best[q] for q in IRRELEVANT_QUERIES) < 0.1, best
    # The keyword part counts the query's words, English function words aside: "light" and
    # "energy" of "plants", "turn", "light", "energy" (no stemming: "plants" is not "plant").
    assert results[RELEVANT_QUERIES[0]][0]["scores"]["keyword"] == 0.5
    assert results[RELEVANT_QUERIES[2]][0]["scores"]["keyword"] == 1.0

    # One bar for every query: it keeps the relevant answers' best hits and nothing else, and
    # keeps exactly the head of the unfiltered list.
    for query, found in results.items():
        kept = items(query, score_threshold=0.4)
        assert kept == [i for i in found if i["score"] >= 0.4]
        assert len(kept) == (1 if query in RELEVANT_QUERIES else 0), (query, found)
    # The weight moves the score between its parts: all keyword, all cosine.
    top = results[RELEVANT_QUERIES[1]][0]
    assert items(RELEVANT_QUERIES[1], semantic_weight=0.0)[0]["score"] == pytest.approx(top["scores"]["keyword"])
    assert items(RELEVANT_QUERIES[1], semantic_weight=1.0)[0]["score"] == pytest.approx(top["scores"]["cosine"])
    # Full-text mode reports the keyword part alone, on the same absolute scale.
    keyword = items(RELEVANT_QUERIES[1], mode="full_text")
    assert [(i["score_type"], i["score"], i["scores"]) for i in keyword] == [
        ("keyword", top["scores"]["keyword"], {"keyword": top["scores"]["keyword"]})]
    assert items(IRRELEVANT_QUERIES[0], mode="full_text") == []


def test_a_segment_only_the_keyword_search_found_gets_its_cosine(api: Api, invoker: LocalInvoker,
                                                                  admin_sql: Sql) -> None:
    """25 segments: 24 about quokkas (the plural: no keyword match, yet semantically closest to
    "quokka") and one recipe naming a "quokka" timer, which the keyword search finds and the
    semantic search, drawing 20 candidates, does not. Its hybrid score has both parts."""
    places = ["Rottnest Island", "Bald Island", "the Perth coast", "Western Australia", "the Margaret River",
              "Albany", "the Stirling Range", "Pemberton", "Walpole", "Denmark WA", "Two Peoples Bay", "Augusta",
              "Esperance", "Mandurah", "Fremantle", "Busselton", "Dwellingup", "Jarrahdale", "Kalamunda",
              "Northcliffe", "Nannup", "Manjimup", "Bunbury", "Collie"]
    recipe = "Chop the onions finely and simmer the tomato sauce; the quokka timer rings when it is done."
    kb = api.kb(retrieval={"mode": "hybrid", "top_k": 5})
    indexed_text_document(api, invoker, admin_sql, kb["id"],
                          "\n\n".join([f"Quokkas are small smiling marsupials that live near {p}." for p in places]
                                       + [recipe]),
                          chunking={"strategy": "recursive", "chunk_size": 24, "chunk_overlap": 0})
    path = f"/api/v1/knowledge-bases/{kb['id']}/retrieve"

    def items(**body: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.call("POST", path, {"query": "quokka", **body}, 200).json()["data"]["items"]
        return found

    semantic = items(mode="semantic", top_k=25)
    assert len(semantic) == 25
    cosine = {i["segment_id"]: i["score"] for i in semantic}
    [recipe_id] = [i["segment_id"] for i in semantic if i["text"] == recipe]
    assert [i["segment_id"] for i in semantic].index(recipe_id) >= 20  # not among the 20 candidates drawn
    hybrid = items(top_k=5)
    first = hybrid[0]
    assert first["segment_id"] == recipe_id
    assert first["scores"] == {"cosine": pytest.approx(cosine[recipe_id], abs=1e-6), "keyword": 1.0}
    assert first["score"] == pytest.approx(0.5 * cosine[recipe_id] + 0.5)
    assert [i["score"] for i in hybrid] == sorted((i["score"] for i in hybrid), reverse=True)
    assert all(set(i["scores"]) == {"cosine", "keyword"} and i["scores"]["keyword"] == 0 for i in hybrid[1:])


def test_stop_words_are_postgresqls(admin_sql: Sql) -> None:
    """The keyword score leaves out the words the full-text search leaves out: PostgreSQL's
    english.stop, which its english_stem dictionary reduces to nothing."""
    from shared.knowledge.text import STOP_WORDS

    [(share,)] = admin_sql("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
    [(listed,)] = admin_sql("SELECT pg_read_file(%s)", (f"{share}/tsearch_data/english.stop",))
    assert set(listed.split()) == STOP_WORDS
    assert admin_sql("SELECT w FROM unnest(%s::text[]) AS w WHERE ts_lexize('english_stem', w) <> '{}'",
                     (sorted(STOP_WORDS),)) == []


def test_multi_knowledge_base_retrieval_stays_in_the_named_bases(api: Api, invoker: LocalInvoker,
                                                                 admin_sql: Sql) -> None:
    first, second, third = api.kb("one"), api.kb("two"), api.kb("three")
    a = indexed_text_document(api, invoker, admin_sql, first["id"], PARAGRAPHS[0])
    b = indexed_text_document(api, invoker, admin_sql, second["id"], PARAGRAPHS[1])
    indexed_text_document(api, invoker, admin_sql, third["id"], PARAGRAPHS[3])
    result = api.call("POST", "/api/v1/retrieve", {"query": "serverless scaling and databases", "mode": "semantic",
                                                   "knowledge_base_ids": [first["id"], second["id"]]},
                      200).json()["data"]
    assert {i["document_id"] for i in result["items"]} == {a["id"], b["id"]}
    # An agent's search leaves out knowledge bases gone or going since it was published; the API does not.
    from shared.knowledge.contract import RetrievalQuery
    from shared.knowledge.errors import KnowledgeBaseNotFound
    from shared.knowledge.wiring import retrieval_service
    from shared.tenancy.service import tenancy_service

    tenant_id = tenancy_service().resolve_token(api.headers["Authorization"].removeprefix("Bearer ")).tenant
    admin_sql("UPDATE knowledge_bases SET status = 'deleting' WHERE id = %s", (second["id"],))
    ids = [uuid.UUID(first["id"]), uuid.UUID(second["id"]), uuid.uuid4()]

    def query(kb_ids: list[uuid.UUID], skip_unavailable: bool) -> RetrievalQuery:
        return RetrievalQuery(knowledge_base_ids=kb_ids, text="serverless scaling and databases", mode="semantic",
                              skip_unavailable=skip_unavailable)

    kept = retrieval_service().retrieve(tenant_id, query(ids, True))
    assert {str(i.document_id) for i in kept.passages} == {a["id"]}
    none_left = retrieval_service().retrieve(tenant_id, query(ids[1:], True))
    assert none_left.passages == [] and none_left.mode == "semantic"
    with pytest.raises(KnowledgeBaseNotFound):
        retrieval_service().retrieve(tenant_id, query(ids, False))


# Lifecycle ------------------------------------------------------------------------------------
def test_reindex_with_new_chunking_and_delete(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    document = indexed_text_document(api, invoker, admin_sql, kb["id"], " ".join(PARAGRAPHS[:4]))
    path = f"/api/v1/knowledge-bases/{kb['id']}/documents/{document['id']}"
    before = document["progress"]["segments_total"]
    reindexed = api.call("POST", f"{path}/reindex", {"chunking": {"strategy": "fixed", "chunk_size": 16,
                                                                  "chunk_overlap": 2}}, 202).json()["data"]
    assert reindexed["status"] == "uploaded" and reindexed["attempt"] == 2
    api.call("POST", f"{path}/reindex", {}, 409)  # in progress
    assert drain_queue(invoker) >= 1  # the re-index request (and S3 events already handled)
    after = wait_status(api, kb["id"], document["id"])
    assert after["status"] == "indexed" and after["progress"]["segments_total"] > before
    assert after["chunking"]["chunk_size"] == 16
    updated = api.call("PATCH", path, {"tags": ["archived"], "metadata": {"v": 2}, "version": after["version"]},
                       200).json()["data"]
    assert updated["tags"] == ["archived"]
    items = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/retrieve",
                     {"query": "Lambda", "mode": "semantic", "filters": {"tags": ["archived"]}},
                     200).json()["data"]["items"]
    assert items and all(i["document_id"] == document["id"] for i in items)
    api.call("DELETE", path, expect=204)
    api.call("GET", path, expect=404)
    assert admin_sql("SELECT count(*) FROM segment_index WHERE document_id = %s", (document["id"],))[0][0] == 0
    assert admin_sql("SELECT count(*) FROM segments WHERE document_id = %s", (document["id"],))[0][0] == 0


def test_knowledge_base_deletion_is_asynchronous_and_complete(api: Api, invoker: LocalInvoker,
                                                              admin_sql: Sql) -> None:
    kb = api.kb()
    document = indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[1])
    key = key_of(admin_sql, document["id"])
    deleting = api.call("DELETE", f"/api/v1/knowledge-bases/{kb['id']}", expect=202).json()["data"]
    assert deleting["status"] == "deleting"
    deadline = time.monotonic() + 60
    while api.call("GET", f"/api/v1/knowledge-bases/{kb['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert admin_sql("SELECT count(*) FROM segment_index WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 0
    assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 0
    listed = aws_client("s3").list_objects_v2(Bucket=get_settings().uploads_bucket, Prefix=key)
    assert listed.get("KeyCount", 0) == 0
    api.kb(kb["name"])  # the name is free again


def test_sweeper_retries_then_fails_stuck_documents(api: Api, invoker: LocalInvoker, admin_sql: Sql,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kb = api.kb()
    document = api.text_document(kb["id"], PARAGRAPHS[0])
    # The object landed but its event was lost: the document waits in "uploaded"... forever.
    admin_sql("UPDATE documents SET status = 'uploaded', attempt = 1, status_changed_at = now() - interval '2 hours' "
              "WHERE id = %s", (document["id"],))
    assert invoker.invoke("documents-sweep", load_event("eventbridge_schedule"))["retried"] >= 1
    assert drain_queue(invoker) >= 1
    assert wait_status(api, kb["id"], document["id"])["status"] == "indexed"
    stuck = api.text_document(kb["id"], PARAGRAPHS[3])
    admin_sql("UPDATE documents SET status = 'embedding', attempt = 1, retries = 5, error = 'provider timed out', "
              "status_changed_at = now() - interval '2 hours' WHERE id = %s", (stuck["id"],))
    invoker.invoke("documents-sweep", load_event("eventbridge_schedule"))
    failed = api.document(kb["id"], stuck["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "document_stalled"
    assert "provider timed out" in failed["error"]["message"]


def test_preview_chunks(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    path = f"/api/v1/knowledge-bases/{kb['id']}/documents/preview-chunks"
    text = "\n\n".join(PARAGRAPHS * 8)
    preview = api.call("POST", path, {"text": text, "limit": 3, "chunking": {"strategy": "parent_child",
                                                                            "chunk_size": 20, "chunk_overlap": 0,
                                                                            "parent_size": 60}}, 200).json()["data"]
    # The limit counts parents, each shown with its children.
    assert [s["kind"] for s in preview["segments"]].count("parent") == 3 and preview["truncated"] is True
    assert preview["segments"][0]["kind"] == "parent" and preview["segments"][1]["parent_position"] == 0
    assert all(s["tokens"] <= (60 if s["kind"] == "parent" else 20) for s in preview["segments"])
    api.call("POST", path, {"limit": 3}, 422)
    plain = api.call("POST", path, {"text": text, "limit": 2}, 200).json()["data"]
    assert len(plain["segments"]) <= 2 and plain["boilerplate_lines"] == 0
    assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 0


def test_boilerplate_is_left_out_and_the_preview_says_so(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    nav = "Next: Retrieval settings  Previous: Chunking"
    toc = "Contents\nIntroduction .......... 1\nChunking .......... 4\nRetrieval settings .......... 9"
    text = "\n\n".join([toc, nav, PARAGRAPHS[0], nav, PARAGRAPHS[1], nav])
    preview = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents/preview-chunks",
                       {"text": text}, 200).json()["data"]
    assert preview["boilerplate_lines"] == 6
    joined = " ".join(s["text"] for s in preview["segments"])
    assert "Next:" not in joined and "......" not in joined and PARAGRAPHS[0][:40] in joined
    document = indexed_text_document(api, invoker, admin_sql, kb["id"], text)
    assert document["status"] == "indexed", document["error"]
    stored = admin_sql("SELECT text FROM segments WHERE document_id = %s", (document["id"],))
    assert stored and not any("Next:" in t or "......" in t for (t,) in stored)


def test_parent_child_retrieval_returns_top_k_distinct_parents(api: Api, invoker: LocalInvoker,
                                                               admin_sql: Sql) -> None:
    kb = api.kb(chunking={"strategy": "parent_child", "chunk_size": 16, "chunk_overlap": 0, "parent_size": 80})
    indexed_text_document(api, invoker, admin_sql, kb["id"], "\n\n".join(PARAGRAPHS[:4] * 2))
    items = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/retrieve",
                     {"query": "energy and data", "mode": "semantic", "top_k": 2}, 200).json()["data"]["items"]
    assert len(items) == 2
    assert len({i["content"] for i in items}) == 2
    # A child matched; its parent (longer, containing it) is what a model gets.
    assert all(i["text"] in i["content"] and len(i["content"]) > len(i["text"]) for i in items)


def test_inline_text_over_the_size_limit_changes_nothing(api: Api, admin_sql: Sql,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    kb = api.kb()
    monkeypatch.setenv("MAX_DOCUMENT_BYTES", "2048")
    reset_settings()
    reset_knowledge_services()
    try:
        answer = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                          {"name": "big.txt", "text": "word " * 1000}, 422).json()
        assert answer["code"] == "document_too_large"
        assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 0
    finally:
        monkeypatch.undo()
        reset_settings()
        reset_knowledge_services()


def test_sweeper_settles_uploads_never_made(api: Api, invoker: LocalInvoker, admin_sql: Sql) -> None:
    kb = api.kb()
    base = f"/api/v1/knowledge-bases/{kb['id']}/documents"
    never = api.call("POST", base, {"name": "never.txt", "content_type": "text/plain", "size": 10}, 201).json()["data"]
    lost = api.call("POST", base, {"name": "lost.txt", "content_type": "text/plain", "size": 40}, 201).json()["data"]
    assert api.data("GET", f"/api/v1/knowledge-bases/{kb['id']}")["document_count"] == 0
    # The second file did land, but its event never arrived.
    aws_client("s3").put_object(Bucket=get_settings().uploads_bucket, Key=key_of(admin_sql, lost["id"]),
                                Body=PARAGRAPHS[3].encode())
    drain_queue(invoker)
    admin_sql("UPDATE documents SET status = 'pending_upload', status_changed_at = now() - interval '3 days' "
              "WHERE id = ANY(%s)", ([never["id"], lost["id"]],))
    result = invoker.invoke("documents-sweep", load_event("eventbridge_schedule"))
    assert result["failed"] >= 1 and result["retried"] >= 1
    # Settled: one found uploaded, one failed (listed, with its error): both count now.
    assert api.data("GET", f"/api/v1/knowledge-bases/{kb['id']}")["document_count"] == 2
    expired = api.document(kb["id"], never["id"])
    assert expired["status"] == "failed" and expired["error"]["code"] == "document_upload_expired"
    drain_queue(invoker)
    assert wait_status(api, kb["id"], lost["id"])["status"] == "indexed"


def test_sweeper_restarts_a_stopped_knowledge_base_deletion(api: Api, invoker: LocalInvoker,
                                                            admin_sql: Sql) -> None:
    kb = api.kb()
    indexed_text_document(api, invoker, admin_sql, kb["id"], PARAGRAPHS[2])
    # As if its execution had failed long ago: deleting, and nothing running.
    admin_sql("UPDATE knowledge_bases SET status = 'deleting', updated_at = now() - interval '2 hours' "
              "WHERE id = %s", (kb["id"],))
    result = invoker.invoke("documents-sweep", load_event("eventbridge_schedule"))
    assert result["deletions_restarted"] >= 1
    deadline = time.monotonic() + 60
    while api.call("GET", f"/api/v1/knowledge-bases/{kb['id']}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 0


def test_binary_content_under_a_text_type_is_refused(api: Api, invoker: LocalInvoker, admin_sql: Sql,
                                                     tmp_path: Path) -> None:
    kb = api.kb()
    # PNG bytes declared as text/plain: the document fails with a clear code, nothing is indexed.
    png = tmp_path / "photo.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    created = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                       {"name": "photo.txt", "content_type": "text/plain", "size": png.stat().st_size},
                       201).json()["data"]
    assert _upload(created["upload"], png, "text/plain").status_code in (200, 204)
    deliver(invoker, admin_sql, created["id"])
    failed = wait_status(api, kb["id"], created["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "document_binary_content"
    assert admin_sql("SELECT count(*) FROM segments WHERE document_id = %s", (created["id"],))[0][0] == 0
    # Inline text made of control characters and undecodable bytes: refused before anything is stored.
    garbage = "".join(chr(c) for c in range(1, 32)) * 20 + "\ufffd" * 100 + "some words"
    refused = api.call("POST", f"/api/v1/knowledge-bases/{kb['id']}/documents",
                       {"name": "garbage.txt", "text": garbage}, 422).json()
    assert refused["details"]["fields"][0]["field"] == "body" and "binary" in refused["details"]["fields"][0]["message"]
    # Text with the odd control character and tab is text.
    api.text_document(kb["id"], "Columns\tare\ttabs.\x07 A bell rang once.\n" * 20, name="tabs.txt")
    assert admin_sql("SELECT count(*) FROM documents WHERE knowledge_base_id = %s", (kb["id"],))[0][0] == 2
