"""A chatflow agent through the whole local runtime over HTTP, with an SSE client: its chatflow
(published through the API) answers ``POST /api/v1/chat`` with the answer nodes' text streamed as
``message.delta``; a conversation variable persists from one turn to the next; a dropped stream
resumes with Last-Event-ID; cancel ends the turn and its run. The model is a local server
speaking the OpenAI wire protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from httpx_sse import ServerSentEvent, connect_sse

from tests.e2e.conftest import RunningRuntime
from tests.e2e.test_chat_e2e import Client
from tests.support.fake_openai import ChatScript, FakeOpenAI

CHATFLOW = {
    "mode": "chatflow",
    "conversation_variables": [{"name": "turns", "type": "number", "default": 0}],
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "count", "type": "assigner", "config": {"items": [
            {"variable_selector": ["conversation", "turns"], "operation": "+=", "input_type": "constant",
             "value": 1}]}},
        {"id": "llm", "type": "llm", "config": {"model": {"name": "scripted"}, "prompt_template": [
            {"role": "user", "text": "{{#sys.query#}}"}]}},
        {"id": "reply", "type": "answer", "config": {"answer": "#{{#conversation.turns#}} {{#llm.text#}}"}},
    ],
    "edges": [{"source": "start", "target": "count"}, {"source": "count", "target": "llm"},
              {"source": "llm", "target": "reply"}],
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def setup(runtime: RunningRuntime, fake: FakeOpenAI) -> dict[str, Any]:
    client = Client(runtime, fake, "e2e-chatflow")
    workflow = client.post("/api/v1/workflows", {"name": "counter", "document": CHATFLOW})
    client.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
    agent = client.post("/api/v1/agents", {"name": "Counter", "config": {
        "mode": "chatflow", "chatflow": {"workflow_id": workflow["id"]}}})
    client.post(f"/api/v1/agents/{agent['id']}/publish", {})
    return {"client": client, "agent": agent, "workflow": workflow}


def said(events: list[ServerSentEvent]) -> str:
    return "".join(event.json()["text"] for event in events if event.event == "message.delta")


def test_a_chatflow_agent_streams_and_keeps_its_conversation_variable(setup: dict[str, Any],
                                                                      fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    fake.enqueue(ChatScript(text=["Hello", " there"]), ChatScript(text=["Again"]))
    first = client.events("POST", "/api/v1/chat", json={"agent_id": setup["agent"]["id"], "message": "Hi",
                                                        "user": "u-1"})
    assert [e.event for e in first][:2] == ["message.start", "workflow.started"]
    assert [e.event for e in first][-3:] == ["workflow.finished", "message.complete", "done"]
    # The run's progress comes along: its nodes' starts and ends, each of the run itself.
    run_id = first[1].json()["run_id"]
    nodes = [(e.event, e.json()["node_id"]) for e in first if e.event in ("node.started", "node.finished")]
    assert nodes[:2] == [("node.started", "start"), ("node.finished", "start")] and len(nodes) % 2 == 0
    # The answer's text as it became known, then the model's pieces as they came.
    assert said(first) == "#1 Hello there"
    assert [e.json()["text"] for e in first if e.event == "message.delta"][-2:] == ["Hello", " there"]
    conversation = first[0].json()["conversation_id"]
    second = client.events("POST", "/api/v1/chat", json={
        "agent_id": setup["agent"]["id"], "conversation_id": conversation, "message": "Hi again", "user": "u-1"})
    assert said(second) == "#2 Again" and second[-2].json()["content"] == "#2 Again"
    runs = client.http.get(f"/api/v1/workflows/{setup['workflow']['id']}/runs", headers=client.headers).json()
    assert [run["chat"]["dialogue_count"] for run in runs["data"]] == [2, 1] and runs["data"][1]["id"] == run_id


def test_resume_and_cancel(setup: dict[str, Any], fake: FakeOpenAI) -> None:
    client: Client = setup["client"]
    fake.reset()
    fake.enqueue(ChatScript(text=[f"p{n} " for n in range(30)], chunk_delay_s=0.02))
    body = {"agent_id": setup["agent"]["id"], "message": "Go", "user": "u-2"}
    first = client.events("POST", "/api/v1/chat", json=body, stop_after=5)
    message_id = first[0].json()["message_id"]
    rest = client.events("GET", f"/api/v1/chat/{message_id}/events?user=u-2",
                         headers={"Last-Event-ID": first[-1].id})
    everything = client.events("GET", f"/api/v1/chat/{message_id}/events?user=u-2")
    assert [e.id for e in first] + [e.id for e in rest] == [e.id for e in everything]
    assert said(first + rest) == "#1 " + "".join(f"p{n} " for n in range(30))

    fake.enqueue(ChatScript(text=[f"slow{n} " for n in range(300)], chunk_delay_s=0.05))
    seen: list[ServerSentEvent] = []
    with connect_sse(client.http, "POST", "/api/v1/chat", headers=client.headers,
                     json={**body, "user": "u-3"}) as source:
        for event in source.iter_sse():
            if event.event == "heartbeat":
                continue
            seen.append(event)
            if sum(e.event == "message.delta" for e in seen) == 4:
                cancelled = client.http.post(f"/api/v1/chat/{seen[0].json()['message_id']}/cancel?user=u-3",
                                             headers=client.headers)
                assert cancelled.status_code == 202, cancelled.text
    final = seen[-2].json()
    assert final["status"] == "cancelled" and final["content"] == said(seen)
    run = client.http.get(f"/api/v1/workflow-runs/{final['context']['workflow_run_id']}",
                          headers=client.headers).json()["data"]
    assert run["status"] == "cancelled" and run["chat"]["message_id"] == final["id"]
