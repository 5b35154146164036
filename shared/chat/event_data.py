"""The ``data`` of each event a chat turn sends (its ``message.complete`` carries the answer,
``MessageOut``). The catalog's chat routes name these, so OpenAPI documents what the turn
publishes; a test holds them to what a streamed turn actually sends."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from shared.conversations.contract import MessageStatus, Reference


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


class TurnError(BaseModel):
    """Why the turn failed (the answer is stored failed with the same code)."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class TurnDone(BaseModel):
    """The last event: the answer's final status."""

    status: MessageStatus
