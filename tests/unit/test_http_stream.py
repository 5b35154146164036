"""The streaming functions' HTTP layer (shared/http/stream.py): an app is bound to its catalog
entry (it serves exactly the routes declared, no more, no fewer), parses and checks each
request from the route's declaration, and streams Server-Sent Events in the route's dialect."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel, Field
from starlette.testclient import TestClient

from functions.catalog import by_name
from shared.auth.principal import Principal
from shared.cache.ports import StreamEvent
from shared.catalog import Function, FunctionUrl, SseEvent, StreamRoute
from shared.errors import Conflict, Forbidden
from shared.http.context import current_principal, current_request_id
from shared.http.dialect import STRATUS
from shared.http.stream import Answer, StreamApp, StreamCall, stream_app

_MODULE = __name__
PRINCIPAL = Principal("api_key", uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"probe:run"}))


class ProbeBody(BaseModel):
    text: str = Field(min_length=1)


class ProbeQuery(BaseModel):
    user: str | None = None
    last_event_id: str | None = None


class ProbeOut(BaseModel):
    echoed: str


class Tick(BaseModel):
    n: int


ROUTES = (
    StreamRoute("POST", "/probe", "probe:run", body=f"{_MODULE}:ProbeBody", response=f"{_MODULE}:ProbeOut",
                events=(SseEvent("tick", f"{_MODULE}:Tick"), SseEvent("done", f"{_MODULE}:Tick"))),
    StreamRoute("GET", "/probe/{item_id}/events", "probe:run", query=f"{_MODULE}:ProbeQuery",
                events=(SseEvent("tick", f"{_MODULE}:Tick"),)),
    StreamRoute("POST", "/probe/{item_id}/stop", "probe:run", query=f"{_MODULE}:ProbeQuery",
                response=f"{_MODULE}:ProbeOut", status=202),
)


def probe_function(*routes: StreamRoute) -> Function:
    return Function("probe", _MODULE, "test", FunctionUrl(("/probe",), routes=routes or ROUTES))


def allow_all(headers: Mapping[str, str], permission: str) -> tuple[Principal, dict[str, str]]:
    if headers.get("authorization") != "Bearer ok":
        raise Forbidden(code="auth_permission_denied")
    assert permission == "probe:run"
    return PRINCIPAL, {"RateLimit-Remaining": "7"}


def probe_app(api: StreamApp | None = None) -> StreamApp:
    api = api or stream_app(probe_function(), authenticate=allow_all, heartbeat_s=lambda: 0.05)

    @api.route("POST", "/probe")
    async def start(call: StreamCall[ProbeBody, None]) -> Answer:
        assert current_principal() is call.principal and current_request_id() == call.request_id
        if call.body.text == "busy":
            raise Conflict("busy", code="probe_busy")
        if call.body.text == "crash":
            raise RuntimeError("a bug")
        if call.body.text == "json":
            return call.ok(ProbeOut(echoed=call.body.text))

        def produce(emit: Any) -> None:
            import time

            emit(StreamEvent("1-0", "tick", {"n": 1}))
            # Idle for many heartbeat periods (0.05 s): enough that the connection's loop, even on
            # a loaded machine, starts sending before the last event is queued.
            time.sleep(0.5)
            emit(StreamEvent("2-0", "done", {"n": 2}))

        return call.stream(produce, "probe")

    @api.route("GET", "/probe/{item_id}/events")
    async def follow(call: StreamCall[None, ProbeQuery]) -> Answer:
        after = call.last_event_id
        return call.follow([[StreamEvent("5-0", "tick", {"n": 5, "after": after, "item": call.path_params["item_id"],
                                                          "user": call.query.user})]], "probe-replay")

    @api.route("POST", "/probe/{item_id}/stop")
    async def stop(call: StreamCall[None, ProbeQuery]) -> Answer:
        return call.ok(ProbeOut(echoed=call.path_params["item_id"]))

    return api


AUTH = {"Authorization": "Bearer ok"}


def frames(raw: str) -> list[dict[str, Any]]:
    out = []
    for block in raw.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append({**fields, "data": json.loads(fields["data"])})
    return out


def test_sse_frames() -> None:
    # (Moved from test_chat_prompt.py with the wire format: Stratus's dialect serialises events.)
    frame = STRATUS.event(StreamEvent("17-0", "message.delta", {"text": "a\nb"})).decode()
    assert frame == 'event: message.delta\nid: 17-0\ndata: {"text":"a\\nb"}\n\n'
    assert STRATUS.heartbeat() == b"event: heartbeat\ndata: {}\n\n"
    assert STRATUS.event(StreamEvent("", "error", {"code": "x"})) == b'event: error\ndata: {"code":"x"}\n\n'


def test_a_handler_for_a_route_the_catalog_does_not_declare_fails_the_build() -> None:
    api = stream_app(probe_function(), authenticate=allow_all)
    with pytest.raises(LookupError, match="GET /probe is not a route of probe"):
        api.route("GET", "/probe")
    with pytest.raises(LookupError, match="not a route"):
        api.route("POST", "/probe/{item_id}/cancel")
    probe_app(api)
    with pytest.raises(ValueError, match="has a handler already"):
        api.route("POST", "/probe")


def test_a_declared_route_without_its_handler_fails_the_build() -> None:
    api = stream_app(probe_function(), authenticate=allow_all)

    @api.route("POST", "/probe")
    async def start(call: StreamCall[Any, Any]) -> Answer:
        raise AssertionError

    missing = r"does not serve: GET /probe/\{item_id\}/events, POST /probe/\{item_id\}/stop"
    with pytest.raises(LookupError, match=missing):
        api.asgi()


def test_a_wrong_model_reference_fails_the_build() -> None:
    route = StreamRoute("POST", "/probe", "probe:run", body=f"{_MODULE}:Nothing")
    api = stream_app(probe_function(route), authenticate=allow_all)

    @api.route("POST", "/probe")
    async def start(call: StreamCall[Any, Any]) -> Answer:
        raise AssertionError

    with pytest.raises(TypeError, match="not a pydantic model"):
        api.asgi()


def test_only_http_functions_of_the_right_kind() -> None:
    with pytest.raises(TypeError, match="not a streaming"):
        stream_app(by_name()["health"])


def test_the_chat_app_serves_exactly_its_catalog_routes() -> None:
    from functions.chat.app import app

    entry = by_name()["chat"]
    assert isinstance(entry.trigger, FunctionUrl)
    assert sorted((r.method, r.path) for r in app.routes) == sorted((r.method, r.path) for r in entry.trigger.routes)
    client = TestClient(app)
    message = f"/api/v1/chat/{uuid.uuid4()}"
    # Every declared route is served: it checks the bearer token first (no token: 401).
    for route in entry.trigger.routes:
        answer = client.request(route.method, route.path.replace("/api/v1/chat/{message_id}", message))
        assert answer.status_code == 401, (route.path, answer.text)
        if route.dialect == "openai":
            # A facade's route answers in its API's error shape (docs/adr/0042).
            assert answer.json()["error"]["code"] == "invalid_api_key" and answer.headers["x-request-id"]
            continue
        if route.dialect == "coze":
            # Coze's error shape, its logid the request's id (docs/adr/0043).
            assert answer.json()["code"] == 4100 and answer.json()["detail"]["stratus_code"] == "auth_missing_token"
            assert answer.headers["x-tt-logid"] == answer.headers["x-request-id"] == answer.json()["detail"]["logid"]
            continue
        if route.dialect == "dify":
            assert answer.json() == {"code": "unauthorized", "message": answer.json()["message"], "status": 401}
            assert answer.headers["x-request-id"]
            continue
        assert answer.json()["code"] == "auth_missing_token"
        assert answer.headers["x-request-id"] == answer.json()["request_id"]
    assert client.get(f"{message}/answers").json()["code"] == "biz_route_not_found"
    # An unknown path under a facade's prefix answers in the facade's shape.
    unknown = client.get("/openai/v1/chat/completions/x")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "biz_route_not_found"
    unknown_coze = client.get("/coze/v3/chat/answers")
    assert unknown_coze.status_code == 404 and unknown_coze.json()["code"] == 4200
    wrong = client.get("/api/v1/chat")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    # The Web Adapter's readiness check: infrastructure, answered without auth or a data store.
    ready = client.get(entry.trigger.readiness_path)
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}
    assert entry.trigger.readiness_path == "/api/v1/chat/_ready"


@pytest.fixture
def client() -> TestClient:
    return TestClient(probe_app().asgi())


def test_requests_are_authenticated_and_parsed_from_the_route(client: TestClient) -> None:
    denied = client.post("/probe", json={"text": "hi"})
    assert denied.status_code == 403 and denied.json()["code"] == "auth_permission_denied"
    invalid = client.post("/probe", json={"text": ""}, headers=AUTH)
    assert invalid.status_code == 422 and invalid.json()["details"]["fields"][0]["field"] == "body.text"
    malformed = client.post("/probe", content=b"{nope", headers=AUTH)
    assert malformed.status_code == 400 and malformed.json()["code"] == "biz_malformed_json"
    assert client.post("/probe", json={"text": "busy"}, headers=AUTH).json()["code"] == "probe_busy"
    crash = client.post("/probe", json={"text": "crash"}, headers=AUTH)
    assert crash.status_code == 500 and crash.json()["code"] == "sys_internal_error"


def test_json_answers_take_the_routes_status_and_carry_the_rate_limit(client: TestClient) -> None:
    started = client.post("/probe", json={"text": "json"}, headers=AUTH)
    assert started.status_code == 200 and started.json()["data"] == {"echoed": "json"}
    assert started.headers["ratelimit-remaining"] == "7"
    stopped = client.post("/probe/abc/stop", headers=AUTH)
    assert stopped.status_code == 202 and stopped.json()["data"] == {"echoed": "abc"}
    assert stopped.json()["meta"]["request_id"] == stopped.headers["x-request-id"]
    # Under the Web Adapter the request id is Lambda's (the forwarded request context).
    lambda_id = client.post("/probe/abc/stop", headers={**AUTH, "x-amzn-request-context": '{"requestId": "r-1"}'})
    assert lambda_id.headers["x-request-id"] == "r-1" == lambda_id.json()["meta"]["request_id"]


def test_request_ids_have_one_shape_on_every_function(client: TestClient) -> None:
    # API Gateway's shape (16 base64 characters), as the API functions behind it answer.
    import re
    import uuid

    from infra.local.gateway import build_event
    from shared.http.context import request_id_of

    shape = re.compile(r"^[A-Za-z0-9+/]{16}$")
    local = client.post("/probe/abc/stop", headers=AUTH).headers["x-request-id"]
    gateway = request_id_of(build_event({"type": "http", "method": "GET", "path": "/x"}, b"", "$default", None))
    assert shape.match(local) and shape.match(gateway), (local, gateway)
    # A function URL's request context carries Lambda's UUID: answered in the same shape.
    lambda_uuid = str(uuid.uuid4())
    forwarded = client.post("/probe/abc/stop",
                            headers={**AUTH, "x-amzn-request-context": json.dumps({"requestId": lambda_uuid})})
    assert shape.match(forwarded.headers["x-request-id"])
    assert forwarded.headers["x-request-id"] == forwarded.json()["meta"]["request_id"]


def test_streams_send_events_and_heartbeats_until_the_last(client: TestClient) -> None:
    answer = client.post("/probe", json={"text": "stream"}, headers=AUTH)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["ratelimit-remaining"] == "7" and answer.headers["x-request-id"]
    events = frames(answer.text)
    assert events[0] == {"event": "tick", "id": "1-0", "data": {"n": 1}}
    assert events[-1] == {"event": "done", "id": "2-0", "data": {"n": 2}}
    beats = events[1:-1]
    assert beats and all(beat == {"event": "heartbeat", "data": {}} for beat in beats)


def test_replays_resume_from_the_header_or_the_query(client: TestClient) -> None:
    by_header = client.get("/probe/x1/events?user=ann&last_event_id=1-0", headers={**AUTH, "Last-Event-ID": "4-0"})
    assert frames(by_header.text)[0]["data"] == {"n": 5, "after": "4-0", "item": "x1", "user": "ann"}
    by_query = client.get("/probe/x1/events?last_event_id=3-0", headers=AUTH)
    assert frames(by_query.text)[0]["data"]["after"] == "3-0"


def test_unknown_paths_and_methods_answer_in_the_envelope(client: TestClient) -> None:
    missing = client.get("/probe/x1/nothing", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == "biz_route_not_found"
    wrong = client.delete("/probe/x1/stop", headers=AUTH)
    assert wrong.status_code == 405 and wrong.json()["details"]["allowed"] == ["POST"]
    assert wrong.headers["allow"] == "POST"


def test_the_event_source_ends_on_its_last_event_type() -> None:
    from shared.http.stream import EventSource

    async def run() -> list[bytes]:
        source = EventSource(last=frozenset({"end"}))
        source.emit(StreamEvent("1-0", "done", {}))
        source.emit(StreamEvent("2-0", "end", {}))
        source.emit(StreamEvent("3-0", "never", {}))
        return [frame async for frame in source.frames(STRATUS.translator(), 1.0)]

    sent = asyncio.run(run())
    assert [frame.split(b"\n")[0] for frame in sent] == [b"event: done", b"event: end"]
