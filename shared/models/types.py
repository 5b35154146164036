"""The model gateway's vocabulary: one interface for every provider (chat with messages,
tools, structured output, streaming deltas, stop reasons, usage; embeddings; rerank)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from shared.egress import EgressPolicy

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "cancelled"]


class ToolCall(BaseModel):
    id: str
    name: str
    # JSON text as the model produced it (may be invalid JSON: callers validate).
    arguments: str


class Message(BaseModel):
    role: Role
    content: str = ""
    # Assistant messages that called tools; tool messages answer one call.
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class Tool(BaseModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str = ""
    # JSON Schema of the arguments.
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


TOOL_CHOICES = ("auto", "none", "required")


class ChatRequest(BaseModel):
    messages: list[Message]
    tools: list[Tool] = Field(default_factory=list)
    # auto, none, required (some tool), or the name of one of ``tools`` that must be called.
    tool_choice: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    # JSON Schema the answer must follow (structured output), with a name for providers
    # that need one.
    response_schema: dict[str, Any] | None = None
    response_schema_name: str = "response"
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    # True when the provider gave no usage and the gateway counted locally.
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        """As a turn's stored usage."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens, "estimated": self.estimated}


@dataclass(frozen=True)
class ChatResult:
    content: str
    tool_calls: list[ToolCall]
    stop_reason: StopReason
    usage: Usage
    model: str  # the provider's model name as it answered


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call: ``index`` identifies the call across fragments; ``id``
    and ``name`` arrive on the first fragment, ``arguments`` accumulate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class StreamEnd:
    stop_reason: StopReason
    usage: Usage | None  # None: the provider reported none
    model: str = ""


ChatEvent = TextDelta | ToolCallDelta | StreamEnd


@dataclass(frozen=True)
class RerankResult:
    index: int
    score: float


@dataclass(frozen=True)
class Credentials:
    """What a provider adapter needs to connect; secrets are resolved before this point."""

    api_key: str | None = None
    base_url: str | None = None
    region: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Set for a tenant-supplied endpoint: every connection goes through this policy
    # (shared/egress.py). None: a platform endpoint from the shipped catalog, trusted.
    egress: EgressPolicy | None = None


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 5.0
    read_s: float = 60.0
    # A stream that goes silent this long is treated as broken.
    stream_idle_s: float = 30.0
