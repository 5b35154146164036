"""Workflows through the whole local runtime over HTTP: every Dify fixture case in scope is
imported from its YAML, published and run on the Step Functions interpreter (moto), and must
give the outputs Dify's own tests assert; a chatflow's (advanced-chat) with its case's query, its
``answer`` output the streamed answer the test asserts. The model is a local OpenAI-protocol server and the
HTTP node's target a local HTTP server, each answering what the case mocks; a tool node's tool is an
OpenAPI tool of a provider the test creates under the Dify provider's name, served by the same local
server (or Stratus's built-in current_time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningRuntime
from tests.support.compat_cases import (
    CompatCase,
    HttpMockServer,
    cases,
    llm_replies,
    node_ids,
    outputs_match,
    prepared_fixture,
    prepared_inputs,
    tool_providers,
)
from tests.support.fake_openai import FakeOpenAI

CASES = cases()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def http_mock() -> Iterator[HttpMockServer]:
    with HttpMockServer() as server:
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
        defaults = self.http.put("/api/v1/models/defaults", headers=self.headers, json={"chat_model": "scripted"})
        assert defaults.status_code == 200, defaults.text

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()["data"] if response.content else None


@pytest.fixture(scope="module")
def client(runtime: RunningRuntime, fake: FakeOpenAI) -> Client:
    return Client(runtime, fake, "e2e-workflows")


def _imported(client: Client, case: CompatCase, http_mock: HttpMockServer) -> dict[str, Any]:
    for provider in tool_providers(case, http_mock.origin):
        created = client.http.post("/api/v1/tools", headers=client.headers, json=provider)
        assert created.status_code in (201, 409), created.text  # 409: made for an earlier case
    content = prepared_fixture(case, http_mock.origin)
    created = client.call("POST", "/api/v1/workflows/import", 201,
                          json={"format": "dify", "content": content, "name": f"compat {case.id}"})["workflow"]
    client.call("POST", f"/api/v1/workflows/{created['id']}/publish", 201, json={})
    return dict(created)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_dify_fixture_case(client: Client, fake: FakeOpenAI, http_mock: HttpMockServer, case: CompatCase) -> None:
    fake.reset()
    fake.enqueue(*llm_replies(case, node_ids(case.fixture, "llm")))
    http_mock.use(case)
    workflow = _imported(client, case, http_mock)
    body: dict[str, Any] = {"inputs": prepared_inputs(case, http_mock.origin), "mode": "sync"}
    if case.chatflow:
        body["query"] = case.query
    run = client.call("POST", f"/api/v1/workflows/{workflow['id']}/runs", 200, json=body)
    if case.expected_status == "failed":
        assert run["status"] == "failed", run["nodes"]
        assert run["error"]["node_id"], run
        return
    assert run["status"] == "succeeded", (run["error"], [n for n in run["nodes"] if n.get("error")])
    assert outputs_match(case, run["outputs"]), (case.description, case.expected_outputs, run["outputs"])
    if case.chatflow:
        assert run["chat"]["query"] == case.query and run["chat"]["conversation_id"] is None
        if case.expected_answer is not None:
            assert run["outputs"]["answer"].strip() == case.expected_answer.strip(), run["outputs"]
    if case.expected_status == "partial_succeeded":
        # Dify's partial success: a node failed and its error strategy carried the run on.
        failed = [node for node in run["nodes"] if node.get("error")]
        assert failed, run
