"""The OpenAPI document (shared/http/openapi.py) is generated from the catalog: every HTTP API
route, and the routes of the streaming functions (function URLs behind the edge)."""

from __future__ import annotations

from functions.catalog import FunctionUrl, Http, http_functions, streaming_functions
from shared.http.openapi import EVENT_STREAM, build_openapi, streaming_paths


def test_every_http_route_is_an_operation() -> None:
    doc = build_openapi()
    assert doc["openapi"] == "3.1.0"
    for fn in http_functions():
        assert isinstance(fn.trigger, Http)
        operation = doc["paths"][fn.trigger.path][fn.trigger.method.lower()]
        assert operation["operationId"] == fn.name
        assert ("bearerAuth" in str(operation["security"])) is fn.trigger.auth


def test_streaming_routes_are_operations_too() -> None:
    paths = build_openapi()["paths"]
    for fn in streaming_functions():
        assert isinstance(fn.trigger, FunctionUrl)
        for route in fn.trigger.routes:
            operation = paths[route.path][route.method.lower()]
            assert operation["x-stratus-permission"] == route.permission
            assert operation["security"] == [{"bearerAuth": []}]
            assert operation["summary"] == route.summary
            assert operation["tags"] == [route.tag]
            assert operation["x-stratus-streaming"] is True
            assert operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
                "ErrorEnvelope")
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids)), "operation ids are unique"


def _ok(operation: dict) -> dict:
    (status,) = [s for s in operation["responses"] if s.startswith("2")]
    return dict(operation["responses"][status]["content"])


def test_chat_streams_its_answer_and_its_events() -> None:
    paths = build_openapi()["paths"]
    send = paths["/api/v1/chat"]["post"]
    assert send["operationId"] == "chat"
    # An SSE stream, or the final message with "stream": false.
    assert set(_ok(send)) == {EVENT_STREAM, "application/json"}
    assert send["requestBody"]["required"] is True
    events = paths["/api/v1/chat/{message_id}/events"]["get"]
    assert set(_ok(events)) == {EVENT_STREAM}
    assert {(p["name"], p["in"]) for p in events["parameters"]} == {("message_id", "path"), ("Last-Event-ID", "header")}
    cancel = paths["/api/v1/chat/{message_id}/cancel"]["post"]
    assert set(_ok(cancel)) == {"application/json"}
    assert {p["name"] for p in cancel["parameters"]} == {"message_id"}


def test_streaming_paths_need_no_handler_module() -> None:
    # Built from the catalog alone (the StreamRoutes), without the apps.
    assert set(streaming_paths()) == {"/api/v1/chat", "/api/v1/chat/{message_id}/events",
                                      "/api/v1/chat/{message_id}/cancel"}
