"""The edge of the API under bad input (docs/architecture.md §7.4): whatever a client sends, it
gets a 4xx that says what to fix, never a 5xx, on both HTTP stacks (the API functions behind
the local API Gateway, and the streaming chat app on its function URL prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from infra.local.gateway import LocalGateway, streaming_mounts
from infra.local.invoker import LocalInvoker
from shared.chat.wiring import reset_chat_service
from shared.config import get_settings
from shared.validation import INT4_MAX, INT8_MAX, MAX_JSON_DEPTH
from tests.integration.conftest import API_KEY, bearer
from tests.integration.test_api_platform import assert_error
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def edge_client(app_env: None, kms: str) -> Iterator[TestClient]:
    # The API functions and the streaming chat app, behind one local gateway.
    reset_chat_service()
    with TestClient(LocalGateway(LocalInvoker(), mounts=streaming_mounts()), base_url="http://127.0.0.1:8000") as c:
        yield c
    reset_chat_service()


@pytest.fixture
def owner(edge_client: TestClient, new_tenant: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    data = new_tenant()
    return {"headers": bearer(data["owner_token"]), "tenant_id": data["tenant"]["id"]}


def _model(client: TestClient, headers: dict[str, str], fake: FakeOpenAI, name: str = "edgy") -> dict[str, Any]:
    body = {"name": name, "protocol": "openai", "provider_model": "gpt-edgy", "base_url": fake.base_url,
            "api_key": API_KEY, "test": False}
    response = client.post("/api/v1/models", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def _fields(body: dict[str, Any]) -> list[str]:
    return [field["field"] for field in body["details"]["fields"]]


# Depth ---------------------------------------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("depth", [500, 1000, 100_000])
def test_deeply_nested_json_is_refused_on_both_stacks(edge_client: TestClient, owner: dict[str, Any],
                                                      depth: int) -> None:
    headers = {**owner["headers"], "content-type": "application/json"}
    routes = [("POST", "/api/v1/agents"), ("POST", "/api/v1/knowledge-bases"),
              ("PATCH", f"/api/v1/conversations/{uuid.uuid4()}"), ("PUT", "/api/v1/models/defaults"),
              ("POST", "/api/v1/chat")]
    for method, path in routes:
        response = edge_client.request(method, path, content=_nested(depth), headers=headers)
        body = assert_error(response, 400, "biz_json_too_deep")
        assert body["details"] == {"max_depth": MAX_JSON_DEPTH} and str(MAX_JSON_DEPTH) in body["message"], path


def test_nesting_within_the_limit_is_validated_as_usual(edge_client: TestClient, owner: dict[str, Any]) -> None:
    headers = {**owner["headers"], "content-type": "application/json"}
    for path in ("/api/v1/agents", "/api/v1/chat"):
        response = edge_client.post(path, content=_nested(MAX_JSON_DEPTH - 1), headers=headers)
        assert_error(response, 422, "biz_validation_failed")
    # Brackets inside strings are text, not nesting.
    deep_text = {"name": "[" * 5000, "description": "{" * 5000}
    assert_error(edge_client.post("/api/v1/knowledge-bases", json=deep_text, headers=owner["headers"]), 422,
                 "biz_validation_failed")


# Integers the columns cannot hold --------------------------------------------------------------
def test_integers_beyond_their_column_are_422(edge_client: TestClient, owner: dict[str, Any],
                                             admin_token: str) -> None:
    headers = owner["headers"]
    conversation = edge_client.post("/api/v1/conversations", json={"agent_id": "builtin-quick-answer"},
                                    headers=headers).json()["data"]
    path = f"/api/v1/conversations/{conversation['id']}"
    body = assert_error(edge_client.patch(path, json={"name": "x", "version": INT4_MAX + 1}, headers=headers),
                        422, "biz_validation_failed")
    assert _fields(body) == ["body.version"]
    body = assert_error(edge_client.put("/api/v1/models/defaults", json={"chat_model": "gpt-4o",
                                                                         "version": INT4_MAX + 1},
                                        headers=headers), 422, "biz_validation_failed")
    assert _fields(body) == ["body.version"]
    quota = f"/api/v1/tenants/{owner['tenant_id']}/quota"
    for value in (INT8_MAX + 1, 2**64, 10**30):
        body = assert_error(edge_client.put(quota, json={"monthly_tokens_soft": value, "monthly_tokens_hard": value},
                                            headers=bearer(admin_token)), 422, "biz_validation_failed")
        assert _fields(body) == ["body.monthly_tokens_soft", "body.monthly_tokens_hard"]
    # The largest values the columns hold are accepted.
    assert edge_client.patch(path, json={"name": "x", "version": INT4_MAX},
                             headers=headers).json()["code"] == "conversation_version_conflict"
    ok = edge_client.put(quota, json={"monthly_tokens_hard": INT8_MAX}, headers=bearer(admin_token))
    assert ok.status_code == 200, ok.text


# URLs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://[::1/", "http://exa mple/", "http://host:99999/", "http://:80/v1",
                                 "https://bad_host..name/"])
def test_malformed_base_urls_are_422_naming_the_field(edge_client: TestClient, owner: dict[str, Any],
                                                     fake: FakeOpenAI, url: str) -> None:
    headers = owner["headers"]
    model = _model(edge_client, headers, fake)
    created = edge_client.post("/api/v1/models", json={"name": "broken", "protocol": "openai", "provider_model": "x",
                                                       "base_url": url, "api_key": API_KEY, "test": False},
                               headers=headers)
    assert _fields(assert_error(created, 422, "biz_validation_failed")) == ["body.base_url"]
    patched = edge_client.patch(f"/api/v1/models/{model['name']}", json={"base_url": url, "test": False},
                                headers=headers)
    assert _fields(assert_error(patched, 422, "biz_validation_failed")) == ["body.base_url"]


# Strict types ----------------------------------------------------------------------------------
def test_wrong_json_types_are_refused(edge_client: TestClient, owner: dict[str, Any]) -> None:
    headers = owner["headers"]
    conversation = edge_client.post("/api/v1/conversations", json={"agent_id": "builtin-quick-answer"},
                                    headers=headers).json()["data"]
    path = f"/api/v1/conversations/{conversation['id']}"
    for version in ("2", 1.0, True):
        body = assert_error(edge_client.patch(path, json={"name": "x", "version": version}, headers=headers), 422,
                            "biz_validation_failed")
        assert _fields(body) == ["body.version"]
    for top_k in (True, "5", 5.0):
        body = assert_error(edge_client.post("/api/v1/knowledge-bases", json={"name": "kb", "retrieval": {
            "top_k": top_k}}, headers=headers), 422, "biz_validation_failed")
        assert _fields(body) == ["body.retrieval.top_k"]
    body = assert_error(edge_client.post("/api/v1/knowledge-bases", json={"name": "kb", "chunking": {
        "chunk_size": "200"}}, headers=headers), 422, "biz_validation_failed")
    assert _fields(body) == ["body.chunking.chunk_size"]
    body = assert_error(edge_client.post("/api/v1/chat", json={"agent_id": "builtin-quick-answer", "message": "hi",
                                                               "stream": "false"}, headers=headers),
                        422, "biz_validation_failed")
    assert _fields(body) == ["body.stream"]
    # NaN and infinities are no JSON numbers a model setting can hold.
    body = assert_error(edge_client.post("/api/v1/agents", content=b'{"name": "n", "config": {"model": '
                                                                   b'{"temperature": NaN}}}',
                                         headers={**headers, "content-type": "application/json"}),
                        422, "biz_validation_failed")
    assert _fields(body) == ["body.config.model.temperature"]
    # What JSON carries as strings still parses: ids, times, enum members.
    assert edge_client.patch(path, json={"name": "renamed", "version": 1}, headers=headers).status_code == 200
    key = edge_client.post("/api/v1/api-keys", json={"name": "k", "expires_at": "2031-01-01T00:00:00Z"},
                           headers=headers)
    assert key.status_code == 201, key.text


def test_query_datetimes_must_be_iso(edge_client: TestClient, owner: dict[str, Any]) -> None:
    headers = owner["headers"]
    for value in ("0.5", "1700000000", "-1", "1e9"):
        body = assert_error(edge_client.get(f"/api/v1/usage?to={value}", headers=headers), 422,
                            "biz_validation_failed")
        assert _fields(body) == ["query.to"], value
    ok = edge_client.get("/api/v1/usage?from=2026-01-01T00:00:00Z&to=2026-01-31", headers=headers)
    assert ok.status_code == 200, ok.text


# Errors a newcomer can act on ------------------------------------------------------------------
def test_a_form_encoded_or_text_body_says_to_send_json(edge_client: TestClient, owner: dict[str, Any]) -> None:
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        headers = {**owner["headers"], "content-type": content_type}
        for path in ("/api/v1/agents", "/api/v1/chat"):
            response = edge_client.post(path, content=b'{"name":"noct"}', headers=headers)
            body = assert_error(response, 415, "biz_unsupported_media_type")
            assert "content-type: application/json" in body["message"]
            assert body["details"] == {"expected_content_type": "application/json", "content_type": content_type}
    # JSON under its own name (with a charset, or a +json type) is JSON.
    headers = {**owner["headers"], "content-type": "application/json; charset=utf-8"}
    assert edge_client.post("/api/v1/agents", content=b'{"name":"noct"}', headers=headers).status_code == 201


def test_authorization_without_bearer_says_so(edge_client: TestClient, owner: dict[str, Any]) -> None:
    token = owner["headers"]["Authorization"].removeprefix("Bearer ")
    for value in (token, f"Token {token}", "Basic abc"):
        for method, path in (("GET", "/api/v1/agents"), ("POST", "/api/v1/chat")):
            response = edge_client.request(method, path, headers={"Authorization": value},
                                           json={"agent_id": "builtin-quick-answer", "message": "hi"}
                                           if method == "POST" else None)
            body = assert_error(response, 401, "auth_invalid_token")
            assert "Bearer" in body["message"] and body["details"] == {"expected": "Authorization: Bearer <token>"}
    # A bearer token that is wrong is only invalid: nothing to say about the header's form.
    body = assert_error(edge_client.get("/api/v1/agents", headers=bearer("pat_" + "x" * 40)), 401,
                        "auth_invalid_token")
    assert "Bearer" not in body["message"]


def test_a_body_over_the_limit_names_the_upload_flow(edge_client: TestClient, owner: dict[str, Any]) -> None:
    text = "word " * (get_settings().max_body_bytes // 5 + 10)
    response = edge_client.post(f"/api/v1/knowledge-bases/{uuid.uuid4()}/documents",
                                json={"name": "big.txt", "text": text}, headers=owner["headers"])
    body = assert_error(response, 413, "biz_payload_too_large")
    assert "content_type" in body["message"] and "size" in body["message"] and "upload" in body["message"]
    # Elsewhere the 413 has nothing to suggest.
    other = assert_error(edge_client.post("/api/v1/agents", json={"name": text}, headers=owner["headers"]), 413,
                         "biz_payload_too_large")
    assert "upload" not in other["message"]


def test_an_unpublished_agent_names_the_draft_field(edge_client: TestClient, owner: dict[str, Any],
                                                   fake: FakeOpenAI) -> None:
    headers = owner["headers"]
    _model(edge_client, headers, fake)
    agent = edge_client.post("/api/v1/agents", json={"name": "draft only", "config": {"model": {"name": "edgy"}}},
                             headers=headers).json()["data"]
    response = edge_client.post("/api/v1/chat", json={"agent_id": agent["id"], "message": "hi", "stream": False},
                                headers=headers)
    body = assert_error(response, 409, "agent_not_published")
    assert '"draft": true' in body["message"] and body["details"]["field"] == "draft"
