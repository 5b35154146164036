"""A remote MCP server for the tool tests: the official ``mcp`` SDK's server (``MCPServer``)
over streamable HTTP on loopback, run by uvicorn in a thread. Tools: ``add`` (two integers),
``shout`` (a text, upper-cased), ``fail`` (always an error result); a bearer token, when set,
is required on every request (401 otherwise). ``server.calls`` records the tools called."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Self

import uvicorn


class McpTestServer:
    def __init__(self, *, token: str | None = None) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _app(self) -> Any:
        from mcp.server import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError

        server: MCPServer[Any] = MCPServer("stratus-test", instructions="Test tools")
        calls = self.calls

        @server.tool(description="Add two integers")
        def add(a: int, b: int) -> int:
            calls.append(("add", {"a": a, "b": b}))
            return a + b

        @server.tool(description="Upper-case a text")
        def shout(text: str) -> str:
            calls.append(("shout", {"text": text}))
            return text.upper()

        @server.tool(description="Always fails")
        def fail() -> str:
            calls.append(("fail", {}))
            # A tool's own failure, as a server reports it (an error result, not a crash).
            raise ToolError("the fail tool always fails")

        app = server.streamable_http_app(stateless_http=True, json_response=True)
        token = self.token
        owner = self

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                owner.requests += 1
                headers = dict(scope.get("headers") or [])
                if token is not None and headers.get(b"authorization") != f"Bearer {token}".encode():
                    await send({"type": "http.response.start", "status": 401,
                                "headers": [(b"content-type", b"text/plain")]})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await app(scope, receive, send)

        return guarded

    def __enter__(self) -> Self:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)  # type: ignore[union-attr]
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._server.started and self._server.servers:
                self.port = self._server.servers[0].sockets[0].getsockname()[1]
                return self
            time.sleep(0.05)
        raise RuntimeError("the MCP test server did not start")

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
