"""What the conversations domain offers the others (chat today, chatflow workflow runs next):
the store of a conversation's turns — the question and the running answer appended together,
the history a model remembers, checkpoints and the one final write of an answer, and the
running answers a reaper looks for — plus who may see which conversation (``access``).

Callers depend on :class:`TurnStore`, never on the repository: how turns are kept (tables,
locks, fencing on ``status = 'running'``) stays this domain's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from shared.auth.principal import Principal
from shared.conversations.access import chat_agent_for, check_agent_allowed, end_user_of
from shared.conversations.api import (
    TOOL_OUTPUTS_EXPIRED,
    TOOL_OUTPUTS_EXPIRED_MESSAGE,
    EndUser,
    MessageOut,
    MessageStatus,
    PendingToolCall,
    Reference,
    ToolCallStatus,
)

__all__ = [
    "TOOL_OUTPUTS_EXPIRED",
    "TOOL_OUTPUTS_EXPIRED_MESSAGE",
    "AnswerOutcome",
    "EndUser",
    "MessageOut",
    "MessageStatus",
    "OpenedTurn",
    "PendingToolCall",
    "Reference",
    "StuckAnswer",
    "ToolCallStatus",
    "TurnConversation",
    "TurnStore",
    "chat_agent_for",
    "check_agent_allowed",
    "end_user_of",
]


@dataclass(frozen=True)
class TurnConversation:
    """A conversation as a new turn needs it."""

    id: uuid.UUID
    agent_id: uuid.UUID
    draft: bool
    inputs: dict[str, Any]
    # The conversation a chat kept out of it runs in place of (Coze's auto_save_history: false).
    kept_out_of: uuid.UUID | None = None


@dataclass(frozen=True)
class OpenedTurn:
    """The question (stored completed) and its answer (stored running), just appended."""

    conversation_id: uuid.UUID
    question_id: uuid.UUID
    answer_id: uuid.UUID
    # The answer's place in the conversation: history is what came before it.
    answer_position: int
    created_conversation: bool


@dataclass(frozen=True)
class AnswerOutcome:
    """How an answer ended. Fields left None keep what the answer holds (nothing, for an answer
    that was running)."""

    status: Literal["completed", "cancelled", "failed", "requires_action"]
    content: str
    stop_reason: str | None = None
    references: list[dict[str, Any]] | None = None
    rewritten_query: str | None = None
    context: dict[str, Any] | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    error_code: str | None = None
    error: str | None = None
    # A smart-reasoning answer's steps (shared.conversations.api.AgentStep, as JSON).
    steps: list[dict[str, Any]] | None = None
    # status requires_action: {tool_calls: [{id, name, arguments}]} (the calls the client answers).
    required_action: dict[str, Any] | None = None


@dataclass(frozen=True)
class StuckAnswer:
    tenant_id: uuid.UUID
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    # A pause on client tools whose offer expired (not a generator that died).
    paused: bool = False


class TurnStore(Protocol):
    def find_conversation(self, principal: Principal, conversation_id: uuid.UUID,
                          user: str | None) -> TurnConversation:
        """The end user's live conversation (of the token's agent, when bound); anything else
        is ``ConversationNotFound``."""
        ...

    def open_turn(self, principal: Principal, *, conversation_id: uuid.UUID | None, user: str | None,
                  agent_id: uuid.UUID, draft: bool, inputs: dict[str, Any], question: str,
                  agent_version: int | None, kept_out_of: uuid.UUID | None = None) -> OpenedTurn:
        """Append the question and a running answer, starting a conversation when
        ``conversation_id`` is None. An existing conversation still answering is
        ``ConversationBusy``; one deleted meanwhile is ``ConversationNotFound``."""
        ...

    def history(self, tenant_id: uuid.UUID, conversation_id: uuid.UUID, before_position: int,
                turns: int) -> list[tuple[str, str]]:
        """Up to ``turns`` past (question, answer) pairs before the position, oldest first."""
        ...

    def checkpoint(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, content: str) -> bool:
        """Save a running answer's text so far; False when it is no longer running."""
        ...

    def finish_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome) -> MessageOut:
        """The one final write of a running answer. When it had already ended (a reaper came
        first) the answer as it ended; ``MessageNotFound`` when it is gone."""
        ...

    def pause_answer(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, outcome: AnswerOutcome,
                     expires_s: int) -> MessageOut:
        """A running answer paused on client tools (``outcome.status`` requires_action, with its
        ``required_action``), open to their outputs for ``expires_s``. When it had already ended
        (reaped, cancelled), the answer as it ended."""
        ...

    def claim_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, expires_at: datetime) -> bool:
        """Take a paused answer, within its offer, back to running to continue it; False when it
        is not (another submit took it first, it expired, it ended), or when it is paused again
        since the pause ending at ``expires_at`` was read (the outputs were checked against that one)."""
        ...

    def fail_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID, code: str, message: str) -> bool:
        """Fail a paused answer (its offer expired); False when it was no longer paused."""
        ...

    def cancel_paused(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> bool:
        """Cancel a paused answer (it keeps what it holds); False when it was no longer paused."""
        ...

    def question_of(self, tenant_id: uuid.UUID, answer_id: uuid.UUID) -> str:
        """The text of the question an answer answers."""
        ...

    def visible_answer(self, principal: Principal, message_id: uuid.UUID, user: str | None) -> MessageOut:
        """An answer the caller may follow or cancel; anything else is ``MessageNotFound``."""
        ...

    def answer_status(self, tenant_id: uuid.UUID, message_id: uuid.UUID) -> str | None:
        """The answer's status, its conversation deleted or not; None when it is gone."""
        ...

    def stuck_answers(self, older_than_s: int, limit: int) -> list[StuckAnswer]:
        """Running answers without progress for ``older_than_s``, and paused ones whose offer
        expired, across tenants."""
        ...

    def fail_stuck(self, answer: StuckAnswer, code: str, message: str) -> bool:
        """Fail a stuck answer (a paused one: through :meth:`fail_paused`); False when it
        finished (or was resumed) meanwhile."""
        ...
