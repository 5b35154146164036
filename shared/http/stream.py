"""Streaming functions' HTTP layer: an ASGI app (under the Lambda Web Adapter behind a
function URL in AWS, mounted on the local gateway) bound to its catalog entry, as
``http_app`` binds an HTTP API function.

Each handler is registered against one of the entry's ``StreamRoute``s; the route gives its
permission, body and query models, answer status and dialect, so a handler is parse → one
service call → answer. Bearer auth happens inside (function URLs have no authorizer); every
answer, errors before routing included, takes the route's dialect; Server-Sent Events keep
going when the client leaves (the work must still finish; events stay replayable by
``Last-Event-ID``). Workflow runs and the API facades reuse it. A module reads::

    api = stream_app(function_for_module(__name__))

    @api.route("POST", "/api/v1/chat/{message_id}/cancel")
    async def cancel(call: StreamCall[None, UserQuery]) -> Answer:
        return call.ok(await blocking(lambda: service().cancel(call.principal, ...)))

    app = api.asgi()
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from shared.auth.origin import require_edge
from shared.auth.principal import Principal
from shared.cache.ports import StreamEvent
from shared.catalog import DEFAULT_DIALECT, Function, FunctionUrl, StreamRoute, prefix_pattern, under_prefix
from shared.config import MissingSettings, check_entry_settings
from shared.db.paging import Page
from shared.errors import (
    BadRequest,
    PayloadTooLarge,
    StratusError,
    Unauthenticated,
    ValidationFailed,
)
from shared.http.context import add_response_headers, request_id_of_headers, response_headers, set_request
from shared.http.dialect import Dialect, StreamTranslator, dialect_for
from shared.http.envelope import JSON
from shared.http.refs import model_of
from shared.http.routing import RouteTable, stream_routes
from shared.observability import logger
from shared.validation import check_json_payload

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
B = TypeVar("B")
Q = TypeVar("Q")
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    # Proxies (and CloudFront's compression) must pass each event through at once.
    "x-accel-buffering": "no",
}
DEFAULT_HEARTBEAT_S = 15.0
# Checks the bearer token of a request against a permission: the principal and the
# rate-limit headers its answers carry.
Authenticate = Callable[[Mapping[str, str], str], tuple[Principal, dict[str, str]]]


# --- Auth -------------------------------------------------------------------------------------


def bearer_auth(headers: Mapping[str, str], permission: str) -> tuple[Principal, dict[str, str]]:
    """What the authorizer and the shared middleware do for the HTTP API, in one call:
    the token, revocation and role changes (Redis), the permission, the rate limit."""
    from shared.auth.guard import NOT_BEARER, auth_error
    from shared.auth.permissions import require
    from shared.auth.token_state import get_token_state
    from shared.auth.tokens import bearer_token, hash_token
    from shared.http.api import enforce_rate_limit
    from shared.tenancy.service import tenancy_service

    token = bearer_token(dict(headers))
    if not token:
        raise auth_error("auth_missing_token" if token is None else NOT_BEARER)
    principals = _principal_cache()
    token_hash = hash_token(token)
    principal = principals.get(token_hash)
    if principal is None:
        try:
            principal = tenancy_service().resolve_token(token)
        except Unauthenticated as exc:
            raise auth_error(exc.code) from None
        principals.put(token_hash, principal)
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


# --- Request parsing --------------------------------------------------------------------------


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(details={"max_bytes": max_bytes})
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(details={"max_bytes": max_bytes})
    if raw:
        # Refused before decoding: the decoder and the validators recurse.
        check_json_payload(raw, request.headers.get("content-type"))
    try:
        # No body at all is an empty object: its model says which fields are missing.
        payload = json.loads(raw) if raw else {}
    except ValueError:
        raise BadRequest("Request body is not valid JSON", code="biz_malformed_json") from None
    return validate(model, payload, "body")


def validate(model: type[M], payload: Any, where: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed.of(exc.errors(), prefix=where) from None


# --- Threads ----------------------------------------------------------------------------------


async def blocking(fn: Callable[[], T]) -> T:
    """Short blocking work (database, cache) off the event loop."""
    return await anyio.to_thread.run_sync(fn)


def in_own_thread(fn: Callable[[], T], name: str = "stream-work") -> Awaitable[T]:
    """Long blocking work (a whole chat turn) on a thread of its own: the shared worker pool
    is for short calls and must not be held by generations."""
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
    threading.Thread(target=lambda: context.run(target), name=name, daemon=True).start()
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


# --- Server-Sent Events -----------------------------------------------------------------------


class EventSource:
    """Events produced on another thread, delivered to the connection's loop in order, until
    one of the ``last`` types (or ``finish``)."""

    def __init__(self, last: frozenset[str] = frozenset({"done"})) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        self._last = last

    def emit(self, event: StreamEvent) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def finish(self) -> None:
        """No more events (a replay that ended without its last event)."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def frames(self, translator: StreamTranslator, heartbeat_s: float) -> AsyncIterator[bytes]:
        while True:
            try:
                event = await asyncio.wait_for(self._queue.get(), heartbeat_s)
            except TimeoutError:
                yield translator.heartbeat()
                continue
            if event is None:
                return
            for frame in translator.frames(event):
                yield frame
            if event.type in self._last:
                return


class SseResponse:
    """200 ``text/event-stream`` from an async iterator of frames. It does not watch for the
    client leaving: sends to a gone client are dropped by the server, and the iterator runs to
    its end, so the Lambda invocation lasts until the work is written."""

    def __init__(self, frames: AsyncIterator[bytes], rid: str, headers: dict[str, str] | None = None,
                 on_gone: Callable[[], None] | None = None) -> None:
        self._frames = frames
        self._headers = {**SSE_HEADERS, "x-request-id": rid, **{k.lower(): v for k, v in (headers or {}).items()}}
        # Told when the client disconnects; the stream then ends (None: it runs to its end).
        self._on_gone = on_gone

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._headers.items()]})
        if self._on_gone is not None:
            await self._until_gone(receive, send)
            return
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

    async def _until_gone(self, receive: Any, send: Any) -> None:
        """Send frames until the last one or the client's disconnect, whichever comes first."""
        assert self._on_gone is not None

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(watch())
        try:
            async for frame in self._frames:
                if watcher.done():
                    logger.info("client went away during a stream; it stops following")
                    break
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            logger.info("client went away during a stream")
        finally:
            watcher.cancel()
            self._on_gone()


class AnswerThenWork:
    """A JSON answer sent whole at once (with its length, and ``Connection: close`` so the client
    does not queue its next request behind it), the response held open until ``work`` ends: the
    invocation (a Lambda behind a function URL) lasts until the work is done, as a stream does,
    while the client already has its answer (a Coze chat that is not streamed: polled)."""

    def __init__(self, answer: Response, work: Awaitable[Any]) -> None:
        self._answer = answer
        self._work = work

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(k, v) for k, v in self._answer.raw_headers if k != b"connection"] + [(b"connection", b"close")]
        await send({"type": "http.response.start", "status": self._answer.status_code, "headers": headers})
        try:
            await send({"type": "http.response.body", "body": self._answer.body, "more_body": True})
        except OSError:
            logger.info("client went away before its answer")
        try:
            await self._work
        except Exception:
            logger.exception("work after the answer failed")
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


Answer = Response | SseResponse | AnswerThenWork


def json_answer(body: Any, rid: str, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), default=str), status,
                    headers={"X-Request-Id": rid, **response_headers()}, media_type=JSON)


def error_answer(dialect: Dialect, exc: StratusError, rid: str) -> Response:
    answer = dialect.error(exc, rid)
    return Response(answer.body, answer.status, headers={"X-Request-Id": rid, **response_headers(), **answer.headers},
                    media_type=JSON)


# --- The app ----------------------------------------------------------------------------------


@dataclass
class StreamCall(Generic[B, Q]):
    """One request to a route, checked and parsed: what its handler works with."""

    request: Request
    route: StreamRoute
    dialect: Dialect
    request_id: str
    principal: Principal
    # The route's body and query models (None where the route declares none).
    body: B
    query: Q
    path_params: dict[str, str]
    heartbeat_s: float

    @property
    def last_event_id(self) -> str | None:
        """Where a replay resumes: the ``Last-Event-ID`` header (EventSource reconnects send it),
        else the query's ``last_event_id`` for clients that cannot set headers."""
        return self.request.headers.get("last-event-id") or getattr(self.query, "last_event_id", None)

    def ok(self, data: Any, status: int | None = None, headers: dict[str, str] | None = None) -> Response:
        """The JSON answer carrying ``data``, with the route's status unless told."""
        answer = json_answer(self.dialect.success(data, self.request_id), self.request_id,
                             status or self.route.status)
        answer.headers.update({**self.dialect.answer_headers(self.request_id), **(headers or {})})
        return answer

    def ok_then(self, data: Any, work: Awaitable[Any]) -> AnswerThenWork:
        """The JSON answer carrying ``data`` at once, the invocation kept until ``work`` ends."""
        return AnswerThenWork(self.ok(data), work)

    def page(self, page: Page[Any]) -> Response:
        """A list answer: the page's items and its pagination, in the route's dialect."""
        answer = json_answer(self.dialect.page(page, self.request_id), self.request_id, self.route.status)
        answer.headers.update(self.dialect.answer_headers(self.request_id))
        return answer

    def events(self, source: EventSource, headers: dict[str, str] | None = None,
               on_gone: Callable[[], None] | None = None, translator: StreamTranslator | None = None) -> SseResponse:
        """The SSE answer of ``source``, written by ``translator`` (the route's dialect's by default)."""
        frames = source.frames(translator or self.dialect.translator(), self.heartbeat_s)
        return SseResponse(frames, self.request_id, headers={**self.dialect.answer_headers(self.request_id),
                                                             **response_headers(), **(headers or {})},
                           on_gone=on_gone)

    def stream(self, produce: Callable[[Callable[[StreamEvent], None]], Any], name: str, *,
               translator: StreamTranslator | None = None) -> SseResponse:
        """Stream what ``produce`` emits, producing on a thread of its own (it runs to its end
        whether or not the client stays); ``translator`` writes it (the dialect's by default)."""
        source = EventSource()
        in_background(lambda: produce(source.emit), name)
        return self.events(source, translator=translator)

    def follow(self, batches: Iterable[Iterable[StreamEvent]], name: str, *, headers: dict[str, str] | None = None,
               until_gone: bool = False, translator: StreamTranslator | None = None) -> SseResponse:
        """Stream stored events (a replay after ``Last-Event-ID``, then following live): the
        blocking reads on a thread of their own, since a follower may wait minutes. With
        ``until_gone`` the reads stop when the client leaves (work done elsewhere, such as a
        workflow run in Step Functions, needs no reader to go on); ``translator`` writes it
        (the dialect's by default)."""
        source = EventSource()
        gone = threading.Event()

        def pump() -> None:
            try:
                for batch in batches:
                    for event in batch:
                        source.emit(event)
                    if gone.is_set():
                        return
            finally:
                source.finish()

        in_background(pump, name)
        return self.events(source, headers, gone.set if until_gone else None, translator)


StreamHandler = Callable[[StreamCall[Any, Any]], Awaitable[Answer]]
H = TypeVar("H", bound=StreamHandler)


@dataclass(frozen=True)
class _Bound:
    route: StreamRoute
    handler: StreamHandler
    dialect: Dialect
    body: type[BaseModel] | None
    query: type[BaseModel] | None


class StreamApp:
    """Collects a streaming function's handlers, one per catalog route; ``asgi()`` builds the app."""

    def __init__(self, function: Function, *, authenticate: Authenticate = bearer_auth,
                 heartbeat_s: Callable[[], float] = lambda: DEFAULT_HEARTBEAT_S) -> None:
        if not isinstance(function.trigger, FunctionUrl):
            raise TypeError(f"{function.module} is not a streaming (function URL) function in the catalog")
        self.function = function
        self.trigger: FunctionUrl = function.trigger
        self._authenticate = authenticate
        self._heartbeat_s = heartbeat_s
        self._handlers: dict[tuple[str, str], StreamHandler] = {}

    def _declared(self, method: str, path: str) -> StreamRoute:
        for route in self.trigger.routes:
            if route.method == method and route.path == path:
                return route
        declared = ", ".join(f"{r.method} {r.path}" for r in self.trigger.routes)
        raise LookupError(f"{method} {path} is not a route of {self.function.name} in the catalog "
                          f"(declared: {declared})")

    def route(self, method: str, path: str) -> Callable[[H], H]:
        """Register the handler of the catalog route ``method path`` (which must be declared)."""
        route = self._declared(method, path)
        key = (route.method, route.path)
        if key in self._handlers:
            raise ValueError(f"{method} {path} of {self.function.name} has a handler already")

        def register(handler: H) -> H:
            self._handlers[key] = handler
            return handler

        return register

    def asgi(self) -> StreamAsgi:
        """The ASGI app. Every declared route must have its handler; the models are resolved now,
        so a wrong reference fails when the module loads, not on a request."""
        missing = [f"{r.method} {r.path}" for r in self.trigger.routes if (r.method, r.path) not in self._handlers]
        if missing:
            raise LookupError(f"{self.function.name} declares routes it does not serve: {', '.join(missing)}")
        bound = {(r.method, r.path): _Bound(r, self._handlers[(r.method, r.path)], dialect_for(r.dialect),
                                            model_of(r.body) if r.body else None,
                                            model_of(r.query) if r.query else None)
                 for r in self.trigger.routes}
        return StreamAsgi(self.function, bound, self._authenticate, self._heartbeat_s)


class StreamAsgi:
    """The built app: routing by the catalog's routes (plus the Web Adapter's readiness path),
    then auth, parsing and the handler, every answer in the route's dialect."""

    def __init__(self, function: Function, bound: dict[tuple[str, str], _Bound], authenticate: Authenticate,
                 heartbeat_s: Callable[[], float]) -> None:
        assert isinstance(function.trigger, FunctionUrl)
        self.function = function
        self._bound = bound
        self._table: RouteTable[StreamRoute] = stream_routes(function)
        self._authenticate = authenticate
        self._heartbeat_s = heartbeat_s
        # Infrastructure, not a user route: not in the catalog's routes nor in OpenAPI.
        self.readiness_path = function.trigger.readiness_path
        # Unknown paths answer in the dialect of the routes under their prefix when those share
        # one (a facade's prefix: its API's shape), else Stratus's.
        self._prefix_dialects: dict[str, str] = {}
        for prefix in function.trigger.path_prefixes:
            dialects = {route.dialect for route in function.trigger.routes if under_prefix(route.path, prefix)}
            self._prefix_dialects[prefix] = dialects.pop() if len(dialects) == 1 else DEFAULT_DIALECT

    @property
    def routes(self) -> list[StreamRoute]:
        """The routes served (each one the catalog declares)."""
        return [bound.route for bound in self._bound.values()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # Nothing to open: connections are made lazily, per container.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    # A deployed app missing a setting its entry requires does not start: the
                    # server reports the variable, rather than the first request that needs it.
                    try:
                        check_entry_settings(self.function)
                    except MissingSettings as exc:
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        rid = request_id_of_headers(dict(scope.get("headers") or []))
        # Powertools' context keys live in a ContextVar: per request task, and copied to the
        # threads it starts, so every log line the request causes carries its id.
        logger.thread_safe_append_keys(request_id=rid, path=scope.get("path", ""))
        set_request(None, rid)
        answer = await self._answer(Request(scope, receive), rid)
        await answer(scope, receive, send)

    async def _answer(self, request: Request, rid: str) -> Answer:
        method, path = request.method, request.scope["path"]
        if method == "GET" and path == self.readiness_path:
            # The Web Adapter's readiness check: answers without touching a data store.
            return Response('{"status":"ok"}', media_type=JSON)
        default = next((dialect for prefix, dialect in self._prefix_dialects.items()
                        if prefix_pattern(prefix).match(path)), DEFAULT_DIALECT)
        try:
            # Before any work: a function URL answers CloudFront only (docs/adr/0047).
            require_edge(request.headers)
        except StratusError as exc:
            return error_answer(dialect_for(default), exc, rid)
        found = self._table.match(method, path)
        if found is None:
            error, dialect = self._table.unmatched(method, path, default)
            return error_answer(dialect_for(dialect), error, rid)
        compiled, params = found
        bound = self._bound[(compiled.route.method, compiled.route.path)]
        try:
            call = await self._call(bound, request, rid, params)
            return await bound.handler(call)
        except StratusError as exc:
            return error_answer(bound.dialect, exc, rid)
        except Exception:
            logger.exception("stream request failed")
            return error_answer(bound.dialect, StratusError(), rid)

    async def _call(self, bound: _Bound, request: Request, rid: str, params: dict[str, str]) -> StreamCall[Any, Any]:
        from shared.config import get_settings

        route = bound.route
        headers = dict(request.headers)
        principal, limits = await blocking(lambda: self._authenticate(headers, route.permission))
        set_request(principal, rid)
        add_response_headers(limits)
        query = validate(bound.query, dict(request.query_params), "query") if bound.query else None
        body = await read_json(request, bound.body, get_settings().max_body_bytes) if bound.body else None
        return StreamCall(request=request, route=route, dialect=bound.dialect, request_id=rid, principal=principal,
                          body=body, query=query, path_params=params, heartbeat_s=self._heartbeat_s())


def stream_app(function: Function, *, authenticate: Authenticate = bearer_auth,
               heartbeat_s: Callable[[], float] = lambda: DEFAULT_HEARTBEAT_S) -> StreamApp:
    """The app of a streaming function, bound to its catalog entry (``function_for_module(__name__)``)."""
    return StreamApp(function, authenticate=authenticate, heartbeat_s=heartbeat_s)
