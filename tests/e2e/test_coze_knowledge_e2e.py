"""Coze's variables, files and datasets over Stratus, driven by the official ``cozepy`` SDK
against the local runtime (``Coze(auth=TokenAuth(token), base_url=<stratus>/coze)``;
docs/coze-api.md): every route as the SDK sends it, the answers it parses, and the errors it
raises (bad token, unknown ids, another tenant's ids → Coze's not-found), bad input changing
nothing."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth, VariableValue

from tests.e2e.conftest import RunningRuntime
from tests.support.fake_openai import ChatScript, FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Tenant:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.runtime = runtime
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name, "owner_email": f"owner@{name}.test"},
                                headers=admin).json()["data"]
        self.token = tenant["owner_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.post("/api/v1/models", {"name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted",
                                     "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False})

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        response = self.http.post(path, json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()["data"]

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
