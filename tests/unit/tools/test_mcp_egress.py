"""The MCP client goes through the egress policy on every connection: a name is resolved once
by the policy (here a resolver of the test's own), a refused address stops it before any
byte is sent, and an allowed one is connected to as resolved (the server answers under the
name the provider gave). Real MCP server (the SDK's), real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.egress import EgressPolicy
from shared.tools.mcp import McpError, McpServer, SdkMcpClient, answer
from tests.support.http_target import HttpTarget
from tests.support.mcp_server import McpTestServer


@pytest.fixture(scope="module")
def server() -> Iterator[McpTestServer]:
    with McpTestServer() as running:
        yield running


def test_a_name_resolving_to_a_refused_address_is_never_connected(server: McpTestServer) -> None:
    resolved: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["10.0.0.5"]

    client = SdkMcpClient(EgressPolicy(), resolver=resolver)
    before = server.requests
    with pytest.raises(McpError) as info:
        client.list_tools(McpServer(f"http://mcp.example:{server.port}/mcp", {}), 10)
    assert info.value.code == McpError.REFUSED
    assert "private" in info.value.message and "STRATUS_EGRESS_ALLOW" in info.value.message
    assert resolved == ["mcp.example"] and server.requests == before


def test_an_allowed_name_is_connected_at_the_address_the_policy_checked(server: McpTestServer) -> None:
    client = SdkMcpClient(EgressPolicy.parse("127.0.0.1"), resolver=lambda host, port: ["127.0.0.1"])
    target = McpServer(f"http://tools.example:{server.port}/mcp", {})
    # The SDK server refuses a Host it does not know (DNS rebinding protection): the name is
    # sent as the provider gave it, the socket goes to the checked address.
    with pytest.raises(McpError) as info:
        client.list_tools(target, 10)
    assert info.value.code == McpError.FAILED and server.requests > 0


def test_literal_addresses_are_refused_before_connecting_and_answers_carry_the_error(server: McpTestServer) -> None:
    client = SdkMcpClient(EgressPolicy())
    before = server.requests
    for url, rule in ((server.url, "loopback"), ("http://169.254.169.254/mcp", "metadata")):
        result = answer(client, {"op": "list", "url": url, "headers": {}, "timeout_s": 5})
        assert result["ok"] is False and result["error"]["code"] == McpError.REFUSED
        assert rule in result["error"]["message"]
    assert server.requests == before
    listed = answer(SdkMcpClient(EgressPolicy.parse("127.0.0.1")),
                    {"op": "call", "url": server.url, "headers": {}, "timeout_s": 10, "name": "add",
                     "arguments": {"a": 1, "b": 2}})
    assert listed == {"ok": True, "result": {"is_error": False, "text": "3"}}


def test_answers_past_the_size_limit_stop_the_exchange_unread() -> None:
    client = SdkMcpClient(EgressPolicy.parse("127.0.0.1"), max_response_bytes=1_000_000)
    with HttpTarget() as target:
        with pytest.raises(McpError) as info:
            client.list_tools(McpServer(target.url("/bytes?size=50000000&type=application/json"), {}), 30)
        assert info.value.code == McpError.FAILED
        assert "more than 1000000 bytes" in info.value.message
        # The server was not read to its end: the connection went once the limit was passed.
        assert target.streams and not target.streams[0].done


def test_a_compressed_answer_is_refused_before_it_is_inflated() -> None:
    client = SdkMcpClient(EgressPolicy.parse("127.0.0.1"))
    with HttpTarget() as target:
        with pytest.raises(McpError) as info:
            client.list_tools(McpServer(target.url("/bytes?size=50000000&gzip=1&type=application/json"), {}), 30)
        assert info.value.code == McpError.FAILED and "gzip-compressed" in info.value.message
        assert target.requests[0].header("Accept-Encoding") == "identity"
