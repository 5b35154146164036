"""Tool and agent nodes through the whole local runtime over HTTP (moto's Step Functions running
the interpreter, real PostgreSQL and Redis, the tools runtime and the chat's generation): a
workflow calls an OpenAPI tool of the tenant's, served by a local HTTP server, hands its answer to
an agent (a local OpenAI-protocol model) and answers both; a failing tool takes the node's failure
branch; publishing refuses another tenant's tool and an agent that does not exist
(docs/workflows.md §13)."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningRuntime
from tests.support.fake_openai import ChatScript, FakeOpenAI


class WeatherServer:
    """``GET /forecast?city=`` answers JSON; ``GET /broken`` answers 503."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                server.seen.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/forecast":
                    city = urllib.parse.parse_qs(url.query).get("city", [""])[0]
                    status, body = 200, json.dumps({"city": city, "summary": f"sunny in {city}", "high": 24})
                else:
                    status, body = 503, json.dumps({"error": "down for maintenance"})
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> WeatherServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


WEATHER_API = {
    "openapi": "3.0.3", "info": {"title": "Weather", "version": "1"},
    "paths": {
        "/forecast": {"get": {"operationId": "forecast", "summary": "The forecast of a city", "parameters": [
            {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the forecast"}}}},
        "/broken": {"get": {"operationId": "broken", "responses": {"200": {"description": "never"}}}},
    },
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def weather() -> Iterator[WeatherServer]:
    with WeatherServer() as server:
        yield server


class Tenant:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str) -> None:
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name}, headers=admin).json()["data"]
        self.headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
        self.call("POST", "/api/v1/models", 201, json={
            "name": "scripted", "protocol": "openai", "provider_model": "gpt-scripted", "base_url": fake.base_url,
            "api_key": "sk-e2e-" + "x" * 24, "test": False})
        self.call("PUT", "/api/v1/models/defaults", 200, json={"chat_model": "scripted"})

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()["data"] if response.content else None

    def workflow(self, name: str, nodes: list[dict[str, Any]]) -> str:
        ids = [node["id"] for node in nodes]
        edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
        created = self.call("POST", "/api/v1/workflows", 201,
                            json={"name": name, "document": {"nodes": nodes, "edges": edges}})
        return str(created["id"])


@pytest.fixture(scope="module")
def owner(runtime: RunningRuntime, fake: FakeOpenAI) -> Tenant:
    return Tenant(runtime, fake, "e2e-tool-nodes")


@pytest.fixture(scope="module")
def provider(owner: Tenant, weather: WeatherServer) -> str:
    created = owner.call("POST", "/api/v1/tools", 201, json={
        "name": "weather", "kind": "openapi", "schema": WEATHER_API, "base_url": weather.origin})
    return str(created["id"])


START = {"id": "start", "type": "start", "config": {"variables": [
    {"variable": "city", "type": "string", "required": True}]}}


def test_a_tool_node_calls_an_openapi_tool_and_an_agent_node_answers_with_its_result(
        owner: Tenant, provider: str, weather: WeatherServer, fake: FakeOpenAI) -> None:
    fake.reset()
    fake.enqueue(ChatScript(text=["Pack ", "sunglasses."], usage=(30, 4)))
    workflow_id = owner.workflow("weather brief", [
        START,
        {"id": "weather", "type": "tool", "config": {
            "tool": f"{provider}/forecast", "arguments": {"city": {"type": "selector", "value": ["start", "city"]}},
            "outputs": [{"variable": "summary", "type": "string"}]}},
        {"id": "advisor", "type": "agent", "config": {
            "agent_id": "builtin-quick-answer", "prompt": "What should I pack? {{#weather.summary#}}"}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "summary", "value_selector": ["weather", "summary"]},
            {"variable": "high", "value_selector": ["weather", "json", "high"]},
            {"variable": "advice", "value_selector": ["advisor", "text"]},
            {"variable": "tokens", "value_selector": ["advisor", "tokens"]}]}},
    ])
    owner.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
    run = owner.call("POST", f"/api/v1/workflows/{workflow_id}/runs", 200,
                     json={"inputs": {"city": "Lyon"}, "mode": "sync"})
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"summary": "sunny in Lyon", "high": 24, "advice": "Pack sunglasses.", "tokens": 34}
    assert "/forecast?city=Lyon" in weather.seen
    # The agent got the tool's answer in its prompt.
    [request] = fake.chat_requests()
    assert "What should I pack? sunny in Lyon" in json.dumps(request["messages"])
    nodes = {node["node_id"]: node for node in run["nodes"]}
    assert nodes["weather"]["inputs"] == {"tool": f"{provider}/forecast", "arguments": {"city": "Lyon"}}
    assert nodes["weather"]["outputs"]["status"] == "ok"
    assert nodes["advisor"]["tokens"] == 34 and run["tokens"] == 34


def test_a_failing_tool_takes_the_failure_branch_with_its_error(owner: Tenant, provider: str) -> None:
    workflow_id = owner.workflow("broken tool", [
        {"id": "start", "type": "start", "config": {"variables": []}},
        {"id": "call", "type": "tool", "error_strategy": "default_value",
         "default_value": {"text": "no forecast"}, "config": {"tool": f"{provider}/broken"}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "text", "value_selector": ["call", "text"]},
            {"variable": "why", "value_selector": ["call", "error_type"]}]}},
    ])
    owner.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
    run = owner.call("POST", f"/api/v1/workflows/{workflow_id}/runs", 200, json={"inputs": {}, "mode": "sync"})
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"text": "no forecast", "why": "tool_http_error"}
    [node] = [node for node in run["nodes"] if node["node_id"] == "call"]
    assert node["error"]["code"] == "tool_http_error" and "HTTP 503" in node["error"]["message"]
    assert node["error"]["details"]["status"] == "error" and node["error"]["details"]["status_code"] == 503


def test_publishing_refuses_another_tenants_tool_missing_arguments_and_unknown_agents(
        runtime: RunningRuntime, fake: FakeOpenAI, provider: str) -> None:
    stranger = Tenant(runtime, fake, "e2e-tool-stranger")
    workflow_id = stranger.workflow("borrowed tool", [
        START,
        {"id": "weather", "type": "tool", "config": {
            "tool": f"{provider}/forecast", "arguments": {"city": {"type": "selector", "value": ["start", "city"]}}}},
        {"id": "clock", "type": "tool", "config": {"tool": "builtin/current_time", "arguments": {
            "timezone": {"type": "constant", "value": 5}}}},
        {"id": "fetch", "type": "tool", "config": {"tool": "builtin/web_fetch"}},
        {"id": "advisor", "type": "agent", "config": {"agent_id": "0b6f7a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
                                                      "prompt": "{{#weather.text#}}"}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "advice", "value_selector": ["advisor", "text"]}]}},
    ])
    response = stranger.http.post(f"/api/v1/workflows/{workflow_id}/publish", headers=stranger.headers, json={})
    assert response.status_code == 422, response.text
    problems = {(p["node_id"], p["field"], p["code"]) for p in response.json()["details"]["problems"]}
    assert problems == {("weather", "config.tool", "tool_not_found"),
                        ("clock", "config.arguments.timezone.value", "invalid_argument"),
                        ("fetch", "config.arguments", "missing_argument"),
                        ("advisor", "config.agent_id", "agent_not_found")}
    # Nothing was published.
    assert stranger.call("GET", f"/api/v1/workflows/{workflow_id}", 200)["published_version"] is None


def test_a_workflow_calling_itself_through_a_workflow_tool_is_refused_without_a_second_run(owner: Tenant) -> None:
    # The tool node's call carries the run's call path ([W]); W is on it, so no run of W starts
    # again (A → B → A is refused the same way, B's run recording [A] as its path).
    quiet = [{"id": "start", "type": "start", "config": {"variables": []}},
             {"id": "end", "type": "end", "config": {"outputs": []}}]
    workflow_id = owner.workflow("loop on itself", quiet)
    owner.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
    draft = owner.call("GET", f"/api/v1/workflows/{workflow_id}", 200)
    owner.call("PATCH", f"/api/v1/workflows/{workflow_id}", 200, json={"version": draft["version"], "document": {
        "nodes": [quiet[0], {"id": "call", "type": "tool", "config": {"tool": f"workflow/{workflow_id}"}},
                  {"id": "end", "type": "end", "config": {"outputs": [
                      {"variable": "text", "value_selector": ["call", "text"]}]}}],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}]}})
    owner.call("POST", f"/api/v1/workflows/{workflow_id}/publish", 201, json={})
    run = owner.call("POST", f"/api/v1/workflows/{workflow_id}/runs", 200, json={"inputs": {}, "mode": "sync"})
    assert run["status"] == "failed" and run["error"]["node_id"] == "call", run
    [call] = [node for node in run["nodes"] if node["node_id"] == "call"]
    assert call["error"]["code"] == "workflow_call_cycle", call["error"]
    assert "already running on this call path" in call["error"]["message"]
    assert len(owner.call("GET", f"/api/v1/workflows/{workflow_id}/runs", 200)) == 1, "no second run started"
