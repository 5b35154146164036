"""AnthropicProvider through the official anthropic SDK against a local server speaking the
Messages API wire protocol (tests.support.fake_anthropic)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

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
from shared.models.providers.anthropic_provider import AnthropicProvider
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
from tests.support.fake_anthropic import (
    ChatScript,
    FakeAnthropic,
    RawReply,
    ToolCallScript,
    anthropic_error,
    stream_error_event,
)

TIMEOUTS = Timeouts(connect_s=2, read_s=5, stream_idle_s=5)
HELLO = ChatRequest(messages=[Message(role="user", content="Hello")])
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


@pytest.fixture
def provider() -> AnthropicProvider:
    return AnthropicProvider()


@pytest.fixture
def creds(fake: FakeAnthropic) -> Credentials:
    return Credentials(api_key="sk-ant-test", base_url=fake.base_url)


def collect(events: Iterator[ChatEvent]) -> tuple[list[ChatEvent], BaseException | None]:
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
            Message(role="system", content="Answer in English."),
            Message(role="user", content="Weather in Paris and Rome?"),
            Message(role="assistant", content="Checking.", tool_calls=[
                ToolCall(id="toolu_1", name="weather", arguments='{"city": "Paris"}'),
                ToolCall(id="toolu_2", name="weather", arguments='{"city": "Rome"}')]),
            Message(role="tool", tool_call_id="toolu_1", content="18C"),
            Message(role="tool", tool_call_id="toolu_2", content="24C"),
            Message(role="user", content="Which is warmer?"),
        ],
        tools=[Tool(name="weather", description="Current weather",
                    parameters={"type": "object", "properties": {"city": {"type": "string"}}})],
        tool_choice="required", temperature=0.3, top_p=0.8, stop=["END"],
    )
    fake.enqueue(ChatScript(text=["Rome ", "is warmer."], usage=(50, 4), model="claude-test-20990101"))

    result = provider.chat("claude-test", request, creds, TIMEOUTS)

    assert result.content == "Rome is warmer."
    assert result.stop_reason == "stop"
    assert result.usage == Usage(50, 4)
    assert result.model == "claude-test-20990101"
    [sent] = fake.requests_to(FakeAnthropic.MESSAGES_PATH)
    assert "sk-ant-test" in (sent.headers.get("x-api-key", "") + sent.headers.get("authorization", ""))
    body = sent.body
    assert body["system"] == "Be brief.\n\nAnswer in English."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}}]},
        # Both results and the next question travel in one user turn.
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
            {"type": "text", "text": "Which is warmer?"}]},
    ]
    assert body["tools"] == [{"name": "weather", "description": "Current weather",
                              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    assert body["tool_choice"] == {"type": "any"}
    assert body["max_tokens"] == 4096  # required by Anthropic: the default when none is asked
    assert body["stop_sequences"] == ["END"]
    # API version 2026-10-21 rejects any sampling parameter: they are not sent.
    assert "temperature" not in body and "top_p" not in body


def test_a_tool_choice_naming_a_tool_forces_that_tool(fake, provider, creds):
    request = ChatRequest(messages=HELLO.messages, tools=[Tool(name="weather")], tool_choice="weather")
    provider.chat("claude-test", request, creds, TIMEOUTS)
    [sent] = fake.requests_to(FakeAnthropic.MESSAGES_PATH)
    assert sent.body["tool_choice"] == {"type": "tool", "name": "weather"}


def test_max_tokens_from_the_request(fake, provider, creds):
    provider.chat("m", ChatRequest(messages=HELLO.messages, max_tokens=100), creds, TIMEOUTS)
    assert fake.message_requests()[0]["max_tokens"] == 100


def test_chat_with_tool_calls(fake, provider, creds):
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("weather", ['{"city": "Oslo"}'], id="toolu_9")]))
    result = provider.chat("m", HELLO, creds, TIMEOUTS)
    assert result.stop_reason == "tool_calls"
    assert result.tool_calls == [ToolCall(id="toolu_9", name="weather", arguments='{"city": "Oslo"}')]


def test_stream_text_and_tool_call_deltas_then_usage(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Let me ", "check."],
                            tool_calls=[ToolCallScript("weather", ['{"ci', 'ty": "Os', 'lo"}'], id="toolu_w"),
                                        ToolCallScript("time", ['{"tz": "CET"}'], id="toolu_t")],
                            usage=(25, 89)))

    events, error = collect(provider.stream("claude-x", HELLO, creds, TIMEOUTS))

    assert error is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Let me ", "check."]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    # Tool call indexes count tool calls (0, 1), not Anthropic's content blocks (1, 2).
    assert deltas[0] == ToolCallDelta(index=0, id="toolu_w", name="weather")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city": "Oslo"}'
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [(0, "toolu_w", "weather"), (1, "toolu_t", "time")]
    assert "".join(d.arguments for d in deltas if d.index == 1) == '{"tz": "CET"}'
    # Input tokens from message_start, output tokens from message_delta.
    assert events[-1] == StreamEnd(stop_reason="tool_calls", usage=Usage(25, 89), model="claude-x")
    assert fake.message_requests()[0]["stream"] is True


def test_structured_output_is_a_forced_tool_whose_input_is_the_answer(fake, provider, creds):
    request = ChatRequest(messages=HELLO.messages, response_schema=SCHEMA, response_schema_name="final",
                          tools=[Tool(name="search")])
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("final", ['{"answer": "42"}'])]))

    result = provider.chat("m", request, creds, TIMEOUTS)

    assert json.loads(result.content) == {"answer": "42"}
    assert result.tool_calls == []
    assert result.stop_reason == "stop"
    body = fake.message_requests()[0]
    assert body["tools"] == [{"name": "final", "description": "Give the answer as this tool's input.",
                              "input_schema": SCHEMA}]
    assert body["tool_choice"] == {"type": "tool", "name": "final"}


def test_structured_output_streams_as_text(fake, provider, creds):
    request = ChatRequest(messages=HELLO.messages, response_schema=SCHEMA, response_schema_name="final")
    fake.enqueue(ChatScript(text=[], tool_calls=[ToolCallScript("final", ['{"ans', 'wer": "42"}'])]))
    events, error = collect(provider.stream("m", request, creds, TIMEOUTS))
    assert error is None
    assert events[:-1] == [TextDelta('{"ans'), TextDelta('wer": "42"}')]
    assert isinstance(events[-1], StreamEnd) and events[-1].stop_reason == "stop"


def test_stream_without_usage_ends_with_usage_none(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Hi"], usage=None))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert error is None
    assert events == [TextDelta("Hi"), StreamEnd(stop_reason="stop", usage=None, model="m")]


def test_stream_max_tokens_stop_reason(fake, provider, creds):
    fake.enqueue(ChatScript(text=["cut"], finish_reason="max_tokens"))
    events, _ = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(events[-1], StreamEnd) and events[-1].stop_reason == "length"


def test_streams_reuse_the_pooled_connection(fake, provider, creds):
    for _ in range(3):
        events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
        assert error is None and isinstance(events[-1], StreamEnd)
    provider.chat("m", HELLO, creds, TIMEOUTS)
    assert len(fake.requests) == 4
    assert fake.connections == 1


def test_a_server_that_stalls_after_the_answer_does_not_fail_it(fake, provider, creds):
    # The body is read past message_stop only to pool the connection: a stall there is not an error.
    fake.enqueue(ChatScript(text=["done"], hold_open_s=2))
    events, error = collect(provider.stream("m", HELLO, creds, Timeouts(connect_s=1, read_s=5, stream_idle_s=0.3)))
    assert error is None
    assert events[0] == TextDelta("done") and isinstance(events[-1], StreamEnd)


def test_429_maps_to_rate_limited_with_retry_after(fake, provider, creds):
    fake.enqueue(anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit",
                                 headers={"retry-after": "12"}))
    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert caught.value.retry_after_s == 12.0


@pytest.mark.parametrize(("status", "error_type"), [(500, "api_error"), (529, "overloaded_error"),
                                                    (503, "api_error")])
def test_5xx_and_overloaded_map_to_unavailable(fake, provider, creds, status, error_type):
    fake.enqueue(anthropic_error(status, error_type))
    _, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert type(error) is ProviderUnavailable
    assert len(fake.requests_to(FakeAnthropic.MESSAGES_PATH)) == 1  # the SDK does not retry


def test_read_timeout_maps_to_provider_timeout(fake, provider, creds):
    fake.enqueue(ChatScript(first_byte_delay_s=3))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        provider.chat("m", HELLO, creds, Timeouts(connect_s=1, read_s=0.3, stream_idle_s=0.3))
    assert time.monotonic() - started < 2


def test_stream_idle_timeout(fake, provider, creds):
    fake.enqueue(ChatScript(text=["a", "b"], chunk_delay_s=2))
    _, error = collect(provider.stream("m", HELLO, creds, Timeouts(connect_s=1, read_s=5, stream_idle_s=0.3)))
    assert isinstance(error, ProviderTimeout)


def test_malformed_stream_event(fake, provider, creds):
    # Events: message_start, content_block_start, ping, delta "one", delta "two" (malformed)...
    fake.enqueue(ChatScript(text=["one", "two", "three"], malformed_chunk_at=4))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, MalformedProviderResponse)
    assert events == [TextDelta("one")]


def test_mid_stream_disconnect_raises_after_the_deltas_received(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Once", " upon", " a", " time"], disconnect_after_chunks=5))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert isinstance(error, ProviderUnavailable)
    assert events == [TextDelta("Once"), TextDelta(" upon")]


def test_stream_that_ends_without_message_stop_is_an_error(fake, provider, creds):
    fake.enqueue(ChatScript(text=["Once"], omit_finish=True))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert events == [TextDelta("Once")]
    assert isinstance(error, ProviderUnavailable)


def test_overloaded_error_event_mid_stream(fake, provider, creds):
    fake.enqueue(stream_error_event("overloaded_error", after=ChatScript(text=["par", "tial"])))
    events, error = collect(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert events == [TextDelta("par"), TextDelta("tial")]
    assert type(error) is ProviderUnavailable


@pytest.mark.parametrize(("status", "error_type"), [(401, "authentication_error"), (403, "permission_error")])
def test_auth_failures(fake, provider, creds, status, error_type):
    fake.enqueue(anthropic_error(status, error_type, "invalid x-api-key"))
    with pytest.raises(ProviderAuthFailed):
        provider.chat("m", HELLO, creds, TIMEOUTS)


def test_missing_api_key_fails_without_a_request(fake, provider):
    with pytest.raises(ProviderAuthFailed):
        provider.chat("m", HELLO, Credentials(base_url=fake.base_url), TIMEOUTS)
    assert fake.requests == []


def test_request_too_large_is_context_too_long(fake, provider, creds):
    fake.enqueue(anthropic_error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes"))
    with pytest.raises(ContextTooLong):
        provider.chat("m", HELLO, creds, TIMEOUTS)


def test_invalid_request_400_is_an_invalid_request(fake, provider, creds):
    fake.enqueue(anthropic_error(400, "invalid_request_error", "messages: roles must alternate"))
    with pytest.raises(InvalidModelRequest) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert not isinstance(caught.value, ContextTooLong)
    # Only an invalid_request_error is read for it: another type keeps its own meaning.
    fake.enqueue(anthropic_error(400, "not_found_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(InvalidModelRequest) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert not isinstance(caught.value, ContextTooLong)


def test_prompt_too_long_is_context_too_long_with_the_window(fake, provider, creds):
    # Anthropic has no code for it: an invalid_request_error whose message says so.
    fake.enqueue(anthropic_error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(ContextTooLong) as caught:
        provider.chat("m", HELLO, creds, TIMEOUTS)
    assert caught.value.context_window == 200000 and not caught.value.retryable and caught.value.status == 400
    fake.enqueue(anthropic_error(400, "invalid_request_error", "Prompt is too long"))
    with pytest.raises(ContextTooLong) as caught:
        list(provider.stream("m", HELLO, creds, TIMEOUTS))
    assert caught.value.context_window is None


def test_tool_arguments_that_are_not_an_object_are_rejected_before_sending(fake, provider, creds):
    request = ChatRequest(messages=[
        Message(role="user", content="hi"),
        Message(role="assistant", tool_calls=[ToolCall(id="t", name="x", arguments="[1, 2")]),
        Message(role="tool", tool_call_id="t", content="?"),
    ])
    with pytest.raises(InvalidModelRequest):
        provider.chat("m", request, creds, TIMEOUTS)
    assert fake.requests == []


def test_malformed_json_answer(fake, provider, creds):
    fake.enqueue(RawReply(200, b"<html>not json</html>"))
    with pytest.raises(MalformedProviderResponse):
        provider.chat("m", HELLO, creds, TIMEOUTS)
