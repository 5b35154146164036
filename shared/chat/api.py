"""Request models of the chat function."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.conversations.contract import EndUser
from shared.validation import LaxUUID, RequestModel

MAX_MESSAGE_CHARS = 32_000


class ChatBody(RequestModel):
    agent_id: str = Field(min_length=1, max_length=100)
    # None: start a conversation (its id arrives with message.start).
    conversation_id: LaxUUID | None = None
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    user: EndUser | None = None
    # Values of the agent's system-prompt variables (a new conversation keeps them).
    inputs: dict[str, Any] = Field(default_factory=dict)
    stream: bool = True
    # A new conversation with the agent's draft (debug) instead of its latest published version.
    draft: bool = False
    files: list[LaxUUID] = Field(default_factory=list, max_length=10, description=(
        "Uploaded files (POST /api/v1/files) this turn reads: a chatflow agent's run gets their file references as "
        "sys.files (docs/files.md); other agents refuse files (422 chat_files_unsupported)"))


MAX_TOOL_OUTPUT_CHARS = 100_000


class ToolOutput(RequestModel):
    """What a client tool's call answered."""

    model_config = ConfigDict(str_strip_whitespace=False)  # the output is given to the model as sent

    tool_call_id: str = Field(min_length=1, max_length=200, description="The id of a pending call "
                                                                        "(message.requires_action)")
    output: str = Field(max_length=MAX_TOOL_OUTPUT_CHARS, description="The tool's output (text, often JSON)")


class ToolOutputsBody(RequestModel):
    """``POST /api/v1/chat/{message_id}/tool-outputs``: every pending call's output, each once."""

    tool_outputs: list[ToolOutput] = Field(min_length=1, max_length=50)
    user: EndUser | None = None
    stream: bool = True


class UserQuery(RequestModel):
    """The query string of the replay and cancel routes."""

    user: EndUser | None = None
    # For clients that cannot set the Last-Event-ID header (EventSource reconnects set it).
    last_event_id: str | None = Field(default=None, max_length=64)


class CancelOut(BaseModel):
    message_id: uuid.UUID
    status: str
    cancel_requested: bool
