"""Chatflow agents through the local gateway with the chat function mounted (as the local runtime
serves it), on the embedded PostgreSQL and a scripted OpenAI-compatible server: the agent's
chatflow runs for each turn in the chat function, recorded as a workflow run; its answer nodes'
text streams as ``message.delta`` in Dify's order; conversation variables persist across turns
of one conversation (and only that one); publishing checks the chatflow; cancel ends the run;
replay gives the same events."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.integration.conftest import API_KEY, bearer
from tests.integration.test_chat import assert_documented, chat_client, parse_sse  # noqa: F401 (fixture)
from tests.support.fake_openai import ChatScript, Exchange, FakeOpenAI, RecordedRequest

Sql = Callable[..., list[tuple[Any, ...]]]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dify"


class Tenant:
    def __init__(self, client: TestClient, data: dict[str, Any], fake: FakeOpenAI) -> None:
        self.client = client
        self.tenant_id = uuid.UUID(data["tenant"]["id"])
        self.headers = bearer(data["owner_token"])
        model = self.client.post("/api/v1/models", headers=self.headers, json={
            "name": "chatty", "protocol": "openai", "provider_model": "gpt-chatty", "base_url": fake.base_url,
            "api_key": API_KEY, "test": False})
        assert model.status_code == 201, model.text
        defaults = self.client.put("/api/v1/models/defaults", headers=self.headers, json={"chat_model": "chatty"})
        assert defaults.status_code == 200, defaults.text

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()["data"] if response.content else None

    def chatflow(self, document: dict[str, Any], *, publish: bool = True) -> str:
        workflow = self.call("POST", "/api/v1/workflows", 201, json={"name": f"cf {uuid.uuid4().hex[:6]}",
                                                                      "document": document})
        if publish:
            self.call("POST", f"/api/v1/workflows/{workflow['id']}/publish", 201, json={})
        return str(workflow["id"])

    def imported(self, fixture: str) -> str:
        created = self.call("POST", "/api/v1/workflows/import", 201, json={
            "format": "dify", "content": (FIXTURES / fixture).read_text()})["workflow"]
        self.call("POST", f"/api/v1/workflows/{created['id']}/publish", 201, json={})
        return str(created["id"])

    def agent(self, workflow_id: str | None) -> dict[str, Any]:
        config: dict[str, Any] = {"mode": "chatflow", "chatflow": {"workflow_id": workflow_id}}
        return dict(self.call("POST", "/api/v1/agents", 201, json={"name": f"a {uuid.uuid4().hex[:6]}",
                                                                    "config": config}))

    def chatflow_agent(self, document: dict[str, Any]) -> tuple[str, str]:
        workflow_id = self.chatflow(document)
        agent = self.agent(workflow_id)
        self.call("POST", f"/api/v1/agents/{agent['id']}/publish", 201, json={})
        return str(agent["id"]), workflow_id

    def stream(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.client.post("/api/v1/chat", json=body, headers=self.headers)
        assert response.status_code == 200, response.text
        events = parse_sse(response.text)
        assert_documented(events)
        return events


@pytest.fixture
def tenant(chat_client: TestClient, new_tenant: Callable[..., dict[str, Any]],  # noqa: F811
           fake: FakeOpenAI) -> Tenant:
    fake.reset()
    return Tenant(chat_client, new_tenant(), fake)


def deltas(events: list[dict[str, Any]]) -> list[str]:
    return [event["data"]["text"] for event in events if event["type"] == "message.delta"]


def llm_chatflow(answer: str = "Sure: {{#llm.text#}}") -> dict[str, Any]:
    return {"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "llm", "type": "llm", "config": {"prompt_template": [
            {"role": "system", "text": "Be brief."}, {"role": "user", "text": "{{#sys.query#}}"}]}},
        {"id": "answer", "type": "answer", "config": {"answer": answer}},
    ], "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "answer"}]}


def test_a_chatflow_agent_streams_its_answer_and_records_the_run(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent_id, workflow_id = tenant.chatflow_agent(llm_chatflow())
    fake.enqueue(ChatScript(text=["Par", "is", "."], usage=(20, 3)))
    events = tenant.stream({"agent_id": agent_id, "message": "Capital of France?", "user": "ann"})
    progress = {"workflow.started", "node.started", "node.finished", "workflow.finished"}
    assert [e["type"] for e in events if e["type"] not in progress] == [
        "message.start", *["message.delta"] * 4, "message.complete", "done"]
    # The run's progress comes along (Dify's advanced-chat shows it): its start, each node's start
    # and end, its end, before the answer completes.
    run_events = [(e["type"], e["data"].get("node_id")) for e in events if e["type"] in progress]
    assert run_events[0] == ("workflow.started", None) and run_events[-1] == ("workflow.finished", None)
    assert sorted(run_events[1:-1]) == sorted((kind, node) for node in ("start", "llm", "answer")
                                              for kind in ("node.started", "node.finished"))
    assert [e["type"] for e in events].index("workflow.finished") < [e["type"] for e in events].index(
        "message.complete")
    # The answer's literal text first (before the model answered), then the model's pieces as they came.
    assert deltas(events) == ["Sure: ", "Par", "is", "."]
    complete = events[-2]["data"]
    assert complete["status"] == "completed" and complete["content"] == "Sure: Paris."
    assert complete["usage"]["total_tokens"] == 23
    assert fake.chat_requests()[-1]["messages"] == [{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "Capital of France?"}]
    # Recorded as a run of the chatflow, with its chat context.
    runs = tenant.call("GET", f"/api/v1/workflows/{workflow_id}/runs", 200)
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    run = tenant.call("GET", f"/api/v1/workflow-runs/{runs[0]['id']}", 200)
    assert run["chat"] == {"conversation_id": events[0]["data"]["conversation_id"],
                           "message_id": events[0]["data"]["message_id"], "query": "Capital of France?",
                           "dialogue_count": 1}
    assert run["outputs"] == {"answer": "Sure: Paris."} and run["tokens"] == 23
    assert [(n["node_id"], n["status"]) for n in run["nodes"]] == [
        ("start", "succeeded"), ("llm", "succeeded"), ("answer", "succeeded")]
    assert complete["context"]["workflow_run_id"] == run["id"]
    # The stored answer reads like any other turn's.
    stored = tenant.call("GET", f"/api/v1/conversations/{run['chat']['conversation_id']}/messages", 200,
                         params={"user": "ann", "order": "asc"})
    assert [(m["role"], m["content"]) for m in stored] == [("user", "Capital of France?"),
                                                           ("assistant", "Sure: Paris.")]
    # Replay from the start gives the same events, ids included.
    replay = tenant.client.get(f"/api/v1/chat/{complete['id']}/events", params={"user": "ann"},
                               headers=tenant.headers)
    assert replay.status_code == 200, replay.text
    assert [(e["type"], e["id"]) for e in parse_sse(replay.text)] == [(e["type"], e["id"]) for e in events]


def test_conversation_variables_persist_across_turns_of_one_conversation(tenant: Tenant, fake: FakeOpenAI,
                                                                         admin_sql: Sql) -> None:
    document = {"mode": "chatflow",
                "conversation_variables": [{"name": "count", "type": "number", "default": 0},
                                           {"name": "said", "type": "array[string]"}],
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "keep", "type": "assigner", "config": {"items": [
                        {"variable_selector": ["conversation", "count"], "operation": "+=", "input_type": "constant",
                         "value": 1},
                        {"variable_selector": ["conversation", "said"], "operation": "append",
                         "input_type": "variable", "value": ["sys", "query"]}]}},
                    {"id": "answer", "type": "answer", "config": {
                        "answer": "turn {{#conversation.count#}} (dialogue {{#sys.dialogue_count#}}): "
                                  "{{#conversation.said#}}"}}],
                "edges": [{"source": "start", "target": "keep"}, {"source": "keep", "target": "answer"}]}
    agent_id, _ = tenant.chatflow_agent(document)
    first = tenant.stream({"agent_id": agent_id, "message": "one", "user": "bo"})
    conversation = first[0]["data"]["conversation_id"]
    assert "".join(deltas(first)) == "turn 1 (dialogue 1): - one"
    second = tenant.stream({"agent_id": agent_id, "conversation_id": conversation, "message": "two", "user": "bo"})
    assert "".join(deltas(second)) == "turn 2 (dialogue 2): - one\n- two"
    # Another conversation starts from the defaults.
    other = tenant.stream({"agent_id": agent_id, "message": "three", "user": "bo"})
    assert "".join(deltas(other)) == "turn 1 (dialogue 1): - three"
    kept = admin_sql("SELECT name, value_type, value FROM conversation_variables WHERE conversation_id = %s "
                     "ORDER BY name", (uuid.UUID(conversation),))
    assert kept == [("count", "number", 2), ("said", "array[string]", ["one", "two"])]
    assert fake.chat_requests() == []


def test_answers_stream_in_graph_order_after_their_branch(tenant: Tenant, fake: FakeOpenAI) -> None:
    """Dify's test-answer-order fixture (two chained answers after an LLM) and complex branch
    fixture (an if/else and an LLM in parallel from the start, each feeding an answer)."""
    ordered = tenant.imported("test-answer-order.yml")
    agent = tenant.agent(ordered)
    tenant.call("POST", f"/api/v1/agents/{agent['id']}/publish", 201, json={})
    fake.enqueue(ChatScript(text=["mocked ", "llm text"]))
    events = tenant.stream({"agent_id": agent["id"], "message": "hi"})
    # The first answer's text needs nothing: it streams before the model answered.
    assert deltas(events) == ["--- answer 1 ---\n\nfoo\n--- answer 2 ---\n\n", "mocked ", "llm text", "\n"]

    branching = tenant.imported("test_complex_branch.yml")
    agent = tenant.agent(branching)
    tenant.call("POST", f"/api/v1/agents/{agent['id']}/publish", 201, json={})
    fake.enqueue(ChatScript(text=["Hi ", "all"]))
    hello = tenant.stream({"agent_id": agent["id"], "message": "hello world"})
    assert "".join(deltas(hello)) == "contains 'hello'Hi all"
    fake.enqueue(ChatScript(text=["Bye"]))
    goodbye = tenant.stream({"agent_id": agent["id"], "message": "goodbye"})
    assert "".join(deltas(goodbye)) == "Bye"


class RoutedFake(FakeOpenAI):
    """Answers by system prompt, so parallel model calls get their own script whatever their order."""

    def __init__(self, scripts: dict[str, ChatScript]) -> None:
        super().__init__()
        self.scripts = scripts
        # Each call's (arrived, answered) on the server's clock.
        self.spans: list[tuple[float, float]] = []

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        arrived = time.monotonic()
        body = request.body if isinstance(request.body, dict) else {}
        system = next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")
        self._chat(exchange, body, self.scripts[system])
        with self._lock:
            self.spans.append((arrived, time.monotonic()))


def test_parallel_models_stream_in_the_answers_order(chat_client: TestClient,  # noqa: F811
                                                     new_tenant: Callable[..., dict[str, Any]]) -> None:
    """Dify's multilingual fixture: two LLMs run at once; the answer is {{LLM2}}{{LLM1}}, so LLM2's
    pieces stream as they come and LLM1's (the slower to be needed) follow in one piece or more."""
    scripts = {"Always speak English.": ChatScript(text=["Hello", ", I am", " an AI."], chunk_delay_s=0.05),
               "Always speak Chinese.": ChatScript(text=["你好", "\uff0c我是", "AI。"], chunk_delay_s=0.01)}
    with RoutedFake(scripts) as routed:
        tenant = Tenant(chat_client, new_tenant(), routed)
        content = (FIXTURES / "multilingual_parallel_llm_streaming_workflow.yml").read_text()
        created = tenant.call("POST", "/api/v1/workflows/import", 201,
                              json={"format": "dify", "content": content})["workflow"]
        tenant.call("POST", f"/api/v1/workflows/{created['id']}/publish", 201, json={})
        agent = tenant.agent(created["id"])
        tenant.call("POST", f"/api/v1/agents/{agent['id']}/publish", 201, json={})
        events = tenant.stream({"agent_id": agent["id"], "message": "Tell me about yourself"})
        spans = list(routed.spans)
    assert "".join(deltas(events)) == "你好\uff0c我是AI。Hello, I am an AI."
    assert deltas(events)[:3] == ["你好", "\uff0c我是", "AI。"]
    # Run at once, not one after the other: the second call arrived before the first was answered.
    assert len(spans) == 2 and max(start for start, _ in spans) < min(end for _, end in spans)


def test_cancel_stops_the_chatflow_run(tenant: Tenant, fake: FakeOpenAI) -> None:
    agent_id, workflow_id = tenant.chatflow_agent(llm_chatflow("{{#llm.text#}}"))
    fake.enqueue(ChatScript(text=[f"w{n} " for n in range(300)], chunk_delay_s=0.02))
    response: list[Any] = []
    worker = threading.Thread(target=lambda: response.append(tenant.client.post(
        "/api/v1/chat", json={"agent_id": agent_id, "message": "talk", "user": "cy", "stream": False},
        headers=tenant.headers)))
    worker.start()
    deadline = time.monotonic() + 10
    while not fake.chat_requests():  # the model is answering
        assert time.monotonic() < deadline, "the chatflow never called the model"
        time.sleep(0.02)
    time.sleep(0.2)  # a few words in
    [summary] = tenant.call("GET", f"/api/v1/workflows/{workflow_id}/runs", 200)
    run = tenant.call("GET", f"/api/v1/workflow-runs/{summary['id']}", 200)
    assert run["status"] == "running"
    message_id = run["chat"]["message_id"]
    cancelled = tenant.client.post(f"/api/v1/chat/{message_id}/cancel", params={"user": "cy"},
                                   headers=tenant.headers)
    assert cancelled.status_code == 202, cancelled.text
    worker.join(20)
    answer = response[0].json()["data"]
    assert answer["status"] == "cancelled" and 0 < len(answer["content"].split()) < 300
    final = tenant.call("GET", f"/api/v1/workflow-runs/{run['id']}", 200)
    assert final["status"] == "cancelled" and final["error"]["code"] == "workflow_run_cancelled"
    assert {n["node_id"]: n["status"] for n in final["nodes"]}.get("llm") in (None, "cancelled")


def test_publishing_a_chatflow_agent_checks_its_chatflow(tenant: Tenant, new_tenant: Callable[..., dict[str, Any]],
                                                         chat_client: TestClient, fake: FakeOpenAI) -> None:  # noqa: F811
    def problem(workflow_id: str | None) -> dict[str, Any]:
        agent = tenant.agent(workflow_id)
        response = tenant.client.post(f"/api/v1/agents/{agent['id']}/publish", json={}, headers=tenant.headers)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "agent_config_invalid"
        [found] = body["details"]["fields"]
        assert found["field"] == "config.chatflow.workflow_id"
        return dict(found)

    assert problem(None)["type"] == "missing"
    assert problem(str(uuid.uuid4()))["type"] == "workflow_not_found"
    stranger = Tenant(chat_client, new_tenant(), fake)
    assert problem(stranger.chatflow(llm_chatflow()))["type"] == "workflow_not_found"
    assert problem(tenant.chatflow(llm_chatflow(), publish=False))["type"] == "workflow_not_published"
    workflow = {"nodes": [{"id": "start", "type": "start"},
                          {"id": "end", "type": "end", "config": {"outputs": []}}],
                "edges": [{"source": "start", "target": "end"}]}
    assert problem(tenant.chatflow(workflow))["type"] == "workflow_not_chatflow"


def test_a_failing_node_fails_the_turn_with_its_error(tenant: Tenant, fake: FakeOpenAI) -> None:
    from tests.support.fake_openai import RawReply

    agent_id, _ = tenant.chatflow_agent(llm_chatflow())
    fake.enqueue(RawReply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}}))
    events = tenant.stream({"agent_id": agent_id, "message": "hi"})
    assert [e["type"] for e in events][-2:] == ["error", "done"]
    error = events[-2]["data"]
    assert error["details"]["node_id"] == "llm" and "Node llm (llm) failed" in error["message"]
    run = tenant.call("GET", f"/api/v1/workflow-runs/{error['details']['workflow_run_id']}", 200)
    assert run["status"] == "failed" and run["error"]["node_id"] == "llm"
