"""Tools through the whole local runtime over HTTP, started as a user starts it with
``STRATUS_EGRESS_ALLOW=127.0.0.1``: an OpenAPI tool served by a local HTTP server called via
/test, an MCP server run by the test (the official SDK's server, streamable HTTP on loopback)
listed and called, and calls to other loopback addresses, 10.x, the metadata address, and
redirects to them refused because the allow-list does not name them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningRuntime, start_runtime
from tests.support.http_target import HttpTarget
from tests.support.mcp_server import McpTestServer


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRuntime]:
    running = start_runtime(tmp_path_factory.mktemp("e2e-tools") / "state", STRATUS_EGRESS_ALLOW="127.0.0.1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tenant(runtime: RunningRuntime) -> Iterator[httpx.Client]:
    http = httpx.Client(base_url=runtime.url, timeout=60)
    created = http.post("/api/v1/tenants", json={"name": "tools e2e"},
                        headers={"Authorization": f"Bearer {runtime.admin_token}"})
    assert created.status_code == 201, created.text
    http.headers["Authorization"] = f"Bearer {created.json()['data']['owner_token']}"
    yield http
    http.close()


def _test(tenant: httpx.Client, provider: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    response = tenant.post(f"/api/v1/tools/{provider}/test", json={"tool": tool, "arguments": arguments})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_an_openapi_tool_is_called_and_refused_destinations_are_results(tenant: httpx.Client) -> None:
    with HttpTarget() as target:
        document = {"openapi": "3.0.3", "info": {"title": "Echo", "version": "1"},
                    "servers": [{"url": target.url("")}],
                    "paths": {"/echo": {"get": {"operationId": "echo", "parameters": [
                        {"name": "city", "in": "query", "required": True, "schema": {"type": "string"}}]}},
                              "/redirect": {"get": {"operationId": "hop", "parameters": [
                                  {"name": "to", "in": "query", "required": True, "schema": {"type": "string"}}]}}}}
        created = tenant.post("/api/v1/tools", json={"name": "Echo", "kind": "openapi", "schema": json.dumps(document),
                                                     "auth": {"type": "bearer", "token": "e2e-token"}})
        assert created.status_code == 201, created.text
        provider = created.json()["data"]["id"]
        result = _test(tenant, provider, "echo", {"city": "Brest"})
        assert result["status"] == "ok", result
        echoed = json.loads(result["output"])
        assert echoed["query"] == [["city", "Brest"]]
        assert ["Authorization", "Bearer e2e-token"] in echoed["headers"]
        for destination, rule in ((target.url("/echo", host="127.0.0.2"), "loopback"),
                                  ("http://10.1.2.3/", "private"), ("http://169.254.169.254/latest/meta-data/",
                                                                    "metadata")):
            hop = _test(tenant, provider, "hop", {"to": destination})
            assert (hop["status"], hop["error_code"], hop["details"]["rule"]) == ("refused", "http_request_refused",
                                                                                  rule), hop
            assert "redirect" in hop["output"] and "STRATUS_EGRESS_ALLOW" in hop["output"]
        assert target.paths() == ["/echo", "/redirect", "/redirect", "/redirect"]
        # A base URL the policy refuses is refused when saved.
        refused = tenant.post("/api/v1/tools", json={"name": "Inner", "kind": "openapi", "schema": document,
                                                     "base_url": "http://10.0.0.1/api"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"]["fields"][0]["field"] == "body.base_url"


def test_web_fetch_reads_pages_and_refuses_what_the_allow_list_does_not_name(tenant: httpx.Client) -> None:
    with HttpTarget() as target:
        page = _test(tenant, "builtin", "web_fetch", {"url": target.url("/page")})
        assert page["status"] == "ok" and "High tide is at 06:42 today." in page["output"]
        for url, rule in ((target.url("/page", host="127.0.0.2"), "loopback"), ("http://10.0.0.1/", "private"),
                          ("http://169.254.169.254/latest/meta-data/", "metadata")):
            refused = _test(tenant, "builtin", "web_fetch", {"url": url})
            assert (refused["status"], refused["details"]["rule"]) == ("refused", rule), refused
        hop = _test(tenant, "builtin", "web_fetch", {"url": target.url("/redirect?to=http://169.254.169.254/")})
        assert (hop["status"], hop["details"]["rule"]) == ("refused", "metadata"), hop
        assert target.paths() == ["/page", "/redirect"]


def test_an_mcp_server_is_listed_and_called(tenant: httpx.Client) -> None:
    with McpTestServer(token="e2e-mcp") as server:
        created = tenant.post("/api/v1/tools", json={"name": "Math", "kind": "mcp", "url": server.url,
                                                     "auth": {"type": "bearer", "token": "e2e-mcp"}})
        assert created.status_code == 201, created.text
        provider = created.json()["data"]
        assert "e2e-mcp" not in created.text
        got = tenant.get(f"/api/v1/tools/{provider['id']}").json()["data"]
        assert sorted(t["name"] for t in got["tools"]) == ["add", "fail", "shout"], got
        shout = _test(tenant, provider["id"], "shout", {"text": "ahoy"})
        assert (shout["status"], shout["output"]) == ("ok", "AHOY")
        assert ("shout", {"text": "ahoy"}) in server.calls
        # The same server named by an address the allow-list leaves out: refused, never reached.
        before = server.requests
        other = tenant.post("/api/v1/tools", json={"name": "Math 2", "kind": "mcp",
                                                   "url": server.url.replace("127.0.0.1", "127.0.0.2")})
        assert other.status_code == 422, other.text
        assert server.requests == before
