"""Anthropic's Messages API through the official ``anthropic`` SDK.

The SDK is imported on first use (it costs ~1 s to import: never at cold start of a function
that does not call a model). Its own retries are off: ``shared.models.resilience`` decides.

Mapping from the gateway's vocabulary:

- system messages → ``system``; tool results → user messages of ``tool_result`` blocks;
  assistant tool calls → ``tool_use`` blocks; consecutive messages of one role are merged
  (all the results answering one assistant turn must travel in one user message);
- structured output → a tool named ``response_schema_name`` whose input schema is the
  requested schema, forced with ``tool_choice``; its input is returned as the content
  (streamed as text deltas), not as a tool call;
- ``max_tokens`` is required by Anthropic: the request's, else 4096;
- ``temperature``/``top_p`` are dropped (the API rejects sampling parameters since 2026-10-21).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shared.models.errors import (
    ContextTooLong,
    InvalidModelRequest,
    MalformedProviderResponse,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from shared.models.providers.base import tenant_http_client
from shared.models.resilience import parse_retry_after
from shared.models.types import (
    TOOL_CHOICES,
    ChatEvent,
    ChatRequest,
    ChatResult,
    Credentials,
    StopReason,
    StreamEnd,
    TextDelta,
    Timeouts,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    import anthropic

DEFAULT_MAX_TOKENS = 4096
_MAX_CLIENTS = 32
_PROVIDER = "anthropic"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _stop_reason(value: object, *, structured: bool) -> StopReason:
    if structured and value == "tool_use":
        # The forced answer tool was "called": for the caller that is a finished answer.
        return "stop"
    return _STOP_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


def _input_tokens(usage: Any) -> int:
    # Cached prompt tokens are reported apart from input_tokens; they are still input the
    # model read (priced differently), so they count here rather than vanish.
    return sum(int(getattr(usage, name, None) or 0)
               for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


class AnthropicProvider:
    """ChatProvider for Anthropic (no embeddings or rerank in this API)."""

    name = _PROVIDER

    def __init__(self, *, default_base_url: str | None = None) -> None:
        self._default_base_url = default_base_url
        self._clients: OrderedDict[tuple[Any, ...], anthropic.Anthropic] = OrderedDict()
        self._lock = threading.Lock()

    def _client(self, credentials: Credentials, timeouts: Timeouts) -> anthropic.Anthropic:
        if not credentials.api_key:
            # Without an explicit key the SDK would look for one in the environment and in
            # profile files on disk: never what a tenant's model configuration means.
            raise ProviderAuthFailed("No API key is configured for this Anthropic model",
                                     details={"provider": _PROVIDER})
        base_url = credentials.base_url or self._default_base_url
        key = (base_url, hashlib.sha256(credentials.api_key.encode()).hexdigest(),
               timeouts.connect_s, timeouts.read_s, credentials.egress)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
        import anthropic

        client = anthropic.Anthropic(
            http_client=tenant_http_client(anthropic.DefaultHttpxClient, credentials),
            api_key=credentials.api_key,
            base_url=base_url,
            max_retries=0,
            timeout=anthropic.Timeout(timeouts.read_s, connect=timeouts.connect_s),
            # Tracing is Powertools/X-Ray's job here; the SDK's OpenTelemetry spans would be
            # extra work per call with no exporter behind them.
            open_telemetry=False,
        )
        with self._lock:
            self._clients[key] = client
            while len(self._clients) > _MAX_CLIENTS:
                self._clients.popitem(last=False)
        return client

    # --- chat ---

    def chat(self, model: str, request: ChatRequest, credentials: Credentials, timeouts: Timeouts) -> ChatResult:
        client = self._client(credentials, timeouts)
        params = _params(model, request)
        try:
            message = client.messages.create(**params)
        except Exception as exc:
            raise map_anthropic_error(exc) from exc
        structured = request.response_schema is not None
        try:
            texts: list[str] = []
            calls: list[ToolCall] = []
            for block in message.content:
                if block.type == "text":
                    texts.append(block.text)
                elif block.type == "tool_use":
                    if structured and block.name == request.response_schema_name:
                        texts = [json.dumps(block.input)]
                    else:
                        calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
            usage = getattr(message, "usage", None)
            return ChatResult(
                content="".join(texts),
                tool_calls=calls,
                stop_reason=_stop_reason(message.stop_reason, structured=structured),
                usage=Usage(_input_tokens(usage), int(usage.output_tokens or 0)) if usage else Usage(),
                model=message.model or model,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc

    def stream(self, model: str, request: ChatRequest, credentials: Credentials,
               timeouts: Timeouts) -> Iterator[ChatEvent]:
        """Read it to its end (one step past StreamEnd) for the connection to be reused."""
        import anthropic

        client = self._client(credentials, timeouts)
        params = _params(model, request)
        params["stream"] = True
        # A read timeout bounds each read: on a stream, the silence between events.
        params["timeout"] = anthropic.Timeout(timeouts.read_s, connect=timeouts.connect_s,
                                              read=timeouts.stream_idle_s)
        try:
            stream = client.messages.create(**params)
        except Exception as exc:
            raise map_anthropic_error(exc) from exc
        try:
            answer_tool = request.response_schema_name if request.response_schema is not None else None
            yield from _stream_events(stream, model, answer_tool)
        finally:
            stream.close()


# --- request mapping ---


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # Anthropic needs the input as an object; sending something else (or guessing) would
        # misrepresent what the model said earlier in the conversation.
        raise InvalidModelRequest("A tool call's arguments in the conversation are not a JSON object",
                                  details={"provider": _PROVIDER})
    return value


def _params(model: str, request: ChatRequest) -> dict[str, Any]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return  # Anthropic rejects empty messages and empty text blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in request.messages:
        if message.role == "system":
            if message.content:
                system.append(message.content)
        elif message.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": message.tool_call_id or "",
                          "content": message.content}])
        elif message.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
            blocks += [{"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)}
                       for call in message.tool_calls]
            add("assistant", blocks)
        else:
            add("user", [{"type": "text", "text": message.content}] if message.content else [])

    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        params["system"] = "\n\n".join(system)
    if request.response_schema is not None:
        # Forcing the answer tool leaves no room for the request's own tools: they are not sent.
        params["tools"] = [{"name": request.response_schema_name,
                            "description": "Give the answer as this tool's input.",
                            "input_schema": request.response_schema}]
        params["tool_choice"] = {"type": "tool", "name": request.response_schema_name}
    elif request.tools:
        params["tools"] = [{"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
                           for tool in request.tools]
        if request.tool_choice in TOOL_CHOICES:
            params["tool_choice"] = {"type": {"auto": "auto", "required": "any", "none": "none"}[request.tool_choice]}
        elif request.tool_choice is not None:
            params["tool_choice"] = {"type": "tool", "name": request.tool_choice}
    # temperature and top_p are not sent: from API version 2026-10-21 (the one SDK 2.x sends)
    # any sampling parameter, even at its default, is a 400 on every model, and the SDK no
    # longer accepts them. Requests carry them for other providers; here they are ignored.
    if request.stop:
        params["stop_sequences"] = request.stop
    return params


# --- streaming ---


def _stream_events(stream: Iterator[Any], model: str, answer_tool: str | None) -> Iterator[ChatEvent]:
    import anthropic
    import httpx2

    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: object = None
    answered_model = ""
    tool_index: dict[int, int] = {}  # content block index -> tool call ordinal
    answer_blocks: set[int] = set()  # content blocks of the forced answer tool
    finished = False
    try:
        for event in stream:
            kind = event.type
            if kind == "message_start":
                message = event.message
                answered_model = getattr(message, "model", None) or ""
                usage = getattr(message, "usage", None)
                if usage is not None:
                    input_tokens = _input_tokens(usage)
                    output_tokens = getattr(usage, "output_tokens", None)
            elif kind == "content_block_start":
                block = event.content_block
                if block.type == "text" and getattr(block, "text", ""):
                    yield TextDelta(block.text)
                elif block.type == "tool_use":
                    if answer_tool is not None and block.name == answer_tool:
                        answer_blocks.add(event.index)
                    else:
                        tool_index[event.index] = ordinal = len(tool_index)
                        yield ToolCallDelta(index=ordinal, id=block.id, name=block.name)
            elif kind == "content_block_delta":
                delta = event.delta
                if delta.type == "text_delta":
                    if delta.text:
                        yield TextDelta(delta.text)
                elif delta.type == "input_json_delta":
                    if event.index in answer_blocks:
                        if delta.partial_json:
                            yield TextDelta(delta.partial_json)
                    elif event.index in tool_index:
                        yield ToolCallDelta(index=tool_index[event.index], arguments=delta.partial_json or "")
                # thinking/signature/citation deltas are not part of the answer
            elif kind == "message_delta":
                stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
                usage = getattr(event, "usage", None)
                if usage is not None:
                    # Cumulative counts; input tokens appear here only on some server tools' turns.
                    if getattr(usage, "output_tokens", None) is not None:
                        output_tokens = usage.output_tokens
                    if getattr(usage, "input_tokens", None) is not None:
                        input_tokens = _input_tokens(usage)
            elif kind == "message_stop":
                finished = True
                break
    except ProviderError:
        raise
    except (AttributeError, TypeError) as exc:  # an event that is JSON but not the expected shape
        raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc
    except httpx2.TimeoutException as exc:  # the SDK's stream does not wrap transport errors
        raise ProviderTimeout(details={"provider": _PROVIDER}) from exc
    except httpx2.TransportError as exc:
        raise ProviderUnavailable(details={"provider": _PROVIDER}) from exc
    except Exception as exc:
        raise map_anthropic_error(exc) from exc
    if not finished:
        raise ProviderUnavailable("The model provider's stream ended before the answer was complete",
                                  details={"provider": _PROVIDER})
    usage_out = None
    if input_tokens is not None or output_tokens is not None:
        usage_out = Usage(input_tokens or 0, int(output_tokens or 0))
    yield StreamEnd(stop_reason=_stop_reason(stop_reason, structured=answer_tool is not None),
                    usage=usage_out, model=answered_model or model)
    # The answer is complete: read on to the end of the body (the SDK's stream does, past
    # message_stop) so httpx returns the connection to the pool instead of dropping it. A
    # server that stalls or breaks here costs only that connection, never the answer.
    with contextlib.suppress(httpx2.HTTPError, anthropic.AnthropicError, ValueError):
        for _ in stream:
            pass


# --- errors ---

# Error types an ``event: error`` carries mid-stream (the HTTP status was already 200).
_STREAM_ERROR_TYPES: dict[str, type[ProviderError]] = {
    "overloaded_error": ProviderUnavailable,
    "api_error": ProviderUnavailable,
    "timeout_error": ProviderTimeout,
    "rate_limit_error": ProviderRateLimited,
    "authentication_error": ProviderAuthFailed,
    "permission_error": ProviderAuthFailed,
    "invalid_request_error": InvalidModelRequest,
}


# Anthropic reports a prompt over the context window as a plain invalid_request_error whose
# message is "prompt is too long: 208310 tokens > 200000 maximum": no code tells it apart, so
# (for this type only) the message does, and names the window.
_PROMPT_TOO_LONG = re.compile(r"^\s*prompt is too long\b(?:.*?>\s*(\d+)\s*maximum)?", re.IGNORECASE)


def _context_overflow(exc: Any, error_type: str | None, details: dict[str, str]) -> ContextTooLong | None:
    if error_type != "invalid_request_error":
        return None
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    match = _PROMPT_TOO_LONG.match(message) if isinstance(message, str) else None
    if match is None:
        return None
    return ContextTooLong(context_window=int(match.group(1)) if match.group(1) else None, details=details)


def map_anthropic_error(exc: BaseException) -> ProviderError:
    """The ProviderError for an exception raised by the anthropic SDK."""
    import anthropic
    import httpx2

    details = {"provider": _PROVIDER}
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout(details=details)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return ProviderUnavailable(details=details)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        error_type = exc.type if isinstance(exc.type, str) else None
        details = {**details, "status": str(status), **({"provider_code": error_type} if error_type else {})}
        overflow = _context_overflow(exc, error_type, details)
        if overflow is not None:
            return overflow
        if status < 400:
            # An error event inside a 200 stream: only its type tells what happened.
            cls = _STREAM_ERROR_TYPES.get(error_type or "", ProviderUnavailable)
            return cls(details=details)
        if status == 429:
            return ProviderRateLimited(retry_after_s=parse_retry_after(exc.response.headers), details=details)
        if status in (401, 403):
            return ProviderAuthFailed(details=details)
        if status == 413:
            # request_too_large: the request's bytes, over the API's size limit.
            return ContextTooLong(details=details)
        if status == 408:
            return ProviderTimeout(details=details)
        if status >= 500:  # 529 overloaded included
            return ProviderUnavailable(details=details)
        if status == 402:
            return ProviderError("The model provider account has a billing problem", details=details)
        return InvalidModelRequest(details=details)
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        return MalformedProviderResponse(details=details)
    if isinstance(exc, anthropic.AnthropicError):
        return InvalidModelRequest(details=details)
    raise exc
