"""A turn's events: one typed stream (stored per answer in the event stream, replayable by
id) and its wire format, Server-Sent Events (DESIGN §4)."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from shared.cache.ports import StreamEvent

EventType = Literal["message.start", "retrieval.references", "message.delta", "message.complete", "error", "done"]
HEARTBEAT = "heartbeat"
FINAL: frozenset[str] = frozenset({"done"})


def stream_key(message_id: uuid.UUID) -> str:
    # One hash tag per answer: the stream and its cancel flag live in one cluster slot.
    return f"chat:{{msg:{message_id}}}:events"


def cancel_key(message_id: uuid.UUID) -> str:
    return f"chat:{{msg:{message_id}}}:cancel"


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def sse(event: StreamEvent) -> bytes:
    """``event:``, ``id:`` and one ``data:`` line (JSON never holds a raw newline)."""
    return f"event: {event.type}\nid: {event.id}\ndata: {_json(event.data)}\n\n".encode()


def sse_heartbeat() -> bytes:
    # No id: a heartbeat must not move the client's Last-Event-ID.
    return f"event: {HEARTBEAT}\ndata: {{}}\n\n".encode()
