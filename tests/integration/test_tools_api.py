"""The tools API through the local gateway (real API Gateway events, the authorizer, the
catalog's handlers) against the embedded PostgreSQL, KMS through moto: tool providers' CRUD
with the optimistic version and soft delete, secrets encrypted in the database and never
returned, invalid documents located, another tenant's providers unseen (404) and hidden by
row-level security; test calls of an OpenAPI tool served by a local HTTP server, of a remote
MCP server (the official SDK's server), and of the built-ins. Loopback is allow-listed for
the test run (tests/conftest.py)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shared.db.database import get_database
from shared.tools.contract import ToolRef
from shared.tools.wiring import tool_runtime
from tests.integration.conftest import bearer
from tests.integration.test_api_platform import assert_error
from tests.support.http_target import HttpTarget
from tests.support.mcp_server import McpTestServer

Sql = Callable[..., list[tuple[Any, ...]]]
API_KEY = "k-" + "s" * 30


def echo_document(target: HttpTarget) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Echo", "version": "1"},
        "servers": [{"url": target.url("")}],
        "paths": {
            "/echo": {"post": {"operationId": "echo", "summary": "Echo a request",
                               "parameters": [{"$ref": "#/components/parameters/Q"}],
                               "requestBody": {"required": True, "content": {"application/json": {
                                   "schema": {"$ref": "#/components/schemas/Msg"}}}}}},
            "/status": {"get": {"operationId": "status", "parameters": [
                {"name": "code", "in": "query", "required": True, "schema": {"type": "integer"}}]}},
            "/redirect": {"get": {"operationId": "redirect", "parameters": [
                {"name": "to", "in": "query", "required": True, "schema": {"type": "string"}}]}},
        },
        "components": {
            "parameters": {"Q": {"name": "q", "in": "query", "schema": {"type": "string"}}},
            "schemas": {"Msg": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}},
        },
    }


@pytest.fixture(scope="module")
def target() -> Iterator[HttpTarget]:
    with HttpTarget() as server:
        yield server


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpTestServer]:
    with McpTestServer(token="mcp-secret-token") as server:
        yield server


@pytest.fixture
def owner(new_tenant: Callable[..., dict[str, Any]], kms: str) -> dict[str, Any]:
    tenant = new_tenant()
    return {**tenant, "headers": bearer(tenant["owner_token"])}


def create(client: TestClient, owner: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/tools", json=body, headers=owner["headers"])
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def openapi_body(target: HttpTarget, **extra: Any) -> dict[str, Any]:
    return {"name": "Echo", "kind": "openapi", "schema": echo_document(target),
            "auth": {"type": "api_key", "in": "header", "name": "X-Api-Key", "value": API_KEY}, **extra}


def test_an_openapi_provider_lists_its_tools_and_keeps_its_key_encrypted(
        client: TestClient, owner: dict[str, Any], target: HttpTarget, admin_sql: Sql) -> None:
    provider = create(client, owner, openapi_body(target))
    assert provider["kind"] == "openapi" and provider["base_url"] == target.url("")
    assert provider["auth"] == {"type": "api_key", "in": "header", "name": "X-Api-Key", "username": None,
                                "configured": True}
    assert provider["tools"] is None  # listed on GET of one provider
    stored = admin_sql("SELECT credentials, auth::text FROM tool_providers WHERE id = %s", (provider["id"],))[0]
    assert stored[0] and API_KEY.encode() not in bytes(stored[0]) and API_KEY not in stored[1]
    got = client.get(f"/api/v1/tools/{provider['id']}", headers=owner["headers"])
    assert got.status_code == 200, got.text
    assert API_KEY not in got.text
    tools = {tool["name"]: tool for tool in got.json()["data"]["tools"]}
    assert sorted(tools) == ["echo", "redirect", "status"]
    echo = tools["echo"]
    assert (echo["method"], echo["path"], echo["ref"]) == ("POST", "/echo", f"{provider['id']}/echo")
    assert echo["parameters"]["required"] == ["body"]
    assert echo["parameters"]["properties"]["body"]["required"] == ["text"]
    listed = client.get("/api/v1/tools?kind=openapi", headers=owner["headers"]).json()
    assert [p["id"] for p in listed["data"]] == [provider["id"]] and listed["pagination"]["total"] == 1
    assert API_KEY not in json.dumps(listed)


def test_a_test_call_sends_the_request_with_its_auth_and_shows_the_result(
        client: TestClient, owner: dict[str, Any], target: HttpTarget) -> None:
    provider = create(client, owner, openapi_body(target))
    target.reset()
    response = client.post(f"/api/v1/tools/{provider['id']}/test", headers=owner["headers"],
                           json={"tool": "echo", "arguments": {"q": "tides", "body": {"text": "hello"}}})
    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert (result["status"], result["tool"], result["details"]["status_code"]) == ("ok", "echo", 200)
    assert result["elapsed_ms"] >= 0 and result["truncated"] is False
    echoed = json.loads(result["output"])
    assert echoed["path"] == "/echo" and echoed["query"] == [["q", "tides"]]
    assert json.loads(base64.b64decode(echoed["body"])) == {"text": "hello"}
    sent = target.requests[-1]
    assert sent.header("X-Api-Key") == API_KEY and sent.header("Content-Type") == "application/json"
    # An HTTP error is a result, not a failure of the API.
    failed = client.post(f"/api/v1/tools/{provider['id']}/test", headers=owner["headers"],
                         json={"tool": "status", "arguments": {"code": 503}}).json()["data"]
    assert (failed["status"], failed["error_code"]) == ("error", "tool_http_error")
    assert failed["output"].startswith("HTTP 503")


def test_test_calls_refuse_unknown_tools_and_arguments_that_do_not_fit(
        client: TestClient, owner: dict[str, Any], target: HttpTarget) -> None:
    provider = create(client, owner, openapi_body(target))
    target.reset()
    path = f"/api/v1/tools/{provider['id']}/test"
    body = assert_error(client.post(path, json={"tool": "nope"}, headers=owner["headers"]), 404, "tool_not_found")
    assert "echo" in body["message"]
    body = assert_error(client.post(path, json={"tool": "echo", "arguments": {"body": {}, "extra": 1}},
                                    headers=owner["headers"]), 422, "tool_arguments_invalid")
    fields = {f["field"] for f in body["details"]["fields"]}
    assert "body.arguments.body" in fields and "body.arguments" in fields
    assert target.paths() == []  # nothing was called


def test_updates_take_the_version_read_and_keep_or_replace_the_secret(
        client: TestClient, owner: dict[str, Any], target: HttpTarget, admin_sql: Sql) -> None:
    provider = create(client, owner, openapi_body(target))
    path = f"/api/v1/tools/{provider['id']}"
    renamed = client.patch(path, json={"name": "Echo 2", "timeout_s": 5, "tool_timeouts": {"echo": 2},
                                       "version": provider["version"]}, headers=owner["headers"])
    assert renamed.status_code == 200, renamed.text
    data = renamed.json()["data"]
    assert (data["name"], data["version"], data["auth"]["configured"]) == ("Echo 2", provider["version"] + 1, True)
    stale = client.patch(path, json={"name": "Echo 3", "version": provider["version"]}, headers=owner["headers"])
    body = assert_error(stale, 409, "tool_provider_version_conflict")
    assert body["details"]["version"] == data["version"]
    tools = {t["name"]: t for t in client.get(path, headers=owner["headers"]).json()["data"]["tools"]}
    assert (tools["echo"]["timeout_s"], tools["status"]["timeout_s"]) == (2, 5)
    # A new auth type without its secret is refused; with it, the stored secret is replaced.
    body = assert_error(client.patch(path, json={"auth": {"type": "bearer"}, "version": data["version"]},
                                     headers=owner["headers"]), 422, "tool_provider_invalid")
    assert body["details"]["fields"][0]["field"] == "body.auth.token"
    before = admin_sql("SELECT credentials FROM tool_providers WHERE id = %s", (provider["id"],))[0][0]
    changed = client.patch(path, json={"auth": {"type": "bearer", "token": "t-123"}, "version": data["version"]},
                           headers=owner["headers"]).json()["data"]
    assert changed["auth"] == {"type": "bearer", "in": None, "name": None, "username": None, "configured": True}
    after = admin_sql("SELECT credentials FROM tool_providers WHERE id = %s", (provider["id"],))[0][0]
    assert bytes(after) != bytes(before)
    target.reset()
    client.post(f"{path}/test", json={"tool": "status", "arguments": {"code": 200}}, headers=owner["headers"])
    assert target.requests[-1].header("Authorization") == "Bearer t-123"
    assert target.requests[-1].header("X-Api-Key") is None
    cleared = client.patch(path, json={"auth": {"type": "none"}, "version": changed["version"]},
                           headers=owner["headers"]).json()["data"]
    assert cleared["auth"]["configured"] is False
    assert admin_sql("SELECT credentials FROM tool_providers WHERE id = %s", (provider["id"],))[0][0] is None


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"kind": "openapi", "schema": "openapi: 3.0.0\npaths: [1"}, "body.schema", "neither JSON nor YAML"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [
        {"$ref": "#/components/parameters/Missing"}]}}}}}, "body.schema", "does not resolve"),
    ({"kind": "openapi"}, "body.schema", "needs its OpenAPI document"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "paths": {"/a": {"get": {}}}}}, "body.base_url",
     "names no absolute server"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "paths": {"/a": {"get": {}}}},
      "base_url": "http://169.254.169.254/latest"}, "body.base_url", "metadata"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "paths": {"/a": {"get": {}}}}, "base_url": "ftp://x"},
     "body.base_url", "http or https"),
    ({"kind": "mcp"}, "body.url", "needs the server's URL"),
    ({"kind": "mcp", "url": "https://mcp.example/mcp", "schema": {}}, "body.schema", "takes url"),
    ({"kind": "mcp", "url": "https://mcp.example/mcp", "auth": {"type": "basic", "username": "a", "password": "b"}},
     "body.auth.type", "none or bearer"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "servers": [{"url": "https://a.example"}],
                                    "paths": {"/a": {"get": {}}}}, "auth": {"type": "api_key", "value": "v"}},
     "body.auth.name", "names the header"),
    ({"kind": "openapi", "schema": {"openapi": "3.1.0", "servers": [{"url": "https://a.example"}],
                                    "paths": {"/a": {"get": {}}}}, "tool_timeouts": {"nope": 3}},
     "body.tool_timeouts.nope", "no tool"),
])
def test_invalid_providers_are_refused_naming_the_field(client: TestClient, owner: dict[str, Any],
                                                        body: dict[str, Any], field: str, words: str,
                                                        admin_sql: Sql) -> None:
    response = client.post("/api/v1/tools", json={"name": "Bad", **body}, headers=owner["headers"])
    error = assert_error(response, 422, "tool_provider_invalid")
    first = error["details"]["fields"][0]
    assert first["field"] == field and words in first["message"], error
    assert admin_sql("SELECT count(*) FROM tool_providers WHERE tenant_id = %s", (owner["tenant"]["id"],)) == [(0,)]


def test_names_are_unique_per_tenant_until_deleted(client: TestClient, owner: dict[str, Any],
                                                   target: HttpTarget) -> None:
    provider = create(client, owner, openapi_body(target))
    assert_error(client.post("/api/v1/tools", json=openapi_body(target, name="ECHO"), headers=owner["headers"]),
                 409, "tool_provider_name_taken")
    deleted = client.delete(f"/api/v1/tools/{provider['id']}", headers=owner["headers"])
    assert deleted.status_code == 204
    assert_error(client.get(f"/api/v1/tools/{provider['id']}", headers=owner["headers"]), 404,
                 "tool_provider_not_found")
    create(client, owner, openapi_body(target))
    assert_error(client.delete("/api/v1/tools/builtin", headers=owner["headers"]), 403, "tool_builtin_readonly")


def test_another_tenant_neither_sees_nor_calls_the_providers(
        client: TestClient, owner: dict[str, Any], new_tenant: Callable[..., dict[str, Any]],
        target: HttpTarget) -> None:
    provider = create(client, owner, openapi_body(target))
    other_data = new_tenant()
    other = bearer(other_data["owner_token"])
    other_tenant = uuid.UUID(other_data["tenant"]["id"])
    path = f"/api/v1/tools/{provider['id']}"
    assert_error(client.get(path, headers=other), 404, "tool_provider_not_found")
    assert_error(client.patch(path, json={"name": "Mine", "version": 1}, headers=other), 404,
                 "tool_provider_not_found")
    assert_error(client.delete(path, headers=other), 404, "tool_provider_not_found")
    target.reset()
    assert_error(client.post(f"{path}/test", json={"tool": "echo", "arguments": {"body": {"text": "x"}}},
                             headers=other), 404, "tool_provider_not_found")
    assert target.paths() == []
    assert client.get("/api/v1/tools", headers=other).json()["data"] == []
    # The executor port answers the other tenant's call as a tool it does not have.
    result = tool_runtime().call(other_tenant, ToolRef(provider["id"], "echo"), {"body": {"text": "x"}})
    assert result.status == "not_found" and target.paths() == []
    # Row-level security: a query without a tenant filter sees only its own tenant's rows.
    with get_database().transaction(other_tenant) as conn:
        assert conn.execute("SELECT count(*) FROM tool_providers").fetchone() == (0,)
    with get_database().transaction(uuid.UUID(owner["tenant"]["id"])) as conn:
        assert conn.execute("SELECT count(*) FROM tool_providers").fetchone() == (1,)


def test_a_viewer_reads_but_cannot_change_or_call(client: TestClient, owner: dict[str, Any],
                                                  target: HttpTarget) -> None:
    provider = create(client, owner, openapi_body(target))
    key = client.post("/api/v1/api-keys", json={"name": "viewer", "scopes": ["tool:read"]}, headers=owner["headers"])
    assert key.status_code == 201, key.text
    viewer = bearer(key.json()["data"]["token"])
    assert client.get(f"/api/v1/tools/{provider['id']}", headers=viewer).status_code == 200
    assert_error(client.post(f"/api/v1/tools/{provider['id']}/test", json={"tool": "status",
                                                                         "arguments": {"code": 200}},
                             headers=viewer), 403, "auth_permission_denied")


def test_an_mcp_server_is_listed_cached_refreshed_and_called(client: TestClient, owner: dict[str, Any],
                                                             mcp_server: McpTestServer, admin_sql: Sql) -> None:
    provider = create(client, owner, {"name": "Math", "kind": "mcp", "url": mcp_server.url,
                                      "auth": {"type": "bearer", "token": "mcp-secret-token"}})
    assert provider["auth"]["configured"] is True and "mcp-secret-token" not in json.dumps(provider)
    stored = admin_sql("SELECT credentials FROM tool_providers WHERE id = %s", (provider["id"],))[0][0]
    assert b"mcp-secret-token" not in bytes(stored)
    path = f"/api/v1/tools/{provider['id']}"
    got = client.get(path, headers=owner["headers"]).json()["data"]
    assert got["tools_error"] is None, got
    tools = {t["name"]: t for t in got["tools"]}
    assert sorted(tools) == ["add", "fail", "shout"]
    assert tools["add"]["parameters"]["required"] == ["a", "b"]
    listed_at = got["tools_listed_at"]
    requests = mcp_server.requests
    again = client.get(path, headers=owner["headers"]).json()["data"]
    assert again["tools_listed_at"] == listed_at and mcp_server.requests == requests  # cached
    refreshed = client.post(f"{path}/refresh", headers=owner["headers"]).json()["data"]
    assert refreshed["tools_listed_at"] != listed_at and mcp_server.requests > requests
    assert client.get(f"{path}?refresh=true", headers=owner["headers"]).json()["data"]["tools_listed_at"] \
        != refreshed["tools_listed_at"]
    result = client.post(f"{path}/test", json={"tool": "add", "arguments": {"a": 2, "b": 40}},
                         headers=owner["headers"]).json()["data"]
    assert (result["status"], result["output"]) == ("ok", "42")
    failed = client.post(f"{path}/test", json={"tool": "fail"}, headers=owner["headers"]).json()["data"]
    assert (failed["status"], failed["error_code"]) == ("error", "tool_error")
    assert "always fails" in failed["output"]
    # A wrong token: the tools cannot be listed, and the provider says why (not a 5xx).
    changed = client.patch(path, json={"auth": {"type": "bearer", "token": "wrong"}, "version": provider["version"]},
                           headers=owner["headers"]).json()["data"]
    broken = client.get(path, headers=owner["headers"]).json()["data"]
    assert broken["tools"] == [] and broken["tools_error"]["code"] == "mcp_failed"
    assert "401" in broken["tools_error"]["message"]
    assert changed["version"] == provider["version"] + 1


def test_the_builtins_are_listed_and_called(client: TestClient, owner: dict[str, Any], target: HttpTarget) -> None:
    got = client.get("/api/v1/tools/builtin", headers=owner["headers"])
    assert got.status_code == 200, got.text
    data = got.json()["data"]
    assert data["kind"] == "builtin"
    names = [t["name"] for t in data["tools"]]
    assert names[:3] == ["knowledge_search", "web_fetch", "current_time"]
    now = client.post("/api/v1/tools/builtin/test", json={"tool": "current_time",
                                                          "arguments": {"timezone": "Europe/Paris"}},
                      headers=owner["headers"]).json()["data"]
    assert now["status"] == "ok" and json.loads(now["output"])["timezone"] == "Europe/Paris"
    bad_zone = client.post("/api/v1/tools/builtin/test", json={"tool": "current_time",
                                                               "arguments": {"timezone": "Mars/Olympus"}},
                           headers=owner["headers"]).json()["data"]
    assert bad_zone["status"] == "invalid_arguments" and "Mars/Olympus" in bad_zone["output"]
    page = client.post("/api/v1/tools/builtin/test", json={"tool": "web_fetch", "arguments": {"url": target.url(
        "/page")}}, headers=owner["headers"]).json()["data"]
    assert page["status"] == "ok", page
    assert page["output"] == "# High tide\n\nHigh tide is at 06:42 today."
    missing_kb = client.post("/api/v1/tools/builtin/test", json={"tool": "knowledge_search",
                                                                 "arguments": {"query": "tides"}},
                             headers=owner["headers"]).json()["data"]
    assert missing_kb["status"] == "invalid_arguments" and "knowledge_base_ids" in missing_kb["output"]
    unknown_kb = client.post("/api/v1/tools/builtin/test", json={"tool": "knowledge_search", "arguments": {
        "query": "tides", "knowledge_base_ids": [str(uuid.uuid4())]}}, headers=owner["headers"]).json()["data"]
    assert unknown_kb["status"] == "not_found", unknown_kb
