"""The streaming functions' HTTP plumbing (ASGI, under the Lambda Web Adapter in AWS and
mounted on the local gateway): bearer auth checked inside (function URLs have no authorizer),
the same envelope and error mapping as the HTTP API, and Server-Sent Events that keep going
when the client leaves (the turn must still be written; events stay replayable)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shared.auth.principal import Principal
from shared.cache.ports import StreamEvent
from shared.chat.events import sse, sse_heartbeat
from shared.errors import BadRequest, PayloadTooLarge, StratusError, Unauthenticated, ValidationFailed
from shared.http.envelope import error_body, success_payload
from shared.observability import logger

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
JSON = "application/json"
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    # Proxies (and CloudFront's compression) must pass each event through at once.
    "x-accel-buffering": "no",
}


_REQUEST_ID = "stratus.request_id"


def _request_id_of(headers: dict[bytes, bytes]) -> str:
    """Lambda's request id (the Web Adapter forwards the request context), else a new one."""
    context = headers.get(b"x-amzn-request-context")
    if context:
        try:
            found = json.loads(context).get("requestId")
            if found:
                return str(found)
        except ValueError:
            pass
    return uuid.uuid4().hex


def request_id(request: Request) -> str:
    found = request.scope.get(_REQUEST_ID)
    return str(found) if found else _request_id_of(dict(request.scope.get("headers") or []))


class RequestContext:
    """ASGI middleware: one request id per request, in every log line it causes (Powertools'
    context keys live in a ContextVar: per request task, and copied to the threads it starts)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            rid = _request_id_of(dict(scope.get("headers") or []))
            scope[_REQUEST_ID] = rid
            logger.thread_safe_append_keys(request_id=rid, path=scope.get("path", ""))
        await self.app(scope, receive, send)


def envelope(data: Any, rid: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(success_payload(data, rid), separators=(",", ":"), default=str), status,
                    headers={"X-Request-Id": rid, **(headers or {})}, media_type=JSON)


def error_response(exc: StratusError, rid: str) -> Response:
    return Response(error_body(exc, rid), exc.status, headers={"X-Request-Id": rid, **exc.headers},
                    media_type=JSON)


def authenticate(headers: dict[str, str], permission: str) -> tuple[Principal, dict[str, str]]:
    """What the authorizer and the shared middleware do for the HTTP API, in one call:
    the token, revocation and role changes (Redis), the permission, the rate limit."""
    from shared.auth.guard import auth_error
    from shared.auth.permissions import require
    from shared.auth.token_state import get_token_state
    from shared.auth.tokens import bearer_token, hash_token
    from shared.http.api import enforce_rate_limit
    from shared.tenancy.service import tenancy_service

    token = bearer_token(headers)
    if not token:
        raise auth_error("auth_missing_token" if token is None else "auth_invalid_token")
    cache = _principal_cache()
    token_hash = hash_token(token)
    principal = cache.get(token_hash)
    if principal is None:
        try:
            principal = tenancy_service().resolve_token(token)
        except Unauthenticated as exc:
            raise auth_error(exc.code) from None
        cache.put(token_hash, principal)
    elif principal.is_expired():
        raise auth_error("auth_token_expired")
    principal = get_token_state().apply(principal)
    require(principal, permission)
    return principal, enforce_rate_limit(principal)


@cache
def _principal_cache() -> Any:
    from shared.auth.principal_cache import PrincipalCache
    from shared.config import get_settings

    return PrincipalCache(get_settings().authorizer_cache_ttl_s)


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(details={"max_bytes": max_bytes})
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(details={"max_bytes": max_bytes})
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest("Request body is not valid JSON", code="biz_malformed_json") from None
    return validate(model, payload, "body")


def validate(model: type[M], payload: Any, where: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc.errors(), prefix=where) from None


async def blocking(fn: Callable[[], T]) -> T:
    """Short blocking work (database, cache) off the event loop."""
    return await anyio.to_thread.run_sync(fn)


def in_own_thread(fn: Callable[[], T]) -> Awaitable[T]:
    """Long blocking work (a whole turn) on a thread of its own: the shared worker pool is
    for short calls and must not be held by generations."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting request, which maps it
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    context = contextvars.copy_context()
    threading.Thread(target=lambda: context.run(target), name="chat-turn", daemon=True).start()
    return future


def in_background(fn: Callable[[], Any], name: str) -> None:
    """Work whose result nobody awaits (a streamed turn, a replay's reads): on a thread of its
    own; a failure is logged here (the work itself has told its client)."""

    def target() -> None:
        try:
            fn()
        except Exception:
            logger.exception("background work failed", extra={"work": name})

    context = contextvars.copy_context()
    threading.Thread(target=lambda: context.run(target), name=name, daemon=True).start()


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class EventSource:
    """Events produced on another thread, delivered to the connection's loop in order."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

    def emit(self, event: StreamEvent) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def finish(self) -> None:
        """No more events (a replay that ended without ``done``)."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def frames(self, heartbeat_s: float) -> AsyncIterator[bytes]:
        while True:
            try:
                event = await asyncio.wait_for(self._queue.get(), heartbeat_s)
            except TimeoutError:
                yield sse_heartbeat()
                continue
            if event is None:
                return
            yield sse(event)
            if event.type == "done":
                return


class SseResponse:
    """200 ``text/event-stream`` from an async iterator of frames. It does not watch for the
    client leaving: sends to a gone client are dropped by the server, and the iterator runs to
    its end, so the Lambda invocation lasts until the turn is written."""

    def __init__(self, frames: AsyncIterator[bytes], rid: str, headers: dict[str, str] | None = None) -> None:
        self._frames = frames
        self._headers = {**SSE_HEADERS, "x-request-id": rid, **{k.lower(): v for k, v in (headers or {}).items()}}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._headers.items()]})
        try:
            async for frame in self._frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        except OSError:
            # A transport that raises on a closed connection: the producer still finishes.
            logger.info("client went away during a stream")
            async for _ in self._frames:
                pass
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
