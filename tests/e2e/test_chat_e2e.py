"""Chat through the whole local runtime over HTTP, with an SSE client: a quick-answer agent
over an ingested knowledge base answers with references; a dropped stream resumes with
Last-Event-ID without losing or repeating an event; cancel stops the answer and keeps what was
said; another tenant or end user can neither read nor chat. The model is a local server
speaking the OpenAI wire protocol, scripted per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from tests.e2e.conftest import RunningRuntime
from tests.support.fake_openai import ChatScript, FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Client:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin).json()["data"]
        self.headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
        model = self.http.post("/api/v1/models", headers=self.headers, json={
            "name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted", "base_url": fake.base_url,
            "api_key": "sk-e2e-" + "x" * 24, "test": False})
        assert model.status_code == 201, model.text

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        response = self.http.post(path, json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()["data"]

    def events(self, method: str, path: str, *, json: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None, stop_after: int | None = None) -> list[ServerSentEvent]:
        """Read an SSE response (heartbeats left out); ``stop_after``: drop the connection then."""
        seen: list[ServerSentEvent] = []
        with connect_sse(self.http, method, path, json=json, headers={**self.headers, **(headers or {})}) as source:
            assert source.response.status_code == 200, source.response.read()
            for event in source.iter_sse():
                if event.event == "heartbeat":
                    continue
                seen.append(event)
                if stop_after is not None and len(seen) == stop_after:
                    break
        return seen


def _wait_indexed(client: Client, path: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        status = client.http.get(path, headers=client.headers).json()["data"]["status"]
        if status == "indexed":
            return
        assert status != "failed" and time.monotonic() < deadline, status
        time.sleep(0.25)


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    client = Client(runtime, fake, "e2e-chat")
    kb = client.post("/api/v1/knowledge-bases", {"name": "policies"})
    for name, text in (("refunds.md", "# Refunds\n\nRefunds are paid back within five working days."),
                       ("shipping.md", "# Shipping\n\nParcels ship from Lyon every Tuesday.")):
        document = client.post(f"/api/v1/knowledge-bases/{kb['id']}/documents", {"name": name, "text": text})
        _wait_indexed(client, f"/api/v1/knowledge-bases/{kb['id']}/documents/{document['id']}")
    agent = client.post("/api/v1/agents", {"name": "Policy helper", "config": {
        "model": {"name": "scripted"}, "knowledge": {"knowledge_base_ids": [kb["id"]],
                                                     "retrieval": {"top_k": 2, "mode": "hybrid"}}}})
    client.post(f"/api/v1/agents/{agent['id']}/publish", {})
    return {"client": client, "agent": agent, "kb": kb}


def test_answer_streams_with_references(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Refunds ", "take five ", "working days [1]."], usage=(120, 9)))
    events = client.events("POST", "/api/v1/chat", json={
        "agent_id": setup["agent"]["id"], "message": "How long do refunds take?", "user": "u-1"})
    assert [e.event for e in events] == ["message.start", "retrieval.references", "message.delta", "message.delta",
                                         "message.delta", "message.complete", "done"]
    references = events[1].json()["references"]
    assert references[0]["document_name"] == "refunds.md" and references[0]["index"] == 1
    complete = events[-2].json()
    assert complete["content"] == "Refunds take five working days [1]." and complete["status"] == "completed"
    assert complete["references"][0]["document_name"] == "refunds.md"
    assert complete["usage"]["total_tokens"] == 129
    system = fake.chat_requests()[-1]["messages"][0]["content"]
    assert "[1] (refunds.md)" in system and "five working days" in system


def test_resume_with_last_event_id_loses_and_repeats_nothing(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    fake.enqueue(ChatScript(text=[f"part{n} " for n in range(40)], chunk_delay_s=0.03))
    first = client.events("POST", "/api/v1/chat", json={"agent_id": setup["agent"]["id"], "message": "Go",
                                                         "user": "u-2"}, stop_after=6)
    message_id = first[0].json()["message_id"]
    rest = client.events("GET", f"/api/v1/chat/{message_id}/events?user=u-2",
                         headers={"Last-Event-ID": first[-1].id})
    assert rest[-1].event == "done" and rest[0].id != first[-1].id
    everything = client.events("GET", f"/api/v1/chat/{message_id}/events?user=u-2")
    assert [e.id for e in first] + [e.id for e in rest] == [e.id for e in everything]
    text = "".join(e.json()["text"] for e in first + rest if e.event == "message.delta")
    assert text == "".join(f"part{n} " for n in range(40))
    # The first client left mid-answer: the answer was still written whole.
    stored = client.http.get(f"/api/v1/conversations/{first[0].json()['conversation_id']}/messages",
                             params={"user": "u-2"}, headers=client.headers).json()["data"]
    assert stored[0]["id"] == message_id and stored[0]["status"] == "completed" and stored[0]["content"] == text


def test_cancel_ends_the_answer_with_what_was_said(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    fake.enqueue(ChatScript(text=[f"slow{n} " for n in range(300)], chunk_delay_s=0.05))
    seen: list[ServerSentEvent] = []
    body = {"agent_id": setup["agent"]["id"], "message": "Talk for a long time", "user": "u-3"}
    with connect_sse(client.http, "POST", "/api/v1/chat", json=body, headers=client.headers) as source:
        for event in source.iter_sse():
            if event.event == "heartbeat":
                continue
            seen.append(event)
            if sum(e.event == "message.delta" for e in seen) == 3:
                message_id = seen[0].json()["message_id"]
                cancelled = client.http.post(f"/api/v1/chat/{message_id}/cancel?user=u-3", headers=client.headers)
                assert cancelled.status_code == 202, cancelled.text
    assert [e.event for e in seen][-2:] == ["message.complete", "done"]
    final = seen[-2].json()
    said = "".join(e.json()["text"] for e in seen if e.event == "message.delta")
    assert final["status"] == "cancelled" and final["content"] == said and 3 <= len(said.split()) < 300
    stored = client.http.get(f"/api/v1/conversations/{final['conversation_id']}/messages",
                             params={"user": "u-3"}, headers=client.headers).json()["data"]
    assert stored[0]["status"] == "cancelled" and stored[0]["content"] == said


def test_other_tenants_and_end_users_cannot_read_or_chat(setup: dict[str, Any], runtime: RunningRuntime,
                                                         fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    events = client.events("POST", "/api/v1/chat", json={"agent_id": setup["agent"]["id"], "message": "Mine",
                                                          "user": "owner"})
    start = events[0].json()
    stranger = Client(runtime, fake, "e2e-stranger")
    for response in (
        stranger.http.post("/api/v1/chat", headers=stranger.headers,
                           json={"agent_id": setup["agent"]["id"], "message": "Let me in"}),
        stranger.http.get(f"/api/v1/chat/{start['message_id']}/events?user=owner", headers=stranger.headers),
        stranger.http.get(f"/api/v1/conversations/{start['conversation_id']}?user=owner", headers=stranger.headers),
        client.http.get(f"/api/v1/chat/{start['message_id']}/events?user=intruder", headers=client.headers),
        client.http.post("/api/v1/chat", headers=client.headers, json={
            "agent_id": setup["agent"]["id"], "conversation_id": start["conversation_id"], "message": "hi",
            "user": "intruder"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"].endswith("_not_found")
