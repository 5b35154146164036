"""Workflow LLM nodes through the real model gateway (tenant models, credentials decrypted with
KMS, usage recorded in PostgreSQL) against the local OpenAI-protocol server: streamed chunks,
usage and tokens, the tenant's default model, structured output natively and by instruction,
provider errors with their own codes, and a retrieval result as the prompt's context."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.models.wiring import model_gateway
from shared.workflows.engine.runner import NodeRunner
from tests.integration.conftest import API_KEY, bearer
from tests.support.engine_runs import ScriptedRetriever, document, drive, passage, ports
from tests.support.fake_openai import ChatScript, FakeOpenAI, openai_error

Sql = Callable[..., list[tuple[Any, ...]]]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"], "additionalProperties": False}


class Tenant:
    def __init__(self, client: TestClient, data: dict[str, Any], fake: FakeOpenAI) -> None:
        self.id = uuid.UUID(data["tenant"]["id"])
        headers = bearer(data["owner_token"])
        # One model with the provider's native structured output, one without (the default).
        for name, capabilities in (("flow-llm", ["chat", "structured_output"]), ("plain-llm", ["chat"])):
            response = client.post("/api/v1/models", headers=headers, json={
                "name": name, "protocol": "openai", "provider_model": f"gpt-{name}", "base_url": fake.base_url,
                "api_key": API_KEY, "test": False, "capabilities": capabilities})
            assert response.status_code == 201, response.text
        response = client.put("/api/v1/models/defaults", headers=headers, json={"chat_model": "plain-llm"})
        assert response.status_code == 200, response.text


@pytest.fixture
def tenant(client: TestClient, kms: str, new_tenant: Callable[..., dict[str, Any]], fake: FakeOpenAI) -> Tenant:
    fake.reset()
    return Tenant(client, new_tenant(), fake)


def llm_doc(config: dict[str, Any], *, strategy: str = "fail", default: dict[str, Any] | None = None):
    llm = {"id": "llm", "type": "llm", "error_strategy": strategy, "default_value": default or {},
           "config": {"prompt_template": [{"role": "system", "text": "Be brief."},
                                          {"role": "user", "text": "{{#start.q#}}"}], **config}}
    outputs = {name: ["llm", name] for name in ("text", "usage", "finish_reason", "structured_output")}
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "q"}]}}, llm,
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": selector} for name, selector in outputs.items()]}},
    ], [("start", "llm"), ("llm", "end")])


def run_llm(tenant: Tenant, doc: Any, question: str = "Capital of France?"):
    return drive(doc, NodeRunner(ports(models=model_gateway())), {"q": question}, tenant_id=tenant.id)


def test_the_answer_streams_as_chunks_and_its_usage_is_recorded(tenant: Tenant, fake: FakeOpenAI,
                                                                 admin_sql: Sql) -> None:
    fake.enqueue(ChatScript(text=["Pa", "ris", "."], usage=(21, 3)))
    run = run_llm(tenant, llm_doc({"model": {"name": "flow-llm", "temperature": 0.1, "max_tokens": 64}}))
    assert run.status == "succeeded"
    assert run.chunks("llm") == ["Pa", "ris", "."]
    assert run.outputs == {"text": "Paris.", "usage": {"prompt_tokens": 21, "completion_tokens": 3,
                                                       "total_tokens": 24},
                           "finish_reason": "stop", "structured_output": None}
    assert run.results["llm"].tokens == 24
    [body] = fake.chat_requests()
    assert body["model"] == "gpt-flow-llm" and body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Capital of France?"}]
    assert (body["temperature"], body["max_tokens"]) == (0.1, 64)
    assert "response_format" not in body
    # Text chunks arrive between the node's start and its end.
    kinds = [kind for kind, data in run.events if data["node_id"] == "llm"]
    assert kinds == ["node_started", "text_chunk", "text_chunk", "text_chunk", "node_finished"]
    rows = admin_sql("SELECT model_name, input_tokens, output_tokens, outcome FROM usage_records "
                     "WHERE tenant_id = %s", (tenant.id,))
    assert rows == [("flow-llm", 21, 3, "ok")]


def test_without_a_model_name_the_tenants_default_model_answers(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=["ok"]))
    run = run_llm(tenant, llm_doc({}))
    assert run.outputs["text"] == "ok"
    assert fake.chat_requests()[0]["model"] == "gpt-plain-llm"


def test_structured_output_through_the_providers_json_schema_mode(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=['{"city": "Paris", ', '"population": 2102650}']))
    run = run_llm(tenant, llm_doc({"model": {"name": "flow-llm"},
                                   "structured_output": {"enabled": True, "schema": SCHEMA}}))
    assert run.outputs["structured_output"] == {"city": "Paris", "population": 2102650}
    assert run.outputs["text"] == '{"city": "Paris", "population": 2102650}'
    format_ = fake.chat_requests()[0]["response_format"]
    assert format_["type"] == "json_schema" and format_["json_schema"]["schema"] == SCHEMA


def test_structured_output_asked_for_in_the_prompt_when_the_model_has_no_native_mode(tenant: Tenant,
                                                                                    fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=["```json\n", '{"city": "Rome", "population": 2748109}', "\n```"]))
    run = run_llm(tenant, llm_doc({"model": {"name": "plain-llm"},
                                   "structured_output": {"enabled": True, "schema": SCHEMA}}))
    assert run.outputs["structured_output"] == {"city": "Rome", "population": 2748109}
    [body] = fake.chat_requests()
    assert "response_format" not in body
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.\n\n")
    assert json.dumps(SCHEMA) in system["content"]


def test_an_answer_that_is_not_the_schemas_json_fails_the_node(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=["Paris, roughly two million people."], usage=(30, 8)))
    run = run_llm(tenant, llm_doc({"model": {"name": "flow-llm"},
                                   "structured_output": {"enabled": True, "schema": SCHEMA}}))
    result = run.results["llm"]
    assert run.status == "failed"
    assert result.error is not None and result.error.code == "llm_structured_output_invalid"
    assert "not JSON" in result.error.message
    assert result.tokens == 38


def test_provider_errors_keep_their_own_code(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(openai_error(400, "This model's maximum context length is 8192 tokens.",
                              type_="invalid_request_error", code="context_length_exceeded", param="messages"))
    run = run_llm(tenant, llm_doc({"model": {"name": "flow-llm"}}, strategy="default_value",
                                  default={"text": "Sorry, too long."}))
    result = run.results["llm"]
    assert run.status == "succeeded"
    assert result.error is not None and result.error.code == "model_context_too_long"
    assert run.outputs["text"] == "Sorry, too long."
    assert result.outputs["error_type"] == "model_context_too_long"


def test_retrieval_results_become_the_prompts_context(tenant: Tenant, fake: FakeOpenAI) -> None:
    kb = str(uuid.uuid4())
    retriever = ScriptedRetriever([passage("Refunds are paid within 5 days."),
                                   passage("Refunds need the receipt.", score=0.7)])
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "q"}]}},
        {"id": "kr", "type": "knowledge_retrieval", "config": {"query_variable_selector": ["start", "q"],
                                                               "knowledge_base_ids": [kb]}},
        {"id": "llm", "type": "llm", "config": {
            "model": {"name": "flow-llm"}, "context": {"enabled": True, "variable_selector": ["kr", "result"]},
            "prompt_template": [{"role": "system", "text": "Answer from these notes:\n{{#context#}}"},
                                {"role": "user", "text": "{{#start.q#}}"}]}},
        {"id": "end", "type": "end",
         "config": {"outputs": [{"variable": "answer", "value_selector": ["llm", "text"]}]}},
    ], [("start", "kr"), ("kr", "llm"), ("llm", "end")])
    fake.enqueue(ChatScript(text=["Within 5 days, with the receipt."]))
    run = drive(doc, NodeRunner(ports(models=model_gateway(), retriever=retriever)), {"q": "How are refunds paid?"},
                tenant_id=tenant.id)
    assert run.outputs == {"answer": "Within 5 days, with the receipt."}
    assert retriever.queries[0].text == "How are refunds paid?"
    system = fake.chat_requests()[0]["messages"][0]["content"]
    assert system == "Answer from these notes:\nRefunds are paid within 5 days.\nRefunds need the receipt."


# --- code through the local sandbox, HTTP through the safe fetch path ----------------------------

def code_doc() -> Any:
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "n", "type": "number"}]}},
        {"id": "code", "type": "code", "timeout_s": 10, "config": {
            "code": "def main(n):\n    print('doubling', n)\n    return {'double': n * 2, 'items': [str(n)] * 2}",
            "variables": [{"variable": "n", "value_selector": ["start", "n"]}],
            "outputs": {"double": {"type": "number"}, "items": {"type": "array[string]"}}}},
        {"id": "spin", "type": "code", "timeout_s": 1, "error_strategy": "default_value", "default_value": {"x": -1},
         "config": {"code": "def main():\n    while True:\n        pass", "outputs": {"x": {"type": "number"}}}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "double", "value_selector": ["code", "double"]},
            {"variable": "items", "value_selector": ["code", "items"]},
            {"variable": "x", "value_selector": ["spin", "x"]}]}},
    ], [("start", "code"), ("code", "spin"), ("spin", "end")])


def test_code_runs_in_the_sandbox_and_its_own_timeout_is_reported() -> None:
    from shared.workflows.sandbox.wiring import code_runner

    run = drive(code_doc(), NodeRunner(ports(code_runner=code_runner())), {"n": 21})
    assert run.status == "succeeded"
    assert run.outputs == {"double": 42, "items": ["21", "21"], "x": -1}
    error = run.results["spin"].error
    # The sandbox's own limit (the node's timeout bounds both its CPU and wall time; which fires first
    # depends on the machine's load) is reported before the runner gives up on the attempt.
    assert error is not None and error.code == "code_timeout" and error.details["limit"] in {"cpu", "wall"}


@pytest.fixture(scope="module")
def http_server() -> Any:
    from tests.support.compat_cases import HttpMockServer

    with HttpMockServer() as server:
        yield server


def http_doc(url: str, **node: Any) -> Any:
    return document([
        {"id": "start", "type": "start", "config": {"variables": [{"variable": "item"}]}},
        {"id": "http", "type": "http_request", **node, "config": {
            "method": "POST", "url": url, "params": [{"key": "q", "value": "{{#start.item#}}"}],
            "authorization": {"type": "api-key", "scheme": "bearer", "api_key": "tok-{{#start.item#}}"},
            "body": {"type": "json", "data": '{"item": "{{#start.item#}}"}'}}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": ["http", name]} for name in ("status_code", "body", "headers")]}},
    ], [("start", "http"), ("http", "end")])


def test_http_requests_go_through_the_fetch_path(http_server: Any) -> None:
    from shared.workflows.fetch.wiring import http_fetcher
    from tests.support.compat_cases import HttpMock

    http_server.mock = HttpMock(404, "introuvable é",
                                {"Content-Type": "text/plain; charset=utf-8", "X-Served-By": "local"})
    http_server.requests.clear()
    runner = NodeRunner(ports(fetcher=http_fetcher()))
    run = drive(http_doc(http_server.origin + "/items/{{#start.item#}}"), runner, {"item": "42"})
    # A 404 is the answer (no retry, no error strategy): the node succeeds with it.
    assert run.status == "succeeded"
    assert run.outputs["status_code"] == 404 and run.outputs["body"] == "introuvable é"
    assert run.outputs["headers"]["x-served-by"] == "local"
    [(method, path, body)] = http_server.requests
    assert (method, path) == ("POST", "/items/42?q=42") and json.loads(body) == {"item": "42"}
    # The metadata address is refused whatever the allow-list says; the failure branch takes it.
    refused = drive(http_doc("http://169.254.169.254/latest/meta-data", error_strategy="fail_branch"), runner,
                    {"item": "1"})
    error = refused.results["http"].error
    assert refused.results["http"].handle == "fail-branch"
    assert error is not None and error.code == "http_request_refused"
