"""The question classifier and the parameter extractor through the real model gateway (tenant
models, credentials decrypted with KMS, usage recorded in PostgreSQL) against the local
OpenAI-protocol server: the class picked becomes the branch taken, structured output natively
or by prompt, parameters by function calling or by a JSON answer, typed and checked as Dify
checks them, tokens counted, provider errors with their own codes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.models.wiring import model_gateway
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.validation import validate_document
from tests.integration.conftest import API_KEY, bearer
from tests.support.engine_runs import DrivenRun, document, drive, ports
from tests.support.fake_openai import ChatScript, FakeOpenAI, ToolCallScript, openai_error
from tests.support.workflow_api import WORKFLOWS, Api

Sql = Callable[..., list[tuple[Any, ...]]]
CLASSES = [{"id": "billing", "name": "Invoices, payments and refunds"},
           {"id": "2", "name": "Anything else"}]


class Tenant:
    def __init__(self, client: TestClient, data: dict[str, Any], fake: FakeOpenAI) -> None:
        self.id = uuid.UUID(data["tenant"]["id"])
        self.data = data
        headers = bearer(data["owner_token"])
        for name, capabilities in (("tools-llm", ["chat", "function_calling"]),
                                   ("json-llm", ["chat", "structured_output"]), ("plain-llm", ["chat"])):
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


def run(tenant: Tenant, doc: Any, question: str) -> DrivenRun:
    assert validate_document(doc) == []
    return drive(doc, NodeRunner(ports(models=model_gateway())), {"q": question, "topic": "refunds"},
                 tenant_id=tenant.id)


START = {"id": "start", "type": "start", "config": {"variables": [{"variable": "q"}, {"variable": "topic"}]}}


# --- question classifier -------------------------------------------------------------------------
def classifier_doc(model: str | None = None, *, strategy: str = "fail") -> Any:
    failing = strategy == "fail_branch"
    return document([
        START,
        {"id": "qc", "type": "question_classifier", "error_strategy": strategy, "config": {
            "query_variable_selector": ["start", "q"], "model": {"name": model, "temperature": 0},
            "classes": CLASSES, "instruction": "Questions about {{#start.topic#}} are billing."}},
        {"id": "bill", "type": "template", "config": {"template": "to billing"}},
        {"id": "other", "type": "template", "config": {"template": "to the desk"}},
        {"id": "agg", "type": "variable_aggregator", "config": {"variables": [
            ["bill", "output"], ["other", "output"], *([["qc", "error_type"]] if failing else [])]}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": "route", "value_selector": ["agg", "output"]},
            *({"variable": name, "value_selector": ["qc", name]} for name in ("class_name", "class_id", "usage"))]}},
    ], [("start", "qc"), ("qc", "billing", "bill"), ("qc", "2", "other"), ("bill", "agg"), ("other", "agg"),
        ("agg", "end"), *([("qc", "fail-branch", "agg")] if failing else [])])


def test_the_class_the_model_picks_is_the_branch_the_run_takes(tenant: Tenant, fake: FakeOpenAI,
                                                               admin_sql: Sql) -> None:
    fake.enqueue(ChatScript(text=['{"category_id": "billing", ', '"category_name": "Invoices, payments and refunds"}'],
                            usage=(90, 14)))
    result = run(tenant, classifier_doc(), "Where is my refund?")
    assert result.status == "succeeded"
    assert result.outputs == {"route": "to billing", "class_name": "Invoices, payments and refunds",
                              "class_id": "billing",
                              "usage": {"prompt_tokens": 90, "completion_tokens": 14, "total_tokens": 104}}
    assert result.skipped() == {"other"}
    assert result.results["qc"].handle == "billing" and result.results["qc"].tokens == 104
    assert result.chunks() == []  # a choice, not prose: nothing is streamed
    [body] = fake.chat_requests()
    assert body["model"] == "gpt-plain-llm" and body["temperature"] == 0 and "response_format" not in body
    system, user = body["messages"]
    assert user == {"role": "user", "content": "Where is my refund?"}
    assert json.dumps([{"category_id": "billing", "category_name": "Invoices, payments and refunds"},
                       {"category_id": "2", "category_name": "Anything else"}]) in system["content"]
    assert "Questions about refunds are billing." in system["content"]
    assert admin_sql("SELECT model_name, input_tokens, output_tokens FROM usage_records WHERE tenant_id = %s",
                     (tenant.id,)) == [("plain-llm", 90, 14)]


def test_a_model_with_native_structured_output_gets_the_class_ids_as_an_enum(tenant: Tenant,
                                                                              fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=['{"category_id": "2", "category_name": "Anything else"}']))
    result = run(tenant, classifier_doc("json-llm"), "Do you ship to Peru?")
    assert (result.outputs["route"], result.outputs["class_id"]) == ("to the desk", "2")
    schema = fake.chat_requests()[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["category_id"]["enum"] == ["billing", "2"]
    assert schema["required"] == ["category_id", "category_name"]


@pytest.mark.parametrize(("answer", "class_id"), [
    ('```json\n{"category_name": "Anything else"}\n```', "2"),  # named by its name
    ("billing", "billing"),  # a bare id
    ('{"category_id": 2}', "2"),  # an id YAML or the model wrote as a number
    ("I cannot decide.", "billing"),  # neither: the first class, as Dify falls back
])
def test_answers_are_read_as_dify_reads_them(tenant: Tenant, fake: FakeOpenAI, answer: str, class_id: str) -> None:
    fake.enqueue(ChatScript(text=[answer]))
    result = run(tenant, classifier_doc(), "Hello?")
    assert result.status == "succeeded" and result.outputs["class_id"] == class_id
    assert result.results["qc"].handle == class_id


def test_provider_errors_and_empty_queries_fail_the_classifier(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(openai_error(429, "Rate limit reached", type_="rate_limit_error", code="rate_limit_exceeded",
                              headers={"retry-after": "0"}))
    fake.enqueue(openai_error(429, "Rate limit reached", type_="rate_limit_error", code="rate_limit_exceeded",
                              headers={"retry-after": "0"}))
    fake.enqueue(openai_error(429, "Rate limit reached", type_="rate_limit_error", code="rate_limit_exceeded",
                              headers={"retry-after": "0"}))
    result = run(tenant, classifier_doc(strategy="fail_branch"), "Where is my refund?")
    error = result.results["qc"].error
    assert result.status == "succeeded" and result.results["qc"].handle == "fail-branch"
    assert error is not None and error.code == "model_rate_limited"
    assert result.outputs["route"] == "model_rate_limited"
    assert result.skipped() == {"bill", "other"}
    fake.reset()
    empty = run(tenant, classifier_doc(), "   ")
    empty_error = empty.results["qc"].error
    assert empty.status == "failed" and empty_error is not None
    assert empty_error.code == "question_classifier_query_empty"
    assert fake.chat_requests() == []


# --- parameter extractor ---------------------------------------------------------------------------
PARAMETERS = [
    {"name": "city", "type": "string", "required": True, "description": "Destination city"},
    {"name": "nights", "type": "number", "description": "Nights to stay"},
    {"name": "cabin", "type": "string", "options": ["economy", "business"]},
    {"name": "pets", "type": "boolean"},
    {"name": "stops", "type": "array[string]"},
]
NAMES = [p["name"] for p in PARAMETERS] + ["__is_success", "__reason", "__usage"]


def extractor_doc(model: str | None, mode: str = "function_call") -> Any:
    return document([
        START,
        {"id": "pe", "type": "parameter_extractor", "config": {
            "query": ["start", "q"], "model": {"name": model}, "parameters": PARAMETERS, "reasoning_mode": mode,
            "instruction": "The topic is {{#start.topic#}}."}},
        {"id": "end", "type": "end", "config": {"outputs": [
            {"variable": name, "value_selector": ["pe", name]} for name in NAMES]}},
    ], [("start", "pe"), ("pe", "end")])


def test_parameters_by_function_calling(tenant: Tenant, fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(text=[], usage=(150, 30), tool_calls=[ToolCallScript(
        "extract_parameters", ['{"city": "Lisbon", "nights": ', '3, "cabin": "business", ',
                               '"pets": false, "stops": ["Madrid"]}'])]))
    result = run(tenant, extractor_doc("tools-llm"), "Three nights in Lisbon via Madrid, business class.")
    assert result.status == "succeeded"
    assert result.outputs == {"city": "Lisbon", "nights": 3, "cabin": "business", "pets": False,
                              "stops": ["Madrid"], "__is_success": 1, "__reason": None,
                              "__usage": {"prompt_tokens": 150, "completion_tokens": 30, "total_tokens": 180}}
    assert result.results["pe"].tokens == 180
    [body] = fake.chat_requests()
    assert body["tool_choice"] == "required"
    [tool] = body["tools"]
    assert tool["function"]["name"] == "extract_parameters"
    assert tool["function"]["parameters"] == {
        "type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "description": "Destination city"},
            "nights": {"type": "number", "description": "Nights to stay"},
            "cabin": {"type": "string", "enum": ["economy", "business"]},
            "pets": {"type": "boolean"}, "stops": {"type": "array", "items": {"type": "string"}}}}
    assert "The topic is refunds." in body["messages"][0]["content"]
    assert body["messages"][1] == {"role": "user", "content": "Three nights in Lisbon via Madrid, business class."}


@pytest.mark.parametrize(("model", "mode"), [("tools-llm", "prompt"), ("plain-llm", "function_call")])
def test_parameters_by_a_json_answer_in_prompt_mode_or_without_function_calling(
        tenant: Tenant, fake: FakeOpenAI, model: str, mode: str) -> None:
    fake.enqueue(ChatScript(text=["Here you go:\n```json\n", '{"city": "Oslo", "nights": "2", "pets": "true"}',
                                  "\n```"]))
    result = run(tenant, extractor_doc(model, mode), "Two nights in Oslo with my dog.")
    assert result.outputs == {"city": "Oslo", "nights": 2, "cabin": "", "pets": True, "stops": [],
                              "__is_success": 1, "__reason": None,
                              "__usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}
    [body] = fake.chat_requests()
    assert "tools" not in body
    system = body["messages"][0]["content"]
    assert '"cabin": {"type": "string", "enum": ["economy", "business"]}' in system
    assert "one JSON object" in system


def test_answers_that_do_not_fit_are_reported_as_dify_does_and_the_node_succeeds(tenant: Tenant,
                                                                                fake: FakeOpenAI) -> None:
    fake.enqueue(ChatScript(tool_calls=[ToolCallScript(
        "extract_parameters", ['{"nights": "a few", "cabin": "first", "pets": 1, "stops": ["Rome", 7]}'])]))
    result = run(tenant, extractor_doc("tools-llm"), "Somewhere warm, first class.")
    assert result.status == "succeeded"
    outputs = result.outputs
    assert (outputs["city"], outputs["nights"], outputs["cabin"], outputs["pets"], outputs["stops"]) == (
        "", 0, "", False, ["Rome"])
    assert outputs["__is_success"] == 0
    assert outputs["__reason"] == ("parameter 'city' is required; parameter 'nights' must be a number; "
                                   "parameter 'cabin' must be one of 'economy', 'business'; parameter 'pets' must "
                                   "be a boolean; parameter 'stops' has items that are not strings")
    fake.enqueue(ChatScript(text=["Sorry, I can't help with that."]))
    nothing = run(tenant, extractor_doc("plain-llm"), "Hi")
    assert nothing.outputs["__is_success"] == 0 and "no parameters" in nothing.outputs["__reason"]
    assert nothing.outputs["city"] == "" and nothing.outputs["stops"] == []


# --- publishing ------------------------------------------------------------------------------------
def test_publishing_checks_the_models_the_classifier_and_the_extractor_name(client: TestClient,
                                                                             tenant: Tenant) -> None:
    api = Api(client, tenant.data)
    doc = extractor_doc("tools-llm").model_dump(mode="json")
    doc["nodes"][1]["config"]["model"]["name"] = "no-such-model"
    classifier = classifier_doc("gone-llm", strategy="fail_branch").model_dump(mode="json")
    workflow = api.workflow("Routes", document=classifier)
    assert workflow["problems"] == []  # the graph itself is fine
    payload = api.error("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 422, "workflow_invalid")
    assert [(p["node_id"], p["field"], p["code"]) for p in payload["details"]["problems"]] == [
        ("qc", "config.model.name", "model_not_found")]
    extractor = api.workflow("Trips", document=doc)
    payload = api.error("POST", f"{WORKFLOWS}/{extractor['id']}/publish", {}, 422, "workflow_invalid")
    assert [(p["node_id"], p["field"], p["code"]) for p in payload["details"]["problems"]] == [
        ("pe", "config.model.name", "model_not_found")]
    # The tenant's models (or its default chat model, for a node that names none) publish.
    fixed = classifier_doc(None, strategy="fail_branch").model_dump(mode="json")
    api.data("PATCH", f"{WORKFLOWS}/{workflow['id']}", {"document": fixed, "version": 1})
    assert api.data("POST", f"{WORKFLOWS}/{workflow['id']}/publish", {}, 201)["number"] == 1
