"""OpenAI and OpenAI-compatible endpoints (DeepSeek, Qwen, Ollama, vLLM, Gemini's OpenAI
endpoint...) through the official ``openai`` SDK, chosen by ``Credentials.base_url``.

The SDK is imported on first use, not with this module: importing it costs ~0.4 s, which a
function that never calls a model must not pay at cold start.

- The SDK's own retries are off (``max_retries=0``): ``shared.models.resilience`` decides,
  with Retry-After, a circuit breaker and fallback, and two retry layers would multiply.
- ``max_tokens`` (not ``max_completion_tokens``) is sent: every compatible server knows it.
- Errors are mapped by exception type, HTTP status and the error body's ``code`` and
  ``type``. Message text is read in one case only: a context overflow reported by a
  compatible server that has no code for it (vLLM's "maximum context length is N tokens"
  with code 400), which is also where the real context window is learned from.
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
    Message,
    StopReason,
    StreamEnd,
    TextDelta,
    Timeouts,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    import openai

# Clients kept per adapter instance (one per endpoint, key and timeouts); a client holds a
# connection pool, so reusing it saves a TCP+TLS handshake per call.
_MAX_CLIENTS = 32
# Sent to keyless local servers (Ollama, vLLM without --api-key): the SDK insists on a key,
# and passing None would make it read OPENAI_API_KEY from the environment instead.
_NO_KEY = "no-key"

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _stop_reason(value: object) -> StopReason:
    # Unknown reasons from compatible servers ("eos", "end_turn"...) mean a normal end.
    return _STOP_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


class OpenAIProvider:
    """ChatProvider and EmbeddingProvider. Rerank is not offered by this protocol."""

    name = "openai"

    def __init__(self, *, default_base_url: str | None = None) -> None:
        self._default_base_url = default_base_url
        self._clients: OrderedDict[tuple[Any, ...], openai.OpenAI] = OrderedDict()
        self._lock = threading.Lock()

    # --- clients ---

    def _client(self, credentials: Credentials, timeouts: Timeouts) -> openai.OpenAI:
        base_url = credentials.base_url or self._default_base_url
        api_key = credentials.api_key or _NO_KEY
        # Keyed by a hash so the secret is not also kept as a dictionary key.
        key = (base_url, hashlib.sha256(api_key.encode()).hexdigest(), timeouts.connect_s, timeouts.read_s,
               credentials.egress)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
        import openai

        client = openai.OpenAI(
            http_client=tenant_http_client(openai.DefaultHttpxClient, credentials),
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(timeouts.read_s, connect=timeouts.connect_s),
        )
        with self._lock:
            self._clients[key] = client
            while len(self._clients) > _MAX_CLIENTS:
                # Not closed: another thread may still be using it; its pool closes when collected.
                self._clients.popitem(last=False)
        return client

    # --- chat ---

    def chat(self, model: str, request: ChatRequest, credentials: Credentials, timeouts: Timeouts) -> ChatResult:
        client = self._client(credentials, timeouts)
        try:
            completion = client.chat.completions.create(**_chat_params(model, request))
        except Exception as exc:
            raise map_openai_error(exc) from exc
        try:
            choice = completion.choices[0]
            message = choice.message
            tool_calls = [
                ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "")
                for call in (message.tool_calls or [])
                if getattr(call, "type", "function") == "function"
            ]
            usage = completion.usage
            return ChatResult(
                content=message.content or "",
                tool_calls=tool_calls,
                stop_reason=_stop_reason(choice.finish_reason),
                # A compatible server without usage: zeros, so the gateway counts locally.
                usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else Usage(),
                model=completion.model or model,
            )
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise MalformedProviderResponse(details={"provider": self.name}) from exc

    def stream(self, model: str, request: ChatRequest, credentials: Credentials,
               timeouts: Timeouts) -> Iterator[ChatEvent]:
        """Read it to its end (one step past StreamEnd) for the connection to be reused."""
        import httpx2
        import openai

        client = self._client(credentials, timeouts)
        params = _chat_params(model, request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        # httpx's read timeout applies to every read, so on a stream it bounds the silence
        # between chunks (the wait for the first one included): the stream idle timeout.
        params["timeout"] = openai.Timeout(timeouts.read_s, connect=timeouts.connect_s,
                                           read=timeouts.stream_idle_s)
        # The SDK's own Stream object stops reading at ``data: [DONE]`` and closes the
        # response with the chunked body's end still unread, so httpx drops the connection:
        # every streamed call would pay a new TCP+TLS handshake. Reading the SSE body through
        # ``with_streaming_response`` to its end keeps the connection pooled (and skips
        # building a pydantic model per chunk).
        try:
            with client.chat.completions.with_streaming_response.create(**params) as response:
                lines = response.iter_lines()
                yield from _stream_events(_sse_json(lines), model)
                # The answer is complete (StreamEnd is out): read the body's end so the
                # connection goes back to the pool. A server that stalls or drops it here
                # costs only that connection, never the answer.
                with contextlib.suppress(httpx2.HTTPError):
                    for _ in lines:
                        pass
        except ProviderError:
            raise
        except Exception as exc:
            raise map_openai_error(exc) from exc

    # --- embeddings ---

    def embed(self, model: str, texts: list[str], credentials: Credentials, timeouts: Timeouts,
              dimensions: int | None = None) -> tuple[list[list[float]], int]:
        if not texts:
            return [], 0
        client = self._client(credentials, timeouts)
        params: dict[str, Any] = {"model": model, "input": texts}
        if dimensions is not None:
            params["dimensions"] = dimensions
        try:
            response = client.embeddings.create(**params)
        except Exception as exc:
            raise map_openai_error(exc) from exc
        try:
            items = sorted(response.data, key=lambda item: item.index)
            vectors = [list(item.embedding) for item in items]
            if len(vectors) != len(texts):
                raise ValueError("one vector per input expected")
            tokens = response.usage.prompt_tokens if response.usage else 0
            return vectors, int(tokens or 0)
        except (AttributeError, TypeError, ValueError) as exc:
            raise MalformedProviderResponse(details={"provider": self.name}) from exc


# --- request mapping ---


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if message.role == "assistant" and message.tool_calls:
        # OpenAI wants null, not "", as the content of a message that only calls tools.
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    return out


def _chat_params(model: str, request: ChatRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "messages": [_message(m) for m in request.messages]}
    if request.tools:
        params["tools"] = [
            {"type": "function",
             "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}
            for tool in request.tools
        ]
        # Only with tools: OpenAI rejects a tool_choice without them.
        if request.tool_choice in TOOL_CHOICES:
            params["tool_choice"] = request.tool_choice
        elif request.tool_choice is not None:
            params["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    if request.response_schema is not None:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.response_schema_name, "schema": request.response_schema,
                            "strict": True},
        }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.top_p is not None:
        params["top_p"] = request.top_p
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    if request.stop:
        params["stop"] = request.stop
    return params


# --- streaming ---


def _sse_json(lines: Iterator[str]) -> Iterator[Any]:
    """The JSON payloads of an SSE body's events, up to ``data: [DONE]`` (the lines after it
    are left unread in ``lines``). Field handling follows the SSE spec: ``data`` lines
    accumulate until a blank line; comments and other fields are ignored (chat completions
    use neither)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.startswith("[DONE]"):
                    return
                yield json.loads(payload)
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a last event without its blank line
        payload = "\n".join(data)
        if not payload.startswith("[DONE]"):
            yield json.loads(payload)


def _tokens(value: object) -> int:
    return value if isinstance(value, int) else 0


def _stream_events(chunks: Iterator[Any], model: str) -> Iterator[ChatEvent]:
    finish: object = None
    usage: Usage | None = None
    answered_model = ""
    # Some compatible servers omit a tool call's index: a fragment with an id then starts a
    # new call and one without continues the last.
    calls_seen = 0
    last_index = 0
    try:
        for chunk in chunks:
            error = chunk.get("error")
            if error:
                raise stream_error(error)
            if chunk.get("object") == "error":
                # vLLM (before 0.6) sends the error object itself as the stream's last event.
                raise stream_error(chunk)
            answered_model = chunk.get("model") or answered_model
            chunk_usage = chunk.get("usage")
            if chunk_usage:
                usage = Usage(_tokens(chunk_usage.get("prompt_tokens")), _tokens(chunk_usage.get("completion_tokens")))
            for choice in chunk.get("choices") or ():
                if (choice.get("index") or 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    yield TextDelta(str(content))
                for call in delta.get("tool_calls") or ():
                    call_id = call.get("id") or None
                    index = call.get("index")
                    if not isinstance(index, int):
                        index = calls_seen if call_id else last_index
                    calls_seen = max(calls_seen, index + 1)
                    last_index = index
                    function = call.get("function") or {}
                    yield ToolCallDelta(index=index, id=call_id, name=function.get("name") or None,
                                        arguments=function.get("arguments") or "")
                if choice.get("finish_reason") is not None:
                    finish = choice["finish_reason"]
    except (AttributeError, TypeError) as exc:  # JSON, but not a chunk
        raise MalformedProviderResponse(details={"provider": OpenAIProvider.name}) from exc
    if finish is None:
        # [DONE] or a clean end of the body without a finish reason: the upstream dropped the
        # generation (a proxy timeout, a crashed worker). Retryable, like a dropped connection.
        raise ProviderUnavailable("The model provider's stream ended before the answer was complete",
                                  details={"provider": OpenAIProvider.name})
    yield StreamEnd(stop_reason=_stop_reason(finish), usage=usage, model=answered_model or model)


# --- errors ---


def _error_code(exc: Any) -> str | None:
    code = getattr(exc, "code", None)
    if code is None and isinstance(getattr(exc, "body", None), dict):
        code = exc.body.get("code")
    return str(code) if code is not None else None


# Error types that mean a context overflow: llama.cpp's server.
_CONTEXT_TYPES = frozenset({"exceed_context_size_error"})
# vLLM, SGLang, LiteLLM and OpenAI itself: "This model's maximum context length is 8192 tokens. ..."
_MAXIMUM_CONTEXT = re.compile(r"maximum context length is (\d+) tokens", re.IGNORECASE)


def context_overflow(error: object, details: dict[str, str]) -> ContextTooLong | None:
    """A ContextTooLong when an error body (``{"code", "type", "message", ...}``) says the
    input is over the context window, with the window when the body names it; else None.
    A string code decides; the message is read only where there is none (vLLM's code is the
    HTTP status, 400)."""
    if not isinstance(error, dict):
        return None
    code, kind, message = error.get("code"), error.get("type"), str(error.get("message") or "")
    match = _MAXIMUM_CONTEXT.search(message)
    window: int | None = int(match.group(1)) if match else None
    n_ctx = error.get("n_ctx")  # llama.cpp names it in the body
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool):
        window = n_ctx
    if code == "context_length_exceeded" or kind in _CONTEXT_TYPES:
        return ContextTooLong(context_window=window, details=details)
    if isinstance(code, str) and code:
        return None
    if match is not None:
        return ContextTooLong(context_window=window, details=details)
    return None


def stream_error(error: object) -> ProviderError:
    """The ProviderError for an ``{"error": {...}}`` event inside a stream (the HTTP status was
    already 200, so only the error's code tells what happened)."""
    details = {"provider": OpenAIProvider.name}
    code = error.get("code") if isinstance(error, dict) else None
    if code is not None:
        details["provider_code"] = str(code)
    overflow = context_overflow(error, details)
    if overflow is not None:
        return overflow
    if code in ("rate_limit_exceeded", "rate_limit_error"):
        return ProviderRateLimited(details=details)
    return ProviderUnavailable(details=details)


def map_openai_error(exc: BaseException) -> ProviderError:
    """The ProviderError for an exception raised by the openai SDK (or by httpx2 while we read
    a streamed body) during a call."""
    import httpx2
    import openai

    details = {"provider": OpenAIProvider.name}
    if isinstance(exc, ProviderError):
        return exc
    # APITimeoutError before APIConnectionError: it is a subclass.
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout(details=details)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ProviderUnavailable(details=details)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = _error_code(exc)
        details = {**details, "status": str(status), **({"provider_code": code} if code else {})}
        if status == 429:
            if code == "insufficient_quota":
                # The account is out of credit: waiting will not help, and it is not our request
                # that is wrong; a plain (non-retryable) provider error the operator must fix.
                return ProviderError("The model provider account has no quota left", details=details)
            return ProviderRateLimited(retry_after_s=parse_retry_after(exc.response.headers), details=details)
        if status in (401, 403):
            return ProviderAuthFailed(details=details)
        if status == 408:
            return ProviderTimeout(details=details)
        if status >= 500:
            return ProviderUnavailable(details=details)
        overflow = context_overflow(exc.body if isinstance(exc.body, dict) else {"code": code}, details)
        if overflow is not None:
            return overflow
        return InvalidModelRequest(details=details)
    if isinstance(exc, openai.APIResponseValidationError):
        return MalformedProviderResponse(details=details)
    if isinstance(exc, openai.APIError):
        # An error event inside a stream read by the SDK (the response had begun with 200).
        return stream_error(exc.body)
    if isinstance(exc, ValueError):  # a chunk or body that is not JSON (or not UTF-8)
        return MalformedProviderResponse(details=details)
    if isinstance(exc, openai.OpenAIError):
        return InvalidModelRequest(details=details)
    # Not a provider failure (a bug of ours): unchanged.
    raise exc
