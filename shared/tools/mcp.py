"""Remote MCP servers (streamable HTTP) through the official ``mcp`` SDK, behind the egress
policy.

The SDK's client takes an ``httpx2.AsyncClient``: the one given here has the policy's guarded
async transport (shared/egress.py), so every request the SDK makes (the session's POSTs, its
GET stream, a same-origin redirect it follows) has its scheme and host checked, and every
connection resolves the host once, refuses a private, loopback, link-local or metadata
address, and connects to the checked address (no DNS rebinding). Proxies from the environment
are ignored. The SDK follows only same-origin redirects; a redirect elsewhere fails the call.

In AWS these calls run in the ``tools-mcp`` function, outside the VPC (:class:`LambdaMcpClient`),
as the fetch function runs HTTP-request nodes' requests; locally in-process
(:class:`SdkMcpClient`). Both answer the same wire form.

The SDK loads on first use, not at import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from shared.egress import EgressPolicy, EgressRefused, Resolver

# A server's tool list is cut here (a model gets a few dozen at most).
MAX_TOOLS = 200
# An answer's text (an MCP result's content) is cut here before it travels on.
MAX_RESULT_CHARS = 1_000_000
# What one list or call may receive from the server in all (its responses' bodies, as sent):
# past it the exchange stops, unread. Bodies are asked for, and accepted, uncompressed only.
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
_MAX_PAGES = 20
_USER_AGENT = "Stratus-Tools/1 (MCP client)"


class McpError(Exception):
    """No answer from the server: ``code`` says which kind."""

    REFUSED: ClassVar[str] = "mcp_refused"
    TIMEOUT: ClassVar[str] = "mcp_timeout"
    FAILED: ClassVar[str] = "mcp_failed"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class McpTool:
    name: str
    description: str
    input_schema: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> McpTool:
        schema = data.get("input_schema")
        return cls(name=str(data["name"]), description=str(data.get("description") or ""),
                   input_schema=dict(schema) if isinstance(schema, Mapping) else {"type": "object"})


@dataclass(frozen=True)
class McpCallResult:
    is_error: bool
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"is_error": self.is_error, "text": self.text}


@dataclass(frozen=True)
class McpServer:
    """Where a server is and what to send it (a bearer token's header, decrypted)."""

    url: str
    headers: Mapping[str, str]


class McpClient(Protocol):
    def list_tools(self, server: McpServer, timeout_s: float) -> list[McpTool]: ...

    def call_tool(self, server: McpServer, name: str, arguments: Mapping[str, Any],
                  timeout_s: float) -> McpCallResult: ...


# --- the wire form (the tools-mcp function) ---------------------------------------------------


def request_json(op: str, server: McpServer, timeout_s: float, name: str | None = None,
                 arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"op": op, "url": server.url, "headers": dict(server.headers), "timeout_s": timeout_s, "name": name,
            "arguments": dict(arguments or {})}


def answer(client: McpClient, request: Mapping[str, Any]) -> dict[str, Any]:
    """The function's side: the request made, as its answer (a failure is an answer too)."""
    try:
        op = request.get("op")
        server = McpServer(str(request["url"]), {str(k): str(v) for k, v in dict(request.get("headers") or {}).items()})
        timeout_s = float(request.get("timeout_s") or 30)
        if op == "list":
            return {"ok": True, "tools": [t.to_json() for t in client.list_tools(server, timeout_s)]}
        if op == "call":
            result = client.call_tool(server, str(request["name"]), dict(request.get("arguments") or {}), timeout_s)
            return {"ok": True, "result": result.to_json()}
        raise McpError(McpError.FAILED, f"unknown operation {op!r}")
    except McpError as exc:
        return {"ok": False, "error": exc.to_json()}
    except (KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "error": {"code": McpError.FAILED, "message": f"malformed request: {exc}"}}


def _from_answer(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or data.get("ok") not in (True, False):
        raise McpError(McpError.FAILED, "the MCP function answered something that is not an answer: a platform "
                                        "fault; report it to the operator")
    if data["ok"] is False:
        error: Mapping[str, Any] = data["error"] if isinstance(data.get("error"), Mapping) else {}
        raise McpError(str(error.get("code") or McpError.FAILED), str(error.get("message") or "failed"))
    return data


class LambdaMcpClient:
    """Each list or call made by the ``tools-mcp`` function (outside the VPC)."""

    def __init__(self, client_factory: Callable[[], Any], function_name: str) -> None:
        self._client_factory = client_factory
        self.function_name = function_name

    def _invoke(self, payload: dict[str, Any]) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result = self._client_factory().invoke(FunctionName=self.function_name, InvocationType="RequestResponse",
                                                   Payload=json.dumps(payload).encode())
            raw = result["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            raise McpError(McpError.FAILED, f"the MCP function could not be invoked ({type(exc).__name__}): a "
                                            "platform fault; retry, or report it to the operator") from None
        if result.get("FunctionError"):
            if b"Task timed out" in raw:
                raise McpError(McpError.TIMEOUT, "the MCP server did not answer in time")
            raise McpError(McpError.FAILED, "the MCP function failed: a platform fault; report it to the operator")
        try:
            return _from_answer(json.loads(raw))
        except ValueError:
            raise McpError(McpError.FAILED, "the MCP function answered something that is not JSON") from None

    def list_tools(self, server: McpServer, timeout_s: float) -> list[McpTool]:
        data = self._invoke(request_json("list", server, timeout_s))
        return [McpTool.from_json(t) for t in data.get("tools") or []]

    def call_tool(self, server: McpServer, name: str, arguments: Mapping[str, Any],
                  timeout_s: float) -> McpCallResult:
        data = self._invoke(request_json("call", server, timeout_s, name, arguments))
        result: Mapping[str, Any] = data["result"] if isinstance(data.get("result"), Mapping) else {}
        return McpCallResult(is_error=bool(result.get("is_error")), text=str(result.get("text") or ""))


# --- in-process, through the SDK ---------------------------------------------------------------


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    found = [exc]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and not isinstance(exc, EgressRefused):
        found += _leaves(cause) if isinstance(cause, BaseExceptionGroup) else [cause]
    return found


def _run(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine to its end from sync code: here, or in a thread of its own when this
    thread already runs an event loop (a streaming app)."""
    import anyio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(factory)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, factory).result()


class SdkMcpClient:
    """The ``mcp`` SDK's streamable HTTP client over the egress policy's async transport."""

    def __init__(self, policy: EgressPolicy, *, resolver: Resolver | None = None,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.policy = policy
        self._resolver = resolver
        self._max_response_bytes = max_response_bytes

    def list_tools(self, server: McpServer, timeout_s: float) -> list[McpTool]:
        async def listing(client: Any) -> list[McpTool]:
            tools: list[McpTool] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor)
                for tool in page.tools:
                    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {"type": "object"}
                    tools.append(McpTool(tool.name, tool.description or tool.title or "", dict(schema)))
                cursor = page.next_cursor
                if cursor is None or len(tools) >= MAX_TOOLS:
                    break
            return tools[:MAX_TOOLS]

        result: list[McpTool] = self._session(server, timeout_s, listing)
        return result

    def call_tool(self, server: McpServer, name: str, arguments: Mapping[str, Any],
                  timeout_s: float) -> McpCallResult:
        async def calling(client: Any) -> McpCallResult:
            result = await client.call_tool(name, dict(arguments))
            return McpCallResult(bool(result.is_error), _result_text(result))

        outcome: McpCallResult = self._session(server, timeout_s, calling)
        return outcome

    def _session(self, server: McpServer, timeout_s: float, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        self._check(server.url)
        statuses: list[int] = []
        overflow: list[str] = []

        async def main() -> Any:
            import anyio
            import httpx2
            from mcp.client import Client
            from mcp.client.streamable_http import streamable_http_client

            from shared.egress import guarded_async_transport

            stop = anyio.CancelScope()

            def over(reason: str) -> None:
                # The SDK swallows its tasks' errors: the reason is kept here, the session stopped.
                overflow.append(reason)
                stop.cancel()

            transport = _capped_transport(guarded_async_transport(self.policy, resolver=self._resolver),
                                          self._max_response_bytes, over)
            headers = {"User-Agent": _USER_AGENT, **dict(server.headers), "Accept-Encoding": "identity"}

            async def record(response: httpx2.Response) -> None:
                # The SDK turns an HTTP error into a generic JSON-RPC one: the status is kept here.
                if response.status_code >= 400:
                    statuses.append(response.status_code)

            with stop, anyio.fail_after(timeout_s):
                async with httpx2.AsyncClient(transport=transport, trust_env=False, headers=headers,
                                              timeout=httpx2.Timeout(timeout_s), follow_redirects=False,
                                              event_hooks={"response": [record]}) as http, \
                        Client(streamable_http_client(server.url, http_client=http), cache=None,
                               read_timeout_seconds=timeout_s) as client:
                    return await work(client)

        try:
            result = _run(main)
        except McpError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            if overflow:
                raise McpError(McpError.FAILED, f"the MCP server {server.url} {overflow[0]}") from None
            raise _translated(exc, server.url, timeout_s, statuses) from None
        if overflow:
            raise McpError(McpError.FAILED, f"the MCP server {server.url} {overflow[0]}")
        return result

    def _check(self, url: str) -> None:
        try:
            self.policy.check_url(url)
        except EgressRefused as exc:
            raise _refusal(exc) from None


class _ResponseRefused(Exception):
    """A response the client stops reading (over the size limit, or compressed)."""


def _capped_transport(inner: Any, limit: int, over: Callable[[str], None]) -> Any:
    """``inner`` with every response body counted against ``limit`` bytes (all the session's
    responses together), a compressed one refused (it would inflate past any count)."""
    import httpx2

    received = [0]

    class CappedStream(httpx2.AsyncByteStream):
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        async def __aiter__(self) -> Any:
            async for chunk in self._stream:
                received[0] += len(chunk)
                if received[0] > limit:
                    reason = f"sent more than {limit} bytes: a list or call's answers are capped there"
                    over(reason)
                    raise _ResponseRefused(reason)
                yield chunk

        async def aclose(self) -> None:
            await self._stream.aclose()

    class CappedTransport(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            response = await inner.handle_async_request(request)
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                await response.aclose()
                reason = (f"sent a {encoding}-compressed response, though asked for none: answers are read "
                          "uncompressed only")
                over(reason)
                raise _ResponseRefused(reason)
            response.stream = CappedStream(response.stream)
            return response

        async def aclose(self) -> None:
            await inner.aclose()

    return CappedTransport()


def _refusal(exc: EgressRefused) -> McpError:
    if exc.rule in ("scheme", "invalid_url"):
        return McpError(McpError.FAILED, str(exc))
    return McpError(McpError.REFUSED, f"{exc} (egress rule {exc.rule!r}). If the server must be reached, ask the "
                                      "operator to add its host to STRATUS_EGRESS_ALLOW.")


def _translated(exc: BaseException, url: str, timeout_s: float, statuses: list[int]) -> McpError:
    import httpx2

    leaves = _leaves(exc)
    if statuses:
        leaves = [httpx2.HTTPStatusError(f"HTTP {statuses[-1]}", request=httpx2.Request("POST", url),
                                         response=httpx2.Response(statuses[-1])), *leaves]
    for leaf in _leaves(exc):
        if isinstance(leaf, EgressRefused):
            return _refusal(leaf)
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return McpError(McpError.TIMEOUT, f"the MCP server {url} did not answer within {timeout_s:g} s")
    for leaf in leaves:
        if isinstance(leaf, httpx2.HTTPStatusError):
            status = leaf.response.status_code
            hint = ": check the provider's bearer token" if status in (401, 403) else ""
            return McpError(McpError.FAILED, f"the MCP server {url} answered HTTP {status}{hint}")
        if isinstance(leaf, httpx2.ConnectError):
            return McpError(McpError.FAILED, f"could not connect to the MCP server {url}: {leaf}")
    for leaf in leaves:
        code = getattr(leaf, "code", None)
        message = getattr(leaf, "message", None) or str(leaf)
        if type(leaf).__name__ == "MCPError":
            return McpError(McpError.FAILED, f"the MCP server refused the request ({code}): {message}")
    first = leaves[0] if leaves else exc
    return McpError(McpError.FAILED, f"the MCP exchange with {url} failed: {type(first).__name__}: {first}"[:1000])


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind == "resource" and hasattr(getattr(item, "resource", None), "text"):
            parts.append(item.resource.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(item, 'mime_type', '')}]")
        else:
            parts.append(f"[{kind}]")
    text = "\n".join(parts)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return text[:MAX_RESULT_CHARS]
