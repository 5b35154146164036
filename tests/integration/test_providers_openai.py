"""OpenAIProvider through the official openai SDK against a local server speaking OpenAI's
wire protocol (tests.support.fake_openai): request mapping, streaming, usage, error mapping."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

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
from shared.models.providers.openai_provider import OpenAIProvider
from shared.models.resilience import RetryPolicy
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
from tests.support.fake_openai import (
    ChatScript,
    EmbeddingScript,
    FakeOpenAI,
    RawReply,
    ToolCallScript,
    openai_error,
)

TIMEOUTS = Timeouts(connect_s=2, read_s=5, stream_idle_s=5)
HELLO = ChatRequest(messages=[Message(role="user", content="Hello")])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
def provider() -> OpenAIProvider:
    return OpenAIProvider()


@pytest.fixture
def creds(fake: FakeOpenAI) -> Credentials:
    return Credentials(api_key="sk-test-123", base_url=fake.base_url)


def collect(events: Iterator[ChatEvent]) -> tuple[list[ChatEvent], BaseException | None]:
    """The events a stream yielded before it ended or raised, and what it raised."""
    got: list[ChatEvent] = []
    try:
        for event in events:
            got.append(event)
    except ProviderError as exc:
        return got, exc
    return got, None


def test_plain_chat_maps_the_request_and_the_answer(fake, provider, creds):
    request = ChatRequest(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Paris?"),
            Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="weather", arguments='{"city":"Paris"}')]),
            Message(role="tool", tool_call_id="call_1", content="18C, clear"),
        ],
        tools=[Tool(name="weather", description="Current weather",
                    parameters={"type": "object", "properties": {"city": {"type": "string"}}})],
        tool_choice="auto", temperature=0.2, top_p=0.9, max_tokens=64, stop=["\n\n"],
    )
    fake.enqueue(ChatScript(text=["It is ", "18C."], usage=(40, 6), model="gpt-4o-mini-2024-07-18"))

    result = provider.chat("gpt-4o-mini", request, creds, TIMEOUTS)

    assert result.content == "It is 18C."
    assert result.tool_calls == []
    assert result.stop_reason == "stop"
    assert result.usage == Usage(40, 6)
    assert result.model == "gpt-4o-mini-2024-07-18"
    [sent] = fake.requests_to(FakeOpenAI.CHAT_PATH)
    assert sent.headers["authorization"] == "Bearer sk-test-123"
    body = sent.body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, clear"},
    ]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    assert body["tool_choice"] == "auto"
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"]) == (0.2, 0.9, 64, ["\n\n"])
    assert "max_completion_tokens" not in body
    assert "stream" not in body and "response_format" not in body


def test_a_tool_choice_naming_a_tool_forces_that_function(fake, provider, creds):
    request = ChatRequest(messages=HELLO.messages, tools=[Tool(name="weather")], tool_choice="weather")
    provider.chat("m", request, creds, TIMEOUTS)
    assert fake.chat_requests()[0]["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_minimal_request_sends_no_optional_fields(fake, provider, creds):
    provider.chat("m", HELLO, creds, TIMEOUTS)
    assert set(fake.chat_requests()[0]) == {"model", "messages"}


def test_chat_with_tool_calls(fake, provider, creds):
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("weather", ['{"city":', '"Oslo"}'], id="call_a"),
                                                 ToolCallScript("time", ["{}"], id="call_b")]))
    result = provider.chat("m", HELLO, creds, TIMEOUTS)
    assert result.content == ""
    assert result.stop_reason == "tool_calls"
    assert result.tool_calls == [ToolCall(id="call_a", name="weather", arguments='{"city":"Oslo"}'),
                                 ToolCall(id="call_b", name="time", arguments="{}")]


def test_stream_text_and_tool_call_deltas_then_usage(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Let me ", "check."],
                            tool_calls=[ToolCallScript("weather", ['{"ci', 'ty": "Os', 'lo"}'], id="call_w"),
                                        ToolCallScript("time", ['{"tz":', '"CET"}'], id="call_t")],
                            usage=(31, 17)))

    events, error = collect(provider.stream("gpt-4o", HELLO, creds, TIMEOUTS))

    assert error is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let me ", "check."]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0] == ToolCallDelta(index=0, id="call_w", name="weather", arguments="")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city": "Oslo"}'
    assert "".join(d.arguments for d in deltas if d.index == 1) == '{"tz":"CET"}'
    assert [d.id for d in deltas if d.id] == ["call_w", "call_t"]
    assert len(deltas) == 7  # one opening fragment per call plus one per argument piece
    assert events[-1] == StreamEnd(stop_reason="tool_calls", usage=Usage(31, 17), model="gpt-4o")
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    body = fake.chat_requests()[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_structured_output_request_body(fake, provider, creds):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
              "additionalProperties": False}
    fake.enqueue(ChatScript(text=['{"answer": "42"}']))
    request = ChatRequest(messages=HELLO.messages, response_schema=schema, response_schema_name="final_answer")

    result = provider.chat("m", request, creds, TIMEOUTS)

    assert json.loads(result.content) == {"answer": "42"}
    assert fake.chat_requests()[0]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "final_answer", "schema": schema, "strict": True}}


def test_stream_without_usage_chunk_ends_with_usage_none(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Hi"], usage=None))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert error is None
    assert events == [TextDelta("Hi"), StreamEnd(stop_reason="stop", usage=None, model="m")]


def test_stream_length_finish_reason(fake, provider, creds):
    fake.enqueue(ChatScript(text=["cut"], finish_reason="length"))
    events, _ = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(events[-1], StreamEnd) and events[-1].stop_reason == "length"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after": "<HTTP date in 30 s>"}, 30.0),
    ({}, None),
])
def test_429_maps_to_rate_limited_with_retry_after(fake, provider, creds, headers, expected):
    if headers.get("retry-after") == "<HTTP date in 30 s>":
        headers = {"retry-after": format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)}
    fake.enqueue(openai_error(429, "Rate limit reached", type_="requests", code="rate_limit_exceeded",
                              headers=headers))
    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    if expected is None:
        assert caught.value.retry_after_s is None
    else:
        assert caught.value.retry_after_s == pytest.approx(expected, abs=1.5)
    assert caught.value.retryable


def test_429_on_a_stream_request(fake, provider, creds):
    fake.enqueue(openai_error(429, "slow down", type_="requests", headers={"retry-after": "2"}))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert events == []
    assert isinstance(error, ProviderRateLimited) and error.retry_after_s == 2.0


def test_insufficient_quota_is_not_retryable(fake, provider, creds):
    fake.enqueue(openai_error(429, "You exceeded your current quota", type_="insufficient_quota",
                              code="insufficient_quota"))
    with pytest.raises(ProviderError) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert type(caught.value) is ProviderError and not caught.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_maps_to_unavailable_and_the_sdk_does_not_retry(fake, provider, creds, status):
    fake.enqueue(RawReply(status, "<html>upstream error</html>", {"content-type": "text/html"}))
    with pytest.raises(ProviderUnavailable) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert not isinstance(caught.value, ProviderTimeout)
    # max_retries=0: our RetryPolicy is the only retry layer.
    assert len(fake.requests_to(FakeOpenAI.CHAT_PATH)) == 1


def test_read_timeout_maps_to_provider_timeout(fake, provider, creds):
    fake.enqueue(ChatScript(first_byte_delay_s=3))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        provider.chat("m", HELLO, creds, Timeouts(connect_s=1, read_s=0.3, stream_idle_s=0.3))
    assert time.monotonic() - started < 2


def test_stream_idle_timeout_after_some_deltas(fake, provider, creds):
    fake.enqueue(ChatScript(text=["a", "b", "c"], chunk_delay_s=2))
    events, error = collect(provider.stream("m", HELLO, creds, Timeouts(connect_s=1, read_s=5, stream_idle_s=0.3)))
    assert isinstance(error, ProviderTimeout)
    assert not any(isinstance(e, StreamEnd) for e in events)


def test_malformed_stream_chunk(fake, provider, creds):
    fake.enqueue(ChatScript(text=["one", "two", "three"], malformed_chunk_at=3))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, MalformedProviderResponse)
    assert events == [TextDelta("one"), TextDelta("two")]


def test_stream_chunk_of_the_wrong_shape_is_malformed(fake, provider, creds):
    fake.enqueue(RawReply(200, b'data: {"id": "x", "object": "chat.completion.chunk", "choices": [7]}\n\n',
                          {"content-type": "text/event-stream"}))
    _, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, MalformedProviderResponse)


def test_mid_stream_disconnect_raises_after_the_deltas_received(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Once", " upon", " a", " time"], disconnect_after_chunks=3))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, ProviderUnavailable)
    assert events == [TextDelta("Once"), TextDelta(" upon")]


def test_stream_that_ends_without_finish_reason_is_an_error(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Once", " upon"], omit_finish=True))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, ProviderUnavailable)
    assert events == [TextDelta("Once"), TextDelta(" upon")]


def test_error_event_inside_a_stream(fake, provider, creds):
    fake.enqueue(RawReply(200, b'data: {"choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": null}]}'
                               b'\n\ndata: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
                          {"content-type": "text/event-stream"}))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert events == [TextDelta("par")]
    assert isinstance(error, ProviderUnavailable)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures(fake, provider, creds, status):
    fake.enqueue(openai_error(status, "Incorrect API key provided", type_="invalid_request_error",
                              code="invalid_api_key"))
    with pytest.raises(ProviderAuthFailed) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert not caught.value.retryable


def test_context_length_exceeded_is_told_by_its_code(fake, provider, creds):
    fake.enqueue(openai_error(400, "Please reduce the length of the messages.", type_="invalid_request_error",
                              code="context_length_exceeded", param="messages"))
    with pytest.raises(ContextTooLong):
        provider.chat("m", HELLO, creds, TIMEOUTS)


def test_other_400s_are_invalid_requests_whatever_their_message_says(fake, provider, creds):
    # Where the error has a code, the code decides: message text about the context is not matched.
    fake.enqueue(openai_error(400, "This model's maximum context length is 8192 tokens", type_="BadRequestError",
                              code="invalid_value"))
    with pytest.raises(InvalidModelRequest) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert not isinstance(caught.value, ContextTooLong)


def test_context_length_exceeded_names_the_window_when_the_message_says_it(fake, provider, creds):
    fake.enqueue(openai_error(400, "This model's maximum context length is 128000 tokens. However, your messages "
                              "resulted in 130512 tokens. Please reduce the length of the messages.",
                              type_="invalid_request_error", code="context_length_exceeded", param="messages"))
    with pytest.raises(ContextTooLong) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert caught.value.context_window == 128000 and not caught.value.retryable
    assert caught.value.details["context_window"] == 128000


def test_a_compatible_server_without_a_code_says_it_in_words(fake, provider, creds):
    # vLLM: the "code" is the HTTP status; the message is the only signal, and names the window.
    fake.enqueue(RawReply(400, {"object": "error", "message": "This model's maximum context length is 8192 tokens. "
                                "However, you requested 9000 tokens (8000 in the messages, 1000 in the completion).",
                                "type": "BadRequestError", "param": None, "code": 400}))
    with pytest.raises(ContextTooLong) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert caught.value.context_window == 8192 and caught.value.status == 400 and not caught.value.retryable
    # llama.cpp: a type of its own, and the window as n_ctx.
    fake.enqueue(RawReply(400, {"error": {"code": 400, "message": "the request exceeds the available context size",
                                          "type": "exceed_context_size_error", "n_prompt_tokens": 5000,
                                          "n_ctx": 4096}}))
    with pytest.raises(ContextTooLong) as caught:
        list(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert caught.value.context_window == 4096


@pytest.mark.parametrize("event", [
    # vLLM before 0.6: the error object itself as the last event, then the stream closes.
    b'{"object": "error", "message": "This model\'s maximum context length is 8192 tokens. However, you '
    b'requested 8300 tokens.", "type": "BadRequestError", "param": null, "code": 400}',
    b'{"error": {"object": "error", "message": "This model\'s maximum context length is 8192 tokens.", '
    b'"type": "BadRequestError", "param": null, "code": 400}}',
])
def test_a_context_error_closing_a_stream_is_context_too_long_and_not_retried(fake, provider, creds, event):
    stream = RawReply(200, b"data: " + event + b"\n\n", {"content-type": "text/event-stream"})
    fake.enqueue(stream, stream, stream)
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.001)
    with pytest.raises(ContextTooLong) as caught:
        list(policy.stream(lambda: provider.stream("m", HELLO, creds, TIMEOUTS)))
    assert caught.value.context_window == 8192
    assert len(fake.chat_requests()) == 1  # not retried


def test_malformed_json_answer(fake, provider, creds):
    fake.enqueue(RawReply(200, b"{not json"))
    with pytest.raises(MalformedProviderResponse):
        provider.chat("m", HELLO, creds, TIMEOUTS)
    fake.enqueue(RawReply(200, {"id": "x", "choices": []}))
    with pytest.raises(MalformedProviderResponse):
        provider.chat("m", HELLO, creds, TIMEOUTS)


def test_connection_refused_is_unavailable(provider):
    creds = Credentials(api_key="k", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ProviderUnavailable):
        provider.chat("m", HELLO, creds, Timeouts(connect_s=0.5, read_s=0.5))


def test_embeddings_come_back_in_input_order(fake, provider, creds):
    fake.enqueue(EmbeddingScript(reverse_order=True, prompt_tokens=9))
    texts = ["a", "bbb", "cc"]

    vectors, tokens = provider.embed("text-embedding-3-small", texts, creds, TIMEOUTS, dimensions=4)

    # The fake's first component is the text's length: order is observable.
    assert [v[0] for v in vectors] == [1.0, 3.0, 2.0]
    assert all(len(v) == 4 for v in vectors)
    assert tokens == 9
    body = fake.requests_to(FakeOpenAI.EMBEDDINGS_PATH)[0].body
    assert body["input"] == texts and body["dimensions"] == 4


def test_embeddings_without_dimensions_do_not_send_it(fake, provider, creds):
    vectors, _ = provider.embed("m", ["x y"], creds, TIMEOUTS)
    assert len(vectors) == 1
    assert "dimensions" not in fake.requests_to(FakeOpenAI.EMBEDDINGS_PATH)[0].body


def test_embedding_errors_are_mapped(fake, provider, creds):
    fake.enqueue(openai_error(401, "bad key", type_="invalid_request_error", path=FakeOpenAI.EMBEDDINGS_PATH))
    with pytest.raises(ProviderAuthFailed):
        provider.embed("m", ["x"], creds, TIMEOUTS)


def test_one_sdk_client_per_endpoint_key_and_timeouts(fake, provider, creds):
    first = provider._client(creds, TIMEOUTS)
    assert provider._client(creds, TIMEOUTS) is first
    assert provider._client(Credentials(api_key="other", base_url=fake.base_url), TIMEOUTS) is not first
    assert provider._client(creds, Timeouts(connect_s=1, read_s=1)) is not first
    assert first.max_retries == 0
    assert first.timeout.connect == TIMEOUTS.connect_s and first.timeout.read == TIMEOUTS.read_s


def test_keyless_local_server(fake, provider):
    provider.chat("llama3", HELLO, Credentials(base_url=fake.base_url), TIMEOUTS)
    assert fake.requests_to(FakeOpenAI.CHAT_PATH)[0].headers["authorization"] == "Bearer no-key"


def test_streams_reuse_the_pooled_connection(fake, provider, creds):
    # The SDK's own Stream would drop the connection after [DONE]; ours reads the body to its end.
    for _ in range(3):
        events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
        assert error is None and isinstance(events[-1], StreamEnd)
    provider.chat("m", HELLO, creds, TIMEOUTS)
    assert len(fake.requests) == 4
    assert fake.connections == 1


def test_a_server_that_stalls_after_the_answer_does_not_fail_it(fake, provider, creds):
    # The body is read past [DONE] only to pool the connection: a stall there is not an error.
    fake.enqueue(ChatScript(text=["done"], hold_open_s=2))
    events, error = collect(provider.stream("m", HELLO, creds, Timeouts(connect_s=1, read_s=5, stream_idle_s=0.3)))
    assert error is None
    assert events[0] == TextDelta("done") and isinstance(events[-1], StreamEnd)


def test_retry_policy_retries_a_stream_that_failed_before_its_first_event(fake, provider, creds):
    fake.enqueue(RawReply(503, {"error": {"message": "busy", "type": "server_error"}}), ChatScript(text=["ok"]))
    policy = RetryPolicy(sleep=lambda _: None)
    events = list(policy.stream(lambda: provider.stream("m", HELLO, creds, TIMEOUTS)))
    assert events[0] == TextDelta("ok") and isinstance(events[-1], StreamEnd)
    assert len(fake.requests_to(FakeOpenAI.CHAT_PATH)) == 2


def test_retry_policy_never_replays_a_stream_that_broke_after_its_first_event(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Once", " upon"], disconnect_after_chunks=2), ChatScript(text=["replayed"]))
    policy = RetryPolicy(sleep=lambda _: None)
    events, error = collect(policy.stream(lambda: provider.stream("m", HELLO, creds, TIMEOUTS)))
    assert isinstance(error, ProviderUnavailable)
    assert events == [TextDelta("Once")]
    assert len(fake.requests_to(FakeOpenAI.CHAT_PATH)) == 1
