"""BedrockProvider against botocore's own machinery (docs/adr/0017-bedrock-tests-with-stubber.md).

- Converse, InvokeModel and errors: ``botocore.stub.Stubber`` on the provider's real client,
  with request and response shapes validated against the bedrock-runtime service model.
- ConverseStream: Stubber cannot stub an event stream (it validates ``stream`` as one event
  dict and hands that dict back, not an iterator of events), so the same real client gets
  the real binary ``application/vnd.amazon.eventstream`` bytes from a ``before-send`` hook and
  botocore decodes them; the event mapping is also tested directly on real-shaped dicts.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

from shared.models.errors import (
    InvalidModelRequest,
    MalformedProviderResponse,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from shared.models.providers.bedrock_provider import BedrockProvider, stream_events
from shared.models.types import (
    ChatEvent,
    ChatRequest,
    Credentials,
    Message,
    StreamEnd,
    TextDelta,
    Timeouts,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
CREDS = Credentials(region="eu-west-1")
TIMEOUTS = Timeouts(connect_s=2, read_s=30, stream_idle_s=10)
HELLO = ChatRequest(messages=[Message(role="user", content="Hello")])


@pytest.fixture(scope="module")
def provider() -> BedrockProvider:
    # One provider (one boto3 session and its clients) for the module: creating a
    # bedrock-runtime client loads the service model, ~0.4 s each time in a fresh session.
    return BedrockProvider()


@pytest.fixture
def answer(provider: BedrockProvider) -> Iterator[Callable[[Any, str, Callable[[Any], AWSResponse]], None]]:
    """Register a ``before-send`` handler answering ``operation`` on a client, for this test."""
    registered: list[tuple[Any, str, str]] = []

    def register(client: Any, operation: str, handler: Callable[[Any], AWSResponse]) -> None:
        event, unique_id = f"before-send.bedrock-runtime.{operation}", f"test-{len(registered)}"
        client.meta.events.register(event, lambda request, **_: handler(request), unique_id=unique_id)
        registered.append((client, event, unique_id))

    yield register
    for client, event, unique_id in registered:
        client.meta.events.unregister(event, unique_id=unique_id)


@pytest.fixture
def stub(provider: BedrockProvider) -> Iterator[Stubber]:
    """A Stubber on the very client the provider uses for non-streaming calls."""
    with Stubber(provider.client(CREDS, TIMEOUTS)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def converse_response(content: list[dict[str, Any]], stop: str = "end_turn",
                      usage: tuple[int, int] = (10, 5)) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)},
        "metrics": {"latencyMs": 321},
    }


def collect(events: Iterator[ChatEvent]) -> tuple[list[ChatEvent], BaseException | None]:
    got: list[ChatEvent] = []
    try:
        for event in events:
            got.append(event)
    except ProviderError as exc:
        return got, exc
    return got, None


# --- Converse ---


def test_converse_request_and_answer(provider, stub):
    request = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Oslo?"),
            Message(role="assistant", content="Checking.",
                    tool_calls=[ToolCall(id="tu_1", name="weather", arguments='{"city": "Oslo"}')]),
            Message(role="tool", tool_call_id="tu_1", content="-3C"),
            Message(role="user", content="And tomorrow?"),
        ],
        tools=[Tool(name="weather", description="Weather now",
                    parameters={"type": "object", "properties": {"city": {"type": "string"}}})],
        tool_choice="required", temperature=0.5, top_p=0.9, max_tokens=200, stop=["END"],
    )
    expected = {
        "modelId": MODEL,
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tu_1", "name": "weather", "input": {"city": "Oslo"}}}]},
            # Converse requires alternating turns: the result and the question share one.
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tu_1", "content": [{"text": "-3C"}]}},
                {"text": "And tomorrow?"}]},
        ],
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "weather", "description": "Weather now", "inputSchema": {
                "json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
            "toolChoice": {"any": {}},
        },
        "inferenceConfig": {"maxTokens": 200, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
    }
    stub.add_response("converse", converse_response(
        [{"text": "Let me look."}, {"toolUse": {"toolUseId": "tu_2", "name": "weather", "input": {"city": "Oslo"}}}],
        stop="tool_use", usage=(120, 30)), expected)

    result = provider.chat(MODEL, request, CREDS, TIMEOUTS)

    assert result.content == "Let me look."
    assert result.tool_calls == [ToolCall(id="tu_2", name="weather", arguments='{"city": "Oslo"}')]
    assert result.stop_reason == "tool_calls"
    assert result.usage == Usage(120, 30)
    assert result.model == MODEL


@pytest.mark.parametrize(("bedrock_reason", "ours"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
    ("model_context_window_exceeded", "length"), ("malformed_tool_use", "error"),
])
def test_stop_reasons(provider, stub, bedrock_reason, ours):
    stub.add_response("converse", converse_response([{"text": "x"}], stop=bedrock_reason))
    assert provider.chat(MODEL, HELLO, CREDS, TIMEOUTS).stop_reason == ours


def test_cached_input_tokens_count_as_input(provider, stub):
    response = converse_response([{"text": "x"}])
    response["usage"].update({"cacheReadInputTokens": 100, "cacheWriteInputTokens": 7})
    stub.add_response("converse", response)
    assert provider.chat(MODEL, HELLO, CREDS, TIMEOUTS).usage == Usage(117, 5)


def test_structured_output_uses_converse_output_config(provider, stub):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    request = ChatRequest(messages=HELLO.messages, response_schema=schema, response_schema_name="final")
    stub.add_response("converse", converse_response([{"text": '{"answer": "42"}'}]), {
        "modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "outputConfig": {"textFormat": {"type": "json_schema", "structure": {
            "jsonSchema": {"schema": json.dumps(schema), "name": "final"}}}},
    })
    assert json.loads(provider.chat(MODEL, request, CREDS, TIMEOUTS).content) == {"answer": "42"}


def test_tool_choice_none_leaves_the_tools_out(provider, stub):
    request = ChatRequest(messages=HELLO.messages, tools=[Tool(name="search")], tool_choice="none")
    stub.add_response("converse", converse_response([{"text": "x"}]),
                      {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "Hello"}]}]})
    provider.chat(MODEL, request, CREDS, TIMEOUTS)


def test_a_tool_choice_naming_a_tool_forces_that_tool(provider, stub):
    request = ChatRequest(messages=HELLO.messages, tools=[Tool(name="search")], tool_choice="search")
    stub.add_response("converse", converse_response([{"text": "x"}]), {
        "modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "toolConfig": {"tools": [{"toolSpec": {"name": "search", "inputSchema": {"json": {
            "type": "object", "properties": {}}}}}], "toolChoice": {"tool": {"name": "search"}}}})
    provider.chat(MODEL, request, CREDS, TIMEOUTS)


@pytest.mark.parametrize(("code", "status", "error"), [
    ("ThrottlingException", 429, ProviderRateLimited),
    ("ServiceQuotaExceededException", 400, ProviderRateLimited),
    ("ValidationException", 400, InvalidModelRequest),
    ("ResourceNotFoundException", 404, InvalidModelRequest),
    ("ModelTimeoutException", 408, ProviderTimeout),
    ("ServiceUnavailableException", 503, ProviderUnavailable),
    ("InternalServerException", 500, ProviderUnavailable),
    ("ModelNotReadyException", 429, ProviderUnavailable),
    ("ModelErrorException", 424, ProviderUnavailable),
    ("AccessDeniedException", 403, ProviderAuthFailed),
    ("UnrecognizedClientException", 403, ProviderAuthFailed),
    ("SomethingNewException", 503, ProviderUnavailable),
    ("SomethingNewException", 400, InvalidModelRequest),
])
def test_client_errors_are_mapped_by_code(provider, stub, code, status, error):
    stub.add_client_error("converse", service_error_code=code, service_message="Input is too long for model",
                          http_status_code=status)
    with pytest.raises(ProviderError) as caught:
        provider.chat(MODEL, HELLO, CREDS, TIMEOUTS)
    assert type(caught.value) is error
    assert caught.value.details["provider_code"] == code


def test_throttling_retry_after_header(provider, stub):
    stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429,
                          response_meta={"HTTPHeaders": {"retry-after": "4"}})
    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat(MODEL, HELLO, CREDS, TIMEOUTS)
    assert caught.value.retry_after_s == 4.0


def test_client_config_has_our_timeouts_and_no_sdk_retries(provider):
    client = provider.client(CREDS, TIMEOUTS)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.connect_timeout == 2
    assert client.meta.config.read_timeout == 30
    assert client.meta.config.retries["total_max_attempts"] == 1  # the first attempt only
    assert provider.client(CREDS, TIMEOUTS) is client
    assert provider.client(Credentials(region="us-west-2"), TIMEOUTS) is not client
    assert provider.client(CREDS, TIMEOUTS, read_s=10).meta.config.read_timeout == 10


# --- Titan embeddings ---


def _titan_body(vector: list[float], tokens: int) -> StreamingBody:
    raw = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_titan_embedding_request_and_answer(provider, stub):
    stub.add_response("invoke_model", {"body": _titan_body([0.1, 0.2, 0.3], 4), "contentType": "application/json"},
                      {"modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
                       "accept": "application/json",
                       "body": json.dumps({"inputText": "hello world", "normalize": True, "dimensions": 256})})
    vectors, tokens = provider.embed("amazon.titan-embed-text-v2:0", ["hello world"], CREDS, TIMEOUTS,
                                     dimensions=256)
    assert vectors == [[0.1, 0.2, 0.3]]
    assert tokens == 4


def test_titan_embedding_without_dimensions(provider, stub):
    stub.add_response("invoke_model", {"body": _titan_body([1.0], 1), "contentType": "application/json"},
                      {"modelId": "amazon.titan-embed-text-v2:0", "contentType": "application/json",
                       "accept": "application/json", "body": json.dumps({"inputText": "x", "normalize": True})})
    provider.embed("amazon.titan-embed-text-v2:0", ["x"], CREDS, TIMEOUTS)


def test_botocore_does_not_retry(provider, answer):
    client = provider.client(CREDS, TIMEOUTS)
    calls: list[int] = []

    def unavailable(request: Any) -> AWSResponse:
        calls.append(1)
        body = json.dumps({"message": "try later"}).encode()
        return AWSResponse(request.url, 503, {"x-amzn-errortype": "ServiceUnavailableException:http://internal/",
                                              "content-type": "application/json"}, _raw(body, 503))

    answer(client, "Converse", unavailable)
    with pytest.raises(ProviderUnavailable):
        provider.chat(MODEL, HELLO, CREDS, TIMEOUTS)
    assert len(calls) == 1


def test_titan_embedding_error(provider, stub):
    stub.add_client_error("invoke_model", service_error_code="ThrottlingException", http_status_code=429)
    with pytest.raises(ProviderRateLimited):
        provider.embed("amazon.titan-embed-text-v2:0", ["x"], CREDS, TIMEOUTS)


def test_many_texts_are_embedded_concurrently_and_returned_in_input_order(provider, answer):
    client = provider.client(CREDS, TIMEOUTS)
    seen: list[str] = []

    def titan(request: Any) -> AWSResponse:
        text = json.loads(request.body)["inputText"]
        seen.append(text)
        body = json.dumps({"embedding": [float(len(text))], "inputTextTokenCount": len(text)}).encode()
        return AWSResponse(request.url, 200, {"content-type": "application/json"}, _raw(body))

    answer(client, "InvokeModel", titan)
    texts = ["a" * n for n in range(1, 21)]
    vectors, tokens = provider.embed("amazon.titan-embed-text-v2:0", texts, CREDS, TIMEOUTS)
    assert [v[0] for v in vectors] == [float(n) for n in range(1, 21)]
    assert tokens == sum(range(1, 21))
    assert sorted(seen) == sorted(texts)


# --- ConverseStream: the event mapping on real-shaped events ---

TEXT_AND_TOOL_EVENTS: list[dict[str, Any]] = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Let me "}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "check."}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "weather"}},
                           "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city": '}}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Oslo"}'}}, "contentBlockIndex": 1}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"messageStop": {"stopReason": "tool_use"}},
    {"metadata": {"usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52},
                  "metrics": {"latencyMs": 800}}},
]

EXPECTED_TEXT_AND_TOOL: list[ChatEvent] = [
    TextDelta("Let me "), TextDelta("check."),
    ToolCallDelta(index=0, id="tooluse_abc", name="weather"),
    ToolCallDelta(index=0, arguments='{"city": '), ToolCallDelta(index=0, arguments='"Oslo"}'),
    StreamEnd(stop_reason="tool_calls", usage=Usage(40, 12), model=MODEL),
]


def test_stream_event_mapping():
    assert list(stream_events(TEXT_AND_TOOL_EVENTS, MODEL)) == EXPECTED_TEXT_AND_TOOL


def test_stream_without_metadata_has_no_usage():
    events = list(stream_events(TEXT_AND_TOOL_EVENTS[:-1], MODEL))
    assert events[-1] == StreamEnd(stop_reason="tool_calls", usage=None, model=MODEL)


def test_stream_without_message_stop_is_an_error():
    events, error = collect(stream_events(TEXT_AND_TOOL_EVENTS[:3], MODEL))
    assert events == [TextDelta("Let me "), TextDelta("check.")]
    assert isinstance(error, ProviderUnavailable)


def test_stream_event_of_the_wrong_shape_is_malformed():
    events, error = collect(stream_events([{"contentBlockDelta": {"delta": {"toolUse": {"input": "{"}},
                                                                  "contentBlockIndex": 5}}], MODEL))
    assert events == [] and isinstance(error, MalformedProviderResponse)


# --- ConverseStream through botocore's event stream decoding ---


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (struct.pack("!B", len(encoded_name)) + encoded_name + b"\x07"  # 7: string
            + struct.pack("!H", len(encoded_value)) + encoded_value)


def _message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding (prelude, CRCs, headers, payload)."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack("!II", 16 + len(header_bytes) + len(payload), len(header_bytes))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + header_bytes + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _event(event: dict[str, Any]) -> bytes:
    [(event_type, payload)] = event.items()
    return _message({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                    json.dumps({**payload, "p": "abcdefgh"}).encode())  # Bedrock pads events with "p"


def _exception(exception_type: str, message: str) -> bytes:
    return _message({":exception-type": exception_type, ":content-type": "application/json",
                     ":message-type": "exception"}, json.dumps({"message": message}).encode())


def _raw(body: bytes, status: int = 200) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)


@pytest.fixture
def converse_stream(provider: BedrockProvider, answer: Any) -> Callable[[bytes], list[dict[str, Any]]]:
    """Make the provider's stream client receive ``body`` (event stream bytes); returns the
    list the sent requests are recorded in."""
    client = provider.client(CREDS, TIMEOUTS, read_s=TIMEOUTS.stream_idle_s)
    sent: list[dict[str, Any]] = []

    def install(body: bytes) -> list[dict[str, Any]]:
        def reply(request: Any) -> AWSResponse:
            sent.append(json.loads(request.body))
            return AWSResponse(request.url, 200, {"content-type": "application/vnd.amazon.eventstream"}, _raw(body))

        answer(client, "ConverseStream", reply)
        return sent

    return install


def test_converse_stream_through_botocore(provider, converse_stream):
    sent = converse_stream(b"".join(_event(e) for e in TEXT_AND_TOOL_EVENTS))
    request = ChatRequest(messages=[Message(role="system", content="Be brief."), *HELLO.messages], max_tokens=50)

    events = list(provider.stream(MODEL, request, CREDS, TIMEOUTS))

    assert events == EXPECTED_TEXT_AND_TOOL
    assert sent == [{"messages": [{"role": "user", "content": [{"text": "Hello"}]}],
                     "system": [{"text": "Be brief."}], "inferenceConfig": {"maxTokens": 50}}]


def test_exception_event_mid_stream_is_mapped_by_its_code(provider, converse_stream):
    converse_stream(b"".join(_event(e) for e in TEXT_AND_TOOL_EVENTS[:3])
                    + _exception("throttlingException", "Too many tokens, please wait before trying again."))
    events, error = collect(provider.stream(MODEL, HELLO, CREDS, TIMEOUTS))
    assert events == [TextDelta("Let me "), TextDelta("check.")]
    assert isinstance(error, ProviderRateLimited)


def test_model_stream_error_mid_stream(provider, converse_stream):
    converse_stream(_event(TEXT_AND_TOOL_EVENTS[0]) + _exception("modelStreamErrorException", "model failed"))
    _, error = collect(provider.stream(MODEL, HELLO, CREDS, TIMEOUTS))
    assert type(error) is ProviderUnavailable


def test_truncated_event_stream(provider, converse_stream):
    body = b"".join(_event(e) for e in TEXT_AND_TOOL_EVENTS[:3])
    converse_stream(body[:-7])  # the connection dropped inside the last event
    events, error = collect(provider.stream(MODEL, HELLO, CREDS, TIMEOUTS))
    assert events == [TextDelta("Let me ")]
    assert isinstance(error, ProviderUnavailable)


def test_corrupted_event_stream(provider, converse_stream):
    body = bytearray(_event(TEXT_AND_TOOL_EVENTS[0]) + _event(TEXT_AND_TOOL_EVENTS[1]))
    body[-6] ^= 0xFF  # the payload no longer matches its CRC
    converse_stream(bytes(body))
    _, error = collect(provider.stream(MODEL, HELLO, CREDS, TIMEOUTS))
    assert isinstance(error, MalformedProviderResponse)
