"""A local Anthropic Messages API (``POST /v1/messages``) speaking the real wire protocol.

JSON answers, or, for ``"stream": true``, the server-sent events the real API sends (each as
``event: <type>`` + ``data: <json>``): ``message_start`` (with input usage),
``content_block_start``/``content_block_delta`` (``text_delta``, ``input_json_delta``)/
``content_block_stop`` per block, a ``ping``, ``message_delta`` (stop reason, output usage) and
``message_stop``. Scripts are the same as the OpenAI fake's (``ChatScript``, ``RawReply``);
a ``ChatScript`` renders as an Anthropic message: its text as a text block, each tool call as a
``tool_use`` block, ``finish_reason`` as the ``stop_reason`` (default ``end_turn``, or
``tool_use`` with tool calls).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.support.fake_openai import (
    ChatScript,
    Exchange,
    RawReply,
    RecordedRequest,
    ScriptedHTTPServer,
    ToolCallScript,
    _next_id,
)

__all__ = ["ChatScript", "FakeAnthropic", "RawReply", "ToolCallScript", "anthropic_error"]


def _event(kind: str, data: Any) -> bytes:
    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


class FakeAnthropic(ScriptedHTTPServer):
    """``base_url`` is what ``anthropic.Anthropic(base_url=...)`` takes."""

    MESSAGES_PATH = "/v1/messages"

    @property
    def base_url(self) -> str:
        return self.origin

    def message_requests(self) -> list[dict[str, Any]]:
        return [request.body for request in self.requests_to(self.MESSAGES_PATH)]

    def respond(self, exchange: Exchange, request: RecordedRequest) -> None:
        if request.path != self.MESSAGES_PATH or request.method != "POST":
            exchange.send(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})
            return
        reply = self.take(request.path, ChatScript) or ChatScript()
        if isinstance(reply, RawReply):
            self.send_raw(exchange, reply)
            return
        assert isinstance(reply, ChatScript)
        body = request.body or {}
        exchange.wait(reply.first_byte_delay_s)
        model = reply.model or body.get("model") or "claude-fake"
        stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        headers = {"request-id": _next_id("req_"), **reply.headers}
        if body.get("stream"):
            exchange.stream_events(self._events(reply, model, stop), ChatScript(
                headers=headers, chunk_delay_s=reply.chunk_delay_s,
                disconnect_after_chunks=reply.disconnect_after_chunks, hold_open_s=reply.hold_open_s))
        else:
            exchange.send(reply.status, self.message(reply, model, stop), headers)

    @staticmethod
    def message(script: ChatScript, model: str, stop: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if script.text:
            content.append({"type": "text", "text": "".join(script.text)})
        content += [{"type": "tool_use", "id": call.id, "name": call.name,
                     "input": json.loads("".join(call.arguments) or "{}")} for call in script.tool_calls]
        answer: dict[str, Any] = {
            "id": _next_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
        }
        if script.usage is not None:
            answer["usage"] = {"input_tokens": script.usage[0], "output_tokens": script.usage[1],
                               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        return answer

    @staticmethod
    def _events(script: ChatScript, model: str, stop: str) -> Iterator[bytes]:
        message: dict[str, Any] = {"id": _next_id("msg_"), "type": "message", "role": "assistant",
                                   "model": model, "content": [], "stop_reason": None, "stop_sequence": None}
        if script.usage is not None:
            message["usage"] = {"input_tokens": script.usage[0], "output_tokens": 1,
                                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        events = [_event("message_start", {"type": "message_start", "message": message})]
        index = 0
        if script.text:
            events.append(_event("content_block_start", {"type": "content_block_start", "index": index,
                                                         "content_block": {"type": "text", "text": ""}}))
            events.append(_event("ping", {"type": "ping"}))
            events += [_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "text_delta", "text": piece}})
                       for piece in script.text]
            events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        for call in script.tool_calls:
            events.append(_event("content_block_start", {
                "type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}))
            events += [_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "input_json_delta", "partial_json": piece}})
                       for piece in call.arguments]
            events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        if not script.omit_finish:
            delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
            if script.usage is not None:
                delta["usage"] = {"output_tokens": script.usage[1]}
            events.append(_event("message_delta", delta))
            events.append(_event("message_stop", {"type": "message_stop"}))
        if script.malformed_chunk_at is not None:
            events[script.malformed_chunk_at] = _event("content_block_delta", b'{"type": "content_block_delta", "ind')
        yield from events


def anthropic_error(status: int, error_type: str, message: str = "error", *,
                    headers: dict[str, str] | None = None) -> RawReply:
    """An error reply shaped like Anthropic's (``{"type": "error", "error": {type, message}}``)."""
    return RawReply(status, {"type": "error", "error": {"type": error_type, "message": message}},
                    {"request-id": _next_id("req_"), **(headers or {})})


def stream_error_event(error_type: str, *, after: ChatScript | None = None) -> RawReply:
    """A 200 stream that sends ``message_start`` (and ``after``'s text) then an ``event: error``,
    as the API does when it overloads mid-generation."""
    script = after or ChatScript(text=["partial"])
    events = b"".join(FakeAnthropic._events(ChatScript(text=script.text, usage=script.usage, omit_finish=True),
                                            "claude-fake", "end_turn"))
    events += _event("error", {"type": "error", "error": {"type": error_type, "message": "Overloaded"}})
    return RawReply(200, events, {"content-type": "text/event-stream"}, path=FakeAnthropic.MESSAGES_PATH)
