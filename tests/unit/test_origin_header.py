"""The edge's origin header (shared/auth/origin.py, docs/adr/0047): the authorizer, the HTTP
middleware and the streaming apps refuse a request that did not come through CloudFront before
any other work; where no secret is set (the local runtime) nothing is enforced."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping

import pytest
from starlette.testclient import TestClient

from infra.local.invoker import LocalContext
from shared.auth.origin import ORIGIN_HEADER, from_edge
from shared.auth.principal import Principal
from shared.catalog import Function, FunctionUrl, StreamRoute
from shared.config import reset_settings
from shared.http.stream import Answer, StreamCall, stream_app
from tests.support.events import http_event, load_event

SECRET = "s3cret-origin-value-0123456789"


@pytest.fixture
def edge_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ORIGIN_SECRET", SECRET)
    reset_settings()
    yield
    monkeypatch.undo()
    reset_settings()


def test_from_edge_compares_the_header() -> None:
    assert from_edge({ORIGIN_HEADER: SECRET}, SECRET)
    assert from_edge({"X-Stratus-Origin-Verify": SECRET}, SECRET), "header names are case-insensitive"
    assert not from_edge({ORIGIN_HEADER: SECRET + "x"}, SECRET)
    assert not from_edge({ORIGIN_HEADER: ""}, SECRET)
    assert not from_edge({}, SECRET)
    assert not from_edge(None, SECRET)
    # No secret: no edge to come through (the local runtime).
    assert from_edge({}, None)


def test_authorizer_denies_a_request_past_the_edge_before_any_token_work(edge_secret: None) -> None:
    from functions.platform.authorizer import handler

    event = load_event("apigw_authorizer_v2")
    # A token that would need the database to resolve: never looked at without the header.
    event["headers"]["authorization"] = "Bearer pat_" + "x" * 40
    assert handler(event, LocalContext("authorizer", 256, 10)) == {"isAuthorized": False}
    event["headers"][ORIGIN_HEADER] = "wrong"
    assert handler(event, LocalContext("authorizer", 256, 10)) == {"isAuthorized": False}
    event["headers"][ORIGIN_HEADER] = SECRET
    del event["headers"]["authorization"]
    assert handler(event, LocalContext("authorizer", 256, 10)) == {
        "isAuthorized": True, "context": {"auth_error": "auth_missing_token"}}


def test_http_middleware_refuses_public_routes_past_the_edge(edge_secret: None) -> None:
    # /health has no authorizer: the middleware is what closes it (it would reach the database).
    from functions.platform.health import handler

    result = handler(http_event("GET", "/health"), LocalContext("health", 256, 10))
    assert result["statusCode"] == 403
    assert json.loads(result["body"])["code"] == "auth_origin_forbidden"


def test_http_middleware_checks_the_header_before_authentication(edge_secret: None) -> None:
    from functions.tenancy.get_current_tenant import handler

    event = http_event("GET", "/api/v1/tenants/current", authorizer={"auth_error": "auth_missing_token"})
    assert handler(event, LocalContext("tenants-get-current", 256, 10))["statusCode"] == 403
    event["headers"][ORIGIN_HEADER] = SECRET
    assert handler(event, LocalContext("tenants-get-current", 256, 10))["statusCode"] == 401


def test_without_a_secret_nothing_is_enforced() -> None:
    from functions.tenancy.get_current_tenant import handler

    event = http_event("GET", "/api/v1/tenants/current", authorizer={"auth_error": "auth_missing_token"})
    assert handler(event, LocalContext("tenants-get-current", 256, 10))["statusCode"] == 401


_MODULE = __name__


def _probe_client(calls: list[str]) -> TestClient:
    fn = Function("probe", _MODULE, "test", FunctionUrl(("/probe",), routes=(StreamRoute("POST", "/probe", "p:r"),)))

    def authenticate(headers: Mapping[str, str], permission: str) -> tuple[Principal, dict[str, str]]:
        calls.append("auth")
        return Principal("api_key", uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"p:r"})), {}

    api = stream_app(fn, authenticate=authenticate)

    @api.route("POST", "/probe")
    async def probe(call: StreamCall[None, None]) -> Answer:
        calls.append("handler")
        return call.ok({"ok": True})

    return TestClient(api.asgi())


def test_streaming_app_refuses_before_auth_and_body(edge_secret: None) -> None:
    calls: list[str] = []
    client = _probe_client(calls)
    answer = client.post("/probe", content=b"x" * 10)
    assert answer.status_code == 403 and answer.json()["code"] == "auth_origin_forbidden"
    assert client.post("/probe", headers={ORIGIN_HEADER: "nope"}).status_code == 403
    assert client.post("/nowhere").status_code == 403, "unknown paths too: nothing answers past the edge"
    assert calls == []
    # The Web Adapter's readiness check comes from inside the container, not through the edge.
    assert client.get("/probe/_ready").status_code == 200
    assert client.post("/probe", headers={ORIGIN_HEADER: SECRET}).status_code == 200
    assert calls == ["auth", "handler"]


def test_streaming_app_without_a_secret_serves_locally() -> None:
    calls: list[str] = []
    assert _probe_client(calls).post("/probe").status_code == 200
    assert calls == ["auth", "handler"]
