"""Request and response models of conversations, messages and chat turns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from shared.validation import INT4_MAX, RequestModel

MEMBER_PREFIX = "member:"


def _not_reserved(value: str) -> str:
    if value.startswith(MEMBER_PREFIX):
        raise ValueError(f"user must not start with {MEMBER_PREFIX!r} (reserved for the token owner)")
    return value


# The end user a client names (Dify's and Coze's "user"); "member:" is reserved for the
# default (the token owner's own conversations).
# Stripped wherever it arrives (body or query string), so one client value is one end user.
EndUser = Annotated[str, StringConstraints(strip_whitespace=True), Field(min_length=1, max_length=255,
                                                                         pattern=r"^[^\x00-\x1f\x7f]+$",
                                                                         # The reserved prefix, in OpenAPI.
                                                                         json_schema_extra={"not": {
                                                                             "pattern": r"^\s*member:"}}),
                    AfterValidator(_not_reserved)]
# requires_action: a smart-reasoning answer paused on client tools (docs/tools.md §client tools).
# A pause on client tools whose offer ended unanswered: the answer's error code.
TOOL_OUTPUTS_EXPIRED = "chat_tool_outputs_expired"
TOOL_OUTPUTS_EXPIRED_MESSAGE = "The client tools' outputs were not submitted in time"
MessageStatus = Literal["running", "requires_action", "completed", "failed", "cancelled"]
Rating = Literal["like", "dislike"]


class CreateConversation(RequestModel):
    agent_id: str = Field(min_length=1, max_length=100)
    user: EndUser | None = None
    name: str = Field(default="", max_length=255)
    # Values of the agent's system-prompt variables, fixed for the conversation.
    inputs: dict[str, Any] = Field(default_factory=dict)
    # Chat with the agent's draft (debug) instead of its latest published version.
    draft: bool = False


class UpdateConversation(RequestModel):
    name: str = Field(min_length=1, max_length=255)
    user: EndUser | None = None
    version: int | None = Field(default=None, ge=1, le=INT4_MAX)


class MessageFeedback(RequestModel):
    # None takes a rating back.
    rating: Rating | None
    content: str = Field(default="", max_length=2000)
    user: EndUser | None = None


class ConversationOut(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    user: str
    name: str
    draft: bool
    inputs: dict[str, Any]
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class Reference(BaseModel):
    """A retrieved segment given to the model, numbered as the answer cites it ([1], [2]…)."""

    index: int
    segment_id: uuid.UUID
    knowledge_base_id: uuid.UUID
    document_id: uuid.UUID
    document_name: str
    position: int
    page: int | None
    score: float = Field(description="The segment's retrieval score, as `score_type` says")
    score_type: str = Field(description=(
        "`cosine`, `keyword`, `hybrid` or `rerank`, as in the retrieve API. References stored before "
        "scores became absolute may say `full_text`, and their `full_text` and `hybrid` scores are "
        "relative to that search's best match."))
    content: str


class Feedback(BaseModel):
    rating: Rating | None
    content: str
    at: datetime | None


class MessageError(BaseModel):
    code: str
    message: str


# pending: a client tool's call waiting for the client's output.
ToolCallStatus = Literal["ok", "error", "timeout", "refused", "invalid_arguments", "not_found", "cancelled",
                         "pending"]


class ToolCallStep(BaseModel):
    """One tool call of a smart-reasoning step and what it answered."""

    id: str = Field(description="The call's id (the model's, or made up for a ReAct action)")
    name: str = Field(description="The tool's name as the model called it")
    ref: str | None = Field(description="The tool: `<provider id>/<tool>`, `builtin/<name>` or `workflow/<id>` "
                                        "(null: the model named no tool of the agent)")
    arguments: Any = Field(description="The arguments the model gave (an object; text when it was not JSON)")
    status: ToolCallStatus = Field(description="As a tool call's status (docs/tools.md); `cancelled`: the turn "
                                               "was cancelled while the tool ran; `pending`: a client tool's "
                                               "call waiting for its output")
    output: str = Field(description="What the tool answered, cut at 4,000 characters")
    truncated: bool
    elapsed_ms: int
    error_code: str | None = None


class AgentStep(BaseModel):
    """A step of a smart-reasoning answer: one model call, the thought it gave, and the tools it
    called (the last step, the answer, calls none)."""

    index: int = Field(ge=1)
    reasoning: Literal["function_calling", "react"]
    thought: str = ""
    tool_calls: list[ToolCallStep] = Field(default_factory=list)
    # The step's model call: {input_tokens, output_tokens, total_tokens, estimated}.
    usage: dict[str, Any] | None = None
    model_ms: int = 0
    tools_ms: int = 0


class PendingToolCall(BaseModel):
    """A client tool's call the answer waits on: the client runs it and submits its output."""

    id: str = Field(description="The call's id: name it as tool_call_id when submitting the output")
    name: str = Field(description="The client tool's name")
    arguments: str = Field(description="The arguments the model gave, as JSON text")


class RequiredAction(BaseModel):
    """What a ``requires_action`` answer waits for: every call's output, submitted together
    (``POST /api/v1/chat/{message_id}/tool-outputs``) before ``expires_at``."""

    type: Literal["submit_tool_outputs"] = "submit_tool_outputs"
    tool_calls: list[PendingToolCall]
    expires_at: datetime
    # The turns the model remembered when the client sent them itself (Coze's additional_messages,
    # a chat kept out of its conversation): a continuation needs them back, and the conversation
    # does not hold them. Stored with the pause; never part of an answer.
    history: SkipJsonSchema[list[tuple[str, str]] | None] = Field(default=None, exclude=True)


class MessageOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    position: int
    role: Literal["user", "assistant"]
    reply_to: uuid.UUID | None
    content: str
    status: MessageStatus
    agent_id: uuid.UUID
    agent_version: int | None
    references: list[Reference]
    rewritten_query: str | None
    model: str | None
    stop_reason: str | None
    # {input_tokens, output_tokens, total_tokens, estimated}
    usage: dict[str, Any] | None
    # {retrieval_ms, first_token_ms, total_ms}
    latency: dict[str, Any] | None
    # What the prompt kept and dropped to fit the model's context window.
    context: dict[str, Any] | None
    error: MessageError | None
    feedback: Feedback | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    # A smart-reasoning answer's steps (thoughts, tool calls and results), in order; empty otherwise.
    steps: list[AgentStep] = Field(default_factory=list)
    # A requires_action answer's pending client tool calls (the last pause's, kept after it).
    required_action: RequiredAction | None = None
