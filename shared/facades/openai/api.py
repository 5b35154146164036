"""The wire models of OpenAI's chat completions and models API, as the official ``openai`` SDK
sends and reads them (``openai.types.chat.completion_create_params``, ``ChatCompletion``,
``ChatCompletionChunk``, ``Model``). Requests are checked as OpenAI checks them: an argument it
does not know is refused (400, "Unrecognized request argument supplied"), one Stratus cannot
honour is refused naming it, and the sampling settings an agent owns are accepted and left to
the agent (docs/compatible-apis.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.conversations.contract import EndUser
from shared.validation import INT4_MAX, RequestModel

MAX_MESSAGES = 2000


class _Request(RequestModel):
    # Message text is the client's, kept as sent (no stripping); the rest as Stratus's own.
    model_config = ConfigDict(str_strip_whitespace=False)


class ChatMessage(_Request):
    """One message of ``messages``: ``content`` is text or a list of content parts (text parts
    only); tool and function messages and assistant tool calls are refused (the agent calls its
    own tools)."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None


class StreamOptions(_Request):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


def _refuse(what: str) -> ValueError:
    return ValueError(f"{what} is not supported: the agent answers with its own configuration, model and tools")


class ChatCompletionRequest(_Request):
    """``POST /openai/v1/chat/completions``. ``model``: an agent's id, or a built-in's slug."""

    model: str = Field(min_length=1, max_length=100, description="An agent's id, or a built-in agent's slug")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES,
                                        description="The conversation so far; the last message is the user's")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: EndUser | None = Field(default=None, description="The end user (their conversations are theirs alone)")
    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="Stratus extension (the SDK's extra_body): values of the agent's "
                                               "system-prompt variables")
    n: int | None = Field(default=None, ge=1, le=128, description="Only 1: an agent gives one answer")
    tools: list[dict[str, Any]] | None = None
    functions: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    function_call: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    # Accepted and left to the agent, whose configuration sets them.
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=INT4_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT4_MAX)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    prediction: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    safety_identifier: str | None = None
    web_search_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("n must be 1: an agent gives one answer")
        return value

    @field_validator("tools", "functions")
    @classmethod
    def _no_client_tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value:
            raise _refuse("client-side tools")
        return value

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tool_choice(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value is not None and value not in ("none", "auto"):
            raise _refuse("choosing a client-side tool")
        return value

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") != "text":
            raise _refuse("a response_format other than text")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise _refuse("logprobs")
        return value

    @field_validator("modalities")
    @classmethod
    def _text_modality(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(item != "text" for item in value):
            raise _refuse("an output modality other than text")
        return value

    @field_validator("audio")
    @classmethod
    def _no_audio(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            raise _refuse("audio output")
        return value


# --- Answers ---------------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A non-streamed answer. ``id`` is ``chatcmpl-<the stored answer's id>``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One streamed piece: ``choices`` is empty only in the usage chunk (``include_usage``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error body, also the data of a stream's error event."""

    error: ErrorDetail


class Model(BaseModel):
    """An agent as an OpenAI model: ``id`` is what ``model`` takes (its id, a built-in's slug)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    # Stratus extensions (the SDK keeps unknown fields).
    name: str
    description: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
