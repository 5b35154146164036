"""Coze's variables, files and datasets over Stratus, driven by the official ``cozepy`` SDK
against the local runtime (``Coze(auth=TokenAuth(token), base_url=<stratus>/coze)``;
docs/coze-api.md): every route as the SDK sends it, the answers it parses, and the errors it
raises (bad token, unknown ids, another tenant's ids → Coze's not-found), bad input changing
nothing."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import pytest
from cozepy import (
    Coze,
    CozeAPIError,
    DatasetStatus,
    DocumentBase,
    DocumentChunkStrategy,
    DocumentFormatType,
    DocumentSourceInfo,
    DocumentSourceType,
    DocumentStatus,
    TokenAuth,
    VariableValue,
)

from tests.e2e.conftest import RunningRuntime
from tests.support.e2e_tenant import ScriptedTenant
from tests.support.fake_openai import ChatScript, FakeOpenAI


class Tenant(ScriptedTenant):
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        super().__init__(runtime, fake, name, owner={"owner_email": f"owner@{name}.test"})

    def agent(self, **config: Any) -> str:
        agent = self.post("/api/v1/agents", {"name": f"memory {uuid.uuid4().hex[:6]}", "config": {
            "model": {"name": "scripted"}, "system_prompt": "Greet {{nickname}} from {{city}}.",
            "user_variables": [{"name": "nickname", "description": "What to call them", "default": "friend"},
                               {"name": "city"}], **config}})
        self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return str(agent["id"])

    def coze(self, token: str | None = None) -> Coze:
        return Coze(auth=TokenAuth(token or self.token), base_url=f"{self.runtime.url}/coze")


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    return {"tenant": Tenant(runtime, fake, "e2e-coze-kb"), "stranger": Tenant(runtime, fake, "e2e-coze-kb-other")}


def refused(call: Any) -> CozeAPIError:
    with pytest.raises(CozeAPIError) as caught:
        call()
    assert caught.value.logid
    return caught.value


# Variables ----------------------------------------------------------------------------------------
def test_variables_round_trip_and_reach_the_prompt(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    tenant: Tenant = setup["tenant"]
    bot = tenant.agent()
    coze = tenant.coze()
    before = coze.variables.retrieve(bot_id=bot, connector_uid="alice", keywords=[])
    assert [(v.keyword, v.value, v.update_time) for v in before] == [("nickname", "friend", 0), ("city", "", 0)]
    coze.variables.update(bot_id=bot, connector_uid="alice", connector_id="1024",
                          data=[VariableValue(keyword="city", value="Lyon"),
                                VariableValue(keyword="nickname", value="Ali")])
    after = coze.variables.retrieve(bot_id=bot, connector_uid="alice", keywords=["city"])
    assert [(v.keyword, v.value) for v in after] == [("city", "Lyon")]
    assert after[0].create_time > 0 and after[0].update_time >= after[0].create_time
    assert after.response.logid
    # Another end user still reads the defaults.
    assert {v.keyword: v.value for v in coze.variables.retrieve(bot_id=bot, connector_uid="bob", keywords=[])} == {
        "nickname": "friend", "city": ""}
    # The stored values are what the agent's prompt reads for that end user.
    fake.reset()
    fake.enqueue(ChatScript(text=["Hello Ali"]))
    answer = tenant.http.post("/api/v1/chat", headers=tenant.headers, json={
        "agent_id": bot, "message": "hi", "user": "alice", "stream": False})
    assert answer.status_code == 200, answer.text
    assert fake.chat_requests()[-1]["messages"][0]["content"] == "Greet Ali from Lyon."


def test_variables_errors(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    stranger: Tenant = setup["stranger"]
    bot = tenant.agent()
    coze = tenant.coze()
    coze.variables.update(bot_id=bot, connector_uid="carol", data=[VariableValue(keyword="city", value="Rome")])
    # An undeclared keyword refuses the whole update (4000): nothing changes.
    error = refused(lambda: coze.variables.update(bot_id=bot, connector_uid="carol", data=[
        VariableValue(keyword="city", value="Paris"), VariableValue(keyword="mood", value="happy")]))
    assert error.code == 4000 and "mood" in (error.msg or "")
    assert [v.value for v in coze.variables.retrieve(bot_id=bot, connector_uid="carol", keywords=["city"])] == [
        "Rome"]
    # Unknown bot, another tenant's bot, a malformed id: Coze's invalid bot (4006), 404.
    for bot_id in (str(uuid.uuid4()), "not-a-bot"):
        assert refused(lambda b=bot_id: coze.variables.retrieve(bot_id=b, connector_uid="carol",
                                                                  keywords=[])).code == 4006
    assert refused(lambda: stranger.coze().variables.retrieve(bot_id=bot, connector_uid="carol",
                                                              keywords=[])).code == 4006
    assert refused(lambda: stranger.coze().variables.update(
        bot_id=bot, connector_uid="carol", data=[VariableValue(keyword="city", value="x")])).code == 4006
    assert refused(lambda: coze.variables.retrieve(app_id="7000", connector_uid="carol", keywords=[])).code == 4000
    assert refused(lambda: tenant.coze("pat_" + "0" * 40).variables.retrieve(
        bot_id=bot, connector_uid="carol", keywords=[])).code == 4100
    assert [v.value for v in coze.variables.retrieve(bot_id=bot, connector_uid="carol", keywords=["city"])] == [
        "Rome"]


# Files --------------------------------------------------------------------------------------------
def test_files_upload_and_retrieve(setup: dict[str, Any], tmp_path: Any) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    path = tmp_path / "faq.md"
    path.write_text("# FAQ\n\nRefunds take 14 days.\n")
    uploaded = coze.files.upload(file=path)
    assert uploaded.file_name == "faq.md" and uploaded.bytes == path.stat().st_size and uploaded.created_at
    again = coze.files.retrieve(file_id=uploaded.id)
    assert (again.id, again.file_name, again.bytes, again.created_at) == (
        uploaded.id, "faq.md", uploaded.bytes, uploaded.created_at)
    # The same file through Stratus's own API.
    own = tenant.http.get(f"/api/v1/files/{uploaded.id}", headers=tenant.headers).json()["data"]
    assert own["content_type"] == "text/markdown" and own["size"] == uploaded.bytes
    # A (name, bytes) tuple, as the SDK also takes.
    pdf = coze.files.upload(file=("scan.pdf", io.BytesIO(b"%PDF-1.4 tiny")))
    assert pdf.file_name == "scan.pdf" and pdf.bytes == 13


def test_files_errors(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    stranger: Tenant = setup["stranger"]
    coze = tenant.coze()
    mine = coze.files.upload(file=("note.txt", b"hello"))
    for file_id in (str(uuid.uuid4()), "nope"):
        assert refused(lambda f=file_id: coze.files.retrieve(file_id=f)).code == 4200
    assert refused(lambda: stranger.coze().files.retrieve(file_id=mine.id)).code == 4200
    assert refused(lambda: tenant.coze("pat_" + "0" * 40).files.retrieve(file_id=mine.id)).code == 4100
    # Refused uploads (tests/integration/test_files.py shows they store nothing).
    assert refused(lambda: coze.files.upload(file=("run.exe", b"MZ\x90\x00"))).code == 4000
    assert refused(lambda: coze.files.upload(file=("empty.txt", b""))).code == 4000


# Datasets -----------------------------------------------------------------------------------------
def wait_processed(coze: Coze, dataset_id: str, document_ids: list[str]) -> list[Any]:
    deadline = time.monotonic() + 120
    while True:
        progress = list(coze.datasets.process(dataset_id=dataset_id, document_ids=document_ids))
        if all(p.status != DocumentStatus.PROCESSING for p in progress) or time.monotonic() > deadline:
            return progress
        time.sleep(0.5)


def test_datasets_crud_and_listing(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    created = coze.datasets.create(name="Handbook", space_id="0", format_type=DocumentFormatType.DOCUMENT,
                                   description="Company handbook")
    other = coze.datasets.create(name="Recipes", space_id="0", format_type=DocumentFormatType.DOCUMENT)
    listed = {d.dataset_id: d for d in coze.datasets.list(space_id="0", page_size=1)}
    assert {created.dataset_id, other.dataset_id} <= set(listed)
    handbook = listed[created.dataset_id]
    assert (handbook.name, handbook.description, handbook.status, handbook.format_type) == (
        "Handbook", "Company handbook", DatasetStatus.ENABLED, DocumentFormatType.DOCUMENT)
    assert handbook.create_time > 0 and handbook.chunk_strategy is not None
    assert [d.dataset_id for d in coze.datasets.list(space_id="0", name="recip")] == [other.dataset_id]
    assert list(coze.datasets.list(space_id="0", format_type=DocumentFormatType.IMAGE)) == []
    coze.datasets.update(dataset_id=created.dataset_id, name="Staff handbook")
    renamed = [d for d in coze.datasets.list(space_id="0", name="staff")]
    assert [(d.dataset_id, d.name, d.description) for d in renamed] == [(created.dataset_id, "Staff handbook", "")]
    coze.datasets.delete(dataset_id=other.dataset_id)
    # Deleted asynchronously: disabled until its documents are gone, then not listed.
    deadline = time.monotonic() + 60
    while (left := [d for d in coze.datasets.list(space_id="0", page_size=100) if d.dataset_id == other.dataset_id]):
        assert left[0].status == DatasetStatus.DISABLED and time.monotonic() < deadline
        time.sleep(0.5)
    assert refused(lambda: coze.datasets.update(dataset_id=other.dataset_id, name="gone")).code == 4200


def test_documents_are_indexed_listed_renamed_and_deleted(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    coze = tenant.coze()
    dataset = coze.datasets.create(name="Policies", space_id="0", format_type=DocumentFormatType.DOCUMENT)
    uploaded = coze.files.upload(file=("travel.md", b"# Travel\n\nBook trains for trips under four hours.\n"))
    documents = coze.datasets.documents.create(
        dataset_id=dataset.dataset_id,
        document_bases=[
            DocumentBase(name="refunds", source_info=DocumentSourceInfo.build_local_file(
                "Refunds are paid within 14 days of the request.", "txt")),
            DocumentBase(name="travel.md", source_info=DocumentSourceInfo.build_file_id(uploaded.id)),
        ],
        chunk_strategy=DocumentChunkStrategy.build_custom(max_tokens=200, separator="\n\n"))
    assert [(d.name, d.type, d.source_type) for d in documents] == [
        ("refunds.txt", "txt", DocumentSourceType.LOCAL_FILE), ("travel.md", "md", DocumentSourceType.UPLOAD_FILE_ID)]
    assert documents[0].status == DocumentStatus.PROCESSING
    assert documents[0].size == len(b"Refunds are paid within 14 days of the request.")
    ids = [d.document_id for d in documents]
    progress = wait_processed(coze, dataset.dataset_id, ids)
    assert [(p.document_id, p.status, p.progress) for p in progress] == [
        (ids[0], DocumentStatus.COMPLETED, 100), (ids[1], DocumentStatus.COMPLETED, 100)]
    # Indexed through Stratus's own ingestion: searchable with its retrieval.
    hits = tenant.http.post(f"/api/v1/knowledge-bases/{dataset.dataset_id}/retrieve", headers=tenant.headers,
                            json={"query": "how fast are refunds paid", "top_k": 1}).json()["data"]["items"]
    assert hits[0]["document_id"] == ids[0]
    listed = list(coze.datasets.documents.list(dataset_id=dataset.dataset_id, page_size=1))
    assert [d.document_id for d in listed] == ids
    assert all(d.status == DocumentStatus.COMPLETED and d.slice_count >= 1 for d in listed)
    coze.datasets.documents.update(document_id=ids[0], document_name="refund policy.txt")
    coze.datasets.documents.delete(document_ids=[ids[1]])
    remaining = list(coze.datasets.documents.list(dataset_id=dataset.dataset_id))
    assert [(d.document_id, d.name) for d in remaining] == [(ids[0], "refund policy.txt")]


def test_datasets_errors_change_nothing(setup: dict[str, Any]) -> None:
    tenant: Tenant = setup["tenant"]
    stranger: Tenant = setup["stranger"]
    coze = tenant.coze()
    dataset = coze.datasets.create(name="Errors", space_id="0", format_type=DocumentFormatType.DOCUMENT)
    kept = coze.datasets.documents.create(dataset_id=dataset.dataset_id, document_bases=[DocumentBase(
        name="a", source_info=DocumentSourceInfo.build_local_file("Kept text."))])[0]
    theirs = stranger.coze()
    # Unknown, malformed and another tenant's ids: Coze's not-found (4200).
    for dataset_id in (str(uuid.uuid4()), "nope"):
        assert refused(lambda d=dataset_id: coze.datasets.update(dataset_id=d, name="x")).code == 4200
        assert refused(lambda d=dataset_id: list(coze.datasets.documents.list(dataset_id=d))).code == 4200
    assert refused(lambda: theirs.datasets.update(dataset_id=dataset.dataset_id, name="stolen")).code == 4200
    assert refused(lambda: theirs.datasets.delete(dataset_id=dataset.dataset_id)).code == 4200
    assert refused(lambda: list(theirs.datasets.documents.list(dataset_id=dataset.dataset_id))).code == 4200
    assert refused(lambda: theirs.datasets.documents.delete(document_ids=[kept.document_id])).code == 4200
    assert refused(lambda: theirs.datasets.documents.update(document_id=kept.document_id,
                                                            document_name="x")).code == 4200
    # One unknown id among the ones to delete: none is deleted.
    assert refused(lambda: coze.datasets.documents.delete(document_ids=[kept.document_id,
                                                                        str(uuid.uuid4())])).code == 4200
    # What Stratus does not do is refused (4000), and nothing is stored.
    bad_bases = [
        DocumentBase(name="web", source_info=DocumentSourceInfo.build_web_page("https://example.com")),
        DocumentBase(name="x", source_info=DocumentSourceInfo(file_base64="%%%not base64", file_type="txt")),
        DocumentBase(name="x", source_info=DocumentSourceInfo.build_local_file("MZ", "exe")),
    ]
    for bad in bad_bases:
        good = DocumentBase(name="fine", source_info=DocumentSourceInfo.build_local_file("fine text"))
        error = refused(lambda b=bad, g=good: coze.datasets.documents.create(
            dataset_id=dataset.dataset_id, document_bases=[g, b]))
        assert error.code == 4000, error
    assert refused(lambda: coze.datasets.create(name="Sheets", space_id="0",
                                                format_type=DocumentFormatType.SPREADSHEET)).code == 4000
    assert refused(lambda: tenant.coze("pat_" + "0" * 40).datasets.create(
        name="x", space_id="0", format_type=DocumentFormatType.DOCUMENT)).code == 4100
    assert [d.document_id for d in coze.datasets.documents.list(dataset_id=dataset.dataset_id)] == [
        kept.document_id]
    assert [d.name for d in coze.datasets.list(space_id="0", name="Errors")] == ["Errors"]
    assert not [d for d in coze.datasets.list(space_id="0", name="Sheets")]


# Files as workflow inputs -------------------------------------------------------------------------
def test_an_uploaded_file_is_a_workflow_input(setup: dict[str, Any]) -> None:
    """A file uploaded through Coze, named by id in an object input (as Stratus, Coze's JSON
    text, and Dify's upload_file_id), reaches a document extractor as its file reference."""
    tenant: Tenant = setup["tenant"]
    stranger: Tenant = setup["stranger"]
    uploaded = tenant.coze().files.upload(file=("memo.txt", b"The office closes at six on Fridays."))
    document = {"nodes": [
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "doc", "type": "object", "required": True},
            {"variable": "more", "type": "array[object]"}]}},
        {"id": "read", "type": "document_extractor", "config": {"variable_selector": ["start", "doc"]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "text", "value_selector": ["read", "text"]},
            {"variable": "more", "value_selector": ["start", "more"]}]}},
    ], "edges": [{"source": "start", "target": "read"}, {"source": "read", "target": "end"}]}
    workflow = tenant.post("/api/v1/workflows", {"name": "read a memo", "document": document})
    tenant.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
    runs = f"/api/v1/workflows/{workflow['id']}/runs"
    for doc in ({"file_id": uploaded.id}, json.dumps({"file_id": uploaded.id})):
        response = tenant.http.post(runs, headers=tenant.headers, json={"mode": "sync", "inputs": {
            "doc": doc, "more": [{"upload_file_id": uploaded.id, "transfer_method": "local_file"}]}})
        assert response.status_code in (200, 201), response.text
        run = wait_run(tenant, response.json()["data"])
        assert run["status"] == "succeeded", run
        assert run["outputs"]["text"] == "The office closes at six on Fridays."
        assert run["outputs"]["more"][0]["filename"] == "memo.txt"
        assert run["outputs"]["more"][0]["s3_key"].endswith(f"/files/{uploaded.id}/content")
    # A file the tenant does not have is a 422 naming the input; nothing runs.
    for who, file_id in ((tenant, str(uuid.uuid4())), (stranger, uploaded.id)):
        refused_run = who.http.post(runs, headers=who.headers, json={"inputs": {"doc": {"file_id": file_id}}})
        if who is stranger:
            assert refused_run.status_code == 404, refused_run.text
            continue
        assert refused_run.status_code == 422, refused_run.text
        assert refused_run.json()["details"]["fields"][0]["field"] == "inputs.doc"
    listed = tenant.http.get(f"{runs}", headers=tenant.headers).json()["data"]
    assert len(listed) == 2


def wait_run(tenant: Tenant, run: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while run["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        run = tenant.http.get(f"/api/v1/workflow-runs/{run['id']}", headers=tenant.headers).json()["data"]
    return run
