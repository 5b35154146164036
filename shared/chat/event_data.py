"""The ``data`` of each event a chat turn sends (its ``message.complete`` carries the answer,
``MessageOut``). The catalog's chat routes name these, so OpenAPI documents what the turn
publishes; a test holds them to what a streamed turn actually sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.conversations.contract import MessageStatus, PendingToolCall, Reference, ToolCallStatus


class MessageStart(BaseModel):
    """The turn is admitted: where its question and answer are stored."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    question_id: uuid.UUID
    agent_id: uuid.UUID
    # None when chatting with the agent's draft.
    agent_version: int | None
    created_conversation: bool


class RetrievalReferences(BaseModel):
    """What retrieval found and the prompt kept, numbered as the answer cites them."""

    query: str
    rewritten: bool
    references: list[Reference]


class MessageDelta(BaseModel):
    text: str


class AgentThought(BaseModel):
    """A smart-reasoning step's thought: what the model said along with its tool calls."""

    step: int = Field(ge=1, description="The step (model call) it belongs to, from 1")
    text: str


class ToolCallStarted(BaseModel):
    """A smart-reasoning step calls a tool (calls of one step run at once)."""

    step: int = Field(ge=1)
    id: str = Field(description="The call's id; its `tool.result` carries the same")
    name: str = Field(description="The tool's name as the model called it")
    ref: str | None = Field(description="The tool (`<provider id>/<tool>`, `builtin/<name>`, `workflow/<id>`); "
                                        "null when the model named no tool of the agent")
    arguments: Any = Field(description="The arguments (an object; the model's text when it was not JSON)")


class ToolCallFinished(BaseModel):
    """What a tool call answered (also a failure: it goes back to the model as an observation)."""

    step: int = Field(ge=1)
    id: str
    name: str
    status: ToolCallStatus
    output: str = Field(description="The tool's output, cut at 4,000 characters")
    truncated: bool
    elapsed_ms: int
    error_code: str | None = None


class MessageRequiresAction(BaseModel):
    """The answer paused on client tools (stored ``requires_action``): the client runs each call
    and submits the outputs (``POST /api/v1/chat/{message_id}/tool-outputs``) before
    ``expires_at``; ``done`` follows."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    type: Literal["submit_tool_outputs"]
    tool_calls: list[PendingToolCall]
    expires_at: datetime
    usage: dict[str, Any] | None = Field(default=None, description="The tokens used so far")


class TurnError(BaseModel):
    """Why the turn failed (the answer is stored failed with the same code)."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class TurnDone(BaseModel):
    """The last event: the answer's final status."""

    status: MessageStatus
