"""The local API Gateway: an ASGI app that turns each HTTP request into a real API Gateway
HTTP API v2 event, runs the catalog's authorizer (with API Gateway's result cache), then
the catalog's handler, and maps the handler's result back exactly as API Gateway does."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread

from functions.catalog import FUNCTIONS, Authorizer, DefaultRoute, http_functions
from infra.local.invoker import FunctionError, LocalInvoker
from shared.catalog import prefix_pattern
from shared.config import get_settings
from shared.http.api import payload_too_large
from shared.http.context import new_request_id, request_id_of
from shared.http.dialect import dialect_for
from shared.http.routing import http_routes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
               "application/javascript", "+json", "+xml")
# What API Gateway answers itself when an identity source is missing while caching is on.
_GATEWAY_UNAUTHORIZED = (401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
_GATEWAY_ERROR = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')


def _function_named(trigger_type: type) -> str:
    return next(fn.name for fn in FUNCTIONS if isinstance(fn.trigger, trigger_type))


class AuthorizerCache:
    """API Gateway caches authorizer results per identity source value for the TTL."""

    def __init__(self, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, identity: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(identity)
            if item is None or item[0] < time.monotonic():
                self._items.pop(identity, None)
                return None
            return item[1]

    def put(self, identity: str, result: dict[str, Any]) -> None:
        if self._ttl_s <= 0:
            return
        with self._lock:
            if len(self._items) > 10_000:  # bounded, like any sane cache
                self._items.clear()
            self._items[identity] = (time.monotonic() + self._ttl_s, result)


def _is_text(content_type: str) -> bool:
    return any(marker in content_type for marker in _TEXT_TYPES)


def build_event(scope: Scope, body: bytes, route_key: str, path_parameters: dict[str, str] | None) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event for this request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    raw_query = scope.get("query_string", b"").decode("latin-1")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    client = scope.get("client") or ("127.0.0.1", 0)
    method = scope["method"]
    path = scope["path"]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
            "http": {"method": method, "path": path, "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                     "sourceIp": client[0], "userAgent": headers.get("user-agent", "")},
            "requestId": new_request_id(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        if _is_text(headers.get("content-type", "")):
            try:
                event["body"] = body.decode()
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def authorizer_event(event: dict[str, Any], identity: str | None) -> dict[str, Any]:
    return {
        **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:123456789012:local/$default/"
                    f"{event['requestContext']['http']['method']}{event['rawPath']}",
        "identitySource": [identity] if identity is not None else [],
    }


def result_to_http(result: Any) -> tuple[int, dict[str, str], list[str], bytes]:
    """Map a handler result back the way API Gateway (payload 2.0) does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway infers a 200 JSON response from any other value.
        return 200, {"content-type": "application/json"}, [], json.dumps(result).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(map(str, values))
    status = int(result["statusCode"])
    if _bodiless(status):
        # API Gateway sends no body (and so no body headers) with these statuses, whatever
        # the integration returned.
        for name in ("content-type", "content-length"):
            headers.pop(name, None)
        return status, headers, list(result.get("cookies") or []), b""
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return status, headers, list(result.get("cookies") or []), raw


def _bodiless(status: int) -> bool:
    return status < 200 or status in (204, 304)


def streaming_mounts() -> dict[str, Any]:
    """The catalog's streaming functions (function URLs in AWS) by path prefix: their ASGI apps
    are served by this gateway directly, as CloudFront sends those paths to them."""
    from functions.catalog import FunctionUrl, streaming_functions
    from infra.local.invoker import import_function_module

    mounts: dict[str, Any] = {}
    for fn in streaming_functions():
        assert isinstance(fn.trigger, FunctionUrl)
        app = getattr(import_function_module(fn.module), fn.trigger.app)
        for prefix in fn.trigger.path_prefixes:
            mounts[prefix] = app
    return mounts


class LocalGateway:
    def __init__(self, invoker: LocalInvoker, *, mounts: dict[str, Any] | None = None) -> None:
        settings = get_settings()
        self._invoker = invoker
        self._max_body = settings.max_body_bytes
        self._cache_ttl_s = settings.authorizer_cache_ttl_s
        self._cache = AuthorizerCache(settings.authorizer_cache_ttl_s)
        self._authorizer = _function_named(Authorizer)
        self._default = _function_named(DefaultRoute)
        # Streaming ASGI apps (function URLs in AWS), mounted by path prefix.
        self._mounts = mounts or {}
        self._routes = http_routes(http_functions())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        for prefix, app in self._mounts.items():
            if prefix_pattern(prefix).match(scope["path"]):
                await app(scope, receive, send)
                return
        status, headers, cookies, body = await self._handle(scope, receive)
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw_headers += [(b"set-cookie", c.encode("latin-1")) for c in cookies]
        if "content-length" not in headers and not _bodiless(status):
            raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _read_body(self, scope: Scope, receive: Receive, max_body: int) -> bytes | None:
        """The body, or None once it exceeds the limit (stop reading: 413)."""
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, str], list[str], bytes]:
        found = self._routes.match(scope["method"], scope["path"])
        # A route may take more than the default (a file upload).
        max_body = (found[0].route.max_body_bytes if found is not None else None) or self._max_body
        body = await self._read_body(scope, receive, max_body)
        if found is None:
            event = build_event(scope, body or b"", "$default", None)
            return await self._invoke(self._default, event)
        compiled, params = found
        event = build_event(scope, body or b"", compiled.route.route_key, params or None)
        if body is None:
            dialect = dialect_for(compiled.route.dialect)
            return result_to_http(dialect.error_result(payload_too_large(compiled.route, max_body),
                                                       request_id_of(event)))
        if compiled.route.auth:
            denied = await self._authorize(event)
            if denied is not None:
                return denied
        return await self._invoke(compiled.function.name, event)

    async def _authorize(self, event: dict[str, Any]) -> tuple[int, dict[str, str], list[str], bytes] | None:
        # An empty identity source counts as missing, as in API Gateway.
        identity = event["headers"].get("authorization") or None
        if identity is None and self._cache_ttl_s > 0:
            return _GATEWAY_UNAUTHORIZED[0], dict(_GATEWAY_UNAUTHORIZED[1]), [], _GATEWAY_UNAUTHORIZED[2]
        result = self._cache.get(identity) if identity is not None else None
        if result is None:
            try:
                answer = await anyio.to_thread.run_sync(self._invoker.invoke, self._authorizer,
                                                        authorizer_event(event, identity))
            except FunctionError:
                return _GATEWAY_ERROR[0], dict(_GATEWAY_ERROR[1]), [], _GATEWAY_ERROR[2]
            result = dict(answer)
            if identity is not None:
                self._cache.put(identity, result)
        if not result.get("isAuthorized"):
            return 403, {"content-type": "application/json"}, [], b'{"message":"Forbidden"}'
        event["requestContext"]["authorizer"] = {"lambda": result.get("context") or {}}
        return None

    async def _invoke(self, name: str, event: dict[str, Any]) -> tuple[int, dict[str, str], list[str], bytes]:
        try:
            result = await anyio.to_thread.run_sync(self._invoker.invoke, name, event)
        except FunctionError:
            # API Gateway's answer when the integration fails.
            return _GATEWAY_ERROR[0], dict(_GATEWAY_ERROR[1]), [], _GATEWAY_ERROR[2]
        return result_to_http(result)
