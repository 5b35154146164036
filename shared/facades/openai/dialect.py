"""OpenAI's dialect: bare JSON bodies (no envelope), errors as
``{"error": {"message", "type", "param", "code"}}``, streams as ``data: <json>`` lines ended by
``data: [DONE]``. The one place where Stratus's domain errors become OpenAI's: a 422 (validation)
becomes OpenAI's 400 with ``param`` naming the first field at fault, 401 is ``invalid_api_key``,
429 ``rate_limit_exceeded`` or ``insufficient_quota``; every other error keeps its status and its
Stratus code (``agent_not_published``, ``conversation_busy``...)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from shared.cache.ports import StreamEvent
from shared.db.paging import Page
from shared.errors import StratusError
from shared.http.dialect import Dialect, ErrorAnswer, EventDoc, compact_json

DONE = b"data: [DONE]\n\n"
# A comment line: SSE clients (the SDK's decoder too) skip it, proxies see traffic.
KEEPALIVE = b": keep-alive\n\n"
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 410: "invalid_request_error",
          413: "invalid_request_error", 415: "invalid_request_error", 429: "requests"}
# Stratus codes whose OpenAI counterpart clients test for.
_CODES = {"chat_message_too_long": "context_length_exceeded", "sys_rate_limited": "rate_limit_exceeded",
          "quota_exceeded": "insufficient_quota"}


def _body_param(field: str) -> str:
    return field.removeprefix("body.").removeprefix("body")


def error_detail(error: StratusError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the ``error`` object answering ``error``."""
    status = OpenAIDialect.validation_status if error.status == 422 else error.status
    code = _CODES.get(error.code, error.code)
    message, param = error.message, None
    fields = error.details.get("fields") if isinstance(error.details, dict) else None
    if isinstance(fields, list) and fields and all(isinstance(f, dict) for f in fields):
        params = [_body_param(str(f.get("field", ""))) for f in fields]
        param = params[0] or None
        extra = [name for name, f in zip(params, fields, strict=True) if f.get("type") == "extra_forbidden"]
        if extra:
            # OpenAI's own words for an argument it does not know.
            message = f"Unrecognized request argument supplied: {', '.join(extra)}"
            code = "unknown_parameter"
        else:
            message = "; ".join(f"{name or 'body'}: {f.get('message', '')}" for name, f in zip(params, fields,
                                                                                                 strict=True))
            if error.code == "biz_validation_failed":
                code = "invalid_value"
    elif isinstance(error.details, dict) and isinstance(error.details.get("param"), str):
        param = error.details["param"]
    if status == 401:
        code = "invalid_api_key"
    error_type = "insufficient_quota" if code == "insufficient_quota" else (
        "server_error" if status >= 500 else _TYPES.get(status, "invalid_request_error"))
    return status, {"message": message, "type": error_type, "param": param, "code": code}


class OpenAIDialect(Dialect):
    name = "openai"
    validation_status = 400

    def success(self, data: Any, request_id: str) -> Any:
        from pydantic import BaseModel

        return data.model_dump(mode="json") if isinstance(data, BaseModel) else data

    def page(self, page: Page[Any], request_id: str) -> Any:
        return {"object": "list", "data": [self.success(item, request_id) for item in page.items]}

    def error(self, error: StratusError, request_id: str) -> ErrorAnswer:
        status, detail = error_detail(error)
        return ErrorAnswer(status, json.dumps({"error": detail}, separators=(",", ":"), default=str),
                           dict(error.headers))

    def event(self, event: StreamEvent) -> bytes:
        """An event whose data is already OpenAI's (a chat completion chunk): one ``data:`` line."""
        if event.type == "done":
            return DONE
        return f"data: {compact_json(event.data)}\n\n".encode()

    def heartbeat(self) -> bytes:
        return KEEPALIVE

    def chat_stream(self, completion_id: str, model: str, created: int, include_usage: bool) -> ChatCompletionStream:
        return ChatCompletionStream(completion_id, model, created, include_usage)

    # -- OpenAPI ------------------------------------------------------------------------------
    def error_schema(self) -> tuple[str, dict[str, Any]]:
        return "OpenAIError", {
            "type": "object",
            "description": "OpenAI's error body",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "examples": ["invalid_request_error", "server_error"]},
                    "param": {"type": ["string", "null"], "description": "The request field at fault"},
                    "code": {"type": ["string", "null"], "examples": ["model_not_found", "invalid_api_key"]},
                },
            }},
        }

    def success_schema(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def event_stream_schema(self, events: list[EventDoc]) -> dict[str, Any]:
        items: list[dict[str, Any]] = [{
            "title": doc.type,
            **({"description": doc.description} if doc.description else {}),
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "string", "contentMediaType": "application/json",
                                    "contentSchema": doc.data}},
        } for doc in events]
        items.append({"title": "[DONE]", "description": "The last line of the stream: `data: [DONE]`",
                      "type": "object", "required": ["data"], "properties": {"data": {"const": "[DONE]"}}})
        return {"description": "OpenAI's Server-Sent Events: `data: <json>` lines (no event names, no ids) separated "
                               "by a blank line, ended by `data: [DONE]`; a `: keep-alive` comment when idle.",
                "oneOf": items}


def _finish_reason(stop_reason: str | None) -> str:
    return stop_reason if stop_reason in ("length", "content_filter", "tool_calls") else "stop"


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens") or prompt + completion)}


class ChatCompletionStream:
    """One chat completion's stream (:class:`shared.http.dialect.StreamTranslator`): the turn's
    events as ``chat.completion.chunk`` lines. ``message.start`` opens the assistant message,
    each ``message.delta`` is a chunk of content, ``message.complete`` the finishing chunk (and
    the usage chunk when asked for), ``error`` OpenAI's error line, ``done`` ``[DONE]``. Events
    it has no counterpart for (references, tool calls...) are skipped."""

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self._head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._include_usage = include_usage

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {**self._head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                                            "logprobs": None}]}
        if self._include_usage:
            chunk["usage"] = None
        return b"data: " + compact_json(chunk).encode() + b"\n\n"

    def frames(self, event: StreamEvent) -> list[bytes]:
        kind, data = event.type, event.data
        if kind == "message.delta":
            return [self._chunk({"content": data.get("text", "")})]
        if kind == "message.start":
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message.complete":
            frames = [self._chunk({}, _finish_reason(data.get("stop_reason")))]
            if self._include_usage:
                usage = {**self._head, "choices": [], "usage": _usage(data.get("usage"))}
                frames.append(b"data: " + compact_json(usage).encode() + b"\n\n")
            return frames
        if kind == "error":
            error = StratusError(str(data.get("message") or StratusError.default_message),
                                 code=str(data.get("code") or StratusError.code), details=data.get("details") or {})
            _, detail = error_detail(error)
            return [b"data: " + compact_json({"error": detail}).encode() + b"\n\n"]
        if kind == "done":
            return [DONE]
        return []

    def heartbeat(self) -> bytes:
        return KEEPALIVE


def completion_id(message_id: uuid.UUID) -> str:
    return f"chatcmpl-{message_id}"


def now() -> int:
    return int(time.time())


OPENAI = OpenAIDialect()
