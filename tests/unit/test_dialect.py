"""A route's dialect (catalog: ``Http.dialect``, ``StreamRoute.dialect``) controls the shape of
every answer it gives, success and error, errors raised before routing included, on both HTTP
stacks: a small test-only dialect (Coze-like: errors answer HTTP 200 with a code) proves it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, Field
from starlette.testclient import TestClient

from infra.local.invoker import LocalContext
from shared.auth.principal import Principal
from shared.cache.ports import StreamEvent
from shared.catalog import Function, FunctionUrl, Http, SseEvent, StreamRoute
from shared.db.paging import Page
from shared.errors import NotFound, StratusError
from shared.http.api import http_app
from shared.http.dialect import DIALECTS, Dialect, ErrorAnswer, EventDoc, dialect_for, sse_frame
from shared.http.openapi import build_openapi
from shared.http.routing import http_routes
from shared.http.stream import Answer, StreamCall, stream_app
from tests.support.events import http_event

_MODULE = __name__


class Terse(Dialect):
    """Errors are HTTP 200 with ``{"ok": false, "err": code}``; success ``{"ok": true, "result"}``;
    events are bare ``data:`` lines carrying their type; the heartbeat is an SSE comment."""

    name = "terse"

    def success(self, data: Any, request_id: str) -> Any:
        return {"ok": True, "result": data.model_dump(mode="json") if isinstance(data, BaseModel) else data}

    def page(self, page: Page[Any], request_id: str) -> Any:
        return {"ok": True, "result": page.items, "more": page.page * page.limit < page.total}

    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        return ErrorAnswer(200, json.dumps({"ok": False, "err": error.code, "rid": request_id}),
                           {"X-Terse-Status": str(error.status), **error.headers})

    def event(self, event: StreamEvent) -> bytes:
        return sse_frame(json.dumps({"type": event.type, **event.data}))

    def heartbeat(self) -> bytes:
        return b": keep-alive\n\n"

    def error_schema(self) -> tuple[str, dict[str, Any]]:
        return "TerseError", {"type": "object", "required": ["ok", "err"]}

    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {"ok": {"const": True}, "result": data}}

    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        return {"oneOf": [{"title": doc.type, "properties": {"data": doc.data}} for doc in events]}


@pytest.fixture(autouse=True)
def terse(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terse]:
    dialect = Terse()
    monkeypatch.setitem(DIALECTS, dialect.name, dialect)
    yield dialect


# --- The HTTP API stack (StratusApp) ----------------------------------------------------------


class Item(BaseModel):
    name: str = Field(min_length=1)


ITEMS = Function("items-create", _MODULE, "test",
                 Http("POST", "/api/v1/items", permission="agent:write", auth=True, dialect="terse"))


def items_app() -> Any:
    app = http_app(ITEMS)

    @app.endpoint
    def create_item(body: Item) -> Response[dict[str, Any]]:
        if body.name == "ghost":
            raise NotFound("No such item", code="item_not_found")
        return app.created(body)

    return app


def invoke(app: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    result = app.lambda_handler()(event, LocalContext("items-create", 256, 10))
    return result["statusCode"], result.get("headers") or {}, json.loads(result["body"])


def _authorized() -> dict[str, Any]:
    from tests.support.events import load_event

    return load_event("apigw_http_v2")["requestContext"]["authorizer"]["lambda"]


def test_an_http_routes_dialect_shapes_its_success_and_its_errors() -> None:
    app = items_app()
    assert app.dialect is dialect_for("terse")
    status, _, body = invoke(app, http_event("POST", "/api/v1/items", body={"name": "kettle"},
                                             authorizer=_authorized()))
    assert (status, body) == (201, {"ok": True, "result": {"name": "kettle"}})
    # A domain error raised by the handler.
    status, headers, body = invoke(app, http_event("POST", "/api/v1/items", body={"name": "ghost"},
                                                   authorizer=_authorized()))
    assert status == 200 and body["ok"] is False and body["err"] == "item_not_found"
    assert headers["X-Terse-Status"] == "404" and headers["X-Request-Id"] == body["rid"]
    # Validation by the resolver.
    status, headers, body = invoke(app, http_event("POST", "/api/v1/items", body={"name": ""},
                                                   authorizer=_authorized()))
    assert (status, body["err"], headers["X-Terse-Status"]) == (200, "biz_validation_failed", "422")
    # Before the resolver runs: the auth middleware.
    status, headers, body = invoke(app, http_event("POST", "/api/v1/items", body={"name": "kettle"},
                                                   authorizer={"auth_error": "auth_missing_token"}))
    assert (status, body["err"], headers["X-Terse-Status"]) == (200, "auth_missing_token", "401")


def test_the_default_route_answers_in_the_dialect_of_the_paths_routes() -> None:
    routes = http_routes([ITEMS])
    error, dialect = routes.unmatched("GET", "/api/v1/items")
    assert (error.status, dialect) == (405, "terse")
    result = dialect_for(dialect).error_result(error, "r-1")
    assert result["statusCode"] == 200 and json.loads(result["body"]) == {"ok": False, "err": "biz_method_not_allowed",
                                                                         "rid": "r-1"}
    assert result["headers"]["Allow"] == "POST"
    # A path no route knows: the default (Stratus) shape.
    error, dialect = routes.unmatched("GET", "/api/v1/nothing")
    assert (error.status, dialect) == (404, "stratus")
    assert set(json.loads(dialect_for(dialect).error_result(error, "r-2")["body"])) == {
        "code", "message", "details", "request_id"}


# --- The streaming stack ----------------------------------------------------------------------


class Tick(BaseModel):
    n: int


PRINCIPAL = Principal("api_key", uuid.uuid4(), tenant_id=uuid.uuid4())
TICKER = Function("ticker", _MODULE, "test", FunctionUrl(("/tick",), routes=(
    StreamRoute("POST", "/tick", "x:run", body=f"{_MODULE}:Tick", response=f"{_MODULE}:Tick",
                events=(SseEvent("tick", f"{_MODULE}:Tick"),), dialect="terse"),
)))


def authenticate(headers: Mapping[str, str], permission: str) -> tuple[Principal, dict[str, str]]:
    return PRINCIPAL, {}


def ticker() -> Any:
    api = stream_app(TICKER, authenticate=authenticate, heartbeat_s=lambda: 0.05)

    @api.route("POST", "/tick")
    async def tick(call: StreamCall[Tick, None]) -> Answer:
        if call.body.n < 0:
            raise NotFound(code="tick_not_found")
        if call.body.n == 0:
            return call.ok(call.body)

        def produce(emit: Any) -> None:
            import time

            time.sleep(0.12)
            emit(StreamEvent("1-0", "tick", {"n": call.body.n}))
            emit(StreamEvent("2-0", "done", {}))

        return call.stream(produce, "ticks")

    return api.asgi()


def test_a_stream_routes_dialect_shapes_its_answers_events_and_errors() -> None:
    client = TestClient(ticker())
    assert client.post("/tick", json={"n": 0}).json() == {"ok": True, "result": {"n": 0}}
    missing = client.post("/tick", json={"n": -1})
    assert missing.status_code == 200 and missing.json()["err"] == "tick_not_found"
    assert missing.headers["x-terse-status"] == "404"
    invalid = client.post("/tick", json={"n": "many"})
    assert (invalid.status_code, invalid.json()["err"]) == (200, "biz_validation_failed")
    streamed = client.post("/tick", json={"n": 3}).text
    blocks = [block for block in streamed.split("\n\n") if block]
    assert blocks[-2:] == ['data: {"type": "tick", "n": 3}', 'data: {"type": "done"}']
    assert blocks[0] == ": keep-alive"
    # Before routing: an unknown path and a wrong method under the function's prefix.
    assert client.get("/tick/nothing").json()["err"] == "biz_route_not_found"
    wrong = client.get("/tick")
    assert wrong.json()["err"] == "biz_method_not_allowed" and wrong.headers["allow"] == "POST"


def test_openapi_documents_a_route_in_its_dialect() -> None:
    doc = build_openapi([TICKER])
    operation = doc["paths"]["/tick"]["post"]
    assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TerseError"}
    assert doc["components"]["schemas"]["TerseError"] == {"type": "object", "required": ["ok", "err"]}
    answer = operation["responses"]["200"]["content"]
    assert answer["application/json"]["schema"]["properties"]["ok"] == {"const": True}
    assert [item["title"] for item in answer["text/event-stream"]["schema"]["oneOf"]] == ["tick"]


def test_an_unknown_dialect_fails_when_the_app_is_built() -> None:
    import dataclasses

    with pytest.raises(LookupError, match="no dialect named 'nope'"):
        http_app(dataclasses.replace(ITEMS, trigger=Http("POST", "/x", auth=False, dialect="nope")))
