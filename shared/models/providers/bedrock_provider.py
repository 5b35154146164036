"""Amazon Bedrock: chat through Converse / ConverseStream, embeddings through Titan
(``amazon.titan-embed-text-v2:0`` style bodies via InvokeModel).

Clients (``bedrock-runtime``) are created on first use per region, endpoint and timeouts,
with botocore's own retries off (one attempt in total): ``shared.models.resilience`` decides,
and two retry layers would multiply. Credentials are the function role's (the default chain).
``Credentials.base_url``, when set, is the endpoint URL (a VPC interface endpoint).

Errors are mapped by botocore error code (``ClientError``, and ``EventStreamError`` for an
exception event inside a stream) and by botocore/urllib3 exception type, never by message text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.models.errors import (
    InvalidModelRequest,
    MalformedProviderResponse,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from shared.models.resilience import parse_retry_after
from shared.models.types import (
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

_PROVIDER = "bedrock"
DEFAULT_REGION = "us-east-1"
# Titan embeds one text per call: a few calls in flight keep a batch of chunks quick without
# tripping the per-model request rate.
_EMBED_CONCURRENCY = 8

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}

_ERROR_CODES: dict[str, type[ProviderError]] = {
    "ThrottlingException": ProviderRateLimited,
    # A quota (tokens or requests per minute) exhausted for now: like a 429, and the fallback
    # model may have room.
    "ServiceQuotaExceededException": ProviderRateLimited,
    "ModelTimeoutException": ProviderTimeout,
    "ServiceUnavailableException": ProviderUnavailable,
    "InternalServerException": ProviderUnavailable,
    "ModelNotReadyException": ProviderUnavailable,
    "ModelErrorException": ProviderUnavailable,
    "ModelStreamErrorException": ProviderUnavailable,
    "AccessDeniedException": ProviderAuthFailed,
    "UnrecognizedClientException": ProviderAuthFailed,
    "ExpiredTokenException": ProviderAuthFailed,
    "InvalidSignatureException": ProviderAuthFailed,
    # Bedrock says "input is too long" with a ValidationException too, but only in its message
    # text, which is not matched on: it surfaces as an invalid request.
    "ValidationException": InvalidModelRequest,
    "ResourceNotFoundException": InvalidModelRequest,
}


def stop_reason(value: object) -> StopReason:
    return _STOP_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


def map_bedrock_error(exc: BaseException) -> ProviderError:
    """The ProviderError for an exception raised by botocore while calling or streaming."""
    import botocore.eventstream
    import botocore.exceptions
    import urllib3.exceptions

    details = {"provider": _PROVIDER}
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):  # EventStreamError is a subclass
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        # An exception event inside a stream carries the stream member's name as its code
        # ("throttlingException"); the same error from the API is "ThrottlingException".
        code = code[:1].upper() + code[1:]
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        details = {**details, "provider_code": code, **({"status": str(status)} if status else {})}
        cls = _ERROR_CODES.get(code)
        if cls is None:
            cls = ProviderUnavailable if isinstance(status, int) and status >= 500 else InvalidModelRequest
        if cls is ProviderRateLimited:
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders")
            return ProviderRateLimited(retry_after_s=parse_retry_after(headers), details=details)
        return cls(details=details)
    if isinstance(exc, botocore.exceptions.ReadTimeoutError | botocore.exceptions.ConnectTimeoutError
                  | urllib3.exceptions.TimeoutError):
        return ProviderTimeout(details=details)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return ProviderAuthFailed(details=details)
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return InvalidModelRequest(details=details)
    if isinstance(exc, botocore.exceptions.HTTPClientError | botocore.exceptions.ConnectionError
                  | urllib3.exceptions.HTTPError):
        return ProviderUnavailable(details=details)
    if isinstance(exc, botocore.eventstream.ParserError | ValueError):  # undecodable stream or body
        return MalformedProviderResponse(details=details)
    raise exc


class BedrockProvider:
    """ChatProvider and EmbeddingProvider over ``bedrock-runtime``."""

    name = _PROVIDER

    def __init__(self, *, default_region: str | None = None) -> None:
        self._default_region = default_region
        self._clients: dict[tuple[str, str | None, float, float], Any] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def client(self, credentials: Credentials, timeouts: Timeouts, *, read_s: float | None = None) -> Any:
        """The ``bedrock-runtime`` client for these credentials (region, endpoint) and timeouts."""
        import os

        region = credentials.region or self._default_region or os.environ.get("AWS_REGION") \
            or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        read = timeouts.read_s if read_s is None else read_s
        key = (region, credentials.base_url, timeouts.connect_s, read)
        client = self._clients.get(key)
        if client is not None:
            return client
        import boto3.session
        from botocore.config import Config

        # Client creation from one session is not thread-safe: under the lock, with a session
        # of our own so nothing else's configuration of the default session leaks in.
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if self._session is None:
                    self._session = boto3.session.Session()
                # total_max_attempts, not max_attempts: botocore's client-config max_attempts
                # counts *retries* ({"max_attempts": 1} would still retry once).
                config = Config(connect_timeout=timeouts.connect_s, read_timeout=read,
                                retries={"total_max_attempts": 1, "mode": "standard"}, tcp_keepalive=True)
                client = self._session.client("bedrock-runtime", region_name=region,
                                              endpoint_url=credentials.base_url, config=config)
                self._clients[key] = client
        return client

    # --- chat ---

    def chat(self, model: str, request: ChatRequest, credentials: Credentials, timeouts: Timeouts) -> ChatResult:
        client = self.client(credentials, timeouts)
        params = converse_params(model, request)
        try:
            response = client.converse(**params)
        except Exception as exc:
            raise map_bedrock_error(exc) from exc
        try:
            return chat_result(response, model)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc

    def stream(self, model: str, request: ChatRequest, credentials: Credentials,
               timeouts: Timeouts) -> Iterator[ChatEvent]:
        # botocore's read timeout bounds each socket read: on a stream, the silence between events.
        client = self.client(credentials, timeouts, read_s=timeouts.stream_idle_s)
        params = converse_params(model, request)
        try:
            events = client.converse_stream(**params)["stream"]
        except KeyError as exc:
            raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc
        except Exception as exc:
            raise map_bedrock_error(exc) from exc
        try:
            yield from stream_events(events, model)
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()

    # --- embeddings ---

    def embed(self, model: str, texts: list[str], credentials: Credentials, timeouts: Timeouts,
              dimensions: int | None = None) -> tuple[list[list[float]], int]:
        if not texts:
            return [], 0
        client = self.client(credentials, timeouts)

        def one(text: str) -> tuple[list[float], int]:
            body: dict[str, Any] = {"inputText": text, "normalize": True}
            if dimensions is not None:
                body["dimensions"] = dimensions
            try:
                response = client.invoke_model(modelId=model, body=json.dumps(body),
                                               contentType="application/json", accept="application/json")
                payload = json.loads(response["body"].read())
            except Exception as exc:
                raise map_bedrock_error(exc) from exc
            try:
                return [float(x) for x in payload["embedding"]], int(payload.get("inputTextTokenCount") or 0)
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc

        if len(texts) == 1:
            results = [one(texts[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(_EMBED_CONCURRENCY, len(texts))) as pool:
                results = list(pool.map(one, texts))  # map keeps input order
        return [vector for vector, _ in results], sum(tokens for _, tokens in results)


# --- request mapping ---


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidModelRequest("A tool call's arguments in the conversation are not a JSON object",
                                  details={"provider": _PROVIDER})
    return value


def converse_params(model: str, request: ChatRequest) -> dict[str, Any]:
    """The Converse/ConverseStream request for ``request``."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    uses_tools = False

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return  # Converse rejects empty content and blank text blocks
        # Converse requires user and assistant turns to alternate: all the tool results that
        # answer one assistant turn travel in one user message.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for message in request.messages:
        if message.role == "system":
            if message.content:
                system.append({"text": message.content})
        elif message.role == "tool":
            uses_tools = True
            add("user", [{"toolResult": {"toolUseId": message.tool_call_id or "",
                                         "content": [{"text": message.content}]}}])
        elif message.role == "assistant":
            blocks: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
            for call in message.tool_calls:
                uses_tools = True
                blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name,
                                           "input": _tool_input(call.arguments)}})
            add("assistant", blocks)
        else:
            add("user", [{"text": message.content}] if message.content else [])

    params: dict[str, Any] = {"modelId": model, "messages": turns}
    if system:
        params["system"] = system
    # Converse has no "none" tool choice: the tools are left out instead, unless the
    # conversation already holds tool blocks (then Bedrock requires the tool configuration).
    if request.tools and (request.tool_choice != "none" or uses_tools):
        tool_config: dict[str, Any] = {"tools": [
            {"toolSpec": {"name": tool.name, "inputSchema": {"json": tool.parameters},
                          **({"description": tool.description} if tool.description else {})}}
            for tool in request.tools
        ]}
        if request.tool_choice == "auto":
            tool_config["toolChoice"] = {"auto": {}}
        elif request.tool_choice == "required":
            tool_config["toolChoice"] = {"any": {}}
        elif request.tool_choice is not None and request.tool_choice != "none":
            tool_config["toolChoice"] = {"tool": {"name": request.tool_choice}}
        params["toolConfig"] = tool_config
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = request.stop
    if inference:
        params["inferenceConfig"] = inference
    if request.response_schema is not None:
        # Converse's native structured output: the answer arrives as ordinary text (streamed as
        # text deltas), as with OpenAI's json_schema response format.
        params["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
            "schema": json.dumps(request.response_schema), "name": request.response_schema_name}}}}
    return params


def _usage(usage: dict[str, Any]) -> Usage:
    # Cached prompt tokens are reported apart from inputTokens; they are still input.
    input_tokens = sum(int(usage.get(name) or 0)
                       for name in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"))
    return Usage(input_tokens, int(usage.get("outputTokens") or 0))


def chat_result(response: dict[str, Any], model: str) -> ChatResult:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in response["output"]["message"]["content"]:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(ToolCall(id=use["toolUseId"], name=use["name"], arguments=json.dumps(use.get("input", {}))))
    usage = response.get("usage")
    return ChatResult(content="".join(texts), tool_calls=calls, stop_reason=stop_reason(response.get("stopReason")),
                      usage=_usage(usage) if usage else Usage(), model=model)


def stream_events(events: Iterable[dict[str, Any]], model: str) -> Iterator[ChatEvent]:
    """Our events for ConverseStream's events (the dicts botocore yields from ``response["stream"]``).

    ``metadata`` (usage) follows ``messageStop``, so StreamEnd is yielded when the stream ends.
    """
    tool_index: dict[int, int] = {}  # content block index -> tool call ordinal
    stop: object = None
    usage: Usage | None = None
    stopped = False
    try:
        for event in events:
            if "contentBlockDelta" in event:
                body = event["contentBlockDelta"]
                delta = body["delta"]
                if "text" in delta:
                    if delta["text"]:
                        yield TextDelta(delta["text"])
                elif "toolUse" in delta:
                    index = tool_index.get(body["contentBlockIndex"])
                    if index is None:  # a delta before its start: the start carried the id
                        raise ValueError("tool input delta without a tool block start")
                    yield ToolCallDelta(index=index, arguments=delta["toolUse"].get("input") or "")
                # reasoningContent / citation deltas are not part of the answer
            elif "contentBlockStart" in event:
                body = event["contentBlockStart"]
                start = body.get("start") or {}
                if "toolUse" in start:
                    tool_index[body["contentBlockIndex"]] = ordinal = len(tool_index)
                    yield ToolCallDelta(index=ordinal, id=start["toolUse"]["toolUseId"],
                                        name=start["toolUse"]["name"])
            elif "messageStop" in event:
                stop = event["messageStop"].get("stopReason")
                stopped = True
            elif "metadata" in event:
                raw_usage = event["metadata"].get("usage")
                if raw_usage:
                    usage = _usage(raw_usage)
    except ProviderError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedProviderResponse(details={"provider": _PROVIDER}) from exc
    except Exception as exc:
        raise map_bedrock_error(exc) from exc
    if not stopped:
        raise ProviderUnavailable("The model provider's stream ended before the answer was complete",
                                  details={"provider": _PROVIDER})
    yield StreamEnd(stop_reason=stop_reason(stop), usage=usage, model=model)
