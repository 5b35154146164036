"""The OpenAPI document (shared/http/openapi.py) is generated from the catalog: every HTTP API
route, and the routes of the streaming functions (function URLs behind the edge) with their
real request bodies, query parameters, JSON answers and event types."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any, get_args

import pytest

from functions.catalog import FUNCTIONS, FunctionUrl, Http, by_name, http_functions, streaming_functions
from shared.agents.repository import AGENT_SORTS
from shared.chat.events import EventType
from shared.db.paging import page_request
from shared.errors import ValidationFailed
from shared.http.dialect import STRATUS
from shared.http.openapi import EVENT_STREAM, build_openapi, streaming_paths
from shared.knowledge.repository import DOCUMENT_SORTS
from shared.tenancy.repository import MEMBER_SORTS


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build_openapi(FUNCTIONS)


def _schema(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_every_http_route_is_an_operation(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    for fn in http_functions():
        assert isinstance(fn.trigger, Http)
        operation = doc["paths"][fn.trigger.path][fn.trigger.method.lower()]
        assert operation["operationId"] == fn.name
        assert ("bearerAuth" in str(operation["security"])) is fn.trigger.auth


def test_streaming_routes_are_operations_too(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for fn in streaming_functions():
        assert isinstance(fn.trigger, FunctionUrl)
        for route in fn.trigger.routes:
            operation = paths[route.path][route.method.lower()]
            assert operation["x-stratus-permission"] == route.permission
            assert operation["security"] == [{"bearerAuth": []}]
            assert operation["summary"] == route.summary
            assert operation["tags"] == [route.tag]
            assert operation["x-stratus-streaming"] is True
            # Every answer in the route's dialect: a facade's route documents its API's error body.
            error = _FACADE_ERRORS.get(route.dialect, "ErrorEnvelope")
            assert operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(error)
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operation ids are unique"
    # Every reference resolves to a component.
    for ref in _refs(doc["paths"]):
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


# The error body of each facade's dialect (docs/adr/0042), by dialect (= the prefix's segment).
_FACADE_ERRORS = {"openai": "OpenAIError", "coze": "CozeError", "dify": "DifyError"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _ok(operation: dict) -> dict:
    # The one success answer, or the 200 of a route that may also accept (202) its work.
    statuses = [s for s in operation["responses"] if s.startswith("2")]
    (status,) = ["200"] if statuses == ["200", "202"] else statuses
    return dict(operation["responses"][status]["content"])


def _envelope_data(doc: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    envelope = content["application/json"]["schema"]
    assert envelope["required"] == ["code", "data", "meta"] and envelope["properties"]["code"] == {"const": "success"}
    return _schema(doc, envelope["properties"]["data"])


def test_chat_streams_its_answer_and_its_events(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    send = paths["/api/v1/chat"]["post"]
    assert send["operationId"] == "chat"
    # An SSE stream, or the final message with "stream": false.
    assert set(_ok(send)) == {EVENT_STREAM, "application/json"}
    assert send["requestBody"]["required"] is True
    body = _schema(doc, send["requestBody"]["content"]["application/json"]["schema"])
    assert body["title"] == "ChatBody" and {"agent_id", "message"} <= set(body["required"])
    assert {"conversation_id", "user", "inputs", "stream", "draft"} <= set(body["properties"])
    assert _envelope_data(doc, _ok(send))["title"] == "MessageOut"
    events = paths["/api/v1/chat/{message_id}/events"]["get"]
    assert set(_ok(events)) == {EVENT_STREAM}
    assert {(p["name"], p["in"]) for p in events["parameters"]} == {
        ("message_id", "path"), ("user", "query"), ("last_event_id", "query"), ("Last-Event-ID", "header")}
    user = next(p for p in events["parameters"] if p["name"] == "user")
    assert user["required"] is False and user["schema"]["anyOf"][0]["maxLength"] == 255
    cancel = paths["/api/v1/chat/{message_id}/cancel"]["post"]
    assert set(_ok(cancel)) == {"application/json"}
    assert "202" in cancel["responses"], "cancel answers 202 (accepted)"
    assert _envelope_data(doc, _ok(cancel))["title"] == "CancelOut"
    assert {p["name"] for p in cancel["parameters"]} == {"message_id", "user", "last_event_id"}
    assert "requestBody" not in cancel and "requestBody" not in events


def _event_items(doc: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    schema = _ok(doc["paths"][path][method])[EVENT_STREAM]["schema"]
    return {item["properties"]["event"]["const"]: item for item in schema["oneOf"]}


def test_event_streams_document_each_event_type_and_the_heartbeat(doc: dict[str, Any]) -> None:
    for path, method in (("/api/v1/chat", "post"), ("/api/v1/chat/{message_id}/events", "get")):
        items = _event_items(doc, path, method)
        # The turn's event types (shared/chat/events.py), and the heartbeat.
        assert set(items) == {*get_args(EventType), "heartbeat"}
        data = {name: _schema(doc, item["properties"]["data"]["contentSchema"])
                for name, item in items.items() if name != "heartbeat"}
        assert data["message.delta"]["required"] == ["text"]
        assert {"conversation_id", "message_id", "question_id", "agent_id"} <= set(data["message.start"]["required"])
        assert data["message.complete"]["title"] == "MessageOut"
        assert set(data["error"]["required"]) == {"code", "message"}
        assert data["done"]["properties"]["status"]["enum"] == ["running", "requires_action", "completed", "failed",
                                                            "cancelled"]
        assert _schema(doc, data["retrieval.references"]["properties"]["references"]["items"])["title"] == "Reference"
    # The heartbeat as it is sent: its event name, empty data, and no id.
    heartbeat = _event_items(doc, "/api/v1/chat", "post")["heartbeat"]
    lines = dict(line.split(": ", 1) for line in STRATUS.heartbeat().decode().strip().split("\n"))
    assert lines == {"event": heartbeat["properties"]["event"]["const"], "data": "{}"}
    assert "id" not in heartbeat["properties"]
    assert heartbeat["properties"]["data"]["contentSchema"]["maxProperties"] == 0
    sent = STRATUS.heartbeat().decode().replace("\n", "\\n")
    assert f"`{sent}`" in doc["paths"]["/api/v1/chat"]["post"]["responses"]["200"]["description"]


def test_workflow_runs_stream_their_events_and_keep_their_json_answers(doc: dict[str, Any]) -> None:
    start = doc["paths"]["/api/v1/workflows/{workflow_id}/runs"]["post"]
    assert start["operationId"] == "workflow-runs-create" and start["x-stratus-streaming"] is True
    assert _schema(doc, start["requestBody"]["content"]["application/json"]["schema"])["properties"]["mode"][
        "enum"] == ["sync", "async", "stream"]
    # One path, three answers: the event stream, the finished run (sync), 202 with Location.
    assert set(start["responses"]["200"]["content"]) == {"text/event-stream", "application/json"}
    accepted = start["responses"]["202"]
    assert "Location" in accepted["headers"]
    data = accepted["content"]["application/json"]["schema"]["properties"]["data"]
    assert _schema(doc, data)["title"] == "WorkflowRunOut"
    for path, method in (("/api/v1/workflows/{workflow_id}/runs", "post"),
                         ("/api/v1/workflow-runs/{run_id}/events", "get")):
        items = _event_items(doc, path, method)
        assert list(items) == ["workflow.started", "node.started", "node.delta", "node.finished", "iteration.next",
                               "loop.next", "workflow.paused", "workflow.resumed", "workflow.finished", "error",
                               "done", "heartbeat"]
        events = {name: _schema(doc, item["properties"]["data"]["contentSchema"])
                for name, item in items.items() if name != "heartbeat"}
        # Each data line is text holding JSON, described by its content schema (SSE item schemas).
        assert {(item["properties"]["data"]["type"], item["properties"]["data"]["contentMediaType"])
                for item in items.values()} == {("string", "application/json")}
        finished = events["node.finished"]["properties"]
        assert {"status", "outputs", "outputs_truncated", "elapsed_ms", "tokens", "finished_at"} <= set(finished)
        # The form a paused run waits on, typed as the run's pause shows it.
        assert set(events["workflow.paused"]["required"]) == {"node_id", "form"}
        form = _schema(doc, events["workflow.paused"]["properties"]["form"])
        assert set(form["properties"]) == {"content", "fields", "actions"}
    replay = doc["paths"]["/api/v1/workflow-runs/{run_id}/events"]["get"]
    assert {p["name"] for p in replay["parameters"]} == {"run_id", "last_event_id", "Last-Event-ID"}
    listed = doc["paths"]["/api/v1/workflows/{workflow_id}/runs"]["get"]
    assert listed["operationId"] == "workflow-runs-list" and "text/event-stream" not in listed["responses"]["200"][
        "content"]
    page = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert "pagination" in page["required"] and page["properties"]["data"]["type"] == "array"
    assert {p["name"] for p in listed["parameters"]} == {"workflow_id", "status", "page", "limit", "sort"}


def test_resuming_a_paused_run_is_described_with_its_body_and_answers(doc: dict[str, Any]) -> None:
    resume = doc["paths"]["/api/v1/workflow-runs/{run_id}/resume"]["post"]
    body = _schema(doc, resume["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {"node_id", "answer", "action"} and body["required"] == ["node_id"]
    responses = resume["responses"]
    assert {"200", "202", "404", "409", "422"} <= set(responses)
    # The run going on answers 202 with where to poll it, as the handler sets it.
    assert "Location" in responses["202"]["headers"] and "Location" not in responses["200"]["headers"]
    envelope = _schema(doc, responses["202"]["content"]["application/json"]["schema"])
    assert "pause" in _schema(doc, envelope["properties"]["data"])["properties"]


def test_streaming_paths_need_no_handler_module() -> None:
    paths, components = streaming_paths(FUNCTIONS)
    assert set(paths) == {"/api/v1/chat", "/api/v1/chat/{message_id}/events", "/api/v1/chat/{message_id}/cancel",
                          "/api/v1/chat/{message_id}/tool-outputs",
                          "/api/v1/workflows/{workflow_id}/runs", "/api/v1/workflow-runs/{run_id}/events",
                          "/openai/v1/chat/completions", "/coze/v3/chat", "/coze/v3/chat/retrieve",
                          "/coze/v3/chat/message/list", "/coze/v3/chat/cancel", "/coze/v3/chat/submit_tool_outputs",
                          "/dify/v1/chat-messages",
                          "/dify/v1/chat-messages/{task_id}/stop",
                          "/dify/v1/completion-messages", "/dify/v1/completion-messages/{task_id}/stop",
                          "/dify/v1/workflows/run", "/dify/v1/workflows/run/{workflow_run_id}",
                          "/coze/v1/workflow/run", "/coze/v1/workflow/stream_run", "/coze/v1/workflow/stream_resume",
                          "/coze/v1/workflows", "/coze/v1/workflows/chat", "/coze/v1/workflows/{workflow_id}",
                          "/coze/v1/workflows/{workflow_id}/versions",
                          "/coze/v1/workflows/{workflow_id}/run_histories/{execute_id}"}
    assert {"ChatBody", "MessageOut", "CancelOut", "MessageStart", "StartRun", "NodeFinishedEvent"} <= set(components)
    # Built from the catalog alone (the StreamRoutes and the models they name), without the
    # apps; and importing the catalog imports none of those models (cold start).
    probe = ("import sys\n"
             "from functions.catalog import FUNCTIONS\n"
             "assert 'shared.chat.api' not in sys.modules and 'pydantic' not in sys.modules\n"
             "from shared.http.openapi import streaming_paths\n"
             "streaming_paths(FUNCTIONS)\n"
             "assert 'functions.chat.app' not in sys.modules and 'starlette' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_an_http_route_and_a_streaming_route_cannot_share_a_method_and_path() -> None:
    from shared.catalog import Function, StreamRoute

    health = by_name()["health"]
    assert isinstance(health.trigger, Http)
    clash = Function("clash", "tests.unit.test_openapi", "test",
                     FunctionUrl(("/health",), routes=(StreamRoute(health.trigger.method, "/health", "x:y"),)))
    with pytest.raises(ValueError, match="both an HTTP API route and a streaming route"):
        build_openapi([health, clash])


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, ops in doc["paths"].items() for method, operation in ops.items()]


def test_a_servers_entry_names_the_base_url(doc: dict[str, Any]) -> None:
    assert doc["servers"] and doc["servers"][0]["url"] == "/"


def test_each_route_documents_the_success_status_its_handler_answers(doc: dict[str, Any]) -> None:
    statuses = {operation["operationId"]: sorted(s for s in operation["responses"] if s.startswith("2"))
                for _, _, operation in _operations(doc)}
    # app.created, app.no_content, app.ok(status=202), app.page / app.ok.
    assert statuses["agents-create"] == ["201"] and statuses["documents-create"] == ["201"]
    assert statuses["agents-delete"] == ["204"] and statuses["api-keys-delete"] == ["204"]
    assert statuses["knowledge-bases-delete"] == ["202"] and statuses["documents-reindex"] == ["202"]
    assert statuses["agents-list"] == ["200"] and statuses["chat-cancel"] == ["202"]
    for _, _, operation in _operations(doc):
        for status, answer in operation["responses"].items():
            if status == "204":
                # A 204 has no body.
                assert "content" not in answer, operation["operationId"]


def test_error_statuses_follow_the_route(doc: dict[str, Any]) -> None:
    for method, path, operation in _operations(doc):
        responses = operation["responses"]
        assert ("415" in responses) is ("requestBody" in operation), (method, path)
        assert ("410" in responses) is (path in ("/api/v1/chat/{message_id}/events",
                                                 "/api/v1/workflow-runs/{run_id}/events")), (method, path)
        authenticated = bool(operation["security"])
        for status in ("401", "403", "429"):
            assert (status in responses) is authenticated, (method, path, status)
        for status in ("400", "404", "409", "413", "500", "502", "503"):
            assert status in responses, (method, path, status)
        # The facades answer validation with their APIs' 400 (test_a_facade_documents_validation…).
        assert ("422" in responses) is not path.startswith(("/coze/", "/dify/", "/openai/")), (method, path)
        if authenticated:
            assert {"Retry-After", "RateLimit-Remaining"} <= set(responses["429"]["headers"])


def test_api_gateway_s_own_401_is_documented_as_it_is_sent(doc: dict[str, Any]) -> None:
    from infra.local.gateway import _GATEWAY_ERROR, _GATEWAY_UNAUTHORIZED

    gateway = doc["components"]["schemas"]["GatewayMessage"]
    for _status, _, body in (_GATEWAY_UNAUTHORIZED, _GATEWAY_ERROR):
        message = json.loads(body)
        assert set(message) == set(gateway["required"]) == {"message"}
        assert message["message"] in gateway["properties"]["message"]["enum"]
    for method, path, operation in _operations(doc):
        if not operation["security"]:
            continue
        unauthorized = operation["responses"]["401"]["content"]["application/json"]["schema"]
        refs = [ref.rsplit("/", 1)[1] for ref in _refs(unauthorized)]
        error = _FACADE_ERRORS.get(path.split("/")[1], "ErrorEnvelope")
        if operation.get("x-stratus-streaming"):
            # A function URL is not behind API Gateway: only the dialect's error.
            assert refs == [error], (method, path)
        else:
            assert refs == [error, "GatewayMessage"], (method, path)


@pytest.mark.parametrize(("operation_id", "sorts"), [
    ("agents-list", AGENT_SORTS), ("members-list", MEMBER_SORTS), ("documents-list", DOCUMENT_SORTS)])
def test_sort_names_only_the_route_s_sortable_fields(doc: dict[str, Any], operation_id: str,
                                                      sorts: frozenset[str]) -> None:
    (operation,) = [op for _, _, op in _operations(doc) if op["operationId"] == operation_id]
    (sort,) = [p for p in operation["parameters"] if p["name"] == "sort"]
    pattern = re.compile(sort["schema"]["pattern"])
    for name in sorts:
        assert pattern.match(name) and pattern.match(f"-{name}") and name in sort["description"]
    assert pattern.match(",".join(sorted(sorts)))
    for wrong in ("bogus", "-bogus", f"{min(sorts)},bogus", f"{min(sorts)}x", ""):
        assert not pattern.match(wrong), wrong
        # ... and the server refuses what the document refuses.
        with pytest.raises(ValidationFailed):
            page_request(1, 20, wrong, sorts)
    # Every list route that sorts documents its fields.
    for _, _, listed in _operations(doc):
        for parameter in listed.get("parameters", ()):
            if parameter["name"] == "sort":
                assert "(?:" in parameter["schema"]["pattern"], listed["operationId"]


def _accepts(doc: dict[str, Any], component: str) -> Any:
    """Whether the document's schema of ``component`` accepts a body (jsonschema-rs comes with
    Schemathesis, in the dev extra)."""
    import jsonschema_rs

    validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{component}",
                                             "components": doc["components"]})
    return validator.is_valid


def _valid(model: Any, body: dict[str, Any]) -> bool:
    from pydantic import ValidationError

    try:
        model.model_validate(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("component", "bodies"), [
    ("CreateDocument", [
        {"name": "a", "text": "x"}, {"name": "a", "text": "x", "content_type": "text/plain"},
        {"name": "a", "text": "x", "size": 3}, {"name": "a", "content_type": "text/plain", "size": 3},
        {"name": "a", "content_type": "text/plain"}, {"name": "a", "size": 3}, {"name": "a"},
        {"name": "a", "text": None, "content_type": "text/plain", "size": 3},
        {"name": "a", "text": "x", "content_type": "text/plain", "size": 3}, {"name": "a", "text": "x", "size": None}]),
    ("PreviewChunks", [
        {"text": "x"}, {"document_id": "01a23d4f-1133-75fb-95ff-5c56cff24dc2"}, {},
        {"text": "x", "document_id": "01a23d4f-1133-75fb-95ff-5c56cff24dc2"}, {"text": None, "document_id": None},
        {"text": None, "document_id": "01a23d4f-1133-75fb-95ff-5c56cff24dc2"}]),
    ("UpdateSegment", [
        {"version": 1, "text": "x"}, {"version": 1, "enabled": False}, {"version": 1},
        {"version": 1, "text": None, "enabled": None}, {"version": 1, "text": None, "enabled": True},
        {"version": 1, "text": "x", "enabled": None}]),
    ("CreateConversation", [
        {"agent_id": "a", "user": "alice"}, {"agent_id": "a", "user": "member:alice"},
        {"agent_id": "a", "user": "  member:alice"}, {"agent_id": "a", "user": "alice member:"}]),
])
def test_one_of_rules_and_reserved_prefixes_are_in_the_schemas(doc: dict[str, Any], component: str,
                                                                 bodies: list[dict[str, Any]]) -> None:
    from shared.conversations.api import CreateConversation
    from shared.knowledge.api import CreateDocument, PreviewChunks, UpdateSegment

    model = {"CreateDocument": CreateDocument, "PreviewChunks": PreviewChunks, "UpdateSegment": UpdateSegment,
             "CreateConversation": CreateConversation}[component]
    accepts = _accepts(doc, component)
    for body in bodies:
        # What the document accepts, the server accepts, and the other way round.
        assert accepts(body) is _valid(model, body), body


def _prefixed(doc: dict[str, Any], prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", operation) for path, operations in doc["paths"].items()
            if path.startswith(prefix) for method, operation in operations.items()]


@pytest.mark.parametrize("prefix", ["/coze/", "/dify/", "/openai/"])
def test_a_facade_documents_validation_as_its_api_s_400(doc: dict[str, Any], prefix: str) -> None:
    operations = _prefixed(doc, prefix)
    assert operations
    for name, operation in operations:
        assert "422" not in operation["responses"], name
        assert "validation failed" in operation["responses"]["400"]["description"], name
    assert all("422" in operation["responses"] for _, operation in _prefixed(doc, "/api/v1/agents"))


def test_every_coze_answer_documents_its_logid_header(doc: dict[str, Any]) -> None:
    operations = _prefixed(doc, "/coze/")
    assert any(operation.get("x-stratus-streaming") for _, operation in operations)
    for name, operation in operations:
        for status, answer in operation["responses"].items():
            assert "X-Tt-Logid" in answer.get("headers", {}), (name, status)
    assert all("X-Tt-Logid" not in answer.get("headers", {}) for _, operation in _prefixed(doc, "/dify/")
               for answer in operation["responses"].values())


def test_coze_s_workflow_run_answer_is_described_whole(doc: dict[str, Any]) -> None:
    """Coze puts execute_id, debug_url and usage beside data: the answer's schema is the whole
    body, not the dialect's envelope around a data model."""
    from shared.facades.coze.workflows import CozeWorkflowRunAnswer

    answer = _schema(doc, _ok(doc["paths"]["/coze/v1/workflow/run"]["post"])["application/json"]["schema"])
    assert {"code", "msg", "data", "execute_id", "debug_url", "usage", "detail"} <= set(answer["properties"])
    assert {"data", "execute_id", "usage", "detail"} <= set(answer["required"])
    assert answer == _schema(doc, {"$ref": "#/components/schemas/" + CozeWorkflowRunAnswer.__name__})


def test_coze_s_workflow_streams_document_their_ids_and_its_chat_streams_none(doc: dict[str, Any]) -> None:
    for path in ("/coze/v1/workflow/stream_run", "/coze/v1/workflow/stream_resume"):
        schema = _ok(doc["paths"][path]["post"])[EVENT_STREAM]["schema"]
        assert "`id:<n>`" in schema["description"]
        assert set(_event_items(doc, path, "post")) == {"Message", "Error", "Interrupt", "Done"}
        assert all("id" in item["required"] for item in schema["oneOf"])
    chat = _ok(doc["paths"]["/coze/v3/chat"]["post"])[EVENT_STREAM]["schema"]
    assert "(no ids)" in chat["description"]
    assert not any("id" in item["properties"] for item in chat["oneOf"])
