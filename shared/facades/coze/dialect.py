"""Coze's dialect: every answer is the envelope ``{"code", "msg", "data", "detail": {"logid"}}``
with the ``X-Tt-Logid`` header (the request's id), ``code`` 0 on success; streams are
``event:<type>`` / ``data:<json>`` pairs, exactly the two lines ``cozepy``'s ``Stream`` parser
reads per event (no ``id:`` lines, no comments: it refuses any other line), and an empty line as
the heartbeat (the parser skips blank lines).

The one place where Stratus's domain errors become Coze's codes
(https://www.coze.cn/open/docs/developer_guides/coze_error_codes). ``cozepy`` raises
``CozeAPIError(code, msg, logid)`` from the body whatever the status; the status is HTTP's own
(401 for 4100, 404 for the not-found codes…) so that other clients and proxies see it right."""

from __future__ import annotations

import json
from typing import Any

from shared.cache.ports import StreamEvent
from shared.db.paging import Page
from shared.errors import StratusError
from shared.facades.coze import wire
from shared.http.dialect import Dialect, ErrorAnswer, EventDoc, compact_json

LOGID_HEADER = "X-Tt-Logid"
# An empty line: it ends no event (there is none pending between frames) and cozepy skips it.
HEARTBEAT = b"\n"

# Stratus codes with a Coze counterpart: (Coze code, HTTP status; None keeps Stratus's status).
_BY_CODE: dict[str, tuple[int, int | None]] = {
    "conversation_not_found": (wire.INVALID_CONVERSATION, 404),
    "message_not_found": (wire.INVALID_MESSAGE, 404),
    "agent_not_found": (wire.INVALID_BOT, 404),
    # A key bound to another agent: Coze's "invalid bot" covers a bot the caller may not use.
    "auth_agent_not_allowed": (wire.INVALID_BOT, 404),
    "agent_not_published": (wire.BOT_NOT_PUBLISHED, 409),
    "conversation_busy": (wire.CONVERSATION_BUSY, 409),
    "chat_turn_finished": (wire.CHAT_NOT_CANCELLABLE, 409),
    "chat_message_too_long": (wire.PROMPT_TOO_LONG, 400),
    "model_context_too_long": (wire.PROMPT_TOO_LONG, 400),
    "model_not_configured": (wire.INVALID_MODEL, 400),
    "sys_rate_limited": (wire.SYSTEM_LIMIT, 429),
    "quota_exceeded": (wire.INSUFFICIENT_BALANCE, 429),
    "biz_route_not_found": (wire.NOT_FOUND, 404),
    # A key bound to another workflow: as if the workflow did not exist (Coze's not-found).
    "auth_workflow_not_allowed": (wire.NOT_FOUND, 404),
}


def coze_status(error: StratusError) -> tuple[int, int]:
    """Coze's code and the HTTP status answering ``error``."""
    explicit = getattr(error, "coze_code", None)
    if isinstance(explicit, int):
        return explicit, error.status
    found = _BY_CODE.get(error.code)
    if found is not None:
        code, status = found
        return code, status or error.status
    status = error.status
    if status == 401:
        return wire.AUTH_INVALID, 401
    if status == 403:
        return wire.PERMISSION_DENIED, 403
    if status == 404:
        return wire.NOT_FOUND, 404
    if status == 429:
        return wire.SYSTEM_LIMIT, 429
    if error.code.startswith("model_"):
        return wire.MODEL_ERROR, status
    if status >= 500:
        return wire.INTERNAL, status
    # Validation (422 elsewhere in Stratus) is Coze's 400; other refusals keep their status.
    return wire.INVALID_PARAM, CozeDialect.validation_status if status == 422 else status


def _message(error: StratusError) -> str:
    """The error's message, with the fields at fault when validation failed (Coze has no field
    slot, so ``msg`` names them)."""
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, list) and fields and all(isinstance(f, dict) for f in fields):
        named = "; ".join(f"{str(f.get('field', '')).removeprefix('body.').removeprefix('query.')}: "
                          f"{f.get('message', '')}" for f in fields)
        return f"{error.message}: {named}"
    return error.message


def error_data(error: StratusError) -> dict[str, Any]:
    """``{"code", "msg"}`` of ``error`` (a stream's error event, a chat's ``last_error``)."""
    code, _ = coze_status(error)
    return {"code": code, "msg": _message(error)}


# cozepy reads lines with httpx's ``iter_lines``, which splits like ``str.splitlines`` (on these
# too, not only on CR and LF): escaped, they stay inside the one ``data:`` line.
# JSON already escapes the control characters among them.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def sse(event: str, data: Any) -> bytes:
    """One Coze event: ``event:`` and ``data:`` lines, as Coze writes them (no space)."""
    text = data if isinstance(data, str) else compact_json(data).translate(_LINE_BREAKS)
    return f"event:{event}\ndata:{text}\n\n".encode()


class CozeDialect(Dialect):
    name = "coze"
    validation_status = 400

    def success(self, data: Any, request_id: str) -> Any:
        return wire.envelope(wire.dump(data), request_id)

    def page(self, page: Page[Any], request_id: str) -> Any:
        return wire.envelope(wire.number_page(page), request_id)

    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        code, status = coze_status(error)
        body = {"code": code, "msg": _message(error),
                "detail": {"logid": request_id, "stratus_code": error.code}}
        return ErrorAnswer(status, json.dumps(body, separators=(",", ":"), default=str),
                           {**error.headers, LOGID_HEADER: request_id})

    def answer_headers(self, request_id: str) -> dict[str, str]:
        return {LOGID_HEADER: request_id}

    def event(self, event: StreamEvent) -> bytes:
        """An event whose data is already Coze's."""
        return sse(event.type, event.data)

    def heartbeat(self) -> bytes:
        return HEARTBEAT

    # -- OpenAPI ------------------------------------------------------------------------------
    def answer_header_docs(self) -> dict[str, Any]:
        return {LOGID_HEADER: {"description": "Coze's log id of the request (the same as `detail.logid`)",
                               "schema": {"type": "string"}}}

    def error_schema(self) -> tuple[str, dict[str, Any]]:
        return "CozeError", {
            "type": "object",
            "description": "Coze's error body (the X-Tt-Logid header carries the same logid)",
            "required": ["code", "msg", "detail"],
            "properties": {
                "code": {"type": "integer", "examples": [4000, 4100, 4200],
                         "description": "Coze's error code (never 0)"},
                "msg": {"type": "string"},
                "detail": {"type": "object", "required": ["logid"], "properties": {
                    "logid": {"type": "string"},
                    "stratus_code": {"type": "string", "description": "Stratus's own error code"}}},
            },
        }

    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["code", "msg", "data", "detail"],
            "properties": {"code": {"const": 0}, "msg": {"const": ""}, "data": data,
                           "detail": {"type": "object", "required": ["logid"],
                                      "properties": {"logid": {"type": "string"}}}},
        }

    def page_schema(self, item: dict[str, Any]) -> dict[str, Any]:
        return self.success_schema({"type": "object", "required": ["items", "has_more", "total"], "properties": {
            "items": {"type": "array", "items": item}, "has_more": {"type": "boolean"},
            "total": {"type": "integer"}}})

    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        items: list[dict[str, Any]] = [{
            "title": doc.type,
            **({"description": doc.description} if doc.description else {}),
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"const": doc.type},
                           "data": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": doc.data}},
        } for doc in events]
        # Coze's workflow streams (capitalised event names: Message, Error, Interrupt, Done) number
        # their events; its chat streams do not.
        if any(doc.type in _WORKFLOW_EVENTS for doc in events):
            for item in items:
                item["required"] = ["id", "event", "data"]
                item["properties"]["id"] = {"type": "string", "pattern": "^[0-9]+$",
                                            "description": "The event's number in this stream, from 0"}
            return {"description": "Coze's workflow Server-Sent Events: an `id:<n>` line (counting from 0), an "
                                   "`event:<type>` line and a `data:<json>` line per event, separated by a blank "
                                   "line; an empty line when idle.", "oneOf": items}
        return {"description": "Coze's Server-Sent Events: an `event:<type>` line and a `data:<json>` line per "
                               "event, separated by a blank line (no ids); an empty line when idle.",
                "oneOf": items}


_WORKFLOW_EVENTS = frozenset({"Message", "Error", "Interrupt", "Done"})

COZE = CozeDialect()
