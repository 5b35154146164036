"""A turn's events: one typed stream (stored per answer in the event stream, replayable by
id) and its wire format, Server-Sent Events (DESIGN §4)."""

from __future__ import annotations

import json
import re
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
    """``event:``, ``id:`` and one ``data:`` line (JSON never holds a raw newline). An event
    that never reached the stream has no id (the client keeps its position)."""
    id_line = f"id: {event.id}\n" if event.id else ""
    return f"event: {event.type}\n{id_line}data: {_json(event.data)}\n\n".encode()


_EVENT_ID = re.compile(r"^[0-9]{1,19}-[0-9]{1,19}$")


def valid_event_id(value: str) -> bool:
    """A stream id as the streams hand them out (``<ms>-<seq>``)."""
    return bool(_EVENT_ID.fullmatch(value)) and all(int(part) < 2**63 for part in value.split("-"))


def sse_heartbeat() -> bytes:
    # No id: a heartbeat must not move the client's Last-Event-ID.
    return f"event: {HEARTBEAT}\ndata: {{}}\n\n".encode()
