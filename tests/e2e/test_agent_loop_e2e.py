"""Smart-reasoning agents through the whole local runtime over HTTP (started with
``STRATUS_EGRESS_ALLOW=127.0.0.1``, as the tools e2e does), with an SSE client. The model is a
local server speaking the OpenAI wire protocol, scripted per test, whose tool calls arrive as
streamed fragments: the agent calls an OpenAPI tool served by a local HTTP server and uses its
result; the same through an MCP server run by the test (the ``mcp`` SDK's server); a failing
tool is reported back and the agent still answers; max iterations stop a model that loops; a
model without function calling reasons with ReAct; a published workflow is a tool; another
tenant cannot use the tools."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript
from tests.support.http_target import HttpTarget
from tests.support.mcp_server import McpTestServer
from tests.support.workflow_api import template_document


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    running = start_runtime(tmp_path_factory.mktemp("e2e-agents") / "state", STRATUS_EGRESS_ALLOW="127.0.0.1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


class Client:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin).json()["data"]
        self.http.headers["Authorization"] = f"Bearer {tenant['owner_token']}"
        for model, capabilities in (("caller", ["chat", "function_calling"]), ("plain", ["chat"])):
            self.post("/api/v1/models", {"name": model, "protocol": "openai", "provider_model": f"gpt-{model}",
                                         "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False,
                                         "capabilities": capabilities})

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        response = self.http.post(path, json=body)
        assert response.status_code == expect, response.text
        return response.json()["data"] if expect < 300 else response.json()

    def agent(self, config: dict[str, Any], model: str = "caller") -> dict[str, Any]:
        agent = self.post("/api/v1/agents", {"name": f"agent {uuid.uuid4().hex[:8]}", "config": {
            "mode": "smart-reasoning", "model": {"name": model}, **config}})
        self.post(f"/api/v1/agents/{agent['id']}/publish", {})
        return agent  # type: ignore[no-any-return]

    def chat(self, agent: dict[str, Any], message: str) -> list[tuple[str, dict[str, Any]]]:
        seen = []
        with connect_sse(self.http, "POST", "/api/v1/chat", json={"agent_id": agent["id"], "message": message}) as s:
            assert s.response.status_code == 200, s.response.read()
            for event in s.iter_sse():
                if event.event != "heartbeat":
                    seen.append((event.event, event.json()))
        return seen


@pytest.fixture(scope="module")
def client(runtime: RunningRuntime, fake: FakeOpenAI) -> Client:
    return Client(runtime, fake, "e2e-agents")


def _types(seen: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kind for kind, _ in seen]


def _of(seen: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [data for k, data in seen if k == kind]


def test_an_openapi_tool_is_called_and_its_result_used(client: Client, fake: FakeOpenAI) -> None:
    with HttpTarget() as target:
        document = {"openapi": "3.0.3", "info": {"title": "Weather", "version": "1"},
                    "servers": [{"url": target.url("")}],
                    "paths": {"/echo": {"get": {"operationId": "forecast", "summary": "The forecast of a city",
                                                "parameters": [{"name": "city", "in": "query", "required": True,
                                                                "schema": {"type": "string"}}]}}}}
        provider = client.post("/api/v1/tools", {"name": "Weather", "kind": "openapi", "schema": document})
        agent = client.agent({"tools": [{"tool_id": provider["id"], "operations": ["forecast"]}],
                              "system_prompt": "You forecast."})
        fake.reset()
        fake.enqueue(ChatScript(text=["Let me check."], tool_calls=[
                         ToolCallScript("forecast", ['{"ci', 'ty": "Br', 'est"}'])]),
                     ChatScript(text=["Brest ", "is covered."]))
        seen = client.chat(agent, "Weather in Brest?")
        # A short answer is held while it might still be a thought: one delta.
        assert _types(seen) == ["message.start", "agent.thought", "tool.call", "tool.result", "message.delta",
                                "message.complete", "done"], seen
        call, result = _of(seen, "tool.call")[0], _of(seen, "tool.result")[0]
        assert call["arguments"] == {"city": "Brest"} and call["ref"] == f"{provider['id']}/forecast"
        assert result["status"] == "ok" and json.loads(result["output"])["query"] == [["city", "Brest"]]
        assert target.paths() == ["/echo"]
        # The model got the tool's answer as the tool message answering its call.
        tool_message = fake.chat_requests()[-1]["messages"][-1]
        assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == call["id"]
        assert '"city"' in tool_message["content"] and "Brest" in tool_message["content"]
        complete = _of(seen, "message.complete")[0]
        assert complete["content"] == "Brest is covered." and complete["steps"][0]["thought"] == "Let me check."
        # The messages API returns the steps with the answer.
        messages = client.http.get(f"/api/v1/conversations/{complete['conversation_id']}/messages").json()["data"]
        assert next(m for m in messages if m["id"] == complete["id"])["steps"] == complete["steps"]


def test_an_mcp_tool_is_called_and_a_failing_one_is_reported_back(client: Client, fake: FakeOpenAI) -> None:
    with McpTestServer(token="agent-mcp") as server:
        provider = client.post("/api/v1/tools", {"name": f"Math {uuid.uuid4().hex[:6]}", "kind": "mcp",
                                                 "url": server.url, "auth": {"type": "bearer", "token": "agent-mcp"}})
        agent = client.agent({"tools": [{"tool_id": provider["id"]}]})
        fake.reset()
        # Two calls in one step (run at once), then the answer.
        fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("shout", ['{"text": "ahoy"}']),
                                                     ToolCallScript("fail", ["{}"])]),
                     ChatScript(text=["AHOY, though one tool failed."]))
        seen = client.chat(agent, "Shout ahoy")
        results = {r["name"]: r for r in _of(seen, "tool.result")}
        assert results["shout"]["status"] == "ok" and results["shout"]["output"] == "AHOY"
        assert results["fail"]["status"] == "error" and "always fails" in results["fail"]["output"]
        assert sorted(name for name, _ in server.calls) == ["fail", "shout"]
        tool_messages = [m for m in fake.chat_requests()[-1]["messages"] if m["role"] == "tool"]
        assert tool_messages[0]["content"] == "AHOY"
        assert tool_messages[1]["content"].startswith("[error")
        complete = _of(seen, "message.complete")[0]
        assert complete["status"] == "completed" and complete["content"] == "AHOY, though one tool failed."


def test_max_iterations_stop_a_model_that_loops(client: Client, fake: FakeOpenAI) -> None:
    agent = client.agent({"tools": ["current_time"], "max_iterations": 2})
    fake.reset()
    fake.enqueue(*(ChatScript(text=[], tool_calls=[ToolCallScript("current_time", ["{}"])]) for _ in range(2)),
                 ChatScript(text=["Enough: it is now."]))
    seen = client.chat(agent, "Keep checking the time")
    assert len(_of(seen, "tool.call")) == 2
    requests = fake.chat_requests()
    assert len(requests) == 3 and requests[-1]["tool_choice"] == "none"
    complete = _of(seen, "message.complete")[0]
    assert complete["stop_reason"] == "max_iterations" and complete["content"] == "Enough: it is now."


def test_react_with_a_model_without_function_calling(client: Client, fake: FakeOpenAI) -> None:
    agent = client.agent({"tools": ["current_time"]}, model="plain")
    fake.reset()
    fake.enqueue(ChatScript(text=["Thought: I need the time.\n", "Action: current_time\nAction Input: ",
                                  '{"timezone": "Asia/Tokyo"}']),
                 ChatScript(text=["Thought: got it\n", "Final Answer: It is ", "evening in Tokyo."]))
    seen = client.chat(agent, "Time in Tokyo?")
    assert _types(seen) == ["message.start", "agent.thought", "tool.call", "tool.result", "message.delta",
                            "message.delta", "message.complete", "done"], seen
    assert _of(seen, "agent.thought")[0]["text"] == "I need the time."
    assert _of(seen, "tool.result")[0]["status"] == "ok" and "Asia/Tokyo" in _of(seen, "tool.result")[0]["output"]
    first, second = fake.chat_requests()
    assert "tools" not in first and "Action Input:" in first["messages"][0]["content"]
    assert second["messages"][-1]["content"].startswith("Observation: ") and "Asia/Tokyo" in \
        second["messages"][-1]["content"]
    assert _of(seen, "message.complete")[0]["content"] == "It is evening in Tokyo."


def test_a_published_workflow_is_a_tool(client: Client, fake: FakeOpenAI) -> None:
    workflow = client.post("/api/v1/workflows", {"name": f"greeter_{uuid.uuid4().hex[:6]}",
                                                 "document": template_document("Hello {{ name }}!")})
    client.post(f"/api/v1/workflows/{workflow['id']}/publish", {})
    agent = client.agent({"tools": [f"workflow/{workflow['id']}"]})
    fake.reset()
    offered_name = workflow["name"]
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript(offered_name, ['{"name": "Ada"}'])]),
                 ChatScript(text=["The workflow says hello."]))
    seen = client.chat(agent, "Greet Ada")
    offered = [t["function"]["name"] for t in fake.chat_requests()[0]["tools"]]
    assert offered == [offered_name]
    result = _of(seen, "tool.result")[0]
    assert result["status"] == "ok" and json.loads(result["output"]) == {"greeting": "Hello Ada!"}, result
    assert _of(seen, "tool.call")[0]["ref"] == f"workflow/{workflow['id']}"


def test_another_tenant_cannot_use_the_tools(runtime: RunningRuntime, client: Client, fake: FakeOpenAI) -> None:
    with McpTestServer() as server:
        provider = client.post("/api/v1/tools", {"name": f"Private {uuid.uuid4().hex[:6]}", "kind": "mcp",
                                                 "url": server.url})
        other = Client(runtime, fake, "e2e-agents-other")
        draft = other.post("/api/v1/agents", {"name": "thief", "config": {
            "mode": "smart-reasoning", "model": {"name": "caller"}, "tools": [{"tool_id": provider["id"]}]}})
        refused = other.post(f"/api/v1/agents/{draft['id']}/publish", {}, expect=422)
        assert refused["details"]["fields"][0] == {
            "field": "config.tools[0].tool_id", "type": "tool_provider_not_found",
            "message": f"Tool provider {provider['id']} does not exist in this tenant (or lists no tools: an MCP "
                       "server that cannot be reached)"}
        # A draft chat naming it: the tool is not offered, and a call the model makes up is not made.
        fake.reset()
        fake.enqueue(ChatScript(text=["No tools here."], tool_calls=[ToolCallScript("shout", ['{"text": "x"}'])]))
        seen = []
        with connect_sse(other.http, "POST", "/api/v1/chat",
                         json={"agent_id": draft["id"], "message": "shout", "draft": True}) as source:
            assert source.response.status_code == 200
            seen = [(e.event, e.json()) for e in source.iter_sse() if e.event != "heartbeat"]
        assert "tools" not in fake.chat_requests()[0] and len(fake.chat_requests()) == 1
        assert _of(seen, "tool.call") == [] and _of(seen, "message.complete")[0]["content"] == "No tools here."
        assert server.calls == [] and server.requests == 0
