"""Dialects: the shape of a route's answers — the success body, the list body with its
pagination, the error body with its status and headers, each Server-Sent Event and the
heartbeat — and how OpenAPI describes them.

A route names its dialect in the catalog (``Http.dialect``, ``StreamRoute.dialect``); both
HTTP stacks (``StratusApp`` and the streaming app) answer through it, errors raised before
routing included. Stratus's own envelope is the default. A compatible API facade (Coze's
``{"code","msg"}``, Dify's ``{"code","message","status"}``, OpenAI's ``{"error":{...}}``) is a
dialect registered here plus a translator of its requests, not a second HTTP stack
(docs/adr/0042-compatible-api-facades.md).

A stream is written by the dialect's :class:`StreamTranslator`, one per response: Stratus's
writes each internal event as one frame; a facade's keeps what its wire format repeats in every
frame (OpenAI's completion id and model) and maps each internal event to zero or more frames,
skipping the events it has no word for.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.cache.ports import StreamEvent
from shared.db.paging import Page
from shared.errors import StratusError
from shared.http.envelope import JSON, Pagination, error_body, success_payload

EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventDoc:
    """One event type as OpenAPI shows it: its name, the JSON schema of its data, what it means."""

    type: str
    data: dict[str, Any]
    description: str = ""


def sse_frame(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One Server-Sent Event: optional ``event:`` and ``id:`` lines and one ``data:`` line
    (callers hand JSON, which never holds a raw newline)."""
    lines = [f"event: {event}\n" if event else "", f"id: {event_id}\n" if event_id else "", f"data: {data}\n\n"]
    return "".join(lines).encode()


def compact_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


class StreamTranslator(Protocol):
    """Writes one response's stream: each internal event as zero or more wire frames, and the
    heartbeat. Stateful where the wire format needs it (one instance per response)."""

    def frames(self, event: StreamEvent) -> list[bytes]: ...

    def heartbeat(self) -> bytes: ...


class PerEventTranslator:
    """A dialect whose frames depend on the event alone: one frame per event."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    def frames(self, event: StreamEvent) -> list[bytes]:
        return [self._dialect.event(event)]

    def heartbeat(self) -> bytes:
        return self._dialect.heartbeat()


class Dialect(ABC):
    """What a route's answers look like on the wire. The transport (status line, the
    ``X-Request-Id`` header, rate-limit headers, streaming) is the HTTP layer's, shared by all."""

    name: str
    # The status a validation error answers with: Stratus's 422, or a facade's API's own
    # (Coze, Dify and OpenAI all answer 400); the OpenAPI document shows the same.
    validation_status: int = 422

    # -- answers ------------------------------------------------------------------------------
    @abstractmethod
    def success(self, data: Any, request_id: str) -> Any:
        """The JSON-ready body of a success answer carrying ``data`` (models already dumped or not)."""

    @abstractmethod
    def page(self, page: Page[Any], request_id: str) -> Any:
        """The JSON-ready body of a list answer: the page's items and its pagination."""

    @abstractmethod
    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        """The status, body and headers answering a domain error."""

    @abstractmethod
    def event(self, event: StreamEvent) -> bytes:
        """One event of a stream, as a Server-Sent Event frame."""

    @abstractmethod
    def heartbeat(self) -> bytes:
        """What keeps an idle stream open (proxies close silent connections)."""

    def answer_headers(self, request_id: str) -> dict[str, str]:
        """Headers every answer in this dialect carries besides ``X-Request-Id`` (Coze's
        ``X-Tt-Logid``); errors carry them through :meth:`error`'s ``ErrorAnswer``."""
        return {}

    def translator(self) -> StreamTranslator:
        """The writer of one response's stream (a route's handler may hand its own, built with
        what the request said: a facade's model name, its usage option)."""
        return PerEventTranslator(self)

    def error_result(self, error: StratusError, request_id: str) -> dict[str, Any]:
        """An API Gateway v2 result answering ``error`` (raised before a resolver ran)."""
        answer = self.error(error, request_id)
        return {"statusCode": answer.status,
                "headers": {"Content-Type": JSON, "X-Request-Id": request_id, **answer.headers},
                "body": answer.body, "isBase64Encoded": False}

    # -- OpenAPI ------------------------------------------------------------------------------
    def answer_header_docs(self) -> dict[str, Any]:
        """The OpenAPI description of :meth:`answer_headers`, put on every answer of the dialect."""
        return {}

    @abstractmethod
    def error_schema(self) -> tuple[str, dict[str, Any]]:
        """The error body's component name and JSON schema."""

    @abstractmethod
    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        """The success body's schema around the schema of its data."""

    def page_schema(self, item: dict[str, Any]) -> dict[str, Any]:
        """The list body's schema around the schema of one item (for a streaming function's
        paged route; the HTTP API's lists are documented from their handlers' models)."""
        raise NotImplementedError(f"the {self.name} dialect documents no paged streaming answers")

    @abstractmethod
    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        """The schema of the ``text/event-stream`` answer: one item per event type, heartbeat included."""


class StratusDialect(Dialect):
    """Stratus's envelope: ``{"code": "success", "data", "meta": {"request_id"}}`` (plus
    ``pagination`` for lists); errors ``{"code", "message", "details", "request_id"}`` with
    the error's HTTP status; SSE frames ``event: <type>``, ``id: <stream id>``, ``data: <json>``."""

    name = "stratus"
    HEARTBEAT = "heartbeat"

    def success(self, data: Any, request_id: str) -> Any:
        return success_payload(data, request_id)

    def page(self, page: Page[Any], request_id: str) -> Any:
        return success_payload(page.items, request_id, Pagination.of(page.page, page.limit, page.total))

    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        return ErrorAnswer(error.status, error_body(error, request_id), dict(error.headers))

    def event(self, event: StreamEvent) -> bytes:
        # An event that never reached the stream has no id (the client keeps its position).
        return sse_frame(compact_json(event.data), event=event.type, event_id=event.id or None)

    def heartbeat(self) -> bytes:
        # An event, not a comment, so clients can see the connection is alive; no id: it must
        # not move the client's Last-Event-ID.
        return sse_frame("{}", event=self.HEARTBEAT)

    def error_schema(self) -> tuple[str, dict[str, Any]]:
        return "ErrorEnvelope", {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": {"type": "string", "examples": ["member_not_found", "auth_invalid_token"]},
                "message": {"type": "string"},
                "details": {"type": "object"},
                "request_id": {"type": "string"},
            },
        }

    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["code", "data", "meta"],
            "properties": {
                "code": {"const": "success"},
                "data": data,
                "meta": {"type": "object", "required": ["request_id"],
                         "properties": {"request_id": {"type": "string"}}},
            },
        }

    def page_schema(self, item: dict[str, Any]) -> dict[str, Any]:
        schema = self.success_schema({"type": "array", "items": item})
        schema["required"] = [*schema["required"], "pagination"]
        schema["properties"]["pagination"] = Pagination.model_json_schema()
        return schema

    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        items: list[dict[str, Any]] = [{
            "title": doc.type,
            **({"description": doc.description} if doc.description else {}),
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"const": doc.type},
                "id": {"type": "string", "description": "The event's stream id (<milliseconds>-<sequence>); "
                                                        "absent on an event that never reached the stream"},
                "data": _json_line(doc.data),
            },
        } for doc in events]
        items.append({
            "title": self.HEARTBEAT,
            "description": "Sent when no other event was for the heartbeat interval: `event: heartbeat` and "
                           "`data: {}`, without an id (it does not move Last-Event-ID)",
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"const": self.HEARTBEAT},
                           "data": _json_line({"type": "object", "maxProperties": 0})},
            "additionalProperties": False,
        })
        return {
            "description": "One item per Server-Sent Event: its `event:` line, its `id:` line, and its `data:` "
                           "line (one line of JSON); events are separated by a blank line.",
            "oneOf": items,
        }


def _json_line(schema: dict[str, Any]) -> dict[str, Any]:
    """An event's ``data:`` line: text holding one JSON document of ``schema`` (JSON Schema's
    ``contentMediaType``/``contentSchema``, as SSE item schemas describe it)."""
    return {"type": "string", "contentMediaType": JSON, "contentSchema": schema}


STRATUS = StratusDialect()
# Dialects by the name routes give in the catalog; a facade's is imported when first needed
# ("module:attribute"), so a function serving only Stratus's API never loads it.
DIALECTS: dict[str, Dialect] = {STRATUS.name: STRATUS}
FACADE_DIALECTS: dict[str, str] = {
    "openai": "shared.facades.openai.dialect:OPENAI",
    "coze": "shared.facades.coze.dialect:COZE",
    "dify": "shared.facades.dify.dialect:DIFY",
}


def dialect_for(name: str) -> Dialect:
    found = DIALECTS.get(name)
    if found is not None:
        return found
    where = FACADE_DIALECTS.get(name)
    if where is None:
        raise LookupError(f"no dialect named {name!r} (shared/http/dialect.py)")
    import importlib

    module, _, attribute = where.partition(":")
    dialect: Dialect = getattr(importlib.import_module(module), attribute)
    DIALECTS[name] = dialect
    return dialect
