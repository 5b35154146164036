"""The chat function: an ASGI app behind a function URL (the Lambda Web Adapter runs it in AWS;
the local gateway mounts it). Routes are the catalog's; each is parse → one service call →
envelope or event stream."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.chat.api import ChatBody, UserQuery
from shared.chat.http import (
    EventSource,
    RequestContext,
    SseResponse,
    authenticate,
    blocking,
    envelope,
    error_response,
    in_background,
    in_own_thread,
    read_json,
    request_id,
    validate,
)
from shared.chat.wiring import chat_service
from shared.config import get_settings
from shared.conversations import paths
from shared.errors import StratusError
from shared.http.routing import unmatched_route_error
from shared.observability import logger

PERMISSION = "agent:run"


async def chat(request: Request) -> Response | SseResponse:
    rid = request_id(request)
    principal, limits = await blocking(lambda: authenticate(dict(request.headers), PERMISSION))
    body = await read_json(request, ChatBody, get_settings().max_body_bytes)
    service = chat_service()
    turn = await blocking(lambda: service.start(principal, body))
    if not body.stream:
        final, error = await in_own_thread(lambda: service.run(turn))
        if error is not None:
            from shared.chat.service import TurnFailed

            raise TurnFailed(error, final)
        return envelope(final, rid, headers=limits)
    source = EventSource()
    in_background(lambda: service.run(turn, source.emit), "chat-turn")
    return SseResponse(source.frames(get_settings().chat_heartbeat_s), rid, headers=limits)


async def events(request: Request) -> Response | SseResponse:
    rid = request_id(request)
    principal, limits = await blocking(lambda: authenticate(dict(request.headers), PERMISSION))
    query = validate(UserQuery, dict(request.query_params), "query")
    message_id = paths.message_id(request.path_params["message_id"])
    after = request.headers.get("last-event-id") or query.last_event_id
    heartbeat_ms = int(get_settings().chat_heartbeat_s * 1000)
    service = chat_service()
    batches = await blocking(lambda: service.replay(principal, message_id, query.user, after, heartbeat_ms))
    source = EventSource()

    def pump() -> None:
        # Blocking reads on a thread of their own: a follower may wait minutes.
        try:
            for batch in batches:
                for event in batch:
                    source.emit(event)
        finally:
            source.finish()

    in_background(pump, "chat-replay")
    return SseResponse(source.frames(get_settings().chat_heartbeat_s), rid, headers=limits)


async def cancel(request: Request) -> Response:
    rid = request_id(request)
    principal, limits = await blocking(lambda: authenticate(dict(request.headers), PERMISSION))
    query = validate(UserQuery, dict(request.query_params), "query")
    message_id = paths.message_id(request.path_params["message_id"])
    out = await blocking(lambda: chat_service().cancel(principal, message_id, query.user))
    return envelope(out, rid, status=202, headers=limits)


async def ready(request: Request) -> Response:
    # The Web Adapter's readiness check: answers without touching a data store.
    return Response('{"status":"ok"}', media_type="application/json")


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StratusError)
    return error_response(exc, request_id(request))


async def _route_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(unmatched_route_error(request.method, request.url.path), request_id(request))


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("chat request failed")
    return error_response(StratusError(), request_id(request))


app = Starlette(
    routes=[
        Route("/api/v1/chat", chat, methods=["POST"]),
        Route("/api/v1/chat/_ready", ready, methods=["GET"]),
        Route("/api/v1/chat/{message_id}/events", events, methods=["GET"]),
        Route("/api/v1/chat/{message_id}/cancel", cancel, methods=["POST"]),
    ],
    exception_handlers={StratusError: _domain_error, HTTPException: _route_error, Exception: _unexpected},
    middleware=[Middleware(RequestContext)],
)
