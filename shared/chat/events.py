"""A turn's events: one typed stream, stored per answer in the event stream and replayable by
id (their wire format, Server-Sent Events, is the route's dialect's: ``shared.http.dialect``)."""

from __future__ import annotations

import re
import uuid
from typing import Literal

# A chatflow agent's turn also repeats its run's progress (workflow.*, node.started/finished).
EventType = Literal["message.start", "retrieval.references", "agent.thought", "tool.call", "tool.result",
                    "workflow.started", "node.started", "node.finished", "workflow.finished",
                    "message.delta", "message.complete", "message.requires_action", "error", "done"]


def stream_key(message_id: uuid.UUID) -> str:
    # One hash tag per answer: the stream and its cancel flag live in one cluster slot.
    return f"chat:{{msg:{message_id}}}:events"


def cancel_key(message_id: uuid.UUID) -> str:
    return f"chat:{{msg:{message_id}}}:cancel"


_EVENT_ID = re.compile(r"^[0-9]{1,19}-[0-9]{1,19}$")


def valid_event_id(value: str) -> bool:
    """A stream id as the streams hand them out (``<ms>-<seq>``)."""
    return bool(_EVENT_ID.fullmatch(value)) and all(int(part) < 2**63 for part in value.split("-"))
