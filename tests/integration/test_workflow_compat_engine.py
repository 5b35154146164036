"""Dify's own workflow fixtures, run in-process by the engine alone (no Step Functions, no run
store): every case of ``tests/fixtures/dify/dify-cases.json`` whose fixture is a workflow (or a
bare graph) or a chatflow (advanced-chat) of the node types Stratus runs, imported with
``import_dify`` and driven over ``plan()`` and ``NodeRunner.run`` (tests/support/engine_runs.py);
a chatflow with its case's ``query`` as ``sys.query`` and its conversation variables at their
defaults, its answer streamed through the engine's answer stream. Cases left out are listed with
their reason in ``tests/support/compat_cases.LEFT_OUT``. The end-to-end suite runs the
same cases through the API and the interpreter.

What is real: the model gateway with a tenant model (credentials through KMS, usage in
PostgreSQL) calling the local OpenAI-protocol server, and the production fetch path calling a
local HTTP server; templates, conditions and aggregation are the engine's own. A case's mocks
become those servers' answers (tests/support/compat_cases.py): an LLM mock is the model
server's reply (``__error__`` an error reply, ``__delay_s__`` a delay before it,
``__stream_chunks__`` the streamed pieces), an HTTP mock the local server's answer, with the
fixture's ``https://sample.invalid`` host pointed at it — the one change made to a fixture
beyond the overrides the Dify test itself applied (an HTTP URL given as an input is pointed there
too). A tool mock is what an OpenAPI tool of a tool provider created in the tenant under the Dify
provider's name answers, served by the same local server (Dify's ``current_time`` is Stratus's
built-in); the tool node calls it through the real tools runtime. Template mocks are not applied:
each equals what the template really renders (see the cases' notes).

Outcomes compare as the Dify tests assert them: ``output_match`` exact or subset;
``partial_succeeded`` is a succeeded run in which a node failed and its error strategy took
over; ``failed`` is a failed run. A streamed answer (``expected_answer``,
``expected_stream_chunks``) is, for a workflow, what Dify's End node streams: its outputs, one
after the other, separated by a newline; for a chatflow, the answer stream's text (which must also
be the run's ``answer`` output); and the LLM's own chunks are the ``text_chunk`` events the node
emitted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.workflows.definition import WorkflowDocument
from shared.workflows.engine.runner import EnginePorts, NodeRunner
from tests.integration.conftest import API_KEY, bearer
from tests.support.compat_cases import (
    FIXTURES,
    TOOLS_PATH,
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
from tests.support.engine_runs import DrivenRun, drive
from tests.support.fake_openai import ChatScript, FakeOpenAI

MODEL = "compat-llm"
CASES = cases()
# Each case's whole record: the streamed-answer fields CompatCase does not carry.
RECORDS: list[dict[str, Any]] = json.loads((FIXTURES / "dify-cases.json").read_text())


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpMockServer]:
    with HttpMockServer() as server:
        yield server


@pytest.fixture(scope="module")
def owner_headers() -> dict[str, str]:
    """The compat tenant owner's headers (set by ``tenant_id``)."""
    return {}


@pytest.fixture(scope="module")
def tenant_id(client: TestClient, kms: str, admin_token: str, fake: FakeOpenAI,
              owner_headers: dict[str, str]) -> uuid.UUID:
    created = client.post("/api/v1/tenants", json={"name": "dify compat"}, headers=bearer(admin_token))
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    headers = bearer(data["owner_token"])
    model = client.post("/api/v1/models", headers=headers, json={
        "name": MODEL, "protocol": "openai", "provider_model": "gpt-compat", "base_url": fake.base_url,
        "api_key": API_KEY, "test": False})
    assert model.status_code == 201, model.text
    defaults = client.put("/api/v1/models/defaults", headers=headers, json={"chat_model": MODEL})
    assert defaults.status_code == 200, defaults.text
    owner_headers.update(headers)
    return uuid.UUID(data["tenant"]["id"])


def provide_tools(client: TestClient, headers: dict[str, str], case: CompatCase, origin: str) -> None:
    """The tenant's tool providers serving the case's tools (each created once per module)."""
    for body in tool_providers(case, origin):
        created = client.post("/api/v1/tools", headers=headers, json=body)
        assert created.status_code in (201, 409), created.text


@pytest.fixture(scope="module")
def runner(kms: str) -> NodeRunner:
    # The production wiring of every port (built after the KMS fixture set the credentials key).
    from shared.knowledge.wiring import retrieval_service
    from shared.models.wiring import model_gateway
    from shared.tools.wiring import tool_runtime
    from shared.workflows.fetch.wiring import http_fetcher
    from shared.workflows.sandbox.wiring import code_runner

    return NodeRunner(EnginePorts(models=model_gateway(), retriever=retrieval_service(), code_runner=code_runner(),
                                  fetcher=http_fetcher(), tools=tool_runtime()))


def model_replies(case: CompatCase) -> dict[str, Any]:
    """The model server's reply for each LLM node; streamed pieces as the mock lists them."""
    ids = node_ids(case.fixture, "llm")
    replies = dict(zip(ids, llm_replies(case, ids), strict=True))
    for node_id in ids:
        mock = case.mocks.get(f"node:{node_id}") or case.mocks.get("type:llm") or {}
        if "__stream_chunks__" in mock:
            replies[node_id] = ChatScript(text=list(mock["__stream_chunks__"]))
    return replies


def imported(case: CompatCase, http_origin: str, tenant_id: uuid.UUID) -> WorkflowDocument:
    """The fixture as Stratus imports it, its LLM nodes on the tenant's model, its tool nodes on
    the tenant's tools."""
    from shared.tools.wiring import tool_runtime
    from shared.workflows.dify import import_dify  # the importer's module (the Dify helper's)

    return import_dify(prepared_fixture(case, http_origin), model_names={MODEL}, default_model=MODEL,
                       tools=lambda: tool_runtime().list(tenant_id)).document


def streamed_answer(run: DrivenRun, case: CompatCase) -> str:
    """A chatflow's streamed answer; for a workflow, what Dify's End node streams: its outputs in
    order, a newline between two."""
    if case.chatflow:
        return "".join(run.streamed)
    return "\n".join("" if value is None else str(value) for value in run.outputs.values())


def handled_failures(run: DrivenRun) -> list[str]:
    return [node_id for node_id, result in run.results.items() if result.status == "succeeded" and result.error]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_dify_case(case: CompatCase, runner: NodeRunner, tenant_id: uuid.UUID, fake: FakeOpenAI,
                   http_server: HttpMockServer, client: TestClient, owner_headers: dict[str, str]) -> None:
    fake.reset()
    http_server.use(case)
    provide_tools(client, owner_headers, case, http_server.origin)
    replies = model_replies(case)
    # Only the LLM nodes on the branch that runs call the model; one reply each is queued and the
    # rest stay unused (an LLM node's mock is the same whichever branch runs).
    fake.enqueue(*replies.values())
    document = imported(case, http_server.origin, tenant_id)
    began = time.monotonic()
    run = drive(document, runner, prepared_inputs(case, http_server.origin), tenant_id=tenant_id,
                query=case.query or "")
    elapsed = time.monotonic() - began
    failures = {node_id: result.error for node_id, result in run.results.items() if result.error}

    if case.expected_status == "failed":
        assert run.status == "failed", (run.outputs, failures)
        return
    assert run.status == "succeeded", failures
    if case.expected_status == "partial_succeeded":
        assert handled_failures(run), "a node should have failed and been handled by its error strategy"
    else:
        assert not failures, failures
    if case.expected_outputs is not None:
        assert outputs_match(case, run.outputs), (case.output_match, run.outputs, case.expected_outputs)

    record = RECORDS[case.index]
    answer = streamed_answer(run, case)
    if case.chatflow:
        # What streamed is the run's answer, piece by piece.
        assert run.outputs == {"answer": answer}, (run.outputs, run.streamed)
    if record.get("expected_answer") is not None:
        if case.output_match == "exact_after_strip":
            assert answer.strip() == record["expected_answer"].strip()
        else:
            assert answer == record["expected_answer"], run.streamed
    chunks = record.get("expected_stream_chunks")
    if chunks is not None:
        expected = "".join(chunks["chunks"])
        if chunks.get("exact"):
            assert answer == expected
        else:
            assert answer.startswith(expected), answer
    for node_id, reply in replies.items():
        if node_id in run.results and isinstance(reply, ChatScript):
            # The node streamed exactly what the model sent, piece by piece, and counted its tokens.
            assert run.chunks(node_id) == [piece for piece in reply.text if piece], node_id
            assert run.results[node_id].tokens > 0
    for body in tool_providers(case, http_server.origin):
        # The tool node really called the tenant's OpenAPI tool (with its arguments in the query).
        for path in body["schema"]["paths"]:
            assert any(seen.startswith(f"{TOOLS_PATH}{path}?") for _, seen, _ in http_server.requests), path
    delay = max((float(mock.get("__delay_s__", 0)) for mock in case.mocks.values() if isinstance(mock, dict)),
                default=0.0)
    assert elapsed >= delay


def test_the_in_scope_cases_are_all_there() -> None:
    """The issue's scope: these fixtures' cases, every one of them (none silently left out)."""
    by_fixture: dict[str, int] = {}
    for case in CASES:
        by_fixture[case.fixture] = by_fixture.get(case.fixture, 0) + 1
    assert by_fixture == {
        "simple_passthrough_workflow.yml": 15, "conditional_hello_branching_workflow.yml": 17,
        "basic_llm_chat_workflow.yml": 5, "conditional_streaming_vs_template_workflow.yml": 4,
        "dual_switch_variable_aggregator_workflow.yml": 4, "end_node_without_value_type_field_workflow.yml": 1,
        "builder_restricted/http_text.yml": 10, "builder_restricted/http_default_output.yml": 1,
        "builder_restricted/scalar.yml": 1,
        "array_iteration_formatting_workflow.yml": 1, "parallel_iteration_formatting_workflow.yml": 1,
        "iteration_flatten_output_enabled_workflow.yml": 1, "iteration_flatten_output_disabled_workflow.yml": 1,
        "increment_loop_with_break_condition_workflow.yml": 1,
        # Tool nodes (issue 14): an OpenAPI tool of the tenant's and the built-in current_time.
        "http_request_with_json_tool_workflow.yml": 1, "search_dify_from_2023_to_2025.yml": 1,
        "chatflow_time_tool_static_output_workflow.yml": 1,
        # Chatflows (advanced-chat), cases 33, 39-42, 44-49, 51-56; 43 and 50 are LEFT_OUT with
        # their reasons.
        "answer_end_with_text.yml": 1, "loop_contains_answer.yml": 2, "iteration_contains_answer.yml": 1,
        "test_complex_branch.yml": 4, "basic_chatflow.yml": 2, "multilingual_parallel_llm_streaming_workflow.yml": 1,
        "response_stream_filter_issue_170_workflow.yml": 1, "test_streaming_conversation_variables.yml": 1,
        "test_streaming_conversation_variables_v1_overwrite.yml": 1, "update-conversation-variable-in-iteration.yml": 1}
    assert sorted(case.index for case in CASES if case.chatflow) == [33, 39, 40, 41, 42, 44, 45, 46, 47, 48, 49,
                                                                      51, 52, 53, 54, 55, 56]
